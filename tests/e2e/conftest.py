"""Shared setup of the end-to-end tests (they need the environment built by `make env`)."""

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# testcontainers reads these once, when it is first imported, so they are set
# here, before any test module imports it:
# - no Ryuk reaper: its image cannot be pulled here; fixtures clean up instead;
# - published ports are reached on the Docker host's loopback (we run inside a
#   container, where testcontainers would otherwise guess a gateway address).
os.environ["TESTCONTAINERS_RYUK_DISABLED"] = "true"
os.environ["TESTCONTAINERS_CONNECTION_MODE"] = "docker_host"
os.environ["TC_HOST"] = "127.0.0.1"

if "testcontainers.core.config" in sys.modules:  # imported earlier, e.g. by a plugin
    from testcontainers.core.config import ConnectionMode, testcontainers_config

    testcontainers_config.ryuk_disabled = True
    testcontainers_config.connection_mode_override = ConnectionMode.docker_host
    testcontainers_config.tc_host_override = "127.0.0.1"


# ── Kubernetes helpers shared by the e2e tests that use the session cluster ──

class Kubectl:
    """kubectl (the environment's build) bound to one kubeconfig; every call has a timeout."""

    def __init__(self, kubeconfig: Path) -> None:
        from harness.tools import tool  # noqa: PLC0415

        self.binary = str(tool("kubectl"))
        self.kubeconfig = str(kubeconfig)

    def run(self, *args: str, input: str | None = None, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [self.binary, f"--kubeconfig={self.kubeconfig}", *args]
        proc = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr.strip()}")
        return proc

    def __call__(self, *args: str, input: str | None = None, timeout: float = 60) -> str:
        return self.run(*args, input=input, timeout=timeout).stdout

    def json(self, *args: str, timeout: float = 60) -> Any:
        return json.loads(self(*args, "-o", "json", timeout=timeout))

    def apply(self, *manifests: dict[str, Any], timeout: float = 60) -> str:
        """`kubectl apply -f -`: manifests go through stdin, never on the command line."""
        doc = {"apiVersion": "v1", "kind": "List", "items": list(manifests)}
        return self("apply", "-f", "-", input=json.dumps(doc), timeout=timeout)


@pytest.fixture(scope="session")
def kubectl(kind_cluster: Any) -> Kubectl:
    """kubectl against the session's kind cluster."""
    return Kubectl(kind_cluster.kubeconfig)


@pytest.fixture
def namespace_factory(kubectl: Kubectl) -> Iterator[Callable[[str], str]]:
    """make("envtest") creates a uniquely named namespace; all are deleted at the end of the test."""
    created: list[str] = []

    def make(prefix: str) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        kubectl("create", "namespace", name)
        created.append(name)
        kubectl("label", "namespace", name, "rollback-rehearsal.test=1")
        return name

    yield make
    for name in reversed(created):
        # --wait=false: the namespace controller finishes; a reused cluster converges on its own.
        kubectl.run("delete", "namespace", name, "--ignore-not-found", "--wait=false", timeout=60, check=False)
