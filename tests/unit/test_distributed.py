"""harness/distributed.py without a cluster: the cross-process infrastructure lock (real flock, real
processes), the journals of this run, the handoff, and a worker's attached providers."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness import distributed
from harness.distributed import AttachedPostgres, FileInfraLock, Handoff, attach_build, this_run_journals
from harness.journal import Journal
from harness.options import SessionOptions
from harness.providers.cluster import ExistingClusterProvider
from harness.report import write_scenario_reports
from harness.teardown import Interrupted, clear_stop, request_stop

REPO = Path(__file__).resolve().parents[2]
HOLDER = """
import sys, time
from pathlib import Path
from harness.distributed import FileInfraLock
with FileInfraLock(Path(sys.argv[1]), poll_s=0.02).hold(sys.argv[2] == "exclusive") as waited:
    print(f"held {time.time()}", flush=True)
    sys.stdin.readline()
print(f"released {time.time()}", flush=True)
"""


class Holder:
    """Another process holding the lock until told to let go."""

    def __init__(self, directory: Path, mode: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(directory), mode], cwd=REPO, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def held_at(self) -> float:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()
        assert line and line[0] == "held", line
        return float(line[1])

    def release(self) -> float:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline().split()
        self.proc.wait(10)
        return float(line[1])

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def holders() -> list[Holder]:
    started: list[Holder] = []
    yield started
    for h in started:
        h.kill()


def _scenario(*faults: str) -> SimpleNamespace:
    return SimpleNamespace(name="s", faults=[SimpleNamespace(kind=k) for k in faults])


def test_shared_holds_of_two_processes_overlap(tmp_path: Path, holders: list[Holder]) -> None:
    holders.append(other := Holder(tmp_path, "shared"))
    other.held_at()
    with FileInfraLock(tmp_path, poll_s=0.02).for_scenario(_scenario()) as (mode, waited):
        assert mode == "shared" and waited < 1.0


def test_a_fault_scenario_waits_for_another_process_and_says_how_long(tmp_path: Path, holders: list[Holder]) -> None:
    from harness.scenario.models import FaultKind  # noqa: PLC0415

    holders.append(other := Holder(tmp_path, "shared"))
    other.held_at()
    released: list[float] = []
    releaser = threading.Timer(0.6, lambda: released.append(other.release()))
    releaser.start()
    with FileInfraLock(tmp_path, poll_s=0.02).for_scenario(_scenario(FaultKind.PAUSE_POSTGRES)) as (mode, waited):
        got = time.time()
        assert mode == "exclusive" and waited >= 0.5
    releaser.join()
    assert got >= released[0]  # the other process had let go before the exclusive hold began


def test_an_exclusive_hold_keeps_other_processes_out_until_released(tmp_path: Path, holders: list[Holder]) -> None:
    lock = FileInfraLock(tmp_path, poll_s=0.02)
    with lock.hold(exclusive=True):
        holders.append(other := Holder(tmp_path, "shared"))
        time.sleep(0.5)
        released = time.time()
    assert other.held_at() >= released


def test_a_waiting_writer_goes_before_readers_that_come_after_it(tmp_path: Path, holders: list[Holder]) -> None:
    """flock alone would let reader B in beside reader A while the writer waits; the gate does not."""
    holders.append(a := Holder(tmp_path, "shared"))
    a.held_at()
    times: dict[str, float] = {}

    def writer() -> None:
        with FileInfraLock(tmp_path, poll_s=0.02).hold(exclusive=True):
            times["writer"] = time.time()
            time.sleep(0.3)
            times["writer_done"] = time.time()

    w = threading.Thread(target=writer)
    w.start()
    time.sleep(0.3)  # the writer waits for A now, holding the gate
    holders.append(b := Holder(tmp_path, "shared"))
    time.sleep(0.3)
    a.release()
    w.join(10)
    assert b.held_at() >= times["writer_done"] > times["writer"]


def test_a_stop_request_ends_the_wait(tmp_path: Path, holders: list[Holder]) -> None:
    """In a thread (`-j`-style waits check for a stop; in the main thread the signal handler raises)."""
    holders.append(other := Holder(tmp_path, "exclusive"))
    other.held_at()
    outcome: list[BaseException] = []

    def wait() -> None:
        try:
            with FileInfraLock(tmp_path, poll_s=0.02).hold(exclusive=False):
                pass
        except BaseException as exc:  # noqa: BLE001 (the test looks at what it was)
            outcome.append(exc)

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.3)
    assert waiter.is_alive() and not outcome  # waiting while the other process holds it exclusively
    request_stop(int(signal.SIGTERM))
    try:
        waiter.join(5)
        assert not waiter.is_alive()
        assert len(outcome) == 1 and isinstance(outcome[0], Interrupted) and outcome[0].signum == signal.SIGTERM
    finally:
        clear_stop()


def test_this_run_journals_are_the_report_files_of_this_run_only(tmp_path: Path) -> None:
    for name, run in (("b", "run-1"), ("a", "run-1"), ("c", "run-0")):
        write_scenario_reports(Journal(scenario=name, expect="READY", verdict="READY", run_id=run), tmp_path / name)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "report.json").write_text("{not json")
    assert [j.scenario for j in this_run_journals(tmp_path, "run-1")] == ["a", "b"]


def test_a_worker_attaches_to_the_handed_over_cluster_and_postgres_and_starts_nothing(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("{}")
    h = Handoff(run_id="rr-x-abc", cluster="", kubeconfig=str(kubeconfig),
                admin_dsn="postgresql://rehearsal:pw@127.0.0.1:5999/postgres", cluster_host="172.18.0.9",
                cluster_port=5432, postgres_container="c0ffee", lock_dir=str(tmp_path))
    assert Handoff.from_input(h.to_input()) == h
    with ExitStack() as stack:
        infra = attach_build(h)(SessionOptions(), stack, "rr-x-worker", None)
    assert isinstance(infra.cluster, ExistingClusterProvider) and infra.cluster.kubeconfig == kubeconfig
    db = infra.database
    assert isinstance(db, AttachedPostgres)
    assert (db.admin_dsn, db.cluster_host, db.cluster_port, db.container_id) == (
        h.admin_dsn, "172.18.0.9", 5432, "c0ffee")
    # The dsn of a scenario's database, as pods reach it: the controller's address, not the host's port.
    assert db.stop() is None and infra.cluster.delete() is None


def test_the_handoff_names_the_controllers_kind_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.providers.cluster import KindProvider  # noqa: PLC0415

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    cluster = KindProvider("rr-x")
    db = SimpleNamespace(admin_dsn="postgresql://u:p@h:1/postgres", cluster_host="10.0.0.1", cluster_port=5432,
                         container_id=None)
    h = distributed.handoff(SimpleNamespace(cluster=cluster, database=db), "rr-x-abc", tmp_path)  # type: ignore[arg-type]
    assert (h.cluster, h.kubeconfig, h.postgres_container) == ("rr-x", str(cluster.kubeconfig), "")
