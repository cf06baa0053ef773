"""Providers (harness/providers/): the protocols, the factory's choices and cleanup order, the DSN provider.

No Docker, no kind, no Postgres: the container classes and the providers the factory makes are fakes.
"""

from __future__ import annotations

import tempfile
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from collections.abc import Callable
from typing import Any

import pytest

from harness import runstate, tools
from harness.options import SessionOptions
from harness.providers import database, factory, registry
from harness.providers.cluster import ClusterExists, ClusterProvider, ExistingClusterProvider, KindProvider
from harness.runstate import Resource
from harness.providers.database import DatabaseProvider, ExistingDsnProvider, PostgresContainerProvider
from harness.providers.registry import RegistryContainer, RegistryProvider

DSN = "postgresql://admin:s3cret@db.internal:6543/postgres"


# ── the protocols ───────────────────────────────────────────────────────────
class FakeContainer:
    """Stands in for testcontainers' containers: never started here."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.kwargs: dict[str, Any] = {}

    def with_kwargs(self, **kwargs: Any) -> FakeContainer:
        self.kwargs.update(kwargs)
        return self

    def with_exposed_ports(self, *ports: int) -> FakeContainer:
        return self

    def get_wrapped_container(self) -> None:
        return None


@pytest.fixture
def no_docker(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(database, "PostgresContainer", FakeContainer)
    monkeypatch.setattr(registry, "DockerContainer", FakeContainer)
    monkeypatch.setattr(tools, "tool", lambda name: tmp_path / name)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # pytest-kind's KindCluster writes .pytest-kind/ in the working directory


def test_every_provider_conforms_to_its_protocol(no_docker: None, tmp_path: Path) -> None:
    clusters: list[ClusterProvider] = [KindProvider("rr-proto"), ExistingClusterProvider(tmp_path / "kubeconfig")]
    databases: list[DatabaseProvider] = [PostgresContainerProvider("15", "kind", "owner-1"), ExistingDsnProvider(DSN)]
    registries: list[RegistryProvider] = [RegistryContainer("kind", "owner-1")]
    assert all(isinstance(c, ClusterProvider) for c in clusters)
    assert all(isinstance(d, DatabaseProvider) for d in databases)
    assert all(isinstance(r, RegistryProvider) for r in registries)
    # Not started, or not ours: no container to pause or check.
    assert [d.container_id for d in databases] == [None, None] and registries[0].container_id is None
    assert not isinstance(ExistingDsnProvider(DSN), ClusterProvider)


def test_only_owned_infrastructure_has_containers(no_docker: None, tmp_path: Path) -> None:
    existing = ExistingClusterProvider(tmp_path / "kubeconfig")
    assert existing.start() is existing
    assert (existing.node_containers(), existing.docker_network(), existing.delete()) == ([], None, None)
    kind = KindProvider("rr-proto", "node:v1", reuse=True)
    assert (kind.docker_network(), kind.reuse, kind.cluster.image) == ("kind", True, "node:v1")
    pg = PostgresContainerProvider("16", "kind", "owner-7")
    assert pg.image == tools.POSTGRES_IMAGE.format(major="16")
    assert pg.container.kwargs["labels"] == {tools.OWNER_LABEL: "owner-7"}  # what remove_owned_containers finds


# ── ExistingDsnProvider ─────────────────────────────────────────────────────
def test_existing_dsn_host_and_port_come_from_the_dsn() -> None:
    p = ExistingDsnProvider(DSN)
    assert p.start() is p and p.admin_dsn == DSN
    assert (p.host, p.port, p.cluster_host, p.cluster_port) == ("db.internal", 6543, "db.internal", 6543)
    bare = ExistingDsnProvider("postgresql:///postgres")
    assert (bare.host, bare.port, bare.cluster_host, bare.cluster_port) == ("127.0.0.1", 5432, "127.0.0.1", 5432)


def test_existing_dsn_cluster_host_is_what_pods_get(monkeypatch: pytest.MonkeyPatch) -> None:
    executed: list[str] = []

    class Conn:
        def __enter__(self) -> Conn:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def execute(self, query: Any, params: Any = None) -> None:
            executed.append(str(query))

    monkeypatch.setattr(database.psycopg, "connect", lambda dsn, autocommit: Conn())
    p = ExistingDsnProvider(DSN, cluster_host="10.0.0.9", cluster_port=5432)
    handle = p.create_database("my-app")
    assert (handle.name, handle.role) == ("rr_my_app", "rr_my_app")
    assert handle.host_dsn == f"postgresql://rr_my_app:{handle.password}@db.internal:6543/rr_my_app"
    assert handle.cluster_dsn == f"postgresql://rr_my_app:{handle.password}@10.0.0.9:5432/rr_my_app"
    # Create role, create database: nothing is dropped first (the name is this run's own; another's is never dropped).
    assert len(executed) == 2 and not any("DROP" in q for q in executed)
    assert p.container_id is None and p.stop() is None


# ── the factory ─────────────────────────────────────────────────────────────
class Recorder:
    """Fake provider classes that log what is made, started and torn down, in order."""

    def __init__(self, network: str | None = "kind", fail_start: str = "") -> None:
        self.log: list[str] = []
        self.network, self.fail_start = network, fail_start

    def provider(self, kind: str, *args: Any, **kwargs: Any) -> Any:
        rec = self
        shown = ", ".join([*map(str, args), *(f"{k}={v}" for k, v in kwargs.items())])
        rec.log.append(f"new {kind}({shown})")

        class Fake:
            name, kubeconfig, admin_dsn, address, cluster_address = kind, Path("k"), "dsn", "a", "c"
            container_id = None

            def start(self) -> Any:
                rec.log.append(f"start {kind}")
                if rec.fail_start == kind:
                    raise KeyboardInterrupt(f"Ctrl-C while starting {kind}")
                return self

            def delete(self) -> None:
                rec.log.append(f"delete {kind}")

            def stop(self) -> None:
                rec.log.append(f"stop {kind}")

            def docker_network(self) -> str | None:
                return rec.network

            def node_containers(self) -> list[str]:
                return ["n1"] if rec.network else []

            def configure_node(self, node: str) -> None:
                rec.log.append(f"configure {node}")

            def unconfigure_node(self, node: str) -> None:
                rec.log.append(f"unconfigure {node}")

        return Fake()


@pytest.fixture
def rec(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Recorder:
    monkeypatch.setenv("REHEARSAL_CACHE_DIR", str(tmp_path / "cache"))  # the cluster-name lock lives there
    r = Recorder()
    for name in ("KindProvider", "ExistingClusterProvider", "PostgresContainerProvider", "ExistingDsnProvider",
                 "RegistryContainer"):
        monkeypatch.setattr(factory, name, lambda *a, _n=name, **kw: r.provider(_n, *a, **kw))
    monkeypatch.setattr(factory, "remove_owned_containers", lambda owner: r.log.append(f"remove containers of {owner}"))
    return r


def _build(rec: Recorder, **options: Any) -> tuple[list[str], list[str]]:
    """(what building logged, what closing the stack logged)."""
    with ExitStack() as stack:
        factory.build(SessionOptions(**options), stack, "rehearsal-1234abcd")
        built = list(rec.log)
    return built, rec.log[len(built):]


def test_default_session_is_a_kind_cluster_and_a_postgres_container(rec: Recorder) -> None:
    built, closed = _build(rec)
    assert built == ["new KindProvider(rehearsal, None, reuse=False, run=None)", "start KindProvider",
                     "new PostgresContainerProvider(15, kind, rehearsal-1234abcd)", "start PostgresContainerProvider"]
    assert closed == ["stop PostgresContainerProvider", "delete KindProvider", "remove containers of rehearsal-1234abcd"]


@pytest.mark.parametrize(("options", "closed"), [
    ({"keep_cluster": True}, []),  # everything stays for inspection
    ({"reuse_cluster": True}, ["stop PostgresContainerProvider", "remove containers of rehearsal-1234abcd"]),
    ({"node_image": "img:2", "cluster_name": "c"},
     ["stop PostgresContainerProvider", "delete KindProvider", "remove containers of rehearsal-1234abcd"]),
])
def test_kept_and_reused_clusters_are_not_deleted(rec: Recorder, options: dict[str, Any], closed: list[str]) -> None:
    assert _build(rec, **options)[1] == closed


def test_a_failed_start_is_cleaned_up_because_teardown_is_registered_first(rec: Recorder) -> None:
    rec.fail_start = "KindProvider"
    with pytest.raises(KeyboardInterrupt):
        _build(rec)
    assert rec.log == ["new KindProvider(rehearsal, None, reuse=False, run=None)", "start KindProvider",
                       "delete KindProvider", "remove containers of rehearsal-1234abcd"]
    rec.log.clear()
    rec.fail_start = "PostgresContainerProvider"
    with pytest.raises(KeyboardInterrupt):
        _build(rec)
    assert rec.log[-3:] == ["stop PostgresContainerProvider", "delete KindProvider",
                            "remove containers of rehearsal-1234abcd"]


def test_existing_cluster_and_dsn_are_neither_deleted_nor_stopped(rec: Recorder) -> None:
    rec.network = None
    built, closed = _build(rec, kubeconfig=Path("kc"), database_dsn=DSN, database_cluster_host="10.1.2.3")
    assert built == ["new ExistingClusterProvider(kc)", "start ExistingClusterProvider",
                     f"new ExistingDsnProvider({DSN}, 10.1.2.3)", "start ExistingDsnProvider"]
    assert closed == ["remove containers of rehearsal-1234abcd"]


def test_a_dsn_also_replaces_the_container_on_kind(rec: Recorder) -> None:
    built, closed = _build(rec, database_dsn=DSN)
    assert built[2:] == [f"new ExistingDsnProvider({DSN}, None)", "start ExistingDsnProvider"]
    assert closed == ["delete KindProvider", "remove containers of rehearsal-1234abcd"]


def test_an_existing_cluster_without_a_dsn_is_refused(rec: Recorder) -> None:
    rec.network = None
    with pytest.raises(RuntimeError, match="pass --database-dsn"):
        _build(rec, kubeconfig=Path("kc"))
    assert rec.log == ["new ExistingClusterProvider(kc)", "start ExistingClusterProvider",
                       "remove containers of rehearsal-1234abcd"]


@pytest.mark.parametrize(("keep", "closed"), [
    (False, ["unconfigure n1", "stop RegistryContainer"]),
    (True, ["unconfigure n1"]),  # a reused or kept cluster is left as it was found; the container stays
])
def test_the_registry_is_started_once_and_its_node_config_removed(rec: Recorder, keep: bool,
                                                                  closed: list[str]) -> None:
    infra = factory.Infrastructure(cluster=rec.provider("Cluster"), database=rec.provider("Database"))
    with ExitStack() as stack:
        first = factory.add_registry(infra, stack, "owner-2", keep=keep)
        assert factory.add_registry(infra, stack, "owner-2", keep=keep) is first is infra.registry
        built = list(rec.log)
    assert built[2:] == ["new RegistryContainer(kind, owner-2)", "start RegistryContainer", "configure n1"]
    assert rec.log[len(built):] == closed


def test_the_tables_make_the_real_providers(tmp_path: Path) -> None:
    where = factory.Where("o", None)
    opts = SessionOptions(kubeconfig=tmp_path / "kc", database_dsn=DSN, database_cluster_host="10.1.2.3")
    made = factory.CLUSTERS[0].make(opts, where)
    assert isinstance(made, ExistingClusterProvider) and made.kubeconfig == tmp_path / "kc"
    dsn = factory.DATABASES[0].make(opts, where)
    assert isinstance(dsn, ExistingDsnProvider) and (dsn.admin_dsn, dsn.cluster_host) == (DSN, "10.1.2.3")
    assert dsn.cluster_port == dsn.port  # no port given: the DSN's
    ported = factory.DATABASES[0].make(replace(opts, database_cluster_host="10.1.2.3:5432"), where)
    assert isinstance(ported, ExistingDsnProvider) and (ported.cluster_host, ported.cluster_port) == ("10.1.2.3", 5432)
    # The last choice of each table applies to anything: a session always gets a cluster and a database.
    assert factory.CLUSTERS[-1].applies(SessionOptions(), where) and factory.DATABASES[-1].applies(opts, where)


# ── a cluster is deleted only by the run that created it ─────────────────────
FAKE_KIND = """#!/bin/sh
echo "$@" >> "$(dirname "$0")/kind.log"
case "$1 $2" in
  "get clusters") cat "$(dirname "$0")/clusters" 2>/dev/null ;;
  "create cluster") echo "ERROR: failed to create cluster: node(s) already exist for a cluster with the name" >&2
                    exit 1 ;;
