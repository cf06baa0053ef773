"""The app as a Helm release (`app.helm`): the argv of `helm upgrade --install` for a version, and the
release's state read from helm's own JSON (`helm get metadata`, `helm history`, `helm get values --all`).

Pure functions of the scenario and of helm's output; the calls to helm are the context's (`ctx.helm`),
so these are unit-tested with JSON shaped as helm v3 prints it (helm.sh/helm/v3 pkg/action/get_metadata.go,
cmd/helm/history.go). Nothing here goes through a shell: every value is one argv element.
"""

from __future__ import annotations

import hashlib
import json
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from harness.journal import Difference, Risk
from harness.scenario.models import Helm, Scenario, Version

# The annotation helm reads to run a resource as a hook (helm.sh/helm/v3 pkg/release/hook.go).
HOOK_ANNOTATION = "helm.sh/hook"
# Statuses of a release that refuses a further upgrade until someone repairs it: `helm upgrade` answers
# "another operation (install/upgrade/rollback) is in progress" (pkg/action/upgrade.go, errPending).
STUCK_STATUSES = frozenset({"pending-install", "pending-upgrade", "pending-rollback", "uninstalling"})
# The flag that rolls a failed upgrade back, by helm's major version (v4 renamed --atomic).
ROLLBACK_ON_FAILURE_FLAG = {3: "--atomic", 4: "--rollback-on-failure"}
# How helm names the revision its own rollback creates (pkg/action/rollback.go, prepareRollback).
ROLLBACK_DESCRIPTION = "Rollback to "


class HelmRevision(BaseModel):
    """One line of `helm history -o json`."""

    model_config = ConfigDict(frozen=True)
    revision: int
    status: str
    chart: str = ""
    app_version: str = ""
    description: str = ""


class HelmReleaseState(BaseModel):
    """The release as helm records it, with a hash of its computed values (never the values: they may hold
    secrets), and the hook Jobs that are still in the namespace."""

    model_config = ConfigDict(frozen=True)
    release: str
    exists: bool = True
    revision: int | None = None
    status: str = ""
    chart: str = ""
    chart_version: str = ""
    app_version: str = ""
    values_hash: str = ""
    history: list[HelmRevision] = []
    hook_jobs: list[str] = []


# ── the command line ────────────────────────────────────────────────────

def escape_set_value(value: str) -> str:
    """A value as helm's --set parser reads it literally: `,` would start a new key and `\\` escapes."""
    return value.replace("\\", "\\\\").replace(",", "\\,")


def set_pairs(values: Mapping[str, str], variables: Mapping[str, str]) -> list[str]:
    """`--set` arguments: `${VAR}` in a value becomes the variable, escaped so it never adds a key; the
    scenario's own text is passed as written (unknown `${NAME}` stay as they are)."""
    escaped = {k: escape_set_value(v) for k, v in variables.items()}
    return [f"{key}={string.Template(value).safe_substitute(escaped)}" for key, value in values.items()]


def values_files(scenario: Scenario, helm: Helm, version: Version) -> list[Path]:
    """The chart's values files for a version: `app.helm.values`, then the version's own."""
    own = version.helm.values if version.helm is not None else []
    return [scenario.path(p) for p in [*helm.values, *own]]


def upgrade_argv(scenario: Scenario, version: Version, variables: Mapping[str, str], major: int = 3) -> list[str]:
    """`helm upgrade --install` of one version, after `helm` and its connection flags (the caller's); `major`:
    helm's major version, which spells the rollback-on-failure flag."""
    helm = scenario.app.helm
    assert helm is not None, "only for scenarios with app.helm"
    argv = ["upgrade", "--install", helm.release, str(scenario.path(helm.chart))]
    for f in values_files(scenario, helm, version):
        argv += ["--values", str(f)]
    for pair in set_pairs(version.helm.set if version.helm is not None else {}, variables):
        argv += ["--set", pair]
    return argv + upgrade_flags(helm, major)


def upgrade_flags(helm: Helm, major: int = 3) -> list[str]:
    """The upgrade flags the scenario sets (helm's defaults otherwise)."""
    flags = {"--wait": helm.wait, ROLLBACK_ON_FAILURE_FLAG.get(major, "--atomic"): helm.rolls_back_on_failure}
    out = [flag for flag, on in flags.items() if on]
    if helm.timeout_s is not None:
        out.append(f"--timeout={helm.timeout_s:g}s")
    if helm.history_max is not None:
        out.append(f"--history-max={helm.history_max}")
    return out


