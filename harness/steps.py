"""Steps more than one phase takes: run the runbook section, verify against the baseline.

The runbook phase and the fault-free second run (phase rerun) run the same
section the same way; verify and rerun check the state after it the same way.
Each phase decides what the outcome means for its own journal fields.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from harness.context import RehearsalContext
from harness.health import Decided, OutcomeDecided, never_decided, wait_healthy
from harness.snapshot.app import WorkloadState
from harness.journal import Difference, RunbookStepRecord, now_iso
from harness.progress import say
from harness.redact import redact_head, redact_tail
from harness.placeholders import bind_all
from harness.runbook_commands import Step, StepResult, parse_runbook, read_runbook
from harness.shell_session import ShellSession
from harness.snapshot.state import StateSnapshot, diff_states, take_snapshot
from harness.wait import WaitTimeout

OUTPUT_TAIL = 2000  # characters of a step's output kept in the journal


# ── run a runbook section ────────────────────────────────────────────────────
def step_record(ctx: RehearsalContext, res: StepResult, started_at: str, label: str = "runbook",
                failure_style: str = "red") -> RunbookStepRecord:
    """The journal record of one step (redacted), announced on the console."""
    status = "ok" if res.ok else status_words(res)
    say(f"  {label} step {res.step.index}: {ctx.redactor(res.step.command)} → {status} ({res.duration_s:.1f}s)",
        style="" if res.ok else failure_style)
    if not res.ok and res.output.strip():  # why it failed, as the command said it
        say(f"    {last_output_line(ctx, res)}", style="dim")
    return RunbookStepRecord(
        index=res.step.index, command=ctx.redactor(res.step.command), line=res.step.line, started_at=started_at,
        exit_code=res.exit_code, timed_out=res.timed_out, duration_s=round(res.duration_s, 3),
        output_tail=redact_tail(ctx.redactor, res.output, OUTPUT_TAIL),  # redact, then cut
        waiting_for_input=res.waiting_for_input, ended_session=res.ended_session,
    )


def skip_record(ctx: RehearsalContext, step: Step, label: str = "runbook") -> RunbookStepRecord:
    """The journal record of a step the runbook marks `rehearse: skip` (never run), announced on the console."""
    say(f"  {label} step {step.index}: {ctx.redactor(step.command)} → skipped ({ctx.redactor(step.skip or '')})",
        style="yellow")
    return RunbookStepRecord(index=step.index, command=ctx.redactor(step.command), line=step.line,
                             started_at=now_iso(), exit_code=None, timed_out=False, duration_s=0.0, output_tail="",
                             skipped=ctx.redactor(step.skip or ""))


def status_words(res: StepResult) -> str:
    """How a step ended, in a few words (the console line and the journal's detail)."""
    if res.timed_out:
        return "TIMED OUT"
    if res.waiting_for_input:
        return "WAITING FOR INPUT"
    if res.ended_session:
        return f"ended the shell session (exit {res.exit_code})"
    return f"exit {res.exit_code}"


def failure_sentence(ctx: RehearsalContext, res: StepResult) -> str:
    """Why a step failed, naming it by number and runbook line (redacted), e.g.
    "step 2 (line 14) is waiting for input: Continue? [y/N]"."""
    s = res.step
    if res.waiting_for_input:
        return f"step {s.index} (line {s.line}) is waiting for input: {last_output_line(ctx, res)}"
    why = (f"timed out after {ctx.scenario.runbook.step_timeout_s:.0f}s" if res.timed_out
           else f"ended the shell session with exit code {res.exit_code}, so no later command can run in it"
           if res.ended_session else f"exit code {res.exit_code}")
    return ctx.redactor(f"step {s.index} (line {s.line}) `{s.command}` failed: {why}: {last_output_line(ctx, res)}")


@dataclass(frozen=True)
class SectionRun:
    steps: list[Step]          # every command of the section, placeholders bound
    results: list[StepResult]  # those that ran, in order; the run stops after the first failure

    @property
    def failed(self) -> StepResult | None:
        return next((r for r in self.results if not r.ok), None)

    @property
    def skipped(self) -> list[Step]:
        """The steps the runbook marks `rehearse: skip` that the run reached (recorded, not run)."""
        ran = self.results[-1].step.index if self.failed else len(self.steps)
        return [s for s in self.steps if s.skip is not None and s.index <= ran]


def _no_hook(index: int) -> None:
    return None


def run_runbook_section(ctx: RehearsalContext, records: list[RunbookStepRecord], *, intro: str,
                        label: str = "runbook", failure_style: str = "red",
                        before_step: Callable[[int], None] = _no_hook) -> SectionRun:
    """Parse the scenario's runbook section and run it command by command in one shell session (a
    person's terminal: variables, `cd` and functions carry over) in the runbook environment.

    `before_step(N)` runs before step N starts (the faults' hook); each step's record is appended to
    `records` as soon as it ends; like a person following the runbook, the run stops at the first
    failing step."""
    s = ctx.scenario
    steps = bind_all(parse_runbook(read_runbook(s.path(s.runbook.file)), s.runbook.section), s.runbook.placeholders)
    say(f"{intro} ({len(steps)} steps)")
    results: list[StepResult] = []
    with ShellSession(ctx.runbook_env(), s.directory, s.runbook.answers) as shell:
        for step in steps:  # one at a time so each record has its own start time
            before_step(step.index)
            if step.skip is not None:  # marked in the runbook: recorded with its reason, never run
                records.append(skip_record(ctx, step, label=label))
                continue
            started = now_iso()
            res = shell.run(step, s.runbook.step_timeout_s)
            records.append(step_record(ctx, res, started, label=label, failure_style=failure_style))
            results.append(res)
            if not res.ok:
                break
    return SectionRun(steps, results)


def last_output_line(ctx: RehearsalContext, res: StepResult, limit: int = 200) -> str:
    """The step's last output line, redacted before it is cut (a cut secret would escape its mask)."""
    return redact_head(ctx.redactor, (res.output.strip().splitlines() or [""])[-1], limit)


# ── verify against the baseline ──────────────────────────────────────────────
@dataclass(frozen=True)
class Verification:
    healthy: bool
    recovered_s: float | None   # from `since` until healthy; None when not healthy or without `since`
    after: StateSnapshot
    differences: list[Difference]  # from the baseline, a `health` one included when not healthy


HEALTH_DIFFERENCE = Difference(area="health", object="app", message="the app did not become healthy again")


def verify_against_baseline(ctx: RehearsalContext, what: str, since: float | None,
                            on_unhealthy: Callable[[str], None],
                            decided: Decided = never_decided,
                            on_decided: Callable[[str, str], None] | None = None) -> Verification:
    """Wait up to `timeouts.verify_s` for the app to be healthy, snapshot, diff with the baseline
    (and the bad release's snapshot, so a message can say "(bad version)").

    `on_unhealthy(last state seen)` runs as soon as the wait gives up, so the journal says why even
    when the snapshot after it fails. `decided` (see `outcome_decided`) may end the wait early; then
    `on_decided(reason, last state seen)` runs instead, and the health difference says why."""
    assert ctx.baseline is not None, "the baseline phase stops the run when it fails"
    healthy, recovered, health = True, None, HEALTH_DIFFERENCE
    try:
        wait_healthy(ctx, ctx.scenario.timeouts.verify_s, what, decided)
        if since is not None:
            recovered = round(time.monotonic() - since, 2)
    except WaitTimeout as exc:
        healthy = False
        on_unhealthy(exc.last)
    except OutcomeDecided as exc:
        healthy = False
        if on_decided is None:
            on_unhealthy(f"{exc.last} (not awaited further: {exc.reason})")
        else:
            on_decided(exc.reason, exc.last)
        health = Difference(area="health", object="app",
                            message=f"the app was not healthy; not awaited further: {exc.reason}")
    after = take_snapshot(ctx)
    diffs = diff_states(ctx.baseline, after, ctx.after_bad_deploy)
    if not healthy and not any(d.area == "health" for d in diffs):
        diffs.append(health)
    return Verification(healthy, recovered, after, diffs)


# After a failed runbook step, how long verify still waits for health: enough for a rollout that is just
# finishing to be recorded as recovered (time_to_recover_s), not the whole verify timeout.
DECIDED_GRACE_S = 3.0


def _no_faults() -> list[str]:
    return []


def outcome_decided(baseline: list[WorkloadState], runbook_failure: str | None,
                    faults_active: Callable[[], list[str]] = _no_faults) -> Decided:
    """Verify's early end, for states whose outcome no waiting can change (a NOT_READY either way, so
    stopping early can never turn a rehearsal READY):

    - the runbook stopped at a failing step (`runbook_failure`): its `runbook` difference already makes
      the rehearsal NOT_READY; after DECIDED_GRACE_S nothing more is learned by waiting;
    - a tracked Deployment declares another image than in the baseline (e.g. the bad release back after
      `rollout undo` twice): nothing in the cluster changes a Deployment's image without someone acting,
      and the diff reports it as an `app` difference.

    Never while a fault is still in place (`faults_active()`): the snapshot after the wait would meet it
    (a terminated connection, a paused Postgres) instead of the state the rollback left."""
    declared = {w.deployment: w.spec_image for w in baseline if w.exists}

    def decided(states: list[WorkloadState], waited_s: float) -> str | None:
        if faults_active():
            return None
        if runbook_failure is not None and waited_s >= DECIDED_GRACE_S:
            return f"the runbook stopped ({runbook_failure}), so the rehearsal is NOT_READY whatever the app does"
        for w in states:
            was = declared.get(w.deployment)
            if w.exists and was and w.spec_image and w.spec_image != was:
                return (f"deployment {w.deployment} declares image {w.spec_image}, not the baseline's {was}; "
                        "no controller changes that without someone acting")
        return None

    return decided


def objective_differences(ctx: RehearsalContext) -> list[Difference]:
    """`objectives.max_recover_s` against the time to recover the journal holds."""
    objective = ctx.scenario.objectives.max_recover_s
    rec = ctx.journal.time_to_recover_s
    if objective is None or rec is None or rec <= objective:
        return []
    return [Difference(area="objective", object="time to recover",
                       message=f"recovery took {rec:.1f}s, above the objective max_recover_s={objective:.0f}s")]
