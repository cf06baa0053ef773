"""`rehearse cleanup` on real Docker (no kind): the paused container of a dead run is removed, the
container of a live run (a second process holding its run lock) is left untouched.

The run states live in a temporary REHEARSAL_CACHE_DIR, so the reaper sees only this test's two
runs; the containers carry the harness's owner label with this test's own owners. Everything the
test makes is removed at the end, whatever happens.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import runstate, tools
from harness.runstate import ProcessIdentity, Resource, RunRecord

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
IMAGE = "rollback-rehearsal/debian:bookworm"  # built by `make env`; any image with `sleep` does
LIVE_RUN = """
import sys, time
from pathlib import Path
from harness import runstate
run = runstate.RunState(sys.argv[2], Path(sys.argv[1])).begin()
run.add(runstate.CONTAINER, sys.argv[3])
print("ready", flush=True)
time.sleep(300)
"""


def _docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120)


def _container(owner: str) -> str:
    proc = _docker("run", "-d", "--label", f"{tools.OWNER_LABEL}={owner}", "--label", "rollback-rehearsal.test=1",
                   IMAGE, "sleep", "600")
    if proc.returncode != 0:
        pytest.skip(f"cannot start a container from {IMAGE} (run `make env`): {proc.stderr.strip()}")
    return proc.stdout.strip()


def _state(container: str) -> str:
    proc = _docker("inspect", "--format", "{{.State.Status}}", container)
    return proc.stdout.strip() if proc.returncode == 0 else "gone"


@pytest.fixture
def made() -> Iterator[list[str]]:
    containers: list[str] = []
    yield containers
    for c in containers:  # whatever the test left: unpause (rm refuses a paused one), then remove
        _docker("unpause", c)
        _docker("rm", "-f", "-v", c)


def test_cleanup_removes_the_dead_runs_paused_container_and_not_the_live_runs(
        tmp_path: Path, made: list[str]) -> None:
    tag = uuid.uuid4().hex[:8]
    dead_owner, live_owner = f"reaper-test-dead-{tag}", f"reaper-test-live-{tag}"
    runs = tmp_path / "cache" / "runs"
    runs.mkdir(parents=True)
    dead_c, live_c = _container(dead_owner), _container(live_owner)
    made += [dead_c, live_c]
    assert _docker("pause", dead_c).returncode == 0  # killed during a pause_postgres fault

    # The dead run: its record names a process that has exited.
    exited = subprocess.Popen(["true"])
    exited.wait()
    record = RunRecord(dead_owner, ProcessIdentity(exited.pid, "1", runstate.boot_id()), 0.0,
                       resources=[Resource(runstate.CONTAINER, dead_c)])
    runstate.write_atomically(runs / f"{dead_owner}.json", record.to_json())

    live = subprocess.Popen([sys.executable, "-c", textwrap.dedent(LIVE_RUN), str(runs), live_owner, live_c],
                            stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert live.stdout is not None and live.stdout.readline().strip() == "ready"
        env = {"PATH": "/usr/bin:/bin:/usr/local/bin", "REHEARSAL_CACHE_DIR": str(tmp_path / "cache"),
               "HOME": str(tmp_path)}
        out = subprocess.run([sys.executable, "-c", "from harness.cli import main; main()", "cleanup"],
                             capture_output=True, text=True, timeout=180, cwd=REPO, env=env)
        assert out.returncode == 0, out.stdout + out.stderr
        assert f"run {dead_owner}" in out.stderr and f"removed container {dead_c}" in out.stderr
        assert live_owner not in out.stderr
        assert _state(dead_c) == "gone"
        assert _state(live_c) == "running"  # untouched: not paused, not stopped
        assert not (runs / f"{dead_owner}.json").exists() and (runs / f"{live_owner}.json").exists()
    finally:
        live.kill()
        live.wait()
