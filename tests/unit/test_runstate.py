"""Run state: who is provably dead (fake /proc readings), atomic records, and the locks, held by real
second processes (a lock the kernel releases on kill -9 is the liveness proof)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness import runstate
from harness.runstate import ProcessIdentity, Resource, RunRecord, RunState

BOOT = "4b1c0f4e-boot"
STAT = "4242 (python3 (x) y) S 1 4242 4242 0 -1 4194560 1 0 0 0 3 1 0 0 20 0 1 0 {start} 1000 10"


def fake_proc(processes: dict[int, str], boot: str = BOOT) -> runstate.Reader:
    """A /proc with these pids (pid -> start time) and this boot id."""
    def read(path: str) -> str:
        if path == "/proc/sys/kernel/random/boot_id":
            return boot + "\n"
        pid = int(path.split("/")[2])
        if pid not in processes:
            raise FileNotFoundError(path)
        return STAT.format(start=processes[pid])
    return read


def test_start_time_is_field_22_counted_after_the_command_name() -> None:
    # The command name holds spaces and parentheses: counting from the first ')' would be wrong.
    assert runstate.start_time(4242, fake_proc({4242: "987654"})) == "987654"
    assert runstate.start_time(7, fake_proc({})) is None


def test_the_real_proc_names_this_process() -> None:
    me = runstate.this_process()
    assert me.pid == os.getpid() and me.start_time.isdigit() and me.boot_id == runstate.boot_id()
    assert runstate.why_dead(me) is None


@pytest.mark.parametrize(("processes", "boot", "why"), [
    ({4242: "100"}, BOOT, None),                                          # same pid, same start: may be alive
    ({}, BOOT, "pid 4242 is gone"),
    ({4242: "555"}, BOOT, "pid 4242 now belongs to another process"),     # pid reused
    ({4242: "100"}, "other-boot", "the machine rebooted since"),          # same numbers, another boot
])
def test_dead_or_alive(processes: dict[int, str], boot: str, why: str | None) -> None:
    recorded = ProcessIdentity(4242, "100", BOOT)
    assert runstate.why_dead(recorded, fake_proc(processes, boot)) == why


def test_the_password_is_never_recorded() -> None:
    assert runstate.without_password("postgresql://admin:s3cr%40t@db.internal:6543/postgres") == \
        "postgresql://admin@db.internal:6543/postgres"
    assert runstate.without_password("postgresql://admin@h/p") == "postgresql://admin@h/p"


def test_names_are_unique_per_run_deterministic_and_fit_63_characters() -> None:
    longest = "a" * 40  # the scenario schema's limit
    assert runstate.namespace_name("demo-app", "1a2b3c4d") == "rr-demo-app-1a2b3c4d"
    assert runstate.database_name("demo-app", "1a2b3c4d") == "rr_demo_app_1a2b3c4d"
    assert runstate.namespace_name("demo", "1a2b3c4d") != runstate.namespace_name("demo", "5e6f7a8b")
    for name in (longest, "b" * 80):
        assert len(runstate.namespace_name(name, "1a2b3c4d")) <= 63
        assert len(runstate.database_name(name, "1a2b3c4d").encode()) <= 63
        assert runstate.namespace_name(name, "1a2b3c4d").endswith("-1a2b3c4d")


def test_a_record_round_trips(tmp_path: Path) -> None:
    rec = RunRecord("rehearsal-1a2b3c4d", ProcessIdentity(1, "2", "3"), 4.0, kept=True,
                    resources=[Resource("cluster", "rehearsal"), Resource("database", "rr_x", "postgresql://a@h/p")])
    assert RunRecord.from_json(rec.to_json()) == rec
    (tmp_path / "bad.json").write_text("{half")
    assert runstate.read_record(tmp_path / "bad.json") is None


def test_writes_are_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "r.json"
    runstate.write_atomically(path, "old")
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        runstate.write_atomically(path, "new")
    assert path.read_text() == "old"  # a failed write never leaves half a record
    monkeypatch.undo()
    runstate.write_atomically(path, "new")
    assert path.read_text() == "new" and [p.name for p in tmp_path.iterdir() if p.name != "r.json"] == \
        [p.name for p in tmp_path.glob(".r.json.*.tmp")]


def test_a_run_records_as_it_goes_and_leaves_no_record_when_all_is_removed(tmp_path: Path) -> None:
    run = RunState("rehearsal-1a2b3c4d", tmp_path).begin()
    assert run.run_id == "1a2b3c4d"
    run.add("cluster", "rehearsal")
    run.add("cluster", "rehearsal")  # recorded once
    doc = json.loads(run.path.read_text())
    assert doc["process"]["pid"] == os.getpid() and doc["resources"] == [
        {"kind": "cluster", "name": "rehearsal", "where": ""}]
    run.forget("cluster", "rehearsal")
    run.add("uses-cluster", "shared")  # someone else's cluster: nothing for a reaper to remove
    run.end()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kept", [False, True])
def test_a_record_with_leftovers_or_kept_stays_for_the_reaper(tmp_path: Path, kept: bool) -> None:
    run = RunState("rehearsal-1a2b3c4d", tmp_path).begin()
    if kept:
        run.keep()
    else:
        run.add("container", "abc")
    run.end()
    assert runstate.read_record(run.path) is not None
    # ... and, its process being this live one, the record is not reapable yet.
    with runstate.claim_if_dead(run.path) as claimed:
        assert claimed is None


# ── two real processes ───────────────────────────────────────────────────────
Holder = Callable[..., "subprocess.Popen[str]"]
HOLDER = """
import sys, time
from pathlib import Path
from harness import runstate
directory, owner, cluster, shared = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4] == "shared"
run = runstate.RunState(owner, directory).begin()
if cluster:
    run.add("cluster", cluster)
    runstate.lock_cluster(cluster, shared, 5, print, directory)
