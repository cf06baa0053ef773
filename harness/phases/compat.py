"""Compat: can the good version run on the bad release's schema? (expand/contract)

Before the rollback, with the bad release's migrations applied, the harness
starts a copy of each tracked Deployment on the good image (one replica, its
own labels so no Service routes to it, same env, Secrets and probes) and
watches it:

- Ready (and, with a smoke request, the request answered through the pod):
  compatible; the old code tolerates the new schema.
- its readiness probe fails `FAILURES` times, it restarts, or it is not
  ready within `checks.old_version_timeout_s`: a readiness risk
  `old_version_on_new_schema`, with the probe messages and the last log
  lines as evidence. A rollback that puts the old code back before the
  schema (or whose migrate down fails) leaves the app down.

Risks never change the verdict (only the state after this runbook does);
they are reported next to it and checked against `expect_risks`. The copy is
deleted (foreground: its pods are gone) before the runbook starts, and is on
the cleanup stack in case the harness stops first. Skipped when the schema
did not change, or when the scenario sets `checks.old_version_on_new_schema:
false`.
"""

from __future__ import annotations

import copy
import json
import time
from typing import Any

from harness.context import RehearsalContext
from harness.health import answered, namespace_events, readiness_failures
from harness.journal import Risk
from harness.phases import OnFailure, Phase
from harness.progress import say
from harness.scenario.models import Workload
from harness.snapshot.state import schema_differences, take_snapshot
from harness.wait import Wait, WaitTimeout

LABEL = "rollback-rehearsal/compat-check"
FAILURES = 3  # readiness probe failures that count as "does not run" (a slow start fails once or twice)
# Probe answers of a process that is not listening yet: start-up on a loaded machine, not a verdict
# (an app that never listens is caught by the timeout).
STARTING = ("connection refused", "connect: connection reset")
SMOKE_TRIES = 3


def schema_changes(ctx: RehearsalContext) -> list[str]:
    """What the bad release changed in the schema (empty: nothing to check)."""
    assert ctx.baseline is not None, "the baseline phase stops the run when it fails"
    bad = ctx.after_bad_deploy or take_snapshot(ctx)  # detect may have failed before its snapshot
    return [d.message for d in schema_differences(ctx.baseline, bad)]


def copy_name(deployment: str) -> str:
    return f"{deployment}-compat-check"[:63]


def compat_deployment(live: dict[str, Any], workload: Workload, image: str) -> dict[str, Any]:
    """A one-replica copy of the live Deployment running `image` in the tracked container.

    The app's labels are replaced, so neither its Service nor its Deployment
    selects the copy's pods; everything else of the pod template (env,
    Secrets, probes) is kept: the point is to run the old code as it runs."""
    name = copy_name(workload.deployment)
    labels = {LABEL: workload.deployment}
    template = copy.deepcopy(live["spec"]["template"])
    template["metadata"] = {"labels": labels}
    for c in template["spec"].get("containers", []):
        if c["name"] == workload.container:
            c["image"] = image
            c["imagePullPolicy"] = "IfNotPresent"  # kind: the good image was loaded, never pulled
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": live["metadata"]["namespace"], "labels": labels},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": template},
    }


def copy_outcome(pods: list[dict[str, Any]], events: list[dict[str, Any]], container: str) -> tuple[bool | None, str]:
    """(True: runs, False: does not run, None: not decided yet) and what was seen."""
    names = {p["metadata"]["name"] for p in pods}
    for pod in pods:
        for st in (pod.get("status") or {}).get("containerStatuses") or []:
            if st.get("name") != container:
                continue
            if st.get("ready"):
                return True, f"pod {pod['metadata']['name']} is ready"
            waiting = ((st.get("state") or {}).get("waiting") or {}).get("reason", "")
            if st.get("restartCount", 0) >= 1 or waiting in ("CrashLoopBackOff", "ErrImagePull", "ImagePullBackOff"):
                return False, f"pod {pod['metadata']['name']}: restarts={st.get('restartCount', 0)} {waiting}".strip()
    failed = [e for e in readiness_failures(events, names) if not any(s in e["message"] for s in STARTING)]
    count = sum(int(e.get("count") or 1) for e in failed)
    if count >= FAILURES:
        return False, f"readiness probe failed {count} times: {failed[-1]['message'][:300]}"
    return None, f"{len(pods)} pod(s), not ready yet ({count} readiness failure(s))"


def _pods(ctx: RehearsalContext, workload: Workload) -> list[dict[str, Any]]:
    return list(ctx.get_json(f"/api/v1/namespaces/{ctx.namespace}/pods",
                             {"labelSelector": f"{LABEL}={workload.deployment}"})["items"])


def pod_port(service: dict[str, Any], pod: dict[str, Any], port: int) -> int:
    """The pod's port number behind `port` of the Service (a named targetPort resolved through the pod).

    The API server's pod proxy needs a number: `pods/NAME:http/proxy` is not resolved."""
    entry = next((p for p in service["spec"].get("ports", []) if p.get("port") == port), None)
    target: Any = (entry or {}).get("targetPort", port)
    if isinstance(target, int) or str(target).isdigit():
        return int(target)
    for c in pod["spec"].get("containers", []):
        for cp in c.get("ports") or []:
            if cp.get("name") == target:
                return int(cp["containerPort"])
    raise RuntimeError(f"service port {port} targets the named port {target!r}, which pod "
                       f"{pod['metadata']['name']} does not declare")


