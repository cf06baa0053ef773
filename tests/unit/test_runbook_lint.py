"""Skipped steps and bound placeholders through a rehearsal's record (steps, judge, every report writer), and
the preflight checks `placeholders`, `skipped-step` and `shellcheck` (the real shellcheck binary).

No cluster: run_step is a stand-in where a step would run; shellcheck and bash are real.
"""

from __future__ import annotations

import json
import shutil
from contextlib import ExitStack
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner
from junitparser import JUnitXml

from harness import judge, preflight as pf, steps
from harness.cli import cli
from harness.journal import Journal, PhaseRecord, RunbookStepRecord
from harness.phases.runbook import RunbookPhase
from harness.preflight import shellcheck
from harness.redact import Redactor
from harness.report import write_run_reports, write_scenario_reports
from harness.report.common import failing_step, step_failed
from harness.runbook_commands import Step, StepResult
from harness.scenario import load_scenario

RUNBOOK = """\
## Rollback

<!-- rehearse: skip paging the on-call -->
```sh
page-oncall --service demo
```

```sh
kubectl -n "$NAMESPACE" rollout undo deployment/demo --to-revision=<N>
# rehearse: skip the incident channel is production's
post-to-channel "rolled back"
kubectl -n "$NAMESPACE" rollout status deployment/demo
```
"""


