"""The steady-state watch after a passing verify (harness/steady.py): what a flap is and how it is
worded, the sampling loop (its window, its early end, failed readings), and what it records.

Pure logic: workloads are WorkloadState values as the snapshot builds them; the clock, the sleep
and the sampler are fakes. On a cluster the lead runs the demo (see the watch's docs)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from harness import judge, steady
from harness.journal import Difference, Journal
from harness.redact import Redactor
from harness.scenario import load_scenario
from harness.snapshot.app import PodState, WorkloadState

GOOD_ID, BAD_ID = "sha256:" + "a" * 64, "sha256:" + "b" * 64
WHEN = steady.Moment(3.2, 5)


def _pod(name: str, ready: bool = True, restarts: int = 0, image_id: str = GOOD_ID) -> PodState:
    return PodState(name=name, phase="Running", ready=ready, image_id=image_id, restarts=restarts)


def _web(pods: tuple[PodState, ...] = (_pod("web-abc"), _pod("web-def")), image: str = "web:good",
         revision: int = 3, **kw: Any) -> WorkloadState:
    ids = sorted({p.image_id for p in pods})
    return WorkloadState(deployment="web", container="app", spec_image=image, revision=revision, replicas=2,
                         ready_replicas=sum(p.ready for p in pods), updated_replicas=2, available_replicas=2,
                         rollout_complete=True, image_ids=ids, pods=list(pods), **kw)


REF = _web()
BAD = _web((_pod("web-bad1", ready=False, image_id=BAD_ID),), image="web:bad", revision=2)


def _messages(sample: WorkloadState, bad: WorkloadState | None = BAD) -> list[str]:
    diffs = steady.flaps([REF], [sample], [bad] if bad else None, WHEN)
    assert all(d.area == "stability" for d in diffs)
    return [d.message for d in diffs]


# ── what a flap is ──────────────────────────────────────────────────────────
def test_the_same_state_is_no_flap() -> None:
    assert steady.flaps([REF], [_web()], [BAD], WHEN) == []


def test_a_restart_names_the_pod_and_the_watch() -> None:
    sample = _web((_pod("web-abc", restarts=1), _pod("web-def")))
    diffs = steady.flaps([REF], [sample], [BAD], WHEN)
    assert diffs == [Difference(area="stability", object="pod web-abc", message=(
        "pod web-abc restarted 1 time while the rollback was watched for 5s (seen at 3.2s)"))]


def test_restarts_count_from_what_verify_saw() -> None:
    ref = _web((_pod("web-abc", restarts=4), _pod("web-def")))  # restarts before verify are not flaps
    sample = _web((_pod("web-abc", restarts=7), _pod("web-def")))
    assert [d.message for d in steady.flaps([ref], [sample], None, WHEN)] == [
        "pod web-abc restarted 3 times while the rollback was watched for 5s (seen at 3.2s)"]
    assert steady.flaps([ref], [ref], None, WHEN) == []


def test_a_pod_going_unready() -> None:
    assert _messages(_web((_pod("web-abc"), _pod("web-def", ready=False)))) == [
        "pod web-def went unready at 3.2s of the 5s steady-state watch"]


def test_a_replaced_pod() -> None:
    assert _messages(_web((_pod("web-abc"), _pod("web-xyz")))) == [
        "pod web-def went away, replaced by web-xyz at 3.2s of the 5s steady-state watch"]


def test_a_pod_that_appears() -> None:
    assert _messages(_web((_pod("web-abc"), _pod("web-def"), _pod("web-new")))) == [
        "pod web-new of deployment web started at 3.2s of the 5s steady-state watch"]


def test_the_bad_release_put_back_by_a_sync() -> None:
    """A controller or GitOps sync re-applies the bad release: the template comes first, named as the bad one."""
    sample = _web(image="web:bad", revision=4)
    assert _messages(sample) == ["deployment web went back to image web:bad (the bad release's) at 3.2s of the 5s "
                                 "steady-state watch; after the rollback it declared web:good"]


def test_another_image_is_not_called_the_bad_release() -> None:
    assert _messages(_web(image="web:other", revision=4)) == [
        "deployment web changed to image web:other at 3.2s of the 5s steady-state watch; after the rollback it "
        "declared web:good"]


def test_a_pod_template_change_with_the_same_image() -> None:
    assert _messages(_web(revision=4)) == [
        "deployment web's pod template changed at 3.2s of the 5s steady-state watch (revision 3 -> 4): something "
        "applied or restarted it after the rollback"]


def test_pods_of_the_bad_image_running_again() -> None:
    sample = _web((_pod("web-abc"), _pod("web-def"), _pod("web-bad2", ready=False, image_id=BAD_ID)))
    messages = _messages(sample)
    assert messages[0] == (f"deployment web runs {BAD_ID[:19]} (the bad release's) at 3.2s of the 5s steady-state "
                           f"watch; after the rollback it ran {GOOD_ID[:19]}")
    assert messages[1].startswith("pod web-bad2 of deployment web started")


def test_a_deleted_deployment_is_one_flap() -> None:
    gone = WorkloadState(deployment="web", container="app", exists=False)
    assert steady.flaps([REF], [gone], None, WHEN) == [Difference(
        area="stability", object="deployment web", message="deployment web was deleted at 3.2s of the 5s steady-state watch")]
    assert [d.object for d in steady.flaps([REF], [], None, WHEN)] == ["deployment web"]


# ── the loop ────────────────────────────────────────────────────────────────
class FakeTime:
    """A clock that only the sleep (and a slow reading) moves."""

    def __init__(self, read_s: float = 0.0) -> None:
        self.t, self.read_s, self.sleeps = 100.0, read_s, []

    def clock(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.sleeps.append(round(s, 3))
        self.t += s


def _sampler(ft: FakeTime, states: list[Any]) -> Any:
    """Each reading returns the next item (an exception is raised); the last one repeats."""
    calls = {"n": 0}

    def sample() -> list[WorkloadState]:
        item = states[min(calls["n"], len(states) - 1)]
        calls["n"] += 1
        ft.t += ft.read_s
        if isinstance(item, Exception):
            raise item
        return item

    sample.calls = calls  # type: ignore[attr-defined]
    return sample


def test_a_steady_app_is_read_until_the_window_has_passed() -> None:
    ft = FakeTime()
    sample = _sampler(ft, [[_web()]])
    r = steady.watch([REF], None, 5, sample, poll_s=1, clock=ft.clock, sleep=ft.sleep)
    assert (r.samples, r.unread, r.flaps, r.watched_s) == (5, 0, [], 5.0)
    assert ft.sleeps == [1, 1, 1, 1, 1]


def test_the_last_reading_is_at_the_end_of_the_window() -> None:
    """A window that is not a multiple of the poll interval: the last sleep is shortened, not skipped."""
    ft = FakeTime(read_s=0.25)
    r = steady.watch([REF], None, 2.6, _sampler(ft, [[_web()]]), poll_s=1, clock=ft.clock, sleep=ft.sleep)
    assert ft.sleeps == [1, 1, 0.1] and r.samples == 3 and r.watched_s == pytest.approx(2.85)


def test_the_watch_ends_at_the_first_flap() -> None:
    ft = FakeTime()
    restarted = [_web((_pod("web-abc", restarts=1), _pod("web-def")))]
    sample = _sampler(ft, [[_web()], restarted, [_web()]])
    r = steady.watch([REF], [BAD], 5, sample, poll_s=1, clock=ft.clock, sleep=ft.sleep)
    assert (r.samples, r.watched_s, sample.calls["n"]) == (2, 2.0, 2)
    assert [d.message for d in r.flaps] == [
        "pod web-abc restarted 1 time while the rollback was watched for 5s (seen at 2.0s)"]


def test_a_failed_reading_is_no_flap_and_the_watch_goes_on() -> None:
    ft = FakeTime()
    sample = _sampler(ft, [TimeoutError("read timed out"), [_web()]])
    r = steady.watch([REF], None, 3, sample, poll_s=1, clock=ft.clock, sleep=ft.sleep)
    assert (r.samples, r.unread, r.flaps, r.last_error) == (2, 1, [], "TimeoutError: read timed out")


# ── on the cluster's seam ───────────────────────────────────────────────────
@pytest.fixture
def ctx(tmp_path: Path, kit: Any) -> SimpleNamespace:
    doc = kit.minimal_doc(app={"manifests": "app.yaml", "workloads": [{"deployment": "web"}]},
                          checks={"stable_for_s": 2})
    return SimpleNamespace(scenario=load_scenario(kit.write_scenario(tmp_path, "s", doc)),
                           journal=Journal(scenario="s", expect="READY"), redactor=Redactor(["hunter22"]),
                           after_bad_deploy=SimpleNamespace(workloads=[BAD]))


def _fast(monkeypatch: pytest.MonkeyPatch, states: list[Any]) -> None:
    ft = FakeTime()
    real = steady.watch
    monkeypatch.setattr(steady, "workload_sampler", lambda ctx: _sampler(ft, states))
    monkeypatch.setattr(steady, "watch", lambda *a, **kw: real(*a, clock=ft.clock, sleep=ft.sleep, **kw))


def test_the_watch_is_recorded_in_the_journal(ctx: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _fast(monkeypatch, [[_web()]])
    assert steady.watch_after_verify(ctx, [REF]) == []
    rec = ctx.journal.steady_state
    assert (rec.stable_for_s, rec.watched_s, rec.samples, rec.unread, rec.flaps) == (2, 2.0, 2, 0, 0)
    assert rec.summary() == "stable for 2.0s (2 samples)"


def test_flaps_are_redacted_and_counted(ctx: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _fast(monkeypatch, [[_web(image="registry/hunter22:bad", revision=4)]])
    found = steady.watch_after_verify(ctx, [REF])
    assert len(found) == 1 and "hunter22" not in found[0].message and "***" in found[0].message
    rec = ctx.journal.steady_state
    assert (rec.samples, rec.flaps, rec.watched_s) == (1, 1, 1.0)
    assert rec.summary() == "steady-state watch ended at 1.0s of 2s after 1 samples: 1 flap(s)"


def test_a_watch_that_read_nothing_is_an_error_not_a_steady_state(ctx: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _fast(monkeypatch, [ConnectionError("refused by hunter22")])
    with pytest.raises(steady.NothingRead, match=r"read the workloads 2 times and failed each time") as exc:
        steady.watch_after_verify(ctx, [REF])
    assert "hunter22" not in str(exc.value)
    rec = ctx.journal.steady_state
    assert (rec.samples, rec.unread, rec.last_error) == (0, 2, "ConnectionError: refused by ***")


def test_every_request_of_a_reading_carries_a_timeout() -> None:
    seen: dict[str, Any] = {}

    class Api:
        def read_namespaced_deployment(self, name: str, namespace: str, **kw: Any) -> str:
            seen.update(kw, args=(name, namespace))
            return "dep"

    bounded = steady._Bounded(Api(), 5.0)
    assert bounded.read_namespaced_deployment("web", "ns") == "dep"
    assert seen == {"_request_timeout": 5.0, "args": ("web", "ns")}


def test_the_sampler_reads_each_tracked_workload(ctx: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def snapshot_workload(apps: Any, core: Any, namespace: str, deployment: str, container: str | None,
                          identify: Any) -> str:
        calls.append((type(apps).__name__, type(core).__name__, namespace, deployment, container, identify))
        return deployment

    def identify(ref: str, node: str | None) -> str:
        return ref

    monkeypatch.setattr(steady, "snapshot_workload", snapshot_workload)
    ctx.api, ctx.namespace = (lambda: (object(), object(), object())), "rr-s-1"
    ctx.infra = SimpleNamespace(cluster=SimpleNamespace(image_identity=identify))
    assert steady.workload_sampler(ctx)() == ["web"]
    assert calls == [("_Bounded", "_Bounded", "rr-s-1", "web", None, identify)]


# ── the judge ───────────────────────────────────────────────────────────────
def test_a_flap_makes_the_verdict_not_ready_through_the_one_rule() -> None:
    flap = steady.flaps([REF], [_web((_pod("web-abc", restarts=1), _pod("web-def")))], None, WHEN)
    judged = judge.decide(Journal(scenario="s", expect="READY", differences=flap))
    assert judged.verdict.value == "NOT_READY"
    assert judged.reasons == ["pod web-abc restarted 1 time while the rollback was watched for 5s (seen at 3.2s)"]
