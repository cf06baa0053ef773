"""Phase verify (and the shared step behind it, harness/steps.verify_against_baseline): healthy or not,
the diff with the baseline and the bad release's snapshot, the recovery objective, and when the
steady-state watch runs.

The cluster and the database are faked at the step's seams: the health wait,
the snapshot, the diff and the watch (its own logic: tests/unit/test_steady.py)."""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from harness import steps
from harness.journal import Difference, FaultRecord, Journal, SteadyStateRecord
from harness.phases import verify
from harness.phases.verify import VerifyPhase
from harness.scenario import load_scenario
from harness.health import OutcomeDecided
from harness.snapshot.app import WorkloadState
from harness.wait import WaitTimeout

SCHEMA = Difference(area="schema", object="column users.nickname", message="column users.nickname is still present")
PODS = Difference(area="health", object="deployment demo", message="deployment demo: 0/2 pods ready")


FLAP = Difference(area="stability", object="pod demo-1", message="pod demo-1 restarted 1 time while the rollback "
                                                                   "was watched for 5s (seen at 2.0s)")


def _snapshot(name: str) -> Any:
    return SimpleNamespace(name=name, model_dump=lambda mode: {"snapshot": name}, workloads=[f"{name} workloads"],
                           helm=None)


def _workload(image: str) -> WorkloadState:
    return WorkloadState(deployment="demo", container="app", spec_image=image)


