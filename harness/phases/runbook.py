"""Run the documented rollback, literally: the fenced shell blocks of the
runbook's section, in order, in a controlled environment."""

from __future__ import annotations

import time
from collections.abc import Callable

from harness import faults
from harness.context import RehearsalContext
from harness.journal import Difference, RunbookStepRecord, now_iso
from harness.progress import say
from harness.runbook_commands import StepResult, parse_runbook, run_steps

NAME = "runbook"
OUTPUT_TAIL = 2000


def step_record(ctx: RehearsalContext, res: StepResult, started_at: str, label: str = "runbook",
                failure_style: str = "red") -> RunbookStepRecord:
    """The journal record of one step (redacted), announced on the console."""
    status = "ok" if res.ok else ("TIMED OUT" if res.timed_out else f"exit {res.exit_code}")
    say(f"  {label} step {res.step.index}: {ctx.redactor(res.step.command)} → {status} ({res.duration_s:.1f}s)",
        style="" if res.ok else failure_style)
    return RunbookStepRecord(
        index=res.step.index, command=ctx.redactor(res.step.command), line=res.step.line, started_at=started_at,
        exit_code=res.exit_code, timed_out=res.timed_out, duration_s=round(res.duration_s, 3),
        output_tail=ctx.redactor(res.output[-OUTPUT_TAIL:]),
    )


def _record(ctx: RehearsalContext, res: StepResult, started_at: str) -> None:
    ctx.journal.runbook_steps.append(step_record(ctx, res, started_at))


def execute(ctx: RehearsalContext, before_step: Callable[[int], None] | None = None) -> str:
    s = ctx.scenario
    path = s.path(s.runbook.file)
    steps = parse_runbook(path.read_text(encoding="utf-8"), s.runbook.section)
    say(f"running runbook {path.name} § {s.runbook.section} ({len(steps)} steps)")
    ctx.runbook_started_at = time.monotonic()
    starts: list[str] = []

    def on_step(res: StepResult) -> None:
        _record(ctx, res, starts[-1] if starts else now_iso())

    results = []
    env = ctx.runbook_env()
    before_step = before_step or faults.runbook_hook(ctx)  # the scenario's faults (harness/faults.py)
    for step in steps:  # one at a time so each record has its own start time
        before_step(step.index)
        starts.append(now_iso())
        res = run_steps([step], env, s.directory, s.runbook.step_timeout_s, on_step=on_step)[0]
        results.append(res)
        if not res.ok:
            last = (res.output.strip().splitlines() or [""])[-1]
            why = f"timed out after {s.runbook.step_timeout_s:.0f}s" if res.timed_out else f"exit code {res.exit_code}"
            ctx.journal.differences.append(Difference(
                area="runbook", object=f"runbook step {step.index}",
                message=ctx.redactor(f"runbook drift: step {step.index} (line {step.line}) `{step.command}` "
                                     f"failed: {why}: {last[:200]}")))
            raise RunbookDrift(f"step {step.index} failed ({why})")
    return f"{len(results)} steps ran"


class RunbookDrift(RuntimeError):
    """A documented step failed: reported, and the rehearsal still verifies."""
