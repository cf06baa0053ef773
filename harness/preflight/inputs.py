"""What the preflight checks read, gathered once per scenario from its files.

Unreadable manifests or runbooks do not raise: they become `inputs`
warnings and the checks that need them find nothing to check.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.journal import Finding
from harness.preflight.ids import INPUTS, WARNING
from harness.preflight.chart import render_chart
from harness.preflight.manifests import K8sObject, ManifestError, load_manifests
from harness.preflight.dsl import FrameworkMigration
from harness.preflight.frameworks import load_framework_migrations
from harness.preflight.migrations import Migration, load_migrations
from harness.placeholders import bind
from harness.preflight.sql import Statement, split_sql
from harness.runbook_commands import RunbookError, Step, all_commands, parse_runbook, read_runbook
from harness.scenario.models import Scenario
from harness.scenario.reading import ReadError, read_text


@dataclass
class Inputs:
    """What the checks read, gathered once from the scenario's files."""

    scenario: Scenario
    migrations: list[Migration] = field(default_factory=list)
    framework: list[FrameworkMigration] = field(default_factory=list)  # Alembic, knex, goose, Flyway, ...
    manifests: list[K8sObject] | None = None  # None: could not be read
    # With app.helm: the chart rendered with the bad version's values (what a rollback from it removes or reverts);
    # None: not a chart, or it could not be rendered.
    bad_manifests: list[K8sObject] | None = None
    manifests_path: Path | None = None
    runbook_path: Path | None = None
    steps: list[Step] = field(default_factory=list)           # what the rehearsal runs: not skipped, bound
    section: list[Step] = field(default_factory=list)         # the section as written, skipped steps included
    all_commands: list[Step] = field(default_factory=list)    # every shell command of the runbook
    problems: list[Finding] = field(default_factory=list)
    _sql: dict[Path, list[Statement]] = field(default_factory=dict, repr=False)

    def sql(self, path: Path) -> list[Statement]:
        """The statements of a migration file (parsed once); one that cannot be read has none, and an
        `inputs` warning says so (validation rejects such files first; this keeps `check` from crashing)."""
        if path not in self._sql:
            try:
                self._sql[path] = split_sql(read_text(path))
            except ReadError as exc:
                self._sql[path] = []
                self.problems.append(Finding(check=INPUTS, severity=WARNING, file=str(path),
                                             message=f"cannot read the migration, its checks skipped: {exc}",
                                             fix="save the migration as UTF-8 text"))
        return self._sql[path]

    @property
    def postgres_major(self) -> int:
        try:
            return int(self.scenario.database.postgres)
        except ValueError:
            return 15

    @property
    def variables(self) -> dict[str, str]:
        return {k: v.value for k, v in self.scenario.variables.items()}

    def step_where(self, step: Step) -> str:
        return f"runbook step {step.index} (line {step.line})"


def _gather_migrations(inp: Inputs, d: Path) -> None:
    """golang-migrate's pairs and the framework migrations of `migrations.files`."""
    try:
        inp.migrations = load_migrations(d) if d.is_dir() else []
        loaded = load_framework_migrations(d) if d.is_dir() else None
    except OSError as exc:
        inp.problems.append(Finding(check=INPUTS, severity=WARNING, file=str(d),
                                    message=f"cannot list the migrations, migration checks skipped: {exc}",
                                    fix="run `rehearse validate` and fix migrations.files"))
        return
    if loaded is None:
        return
    inp.framework = loaded.migrations
    inp.problems.extend(Finding(check=INPUTS, severity=WARNING, file=str(path),
                                message=f"cannot read the migration, its checks skipped: {why}",
                                fix="correct the file so its framework can load it (UTF-8 text that parses)")
                        for path, why in loaded.unreadable)


def gather(scenario: Scenario) -> Inputs:
    """Read the scenario's migrations, manifests and runbook; what cannot be read becomes an `inputs` warning."""
    inp = Inputs(scenario)
    m = scenario.migrations
    if m is not None and m.files is not None:
        _gather_migrations(inp, scenario.path(m.files))
    helm = scenario.app.helm
    inp.manifests_path = scenario.path(helm.chart if helm is not None else scenario.app.manifests)  # type: ignore[arg-type]
    try:
        inp.manifests = render_chart(scenario) if helm is not None else load_manifests(inp.manifests_path)
        inp.bad_manifests = render_chart(scenario, scenario.versions.bad) if helm is not None else None
    except ManifestError as exc:
        inp.problems.append(Finding(check=INPUTS, severity=WARNING, file=str(inp.manifests_path),
                                    message=f"cannot read the manifests, manifest checks skipped: {exc}",
                                    fix="fix the chart so `helm template` renders it (helm comes with `make env`)"
                                    if helm is not None else
                                    "fix the manifests so `kubectl apply --dry-run=client` accepts them"))
    inp.runbook_path = scenario.path(scenario.runbook.file)
    try:
        text = read_runbook(inp.runbook_path)
        inp.all_commands = all_commands(text)
        inp.section = parse_runbook(text, scenario.runbook.section)
        inp.steps = [bind(s, scenario.runbook.placeholders) for s in inp.section if s.skip is None]
    except RunbookError as exc:
        inp.problems.append(Finding(check=INPUTS, severity=WARNING, file=str(inp.runbook_path),
                                    message=f"cannot read the runbook, runbook checks skipped: {exc}",
                                    fix="run `rehearse validate` and fix the runbook path or section"))
    return inp

