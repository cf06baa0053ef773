"""The rehearsal registry: stands in for production's registry so runbooks can
re-tag and push (immutable-tag promotion) for real."""

from __future__ import annotations

import subprocess
import urllib.request
from typing import Protocol, runtime_checkable
from urllib.error import HTTPError

from testcontainers.core.container import DockerContainer

from harness import tools
from harness.progress import say
from harness.wait import Wait

MANIFEST_TYPES = ", ".join([
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
])


@runtime_checkable
class RegistryProvider(Protocol):
    """What the session, the releases and the context use of the rehearsal registry."""

    address: str          # as the host sees it (docker push, runbooks)
    cluster_address: str  # as the nodes' containerd reaches it

    @property
    def container_id(self) -> str | None: ...

    def start(self) -> RegistryProvider: ...
    def configure_node(self, node_container: str) -> None: ...
    def unconfigure_node(self, node_container: str) -> None: ...
    def digest(self, repository: str, tag: str) -> str | None: ...
    def stop(self) -> None: ...


class RegistryContainer:
    """registry:2-compatible container published on a loopback port.

    The host (docker push, runbooks) uses 127.0.0.1:<port>; the kind node's
    containerd is told (hosts.toml) to reach the same name at the container's
    address on the cluster network, so pods pull exactly what runbooks push.
    """

    def __init__(self, network: str | None, owner: str) -> None:
        self.network = network
        self.container = DockerContainer(tools.REGISTRY_IMAGE).with_exposed_ports(5000)
        self.container.with_kwargs(labels={tools.OWNER_LABEL: owner})
        self.address = ""
        self.cluster_address = ""

    def start(self) -> RegistryContainer:
        say(f"starting registry ({tools.REGISTRY_IMAGE})")
        self.container.start()
        wrapped = self.container.get_wrapped_container()
        if self.network:
            # Before reading the port: connecting a network re-publishes it.
            subprocess.run(["docker", "network", "connect", self.network, wrapped.id], check=True,
                           capture_output=True, timeout=30)
            wrapped.reload()
            self.cluster_address = wrapped.attrs["NetworkSettings"]["Networks"][self.network]["IPAddress"] + ":5000"
        port = int(self.container.get_exposed_port(5000))
        self.address = f"127.0.0.1:{port}"
        Wait("registry /v2/ to answer", 30, 0.5, hint="docker logs of the registry container",
             evidence=lambda: wrapped.logs().decode(errors="replace")[-2000:]).until(self._answers)
        return self

    @property
    def container_id(self) -> str | None:
        wrapped = self.container.get_wrapped_container()
        return None if wrapped is None else str(wrapped.id)  # None until started

    def _answers(self) -> tuple[bool, str]:
        with urllib.request.urlopen(f"http://{self.address}/v2/", timeout=3) as resp:
            return resp.status == 200, f"HTTP {resp.status}"

    def configure_node(self, node_container: str) -> None:
        """Point the node's containerd at this registry (plain HTTP, on the kind network)."""
        d = f"/etc/containerd/certs.d/{self.address}"
        hosts = f'server = "http://{self.cluster_address}"\n\n[host."http://{self.cluster_address}"]\n  capabilities = ["pull", "resolve"]\n'
        subprocess.run(["docker", "exec", node_container, "mkdir", "-p", d], check=True, timeout=30)
        subprocess.run(["docker", "exec", "-i", node_container, "sh", "-c", f"cat > {d}/hosts.toml"],
                       input=hosts.encode(), check=True, timeout=30)

    def unconfigure_node(self, node_container: str) -> None:
        subprocess.run(["docker", "exec", node_container, "rm", "-rf", f"/etc/containerd/certs.d/{self.address}"],
                       capture_output=True, timeout=30)

    def digest(self, repository: str, tag: str) -> str | None:
        """The manifest digest the registry serves for repository:tag (None: no such tag)."""
        req = urllib.request.Request(f"http://{self.address}/v2/{repository}/manifests/{tag}", method="HEAD",
                                     headers={"Accept": MANIFEST_TYPES})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.headers.get("Docker-Content-Digest")
        except HTTPError as exc:
            if exc.code == 404:
                return None
            raise

    def stop(self) -> None:
        if self.container.get_wrapped_container() is None:
            return
        say("stopping registry")
        self.container.stop()
