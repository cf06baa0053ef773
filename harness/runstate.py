"""Run state: what each run owns, written down as it is created, so that the
leftovers of a run killed with `kill -9` can be found, and only those.

One record per run, `<cache dir>/runs/<owner>.json`, rewritten atomically
(tmp + rename) each time the run creates a resource, and BEFORE the resource
exists: a run killed during `kind create` still names the cluster it was
creating. The run holds an fcntl lock on `<owner>.lock` for its lifetime; the
kernel releases it when the process dies, however it dies. A run is provably
dead when its lock is free AND (its pid is gone, or that pid now belongs to
another process (other start time), or the machine rebooted (other boot id)).
A free lock alone is not enough (a record written by a process that has not
taken the lock yet); a dead-looking pid alone is not enough either (a pid
namespace). Nothing secret is ever written: a DSN is stored without password.

A cluster name is also a lock (`locks/cluster-<name>.lock`): a run that may
create and delete a kind cluster holds it exclusively for its lifetime, a run
that reuses one holds it shared. A second run with the same default name
waits (it says so, naming the holder) instead of deleting the first run's
cluster or failing on "already exists".
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit, urlunsplit

# Kinds of resources a run records (the reaper has one remover per kind).
CLUSTER = "cluster"              # a kind cluster this run creates (recorded before `kind create`)
USES_CLUSTER = "uses-cluster"    # a kind cluster this run reuses: never deleted for it
CONTAINER = "container"          # a container this run started (Postgres, registry)
NAMESPACE = "namespace"          # where = the kubeconfig that reaches it
DATABASE = "database"            # database and role of the same name; where = server DSN without password
TEMP_DIR = "temp-dir"
PAUSED = "paused"                # a container a fault paused (on any cluster: a reused one too)
IMAGE_TAG = "image-tag"          # a local tag this run made to push to its registry
REGISTRY_TAGS = "registry-tags"  # every local tag naming this run's registry (name = its 127.0.0.1:<port>),
                                 # also those runbook commands made (`docker tag ... ${REGISTRY}/...`)
NODE_REGISTRY = "node-registry"  # a node's containerd told about this run's registry; where = the address
NETEM = "netem"                  # a node a fault added a netem qdisc to; where = the device

Reader = Callable[[str], str]  # reads a /proc file; raises OSError when it does not exist


def read_proc(path: str) -> str:
    with open(path, encoding="ascii", errors="replace") as f:
        return f.read()


def runs_dir() -> Path:
    """Read at call time (not import time): tests and users may set REHEARSAL_CACHE_DIR late."""
    base = os.environ.get("REHEARSAL_CACHE_DIR") or str(Path.home() / ".cache" / "rollback-rehearsal")
    return Path(base) / "runs"


# ── per-run names ────────────────────────────────────────────────────────────
def new_owner(cluster_name: str) -> str:
    """A new run's owner id, `<cluster name>-<8 hex>` (its run id is the hex part)."""
    return f"{cluster_name}-{uuid.uuid4().hex[:8]}"


NAME_LIMIT = 63  # a Kubernetes namespace (DNS label) and a Postgres identifier (bytes)


def resource_name(scenario: str, run_id: str) -> str:
    """`<scenario>-<run id>`: unique per run (two runs on one cluster or server never share a name),
    the same for every use within the run, and at most 63 - len("rr-") characters."""
    return f"{scenario[:NAME_LIMIT - 4 - len(run_id)]}-{run_id}"


def namespace_name(scenario: str, run_id: str) -> str:
    return "rr-" + resource_name(scenario, run_id)


def database_name(scenario: str, run_id: str) -> str:
    """The database and role of a scenario (what DatabaseProvider.create_database(resource_name) makes)."""
    return "rr_" + resource_name(scenario, run_id).replace("-", "_")


# ── process identity ─────────────────────────────────────────────────────────
@dataclass(frozen=True)
class ProcessIdentity:
    """A pid alone is reused; pid + its start time (clock ticks since boot) + the boot id is not."""

    pid: int
    start_time: str
    boot_id: str


def boot_id(read: Reader = read_proc) -> str:
    return read("/proc/sys/kernel/random/boot_id").strip()


