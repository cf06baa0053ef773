"""RehearsalContext (harness/context.py): variables, the runbook's environment, rendering and manifests.

No cluster: the providers are stand-ins and kubectl is a fake where a test needs it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from harness import tools
from harness.context import RehearsalContext
from harness.journal import Journal
from harness.providers.database import DatabaseHandle, ExistingDsnProvider
from harness.providers.factory import Infrastructure
from harness.scenario import load_scenario
from harness.scenario.models import Helm

HANDLE = DatabaseHandle(name="rr_ctx", role="rr_ctx", password="pw", host_dsn="postgresql://rr_ctx:pw@127.0.0.1:5/rr_ctx",
                        cluster_dsn="postgresql://rr_ctx:pw@10.0.0.2:5432/rr_ctx")


def _ctx(scenario_dir: Path, registry: Any = None) -> RehearsalContext:
    scenario = load_scenario(scenario_dir)
    cluster = SimpleNamespace(kubeconfig=Path("/kube/config"), name="k")
    infra = Infrastructure(cluster=cluster, database=ExistingDsnProvider("postgresql://a:b@h/postgres"),  # type: ignore[arg-type]
                           registry=registry)
    return RehearsalContext(scenario=scenario, infra=infra, journal=Journal(scenario=scenario.name, expect="READY"),
                            report_dir=scenario_dir, namespace="rr-ctx", db=HANDLE)


@pytest.fixture
def plain(tmp_path: Path, kit: Any) -> RehearsalContext:
    doc = kit.minimal_doc(variables={"FEATURE": "on", "TOKEN": {"value": "t0k", "secret": True}},
                          pass_env=["CTX_PASSED", "CTX_ABSENT"])
    return _ctx(kit.write_scenario(tmp_path, "ctx", doc))


def test_variables_without_a_registry(plain: RehearsalContext) -> None:
    assert plain.variables() == {
        "NAMESPACE": "rr-ctx", "DATABASE_URL": HANDLE.host_dsn, "CLUSTER_DATABASE_URL": HANDLE.cluster_dsn,
        "GOOD_IMAGE": "demo:v1", "BAD_IMAGE": "demo:v2", "FEATURE": "on", "TOKEN": "t0k"}
    assert plain.variables("demo:v1")["APP_IMAGE"] == "demo:v1"


def test_variables_with_a_registry(tmp_path: Path, kit: Any) -> None:
    doc = kit.minimal_doc(registry={"repository": "demo"},
                          versions={"good": {"image": "demo:v1", "tag": "abc"}, "bad": {"image": "demo:v2", "tag": "def"}})
    ctx = _ctx(kit.write_scenario(tmp_path, "reg", doc), registry=SimpleNamespace(address="127.0.0.1:5001"))
    v = ctx.variables()
    # The scenario's own path in the shared registry (its namespace): side by side, two scenarios never share a tag.
    assert (v["REGISTRY"], v["REPOSITORY"], v["GOOD_TAG"], v["BAD_TAG"]) == (
        f"127.0.0.1:5001/{ctx.namespace}", "demo", "abc", "def")
    assert ctx.registry_repository() == f"{ctx.namespace}/demo"
    # A registry running for another scenario of the session is not this scenario's business.
    assert "REGISTRY" not in _ctx(kit.write_scenario(tmp_path, "noreg"), registry=ctx.infra.registry).variables()


def test_runbook_env_is_only_what_is_declared(plain: RehearsalContext, monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    monkeypatch.setattr(tools, "tool", lambda name: tmp_path / "bin" / name)
    monkeypatch.setenv("CTX_PASSED", "yes")
    monkeypatch.setenv("CTX_NOT_DECLARED", "leak")
    monkeypatch.delenv("CTX_ABSENT", raising=False)
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/docker.sock")
    with plain.cleanup:
        env = plain.runbook_env()
        home = Path(env["HOME"])
        assert home.is_dir() and home.name.startswith("rehearsal-ctx-home-")
        assert plain.runbook_env()["HOME"] == env["HOME"]  # one HOME per rehearsal
    assert not home.exists()  # removed with the scenario's cleanup
    assert set(env) == {"PATH", "HOME", "KUBECONFIG", "LANG", "DOCKER_HOST", "HELM_NAMESPACE", "CTX_PASSED",
                        *plain.variables()}
    assert env["PATH"].startswith(f"{tmp_path / 'bin'}:") and env["KUBECONFIG"] == "/kube/config"
    assert env["HELM_NAMESPACE"] == env["NAMESPACE"]  # `helm rollback` without -n acts on the scenario's namespace
    assert (env["CTX_PASSED"], env["DOCKER_HOST"], env["LANG"]) == ("yes", "unix:///run/docker.sock", "C.UTF-8")
    assert os.environ["CTX_NOT_DECLARED"] == "leak" and "CTX_NOT_DECLARED" not in env


def test_render_substitutes_known_variables_and_leaves_the_rest(plain: RehearsalContext) -> None:
    text = "image: ${APP_IMAGE}\nns: $NAMESPACE\nother: ${UNKNOWN} $$literal ${FEATURE}"
    assert yaml.safe_load(plain.render(text, "demo:v2")) == {
        "image": "demo:v2", "ns": "rr-ctx", "other": "${UNKNOWN} $literal on"}


def test_manifests_of_a_file_and_of_a_plain_directory(tmp_path: Path, kit: Any) -> None:
    d = kit.write_scenario(tmp_path, "dir", kit.minimal_doc(app={"manifests": "k8s", "workloads": [{"deployment": "demo"}]}),
                           manifest=False)
    (d / "k8s").mkdir()
    (d / "k8s" / "b.yml").write_text("kind: B\nimage: ${APP_IMAGE}\n")
    (d / "k8s" / "a.yaml").write_text("kind: A\nnamespace: ${NAMESPACE}\n")
    (d / "k8s" / "notes.txt").write_text("not a manifest")
    assert list(yaml.safe_load_all(_ctx(d).manifests("demo:v1"))) == [
        {"kind": "A", "namespace": "rr-ctx"}, {"kind": "B", "image": "demo:v1"}]
    f = kit.write_scenario(tmp_path, "file")
    (f / "app.yaml").write_text("image: ${APP_IMAGE}\n")
    assert yaml.safe_load(_ctx(f).manifests("x:1")) == {"image": "x:1"}


def test_manifests_of_a_kustomize_directory_are_built_first(tmp_path: Path, kit: Any) -> None:
    d = kit.write_scenario(tmp_path, "kz", kit.minimal_doc(app={"manifests": "k8s", "workloads": [{"deployment": "demo"}]}),
                           manifest=False)
    (d / "k8s").mkdir()
    (d / "k8s" / "kustomization.yaml").write_text("resources: [app.yaml]\n")
    ctx = _ctx(d)
    calls: list[tuple[str, ...]] = []

    def kubectl(*args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        calls.append(args)
        return subprocess.CompletedProcess(args, 0, "image: ${APP_IMAGE}\n", "")

    ctx.kubectl = kubectl  # type: ignore[method-assign]
    assert yaml.safe_load(ctx.manifests("y:2")) == {"image": "y:2"}
    assert calls == [("kustomize", str(d / "k8s"))]


def test_kubectl_failure_is_redacted(plain: RehearsalContext, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "kubectl"
    fake.write_text("#!/bin/sh\necho \"denied for t0k\" >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setattr(tools, "tool", lambda name: fake)
    plain.redactor = plain.redactor.with_secrets(["t0k"])
    with pytest.raises(RuntimeError, match=r"kubectl get pods failed \(3\): denied for \*\*\*$"):
        plain.kubectl("get", "pods")
    assert plain.kubectl("get", "pods", check=False).returncode == 3


def test_runbook_path_has_kubectl_and_helm_and_helm_is_required_only_with_app_helm(
        plain: RehearsalContext, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    where = {"kubectl": tmp_path / "k" / "kubectl", "helm": tmp_path / "h" / "helm"}
    monkeypatch.setattr(tools, "tool", lambda name: where[name])
    with plain.cleanup:
        assert plain.runbook_env()["PATH"].startswith(f"{tmp_path / 'k'}:{tmp_path / 'h'}:")

    def no_helm(name: str) -> Path:
        if name == "helm":
            raise tools.ToolMissing("helm not found")
        return where[name]

    monkeypatch.setattr(tools, "tool", no_helm)
    with plain.cleanup:
        assert plain.runbook_env()["PATH"].startswith(f"{tmp_path / 'k'}:/usr")  # no helm scenario: no need
    helm_app = plain.scenario.app.model_copy(update={"manifests": None, "helm": Helm(chart=Path("c"), release="demo")})
    plain.scenario = plain.scenario.model_copy(update={"app": helm_app})
    with plain.cleanup, pytest.raises(tools.ToolMissing):
        plain.runbook_env()


def test_the_api_clients_are_made_once_per_scenario_and_closed(plain: RehearsalContext,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Every poll of a wait reads the workloads through api(): one kubeconfig parse and one connection pool
    per scenario, not per poll; closed when the scenario is over."""
    from kubernetes import config  # noqa: PLC0415

    made: list[Any] = []

    class Client:
        closed = False

        def close(self) -> None:
            self.closed = True

    def new_client(config_file: str) -> Client:
        made.append(Client())
        return made[-1]

    monkeypatch.setattr(config, "new_client_from_config", new_client)
    first = plain.api()
    assert plain.api() is first and len(made) == 1
    assert first[0].api_client is first[1].api_client is first[2].api_client is made[0]
    plain.close_api()
    assert made[0].closed
    assert plain.api() is not first and len(made) == 2


