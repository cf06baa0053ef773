"""Phase detect: each failure mode decided from fake pod, event and Deployment data.

The cluster is faked at its seams (harness.health's readers as detect imports
them, and ctx.kubectl); nothing here starts a cluster.
"""

from __future__ import annotations

import json
import time
from contextlib import ExitStack
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from harness.journal import Journal
from harness.phases import detect
from harness.phases.detect import DetectPhase
from harness.scenario import load_scenario
from harness.scenario.models import FailureMode


def _pod(name: str, restarts: int = 0, waiting: str = "") -> dict[str, Any]:
    state = {"waiting": {"reason": waiting}} if waiting else {"running": {}}
    return {"metadata": {"name": name}, "status": {"containerStatuses": [{"restartCount": restarts, "state": state}]}}


def _unhealthy(pod: str) -> dict[str, Any]:
    return {"reason": "Unhealthy", "message": "Readiness probe failed: HTTP probe failed with statuscode: 503",
            "involvedObject": {"name": pod}}


def _deployment(name: str, reason: str = "NewReplicaSetAvailable") -> dict[str, Any]:
    return {"metadata": {"name": name}, "status": {"conditions": [
        {"type": "Available", "reason": "MinimumReplicasAvailable"},
        {"type": "Progressing", "reason": reason, "message": f'ReplicaSet "{name}-2" has timed out progressing.'}]}}


@pytest.mark.parametrize(("pods", "seen", "what"), [
    ([_pod("demo-bad")], False, "no crashing container yet"),
    ([_pod("demo-bad", restarts=2)], True, "pod demo-bad: restarts=2 "),
    ([_pod("demo-bad", waiting="CrashLoopBackOff")], True, "pod demo-bad: restarts=0 CrashLoopBackOff"),
    ([_pod("demo-bad", waiting="Error")], True, "pod demo-bad: restarts=0 Error"),
    ([_pod("demo-bad", waiting="ContainerCreating")], False, "no crashing container yet"),
])
def test_crashloop(pods: list[dict[str, Any]], seen: bool, what: str) -> None:
    assert detect.crashloop(pods) == (seen, what)


def test_readiness_counts_only_the_given_pods() -> None:
    assert detect.readiness([_pod("demo-bad")], [_unhealthy("demo-good")]) == (False, "no readiness failure yet")
    assert detect.readiness([_pod("demo-bad")], [{"reason": "Killing", "message": "x",
                                                   "involvedObject": {"name": "demo-bad"}}])[0] is False
    assert detect.readiness([_pod("demo-bad")], [_unhealthy("demo-bad")]) == (
        True, "demo-bad: Readiness probe failed: HTTP probe failed with statuscode: 503")


def test_deadline_and_smoke() -> None:
    assert detect.deadline(_deployment("demo")) == (False, "rollout still progressing")
    assert detect.deadline(_deployment("demo", "ProgressDeadlineExceeded")) == (
        True, 'deployment demo: ReplicaSet "demo-2" has timed out progressing.')
    assert detect.smoke_fails(True, "ok") == (False, "smoke ok: ok")
    assert detect.smoke_fails(False, "503 Service Unavailable") == (True, "smoke failed: 503 Service Unavailable")


