"""Recommendations derived from what the journal saw (nothing is measured here).

Each recommendation is (severity, title, text): ``action`` (something to fix
before relying on this rollback), ``info`` (worth knowing) or ``ok``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from harness.report.common import failing_step, step_failed, step_sentence

_TO_REVISION = re.compile(r"--to-revision(?:=|\s+)(\d+)")


class Recommendation(NamedTuple):
    severity: str  # action | info | ok
    title: str
    text: str


def _workloads(data: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    snap = data.get(key) or {}
    return list(snap.get("workloads") or [])


def _diffs(data: Mapping[str, Any], *areas: str) -> list[dict[str, Any]]:
    return [d for d in data.get("differences") or [] if d.get("area") in areas]


def _objects(diffs: list[dict[str, Any]], limit: int = 3) -> str:
    names = [str(d.get("object", "")) for d in diffs]
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _rows_lost(data: Mapping[str, Any]) -> list[str]:
    """Tracked tables with fewer rows after the rollback than at baseline, or gone."""
    def tables(key: str) -> dict[str, Mapping[str, Any]]:
        db = (data.get(key) or {}).get("database") or {}
        return {str(t.get("table")): t for t in db.get("data") or []}
    before, after = tables("baseline"), tables("after_rollback")
    lost = []
    for name, a in before.items():
        b = after.get(name)
        if a.get("missing"):
            continue
        if b is None or b.get("missing") or (b.get("row_count") or 0) < (a.get("row_count") or 0):
            lost.append(name)
    return lost


def _revision_advice(data: Mapping[str, Any]) -> list[Recommendation]:
    out: list[Recommendation] = []
    wanted = sorted({int(m) for s in data.get("runbook_steps") or []
                     for m in _TO_REVISION.findall(str(s.get("command", "")))})
    if not wanted:
        return out
    seen = _workloads(data, "after_bad_deploy") or _workloads(data, "baseline")
    limits: list[tuple[str, int, int | None]] = [
        (str(w.get("deployment")), int(w["revision_history_limit"]), w.get("revision")) for w in seen
        if w.get("revision_history_limit") is not None]
    for n in wanted:
        flagged = False
        for deployment, limit, current in limits:
            pruned = current is not None and n < current - limit
            if limit < n or pruned or limit == 0:
                flagged = True
                out.append(Recommendation(
                    "action", f"revisionHistoryLimit {limit} is lower than the runbook's --to-revision={n}",
                    f"Deployment {deployment} keeps only its last {limit} old ReplicaSets, so revision {n} "
                    "may already be pruned when the runbook needs it (production's revision numbers are "
                    "higher than the rehearsal's). Raise spec.revisionHistoryLimit, or roll back by image "
                    "or tag instead of by revision number."))
        if not flagged:
            out.append(Recommendation(
                "info", f"The runbook hard-codes --to-revision={n}",
                "Revision numbers in production are not the rehearsal's. Prefer `kubectl rollout undo` "
                "without a revision, or have the runbook look the revision up (`kubectl rollout history`)."))
    return out


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
            out.append((kind, f"fault {kind} (before runbook step {f.get('at_step') or 1}) hit nothing"))
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
        if f.get("status") in ("unsupported", "failed", "skipped"):
            detail = str(f.get("detail") or "").splitlines()[:1]
            recs.append(Recommendation(
                "info", f"Fault {f.get('kind')} was not applied ({f.get('status')})",
                f"{detail[0].rstrip('.') if detail else 'no detail'}. The rollback was not rehearsed under this fault: "
                "its result says nothing about it."))
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


def recommendations(data: Mapping[str, Any]) -> list[Recommendation]:
    recs: list[Recommendation] = []
    phases = {p.get("name"): p for p in data.get("phases") or []}
    objectives = data.get("objectives") or {}

    for p in (data.get("phases") or []):
        if p.get("status") == "error":
            first = (p.get("detail") or "").splitlines()[0:1]
            recs.append(Recommendation(
                "action", f"The rehearsal could not run phase {p.get('name')}",
                f"{first[0] if first else 'no detail'}. Nothing after it could be compared: fix the "
                "environment or the scenario and rehearse again."))

    detect = phases.get("detect")
    if _diffs(data, "detect") or detect is not None and (
            detect.get("status") != "ok" or data.get("time_to_detect_s") is None):
        within = objectives.get("max_detect_s")
        limit = f" within {within:.0f}s" if within else ""
        recs.append(Recommendation(
            "action", "The bad version was not detected",
            f"Its failure was not observed{limit}. An alert built on the same signal would not fire "
            "either: check failure.mode in the scenario, and the probes and alerts of the app."))

    for step in data.get("runbook_steps") or []:
        if step_failed(step):
            tail = [ln for ln in str(step.get("output_tail") or "").splitlines() if ln.strip()]
            last = f" Last output: {tail[-1][:200]}" if tail else ""
            recs.append(Recommendation(
                "action", f"Runbook step {step.get('index')} failed",
                f"{step_sentence(step)}. Whoever follows the runbook stops here: fix the command, or "
                f"document what to do when it fails.{last}"))

    schema = _diffs(data, "schema", "migrations")
    if schema:
        recs.append(Recommendation(
            "action", "The schema was not restored",
            f"{len(schema)} schema or migration difference(s): {_objects(schema)}. Run the down "
            "migration in the runbook (before the image rollback), or make the release backward "
            "compatible (expand/contract) so the old version runs on the new schema."))

    recs.extend(_risk_advice(data))

    data_diffs = _diffs(data, "data")
    if data_diffs:
        title = "Tracked data was lost" if _rows_lost(data) else "Tracked data changed"
        recs.append(Recommendation(
            "action", title,
            f"{_objects(data_diffs)}: {data_diffs[0].get('message')}. A down migration that drops a "
            "column or table loses what was written to it: back the data up before the release, or "
            "make the migration reversible without loss."))

    config = _diffs(data, "config")
    if config:
        recs.append(Recommendation(
            "action", "ConfigMaps or Secrets were not restored",
            f"{_objects(config)}: {config[0].get('message')}. `kubectl rollout undo` only restores the pod "
            "template: re-apply the previous ConfigMap/Secret in the runbook, or version them by name "
            "(e.g. kustomize's hash suffix) so the old template points at the old data."))

    registry = _diffs(data, "registry")
    if registry:
        recs.append(Recommendation(
            "action", "The production tag was not restored",
            f"{registry[0].get('message')}. Nodes pulling the production tag get the wrong image: "
            "re-tag the good commit's image in the runbook (pull, tag, push)."))

    app = _diffs(data, "app", "health")
    if app:
        recs.append(Recommendation(
            "action", "The app is not back to the good version",
            f"{_objects(app)}: {app[0].get('message')}."))

    runbook = _diffs(data, "runbook")
    if runbook:
        recs.append(Recommendation("action", "The runbook drifted from what was rehearsed",
                                   str(runbook[0].get("message"))))

    recs.extend(_fault_advice(data))
    recs.extend(_rerun_advice(data))

    ttr, max_ttr = data.get("time_to_recover_s"), objectives.get("max_recover_s")
    if ttr is not None and max_ttr is not None and ttr > max_ttr:
        recs.append(Recommendation(
            "action", "Recovery was slower than the objective",
            f"Recovery took {ttr:.1f}s, the objective is {max_ttr:.0f}s. Shorten the runbook (fewer "
            "manual steps, pre-pulled images, shorter rollout waits) or revisit the objective."))
    elif ttr is not None and max_ttr is None:
        recs.append(Recommendation(
            "info", "No recovery objective",
            f"Recovery took {ttr:.1f}s. Set objectives.max_recover_s in scenario.yaml so a slower "
            "rollback fails the rehearsal."))

    recs.extend(_revision_advice(data))

    other = [d for d in data.get("differences") or [] if d.get("area") not in
             {"schema", "migrations", "data", "registry", "app", "health", "runbook", "objective", "config",
              "detect", "fault", "idempotence"}]
    for d in other:
        recs.append(Recommendation("action", f"Difference in {d.get('area')}", str(d.get("message"))))

    verdict, expect = data.get("verdict"), data.get("expect")
    if verdict != expect and verdict != "ERROR":
        if expect == "NOT_READY":
            recs.append(Recommendation(
                "action", f"Expected NOT_READY, got {verdict}",
                "This scenario is a negative control: its rollback is meant to be caught as broken. "
                "Either the scenario no longer reproduces the problem (update `expect`) or the "
                "rehearsal missed it."))
        else:
            recs.append(Recommendation(
                "action", f"Expected READY, got {verdict}",
                "This rollback is not ready for production: fix what is listed above, then rehearse again."))
    elif verdict == expect == "NOT_READY":
        recs.append(Recommendation(
            "info", "Expected NOT_READY: the rehearsal caught it",
            "This scenario is a negative control; the problems above are the ones it is meant to show."))

    if not any(r.severity == "action" for r in recs) and verdict == "READY":
        recs.insert(0, Recommendation(
            "ok", "Nothing to fix",
            "The rollback brought back the image, the schema and the tracked data, and the app is healthy."))
    if failing_step(data) is None and not recs:
        recs.append(Recommendation("info", "No recommendation", "Nothing in the journal calls for action."))
    return recs
