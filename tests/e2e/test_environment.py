"""End-to-end checks of the rehearsal environment itself, on the session's
shared kind cluster and Postgres (the `kind_cluster` and `postgres` fixtures
of our pytest plugin), before any rehearsal relies on it:

- the cluster runs on the locally built node image, Kubernetes v1.34.4, its
  node Ready and every kube-system pod Running and Ready;
- images built locally reach the cluster with `kind load` (nothing can be
  pulled): a Deployment rolls forward v1 → v2 and `kubectl rollout undo`
  brings back exactly v1's image (same imageID, same content);
- an image `kind load`ed and pulled from the registry (two manifest digests) is one
  identity to the harness, Docker's image ID;
- pods reach the Postgres container on the kind network, resolve cluster DNS
  names, and reach another pod through a ClusterIP Service.

Everything created here (namespaces, images, the database) is removed by
fixture finalizers.
"""

from __future__ import annotations

import io
import json
import subprocess
import textwrap
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import docker
import docker.errors
import psycopg
import pytest

from harness import tools
from harness.wait import Wait

pytestmark = pytest.mark.e2e

KUBE_VERSION = tools.KUBE_VERSION
BASE_IMAGE = "rollback-rehearsal/debian:bookworm"
DEMO_IMAGE = "rollback-rehearsal/demo-app:v1"
TEST_LABEL = {"rollback-rehearsal.test": "1"}
# Components a healthy cluster runs in kube-system (name prefixes). The node
# image's pod network is a static bridge CNI config, so there is no kindnet.
KUBE_SYSTEM_COMPONENTS = ["coredns-", "etcd-", "kube-apiserver-", "kube-controller-manager-", "kube-scheduler-",
                          "kube-proxy-"]


class PodFailed(Exception):
    """A pod reached phase Failed: waiting longer cannot help."""


# ── helpers ──────────────────────────────────────────────────────────────────


def _docker(*args: str, timeout: float = 60) -> str:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"docker {' '.join(args)} failed: {proc.stderr.strip()}"
    return proc.stdout


def _ready(obj: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in obj.get("status", {}).get("conditions", []))


def _pod_state(pod: dict[str, Any]) -> str:
    st = pod.get("status", {})
    waiting = [cs["state"]["waiting"].get("reason", "") for cs in st.get("containerStatuses", [])
               if "waiting" in cs.get("state", {})]
    return f"{pod['metadata']['name']}: {st.get('phase')}{' ' + ','.join(waiting) if waiting else ''}" \
           f"{' ready' if _ready(pod) else ''}"


def _pod_manifest(name: str, image: str, command: list[str], *, secret: str | None = None,
                  labels: dict[str, str] | None = None, restart: str = "Never") -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "image": image, "imagePullPolicy": "IfNotPresent",
                                 "command": command}
    if secret:  # DATABASE_URL from a Secret, never on a command line
        container["env"] = [{"name": "DATABASE_URL",
                             "valueFrom": {"secretKeyRef": {"name": secret, "key": "DATABASE_URL"}}}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {}},
            "spec": {"restartPolicy": restart, "terminationGracePeriodSeconds": 1, "containers": [container]}}


def run_pod_to_completion(kubectl: Any, namespace: str, name: str, image: str, command: list[str], *,
                          secret: str | None = None, timeout_s: float = 120) -> str:
    """Run a one-shot pod, wait for it to succeed, return its log."""
    manifest = _pod_manifest(name, image, command, secret=secret)
    manifest["metadata"]["namespace"] = namespace
    kubectl.apply(manifest)

    def succeeded() -> tuple[bool, str]:
        pod = kubectl.json("get", "pod", name, "-n", namespace)
        phase = pod.get("status", {}).get("phase")
        if phase == "Failed":
            logs = kubectl.run("logs", name, "-n", namespace, timeout=30, check=False)
            raise PodFailed(f"pod {namespace}/{name} failed:\n{logs.stdout}{logs.stderr}")
        return phase == "Succeeded", _pod_state(pod)

    Wait(f"pod {namespace}/{name} to succeed", timeout_s, 1.0, fatal=(PodFailed,),
         hint=f"kubectl describe pod {name} -n {namespace}",
         evidence=lambda: kubectl.run("describe", "pod", name, "-n", namespace, check=False).stdout[-3000:],
         ).until(succeeded)
    return kubectl("logs", name, "-n", namespace, timeout=30)


