"""The judge: the one owner of a rehearsal's verdict, its reasons and the expectation rule.

The session asks it exactly once per scenario, after the pipeline, the
scenario's cleanup and the fault after-check (faults.leftovers): only then is
everything known that the verdict depends on. Everything else (the console,
the CLI table, --against-expect, the pytest item, every report) reads the
judged journal, and compares it with the scenario's expectations through
`expectation_problems`, the one rule.

Verdict, in this order:
- ERROR if a fault was left in place after the cleanup (the harness broke its own
  promise; the next scenario must not run on a paused database), or if a phase
  could not run (status `error`: nothing conclusive was compared);
- NOT_READY if there is any difference from the baseline (or a drifting runbook,
  an undetected failure, a fault that hit nothing, a missed objective);
- ERROR if a declared fault could not be applied (status `failed`: an error, not
  this environment's lack of the feature, which is `unsupported`) and nothing
  else decided: the rollback was not rehearsed under the fault the scenario
  asks for, and READY would claim it was;
- READY otherwise. Findings and risks never change it.

Steps the runbook marks `rehearse: skip` are never failures; the reasons name
each one (so a verdict never hides that a step did not run), and preflight
flags a skipped step the rollback needs (check `skipped-step`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.journal import Journal, fault_moment
from harness.scenario.models import Verdict

READY_REASON = "image, schema and tracked data equal the baseline and the app is healthy"


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    reasons: list[str]

    def record(self, journal: Journal) -> None:
        journal.verdict = self.verdict.value
        journal.reasons = list(self.reasons)


def decide(journal: Journal, leftovers: Sequence[str] = ()) -> Judgement:
    """The verdict of a finished rehearsal and its reasons; `leftovers`: what the fault after-check found."""
    errored = [p for p in journal.phases if p.status == "error"]
    unfaced = unfaced_reasons(journal)
    if errored:
        verdict = Verdict.ERROR
        reasons = [f"phase {p.name} could not run: {p.detail.splitlines()[0] if p.detail else ''}" for p in errored]
    elif journal.differences:  # conclusive even without the fault: the rollback failed anyway
        verdict, reasons = Verdict.NOT_READY, [d.message for d in journal.differences] + unfaced
    elif unfaced:
        verdict, reasons = Verdict.ERROR, unfaced
    else:
        verdict, reasons = Verdict.READY, [READY_REASON]
    if leftovers:  # whatever the state said: its reasons stay, after the leftovers
        verdict, reasons = Verdict.ERROR, [f"a fault was not removed: {p}" for p in leftovers] + reasons
    return Judgement(verdict, reasons + skip_reasons(journal))


def unfaced_reasons(journal: Journal) -> list[str]:
    """One reason per declared fault that could not be applied (status `failed`)."""
    return [f"fault {r.kind} ({fault_moment(r)}) could not be applied, so the rollback was not rehearsed under it: "
            f"{(r.detail.splitlines() or ['no detail'])[0]}" for r in journal.faults if r.status == "failed"]


def skip_reasons(journal: Journal) -> list[str]:
    """One reason per runbook step the runbook marks `rehearse: skip`: not a failure, but never silent."""
    return [f"runbook step {s.index} (line {s.line}) was skipped, as the runbook marks it: {s.skipped}"
            for s in journal.runbook_steps if s.skipped is not None]


def expectation_problems(journal: Journal | Mapping[str, Any]) -> list[str]:
    """Why a judged journal (or a report.json's data) does not match its scenario's `expect` and
    `expect_risks` (empty: it matches).

    Risks are compared only when the journal records `expect_risks` (reports from before it did not)
    and the rehearsal reached a verdict (an ERROR says nothing about risks)."""
    data = journal.model_dump(mode="json") if isinstance(journal, Journal) else journal
    problems = []
    if data.get("verdict") != data.get("expect"):
        problems.append(f"verdict {data.get('verdict')}, expected {data.get('expect')}")
    wanted = data.get("expect_risks")
    if wanted is not None and data.get("verdict") != Verdict.ERROR.value:
        seen = sorted({str(r.get("kind")) for r in data.get("risks") or []})
        if seen != sorted(set(wanted)):
            problems.append(f"risks {seen or 'none'}, expected {sorted(set(wanted)) or 'none'}")
    return problems


def as_expected(journal: Journal | Mapping[str, Any]) -> bool:
    return not expectation_problems(journal)
