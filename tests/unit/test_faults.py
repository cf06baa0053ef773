"""Faults (harness/faults.py, phase rerun): the model, the scheduling and the bookkeeping.

Pure logic only, with fakes: fake timers that the test fires by hand, fake
actions, a fake `docker`/`kubectl`, a fake Postgres connection. The real
faults are rehearsed by the scenarios/fault-* scenarios.
"""

from __future__ import annotations

import functools
import json
import subprocess
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pydantic
import pytest
import yaml
from jsonschema import Draft202012Validator

from harness import faults, pipeline, runstate, steps
from harness.faults import (
    NETEM_UNKNOWN,
    DeleteAppPod,
    FaultInjector,
    NetworkLatency,
    PauseContainer,
    Skipped,
    TerminateDbConnections,
    Unsupported,
    pick_running_pod,
    runbook_over,
)
from harness.journal import Difference, FaultRecord, Journal, PhaseRecord
from harness.phases import OnFailure, rerun
from harness.phases.rerun import RerunPhase
from harness.phases.runbook import RunbookPhase
from harness.runbook_commands import Step, StepResult
from harness.scenario import ScenarioError, load_scenario
from harness.scenario.models import Fault, FaultKind, Scenario

REPO = Path(__file__).resolve().parents[2]
NETEM_ERROR = "Error: Specified qdisc kind is unknown."


# ── the model ───────────────────────────────────────────────────────────────
def test_fault_defaults() -> None:
    f = Fault(kind="pause_postgres")
    assert (f.kind, f.during, f.at_step, f.delay_s, f.duration_s, f.latency_ms) == \
        (FaultKind.PAUSE_POSTGRES, "runbook", 1, 0, 5, None)


@pytest.mark.parametrize(("doc", "word"), [
    ({"kind": "explode"}, "kind"),
    ({"kind": "pause_postgres", "during": "verify"}, "during"),
    ({"kind": "pause_postgres", "at_step": 0}, "at_step"),
    ({"kind": "pause_postgres", "duration_s": 121}, "duration_s"),
    ({"kind": "pause_postgres", "delay_s": -1}, "delay_s"),
    ({"kind": "pause_postgres", "colour": "red"}, "colour"),
    ({"kind": "network_latency"}, "latency_ms"),
    ({"kind": "pause_postgres", "latency_ms": 100}, "latency_ms"),
])
def test_fault_rejects(doc: dict[str, Any], word: str) -> None:
    with pytest.raises(pydantic.ValidationError) as exc:
        Fault.model_validate(doc)
    assert word in str(exc.value)


def test_scenario_faults_default_to_none() -> None:
    doc = {"name": "x", "app": {"manifests": "k.yaml", "workloads": [{"deployment": "demo"}]},
           "versions": {"good": {"image": "a"}, "bad": {"image": "b"}}, "failure": {"mode": "crashloop"}}
    assert Scenario.model_validate(doc).faults == []
    s = Scenario.model_validate({**doc, "faults": [{"kind": "network_latency", "latency_ms": 200}]})
    assert s.faults[0].latency_ms == 200


def test_loader_reports_a_fault_at_a_step_that_never_starts(tmp_path: Path, kit) -> None:
    d = kit.write_scenario(tmp_path, "late-fault", kit.minimal_doc(
        faults=[{"kind": "pause_postgres"}, {"kind": "delete_app_pod", "at_step": 3}, {"kind": "network_latency"}]))
    with pytest.raises(ScenarioError) as exc:
        load_scenario(d)
    problems = {p.field: p for p in exc.value.problems}
    late = problems["faults[1].at_step"]
    assert "has 1 steps" in late.message and "never starts" in late.message
    assert late.fix == "use a step number from 1 to 1"
    assert "latency_ms" in problems["faults[2]"].message  # reported together
    assert "faults[0]" not in problems and "faults[0].at_step" not in problems


@pytest.mark.parametrize(("doc", "valid"), [
    ({"kind": "pause_postgres", "duration_s": 5}, True),
    ({"kind": "network_latency", "latency_ms": 100}, True),
    ({"kind": "network_latency"}, False),
    ({"kind": "pause_postgres", "latency_ms": 100}, False),
    ({"kind": "pause_postgres", "duration_s": 500}, False),
    ({"kind": "pause_postgres", "during": "deploy"}, False),
    ({"kind": "pause_postgres", "during": "deploy_bad"}, False),
    ({"kind": "kill_helm", "during": "deploy_bad", "delay_s": 5}, True),
    ({"kind": "kill_helm"}, True),
])
def test_committed_schema_agrees_on_faults(doc: dict[str, Any], valid: bool) -> None:
    schema = json.loads((REPO / "docs" / "scenario.schema.json").read_text(encoding="utf-8"))
    release = {"helm": {"chart": "c", "release": "demo"}} if doc["kind"] == "kill_helm" else {"manifests": "k.yaml"}
    scenario = {"app": {**release, "workloads": [{"deployment": "demo"}]},
                "versions": {"good": {"image": "a"}, "bad": {"image": "b"}}, "failure": {"mode": "crashloop"},
                "faults": [doc]}
    assert (list(Draft202012Validator(schema).iter_errors(scenario)) == []) is valid
    if doc["kind"] == "kill_helm":  # the twin of the rule that kill_helm needs a chart
        without = {**scenario, "app": {"manifests": "k.yaml", "workloads": [{"deployment": "demo"}]}}
        assert list(Draft202012Validator(schema).iter_errors(without)) != []
    try:
        Fault.model_validate(doc)
        assert valid
    except pydantic.ValidationError:
        assert not valid