def db_secret(kubectl: Any, namespace: str, dsn: str, name: str = "envtest-db") -> str:
    kubectl.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace},
                   "stringData": {"DATABASE_URL": dsn}})
    return name


def _workload_pods(kubectl: Any, namespace: str, selector: str) -> list[dict[str, Any]]:
    return kubectl.json("get", "pods", "-n", namespace, "-l", selector)["items"]


def wait_rollout(kubectl: Any, namespace: str, deployment: str, image: str, replicas: int,
                 timeout_s: float = 150) -> dict[str, str]:
    """Wait until the Deployment has rolled out IMAGE: exactly REPLICAS pods, all
    Ready and running IMAGE, none left terminating. Returns {pod: imageID}."""
    result: dict[str, str] = {}

    def rolled_out() -> tuple[bool, str]:
        dep = kubectl.json("get", "deployment", deployment, "-n", namespace)
        st = dep.get("status", {})
        pods = _workload_pods(kubectl, namespace, f"app={deployment}")
        state = (f"generation {dep['metadata']['generation']} observed {st.get('observedGeneration')}, "
                 f"updated {st.get('updatedReplicas', 0)}/{replicas}, available {st.get('availableReplicas', 0)}; "
                 + "; ".join(_pod_state(p) for p in pods))
        if st.get("observedGeneration", 0) < dep["metadata"]["generation"]:
            return False, state
        if st.get("updatedReplicas") != replicas or st.get("availableReplicas") != replicas or len(pods) != replicas:
            return False, state
        for p in pods:
            statuses = p.get("status", {}).get("containerStatuses", [])
            if p["metadata"].get("deletionTimestamp") or not _ready(p) or not statuses:
                return False, state
            if not (statuses[0]["image"] == image or statuses[0]["image"].endswith("/" + image)) or not statuses[0].get("imageID"):
                return False, state
        result.clear()
        result.update({p["metadata"]["name"]: p["status"]["containerStatuses"][0]["imageID"] for p in pods})
        return True, state

    Wait(f"rollout of {image} in {namespace}/{deployment}", timeout_s, 1.0,
         hint=f"kubectl -n {namespace} describe deployment {deployment}; kubectl -n {namespace} get events",
         evidence=lambda: kubectl.run("get", "events", "-n", namespace, "--sort-by=.lastTimestamp",
                                      check=False).stdout[-3000:],
         ).until(rolled_out)
    return dict(result)


# ── fixtures ─────────────────────────────────────────────────────────────────


@pytest.fixture(scope="module")
def docker_client() -> Iterator[docker.DockerClient]:
    client = docker.from_env()
    yield client
    client.close()


@pytest.fixture(scope="module")
def variant_images(request: pytest.FixtureRequest, kind_cluster: Any,
                   docker_client: docker.DockerClient) -> dict[str, str]:
    """Two tiny local images (v1, v2) differing in content, loaded into the cluster.

    Removed at the end from Docker and (best effort) from the nodes' containerd,
    so a reused cluster does not accumulate them either.
    """
    repo = f"rollback-rehearsal/envtest-{uuid.uuid4().hex[:8]}"
    refs = {v: f"{repo}:{v}" for v in ("v1", "v2")}

    def cleanup() -> None:
        for node in kind_cluster.node_containers():
            for ref in refs.values():
                subprocess.run(["docker", "exec", node, "crictl", "rmi", ref],
                               capture_output=True, timeout=60)
        for ref in refs.values():
            try:
                docker_client.images.remove(ref, force=True)
            except docker.errors.ImageNotFound:
                pass

    request.addfinalizer(cleanup)
    for variant, ref in refs.items():
        dockerfile = textwrap.dedent(f"""\
            FROM {BASE_IMAGE}
            RUN echo {variant}-{repo} > /variant
            CMD ["sleep", "infinity"]
            """)
        docker_client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=ref, pull=False, rm=True,
                                   forcerm=True, labels={**TEST_LABEL, "rollback-rehearsal.variant": variant},
                                   timeout=300)
        kind_cluster.load_image(ref)
    return refs


@pytest.fixture(scope="module")
def demo_image(kind_cluster: Any) -> str:
    kind_cluster.load_image(DEMO_IMAGE)  # the demo image is `make env`'s; loading it again is harmless
    return DEMO_IMAGE


