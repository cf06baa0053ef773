"""`make clean-clusters`: remove what rehearsals left behind on purpose
(--keep-cluster) or after a hard crash: kind clusters named rehearsal* and
every container carrying the harness's owner label."""

from __future__ import annotations

import subprocess
import sys

from harness import tools


def main() -> int:
    kind = str(tools.tool("kind"))
    clusters = subprocess.run([kind, "get", "clusters"], capture_output=True, text=True, timeout=60).stdout.split()
    names = sys.argv[1:] or [c for c in clusters if c.startswith("rehearsal") or c.startswith("rr-")]
    for name in names:
        print(f"deleting kind cluster {name}")
        subprocess.run([kind, "delete", "cluster", "--name", name], timeout=180, check=False)
    ids = subprocess.run(["docker", "ps", "-aq", "--filter", f"label={tools.OWNER_LABEL}"],
                         capture_output=True, text=True, timeout=60).stdout.split()
    if ids:
        print(f"removing {len(ids)} labelled container(s)")
        subprocess.run(["docker", "rm", "-f", "-v", *ids], timeout=180, check=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
