"""The pytest plugin (auto-loaded through the pytest11 entry point), exercised with pytester.

Nothing here runs a rehearsal: only options, markers, fixtures and collection.
"""

from __future__ import annotations

import json
import re
import shutil
from importlib.metadata import entry_points
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest_plugins = ["pytester"]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _this_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    """Subprocesses load the plugin of this checkout, not of whichever copy is installed."""
    monkeypatch.setenv("PYTHONPATH", str(REPO))


def _stage_example(pytester: pytest.Pytester, kit: SimpleNamespace, name: str = "bad-image") -> Path:
    """Copy an example scenario into pytester.path/scenarios/<name>, with stand-ins for ../../demo files."""
    dest = pytester.path / "scenarios" / name
    shutil.copytree(kit.EXAMPLES / name, dest)
    demo = pytester.path / "demo"
    (demo / "k8s").mkdir(parents=True, exist_ok=True)
    (demo / "migrations").mkdir(exist_ok=True)
    (demo / "k8s" / "app.yaml").write_text("apiVersion: v1\nkind: List\nitems: []\n")
    (demo / "k8s" / "app-promoted.yaml").write_text("apiVersion: v1\nkind: List\nitems: []\n")
    (demo / "seed.sql").write_text("select 1;\n")
    return dest


def test_plugin_is_registered_through_the_entry_point() -> None:
    eps = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert eps.get("rollback_rehearsal") == "harness.pytest_plugin"


def test_options_in_help(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--help")
    assert result.ret == 0
    out = result.stdout.str()
    for opt in ("--keep-cluster", "--reuse-cluster", "--report-dir", "--cluster-name", "--database-dsn",
                "--kubeconfig", "--kind-image", "--database-cluster-host"):
        assert re.search(rf"^\s+{re.escape(opt)}\b", out, re.MULTILINE), f"{opt} missing from --help"
    assert out.count("--cluster-name") == 1  # one definition, not pytest-kind's and ours


def test_markers_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--markers")
    assert result.ret == 0
    result.stdout.re_match_lines([r"@pytest\.mark\.rehearsal: .+", r"@pytest\.mark\.e2e: .+"], consecutive=False)


def test_collect_only_yields_one_item_named_after_the_scenario(pytester: pytest.Pytester, kit: SimpleNamespace) -> None:
    _stage_example(pytester, kit, "bad-image")
    _stage_example(pytester, kit, "promotion")
    result = pytester.runpytest_subprocess("--collect-only", "-q", "scenarios/bad-image")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["scenarios/bad-image/scenario.yaml::bad-image", "1 test collected*"])

    items, _ = pytester.inline_genitems("scenarios")
    assert [i.name for i in items] == ["bad-image", "promotion"]
    item = items[0]
    assert {m.name for m in item.iter_markers()} >= {"rehearsal", "e2e"}
    assert item.scenario.expect.value == "READY"
    assert "expect READY" in item.reportinfo()[2]


def test_marker_selection(pytester: pytest.Pytester, kit: SimpleNamespace) -> None:
    _stage_example(pytester, kit)
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    result = pytester.runpytest_subprocess("--collect-only", "-q", "-m", "not rehearsal")
    result.stdout.fnmatch_lines(["test_plain.py::test_plain", "1/2 tests collected (1 deselected)*"])


def test_scenario_name_from_the_file_not_the_directory(pytester: pytest.Pytester, kit: SimpleNamespace) -> None:
    kit.write_scenario(pytester.path, "some-dir", kit.minimal_doc(name="named-in-yaml"))
    result = pytester.runpytest_subprocess("--collect-only", "-q")
    result.stdout.fnmatch_lines(["some-dir/scenario.yaml::named-in-yaml"])


def test_invalid_scenario_is_a_collection_error_with_every_problem(pytester: pytest.Pytester, kit: SimpleNamespace) -> None:
    kit.write_scenario(pytester.path, "ok", kit.minimal_doc())
    kit.write_scenario(pytester.path, "broken", kit.BROKEN_DOC)
    result = pytester.runpytest_subprocess("--collect-only", "-q")
    assert result.ret == pytest.ExitCode.INTERRUPTED  # collection errors stop the session
    out = result.stdout.str()
    assert "ERROR collecting broken/scenario.yaml" in out
    assert "ok/scenario.yaml::ok" in out and "1 error" in out  # the valid one is still collected
    for field in kit.BROKEN_EXPECTED:
        # each problem: the file, the field and a fix on the next line
        pattern = rf"broken/scenario\.yaml: {re.escape(field)}: .+\n(E)?\s+fix: \S"
        assert re.search(pattern, out), f"{field} not reported with file and fix:\n{out}"


