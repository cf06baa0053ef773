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

from harness.journal import Difference
from harness.scenario.models import Helm, Scenario, Version

# The annotation helm reads to run a resource as a hook (helm.sh/helm/v3 pkg/release/hook.go).
HOOK_ANNOTATION = "helm.sh/hook"
# Statuses of a release that refuses a further upgrade or rollback until someone repairs it.
STUCK_STATUSES = frozenset({"pending-install", "pending-upgrade", "pending-rollback", "uninstalling"})


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


def upgrade_argv(scenario: Scenario, version: Version, variables: Mapping[str, str]) -> list[str]:
    """`helm upgrade --install` of one version, after `helm` and its connection flags (the caller's)."""
    helm = scenario.app.helm
    assert helm is not None, "only for scenarios with app.helm"
    argv = ["upgrade", "--install", helm.release, str(scenario.path(helm.chart))]
    for f in values_files(scenario, helm, version):
        argv += ["--values", str(f)]
    for pair in set_pairs(version.helm.set if version.helm is not None else {}, variables):
        argv += ["--set", pair]
    return argv + upgrade_flags(helm)


def upgrade_flags(helm: Helm) -> list[str]:
    """The upgrade flags the scenario sets (helm's defaults otherwise)."""
    flags = {"--wait": helm.wait, "--atomic": helm.atomic}
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
        why = (" and refuses another upgrade or rollback until it is repaired" if after.status in STUCK_STATUSES
               else "")
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
    """The release history in one line, for the journal: `1 superseded demo-0.1.0, 2 deployed ...`."""
    return ", ".join(f"{r.revision} {r.status} {r.chart}" for r in state.history) or "no history"
