"""Which image a container runs, named so that the same content always has the same name.

A pod's `status.containerStatuses[].imageID` is what the container runtime reports: for containerd, one of
the image's *repo digests* (the digest of a manifest that refers to it). One image has several: the
manifest `kind load` imported (uncompressed layers) and the manifest a registry served (compressed
layers) differ, while the content (the image config and so its layers) is the same. Once a registry
pull has given the node's copy a second repo digest, containerd may report either one, for a new pod
or an old one; measured on this project's cluster: two pods of one ReplicaSet, one image, two
`imageID`s, which made a rollback look like it ran two images (and never healthy).

The image ID (the config's digest, what `docker images` and `crictl images` show as IMAGE ID) is the
same for the same content wherever it came from, and different for any other content. So a running
image is identified by that: the node's runtime says which image ID each repo digest belongs to
(`crictl images -o json`), and digests are content addresses, so one mapping serves every node.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

RETRY_S = 10.0  # a digest the node did not list is looked up again after this long (at most)


def content_digest(image_id: str) -> str:
    """`name@sha256:…` → `sha256:…` (the digest part of a reference)."""
    return image_id.rsplit("@", 1)[-1] if "@" in image_id else image_id


def canonical_reference(image: str) -> str:
    """A Docker image reference as containerd names it: `demo:v1` is `docker.io/library/demo:v1`,
    `team/demo:v1` is `docker.io/team/demo:v1`, a reference with a registry host stays; no tag is `latest`."""
    first, _, rest = image.partition("/")
    if not rest:
        image = f"docker.io/library/{image}"
    elif not ("." in first or ":" in first or first == "localhost"):
        image = f"docker.io/{image}"
    last = image.rsplit("/", 1)[-1]
    return image if (":" in last or "@" in last) else f"{image}:latest"


def crictl_images(node_container: str) -> list[dict[str, Any]]:
    """The images in a kind node's containerd, as CRI lists them (id, repoTags, repoDigests)."""
    proc = subprocess.run(["docker", "exec", node_container, "crictl", "images", "-o", "json"],
                          capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise RuntimeError(f"crictl images in {node_container}: {proc.stderr.strip()[-300:]}")
    return list(json.loads(proc.stdout).get("images") or [])


class ImageIdentities:
    """imageID as a pod reports it → the image ID of its content; thread-safe, one per cluster.

    `list_images(node)` returns the node runtime's image list. A digest it does not know (yet) keeps its
    own digest as its name, and is asked for again after RETRY_S: never a wrong identity, at worst the
    runtime's own name."""

    def __init__(self, list_images: Callable[[str], list[dict[str, Any]]], clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self._list = list_images
        self._clock = clock
        self._ids: dict[str, str] = {}       # digest (manifest or config) -> image ID
        self._missed: dict[str, float] = {}  # digest -> when the node last did not list it
        self._lock = threading.Lock()

    def identity(self, image_ref: str, node: str | None) -> str:
        digest = content_digest(image_ref)
        if not digest.startswith("sha256:"):
            return digest  # nothing a runtime could have reported ("" while the container starts)
        with self._lock:
            known = self._ids.get(digest)
            if known is not None or node is None:
                return known or digest
            missed = self._missed.get(digest)
            if missed is not None and self._clock() - missed < RETRY_S:
                return digest
            self._learn(node)
            known = self._ids.get(digest)
            if known is None:
                self._missed[digest] = self._clock()
            return known or digest

    def _learn(self, node: str) -> None:
        try:
            images = self._list(node)
        except (OSError, subprocess.SubprocessError, RuntimeError, ValueError):
            return  # the runtime's own name stands in (never a wrong identity); asked again later
        for image in images:
            image_id = image.get("id") or ""
            if not image_id.startswith("sha256:"):
                continue
            self._ids[image_id] = image_id
            for ref in image.get("repoDigests") or []:
                self._ids[content_digest(ref)] = image_id


def runtime_digest(image_ref: str, node: str | None) -> str:
    """The identity when no runtime can be asked (a cluster whose nodes are not local containers)."""
    return content_digest(image_ref)
