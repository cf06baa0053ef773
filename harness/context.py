"""RehearsalContext: everything the phases share for one scenario run."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import subprocess
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import placeholders, runstate, tools
from harness.faults import FaultInjector
from harness.helm import UpgradeOutcome
from harness.journal import Journal
from harness.providers.database import DatabaseHandle
from harness.providers.factory import Infrastructure
from harness.redact import Redactor
from harness.render import render_manifests
from harness.scenario.models import Scenario

if TYPE_CHECKING:  # annotations only: harness.snapshot.state reads the context to take a snapshot
    from harness.snapshot.state import StateSnapshot


SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def command_environment(scenario: Scenario, tool_dirs: Sequence[str], home: str, cluster: Mapping[str, str],
                        variables: Mapping[str, str]) -> dict[str, str]:
    """The environment of the scenario's own commands on the host (runbook, `pre_release`, host migrations,
    the ladder's): the tools, a throwaway HOME, the cluster's settings, the variables, the bound placeholders
    and `pass_env`, in that order of precedence (last wins). Never the user's whole environment."""
    env = {"PATH": ":".join([*tool_dirs, SYSTEM_PATH]), "HOME": home, **cluster, "LANG": "C.UTF-8"}
    if os.environ.get("DOCKER_HOST"):
        env["DOCKER_HOST"] = os.environ["DOCKER_HOST"]
    env.update(variables)
    env.update(placeholders.exported(scenario.runbook.placeholders))  # `$N` of a bound placeholder
    env.update({name: os.environ[name] for name in scenario.pass_env_names if name in os.environ})
    return env


