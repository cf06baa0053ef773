"""Cluster providers: a disposable kind cluster, or an existing kubeconfig."""

from __future__ import annotations

import shutil
import os
import signal
import subprocess
import tempfile
import time
import threading
from pathlib import Path
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from pytest_kind import KindCluster

from harness import runstate, tools
from harness.progress import say
from harness.snapshot.image_ids import ImageIdentities, canonical_reference, crictl_images, runtime_digest

KIND_CLUSTER_LABEL = "io.x-k8s.kind.cluster"  # kind labels its node containers with the cluster name
KIND_CONFIG = """\
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
  - role: control-plane
"""


@runtime_checkable
class ClusterProvider(Protocol):
    """What the session, the phases and the faults use of a cluster."""

    name: str
    kubeconfig: Path

    def start(self) -> ClusterProvider: ...
    def load_image(self, image: str) -> None: ...
    def node_containers(self) -> list[str]: ...  # [] when the nodes are not local containers
    def docker_network(self) -> str | None: ...  # None: local containers cannot join the cluster's network
    def delete(self) -> None: ...                # a no-op for a cluster the harness does not own
    # A pod's imageID (and its node) -> the image's identity (harness/snapshot/image_ids.py).
    def image_identity(self, image_ref: str, node: str | None) -> str: ...


class ClusterExists(RuntimeError):
    """The cluster name is taken and reuse was not requested."""


class RehearsalKindCluster(KindCluster):
    """pytest-kind's KindCluster with our built kind/kubectl, a bounded create and a readiness wait."""

    def __init__(self, name: str, image: str | None = None, workdir: Path | None = None) -> None:
        workdir = workdir or Path(tempfile.gettempdir()) / "rollback-rehearsal" / name
        workdir.mkdir(parents=True, exist_ok=True)
        super().__init__(
            name=name, image=image or tools.NODE_IMAGE, kubeconfig=workdir / "kubeconfig",
            kind_path=tools.tool("kind"), kubectl_path=tools.tool("kubectl"),
        )

    def exists(self) -> bool:
        out = subprocess.run([str(self.kind_path), "get", "clusters"], capture_output=True, text=True, timeout=30)
        return self.name in out.stdout.split()

    def create(self, config_file: str | Path | None = None, timeout_s: float = 420,  # type: ignore[override]
               reuse: bool = False, before_create: Callable[[], None] = lambda: None) -> bool:
        """Create (True) or, when asked, reuse (False) the cluster; fail with kind's output, never hang.
        BEFORE_CREATE runs just before `kind create`, once the name was found free."""
        if self.exists():
            if not reuse:
                # Never adopt (and later delete) a cluster another run may own.
                raise ClusterExists(f"a kind cluster named {self.name} already exists. Fix: pass --reuse-cluster to "
                                    "use it (it is then kept), or choose another --cluster-name, or, if a "
                                    "--keep-cluster run left it, remove it with `rehearse cleanup`")
            say(f"reusing kind cluster {self.name}")
            self._export_kubeconfig()
            return False
        before_create()
        if config_file is None:
            config_file = self.path / "kind-config.yaml"
            Path(config_file).write_text(KIND_CONFIG)
        cmd = [str(self.kind_path), "create", "cluster", f"--name={self.name}", f"--kubeconfig={self.kubeconfig_path}",
               f"--image={self.image}", f"--config={config_file}", "--wait=3m", "--retain"]
        say(f"creating kind cluster {self.name} on {self.image} (about a minute)")
        # kind runs in a process group of its own, so that on a timeout or an
        # interrupt (Ctrl-C, SIGTERM) it is stopped together with the `docker`
        # commands it started, before what they made is removed.
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True) as kind:
            try:
                out, err = kind.communicate(timeout=timeout_s)
            except BaseException as exc:
                _kill_group(kind)
                self.delete()
                self._remove_late_nodes()
                if isinstance(exc, subprocess.TimeoutExpired):
                    raise RuntimeError(f"kind create cluster timed out after {timeout_s:.0f}s\n"
                                       f"Hint: check `docker logs {self.name}-control-plane`") from None
                raise
        proc = subprocess.CompletedProcess(cmd, kind.returncode, out, err)
        if proc.returncode != 0 and "already exist" in proc.stderr:
            # Another process created that name between our check and our create: it is theirs, never delete it.
            raise ClusterExists(f"a kind cluster named {self.name} was created by another process meanwhile. "
                                "Fix: choose another --cluster-name")
        if proc.returncode != 0:
            logs = self._node_logs()
            self.delete()
            raise RuntimeError(f"kind create cluster failed ({proc.returncode}):\n{proc.stderr[-4000:]}\n"
                               f"node log tail:\n{logs}\nHint: run `make env` to rebuild the node image")
        return True

    def _export_kubeconfig(self) -> None:
        subprocess.run([str(self.kind_path), "export", "kubeconfig", f"--name={self.name}",
                        f"--kubeconfig={self.kubeconfig_path}"], check=True, capture_output=True, timeout=30)

    def _node_logs(self) -> str:
        out = subprocess.run(["docker", "logs", "--tail", "40", f"{self.name}-control-plane"],
                             capture_output=True, text=True, timeout=30)
        return out.stdout + out.stderr

    def delete(self, check: bool = False) -> None:
        """`kind delete cluster`, in a session of its own: a Ctrl-C typed at the terminal reaches the
        whole foreground group, and must not stop the delete the teardown is waiting for. With `check`,
        a failed delete raises (the run's record then keeps the cluster for the reaper)."""
        proc = subprocess.run([str(self.kind_path), "delete", "cluster", f"--name={self.name}"],
                              capture_output=True, text=True, timeout=120, start_new_session=True)
        if check and proc.returncode != 0:
            raise RuntimeError(f"kind delete cluster --name={self.name} failed ({proc.returncode}): "
                               f"{proc.stderr.strip()[-1000:]}\nHint: `rehearse cleanup` retries it")

    def _remove_late_nodes(self, quiet_s: float = 3.0, limit_s: float = 30.0) -> None:
        """A `docker run` that kind sent before it was stopped may still be
        completed by the daemon: delete again until no node container has
        appeared for QUIET_S seconds."""
        t0 = quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < quiet_s and time.monotonic() - t0 < limit_s:
            time.sleep(0.5)
            late = subprocess.run(["docker", "ps", "-aq", "--filter", f"label={KIND_CLUSTER_LABEL}={self.name}"],
                                  capture_output=True, text=True, timeout=30).stdout.split()
            if late:
                self.delete()
                quiet_since = time.monotonic()


