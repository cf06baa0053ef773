"""Cleanup a scenario hands on, so that its worker can take the next scenario at once.

Removing a scenario's namespace takes the namespace controller 5-10 s (every pod stops, every object goes),
and its database can only be dropped once the app's pods have let go of it. A scenario's worker used to
wait for both; now it asks for the namespace's deletion and hands the wait and the drop to this pool,
which does them while the next scenarios run. Nothing is forgotten early: each resource stays in the run
state until it is really gone, so a killed session's leftovers are still the reaper's. The session drains
the pool (every job bounded by its own timeouts) before it stops the cluster and Postgres.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait

from harness.progress import say

WORKERS = 2  # the jobs mostly wait on the API server and Postgres


class Deferred:
    """A small thread pool of cleanup jobs; `drain` waits for all of them and returns their failures."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._jobs: list[tuple[str, Future[None]]] = []
        self._lock = threading.Lock()

    def submit(self, label: str, job: Callable[[], None]) -> None:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="cleanup")
            self._jobs.append((label, self._pool.submit(job)))

    def pending(self) -> int:
        with self._lock:
            return sum(not f.done() for _, f in self._jobs)

    def drain(self, timeout_s: float = 300) -> list[str]:
        """Wait for every job (at most timeout_s); the failures, one line each (also said on the console).
        A job still running at the deadline is named too: its resource stays recorded for the reaper."""
        with self._lock:
            jobs, pool = list(self._jobs), self._pool
            self._jobs, self._pool = [], None
        if not jobs:
            return []
        if any(not f.done() for _, f in jobs):
            say(f"waiting for {sum(not f.done() for _, f in jobs)} namespace/database removal(s) to finish")
        wait([f for _, f in jobs], timeout=timeout_s)
        failures = [f"{label}: still running after {timeout_s:.0f}s" if not f.done()
                    else f"{label}: {type(f.exception()).__name__}: {f.exception()}"
                    for label, f in jobs if not f.done() or f.exception() is not None]
        for line in failures:
            say(f"  cleanup: {line}", style="red")
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=False)
        return failures
