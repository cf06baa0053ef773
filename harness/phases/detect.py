"""Detect the bad version's failure the way the scenario says it fails.

Each failure mode is a pure decision over what the cluster shows (pods,
events, Deployments, the smoke request); `CHECKS` reads that through
harness.health and kubectl and hands it to the decision.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from harness.context import RehearsalContext
from harness.health import app_pods, events_text, namespace_events, readiness_failures, smoke_ok
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
        dep = json.loads(ctx.kubectl("get", "deployment", w.deployment, "-n", ctx.namespace, "-o", "json").stdout)
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


class DetectPhase(Phase):
    name = "detect"
    on_failure = OnFailure.EVIDENCE  # a bad release that does not fail as described is reported

    def execute(self, ctx: RehearsalContext) -> str:
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
        assert ctx.bad_deployed_at is not None
        ctx.journal.time_to_detect_s = round(time.monotonic() - ctx.bad_deployed_at, 2)
        # What the bad version looks like, so the final diff can say "(bad version)".
        snap = take_snapshot(ctx)
        ctx.after_bad_deploy = snap
        ctx.journal.after_bad_deploy = snap.model_dump(mode="json")
        return f"{f.mode.value} detected after {ctx.journal.time_to_detect_s}s"
