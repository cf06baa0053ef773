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
from harness.teardown import check_stop

PHASES: list[Phase] = [
    PreflightPhase(), ProvisionPhase(), DeployGoodPhase(), BaselinePhase(), DeployBadPhase(), DetectPhase(),
    CompatPhase(), RunbookPhase(), VerifyPhase(), RerunPhase(),
]


def _run_phase(ctx: RehearsalContext, phase: Phase) -> bool:
    """Run one phase and record it; True when it succeeded."""
    check_stop()  # a worker of a stopped session (`-j N`) unwinds to the cleanup, as on Ctrl-C
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
    sw = Stopwatch()
    try:
        with ctx.cleanup:
            for phase in PHASES:
                if not phase.applies(ctx):
                    continue  # e.g. rerun: only for scenarios with faults
                if not _run_phase(ctx, phase) and phase.on_failure is OnFailure.STOP:
                    break
            ctx.journal.finished_at = now_iso()
            sw = Stopwatch()
            if ctx.keep:
                ctx.cleanup.pop_all()  # --keep-cluster: leave the namespace and database for inspection
                say(f"kept namespace {ctx.namespace} and database {ctx.db.name if ctx.db else '-'}")
    except Exception as exc:  # the scenario's cleanup failed: a phase's own failure never gets here
        _record_cleanup_failure(ctx, exc, sw)
        interrupt = _interrupt_behind(exc)
        if interrupt is not None:
            raise interrupt  # the interrupt keeps unwinding the session (exit 130, not an infrastructure error)
    else:
        ctx.journal.cleanup_s = None if ctx.keep else sw.elapsed
    return ctx


def _interrupt_behind(exc: BaseException) -> BaseException | None:
    """The interrupt (Ctrl-C, SIGTERM) that was unwinding the cleanup when `exc` was raised, if any."""
    seen: BaseException | None = exc.__context__
    while seen is not None:
        if not isinstance(seen, Exception):
            return seen
        seen = seen.__context__
    return None


def _record_cleanup_failure(ctx: RehearsalContext, exc: Exception, sw: Stopwatch) -> None:
    """A namespace or database that could not be removed (or a fault that could not be reverted) is the
    harness failing its own promise: recorded as an `error` phase, so the judge names it (ERROR) and
    the session still judges and reports the rehearsal, and the next scenarios still run."""
    detail = ctx.redactor(f"{type(exc).__name__}: {exc}")
    ctx.journal.cleanup_s = sw.elapsed
    ctx.journal.phases.append(PhaseRecord(name="cleanup", status="error", started_at=sw.started_at,
                                          duration_s=sw.elapsed, detail=detail[-4000:]))
    say(f"  cleanup: error — {detail.splitlines()[0][:160] if detail else ''}", style="red")
