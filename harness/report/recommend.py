"""Recommendations derived from what the journal saw (nothing is measured here).

Each recommendation is (severity, title, text): ``action`` (something to fix
before relying on this rollback), ``info`` (worth knowing) or ``ok``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from harness.journal import Difference, fault_moment
from harness.report.common import failing_step, step_failed, step_sentence
from harness.snapshot.diff_db import rows_lost

_TO_REVISION = re.compile(r"--to-revision(?:=|\s+)(\d+)")
# The preflight check that judges a rollback by revision number (docs/preflight.md).
REVISION_HISTORY_CHECK = "revision-history"


class Recommendation(NamedTuple):
    severity: str  # action | info | ok
    title: str
    text: str


def _diffs(data: Mapping[str, Any], *areas: str) -> list[dict[str, Any]]:
    return [d for d in data.get("differences") or [] if d.get("area") in areas]


def _objects(diffs: list[dict[str, Any]], limit: int = 3) -> str:
    names = [str(d.get("object", "")) for d in diffs]
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _rows_lost(data_diffs: list[dict[str, Any]]) -> bool:
    """Whether the diff said tracked rows are gone (its own reading of its words)."""
    return any(rows_lost(Difference.model_validate(d)) for d in data_diffs)


def _revision_advice(data: Mapping[str, Any]) -> list[Recommendation]:
    """Rollback by revision number: preflight's revision-history findings judge whether
    the revision survives (one rule, simulated there); without one, a hard-coded
    number is still worth a word, since production's numbers are not the rehearsal's."""
    found = [f for f in data.get("findings") or [] if f.get("check") == REVISION_HISTORY_CHECK]
    if found:
        said = " ".join(f"{str(f.get('message')).rstrip('.')}. Fix: {str(f.get('fix')).rstrip('.')}." for f in found)
        return [Recommendation(
            "action", "The revision history does not keep what the runbook rolls back to",
            f"{said} Production's revision numbers are higher than the rehearsal's: prefer rolling back by image "
            "or tag instead of by revision number.")]
    wanted = sorted({int(m) for s in data.get("runbook_steps") or []
                     for m in _TO_REVISION.findall(str(s.get("command", "")))})
    return [Recommendation(
        "info", f"The runbook hard-codes --to-revision={n}",
        "Revision numbers in production are not the rehearsal's. Prefer `kubectl rollout undo` "
        "without a revision, or have the runbook look the revision up (`kubectl rollout history`).")
        for n in wanted]


def _risk_advice(data: Mapping[str, Any]) -> list[Recommendation]:
    """Readiness risks (phase compat): outside the verdict, but something to fix."""
    risky = [r for r in data.get("risks") or [] if r.get("kind") == "old_version_on_new_schema"]
    if not risky:
        return []
    return [Recommendation(
        "action", "The good version does not run on the bad release's schema",
        f"{_objects(risky)}: {risky[0].get('message')}. Make each migration backwards compatible "
        "(expand/contract): add before you remove, keep old columns and tables until no running version "
        "reads them, and split destructive changes (drop, rename, a new NOT NULL without default) into a "
        "later release, once the code that needs the old shape is gone everywhere. This risk does not change "
        "the verdict: this runbook may restore the schema first, a rushed or partial rollback would not.")]


def _hit_nothing(data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(fault kind, what to say) for every applied fault that hit nothing; the engine's
    `fault` differences first, then fault records with hits == 0 that have none."""
    out = [(str(d.get("object")), str(d.get("message"))) for d in _diffs(data, "fault")]
    said = {kind for kind, _ in out}
    for f in data.get("faults") or []:
        kind = str(f.get("kind"))
        if f.get("status") == "applied" and f.get("hits") == 0 and kind not in said:
            said.add(kind)
            out.append((kind, f"fault {kind} ({fault_moment(f)}) hit nothing"))
    return out


_MEET_THE_FAULT = (" Make the fault meet the runbook: for terminate_db_connections pin the migration with "
                   "hold_lock_on (a table it touches), or arm the fault before the step that opens connections.")


