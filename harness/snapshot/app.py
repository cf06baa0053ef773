"""The application half of the state snapshot: what each tracked Deployment
declares and what its pods actually run (resolved digests), read through the
Kubernetes API."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict

from harness.journal import Difference
from harness.snapshot.image_ids import runtime_digest

Identify = Callable[[str, "str | None"], str]  # (imageID as a pod reports it, its node) -> the image's identity

REVISION_ANNOTATION = "deployment.kubernetes.io/revision"


class PodState(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    phase: str
    ready: bool
    image_id: str
    restarts: int


class WorkloadState(BaseModel):
    model_config = ConfigDict(frozen=True)
    deployment: str
    container: str
    exists: bool = True
    spec_image: str = ""
    revision: int | None = None
    replicas: int = 0
    ready_replicas: int = 0
    updated_replicas: int = 0
    available_replicas: int = 0
    revision_history_limit: int | None = None
    rollout_complete: bool = False
    image_ids: list[str] = []
    pods: list[PodState] = []
    # ConfigMaps/Secrets the pod template references: "configmap/NAME" ->
    # content hash (never the values). `rollout undo` does not version them.
    config: dict[str, str] = {}

    @property
    def healthy(self) -> bool:
        """Rolled out, every replica ready, and all pods on one image."""
        return (self.exists and self.rollout_complete and self.replicas > 0
                and self.ready_replicas == self.replicas and len(self.image_ids) == 1
                and all(p.ready for p in self.pods))


def _pod_state(pod, container: str, identify: Identify) -> PodState:
    statuses = {s.name: s for s in (pod.status.container_statuses or [])}
    st = statuses.get(container)
    node = pod.spec.node_name if pod.spec is not None else None
    return PodState(
        name=pod.metadata.name, phase=pod.status.phase or "Unknown",
        ready=bool(st and st.ready), image_id=identify((st.image_id if st else "") or "", node),
        restarts=st.restart_count if st else 0,
    )


def _referenced_config(template_spec) -> set[tuple[str, str]]:
    """(kind, name) of every ConfigMap/Secret a pod template reads."""
    refs: set[tuple[str, str]] = set()
    for c in [*(template_spec.containers or []), *(template_spec.init_containers or [])]:
        for e in c.env or []:
            src = e.value_from
            if src and src.config_map_key_ref:
                refs.add(("configmap", src.config_map_key_ref.name))
            if src and src.secret_key_ref:
                refs.add(("secret", src.secret_key_ref.name))
        for ef in c.env_from or []:
            if ef.config_map_ref:
                refs.add(("configmap", ef.config_map_ref.name))
            if ef.secret_ref:
                refs.add(("secret", ef.secret_ref.name))
    for v in template_spec.volumes or []:
        if v.config_map:
            refs.add(("configmap", v.config_map.name))
        if v.secret:
            refs.add(("secret", v.secret.secret_name))
        for src in (v.projected.sources if v.projected else None) or []:
            if src.config_map:
                refs.add(("configmap", src.config_map.name))
            if src.secret:
                refs.add(("secret", src.secret.name))
    return refs


def _content_hash(data: dict | None) -> str:
    return "sha256:" + hashlib.sha256(json.dumps(data or {}, sort_keys=True).encode()).hexdigest()[:16]


def _config_hashes(core_api, namespace: str, refs: set[tuple[str, str]]) -> dict[str, str]:
    from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

    out: dict[str, str] = {}
    for kind, name in sorted(refs):
        try:
            obj = (core_api.read_namespaced_config_map(name, namespace) if kind == "configmap"
                   else core_api.read_namespaced_secret(name, namespace))
            data = dict(obj.data or {})
            if kind == "configmap":
                data.update({f"binary:{k}": v for k, v in (obj.binary_data or {}).items()})
            out[f"{kind}/{name}"] = _content_hash(data)
        except ApiException as exc:
            if exc.status != 404:
                raise
            out[f"{kind}/{name}"] = "missing"
    return out


def snapshot_workload(apps_api, core_api, namespace: str, deployment: str, container: str | None,
                      identify: Identify = runtime_digest) -> WorkloadState:
    """The Deployment's state; its pods' images named by `identify` (harness/snapshot/image_ids.py: the
    image ID of their content, as the cluster's runtime knows it)."""
    from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

    try:
        dep = apps_api.read_namespaced_deployment(deployment, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return WorkloadState(deployment=deployment, container=container or "", exists=False)
        raise
    containers = dep.spec.template.spec.containers
    c = next((x for x in containers if x.name == container), containers[0]) if container else containers[0]
    selector = ",".join(f"{k}={v}" for k, v in (dep.spec.selector.match_labels or {}).items())
    pods = [p for p in core_api.list_namespaced_pod(namespace, label_selector=selector).items
            if p.metadata.deletion_timestamp is None and p.status.phase in ("Running", "Pending")]
    pod_states = sorted((_pod_state(p, c.name, identify) for p in pods), key=lambda p: p.name)
    st = dep.status
    replicas = dep.spec.replicas if dep.spec.replicas is not None else 1
    complete = (
        (st.observed_generation or 0) >= (dep.metadata.generation or 0)
        and (st.updated_replicas or 0) == replicas and (st.replicas or 0) == replicas
        and (st.available_replicas or 0) == replicas and len(pod_states) == replicas
    )
    rev = (dep.metadata.annotations or {}).get(REVISION_ANNOTATION)
    return WorkloadState(
        deployment=deployment, container=c.name, spec_image=c.image, revision=int(rev) if rev else None,
        replicas=replicas, ready_replicas=st.ready_replicas or 0, updated_replicas=st.updated_replicas or 0,
        available_replicas=st.available_replicas or 0, revision_history_limit=dep.spec.revision_history_limit,
        rollout_complete=complete,
        config=_config_hashes(core_api, namespace, _referenced_config(dep.spec.template.spec)),
        image_ids=sorted({p.image_id for p in pod_states if p.image_id and p.phase == "Running"}),
        pods=pod_states,
    )


def _short(image_id: str) -> str:
    return image_id.split("@")[-1][:19] if image_id else "(none)"


def diff_workloads(baseline: list[WorkloadState], after: list[WorkloadState],
                   bad: list[WorkloadState] | None = None) -> list[Difference]:
    """Differences of the app half; `bad` names the bad version's digests in messages."""
    diffs: list[Difference] = []
    bad_ids = {w.deployment: set(w.image_ids) for w in (bad or [])}
    bad_specs = {w.deployment: w.spec_image for w in (bad or [])}
    after_by = {w.deployment: w for w in after}
    for base in baseline:
        obj = f"deployment {base.deployment}"
        a = after_by.get(base.deployment)
        if a is None or not a.exists:
            diffs.append(Difference(area="app", object=obj, message=f"{obj} no longer exists"))
            continue
        if a.spec_image != base.spec_image:
            # The bad release's image, named as such: also when its pods are not running yet (verify does not
            # wait for them once a Deployment declares another image).
            tag = " (bad version)" if a.spec_image == bad_specs.get(base.deployment) else ""
            diffs.append(Difference(area="app", object=obj,
                                    message=f"{obj} declares image {a.spec_image}{tag} (baseline {base.spec_image})"))
        if a.image_ids != base.image_ids:
            running = ", ".join(_short(i) for i in a.image_ids) or "nothing"
            tag = " (bad version)" if set(a.image_ids) & bad_ids.get(base.deployment, set()) - set(base.image_ids) else ""
            diffs.append(Difference(area="app", object=obj, message=(
                f"{obj} runs {running}{tag}; baseline ran {', '.join(_short(i) for i in base.image_ids)}")))
        if a.replicas != base.replicas:  # `rollout undo` restores the pod template, not spec.replicas
            diffs.append(Difference(area="app", object=obj, message=(
                f"{obj} has {a.replicas} replicas (baseline {base.replicas}); "
                "`rollout undo` does not restore the replica count")))
        for ref, digest in sorted(base.config.items()):
            now = a.config.get(ref)
            if now != digest:
                state = "is missing" if now in (None, "missing") else "content differs from the baseline"
                diffs.append(Difference(area="config", object=ref, message=(
                    f"{ref} (used by {obj}) {state}; `rollout undo` does not restore ConfigMaps or Secrets")))
        if not a.healthy:
            diffs.append(Difference(area="health", object=obj, message=(
                f"{obj} is not healthy: {a.ready_replicas}/{a.replicas} ready, rollout "
                f"{'complete' if a.rollout_complete else 'incomplete'}, pods "
                + (", ".join(f"{p.name}={p.phase}{'' if p.ready else '/unready'}" for p in a.pods) or "none"))))
    return diffs
