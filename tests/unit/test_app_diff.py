"""The app half of the state diff, on hand-built workload snapshots."""

from __future__ import annotations

from typing import Any

from harness.snapshot.app import PodState, WorkloadState, diff_workloads

GOOD = "rollback-rehearsal/demo-app@sha256:1111111111111111111111111111111111111111111111111111111111111111"
BAD = "rollback-rehearsal/demo-app@sha256:2222222222222222222222222222222222222222222222222222222222222222"
OTHER = "rollback-rehearsal/demo-app@sha256:3333333333333333333333333333333333333333333333333333333333333333"


def ws(deployment: str = "demo", image_id: str = GOOD, spec_image: str = "demo-app:v1", **kw: Any) -> WorkloadState:
    """A healthy single-replica workload unless overridden."""
    ready = kw.pop("ready", True)
    fields: dict[str, Any] = {
        "deployment": deployment, "container": "app", "spec_image": spec_image, "revision": 1,
        "replicas": 1, "ready_replicas": 1 if ready else 0, "updated_replicas": 1, "available_replicas": 1 if ready else 0,
        "rollout_complete": ready, "image_ids": [image_id] if image_id else [],
        "pods": [PodState(name=f"{deployment}-abc", phase="Running", ready=ready, image_id=image_id, restarts=0)],
    }
    fields.update(kw)
    return WorkloadState(**fields)


def test_healthy_fixture_is_healthy() -> None:
    assert ws().healthy and not ws(ready=False).healthy


def test_equal_states_have_no_differences() -> None:
    base = [ws(), ws("worker", spec_image="worker:v1")]
    assert diff_workloads(base, [ws(), ws("worker", spec_image="worker:v1")]) == []
    assert diff_workloads(base, list(reversed(base)), bad=[ws(image_id=BAD)]) == []  # order does not matter


def test_revision_alone_is_not_a_difference() -> None:
    """`rollout undo` makes a new revision: equal images at a higher revision are a good rollback."""
    assert diff_workloads([ws(revision=1)], [ws(revision=3)]) == []


def test_running_the_bad_version_is_named() -> None:
    (d,) = diff_workloads([ws()], [ws(image_id=BAD)], bad=[ws(image_id=BAD, spec_image="demo-app:v2")])
    assert d.area == "app" and d.object == "deployment demo"
    assert "(bad version)" in d.message
    assert "sha256:2222222222" in d.message and "baseline ran sha256:1111111111" in d.message


def test_a_third_image_is_not_called_the_bad_version() -> None:
    (d,) = diff_workloads([ws()], [ws(image_id=OTHER)], bad=[ws(image_id=BAD)])
    assert "(bad version)" not in d.message and "sha256:3333333333" in d.message


def test_without_bad_snapshot_there_is_no_tag() -> None:
    (d,) = diff_workloads([ws()], [ws(image_id=BAD)])
    assert d.area == "app" and "(bad version)" not in d.message


def test_bad_snapshot_of_another_deployment_does_not_tag() -> None:
    (d,) = diff_workloads([ws()], [ws(image_id=BAD)], bad=[ws("worker", image_id=BAD)])
    assert "(bad version)" not in d.message


def test_declared_image_difference() -> None:
    (d,) = diff_workloads([ws()], [ws(spec_image="demo-app:v2")])
    assert d.area == "app" and "declares image demo-app:v2 (baseline demo-app:v1)" in d.message


def test_declared_image_of_the_bad_release_is_named_so_even_before_its_pods_run() -> None:
    """Verify stops waiting once a Deployment declares another image: the bad pod may still be Pending."""
    bad = [ws(spec_image="demo-app:v3", image_id=BAD)]
    (d,) = diff_workloads([ws()], [ws(spec_image="demo-app:v3")], bad=bad)
    assert d.message == "deployment demo declares image demo-app:v3 (bad version) (baseline demo-app:v1)"
    (other,) = diff_workloads([ws()], [ws(spec_image="demo-app:v4")], bad=bad)
    assert "(bad version)" not in other.message


def test_missing_deployment() -> None:
    base = [ws(), ws("worker")]
    for after in ([ws()], [ws(), WorkloadState(deployment="worker", container="app", exists=False)]):
        diffs = diff_workloads(base, after)
        assert len(diffs) == 1, diffs  # nothing else is reported for a workload that is gone
        assert diffs[0].object == "deployment worker" and "no longer exists" in diffs[0].message


def test_unhealthy_state() -> None:
    after = ws(ready=False)
    diffs = diff_workloads([ws()], [after])
    assert [d.area for d in diffs] == ["health"]
    msg = diffs[0].message
    assert "not healthy" in msg and "0/1 ready" in msg and "incomplete" in msg and "demo-abc=Running/unready" in msg


def test_mixed_images_during_a_rollout_are_unhealthy_and_different() -> None:
    after = ws(replicas=2, ready_replicas=2, image_ids=[GOOD, BAD],
               pods=[PodState(name="a", phase="Running", ready=True, image_id=GOOD, restarts=0),
                     PodState(name="b", phase="Running", ready=True, image_id=BAD, restarts=0)])
    diffs = diff_workloads([ws()], [after], bad=[ws(image_id=BAD)])
    assert {d.area for d in diffs} == {"app", "health"}
    app = next(d for d in diffs if d.area == "app")
    assert "(bad version)" in app.message


def test_no_pods_running() -> None:
    after = ws(image_ids=[], pods=[], ready=False)
    diffs = diff_workloads([ws()], [after])
    assert [d.area for d in diffs] == ["app", "health"]
    assert "runs nothing" in diffs[0].message and diffs[1].message.endswith("pods none")


def test_only_the_changed_workload_is_reported() -> None:
    base = [ws(), ws("worker", spec_image="worker:v1")]
    diffs = diff_workloads(base, [ws(), ws("worker", spec_image="worker:v2")])
    assert [d.object for d in diffs] == ["deployment worker"]


def test_replica_count_not_restored_is_a_difference() -> None:
    """`rollout undo` does not restore spec.replicas: a runbook that scales and never scales back is caught."""
    two = [PodState(name=f"demo-{i}", phase="Running", ready=True, image_id=GOOD, restarts=0) for i in range(2)]
    after = ws(replicas=2, ready_replicas=2, updated_replicas=2, available_replicas=2, pods=two)
    assert after.healthy
    diffs = diff_workloads([ws()], [after])
    assert [(d.area, d.object) for d in diffs] == [("app", "deployment demo")]
    assert "2 replicas (baseline 1)" in diffs[0].message


def test_a_running_image_is_identified_by_its_content_digest_only() -> None:
    from harness.snapshot.image_ids import content_digest  # noqa: PLC0415

    # The same content, reported under the name `kind load` imported it as, then under a registry reference.
    assert content_digest("import-2026-11-26@sha256:d0d0") == content_digest("127.0.0.1:5000/demo@sha256:d0d0")
    assert content_digest("127.0.0.1:5000/demo@sha256:d0d0") == "sha256:d0d0"
    assert content_digest("sha256:d0d0") == "sha256:d0d0" and content_digest("") == ""
