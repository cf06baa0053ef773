"""The rehearsal pipeline: a literal list of phases over one shared context.

Failure rules: if the good deploy or the baseline fails, nothing can be
compared and the verdict is ERROR. If the bad version does not fail as
described, or the runbook drifts, the rehearsal still verifies and reports.
Teardown (the context's cleanup stack) always runs, also on Ctrl-C, unless
the run keeps its resources (--keep-cluster).
"""

from __future__ import annotations

from types import ModuleType

from harness.context import RehearsalContext
from harness.journal import Journal, PhaseRecord, Stopwatch, now_iso
from harness.phases import (
    baseline,
    compat,
    deploy_bad,
    deploy_good,
    detect,
    preflight,
    provision,
    rerun,
    runbook,
    verify,
)
from harness.progress import say
from harness.report.common import expectation_problems
from harness.scenario.models import Verdict

PHASES: list[ModuleType] = [
    preflight, provision, deploy_good, baseline, deploy_bad, detect, compat, runbook, verify, rerun,
]
# Phases after which a failure leaves nothing to compare against.
REQUIRED = {provision.NAME, deploy_good.NAME, baseline.NAME}
# Phases whose failure is evidence, not a harness error: keep going.
# preflight and compat: advice and risks, never stop the rehearsal.
EVIDENCE = {preflight.NAME, deploy_bad.NAME, detect.NAME, compat.NAME, runbook.NAME, rerun.NAME}


def _run_phase(ctx: RehearsalContext, phase: ModuleType) -> bool:
    sw = Stopwatch()
    say(f"[bold]▶ {phase.NAME}[/bold]")
    try:
        detail = phase.execute(ctx) or ""
        status = "ok"
    except Exception as exc:  # each phase's failure is recorded, then judged below
        detail = ctx.redactor(f"{type(exc).__name__}: {exc}")
        status = "failed" if phase.NAME in EVIDENCE else "error"
    ctx.journal.phases.append(PhaseRecord(name=phase.NAME, status=status, started_at=sw.started_at,
                                          duration_s=sw.elapsed, detail=detail[-4000:]))
    say(f"  {phase.NAME}: {status} in {sw.elapsed:.1f}s" + (f" — {detail.splitlines()[0][:160]}" if detail else ""),
        style="" if status == "ok" else "yellow")
    return status == "ok"


def _verdict(ctx: RehearsalContext) -> None:
    j = ctx.journal
    errored = [p for p in j.phases if p.status == "error"]
    if errored:
        j.verdict = Verdict.ERROR.value
        j.reasons = [f"phase {p.name} could not run: {p.detail.splitlines()[0] if p.detail else ''}" for p in errored]
    elif j.differences:
        j.verdict = Verdict.NOT_READY.value
        j.reasons = [d.message for d in j.differences]
    else:
        j.verdict = Verdict.READY.value
        j.reasons = ["image, schema and tracked data equal the baseline and the app is healthy"]


def unmet_expectations(journal: Journal) -> list[str]:
    """Why a rehearsal does not match its scenario's `expect` and `expect_risks` (empty: it matches)."""
    return expectation_problems(journal.model_dump(mode="json"))


def rehearse(ctx: RehearsalContext) -> RehearsalContext:
    """Run every phase in order; teardown always runs; the verdict is set at the end."""
    ctx.journal.expect_risks = [k.value for k in ctx.scenario.expect_risks]  # reports judge risks too
    with ctx.cleanup:
        for phase in PHASES:
            if not getattr(phase, "applies", lambda _ctx: True)(ctx):
                continue  # e.g. rerun: only for scenarios with faults
            ok = _run_phase(ctx, phase)
            if not ok and phase.NAME not in EVIDENCE:
                if phase.NAME in REQUIRED or phase.NAME == verify.NAME:
                    break
        _verdict(ctx)
        ctx.journal.finished_at = now_iso()
        say(f"verdict for {ctx.scenario.name}: [bold]{ctx.journal.verdict}[/bold] (expected {ctx.scenario.expect.value})")
        if ctx.keep:
            ctx.cleanup.pop_all()  # --keep-cluster: leave the namespace and database for inspection
            say(f"kept namespace {ctx.namespace} and database {ctx.db.name if ctx.db else '-'}")
    return ctx
