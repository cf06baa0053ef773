"""A rehearsal session: one cluster, one Postgres (and a registry when a
scenario promotes tags) shared by every scenario, each owned and cleaned up
here, also on Ctrl-C, SIGTERM, SIGHUP and errors (harness/teardown.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rich.text import Text

from harness import cleanup, distributed, faults, judge, parallel, runstate, tools
from harness.context import RehearsalContext
from harness.journal import Journal
from harness.options import SessionOptions
from harness.pipeline import rehearse as run_pipeline
from harness.progress import say
from harness.providers import factory
from harness.providers.factory import Infrastructure
from harness.providers.registry import RegistryProvider
from harness.redact import Redactor, mask_patterns
from harness.report import RunReports, ShardRecord, write_scenario_reports
from harness.report import write_run_reports as _write_run_reports
from harness.scenario.loader import SCENARIO_FILE
from harness.scenario.models import Scenario
from harness.teardown import Teardown, TeardownStack, clear_stop


LOCK_EVENT_S = 0.1  # a shared hold that waited less than this is not worth an event


@dataclass
class Session:
    options: SessionOptions
    infra: Infrastructure
    stack: ExitStack
    owner: str
    results: list[Journal] = field(default_factory=list)
    redactors: list[Redactor] = field(default_factory=list)  # one per scenario, for the run-level reports
    run_reports: RunReports | None = None
    shard: ShardRecord | None = None  # --shard K/N: which shard this run is, and the whole partition (run.json)
    # Part of a larger run (a pytest-xdist worker): its journals carry that run's id, and that run writes
    # the run-level reports. "" for a run of its own (the journals carry `owner`).
    part_of: str = ""
    # Scenarios rehearsed side by side (`rehearse_all` with jobs > 1): the shared-infrastructure lock
    # (harness/parallel.py; in a pytest-xdist worker harness/distributed.py's FileInfraLock, the same
    # contract across processes), and one mutex over what the workers add to the session.
    infra_lock: parallel.InfraLock | distributed.FileInfraLock | None = None
    _mutex: threading.RLock = field(default_factory=threading.RLock)

    def redact(self, text: str) -> str:
        """Masked by every scenario's redactor so far (their secrets and DSN passwords) and the patterns."""
        for redactor in self.redactors:
            text = redactor(text)
        return mask_patterns(text)

    def ensure_registry(self) -> RegistryProvider:
        with self._mutex:  # started once, whichever worker needs it first
            return factory.add_registry(self.infra, self.stack, self.owner, keep=self.options.keep_cluster)

    def rehearse_all(self, scenarios: Sequence[Scenario], jobs: int = 1,
                     errors: dict[str, Exception] | None = None) -> list[Journal]:
        """Rehearse every scenario, `jobs` at a time; the judged journals in the order given (and so
        in `results`), whatever order they finished in. With `errors`, a scenario that raises (e.g. an
        InfrastructureMismatchError) is put there by name and the others go on; without, it is raised
        (once the scenarios already running have finished)."""
        def one(scenario: Scenario) -> None:
            try:
                self.rehearse(scenario)
            except Exception as exc:
                if errors is None:
                    raise
                errors[scenario.name] = exc

        start = len(self.results)
        if jobs <= 1:
            for s in scenarios:
                one(s)
            return self.results[start:]
        self.infra_lock = parallel.InfraLock()
        order = {s.name: i for i, s in enumerate(scenarios)}
        # Scenarios that need the infrastructure to themselves go first, while nothing else is running:
        # later, each would wait for every running scenario to finish while the other workers idle.
        first = sorted(scenarios, key=lambda s: not parallel.needs_exclusive(s))
        try:
            parallel.run_all(first, jobs, one, name=lambda s: s.name)
        finally:  # also when interrupted: the reports list the finished scenarios in a stable order
            with self._mutex:
                self.results[start:] = sorted(self.results[start:], key=lambda j: order.get(j.scenario, len(order)))
        return self.results[start:]

    def rehearse(self, scenario: Scenario) -> Journal:
        """Rehearse one scenario: the pipeline (phases, then the scenario's cleanup), the fault
        after-check, the judge (once, when all of that is done), then its reports."""
        if scenario.database.postgres != self.options.postgres_major and not self.options.database_dsn:
            raise InfrastructureMismatchError(
                f"scenario {scenario.name} asks for Postgres {scenario.database.postgres}, this session runs "
                f"{self.options.postgres_major}. Fix: rehearse it in a session started with that major")
        if scenario.registry is not None:
            self.ensure_registry()
        ctx = self._context(scenario)
        journal = ctx.journal
        try:
            with self._infra_hold(scenario, journal):
                run_pipeline(ctx)
                leftovers = self._fault_leftovers(journal) if scenario.faults else []
            judge.decide(journal, leftovers).record(journal)
            skipped = sum(st.skipped is not None for st in journal.runbook_steps)
            say(Text.assemble(f"verdict for {scenario.name}: ", (journal.verdict, "bold"),
                              f" (expected {scenario.expect.value}"
                              + (f"; {skipped} runbook step(s) skipped, as the runbook marks them)" if skipped else ")")))
        finally:  # also when interrupted: the journal so far, with its default verdict ERROR
            ctx.close_api()
            write_scenario_reports(journal, ctx.report_dir, ctx.redactor)
            with self._mutex:
                self.redactors.append(ctx.redactor)
        with self._mutex:
            self.results.append(journal)
        return journal

    @contextmanager
    def _infra_hold(self, scenario: Scenario, journal: Journal) -> Iterator[None]:
        """With scenarios side by side: the shared-infrastructure lock for the whole rehearsal, taken
        before its first phase so the wait counts in no timing; the wait is recorded as a `lock` event."""
        if self.infra_lock is None:  # one scenario at a time: nothing to share
            yield
            return
        with self.infra_lock.for_scenario(scenario) as (mode, waited):
            if mode == "exclusive" or waited >= LOCK_EVENT_S:
                why = ("its faults freeze infrastructure the other scenarios use" if mode == "exclusive"
                       else "a scenario whose faults freeze the shared infrastructure ran first")
                journal.event("lock", f"waited {waited:.1f}s for the shared infrastructure ({mode}: {why}); "
                                      "not counted in any phase")
            yield

    def _context(self, scenario: Scenario) -> RehearsalContext:
        journal = Journal(scenario=scenario.name, description=scenario.description, expect=scenario.expect.value,
                          scenario_file=report_path(scenario.directory / SCENARIO_FILE),
                          runbook_file=report_path(scenario.path(scenario.runbook.file)),
                          run_id=self.part_of or self.owner,
                          shard=str(self.options.shard) if self.options.shard else None,
                          expect_risks=[k.value for k in scenario.expect_risks],  # reports judge risks too
                          placeholders=dict(scenario.runbook.placeholders),
                          environment={"cluster": self.infra.cluster.name, "node_image": tools.NODE_IMAGE,
                                       "helm": tools.helm_version()},
                          objectives={**scenario.objectives.model_dump(), "max_detect_s": scenario.failure.within_s})
        report_dir = self.options.report_dir / scenario.name
        report_dir.mkdir(parents=True, exist_ok=True)
        return RehearsalContext(scenario=scenario, infra=self.infra, journal=journal, report_dir=report_dir,
                                keep=self.options.keep_cluster)

    def _fault_leftovers(self, journal: Journal) -> list[str]:
        """After the scenario's cleanup, what its faults left in place. Any leftover is the harness
        breaking its own promise: the judge makes the rehearsal an ERROR whatever its state (and the
        next scenario must not run on a paused database)."""
        problems = faults.leftovers(self.infra)
        if problems:
            say("; ".join(problems), style="bold red")
        journal.event("faults", "after cleanup: " + ("; ".join(problems) if problems
                                                      else "no container paused, no netem qdisc on the nodes"))
        return problems

    def write_run_reports(self) -> RunReports | None:
        """REPORT_DIR/junit.xml, summary.md, run.json and one history.jsonl line per scenario; once per
        session, when it closes (`run_reports` then says where they are). A shard writes them even without
        a result, so that `rehearse report merge` sees what it was to rehearse."""
        if self.run_reports is None and not self.part_of and (self.results or self.shard is not None):
            try:
                self.run_reports = _write_run_reports(self.results, self.options.report_dir, self.redactors,
                                                      run_id=self.owner, shard=self.shard)
            except Exception as exc:  # noqa: BLE001 (never hide the rehearsals' outcome or the teardown)
                say(f"run reports not written: {type(exc).__name__}: {exc}", style="yellow")
        return self.run_reports


