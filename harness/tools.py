"""Where the environment's tools and images are (written by `make env`)."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

CACHE_DIR = Path(os.environ.get("REHEARSAL_CACHE_DIR", Path.home() / ".cache" / "rollback-rehearsal"))
CURRENT_BIN = CACHE_DIR / "bin" / "current"
KUBE_VERSION = "v1.34.4"



def _images_env() -> dict[str, str]:
    """Image names `make env` recorded (upstream mode may name other images)."""
    path = CURRENT_BIN / "images.env"
    if not path.exists():
        return {}
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs}


def _image(var: str, default: str) -> str:
    return os.environ.get(var) or _images_env().get(var) or default


NODE_IMAGE = _image("REHEARSAL_NODE_IMAGE", f"rollback-rehearsal/kind-node:{KUBE_VERSION}")
POSTGRES_IMAGE = _image("REHEARSAL_POSTGRES_IMAGE", "rollback-rehearsal/postgres:{major}")
REGISTRY_IMAGE = _image("REHEARSAL_REGISTRY_IMAGE", "rollback-rehearsal/registry:2")

# Every container/cluster the harness creates carries this label, so a crashed
# run's leftovers can be found and removed (`rehearse cleanup`, harness.cleanup).
OWNER_LABEL = "rollback-rehearsal.owner"


class ToolMissing(RuntimeError):
    pass


@functools.cache
def helm_version() -> str:
    """The version of the helm the harness and the runbooks use (`missing` without one), for reports."""
    try:
        proc = subprocess.run([str(tool("helm")), "version", "--template", "{{ .Version }}"],
                              capture_output=True, text=True, timeout=30)
    except (ToolMissing, OSError, subprocess.TimeoutExpired):
        return "missing"
    return proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else "unknown"


def tool(name: str) -> Path:
    """The environment's build of a tool if present, else one on PATH."""
    built = CURRENT_BIN / name
    if built.exists():
        return built
    found = shutil.which(name)
    if found:
        return Path(found)
    raise ToolMissing(f"'{name}' not found in {CURRENT_BIN} or on PATH. Fix: run `make env`")
