"""The pipeline (harness/pipeline.py): the phase contract and what a failing phase means, from its data."""

from __future__ import annotations

import time
from contextlib import ExitStack
from types import SimpleNamespace
from typing import Any

import pytest

from harness import pipeline
from harness.journal import Journal
from harness.phases import OnFailure, Phase

ORDER = ["preflight", "provision", "deploy_good", "baseline", "deploy_bad", "detect", "compat", "runbook",
         "verify", "rerun"]
STOPS = {"provision", "deploy_good", "baseline", "verify"}


def test_the_phases_follow_one_contract_in_order() -> None:
    assert [p.name for p in pipeline.PHASES] == ORDER  # the names the journal records
    assert all(isinstance(p, Phase) for p in pipeline.PHASES)
    assert {p.name for p in pipeline.PHASES if p.on_failure is OnFailure.STOP} == STOPS


class Fake(Phase):
    def __init__(self, name: str, on_failure: OnFailure, log: list[str], *, fails: bool = False,
                 applies: bool = True) -> None:
        self.name, self.on_failure, self.log, self.fails, self._applies = name, on_failure, log, fails, applies

    def applies(self, ctx: Any) -> bool:
        return self._applies

    def execute(self, ctx: Any) -> str:
        self.log.append(self.name)
        ctx.cleanup.callback(self.log.append, f"undo {self.name}")
        if self.fails:
            raise RuntimeError(f"{self.name} broke\nsecond line")
        return f"{self.name} done"


def _rehearse(monkeypatch: pytest.MonkeyPatch, phases: list[Phase], keep: bool = False) -> Journal:
    monkeypatch.setattr(pipeline, "PHASES", phases)
    monkeypatch.setattr(pipeline, "say", lambda *a, **k: None)
    ctx = SimpleNamespace(journal=Journal(scenario="s", expect="READY"), cleanup=ExitStack(), keep=keep,
                          redactor=lambda t: t.replace("broke", "b***e"), namespace="rr-s", db=None)
    pipeline.rehearse(ctx)  # type: ignore[arg-type]
    return ctx.journal


def test_evidence_is_recorded_as_failed_and_the_rehearsal_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    log: list[str] = []
    j = _rehearse(monkeypatch, [Fake("detect", OnFailure.EVIDENCE, log, fails=True),
                                Fake("verify", OnFailure.STOP, log)])
    assert [(p.name, p.status) for p in j.phases] == [("detect", "failed"), ("verify", "ok")]
    assert j.phases[0].detail == "RuntimeError: detect b***e\nsecond line"  # redacted
    assert log == ["detect", "verify", "undo verify", "undo detect"]
    assert j.verdict == "ERROR" and j.reasons == []  # not judged here: the session asks the judge
    assert j.finished_at is not None


def test_a_stopping_phase_is_an_error_and_nothing_after_it_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    log: list[str] = []
    j = _rehearse(monkeypatch, [Fake("baseline", OnFailure.STOP, log, fails=True),
                                Fake("runbook", OnFailure.EVIDENCE, log)])
    assert [(p.name, p.status) for p in j.phases] == [("baseline", "error")]
    assert log == ["baseline", "undo baseline"]  # the cleanup still ran


def test_a_phase_that_does_not_apply_is_neither_run_nor_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    log: list[str] = []
    j = _rehearse(monkeypatch, [Fake("verify", OnFailure.STOP, log), Fake("rerun", OnFailure.EVIDENCE, log,
                                                                          applies=False)])
    assert [p.name for p in j.phases] == ["verify"] and "rerun" not in log


def test_keep_leaves_the_scenarios_resources(monkeypatch: pytest.MonkeyPatch) -> None:
    log: list[str] = []
    j = _rehearse(monkeypatch, [Fake("provision", OnFailure.STOP, log)], keep=True)
    assert log == ["provision"]  # --keep-cluster: no cleanup callback ran
    assert j.cleanup_s is None  # nothing was removed, so no cleanup time


class SlowCleanup(Phase):
    """A phase whose cleanup (e.g. a namespace deletion awaited) takes `seconds`."""

    name, on_failure = "provision", OnFailure.STOP

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def execute(self, ctx: Any) -> str:
        ctx.cleanup.callback(time.sleep, self.seconds)
        return "ok"


def test_the_cleanup_time_is_recorded_apart_from_the_phases(monkeypatch: pytest.MonkeyPatch) -> None:
    j = _rehearse(monkeypatch, [SlowCleanup(0.2), Fake("verify", OnFailure.STOP, [])])
    assert j.cleanup_s is not None and 0.2 <= j.cleanup_s < 5  # the sleep, and no phase's time
    assert [p.name for p in j.phases] == ["provision", "verify"]  # a cleanup that worked is no phase


class BrokenCleanup(Phase):
    """A phase whose cleanup (e.g. DROP DATABASE) fails after everything ran."""

    name, on_failure = "provision", OnFailure.STOP

    def __init__(self, interrupt: bool = False) -> None:
        self.interrupt = interrupt

    def execute(self, ctx: Any) -> str:
        def drop() -> None:
            raise RuntimeError("DROP DATABASE rr_s failed: it broke")
        ctx.cleanup.callback(drop)
        if self.interrupt:
            raise KeyboardInterrupt("signal 15")
        return "ok"


def test_a_failing_cleanup_is_an_error_phase_and_the_rehearsal_is_still_judged(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from harness import judge

    j = _rehearse(monkeypatch, [BrokenCleanup(), Fake("verify", OnFailure.STOP, [])])
    assert [(p.name, p.status) for p in j.phases] == [("provision", "ok"), ("verify", "ok"), ("cleanup", "error")]
    assert j.phases[-1].detail == "RuntimeError: DROP DATABASE rr_s failed: it b***e"  # redacted
    assert j.cleanup_s == j.phases[-1].duration_s  # the failed cleanup's time is recorded too
    judge.decide(j).record(j)
    assert j.verdict == "ERROR" and "DROP DATABASE rr_s failed" in j.reasons[0]


def test_an_interrupt_is_never_swallowed_by_a_failing_cleanup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline, "PHASES", [BrokenCleanup(interrupt=True)])
    monkeypatch.setattr(pipeline, "say", lambda *a, **k: None)
    ctx = SimpleNamespace(journal=Journal(scenario="s", expect="READY"), cleanup=ExitStack(), keep=False,
                          redactor=str, namespace="rr-s", db=None)
    with pytest.raises(KeyboardInterrupt, match="signal 15"):
        pipeline.rehearse(ctx)  # type: ignore[arg-type]
    assert [p.name for p in ctx.journal.phases] == ["cleanup"]  # the failed removal is still on record
