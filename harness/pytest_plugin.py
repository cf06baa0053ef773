"""pytest plugin (pytest11 entry point `rollback_rehearsal`).

- `pytest scenarios/` collects each scenario.yaml as one test item; it passes
  when the rehearsal's verdict equals the scenario's `expect`.
- Fixtures for users' own tests: `kind_cluster` and `postgres` (session),
  `rehearsal` (function: rehearse a scenario path, get its journal).
- One cluster and one Postgres serve the whole test session; each scenario
  gets its own namespace and database.
- `pytest -n N` (pytest-xdist): the controller opens the one cluster and one
  Postgres and hands them to its workers; the workers' scenarios hold a
  cross-process lock (faults that freeze shared infrastructure run alone); the
  controller writes the run-level reports once at the end (harness/distributed.py).
- `--shard K/N` keeps the scenario items of shard K (harness/shard.py, the
  same split as `rehearse run --shard`) and deselects the others; other tests
  are not sharded.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from fnmatch import fnmatch
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _pytest.fixtures import TopRequest

from harness.journal import Journal
from harness.judge import expectation_problems
from harness.options import OptionError, SessionOptions, add_pytest_options, session_options_from_pytest
from harness.scenario import ScenarioError, duplicate_names, load_or_problems, load_scenario, scenario_name
from harness.scenario.loader import SCENARIO_FILE

if TYPE_CHECKING:
    from harness.distributed import Controller, Handoff
    from harness.providers.cluster import ClusterProvider
    from harness.providers.database import DatabaseProvider
    from harness.session import Session
    from harness.shard import ShardPlan

_NAMES_KEY = pytest.StashKey[dict[Path, str]]()
_PLAN_KEY = pytest.StashKey["ShardPlan"]()
_OPENED_KEY = pytest.StashKey[bool]()
XDIST_PLUGIN = "rollback_rehearsal_xdist"
XDIST_INFRA_OPTION = "--xdist-infra"

PYTEST_KIND_PLUGIN = "pytest-kind"
SESSION_FIXTURE = "rehearsal_session"
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
    _kind_options_present = plugin is not None  # per configuration: pytester may make several in one process
    if plugin is not None:
        pluginmanager.unregister(plugin)
    else:
        pluginmanager.set_blocked(PYTEST_KIND_PLUGIN)


LADDER_OPTION = "--ladder"


def pytest_addoption(parser: pytest.Parser) -> None:
    # pytest-kind's own definitions of its options (same names and meaning) stand when it came first.
    group = parser.getgroup("rollback-rehearsal")
    add_pytest_options(group, _kind_options_present)
    # Not a session option (harness/options.py): the ladder uses no cluster and no session, and
    # `rehearse run` has no ladder; its CLI counterpart is the `rehearse ladder` command.
    group.addoption(LADDER_OPTION, action="store_true", default=False,
                    help="Also collect a `ladder` item for each scenario with migrations.up_one: every migration "
                         "applied, undone and applied again on a scratch Postgres, no cluster (`-m ladder` for "
                         "those alone).")
    # Not a session option either: it says where the session opens, not what it is.
    group.addoption(XDIST_INFRA_OPTION, action="store_true", default=False,
                    help="With pytest -n: open the shared cluster and Postgres in the xdist controller even when "
                         "no scenario.yaml is among the arguments (tests that use the kind_cluster, postgres or "
                         "rehearsal fixtures).")


_SIGTERM_KEY = pytest.StashKey[Any]()


def _sigterm_as_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_unconfigure(config: pytest.Config) -> None:
    previous = config.stash.get(_SIGTERM_KEY, None)
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)


def pytest_configure(config: pytest.Config) -> None:
    # SIGTERM (CI cancelling a job, a supervisor) stops pytest as Ctrl-C does, so every fixture's finalizer
    # runs (test containers, clusters): Python's default would end the process on the spot. The harness
    # session installs its own handler for the time it is open (harness/teardown.py) and restores this one.
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL and threading.current_thread() is threading.main_thread():
        config.stash[_SIGTERM_KEY] = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    try:  # bad session options are a usage error before anything is collected, as under `rehearse run`
        options = session_options_from_pytest(config)
    except OptionError as exc:
        raise pytest.UsageError(str(exc)) from None
    if _xdist_controller(config):
        problems = [problem for applies, problem in _XDIST_CONFLICTS if applies(options)]
        if problems:
            raise pytest.UsageError("\n".join(problems))
        config.pluginmanager.register(XdistController(config), XDIST_PLUGIN)
    config.addinivalue_line("markers", "rehearsal: a rollback rehearsal collected from a scenario.yaml")
    config.addinivalue_line("markers", "e2e: needs the real environment built by `make env` (Docker, kind node image, Postgres, registry)")
    config.addinivalue_line("markers", "ladder: every migration of a scenario round-tripped on a scratch Postgres "
                                       "(`--ladder`; no cluster)")


# ── fixtures ────────────────────────────────────────────────────────────
@pytest.fixture(scope="session")
def rehearsal_session(pytestconfig: pytest.Config) -> Iterator[Session]:
    """The session's shared infrastructure (cluster, Postgres, lazily a registry).

    Started by the first test that needs it; torn down when the test session
    ends, also on Ctrl-C (pytest tears session fixtures down at session finish)."""
    # Imported here, not at the top: every pytest run loads this plugin, most never start a session.
    from harness import distributed  # noqa: PLC0415
    from harness.session import open_session  # noqa: PLC0415
    from harness.teardown import Interrupted  # noqa: PLC0415

    pytestconfig.stash[_OPENED_KEY] = True
    plan = pytestconfig.stash.get(_PLAN_KEY, None)
    handoff = _worker_handoff(pytestconfig)  # None outside a pytest-xdist worker
    attach = {} if handoff is None else {"build": distributed.attach_build(handoff), "part_of": handoff.run_id}
    try:
        with open_session(session_options_from_pytest(pytestconfig), **attach) as session:
            if plan is not None:
                session.shard = plan.record()
            if handoff is not None:  # the other workers' scenarios run beside this worker's
                session.infra_lock = distributed.FileInfraLock(Path(handoff.lock_dir))
            pytestconfig.stash[_SESSION_KEY] = session
            yield session
    except Interrupted as exc:  # the teardown ran; say what it did, as `rehearse run` does, not a traceback
        pytest.exit(exc.message(), returncode=exc.exit_code)


_SESSION_KEY = pytest.StashKey["Session"]()


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """A signal the session's handler took (SIGINT, SIGTERM, SIGHUP) ends the test session after this test,
    whatever caught the KeyboardInterrupt it raised (a test's own `pytest.raises(KeyboardInterrupt)`, a
    rehearsal's cleanup). Without this, the session would go on with its handler in teardown mode, where
    every later signal is only recorded: nothing but SIGKILL would stop it."""
    session = item.config.stash.get(_SESSION_KEY, None)
    teardown = getattr(getattr(session, "stack", None), "teardown", None)  # a stand-in session has none
    if teardown is None or not teardown.received:
        return
    from harness.teardown import signal_name  # noqa: PLC0415

    pytest.exit(f"{signal_name(teardown.received[0])} received: the test session stops here "
                "and tears down the shared cluster and Postgres", returncode=130)


# ── pytest -n N (pytest-xdist) ───────────────────────────────────────────────
def _xdist_controller(config: pytest.Config) -> bool:
    """This process is pytest-xdist's controller: it starts workers and runs no test itself."""
    return (not hasattr(config, "workerinput") and config.getoption("dist", "no") != "no"
            and bool(config.getoption("tx", None)) and not config.getoption("collectonly"))


# What `pytest -n` cannot be combined with: (applies, the problem and its fix).
_XDIST_CONFLICTS: tuple[tuple[Callable[[SessionOptions], bool], str], ...] = (
    (lambda o: o.jobs > 1, "--jobs and pytest -n both rehearse scenarios side by side. Fix: pass one of them "
                           "(-n N: one worker process per scenario in flight; --jobs N: threads in one process)"),
    (lambda o: o.shard is not None, "--shard is not supported with pytest -n: each worker would split the "
                                    "scenarios on its own. Fix: shard without -n, or use -n without --shard"),
)


def _worker_handoff(config: pytest.Config) -> Handoff | None:
    """In a pytest-xdist worker: what its controller opened (harness/distributed.py); None elsewhere."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None:
        return None
    from harness.distributed import WORKERINPUT_KEY, Handoff  # noqa: PLC0415

    data = workerinput.get(WORKERINPUT_KEY)
    if data is None:
        pytest.fail("under pytest -n the xdist controller opens the shared cluster and Postgres, and it does so "
                    "only when a scenario.yaml is among the arguments. Fix: pass "
                    f"{XDIST_INFRA_OPTION}, or run these tests without -n", pytrace=False)
    return Handoff.from_input(data)


class XdistController:
    """Registered in pytest-xdist's controller only: opens the shared infrastructure before xdist starts
    its workers, hands it to each worker, and closes it once they are all gone."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.controller: Controller | None = None

    def _say(self, line: str) -> None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(line)

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """Before xdist's own (trylast), which starts the workers and so asks for their input."""
        if not _scenario_files(self.config) and not self.config.getoption(XDIST_INFRA_OPTION):
            return  # nothing here needs a cluster (`pytest -n 4 tests/unit`)
        from harness.distributed import Controller  # noqa: PLC0415
        from harness.session import open_session  # noqa: PLC0415
        from harness.teardown import Interrupted  # noqa: PLC0415

        controller = Controller(session_options_from_pytest(self.config))
        try:
            handoff = controller.open(open_session)
        except Interrupted as exc:  # its teardown ran
            pytest.exit(exc.message(), returncode=exc.exit_code)
        except Exception as exc:  # noqa: BLE001 (kind or Postgres did not start: say why, not an INTERNALERROR)
            pytest.exit(f"the shared cluster and Postgres did not start: {type(exc).__name__}: {exc}",
                        returncode=pytest.ExitCode.INTERNAL_ERROR)
        self.controller = controller
        self._say(f"pytest-xdist: every worker rehearses on this run's cluster and Postgres (run {handoff.run_id})")

    def pytest_configure_node(self, node: Any) -> None:
        """xdist's hook for each worker it starts: what the worker attaches to."""
        if self.controller is not None and self.controller.handoff is not None:
            from harness.distributed import WORKERINPUT_KEY  # noqa: PLC0415

            node.workerinput[WORKERINPUT_KEY] = self.controller.handoff.to_input()

    @pytest.hookimpl(wrapper=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> Iterator[None]:
        result = yield  # xdist's own shut the workers down: nothing of theirs runs any more
        self._close(session)
        return result

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self.controller is not None:  # the session never finished (an error before it could)
            self.controller.close(lambda journals, run_id: None)

    def _close(self, session: pytest.Session) -> None:
        if self.controller is None:
            return
        from harness.report import write_run_reports  # noqa: PLC0415
        from harness.teardown import Interrupted  # noqa: PLC0415

        controller, self.controller = self.controller, None
        report_dir = controller.options.report_dir

        def write(journals: list[Journal], run_id: str) -> None:
            reports = write_run_reports(journals, report_dir, run_id=run_id)
            self._say(f"{len(journals)} scenario(s) of run {run_id}: {reports.junit}, {reports.summary}")

        try:
            controller.close(write)
        except Interrupted as exc:  # the teardown ran; say what it did, as `rehearse run` does
            self._say(exc.message())
            session.exitstatus = exc.exit_code
        except Exception as exc:  # noqa: BLE001 (TeardownIncomplete, or reports not written: said, and a failure)
            self._say(f"{type(exc).__name__}: {exc}")
            if session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def kind_cluster(rehearsal_session: Session) -> ClusterProvider:
    """The session's kind cluster provider (`.kubeconfig`, `.load_image()`, `.name`)."""
    return rehearsal_session.infra.cluster


@pytest.fixture(scope="session")
def postgres(rehearsal_session: Session) -> DatabaseProvider:
    """The session's Postgres provider (`.admin_dsn`, `.create_database(name)`)."""
    return rehearsal_session.infra.database


@pytest.fixture
def rehearsal(rehearsal_session: Session) -> Iterator[Callable[[str | Path], Journal]]:
    """Rehearse a scenario directory on the shared infrastructure; returns the journal."""

    def run(path: str | Path) -> Journal:
        return rehearsal_session.rehearse(load_scenario(Path(path)))

    yield run


# ── scenario collection ────────────────────────────────────────────────
@pytest.hookimpl(trylast=True)  # after -k / -m: the split is of the scenarios selected
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """--shard K/N: keep this shard's scenario items (in their order), deselect the other scenarios."""
    options = session_options_from_pytest(config)
    if options.shard is None:
        return
    from harness.report.history import HISTORY_FILE  # noqa: PLC0415 (only sharded runs load the writers)
    from harness.shard import plan  # noqa: PLC0415

    scenarios = [i.scenario for i in items if isinstance(i, ScenarioItem)]
    config.stash[_PLAN_KEY] = planned = plan(scenarios, options.shard, options.report_dir / HISTORY_FILE)
    mine = set(planned.scenarios)
    deselected = [i for i in items if isinstance(i, ScenarioItem) and i.scenario.name not in mine]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [i for i in items if i not in deselected]
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(planned.describe())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A shard without scenarios (and no session opened): an empty report set, and exit 0, as `rehearse run`."""
    plan = session.config.stash.get(_PLAN_KEY, None)
    if plan is None or plan.scenarios or session.config.stash.get(_OPENED_KEY, False) \
            or session.config.option.collectonly:
        return
    from harness import runstate  # noqa: PLC0415
    from harness.report import write_run_reports  # noqa: PLC0415

    options = session_options_from_pytest(session.config)
    write_run_reports([], options.report_dir, run_id=runstate.new_owner(options.cluster_name),
                      shard=plan.record(), notes=[plan.empty_note()])
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(plan.empty_note())
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.exitstatus = pytest.ExitCode.OK


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
        if self.config.getoption("ladder") and loaded.migrations is not None and loaded.migrations.up_one:
            ladder = LadderItem.from_parent(self, name="ladder", scenario=loaded)
            ladder.add_marker(pytest.mark.ladder)
            ladder.add_marker(pytest.mark.e2e)
            yield ladder

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, ScenarioError):  # the problems, not a traceback through the loader
            return f"invalid scenario ({len(excinfo.value.problems)} problems):\n{excinfo.value}"
        return super().repr_failure(excinfo)  # Collector.repr_failure takes no style


_BATCH_KEY = pytest.StashKey[dict[str, "Journal | Exception"]]()


def _batch_outcome(item: ScenarioItem, session: Session, jobs: int) -> Journal:
    """With --jobs N: the first scenario item to run rehearses itself and every scenario item after it
    (as selected: -k, --lf and deselection already applied) N at a time on the session; each item then
    reports its own journal, or raises its own error. pytest runs items one after another, so this is
    where the side-by-side work can happen without a second process or a second cluster."""
    outcomes = item.config.stash.setdefault(_BATCH_KEY, {})
    name = item.scenario.name
    if name not in outcomes:
        pending = [i.scenario for i in item.session.items[item.session.items.index(item):]
                   if isinstance(i, ScenarioItem) and i.scenario.name not in outcomes]
        errors: dict[str, Exception] = {}
        journals = session.rehearse_all(pending, jobs, errors=errors)
        outcomes.update({j.scenario: j for j in journals})
        outcomes.update(errors)
    outcome = outcomes.pop(name, None)
    if outcome is None:  # only a bug gets here: every scenario of the batch has a journal or an error
        raise RuntimeError(f"scenario {name} was not rehearsed in its batch")
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


class ScenarioItem(pytest.Item):
    """One scenario.yaml. It uses fixtures the way pytest's own DoctestItem does: it requests
    `rehearsal_session` (plus any autouse fixture), which pytest sets up before `runtest`."""

    def __init__(self, *, scenario: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario
        self.obj = None  # no test function: the fixture request reads it
        self.add_marker(pytest.mark.usefixtures(SESSION_FIXTURE))
        self._fixtureinfo = self.session._fixturemanager.getfixtureinfo(node=self, func=None, cls=None)
        self.fixturenames = self._fixtureinfo.names_closure
        self.funcargs: dict[str, object] = {}
        self._request = TopRequest(self, _ispytest=True)  # type: ignore[arg-type]

    def setup(self) -> None:
        self._request._fillfixtures()

    def runtest(self) -> None:
        session: Session = self.funcargs[SESSION_FIXTURE]  # type: ignore[assignment]
        jobs = session_options_from_pytest(self.config).jobs
        if jobs <= 1:
            journal = session.rehearse(self.scenario)  # judged by the session
        else:
            journal = _batch_outcome(self, session, jobs)
        self.user_properties.append(("verdict", journal.verdict))
        problems = expectation_problems(journal)
        if problems:
            raise ExpectationNotMet(journal, problems)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ExpectationNotMet):
            j = excinfo.value.journal
            lines = [f"scenario {j.scenario}: {'; '.join(excinfo.value.problems)}"]
            lines += [f"  - {r}" for r in j.reasons[:15]]
            lines += [f"  risk {r.kind}: {r.message}" for r in j.risks]
            failed = [s for s in j.runbook_steps if s.exit_code != 0 and s.skipped is None]
            for s in failed[:1]:
                lines.append(f"  runbook step {s.index} `{s.command}` exit {s.exit_code}: {s.output_tail[-300:]}")
            return "\n".join(lines)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"rehearsal: {self.name} (expect {self.scenario.expect.value})"


class LadderFailed(Exception):
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        super().__init__("\n".join(lines))


class LadderItem(pytest.Item):
    """`rehearse ladder` for one scenario: passes when every migration round-trips. Needs Docker and the
    Postgres image, no cluster: it requests no session fixture."""

    def __init__(self, *, scenario: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario

    def runtest(self) -> None:
        # Imported here: plain pytest runs never load the ladder's containers and snapshot code.
        from harness.ladder import verdict_lines  # noqa: PLC0415
        from harness.ladder import run as ladder_run  # noqa: PLC0415

        try:
            result = ladder_run.run_ladder(self.scenario)
        except ladder_run.LadderInputError as exc:
            raise LadderFailed([f"cannot run the ladder ({len(exc.problems)} problems):", str(exc)]) from None
        failed = result.failed_step
        self.user_properties.append(("ladder", failed.migration if failed else f"{len(result.steps)} round-trip"))
        if result.exit_code != 0:
            steps = [f"  step {s.index} {s.migration}: " + ("round-trips" if s.round_trips else "does NOT round-trip")
                     for s in result.steps]
            raise LadderFailed([f"scenario {self.scenario.name}: ladder exit {result.exit_code}", *steps,
                                *verdict_lines(result)])

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, LadderFailed):
            return "\n".join(excinfo.value.lines)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"ladder: {self.scenario.name} (every migration up, down, up again)"
