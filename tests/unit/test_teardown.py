"""Teardown that finishes (issue 9, item 3).

Real signals, real processes, no cluster: `rehearse run` runs in a child Python process whose
infrastructure is a fake with slow cleanup steps (harness/providers/factory.build replaced), and the
test signals it the way CI and an impatient user do. Host commands (pre_release, `runs_in: host`
migrations) run with real bash and real background children."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner

from harness import progress, release, session
from harness.cli import cli
from harness.journal import Journal
from harness.options import SessionOptions
from harness.providers import factory
from harness.redact import Redactor
from harness.scenario import load_scenario
from harness.teardown import Interrupted, Teardown, TeardownIncomplete, TeardownStack

REPO = Path(__file__).resolve().parents[2]

# The child: `rehearse run` with slow cleanup steps (each logs its start and end; "postgres" fails).
CHILD = textwrap.dedent('''
    import sys, time
    from types import SimpleNamespace
    import harness.session
    from harness import cli
    from harness.providers import factory

    LOG, STEPS, REHEARSAL_S = sys.argv[1], sys.argv[2].split(","), float(sys.argv[3])

    def slow(name):
        def remove():
            with open(LOG, "a") as f:
                f.write(f"start {name}\\n")
            time.sleep(0.8)
            with open(LOG, "a") as f:
                f.write(f"end {name}\\n")
            if name.startswith("fail"):
                raise RuntimeError(f"{name} is still there")
        remove.__qualname__ = f"remove {name}"
        return remove

    def build(options, stack, owner, run=None):
        for name in STEPS:
            stack.callback(slow(name))
        return SimpleNamespace(cluster=SimpleNamespace(name="fake"), registry=None)

    def rehearse(self, scenario):
        print("rehearsing", flush=True)
        time.sleep(REHEARSAL_S)

    factory.build = build
    harness.session.Session.rehearse = rehearse
    sys.argv = ["rehearse", "run", sys.argv[4], "--report-dir", sys.argv[5]]
    cli.main()
''')


def _rehearse(tmp_path: Path, kit: Any, steps: list[str], rehearsal_s: float) -> SimpleNamespace:
    script, log = tmp_path / "child.py", tmp_path / "cleanup.log"
    script.write_text(CHILD, encoding="utf-8")
    scenario = kit.write_scenario(tmp_path, "demo")
    proc = subprocess.Popen([sys.executable, str(script), str(log), ",".join(steps), str(rehearsal_s), str(scenario),
                             str(tmp_path / "reports")], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "COLUMNS": "2000", "PYTHONPATH": str(REPO),
                                 "REHEARSAL_CACHE_DIR": str(tmp_path / "cache")})  # run records and reaping stay in the test
    assert proc.stdout is not None
    assert proc.stdout.readline() == "rehearsing\n"
    return SimpleNamespace(proc=proc, log=log)


def _log(run: SimpleNamespace) -> list[str]:
    return run.log.read_text(encoding="utf-8").splitlines() if run.log.exists() else []


def _when(run: SimpleNamespace, line: str, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while line not in _log(run):
        assert time.monotonic() < deadline and run.proc.poll() is None, (line, _log(run))
        time.sleep(0.02)


def _finish(run: SimpleNamespace) -> tuple[int, str]:
    _, err = run.proc.communicate(timeout=60)
    return run.proc.returncode, err


STEPS = ["cluster", "fail-postgres", "registry"]  # registration order: they run in reverse
ALL_RAN = [f"{w} {n}" for n in reversed(STEPS) for w in ("start", "end")]


def test_three_sigterms_during_teardown_every_step_runs_and_the_message_is_true(tmp_path: Path, kit: Any) -> None:
    run = _rehearse(tmp_path, kit, STEPS, rehearsal_s=60)
    run.proc.send_signal(signal.SIGTERM)  # the first: stop the rehearsal, tear down
    _when(run, "start registry")
    run.proc.send_signal(signal.SIGTERM)  # the second and third: recorded, never obeyed
    _when(run, "start fail-postgres")
    run.proc.send_signal(signal.SIGTERM)
    run.proc.send_signal(signal.SIGINT)
    code, err = _finish(run)
    assert code == 130, err
    assert _log(run) == ALL_RAN  # each step ran to its end, in reverse order of registration
    assert err.count("received during teardown: recorded, cleanup goes on") == 3, err
    # said while the registry was being removed (first), then while Postgres was
    assert "still to remove: remove registry, remove fail-postgres, remove cluster (SIGKILL abandons it)" in err
    assert "still to remove: remove fail-postgres, remove cluster (SIGKILL abandons it)" in err
    last = err.strip().splitlines()[-1]
    assert last == ("interrupted (SIGTERM, 3 more received during teardown): cleanup finished, but 1 of 3 step(s) "
                    "failed and may have left resources behind: remove fail-postgres: RuntimeError: "
                    "fail-postgres is still there"), err
    assert "resources cleaned up" not in err


def test_sighup_is_handled_like_sigterm(tmp_path: Path, kit: Any) -> None:
    run = _rehearse(tmp_path, kit, ["cluster", "registry"], rehearsal_s=60)
    run.proc.send_signal(signal.SIGHUP)
    _when(run, "start registry")
    run.proc.send_signal(signal.SIGHUP)
    code, err = _finish(run)
    assert code == 130, err
    assert _log(run) == ["start registry", "end registry", "start cluster", "end cluster"]
    assert err.strip().splitlines()[-1] == ("interrupted: resources cleaned up (SIGHUP, 1 more received during "
                                            "teardown; 2 cleanup step(s), none failed)"), err


def test_a_signal_during_a_normal_teardown_is_recorded_and_the_exit_says_interrupted(tmp_path: Path, kit: Any) -> None:
    run = _rehearse(tmp_path, kit, ["cluster", "registry"], rehearsal_s=0)
    _when(run, "start registry")  # the rehearsal is over: this is the session's normal teardown
    run.proc.send_signal(signal.SIGTERM)
    code, err = _finish(run)
    assert code == 130, err
    assert _log(run) == ["start registry", "end registry", "start cluster", "end cluster"]
    assert "still to remove: remove registry, remove cluster" in err
    assert "interrupted: resources cleaned up (SIGTERM; 2 cleanup step(s), none failed)" in err


# ── in process: the outcome without signals, and the real open_session semantics ──
@pytest.fixture
def fake_infra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    monkeypatch.setenv("REHEARSAL_CACHE_DIR", str(tmp_path / "cache"))  # run records and reaping stay in the test
    ran: list[str] = []

    def step(name: str) -> Callable[[], None]:
        def remove() -> None:
            ran.append(name)
            if name.startswith("fail"):
                raise OSError(f"{name}: docker said no")
        return remove

    def build(options: SessionOptions, stack: ExitStack, owner: str, run: Any = None) -> Any:
        for name in ("cluster", "fail-database", "containers", "fail-registry"):
            stack.callback(step(name))
        return SimpleNamespace(cluster=SimpleNamespace(name="fake"), registry=None)

    monkeypatch.setattr(factory, "build", build)
    return ran


def test_a_normal_end_with_failed_removals_names_them_all(fake_infra: list[str], tmp_path: Path) -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    with pytest.raises(TeardownIncomplete) as caught:
        with session.open_session(SessionOptions(report_dir=tmp_path)) as s:
            assert isinstance(s.stack, TeardownStack)
            assert signal.getsignal(signal.SIGHUP) is not before[signal.SIGHUP]  # installed for the session
    assert fake_infra == ["fail-registry", "containers", "fail-database", "cluster"]  # all ran, reverse order
    assert str(caught.value) == ("cleanup finished, but 2 of 4 step(s) failed and may have left resources behind: "
                                 "remove: OSError: fail-registry: docker said no; "
                                 "remove: OSError: fail-database: docker said no")
    assert {s: signal.getsignal(s) for s in before} == before  # and restored after it


def test_an_error_keeps_its_type_and_carries_the_failed_removals(fake_infra: list[str], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="boom") as caught:
        with session.open_session(SessionOptions(report_dir=tmp_path)):
            raise ValueError("boom")
    assert len(fake_infra) == 4
    assert "2 of 4 step(s) failed" in caught.value.__notes__[0]


def test_ctrl_c_without_a_handler_is_still_an_interrupt_with_the_truth(tmp_path: Path) -> None:
    teardown = Teardown()
    with pytest.raises(Interrupted) as caught:
        with teardown.installed(), TeardownStack(teardown) as stack:
            stack.callback(lambda: None)
            raise KeyboardInterrupt  # e.g. raised by Python's own SIGINT handler in another setup
    assert caught.value.exit_code == 130
    assert caught.value.message() == "interrupted: resources cleaned up (SIGINT; 1 cleanup step(s), none failed)"


def test_keep_cluster_still_keeps_and_the_popped_stack_is_guarded() -> None:
    teardown = Teardown()
    stack = TeardownStack(teardown)
    stack.callback(lambda: (_ for _ in ()).throw(RuntimeError("x")))
    kept = stack.pop_all()  # what --keep-cluster does with a scenario's stack
    stack.close()
    assert teardown.steps == 0
    kept.close()
    assert teardown.steps == 1 and teardown.failures == ["<lambda>: RuntimeError: x"]


# ── host commands: their own process group, killed as a group ────────────────
def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead, only not yet reaped by whoever adopted it
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


SPAWNER = 'echo $$ >> "{pids}"; sleep 300 & echo $! >> "{pids}"; {extra}sleep 300'


def _host_ctx(tmp_path: Path, kit: Any, **doc: Any) -> SimpleNamespace:
    s = load_scenario(kit.write_scenario(tmp_path, "host", kit.minimal_doc(**doc)))
    return SimpleNamespace(scenario=s, journal=Journal(scenario="host", expect="READY"), redactor=Redactor(),
                           runbook_env=lambda: {"PATH": os.environ["PATH"]})


def _pids(path: Path) -> list[int]:
    pids = [int(p) for p in path.read_text().split()]
    assert len(pids) >= 2, pids
    return pids


def test_a_pre_release_timeout_leaves_no_process_alive(tmp_path: Path, kit: Any) -> None:
    pids = tmp_path / "pids"
    versions = {"good": {"image": "demo:v1"},
                "bad": {"image": "demo:v2", "pre_release": SPAWNER.format(pids=pids, extra="")}}
    ctx = _host_ctx(tmp_path, kit, versions=versions, runbook={"step_timeout_s": 1})
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match=r"^pre_release of the bad release timed out after 1s$"):
        release.run_pre_release(ctx, ctx.scenario.versions.bad, "bad")  # type: ignore[arg-type]
    assert time.monotonic() - t0 < 15
    assert [p for p in _pids(pids) if _alive(p)] == []
    assert ctx.journal.events[-1].message == "bad: timed out after 1s"


def test_a_host_migration_timeout_kills_even_a_child_that_ignores_sigterm(tmp_path: Path, kit: Any) -> None:
    pids = tmp_path / "pids"
    stubborn = f'(trap "" TERM; sleep 300) & echo $! >> "{pids}"; '
    ctx = _host_ctx(tmp_path, kit, migrations={"up": SPAWNER.format(pids=pids, extra=stubborn), "runs_in": "host"},
                    timeouts={"migrate_s": 1})
    with pytest.raises(subprocess.TimeoutExpired, match="timed out after 1.0 seconds"):
        release.run_migration(ctx, ctx.scenario.versions.bad, "bad")  # type: ignore[arg-type]
    assert len(_pids(pids)) == 3
    assert [p for p in _pids(pids) if _alive(p)] == []


def test_host_commands_keep_their_output_and_exit_code(tmp_path: Path, kit: Any) -> None:
    versions = {"good": {"image": "demo:v1"}, "bad": {"image": "demo:v2", "pre_release": "echo out; echo err >&2; exit 4"}}
    ctx = _host_ctx(tmp_path, kit, versions=versions, migrations={"up": "echo up-failed; exit 2", "runs_in": "host"})
    with pytest.raises(RuntimeError, match=r"^pre_release of the bad release failed \(exit 4\): out\nerr$"):
        release.run_pre_release(ctx, ctx.scenario.versions.bad, "bad")  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match=r"^migration \(bad\) failed on the host: up-failed\n$"):
        release.run_migration(ctx, ctx.scenario.versions.bad, "bad")  # type: ignore[arg-type]


def test_rehearse_run_prints_the_results_then_each_failed_removal_and_exits_3(
        fake_infra: list[str], tmp_path: Path, kit: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def rehearse(self: session.Session, scenario: Any) -> Journal:
        journal = Journal(scenario=scenario.name, expect="READY", verdict="READY")
        self.results.append(journal)
        return journal

    monkeypatch.setattr(session.Session, "rehearse", rehearse)
    monkeypatch.setattr(progress.console, "width", 2000)
    res = CliRunner().invoke(cli, ["run", str(kit.write_scenario(tmp_path, "demo")), "--report-dir",
                                   str(tmp_path / "reports")])
    assert res.exit_code == 3, res.output
    assert "│ demo " in res.output and "READY" in res.output  # the rehearsal's result is still shown
    assert res.output.strip().splitlines()[-1] == (
        "infrastructure error: cleanup finished, but 2 of 4 step(s) failed and may have left resources behind: "
        "remove: OSError: fail-registry: docker said no; remove: OSError: fail-database: docker said no")


def test_a_failed_removal_never_shows_a_password(capsys: pytest.CaptureFixture[str]) -> None:
    teardown = Teardown()
    with pytest.raises(TeardownIncomplete) as caught:
        with teardown.installed(), TeardownStack(teardown) as stack:
            stack.callback(lambda: (_ for _ in ()).throw(RuntimeError("psql postgresql://admin:hunter22@db/x: refused")))
    assert "hunter22" not in str(caught.value) and "hunter22" not in capsys.readouterr().err
    assert "postgresql://admin:" in str(caught.value)
