"""Shared release mechanics: how a version reaches the cluster (used by the
good and the bad deploy phases, never by the runbook)."""

from __future__ import annotations

import subprocess
import time
from contextlib import nullcontext
from dataclasses import replace

import yaml

from harness import faults, helm, runstate, tools
from harness.context import RehearsalContext
from harness.progress import say
from harness.redact import redact_head, redact_tail
from harness.runbook_commands import StepResult
from harness.scenario.models import MigrationPlace, Scenario, Version
from harness.shell_session import run_commands
from harness.wait import Wait

DB_SECRET = "rehearsal-db"


def docker(*args: str, timeout: float = 300) -> str:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)} failed: {proc.stderr.strip()[-2000:]}")
    return proc.stdout


class JobFailed(Exception):
    """A Job reported failure: waiting longer cannot help."""


def ensure_image(scenario: Scenario, version: Version) -> None:
    """Build the version's image if the scenario says how, then check it exists."""
    if version.build is not None:
        b = version.build
        args = [f"--build-arg={k}={v}" for k, v in b.args.items()]
        say(f"building {version.image}")
        docker("build", "-q", "-t", version.image, "-f", str(scenario.path(b.context) / b.dockerfile),
               *args, str(scenario.path(b.context)), timeout=900)
    probe = subprocess.run(["docker", "image", "inspect", version.image], capture_output=True, timeout=30)
    if probe.returncode != 0:
        raise RuntimeError(f"image {version.image} not found locally. Hint: build it (`make env` builds the demo images)")


def deployed_image(ctx: RehearsalContext, version: Version) -> str:
    """The image reference the manifests use for this version."""
    s = ctx.scenario
    if s.registry is not None and ctx.infra.registry is not None:
        return f"{ctx.registry_prefix}/{s.registry.repository}:{s.registry.production_tag}"
    return version.image


def publish(ctx: RehearsalContext, version: Version) -> None:
    """Make the version's image reachable by the cluster: kind load, or push
    to the rehearsal registry under its SHA tag and promote it to production."""
    ensure_image(ctx.scenario, version)
    s, reg = ctx.scenario, ctx.infra.registry
    if s.registry is not None and reg is not None:
        sha_ref = f"{ctx.registry_prefix}/{s.registry.repository}:{version.tag}"
        prod_ref = f"{ctx.registry_prefix}/{s.registry.repository}:{s.registry.production_tag}"
        say(f"promoting {version.image} as {sha_ref} → {s.registry.production_tag}")
        for ref in (sha_ref, prod_ref):  # before tagging: the reaper untags them after a kill
            ctx.infra.record(runstate.IMAGE_TAG, ref)
        docker("tag", version.image, sha_ref)
        docker("push", sha_ref)
        docker("tag", sha_ref, prod_ref)
        docker("push", prod_ref)
        ctx.journal.event("release", f"pushed {sha_ref} and promoted it to {s.registry.production_tag}")
    # Loaded too: the migration Job runs the version's own image by its name.
    ctx.infra.cluster.load_image(version.image)


def run_pre_release(ctx: RehearsalContext, version: Version, label: str) -> None:
    """`versions.<label>.pre_release`: the deploy procedure's own step before the
    release (e.g. a backup), on the host with the runbook environment, so files it
    writes under $HOME are there for the runbook."""
    if version.pre_release is None:
        return
    say(f"pre-release step of the {label} release")
    timeout = ctx.scenario.runbook.step_timeout_s
    res = host_command(ctx, version.pre_release, timeout)
    if res.timed_out:
        ctx.journal.event("pre_release", f"{label}: timed out after {timeout:.0f}s")
        raise RuntimeError(f"pre_release of the {label} release timed out after {timeout:.0f}s")
    out = redact_tail(ctx.redactor, res.output.strip(), 3000)
    ctx.journal.event("pre_release", redact_head(ctx.redactor, f"{label}: exit {res.exit_code}: {version.pre_release}", 240)
                      + (f" — {out[-300:]}" if out else ""))
    if not res.ok:
        raise RuntimeError(f"pre_release of the {label} release failed (exit {res.exit_code}): {out}")


def host_command(ctx: RehearsalContext, command: str, timeout_s: float) -> StepResult:
    """A scenario's own command list on the host (shell_session.run_commands): the runbook environment, in
    the scenario directory, its own process group killed on timeout or interrupt."""
    return run_commands(command, ctx.runbook_env(), ctx.scenario.directory, timeout_s)


