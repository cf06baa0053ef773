"""Health of the tracked workloads and the app's pods, read from the cluster (used by phases and snapshots)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from harness.context import RehearsalContext
from harness.snapshot.app import WorkloadState, snapshot_workload
from harness.wait import Wait
from harness.redact import redact_head


def workload_states(ctx: RehearsalContext) -> list[WorkloadState]:
    apps, core, _ = ctx.api()
    return [snapshot_workload(apps, core, ctx.namespace, w.deployment, w.container, ctx.infra.cluster.image_identity)
            for w in ctx.scenario.app.workloads]


def smoke_ok(ctx: RehearsalContext) -> tuple[bool, str]:
    """The smoke request through the API server's service proxy (no port-forward)."""
    sm = ctx.scenario.app.smoke
    if sm is None:
        return True, "no smoke request"
    path = f"/api/v1/namespaces/{ctx.namespace}/services/{sm.service}:{sm.port}/proxy{sm.path}"
    return answered(ctx, *ctx.get_raw(path))


def answered(ctx: RehearsalContext, status: int, body: str) -> tuple[bool, str]:
    """A smoke request's (ok, what it said): a 2xx answer is ok; the text is redacted and cut."""
    said = body.strip() if 200 <= status < 300 else f"{f'HTTP {status}' if status else 'no answer'}: {body.strip()}"
    return 200 <= status < 300, redact_head(ctx.redactor, said, 200)


def namespace_events(ctx: RehearsalContext) -> list[dict[str, Any]]:
    return list(ctx.get_json(f"/api/v1/namespaces/{ctx.namespace}/events")["items"])


def readiness_failures(events: list[dict[str, Any]], pod_names: set[str]) -> list[dict[str, Any]]:
    """The kubelet's "Readiness probe failed" events of these pods (an event may stand for `count` failures)."""
    return [e for e in events if e.get("reason") == "Unhealthy" and "Readiness probe failed" in e.get("message", "")
            and (e.get("involvedObject") or {}).get("name") in pod_names]


def events_text(ctx: RehearsalContext) -> str:
    proc = ctx.kubectl("get", "events", "-n", ctx.namespace, "--sort-by=.lastTimestamp", check=False)
    return "\n".join(ctx.redactor(proc.stdout).splitlines()[-25:])  # redact, then cut


class OutcomeDecided(Exception):
    """The wait for health ended early: whatever the app does next, the rehearsal's outcome is decided
    (`reason`); `last` is the state seen at that moment."""

    def __init__(self, reason: str, last: str) -> None:
        super().__init__(reason)
        self.reason, self.last = reason, last


# Given the workloads as read and the seconds waited so far: why waiting longer cannot change the outcome,
# or None to go on waiting.
Decided = Callable[[list[WorkloadState], float], str | None]


def never_decided(states: list[WorkloadState], waited_s: float) -> str | None:
    return None


def wait_healthy(ctx: RehearsalContext, timeout_s: float, what: str, decided: Decided = never_decided) -> float:
    """Seconds until the app is healthy; WaitTimeout after `timeout_s`, or OutcomeDecided as soon as
    `decided` says more waiting cannot change the outcome (only while the app is not healthy)."""
    t0 = time.monotonic()

    def check() -> tuple[bool, str]:
        states = workload_states(ctx)
        healthy = all(w.healthy for w in states)
        detail = "; ".join(f"{w.deployment}: {w.ready_replicas}/{w.replicas} ready, pods "
                           + ",".join(f"{p.phase}{'' if p.ready else '(unready)'}" for p in w.pods) for w in states)
        if healthy:
            ok, out = smoke_ok(ctx)
            if ok:
                return True, f"{detail}; smoke: {out}"
            detail = f"{detail}; smoke: {out}"
        reason = decided(states, time.monotonic() - t0)
        if reason is not None:
            raise OutcomeDecided(reason, detail)
        return False, detail

    return Wait(what, timeout_s, 1.0, hint="the pods' events are above; `kubectl describe` the deployment",
                evidence=lambda: events_text(ctx), fatal=(OutcomeDecided,)).until(check)



def app_pods(ctx: RehearsalContext) -> list[dict[str, Any]]:
    """Pods of the app's ReplicaSets (not migration Jobs)."""
    return [p for p in ctx.get_json(f"/api/v1/namespaces/{ctx.namespace}/pods")["items"]
            if any(o.get("kind") == "ReplicaSet" for o in p["metadata"].get("ownerReferences", []))]


def app_pod_names(ctx: RehearsalContext) -> set[str]:
    return {p["metadata"]["name"] for p in app_pods(ctx)}
