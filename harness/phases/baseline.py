"""Baseline snapshot: the state the rollback must bring back."""

from __future__ import annotations

from harness.context import RehearsalContext
from harness.snapshot.state import take_snapshot

NAME = "baseline"


def execute(ctx: RehearsalContext) -> str:
    snap = take_snapshot(ctx)
    ctx.snapshots["baseline"] = snap
    ctx.journal.baseline = snap.model_dump(mode="json")
    w = snap.workloads
    return "; ".join(f"{x.deployment} runs {', '.join(x.image_ids)}" for x in w)
