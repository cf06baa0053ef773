"""The reaper: remove what runs that are provably dead left behind, and only that.

`rehearse cleanup` (and `make clean-clusters`) runs it explicitly; the start of
every session runs it quietly. A run's leftovers are the resources its run
state (harness.runstate) records plus every container carrying its owner
label (one killed between `docker create` and the record). A run is reaped
only while the reaper holds its lock, so a live run is never touched and two
reapers never reap the same run. Kept runs (--keep-cluster) are left to an
explicit `rehearse cleanup`. `--all` also removes live runs' resources and any
labelled container or `rehearsal*` cluster, after listing them.

Order matters: namespaces and databases first (they need the kubeconfig, in a
temp dir, and the server), then containers and the cluster (unpaused first: a
run killed during a fault leaves Postgres or a node frozen), temp dirs last.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

from harness import runstate, tools
from harness.progress import console
from harness.runstate import RunRecord, Resource


class Docker(Protocol):
    """Everything the reaper does to the machine: faked in the unit tests."""

    def labelled(self, owner: str | None) -> list[str]: ...          # container ids; None: any owner
    def cluster_nodes(self, name: str) -> list[str]: ...
    def clusters(self) -> list[str]: ...
    def unpause_and_remove(self, containers: list[str]) -> bool: ...
    def unpause(self, container: str) -> bool: ...
    def remove_netem(self, node: str, device: str) -> bool: ...
    def delete_cluster(self, name: str) -> bool: ...
    def delete_namespace(self, name: str, kubeconfig: str) -> bool: ...
    def delete_namespace_in(self, name: str, cluster: str) -> bool: ...     # a kind cluster, by its name
    def drop_database(self, name: str, admin_dsn: str) -> bool: ...
    def remove_dir(self, path: str) -> bool: ...
    def untag(self, ref: str) -> bool: ...
    def untag_registry(self, address: str, owner: str) -> bool: ...
    def unconfigure_node(self, node: str, address: str) -> bool: ...


@dataclass
class Context:
    """What a removal may need besides the resource."""

    docker: Docker
    record: RunRecord
    admin_dsn: str | None = None              # --database-dsn: how to drop databases on a server of the user's
    cluster_free: Callable[[str], bool] = lambda name: True  # no live run holds that cluster name
    left: list[str] = field(default_factory=list)          # what could not be removed, and why


def _owns_cluster(ctx: Context) -> bool:
    """The dead run created its cluster and no live run holds that name: the cluster (and every
    namespace in it) goes. A cluster a live run waits on or reuses stays, so its namespaces are removed
    one by one."""
    return any(r.kind == runstate.CLUSTER and ctx.cluster_free(r.name) for r in ctx.record.resources)


def _remove_cluster(r: Resource, ctx: Context) -> bool:
    if not ctx.cluster_free(r.name):  # a live run waits on or reuses that name: it is not a leftover
        ctx.left.append(f"cluster {r.name}: in use by a live run")
        return False
    # A node paused by a fault: kind delete of a frozen container may hang, so unpause it first.
    ctx.docker.unpause_and_remove(ctx.docker.cluster_nodes(r.name))
    return ctx.docker.delete_cluster(r.name)


def _remove_namespace(r: Resource, ctx: Context) -> bool:
    if _owns_cluster(ctx):
        return True  # goes with the cluster
    if Path(r.where).is_file():
        return ctx.docker.delete_namespace(r.name, r.where)
    # The kubeconfig went with the run's temp dir: reach a kind cluster by its name instead.
    cluster = next((x.name for x in ctx.record.resources if x.kind in (runstate.CLUSTER, runstate.USES_CLUSTER)), None)
    if cluster is not None and cluster not in ctx.docker.clusters():
        return True  # the cluster is gone, and the namespace with it
    if cluster is not None:
        return ctx.docker.delete_namespace_in(r.name, cluster)
    ctx.left.append(f"namespace {r.name}: kubeconfig {r.where} is gone")
    return False


def _remove_database(r: Resource, ctx: Context) -> bool:
    if not r.where:
        return True  # in the run's own Postgres container: goes with it
    if ctx.admin_dsn is None or not _same_server(ctx.admin_dsn, r.where):
        ctx.left.append(f"database {r.name} on {r.where}: pass --database-dsn with that server's admin DSN to drop it")
        return False
    return ctx.docker.drop_database(r.name, ctx.admin_dsn)


def _same_server(dsn: str, recorded: str) -> bool:
    a, b = urlsplit(dsn), urlsplit(recorded)
    return (a.hostname, a.port, a.username) == (b.hostname, b.port, b.username)


REMOVERS: dict[str, Callable[[Resource, Context], bool]] = {
    # Faults first: a frozen Postgres or control plane would make everything after it hang.
    runstate.PAUSED: lambda r, ctx: ctx.docker.unpause(r.name),
    runstate.NETEM: lambda r, ctx: ctx.docker.remove_netem(r.name, r.where or "eth0"),
    # Before the containers: while the dead run's registry still holds its port, tags naming it are its own.
    runstate.REGISTRY_TAGS: lambda r, ctx: ctx.docker.untag_registry(r.name, ctx.record.owner),
    runstate.NODE_REGISTRY: lambda r, ctx: ctx.docker.unconfigure_node(r.name, r.where),
    runstate.NAMESPACE: _remove_namespace,
    runstate.DATABASE: _remove_database,
    runstate.CONTAINER: lambda r, ctx: ctx.docker.unpause_and_remove([r.name]),
    runstate.CLUSTER: _remove_cluster,
    runstate.USES_CLUSTER: lambda r, ctx: True,  # someone else's cluster: nothing to remove
    runstate.TEMP_DIR: lambda r, ctx: ctx.docker.remove_dir(r.name),
    runstate.IMAGE_TAG: lambda r, ctx: ctx.docker.untag(r.name),
}
ORDER = list(REMOVERS)  # the table's order is the removal order


def describe(record: RunRecord) -> list[str]:
    """What reaping this run would remove, one line each (for --dry-run and --all)."""
    kinds = sorted(record.resources, key=lambda r: ORDER.index(r.kind) if r.kind in ORDER else len(ORDER))
    return [f"{r.kind} {r.name}" + (f" ({r.where})" if r.where else "") for r in kinds if r.kind in ORDER
            and r.kind != runstate.USES_CLUSTER]


def reap_record(record: RunRecord, ctx: Context) -> list[Resource]:
    """Remove the run's resources (and unrecorded containers with its label); return what remains."""
    recorded = {r.name for r in record.resources if r.kind == runstate.CONTAINER}
    extra = [Resource(runstate.CONTAINER, c) for c in ctx.docker.labelled(record.owner) if c not in recorded]
    remaining: list[Resource] = []
    for r in sorted([*record.resources, *extra], key=lambda r: ORDER.index(r.kind) if r.kind in ORDER else 0):
        remover = REMOVERS.get(r.kind)
        if remover is None or not remover(r, ctx):
            remaining.append(r)
    return remaining