def start_time(pid: int, read: Reader = read_proc) -> str | None:
    """Field 22 of /proc/<pid>/stat; None when no such process. The command name (field 2) may hold
    spaces and parentheses, so the fields are counted from the LAST ')'."""
    try:
        stat = read(f"/proc/{pid}/stat")
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return fields[22 - 3]  # fields[0] is field 3 (state)


def this_process(read: Reader = read_proc) -> ProcessIdentity:
    pid = os.getpid()
    return ProcessIdentity(pid, start_time(pid, read) or "", boot_id(read))


def why_dead(recorded: ProcessIdentity, read: Reader = read_proc) -> str | None:
    """Why the recorded process is provably gone, or None if it may still be running."""
    if recorded.boot_id != boot_id(read):
        return "the machine rebooted since"
    now = start_time(recorded.pid, read)
    if now is None:
        return f"pid {recorded.pid} is gone"
    if now != recorded.start_time:
        return f"pid {recorded.pid} now belongs to another process"
    return None


def without_password(dsn: str) -> str:
    """How to reach a server, never the secret: the password is dropped from the DSN."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = (parts.username or "") + "@" + parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=netloc))


# ── the record ───────────────────────────────────────────────────────────────
@dataclass(frozen=True)
class Resource:
    kind: str
    name: str
    where: str = ""  # how to reach it (kubeconfig, DSN without password); "" when implied


@dataclass
class RunRecord:
    owner: str
    process: ProcessIdentity
    started_at: float
    kept: bool = False  # --keep-cluster: left on purpose; only an explicit `rehearse cleanup` removes it
    resources: list[Resource] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> RunRecord:
        doc = json.loads(text)
        return cls(owner=doc["owner"], process=ProcessIdentity(**doc["process"]), started_at=doc["started_at"],
                   kept=doc.get("kept", False), resources=[Resource(**r) for r in doc.get("resources", [])])


def write_atomically(path: Path, text: str) -> None:
    """A reader (the reaper) sees the old record or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_record(path: Path) -> RunRecord | None:
    try:
        return RunRecord.from_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError):  # gone meanwhile, or not ours to understand
        return None


