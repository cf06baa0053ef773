"""The rehearsal journal: phases append records; report writers only format it.

One journal per scenario run. It is the single source of every report
(JSON, JUnit, summary): nothing is measured twice, nothing is re-derived.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

JOURNAL_SCHEMA_VERSION = 1
PhaseStatus = Literal["ok", "failed", "skipped", "error"]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class PhaseRecord(Record):
    name: str
    status: PhaseStatus
    started_at: str
    duration_s: float
    detail: str = ""


class RunbookStepRecord(Record):
    index: int
    command: str
    line: int
    started_at: str
    exit_code: int | None
    timed_out: bool
    duration_s: float
    output_tail: str
    # The reason of the runbook's `rehearse: skip` marker: the step was recorded, never run (exit_code None).
    skipped: str | None = None
    waiting_for_input: bool = False  # it read stdin and no declared answer fitted
    ended_session: bool = False      # it ended the runbook's shell session (`exit`)


class Difference(Record):
    """One way the state after the rollback differs from the baseline."""

    area: str  # app | schema | data | migrations | version | registry | runbook | health | stability | fault | ...
    object: str
    message: str


class Finding(Record):
    """A preflight finding (harness/preflight.py): advice read from the scenario's files.

    Kept apart from `differences`: findings never change the verdict, which
    only the real state after the rollback decides.
    """

    check: str  # check id, e.g. destructive-migration (docs/preflight.md)
    severity: Literal["warning", "failure"]
    message: str
    file: str = ""
    fix: str


class FaultRecord(Record):
    """One fault of the scenario (harness/faults.py): when it was applied and removed, and how it went."""

    kind: str
    index: int  # position in the scenario's `faults`
    at_step: int | None = None
    during: str = "runbook"  # the phase it hits: runbook, or deploy_bad (the bad release's `helm upgrade`)
    applied_at: str | None = None
    reverted_at: str | None = None
    # applied: it really happened (and was removed); unsupported: this environment cannot do it (detail
    # has the exact error); failed: applying it failed; skipped: the runbook stopped before its step, or
    # finished before its delay elapsed.
    status: Literal["applied", "unsupported", "failed", "skipped"]
    detail: str = ""
    # What the fault hit, for faults that can miss (terminate_db_connections: connections terminated).
    # 0 means the rollback never met the fault: the rehearsal reports that instead of READY.
    hits: int | None = None


def fault_moment(record: FaultRecord | Mapping[str, Any]) -> str:
    """When a fault was meant to hit, for every report: "before step 2", or "during the bad release"."""
    data = record.model_dump() if isinstance(record, FaultRecord) else record
    if data.get("during") == "deploy_bad":
        return "during the bad release"
    return f"before step {data.get('at_step') or 1}"


class Risk(Record):
    """A readiness risk seen on the real environment that the verdict does not cover.

    The verdict judges the state after this runbook; a risk is what would break a
    different but plausible rollback. `old_version_on_new_schema` (phase compat):
    the good version, started against the bad release's schema before the
    rollback, did not become ready, so any rollback that puts the old code back
    before the schema (or a migrate down that fails) leaves the app down:
    expand/contract is broken. `helm_release_pending` (phase runbook, before its
    first step): the Helm release is stuck in pending-* when the runbook starts,
    so the next `helm upgrade` is refused until someone repairs it. Like findings,
    risks never change the verdict; the scenario's `expect_risks` states which
    ones the harness must report.
    """

    kind: Literal["old_version_on_new_schema", "helm_release_pending"]
    object: str  # e.g. deployment demo
    message: str
    evidence: str = ""  # probe events and log lines, redacted


class SteadyStateRecord(Record):
    """The watch after a passing verify (scenario `checks.stable_for_s`, harness/steady.py): how long the
    app was watched and how often it was read. It ends early at the first flap, which is recorded as a
    `stability` difference."""

    started_at: str
    stable_for_s: float  # the window asked for
    watched_s: float  # how long it watched: shorter than stable_for_s when a flap ended it
    samples: int  # readings of the tracked workloads compared with the state verify saw
    unread: int = 0  # readings that failed (an API error): not flaps, and not counted in samples
    flaps: int = 0  # stability differences found (all in the sample that ended the watch)
    last_error: str = ""  # the last failed reading, redacted

    def summary(self) -> str:
        """One line about the watch, for the phase detail, the event and every report."""
        unread = f", {self.unread} unread" if self.unread else ""
        if self.flaps:
            return (f"steady-state watch ended at {self.watched_s:.1f}s of {self.stable_for_s:g}s after "
                    f"{self.samples} samples{unread}: {self.flaps} flap(s)")
        return f"stable for {self.watched_s:.1f}s ({self.samples} samples{unread})"


class Event(Record):
    at: str
    kind: str
    message: str


class Journal(BaseModel):
    """Mutable during the run; serialised as report.json."""

    schema_version: int = JOURNAL_SCHEMA_VERSION
    scenario: str
    description: str = ""
    # Where the scenario and its runbook are: relative to the working directory when under it (the checkout
    # in CI, so junit.xml's `file` attributes point CI annotations at the runbook line), else absolute.
    scenario_file: str = Field("", description="The scenario.yaml, relative to the directory the run started "
                                               "in when under it; \"\" in older reports.")
    runbook_file: str = Field("", description="The runbook whose steps ran (the steps' `line` is in it), "
                                              "named like scenario_file; \"\" in older reports.")
    expect: str
    # The readiness risks the scenario must report (scenario `expect_risks`); None in older reports.
    expect_risks: list[str] | None = None
    verdict: str = "ERROR"
    reasons: list[str] = Field(default_factory=list)
    started_at: str = Field(default_factory=now_iso)
    finished_at: str | None = None
    # The run (its owner id, as history.jsonl names it) and, with --shard K/N, its shard; optional, additive.
    run_id: str | None = None
    shard: str | None = None
    phases: list[PhaseRecord] = Field(default_factory=list)
    runbook_steps: list[RunbookStepRecord] = Field(default_factory=list)
    # The scenario's bindings of the runbook's placeholders (runbook.placeholders), as substituted; optional, additive.
    placeholders: dict[str, str] = Field(default_factory=dict)
    events: list[Event] = Field(default_factory=list)
    time_to_detect_s: float | None = None
    time_to_recover_s: float | None = None
    # The scenario's targets, for the reports (e.g. max_recover_s, max_detect_s); optional, additive.
    objectives: dict[str, float | None] = Field(default_factory=dict)
    baseline: dict[str, Any] | None = None
    after_bad_deploy: dict[str, Any] | None = None
    after_rollback: dict[str, Any] | None = None
    differences: list[Difference] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)  # preflight advice, not part of the verdict
    risks: list[Risk] = Field(default_factory=list)  # seen for real but outside the verdict (phase compat)
    # What phase compat checked and found, one line per workload (also when there was no risk).
    compatibility: list[str] = Field(default_factory=list)
    environment: dict[str, str] = Field(default_factory=dict)
    # Faults (scenario `faults`) and the fault-free second run of the runbook (phase rerun); optional, additive.
    faults: list[FaultRecord] = Field(default_factory=list)
    rerun_steps: list[RunbookStepRecord] = Field(default_factory=list)
    runbook_converged: bool | None = None  # the first verify found no differences
    idempotent: bool | None = None  # the second run failed no step and left the state equal to the baseline
    fault_cost_s: float | None = None  # time to recover with the faults minus the second run's
    # The steady-state watch after a passing verify; None when it did not run (verify found differences,
    # or checks.stable_for_s is 0). Optional, additive.
    steady_state: SteadyStateRecord | None = None
    # Seconds the scenario's cleanup took (namespace deleted and awaited, database dropped, ...): after its last
    # phase, before its worker can take the next scenario. None when kept (--keep-cluster) or in older reports.
    cleanup_s: float | None = None

    def event(self, kind: str, message: str) -> None:
        self.events.append(Event(at=now_iso(), kind=kind, message=message))


class Stopwatch:
    """Monotonic timing with the wall-clock start kept for the timeline."""

    def __init__(self) -> None:
        self.started_at = now_iso()
        self._t0 = time.monotonic()

    @property
    def elapsed(self) -> float:
        return round(time.monotonic() - self._t0, 3)
