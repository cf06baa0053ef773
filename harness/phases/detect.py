"""Detect the bad version's failure the way the scenario says it fails.

Each failure mode is a pure decision over what the cluster shows (pods,
events, Deployments, the smoke request); `CHECKS` reads that through
harness.health and kubectl and hands it to the decision.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from harness.context import RehearsalContext
from harness.health import app_pods, events_text, namespace_events, readiness_failures, smoke_ok
from harness.helm import UpgradeOutcome, own_rollback_text
from harness.journal import Difference
from harness.phases import OnFailure, Phase
from harness.scenario.models import FailureMode
from harness.snapshot.state import take_snapshot
from harness.wait import Wait, WaitTimeout
from harness.redact import redact_head

Seen = tuple[bool, str]  # (the failure shows, what was seen)


# ── the decisions, from data ─────────────────────────────────────────────────
def crashloop(pods: list[dict[str, Any]]) -> Seen:
    for pod in pods:
        for st in pod.get("status", {}).get("containerStatuses", []):
            waiting = st.get("state", {}).get("waiting", {}).get("reason", "")
            if st.get("restartCount", 0) >= 1 or waiting in ("CrashLoopBackOff", "Error"):
                return True, f"pod {pod['metadata']['name']}: restarts={st.get('restartCount')} {waiting}"
    return False, "no crashing container yet"


def readiness(pods: list[dict[str, Any]], events: list[dict[str, Any]]) -> Seen:
    names = {p["metadata"]["name"] for p in pods}
    for e in readiness_failures(events, names)[:1]:
        return True, f"{e['involvedObject'].get('name')}: {e['message'][:160]}"
    return False, "no readiness failure yet"


def deadline(deployment: dict[str, Any]) -> Seen:
    for c in deployment.get("status", {}).get("conditions", []):
        if c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded":
            return True, f"deployment {deployment['metadata']['name']}: {c.get('message')}"
    return False, "rollout still progressing"


def smoke_fails(ok: bool, out: str) -> Seen:
    return (not ok), f"smoke {'ok' if ok else 'failed'}: {out}"


# ── what the cluster shows ───────────────────────────────────────────────────
def _bad_pods(ctx: RehearsalContext) -> list[dict[str, Any]]:
    """Only pods created by the bad release count: the good release's own
    start-up (a first failed probe, an old restart) must not be mistaken for it."""
    return [p for p in app_pods(ctx) if p["metadata"]["name"] not in ctx.pods_before_bad]


def _deadline(ctx: RehearsalContext) -> Seen:
    for w in ctx.scenario.app.workloads:
        dep = ctx.get_json(f"/apis/apps/v1/namespaces/{ctx.namespace}/deployments/{w.deployment}")
        seen = deadline(dep)
        if seen[0]:
            return seen
    return False, "rollout still progressing"


CHECKS: dict[FailureMode, Callable[[RehearsalContext], Seen]] = {
    FailureMode.CRASHLOOP: lambda ctx: crashloop(_bad_pods(ctx)),
    FailureMode.READINESS: lambda ctx: readiness(_bad_pods(ctx), namespace_events(ctx)),
    FailureMode.ROLLOUT_DEADLINE: _deadline,
    FailureMode.SMOKE: lambda ctx: smoke_fails(*smoke_ok(ctx)),
}


# ── after helm rolled the bad release back by itself (--atomic) ──────────────
# Its pods are gone by then, their events are not: what each failure mode left, read from the namespace's events
# (of pods the bad release created) and from helm's own answer. A failure that does not show is "not as described":
# helm may have failed for another reason (a hook Job that failed, a chart error), and a rehearsal that did not
# meet the failure it claims is never READY.
_WAITED_OUT = ("context deadline exceeded", "timed out waiting for the condition")


def backoff(events: list[dict[str, Any]], pods: set[str]) -> Seen:
    for e in events:
        if e.get("reason") == "BackOff" and (e.get("involvedObject") or {}).get("name") in pods:
            return True, f"{e['involvedObject'].get('name')}: {e.get('message', '')[:160]}"
    return False, "no crashing container in the bad release's events"


def waited_out(upgrade: UpgradeOutcome) -> Seen:
    if any(w in upgrade.error for w in _WAITED_OUT):
        return True, f"helm's --wait gave up on the rollout: {upgrade.error_line[:200]}"
    return False, f"helm did not time out waiting for the rollout: {upgrade.error_line[:200]}"


Evidence = Callable[[list[dict[str, Any]], set[str], UpgradeOutcome], Seen]
AFTER_OWN_ROLLBACK: dict[FailureMode, Evidence] = {
    FailureMode.READINESS: lambda events, pods, up: readiness([{"metadata": {"name": p}} for p in pods], events),
    FailureMode.CRASHLOOP: lambda events, pods, up: backoff(events, pods),
    FailureMode.ROLLOUT_DEADLINE: lambda events, pods, up: waited_out(up),
    FailureMode.SMOKE: lambda events, pods, up: (False, "helm cannot see a failing smoke request: its --wait "
                                                         "passes once the pods are ready"),
}


def pods_since_bad(events: list[dict[str, Any]], before: set[str]) -> set[str]:
    """The pods the events name that did not exist before the bad release (gone or not)."""
    return {o.get("name", "") for e in events if (o := e.get("involvedObject") or {}).get("kind") == "Pod"} - before


class NotAsDescribed(RuntimeError):
    """The bad release did not fail the way the scenario says (recorded as a `detect` difference)."""


class DetectPhase(Phase):
    name = "detect"
    on_failure = OnFailure.EVIDENCE  # a bad release that does not fail as described is reported

    def execute(self, ctx: RehearsalContext) -> str:
        up = ctx.bad_upgrade
        if up is not None and up.own_rollback is not None:  # nothing left to wait for: helm already rolled back
            return self._after_own_rollback(ctx, up)
        f = ctx.scenario.failure
        try:
            Wait(f"the bad version to fail ({f.mode.value})", f.within_s, 1.0,
                 hint="the bad version did not fail as the scenario says; check failure.mode",
                 evidence=lambda: events_text(ctx)).until(lambda: CHECKS[f.mode](ctx))
        except WaitTimeout as exc:
            # A rehearsal whose bad release did not fail as described did not
            # exercise the rollback it claims to: never READY.
            ctx.journal.event("detect", f"not detected: {exc.last}")
            ctx.journal.differences.append(Difference(
                area="detect", object=f"failure mode {f.mode.value}",
                message=(f"the bad version did not fail as described ({f.mode.value}) within {f.within_s:.0f}s; "
                         f"last state: {redact_head(ctx.redactor, exc.last, 200)}")))
            raise
        self._detected(ctx, time.monotonic())
        return f"{f.mode.value} detected after {ctx.journal.time_to_detect_s}s"

    def _after_own_rollback(self, ctx: RehearsalContext, up: UpgradeOutcome) -> str:
        """helm failed the bad release and rolled it back by itself (--atomic): that failure, in helm's words and
        history, is the detection, at the moment helm returned, when the team's pipeline turns red."""
        mode = ctx.scenario.failure.mode
        events = namespace_events(ctx)
        seen, what = AFTER_OWN_ROLLBACK[mode](events, pods_since_bad(events, ctx.pods_before_bad), up)
        helm_did = f"helm failed the bad release and rolled it back by itself: {own_rollback_text(up)}"
        ctx.journal.event("detect", redact_head(ctx.redactor, f"{helm_did}; helm said: {up.error_line}", 900))
        if not seen:
            msg = redact_head(ctx.redactor, f"the bad version did not fail as described ({mode.value}) before helm "
                                            f"rolled it back by itself ({what}); helm said: {up.error_line}", 600)
            ctx.journal.differences.append(Difference(area="detect", object=f"failure mode {mode.value}",
                                                      message=msg))
            raise NotAsDescribed(msg)
        assert ctx.bad_upgrade_ended_at is not None, "set with bad_upgrade"
        self._detected(ctx, ctx.bad_upgrade_ended_at)
        return redact_head(ctx.redactor, f"{mode.value} detected when helm's upgrade failed, after "
                                         f"{ctx.journal.time_to_detect_s}s ({what}); {helm_did}", 600)

    @staticmethod
    def _detected(ctx: RehearsalContext, at: float) -> None:
        """Record the time to detect, and what the bad version left (so the final diff can say "(bad version)",
        and the report shows the release history after the bad release)."""
        assert ctx.bad_deployed_at is not None
        ctx.journal.time_to_detect_s = round(at - ctx.bad_deployed_at, 2)
        snap = take_snapshot(ctx)
        ctx.after_bad_deploy = snap
        ctx.journal.after_bad_deploy = snap.model_dump(mode="json")