@pytest.fixture(scope="module")
def envtest_db(postgres: Any) -> Iterator[Any]:
    """A database and role of its own on the session's Postgres, dropped at the end."""
    handle = postgres.create_database("envtest")
    yield handle
    # A pod of a namespace being deleted may reconnect between the backend
    # termination and DROP DATABASE: try again briefly.
    def dropped() -> tuple[bool, str]:
        postgres.drop_database(handle)
        return True, "dropped"

    Wait(f"database {handle.name} to be dropped", 30, 2.0).until(dropped)


# ── a. the cluster itself ────────────────────────────────────────────────────


def test_cluster_runs_local_node_image(kind_cluster: Any, kubectl: Any) -> None:
    # The node containers run the image `make env` built, by image ID.
    nodes = kind_cluster.node_containers()
    assert nodes, f"kind reports no nodes for cluster {kind_cluster.name}"
    local_id = json.loads(_docker("image", "inspect", tools.NODE_IMAGE))[0]["Id"]
    for node in nodes:
        info = json.loads(_docker("inspect", node))[0]
        assert info["Config"]["Image"] == tools.NODE_IMAGE, info["Config"]["Image"]
        assert info["Image"] == local_id, f"{node} runs {info['Image']}, the local {tools.NODE_IMAGE} is {local_id}"
        assert info["State"]["Running"], info["State"]

    # Kubernetes v1.34.4 on both ends, every node Ready.
    version = kubectl.json("version")
    assert version["serverVersion"]["gitVersion"] == KUBE_VERSION, version["serverVersion"]
    assert version["clientVersion"]["gitVersion"] == KUBE_VERSION, version["clientVersion"]
    node_objs = kubectl.json("get", "nodes")["items"]
    assert sorted(n["metadata"]["name"] for n in node_objs) == sorted(nodes)
    for n in node_objs:
        assert _ready(n), f"node {n['metadata']['name']} not Ready: {n['status'].get('conditions')}"
        assert n["status"]["nodeInfo"]["kubeletVersion"] == KUBE_VERSION, n["status"]["nodeInfo"]
        assert n["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://")

    # Every kube-system pod Running and Ready (CoreDNS may still be starting
    # right after cluster creation), and each expected component present.
    def system_ready() -> tuple[bool, str]:
        pods = kubectl.json("get", "pods", "-n", "kube-system")["items"]
        names = [p["metadata"]["name"] for p in pods]
        missing = [c for c in KUBE_SYSTEM_COMPONENTS if not any(n.startswith(c) for n in names)]
        not_ready = [_pod_state(p) for p in pods if p["status"].get("phase") != "Running" or not _ready(p)]
        return not missing and not not_ready, f"missing {missing}; not ready: {not_ready}"

    Wait("every kube-system pod Running and Ready", 180, 2.0,
         hint="kubectl -n kube-system get pods; images must be preloaded in the node image (offline)",
         evidence=lambda: kubectl.run("get", "pods", "-n", "kube-system", "-o", "wide", check=False).stdout,
         ).until(system_ready)
    pods = kubectl.json("get", "pods", "-n", "kube-system")["items"]
    for p in pods:
        for cs in p["status"]["containerStatuses"]:
            assert cs["ready"] and "running" in cs["state"], f"{p['metadata']['name']}/{cs['name']}: {cs['state']}"
    coredns = [p for p in pods if p["metadata"]["name"].startswith("coredns-")]
    assert all(p["status"].get("podIP", "").startswith("10.244.") for p in coredns), [_pod_state(p) for p in coredns]


# ── b. local images, rollout and rollout undo ────────────────────────────────


