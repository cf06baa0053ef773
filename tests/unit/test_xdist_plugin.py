"""`pytest -n N` (pytest-xdist) through the plugin, exercised with pytester: real xdist controller and
worker processes, a fake session (no cluster). What is real: the controller/worker split, the handoff
in workerinput, the workers' attach_build, the report.json files and the run-level reports written
once by the controller from them."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest_plugins = ["pytester"]
REPO = Path(__file__).resolve().parents[2]

FAKE_SESSION_CONFTEST = r'''
import json, os
from contextlib import ExitStack, contextmanager
from pathlib import Path

import harness.session
from harness.journal import Journal
from harness.providers.cluster import ExistingClusterProvider
from harness.providers.factory import Infrastructure
from harness.report import write_scenario_reports

LOG = Path(__file__).parent / "session.log"


def log(entry):
    with open(LOG, "a") as f:
        f.write(json.dumps({"pid": os.getpid(), **entry}) + "\n")


class FakeDatabase:
    admin_dsn = "postgresql://rehearsal:s3cret@127.0.0.1:5999/postgres"
    cluster_host, cluster_port, container_id = "172.18.0.9", 5432, "c0ffee"


class FakeSession:
    def __init__(self, options, infra, owner, part_of):
        self.options, self.infra, self.owner, self.part_of = options, infra, owner, part_of
        self.infra_lock = None

    def rehearse(self, scenario):
        if scenario.name == "interrupted":
            raise KeyboardInterrupt
        with self.infra_lock.for_scenario(scenario) as (mode, waited):
            log({"rehearse": scenario.name, "lock": mode})
            verdict = "NOT_READY" if scenario.name.startswith("wrong") else scenario.expect.value
            journal = Journal(scenario=scenario.name, expect=scenario.expect.value, verdict=verdict,
                              run_id=self.part_of or self.owner)
            write_scenario_reports(journal, self.options.report_dir / scenario.name)
        return journal


@contextmanager
def fake_open_session(options, build=None, part_of=""):
    owner = f"{options.cluster_name}-{'worker' if part_of else 'controller'}{os.getpid()}"
    if build is None:  # the controller: "its" cluster and Postgres
        kubeconfig = Path(__file__).parent / "kubeconfig"
        kubeconfig.write_text("{}")
        infra = Infrastructure(cluster=ExistingClusterProvider(kubeconfig), database=FakeDatabase(), owner=owner)
    else:  # a worker: the real attach_build, from the controller's handoff
        infra = build(options, ExitStack(), owner, None)
    log({"open": owner, "part_of": part_of, "kubeconfig": str(infra.cluster.kubeconfig),
         "dsn": infra.database.admin_dsn, "cluster_host": infra.database.cluster_host,
         "container": infra.database.container_id})
    try:
        yield FakeSession(options, infra, owner, part_of)
    finally:
        log({"close": owner})


harness.session.open_session = fake_open_session
'''


@pytest.fixture(autouse=True)
def _this_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    """Subprocesses load the plugin of this checkout, not of whichever copy is installed."""
    monkeypatch.setenv("PYTHONPATH", str(REPO))


def _log(pytester: pytest.Pytester) -> list[dict[str, object]]:
    path = pytester.path / "session.log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _scenarios(pytester: pytest.Pytester, kit: SimpleNamespace, *names: str) -> None:
    pytester.makeconftest(FAKE_SESSION_CONFTEST)
    for name in names:
        kit.write_scenario(pytester.path, name, kit.minimal_doc())


def test_workers_attach_to_the_one_session_the_controller_opens(pytester: pytest.Pytester,
                                                                 kit: SimpleNamespace) -> None:
    _scenarios(pytester, kit, "first", "second", "wrong-third")
    older = pytester.path / "out" / "older"  # another run's report in the same report dir: not this run's
    older.mkdir(parents=True)
    (older / "report.json").write_text(json.dumps({"scenario": "older", "run_id": "rr-x-someoneelse",
                                                   "expect": "READY", "verdict": "READY"}))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "--cluster-name", "rr-x",
                                           "--report-dir", "out")
    result.assert_outcomes(passed=2, failed=1)
    log = _log(pytester)
    opens = [e for e in log if "open" in e]
    controller = [e for e in opens if not e["part_of"]]
    workers = [e for e in opens if e["part_of"]]
    assert len(controller) == 1, log
    assert 1 <= len(workers) <= 2, log  # a worker that got no scenario opens nothing
    for w in workers:  # attached to the controller's cluster and Postgres, in another process, as part of its run
        assert w["part_of"] == controller[0]["open"] and w["pid"] != controller[0]["pid"]
        assert (w["kubeconfig"], w["dsn"], w["cluster_host"], w["container"]) == (
            controller[0]["kubeconfig"], controller[0]["dsn"], controller[0]["cluster_host"], controller[0]["container"])
    assert sorted(e["rehearse"] for e in log if "rehearse" in e) == ["first", "second", "wrong-third"]
    assert {e["lock"] for e in log if "rehearse" in e} == {"shared"}
    # The controller closes last: after every worker has closed its session.
    assert log[-1] == {"pid": controller[0]["pid"], "close": controller[0]["open"]}

    suites = ET.parse(pytester.path / "out" / "junit.xml").getroot()
    names = sorted(s.get("name") for s in suites.iter("testsuite"))
    assert names == ["first", "second", "wrong-third"]
    run = json.loads((pytester.path / "out" / "run.json").read_text())
    assert run["run_id"] == controller[0]["open"] and sorted(run["scenarios"]) == names
    history = (pytester.path / "out" / "history.jsonl").read_text().splitlines()
    assert len(history) == 3  # written once, by the controller: not once per worker
    result.stdout.fnmatch_lines(["*every worker rehearses on this run's cluster and Postgres*",
                                 "*3 scenario(s) of run rr-x-controller*junit.xml*"])


def test_the_controller_tears_down_after_an_interrupt_in_a_worker(pytester: pytest.Pytester,
                                                                  kit: SimpleNamespace) -> None:
    _scenarios(pytester, kit, "interrupted")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "--report-dir", "out")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    log = _log(pytester)
    controller = next(e for e in log if "open" in e and not e["part_of"])
    assert log[-1] == {"pid": controller["pid"], "close": controller["open"]}
    assert not (pytester.path / "out" / "junit.xml").exists()  # no scenario of this run has a report


def test_no_session_opens_under_xdist_without_a_scenario(pytester: pytest.Pytester, kit: SimpleNamespace) -> None:
    _scenarios(pytester, kit)
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "test_plain.py").assert_outcomes(passed=1)
    assert _log(pytester) == []


def test_fixture_tests_under_xdist_need_the_option(pytester: pytest.Pytester, kit: SimpleNamespace) -> None:
    _scenarios(pytester, kit)
    pytester.makepyfile(test_user="def test_user(postgres):\n    assert postgres.container_id == 'c0ffee'\n")
    without = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "test_user.py")
    without.assert_outcomes(errors=1)
    without.stdout.fnmatch_lines(["*the xdist controller opens the shared cluster and Postgres*Fix: pass "
                                  "--xdist-infra*"])
    assert _log(pytester) == []
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "test_user.py",
                                  "--xdist-infra").assert_outcomes(passed=1)
    assert [bool(e["part_of"]) for e in _log(pytester) if "open" in e] == [False, True]


@pytest.mark.parametrize(("args", "message"), [
    (["--jobs", "2"], "*--jobs and pytest -n both rehearse scenarios side by side. Fix: pass one of them*"),
    (["--shard", "1/2"], "*--shard is not supported with pytest -n*Fix:*"),
])
def test_xdist_refuses_options_it_cannot_combine_with(pytester: pytest.Pytester, kit: SimpleNamespace,
                                                      args: list[str], message: str) -> None:
    _scenarios(pytester, kit, "first")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert _log(pytester) == []


def test_without_xdist_the_single_process_session_is_unchanged(pytester: pytest.Pytester,
                                                               kit: SimpleNamespace) -> None:
    """-n 0 is no distribution: the one session of the process, no controller, no handoff."""
    _scenarios(pytester, kit)
    pytester.makepyfile(test_user="def test_user(postgres):\n    assert postgres.container_id == 'c0ffee'\n")
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "0", "test_user.py").assert_outcomes(passed=1)
    assert [e["part_of"] for e in _log(pytester) if "open" in e] == [""]
