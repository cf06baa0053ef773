"""`pytest -n N` (pytest-xdist): one cluster and one Postgres for every worker, one report set.

- **The controller** (the xdist process that runs no test) opens the session's infrastructure
  (`open_session`, the same options) before xdist starts its workers, and holds it, with the
  cluster-name lock, until every worker is gone; then it reaps the runs of workers that died, writes
  the run-level reports (junit.xml, summary.md, history.jsonl, run.json) once, from this run's
  report.json files, and tears the infrastructure down (also after Ctrl-C: pytest ends the session).
- **A worker** gets a `Handoff` (`node.workerinput`) and opens a session that *attaches*
  (`attach_build`): the controller's kind cluster by name and kubeconfig (never created, deleted or
  locked by the worker: the controller holds the name exclusively for the whole run), and the
  controller's Postgres by its admin DSN, the address pods reach it at and its container (which the
  `pause_postgres` fault pauses). Not `--kubeconfig` / `--database-dsn`: an "existing" cluster loads no
  image and has no nodes, so local images, node faults and the registry would not work. Each worker
  is a run of its own in harness/runstate.py (own owner, own record, own lock): what it creates
  (namespaces, databases, faults, its registry) is recorded there, so a killed worker's leftovers are
  reaped like any dead run's; its journals carry the controller's run id, and it writes only the
  per-scenario reports.
- **`FileInfraLock`**: parallel.InfraLock across processes. A scenario whose faults freeze shared
  infrastructure holds `infra.lock` exclusively (fcntl LOCK_EX), every other scenario holds it shared
  (LOCK_SH), so no fault scenario overlaps any other scenario on any worker. flock has no writer
  preference, so a second file, `gate.lock`, gives it one: a writer holds the gate while it waits,
  and readers pass the gate before they take their shared hold. Waits poll (never block in the
  kernel), so a stop request or a signal ends them.
- **The registry** (promotion scenarios) is each worker's own, started lazily by its session as
  without xdist: a scenario pushes under its own path anyway, and the controller cannot know which
  scenarios the workers will collect.
"""

from __future__ import annotations

import fcntl
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from harness import runstate
from harness.journal import Journal
from harness.options import SessionOptions
from harness.parallel import POLL_S, needs_exclusive
from harness.providers.cluster import ClusterProvider, ExistingClusterProvider, KindProvider
from harness.providers.database import ExistingDsnProvider
from harness.providers.factory import Infrastructure, remove_owned_containers
from harness.scenario.models import Scenario
from harness.teardown import check_stop

WORKERINPUT_KEY = "rollback_rehearsal"
LOCK_FILE, GATE_FILE = "infra.lock", "gate.lock"


