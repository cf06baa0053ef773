"""Nothing is left behind: after a test session that used the `kind_cluster`
and `postgres` fixtures, and after `rehearse run` is interrupted (Ctrl-C or
SIGTERM, while the cluster is being created or while a phase runs), there is
no kind cluster of that name, no container owned by that session, and no
Docker volume of theirs (their anonymous volumes removed with them, no new
dangling volume).

Each test runs its session in a subprocess under a cluster name of its own
(rr-cleanup-test, rr-interrupt-test), separate from the outer session's
cluster. Should a check fail, a finalizer removes what that subprocess left,
so a failing run does not leak onto the machine either.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
import threading
import time
from pathlib import Path

import pytest
# tests/e2e is on sys.path (no package): the helpers shared with the ownership tests.
from sessions import (KIND_CLUSTER_LABEL, Rehearse, Seen, assert_nothing_left, dangling_volumes,
                      leftovers_removed, require_absent)

from harness import tools
from harness.phases.deploy_good import DeployGoodPhase
from harness.wait import Wait

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.e2e
__all__ = ["leftovers_removed"]  # a fixture: imported to be found here


# ── a whole pytest session using the fixtures ────────────────────────────────

INNER_TEST = textwrap.dedent('''\
    import json
    import subprocess
    from pathlib import Path

    import psycopg

    from harness.tools import tool


    def test_uses_cluster_and_postgres(kind_cluster, postgres):
        kubectl = [str(tool("kubectl")), f"--kubeconfig={kind_cluster.kubeconfig}"]
        subprocess.run([*kubectl, "create", "namespace", "cleanup-probe"], check=True, timeout=60)
        db = postgres.create_database("cleanup_probe")
        with psycopg.connect(db.host_dsn, connect_timeout=10) as conn:
            conn.execute("create table probe (id int primary key)")
            conn.execute("insert into probe values (1)")
        nodes = kind_cluster.node_containers()
        assert nodes
        Path("seen.json").write_text(json.dumps({"cluster": kind_cluster.name, "nodes": nodes,
                                                 "postgres": postgres.container_id}))
    ''')


def test_pytest_session_leaves_nothing_behind(pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              leftovers_removed: list[str]) -> None:
    name = "rr-cleanup-test"
    # pytester gives the inner session a HOME of its own: point it at this environment's tools.
    monkeypatch.setenv("REHEARSAL_CACHE_DIR", str(tools.CACHE_DIR))
    require_absent(name)
    leftovers_removed.append(name)
    dangling_before = dangling_volumes()
    seen = Seen(name)

    pytester.makepyfile(test_inner=INNER_TEST)
    # While the inner session runs, note its containers and their volumes.
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(2.0):
            try:
                seen.look()
            except Exception:  # noqa: BLE001, S110 (docker busy: next round)
                pass

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--cluster-name", name,
                                               "--report-dir", str(tmp_path / "reports"), timeout=600)
    finally:
        stop.set()
        watcher.join(timeout=30)
    result.assert_outcomes(passed=1)

    # The inner session did create a cluster and a Postgres container...
    inner = json.loads((pytester.path / "seen.json").read_text())
    assert inner["cluster"] == name
    assert inner["nodes"] == [f"{name}-control-plane"]
    assert any(cid and inner["postgres"].startswith(cid) for cid in seen.containers), (inner, seen.containers)
    assert seen.volumes, "the node and Postgres containers have anonymous volumes: none were seen"
    # ...and removed both, with their volumes.
    assert_nothing_left(name, dangling_before, seen)
    for cid in [inner["postgres"], *inner["nodes"]]:
        assert subprocess.run(["docker", "inspect", cid], capture_output=True, timeout=30).returncode != 0, cid


# ── `rehearse run` interrupted ───────────────────────────────────────────────


@pytest.mark.parametrize(("sig", "to_group", "moment"), [
    pytest.param(signal.SIGINT, True, "phase", id="ctrl-c-during-phase"),
    pytest.param(signal.SIGINT, True, "cluster-create", id="ctrl-c-during-cluster-create"),
    pytest.param(signal.SIGTERM, False, "phase", id="sigterm-during-phase"),
    pytest.param(signal.SIGTERM, False, "cluster-create", id="sigterm-during-cluster-create"),
])
def test_interrupted_run_leaves_nothing_behind(tmp_path: Path, leftovers_removed: list[str],
                                               sig: signal.Signals, to_group: bool, moment: str) -> None:
    """Ctrl-C (SIGINT to the whole foreground process group, kind and kubectl
    included) or SIGTERM (to the harness process only, as a CI runner does),
    while `kind create cluster` runs or once a rehearsal phase has started."""
    name = "rr-interrupt-test"
    require_absent(name)
    leftovers_removed.append(name)
    dangling_before = dangling_volumes()
    seen = Seen(name)

    run = Rehearse("scenarios/bad-image", "--cluster-name", name, "--report-dir", str(tmp_path / "reports"))
    try:
        def reached() -> tuple[bool, str]:
            seen.look()
            if run.proc.poll() is not None:
                pytest.fail(f"rehearse exited ({run.proc.returncode}) before being interrupted:\n{run.output}")
            if moment == "cluster-create":
                # kind has created the node container and is still booting it.
                done = any(KIND_CLUSTER_LABEL in d for d in seen.containers.values()) \
                    and "starting Postgres" not in run.output
            else:
                done = f"▶ {DeployGoodPhase.name}" in run.output  # namespace and database exist by then
            return done, (run.lines[-1] if run.lines else "(no output yet)")

        Wait(f"rehearse to reach {moment}", 300, 0.5, evidence=lambda: run.output[-3000:]).until(reached)
        if moment == "phase":
            time.sleep(2)  # inside the phase's kubectl/kind calls
        seen.look()
        assert seen.containers, "nothing was created before the interrupt"
        if to_group:
            os.killpg(run.proc.pid, sig)
        else:
            run.proc.send_signal(sig)
        t0 = time.monotonic()
        try:
            code = run.proc.wait(timeout=180)
        except subprocess.TimeoutExpired:
            pytest.fail(f"rehearse did not exit within 180s of {sig.name}:\n{run.output[-3000:]}")
        run.reader.join(timeout=10)
        print(f"{sig.name} at {moment}: exited {code} after {time.monotonic() - t0:.1f}s")
    finally:
        run.kill()

    assert code == 130, f"exit code {code}, expected 130 (interrupted):\n{run.output[-3000:]}"
    assert "interrupted: resources cleaned up" in run.output, run.output[-3000:]
    assert_nothing_left(name, dangling_before, seen)