def test_exactly_one_kind_cluster_fixture_from_the_plugin(pytester: pytest.Pytester) -> None:
    assert any(ep.name == "pytest-kind" for ep in entry_points(group="pytest11")), \
        "pytest-kind is not installed: this test would prove nothing"
    pytester.makepyfile(test_fx="""
        def test_fx(request):
            pm = request.config.pluginmanager
            assert pm.get_plugin("pytest-kind") is None
            defs = request._fixturemanager.getfixturedefs("kind_cluster", request.node)
            assert [d.func.__module__ for d in defs] == ["harness.pytest_plugin"]
    """)
    result = pytester.runpytest_subprocess("-q", "test_fx.py")
    result.assert_outcomes(passed=1)

    result = pytester.runpytest_subprocess("--fixtures", "-v")
    out = result.stdout.str()
    defs = re.findall(r"^kind_cluster \[session scope\] -- (\S+)", out, re.MULTILINE)
    assert len(defs) == 1, out
    assert re.search(r"harness/pytest_plugin\.py:\d+$", defs[0].replace("\\", "/")), defs[0]
    assert "pytest_kind" not in out


def test_rehearsal_and_postgres_fixtures_are_offered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--fixtures")
    out = result.stdout.str()
    for name in ("rehearsal_session", "postgres", "rehearsal"):
        assert re.search(rf"^{name} ", out, re.MULTILINE), f"fixture {name} missing"


# ── the session fixture, with open_session replaced by a recorder ───────────
FAKE_SESSION_CONFTEST = '''
import json
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import harness.session
from harness.journal import Journal

LOG = Path(__file__).parent / "session.log"


def log(line):
    with LOG.open("a") as f:
        f.write(line + "\\n")


class FakeSession:
    def rehearse(self, scenario):
        log(f"rehearse {scenario.name}")
        if scenario.name == "interrupted":
            raise KeyboardInterrupt
        return Journal(scenario=scenario.name, expect=scenario.expect.value, verdict=scenario.expect.value)

    def rehearse_all(self, scenarios, jobs, errors):
        log(f"batch of {jobs}: " + ",".join(s.name for s in scenarios))
        out = []
        for s in scenarios:
            if s.name.startswith("mismatch"):
                errors[s.name] = RuntimeError(f"{s.name} asks for another Postgres")
            else:
                out.append(Journal(scenario=s.name, expect=s.expect.value,
                                   verdict="NOT_READY" if s.name.startswith("wrong") else s.expect.value))
        return out


@contextmanager
def fake_open_session(options):
    log("open " + json.dumps(asdict(options), default=str, sort_keys=True))
    try:
        yield FakeSession()
    finally:
        log("close")


harness.session.open_session = fake_open_session
'''


def _session_log(pytester: pytest.Pytester) -> list[str]:
    path = pytester.path / "session.log"
    return path.read_text().splitlines() if path.exists() else []


def test_one_session_serves_every_scenario_and_closes_at_the_end(pytester: pytest.Pytester, kit: SimpleNamespace) -> None:
    pytester.makeconftest(FAKE_SESSION_CONFTEST)
    kit.write_scenario(pytester.path, "first", kit.minimal_doc())
    kit.write_scenario(pytester.path, "second", kit.minimal_doc())
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--cluster-name", "c9",
                                           "--database-dsn", "postgresql://u:p@db:5432/postgres",
                                           "--database-cluster-host", "pods.example", "--kind-image", "img:1")
    result.assert_outcomes(passed=2)
    log = _session_log(pytester)
    assert [line.split(" ")[0] for line in log] == ["open", "rehearse", "rehearse", "close"]
    assert log[1:3] == ["rehearse first", "rehearse second"]
    opened = json.loads(log[0].removeprefix("open "))
    assert (opened["cluster_name"], opened["database_dsn"], opened["database_cluster_host"], opened["node_image"]) \
        == ("c9", "postgresql://u:p@db:5432/postgres", "pods.example", "img:1")


def test_with_jobs_the_first_item_rehearses_the_selected_scenarios_and_each_reports_its_own(
        pytester: pytest.Pytester, kit: SimpleNamespace) -> None:
    pytester.makeconftest(FAKE_SESSION_CONFTEST)
    for name in ("first", "mismatch", "skipped", "wrong"):
        kit.write_scenario(pytester.path, name, kit.minimal_doc())
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--jobs", "3", "-k", "not skipped", "-rA")
    result.assert_outcomes(passed=1, failed=2, deselected=1)
    assert _session_log(pytester)[1:] == ["batch of 3: first,mismatch,wrong", "close"]  # once, as selected
    result.stdout.fnmatch_lines(["*mismatch asks for another Postgres*",
                                 "*scenario wrong: verdict NOT_READY, expected READY*"])