@pytest.mark.parametrize("name", ["fault-db-connections-during-migrate-down", "fault-pause-postgres",
                                  "fault-delete-pod-during-undo", "fault-pause-control-plane"])
def test_fault_scenarios_declare_their_fault(name: str) -> None:
    s = load_scenario(REPO / "scenarios" / name)
    assert len(s.faults) == 1 and s.faults[0].during == "runbook"
    assert RerunPhase().applies(SimpleNamespace(scenario=s))  # type: ignore[arg-type]


def test_pipeline_reruns_after_verify_as_evidence() -> None:
    names = [p.name for p in pipeline.PHASES]
    assert names.index("rerun") == names.index("verify") + 1
    assert RerunPhase.on_failure is OnFailure.EVIDENCE
    no_faults = load_scenario(REPO / "scenarios" / "bad-image")
    assert not RerunPhase().applies(SimpleNamespace(scenario=no_faults))  # type: ignore[arg-type]


# ── scheduling, with fake timers and fake actions ───────────────────────────
class FakeTimer:
    made: ClassVar[list[FakeTimer]] = []

    def __init__(self, delay: float, fn: Any, args: tuple[Any, ...] = ()) -> None:
        self.delay, self.fn, self.args = delay, fn, args
        self.started = self.cancelled = self.fired = False
        self.daemon = False
        FakeTimer.made.append(self)

    def start(self) -> None:
        self.started = True

    def cancel(self) -> None:
        self.cancelled = True

    def fire(self) -> None:  # what threading.Timer does when its delay has elapsed
        if not self.cancelled:
            self.fired = True
            self.fn(*self.args)


class FakeAction:
    def __init__(self, log: list[str], name: str, apply_error: Exception | None = None,
                 revert_errors: int = 0) -> None:
        self.log, self.name, self.apply_error, self.revert_errors = log, name, apply_error, revert_errors

    def apply(self) -> str:
        self.log.append(f"apply {self.name}")
        if self.apply_error is not None:
            raise self.apply_error
        return f"{self.name} in place"

    def revert(self) -> str:
        self.log.append(f"revert {self.name}")
        if self.revert_errors:
            self.revert_errors -= 1
            raise RuntimeError("unpause failed")
        return f"{self.name} removed"


def _injector(fault_docs: list[dict[str, Any]], log: list[str], **action_kw: Any) -> tuple[FaultInjector, Journal]:
    FakeTimer.made = []
    journal = Journal(scenario="s", expect="READY")
    fs = [Fault.model_validate(d) for d in fault_docs]
    inj = FaultInjector(fs, lambda f: FakeAction(log, f.kind.value, **action_kw), journal,
                        timer=FakeTimer, clock=lambda: 100.0)
    return inj, journal


def test_no_delay_applies_before_the_step_then_a_timer_removes_it(monkeypatch) -> None:
    monkeypatch.setattr(faults.time, "sleep", lambda s: None)
    log: list[str] = []
    inj, journal = _injector([{"kind": "pause_postgres", "at_step": 2, "duration_s": 5}], log)
    inj.before_step(1)
    assert log == [] and journal.faults == []
    inj.before_step(2)
    assert log == ["apply pause_postgres"]  # in the caller's thread, before step 2 starts
    (rev,) = FakeTimer.made
    assert rev.delay == 5 and rev.started and rev.daemon
    rec = journal.faults[0]
    assert rec.status == "applied" and rec.applied_at and rec.reverted_at is None and rec.at_step == 2
    assert inj.active == ["pause_postgres"]
    rev.fire()
    assert log == ["apply pause_postgres", "revert pause_postgres"]
    rec = journal.faults[0]
    assert rec.reverted_at and rec.detail == "pause_postgres in place; pause_postgres removed"
    inj.before_step(2)  # a second pass over the same step does not re-arm
    inj.close()
    assert log == ["apply pause_postgres", "revert pause_postgres"]
    assert [e.kind for e in journal.events] == ["fault", "fault"]


def test_delay_uses_a_timer_and_close_before_it_fires_skips_the_fault() -> None:
    log: list[str] = []
    inj, journal = _injector([{"kind": "pause_control_plane", "delay_s": 3, "duration_s": 8}], log)
    inj.before_step(1)
    (delay,) = FakeTimer.made
    assert delay.delay == 3 and log == []
    inj.close("the rehearsal ended")
    assert delay.cancelled
    delay.fn(*delay.args)  # a timer that was already running when cancelled: must do nothing
    assert log == []
    assert journal.faults[0].status == "skipped" and journal.faults[0].detail == "the rehearsal ended"


def test_delayed_fault_applies_when_its_timer_fires() -> None:
    log: list[str] = []
    inj, journal = _injector([{"kind": "pause_control_plane", "delay_s": 1, "duration_s": 8}], log)
    inj.before_step(1)
    FakeTimer.made[0].fire()
    assert log == ["apply pause_control_plane"]
    assert FakeTimer.made[1].delay == 8
    assert journal.faults[0].status == "applied"


def test_a_delayed_fault_never_hits_verify() -> None:
    """Its timer fires after the runbook phase ended: skipped, never applied to verify's snapshot."""
    log: list[str] = []
    inj, journal = _injector([{"kind": "delete_app_pod", "delay_s": 2}], log)
    over = [False]
    inj.too_late = lambda: over[0]
    inj.before_step(1)
    over[0] = True
    FakeTimer.made[0].fire()
    assert log == []
    assert journal.faults[0].status == "skipped" and "would have hit verify" in journal.faults[0].detail
    inj.close()
    assert journal.faults[0].status == "skipped"


