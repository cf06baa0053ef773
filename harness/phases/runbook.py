"""Run the documented rollback, literally: the fenced shell blocks of the
runbook's section, in order, in a controlled environment."""

from __future__ import annotations

import time

from harness import faults
from harness.context import RehearsalContext
from harness.helm import history_line, pending_risk
from harness.journal import Difference
from harness.phases import OnFailure, Phase
from harness.runbook_commands import StepResult
from harness.snapshot.state import read_release
from harness.steps import failure_sentence, run_runbook_section


class RunbookPhase(Phase):
    name = "runbook"
    on_failure = OnFailure.EVIDENCE  # a drifting runbook is reported, and the rollback still gets verified

    def execute(self, ctx: RehearsalContext) -> str:
        s = ctx.scenario
        release_before_runbook(ctx)
        ctx.runbook_started_at = time.monotonic()  # time to recover counts from here (phase verify)
        run = run_runbook_section(ctx, ctx.journal.runbook_steps,
                                  intro=f"running runbook {s.path(s.runbook.file).name} § {s.runbook.section}",
                                  before_step=faults.runbook_hook(ctx))  # the scenario's faults (harness/faults.py)
        failed = run.failed
        if failed is not None:
            ctx.journal.differences.append(drift(ctx, failed))
            raise RunbookDrift(failure_sentence(ctx, failed) if failed.waiting_for_input
                               else f"step {failed.step.index} failed ({_why(ctx, failed)})")
        skipped = f", {len(run.skipped)} skipped as the runbook marks them" if run.skipped else ""
        return f"{len(run.results)} steps ran{skipped}"


def release_before_runbook(ctx: RehearsalContext) -> None:
    """With app.helm: the release as the runbook finds it, in the journal; stuck in pending-* (a release step that
    died mid-way), the risk `helm_release_pending`, naming the repair teams use."""
    if ctx.scenario.app.helm is None:
        return
    state = read_release(ctx)
    assert state is not None, "read for app.helm"
    ctx.journal.event("helm", ctx.redactor(f"before the runbook: {state.release} revision {state.revision} "
                                           f"{state.status or '-'}; history: {history_line(state)}"))
    risk = pending_risk(state)
    if risk is not None:
        ctx.journal.risks.append(risk.model_copy(update={"message": ctx.redactor(risk.message)}))


def _why(ctx: RehearsalContext, res: StepResult) -> str:
    if res.timed_out:
        return f"timed out after {ctx.scenario.runbook.step_timeout_s:.0f}s"
    return f"ended the shell session, exit code {res.exit_code}" if res.ended_session else f"exit code {res.exit_code}"


def drift(ctx: RehearsalContext, res: StepResult) -> Difference:
    """The `runbook` difference of a failing step: the runbook as written does not work here."""
    hint = (f" (`{ctx.redactor(res.step.command)}` got no answer: declare one under runbook.answers, by line "
            "or by prompt)") if res.waiting_for_input else ""
    return Difference(area="runbook", object=f"runbook step {res.step.index}",
                      message=f"runbook drift: {failure_sentence(ctx, res)}{hint}")


class RunbookDrift(RuntimeError):
    """A documented step failed: reported, and the rehearsal still verifies."""
