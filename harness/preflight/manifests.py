"""The Kubernetes objects preflight reads from the scenario's manifests.

A manifest file, a directory of YAML files, or a kustomize directory (its
`resources`, recursively, with namePrefix/nameSuffix). YAML is read with
PyYAML, `${VAR}` placeholders left as they are: the checks resolve them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.scenario.reading import ReadError, kind_of, load_yaml, load_yaml_all, read_text


class ManifestError(Exception):
    """The manifests cannot be read (missing path, invalid YAML, a broken kustomization)."""


@dataclass(frozen=True)
class K8sObject:
    """One object of the manifests, with the kustomize prefix/suffix applied to its name."""

    kind: str  # lower case: deployment, service, ...
    name: str
    doc: dict[str, Any]
    file: Path


_KUSTOMIZATION = ("kustomization.yaml", "kustomization.yml", "Kustomization")


def _objects_in(file: Path, prefix: str = "", suffix: str = "") -> list[K8sObject]:
    try:
        return objects_in_text(read_text(file), file, prefix, suffix)
    except ReadError as exc:
        raise ManifestError(str(exc)) from None


def objects_in_text(text: str, file: Path, prefix: str = "", suffix: str = "") -> list[K8sObject]:
    """The objects of one YAML stream (a file's, or a chart rendered by `helm template`); ReadError if not YAML."""
    docs = load_yaml_all(text, str(file))
    out: list[K8sObject] = []
    stack = [d for d in docs if isinstance(d, dict)]
    while stack:
        d = stack.pop(0)
        if d.get("kind") == "List" and isinstance(d.get("items"), list):
            stack.extend(x for x in d["items"] if isinstance(x, dict))
            continue
        meta = d.get("metadata")
        name = meta.get("name") if isinstance(meta, dict) else None
        if isinstance(d.get("kind"), str) and isinstance(name, str):
            out.append(K8sObject(d["kind"].lower(), f"{prefix}{name}{suffix}", d, file))
    return out


def load_manifests(path: Path, _prefix: str = "", _suffix: str = "", _seen: frozenset[Path] = frozenset()) -> list[K8sObject]:
    """Objects of a manifest file, a directory of *.yaml/*.yml files, or a kustomize directory
    (its `resources`, recursively, with namePrefix/nameSuffix applied)."""
    try:
        path, kind = path.resolve(), kind_of(path)
        if path in _seen:
            return []
        if kind == "file":
            return _objects_in(path, _prefix, _suffix)
        if kind != "dir":
            raise ManifestError(f"{path} does not exist" if kind == "missing" else f"{path} is not a file or directory")
        kfile = next((path / k for k in _KUSTOMIZATION if kind_of(path / k) == "file"), None)
        if kfile is None:
            files = sorted(f for f in path.iterdir() if f.suffix in (".yaml", ".yml") and kind_of(f) == "file")
            return [o for f in files for o in _objects_in(f, _prefix, _suffix)]
        k = load_yaml(read_text(kfile), str(kfile)) or {}
    except (ReadError, OSError, RuntimeError) as exc:  # RuntimeError: resolve() on a symlink loop (Python < 3.13)
        raise ManifestError(str(exc)) from None
    return _kustomization(path, kfile, k, _prefix, _suffix, _seen)


def _kustomization(path: Path, kfile: Path, k: object, _prefix: str, _suffix: str,
                   _seen: frozenset[Path]) -> list[K8sObject]:
    """The objects of a kustomization's resources (and bases), recursively."""
    if not isinstance(k, dict):
        raise ManifestError(f"{kfile}: must be a mapping")
    prefix = str(k.get("namePrefix") or "") + _prefix
    suffix = _suffix + str(k.get("nameSuffix") or "")
    out: list[K8sObject] = []
    listed = [r for key in ("resources", "bases") if isinstance(k.get(key), list) for r in k[key]]
    for res in listed:
        if not isinstance(res, str) or "://" in res or res.startswith(("github.com/", "git@")):
            continue  # remote bases cannot be read offline
        target = path / res
        try:
            missing = kind_of(target) == "missing"
        except ReadError as exc:
            raise ManifestError(f"{kfile}: resource {res!r}: {exc}") from None
        if missing:
            raise ManifestError(f"{kfile}: resource {res} does not exist")
        out.extend(load_manifests(target, prefix, suffix, _seen | {path}))
    return out

