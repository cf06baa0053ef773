"""The rehearsal pipeline: a literal list of phases over one shared context.

Each phase follows the one contract of harness.phases.Phase, and says itself
what its failure means (`on_failure`): evidence is recorded as `failed` and
the rehearsal goes on (a bad release that does not fail as described, a
runbook that drifts); anything else is recorded as `error` and stops it
(without a good deploy and a baseline nothing can be compared). Teardown (the
context's cleanup stack) always runs, also on Ctrl-C, unless the run keeps
its resources (--keep-cluster). The verdict is not decided here: the session
asks harness.judge once the cleanup and the fault after-check are done.
"""

from __future__ import annotations

from harness.context import RehearsalContext
from harness.journal import PhaseRecord, Stopwatch, now_iso
from harness.phases import OnFailure, Phase
from harness.phases.baseline import BaselinePhase
from harness.phases.compat import CompatPhase
from harness.phases.deploy_bad import DeployBadPhase
from harness.phases.deploy_good import DeployGoodPhase
from harness.phases.detect import DetectPhase
from harness.phases.preflight import PreflightPhase
from harness.phases.provision import ProvisionPhase
from harness.phases.rerun import RerunPhase
from harness.phases.runbook import RunbookPhase
from harness.phases.verify import VerifyPhase
from harness.progress import say

PHASES: list[Phase] = [
    PreflightPhase(), ProvisionPhase(), DeployGoodPhase(), BaselinePhase(), DeployBadPhase(), DetectPhase(),
    CompatPhase(), RunbookPhase(), VerifyPhase(), RerunPhase(),
]


def _run_phase(ctx: RehearsalContext, phase: Phase) -> bool:
    """Run one phase and record it; True when it succeeded."""
    sw = Stopwatch()
    say(f"▶ {phase.name}", style="bold")
    try:
        detail = phase.execute(ctx) or ""
        status = "ok"
    except Exception as exc:  # each phase's failure is recorded; its on_failure says what it means
        detail = ctx.redactor(f"{type(exc).__name__}: {exc}")
        status = phase.on_failure.value
    ctx.journal.phases.append(PhaseRecord(name=phase.name, status=status, started_at=sw.started_at,  # type: ignore[arg-type]
                                          duration_s=sw.elapsed, detail=detail[-4000:]))
    say(f"  {phase.name}: {status} in {sw.elapsed:.1f}s" + (f" — {detail.splitlines()[0][:160]}" if detail else ""),
        style="" if status == "ok" else "yellow")
    return status == "ok"


def rehearse(ctx: RehearsalContext) -> RehearsalContext:
    """Run every phase that applies, in order, then the scenario's cleanup (unless kept)."""
    with ctx.cleanup:
        for phase in PHASES:
            if not phase.applies(ctx):
                continue  # e.g. rerun: only for scenarios with faults
            if not _run_phase(ctx, phase) and phase.on_failure is OnFailure.STOP:
                break
        ctx.journal.finished_at = now_iso()
        if ctx.keep:
            ctx.cleanup.pop_all()  # --keep-cluster: leave the namespace and database for inspection
            say(f"kept namespace {ctx.namespace} and database {ctx.db.name if ctx.db else '-'}")
    return ctx