def test_rollout_and_undo_restore_the_same_image(kubectl: Any, namespace_factory: Callable[[str], str],
                                                 variant_images: dict[str, str]) -> None:
    ns = namespace_factory("envtest-rollout")
    v1, v2 = variant_images["v1"], variant_images["v2"]
    replicas = 2
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "sleeper", "namespace": ns, "labels": {"app": "sleeper"}},
        "spec": {
            "replicas": replicas, "revisionHistoryLimit": 5,
            "selector": {"matchLabels": {"app": "sleeper"}},
            "template": {
                "metadata": {"labels": {"app": "sleeper"}},
                "spec": {"terminationGracePeriodSeconds": 1,  # `sleep` as PID 1 ignores SIGTERM
                         "containers": [{"name": "main", "image": v1, "imagePullPolicy": "IfNotPresent"}]},
            },
        },
    }
    kubectl.apply(deployment)
    ids_v1 = wait_rollout(kubectl, ns, "sleeper", v1, replicas)
    assert len(set(ids_v1.values())) == 1, ids_v1
    id_v1 = next(iter(ids_v1.values()))

    def content(pod: str) -> str:
        return kubectl("exec", "-n", ns, pod, "--", "cat", "/variant", timeout=30).strip()

    assert {content(p) for p in ids_v1} == {f"v1-{v1.split(':')[0]}"}

    kubectl("set", "image", "deployment/sleeper", f"main={v2}", "-n", ns)
    ids_v2 = wait_rollout(kubectl, ns, "sleeper", v2, replicas)
    assert not set(ids_v2) & set(ids_v1), "set image should have replaced every pod"
    assert len(set(ids_v2.values())) == 1, ids_v2
    id_v2 = next(iter(ids_v2.values()))
    assert id_v2 != id_v1
    assert {content(p) for p in ids_v2} == {f"v2-{v2.split(':')[0]}"}

    kubectl("rollout", "undo", "deployment/sleeper", "-n", ns)
    ids_undo = wait_rollout(kubectl, ns, "sleeper", v1, replicas)
    assert not set(ids_undo) & set(ids_v2)
    assert set(ids_undo.values()) == {id_v1}, f"after undo: {ids_undo}, v1 was {id_v1}"
    assert {content(p) for p in ids_undo} == {f"v1-{v1.split(':')[0]}"}

    # Undo is a new revision (3) whose template is revision 1's.
    dep = kubectl.json("get", "deployment", "sleeper", "-n", ns)
    assert dep["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == v1


# ── c. pods reach Postgres, DNS and Services ─────────────────────────────────


def test_pod_reaches_postgres(kubectl: Any, namespace_factory: Callable[[str], str], demo_image: str,
                              postgres: Any, envtest_db: Any) -> None:
    # The database answers from the host first: a pod failure below is then the network's.
    with psycopg.connect(envtest_db.host_dsn, connect_timeout=5) as conn:
        assert conn.execute("select current_database()").fetchone() == (envtest_db.name,)
    assert f"@{postgres.cluster_host}:{postgres.cluster_port}/" in envtest_db.cluster_dsn

    ns = namespace_factory("envtest-db")
    secret = db_secret(kubectl, ns, envtest_db.cluster_dsn)
    script = ("import os, psycopg\n"
              "c = psycopg.connect(os.environ['DATABASE_URL'], connect_timeout=10)\n"
              "print(c.execute('select 42').fetchone()[0])\n"
              "print(c.execute('select current_database(), current_user').fetchone())\n")
    log = run_pod_to_completion(kubectl, ns, "select-42", demo_image, ["python3", "-c", script], secret=secret)
    lines = log.strip().splitlines()
    assert lines[0] == "42", log
    assert lines[1] == str((envtest_db.name, envtest_db.role)), log
    # The DSN (with its password) reached the pod through the Secret only.
    pod = kubectl("get", "pod", "select-42", "-n", ns, "-o", "json")
    assert envtest_db.password not in pod


def test_cluster_dns_resolves_kubernetes_service(kubectl: Any, namespace_factory: Callable[[str], str],
                                                 demo_image: str) -> None:
    ns = namespace_factory("envtest-dns")
    cluster_ip = kubectl("get", "service", "kubernetes", "-n", "default", "-o", "jsonpath={.spec.clusterIP}")
    script = "import socket; print(socket.gethostbyname('kubernetes.default.svc.cluster.local'))"
    log = run_pod_to_completion(kubectl, ns, "dns", demo_image, ["python3", "-c", script])
    assert log.strip() == cluster_ip


def test_service_cluster_ip_reaches_another_pod(kubectl: Any, namespace_factory: Callable[[str], str],
                                                demo_image: str, envtest_db: Any) -> None:
    """The demo app (v1) behind a ClusterIP Service, Ready on /healthz against
    Postgres, answers a client pod by the Service's name and by its FQDN."""
    ns = namespace_factory("envtest-svc")
    secret = db_secret(kubectl, ns, envtest_db.cluster_dsn)
    server = _pod_manifest("demo", demo_image, ["python3", "/app/app.py"], secret=secret,
                           labels={"app": "demo"}, restart="Always")
    server["metadata"]["namespace"] = ns
    spec = server["spec"]
    # The schema first (v1's /healthz needs schema >= 1), from the same image.
    spec["initContainers"] = [{**spec["containers"][0], "name": "migrate", "command": ["migrate", "up"]}]
    spec["containers"][0].update({
        "ports": [{"containerPort": 8080, "name": "http"}],
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 2},
    })
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "demo", "namespace": ns},
               "spec": {"type": "ClusterIP", "selector": {"app": "demo"},
                        "ports": [{"port": 8080, "targetPort": "http", "name": "http"}]}}
    kubectl.apply(server, service)

    def endpoint_ready() -> tuple[bool, str]:
        pod = kubectl.json("get", "pod", "demo", "-n", ns)
        slices = kubectl.json("get", "endpointslices", "-n", ns, "-l", "kubernetes.io/service-name=demo")["items"]
        ready = [a for s in slices for e in s.get("endpoints") or [] if e.get("conditions", {}).get("ready")
                 for a in e["addresses"]]
        return bool(ready), f"{_pod_state(pod)}; ready endpoints {ready}"

    Wait("demo pod Ready behind Service demo", 120, 1.0, hint=f"kubectl -n {ns} describe pod demo",
         evidence=lambda: kubectl.run("logs", "demo", "-n", ns, "--all-containers", check=False).stdout[-2000:],
         ).until(endpoint_ready)
    cluster_ip = kubectl("get", "service", "demo", "-n", ns, "-o", "jsonpath={.spec.clusterIP}")
    assert cluster_ip and cluster_ip != "None"

    script = textwrap.dedent(f"""\
        import socket, urllib.request
        print(socket.gethostbyname('demo'))
        for url in ('http://demo:8080/version', 'http://demo.{ns}.svc.cluster.local:8080/healthz'):
            with urllib.request.urlopen(url, timeout=10) as r:
                print(r.status, r.read().decode().strip().splitlines()[0])
        """)
    log = run_pod_to_completion(kubectl, ns, "client", demo_image, ["python3", "-c", script])
    lines = log.strip().splitlines()
    assert lines[0] == cluster_ip, log  # the name resolves to the Service's virtual IP, not the pod's
    assert lines[1] == "200 v1", log
    assert lines[2].startswith("200"), log


