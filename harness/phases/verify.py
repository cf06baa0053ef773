"""Verify: wait for the app to be healthy again, snapshot, compare with the baseline."""

from __future__ import annotations

import time

from harness.context import RehearsalContext
from harness.journal import Difference
from harness.health import wait_healthy
from harness.snapshot.state import diff_states, take_snapshot
from harness.wait import WaitTimeout

NAME = "verify"


def execute(ctx: RehearsalContext) -> str:
    s = ctx.scenario
    healthy = True
    try:
        wait_healthy(ctx, s.timeouts.verify_s, "the app to be healthy after the rollback")
        if ctx.runbook_started_at is not None:
            ctx.journal.time_to_recover_s = round(time.monotonic() - ctx.runbook_started_at, 2)
    except WaitTimeout as exc:
        healthy = False
        ctx.journal.event("verify", f"not healthy after {s.timeouts.verify_s:.0f}s: {exc.last}")
    after = take_snapshot(ctx)
    ctx.journal.after_rollback = after.model_dump(mode="json")
    diffs = diff_states(ctx.snapshots["baseline"], after, ctx.snapshots.get("bad"))
    if not healthy and not any(d.area == "health" for d in diffs):
        diffs.append(Difference(area="health", object="app", message="the app did not become healthy again"))
    ctx.journal.differences.extend(diffs)
    objective = s.objectives.max_recover_s
    rec = ctx.journal.time_to_recover_s
    if objective is not None and rec is not None and rec > objective:
        ctx.journal.differences.append(Difference(
            area="objective", object="time to recover",
            message=f"recovery took {rec:.1f}s, above the objective max_recover_s={objective:.0f}s"))
    return f"{len(diffs)} differences from the baseline"