def _smoke_through_pod(ctx: RehearsalContext, pod: dict[str, Any]) -> tuple[bool, str]:
    """The scenario's smoke request sent to the copy's pod (its Service does not route there)."""
    sm = ctx.scenario.app.smoke
    if sm is None:
        return True, "no smoke request"
    svc = json.loads(ctx.kubectl("get", "service", sm.service, "-n", ctx.namespace, "-o", "json").stdout)
    port = pod_port(svc, pod, sm.port)
    path = f"/api/v1/namespaces/{ctx.namespace}/pods/{pod['metadata']['name']}:{port}/proxy{sm.path}"
    return answered(ctx, *ctx.get_raw(path))


def _evidence(ctx: RehearsalContext, workload: Workload) -> str:
    name = copy_name(workload.deployment)
    logs = ctx.kubectl("logs", f"deployment/{name}", "-n", ctx.namespace, "-c", workload.container,
                       "--tail=15", check=False).stdout
    return ctx.redactor(logs.strip())[-3000:]


def check_workload(ctx: RehearsalContext, workload: Workload, image: str) -> tuple[bool, str, str]:
    """(runs, what was seen, evidence) for one tracked workload."""
    live = json.loads(ctx.kubectl("get", "deployment", workload.deployment, "-n", ctx.namespace, "-o", "json").stdout)
    name = copy_name(workload.deployment)
    ctx.kubectl("apply", "-f", "-", input=json.dumps(compat_deployment(live, workload, image)))
    try:
        last: dict[str, Any] = {"runs": None, "seen": ""}

        def decided() -> tuple[bool, str]:
            last["runs"], last["seen"] = copy_outcome(_pods(ctx, workload), namespace_events(ctx), workload.container)
            return last["runs"] is not None, last["seen"]

        timeout = ctx.scenario.checks.old_version_timeout_s
        try:
            Wait(f"the good version's copy {name} to run or fail on the new schema", timeout, 1.0).until(decided)
            runs, seen = bool(last["runs"]), str(last["seen"])
        except WaitTimeout as exc:
            runs, seen = False, f"not ready within {timeout:.0f}s: {exc.last}"
        if runs:
            pod = next(p for p in _pods(ctx, workload) if any(
                s.get("ready") for s in (p.get("status") or {}).get("containerStatuses") or []))
            for attempt in range(SMOKE_TRIES):  # the API server's proxy may hiccup: a risk must be the app's
                ok, out = _smoke_through_pod(ctx, pod)
                if ok:
                    break
                time.sleep(1 + attempt)
            if not ok:
                runs, seen = False, f"ready, but the smoke request failed: {out}"
        evidence = "" if runs else _evidence(ctx, workload)
        if evidence:  # the probe says "503"; the app's own last words usually say why
            seen += f"; its last log line: {evidence.splitlines()[-1][:240]}"
        return runs, seen, evidence
    finally:
        ctx.kubectl("delete", "deployment", name, "-n", ctx.namespace, "--cascade=foreground",
                    "--wait=true", "--timeout=60s", "--ignore-not-found", check=False, timeout=90)


class CompatPhase(Phase):
    name = "compat"
    on_failure = OnFailure.EVIDENCE  # a risk, or a check that could not run, never stops the rehearsal

    def applies(self, ctx: RehearsalContext) -> bool:
        return ctx.scenario.checks.old_version_on_new_schema and ctx.db is not None

    def execute(self, ctx: RehearsalContext) -> str:
        changes = schema_changes(ctx)
        if not changes:
            ctx.journal.compatibility.append("the bad release did not change the schema: nothing to check")
            return "schema unchanged by the bad release: nothing to check"
        for w in ctx.scenario.app.workloads:
            _check_and_record(ctx, w, changes)
        risky = [r.object for r in ctx.journal.risks if r.kind == "old_version_on_new_schema"]
        return (f"RISK: the good version does not run on the new schema ({', '.join(risky)})" if risky
                else "the good version runs on the bad release's schema")


def _check_and_record(ctx: RehearsalContext, w: Workload, changes: list[str]) -> None:
    """Run the good version's copy of one workload; record what it did and, if it did not run, the risk."""
    j = ctx.journal
    image = ctx.scenario.versions.good.image  # loaded into kind by deploy_good (under a registry, production is bad now)
    ctx.cleanup.callback(ctx.kubectl, "delete", "deployment", copy_name(w.deployment), "-n", ctx.namespace,
                         "--ignore-not-found", "--wait=false", check=False)
    say(f"starting the good version ({image}) against the bad release's schema as {copy_name(w.deployment)}")
    runs, seen, evidence = check_workload(ctx, w, image)
    line = (f"deployment {w.deployment}: the good version {'runs' if runs else 'does NOT run'} on the bad "
            f"release's schema ({seen}); schema changes: {'; '.join(changes[:3])}")
    j.compatibility.append(ctx.redactor(line))
    if not runs:
        j.risks.append(Risk(
            kind="old_version_on_new_schema", object=f"deployment {w.deployment}",
            message=ctx.redactor(
                f"the good version ({image}) does not run on the bad release's schema: {seen}. "
                "Expand/contract is broken: a rollback that puts the old code back before the schema, "
                "or whose migrate down fails, leaves the app down"),
            evidence=evidence))
