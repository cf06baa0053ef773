"""Baseline snapshot: the state the rollback must bring back."""

from __future__ import annotations

from harness.context import RehearsalContext
from harness.phases import OnFailure, Phase
from harness.snapshot.state import take_snapshot


class BaselinePhase(Phase):
    name = "baseline"
    on_failure = OnFailure.STOP  # without a baseline there is nothing to compare against

    def execute(self, ctx: RehearsalContext) -> str:
        snap = take_snapshot(ctx)
        ctx.baseline = snap
        ctx.journal.baseline = snap.model_dump(mode="json")
        return "; ".join(f"{x.deployment} runs {', '.join(x.image_ids)}" for x in snap.workloads)
