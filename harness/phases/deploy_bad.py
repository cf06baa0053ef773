"""Deploy the bad version the way a release would: its migration, then the app."""

from __future__ import annotations

import time

from harness import release
from harness.context import RehearsalContext
from harness.health import app_pod_names
from harness.phases import OnFailure, Phase


class DeployBadPhase(Phase):
    name = "deploy_bad"
    on_failure = OnFailure.EVIDENCE  # a release that fails half-way is still a release to roll back

    def execute(self, ctx: RehearsalContext) -> str:
        s = ctx.scenario
        bad = s.versions.bad
        release.publish(ctx, bad)
        release.run_pre_release(ctx, bad, "bad")
        try:
            release.run_migration(ctx, bad, "bad")
        except Exception:
            # A migration that fails half-way is the release's failure: the app is
            # never rolled out, but detection (e.g. `smoke`) still has a clock.
            _start_detection_clock(ctx)
            ctx.journal.event("release", "the bad release's migration failed: its manifests were not applied")
            raise
        _start_detection_clock(ctx)
        release.deploy_app(ctx, bad, "bad")
        if s.registry is not None:
            # Promotion changes the tag's content, not the manifest: restart to pick it up.
            for w in s.app.workloads:
                ctx.kubectl("rollout", "restart", f"deployment/{w.deployment}", "-n", ctx.namespace)
        return f"released {bad.image}" + (f" as {s.registry.production_tag}" if s.registry else "")


def _start_detection_clock(ctx: RehearsalContext) -> None:
    """Note the app pods that exist before the bad release (phase detect ignores them) and the time."""
    ctx.pods_before_bad = app_pod_names(ctx)
    ctx.bad_deployed_at = time.monotonic()