def test_runbook_over_reads_the_phase_records() -> None:
    journal = Journal(scenario="s", expect="READY")
    assert not runbook_over(journal)
    journal.phases.append(PhaseRecord(name="runbook", status="failed", started_at="t", duration_s=1))
    assert runbook_over(journal)


def test_close_removes_an_active_fault_early() -> None:
    log: list[str] = []
    inj, journal = _injector([{"kind": "pause_postgres", "duration_s": 5}], log)
    inj.before_step(1)
    inj.close()
    assert log == ["apply pause_postgres", "revert pause_postgres"]
    assert FakeTimer.made[0].cancelled
    rec = journal.faults[0]
    assert rec.reverted_at and "removed early, after 0.0s of 5s" in rec.detail
    inj.close()  # idempotent: cleanup after the rerun's settle
    assert log.count("revert pause_postgres") == 1


def test_instant_fault_has_nothing_to_remove() -> None:
    log: list[str] = []
    inj, journal = _injector([{"kind": "delete_app_pod", "duration_s": 30}], log)
    inj.before_step(1)
    assert FakeTimer.made == [] and inj.active == []
    inj.close()
    assert log == ["apply delete_app_pod"]
    assert journal.faults[0].status == "applied" and journal.faults[0].reverted_at is None


def test_a_fault_whose_step_never_starts_is_skipped() -> None:
    log: list[str] = []
    inj, journal = _injector([{"kind": "pause_postgres"}, {"kind": "delete_app_pod", "at_step": 3}], log)
    inj.before_step(1)
    inj.before_step(2)  # the runbook stops here
    inj.close()
    assert [r.status for r in journal.faults] == ["applied", "skipped"]
    assert journal.faults[1].detail.startswith("runbook step 3 never started")
    assert [r.index for r in journal.faults] == [0, 1]


def test_unsupported_and_failed_are_recorded_not_raised() -> None:
    log: list[str] = []
    inj, journal = _injector([{"kind": "network_latency", "latency_ms": 50}], log,
                             apply_error=Unsupported(NETEM_ERROR))
    inj.before_step(1)
    assert journal.faults[0].status == "unsupported" and journal.faults[0].detail == NETEM_ERROR
    assert FakeTimer.made == []
    assert journal.events[0].message == f"network_latency unsupported: {NETEM_ERROR}"
    inj.close()
    assert journal.faults[0].reverted_at is None

    inj, journal = _injector([{"kind": "pause_postgres"}], log, apply_error=RuntimeError("no such container"))
    inj.before_step(1)
    assert journal.faults[0].status == "failed" and "no such container" in journal.faults[0].detail


def test_a_failing_revert_is_retried_then_reported(monkeypatch) -> None:
    monkeypatch.setattr(faults.time, "sleep", lambda s: None)
    log: list[str] = []
    inj, journal = _injector([{"kind": "pause_postgres"}], log, revert_errors=1)
    inj.before_step(1)
    FakeTimer.made[0].fire()
    assert log.count("revert pause_postgres") == 2
    assert "second attempt" in journal.faults[0].detail and journal.faults[0].reverted_at

    inj, journal = _injector([{"kind": "pause_postgres"}], log, revert_errors=2)
    inj.before_step(1)
    FakeTimer.made[0].fire()
    assert "REVERT FAILED" in journal.faults[0].detail


def _fake_ctx(scenario: Scenario) -> SimpleNamespace:
    return SimpleNamespace(scenario=scenario, journal=Journal(scenario=scenario.name, expect="READY"),
                           redactor=lambda t: t, cleanup=ExitStack(), fault_injector=None)


def test_runbook_hook_registers_the_revert_before_applying(monkeypatch) -> None:
    """Ctrl-C in the middle of the runbook: the scenario's cleanup stack removes the fault."""
    log: list[str] = []
    monkeypatch.setattr(faults, "action_for", lambda ctx, f: FakeAction(log, f.kind.value))
    ctx = _fake_ctx(load_scenario(REPO / "scenarios" / "fault-pause-postgres"))
    with pytest.raises(KeyboardInterrupt), ctx.cleanup:
        hook = faults.runbook_hook(ctx)
        hook(1)
        assert log == ["apply pause_postgres"]
        raise KeyboardInterrupt
    assert log == ["apply pause_postgres", "revert pause_postgres"]
    assert ctx.fault_injector is None


def test_runbook_hook_is_a_no_op_without_faults() -> None:
    ctx = _fake_ctx(load_scenario(REPO / "scenarios" / "bad-image"))
    faults.runbook_hook(ctx)(1)
    assert ctx.journal.faults == [] and faults.settle(ctx, "x") == []


def test_settle_ends_the_faults_before_the_rerun(monkeypatch) -> None:
    log: list[str] = []
    monkeypatch.setattr(faults, "action_for", lambda ctx, f: FakeAction(log, f.kind.value))
    ctx = _fake_ctx(load_scenario(REPO / "scenarios" / "fault-pause-postgres"))
    with ctx.cleanup:
        faults.runbook_hook(ctx)(1)
        assert faults.settle(ctx, "second run") == ["pause_postgres"]
        assert log == ["apply pause_postgres", "revert pause_postgres"]
    assert log.count("revert pause_postgres") == 1


