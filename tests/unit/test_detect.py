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

    def kubectl(*args: str, **kw: Any) -> Any:
        assert args[:2] == ("get", "deployment")
        return SimpleNamespace(stdout=json.dumps(deployments[args[2]]), returncode=0)

    return SimpleNamespace(scenario=load_scenario(kit.write_scenario(tmp_path, "d", doc)), kubectl=kubectl,
                           journal=Journal(scenario="d", expect="READY"), namespace="rr-d", cleanup=ExitStack(),
                           pods_before_bad={"demo-good"}, bad_deployed_at=time.monotonic() - 2,
                           after_bad_deploy=None, redactor=str)


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
