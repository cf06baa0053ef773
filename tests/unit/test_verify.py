"""Phase verify (and the shared step behind it, harness/steps.verify_against_baseline): healthy or not,
the diff with the baseline and the bad release's snapshot, and the recovery objective.

The cluster and the database are faked at the step's seams: the health wait,
the snapshot and the diff."""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from harness import steps
from harness.journal import Difference, Journal
from harness.phases.verify import VerifyPhase
from harness.scenario import load_scenario
from harness.wait import WaitTimeout

SCHEMA = Difference(area="schema", object="column users.nickname", message="column users.nickname is still present")
PODS = Difference(area="health", object="deployment demo", message="deployment demo: 0/2 pods ready")


def _snapshot(name: str) -> Any:
    return SimpleNamespace(name=name, model_dump=lambda mode: {"snapshot": name})


@pytest.fixture
def rig(tmp_path: Path, kit: Any, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """verify(): set `rig.healthy`, `rig.diffs`, the objective; read what the seams were asked."""
    rig = SimpleNamespace(healthy=True, diffs=[], compared=None, waited=None)

    def wait_healthy(ctx: Any, timeout_s: float, what: str) -> float:
        rig.waited = (timeout_s, what)
        if not rig.healthy:
            raise WaitTimeout(what, timeout_s, "demo: 0/2 ready", "", "")
        return 1.0

    def diff_states(baseline: Any, after: Any, bad: Any) -> list[Difference]:
        rig.compared = (baseline.name, after.name, bad.name if bad else None)
        return list(rig.diffs)

    monkeypatch.setattr(steps, "wait_healthy", wait_healthy)
    monkeypatch.setattr(steps, "take_snapshot", lambda ctx: _snapshot("after"))
    monkeypatch.setattr(steps, "diff_states", diff_states)

    def run(objective: float | None = None, recovered_in: float | None = 10.0) -> Any:
        doc = kit.minimal_doc(timeouts={"verify_s": 30}, objectives={"max_recover_s": objective})
        ctx = SimpleNamespace(scenario=load_scenario(kit.write_scenario(tmp_path, "v", doc)),
                              journal=Journal(scenario="v", expect="READY"), cleanup=ExitStack(),
                              baseline=_snapshot("baseline"), after_bad_deploy=_snapshot("bad"),
                              runbook_started_at=None if recovered_in is None else time.monotonic() - recovered_in)
        rig.ctx = ctx
        rig.detail = VerifyPhase().execute(ctx)
        return ctx.journal

    rig.run = run
    return rig


def test_healthy_and_equal_to_the_baseline(rig: Any) -> None:
    j = rig.run()
    assert rig.detail == "0 differences from the baseline"
    assert rig.waited == (30.0, "the app to be healthy after the rollback")
    assert rig.compared == ("baseline", "after", "bad")  # "(bad version)" needs the bad snapshot
    assert j.after_rollback == {"snapshot": "after"} and j.differences == [] and j.events == []
    assert j.time_to_recover_s is not None and 10 <= j.time_to_recover_s < 15


def test_the_differences_from_the_baseline_are_recorded(rig: Any) -> None:
    rig.diffs = [SCHEMA]
    j = rig.run(recovered_in=None)  # no runbook start (it failed before its first step): no time to recover
    assert rig.detail == "1 differences from the baseline" and j.differences == [SCHEMA]
    assert j.time_to_recover_s is None


def test_unhealthy_is_a_health_difference_and_an_event(rig: Any) -> None:
    rig.healthy = False
    j = rig.run(objective=5)
    assert j.differences == [steps.HEALTH_DIFFERENCE] and rig.detail == "1 differences from the baseline"
    assert j.differences[0].message == "the app did not become healthy again"
    assert [(e.kind, e.message) for e in j.events] == [("verify", "not healthy after 30s: demo: 0/2 ready")]
    assert j.time_to_recover_s is None  # never recovered: no objective to miss either
    assert j.after_rollback == {"snapshot": "after"}  # the state is still compared


def test_unhealthy_with_a_health_difference_from_the_diff_adds_no_second_one(rig: Any) -> None:
    rig.healthy, rig.diffs = False, [PODS]
    assert rig.run().differences == [PODS]


@pytest.mark.parametrize(("objective", "missed"), [(None, False), (60, False), (5, True)])
def test_the_recovery_objective(rig: Any, objective: float | None, missed: bool) -> None:
    j = rig.run(objective=objective, recovered_in=10.0)
    objectives = [d for d in j.differences if d.area == "objective"]
    assert bool(objectives) is missed
    if missed:
        assert objectives[0].object == "time to recover"
        assert objectives[0].message.startswith("recovery took 10.")
        assert objectives[0].message.endswith("s, above the objective max_recover_s=5s")
        assert rig.detail == "0 differences from the baseline"  # the objective is not a difference from the baseline


def test_the_unhealthy_event_is_kept_when_the_snapshot_after_it_fails(rig: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_database(ctx: Any) -> Any:
        raise RuntimeError("connection refused")

    monkeypatch.setattr(steps, "take_snapshot", no_database)
    rig.healthy = False
    with pytest.raises(RuntimeError, match="connection refused"):
        rig.run()
    assert [e.message for e in rig.ctx.journal.events] == ["not healthy after 30s: demo: 0/2 ready"]