def _fault_advice(data: Mapping[str, Any]) -> list[Recommendation]:
    recs = [Recommendation(
        "action", f"Fault {kind} hit nothing",
        f"{message.rstrip('.')}. The rollback was not rehearsed under this fault, so the rehearsal cannot be "
        "READY." + ("" if "hint" in message.lower() else _MEET_THE_FAULT))
        for kind, message in _hit_nothing(data)]
    for f in data.get("faults") or []:
        status = f.get("status")
        if status in ("unsupported", "failed", "skipped"):
            detail = str(f.get("detail") or "").splitlines()[:1]
            said = (f"{detail[0].rstrip('.') if detail else 'no detail'}. "
                    "The rollback was not rehearsed under this fault")
            recs.append(Recommendation(  # failed: an error, so the verdict is not READY (harness/judge.py)
                "action", f"Fault {f.get('kind')} could not be applied", f"{said}, so it cannot be called READY. "
                "Rehearse again; if it fails the same way, the detail above names the cause.")
                if status == "failed" else Recommendation(
                "info", f"Fault {f.get('kind')} was not applied ({status})",
                f"{said}: its result says nothing about it."))
    return recs


def _rerun_advice(data: Mapping[str, Any]) -> list[Recommendation]:
    """The fault-free second run of the runbook (phase rerun)."""
    idem = _diffs(data, "idempotence")
    if data.get("idempotent") is False or idem:
        step = next((s for s in data.get("rerun_steps") or [] if step_failed(s)), None)
        parts = [f"on the second run, {step_sentence(step)}"] if step is not None else []
        if idem:
            parts.append(f"{len(idem)} difference(s) after it: {_objects(idem)}")
        what = "; ".join(parts) or "the second run did not leave the state equal to the baseline"
        return [Recommendation(
            "action", "The runbook is not idempotent",
            f"Run a second time without faults, {what}. After a fault, whoever follows the runbook runs it "
            "again: every step must be safe to repeat. Prefer `kubectl apply` to `create`, migrate to an "
            "explicit target version rather than `down 1`, guard SQL with IF EXISTS / IF NOT EXISTS, and "
            "check the state before acting.")]
    if data.get("runbook_converged") is False and data.get("idempotent") is True:
        return [Recommendation(
            "info", "Under the faults, only a second run of the runbook recovered",
            "The first run left differences; a second, fault-free run brought the state back to the baseline. "
            "Say in the runbook that it is safe to run again and when to do it, or add retries to the steps "
            "the faults broke.")]
    return []


def _phase_errors(data: Mapping[str, Any]) -> list[Recommendation]:
    recs = []
    for p in (data.get("phases") or []):
        if p.get("status") == "error":
            first = (p.get("detail") or "").splitlines()[0:1]
            recs.append(Recommendation(
                "action", f"The rehearsal could not run phase {p.get('name')}",
                f"{first[0] if first else 'no detail'}. Nothing after it could be compared: fix the "
                "environment or the scenario and rehearse again."))
    return recs


def _detection_advice(data: Mapping[str, Any]) -> list[Recommendation]:
    detect = next((p for p in data.get("phases") or [] if p.get("name") == "detect"), None)
    if not (_diffs(data, "detect") or detect is not None and (
            detect.get("status") != "ok" or data.get("time_to_detect_s") is None)):
        return []
    within = (data.get("objectives") or {}).get("max_detect_s")
    limit = f" within {within:.0f}s" if within else ""
    return [Recommendation(
        "action", "The bad version was not detected",
        f"Its failure was not observed{limit}. An alert built on the same signal would not fire "
        "either: check failure.mode in the scenario, and the probes and alerts of the app.")]


# kubectl's `rollout status` fails at once on a Progressing condition with reason ProgressDeadlineExceeded. Right
# after `rollout undo` the deployment controller marks the new generation observed but keeps the condition the
# bad rollout left until it sees progress (the bad pods gone): kubectl reads that stale condition (seen here
# 0.3 s after an undo; kubernetes/kubernetes#49637 and others). A script fails the same way in production
# whenever the bad release outlived progressDeadlineSeconds (600 s unless the manifest says otherwise).
_DEADLINE_WORDS = "exceeded its progress deadline"
_STATUS = re.compile(r"\brollout\s+status\b")
# Rollbacks that send the Deployment back to a ReplicaSet it has (a new one would reset the condition).
_UNDO = re.compile(r"\brollout\s+undo\b|\bset\s+image\b|\bhelm\s+rollback\b")
_STALE_WITHIN_S = 30  # a stale read fails at once; a rollout that really misses its deadline waits the deadline


