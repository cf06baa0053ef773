"""`make bench`: the demo scenarios rehearsed one at a time and N at a time on one warm cluster.

Prints figures, asserts nothing: each configuration's wall time (min and median over --rounds, the
configurations alternating so the machine's drift hits both), its ratio to `-j 1`, and whether every
verdict equalled its scenario's `expect` (`rehearse run --against-expect` exit 0) in every round.

The cluster is this script's own (`kind create` once, `--reuse-cluster` in every run, `kind delete`
at the end, also on Ctrl-C): the first run's cluster creation would otherwise swamp the comparison.
Each run still starts its own Postgres container, as `make demo` does.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import tools

REPO = Path(__file__).resolve().parent.parent
# This checkout's harness (cwd=REPO), whichever checkout the venv's `rehearse` script was installed from.
REHEARSE = [sys.executable, "-c", "from harness.cli import main; main()"]


def _kind(*args: str) -> None:
    subprocess.run([str(tools.tool("kind")), *args], check=True, timeout=600)


def one_run(cluster: str, scenarios: list[str], jobs: int, report_dir: Path) -> tuple[float, bool]:
    """(wall seconds, every verdict as expected) of one `rehearse run`."""
    t0 = time.monotonic()
    proc = subprocess.run([*REHEARSE, "run", *scenarios, "--against-expect", "--reuse-cluster",
                           "--cluster-name", cluster, "-j", str(jobs), "--report-dir", str(report_dir)],
                          cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=7200)
    return time.monotonic() - t0, proc.returncode == 0


def report(results: dict[int, list[tuple[float, bool]]]) -> None:
    serial = statistics.median(t for t, _ in results[1]) if 1 in results else None
    print(f"{'jobs':>4}  {'min s':>7}  {'median s':>8}  {'ratio to -j 1':>13}  all as expected")
    for jobs, runs in results.items():
        times = [t for t, _ in runs]
        median = statistics.median(times)
        ratio = f"{median / serial:.2f}" if serial else "-"
        print(f"{jobs:>4}  {min(times):7.1f}  {median:8.1f}  {ratio:>13}  {all(ok for _, ok in runs)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", default=["scenarios"])
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--cluster-name", default="rr-bench")
    parser.add_argument("--report-dir", type=Path, default=Path("reports/bench"))
    args = parser.parse_args()
    kubeconfig = Path(tempfile.mkdtemp(prefix="rr-bench-")) / "kubeconfig"  # never the user's ~/.kube/config
    _kind("create", "cluster", "--name", args.cluster_name, f"--image={tools.NODE_IMAGE}", "--wait=3m",
          f"--kubeconfig={kubeconfig}")
    results: dict[int, list[tuple[float, bool]]] = {j: [] for j in args.jobs}
    try:
        for r in range(args.rounds):
            for jobs in args.jobs:
                wall, ok = one_run(args.cluster_name, args.scenarios, jobs, args.report_dir / f"j{jobs}-r{r}")
                print(f"round {r + 1}, -j {jobs}: {wall:.1f}s, {'as expected' if ok else 'NOT as expected'}",
                      flush=True)
                results[jobs].append((wall, ok))
    finally:
        _kind("delete", "cluster", "--name", args.cluster_name)
    report(results)


if __name__ == "__main__":
    main()