def test_scenario_items_request_the_session_fixture(pytester: pytest.Pytester, kit: SimpleNamespace) -> None:
    pytester.makeconftest(FAKE_SESSION_CONFTEST)
    kit.write_scenario(pytester.path, "first", kit.minimal_doc())
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--setup-plan")
    result.stdout.fnmatch_lines(["*SETUP    S rehearsal_session*", "*first/scenario.yaml::first (fixtures used: "
                                 "pytestconfig, rehearsal_session, request)*", "*TEARDOWN S rehearsal_session*"])


def test_no_session_is_opened_without_a_test_that_needs_it(pytester: pytest.Pytester, kit: SimpleNamespace) -> None:
    pytester.makeconftest(FAKE_SESSION_CONFTEST)
    kit.write_scenario(pytester.path, "first", kit.minimal_doc())
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "--collect-only").assert_outcomes()
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "test_plain.py").assert_outcomes(passed=1)
    assert _session_log(pytester) == []


def test_the_session_is_closed_after_ctrl_c(pytester: pytest.Pytester, kit: SimpleNamespace) -> None:
    pytester.makeconftest(FAKE_SESSION_CONFTEST)
    kit.write_scenario(pytester.path, "interrupted", kit.minimal_doc())
    kit.write_scenario(pytester.path, "never", kit.minimal_doc())
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert _session_log(pytester) == [_session_log(pytester)[0], "rehearse interrupted", "close"]