@pytest.fixture
def rig(tmp_path: Path, kit: Any, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """verify(): set `rig.healthy`, `rig.diffs`, the objective; read what the seams were asked."""
    rig = SimpleNamespace(healthy=True, diffs=[], compared=None, waited=None, flaps=[], watched=None, states=[],
                          injector=None, bad_upgrade=None)

    def wait_healthy(ctx: Any, timeout_s: float, what: str, decided: Any) -> float:
        rig.waited, rig.decided = (timeout_s, what), decided
        if not rig.healthy:
            reason = decided(rig.states, 5.0)
            if reason is not None:
                raise OutcomeDecided(reason, "demo: 0/2 ready")
            raise WaitTimeout(what, timeout_s, "demo: 0/2 ready", "", "")
        return 1.0

    def diff_states(baseline: Any, after: Any, bad: Any) -> list[Difference]:
        rig.compared = (baseline.name, after.name, bad.name if bad else None)
        return list(rig.diffs)

    monkeypatch.setattr(steps, "wait_healthy", wait_healthy)
    monkeypatch.setattr(steps, "take_snapshot", lambda ctx: _snapshot("after"))
    monkeypatch.setattr(steps, "diff_states", diff_states)

    def watch_after_verify(ctx: Any, reference: Any) -> list[Difference]:
        rig.watched = reference
        ctx.journal.steady_state = SteadyStateRecord(started_at="t", stable_for_s=5, watched_s=2.0 if rig.flaps else 5.0,
                                                     samples=2 if rig.flaps else 5, flaps=len(rig.flaps))
        return list(rig.flaps)

    monkeypatch.setattr(verify, "watch_after_verify", watch_after_verify)

    def run(objective: float | None = None, recovered_in: float | None = 10.0, stable_for_s: float = 5,
            fault_records: tuple[tuple[str, str, str | None], ...] = (), before: tuple[Difference, ...] = ()) -> Any:
        baseline = _snapshot("baseline")
        baseline.workloads = [_workload("app:good")]
        doc = kit.minimal_doc(timeouts={"verify_s": 30}, objectives={"max_recover_s": objective},
                              checks={"stable_for_s": stable_for_s})
        faults = [FaultRecord(kind=kind, index=i, status=status, applied_at="t", reverted_at=reverted)
                  for i, (kind, status, reverted) in enumerate(fault_records)]
        ctx = SimpleNamespace(scenario=load_scenario(kit.write_scenario(tmp_path, "v", doc)),
                              journal=Journal(scenario="v", expect="READY", faults=faults, differences=list(before)),
                              cleanup=ExitStack(), baseline=baseline, fault_injector=rig.injector, after_bad_deploy=_snapshot("bad"),
                              bad_upgrade=rig.bad_upgrade,
                              runbook_started_at=None if recovered_in is None else time.monotonic() - recovered_in)
        rig.ctx = ctx
        rig.detail = VerifyPhase().execute(ctx)
        return ctx.journal

    rig.run = run
    return rig


def test_healthy_and_equal_to_the_baseline(rig: Any) -> None:
    j = rig.run()
    assert rig.detail == "0 differences from the baseline; stable for 5.0s (5 samples)"
    assert rig.waited == (30.0, "the app to be healthy after the rollback")
    assert rig.compared == ("baseline", "after", "bad")  # "(bad version)" needs the bad snapshot
    assert j.after_rollback == {"snapshot": "after"} and j.differences == []
    assert [(e.kind, e.message) for e in j.events] == [("verify", "stable for 5.0s (5 samples)")]
    assert j.time_to_recover_s is not None and 10 <= j.time_to_recover_s < 15


def test_the_watch_compares_with_the_workloads_verify_saw(rig: Any) -> None:
    j = rig.run()
    assert rig.watched == ["after workloads"]
    assert j.steady_state is not None and (j.steady_state.samples, j.steady_state.flaps) == (5, 0)


def test_a_flap_in_the_watch_is_a_difference(rig: Any) -> None:
    rig.flaps = [FLAP]
    j = rig.run()
    assert j.differences == [FLAP]
    assert rig.detail == ("0 differences from the baseline; steady-state watch ended at 2.0s of 5s after 2 samples: "
                          "1 flap(s)")


@pytest.mark.parametrize(("case", "kw"), [
    ("turned off", {"stable_for_s": 0}),
    ("verify found a difference", {}),
    ("the objective was missed", {"objective": 5}),
    ("a fault is still in place", {"fault_records": (("pause_postgres", "applied", None),)}),
])
def test_the_watch_runs_only_when_there_is_something_to_watch(rig: Any, case: str, kw: dict[str, Any]) -> None:
    if case == "verify found a difference":
        rig.diffs = [SCHEMA]
    j = rig.run(**kw)
    assert rig.watched is None and j.steady_state is None, case
    assert "stable" not in rig.detail


def test_a_fault_in_place_is_said_to_have_skipped_the_watch(rig: Any) -> None:
    j = rig.run(fault_records=(("pause_postgres", "applied", None), ("delete_app_pod", "applied", None)))
    assert [e.message for e in j.events] == ["steady-state watch skipped: faults still in place (pause_postgres)"]


@pytest.mark.parametrize("record", [
    ("pause_postgres", "applied", "t2"),  # removed before verify
    ("delete_app_pod", "applied", None),  # instant: nothing stays in place
    ("network_latency", "unsupported", None),  # never in place
    ("pause_control_plane", "skipped", None),
])
def test_faults_no_longer_in_place_do_not_stop_the_watch(rig: Any, record: tuple[str, str, str | None]) -> None:
    j = rig.run(fault_records=(record,))
    assert rig.watched == ["after workloads"] and j.steady_state is not None


def test_the_differences_from_the_baseline_are_recorded(rig: Any) -> None:
    rig.diffs = [SCHEMA]
    j = rig.run(recovered_in=None)  # no runbook start (it failed before its first step): no time to recover
    assert rig.detail == "1 differences from the baseline" and j.differences == [SCHEMA]
    assert j.time_to_recover_s is None


def test_unhealthy_is_a_health_difference_and_an_event(rig: Any) -> None:
    rig.healthy = False
    j = rig.run(objective=5)
    assert j.differences == [steps.HEALTH_DIFFERENCE] and rig.detail == "1 differences from the baseline"
    assert j.differences[0].message == "the app did not become healthy again"
    assert [(e.kind, e.message) for e in j.events] == [("verify", "not healthy after 30s: demo: 0/2 ready")]
    assert j.time_to_recover_s is None  # never recovered: no objective to miss either
    assert j.after_rollback == {"snapshot": "after"}  # the state is still compared


def test_unhealthy_with_a_health_difference_from_the_diff_adds_no_second_one(rig: Any) -> None:
    rig.healthy, rig.diffs = False, [PODS]
    assert rig.run().differences == [PODS]


@pytest.mark.parametrize(("objective", "missed"), [(None, False), (60, False), (5, True)])
def test_the_recovery_objective(rig: Any, objective: float | None, missed: bool) -> None:
    j = rig.run(objective=objective, recovered_in=10.0)
    objectives = [d for d in j.differences if d.area == "objective"]
    assert bool(objectives) is missed
    if missed:
        assert objectives[0].object == "time to recover"
        assert objectives[0].message.startswith("recovery took 10.")
        assert objectives[0].message.endswith("s, above the objective max_recover_s=5s")
        assert rig.detail == "0 differences from the baseline"  # the objective is not a difference from the baseline


def test_the_unhealthy_event_is_kept_when_the_snapshot_after_it_fails(rig: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_database(ctx: Any) -> Any:
        raise RuntimeError("connection refused")

    monkeypatch.setattr(steps, "take_snapshot", no_database)
    rig.healthy = False
    with pytest.raises(RuntimeError, match="connection refused"):
        rig.run()
    assert [e.message for e in rig.ctx.journal.events] == ["not healthy after 30s: demo: 0/2 ready"]


# ── the early end of the wait: only where the outcome is NOT_READY whatever the app does ──
DRIFT = Difference(area="runbook", object="runbook step 2", message="runbook drift: step 2 failed")


def test_after_a_failed_runbook_step_the_wait_ends_with_the_reason_recorded(rig: Any) -> None:
    rig.healthy = False
    j = rig.run(before=(DRIFT,))
    health = [d for d in j.differences if d.area == "health"]
    assert health[0].message == ("the app was not healthy; not awaited further: the runbook stopped (runbook step 2 "
                                 "failed), so the rehearsal is NOT_READY whatever the app does")
    assert [e.message for e in j.events] == [
        "not healthy; not awaited further: the runbook stopped (runbook step 2 failed), so the rehearsal is "
        "NOT_READY whatever the app does; last state: demo: 0/2 ready"]


def test_a_declared_image_other_than_the_baselines_ends_the_wait(rig: Any) -> None:
    rig.healthy, rig.states = False, [_workload("app:bad")]
    j = rig.run()
    assert [d.message for d in j.differences] == [
        "the app was not healthy; not awaited further: deployment demo declares image app:bad, not the baseline's "
        "app:good; no controller changes that without someone acting"]


def test_without_a_decided_outcome_the_wait_runs_to_its_timeout(rig: Any) -> None:
    rig.healthy, rig.states = False, [_workload("app:good")]  # the good image, still not ready: it may yet be
    j = rig.run()
    assert j.differences == [steps.HEALTH_DIFFERENCE]
    assert [e.message for e in j.events] == ["not healthy after 30s: demo: 0/2 ready"]


@pytest.mark.parametrize(("drift", "images", "waited", "decided"), [
    (None, ["app:good"], 100.0, False),       # nothing decided: wait for health to the timeout
    ("step 2 failed", ["app:good"], 1.0, False),  # the grace: a rollout just finishing is still recorded
    ("step 2 failed", ["app:good"], steps.DECIDED_GRACE_S, True),
    (None, ["app:bad"], 0.0, True),           # the bad release declared again: at once
    (None, [""], 0.0, False),                 # no reading of the image: nothing decided
])
def test_outcome_decided(drift: str | None, images: list[str], waited: float, decided: bool) -> None:
    rule = steps.outcome_decided([_workload("app:good")], drift)
    assert (rule([_workload(i) for i in images], waited) is not None) is decided


def test_a_deployment_gone_or_not_in_the_baseline_decides_nothing_here() -> None:
    """A missing Deployment is the diff's business (an `app` difference); the wait just runs on."""
    rule = steps.outcome_decided([_workload("app:good")], None)
    gone = WorkloadState(deployment="demo", container="app", exists=False)
    other = WorkloadState(deployment="worker", container="app", spec_image="w:2")
    assert rule([gone, other], 0.0) is None


def test_wait_healthy_ends_early_only_while_unhealthy(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness import health

    unready = WorkloadState(deployment="demo", container="app", spec_image="app:bad", replicas=1)
    ready = WorkloadState(deployment="demo", container="app", spec_image="app:good", replicas=1, ready_replicas=1,
                          rollout_complete=True, image_ids=["d1"])
    readings = [[unready], [ready]]
    monkeypatch.setattr(health, "workload_states", lambda ctx: readings[0])
    monkeypatch.setattr(health, "smoke_ok", lambda ctx: (True, "ok"))
    monkeypatch.setattr(health, "events_text", lambda ctx: "")
    asked: list[float] = []

    def decided(states: list[WorkloadState], waited_s: float) -> str | None:
        asked.append(waited_s)
        return "bad image declared" if states[0].spec_image == "app:bad" else None

    with pytest.raises(OutcomeDecided) as caught:
        health.wait_healthy(SimpleNamespace(), 30, "health", decided)  # type: ignore[arg-type]
    assert (caught.value.reason, caught.value.last) == ("bad image declared", "demo: 0/1 ready, pods ")
    readings.pop(0)
    asked.clear()
    assert health.wait_healthy(SimpleNamespace(), 30, "health", decided) < 1  # type: ignore[arg-type]
    assert asked == []  # healthy: the rule is not even asked


def test_nothing_is_decided_while_a_fault_is_in_place() -> None:
    """The snapshot after the wait would meet the fault (a terminated connection), not the rollback's state."""
    active = ["terminate_db_connections"]
    rule = steps.outcome_decided([_workload("app:good")], "step 1 failed", lambda: active)
    assert rule([_workload("app:bad")], 10.0) is None
    active.clear()  # its duration is over: the next reading decides
    assert rule([_workload("app:bad")], 11.0) is not None


def test_verify_reads_the_faults_in_place_from_the_injector(rig: Any) -> None:
    rig.healthy, rig.states = False, [_workload("app:bad")]
    rig.injector = SimpleNamespace(active=["pause_postgres"])
    j = rig.run(before=(DRIFT,))
    assert j.differences[-1] == steps.HEALTH_DIFFERENCE  # not decided early: waited to the timeout


def test_after_helms_own_rollback_the_schema_sentence_is_the_first_reason(rig: Any) -> None:
    from harness.helm import HelmRevision, UpgradeOutcome
    from harness.judge import decide
    rig.bad_upgrade = UpgradeOutcome(release="demo", label="bad", exit_code=1, before=1, history=[
        HelmRevision(revision=1, status="superseded"), HelmRevision(revision=2, status="failed"),
        HelmRevision(revision=3, status="deployed", description="Rollback to 1")])
    rig.diffs = [Difference(area="helm", object="helm release demo", message="other values"),
                 Difference(area="schema", object="column users.nickname", message="column users.nickname added")]
    j = rig.run(before=(Difference(area="runbook", object="runbook step 1", message="drift"),))
    reasons = decide(j).reasons
    assert reasons[0].startswith("the schema is still migrated after helm's automatic rollback: helm put the good "
                                 "release's manifests back (revision 3, deployed: Rollback to 1)")
    assert reasons[0].endswith("column users.nickname added") and reasons[1:] == ["drift", "other values",
                                                                                 "column users.nickname added"]
    rig.diffs = [Difference(area="app", object="deployment demo", message="image")]  # schema back: no such sentence
    assert [d.message for d in rig.run().differences] == ["image"]
