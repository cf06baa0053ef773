"""The one place that chooses and starts a session's providers from its options.

Each kind of provider is a table of choices, tried in order; the first that
applies is made and started. A provider the session owns (`disposable`) gets
its teardown registered on the session's ExitStack BEFORE `start()`, so a
failed or interrupted start (Ctrl-C during `kind create`) is cleaned up too.
The stack runs its callbacks in reverse: the registry first, then Postgres,
then the cluster, and last the sweep of containers labelled with the owner.

Ownership: a kind cluster's name is locked for the session (exclusively by a
run that may create and delete it, shared by one that reuses it), so a second
run with the same default name waits for the first instead of failing or
deleting it; and the cluster's `delete` removes it only if this run created
it. Every resource is written to the run state (harness.runstate) before it
is created, so the reaper (harness.cleanup) can finish the job after a kill.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from harness import cleanup, runstate, tools
from harness.deferred import Deferred
from harness.options import SessionOptions, split_host_port
from harness.progress import say
from harness.providers.cluster import ClusterProvider, ExistingClusterProvider, KindProvider
from harness.providers.database import DatabaseProvider, ExistingDsnProvider, PostgresContainerProvider
from harness.providers.registry import RegistryContainer, RegistryProvider

P = TypeVar("P")


@dataclass
class Infrastructure:
    """Session-wide resources (one cluster, one Postgres, lazily one registry)."""

    cluster: ClusterProvider
    database: DatabaseProvider
    registry: RegistryProvider | None = None
    owner: str = ""
    run: runstate.RunState | None = None  # this session's run state (None in tests without one)
    # Namespace and database removals handed on by finished scenarios (harness/deferred.py); drained
    # before the cluster and Postgres stop.
    deferred: Deferred = field(default_factory=Deferred)

    def record(self, kind: str, name: str, where: str = "") -> None:
        """Write down a resource this run is about to create (see harness.runstate)."""
        if self.run is not None:
            self.run.add(kind, name, where)

    def forget(self, kind: str, name: str) -> None:
        if self.run is not None:
            self.run.forget(kind, name)

    @property
    def run_id(self) -> str:
        """Unique per run: the suffix of namespace and database names on a shared cluster or server."""
        return self.run.run_id if self.run is not None else self.owner.rsplit("-", 1)[-1]


@dataclass(frozen=True)
class Where:
    """What a provider choice may depend on besides the options."""

    owner: str                 # the label value on every container of this session
    network: str | None = None  # the cluster's Docker network (for the database)
    run: runstate.RunState | None = None  # where what the session creates is recorded


def _never(options: SessionOptions) -> bool:
    return False


def _always_locks(options: SessionOptions) -> bool:
    return True


@dataclass(frozen=True)
class Choice(Generic[P]):
    applies: Callable[[SessionOptions, Where], bool]
    make: Callable[[SessionOptions, Where], P]
    disposable: Callable[[SessionOptions], bool]  # owned by the session: its teardown is registered before start
    # A name two runs on this machine could both use (a kind cluster): held for the session, shared or not.
    locks_name: Callable[[SessionOptions], bool] = _never


def _always(options: SessionOptions, where: Where) -> bool:
    return True


def _existing_cluster(options: SessionOptions, where: Where) -> ClusterProvider:
    assert options.kubeconfig is not None
    return ExistingClusterProvider(options.kubeconfig)


def _existing_database(options: SessionOptions) -> DatabaseProvider:
    """The user's server; pods reach it at --database-cluster-host HOST[:PORT] (default: the DSN's)."""
    given = options.database_cluster_host
    host, port = split_host_port(given) if given else (None, None)
    return ExistingDsnProvider(options.database_dsn or "", host, **({"cluster_port": port} if port else {}))


def _unreachable_database(options: SessionOptions, where: Where) -> DatabaseProvider:
    raise RuntimeError("an existing cluster (--kubeconfig) cannot reach a local Postgres container. "
                       "Fix: pass --database-dsn with an address the cluster's pods can reach")


CLUSTERS: Sequence[Choice[ClusterProvider]] = (
    Choice(lambda o, w: o.kubeconfig is not None, _existing_cluster, _never),
    # A reused cluster is left as it was found; a kept one stays for inspection.
    Choice(_always, lambda o, w: KindProvider(o.cluster_name, o.node_image, reuse=o.reuse_cluster, run=w.run),
           lambda o: not (o.keep_cluster or o.reuse_cluster), _always_locks),
)
DATABASES: Sequence[Choice[DatabaseProvider]] = (
    Choice(lambda o, w: bool(o.database_dsn), lambda o, w: _existing_database(o), _never),
    Choice(lambda o, w: w.network is None, _unreachable_database, _never),
    # --keep-cluster keeps the databases too, for inspection.
    Choice(_always, lambda o, w: PostgresContainerProvider(o.postgres_major, w.network, w.owner),
           lambda o: not o.keep_cluster),
)


def _choose(choices: Sequence[Choice[P]], options: SessionOptions, where: Where) -> Choice[P]:
    return next(c for c in choices if c.applies(options, where))


# How long a run waits for another run to release its cluster name (a whole rehearsal may take that long).
CLUSTER_WAIT_S = float(os.environ.get("REHEARSAL_CLUSTER_WAIT_S", "3600"))


def _lock_name(options: SessionOptions, stack: ExitStack) -> None:
    """Hold the cluster name for the session. A run that had to wait reaps again once it holds the
    name: the run it waited for may have been killed, leaving the cluster it created."""
    waited: list[str] = []

    def progress(line: str) -> None:
        waited.append(line)
        say(line)

    release = runstate.lock_cluster(options.cluster_name, shared=options.reuse_cluster, timeout_s=CLUSTER_WAIT_S,
                                    say=progress)
    stack.callback(release)  # registered before the cluster's delete: released after it
    if waited:
        cleanup.reap_quietly()


def start_cluster(options: SessionOptions, stack: ExitStack, owner: str,
                  run: runstate.RunState | None = None) -> ClusterProvider:
    where = Where(owner, run=run)
    choice = _choose(CLUSTERS, options, where)
    if choice.locks_name(options):
        _lock_name(options, stack)
    cluster = choice.make(options, where)
    if not options.keep_cluster and hasattr(cluster, "remove_workdir"):
        stack.callback(cluster.remove_workdir)  # this run's kubeconfig directory: after the delete below
    if choice.disposable(options):
        # Before start: Ctrl-C during `kind create` is cleaned up too. A no-op unless this run created it.
        stack.callback(cluster.delete)
    return cluster.start()


def start_database(options: SessionOptions, stack: ExitStack, owner: str, network: str | None,
                   run: runstate.RunState | None = None) -> DatabaseProvider:
    where = Where(owner, network, run)
    choice = _choose(DATABASES, options, where)
    database = choice.make(options, where)
    if choice.disposable(options):
        stack.callback(_stop_and_forget, database.stop, lambda: database.container_id, run)  # before start
    started = database.start()
    _record_container(run, started.container_id)
    return started


def start_scratch_postgres(major: str, stack: ExitStack, owner: str,
                           run: runstate.RunState | None = None) -> PostgresContainerProvider:
    """A Postgres container of this run on no cluster network (`rehearse ladder`): the host reaches it on its
    published port, a container reaches it by sharing its network namespace. Removed by STACK, registered
    before the start like the session's."""
    database = PostgresContainerProvider(major, None, owner)
    stack.callback(_stop_and_forget, database.stop, lambda: database.container_id, run)
    started = database.start()
    _record_container(run, started.container_id)
    return started