esac
"""


@pytest.fixture
def fake_kind(no_docker: None, tmp_path: Path) -> Path:
    kind = tmp_path / "kind"
    kind.write_text(FAKE_KIND)
    kind.chmod(0o755)
    return tmp_path / "kind.log"


def _kind_calls(log: Path) -> list[str]:
    return [line.split()[0] + " " + line.split()[1] for line in log.read_text().splitlines()] if log.exists() else []


@pytest.mark.parametrize("reuse", [False, True])
def test_a_cluster_found_existing_is_never_deleted(fake_kind: Path, tmp_path: Path, reuse: bool) -> None:
    (tmp_path / "clusters").write_text("rehearsal\n")  # another run's cluster
    run = runstate.RunState("rehearsal-0000abcd", tmp_path / "runs").begin()
    kind = KindProvider("rehearsal", reuse=reuse, run=run)
    kind.cluster._export_kubeconfig = lambda: None  # type: ignore[method-assign]
    if reuse:
        kind.start()
    else:
        with pytest.raises(ClusterExists):
            kind.start()
    kind.delete()  # what the session's teardown calls: a no-op for a cluster this run did not create
    assert "delete cluster" not in _kind_calls(fake_kind) and not kind.created
    assert (Resource(runstate.USES_CLUSTER, "rehearsal") in run.record.resources) == reuse
    assert not any(r.kind == runstate.CLUSTER for r in run.record.resources)
    # Its kubeconfig directory is this run's own, named after the owner, not after the cluster.
    assert kind.workdir.name == "rehearsal-0000abcd"


def test_a_cluster_this_run_creates_is_recorded_first_and_deleted(fake_kind: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    run = runstate.RunState("rehearsal-0000abcd", tmp_path / "runs").begin()
    kind = KindProvider("rehearsal", run=run)
    seen: list[list[Resource]] = []

    def create(reuse: bool, before_create: Callable[[], None]) -> bool:
        before_create()
        seen.append(runstate.read_record(run.path).resources)  # type: ignore[union-attr]
        return True

    monkeypatch.setattr(kind.cluster, "create", create)
    kind.start()
    # Recorded on disk before `kind create` started: a kill -9 during the create leaves the name.
    assert Resource(runstate.CLUSTER, "rehearsal") in seen[0]
    kind.delete()
    kind.remove_workdir()
    assert _kind_calls(fake_kind) == ["delete cluster"]
    assert run.record.resources == [] and not kind.workdir.exists()


def test_losing_the_create_race_does_not_delete_the_winner(fake_kind: Path, tmp_path: Path) -> None:
    """kind says "already exist": another process created the name between our check and our create."""
    kind = KindProvider("rehearsal")
    with pytest.raises(ClusterExists, match="created by another process"):
        kind.start()
    kind.delete()  # the session's teardown
    assert "delete cluster" not in _kind_calls(fake_kind) and not kind.created


def test_a_reusing_run_that_loses_the_create_race_adopts_the_winner(fake_kind: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    run = runstate.RunState("rehearsal-0000beef", tmp_path / "runs").begin()
    kind = KindProvider("rehearsal", reuse=True, run=run)
    # Not there when checked, there (the winner's) when created.
    answers = iter([False, True])
    monkeypatch.setattr(kind.cluster, "exists", lambda: next(answers))
    monkeypatch.setattr(kind.cluster, "_export_kubeconfig", lambda: None)
    kind.start()
    kind.delete()
    assert "delete cluster" not in _kind_calls(fake_kind) and not kind.created
    assert [r.kind for r in run.record.resources] == [runstate.TEMP_DIR, runstate.USES_CLUSTER]


def test_a_cluster_created_to_be_reused_is_not_left_for_the_reaper(fake_kind: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """--reuse-cluster on a free name: this run creates the cluster, the session keeps it at the end,
    so the record must not claim it (a later reaper would take it for a dead run's leftover)."""
    run = runstate.RunState("rehearsal-0000cafe", tmp_path / "runs").begin()
    kind = KindProvider("rr-dev", reuse=True, run=run)

    def create(reuse: bool, before_create: Callable[[], None]) -> bool:
        before_create()
        return True

    monkeypatch.setattr(kind.cluster, "create", create)
    kind.start()
    assert not kind.created
    assert [r.kind for r in run.record.resources] == [runstate.TEMP_DIR, runstate.USES_CLUSTER]


def test_a_failed_kind_delete_is_raised_and_the_cluster_stays_recorded(fake_kind: Path, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    run = runstate.RunState("rehearsal-0000dead", tmp_path / "runs").begin()
    kind = KindProvider("rehearsal", run=run)

    def create(reuse: bool, before_create: Callable[[], None]) -> bool:
        before_create()
        return True

    monkeypatch.setattr(kind.cluster, "create", create)
    kind.start()
    (tmp_path / "kind").write_text("#!/bin/sh\necho 'ERROR: docker said no' >&2\nexit 1\n")
    with pytest.raises(RuntimeError, match="docker said no"):
        kind.delete()
    assert Resource(runstate.CLUSTER, "rehearsal") in run.record.resources  # the reaper can still finish it
