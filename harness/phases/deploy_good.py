"""Deploy the known-good version: its migrations, the seed data, the app."""

from __future__ import annotations

import psycopg

from harness import release
from harness.context import RehearsalContext
from harness.health import wait_healthy
from harness.phases import OnFailure, Phase


class DeployGoodPhase(Phase):
    name = "deploy_good"
    on_failure = OnFailure.STOP  # without the good version running there is no baseline

    def execute(self, ctx: RehearsalContext) -> str:
        s = ctx.scenario
        good = s.versions.good
        release.publish(ctx, good)
        release.run_pre_release(ctx, good, "good")
        release.run_migration(ctx, good, "good")
        if s.app.helm is None:
            _seed(ctx)
            release.deploy_app(ctx, good, "good")
        else:  # the chart's own hook may be the migration: it runs inside `helm upgrade`, before the seed
            release.deploy_app(ctx, good, "good")
            _seed(ctx)
        waited = wait_healthy(ctx, s.timeouts.deploy_s, "the good version to roll out")
        return f"good version healthy after {waited:.1f}s"


def _seed(ctx: RehearsalContext) -> None:
    s = ctx.scenario
    if s.database.seed is not None:
        assert ctx.db is not None
        with psycopg.connect(ctx.db.host_dsn, autocommit=True) as conn:
            conn.execute(s.path(s.database.seed).read_text())  # type: ignore[arg-type]
