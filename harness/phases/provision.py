"""Provision: the scenario's own namespace and database on the shared
cluster and Postgres, the database secret, and the registry wiring."""

from __future__ import annotations

import os
import yaml

from harness.context import RehearsalContext
from harness.phases import OnFailure, Phase
from harness.progress import say
from harness.release import DB_SECRET


class ProvisionPhase(Phase):
    name = "provision"
    on_failure = OnFailure.STOP  # no namespace or database: nothing can be deployed

    def execute(self, ctx: RehearsalContext) -> str:
        s = ctx.scenario
        ctx.namespace = f"rr-{s.name}"
        say(f"namespace {ctx.namespace}, database for {s.name}")
        ctx.kubectl("delete", "namespace", ctx.namespace, "--ignore-not-found", "--wait=true", timeout=180)
        ctx.kubectl("create", "namespace", ctx.namespace)
        ctx.kubectl("label", "namespace", ctx.namespace, "rollback-rehearsal/scenario=" + s.name)
        ctx.db = ctx.infra.database.create_database(s.name)
        ctx.cleanup.callback(ctx.infra.database.drop_database, ctx.db)
        # Registered after the database, so it runs before: the app's pods stop
        # (and disconnect) before the database is dropped.
        ctx.cleanup.callback(_delete_namespace, ctx)
        # Secrets from now on, everywhere: the role's password, the scenario's secret variables, the
        # values the runbook gets from the caller's environment (pass_env: how a team hands it a real
        # credential) and the admin DSN's password (a runbook step may print it).
        ctx.redactor = (ctx.redactor.with_secrets([ctx.db.password, *s.secret_values])
                        .with_env(s.pass_env, os.environ).with_dsns([ctx.infra.database.admin_dsn]))
        secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": DB_SECRET, "namespace": ctx.namespace},
                  "stringData": {"DATABASE_URL": ctx.db.cluster_dsn}}
        ctx.kubectl("apply", "-f", "-", input=yaml.safe_dump(secret))
        if s.registry is not None and ctx.infra.registry is None:
            raise RuntimeError("scenario declares `registry` but no rehearsal registry was started")
        return f"namespace {ctx.namespace}, database {ctx.db.name}"


def _delete_namespace(ctx: RehearsalContext) -> None:
    if ctx.keep:
        return
    ctx.kubectl("delete", "namespace", ctx.namespace, "--ignore-not-found", "--wait=true", "--timeout=90s",
                check=False, timeout=120)
