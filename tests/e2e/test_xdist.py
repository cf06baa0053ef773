"""`pytest -n 2` on three cheap demo scenarios, on a real kind cluster and Postgres: the workers share
the controller's one cluster and one Postgres, every verdict is as expected, the run-level reports are
written once with all three scenarios, and nothing is left afterwards.

The inner session runs under a cluster name of its own (rr-xdist-test), separate from the outer
session's cluster; should a check fail, a finalizer removes what it left."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
# tests/e2e is on sys.path (no package): the helpers shared with the cleanup and ownership tests.
from sessions import (REPO, Seen, assert_nothing_left, dangling_volumes, kind_clusters, leftovers_removed,
                      require_absent)

from harness import runstate, tools
from harness.report.common import parse_dt

pytestmark = pytest.mark.e2e
__all__ = ["leftovers_removed"]  # a fixture: imported to be found here

NAME = "rr-xdist-test"
SCENARIOS = {"bad-image": "READY", "configmap-drift": "NOT_READY", "runbook-drift": "NOT_READY"}


def _postgres_containers(name: str) -> set[str]:
    """Ids of the Postgres containers of session NAME (owner label NAME-<id>) that exist now."""
    fmt = '{{.ID}} {{.Image}} {{.Label "%s"}}' % tools.OWNER_LABEL
    out = subprocess.run(["docker", "ps", "-a", "--filter", f"label={tools.OWNER_LABEL}", "--format", fmt],
                         capture_output=True, text=True, timeout=60).stdout
    rows = (line.split(" ", 2) for line in out.splitlines())
    return {cid for cid, image, owner in rows if "postgres" in image and owner.startswith(f"{name}-")}


class Watch:
    """Every second while the inner session runs: its clusters, Postgres containers and containers."""

    def __init__(self, name: str) -> None:
        self.seen = Seen(name)
        self.clusters: set[str] = set()
        self.postgres: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self.clusters |= {c for c in kind_clusters() if c.startswith("rr-xdist")}
                self.postgres |= _postgres_containers(self.seen.name)
                self.seen.look()
            except Exception:  # noqa: BLE001, S110 (docker busy: next round)
                pass

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def test_two_workers_share_one_cluster_and_one_postgres_and_write_one_report_set(
        tmp_path: Path, leftovers_removed: list[str]) -> None:
    require_absent(NAME)
    leftovers_removed.append(NAME)
    dangling_before = dangling_volumes()
    reports = tmp_path / "reports"
    # worksteal: the worker that finishes first takes the third scenario (xdist's default `load` hands out
    # all three at once, two to one worker, and the other idles; about 13 s of this test's cost).
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", "-n", "2",
           "--dist", "worksteal",
           *(f"scenarios/{s}" for s in SCENARIOS), "--cluster-name", NAME, "--report-dir", str(reports)]
    with Watch(NAME) as watch:
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]

    # One cluster and one Postgres served both workers.
    assert watch.clusters == {NAME}, watch.clusters
    assert len(watch.postgres) == 1, watch.postgres
    # Every verdict as expected, each scenario's report written by the worker that rehearsed it...
    journals = {s: json.loads((reports / s / "report.json").read_text()) for s in SCENARIOS}
    assert {s: j["verdict"] for s, j in journals.items()} == SCENARIOS
    # ...all as part of the controller's run, whose run-level reports list all three, once.
    run = json.loads((reports / "run.json").read_text())
    assert sorted(run["scenarios"]) == sorted(SCENARIOS)
    assert {j["run_id"] for j in journals.values()} == {run["run_id"]}
    suites = ET.parse(reports / "junit.xml").getroot()
    assert sorted(s.get("name") for s in suites.iter("testsuite")) == sorted(SCENARIOS)
    assert len((reports / "history.jsonl").read_text().splitlines()) == len(SCENARIOS)
    # Two workers: some two rehearsals overlapped in time.
    spans = sorted((parse_dt(j["started_at"]), parse_dt(j["finished_at"])) for j in journals.values())
    assert any(b[0] < a[1] for a, b in zip(spans, spans[1:])), spans

    # Nothing left: no cluster, container or volume of the session, no run record of the controller or a worker.
    assert_nothing_left(NAME, dangling_before, watch.seen)
    owners = [r.owner for p in runstate.records() if (r := runstate.read_record(p)) is not None]
    assert not [o for o in owners if o.startswith(f"{NAME}-")], owners
