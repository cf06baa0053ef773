"""Where the environment's tools and images are (written by `make env`)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

CACHE_DIR = Path(os.environ.get("REHEARSAL_CACHE_DIR", Path.home() / ".cache" / "rollback-rehearsal"))
CURRENT_BIN = CACHE_DIR / "bin" / "current"
KUBE_VERSION = "v1.34.4"

NODE_IMAGE = os.environ.get("REHEARSAL_NODE_IMAGE", f"rollback-rehearsal/kind-node:{KUBE_VERSION}")
POSTGRES_IMAGE = os.environ.get("REHEARSAL_POSTGRES_IMAGE", "rollback-rehearsal/postgres:{major}")
REGISTRY_IMAGE = os.environ.get("REHEARSAL_REGISTRY_IMAGE", "rollback-rehearsal/registry:2")

# Every container/cluster the harness creates carries this label, so a crashed
# run's leftovers can be found and removed (`make clean-clusters`).
OWNER_LABEL = "rollback-rehearsal.owner"


class ToolMissing(RuntimeError):
    pass


def tool(name: str) -> Path:
    """The environment's build of a tool if present, else one on PATH."""
    built = CURRENT_BIN / name
    if built.exists():
        return built
    found = shutil.which(name)
    if found:
        return Path(found)
    raise ToolMissing(f"'{name}' not found in {CURRENT_BIN} or on PATH. Fix: run `make env`")