def _stale_deadline(steps: list[Mapping[str, Any]], step: Mapping[str, Any]) -> str:
    """Why `step` may have failed on a stale progress-deadline condition after a rollback ('' when not that)."""
    before = [s for s in steps if (s.get("index") or 0) <= (step.get("index") or 0)]
    command = str(step.get("command") or "")
    if (_DEADLINE_WORDS not in str(step.get("output_tail") or "") or not _STATUS.search(command)
            or float(step.get("duration_s") or 0) > _STALE_WITHIN_S
            or not any(_UNDO.search(str(s.get("command") or "")) for s in before)):
        return ""
    return (" kubectl read the ProgressDeadlineExceeded condition the bad rollout left: right after a rollback to "
            "a ReplicaSet it still has (`rollout undo`, `set image` back, `helm rollback`) the Deployment keeps it "
            "until the controller sees the rollback progress, so `rollout status` can fail at once although the "
            "rollback works. A script fails the same way in production whenever the bad release "
            "outlived progressDeadlineSeconds (600 s by default). Let the status check try again after a few "
            "seconds, e.g. `kubectl rollout status deployment/<name> --timeout=120s || { sleep 10; kubectl rollout "
            "status deployment/<name> --timeout=120s; }`.")


def _step_advice(data: Mapping[str, Any]) -> list[Recommendation]:
    recs = []
    steps = list(data.get("runbook_steps") or [])
    for step in steps:
        if step_failed(step):
            tail = [ln for ln in str(step.get("output_tail") or "").splitlines() if ln.strip()]
            last = f" Last output: {tail[-1][:200]}" if tail else ""
            recs.append(Recommendation(
                "action", f"Runbook step {step.get('index')} failed",
                f"{step_sentence(step)}. Whoever follows the runbook stops here: fix the command, or "
                f"document what to do when it fails.{last}{_stale_deadline(steps, step)}"))
    return recs


def _schema_advice(data: Mapping[str, Any]) -> list[Recommendation]:
    schema = _diffs(data, "schema", "migrations")
    if not schema:
        return []
    return [Recommendation(
        "action", "The schema was not restored",
        f"{len(schema)} schema or migration difference(s): {_objects(schema)}. Run the down "
        "migration in the runbook (before the image rollback), or make the release backward "
        "compatible (expand/contract) so the old version runs on the new schema.")]


def _data_advice(data: Mapping[str, Any]) -> list[Recommendation]:
    data_diffs = _diffs(data, "data")
    if not data_diffs:
        return []
    title = "Tracked data was lost" if _rows_lost(data_diffs) else "Tracked data changed"
    return [Recommendation(
        "action", title,
        f"{_objects(data_diffs)}: {data_diffs[0].get('message')}. A down migration that drops a "
        "column or table loses what was written to it: back the data up before the release, or "
        "make the migration reversible without loss.")]


def _config_advice(data: Mapping[str, Any]) -> list[Recommendation]:
    config = _diffs(data, "config")
    if not config:
        return []
    return [Recommendation(
        "action", "ConfigMaps or Secrets were not restored",
        f"{_objects(config)}: {config[0].get('message')}. `kubectl rollout undo` only restores the pod "
        "template: re-apply the previous ConfigMap/Secret in the runbook, or version them by name "
        "(e.g. kustomize's hash suffix) so the old template points at the old data.")]


def _registry_advice(data: Mapping[str, Any]) -> list[Recommendation]:
    registry = _diffs(data, "registry")
    if not registry:
        return []
    return [Recommendation(
        "action", "The production tag was not restored",
        f"{registry[0].get('message')}. Nodes pulling the production tag get the wrong image: "
        "re-tag the good commit's image in the runbook (pull, tag, push).")]


def _app_advice(data: Mapping[str, Any]) -> list[Recommendation]:
    app = _diffs(data, "app", "health")
    if not app:
        return []
    return [Recommendation("action", "The app is not back to the good version",
                           f"{_objects(app)}: {app[0].get('message')}.")]