# ── e. one image, two manifests: the running image's identity ────────────────


def test_an_image_kind_loaded_and_pulled_from_the_registry_is_one_identity(
        kind_cluster: Any, rehearsal_session: Any, variant_images: dict[str, str]) -> None:
    """The node's copy of an image `kind load`ed (one manifest digest) and then pulled from the rehearsal
    registry (another: compressed layers) has two repo digests, and containerd may report either as a pod's
    imageID. The harness names both by the image ID, which is Docker's for the same content
    (harness/snapshot/image_ids.py); another image keeps another name."""
    image = variant_images["v1"]
    registry = rehearsal_session.ensure_registry()
    remote = f"{registry.address}/envtest-identity/{image.rsplit('/', 1)[-1]}"
    node = kind_cluster.node_containers()[0]
    try:
        _docker("tag", image, remote)
        _docker("push", remote, timeout=120)
        _docker("exec", node, "crictl", "pull", remote, timeout=120)
        listed = json.loads(_docker("exec", node, "crictl", "images", "-o", "json"))["images"]
        (entry,) = [i for i in listed if any(t.endswith(image.split("/", 1)[1]) for t in i.get("repoTags") or [])]
        digests = {d.rsplit("@", 1)[1] for d in entry.get("repoDigests") or []}
        assert len(digests) == 2, entry  # the import's and the registry's manifest: what made two names
        docker_id = _docker("image", "inspect", "--format", "{{.Id}}", image).strip()
        named = {kind_cluster.image_identity(f"any/name@{d}", node) for d in digests}
        assert named == {docker_id}
        other = _docker("image", "inspect", "--format", "{{.Id}}", variant_images["v2"]).strip()
        assert other != docker_id
    finally:  # only the registry's references: `crictl rmi` would remove the image, which v1's tag still names
        repo = remote.rsplit(":", 1)[0]
        refs = _docker("exec", node, "ctr", "-n", "k8s.io", "images", "ls", "-q").split()
        mine = [r for r in refs if r.startswith((repo + ":", repo + "@"))]
        if mine:
            subprocess.run(["docker", "exec", node, "ctr", "-n", "k8s.io", "images", "rm", *mine],
                           capture_output=True, timeout=60)
        subprocess.run(["docker", "rmi", remote], capture_output=True, timeout=60)