def report_path(path: Path) -> str:
    """`path` as the reports name it: relative to the working directory when it lies under it (CI tools
    resolve junit.xml's `file` against the checkout, where `rehearse run` starts), else absolute."""
    try:
        return path.relative_to(Path.cwd().resolve()).as_posix()
    except (ValueError, OSError):  # elsewhere, or the working directory is gone
        return path.as_posix()


class InfrastructureMismatchError(RuntimeError):
    """A scenario needs infrastructure this session does not provide."""


@contextmanager
def open_session(options: SessionOptions, build: distributed.Build | None = None,
                 part_of: str = "") -> Iterator[Session]:
    """Start the shared infrastructure; tear it all down on exit unless kept.

    Dead runs' leftovers are reaped first; this run's resources are recorded (harness.runstate) as
    they are created. SIGINT, SIGTERM and SIGHUP stop the session (the first one) and never its
    teardown (the later ones are recorded); every cleanup step runs even when another fails. Leaving
    the block raises the truth about the teardown: harness.teardown.Interrupted or
    TeardownIncomplete, naming what failed.

    BUILD starts the infrastructure (default: factory.build, looked up at the call; a pytest-xdist
    worker attaches to its controller's instead: harness/distributed.py); PART_OF is the id of the run this session is part of (see Session.part_of)."""
    owner = runstate.new_owner(options.cluster_name)
    clear_stop()  # a stop requested in an earlier session (same process) is not this one's
    with Teardown().installed() as teardown:
        cleanup.reap_quietly()
        run = runstate.RunState(owner).begin()
        try:
            with TeardownStack(teardown) as stack:
                infra = (build or factory.build)(options, stack, owner, run)
                session = Session(options, infra, stack, owner, part_of=part_of)
                teardown.redact = session.redact
                if options.keep_cluster:
                    run.keep()
                    say(f"--keep-cluster: cluster {infra.cluster.name} and the containers labelled "
                        f"{tools.OWNER_LABEL}={owner} stay; remove them with `rehearse cleanup`")
                try:
                    yield session
                finally:  # before teardown; also after Ctrl-C, for the scenarios that finished
                    teardown.begin()  # a normal end is a teardown too: from here on, signals are recorded
                    session.write_run_reports()
        finally:  # the record goes only if nothing is left in it; else the reaper finishes the job
            run.end()
