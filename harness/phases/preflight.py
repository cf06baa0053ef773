"""Preflight: rollback hazards read from the scenario's files (no cluster needed).

Findings go to the journal's `findings`, never to `differences`: they are
advice and do not change the verdict, which only the real state decides.
"""

from __future__ import annotations

from harness.context import RehearsalContext
from harness.phases import OnFailure, Phase
from harness.preflight import FAILURE, run_checks
from harness.progress import say


class PreflightPhase(Phase):
    name = "preflight"
    on_failure = OnFailure.EVIDENCE  # advice: it never stops the rehearsal

    def execute(self, ctx: RehearsalContext) -> str:
        findings = [f.model_copy(update={"message": ctx.redactor(f.message), "fix": ctx.redactor(f.fix)})
                    for f in run_checks(ctx.scenario)]
        ctx.journal.findings.extend(findings)
        for f in findings:
            say(f"  preflight {f.severity} [{f.check}]: {f.message}",
                style="red" if f.severity == FAILURE else "yellow")
        failures = sum(f.severity == FAILURE for f in findings)
        if not findings:
            return "no findings"
        return f"{failures} failure(s), {len(findings) - failures} warning(s) (advice: the verdict ignores them)"