@dataclass(frozen=True)
class Handoff:
    """What a worker needs to attach to the controller's infrastructure (plain values: execnet sends it)."""

    run_id: str               # the controller's owner: every journal's run id, and the reports'
    cluster: str              # the kind cluster's name; "" for a cluster given by --kubeconfig
    kubeconfig: str
    admin_dsn: str            # secret: it travels over the controller's pipe to its workers, never to disk
    cluster_host: str         # how pods reach that Postgres
    cluster_port: int
    postgres_container: str   # "" when the Postgres is not the controller's container (--database-dsn)
    lock_dir: str             # FileInfraLock's files

    def to_input(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_input(cls, data: dict[str, Any]) -> Handoff:
        return cls(**data)


def handoff(infra: Infrastructure, run_id: str, lock_dir: Path) -> Handoff:
    cluster, db = infra.cluster, infra.database
    return Handoff(run_id=run_id, cluster=cluster.name if isinstance(cluster, KindProvider) else "",
                   kubeconfig=str(cluster.kubeconfig), admin_dsn=db.admin_dsn, cluster_host=db.cluster_host,
                   cluster_port=db.cluster_port, postgres_container=db.container_id or "", lock_dir=str(lock_dir))


# ── a worker's providers ──────────────────────────────────────────────────────
class AttachedKindProvider(KindProvider):
    """The controller's kind cluster: images loaded and nodes listed by name, never created nor deleted."""

    def __init__(self, name: str, kubeconfig: Path, run: runstate.RunState | None) -> None:
        super().__init__(name)  # no run: KindProvider records only what it creates, and this creates nothing
        self.kubeconfig = kubeconfig
        self.attached_run = run

    def start(self) -> AttachedKindProvider:
        if not self.cluster.exists():  # the controller's teardown ran already: never create one here
            raise RuntimeError(f"kind cluster {self.name} of this pytest run is gone")
        if self.attached_run is not None:  # how the reaper reaches this worker's namespaces once the kubeconfig is gone
            self.attached_run.add(runstate.USES_CLUSTER, self.name)
        return self

    def delete(self) -> None:
        return None

    def remove_workdir(self) -> None:
        return None  # the kubeconfig is the controller's


class AttachedPostgres(ExistingDsnProvider):
    """The controller's Postgres: its databases go with its container, which a fault may pause."""

    def __init__(self, h: Handoff) -> None:
        super().__init__(h.admin_dsn, h.cluster_host, h.cluster_port)
        self._container = h.postgres_container or None

    @property
    def container_id(self) -> str | None:
        return self._container


Build = Callable[[SessionOptions, ExitStack, str, "runstate.RunState | None"], Infrastructure]


def attach_build(h: Handoff) -> Build:
    """factory.build's counterpart for a worker: the controller's cluster and Postgres."""

    def build(options: SessionOptions, stack: ExitStack, owner: str,
              run: runstate.RunState | None = None) -> Infrastructure:
        stack.callback(remove_owned_containers, owner)  # this worker's registry, should its start be interrupted
        cluster: ClusterProvider = (AttachedKindProvider(h.cluster, Path(h.kubeconfig), run).start() if h.cluster
                                    else ExistingClusterProvider(Path(h.kubeconfig)))
        infra = Infrastructure(cluster=cluster, database=AttachedPostgres(h), owner=owner, run=run)
        stack.callback(infra.deferred.drain)  # this worker's namespace/database removals, before it detaches
        return infra

    return build


# ── the cross-process readers-writer lock ─────────────────────────────────────
class FileInfraLock:
    """parallel.InfraLock's contract across processes (see the module docstring)."""

    def __init__(self, directory: Path, poll_s: float = POLL_S) -> None:
        self.directory = directory
        self.poll_s = poll_s

    def _open(self, name: str) -> IO[str]:
        return open(self.directory / name, "a+", encoding="utf-8")

    def _take(self, f: IO[str], mode: int) -> None:
        """Poll for the lock: a stop request (check_stop) or a signal ends the wait."""
        while True:
            try:
                fcntl.flock(f, mode | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                check_stop()
                time.sleep(self.poll_s)

    @contextmanager
    def hold(self, exclusive: bool) -> Iterator[float]:
        """Held for a whole rehearsal; yields the seconds waited for it."""
        t0 = time.monotonic()
        with self._open(GATE_FILE) as gate, self._open(LOCK_FILE) as lock:
            self._take(gate, fcntl.LOCK_EX)
            try:
                self._take(lock, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            finally:
                fcntl.flock(gate, fcntl.LOCK_UN)  # a writer holding the lock keeps new readers out by itself
            yield time.monotonic() - t0  # closing the file releases the hold

    @contextmanager
    def for_scenario(self, scenario: Scenario) -> Iterator[tuple[str, float]]:
        """The hold this scenario needs: ("exclusive" | "shared", seconds waited)."""
        exclusive = needs_exclusive(scenario)
        with self.hold(exclusive) as waited:
            yield ("exclusive" if exclusive else "shared"), waited


# ── the controller ────────────────────────────────────────────────────────────
def this_run_journals(report_dir: Path, run_id: str) -> list[Journal]:
    """The report.json files the workers wrote for this run, by scenario name (an older run's, or one
    not readable as a journal, is not this run's)."""
    found: list[Journal] = []
    for path in sorted(report_dir.glob("*/report.json")):
        try:
            journal = Journal.model_validate_json(path.read_bytes())
        except (OSError, ValueError):  # pydantic's ValidationError is a ValueError
            continue
        if journal.run_id == run_id:
            found.append(journal)
    return sorted(found, key=lambda j: j.scenario)


class Controller:
    """The xdist controller's hold on the shared infrastructure, from `open` to `close`."""

    def __init__(self, options: SessionOptions) -> None:
        self.options = options
        self._stack = ExitStack()
        self.handoff: Handoff | None = None

    def open(self, open_session: Callable[[SessionOptions], Any]) -> Handoff:
        """Start the infrastructure (open_session: harness.session's, a parameter for the tests)."""
        session = self._stack.enter_context(open_session(self.options))
        lock_dir = Path(tempfile.mkdtemp(prefix=f"rr-xdist-{session.owner}-"))
        session.infra.record(runstate.TEMP_DIR, str(lock_dir))  # the reaper's, should the controller be killed
        self._stack.callback(_remove_dir, session.infra, lock_dir)
        self.handoff = handoff(session.infra, session.owner, lock_dir)
        return self.handoff

    def close(self, write_reports: Callable[[list[Journal], str], object]) -> None:
        """After the workers: reap the ones that died, write the run-level reports once, tear down. Raises
        what open_session's exit raises (harness.teardown.Interrupted after a signal)."""
        try:
            if self.handoff is not None:
                from harness import cleanup  # noqa: PLC0415 (psycopg and the Docker helpers: only here)

                cleanup.reap_quietly()  # a killed worker's namespaces, while its kubeconfig still reaches them
                journals = this_run_journals(self.options.report_dir, self.handoff.run_id)
                if journals:
                    write_reports(journals, self.handoff.run_id)
        finally:
            self.handoff = None
            self._stack.close()


def _remove_dir(infra: Infrastructure, path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    infra.forget(runstate.TEMP_DIR, str(path))