def upgrade_timeout_s(scenario: Scenario) -> float:
    """How long the harness lets `helm upgrade` run: helm's own timeout (hooks and --wait) plus slack."""
    helm = scenario.app.helm
    own = helm.timeout_s if helm is not None and helm.timeout_s is not None else 300.0
    return max(own, scenario.timeouts.migrate_s) + 60.0


# ── reading helm's JSON ─────────────────────────────────────────────────

def values_hash(values: Any) -> str:
    """A hash of `helm get values --all -o json` (the computed values), independent of key order."""
    return "sha256:" + hashlib.sha256(json.dumps(values or {}, sort_keys=True).encode()).hexdigest()[:16]


def parse_history(text: str) -> list[HelmRevision]:
    rows = json.loads(text or "[]") or []
    return [HelmRevision(revision=int(r["revision"]), status=str(r.get("status", "")), chart=str(r.get("chart", "")),
                         app_version=str(r.get("app_version", "")), description=str(r.get("description", "")))
            for r in rows]


def hook_job_names(jobs: Mapping[str, Any]) -> list[str]:
    """Names of the Jobs of a `kubectl get jobs -o json` list that helm ran as hooks."""
    return sorted(j["metadata"]["name"] for j in jobs.get("items") or []
                  if HOOK_ANNOTATION in (j["metadata"].get("annotations") or {}))


def release_state(release: str, metadata_json: str, history_json: str, values_json: str,
                  jobs: Mapping[str, Any]) -> HelmReleaseState:
    """The release's state from helm's three answers and the namespace's Jobs. `helm get metadata -o json`
    (not `helm status`, whose JSON leaves the chart out) names the revision, its status and its chart."""
    meta = json.loads(metadata_json)
    return HelmReleaseState(
        release=release, revision=meta.get("revision"), status=meta.get("status", ""), chart=meta.get("chart", ""),
        chart_version=meta.get("version", ""), app_version=meta.get("appVersion", ""),
        values_hash=values_hash(json.loads(values_json or "{}")), history=parse_history(history_json),
        hook_jobs=hook_job_names(jobs))


# ── one `helm upgrade` and what helm did after it ───────────────────────

class UpgradeOutcome(BaseModel):
    """One `helm upgrade --install` of a version as the harness saw it: helm's exit code, the end of its error
    output (redacted), the last revision before it and the history right after it (nothing else ran between)."""

    model_config = ConfigDict(frozen=True)
    release: str
    label: str  # good | bad
    exit_code: int
    error: str = ""
    before: int | None = None  # the newest revision before the upgrade; None: no release yet
    history: list[HelmRevision] = []

    @property
    def failed(self) -> bool:
        return self.exit_code != 0

    @property
    def revision(self) -> HelmRevision | None:
        """The revision this upgrade created; None when helm failed before recording one (a chart that does not
        render, a release that refuses the upgrade, a process killed before it wrote the record)."""
        return next((r for r in self.history if r.revision == (self.before or 0) + 1), None)

    @property
    def own_rollback(self) -> HelmRevision | None:
        """The revision helm's own rollback (--atomic) created after this upgrade failed: any revision newer than
        the upgrade's, in the history read as soon as helm returned. Its status says whether that rollback worked."""
        mine = self.revision
        later = sorted((r for r in self.history if mine is not None and r.revision > mine.revision),
                       key=lambda r: r.revision)
        return later[-1] if self.failed and later else None

    @property
    def error_line(self) -> str:
        """helm's own sentence of why (its `Error: ...` line), else the last line it printed."""
        lines = [ln.strip() for ln in self.error.splitlines() if ln.strip()]
        killed = f"helm was killed (signal {-self.exit_code})" if self.exit_code < 0 else ""
        return next((ln for ln in reversed(lines) if ln.startswith("Error:")), lines[-1] if lines else killed)

    def history_text(self) -> str:
        return revisions_text(self.history)


def revisions_text(history: list[HelmRevision]) -> str:
    """`1 superseded demo-0.1.0 (Install complete), 2 failed ...`: each revision with helm's description."""
    return ", ".join(f"{r.revision} {r.status} {r.chart}" + (f" ({r.description})" if r.description else "")
                     for r in history) or "no history"


def own_rollback_text(outcome: UpgradeOutcome) -> str:
    """What helm did by itself after the failed upgrade, in its own words, for the journal."""
    mine, back = outcome.revision, outcome.own_rollback
    assert mine is not None and back is not None, "only after helm's own rollback"
    return (f"revision {mine.revision} {mine.status}, then helm's own rollback: revision {back.revision} "
            f"{back.status} ({back.description or 'no description'})")