@pytest.fixture
def ctx(tmp_path: Path, kit: Any, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """A bad release deployed 2 s ago next to the good release's pod demo-good."""
    monkeypatch.setattr(detect, "events_text", lambda c: "(events)")
    monkeypatch.setattr(detect, "take_snapshot", lambda c: SimpleNamespace(model_dump=lambda mode: {"bad": True}))
    doc = kit.minimal_doc(app={"manifests": "app.yaml", "workloads": [{"deployment": "api"}, {"deployment": "web"}]})
    deployments = {"api": _deployment("api"), "web": _deployment("web", "ProgressDeadlineExceeded")}

    def get_json(path: str, query: Any = None) -> Any:
        prefix = "/apis/apps/v1/namespaces/rr-d/deployments/"
        assert path.startswith(prefix), path
        return json.loads(json.dumps(deployments[path.removeprefix(prefix)]))

    return SimpleNamespace(scenario=load_scenario(kit.write_scenario(tmp_path, "d", doc)), get_json=get_json,
                           journal=Journal(scenario="d", expect="READY"), namespace="rr-d", cleanup=ExitStack(),
                           pods_before_bad={"demo-good"}, bad_deployed_at=time.monotonic() - 2,
                           after_bad_deploy=None, redactor=str, bad_upgrade=None, bad_upgrade_ended_at=None)


def test_checks_read_only_the_bad_releases_pods(ctx: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(detect, "app_pods", lambda c: [_pod("demo-good", restarts=3), _pod("demo-bad")])
    monkeypatch.setattr(detect, "namespace_events", lambda c: [_unhealthy("demo-good")])
    assert detect.CHECKS[FailureMode.CRASHLOOP](ctx) == (False, "no crashing container yet")
    assert detect.CHECKS[FailureMode.READINESS](ctx) == (False, "no readiness failure yet")
    monkeypatch.setattr(detect, "namespace_events", lambda c: [_unhealthy("demo-good"), _unhealthy("demo-bad")])
    assert detect.CHECKS[FailureMode.READINESS](ctx)[0] is True


def test_rollout_deadline_reads_each_tracked_deployment(ctx: Any) -> None:
    assert detect.CHECKS[FailureMode.ROLLOUT_DEADLINE](ctx) == (
        True, 'deployment web: ReplicaSet "web-2" has timed out progressing.')


def test_smoke_failure_mode(ctx: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(detect, "smoke_ok", lambda c: (False, "connection refused"))
    assert detect.CHECKS[FailureMode.SMOKE](ctx) == (True, "smoke failed: connection refused")


def test_detected_records_the_time_and_the_bad_state(ctx: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(detect, "app_pods", lambda c: [_pod("demo-bad", waiting="CrashLoopBackOff")])
    detail = DetectPhase().execute(ctx)
    assert detail == f"crashloop detected after {ctx.journal.time_to_detect_s}s"
    assert 2 <= ctx.journal.time_to_detect_s < 10
    assert ctx.journal.after_bad_deploy == {"bad": True} and ctx.after_bad_deploy is not None
    assert ctx.journal.differences == []


def test_not_detected_is_a_difference_and_a_failure(ctx: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx.scenario = ctx.scenario.model_copy(update={"failure": ctx.scenario.failure.model_copy(
        update={"within_s": 0.001})})

    def slow_pods(c: Any) -> list[dict[str, Any]]:
        time.sleep(0.005)  # the first look already outlasts the deadline: no 1 s poll in a unit test
        return [_pod("demo-bad")]

    monkeypatch.setattr(detect, "app_pods", slow_pods)
    with pytest.raises(detect.WaitTimeout):
        DetectPhase().execute(ctx)
    (d,) = ctx.journal.differences
    assert (d.area, d.object) == ("detect", "failure mode crashloop")
    assert d.message == ("the bad version did not fail as described (crashloop) within 0s; "
                         "last state: no crashing container yet")
    assert ctx.journal.events[-1].message == "not detected: no crashing container yet"
    assert ctx.journal.time_to_detect_s is None and ctx.after_bad_deploy is None


# ── helm rolled the bad release back by itself (--atomic) ──────────────────────
def _own_rollback(error: str) -> Any:
    from harness.helm import HelmRevision, UpgradeOutcome
    return UpgradeOutcome(release="demo", label="bad", exit_code=1, error=error, before=1, history=[
        HelmRevision(revision=1, status="superseded", description="Install complete"),
        HelmRevision(revision=2, status="failed", description='Upgrade "demo" failed: context deadline exceeded'),
        HelmRevision(revision=3, status="deployed", description="Rollback to 1")])


ATOMIC_ERROR = ("Error: UPGRADE FAILED: release demo failed, and has been rolled back due to atomic being set: "
                "context deadline exceeded")


def _gone_pod_event(pod: str, reason: str = "Unhealthy") -> dict[str, Any]:
    event = _unhealthy(pod) if reason == "Unhealthy" else {
        "reason": "BackOff", "message": "Back-off restarting failed container app", "involvedObject": {"name": pod}}
    event["involvedObject"]["kind"] = "Pod"
    return event


def test_helms_own_rollback_is_the_detection_when_the_events_show_the_failure(ctx: Any, monkeypatch) -> None:
    """The bad pods are gone (helm rolled back); their readiness failures stay in the events. No waiting."""
    monkeypatch.setattr(detect, "app_pods", lambda c: pytest.fail("nothing to wait for after helm's own rollback"))
    monkeypatch.setattr(detect, "namespace_events", lambda c: [_gone_pod_event("demo-good"), _gone_pod_event("demo-v2")])
    ctx.scenario = ctx.scenario.model_copy(update={"failure": ctx.scenario.failure.model_copy(
        update={"mode": FailureMode.READINESS})})
    ctx.bad_upgrade, ctx.bad_upgrade_ended_at = _own_rollback(ATOMIC_ERROR), ctx.bad_deployed_at + 31.5
    detail = DetectPhase().execute(ctx)
    assert ctx.journal.time_to_detect_s == 31.5 and ctx.journal.after_bad_deploy == {"bad": True}
    assert detail.startswith("readiness detected when helm's upgrade failed, after 31.5s (demo-v2: Readiness probe")
    assert "revision 2 failed, then helm's own rollback: revision 3 deployed (Rollback to 1)" in detail
    event = ctx.journal.events[-1].message
    assert event.startswith("helm failed the bad release and rolled it back by itself: revision 2 failed")
    assert event.endswith(f"helm said: {ATOMIC_ERROR}") and ctx.journal.differences == []


@pytest.mark.parametrize(("mode", "events", "error", "seen"), [
    (FailureMode.CRASHLOOP, [_gone_pod_event("demo-v2", "BackOff")], ATOMIC_ERROR, True),
    (FailureMode.CRASHLOOP, [_gone_pod_event("demo-good", "BackOff")], ATOMIC_ERROR, False),
    (FailureMode.ROLLOUT_DEADLINE, [], ATOMIC_ERROR, True),
    (FailureMode.ROLLOUT_DEADLINE, [], "Error: UPGRADE FAILED: pre-upgrade hooks failed: job failed: "
                                       "BackoffLimitExceeded", False),
    (FailureMode.SMOKE, [_gone_pod_event("demo-v2")], ATOMIC_ERROR, False),
])
def test_each_failure_mode_after_helms_own_rollback(mode: FailureMode, events: list[dict[str, Any]], error: str,
                                                    seen: bool) -> None:
    assert detect.AFTER_OWN_ROLLBACK[mode](events, detect.pods_since_bad(events, {"demo-good"}),
                                           _own_rollback(error))[0] is seen


def test_helm_failing_for_another_reason_is_not_the_described_failure(ctx: Any, monkeypatch) -> None:
    """A hook Job that failed before any pod of the bad release ran: never READY on the claim of a readiness bug."""
    monkeypatch.setattr(detect, "namespace_events", lambda c: [])
    ctx.scenario = ctx.scenario.model_copy(update={"failure": ctx.scenario.failure.model_copy(
        update={"mode": FailureMode.READINESS})})
    ctx.bad_upgrade = _own_rollback("Error: UPGRADE FAILED: pre-upgrade hooks failed: job failed: BackoffLimitExceeded")
    ctx.bad_upgrade_ended_at = time.monotonic()
    with pytest.raises(detect.NotAsDescribed):
        DetectPhase().execute(ctx)
    (d,) = ctx.journal.differences
    assert (d.area, d.object) == ("detect", "failure mode readiness")
    assert d.message.startswith("the bad version did not fail as described (readiness) before helm rolled it back by "
                                "itself (no readiness failure yet); helm said: Error: UPGRADE FAILED: pre-upgrade hooks")
    assert ctx.journal.time_to_detect_s is None
