"""Verify: wait for the app to be healthy again, snapshot, compare with the baseline; then, when
nothing differs, watch that it stays so for `checks.stable_for_s` (harness/steady.py)."""

from __future__ import annotations

from harness.context import RehearsalContext
from harness.helm import history_line, schema_after_own_rollback
from harness.phases import OnFailure, Phase
from harness.scenario.models import INSTANT_FAULTS, FaultKind
from harness.steady import watch_after_verify
from harness.steps import objective_differences, outcome_decided, verify_against_baseline


SCHEMA_AREAS = ("schema", "migrations")  # the differences of the database's structure (snapshot.state.schema_differences)


class VerifyPhase(Phase):
    name = "verify"
    on_failure = OnFailure.STOP  # without the state after the rollback there is nothing to judge

    def execute(self, ctx: RehearsalContext) -> str:
        j = ctx.journal
        timeout = ctx.scenario.timeouts.verify_s
        assert ctx.baseline is not None, "the baseline phase stops the run when it fails"
        drift = next((f"{d.object} failed" for d in j.differences if d.area == "runbook"), None)
        v = verify_against_baseline(ctx, "the app to be healthy after the rollback", since=ctx.runbook_started_at,
                                    on_unhealthy=lambda last: j.event("verify", f"not healthy after {timeout:.0f}s: {last}"),
                                    decided=outcome_decided(ctx.baseline.workloads, drift, lambda: _active_faults(ctx)),
                                    on_decided=lambda why, last: j.event("verify", f"not healthy; not awaited further: "
                                                                                   f"{why}; last state: {last}"))
        j.time_to_recover_s = v.recovered_s
        j.after_rollback = v.after.model_dump(mode="json")
        j.differences.extend(v.differences)
        j.differences.extend(objective_differences(ctx))
        migrations = ctx.scenario.migrations
        lead = schema_after_own_rollback(ctx.bad_upgrade, [d for d in v.differences if d.area in SCHEMA_AREAS],
                                         hook_migrates=migrations is None or migrations.up is None)
        if lead is not None:  # helm rolled back by itself (--atomic), the schema stayed: the verdict's first reason
            j.differences.insert(0, lead)
        release = v.after.helm
        if release is not None:  # the history, and the hook Jobs nothing deleted (hook-delete-policy), for the report
            j.event("helm", f"after the rollback: {release.release} revision {release.revision} {release.status or '-'}; "
                            f"history: {history_line(release)}")
            if release.hook_jobs:
                j.event("helm", f"hook Jobs left behind in the namespace: {', '.join(release.hook_jobs)}")
        detail = f"{len(v.differences)} differences from the baseline"
        if _watch_applies(ctx):
            j.differences.extend(watch_after_verify(ctx, v.after.workloads))
            assert j.steady_state is not None, "watch_after_verify records the watch"
            j.event("verify", j.steady_state.summary())
            detail += f"; {j.steady_state.summary()}"
        return detail


def _watch_applies(ctx: RehearsalContext) -> bool:
    """Only a rehearsal that is READY so far is watched (any difference already makes it NOT_READY), and
    not while a fault is still in place: the watch would measure the fault, not the rollback."""
    j = ctx.journal
    if ctx.scenario.checks.stable_for_s <= 0 or j.differences:
        return False
    # Applied, not removed yet, and lasting (an instant fault has no removal): read from the fault records.
    in_place = [r.kind for r in j.faults if r.status == "applied" and r.reverted_at is None
                and FaultKind(r.kind) not in INSTANT_FAULTS]
    if in_place:
        j.event("verify", f"steady-state watch skipped: faults still in place ({', '.join(in_place)})")
        return False
    return True


def _active_faults(ctx: RehearsalContext) -> list[str]:
    """The scenario's faults applied and not removed yet, as the injector knows them right now."""
    return ctx.fault_injector.active if ctx.fault_injector is not None else []
