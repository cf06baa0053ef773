"""The shared step "run a runbook section" (harness/steps.py) and the runbook phase's drift on it.

The commands are faked at their one seam (steps.ShellSession); the hook and the records are real."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from harness import faults, steps
from harness.journal import Journal, RunbookStepRecord
from harness.phases.runbook import RunbookDrift, RunbookPhase
from harness.runbook_commands import Step, StepResult
from harness.scenario import load_scenario

RUNBOOK = "## Rollback\n\n```sh\nkubectl rollout undo deployment/demo\nmigrate down 1 --password s3cret\necho done\n```\n"


@pytest.fixture
def ctx(tmp_path: Path, kit: Any, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """Step 2 fails (`rig.timed_out` says how); every command run is logged in ctx.ran."""
    s = load_scenario(kit.write_scenario(tmp_path, "rb", kit.minimal_doc(runbook={"step_timeout_s": 30}),
                                         runbook=RUNBOOK))
    ctx = SimpleNamespace(scenario=s, journal=Journal(scenario="rb", expect="READY"), cleanup=ExitStack(),
                          redactor=lambda t: t.replace("s3cret", "***"), runbook_env=lambda: {"A": "1"},
                          runbook_started_at=None, ran=[], timed_out=False)

    def run_step(step: Step, env: Any, cwd: Path, timeout_s: float) -> StepResult:
        ctx.ran.append((step.index, env, cwd, timeout_s))
        if step.index != 2:
            return StepResult(step, 0, 0.5, "ok\n", False)
        return StepResult(step, None if ctx.timed_out else 4, 1.5, "x\nerror: password s3cret rejected\n", ctx.timed_out)

    monkeypatch.setattr(steps, "ShellSession", kit.fake_shell(run_step))
    return ctx


def test_the_section_runs_in_order_and_stops_at_the_first_failure(ctx: Any) -> None:
    records: list[RunbookStepRecord] = []
    before: list[int] = []
    run = steps.run_runbook_section(ctx, records, intro="running", before_step=before.append)
    assert [s.index for s in run.steps] == [1, 2, 3] and [r.step.index for r in run.results] == [1, 2]
    assert run.failed is run.results[1] and before == [1, 2]
    assert ctx.ran[0][1:] == ({"A": "1"}, ctx.scenario.directory, 30.0)
    assert [(r.index, r.exit_code, r.line) for r in records] == [(1, 0, 4), (2, 4, 5)]
    assert records[1].command == "migrate down 1 --password ***"  # redacted
    assert records[1].output_tail == "x\nerror: password *** rejected\n"


@pytest.mark.parametrize(("timed_out", "why"), [(False, "exit code 4"), (True, "timed out after 30s")])
def test_a_failing_step_is_runbook_drift(ctx: Any, monkeypatch: pytest.MonkeyPatch, timed_out: bool,
                                         why: str) -> None:
    ctx.timed_out = timed_out
    hooked: list[int] = []
    monkeypatch.setattr(faults, "runbook_hook", lambda c: hooked.append)
    with pytest.raises(RunbookDrift, match=f"step 2 failed \\({why}\\)"):
        RunbookPhase().execute(ctx)
    (d,) = ctx.journal.differences
    assert (d.area, d.object) == ("runbook", "runbook step 2")
    assert d.message == (f"runbook drift: step 2 (line 5) `migrate down 1 --password ***` failed: {why}: "
                         "error: password *** rejected")
    assert hooked == [1, 2] and len(ctx.journal.runbook_steps) == 2 and ctx.runbook_started_at is not None


# ── with real bash: prompts in the runbook phase ──────────────────────────────
PROMPT_RUNBOOK = ("## Rollback\n\n```sh\nNS=production\nread -p 'Continue? [y/N] ' ok\n"
                  "[ \"$ok\" = y ] && echo \"rolling back $NS\"\n```\n")


def _real_ctx(tmp_path: Path, kit: Any, **runbook: Any) -> SimpleNamespace:
    s = load_scenario(kit.write_scenario(tmp_path, "rb", kit.minimal_doc(runbook=runbook), runbook=PROMPT_RUNBOOK))
    return SimpleNamespace(scenario=s, journal=Journal(scenario="rb", expect="READY"), cleanup=ExitStack(),
                           redactor=lambda t: t, runbook_env=lambda: {"PATH": "/usr/bin:/bin"},
                           runbook_started_at=None)


def test_a_prompt_without_an_answer_is_drift_within_seconds(tmp_path: Path, kit: Any,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(faults, "runbook_hook", lambda c: lambda n: None)
    ctx = _real_ctx(tmp_path, kit)
    with pytest.raises(RunbookDrift) as caught:
        RunbookPhase().execute(ctx)
    assert str(caught.value) == "step 2 (line 5) is waiting for input: Continue? [y/N]"
    (d,) = ctx.journal.differences
    assert d.message.startswith("runbook drift: step 2 (line 5) is waiting for input: Continue? [y/N] (")
    rec = ctx.journal.runbook_steps[1]
    assert rec.waiting_for_input and rec.exit_code is None and rec.duration_s < 10


@pytest.mark.parametrize("answer", [{"line": 5, "answer": "y"}, {"prompt": "Continue?", "answer": "y"}])
def test_a_declared_answer_lets_the_runbook_proceed(tmp_path: Path, kit: Any, monkeypatch: pytest.MonkeyPatch,
                                                    answer: dict[str, Any]) -> None:
    monkeypatch.setattr(faults, "runbook_hook", lambda c: lambda n: None)
    ctx = _real_ctx(tmp_path, kit, answers=[answer])
    assert RunbookPhase().execute(ctx) == "3 steps ran"
    assert ctx.journal.runbook_steps[2].output_tail == "rolling back production\n"
