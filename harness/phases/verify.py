"""Verify: wait for the app to be healthy again, snapshot, compare with the baseline."""

from __future__ import annotations

from harness.context import RehearsalContext
from harness.phases import OnFailure, Phase
from harness.steps import objective_differences, verify_against_baseline


class VerifyPhase(Phase):
    name = "verify"
    on_failure = OnFailure.STOP  # without the state after the rollback there is nothing to judge

    def execute(self, ctx: RehearsalContext) -> str:
        j = ctx.journal
        timeout = ctx.scenario.timeouts.verify_s
        v = verify_against_baseline(ctx, "the app to be healthy after the rollback", since=ctx.runbook_started_at,
                                    on_unhealthy=lambda last: j.event("verify", f"not healthy after {timeout:.0f}s: {last}"))
        j.time_to_recover_s = v.recovered_s
        j.after_rollback = v.after.model_dump(mode="json")
        j.differences.extend(v.differences)
        j.differences.extend(objective_differences(ctx))
        return f"{len(v.differences)} differences from the baseline"