@dataclass
class RehearsalContext:
    scenario: Scenario
    infra: Infrastructure
    journal: Journal
    report_dir: Path
    keep: bool = False
    namespace: str = ""
    db: DatabaseHandle | None = None
    redactor: Redactor = field(default_factory=Redactor)
    cleanup: ExitStack = field(default_factory=ExitStack)
    # Filled by phases.
    bad_deployed_at: float | None = None
    # With app.helm: the bad release's `helm upgrade` as helm answered it, and when it returned (phase detect
    # takes helm's own failure and rollback, --atomic, as the detection).
    bad_upgrade: UpgradeOutcome | None = None
    bad_upgrade_ended_at: float | None = None
    pods_before_bad: set[str] = field(default_factory=set)
    _home: str = ""
    runbook_started_at: float | None = None
    fault_injector: FaultInjector | None = None  # the scenario's faults while the runbook runs (faults.runbook_hook)
    _apis: tuple[Any, Any, Any] | None = None  # api()'s clients, made once: each poll would else parse the
    # kubeconfig and open a new TLS connection (measured: 53 ms of CPU per poll against 7.5 ms)
    # The snapshots later phases compare with, named like the journal fields that record them.
    baseline: StateSnapshot | None = None          # phase baseline
    after_bad_deploy: StateSnapshot | None = None  # phase detect, once the bad release failed

    # ── Kubernetes access ────────────────────────────────────────────────
    @property
    def kubeconfig(self) -> Path:
        return self.infra.cluster.kubeconfig

    def kubectl(self, *args: str, input: str | None = None, timeout: float = 120,
                check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(tools.tool("kubectl")), f"--kubeconfig={self.kubeconfig}", *args]
        proc = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError(self.redactor(f"kubectl {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}"))
        return proc

    def helm(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
        """helm on the scenario's cluster and namespace, with the runbook's throwaway HOME (helm writes its
        cache and config there, never in the user's); argv only, no shell."""
        cmd = [str(tools.tool("helm")), f"--kubeconfig={self.kubeconfig}", f"--namespace={self.namespace}", *args]
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": self.runbook_home(), "LANG": "C.UTF-8"}
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        if check and proc.returncode != 0:
            raise RuntimeError(self.redactor(f"helm {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}"))
        return proc

    def api(self) -> tuple[Any, Any, Any]:
        """(AppsV1Api, CoreV1Api, BatchV1Api) for the rehearsal cluster, over one connection pool per scenario
        (urllib3's pool is thread-safe: the steady watch and a fault's thread may share it)."""
        if self._apis is None:
            from kubernetes import client, config  # noqa: PLC0415

            api_client = config.new_client_from_config(config_file=str(self.kubeconfig))
            self._apis = client.AppsV1Api(api_client), client.CoreV1Api(api_client), client.BatchV1Api(api_client)
        return self._apis

    def get_raw(self, path: str, query: dict[str, str] | None = None, timeout: float = 30) -> tuple[int, str]:
        """(HTTP status, body) of a GET of an API path, what `kubectl get --raw PATH` reads, over api()'s
        connection: the waits poll several paths every second, and a kubectl process per poll cost more CPU
        than the rest of the harness (measured: 2,691 kubectl processes, 197 s of CPU, in one `make test`).
        Status 0: no answer (the API server unreachable, or silent for `timeout` seconds)."""
        from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

        api_client = self.api()[0].api_client
        try:
            method, url, headers, body, post = api_client.param_serialize(
                "GET", path, query_params=list((query or {}).items()),
                header_params={"Accept": "application/json, */*"}, auth_settings=["BearerToken"])
            resp = api_client.call_api(method, url, headers, body, post, _request_timeout=timeout)
            return int(resp.status), (resp.read() or b"").decode("utf-8", "replace")
        except ApiException as exc:
            body = exc.body.decode("utf-8", "replace") if isinstance(exc.body, bytes) else str(exc.body or "")
            return int(exc.status or 0), body or str(exc.reason or "")
        except Exception as exc:  # noqa: BLE001 (urllib3's connection and timeout errors: no answer, a state)
            return 0, f"{type(exc).__name__}: {exc}"

    def get_json(self, path: str, query: dict[str, str] | None = None, timeout: float = 30) -> Any:
        """The JSON object at an API path (as `kubectl get -o json` prints it); RuntimeError without one."""
        status, body = self.get_raw(path, query, timeout)
        if not 200 <= status < 300:
            raise RuntimeError(self.redactor(f"GET {path}: {f'HTTP {status}' if status else 'no answer'}: "
                                             f"{body.strip()[:300]}"))
        return json.loads(body)

    def close_api(self) -> None:
        """Close api()'s connections (the scenario is over); a later api() opens new ones."""
        apis, self._apis = self._apis, None
        if apis is not None:
            apis[0].api_client.close()

    # ── Variables and the runbook's environment ──────────────────────────
    @property
    def registry_prefix(self) -> str:
        """`$REGISTRY`: the session's registry and this scenario's own path in it (`127.0.0.1:<port>/<namespace>`),
        as a scenario has its own namespace and database. Scenarios side by side (`-j N`) that promote
        `demo:production` would otherwise move one another's production tag."""
        assert self.infra.registry is not None
        return f"{self.infra.registry.address}/{self.namespace}"

    def registry_repository(self) -> str:
        """The scenario's repository as the registry's API names it (under the scenario's own path)."""
        assert self.scenario.registry is not None
        return f"{self.namespace}/{self.scenario.registry.repository}"

    def variables(self, image: str = "") -> dict[str, str]:
        """Values available as ${NAME} in manifests and as env vars in runbooks."""
        assert self.db is not None
        s = self.scenario
        out = {
            "NAMESPACE": self.namespace,
            "DATABASE_URL": self.db.host_dsn,
            "CLUSTER_DATABASE_URL": self.db.cluster_dsn,
            "GOOD_IMAGE": s.versions.good.image,
            "BAD_IMAGE": s.versions.bad.image,
        }
        if image:
            out["APP_IMAGE"] = image
        reg = self.infra.registry
        if reg is not None and s.registry is not None:
            out["REGISTRY"] = self.registry_prefix
            out["REPOSITORY"] = s.registry.repository
            out["GOOD_TAG"] = s.versions.good.tag or ""
            out["BAD_TAG"] = s.versions.bad.tag or ""
        out.update({k: v.value for k, v in s.variables.items()})
        return out

    def runbook_env(self) -> dict[str, str]:
        """Only what the runbook is declared to see: never the user's whole environment."""
        cluster = {
            "KUBECONFIG": str(self.kubeconfig),
            "HELM_NAMESPACE": self.namespace,  # `helm rollback` acts on the scenario's namespace, as kubectl's -n would
        }
        return command_environment(self.scenario, self._tool_dirs(), self.runbook_home(), cluster, self.variables())

    def _tool_dirs(self) -> list[str]:
        """Where the runbook finds kubectl and helm (the built ones: `make env` links both into one directory).
        helm is required only by a scenario with `app.helm`; otherwise it is on PATH when it is there."""
        found = [tools.tool("kubectl").parent]
        try:
            found.append(tools.tool("helm").parent)
        except tools.ToolMissing:
            if self.scenario.app.helm is not None:
                raise
        return list(dict.fromkeys(str(d) for d in found))

    def runbook_home(self) -> str:
        """A private, throwaway HOME (docker login etc. must not land in reports)."""
        if not self._home:
            self._home = tempfile.mkdtemp(prefix=f"rehearsal-{self.scenario.name}-home-")
            self.infra.record(runstate.TEMP_DIR, self._home)  # for the reaper, should this run be killed
            self.cleanup.callback(self._remove_home)
        return self._home

    def _remove_home(self) -> None:
        shutil.rmtree(self._home, ignore_errors=True)
        self.infra.forget(runstate.TEMP_DIR, self._home)

    def render(self, text: str, image: str) -> str:
        """Manifests with the variables substituted inside their YAML scalars (a value never adds structure)."""
        return render_manifests(text, self.variables(image))

    def manifests(self, image: str) -> str:
        """The app's manifests with ${VAR} substituted (kustomize dirs are built first)."""
        assert self.scenario.app.manifests is not None, "a Helm release has no manifests of its own (release.py)"
        p = self.scenario.path(self.scenario.app.manifests)
        if p.is_dir() and (p / "kustomization.yaml").exists():
            text = self.kubectl("kustomize", str(p)).stdout
        elif p.is_dir():
            text = "\n---\n".join(f.read_text() for f in sorted(p.glob("*.y*ml")))
        else:
            text = p.read_text()
        return self.render(text, image)