def test_runbook_phase_calls_the_hook_before_each_step(monkeypatch, tmp_path: Path, kit) -> None:
    d = kit.write_scenario(tmp_path, "hooked", runbook="## Rollback\n\n```sh\ntrue\ntrue\n```\n")
    calls: list[str] = []
    ctx = _fake_ctx(load_scenario(d))
    ctx.runbook_env = lambda: {"PATH": "/usr/bin:/bin"}
    ctx.runbook_started_at = None

    def fake_run(step: Step, *a: Any) -> StepResult:
        calls.append(f"run {step.index}")
        return StepResult(step, 0, 0.0, "", False)

    monkeypatch.setattr(steps, "ShellSession", kit.fake_shell(fake_run))
    monkeypatch.setattr(faults, "runbook_hook", lambda c: lambda n: calls.append(f"before {n}"))
    assert RunbookPhase().execute(ctx) == "2 steps ran"  # type: ignore[arg-type]
    assert calls == ["before 1", "run 1", "before 2", "run 2"]
    assert [s.index for s in ctx.journal.runbook_steps] == [1, 2] and ctx.runbook_started_at is not None


# ── the fault kinds, with a fake docker / kubectl / Postgres ────────────────
def _proc(rc: int = 0, out: str = "", err: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess([], rc, out, err)


def test_network_latency_without_netem_is_unsupported_with_the_exact_error() -> None:
    cmds: list[list[str]] = []

    def run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
        cmds.append(cmd)
        return _proc(2, err=NETEM_ERROR + "\n")

    action = NetworkLatency(["rr-dev-control-plane"], 200, run=run)
    with pytest.raises(Unsupported) as exc:
        action.apply()
    assert NETEM_UNKNOWN in str(exc.value) and NETEM_ERROR in str(exc.value)
    assert cmds == [["docker", "exec", "rr-dev-control-plane", "tc", "qdisc", "add", "dev", "eth0", "root",
                     "netem", "delay", "200ms"]]
    assert action.revert() == "removed the netem qdisc" and len(cmds) == 1  # nothing to delete


def test_network_latency_unsupported_through_the_injector() -> None:
    journal = Journal(scenario="s", expect="READY")
    fault = Fault(kind="network_latency", latency_ms=100)
    inj = FaultInjector([fault], lambda f: NetworkLatency(["node"], 100, run=lambda c: _proc(2, err=NETEM_ERROR)),
                        journal, timer=FakeTimer)
    inj.before_step(1)
    inj.close()
    rec = journal.faults[0]
    assert rec.status == "unsupported" and NETEM_ERROR in rec.detail and rec.applied_at is None


def test_network_latency_applied_and_removed() -> None:
    cmds: list[list[str]] = []
    action = NetworkLatency(["n1"], 50, run=lambda c: cmds.append(c) or _proc())
    action.apply()
    action.revert()
    assert cmds[1] == ["docker", "exec", "n1", "tc", "qdisc", "del", "dev", "eth0", "root"]


def test_network_latency_other_errors_fail() -> None:
    with pytest.raises(RuntimeError, match="Operation not permitted"):
        NetworkLatency(["n1"], 50, run=lambda c: _proc(2, err="RTNETLINK answers: Operation not permitted")).apply()


def test_pause_container_pauses_and_unpauses() -> None:
    cmds: list[list[str]] = []
    action = PauseContainer("abc123", "the Postgres container", run=lambda c: cmds.append(c) or _proc())
    assert action.apply() == "paused the Postgres container"
    assert action.revert() == "unpaused the Postgres container"
    assert cmds == [["docker", "pause", "abc123"], ["docker", "unpause", "abc123"]]
    tolerant = PauseContainer("abc", "x", run=lambda c: _proc(1, err="Container abc is not paused"))
    assert tolerant.revert() == "unpaused x"
    with pytest.raises(RuntimeError, match="No such container"):
        PauseContainer("abc", "x", run=lambda c: _proc(1, err="No such container: abc")).apply()


FREEZE = ("Error response from daemon: Cannot pause container 5f9e: OCI runtime pause failed: unable to freeze: "
          "unknown")


def test_pause_container_tries_again_when_the_freezer_could_not_freeze() -> None:
    answers = [_proc(1, err=FREEZE), _proc(1, err=FREEZE), _proc()]
    slept: list[float] = []
    action = PauseContainer("abc", "the node", run=lambda c: answers.pop(0), sleep=slept.append)
    detail = action.apply()
    assert detail.startswith("paused the node (at try 3; before: Error response")
    assert slept == [0.5, 1.0] and not answers


def test_pause_container_gives_up_after_its_tries_and_says_how_many() -> None:
    cmds: list[list[str]] = []
    slept: list[float] = []
    action = PauseContainer("abc", "the node", run=lambda c: cmds.append(c) or _proc(1, err=FREEZE),
                            sleep=slept.append)
    with pytest.raises(RuntimeError, match=r"failed \(1\) after 4 tries: .*unable to freeze"):
        action.apply()
    assert len(cmds) == 4 and slept == [0.5, 1.0, 2.0]


def test_pause_container_does_not_retry_a_final_refusal() -> None:
    cmds: list[list[str]] = []
    action = PauseContainer("abc", "x", run=lambda c: cmds.append(c) or _proc(1, err="Container abc is not running"),
                            sleep=lambda s: pytest.fail("no retry"))
    with pytest.raises(RuntimeError, match=r"failed \(1\): Container abc is not running"):
        action.apply()
    assert len(cmds) == 1



def test_a_pause_waits_for_an_exec_in_flight_into_the_node() -> None:
    """An exec (netem) and a pause of one node never overlap: an exec caught by the freezer wedges the node."""
    events: list[str] = []
    in_exec, release = threading.Event(), threading.Event()

    def run(cmd: list[str]) -> Any:
        events.append(f"start {cmd[1]}")
        if cmd[1] == "exec":
            in_exec.set()
            release.wait(5)
        events.append(f"end {cmd[1]}")
        return _proc()

    latency = threading.Thread(target=NetworkLatency(["n1"], 50, run=run).apply)
    latency.start()
    assert in_exec.wait(5)
    pause = threading.Thread(target=PauseContainer("n1", "the node", run=run).apply)
    pause.start()
    time.sleep(0.2)  # the pause is waiting for the exec to end
    assert events == ["start exec"]
    release.set()
    latency.join(5)
    pause.join(5)
    assert events == ["start exec", "end exec", "start pause", "end pause"]

def _pod(name: str, phase: str, created: str, deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "creationTimestamp": created}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:09Z"
    return {"metadata": meta, "spec": {"containers": [{"image": f"img-{name}"}]},
            "status": {"phase": phase, "containerStatuses": [{"ready": False}]}}


def test_pick_running_pod_takes_the_newest_running_one() -> None:
    pods = [_pod("old", "Running", "2026-01-01T00:00:01Z"), _pod("new", "Running", "2026-01-01T00:00:05Z"),
            _pod("pending", "Pending", "2026-01-01T00:00:07Z"),
            _pod("going", "Running", "2026-01-01T00:00:08Z", deleting=True)]
    assert pick_running_pod(pods, "demo")["metadata"]["name"] == "new"
    with pytest.raises(RuntimeError, match="pending=Pending"):
        pick_running_pod(pods[2:], "demo")


def test_delete_app_pod_waits_for_a_running_pod_then_deletes_it(monkeypatch) -> None:
    monkeypatch.setattr(faults.time, "sleep", lambda s: None)
    calls: list[tuple[str, ...]] = []
    listings = iter([[_pod("a", "Pending", "t1")], [_pod("a", "Running", "t1")]])

    def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
        calls.append(args)
        if args[3:5] == ("deployment", "demo"):
            return _proc(out=json.dumps({"spec": {"selector": {"matchLabels": {"app": "demo"}}}}))
        if args[3] == "pods":
            return _proc(out=json.dumps({"items": next(listings)}))
        return _proc()

    detail = DeleteAppPod(kubectl, "rr-x", "demo").apply()
    assert calls[-1] == ("-n", "rr-x", "delete", "pod", "a", "--wait=false")
    assert ("-n", "rr-x", "get", "pods", "-l", "app=demo", "-o", "json") in calls
    assert detail == "deleted pod a (img-a, not ready) of deployment demo"


def test_delete_app_pod_gives_up_when_the_runbook_is_over(monkeypatch) -> None:
    monkeypatch.setattr(faults.time, "sleep", lambda s: None)

    def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
        if args[3] == "deployment":
            return _proc(out=json.dumps({"spec": {"selector": {"matchLabels": {"app": "demo"}}}}))
        return _proc(out=json.dumps({"items": [_pod("a", "Pending", "t1")]}))

    with pytest.raises(Skipped, match="runbook finished while waiting"):
        DeleteAppPod(kubectl, "rr-x", "demo", too_late=lambda: True).apply()


class FakeConn:
    def __init__(self, kills: list[int]) -> None:
        self.kills, self.queries, self.closed = kills, 0, False

    def execute(self, query: str, params: tuple[Any, ...]) -> Any:
        assert "pg_terminate_backend" in query and "pid <> pg_backend_pid()" in query and params == ("rr_db", [])
        n = self.kills[self.queries] if self.queries < len(self.kills) else 0
        self.queries += 1
        return SimpleNamespace(fetchall=lambda: [(True,)] * n)

    def close(self) -> None:
        self.closed = True


def test_terminate_sweeps_until_reverted() -> None:
    conn = FakeConn([0, 2, 1])
    action = TerminateDbConnections("postgresql://admin@h/postgres", "rr_db", 30, interval_s=0.001,
                                    connect=lambda *a, **k: conn)
    assert action.apply().startswith("first sweep terminated 0 connection(s) to rr_db")
    deadline = time.monotonic() + 5
    while conn.queries < 4 and time.monotonic() < deadline:
        time.sleep(0.001)
    detail = action.revert()
    assert conn.closed and action.terminated == 3 and "terminated 3 connection(s) in total" in detail
    assert action._thread is not None and not action._thread.is_alive()


def test_terminate_with_no_duration_sweeps_once() -> None:
    conn = FakeConn([4])
    action = TerminateDbConnections("dsn", "rr_db", 0, connect=lambda *a, **k: conn)
    action.apply()
    assert action.revert().startswith("1 sweep(s)") and action.terminated == 4 and action._thread is None


def test_terminate_that_hit_nothing_says_so() -> None:
    action = TerminateDbConnections("dsn", "rr_db", 0, connect=lambda *a, **k: FakeConn([0]))
    action.apply()
    assert "terminated 0 connection(s) in total (it hit nothing)" in action.revert() and action.hits == 0


def test_hold_lock_on_only_for_terminate(kit, tmp_path: Path) -> None:
    d = kit.write_scenario(tmp_path, "rr", kit.minimal_doc(
        faults=[{"kind": "pause_postgres", "hold_lock_on": ["schema_migrations"]},
                {"kind": "terminate_db_connections", "hold_lock_on": ["bad name;"]}]))
    with pytest.raises(ScenarioError) as err:
        load_scenario(d)
    text = str(err.value)
    assert "faults[0]" in text and "hold_lock_on only applies to terminate_db_connections" in text
    assert "faults[1].hold_lock_on[0]" in text


# ── rerun: convergence, idempotence, fault cost ─────────────────────────────
BASE = Difference(area="schema", object="column users.nickname", message="column users.nickname is still present")


def _rerun_ctx(monkeypatch, tmp_path: Path, kit, *, first: list[Difference], after: list[Difference],
               step_ok: bool = True, ttr: float | None = 20.0, healthy: bool = True) -> SimpleNamespace:
    """Two seams: the runbook's commands (steps.ShellSession) and the verification after them."""
    d = kit.write_scenario(tmp_path, "rr", kit.minimal_doc(faults=[{"kind": "pause_postgres"}]),
                           runbook="## Rollback\n\n```sh\nmigrate goto 1\nkubectl set image\n```\n")
    ctx = _fake_ctx(load_scenario(d))
    ctx.journal.differences.extend(first)
    ctx.journal.time_to_recover_s = ttr
    ctx.runbook_env = dict

    def fake_run(step: Step, *a: Any) -> StepResult:
        ok = step_ok or step.index == 1
        return StepResult(step, 0 if ok else 1, 0.1, "" if ok else "error: boom\n", False)

    def fake_verify(c: Any, what: str, since: float | None, on_unhealthy: Any) -> steps.Verification:
        assert since is not None and "second run" in what
        if not healthy:
            on_unhealthy("demo: 0/2 ready")
        return steps.Verification(healthy=healthy, recovered_s=3.0 if healthy else None, after="A",  # type: ignore[arg-type]
                                  differences=list(after))

    monkeypatch.setattr(steps, "ShellSession", kit.fake_shell(fake_run))
    monkeypatch.setattr(rerun, "verify_against_baseline", fake_verify)
    return ctx


def test_rerun_converged_and_idempotent(monkeypatch, tmp_path: Path, kit) -> None:
    ctx = _rerun_ctx(monkeypatch, tmp_path, kit, first=[], after=[])
    assert RerunPhase().execute(ctx).startswith("second run: 2/2 steps, idempotent, 0 new difference(s)")
    j = ctx.journal
    assert (j.runbook_converged, j.idempotent, j.fault_cost_s, j.differences) == (True, True, 17.0, [])
    assert [s.index for s in j.rerun_steps] == [1, 2]


def test_rerun_that_changes_the_state_adds_an_idempotence_difference(monkeypatch, tmp_path: Path, kit) -> None:
    ctx = _rerun_ctx(monkeypatch, tmp_path, kit, first=[], after=[BASE])
    with pytest.raises(rerun.NotIdempotent):
        RerunPhase().execute(ctx)
    (d,) = ctx.journal.differences
    assert d.area == "idempotence" and d.object == BASE.object
    assert d.message == f"after a second run of the runbook: {BASE.message}"
    assert ctx.journal.runbook_converged is True and ctx.journal.idempotent is False


def test_rerun_repeats_no_difference_the_first_verify_reported(monkeypatch, tmp_path: Path, kit) -> None:
    ctx = _rerun_ctx(monkeypatch, tmp_path, kit, first=[BASE], after=[BASE], step_ok=False, ttr=None)
    with pytest.raises(rerun.NotIdempotent, match="step 2 .* failed: exit code 1: error: boom"):
        RerunPhase().execute(ctx)
    j = ctx.journal
    assert j.differences == [BASE] and j.runbook_converged is False and j.idempotent is False
    assert j.fault_cost_s is None and len(j.rerun_steps) == 2


def test_rerun_failed_step_with_the_state_intact_adds_no_difference(monkeypatch, tmp_path: Path, kit) -> None:
    ctx = _rerun_ctx(monkeypatch, tmp_path, kit, first=[], after=[], step_ok=False)
    with pytest.raises(rerun.NotIdempotent):
        RerunPhase().execute(ctx)
    assert ctx.journal.differences == [] and ctx.journal.idempotent is False
    assert any("the second run stopped: step 2" in e.message for e in ctx.journal.events)


def test_rerun_recovers_a_first_run_that_did_not_converge(monkeypatch, tmp_path: Path, kit) -> None:
    ctx = _rerun_ctx(monkeypatch, tmp_path, kit, first=[BASE], after=[], ttr=None)
    RerunPhase().execute(ctx)
    assert ctx.journal.runbook_converged is False and ctx.journal.idempotent is True
    assert ctx.journal.differences == [BASE]  # the verdict still comes from the first run


def test_rerun_that_leaves_the_app_unhealthy_is_not_idempotent(monkeypatch, tmp_path: Path, kit) -> None:
    ctx = _rerun_ctx(monkeypatch, tmp_path, kit, first=[], after=[steps.HEALTH_DIFFERENCE], healthy=False)
    with pytest.raises(rerun.NotIdempotent):
        RerunPhase().execute(ctx)
    j = ctx.journal
    assert j.idempotent is False and j.fault_cost_s is None
    (d,) = j.differences
    assert (d.area, d.object) == ("idempotence", "app")
    assert d.message == "after a second run of the runbook: the app did not become healthy again"
    assert "not healthy 180s after the second run: demo: 0/2 ready" in [e.message for e in j.events]


def test_rerun_names_faults_that_never_applied(monkeypatch, tmp_path: Path, kit) -> None:
    ctx = _rerun_ctx(monkeypatch, tmp_path, kit, first=[], after=[])
    ctx.journal.faults = [FaultRecord(kind="pause_postgres", index=0, status="skipped")]
    assert "faults not applied in the first run: pause_postgres skipped" in RerunPhase().execute(ctx)


def test_a_fault_that_hit_nothing_is_a_difference(monkeypatch, tmp_path: Path, kit) -> None:
    ctx = _rerun_ctx(monkeypatch, tmp_path, kit, first=[], after=[])
    ctx.journal.faults = [FaultRecord(kind="terminate_db_connections", index=0, at_step=1, status="applied", hits=0),
                          FaultRecord(kind="pause_postgres", index=1, status="applied")]
    RerunPhase().execute(ctx)
    (d,) = ctx.journal.differences
    assert d.area == "fault" and d.object == "terminate_db_connections" and "hit nothing" in d.message
    assert "hold_lock_on" in d.message
    assert ctx.journal.runbook_converged is True  # the runbook itself converged; the fault is what failed


def test_example_fault_scenarios_validate_against_the_schema() -> None:
    schema = json.loads((REPO / "docs" / "scenario.schema.json").read_text(encoding="utf-8"))
    for path in sorted((REPO / "scenarios").glob("fault-*/scenario.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert list(Draft202012Validator(schema).iter_errors(doc)) == [], path


def test_leftovers_names_paused_containers_and_netem_qdiscs() -> None:
    def run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
        if cmd[1] == "inspect":
            return _proc(out="true\n" if cmd[-1] == "pg-0123456789abcdef" else "false\n")
        return _proc(out="qdisc netem 8001: root refcnt 2 limit 1000 delay 50ms\n" if cmd[2] == "n-worker"
                     else "qdisc noqueue 0: root refcnt 2\n")

    infra = SimpleNamespace(database=SimpleNamespace(container_id="pg-0123456789abcdef"),
                            cluster=SimpleNamespace(node_containers=lambda: ["n-control-plane", "n-worker"]))
    assert faults.leftovers(infra, run) == [
        "container pg-012345678 is still paused (fix: docker unpause pg-012345678)",
        "node n-worker still has a netem qdisc (fix: docker exec n-worker tc qdisc del dev eth0 root)"]
    clean = SimpleNamespace(database=SimpleNamespace(), cluster=SimpleNamespace(node_containers=lambda: []))
    assert faults.leftovers(clean, run) == []  # --database-dsn and --kubeconfig: nothing of ours to check


def test_a_qdisc_that_was_never_added_leaves_nothing_in_the_run_record(tmp_path: Path) -> None:
    """Recorded before `tc qdisc add` (a kill then leaves it to the reaper), forgotten when the add fails:
    else every later session's reaper would try to remove a qdisc that never existed."""
    run = runstate.RunState("rehearsal-0000f00d", tmp_path / "runs").begin()
    action = NetworkLatency(["n1"], 50, run=lambda c: _proc(2, err=NETEM_ERROR), state=run)
    with pytest.raises(Unsupported):
        action.apply()
    assert run.record.resources == []
    run.end()
    assert not (tmp_path / "runs" / "rehearsal-0000f00d.json").exists()


# ── kill_helm: a release step that dies mid-way ─────────────────────────────
def test_kill_helm_only_during_the_runbook_or_the_bad_release_and_only_with_a_chart(kit, tmp_path: Path) -> None:
    assert Fault(kind="kill_helm", during="deploy_bad", delay_s=5).during == "deploy_bad"
    with pytest.raises(pydantic.ValidationError, match="pause_postgres cannot hit deploy_bad: only kill_helm can"):
        Fault(kind="pause_postgres", during="deploy_bad")
    d = kit.write_scenario(tmp_path, "k", kit.minimal_doc(faults=[{"kind": "kill_helm"}]))
    with pytest.raises(ScenarioError) as err:
        load_scenario(d)
    (p,) = err.value.problems
    assert p.field == "faults" and "kill_helm but app.helm is not set" in p.message


@pytest.mark.parametrize(("argv", "env", "ours"), [
    (["/cache/bin/helm", "--kubeconfig=/k", "--namespace=rr-h-1", "upgrade", "--install", "demo"], {}, True),
    (["helm", "rollback", "demo", "1", "-n", "rr-h-1"], {}, True),
    (["helm", "history", "demo"], {"HELM_NAMESPACE": "rr-h-1"}, True),  # a runbook's helm: its environment
    (["helm", "upgrade", "demo", "-n", "rr-h-2"], {"HELM_NAMESPACE": "rr-h-2"}, False),  # another rehearsal's
    (["bash", "-c", "helm upgrade demo --namespace=rr-h-1"], {}, False),  # not helm itself
    ([], {}, False),
])
def test_a_helm_process_is_ours_by_its_namespace(argv: list[str], env: dict[str, str], ours: bool) -> None:
    assert faults.helm_of_namespace(argv, env, "rr-h-1") is ours


def _fake_process(root: Path, pid: int, argv: list[str], env: dict[str, str]) -> None:
    d = root / str(pid)
    d.mkdir(parents=True)
    (d / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    (d / "environ").write_bytes(b"\0".join(f"{k}={v}".encode() for k, v in env.items()))


def test_kill_helm_kills_this_rehearsals_helm_and_counts_it(tmp_path: Path) -> None:
    _fake_process(tmp_path, 101, ["/bin/helm", "--namespace=rr-h-1", "upgrade", "--install", "demo", "/chart"], {})
    _fake_process(tmp_path, 102, ["/bin/helm", "--namespace=rr-other", "upgrade", "demo"], {})
    _fake_process(tmp_path, 103, ["sleep", "10"], {"HELM_NAMESPACE": "rr-h-1"})
    (tmp_path / "self").mkdir()
    killed: list[tuple[int, int]] = []
    action = faults.KillHelm("rr-h-1", proc=tmp_path, kill=lambda pid, sig: killed.append((pid, sig)))
    assert action.apply() == "killed (SIGKILL) pid 101: helm upgrade demo /chart"
    assert killed == [(101, 9)] and action.hits == 1 and action.revert() == ""


def test_kill_helm_that_finds_no_helm_hits_nothing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(faults.time, "sleep", lambda s: None)
    action = faults.KillHelm("rr-h-1", wait_s=0.01, proc=tmp_path, kill=lambda pid, sig: None)
    assert action.apply().startswith("no helm process of namespace rr-h-1 ran within 0.01s") and action.hits == 0
    assert [d.message for d in faults.missed([FaultRecord(kind="kill_helm", index=0, during="deploy_bad",
                                                          status="applied", hits=0)], "deploy_bad")] == [
        "fault kill_helm (during the bad release) hit nothing: the bad release was not interrupted. Hint: lower "
        "delay_s so it comes while `helm upgrade` runs"]


def test_the_bad_releases_faults_are_armed_with_it_and_ended_with_it(tmp_path: Path, kit, monkeypatch) -> None:
    """during_bad_release: applied after its delay while helm runs; one not due yet when helm returns is skipped;
    the journal keeps the records of both phases' injectors, by their index in the scenario."""
    monkeypatch.setattr(faults, "FaultInjector", functools.partial(FaultInjector, timer=FakeTimer))
    FakeTimer.made = []
    doc = {"app": {"helm": {"chart": "chart", "release": "demo"}, "workloads": [{"deployment": "demo"}]},
           "versions": {"good": {"image": "a"}, "bad": {"image": "b"}}, "failure": {"mode": "readiness"},
           "faults": [{"kind": "delete_app_pod"}, {"kind": "kill_helm", "during": "deploy_bad", "delay_s": 4},
                      {"kind": "kill_helm", "during": "deploy_bad", "delay_s": 60}]}
    d = kit.write_scenario(tmp_path, "kh", doc, manifest=False)
    (d / "chart").mkdir()
    (d / "chart" / "Chart.yaml").write_text("apiVersion: v2\nname: demo\nversion: 0.1.0\n")
    ctx = _fake_ctx(load_scenario(d))
    ctx.journal.faults = [FaultRecord(kind="delete_app_pod", index=0, status="applied")]  # the runbook's, kept
    log: list[str] = []
    monkeypatch.setattr(faults, "action_for", lambda c, f: FakeAction(log, f"{f.kind.value} {f.delay_s:g}"))
    with faults.during_bad_release(ctx):
        first, second = FakeTimer.made
        assert (first.delay, second.delay) == (4, 60)
        first.fire()
        assert log == ["apply kill_helm 4"]
    second.fn(*second.args)  # came due after helm returned: nothing happens
    assert log == ["apply kill_helm 4"]
    assert [(r.index, r.kind, r.during, r.status) for r in ctx.journal.faults] == [
        (0, "delete_app_pod", "runbook", "applied"), (1, "kill_helm", "deploy_bad", "applied"),
        (2, "kill_helm", "deploy_bad", "skipped")]
    assert ctx.journal.faults[2].detail == "the bad release's `helm upgrade` ended before its delay elapsed"


def test_only_runbook_faults_make_the_runbook_run_twice(tmp_path: Path, kit) -> None:
    def scenario(fault: dict[str, Any]) -> Any:
        return SimpleNamespace(scenario=SimpleNamespace(faults=[Fault.model_validate(fault)]))
    assert RerunPhase().applies(scenario({"kind": "kill_helm", "during": "runbook"}))  # type: ignore[arg-type]
    assert not RerunPhase().applies(scenario({"kind": "kill_helm", "during": "deploy_bad"}))  # type: ignore[arg-type]


def test_kill_helm_kills_a_real_process_named_helm_of_its_namespace_only() -> None:
    """Real processes, real /proc, real SIGKILL: `exec -a helm` makes argv[0] "helm", as the built helm's is."""
    import os
    ns = f"rr-killtest-{os.getpid()}"
    ours = subprocess.Popen(["bash", "-c", "exec -a helm sleep 30"], env={"HELM_NAMESPACE": ns, "PATH": "/usr/bin:/bin"})
    theirs = subprocess.Popen(["bash", "-c", "exec -a helm sleep 30"],
                              env={"HELM_NAMESPACE": f"{ns}-other", "PATH": "/usr/bin:/bin"})
    try:
        action = faults.KillHelm(ns, wait_s=5)
        detail = action.apply()
        assert ours.wait(timeout=5) == -9 and action.hits == 1
        assert detail == f"killed (SIGKILL) pid {ours.pid}: helm 30" and theirs.poll() is None
    finally:
        for p in (ours, theirs):
            p.kill()
            p.wait()


def test_an_instant_fault_records_what_it_hit_when_applied(tmp_path: Path, monkeypatch) -> None:
    """kill_helm is never reverted: its hits are recorded when it is applied, so a miss is a difference."""
    monkeypatch.setattr(faults.time, "sleep", lambda s: None)
    journal = Journal(scenario="s", expect="NOT_READY")
    fault = Fault(kind="kill_helm", during="deploy_bad")
    inj = FaultInjector([fault], lambda f: faults.KillHelm("rr-x", wait_s=0.01, proc=tmp_path), journal, indexes=[3])
    inj.arm_all()
    (rec,) = journal.faults
    assert (rec.index, rec.status, rec.hits, rec.during) == (3, "applied", 0, "deploy_bad")
    assert [d.object for d in faults.missed(journal.faults, "deploy_bad")] == ["kill_helm"]
    assert faults.missed(journal.faults, "runbook") == []


def test_reports_of_a_fault_of_the_bad_release_say_when_and_claim_no_second_run() -> None:
    from harness.report.junit import _fault_lines
    from harness.report.summary import render_summary
    data = {"scenario": "p", "verdict": "NOT_READY", "expect": "NOT_READY", "faults": [
        FaultRecord(kind="kill_helm", index=0, during="deploy_bad", status="applied", hits=1).model_dump()]}
    text = render_summary([data], str)
    assert "- p: kill_helm during the bad release: applied, hits 1" in text and "converged" not in text
    assert _fault_lines(data) == ["faults during the rollback:", "  kill_helm during the bad release: applied, hits 1"]