def schema_after_own_rollback(outcome: UpgradeOutcome | None, schema: list[Difference],
                              hook_migrates: bool) -> Difference | None:
    """The sentence a DBA would lead with when helm rolled the bad release back by itself (--atomic) and the schema
    is not the good release's: helm put the old manifests back, never the old schema. None otherwise."""
    back = outcome.own_rollback if outcome is not None else None
    if back is None or not schema:
        return None
    who = "the chart's upgrade hook Job" if hook_migrates else "the bad release's migration"
    more = f" (and {len(schema) - 1} more schema difference(s))" if len(schema) > 1 else ""
    did = "put the good release's manifests back" if back.status == "deployed" else \
        "tried to put the good release's manifests back"
    return Difference(area="schema", object="schema after helm's automatic rollback", message=(
        f"the schema is still migrated after helm's automatic rollback: helm {did} (revision {back.revision}, "
        f"{back.status}: {back.description or 'no description'}), but helm never runs a down migration and {who} "
        f"had already migrated the database: {schema[0].message}{more}"))


# ── a release that refuses the next operation ───────────────────────────

def last_deployed(state: HelmReleaseState) -> int | None:
    """The newest revision helm still marks deployed (the one `helm rollback` should name to repair a pending one)."""
    return max((r.revision for r in state.history if r.status == "deployed"), default=None)


def repair_hint(state: HelmReleaseState) -> str:
    """How teams repair a release stuck in pending-*: roll back to the last deployed revision (`helm rollback` does
    not refuse a pending release, `helm upgrade` does), or remove the pending revision's record with care."""
    record = f"sh.helm.release.v1.{state.release}.v{state.revision}"
    deployed = last_deployed(state)
    first = (f"`helm rollback {state.release} {deployed}` (the last deployed revision; rollback does not refuse a "
             f"pending release)" if deployed is not None else f"`helm uninstall {state.release}` (no revision was "
                                                                       "ever deployed)")
    return (f"{first}, or, with care (no helm process may still work on it), delete the pending revision's record, "
            f"the Secret {record}")


def pending_risk(state: HelmReleaseState | None) -> Risk | None:
    """The risk of a release stuck in pending-* when the runbook starts: the next `helm upgrade` (a pipeline
    re-run, a roll-forward) is refused until someone repairs it."""
    if state is None or not state.exists or state.status not in STUCK_STATUSES:
        return None
    return Risk(kind="helm_release_pending", object=f"helm release {state.release}", message=(
        f"helm release {state.release} is {state.status} at revision {state.revision} when the runbook starts: "
        "`helm upgrade` refuses it (\"another operation (install/upgrade/rollback) is in progress\") until it is "
        f"repaired: {repair_hint(state)}"), evidence=f"history: {revisions_text(state.history)}")


# ── comparing ───────────────────────────────────────────────────────────

def diff_release(baseline: HelmReleaseState | None, after: HelmReleaseState | None) -> list[Difference]:
    """After the rollback the release must be `deployed` (not pending-*, failed) with the good release's values."""
    if baseline is None:
        return []
    obj = f"helm release {baseline.release}"
    if after is None or not after.exists:
        return [Difference(area="helm", object=obj, message=f"{obj} no longer exists (baseline: revision "
                                                            f"{baseline.revision}, {baseline.status})")]
    diffs: list[Difference] = []
    if after.status != "deployed":
        why = (f" and refuses the next upgrade until it is repaired: {repair_hint(after)}"
               if after.status in STUCK_STATUSES else "")
        diffs.append(Difference(area="helm", object=obj, message=(
            f"{obj} is {after.status or 'without a status'} at revision {after.revision}, not deployed{why}")))
    if after.values_hash != baseline.values_hash:
        diffs.append(Difference(area="helm", object=obj, message=(
            f"{obj} revision {after.revision} has other computed values than the good release (revision "
            f"{baseline.revision}): `helm get values --all` differs")))
    if (after.chart, after.chart_version) != (baseline.chart, baseline.chart_version):
        diffs.append(Difference(area="helm", object=obj, message=(
            f"{obj} runs chart {after.chart}-{after.chart_version} (baseline {baseline.chart}-"
            f"{baseline.chart_version})")))
    return diffs


def history_line(state: HelmReleaseState) -> str:
    """The release history in one line, for the journal: `1 superseded demo-0.1.0 (Install complete), ...`."""
    return revisions_text(state.history)
