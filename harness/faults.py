"""Faults applied for real while the rollback runs (scenario `faults`).

Each fault kind is one small class with `apply()` and `revert()`. A
`FaultInjector` arms the scenario's faults from the runbook phase's
"before step N" hook: at that point, after `delay_s`, it applies the fault
(in the calling thread when there is no delay, else from a timer thread), and
a second timer removes it after `duration_s`. A delayed fault whose moment
comes after the runbook phase ended is skipped: it must hit the rollback,
not verify's snapshot. Every fault is bounded in time
and always removed: the injector's `close()` is registered on the scenario's
cleanup stack before anything is applied, so errors and Ctrl-C revert too. A
fault this environment cannot apply (e.g. netem missing from the kernel) is
recorded as `unsupported` with the exact error and never stops the rehearsal.

Everything that happens goes to the journal (`faults`, `events`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import psycopg
from psycopg import sql

from harness import runstate
from harness.journal import Difference, FaultRecord, Journal, fault_moment, now_iso
from harness.progress import current_prefix, say, scenario_prefix
from harness.providers.database import with_database
from harness.providers.factory import Infrastructure
from harness.scenario.models import INSTANT_FAULTS, Fault, FaultKind

if TYPE_CHECKING:  # the context holds this module's injector: it imports faults, not the other way round
    from harness.context import RehearsalContext

DOCKER_TIMEOUT_S = 30
NETEM_UNKNOWN = "Specified qdisc kind is unknown"


class Unsupported(Exception):
    """This environment cannot apply the fault; the message says why (the exact error when there is one)."""


class Skipped(Exception):
    """The moment for the fault has passed (the runbook finished first); the message says why."""


class Action(Protocol):
    def apply(self) -> str: ...
    def revert(self) -> str: ...


Run = Callable[..., "subprocess.CompletedProcess[str]"]


def _run(cmd: list[str], timeout: float = DOCKER_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def _checked(run: Run, cmd: list[str]) -> str:
    proc = run(cmd)
    if proc.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` failed ({proc.returncode}): {(proc.stderr or proc.stdout).strip()}")
    return proc.stdout.strip()


# ── the fault kinds ──────────────────────────────────────────────────────────
class TerminateDbConnections:
    """`pg_terminate_backend` on every connection to the scenario's database, swept again every
    `interval_s` until reverted (so it also hits connections opened after it started).

    `hold_lock_on` pins the victim: the fault first takes ACCESS EXCLUSIVE locks on those tables
    (from its own connection, in the scenario's database), so a migration that touches them waits,
    connected, until a sweep terminates it. Without a pin a migration of a few milliseconds can
    finish between two sweeps and the fault hits nothing (seen in CI under load); `hits` counts
    what it terminated so the rehearsal can say so instead of reporting READY."""

    QUERY = ("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
             "WHERE datname = %s AND pid <> pg_backend_pid() AND pid <> ALL(%s)")
    # Measured against the demo's `migrate` (docker run, one short-lived connection): a sweep every 0.2 s
    # missed 9 of 12 runs, every 0.05 s 4 of 12, every 0.01 s none of 32 on an idle machine, and still
    # missed once under CI load: hence `hold_lock_on`.
    INTERVAL_S = 0.01
    LOCK_TIMEOUT = "10s"  # a lock the fault cannot get within this is an error, not a hang

    def __init__(self, admin_dsn: str, dbname: str, duration_s: float, interval_s: float = INTERVAL_S,
                 connect: Callable[..., Any] | None = None, hold_lock_on: tuple[str, ...] = (),
                 db_dsn: str = "") -> None:
        self.admin_dsn, self.dbname, self.duration_s, self.interval_s = admin_dsn, dbname, duration_s, interval_s
        self.hold_lock_on, self.db_dsn = tuple(hold_lock_on), db_dsn
        self._connect = connect
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: Any = None
        self._lock_conn: Any = None
        self._spared: list[int] = []  # the fault's own lock holder
        self.sweeps = self.terminated = 0
        self.errors: list[str] = []
        self._t0 = 0.0

    @property
    def hits(self) -> int:
        return self.terminated

    def _sweep(self) -> None:
        rows = self._conn.execute(self.QUERY, (self.dbname, self._spared)).fetchall()
        self.sweeps += 1
        self.terminated += sum(1 for (ok,) in rows if ok)

    def _loop(self) -> None:
        deadline = self._t0 + self.duration_s
        while not self._stop.wait(self.interval_s) and time.monotonic() < deadline:
            try:
                self._sweep()
            except Exception as exc:  # noqa: BLE001 (keep sweeping: Postgres may be busy, the fault goes on)
                if len(self.errors) < 3:
                    self.errors.append(f"{type(exc).__name__}: {exc}".strip())

    def _hold_locks(self) -> str:
        """Lock the pinned tables in a transaction left open until revert; '' without a pin."""
        if not self.hold_lock_on:
            return ""
        self._lock_conn = self._connect(self.db_dsn, autocommit=False, connect_timeout=10)  # type: ignore[misc]
        self._lock_conn.execute(f"SET LOCAL lock_timeout = '{self.LOCK_TIMEOUT}'")
        self._spared = [self._lock_conn.info.backend_pid]
        for table in self.hold_lock_on:
            self._lock_conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(
                sql.Identifier(*table.split(".", 1))))
        return f"; holding ACCESS EXCLUSIVE locks on {', '.join(self.hold_lock_on)}"

    def apply(self) -> str:
        if self._connect is None:
            self._connect = psycopg.connect
        self._conn = self._connect(self.admin_dsn, autocommit=True, connect_timeout=10)
        pinned = self._hold_locks()
        self._t0 = time.monotonic()
        self._sweep()
        first = self.terminated
        if self.duration_s > 0:
            self._thread = threading.Thread(target=self._loop, name=f"fault-terminate-{self.dbname}", daemon=True)
            self._thread.start()
        return (f"first sweep terminated {first} connection(s) to {self.dbname}; "
                f"sweeping every {self.interval_s:g}s for {self.duration_s:g}s{pinned}")

    def revert(self) -> str:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
        try:
            if self._lock_conn is not None:  # stop sweeping first, then let waiting sessions go on
                self._lock_conn.close()       # closing without commit rolls back: the locks go
        finally:
            if self._conn is not None:
                self._conn.close()
        errors = f"; sweep errors: {' | '.join(self.errors)}" if self.errors else ""
        missed = " (it hit nothing)" if self.terminated == 0 else ""
        return (f"{self.sweeps} sweep(s) over {time.monotonic() - self._t0:.1f}s terminated "
                f"{self.terminated} connection(s) in total{missed}{errors}")


# On cgroup v1 the freezer cannot reliably freeze a cgroup while processes keep appearing in it (a kind
# node's kubelet forks probes, shims and runc all the time): runc gives up after its own 1,000 tries with
# "unable to freeze", thaws the cgroup back and docker reports "OCI runtime pause failed". Trying again a
# moment later works (seen in CI on a loaded machine). Other refusals (not running, already paused) are final.
PAUSE_RETRY_ON = ("OCI runtime pause", "unable to freeze")
PAUSE_BACKOFF_S = (0.5, 1.0, 2.0)  # then give up: 4 tries in about 4 s
# A `docker exec` that starts while its container is being frozen can wedge it: runc's init process stays
# frozen, and `docker unpause` and `docker rm -f` hang until the cgroup is thawed by hand (seen here on cgroup
# v1, with execs and pauses of a kind node overlapping). Docker refuses an exec into a container that is
# already paused, so it is enough that no fault's exec overlaps a fault's pause or unpause: they take turns.
CONTAINER_STATE = threading.Lock()


class PauseContainer:
    """`docker pause` a container (every process frozen: it accepts TCP connections, never answers), then
    `docker unpause`. A pause the freezer could not complete is tried again (PAUSE_RETRY_ON)."""

    def __init__(self, container: str, what: str, run: Run = _run, state: runstate.RunState | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.container, self.what, self.run, self.state, self.sleep = container, what, run, state, sleep

    def apply(self) -> str:
        if self.state is not None:  # before the pause: a harness killed now leaves it to the reaper to unpause
            self.state.add(runstate.PAUSED, self.container)
        cmd = ["docker", "pause", self.container]
        tries: list[str] = []
        for backoff in (*PAUSE_BACKOFF_S, None):
            with CONTAINER_STATE:
                proc = self.run(cmd)
            if proc.returncode == 0:
                again = f" (at try {len(tries) + 1}; before: {' | '.join(tries)})" if tries else ""
                return f"paused {self.what}{again}"
            err = (proc.stderr or proc.stdout).strip()
            if backoff is None or not any(s in err for s in PAUSE_RETRY_ON):
                break
            tries.append(err.splitlines()[0] if err else f"exit {proc.returncode}")
            self.sleep(backoff)
        earlier = f" after {len(tries) + 1} tries" if tries else ""
        raise RuntimeError(f"`{' '.join(cmd)}` failed ({proc.returncode}){earlier}: {err}")

    def revert(self) -> str:
        with CONTAINER_STATE:
            proc = self.run(["docker", "unpause", self.container])
        if proc.returncode != 0 and "is not paused" not in proc.stderr:
            raise RuntimeError(f"`docker unpause {self.container}` failed ({proc.returncode}): {proc.stderr.strip()}")
        if self.state is not None:
            self.state.forget(runstate.PAUSED, self.container)
        return f"unpaused {self.what}"


class DeleteAppPod:
    """Delete the newest running pod of a Deployment (`kubectl delete pod --wait=false`). Instantaneous.

    During a rollout there may be no running pod for a moment (the old one terminating, the new one
    being created): it waits up to `wait_s` for one."""

    def __init__(self, kubectl: Callable[..., subprocess.CompletedProcess[str]], namespace: str,
                 deployment: str, wait_s: float = 15, poll_s: float = 0.5,
                 too_late: Callable[[], bool] = lambda: False) -> None:
        self.kubectl, self.namespace, self.deployment = kubectl, namespace, deployment
        self.wait_s, self.poll_s, self.too_late = wait_s, poll_s, too_late

    def choose(self) -> dict[str, Any]:
        dep = json.loads(self.kubectl("-n", self.namespace, "get", "deployment", self.deployment, "-o", "json").stdout)
        labels = dep["spec"]["selector"].get("matchLabels") or {}
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        deadline = time.monotonic() + self.wait_s
        while True:
            pods = json.loads(self.kubectl("-n", self.namespace, "get", "pods", "-l", selector, "-o", "json").stdout)
            try:
                return pick_running_pod(pods.get("items") or [], self.deployment)
            except RuntimeError as exc:
                if time.monotonic() >= deadline:
                    raise RuntimeError(f"{exc} after waiting {self.wait_s:g}s") from None
                if self.too_late():
                    raise Skipped(f"the runbook finished while waiting for a running pod ({exc})") from None
            time.sleep(self.poll_s)

    def apply(self) -> str:
        pod = self.choose()
        name = pod["metadata"]["name"]
        self.kubectl("-n", self.namespace, "delete", "pod", name, "--wait=false")
        images = ",".join(c.get("image", "?") for c in pod["spec"].get("containers", []))
        ready = all(c.get("ready") for c in pod.get("status", {}).get("containerStatuses") or [])
        return f"deleted pod {name} ({images}, {'ready' if ready else 'not ready'}) of deployment {self.deployment}"

    def revert(self) -> str:
        return ""  # nothing to undo: the Deployment replaces the pod


def pick_running_pod(items: list[dict[str, Any]], deployment: str) -> dict[str, Any]:
    """The newest pod in phase Running that is not already being deleted."""
    running = [p for p in items if (p.get("status") or {}).get("phase") == "Running"
               and not p["metadata"].get("deletionTimestamp")]
    if not running:
        phases = ", ".join(f"{p['metadata']['name']}={(p.get('status') or {}).get('phase')}" for p in items) or "none"
        raise RuntimeError(f"no running pod of deployment {deployment} to delete (pods: {phases})")
    return max(running, key=lambda p: (p["metadata"].get("creationTimestamp") or "", p["metadata"]["name"]))


class NetworkLatency:
    """`tc qdisc add dev eth0 root netem delay Xms` inside each node (docker exec); revert `tc qdisc del`."""

    def __init__(self, nodes: list[str], latency_ms: int, run: Run = _run, device: str = "eth0",
                 state: runstate.RunState | None = None) -> None:
        self.nodes, self.latency_ms, self.run, self.device, self.state = nodes, latency_ms, run, device, state
        self.applied: list[str] = []

    def apply(self) -> str:
        for node in self.nodes:
            if self.state is not None:  # before the qdisc: a harness killed now leaves it to the reaper
                self.state.add(runstate.NETEM, node, self.device)
            cmd = ["docker", "exec", node, "tc", "qdisc", "add", "dev", self.device, "root", "netem",
                   "delay", f"{self.latency_ms}ms"]
            with CONTAINER_STATE:
                proc = self.run(cmd)
            if proc.returncode != 0:
                if self.state is not None:  # no qdisc was added: nothing is left for a reaper to remove
                    self.state.forget(runstate.NETEM, node)
                err = (proc.stderr or proc.stdout).strip()
                if NETEM_UNKNOWN in err:
                    raise Unsupported(f"`{' '.join(cmd[3:])}` in {node}: {err} "
                                      "(the kernel has no sch_netem: CONFIG_NET_SCH_NETEM is not set)")
                raise RuntimeError(f"`{' '.join(cmd)}` failed ({proc.returncode}): {err}")
            self.applied.append(node)
        return f"added {self.latency_ms}ms of latency on {self.device} of {', '.join(self.nodes)}"

    def revert(self) -> str:
        for node in list(self.applied):
            with CONTAINER_STATE:
                _checked(self.run, ["docker", "exec", node, "tc", "qdisc", "del", "dev", self.device, "root"])
            self.applied.remove(node)
            if self.state is not None:
                self.state.forget(runstate.NETEM, node)
        return "removed the netem qdisc"


def helm_of_namespace(argv: list[str], environ: dict[str, str], namespace: str) -> bool:
    """Whether a process is a helm working on `namespace`: the harness passes `--namespace=NS`, a runbook's helm
    has HELM_NAMESPACE=NS in its environment (both unique per rehearsal: parallel rehearsals are never hit)."""
    if not argv or Path(argv[0]).name != "helm":
        return False
    if environ.get("HELM_NAMESPACE") == namespace or f"--namespace={namespace}" in argv:
        return True
    return any(a in ("-n", "--namespace") and b == namespace for a, b in zip(argv, argv[1:]))


def _read_nul_separated(path: Path) -> list[str]:
    try:
        return [w.decode(errors="replace") for w in path.read_bytes().split(b"\0") if w]
    except OSError:  # gone, or another user's process: not ours
        return []


def _helm_words(argv: list[str]) -> str:
    """`helm upgrade demo /chart`: the process's name and first words, its flags (kubeconfig paths) left out."""
    return " ".join([Path(argv[0]).name, *[a for a in argv[1:] if not a.startswith("-")][:3]])


class KillHelm:
    """SIGKILL this rehearsal's helm processes, as a CI runner that dies mid-release (OOM, an eviction, a job
    cancelled past its grace period) kills them: helm never gets to mark its release failed, so the release stays
    pending-upgrade (pending-rollback, pending-install) and refuses the next `helm upgrade`. Instantaneous.

    helm may not have started yet when the fault comes due: it waits up to `wait_s` for one. `hits` counts the
    processes killed; 0 means the release was never interrupted, and the rehearsal says so."""

    def __init__(self, namespace: str, wait_s: float = 5, poll_s: float = 0.1, proc: Path = Path("/proc"),
                 kill: Callable[[int, int], None] = os.kill, too_late: Callable[[], bool] = lambda: False) -> None:
        self.namespace, self.wait_s, self.poll_s, self.proc = namespace, wait_s, poll_s, proc
        self.kill, self.too_late = kill, too_late
        self.hits = 0

    def find(self) -> list[tuple[int, list[str]]]:
        """(pid, argv) of every helm process of the namespace."""
        out = []
        for d in self.proc.iterdir():
            if not d.name.isdigit():
                continue
            argv = _read_nul_separated(d / "cmdline")
            env = dict(e.split("=", 1) for e in _read_nul_separated(d / "environ") if "=" in e)
            if helm_of_namespace(argv, env, self.namespace):
                out.append((int(d.name), argv))
        return out

    def apply(self) -> str:
        deadline = time.monotonic() + self.wait_s
        found = self.find()
        while not found and time.monotonic() < deadline and not self.too_late():
            time.sleep(self.poll_s)
            found = self.find()
        for pid, _ in found:
            try:
                self.kill(pid, signal.SIGKILL)
                self.hits += 1
            except ProcessLookupError:  # it ended between the scan and the kill
                continue
        if not self.hits:
            return f"no helm process of namespace {self.namespace} ran within {self.wait_s:g}s: nothing killed"
        return "killed (SIGKILL) " + "; ".join(f"pid {pid}: {_helm_words(argv)}" for pid, argv in found)

    def revert(self) -> str:
        return ""  # nothing to undo: what helm left behind is the point


def _terminate_db_connections(ctx: RehearsalContext, fault: Fault) -> Action:
    assert ctx.db is not None
    return TerminateDbConnections(ctx.infra.database.admin_dsn, ctx.db.name, fault.duration_s,
                                  hold_lock_on=tuple(fault.hold_lock_on),
                                  db_dsn=with_database(ctx.infra.database.admin_dsn, ctx.db.name))


def _pause_postgres(ctx: RehearsalContext, fault: Fault) -> Action:
    container = ctx.infra.database.container_id
    if container is None:
        raise Unsupported("the database is not a container of this session (--database-dsn): it cannot be paused")
    return PauseContainer(container, f"the Postgres container {container[:12]}", state=ctx.infra.run)


def _delete_app_pod(ctx: RehearsalContext, fault: Fault) -> Action:
    return DeleteAppPod(ctx.kubectl, ctx.namespace, ctx.scenario.app.workloads[0].deployment,
                        too_late=lambda: runbook_over(ctx.journal))


def _node_containers(ctx: RehearsalContext) -> list[str]:
    nodes = ctx.infra.cluster.node_containers()
    if not nodes:
        raise Unsupported("the cluster has no node containers (an existing cluster via --kubeconfig)")
    return nodes


def _pause_control_plane(ctx: RehearsalContext, fault: Fault) -> Action:
    nodes = _node_containers(ctx)
    planes = [n for n in nodes if n.endswith("-control-plane")] or nodes[:1]
    return PauseContainer(planes[0], f"the control-plane node {planes[0]}", state=ctx.infra.run)


def _network_latency(ctx: RehearsalContext, fault: Fault) -> Action:
    nodes = _node_containers(ctx)
    assert fault.latency_ms is not None
    return NetworkLatency(nodes, fault.latency_ms, state=ctx.infra.run)


def _kill_helm(ctx: RehearsalContext, fault: Fault) -> Action:
    return KillHelm(ctx.namespace, too_late=lambda: phase_over(ctx.journal, fault.during))


ACTIONS: dict[FaultKind, Callable[[RehearsalContext, Fault], Action]] = {
    FaultKind.TERMINATE_DB_CONNECTIONS: _terminate_db_connections,
    FaultKind.PAUSE_POSTGRES: _pause_postgres,
    FaultKind.DELETE_APP_POD: _delete_app_pod,
    FaultKind.PAUSE_CONTROL_PLANE: _pause_control_plane,
    FaultKind.NETWORK_LATENCY: _network_latency,
    FaultKind.KILL_HELM: _kill_helm,
}


def action_for(ctx: RehearsalContext, fault: Fault) -> Action:
    """The action of one fault in this rehearsal's environment; Unsupported when it cannot exist here."""
    return ACTIONS[fault.kind](ctx, fault)


# ── scheduling ───────────────────────────────────────────────────────────────
class _State:
    def __init__(self, index: int, fault: Fault) -> None:
        self.index, self.fault = index, fault
        self.lock = threading.Lock()  # held while applying or reverting: cleanup waits for an apply in flight
        self.armed = self.started = self.ended = self.reverted = False
        self.action: Action | None = None
        self.timer: Any = None         # the delay before applying
        self.revert_timer: Any = None  # the duration
        self.applied_mono: float | None = None
        self.record: FaultRecord | None = None


class FaultInjector:
    """Arms, applies and always removes one scenario's faults; records them in the journal."""

    def __init__(self, faults: list[Fault], make_action: Callable[[Fault], Action], journal: Journal,
                 redact: Callable[[str], str] = str, timer: Callable[..., Any] = threading.Timer,
                 clock: Callable[[], float] = time.monotonic,
                 too_late: Callable[[], bool] = lambda: False, indexes: list[int] | None = None) -> None:
        """`indexes`: each fault's position in the scenario's `faults` (default: their order here); an injector
        holds the faults of one phase, and the journal keeps the records of the others."""
        self.states = [_State(i, f) for i, f in zip(indexes or range(len(faults)), faults)]
        self.make_action, self.journal, self.redact, self.too_late = make_action, journal, redact, too_late
        self._timer, self._clock = timer, clock
        self._publish_lock = threading.Lock()
        self.closed = False

    def arm_all(self) -> None:
        """Arm every fault now (a phase without steps: deploy_bad); each applies after its delay."""
        for st in self.states:
            if not st.armed and not self.closed:
                self._arm(st)

    # the runbook phase's hook
    def before_step(self, n: int) -> None:
        for st in self.states:
            if not st.armed and not self.closed and (st.fault.at_step or 1) == n:
                self._arm(st)

    def _arm(self, st: _State) -> None:
        st.armed = True
        delay = st.fault.delay_s
        if delay <= 0:
            self._apply(st)  # in this thread: the fault is in place before the step starts
        else:
            st.timer = self._start_timer(delay, self._apply, st)

    def _start_timer(self, delay: float, fn: Callable[[_State], None], st: _State) -> Any:
        prefix = current_prefix()  # the timer's lines name the scenario too (`-j N`)

        def run(state: _State) -> None:
            with scenario_prefix(prefix):
                fn(state)

        t = self._timer(delay, run, args=(st,))
        t.daemon = True
        t.start()
        return t

    def _apply(self, st: _State) -> None:
        f = st.fault
        with st.lock:
            if st.ended:
                return
            if f.delay_s > 0 and self.too_late():  # a fault "during the runbook" must not hit verify
                ended, instead = TOO_LATE[f.during]
                self._record(st, status="skipped", detail=f"{ended} before its delay ({f.delay_s:g}s) elapsed: it "
                                                          f"would have hit {instead}")
                return
            st.started = True  # from here on, the end reverts (also if apply is interrupted halfway)
            at = None
            try:
                st.action = self.make_action(f)
                detail = st.action.apply()
                status, at = "applied", now_iso()  # when it is in place
            except Unsupported as exc:
                detail, status = str(exc), "unsupported"
            except Skipped as exc:
                detail, status = str(exc), "skipped"
            except Exception as exc:  # noqa: BLE001 (a fault that cannot be applied is recorded, never fatal)
                detail, status = f"{type(exc).__name__}: {exc}", "failed"
            st.applied_mono = self._clock()
            # An instant fault is never reverted: what it hit is known now (a lasting one's again at its removal).
            self._record(st, applied_at=at, status=status, detail=detail, hits=getattr(st.action, "hits", None))
            lasting = status == "applied" and f.kind not in INSTANT_FAULTS
            style = {"applied": "magenta", "unsupported": "yellow", "skipped": "yellow"}.get(status, "red")
            room = 200 if status == "applied" else 600  # an error's cause often comes last (after IDs)
            say(f"  fault {f.kind.value}: {status} — {self.redact(detail)[:room]}", style=style)
            self.journal.event("fault", self.redact(f"{f.kind.value} {status}: {detail}"))
            if lasting and not st.ended:
                st.revert_timer = self._start_timer(f.duration_s, self._revert, st)
            elif not lasting and st.action is not None and status == "applied":
                st.reverted = True  # instantaneous: nothing stays to remove

    def _revert(self, st: _State, early: bool = False) -> None:
        with st.lock:
            if st.reverted or not st.started or st.action is None:
                return
            st.reverted = True
            try:
                detail = st.action.revert()
            except Exception as first:  # noqa: BLE001 (try once more: a fault must never stay behind)
                time.sleep(1)
                try:
                    detail = st.action.revert() + f" (second attempt; first: {first})"
                except Exception as exc:  # noqa: BLE001
                    detail = f"REVERT FAILED: {type(exc).__name__}: {exc}"
                    say(f"  fault {st.fault.kind.value}: {detail}", style="bold red")
            if st.record is None or st.record.status != "applied":
                return  # unsupported/failed: nothing was in place; the revert was only a safety net
            lasted = self._clock() - (st.applied_mono or self._clock())
            if early:
                detail += f" (removed early, after {lasted:.1f}s of {st.fault.duration_s:g}s)"
            self._record(st, reverted_at=now_iso(), detail=f"{st.record.detail}; {detail}" if detail else None,
                         hits=getattr(st.action, "hits", None))
            say(f"  fault {st.fault.kind.value}: removed after {lasted:.1f}s", style="magenta")
            self.journal.event("fault", self.redact(f"{st.fault.kind.value} removed after {lasted:.1f}s: {detail}"))

    def _end(self, st: _State, why: str) -> None:
        if st.timer is not None:
            st.timer.cancel()
        if st.revert_timer is not None:
            st.revert_timer.cancel()
        with st.lock:
            st.ended = True  # a delay timer that fires now does nothing
        if st.started:
            self._revert(st, early=True)
            if st.record is None:  # interrupted (Ctrl-C) while applying: reverted as a precaution
                self._record(st, status="failed", detail="interrupted while being applied; reverted")
        elif st.record is None:
            if not st.armed:
                why = f"runbook step {st.fault.at_step or 1} never started (the runbook stopped before it)"
            self._record(st, status="skipped", detail=why)

    def close(self, why: str = "the rehearsal ended before its delay elapsed") -> None:
        """Cancel what has not happened yet and remove everything still in place, last applied first
        (a sweep blocked on a paused Postgres ends once Postgres is unpaused). Idempotent."""
        self.closed = True
        for st in reversed(self.states):
            self._end(st, why)

    def _record(self, st: _State, **changes: Any) -> None:
        changes = {k: (self.redact(v) if k == "detail" and isinstance(v, str) else v)
                   for k, v in changes.items() if v is not None}
        if st.record is None:
            st.record = FaultRecord(kind=st.fault.kind.value, index=st.index, at_step=st.fault.at_step,
                                    during=st.fault.during, **changes)
        else:
            st.record = st.record.model_copy(update=changes)
        with self._publish_lock:
            mine = {s.index for s in self.states}
            others = [r for r in self.journal.faults if r.index not in mine]
            self.journal.faults = sorted([*others, *(s.record for s in self.states if s.record is not None)],
                                         key=lambda r: r.index)

    @property
    def active(self) -> list[str]:
        return [s.fault.kind.value for s in self.states if s.started and not s.reverted]


# ── the after-check ──────────────────────────────────────────────────────────
def leftovers(infra: Infrastructure, run: Run = _run) -> list[str]:
    """What a fault could have left behind in this session's infrastructure: a paused container
    (Postgres, a kind node), a netem qdisc on a node. Empty when everything is as before."""
    problems: list[str] = []
    postgres = getattr(infra.database, "container_id", None)  # None with --database-dsn: not ours to pause
    containers = [postgres] if postgres is not None else []
    nodes = infra.cluster.node_containers()
    for c in containers + nodes:
        proc = run(["docker", "inspect", "--format", "{{.State.Paused}}", c])
        if proc.stdout.strip() == "true":
            problems.append(f"container {c[:12]} is still paused (fix: docker unpause {c[:12]})")
    for node in nodes:
        proc = run(["docker", "exec", node, "tc", "qdisc", "show", "dev", "eth0"])
        if "netem" in proc.stdout:
            problems.append(f"node {node} still has a netem qdisc (fix: docker exec {node} tc qdisc del dev eth0 root)")
    return problems


# ── one injector per phase with faults (ctx.fault_injector while the runbook runs) ─────────────
# A delayed fault that comes due after its phase is skipped: (what ended, what it would have hit instead).
TOO_LATE = {"runbook": ("the runbook finished", "verify, not the rollback"),
            "deploy_bad": ("the bad release's `helm upgrade` ended", "the next phase, not the release")}
# What a fault that hit nothing failed to rehearse, by the phase it was meant for.
MISSED = {
    "runbook": ("the rollback was not rehearsed under it. Hint: pin the migration with hold_lock_on (a table it "
                "touches) or move the fault to the step that opens connections"),
    "deploy_bad": "the bad release was not interrupted. Hint: lower delay_s so it comes while `helm upgrade` runs",
}


def phase_over(journal: Journal, phase: str) -> bool:
    """The phase has ended (the pipeline records a phase when it ends)."""
    return any(p.name == phase for p in journal.phases)


def runbook_over(journal: Journal) -> bool:
    return phase_over(journal, "runbook")


def missed(records: list[FaultRecord], phase: str) -> list[Difference]:
    """A `fault` difference for each fault of `phase` that was applied and hit nothing: READY under a fault that
    never hit would be a false claim."""
    return [Difference(area="fault", object=r.kind, message=f"fault {r.kind} ({fault_moment(r)}) hit nothing: "
                                                            f"{MISSED[phase]}")
            for r in records if r.during == phase and r.status == "applied" and r.hits == 0]


def _phase_faults(ctx: RehearsalContext, phase: str) -> tuple[list[int], list[Fault]]:
    pairs = [(i, f) for i, f in enumerate(ctx.scenario.faults) if f.during == phase]
    return [i for i, _ in pairs], [f for _, f in pairs]


@contextmanager
def during_bad_release(ctx: RehearsalContext) -> Iterator[None]:
    """The faults `during: deploy_bad` around the bad release's `helm upgrade`: armed when it starts, each applied
    after its delay, the ones not yet due skipped when it ends (a kill must hit helm, not the next phase)."""
    indexes, faults = _phase_faults(ctx, "deploy_bad")
    if not faults:
        yield
        return
    ended = threading.Event()
    injector = FaultInjector(faults, lambda f: action_for(ctx, f), ctx.journal, ctx.redactor,
                             too_late=ended.is_set, indexes=indexes)
    ctx.cleanup.callback(injector.close)  # before anything is applied: errors and Ctrl-C end them too
    injector.arm_all()
    try:
        yield
    finally:
        ended.set()
        injector.close(f"{TOO_LATE['deploy_bad'][0]} before its delay elapsed")


def runbook_hook(ctx: RehearsalContext) -> Callable[[int], None]:
    """The runbook phase's "before step N" callback: arms the scenario's faults (a no-op without any)."""
    indexes, faults = _phase_faults(ctx, "runbook")
    if not faults:
        return lambda n: None
    injector = FaultInjector(faults, lambda f: action_for(ctx, f), ctx.journal, ctx.redactor,
                             too_late=lambda: runbook_over(ctx.journal), indexes=indexes)

    def close() -> None:
        try:
            injector.close()
        finally:
            ctx.fault_injector = None

    ctx.cleanup.callback(close)  # before anything is applied: errors and Ctrl-C remove the faults too
    ctx.fault_injector = injector
    return injector.before_step


def settle(ctx: RehearsalContext, why: str) -> list[str]:
    """End every fault of this rehearsal now (the rerun must run without any); returns those removed early."""
    injector = ctx.fault_injector
    if injector is None:
        return []
    still = injector.active
    injector.close(why)
    return still