def _kill_group(proc: subprocess.Popen[str]) -> None:
    """SIGKILL a process started with start_new_session=True and all it started."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


def _local_image_id(image: str) -> str | None:
    """The local image's content ID (None when Docker cannot say: then it is loaded anyway)."""
    try:
        proc = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", image],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() or None if proc.returncode == 0 else None


class KindProvider:
    """A kind cluster: created here (then deleted at teardown) or, with reuse, adopted (then kept).

    Its kubeconfig lives in a directory of this run's own (`<tmp>/rollback-rehearsal/<owner>`), so
    two runs on one cluster never share, nor remove, each other's kubeconfig. `delete` removes the
    cluster only if THIS provider started creating it: a run that found the name taken never deletes
    the cluster of the run that made it."""

    def __init__(self, name: str, image: str | None = None, reuse: bool = False,
                 run: runstate.RunState | None = None) -> None:
        self.name = name
        self.reuse = reuse  # adopt a cluster of that name instead of refusing it
        self.run = run
        self.workdir = Path(tempfile.gettempdir()) / "rollback-rehearsal" / (run.owner if run else name)
        self.cluster = RehearsalKindCluster(name, image, self.workdir)
        self.kubeconfig = Path(self.cluster.kubeconfig_path)
        self.created = False  # True from the moment this run starts `kind create`
        self._loaded: dict[str, str] = {}  # image -> the local image ID this run loaded
        self._image_locks: dict[str, threading.Lock] = {}
        self._loading_lock = threading.Lock()
        self._identities = ImageIdentities(crictl_images)  # kind's node names are its node containers' names

    def start(self) -> KindProvider:
        self._record(runstate.TEMP_DIR, str(self.workdir))
        try:
            made = self.cluster.create(reuse=self.reuse, before_create=self._claim)
        except ClusterExists:  # the name is taken, or was taken during our create: the cluster is theirs
            self._unclaim()
            if not self.reuse:
                raise
            made = self.cluster.create(reuse=True)  # asked to reuse: adopt the winner's, never delete it
        if not made:
            self._record(runstate.USES_CLUSTER, self.name)
        elif self.reuse:  # made to be reused: it outlives this run, so no reaper may take it for a leftover
            self._unclaim()
            self._record(runstate.USES_CLUSTER, self.name)
        return self

    def _claim(self) -> None:
        """Just before `kind create`: from now on a kill leaves the name to the reaper, and the teardown
        deletes what the create made."""
        self._record(runstate.CLUSTER, self.name)
        self.created = True

    def _unclaim(self) -> None:
        self.created = False
        if self.run is not None:
            self.run.forget(runstate.CLUSTER, self.name)

    def _record(self, kind: str, name: str) -> None:
        if self.run is not None:
            self.run.add(kind, name)

    def load_image(self, image: str) -> None:
        """`kind load` the local image, once per content: scenarios side by side (`-j N`) load the same
        images, and one at a time per name (two imports of one image into containerd at once gain nothing)."""
        with self._loading_lock:
            lock = self._image_locks.setdefault(image, threading.Lock())
        with lock:
            content = _local_image_id(image)
            if content is not None and self._loaded.get(image) == content:
                return  # this run loaded exactly this content already
            if content is not None and self._nodes_have(image, content):
                say(f"{image} is already on the nodes of {self.name} (image {content[:19]}): not loaded again")
            else:
                self._kind_load(image)
            if content is not None:
                self._loaded[image] = content

    def _nodes_have(self, image: str, content: str) -> bool:
        """Whether every node's runtime has this content under this name already (a reused cluster, a run
        before this one): then `kind load` would import the same bytes again. The image ID is the content's
        digest, so the same ID is the same image; the name must be there too, or a pod naming it would not
        find it. Any doubt (a node that cannot be asked) means load."""
        nodes = self.node_containers()
        if not nodes:
            return False
        name = canonical_reference(image)
        for node in nodes:
            try:
                images = crictl_images(node)
            except (OSError, subprocess.SubprocessError, RuntimeError, ValueError):
                return False
            if not any(i.get("id") == content and name in (i.get("repoTags") or []) for i in images):
                return False
        return True

    def _kind_load(self, image: str) -> None:
        say(f"loading {image} into {self.name}")
        proc = subprocess.run([str(self.cluster.kind_path), "load", "docker-image", "--name", self.name, image],
                              capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise RuntimeError(f"kind load docker-image {image} failed: {proc.stderr[-2000:]}\n"
                               f"Hint: is the image built? `docker image inspect {image}`")

    def image_identity(self, image_ref: str, node: str | None) -> str:
        return self._identities.identity(image_ref, node)

    def node_containers(self) -> list[str]:
        out = subprocess.run([str(self.cluster.kind_path), "get", "nodes", "--name", self.name],
                             capture_output=True, text=True, timeout=30)
        return out.stdout.split()

    def docker_network(self) -> str | None:
        return "kind"

    def delete(self) -> None:
        """Delete the cluster if this run created it; a no-op for one it found (someone else's)."""
        if not self.created:
            return
        say(f"deleting kind cluster {self.name}")
        self.cluster.delete(check=True)
        self.created = False
        if self.run is not None:
            self.run.forget(runstate.CLUSTER, self.name)

    def remove_workdir(self) -> None:
        """This run's kubeconfig directory (it holds the cluster's client keys), never another run's."""
        shutil.rmtree(self.workdir, ignore_errors=True)
        if self.run is not None:
            self.run.forget(runstate.TEMP_DIR, str(self.workdir))


class ExistingClusterProvider:
    """A cluster the user already has (kubeconfig): never created nor deleted here."""

    def __init__(self, kubeconfig: Path, name: str = "existing") -> None:
        self.name = name
        self.kubeconfig = Path(kubeconfig)

    def start(self) -> ExistingClusterProvider:
        return self

    def load_image(self, image: str) -> None:
        # Images must be pullable by that cluster; nothing to load.
        return None

    def node_containers(self) -> list[str]:
        return []

    def image_identity(self, image_ref: str, node: str | None) -> str:
        return runtime_digest(image_ref, node)  # its nodes' runtimes are not ours to ask

    def docker_network(self) -> str | None:
        return None

    def delete(self) -> None:
        return None
