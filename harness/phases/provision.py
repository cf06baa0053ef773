"""Provision: the scenario's own namespace and database on the shared
cluster and Postgres, the database secret, and the registry wiring."""

from __future__ import annotations

import os
import yaml

from harness import runstate
from harness.context import RehearsalContext
from harness.phases import OnFailure, Phase
from harness.progress import say
from harness.providers.database import DatabaseHandle
from harness.release import DB_SECRET


RUN_LABEL = "rollback-rehearsal/run"


class ProvisionPhase(Phase):
    name = "provision"
    on_failure = OnFailure.STOP  # no namespace or database: nothing can be deployed

    def execute(self, ctx: RehearsalContext) -> str:
        s = ctx.scenario
        # Names unique per run: two runs on one cluster (--reuse-cluster, --kubeconfig) or one server
        # (--database-dsn) never share, so neither drops the other's namespace or database.
        ctx.namespace = runstate.namespace_name(s.name, ctx.infra.run_id)
        say(f"namespace {ctx.namespace}, database for {s.name}")
        _record(ctx, runstate.NAMESPACE, ctx.namespace, str(ctx.kubeconfig))  # before it exists: see runstate
        ctx.kubectl("create", "namespace", ctx.namespace)
        # The run id (the owner's unique suffix; the run state maps it to its owner): always a valid label value.
        ctx.kubectl("label", "namespace", ctx.namespace, "rollback-rehearsal/scenario=" + s.name,
                    f"{RUN_LABEL}={ctx.infra.run_id}")
        db_server = "" if ctx.infra.database.container_id else runstate.without_password(ctx.infra.database.admin_dsn)
        _record(ctx, runstate.DATABASE, runstate.database_name(s.name, ctx.infra.run_id), db_server)
        ctx.db = ctx.infra.database.create_database(runstate.resource_name(s.name, ctx.infra.run_id))
        # One step for both: the namespace's deletion is asked for here; the wait for it to go and then
        # the database's drop (once the app's pods have let go of it) run beside the next scenarios.
        ctx.cleanup.callback(_remove_namespace_and_database, ctx)
        # Secrets from now on, everywhere: the role's password, the scenario's secret variables, the
        # values the runbook gets from the caller's environment (pass_env: how a team hands it a real
        # credential) and the admin DSN's password (a runbook step may print it).
        ctx.redactor = (ctx.redactor.with_secrets([ctx.db.password, *s.secret_values])
                        .with_env(s.secret_pass_env, os.environ).with_dsns([ctx.infra.database.admin_dsn]))
        secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": DB_SECRET, "namespace": ctx.namespace},
                  "stringData": {"DATABASE_URL": ctx.db.cluster_dsn}}
        ctx.kubectl("apply", "-f", "-", input=yaml.safe_dump(secret))
        if s.registry is not None and ctx.infra.registry is None:
            raise RuntimeError("scenario declares `registry` but no rehearsal registry was started")
        return f"namespace {ctx.namespace}, database {ctx.db.name}"


def _record(ctx: RehearsalContext, kind: str, name: str, where: str) -> None:
    if ctx.infra.run is not None:
        ctx.infra.run.add(kind, name, where)


def _forget(ctx: RehearsalContext, kind: str, name: str) -> None:
    if ctx.infra.run is not None:
        ctx.infra.run.forget(kind, name)


def _remove_namespace_and_database(ctx: RehearsalContext) -> None:
    """Ask for the namespace's deletion (seconds), hand the rest on (harness/deferred.py). A namespace the
    API server refuses to delete is this scenario's cleanup failure, as before; what fails later is said
    on the console when the session drains, and stays recorded for the reaper."""
    assert ctx.db is not None
    db, namespace = ctx.db, ctx.namespace
    if ctx.keep:
        return
    proc = ctx.kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=false",
                       check=False, timeout=60)
    if proc.returncode != 0:
        _drop_database(ctx, db)  # the database still goes; the namespace stays recorded for the reaper
        raise RuntimeError(f"kubectl delete namespace {namespace} failed: {ctx.redactor(proc.stderr.strip())}")

    def finish() -> None:
        try:
            gone = ctx.kubectl("wait", "--for=delete", f"namespace/{namespace}", "--timeout=90s",
                               check=False, timeout=120)
            if gone.returncode == 0 or "not found" in gone.stderr.lower():
                _forget(ctx, runstate.NAMESPACE, namespace)
        finally:  # the database goes even when the namespace is slow: its pods were told to stop
            _drop_database(ctx, db)

    ctx.infra.deferred.submit(f"namespace {namespace} and database {db.name}", finish)


def _drop_database(ctx: RehearsalContext, db: DatabaseHandle) -> None:
    ctx.infra.database.drop_database(db)
    _forget(ctx, runstate.DATABASE, db.name)