def run_migration(ctx: RehearsalContext, version: Version, label: str) -> None:
    """Run `migrations.up` with the version's image (Job) or on the host."""
    m = ctx.scenario.migrations
    if m is None or m.up is None:  # no migration, or (app.helm) the chart's hook Job migrates
        return
    if m.runs_in == MigrationPlace.HOST:
        res = host_command(ctx, m.up, ctx.scenario.timeouts.migrate_s)
        if res.timed_out:  # the exception it has always been (its message is the phase's detail)
            raise subprocess.TimeoutExpired(["bash", "-o", "pipefail", "-c", m.up], ctx.scenario.timeouts.migrate_s)
        if not res.ok:
            raise RuntimeError("migration ({}) failed on the host: {}".format(
                label, redact_tail(ctx.redactor, res.output, 3000)))
        return
    name = f"migrate-{label}-{int(time.time()) % 100000}"
    job = {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": ctx.namespace, "labels": {"rollback-rehearsal/role": "migration"}},
        "spec": {
            "backoffLimit": 0, "activeDeadlineSeconds": int(ctx.scenario.timeouts.migrate_s),
            "template": {"spec": {"restartPolicy": "Never", "containers": [{
                "name": "migrate", "image": version.image, "imagePullPolicy": "IfNotPresent",
                "command": ["sh", "-c", m.up],
                "env": [{"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": DB_SECRET, "key": "DATABASE_URL"}}}],
            }]}},
        },
    }
    say(f"migrating up with {version.image} (Job {name})")
    ctx.kubectl("apply", "-f", "-", input=yaml.safe_dump(job))

    def done() -> tuple[bool, str]:
        status = ctx.get_json(f"/apis/batch/v1/namespaces/{ctx.namespace}/jobs/{name}").get("status") or {}
        ok, failed = status.get("succeeded") or 0, status.get("failed") or 0
        st = f"{ok}/{failed}"
        if failed:
            raise JobFailed(st)
        return ok == 1, f"succeeded/failed={st}"

    logs = lambda: ctx.redactor(ctx.kubectl("logs", f"job/{name}", "-n", ctx.namespace, "--tail=50", check=False).stdout)  # noqa: E731
    try:
        Wait(f"migration Job {name}", ctx.scenario.timeouts.migrate_s, 1.0,
             hint="check the migrate command and DATABASE_URL", evidence=logs, fatal=(JobFailed,)).until(done)
    except JobFailed:
        raise RuntimeError(f"migration Job {name} ({label}) failed:\n{logs()}") from None


def apply_manifests(ctx: RehearsalContext, image: str) -> None:
    ctx.kubectl("apply", "-n", ctx.namespace, "-f", "-", input=ctx.manifests(image))


def deploy_app(ctx: RehearsalContext, version: Version, label: str) -> None:
    """The version's app: its manifests applied, or its Helm release upgraded (`app.helm`)."""
    image = deployed_image(ctx, version)
    if ctx.scenario.app.helm is None:
        apply_manifests(ctx, image)
    else:
        helm_upgrade(ctx, version, label, image)


def helm_upgrade(ctx: RehearsalContext, version: Version, label: str, image: str) -> None:
    """`helm upgrade --install` of the version (its hooks, e.g. a pre-upgrade migration Job, run inside), with
    the bad release's faults (`during: deploy_bad`) around it; what helm answered and the release history go to
    the journal whether helm succeeded or not, and the bad release's to the context (phase detect reads it)."""
    release = ctx.scenario.app.helm.release  # type: ignore[union-attr]
    major = 4 if tools.helm_version().startswith("v4") else 3
    argv = helm.upgrade_argv(ctx.scenario, version, ctx.variables(image), major)
    before = _history(ctx, release)
    say(f"helm upgrade --install of the {label} release ({version.image})")
    with faults.during_bad_release(ctx) if label == "bad" else nullcontext():
        proc = ctx.helm(*argv, timeout=helm.upgrade_timeout_s(ctx.scenario), check=False)
    ended = time.monotonic()
    outcome = helm.UpgradeOutcome(
        release=release, label=label, exit_code=proc.returncode, history=_history(ctx, release),
        error=redact_tail(ctx.redactor, proc.stderr.strip(), 2000) if proc.returncode != 0 else "",
        before=max((r.revision for r in before), default=None))
    said = f"; helm said: {outcome.error_line}" if outcome.failed else ""
    ctx.journal.event("helm", redact_head(ctx.redactor, f"{label}: helm upgrade exit {proc.returncode}{said}; "
                                                        f"history: {outcome.history_text()}", 900))
    if label == "bad":
        ctx.bad_upgrade, ctx.bad_upgrade_ended_at = outcome, ended
        ctx.journal.differences.extend(faults.missed(ctx.journal.faults, "deploy_bad"))
    if outcome.failed:
        raise RuntimeError(f"helm upgrade of the {label} release failed ({proc.returncode}): "
                           f"{outcome.error or outcome.error_line}")


def _history(ctx: RehearsalContext, release: str) -> list[helm.HelmRevision]:
    """`helm history` of the release (empty when there is none yet)."""
    proc = ctx.helm("history", release, "-o", "json", check=False)
    return helm.parse_history(proc.stdout) if proc.returncode == 0 else []
