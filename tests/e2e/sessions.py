"""What a rehearsal session leaves on the Docker host, and `rehearse run` as a child process: shared by the
e2e tests of cleanup, interrupts and ownership."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness import tools

REPO = Path(__file__).resolve().parents[2]
KIND_CLUSTER_LABEL = "io.x-k8s.kind.cluster"  # kind labels its node containers with the cluster name


# ── what a session leaves on the Docker host ─────────────────────────────────


def _run(*cmd: str, timeout: float = 60) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed: {proc.stderr.strip()}"
    return proc.stdout


def kind_clusters() -> list[str]:
    return _run(str(tools.tool("kind")), "get", "clusters").split()


def session_containers(name: str) -> dict[str, str]:
    """{container id: description} of every container the session NAME created:
    the harness's (owner label `NAME-<uuid>`) and kind's node containers."""
    found: dict[str, str] = {}
    fmt = '{{.ID}} {{.Names}} {{.Label "%s"}}'
    for line in _run("docker", "ps", "-a", "--filter", f"label={tools.OWNER_LABEL}",
                     "--format", fmt % tools.OWNER_LABEL).splitlines():
        cid, cname, owner = (line.split(" ", 2) + ["", ""])[:3]
        if owner == name or owner.startswith(f"{name}-"):
            found[cid] = f"{cname} ({tools.OWNER_LABEL}={owner})"
    for line in _run("docker", "ps", "-a", "--filter", f"label={KIND_CLUSTER_LABEL}={name}",
                     "--format", fmt % KIND_CLUSTER_LABEL).splitlines():
        cid, cname, cluster = (line.split(" ", 2) + ["", ""])[:3]
        found[cid] = f"{cname} ({KIND_CLUSTER_LABEL}={cluster})"
    return found


def container_volumes(ids: list[str]) -> set[str]:
    """Names of the Docker volumes (named or anonymous) mounted by these containers."""
    if not ids:
        return set()
    proc = subprocess.run(["docker", "inspect", *ids], capture_output=True, text=True, timeout=60)
    infos = json.loads(proc.stdout or "[]")  # a container removed meanwhile is simply absent
    return {m["Name"] for info in infos for m in info.get("Mounts", []) if m.get("Type") == "volume"}


def existing_volumes(names: set[str]) -> set[str]:
    return {n for n in names if subprocess.run(["docker", "volume", "inspect", n], capture_output=True,
                                               timeout=30).returncode == 0}


def dangling_volumes() -> set[str]:
    return set(_run("docker", "volume", "ls", "-q", "--filter", "dangling=true").split())


@dataclass
class Seen:
    """Resources of session NAME observed while it ran (so their removal can be checked)."""

    name: str
    containers: dict[str, str] = field(default_factory=dict)
    volumes: set[str] = field(default_factory=set)

    def look(self) -> None:
        now = session_containers(self.name)
        self.containers.update(now)
        self.volumes |= container_volumes(list(now))


def assert_nothing_left(name: str, dangling_before: set[str], seen: Seen) -> None:
    clusters = kind_clusters()
    assert name not in clusters, f"kind cluster {name} left behind (clusters: {clusters})"
    left = session_containers(name)
    assert not left, f"containers of session {name} left behind: {left}"
    still = existing_volumes(seen.volumes)
    assert not still, f"volumes of session {name}'s containers left behind: {sorted(still)}"
    new_dangling = dangling_volumes() - dangling_before
    assert not new_dangling, f"new dangling Docker volumes after session {name}: {sorted(new_dangling)}"


@pytest.fixture
def leftovers_removed() -> Iterator[list[str]]:
    """Append a session name; at the end, whatever that session left is removed
    (after the test's own checks: this is a safety net, not part of the proof)."""
    names: list[str] = []
    yield names
    for name in names:
        if name in kind_clusters():
            subprocess.run([str(tools.tool("kind")), "delete", "cluster", f"--name={name}"],
                           capture_output=True, timeout=180)
        ids = list(session_containers(name))
        if ids:
            subprocess.run(["docker", "rm", "-f", "-v", *ids], capture_output=True, timeout=120)


def require_absent(name: str) -> None:
    """The harness reuses a cluster of the same name: a leftover would make the test meaningless."""
    if name in kind_clusters() or session_containers(name):
        pytest.fail(f"a kind cluster or containers named {name} exist before the test (another run of this "
                    f"test, or a leftover). Remove them: kind delete cluster --name {name}; "
                    f"docker ps -a --filter label={tools.OWNER_LABEL}")



# ── `rehearse` as a child process ────────────────────────────────────────────


class Rehearse:
    """`rehearse run` in a process group of its own; stderr collected by a thread."""

    def __init__(self, *args: str) -> None:
        env = {**os.environ, "COLUMNS": "200"}  # rich wraps progress lines at 80 columns otherwise
        self.proc = subprocess.Popen([str(Path(sys.executable).with_name("rehearse")), "run", *args], cwd=REPO,
                                     env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)  # our own process group only
            self.proc.wait(timeout=30)


