"""pytest plugin (pytest11 entry point `rollback_rehearsal`).

- `pytest scenarios/` collects each scenario.yaml as one test item; it passes
  when the rehearsal's verdict equals the scenario's `expect`.
- Fixtures for users' own tests: `kind_cluster` and `postgres` (session),
  `rehearsal` (function: rehearse a scenario path, get its journal).
- One cluster and one Postgres serve the whole test session; each scenario
  gets its own namespace and database.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest

from harness.journal import Journal
from harness.scenario import ScenarioError, duplicate_names, load_or_problems, scenario_name
from harness.scenario.loader import SCENARIO_FILE

_SESSION_KEY = pytest.StashKey[Any]()
_CM_KEY = pytest.StashKey[Any]()
_NAMES_KEY = pytest.StashKey[dict[Path, str]]()


PYTEST_KIND_DEFAULT_NAME = "pytest-kind"
PYTEST_KIND_PLUGIN = "pytest-kind"
# Whether pytest-kind's options were added before we took its place.
_kind_options_present = False


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Take pytest-kind's place as the provider of `kind_cluster`.

    pytest-kind (a dependency: we use its KindCluster) registers its own
    `kind_cluster` fixture, which downloads kind and kubectl and makes its own
    cluster. Two fixtures of one name would be ambiguous, so its plugin is
    blocked (or unregistered if it came first); its options keep their meaning.
    """
    global _kind_options_present
    plugin = pluginmanager.get_plugin(PYTEST_KIND_PLUGIN)
    if plugin is not None:
        pluginmanager.unregister(plugin)
        _kind_options_present = True
    else:
        pluginmanager.set_blocked(PYTEST_KIND_PLUGIN)


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("rollback-rehearsal")
    if not _kind_options_present:  # same names and meaning as pytest-kind's
        g.addoption("--cluster-name", default=PYTEST_KIND_DEFAULT_NAME, help="kind cluster name (default: rehearsal)")
        g.addoption("--keep-cluster", action="store_true", help="keep the kind cluster, namespaces and databases after the run")
        g.addoption("--kubeconfig", default=None, help="use this cluster (kubeconfig) instead of creating a kind cluster")
        g.addoption("--kind-image", default=None, help="kind node image (default: the one `make env` builds)")
    g.addoption("--reuse-cluster", action="store_true", help="reuse an existing kind cluster of the same name (not deleted)")
    g.addoption("--report-dir", default="reports", help="directory for rehearsal reports (default: reports)")
    g.addoption("--database-dsn", default=None, help="use this Postgres (admin DSN) instead of a container")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "rehearsal: a rollback rehearsal collected from a scenario.yaml")
    config.addinivalue_line("markers", "e2e: needs the real environment built by `make env` (Docker, kind node image, Postgres, registry)")


def _session(config: pytest.Config) -> Any:
    """The shared rehearsal session, started on first use, closed at the end of the test session."""
    if _SESSION_KEY not in config.stash:
        from harness.session import SessionOptions, open_session  # noqa: PLC0415

        name = config.getoption("cluster_name", PYTEST_KIND_DEFAULT_NAME)
        kubeconfig = config.getoption("kubeconfig", None)
        opts = SessionOptions(
            cluster_name="rehearsal" if name == PYTEST_KIND_DEFAULT_NAME else name,
            keep_cluster=bool(config.getoption("keep_cluster", False)),
            reuse_cluster=config.getoption("reuse_cluster"), report_dir=Path(config.getoption("report_dir")),
            kubeconfig=Path(kubeconfig) if kubeconfig else None, database_dsn=config.getoption("database_dsn"),
            node_image=config.getoption("kind_image", None),
        )
        cm = open_session(opts)
        config.stash[_CM_KEY] = cm
        config.stash[_SESSION_KEY] = cm.__enter__()
    return config.stash[_SESSION_KEY]


def pytest_unconfigure(config: pytest.Config) -> None:
    cm = config.stash.get(_CM_KEY, None)
    if cm is not None:
        cm.__exit__(None, None, None)


# ── fixtures ────────────────────────────────────────────────────────────
@pytest.fixture(scope="session")
def rehearsal_session(request: pytest.FixtureRequest) -> Any:
    """The session's shared infrastructure (cluster, Postgres, lazily a registry)."""
    return _session(request.config)