def _record_container(run: runstate.RunState | None, container_id: str | None) -> None:
    """A started container of this run (its owner label finds one killed before this line)."""
    if run is not None and container_id:
        run.add(runstate.CONTAINER, container_id)


def _stop_and_forget(stop: Callable[[], None], container_id: Callable[[], str | None],
                     run: runstate.RunState | None) -> None:
    cid = container_id()
    stop()
    if run is not None and cid:
        run.forget(runstate.CONTAINER, cid)


def build(options: SessionOptions, stack: ExitStack, owner: str,
          run: runstate.RunState | None = None) -> Infrastructure:
    """Start the session's cluster and Postgres; their teardown goes on STACK (none for what is kept)."""
    if not options.keep_cluster:
        stack.callback(remove_owned_containers, owner)  # registered first: runs last
    cluster = start_cluster(options, stack, owner, run)
    database = start_database(options, stack, owner, cluster.docker_network(), run)
    infra = Infrastructure(cluster=cluster, database=database, owner=owner, run=run)
    stack.callback(infra.deferred.drain)  # registered last: runs first, while both still run
    return infra


def add_registry(infra: Infrastructure, stack: ExitStack, owner: str, keep: bool) -> RegistryProvider:
    """Start the registry (once) and point every node's containerd at it."""
    if infra.registry is None:
        registry = RegistryContainer(infra.cluster.docker_network(), owner)
        if not keep:
            # Before start: a failed start is cleaned up too.
            stack.callback(_stop_and_forget, registry.stop, lambda: registry.container_id, infra.run)
        registry.start()
        _record_container(infra.run, registry.container_id)
        if not keep:
            # The local tags naming this registry point at nothing once it is gone. Removed while it still
            # runs: its port is this run's until then, so every tag with that address is this run's.
            infra.record(runstate.REGISTRY_TAGS, registry.address)
            stack.callback(remove_image_tags, infra, registry.address)
        for node in infra.cluster.node_containers():
            infra.record(runstate.NODE_REGISTRY, node, registry.address)
            registry.configure_node(node)
            # A reused cluster is left as it was found.
            stack.callback(_unconfigure_and_forget, infra, registry, node)
        infra.registry = registry
    return infra.registry


def _unconfigure_and_forget(infra: Infrastructure, registry: RegistryProvider, node: str) -> None:
    registry.unconfigure_node(node)
    infra.forget(runstate.NODE_REGISTRY, node)


def remove_image_tags(infra: Infrastructure, address: str) -> None:
    """Untag the local image references this run pushed, and every other tag naming its registry
    (a runbook's `docker tag ... ${REGISTRY}/app:production`); `docker rmi` of one of several tags only
    untags."""
    tags = [r.name for r in (infra.run.record.resources if infra.run else []) if r.kind == runstate.IMAGE_TAG]
    for ref in tags:
        if cleanup.untag(ref):
            infra.forget(runstate.IMAGE_TAG, ref)
    if cleanup.untag_registry(address):
        infra.forget(runstate.REGISTRY_TAGS, address)


def remove_owned_containers(owner: str) -> None:
    """Remove any container still labelled with this session's owner: one an
    interrupt during `docker create` hid from its provider (no id to stop)."""
    try:
        ids = subprocess.run(["docker", "ps", "-aq", "--filter", f"label={tools.OWNER_LABEL}={owner}"],
                             capture_output=True, text=True, timeout=30).stdout.split()
        if ids:
            say(f"removing {len(ids)} leftover container(s) of {owner}")
            subprocess.run(["docker", "rm", "-f", "-v", *ids], capture_output=True, timeout=120)
    except (OSError, subprocess.SubprocessError):  # no Docker here (existing cluster and DSN)
        pass
