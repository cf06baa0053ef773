"""The judge (harness/judge.py): the verdict, its reasons and the expectation rule, as a table of cases."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import judge
from harness.journal import Difference, FaultRecord, Finding, Journal, PhaseRecord, Risk

DATA = Path(__file__).resolve().parents[1] / "data" / "reports"
DIFF = Difference(area="schema", object="column users.nickname", message="column users.nickname is still present")
DRIFT = Difference(area="runbook", object="runbook step 2", message="runbook drift: step 2 failed")
LEFT = "container pg-0123 is still paused (fix: docker unpause pg-0123)"
FAILED = FaultRecord(kind="pause_control_plane", index=1, at_step=2, status="failed",
                     detail="RuntimeError: `docker pause n` failed (1) after 4 tries: unable to freeze\nmore")
UNFACED = ("fault pause_control_plane (before step 2) could not be applied, so the rollback was not rehearsed under "
           "it: RuntimeError: `docker pause n` failed (1) after 4 tries: unable to freeze")
NOT_THERE = [FaultRecord(kind="network_latency", index=0, status="unsupported", detail="no sch_netem"),
             FaultRecord(kind="pause_postgres", index=2, status="skipped", detail="the runbook finished first")]


def _phase(name: str, status: str, detail: str = "") -> PhaseRecord:
    return PhaseRecord(name=name, status=status, started_at="t", duration_s=1.0, detail=detail)  # type: ignore[arg-type]


def _journal(phases: tuple[PhaseRecord, ...] = (), differences: tuple[Difference, ...] = (), **kw: object) -> Journal:
    return Journal(scenario="s", expect="READY", phases=list(phases), differences=list(differences), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("journal", "leftovers", "verdict", "reasons"), [
    (_journal((_phase("verify", "ok"),)), [], "READY", [judge.READY_REASON]),
    (_journal(findings=[Finding(check="c", severity="failure", message="m", fix="f")],
              risks=[Risk(kind="old_version_on_new_schema", object="deployment demo", message="m")]),
     [], "READY", [judge.READY_REASON]),  # advice and risks never change the verdict
    (_journal((_phase("detect", "failed", "WaitTimeout: no"),)), [], "READY", [judge.READY_REASON]),  # evidence alone
    (_journal(differences=(DIFF, DRIFT)), [], "NOT_READY", [DIFF.message, DRIFT.message]),
    (_journal((_phase("baseline", "error", "RuntimeError: no db\nmore"),), (DIFF,)), [], "ERROR",
     ["phase baseline could not run: RuntimeError: no db"]),
    (_journal((_phase("provision", "error"),)), [], "ERROR", ["phase provision could not run: "]),
    (_journal(), [LEFT], "ERROR", [f"a fault was not removed: {LEFT}", judge.READY_REASON]),
    # A fault that failed to apply: READY would claim a rehearsal under it; a difference is conclusive anyway.
    (_journal(faults=[FAILED]), [], "ERROR", [UNFACED]),
    (_journal(differences=(DIFF,), faults=[FAILED]), [], "NOT_READY", [DIFF.message, UNFACED]),
    (_journal((_phase("verify", "error", "boom"),), faults=[FAILED]), [], "ERROR",
     ["phase verify could not run: boom"]),
    (_journal(faults=NOT_THERE), [], "READY", [judge.READY_REASON]),  # unsupported/skipped: recommendations only
    (_journal(differences=(DIFF,)), [LEFT, "node n still has a netem qdisc"], "ERROR",
     [f"a fault was not removed: {LEFT}", "a fault was not removed: node n still has a netem qdisc", DIFF.message]),
])
def test_decide(journal: Journal, leftovers: list[str], verdict: str, reasons: list[str]) -> None:
    judged = judge.decide(journal, leftovers)
    assert (judged.verdict.value, judged.reasons) == (verdict, reasons)
    judged.record(journal)
    assert (journal.verdict, journal.reasons) == (verdict, reasons)


@pytest.mark.parametrize("report", sorted(DATA.glob("*/*/report.json")), ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}")
def test_decide_gives_the_verdicts_and_reasons_of_real_reports(report: Path) -> None:
    journal = Journal.model_validate_json(report.read_text(encoding="utf-8"))
    judged = judge.decide(journal)
    assert (judged.verdict.value, judged.reasons) == (journal.verdict, journal.reasons)


@pytest.mark.parametrize(("verdict", "expect", "risks", "expect_risks", "problems"), [
    ("READY", "READY", [], [], []),
    ("NOT_READY", "NOT_READY", [], None, []),
    ("NOT_READY", "READY", [], [], ["verdict NOT_READY, expected READY"]),
    ("READY", "READY", ["old_version_on_new_schema"], [], ["risks ['old_version_on_new_schema'], expected none"]),
    ("READY", "READY", [], ["old_version_on_new_schema"], ["risks none, expected ['old_version_on_new_schema']"]),
    ("ERROR", "READY", [], ["old_version_on_new_schema"], ["verdict ERROR, expected READY"]),  # no word on risks
    ("READY", "READY", ["old_version_on_new_schema"], None, []),  # a report from before expect_risks
])
def test_expectation_problems(verdict: str, expect: str, risks: list[str], expect_risks: list[str] | None,
                              problems: list[str]) -> None:
    j = Journal(scenario="s", expect=expect, verdict=verdict, expect_risks=expect_risks,
                risks=[Risk(kind=k, object="deployment demo", message="m") for k in risks])  # type: ignore[arg-type]
    assert judge.expectation_problems(j) == problems
    assert judge.expectation_problems(j.model_dump(mode="json")) == problems  # report.json data: the same rule
    assert judge.as_expected(j) is (problems == [])
