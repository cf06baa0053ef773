"""Faults are always removed: a rehearsal interrupted (Ctrl-C) while every fault is in place leaves
nothing paused, no netem qdisc, no extra container, and the session goes on.

Runs on the session's real kind cluster and Postgres. The normal end of fault scenarios is checked
by the harness itself after each one (Session._fault_leftovers, then the judge: an ERROR verdict otherwise).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from sessions import session_containers

from harness import faults, runstate
from harness.phases.verify import VerifyPhase

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
LONG_S = 60  # far longer than the test: only the cleanup can remove them this early


def _scenario(tmp_path: Path) -> Path:
    d = tmp_path / "fault-interrupted"
    d.mkdir()
    demo = REPO / "demo"
    doc = {
        "description": "every fault in place when the harness is interrupted",
        "app": {"manifests": str(demo / "k8s" / "app.yaml"), "workloads": [{"deployment": "demo", "container": "app"}],
                "smoke": {"service": "demo", "port": 8080, "path": "/healthz"}},
        "versions": {"good": {"image": "rollback-rehearsal/demo-app:v1"},
                     "bad": {"image": "rollback-rehearsal/demo-app:v3"}},
        "database": {"seed": str(demo / "seed.sql"), "tracked_tables": ["users"]},
        "migrations": {"up": "migrate up", "down": "migrate down 1", "files": str(demo / "migrations")},
        "failure": {"mode": "crashloop", "within_s": 90},
        "checks": {"old_version_on_new_schema": False},
        # Applied in this order (docker exec cannot enter a paused node, a sweep cannot reach a paused Postgres).
        "faults": [
            {"kind": "network_latency", "at_step": 2, "duration_s": LONG_S, "latency_ms": 50},
            {"kind": "terminate_db_connections", "at_step": 2, "duration_s": LONG_S, "hold_lock_on": ["users"]},
            {"kind": "pause_postgres", "at_step": 2, "duration_s": LONG_S},
            {"kind": "pause_control_plane", "at_step": 2, "duration_s": LONG_S},
        ],
    }
    (d / "scenario.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    (d / "runbook.md").write_text("## Rollback\n\n```sh\ntrue\nsleep 1\n```\n", encoding="utf-8")
    return d


def _containers(session: Any) -> set[str]:
    """The containers this session owns (sessions.session_containers: its owner label and its cluster's
    nodes; the cluster name is locked, so no other session shares the prefix). Every container the harness
    starts is labelled, so one a fault left behind is among them; unlabelled ones belong to the other pytest
    process `make test` runs alongside (framework images run with `docker run --rm`) and prove nothing here."""
    return set(session_containers(session.infra.cluster.name))


def _paused(container: str) -> bool:
    return subprocess.run(["docker", "inspect", "--format", "{{.State.Paused}}", container], capture_output=True,
                          text=True, timeout=30, check=True).stdout.strip() == "true"


def test_interrupted_while_every_fault_is_in_place(tmp_path: Path, rehearsal: Any, rehearsal_session: Any,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    infra = rehearsal_session.infra
    seen: dict[str, Any] = {}

    def interrupt(ctx: Any) -> str:  # Ctrl-C just after the runbook, with every fault still in place
        seen["paused"] = {c: _paused(c) for c in [infra.database.container_id, *infra.cluster.node_containers()]}
        seen["faults"] = [(r.kind, r.status) for r in ctx.journal.faults]
        raise KeyboardInterrupt

    before = _containers(rehearsal_session)
    assert any(str(infra.database.container_id).startswith(c) for c in before), before  # it sees ours (short IDs)
    monkeypatch.setattr(VerifyPhase, "execute", lambda self, ctx: interrupt(ctx))
    with pytest.raises(KeyboardInterrupt):
        rehearsal(_scenario(tmp_path))

    # The faults really were in place (else this test proves nothing) ...
    assert all(seen["paused"].values()), seen["paused"]
    statuses = dict(seen["faults"])
    assert statuses["terminate_db_connections"] == statuses["pause_postgres"] == "applied"
    assert statuses["pause_control_plane"] == "applied"
    assert statuses["network_latency"] in ("applied", "unsupported")  # no sch_netem in some kernels
    # ... and are gone: nothing paused, no netem, no extra container, Postgres answers at once.
    assert faults.leftovers(infra) == []
    assert not any(_paused(c) for c in seen["paused"])
    assert _containers(rehearsal_session) == before
    # The namespace's wait and the database's drop run in the session's deferred pool (harness/deferred.py).
    assert infra.deferred.drain(timeout_s=150) == []
    with psycopg.connect(infra.database.admin_dsn, connect_timeout=5) as conn:
        db = runstate.database_name("fault-interrupted", rehearsal_session.infra.run_id)
        assert conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (db,)).fetchone() == (0,)
    report = json.loads((rehearsal_session.options.report_dir / "fault-interrupted" / "report.json").read_text())
    applied = [f for f in report["faults"] if f["status"] == "applied"]
    assert applied and all(f["reverted_at"] for f in applied)
    assert all("removed early" in f["detail"] for f in applied if f["kind"] != "delete_app_pod")
