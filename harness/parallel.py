"""Scenarios rehearsed side by side on one cluster and one Postgres (`rehearse run -j N`).

Each scenario already has its own namespace and database, so N of them can run
at once in worker threads (the work is waiting on kubectl, Postgres and the
kubelet, not CPU). Two things are shared and need rules:

- **Faults that freeze shared infrastructure** (`SHARED_FAULTS`: a paused
  Postgres container, a paused control-plane node, latency on the nodes) would
  disturb every other scenario's measurements. `InfraLock` is a readers-writer
  lock: a scenario with such a fault holds it exclusively for its whole
  rehearsal, every other scenario holds it shared for its whole rehearsal. The
  lock is taken before the scenario's first phase, so its wait never counts in
  any phase's duration, time to detect or time to recover; it is recorded apart
  as a `lock` event in the journal. Writers are preferred: once a fault scenario
  waits, no new scenario starts until it has run.
- **Signals** reach only the main thread. `run_all` waits there; on the first
  signal it asks the workers to stop (`teardown.request_stop`), waits for each
  to unwind through its scenario's cleanup, and re-raises.

Results come back in the order the scenarios were given, whatever order they
finished in.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import TypeVar

from harness.progress import board_row, live_board, scenario_prefix
from harness.scenario.models import FaultKind, Scenario
from harness.teardown import Interrupted, check_stop, request_stop

T = TypeVar("T")

# Faults whose effect reaches beyond the scenario's own namespace and database.
SHARED_FAULTS = frozenset({FaultKind.PAUSE_POSTGRES, FaultKind.PAUSE_CONTROL_PLANE, FaultKind.NETWORK_LATENCY})
POLL_S = 0.2  # how often a waiting thread looks for a stop request


def needs_exclusive(scenario: Scenario) -> bool:
    """Whether the scenario freezes infrastructure the other scenarios use."""
    return any(f.kind in SHARED_FAULTS for f in scenario.faults)


class InfraLock:
    """A writer-preferring readers-writer lock whose waits give way to a stop request."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    @contextmanager
    def shared(self) -> Iterator[float]:
        """Held by ordinary scenarios; yields the seconds waited for it."""
        t0 = time.monotonic()
        with self._cond:
            self._wait_for(lambda: not self._writer and not self._writers_waiting)
            self._readers += 1
        try:
            yield time.monotonic() - t0
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[float]:
        """Held by a scenario whose faults freeze shared infrastructure; yields the seconds waited."""
        t0 = time.monotonic()
        with self._cond:
            self._writers_waiting += 1
            try:
                self._wait_for(lambda: not self._writer and not self._readers)
            finally:
                self._writers_waiting -= 1
                self._cond.notify_all()  # readers held back by this writer may go if it gave up
            self._writer = True
        try:
            yield time.monotonic() - t0
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()

    def _wait_for(self, ready: Callable[[], bool]) -> None:
        while not ready():
            check_stop()
            self._cond.wait(POLL_S)

    @contextmanager
    def for_scenario(self, scenario: Scenario) -> Iterator[tuple[str, float]]:
        """The hold this scenario needs: ("exclusive" | "shared", seconds waited)."""
        if needs_exclusive(scenario):
            with self.exclusive() as waited:
                yield "exclusive", waited
        else:
            with self.shared() as waited:
                yield "shared", waited


def run_all(items: Sequence[T], jobs: int, work: Callable[[T], object], name: Callable[[T], str]) -> None:
    """`work(item)` for every item, at most `jobs` at a time in worker threads, each worker's progress
    lines prefixed with `name(item)`. The main thread waits; a signal there (Interrupted) stops the
    workers and waits for their cleanups before it goes on up. A worker's exception stops new items
    from starting; the running ones finish, then it is raised."""
    failed = threading.Event()

    def run_one(item: T) -> object:
        if failed.is_set():  # an item before it failed: as if cancelled (a free worker may get here first)
            return None
        with scenario_prefix(name(item)), board_row(name(item)):
            try:
                return work(item)
            except BaseException:
                failed.set()
                raise

    pool = ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="rehearse")
    with live_board(enabled=jobs > 1):
        futures = [pool.submit(run_one, item) for item in items]
        try:
            first_failure = _wait_all(futures)  # not `failed`: the workers still read that Event
        except BaseException as exc:  # the main thread was interrupted (Ctrl-C, SIGTERM, SIGHUP)
            _cancel(futures)
            request_stop(exc.signum if isinstance(exc, Interrupted) else int(signal.SIGINT))
            pool.shutdown(wait=True)  # every worker unwinds through its scenario's cleanup
            raise
    if first_failure is not None:
        _cancel(futures)
    pool.shutdown(wait=True)
    if first_failure is not None:
        first_failure.result()  # raises the worker's exception


def _wait_all(futures: Sequence[Future[object]]) -> Future[object] | None:
    """Wait in short slices (the main thread's signal handler runs between them); the first future
    that raised, as soon as one has."""
    pending = set(futures)
    while pending:
        done, pending = wait(pending, timeout=POLL_S, return_when=FIRST_EXCEPTION)
        for f in done:
            if not f.cancelled() and f.exception() is not None:
                return f
    return None


def _cancel(futures: Sequence[Future[object]]) -> None:
    """Items not started yet never start."""
    for f in futures:
        f.cancel()
