"""Rerun: when the scenario declares faults, run the runbook section a second time, without
faults, and verify again.

It answers two questions the faulted run cannot:
- did the runbook converge despite the faults (`runbook_converged`: the first verify found
  no differences), and does a retry of the runbook recover when it did not;
- is the runbook idempotent (`idempotent`: the second run fails no step and leaves the state
  equal to the baseline). A runbook that must be re-run after a fault has to be.

The second run only adds differences (area `idempotence`) for a state after it that differs
from the baseline in a way the first verify did not already report. `fault_cost_s` is the
first run's time to recover minus the second run's: an upper bound of what the faults cost,
since the second run starts from the rolled-back state and has no pods to replace.
"""

from __future__ import annotations

import time

from harness import faults
from harness.context import RehearsalContext
from harness.journal import Difference, Journal
from harness.phases import OnFailure, Phase
from harness.runbook_commands import StepResult
from harness.steps import SectionRun, failure_sentence, run_runbook_section, verify_against_baseline


class RerunPhase(Phase):
    name = "rerun"
    on_failure = OnFailure.EVIDENCE  # a runbook that is not idempotent is reported, never a harness error

    def applies(self, ctx: RehearsalContext) -> bool:
        """Only scenarios with faults during the runbook run it twice (the pipeline skips this phase otherwise);
        a fault of the bad release (deploy_bad) is the state the runbook starts from, not a fault it meets."""
        return any(f.during == "runbook" for f in ctx.scenario.faults)

    def execute(self, ctx: RehearsalContext) -> str:
        j = ctx.journal
        _end_faults(ctx)
        j.runbook_converged = not any(d.area != "fault" for d in j.differences)
        # By area and object: a message carries figures (rows lost, a sequence's next value) that may move
        # between the two runs without being a new way of differing.
        known = {(d.area, d.object) for d in j.differences}

        t0 = time.monotonic()
        run = run_runbook_section(ctx, j.rerun_steps, intro="running the runbook a second time, without faults",
                                  label="rerun", failure_style="yellow")
        failed = _failed_step(ctx, run.failed)
        if failed:
            j.event("rerun", f"the second run stopped: {failed}")
        timeout = ctx.scenario.timeouts.verify_s
        v = verify_against_baseline(
            ctx, "the app to be healthy after the second run of the runbook", since=t0,
            on_unhealthy=lambda last: j.event("rerun", f"not healthy {timeout:.0f}s after the second run: {last}"))
        j.idempotent = v.healthy and not failed and not v.differences

        new = [d for d in v.differences if (d.area, d.object) not in known]
        for i, d in enumerate(new):
            suffix = f" (the second run stopped: {failed})" if failed and i == 0 else ""
            j.differences.append(Difference(
                area="idempotence", object=d.object,
                message=ctx.redactor(f"after a second run of the runbook: {d.message}{suffix}")))
        if j.time_to_recover_s is not None and v.recovered_s is not None:
            j.fault_cost_s = round(j.time_to_recover_s - v.recovered_s, 2)
        j.event("rerun", f"converged={j.runbook_converged} idempotent={j.idempotent} "
                         f"second run recovered in {v.recovered_s}s, fault cost {j.fault_cost_s}s")
        detail = _detail(j, run, len(new), failed)
        if not j.idempotent:
            raise NotIdempotent(detail)
        return detail


def _end_faults(ctx: RehearsalContext) -> None:
    """Remove any fault still in place, and report each fault that hit nothing."""
    j = ctx.journal
    removed = faults.settle(ctx, "not applied before the second run of the runbook began")
    if removed:
        j.event("rerun", f"faults still in place after verify were removed before the second run: {', '.join(removed)}")
    j.differences.extend(faults.missed(j.faults, "runbook"))


def _failed_step(ctx: RehearsalContext, bad: StepResult | None) -> str:
    return "" if bad is None else failure_sentence(ctx, bad)


def _detail(j: Journal, run: SectionRun, new: int, failed: str) -> str:
    runnable = sum(st.skip is None for st in run.steps)  # skipped steps are recorded, never run
    detail = (f"second run: {len(run.results)}/{runnable} steps, "
              f"{'idempotent' if j.idempotent else 'NOT idempotent'}, {new} new difference(s)")
    detail += f"; {failed}" if failed else ""
    missed = [f"{r.kind} {r.status}" for r in j.faults if r.status != "applied"]
    if missed:  # the first run did not face every declared fault: say so wherever the phase shows
        detail += f"; faults not applied in the first run: {', '.join(missed)}"
    return detail


class NotIdempotent(RuntimeError):
    """The second run failed a step or left the state different from the baseline: evidence, not an error."""