@pytest.fixture
def ctx(tmp_path: Path, kit: Any, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    doc = kit.minimal_doc(runbook={"placeholders": {"N": 1}})
    s = load_scenario(kit.write_scenario(tmp_path, "rb", doc, runbook=RUNBOOK))
    ctx = SimpleNamespace(scenario=s, journal=Journal(scenario="rb", expect="READY", placeholders={"N": "1"}),
                          cleanup=ExitStack(), redactor=lambda t: t, runbook_env=lambda: {}, runbook_started_at=None,
                          ran=[])

    def run_step(step: Step, env: Any, cwd: Path, timeout_s: float) -> StepResult:
        ctx.ran.append(step)
        return StepResult(step, 0, 0.25, "ok\n", False)

    monkeypatch.setattr(steps, "ShellSession", kit.fake_shell(run_step))
    return ctx


def test_skipped_steps_are_recorded_with_their_reason_never_run(ctx: Any) -> None:
    detail = RunbookPhase().execute(ctx)
    assert [s.index for s in ctx.ran] == [2, 4]
    assert ctx.ran[0].command.endswith("--to-revision=1")  # the binding is substituted in what runs
    recs = ctx.journal.runbook_steps
    assert [(r.index, r.line, r.skipped) for r in recs] == [
        (1, 5, "paging the on-call"), (2, 9, None), (3, 11, "the incident channel is production's"), (4, 12, None)]
    assert (recs[0].exit_code, recs[0].duration_s, recs[0].command) == (None, 0.0, "page-oncall --service demo")
    assert detail == "2 steps ran, 2 skipped as the runbook marks them" and ctx.journal.differences == []


def _judged(ctx: Any) -> Journal:
    RunbookPhase().execute(ctx)
    j = ctx.journal
    j.phases = [PhaseRecord(name="runbook", status="ok", started_at="2025-01-01T00:00:00+00:00", duration_s=1.0)]
    judge.decide(j).record(j)
    return j


def test_the_judge_names_skipped_steps_and_never_fails_them(ctx: Any) -> None:
    j = _judged(ctx)
    assert j.verdict == "READY" and j.reasons[0] == judge.READY_REASON
    assert j.reasons[1:] == [
        "runbook step 1 (line 5) was skipped, as the runbook marks it: paging the on-call",
        "runbook step 3 (line 11) was skipped, as the runbook marks it: the incident channel is production's"]
    data = j.model_dump(mode="json")
    assert not any(step_failed(s) for s in data["runbook_steps"]) and failing_step(data) is None


def test_every_report_shows_the_skips_and_the_bindings(ctx: Any, tmp_path: Path) -> None:
    j = _judged(ctx)
    out = tmp_path / "reports"
    write_scenario_reports(j, out / "rb", Redactor())
    data = json.loads((out / "rb" / "report.json").read_text())
    assert [s["skipped"] for s in data["runbook_steps"]][::2] == ["paging the on-call",
                                                                  "the incident channel is production's"]
    assert data["placeholders"] == {"N": "1"}
    page = (out / "rb" / "report.html").read_text()
    assert page.count('<li class="skipped">') == 2 and "paging the on-call" in page
    assert "Runbook placeholders bound: N = 1" in page
    run = write_run_reports([j], out, Redactor(), run_id="r", host="h")
    summary = run.summary.read_text()
    assert "· 2 runbook step(s) skipped" in summary and "**Skipped runbook steps**" in summary
    assert "runbook step 3 (line 11) `post-to-channel \"rolled back\"` skipped: the incident channel" in summary
    xml = JUnitXml.fromfile(str(run.junit))
    (case,) = [c for s in (list(xml) if isinstance(xml, JUnitXml) else [xml]) for c in s
               if c.classname == "rollback-rehearsal"]
    assert case.is_passed
    text = run.junit.read_text()
    assert 'name="skipped_steps" value="2"' in text and "2 runbook step(s) skipped" in text
    assert "runbook placeholders bound: N = 1" in text


# ══ preflight ════════════════════════════════════════════════════════════════
def _findings(tmp_path: Path, kit: Any, runbook: str, check: str, **doc: Any) -> list[tuple[str, str]]:
    s = load_scenario(kit.write_scenario(tmp_path, "pf", kit.minimal_doc(**doc), runbook=runbook))
    return [(f.severity, f.message) for f in pf.run_checks(s, only=[check])]


def test_a_skipped_rollback_is_a_failure_when_no_step_that_runs_does_it(tmp_path: Path, kit: Any) -> None:
    rb = ("## Rollback\n\n```sh\n# rehearse: skip we trust it\nkubectl -n \"$NAMESPACE\" rollout undo "
          "deployment/demo\n# rehearse: skip ops does it\nmigrate -path m down 1\n"
          "kubectl -n \"$NAMESPACE\" rollout status deployment/demo\n```\n")
    found = _findings(tmp_path, kit, rb, pf.SKIPPED_STEP)
    assert [sev for sev, _ in found] == ["failure", "failure"]
    assert "runbook step 1 (line 5) rolls the app back (kubectl rollout undo / set image) but is marked" in found[0][1]
    assert "runbook step 2 (line 7) migrates the schema down" in found[1][1]


def test_a_skipped_duplicate_is_a_warning_and_paging_is_nothing(tmp_path: Path, kit: Any) -> None:
    rb = ("## Rollback\n\n```sh\n# rehearse: skip the old way\nkubectl -n \"$NAMESPACE\" set image deployment/demo "
          "app=\"$GOOD_IMAGE\"\nkubectl -n \"$NAMESPACE\" rollout undo deployment/demo\n"
          "# rehearse: skip paging\npage-oncall\n```\n")
    found = _findings(tmp_path, kit, rb, pf.SKIPPED_STEP)
    assert [(sev, "step 2 (line 6) does it too" in msg) for sev, msg in found] == [("warning", True)]


def test_the_placeholders_check(tmp_path: Path, kit: Any) -> None:
    rb = "## Rollback\n\n```sh\nkubectl rollout undo deployment/demo --to-revision=<N>\necho \"$WHO\"\n```\n"
    s = load_scenario(kit.write_scenario(tmp_path, "ok", kit.minimal_doc(runbook={"placeholders": {"N": 2}}),
                                         runbook=rb.replace('"$WHO"', "done")))
    assert pf.run_checks(s, only=[pf.PLACEHOLDERS]) == []
    # Validation refuses the unbound ones first; a scenario built without the loader still gets the finding.
    s2 = s.model_copy(update={"runbook": s.runbook.model_copy(update={"placeholders": {}})})
    (finding,) = pf.run_checks(s2, only=[pf.PLACEHOLDERS])
    assert finding.severity == "failure" and "<N> is a placeholder that nothing fills in (line 4)" in finding.message


# ══ shellcheck ═══════════════════════════════════════════════════════════════
@pytest.fixture(autouse=False)
def real_shellcheck() -> None:
    """These tests need the real binary (make env installs Debian's shellcheck): missing is a failure, not a skip."""
    assert shutil.which("shellcheck"), "shellcheck is not installed: run `make env` (or apt-get install shellcheck)"


def test_shellcheck_findings_carry_the_runbook_line(real_shellcheck: None) -> None:
    steps_ = [Step(1, "NS=prod", 10), Step(2, "for d in a b; do\n  echo \"$d\"\ndone", 12),
              Step(3, "cat <<EOF\nx\nEOF\nls $(echo *.txt)", 20), Step(4, "rm -rf \"$UNSET\"/; local y", 30)]
    lints = shellcheck.lint(steps_)
    assert [(lint.step.index, lint.line, lint.code, lint.level) for lint in lints] == [
        (3, 23, "SC2046", "warning"), (4, 30, "SC2115", "warning"), (4, 30, "SC2168", "failure")]


def test_excluded_codes_stay_out(real_shellcheck: None) -> None:
    noisy = [Step(1, 'X=1\necho "$NAMESPACE $FEATURE"\ncd /tmp\nsource "$HOME/env"', 4)]
    assert shellcheck.lint(noisy) == []
    assert set(shellcheck.EXCLUDED) >= {"SC2034", "SC2154"} and all(shellcheck.EXCLUDED.values())


def test_rehearse_check_reports_shellcheck_and_passes_on_the_demos(real_shellcheck: None, tmp_path: Path,
                                                                  kit: Any) -> None:
    rb = "## Rollback\n\n```sh\nkubectl rollout undo deployment/demo\nf() { :; }; local z\n```\n"
    d = kit.write_scenario(tmp_path, "lint", runbook=rb)
    res = CliRunner().invoke(cli, ["check", str(d)])
    assert res.exit_code == 1 and "SC2168" in res.output and "(line 5)" in res.output
    demos = CliRunner().invoke(cli, ["check", str(kit.EXAMPLES / "runbook-session"), str(kit.EXAMPLES / "skip-paging")])
    assert demos.exit_code == 0 and "0 failure(s), 0 warning(s)" in demos.output


def test_without_shellcheck_check_warns_with_the_fix(tmp_path: Path, kit: Any,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    found = _findings(tmp_path, kit, kit.RUNBOOK_MD, pf.SHELLCHECK)
    assert found == [("warning", "the runbook's commands were not linted: shellcheck is not installed")]
    s = load_scenario(tmp_path / "pf")
    assert "make env" in pf.run_checks(s, only=[pf.SHELLCHECK])[0].fix