def try_lock(path: Path, shared: bool = False) -> IO[str] | None:
    """The open, locked file, or None when another open file holds a conflicting lock."""
    f = open(path, "a+", encoding="utf-8")
    try:
        fcntl.flock(f, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        return None
    return f


# ── the live run ─────────────────────────────────────────────────────────────
class RunState:
    """This process's record: opened (and locked) by `begin`, updated as resources come and go,
    removed by `end` when nothing is left to clean up (else left for the reaper)."""

    def __init__(self, owner: str, directory: Path | None = None, read: Reader = read_proc) -> None:
        self.owner = owner
        self.directory = directory or runs_dir()
        self.path = self.directory / f"{owner}.json"
        self.lock_path = self.directory / f"{owner}.lock"
        self.record = RunRecord(owner, this_process(read), time.time())
        self._lock: IO[str] | None = None
        # Scenarios rehearsed side by side (`-j N`) record and forget in several threads: one writer at a time.
        self._mutex = threading.RLock()

    @property
    def run_id(self) -> str:
        """The part of the owner that is unique per run (names of namespaces and databases)."""
        return self.owner.rsplit("-", 1)[-1]

    def begin(self) -> RunState:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = try_lock(self.lock_path)
        if self._lock is None:  # owner ids are random: only a bug or a copied id gets here
            raise RuntimeError(f"run state {self.lock_path} is locked by another process")
        self._save()
        return self

    def _save(self) -> None:
        write_atomically(self.path, self.record.to_json())

    def add(self, kind: str, name: str, where: str = "") -> None:
        """Record BEFORE creating: a kill during the creation still leaves the name to the reaper."""
        resource = Resource(kind, name, where)
        with self._mutex:
            if resource not in self.record.resources:
                self.record.resources.append(resource)
                self._save()

    def forget(self, kind: str, name: str) -> None:
        """After a successful removal: nothing left for the reaper to do about it."""
        with self._mutex:
            self.record.resources = [r for r in self.record.resources if (r.kind, r.name) != (kind, name)]
            self._save()

    def keep(self) -> None:
        with self._mutex:
            self.record.kept = True
            self._save()

    def end(self) -> None:
        """Release the run. The record stays when something is still recorded (kept, or a removal
        failed): the reaper (or `rehearse cleanup`) finishes it once this process is gone."""
        # A reused cluster is not this run's to remove: it alone does not keep the record.
        if all(r.kind == USES_CLUSTER for r in self.record.resources) and not self.record.kept:
            self.path.unlink(missing_ok=True)
            self.lock_path.unlink(missing_ok=True)
        if self._lock is not None:
            self._lock.close()  # closing the file releases the flock
            self._lock = None


@contextmanager
def claim_if_dead(path: Path, read: Reader = read_proc) -> Iterator[tuple[RunRecord, str] | None]:
    """Yield (record, why it is dead) while holding its lock (so no two reapers reap the same run),
    or None when the run may be alive. The lock is released on exit."""
    lock = try_lock(path.with_suffix(".lock"))
    if lock is None:  # held: the run is alive
        yield None
        return
    try:
        record = read_record(path)
        why = None if record is None else why_dead(record.process, read)
        yield None if record is None or why is None else (record, why)
    finally:
        lock.close()


def records(directory: Path | None = None) -> list[Path]:
    directory = directory or runs_dir()
    return sorted(directory.glob("*.json")) if directory.is_dir() else []


def live_holders(resource: Resource, directory: Path | None = None, read: Reader = read_proc) -> list[RunRecord]:
    """Runs that may be alive and record this cluster (created or reused), for a message."""
    found = (read_record(p) for p in records(directory))
    return [r for r in found if r is not None and why_dead(r.process, read) is None
            and any(x.name == resource.name and x.kind in (CLUSTER, USES_CLUSTER) for x in r.resources)]


# ── the cluster-name lock ────────────────────────────────────────────────────
# Keyed by the lock file's path, not the bare name: a name is only "held" in the locks directory it was
# locked in (tests, or a REHEARSAL_CACHE_DIR set later, must not see the session's own lock).
_HELD: dict[str, tuple[IO[str], int]] = {}  # lock path -> (locked file, users in this process)


def cluster_lock_path(name: str, directory: Path | None = None) -> Path:
    return (directory or runs_dir()).parent / "locks" / f"cluster-{name}.lock"


def lock_cluster(name: str, shared: bool, timeout_s: float, say: Callable[[str], None],
                 directory: Path | None = None, poll_s: float = 1.0) -> Callable[[], None]:
    """Wait for the cluster name (saying for whom), hold it; returns the release. Re-entrant within
    one process (a nested session on the same cluster must not wait for itself)."""
    path = cluster_lock_path(name, directory)
    key = str(path)
    if key in _HELD:
        f, users = _HELD[key]
        _HELD[key] = (f, users + 1)
        return lambda: _release(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline, said = time.monotonic() + timeout_s, ""
    while (f := try_lock(path, shared)) is None:
        holder = _holder_text(name, directory)
        if holder != said:
            say(f"waiting for {holder} to release cluster {name}")
            said = holder
        if time.monotonic() > deadline:
            raise RuntimeError(f"cluster {name} still held by {holder} after {timeout_s:.0f}s. Fix: wait for that "
                               "run to finish, or pass another --cluster-name")
        time.sleep(poll_s)
    _HELD[key] = (f, 1)
    return lambda: _release(key)


def held_clusters(directory: Path | None = None) -> set[str]:
    """Cluster names this process holds in that runs directory's locks (the reaper may delete such a
    cluster for a dead run)."""
    locks = cluster_lock_path("x", directory).parent
    return {Path(k).name.removeprefix("cluster-").removesuffix(".lock") for k in _HELD if Path(k).parent == locks}


def _release(key: str) -> None:
    if key not in _HELD:
        return
    f, users = _HELD.pop(key)
    if users > 1:
        _HELD[key] = (f, users - 1)
    else:
        f.close()


def _holder_text(name: str, directory: Path | None) -> str:
    holders = live_holders(Resource(CLUSTER, name), directory)
    return ", ".join(f"run {r.owner} (pid {r.process.pid})" for r in holders) or "another run"