print("ready", flush=True)
time.sleep(120)
"""


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[Holder]:
    started: list[subprocess.Popen[str]] = []

    def start(owner: str, cluster: str = "", shared: bool = False) -> subprocess.Popen[str]:
        proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(HOLDER), str(tmp_path), owner, cluster,
                                 "shared" if shared else "exclusive"], stdout=subprocess.PIPE, text=True,
                                cwd=Path(__file__).resolve().parents[2])
        started.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        return proc

    yield start
    for proc in started:
        proc.kill()
        proc.wait()


def test_a_live_run_holds_its_lock_and_is_dead_after_kill_9(tmp_path: Path, holder: Holder) -> None:
    proc = holder("rehearsal-0000live")
    path = tmp_path / "rehearsal-0000live.json"
    with runstate.claim_if_dead(path) as claimed:
        assert claimed is None  # its lock is held
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with runstate.claim_if_dead(path) as claimed:
        assert claimed is not None
        record, why = claimed
        assert record.owner == "rehearsal-0000live" and why == f"pid {proc.pid} is gone"
        # While one reaper holds it, a second one cannot claim the same run.
        with runstate.claim_if_dead(path) as second:
            assert second is None


def test_a_second_run_waits_for_the_cluster_name_and_names_the_holder(tmp_path: Path, holder: Holder) -> None:
    proc = holder("rehearsal-00000one", "rehearsal")
    said: list[str] = []
    with pytest.raises(RuntimeError, match=f"still held by run rehearsal-00000one \\(pid {proc.pid}\\) after 0s"):
        runstate.lock_cluster("rehearsal", False, 0.3, said.append, tmp_path, poll_s=0.05)
    assert said == [f"waiting for run rehearsal-00000one (pid {proc.pid}) to release cluster rehearsal"]
    os.kill(proc.pid, signal.SIGKILL)  # the kernel releases the lock: the waiter gets the name
    proc.wait()
    release = runstate.lock_cluster("rehearsal", False, 5, said.append, tmp_path, poll_s=0.05)
    assert "rehearsal" in runstate.held_clusters(tmp_path)
    release()
    assert "rehearsal" not in runstate.held_clusters(tmp_path)


def test_runs_reusing_a_cluster_share_its_name_and_a_creator_waits_for_them(tmp_path: Path,
                                                                            holder: Holder) -> None:
    holder("rehearsal-0000reus", "shared-c", shared=True)
    release = runstate.lock_cluster("shared-c", True, 1, print, tmp_path, poll_s=0.05)  # shared + shared: fine
    release()
    with pytest.raises(RuntimeError, match="still held"):
        runstate.lock_cluster("shared-c", False, 0.2, lambda line: None, tmp_path, poll_s=0.05)


def test_the_cluster_lock_is_reentrant_within_one_process(tmp_path: Path) -> None:
    outer = runstate.lock_cluster("c1", False, 1, print, tmp_path)
    inner = runstate.lock_cluster("c1", True, 0.1, print, tmp_path)  # a nested session: no self-deadlock
    inner()
    assert "c1" in runstate.held_clusters(tmp_path)
    outer()
    assert "c1" not in runstate.held_clusters(tmp_path)


def test_a_cluster_name_held_in_another_locks_directory_is_not_held_here(tmp_path: Path) -> None:
    """The session's own lock (in the real cache) must not make a name look held in another directory,
    e.g. the reaper's decisions in a test, or a REHEARSAL_CACHE_DIR set later."""
    elsewhere = tmp_path / "a" / "runs"
    here = tmp_path / "b" / "runs"
    release = runstate.lock_cluster("rehearsal", False, 1, print, elsewhere)
    try:
        assert "rehearsal" in runstate.held_clusters(elsewhere)
        assert "rehearsal" not in runstate.held_clusters(here)
    finally:
        release()
