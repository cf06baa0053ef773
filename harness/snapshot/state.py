"""The whole state snapshot (app + database + registry) and its diff."""

from __future__ import annotations

import json

import psycopg
from pydantic import BaseModel, ConfigDict

from harness.context import RehearsalContext
from harness.helm import HelmReleaseState, diff_release, release_state
from harness.health import workload_states
from harness.journal import Difference
from harness.snapshot.app import WorkloadState, diff_workloads
from harness.snapshot.database import snapshot_database
from harness.snapshot.db_models import DatabaseSnapshot
from harness.snapshot.diff_db import diff_database, diff_migrations, diff_schema
from harness.snapshot.version_table import version_table_differences


class StateSnapshot(BaseModel):
    """A state snapshot as report.json holds it: workloads, database, registry tags."""

    model_config = ConfigDict(frozen=True)
    workloads: list[WorkloadState]
    database: DatabaseSnapshot
    registry: dict[str, str | None] = {}  # "repo:tag" -> digest served
    helm: HelmReleaseState | None = None  # with app.helm: the release as helm records it


def take_snapshot(ctx: RehearsalContext) -> StateSnapshot:
    s = ctx.scenario
    with psycopg.connect(ctx.db.host_dsn, autocommit=True) as conn:
        db = snapshot_database(conn, s.database.tracked_tables, s.database.schemas)
    registry: dict[str, str | None] = {}
    if s.registry is not None and ctx.infra.registry is not None:
        tag = s.registry.production_tag
        # Keyed by the repository as the scenario names it; read under the scenario's own path.
        registry[f"{s.registry.repository}:{tag}"] = ctx.infra.registry.digest(ctx.registry_repository(), tag)
    return StateSnapshot(workloads=workload_states(ctx), database=db, registry=registry, helm=read_release(ctx))


def read_release(ctx: RehearsalContext) -> HelmReleaseState | None:
    """The Helm release (with app.helm), from helm's own JSON: `get metadata`, `history`, `get values --all`."""
    helm = ctx.scenario.app.helm
    if helm is None:
        return None
    meta = ctx.helm("get", "metadata", helm.release, "-o", "json", check=False)
    if meta.returncode != 0:  # no release (never installed, or uninstalled by the runbook)
        return HelmReleaseState(release=helm.release, exists=False)
    history = ctx.helm("history", helm.release, "-o", "json").stdout
    values = ctx.helm("get", "values", helm.release, "--all", "-o", "json").stdout
    jobs = json.loads(ctx.kubectl("get", "jobs", "-n", ctx.namespace, "-o", "json").stdout)
    return release_state(helm.release, meta.stdout, history, values, jobs)


def diff_states(baseline: StateSnapshot, after: StateSnapshot, bad: StateSnapshot | None = None) -> list[Difference]:
    """Every way `after` differs from `baseline`: app, database, registry; `bad` names the bad
    version's digests in the messages, and its schema tells which release a version table lies about."""
    diffs = diff_workloads(baseline.workloads, after.workloads, bad.workloads if bad else None)
    diffs += diff_database(baseline.database, after.database)
    diffs += version_table_differences(baseline.database, bad.database if bad else None, after.database)
    diffs += diff_release(baseline.helm, after.helm)
    for ref, digest in baseline.registry.items():
        now = after.registry.get(ref)
        if now != digest:
            bad_digest = bad.registry.get(ref) if bad else None
            tag = " (the bad version)" if now and now == bad_digest else ""
            diffs.append(Difference(area="registry", object=f"tag {ref}",
                                    message=f"registry serves {ref} as {now}{tag}; baseline {digest}"))
    return diffs


def schema_differences(baseline: StateSnapshot, after: StateSnapshot) -> list[Difference]:
    """The schema and migration-version differences only (areas ``schema`` and
    ``migrations``): what a release changed in the database's structure."""
    before, now = baseline.database, after.database
    return [*diff_schema(before.schema_fingerprint, now.schema_fingerprint),
            *diff_migrations(before.migrations, now.migrations)]