def _stability_advice(data: Mapping[str, Any]) -> list[Recommendation]:
    flaps = _diffs(data, "stability")
    if not flaps:
        return []
    return [Recommendation(
        "action", "The app did not stay recovered",
        f"{_objects(flaps)}: {flaps[0].get('message')}. Verify saw the good state, and it did not last: find "
        "what restarts the pods or applies the bad release again (an auto-sync of a GitOps tool, a CI job, an "
        "operator), and pause or pin it in the runbook before the rollback.")]


def _version_advice(data: Mapping[str, Any]) -> list[Recommendation]:
    lies = _diffs(data, "version")
    if not lies:
        return []
    return [Recommendation(
        "action", "The migration version table does not describe the schema",
        f"{lies[0].get('message')}. The migration tool decides what to run from that table alone: make the down "
        "migration revert the schema and the version together, and after a manual repair set the version to "
        "the schema that is really there (e.g. `migrate force`, `alembic stamp`).")]


def _drift_advice(data: Mapping[str, Any]) -> list[Recommendation]:
    runbook = _diffs(data, "runbook")
    if not runbook:
        return []
    return [Recommendation("action", "The runbook drifted from what was rehearsed", str(runbook[0].get("message")))]


def _objective_advice(data: Mapping[str, Any]) -> list[Recommendation]:
    ttr, max_ttr = data.get("time_to_recover_s"), (data.get("objectives") or {}).get("max_recover_s")
    if ttr is not None and max_ttr is not None and ttr > max_ttr:
        return [Recommendation(
            "action", "Recovery was slower than the objective",
            f"Recovery took {ttr:.1f}s, the objective is {max_ttr:.0f}s. Shorten the runbook (fewer "
            "manual steps, pre-pulled images, shorter rollout waits) or revisit the objective.")]
    if ttr is not None and max_ttr is None:
        return [Recommendation(
            "info", "No recovery objective",
            f"Recovery took {ttr:.1f}s. Set objectives.max_recover_s in scenario.yaml so a slower "
            "rollback fails the rehearsal.")]
    return []


# Areas some rule above speaks for; any other area gets a generic line.
_ADVISED_AREAS = frozenset({"schema", "migrations", "version", "data", "registry", "app", "health", "stability",
                            "runbook", "objective", "config", "detect", "fault", "idempotence"})


def _other_advice(data: Mapping[str, Any]) -> list[Recommendation]:
    return [Recommendation("action", f"Difference in {d.get('area')}", str(d.get("message")))
            for d in data.get("differences") or [] if d.get("area") not in _ADVISED_AREAS]


def _expectation_advice(data: Mapping[str, Any]) -> list[Recommendation]:
    verdict, expect = data.get("verdict"), data.get("expect")
    if verdict == expect == "NOT_READY":
        return [Recommendation(
            "info", "Expected NOT_READY: the rehearsal caught it",
            "This scenario is a negative control; the problems above are the ones it is meant to show.")]
    if verdict == expect or verdict == "ERROR":
        return []
    if expect == "NOT_READY":
        return [Recommendation(
            "action", f"Expected NOT_READY, got {verdict}",
            "This scenario is a negative control: its rollback is meant to be caught as broken. "
            "Either the scenario no longer reproduces the problem (update `expect`) or the "
            "rehearsal missed it.")]
    return [Recommendation(
        "action", f"Expected READY, got {verdict}",
        "This rollback is not ready for production: fix what is listed above, then rehearse again.")]


# Every rule, in the order its recommendations are shown.
RULES: tuple[Callable[[Mapping[str, Any]], list[Recommendation]], ...] = (
    _phase_errors, _detection_advice, _step_advice, _schema_advice, _version_advice, _risk_advice, _data_advice,
    _config_advice, _registry_advice, _app_advice, _stability_advice, _drift_advice, _fault_advice, _rerun_advice, _objective_advice,
    _revision_advice, _other_advice, _expectation_advice,
)


def recommendations(data: Mapping[str, Any]) -> list[Recommendation]:
    """What to do, read from the journal: its differences, findings, risks, faults and steps."""
    recs = [r for rule in RULES for r in rule(data)]
    if not any(r.severity == "action" for r in recs) and data.get("verdict") == "READY":
        recs.insert(0, Recommendation(
            "ok", "Nothing to fix",
            "The rollback brought back the image, the schema and the tracked data, and the app is healthy."))
    if failing_step(data) is None and not recs:
        recs.append(Recommendation("info", "No recommendation", "Nothing in the journal calls for action."))
    return recs