# ── the driver ───────────────────────────────────────────────────────────────
@dataclass
class Outcome:
    owner: str
    why: str                                            # why it may be reaped ("pid 12 is gone", "--all")
    removed: list[str] = field(default_factory=list)    # what was (or, on a dry run, would be) removed
    left: list[str] = field(default_factory=list)       # what could not be removed, and why


class ClusterGate:
    """A cluster name may be deleted only while the reaper holds its lock (or this process already
    does, e.g. a session that waited for the name): a live run holding it is using that cluster."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self.held: dict[str, IO[str]] = {}  # asked again for a name it holds: still free (flock is per open file)

    def free(self, name: str) -> bool:
        if name in self.held or name in runstate.held_clusters(self.directory):
            return True
        path = runstate.cluster_lock_path(name, self.directory)
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = runstate.try_lock(path)
        if lock is not None:
            self.held[name] = lock
        return lock is not None

    def close(self) -> None:
        for lock in self.held.values():
            lock.close()
        self.held.clear()


def _reap_one(path: Path, record: RunRecord, why: str, docker: Docker, dry_run: bool, admin_dsn: str | None,
              gate: ClusterGate) -> Outcome:
    outcome = Outcome(record.owner, why, removed=describe(record))
    if dry_run:
        return outcome
    ctx = Context(docker, record, admin_dsn, gate.free)
    remaining = reap_record(record, ctx)
    outcome.left = ctx.left
    outcome.removed = [line for line in outcome.removed if not any(line.startswith(f"{r.kind} {r.name}")
                                                                   for r in remaining)]
    if remaining:  # kept for a later attempt: a record that is never rewritten is never retried
        # With the cluster it ran on: how a later attempt reaches a namespace whose kubeconfig is gone.
        context = [r for r in record.resources if r.kind == runstate.USES_CLUSTER and r not in remaining]
        record.resources = [*context, *remaining]
        runstate.write_atomically(path, record.to_json())
    else:
        path.unlink(missing_ok=True)
        path.with_suffix(".lock").unlink(missing_ok=True)
    return outcome


def reap(directory: Path | None = None, docker: Docker | None = None, include_kept: bool = False,
         dry_run: bool = False, admin_dsn: str | None = None, read: runstate.Reader = runstate.read_proc) -> list[Outcome]:
    """Reap every run that is provably dead (its lock free and its process gone); never a live one."""
    docker = docker or SubprocessDocker()
    gate, outcomes = ClusterGate(directory), []
    try:
        for path in runstate.records(directory):
            with runstate.claim_if_dead(path, read) as claimed:
                if claimed is None or (claimed[0].kept and not include_kept):
                    continue
                outcomes.append(_reap_one(path, claimed[0], claimed[1], docker, dry_run, admin_dsn, gate))
    finally:
        gate.close()
    return outcomes


def reap_all(directory: Path | None = None, docker: Docker | None = None, dry_run: bool = False,
             admin_dsn: str | None = None) -> list[Outcome]:
    """--all: every recorded run, live ones too, then any labelled container and `rehearsal*` cluster."""
    docker = docker or SubprocessDocker()
    gate, outcomes = ClusterGate(directory), []
    try:
        for path in runstate.records(directory):
            record = runstate.read_record(path)
            if record is not None:
                outcomes.append(_reap_one(path, record, "--all", docker, dry_run, admin_dsn, gate))
    finally:
        gate.close()
    stray = Outcome("(unrecorded)", "--all", removed=[f"container {c}" for c in docker.labelled(None)]
                    + [f"cluster {c}" for c in docker.clusters() if c.startswith("rehearsal")])
    if stray.removed and not dry_run:
        docker.unpause_and_remove(docker.labelled(None))
        for name in (line.split(" ", 1)[1] for line in stray.removed if line.startswith("cluster ")):
            docker.unpause_and_remove(docker.cluster_nodes(name))
            docker.delete_cluster(name)
    return [*outcomes, stray] if stray.removed else outcomes


def report_lines(outcomes: Sequence[Outcome], dry_run: bool = False) -> list[str]:
    verb = "would remove" if dry_run else "removed"
    lines = []
    for o in outcomes:
        if o.removed:
            lines.append(f"run {o.owner} ({o.why}): {verb} " + ", ".join(o.removed))
        lines.extend(f"run {o.owner}: left {what}" for what in o.left)
    return lines


def reap_quietly() -> None:
    """At the start of a session: reap dead runs, say something only when something was removed.
    Never fails the session: the reaper is a courtesy to earlier runs, not a precondition."""
    try:
        lines = report_lines(reap())
    except Exception as exc:  # noqa: BLE001 (e.g. no Docker with --kubeconfig and --database-dsn)
        lines = [f"reaping dead runs failed: {type(exc).__name__}: {exc}"]
    for line in lines:
        console.print(line, markup=False, highlight=False)


# ── the real machine ─────────────────────────────────────────────────────────
def untag(ref: str) -> bool:
    """Remove a local image tag; True when it is gone (also when it never existed)."""
    return _ok(["docker", "rmi", ref], 60) or not _ok(["docker", "image", "inspect", ref], 30)


def registry_tags(address: str) -> list[str]:
    """Local image references `address/...:tag` (the registry's host:port)."""
    refs = _lines(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", f"reference={address}/*",
                   "--filter", f"reference={address}/*/*", "--filter", f"reference={address}/*/*/*"])
    return [r for r in refs if r.startswith(f"{address}/") and not r.endswith(":<none>")]


def untag_registry(address: str) -> bool:
    """Untag every local reference to the registry at `address`; True when none is left."""
    for ref in registry_tags(address):
        untag(ref)
    return not registry_tags(address)


def _port_users(port: str) -> list[str]:
    return _lines(["docker", "ps", "-q", "--no-trunc", "--filter", f"publish={port}"])


def _ok(cmd: list[str], timeout: float = 120) -> bool:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _lines(cmd: list[str]) -> list[str]:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout.split()
    except (OSError, subprocess.SubprocessError):  # no Docker or no kind here: nothing of that kind to reap
        return []


class SubprocessDocker:
    """docker, kind, kubectl and psycopg, as the reaper uses them."""

    def labelled(self, owner: str | None) -> list[str]:
        label = tools.OWNER_LABEL if owner is None else f"{tools.OWNER_LABEL}={owner}"
        return _lines(["docker", "ps", "-aq", "--no-trunc", "--filter", f"label={label}"])

    def cluster_nodes(self, name: str) -> list[str]:
        return _lines(["docker", "ps", "-aq", "--no-trunc", "--filter", f"label=io.x-k8s.kind.cluster={name}"])

    def clusters(self) -> list[str]:
        return _lines([str(tools.tool("kind")), "get", "clusters"])

    def unpause_and_remove(self, containers: list[str]) -> bool:
        """`docker rm -f` refuses (or, on some versions, hangs on) a paused container: unpause first."""
        if not containers:
            return True
        for c in containers:
            _ok(["docker", "unpause", c], 30)  # fails harmlessly when not paused or already gone
        gone = _ok(["docker", "rm", "-f", "-v", *containers])
        return gone or not [c for c in containers if _ok(["docker", "inspect", c], 30)]

    def unpause(self, container: str) -> bool:
        """Unpaused, or not there any more (nothing left frozen either way)."""
        return _ok(["docker", "unpause", container], 30) or not _ok(["docker", "inspect", container], 30) \
            or _lines(["docker", "inspect", "--format", "{{.State.Paused}}", container]) == ["false"]

    def remove_netem(self, node: str, device: str) -> bool:
        """Removed, or never there (no such qdisc, or the node itself is gone)."""
        shown = _lines(["docker", "exec", node, "tc", "qdisc", "show", "dev", device])
        return not any("netem" in line for line in shown) \
            or _ok(["docker", "exec", node, "tc", "qdisc", "del", "dev", device, "root"], 30)

    def delete_cluster(self, name: str) -> bool:
        return _ok([str(tools.tool("kind")), "delete", "cluster", f"--name={name}"], 180)

    def delete_namespace(self, name: str, kubeconfig: str) -> bool:
        return _ok([str(tools.tool("kubectl")), f"--kubeconfig={kubeconfig}", "delete", "namespace", name,
                    "--ignore-not-found", "--wait=false"], 60)

    def delete_namespace_in(self, name: str, cluster: str) -> bool:
        with tempfile.TemporaryDirectory(prefix="rehearsal-reaper-") as d:
            kubeconfig = Path(d) / "kubeconfig"
            exported = _ok([str(tools.tool("kind")), "export", "kubeconfig", f"--name={cluster}",
                            f"--kubeconfig={kubeconfig}"], 60)
            return exported and self.delete_namespace(name, str(kubeconfig))

    def drop_database(self, name: str, admin_dsn: str) -> bool:
        try:
            with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=10) as conn:
                conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
            return True
        except psycopg.Error:
            return False

    def remove_dir(self, path: str) -> bool:
        shutil.rmtree(path, ignore_errors=True)
        return not Path(path).exists()

    def untag(self, ref: str) -> bool:
        return untag(ref)

    def untag_registry(self, address: str, owner: str) -> bool:
        """Only while no other owner's container publishes the port: a later run's registry may have it now."""
        port = address.rsplit(":", 1)[-1]
        others = set(_port_users(port)) - set(self.labelled(owner))
        return True if others else untag_registry(address)

    def unconfigure_node(self, node: str, address: str) -> bool:
        """Removed, or the node is gone (with its whole filesystem)."""
        return _ok(["docker", "exec", node, "rm", "-rf", f"/etc/containerd/certs.d/{address}"], 30) \
            or not _ok(["docker", "inspect", node], 30)
