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
from harness.journal import Difference, now_iso
from harness.health import wait_healthy
from harness.phases.runbook import step_record
from harness.progress import say
from harness.runbook_commands import StepResult, parse_runbook, run_steps
from harness.snapshot.state import diff_states, take_snapshot
from harness.wait import WaitTimeout

NAME = "rerun"


def applies(ctx: RehearsalContext) -> bool:
    """Only scenarios with faults run the runbook twice (the pipeline skips this phase otherwise)."""
    return bool(ctx.scenario.faults)


def _record(ctx: RehearsalContext, res: StepResult, started_at: str) -> None:
    ctx.journal.rerun_steps.append(step_record(ctx, res, started_at, label="rerun", failure_style="yellow"))


def _failed_step(ctx: RehearsalContext, results: list[StepResult]) -> str:
    bad = next((r for r in results if not r.ok), None)
    if bad is None:
        return ""
    last = (bad.output.strip().splitlines() or [""])[-1]
    why = "timed out" if bad.timed_out else f"exit code {bad.exit_code}"
    return ctx.redactor(f"step {bad.step.index} (line {bad.step.line}) `{bad.step.command}` failed: {why}: {last[:200]}")


def execute(ctx: RehearsalContext) -> str:
    s, j = ctx.scenario, ctx.journal
    removed = faults.settle(ctx, "not applied before the second run of the runbook began")
    if removed:
        j.event("rerun", f"faults still in place after verify were removed before the second run: {', '.join(removed)}")
    for r in j.faults:
        if r.status == "applied" and r.hits == 0:  # READY under a fault that never hit would be a false claim
            j.differences.append(Difference(
                area="fault", object=r.kind,
                message=(f"fault {r.kind} (before runbook step {r.at_step or 1}) hit nothing: the rollback was "
                         "not rehearsed under it. Hint: pin the migration with hold_lock_on "
                         "(a table it touches) or move the fault to the step that opens connections")))
    j.runbook_converged = not any(d.area != "fault" for d in j.differences)
    # By area and object: a message carries figures (rows lost, a sequence's next value) that may move
    # between the two runs without being a new way of differing.
    known = {(d.area, d.object) for d in j.differences}

    steps = parse_runbook(s.path(s.runbook.file).read_text(encoding="utf-8"), s.runbook.section)
    say(f"running the runbook a second time, without faults ({len(steps)} steps)")
    t0 = time.monotonic()
    results: list[StepResult] = []
    env = ctx.runbook_env()
    for step in steps:
        started = now_iso()
        res = run_steps([step], env, s.directory, s.runbook.step_timeout_s)[0]
        _record(ctx, res, started)
        results.append(res)
        if not res.ok:
            break  # like a person following the runbook
    failed = _failed_step(ctx, results)
    if failed:
        j.event("rerun", f"the second run stopped: {failed}")

    healthy, rerun_recover = True, None
    try:
        wait_healthy(ctx, s.timeouts.verify_s, "the app to be healthy after the second run of the runbook")
        rerun_recover = round(time.monotonic() - t0, 2)
    except WaitTimeout as exc:
        healthy = False
        j.event("rerun", f"not healthy {s.timeouts.verify_s:.0f}s after the second run: {exc.last}")
    after = take_snapshot(ctx)
    diffs = diff_states(ctx.snapshots["baseline"], after, ctx.snapshots.get("bad"))
    if not healthy and not any(d.area == "health" for d in diffs):
        diffs.append(Difference(area="health", object="app", message="the app did not become healthy again"))
    j.idempotent = healthy and not failed and not diffs

    new = [d for d in diffs if (d.area, d.object) not in known]
    for i, d in enumerate(new):
        suffix = f" (the second run stopped: {failed})" if failed and i == 0 else ""
        j.differences.append(Difference(
            area="idempotence", object=d.object,
            message=ctx.redactor(f"after a second run of the runbook: {d.message}{suffix}")))
    if j.time_to_recover_s is not None and rerun_recover is not None:
        j.fault_cost_s = round(j.time_to_recover_s - rerun_recover, 2)
    j.event("rerun", f"converged={j.runbook_converged} idempotent={j.idempotent} "
                     f"second run recovered in {rerun_recover}s, fault cost {j.fault_cost_s}s")
    detail = (f"second run: {len(results)}/{len(steps)} steps, "
              f"{'idempotent' if j.idempotent else 'NOT idempotent'}, {len(new)} new difference(s)")
    detail += f"; {failed}" if failed else ""
    missed = [f"{r.kind} {r.status}" for r in j.faults if r.status != "applied"]
    if missed:  # the first run did not face every declared fault: say so wherever the phase shows
        detail += f"; faults not applied in the first run: {', '.join(missed)}"
    if not j.idempotent:
        raise NotIdempotent(detail)
    return detail


class NotIdempotent(RuntimeError):
    """The second run failed a step or left the state different from the baseline: evidence, not an error."""
