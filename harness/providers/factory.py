"""The one place that chooses and starts a session's providers from its options.

Each kind of provider is a table of choices, tried in order; the first that
applies is made and started. A provider the session owns (`disposable`) gets
its teardown registered on the session's ExitStack BEFORE `start()`, so a
failed or interrupted start (Ctrl-C during `kind create`) is cleaned up too.
The stack runs its callbacks in reverse: the registry first, then Postgres,
then the cluster, and last the sweep of containers labelled with the owner.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Generic, TypeVar

from harness import tools
from harness.options import SessionOptions
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


@dataclass(frozen=True)
class Where:
    """What a provider choice may depend on besides the options."""

    owner: str                 # the label value on every container of this session
    network: str | None = None  # the cluster's Docker network (for the database)


@dataclass(frozen=True)
class Choice(Generic[P]):
    applies: Callable[[SessionOptions, Where], bool]
    make: Callable[[SessionOptions, Where], P]
    disposable: Callable[[SessionOptions], bool]  # owned by the session: its teardown is registered before start


def _never(options: SessionOptions) -> bool:
    return False


def _always(options: SessionOptions, where: Where) -> bool:
    return True


def _existing_cluster(options: SessionOptions, where: Where) -> ClusterProvider:
    assert options.kubeconfig is not None
    return ExistingClusterProvider(options.kubeconfig)


def _unreachable_database(options: SessionOptions, where: Where) -> DatabaseProvider:
    raise RuntimeError("an existing cluster (--kubeconfig) cannot reach a local Postgres container. "
                       "Fix: pass --database-dsn with an address the cluster's pods can reach")


CLUSTERS: Sequence[Choice[ClusterProvider]] = (
    Choice(lambda o, w: o.kubeconfig is not None, _existing_cluster, _never),
    # A reused cluster is left as it was found; a kept one stays for inspection.
    Choice(_always, lambda o, w: KindProvider(o.cluster_name, o.node_image, reuse=o.reuse_cluster),
           lambda o: not (o.keep_cluster or o.reuse_cluster)),
)
DATABASES: Sequence[Choice[DatabaseProvider]] = (
    Choice(lambda o, w: bool(o.database_dsn),
           lambda o, w: ExistingDsnProvider(o.database_dsn or "", o.database_cluster_host), _never),
    Choice(lambda o, w: w.network is None, _unreachable_database, _never),
    # --keep-cluster keeps the databases too, for inspection.
    Choice(_always, lambda o, w: PostgresContainerProvider(o.postgres_major, w.network, w.owner),
           lambda o: not o.keep_cluster),
)


def _choose(choices: Sequence[Choice[P]], options: SessionOptions, where: Where) -> Choice[P]:
    return next(c for c in choices if c.applies(options, where))


def start_cluster(options: SessionOptions, stack: ExitStack, owner: str) -> ClusterProvider:
    where = Where(owner)
    choice = _choose(CLUSTERS, options, where)
    cluster = choice.make(options, where)
    if choice.disposable(options):
        stack.callback(cluster.delete)  # before start: Ctrl-C during `kind create` is cleaned up too
    return cluster.start()


def start_database(options: SessionOptions, stack: ExitStack, owner: str, network: str | None) -> DatabaseProvider:
    where = Where(owner, network)
    choice = _choose(DATABASES, options, where)
    database = choice.make(options, where)
    if choice.disposable(options):
        stack.callback(database.stop)  # before start: a failed start is still cleaned up
    return database.start()


def build(options: SessionOptions, stack: ExitStack, owner: str) -> Infrastructure:
    """Start the session's cluster and Postgres; their teardown goes on STACK (none for what is kept)."""
    if not options.keep_cluster:
        stack.callback(remove_owned_containers, owner)  # registered first: runs last
    cluster = start_cluster(options, stack, owner)
    database = start_database(options, stack, owner, cluster.docker_network())
    return Infrastructure(cluster=cluster, database=database)


def add_registry(infra: Infrastructure, stack: ExitStack, owner: str, keep: bool) -> RegistryProvider:
    """Start the registry (once) and point every node's containerd at it."""
    if infra.registry is None:
        registry = RegistryContainer(infra.cluster.docker_network(), owner)
        if not keep:
            stack.callback(registry.stop)  # before start: a failed start is cleaned up too
        registry.start()
        for node in infra.cluster.node_containers():
            registry.configure_node(node)
            # A reused cluster is left as it was found.
            stack.callback(registry.unconfigure_node, node)
        infra.registry = registry
    return infra.registry


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
