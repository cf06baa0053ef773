"""Steady state after the rollback: once verify found the state equal to the baseline, keep
watching the app for `checks.stable_for_s`.

Verify sees one moment. A rollback whose pods restart a few seconds later, whose pods go
unready or get replaced, or which a controller or GitOps sync undoes (the bad release's
pod template or image comes back) is not a recovery. Each such flap is a `stability`
difference, so the judge's one rule (any difference → NOT_READY) covers it.

The reference is the workloads of verify's own snapshot (the state found equal to the
baseline), read again every POLL_S with the same reading the snapshot uses
(`snapshot.app.snapshot_workload`), each API request bounded by REQUEST_TIMEOUT_S. The
watch ends at the first sample with a flap, or at the end of the window. `flaps` and
`watch` are pure (sampler, clock and sleep are handed in); `watch_after_verify` wires them
to the cluster.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from harness.context import RehearsalContext
from harness.journal import Difference, SteadyStateRecord, now_iso
from harness.progress import say
from harness.snapshot.app import PodState, WorkloadState, snapshot_workload

AREA = "stability"
POLL_S = 1.0  # as often as the health wait reads the same workloads
REQUEST_TIMEOUT_S = 5.0  # one API request of a sample: a paused API server must not hang the watch


# ── what a flap is ──────────────────────────────────────────────────────────
@dataclass(frozen=True)
class Moment:
    """When a sample was taken, for the wording: "at 3.2s of the 5s steady-state watch"."""

    at_s: float
    window_s: float

    def __str__(self) -> str:
        return f"at {self.at_s:.1f}s of the {self.window_s:g}s steady-state watch"


def _deployment(w: WorkloadState) -> str:
    return f"deployment {w.deployment}"


def _bad_tag(value: str, bad: WorkloadState | None, seen: Callable[[WorkloadState], Sequence[str]]) -> str:
    return " (the bad release's)" if bad is not None and value in seen(bad) else ""


def _image_changed(ref: WorkloadState, now: WorkloadState, bad: WorkloadState | None, when: Moment) -> list[Difference]:
    """The declared image moved away from the one verify saw: someone applied a release again."""
    if now.spec_image == ref.spec_image:
        return []
    tag = _bad_tag(now.spec_image, bad, lambda b: [b.spec_image])
    verb = "went back to" if tag else "changed to"
    return [Difference(area=AREA, object=_deployment(ref), message=(
        f"{_deployment(ref)} {verb} image {now.spec_image}{tag} {when}; after the rollback it declared "
        f"{ref.spec_image}"))]


def _template_changed(ref: WorkloadState, now: WorkloadState, bad: WorkloadState | None,
                      when: Moment) -> list[Difference]:
    """A new revision with the same image: the pod template changed (a restart, an apply of other fields)."""
    if now.spec_image != ref.spec_image or now.revision == ref.revision or None in (now.revision, ref.revision):
        return []
    return [Difference(area=AREA, object=_deployment(ref), message=(
        f"{_deployment(ref)}'s pod template changed {when} (revision {ref.revision} -> {now.revision}): "
        "something applied or restarted it after the rollback"))]


def _running_changed(ref: WorkloadState, now: WorkloadState, bad: WorkloadState | None,
                     when: Moment) -> list[Difference]:
    """The running digests moved away from those verify saw (pods of another image started)."""
    added = [i for i in now.image_ids if i not in ref.image_ids]
    if not added:
        return []
    tag = next((t for i in added if (t := _bad_tag(i, bad, lambda b: b.image_ids))), "")
    return [Difference(area=AREA, object=_deployment(ref), message=(
        f"{_deployment(ref)} runs {', '.join(i[:19] for i in added)}{tag} {when}; after the rollback it ran "
        f"{', '.join(i[:19] for i in ref.image_ids) or 'nothing'}"))]


def _pods_replaced(ref: WorkloadState, now: WorkloadState, bad: WorkloadState | None,
                   when: Moment) -> list[Difference]:
    """Pods gone or new: a pod replaced (evicted, deleted, a new ReplicaSet) or the count changed."""
    before, after = {p.name for p in ref.pods}, {p.name for p in now.pods}
    gone, new = sorted(before - after), sorted(after - before)
    if gone:
        by = f", replaced by {', '.join(new)}" if new else ""
        return [Difference(area=AREA, object=f"pod {name}", message=f"pod {name} went away{by} {when}")
                for name in gone]
    return [Difference(area=AREA, object=f"pod {name}", message=f"pod {name} of {_deployment(ref)} started {when}")
            for name in new]


def _both(ref: WorkloadState, now: WorkloadState) -> list[tuple[PodState, PodState]]:
    current = {p.name: p for p in now.pods}
    return [(p, current[p.name]) for p in ref.pods if p.name in current]


def _restarted(ref: WorkloadState, now: WorkloadState, bad: WorkloadState | None, when: Moment) -> list[Difference]:
    out = []
    for old, new in _both(ref, now):
        n = new.restarts - old.restarts
        if n > 0:
            times = "1 time" if n == 1 else f"{n} times"
            out.append(Difference(area=AREA, object=f"pod {new.name}", message=(
                f"pod {new.name} restarted {times} while the rollback was watched for {when.window_s:g}s "
                f"(seen at {when.at_s:.1f}s)")))
    return out


def _went_unready(ref: WorkloadState, now: WorkloadState, bad: WorkloadState | None,
                  when: Moment) -> list[Difference]:
    return [Difference(area=AREA, object=f"pod {new.name}", message=f"pod {new.name} went unready {when}")
            for old, new in _both(ref, now) if old.ready and not new.ready]


Check = Callable[[WorkloadState, WorkloadState, WorkloadState | None, Moment], list[Difference]]
# Every way a tracked workload can flap, in the order the differences are listed.
CHECKS: tuple[Check, ...] = (_image_changed, _template_changed, _running_changed, _pods_replaced, _restarted,
                             _went_unready)


def flaps(reference: Sequence[WorkloadState], sample: Sequence[WorkloadState],
          bad: Sequence[WorkloadState] | None, when: Moment) -> list[Difference]:
    """How `sample` moved away from the state verify found equal to the baseline (empty: steady);
    `bad` (the bad release's workloads) only names the bad release in the messages."""
    now_by = {w.deployment: w for w in sample}
    bad_by = {w.deployment: w for w in bad or []}
    out: list[Difference] = []
    for ref in reference:
        now = now_by.get(ref.deployment)
        if now is None or not now.exists:
            out.append(Difference(area=AREA, object=_deployment(ref), message=f"{_deployment(ref)} was deleted {when}"))
            continue
        for check in CHECKS:
            out += check(ref, now, bad_by.get(ref.deployment), when)
    return out


# ── the watch ───────────────────────────────────────────────────────────────
@dataclass(frozen=True)
class WatchResult:
    watched_s: float
    samples: int  # readings compared
    unread: int  # readings that failed
    flaps: list[Difference]  # those of the sample that ended the watch; empty: steady for the window
    last_error: str = ""


def watch(reference: Sequence[WorkloadState], bad: Sequence[WorkloadState] | None, stable_for_s: float,
          sample: Callable[[], list[WorkloadState]], *, poll_s: float = POLL_S,
          clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> WatchResult:
    """Read the workloads every `poll_s` until the first flap or until `stable_for_s` has passed (the last
    reading is taken at or after the end of the window, so the whole window is covered). A failed reading
    (an API error) is counted apart and the watch goes on: it says nothing about the app."""
    t0 = clock()
    samples = unread = 0
    last_error = ""
    while True:
        sleep(max(0.0, min(poll_s, stable_for_s - (clock() - t0))))
        try:
            states = sample()
        except Exception as exc:  # a transient API error is not a flap of the app
            unread, last_error = unread + 1, f"{type(exc).__name__}: {exc}"
        else:
            samples += 1
            found = flaps(reference, states, bad, Moment(round(clock() - t0, 1), stable_for_s))
            if found:
                return WatchResult(round(clock() - t0, 2), samples, unread, found, last_error)
        if clock() - t0 >= stable_for_s:
            return WatchResult(round(clock() - t0, 2), samples, unread, [], last_error)


# ── on the cluster ──────────────────────────────────────────────────────────
class _Bounded:
    """An API object whose every request carries a timeout (the client has no default one)."""

    def __init__(self, api: Any, timeout_s: float) -> None:
        self._api, self._timeout_s = api, timeout_s

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._api, name)
        return lambda *args, **kw: method(*args, _request_timeout=self._timeout_s, **kw)


def workload_sampler(ctx: RehearsalContext) -> Callable[[], list[WorkloadState]]:
    """The tracked workloads, read the way the snapshot reads them, over one API client."""
    apps, core, _ = ctx.api()
    apps, core = _Bounded(apps, REQUEST_TIMEOUT_S), _Bounded(core, REQUEST_TIMEOUT_S)
    workloads = ctx.scenario.app.workloads
    identify = ctx.infra.cluster.image_identity
    return lambda: [snapshot_workload(apps, core, ctx.namespace, w.deployment, w.container, identify)
                    for w in workloads]


class NothingRead(RuntimeError):
    """Not one reading of the steady-state watch succeeded: nothing was compared."""


def watch_after_verify(ctx: RehearsalContext, reference: Sequence[WorkloadState]) -> list[Difference]:
    """Watch the app for `checks.stable_for_s`; record the watch in the journal; return its flaps.

    Raises NothingRead when no reading succeeded (the verdict must not claim a steady state nobody saw)."""
    window = ctx.scenario.checks.stable_for_s
    bad = ctx.after_bad_deploy.workloads if ctx.after_bad_deploy is not None else None
    say(f"watching the app for {window:g}s after verify (checks.stable_for_s)")
    started = now_iso()
    result = watch(reference, bad, window, workload_sampler(ctx))
    found = [d.model_copy(update={"message": ctx.redactor(d.message)}) for d in result.flaps]
    ctx.journal.steady_state = SteadyStateRecord(
        started_at=started, stable_for_s=window, watched_s=result.watched_s, samples=result.samples,
        unread=result.unread, flaps=len(found), last_error=ctx.redactor(result.last_error))
    if result.samples == 0:
        raise NothingRead(ctx.redactor(f"the steady-state watch read the workloads {result.unread} times and "
                                       f"failed each time: {result.last_error}"))
    return found
