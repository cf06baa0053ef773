"""The reaper's decisions, on a fake docker/kind/kubectl/psql layer: what a dead run left is removed
(unpaused first, in order), a live or kept run is left alone, and what cannot be removed is kept
in the record for a later attempt."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness import cleanup, faults, runstate
from harness.providers import factory
from harness.cli import cli
from harness.runstate import ProcessIdentity, Resource, RunRecord

BOOT = "boot-1"
LIVE_PID, DEAD_PID = 100, 200


def proc(path: str) -> str:
    """A /proc where only LIVE_PID runs (start time 7)."""
    if path.endswith("boot_id"):
        return BOOT
    if path == f"/proc/{LIVE_PID}/stat":
        return f"{LIVE_PID} (rehearse) S " + " ".join(["0"] * 18) + " 7 0"
    raise FileNotFoundError(path)


class FakeDocker:
    def __init__(self, labelled: dict[str, list[str]] | None = None, nodes: dict[str, list[str]] | None = None,
                 fail: set[str] | None = None) -> None:
        self.calls: list[str] = []
        self._labelled, self._nodes, self.fail = labelled or {}, nodes or {}, fail or set()

    def labelled(self, owner: str | None) -> list[str]:
        if owner is None:
            return sorted(c for cs in self._labelled.values() for c in cs)
        return self._labelled.get(owner, [])

    def cluster_nodes(self, name: str) -> list[str]:
        return self._nodes.get(name, [])

    def clusters(self) -> list[str]:
        return sorted(self._nodes)

    def _do(self, call: str) -> bool:
        self.calls.append(call)
        return call not in self.fail

    def unpause_and_remove(self, containers: list[str]) -> bool:
        return self._do(f"unpause+rm {' '.join(containers)}") if containers else True

    def unpause(self, container: str) -> bool:
        return self._do(f"unpause {container}")

    def remove_netem(self, node: str, device: str) -> bool:
        return self._do(f"tc qdisc del {node} {device}")

    def delete_cluster(self, name: str) -> bool:
        return self._do(f"kind delete {name}")

    def delete_namespace(self, name: str, kubeconfig: str) -> bool:
        return self._do(f"kubectl delete namespace {name}")

    def delete_namespace_in(self, name: str, cluster: str) -> bool:
        return self._do(f"kubectl delete namespace {name} in {cluster}")

    def drop_database(self, name: str, admin_dsn: str) -> bool:
        return self._do(f"drop {name} via {admin_dsn}")

    def remove_dir(self, path: str) -> bool:
        return self._do(f"rm -r {Path(path).name}")

    def untag(self, ref: str) -> bool:
        return self._do(f"rmi {ref}")

    def untag_registry(self, address: str, owner: str) -> bool:
        return self._do(f"rmi {address}/* of {owner}")

    def unconfigure_node(self, node: str, address: str) -> bool:
        return self._do(f"rm certs.d/{address} on {node}")


def write(directory: Path, owner: str, pid: int, *resources: Resource, kept: bool = False) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{owner}.json"
    record = RunRecord(owner, ProcessIdentity(pid, "7", BOOT), 0.0, kept, list(resources))
    runstate.write_atomically(path, record.to_json())
    return path


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    return tmp_path / "runs"


def reap(runs: Path, docker: FakeDocker, **kw: object) -> list[cleanup.Outcome]:
    return cleanup.reap(runs, docker, read=proc, **kw)  # type: ignore[arg-type]


def test_a_run_killed_during_a_fault_is_unpaused_and_removed_in_order(runs: Path, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kc"
    kubeconfig.write_text("k")
    path = write(runs, "rehearsal-dead0001", DEAD_PID, Resource("temp-dir", str(tmp_path / "work")),
                 Resource("image-tag", "127.0.0.1:5000/demo:prod"), Resource("registry-tags", "127.0.0.1:5000"),
                 Resource("node-registry", "node-cp", "127.0.0.1:5000"),
                 Resource("cluster", "rehearsal"), Resource("container", "pg1"),
                 Resource("namespace", "rr-a-dead0001", str(kubeconfig)), Resource("database", "rr_a_dead0001"))
    docker = FakeDocker(labelled={"rehearsal-dead0001": ["pg1", "reg-unrecorded"]},
                        nodes={"rehearsal": ["node-cp"]})
    [outcome] = reap(runs, docker)
    # The namespace goes with the cluster; the database with its Postgres container. Containers (a
    # paused Postgres, a registry killed before it was recorded) and nodes are unpaused before removal.
    # Tags naming the dead run's registry go while its container still holds the port.
    assert docker.calls == ["rmi 127.0.0.1:5000/* of rehearsal-dead0001", "rm certs.d/127.0.0.1:5000 on node-cp",
                            "unpause+rm pg1", "unpause+rm reg-unrecorded", "unpause+rm node-cp",
                            "kind delete rehearsal", "rm -r work", "rmi 127.0.0.1:5000/demo:prod"]
    assert outcome.why == f"pid {DEAD_PID} is gone" and not outcome.left
    assert not path.exists() and not path.with_suffix(".lock").exists()


def test_a_live_run_is_never_touched(runs: Path) -> None:
    path = write(runs, "rehearsal-live0001", LIVE_PID, Resource("cluster", "rehearsal"), Resource("container", "c"))
    docker = FakeDocker(labelled={"rehearsal-live0001": ["c"]})
    assert reap(runs, docker) == [] and docker.calls == [] and path.exists()


def test_a_run_whose_lock_is_held_is_alive_even_if_its_pid_looks_gone(runs: Path) -> None:
    path = write(runs, "rehearsal-lock0001", DEAD_PID, Resource("container", "c"))
    lock = runstate.try_lock(path.with_suffix(".lock"))  # e.g. a run in another pid namespace
    try:
        docker = FakeDocker()
        assert reap(runs, docker) == [] and docker.calls == []
    finally:
        assert lock is not None
        lock.close()


def test_a_kept_run_is_left_to_an_explicit_cleanup(runs: Path) -> None:
    write(runs, "rehearsal-kept0001", DEAD_PID, Resource("cluster", "rehearsal"), kept=True)
    docker = FakeDocker()
    assert reap(runs, docker) == []  # the start of a run never removes what --keep-cluster kept
    [outcome] = reap(runs, docker, include_kept=True)  # `rehearse cleanup` does
    assert docker.calls == ["kind delete rehearsal"] and outcome.removed == ["cluster rehearsal"]


def test_a_reused_cluster_is_not_the_dead_runs_to_delete(runs: Path, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kc"
    kubeconfig.write_text("k")
    write(runs, "rehearsal-reus0001", DEAD_PID, Resource("uses-cluster", "rehearsal"),
          Resource("namespace", "rr-a-reus0001", str(kubeconfig)))
    docker = FakeDocker(nodes={"rehearsal": ["node-cp"]})
    reap(runs, docker)
    assert docker.calls == ["kubectl delete namespace rr-a-reus0001"]  # its namespace only


def test_a_cluster_a_live_run_holds_is_left_and_the_record_kept(runs: Path) -> None:
    path = write(runs, "rehearsal-dead0002", DEAD_PID, Resource("cluster", "rehearsal"), Resource("container", "c"))
    lock_path = runstate.cluster_lock_path("rehearsal", runs)
    lock_path.parent.mkdir(parents=True)
    lock = runstate.try_lock(lock_path)  # a live run holds the name (it waited for it, or reuses it)
    try:
        [outcome] = reap(runs, docker := FakeDocker())
    finally:
        assert lock is not None
        lock.close()
    assert docker.calls == ["unpause+rm c"]
    assert outcome.left == ["cluster rehearsal: in use by a live run"] and outcome.removed == ["container c"]
    remaining = runstate.read_record(path)
    assert remaining is not None and remaining.resources == [Resource("cluster", "rehearsal")]  # retried later


def test_a_database_on_the_users_server_needs_its_admin_dsn(runs: Path) -> None:
    server = "postgresql://admin@db.internal:6543/postgres"
    write(runs, "rehearsal-dead0003", DEAD_PID, Resource("database", "rr_a_dead0003", server))
    [outcome] = reap(runs, docker := FakeDocker())
    assert docker.calls == [] and "pass --database-dsn" in outcome.left[0]
    other = "postgresql://admin:pw@elsewhere:5432/postgres"
    reap(runs, docker, admin_dsn=other)
    assert docker.calls == []  # another server: never dropped there
    mine = "postgresql://admin:pw@db.internal:6543/postgres"
    [outcome] = reap(runs, docker, admin_dsn=mine)
    assert docker.calls == [f"drop rr_a_dead0003 via {mine}"] and not outcome.left


def test_a_failed_removal_stays_recorded(runs: Path) -> None:
    path = write(runs, "rehearsal-dead0004", DEAD_PID, Resource("cluster", "rehearsal"))
    [outcome] = reap(runs, FakeDocker(fail={"kind delete rehearsal"}))
    assert outcome.removed == [] and path.exists()


def test_a_dry_run_lists_and_removes_nothing(runs: Path) -> None:
    path = write(runs, "rehearsal-dead0005", DEAD_PID, Resource("cluster", "rehearsal"), Resource("container", "c"))
    [outcome] = reap(runs, docker := FakeDocker(), dry_run=True)
    assert docker.calls == [] and path.exists()
    assert cleanup.report_lines([outcome], dry_run=True) == [
        f"run rehearsal-dead0005 (pid {DEAD_PID} is gone): would remove container c, cluster rehearsal"]


def test_all_includes_live_runs_and_unrecorded_leftovers(runs: Path) -> None:
    write(runs, "rehearsal-live0002", LIVE_PID, Resource("container", "c-live"))
    docker = FakeDocker(labelled={"rehearsal-live0002": ["c-live"], "old": ["c-old"]},
                        nodes={"rehearsal-x": ["n"], "someone-else": ["m"]})
    planned = cleanup.reap_all(runs, docker, dry_run=True)
    assert docker.calls == []
    assert [o.removed for o in planned] == [["container c-live"],
                                            ["container c-live", "container c-old", "cluster rehearsal-x"]]
    cleanup.reap_all(runs, docker)
    assert "kind delete rehearsal-x" in docker.calls and "kind delete someone-else" not in docker.calls


def test_the_quiet_reaper_says_nothing_when_nothing_was_removed(runs: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("REHEARSAL_CACHE_DIR", str(runs.parent))
    monkeypatch.setattr(cleanup, "SubprocessDocker", FakeDocker)
    cleanup.reap_quietly()
    assert capsys.readouterr().err == ""
    write(runs, "rehearsal-dead0006", DEAD_PID, Resource("container", "c"))
    cleanup.reap_quietly()
    err = capsys.readouterr().err  # the real /proc here: pid 200 gone, or a record from "another boot"
    assert err.startswith("run rehearsal-dead0006 (") and err.endswith("): removed container c\n")


def test_the_cli_lists_before_all_and_exits_1_when_something_is_left(runs: Path, monkeypatch: pytest.MonkeyPatch,
                                                                     tmp_path: Path) -> None:
    monkeypatch.setenv("REHEARSAL_CACHE_DIR", str(runs.parent))
    monkeypatch.setattr(cleanup, "SubprocessDocker", lambda: FakeDocker(labelled={"x": ["c-x"]}))
    runner = CliRunner()
    assert runner.invoke(cli, ["cleanup"]).output.strip() == "nothing to clean up: no dead run left anything"
    dry = runner.invoke(cli, ["cleanup", "--all", "--dry-run"])
    assert dry.exit_code == 0 and "(unrecorded) (--all): would remove container c-x" in dry.output
    every = runner.invoke(cli, ["cleanup", "--all"])
    assert every.output.splitlines()[:2] == ["--all: removing every run's resources, live runs included:",
                                            "run (unrecorded) (--all): would remove container c-x"]
    write(runs, "rehearsal-dead0007", DEAD_PID, Resource("database", "rr_b", "postgresql://a@h:1/p"))
    left = runner.invoke(cli, ["cleanup"])
    assert left.exit_code == 1 and "left database rr_b on postgresql://a@h:1/p" in left.output


def test_faults_a_dead_run_left_on_a_reused_cluster_are_undone_first(runs: Path) -> None:
    write(runs, "rehearsal-reus0002", DEAD_PID, Resource("uses-cluster", "shared"),
          Resource("netem", "shared-control-plane", "eth0"), Resource("paused", "shared-control-plane"))
    docker = FakeDocker(nodes={"shared": ["shared-control-plane"]})
    reap(runs, docker)
    assert docker.calls == ["unpause shared-control-plane", "tc qdisc del shared-control-plane eth0"]


def test_a_fault_is_recorded_while_it_is_in_place(tmp_path: Path) -> None:
    state = runstate.RunState("rehearsal-0000f00d", tmp_path).begin()
    on_disk: list[list[Resource]] = []

    def docker(cmd: list[str]) -> subprocess.CompletedProcess[str]:
        record = runstate.read_record(state.path)
        assert record is not None
        on_disk.append(record.resources)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    pause = faults.PauseContainer("pg1", "Postgres", run=docker, state=state)
    netem = faults.NetworkLatency(["node1"], 100, run=docker, state=state)
    pause.apply()
    netem.apply()
    # Recorded before the docker command ran: a kill -9 in between leaves it to the reaper.
    assert on_disk == [[Resource("paused", "pg1")], [Resource("paused", "pg1"), Resource("netem", "node1", "eth0")]]
    netem.revert()
    pause.revert()
    assert state.record.resources == []


def test_the_tags_a_run_pushed_are_untagged_at_its_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = runstate.RunState("rehearsal-0000cafe", tmp_path).begin()
    infra = factory.Infrastructure(cluster=None, database=None, run=state)  # type: ignore[arg-type]
    infra.record(runstate.IMAGE_TAG, "127.0.0.1:5000/demo:abc")
    infra.record(runstate.IMAGE_TAG, "127.0.0.1:5000/demo:prod")
    untagged: list[str] = []
    infra.record(runstate.REGISTRY_TAGS, "127.0.0.1:5000")
    monkeypatch.setattr(cleanup, "untag", lambda ref: untagged.append(ref) or ref.endswith("abc"))
    monkeypatch.setattr(cleanup, "untag_registry", lambda address: untagged.append(f"{address}/*") or True)
    factory.remove_image_tags(infra, "127.0.0.1:5000")
    assert untagged == ["127.0.0.1:5000/demo:abc", "127.0.0.1:5000/demo:prod", "127.0.0.1:5000/*"]
    # The one that could not be untagged stays recorded, for the reaper.
    assert state.record.resources == [Resource(runstate.IMAGE_TAG, "127.0.0.1:5000/demo:prod")]


def test_a_namespace_in_a_cluster_a_live_run_holds_is_removed_on_its_own(runs: Path, tmp_path: Path) -> None:
    """The dead run created the cluster, but a live run now waits on or reuses that name: the cluster
    stays, so its namespace cannot "go with the cluster" and is deleted (and forgotten) by itself."""
    kubeconfig = tmp_path / "kc"
    kubeconfig.write_text("k")
    write(runs, "rehearsal-dead0002", DEAD_PID, Resource("cluster", "rehearsal"),
          Resource("namespace", "rr-a-dead0002", str(kubeconfig)))
    path = runstate.cluster_lock_path("rehearsal", runs)
    path.parent.mkdir(parents=True, exist_ok=True)
    live = runstate.try_lock(path)  # another open file description: flock treats it as another run
    try:
        docker = FakeDocker(nodes={"rehearsal": ["node-cp"]})
        [outcome] = reap(runs, docker)
    finally:
        assert live is not None
        live.close()
    assert docker.calls == ["kubectl delete namespace rr-a-dead0002"]
    assert outcome.left == ["cluster rehearsal: in use by a live run"]


def test_the_sessions_own_cluster_lock_elsewhere_does_not_free_a_name_here(runs: Path, tmp_path: Path) -> None:
    """Under `make test` the pytest session holds `rehearsal` in the real cache; the reaper's gate for
    another runs directory must still see a live holder there."""
    release = runstate.lock_cluster("rehearsal", False, 1, print, tmp_path / "session" / "runs")
    try:
        test_a_namespace_in_a_cluster_a_live_run_holds_is_removed_on_its_own(runs, tmp_path)
    finally:
        release()


@pytest.mark.parametrize(("clusters", "calls", "left"), [
    pytest.param({}, [], [], id="cluster-gone-with-it"),
    pytest.param({"shared": ["node"]}, ["kubectl delete namespace rr-a-dead0009 in shared"], [], id="reached-by-name"),
])
def test_a_namespace_whose_kubeconfig_is_gone_is_reached_through_its_kind_cluster(
        runs: Path, tmp_path: Path, clusters: dict[str, list[str]], calls: list[str], left: list[str]) -> None:
    """The dead run's temp dir (and its kubeconfig) went first, e.g. removed by hand: a namespace in a kind
    cluster that no longer exists is gone with it; in one that does, kind gives a kubeconfig again."""
    write(runs, "rehearsal-dead0009", DEAD_PID, Resource("uses-cluster", "shared"),
          Resource("namespace", "rr-a-dead0009", str(tmp_path / "gone" / "kubeconfig")))
    docker = FakeDocker(nodes=clusters)
    [outcome] = reap(runs, docker)
    assert docker.calls == calls and outcome.left == left
    assert runstate.records(runs) == []


def test_a_namespace_whose_kubeconfig_is_gone_on_a_cluster_not_of_kind_is_left_and_said(runs: Path, tmp_path: Path) -> None:
    path = write(runs, "rehearsal-dead0010", DEAD_PID, Resource("namespace", "rr-a-dead0010", str(tmp_path / "kc")))
    [outcome] = reap(runs, FakeDocker())
    assert outcome.left == [f"namespace rr-a-dead0010: kubeconfig {tmp_path / 'kc'} is gone"] and path.exists()


def test_a_record_kept_for_a_retry_keeps_the_cluster_it_ran_on(runs: Path, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kc"
    kubeconfig.write_text("k")
    path = write(runs, "rehearsal-dead0011", DEAD_PID, Resource("uses-cluster", "shared"),
                 Resource("namespace", "rr-a-dead0011", str(kubeconfig)), Resource("temp-dir", str(tmp_path / "w")))
    reap(runs, FakeDocker(nodes={"shared": ["node"]}, fail={"kubectl delete namespace rr-a-dead0011"}))
    record = runstate.read_record(path)
    assert record is not None and record.resources == [Resource("uses-cluster", "shared"),
                                                       Resource("namespace", "rr-a-dead0011", str(kubeconfig))]