def test_get_raw_and_get_json_read_api_paths_over_one_connection(plain: RehearsalContext, tmp_path: Path) -> None:
    """What the waits poll (pods, events, a Job, the smoke request through the proxy), read over HTTP from a
    real server on loopback that stands in for the API server: JSON, query parameters, error statuses, and
    no answer at all."""
    import http.server  # noqa: PLC0415
    import json  # noqa: PLC0415
    import socket  # noqa: PLC0415
    import threading  # noqa: PLC0415
    from urllib.parse import parse_qs, urlsplit  # noqa: PLC0415

    seen: list[tuple[str, dict[str, list[str]]]] = []

    class Api(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            url = urlsplit(self.path)
            seen.append((url.path, parse_qs(url.query)))
            status, body = {"/api/v1/namespaces/rr-ctx/pods": (200, json.dumps({"items": [{"kind": "Pod"}]})),
                            "/proxy/healthz": (503, "no database")}.get(url.path, (404, "not found"))
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Api)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    config = tmp_path / "kubeconfig"
    config.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": f"http://127.0.0.1:{server.server_port}"}}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}], "users": [{"name": "u", "user": {}}]}))
    plain.infra.cluster.kubeconfig = config  # type: ignore[misc]
    try:
        pods = plain.get_json("/api/v1/namespaces/rr-ctx/pods", {"labelSelector": "app=demo"})
        assert pods == {"items": [{"kind": "Pod"}]}
        assert seen[-1] == ("/api/v1/namespaces/rr-ctx/pods", {"labelSelector": ["app=demo"]})
        assert plain.get_raw("/proxy/healthz") == (503, "no database")
        with pytest.raises(RuntimeError, match="GET /nothing: HTTP 404: not found"):
            plain.get_json("/nothing")
    finally:
        server.shutdown()
        plain.close_api()
    with socket.socket() as s:  # a port nothing listens on: no answer, status 0, never an exception
        s.bind(("127.0.0.1", 0))
        config.write_text(config.read_text().replace(str(server.server_port), str(s.getsockname()[1])))
        status, said = plain.get_raw("/api/v1/namespaces/rr-ctx/pods", timeout=5)
    assert status == 0 and said
    with pytest.raises(RuntimeError, match="no answer"):
        plain.get_json("/api/v1/namespaces/rr-ctx/pods", timeout=5)
    plain.close_api()