def test_user_tests_get_the_providers_from_the_session(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(FAKE_SESSION_CONFTEST.replace(
        "class FakeSession:", "class FakeSession:\n    infra = type('I', (), {'cluster': 'K', 'database': 'P'})"))
    pytester.makepyfile(test_fx="""
        def test_fx(kind_cluster, postgres, rehearsal_session, rehearsal):
            assert (kind_cluster, postgres) == ("K", "P")
            assert callable(rehearsal)
    """)
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
    assert [line.split(" ")[0] for line in _session_log(pytester)] == ["open", "close"]


def test_pytest_refuses_a_bad_cluster_name_at_configure(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--cluster-name", "../escape")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "is not a kind cluster name" in result.stderr.str()


def test_an_interrupted_session_ends_with_the_teardown_message_and_130(pytester: pytest.Pytester) -> None:
    """A signal stops the session: its teardown's outcome (harness.teardown.Interrupted) becomes pytest's exit
    message and status 130, not a traceback of the session fixture."""
    pytester.makeconftest('''
import contextlib
import harness.session
from harness.teardown import Interrupted

@contextlib.contextmanager
def fake_open_session(options):
    yield object()
    raise Interrupted(15, received=3, steps=5)

harness.session.open_session = fake_open_session
''')
    pytester.makepyfile(test_uses="def test_uses(rehearsal_session):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == 130
    result.stdout.fnmatch_lines(["*interrupted: resources cleaned up (SIGTERM, 2 more received during teardown; "
                                 "5 cleanup step(s), none failed)*"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


# ── ladder items (`--ladder`), with run_ladder replaced by a recorder ────────
FAKE_LADDER = '''
import harness.ladder.run
from harness.journal import Difference
from harness.ladder.climb import LadderResult, LadderStep


def fake_run_ladder(scenario):
    log(f"ladder {scenario.name}")
    ok = scenario.name != "leaky"
    left = [] if ok else [Difference(area="schema", object="column orders.discount_cents",
                                      message="column orders.discount_cents is still present (added after baseline)")]
    first = LadderStep(index=1, migration="version 1 (golang-migrate)", up_ok=True, down_ok=True, schema_restored=True,
                       version_restored=True, up_again_ok=True)
    second = LadderStep(index=2, migration="version 2 (golang-migrate)", up_ok=True, down_ok=True, schema_restored=ok,
                        version_restored=True, up_again_ok=True if ok else None, leftovers=left)
    return LadderResult(scenario=scenario.name, runs_in="job", steps=[first, second], ended="done")


harness.ladder.run.run_ladder = fake_run_ladder
'''
LADDER_MIGRATIONS = {"up": "migrate up", "down": "migrate down 1", "up_one": "migrate up 1"}


def _ladder_scenarios(pytester: pytest.Pytester, kit: SimpleNamespace, fakes: bool = True) -> None:
    """Three scenarios; with `fakes`, a conftest that replaces the session and the ladder (in its process:
    only for a pytest run in a subprocess)."""
    if fakes:
        pytester.makeconftest(FAKE_SESSION_CONFTEST + FAKE_LADDER)
    kit.write_scenario(pytester.path, "tight", kit.minimal_doc(migrations=LADDER_MIGRATIONS))
    kit.write_scenario(pytester.path, "leaky", kit.minimal_doc(migrations=LADDER_MIGRATIONS))
    kit.write_scenario(pytester.path, "no-up-one", kit.minimal_doc(migrations={"up": "migrate up"}))


def test_ladder_option_and_marker(pytester: pytest.Pytester) -> None:
    help_text = pytester.runpytest_subprocess("--help").stdout.str()
    assert re.search(r"^\s+--ladder\b", help_text, re.MULTILINE)
    pytester.runpytest_subprocess("--markers").stdout.re_match_lines([r"@pytest\.mark\.ladder: .+"], consecutive=False)


def test_ladder_items_only_with_the_option_and_only_for_scenarios_with_up_one(
        pytester: pytest.Pytester, kit: SimpleNamespace) -> None:
    _ladder_scenarios(pytester, kit, fakes=False)  # collection in this process: nothing replaced
    items, _ = pytester.inline_genitems("-p", "no:cacheprovider")
    assert sorted(i.nodeid for i in items) == ["leaky/scenario.yaml::leaky", "no-up-one/scenario.yaml::no-up-one",
                                                "tight/scenario.yaml::tight"]
    items, _ = pytester.inline_genitems("-p", "no:cacheprovider", "--ladder")
    ladders = [i for i in items if i.name == "ladder"]
    assert sorted(i.nodeid for i in ladders) == ["leaky/scenario.yaml::ladder", "tight/scenario.yaml::ladder"]
    assert all({m.name for m in i.iter_markers()} == {"ladder", "e2e"} for i in ladders)


def test_a_ladder_item_fails_naming_the_migration_and_what_its_down_leaves(
        pytester: pytest.Pytester, kit: SimpleNamespace) -> None:
    _ladder_scenarios(pytester, kit)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--ladder", "-m", "ladder")
    result.assert_outcomes(passed=1, failed=1, deselected=3)
    result.stdout.fnmatch_lines(["*scenario leaky: ladder exit 1*", "*step 1 version 1 (golang-migrate): round-trips*",
                                 "*version 2 (golang-migrate) does not round-trip*",
                                 "*- column orders.discount_cents is still present (added after baseline)*"])
    assert sorted(_session_log(pytester)) == ["ladder leaky", "ladder tight"]  # no rehearsal session opened


# ── a signal that a test swallowed still ends the session ───────────────────
SWALLOWED_SIGNAL_CONFTEST = '''
from pathlib import Path
from types import SimpleNamespace

from harness.providers import factory

LOG = Path(__file__).parent / "session.log"


def build(options, stack, owner, run=None):
    stack.callback(lambda: LOG.open("a").write("torn down\\n"))
    return SimpleNamespace(cluster=SimpleNamespace(name="fake"), registry=None, run_id="r1", owner=owner)


factory.build = build
'''

SWALLOWED_SIGNAL_TESTS = '''
import os
import signal
import time

import pytest


def test_swallows_the_signal(rehearsal_session):
    with pytest.raises(KeyboardInterrupt):  # as an e2e test of Ctrl-C does: it catches what a signal raises
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)


def test_never_runs(rehearsal_session):
    open("ran", "w").close()
'''


def test_a_signal_a_test_caught_still_stops_the_session_and_tears_down(pytester: pytest.Pytester) -> None:
    """The session's signal handler is in teardown mode after its first signal (later ones are only
    recorded), so a session that went on after a test caught the KeyboardInterrupt could only be SIGKILLed."""
    pytester.makeconftest(SWALLOWED_SIGNAL_CONFTEST)
    pytester.makepyfile(test_signal=SWALLOWED_SIGNAL_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--cluster-name", "rr-signal-test",
                                           "--report-dir", str(pytester.path / "reports"))
    assert result.ret == 130, result.stdout.str()
    result.stdout.fnmatch_lines(["*SIGTERM received: the test session stops here*"])
    assert not (pytester.path / "ran").exists()
    assert (pytester.path / "session.log").read_text().splitlines() == ["torn down"]


def test_sigterm_stops_pytest_like_ctrl_c_so_finalizers_run(pytester: pytest.Pytester) -> None:
    """Without a harness session open, Python's default SIGTERM would end pytest before any finalizer
    (a test's Postgres container stays); the plugin turns it into pytest's graceful stop."""
    pytester.makepyfile(test_term='''
import os, signal, time
import pytest

@pytest.fixture
def resource():
    yield
    open("finalized", "w").close()

def test_killed(resource):
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)

def test_after():
    open("ran", "w").close()
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == 2, result.stdout.str()  # pytest's "interrupted"
    assert (pytester.path / "finalized").exists() and not (pytester.path / "ran").exists()