@pytest.fixture(scope="session")
def kind_cluster(rehearsal_session: Any) -> Any:
    """The session's kind cluster provider (`.kubeconfig`, `.load_image()`, `.name`)."""
    return rehearsal_session.infra.cluster


@pytest.fixture(scope="session")
def postgres(rehearsal_session: Any) -> Any:
    """The session's Postgres provider (`.admin_dsn`, `.create_database(name)`)."""
    return rehearsal_session.infra.database


@pytest.fixture
def rehearsal(rehearsal_session: Any) -> Iterator[Callable[[str | Path], Journal]]:
    """Rehearse a scenario directory on the shared infrastructure; returns the journal."""
    from harness.scenario import load_scenario  # noqa: PLC0415

    def run(path: str | Path) -> Journal:
        return rehearsal_session.rehearse(load_scenario(Path(path)))

    yield run


# ── scenario collection ────────────────────────────────────────────────
def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    if file_path.name == "scenario.yaml":
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ExpectationNotMet(Exception):
    def __init__(self, journal: Journal, problems: list[str]) -> None:
        self.journal, self.problems = journal, problems
        super().__init__("; ".join(problems))


def _scenario_files(config: pytest.Config) -> dict[Path, str]:
    """Every scenario file this session may collect (under its arguments), with its scenario's name.

    Needed before the first item exists: pytest collects depth-first, so the
    second of two same-named scenarios is seen only after the first was
    collected, and both must be collection errors (they would share a
    namespace, a database and a report directory).
    """
    if _NAMES_KEY not in config.stash:
        skip: list[str] = config.getini("norecursedirs")
        names: dict[Path, str] = {}
        for arg in config.args:
            try:
                root = (config.invocation_params.dir / arg.split("::")[0]).resolve()
            except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python < 3.13); pytest reports the arg
                continue
            files = [root] if root.name == SCENARIO_FILE else _walk_scenario_files(root, skip)
            names.update((f, n) for f in files if (n := scenario_name(f)) is not None)
        config.stash[_NAMES_KEY] = names
    return config.stash[_NAMES_KEY]


def _walk_scenario_files(root: Path, skip: list[str]) -> list[Path]:
    """scenario.yaml files under root, not descending where pytest would not (norecursedirs)."""
    out: list[Path] = []
    for d, subdirs, files in os.walk(root):
        subdirs[:] = [s for s in subdirs if not any(fnmatch(s, pattern) for pattern in skip)]
        if SCENARIO_FILE in files:
            out.append(Path(d) / SCENARIO_FILE)
    return out


class ScenarioFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        """One item; or a collection error listing every problem (the loader's, and a name used twice)."""
        loaded = load_or_problems(self.path.parent)
        named = _scenario_files(self.config)
        shared = [p for p in duplicate_names([(n, f) for f, n in named.items()]) if p.file == self.path.resolve()]
        problems = (loaded if isinstance(loaded, list) else []) + shared
        if problems or isinstance(loaded, list):
            raise ScenarioError(problems)
        item = ScenarioItem.from_parent(self, name=loaded.name, scenario=loaded)
        item.add_marker(pytest.mark.rehearsal)
        item.add_marker(pytest.mark.e2e)
        yield item

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, ScenarioError):  # the problems, not a traceback through the loader
            return f"invalid scenario ({len(excinfo.value.problems)} problems):\n{excinfo.value}"
        return super().repr_failure(excinfo)  # Collector.repr_failure takes no style


class ScenarioItem(pytest.Item):
    def __init__(self, *, scenario: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario

    def runtest(self) -> None:
        journal = _session(self.config).rehearse(self.scenario)
        from harness.pipeline import unmet_expectations  # noqa: PLC0415

        self.user_properties.append(("verdict", journal.verdict))
        problems = unmet_expectations(journal)
        if problems:
            raise ExpectationNotMet(journal, problems)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ExpectationNotMet):
            j = excinfo.value.journal
            lines = [f"scenario {j.scenario}: {'; '.join(excinfo.value.problems)}"]
            lines += [f"  - {r}" for r in j.reasons[:15]]
            lines += [f"  risk {r.kind}: {r.message}" for r in j.risks]
            failed = [s for s in j.runbook_steps if s.exit_code != 0]
            for s in failed[:1]:
                lines.append(f"  runbook step {s.index} `{s.command}` exit {s.exit_code}: {s.output_tail[-300:]}")
            return "\n".join(lines)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"rehearsal: {self.name} (expect {self.scenario.expect.value})"
