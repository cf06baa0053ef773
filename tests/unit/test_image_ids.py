"""A running image is named by its image ID, whichever repo digest the node's runtime reports for it."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from harness.snapshot import image_ids
from harness.snapshot.app import snapshot_workload
from harness.snapshot.image_ids import ImageIdentities

V1 = "sha256:" + "1" * 64            # the image ID (config digest) of the good release
LOADED = "sha256:" + "a" * 64        # the manifest `kind load` imported for it
PULLED = "sha256:" + "b" * 64        # the manifest a registry served for the same content
V2 = "sha256:" + "2" * 64
V2_LOADED = "sha256:" + "c" * 64

NODE_IMAGES = [
    {"id": V1, "repoTags": ["docker.io/rollback-rehearsal/demo-app:v1", "127.0.0.1:5000/x/demo:abc123"],
     "repoDigests": [f"docker.io/rollback-rehearsal/demo-app@{LOADED}", f"127.0.0.1:5000/x/demo@{PULLED}"]},
    {"id": V2, "repoTags": ["docker.io/rollback-rehearsal/demo-app:v2"],
     "repoDigests": [f"docker.io/rollback-rehearsal/demo-app@{V2_LOADED}"]},
    {"id": "not-a-digest", "repoDigests": ["x@sha256:" + "d" * 64]},
]


class Node:
    def __init__(self, images: list[dict[str, Any]]) -> None:
        self.images, self.calls = images, 0

    def __call__(self, node: str) -> list[dict[str, Any]]:
        self.calls += 1
        return self.images


def test_the_same_content_has_one_name_whichever_manifest_the_runtime_reports() -> None:
    ids = ImageIdentities(Node(NODE_IMAGES))
    loaded = ids.identity(f"docker.io/rollback-rehearsal/demo-app@{LOADED}", "n")
    pulled = ids.identity(f"127.0.0.1:5000/x/demo@{PULLED}", "n")
    assert loaded == pulled == ids.identity(V1, "n") == V1
    assert ids.identity(f"docker.io/rollback-rehearsal/demo-app@{V2_LOADED}", "n") == V2 != V1


def test_the_node_is_asked_once_and_again_only_for_a_digest_it_did_not_know() -> None:
    node, now = Node(NODE_IMAGES[:1]), [0.0]
    ids = ImageIdentities(node, clock=lambda: now[0])
    for _ in range(3):
        assert ids.identity(f"x@{LOADED}", "n") == V1
    assert node.calls == 1
    # Unknown to the node: its own digest stands in (never another image's ID), asked again after RETRY_S.
    assert ids.identity(f"x@{V2_LOADED}", "n") == V2_LOADED and node.calls == 2
    assert ids.identity(f"x@{V2_LOADED}", "n") == V2_LOADED and node.calls == 2
    node.images = NODE_IMAGES
    now[0] += image_ids.RETRY_S
    assert ids.identity(f"x@{V2_LOADED}", "n") == V2 and node.calls == 3


@pytest.mark.parametrize("failure", [RuntimeError("crictl: no such container"), subprocess.TimeoutExpired("x", 30),
                                     ValueError("not JSON"), OSError("docker not found")])
def test_a_runtime_that_cannot_answer_leaves_the_reported_digest(failure: Exception) -> None:
    def broken(node: str) -> list[dict[str, Any]]:
        raise failure

    ids = ImageIdentities(broken)
    assert ids.identity(f"x@{LOADED}", "n") == LOADED


def test_nothing_to_resolve() -> None:
    node = Node(NODE_IMAGES)
    ids = ImageIdentities(node)
    assert ids.identity("", "n") == "" and ids.identity(f"x@{LOADED}", None) == LOADED  # no node: no runtime to ask
    assert node.calls == 0


def test_crictl_images_reads_the_runtimes_list(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []

    def run(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        seen.append(argv)
        return subprocess.CompletedProcess(argv, 0, '{"images": [{"id": "sha256:1"}]}', "")

    monkeypatch.setattr(image_ids.subprocess, "run", run)
    assert image_ids.crictl_images("rr-control-plane") == [{"id": "sha256:1"}]
    assert seen == [["docker", "exec", "rr-control-plane", "crictl", "images", "-o", "json"]]
    monkeypatch.setattr(image_ids.subprocess, "run",
                        lambda argv, **kw: subprocess.CompletedProcess(argv, 1, "", "Error: No such container"))
    with pytest.raises(RuntimeError, match="No such container"):
        image_ids.crictl_images("gone")


def _k8s(**fields: Any) -> Any:
    from types import SimpleNamespace  # noqa: PLC0415
    return SimpleNamespace(**fields)


def test_two_pods_of_one_release_are_one_image_to_the_snapshot() -> None:
    """The case met on the cluster: one ReplicaSet, one image, two imageIDs (a registry pull had given
    the node's copy a second repo digest) — healthy, one image, as the baseline ran."""
    def pod(name: str, ref: str) -> Any:
        status = _k8s(name="app", ready=True, image_id=ref, restart_count=0)
        return _k8s(metadata=_k8s(name=name, deletion_timestamp=None), spec=_k8s(node_name="n"),
                    status=_k8s(phase="Running", container_statuses=[status]))

    dep = _k8s(spec=_k8s(replicas=2, revision_history_limit=10, selector=_k8s(match_labels={"app": "demo"}),
                         template=_k8s(spec=_k8s(containers=[_k8s(name="app", image="demo:v1", env=None,
                                                                  env_from=None, volume_mounts=None)],
                                                 init_containers=None, volumes=None))),
               metadata=_k8s(generation=1, annotations={}),
               status=_k8s(observed_generation=1, replicas=2, updated_replicas=2, ready_replicas=2,
                           available_replicas=2))
    apps = _k8s(read_namespaced_deployment=lambda name, ns: dep)
    core = _k8s(list_namespaced_pod=lambda ns, label_selector: _k8s(items=[
        pod("demo-1", f"docker.io/rollback-rehearsal/demo-app@{LOADED}"), pod("demo-2", f"127.0.0.1:5000/x/demo@{PULLED}")]))
    ids = ImageIdentities(Node(NODE_IMAGES))
    state = snapshot_workload(apps, core, "ns", "demo", "app", ids.identity)
    assert state.image_ids == [V1] and state.healthy
    raw = snapshot_workload(apps, core, "ns", "demo", "app")  # what the runtime's names alone would say
    assert raw.image_ids == sorted([LOADED, PULLED]) and not raw.healthy


@pytest.mark.parametrize(("image", "canonical"), [
    ("demo", "docker.io/library/demo:latest"),
    ("demo:v1", "docker.io/library/demo:v1"),
    ("rollback-rehearsal/demo-app:v1", "docker.io/rollback-rehearsal/demo-app:v1"),
    ("127.0.0.1:5000/rr-x/demo:abc123", "127.0.0.1:5000/rr-x/demo:abc123"),
    ("localhost/demo", "localhost/demo:latest"),
    ("registry.example/team/demo@sha256:" + "e" * 64, "registry.example/team/demo@sha256:" + "e" * 64),
])
def test_references_are_named_as_containerd_names_them(image: str, canonical: str) -> None:
    assert image_ids.canonical_reference(image) == canonical


def _provider(monkeypatch: pytest.MonkeyPatch, tmp_path: Any, nodes: dict[str, Any]) -> Any:
    import tempfile  # noqa: PLC0415

    from harness.providers import cluster  # noqa: PLC0415

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the provider's kubeconfig directory
    monkeypatch.setattr(cluster.KindProvider, "node_containers", lambda self: list(nodes))

    def listing(node: str) -> list[dict[str, Any]]:
        answer = nodes[node]
        if isinstance(answer, Exception):
            raise answer
        return list(answer)

    monkeypatch.setattr(cluster, "crictl_images", listing)
    return cluster.KindProvider("rr-x")


V1_ON_NODE = {"id": V1, "repoTags": ["docker.io/rollback-rehearsal/demo-app:v1"]}


@pytest.mark.parametrize(("nodes", "has"), [
    ({"n1": [V1_ON_NODE], "n2": [V1_ON_NODE]}, True),
    ({"n1": [V1_ON_NODE], "n2": []}, False),                                         # one node lacks it
    ({"n1": [{"id": V1, "repoTags": ["127.0.0.1:5000/x/demo:abc123"]}]}, False),    # the content, not the name
    ({"n1": [{"id": V2, "repoTags": ["docker.io/rollback-rehearsal/demo-app:v1"]}]}, False),  # the name, not the content
    ({"n1": RuntimeError("crictl: no such container")}, False),                      # cannot ask: load
    ({}, False),                                                                     # no local nodes
])
def test_an_image_on_every_node_under_its_name_is_not_loaded_again(monkeypatch: pytest.MonkeyPatch, tmp_path: Any,
                                                                     nodes: dict[str, Any], has: bool) -> None:
    provider = _provider(monkeypatch, tmp_path, nodes)
    assert provider._nodes_have("rollback-rehearsal/demo-app:v1", V1) is has


def test_load_image_skips_kind_load_for_what_the_nodes_have(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    from harness.providers import cluster  # noqa: PLC0415

    provider = _provider(monkeypatch, tmp_path, {"n1": [V1_ON_NODE]})
    loads: list[str] = []
    monkeypatch.setattr(cluster, "_local_image_id", {"rollback-rehearsal/demo-app:v1": V1,
                                                     "rollback-rehearsal/demo-app:v2": V2}.get)
    monkeypatch.setattr(cluster.KindProvider, "_kind_load", lambda self, image: loads.append(image))
    provider.load_image("rollback-rehearsal/demo-app:v1")  # on the node already
    provider.load_image("rollback-rehearsal/demo-app:v2")  # not there: loaded
    provider.load_image("rollback-rehearsal/demo-app:v2")  # loaded by this run: not asked again
    assert loads == ["rollback-rehearsal/demo-app:v2"]
