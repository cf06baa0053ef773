"""`make bench`: what the harness costs, measured on one warm kind cluster of the bench's own.

Two comparisons, both printed as figures (nothing is asserted), then one Markdown block for
docs/performance.md:

- hand: the bad-migration rehearsal done by a plain shell script with the same steps and checks
  (tools/hand-bad-migration.sh) against `rehearse run scenarios/bad-migration`, alternating (the order
  swaps every round, so the machine's drift hits both), --rounds of each (default 5): min and median
  wall time and the ratio harness/hand; the harness's median time per phase (from the runs' report.json)
  next to the script's per step; the harness's peak RSS.
- jobs: after --job-warmup uncounted runs (default 1: a new cluster imports every image once), the demo
  scenarios at `-j 1`, `-j 2`, `-j 4` (--jobs), --job-rounds rounds (default 3): wall time,
  ratio to `-j 1`, whether every verdict equalled its `expect`, peak RSS; and, from the reports of the
  largest -j, each NOT_READY scenario's time in verify and each scenario's cleanup time (the journal's
  `cleanup_s`), against the issue's bounds (verify <= 5 s once the outcome is decided, teardown <= 2 s).

Peak RSS is the `ru_maxrss` that os.wait4 returns for the `rehearse` child: the kernel's exact high-water
mark of the largest single process of its tree (the Python harness; its kubectl, docker, kind and bash
children are smaller), with no sampling that could miss a peak and no sampler competing for the 2 cores
being measured. It is not the sum of the tree's processes at one moment.

The cluster is this script's own (`kind create` once, `--reuse-cluster` in every run, `kind delete` at
the end, also on Ctrl-C and SIGTERM): its creation would otherwise swamp the comparison. Every run still
starts its own Postgres container, as `make demo` and the hand script do. Run it alone on the machine
(`flock /tmp/rr-cluster.lock` where other runs may start).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import tools

REPO = Path(__file__).resolve().parent.parent
# This checkout's harness (cwd=REPO), whichever checkout the venv's `rehearse` script was installed from.
REHEARSE = [sys.executable, "-c", "from harness.cli import main; main()"]
HAND = REPO / "tools" / "hand-bad-migration.sh"
SCENARIO = "scenarios/bad-migration"
VERIFY_BOUND_S = 5.0   # issue 10: no NOT_READY demo scenario spends more than this in verify once decided
CLEANUP_BOUND_S = 2.0  # issue 10: teardown between scenarios on the critical path
STEP = re.compile(r"^hand-step (\S+) ([0-9.]+)$", re.M)


@dataclass
class Run:
    """One measured child process."""

    wall_s: float
    returncode: int
    peak_rss_mb: float
    output: str = ""
    report_dir: Path | None = None

    @property
    def ok(self) -> bool:
        return self.returncode == 0


@dataclass
class Results:
    hand: list[Run] = field(default_factory=list)
    harness: list[Run] = field(default_factory=list)
    jobs: dict[int, list[Run]] = field(default_factory=dict)


# ── running and measuring ────────────────────────────────────────────────────
def measured(argv: Sequence[str], log: Path) -> Run:
    """Run ARGV to the end (output to LOG); its wall time, exit code and peak RSS (os.wait4's ru_maxrss,
    KiB on Linux). An interrupt is passed on to the child, and its own cleanup awaited, before it goes on."""
    t0 = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.Popen(argv, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            proc.send_signal(signal.SIGTERM)  # the child cleans up what it made; the cluster is deleted after
            proc.wait(timeout=300)
            raise
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4: Popen must not wait again
    return Run(time.monotonic() - t0, proc.returncode, usage.ru_maxrss / 1024, log.read_text())


def rehearse(cluster: str, paths: Sequence[str], jobs: int, report_dir: Path) -> Run:
    run = measured([*REHEARSE, "run", *paths, "--against-expect", "--reuse-cluster", "--cluster-name", cluster,
                    "-j", str(jobs), "--report-dir", str(report_dir)], report_dir.with_suffix(".log"))
    run.report_dir = report_dir
    return run


def hand(cluster: str, log: Path) -> Run:
    return measured([str(HAND), cluster], log)


def say(line: str) -> None:
    print(line, flush=True)


# ── the cluster, owned for the whole bench ───────────────────────────────────
def _kind(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(tools.tool("kind")), *args], capture_output=True, text=True, timeout=timeout)


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through the `finally` that deletes the cluster


@contextmanager
def bench_cluster(name: str) -> Iterator[None]:
    """A kind cluster created for the bench and deleted on every way out (Ctrl-C, SIGTERM, SIGHUP, errors)."""
    if name in _kind("get", "clusters").stdout.split():
        sys.exit(f"a kind cluster named {name} exists already. Fix: `kind delete cluster --name {name}` if it is a "
                 "dead bench's, or pass another --cluster-name")
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _terminate)
    kubeconfig = Path(tempfile.mkdtemp(prefix="rr-bench-")) / "kubeconfig"  # never the user's ~/.kube/config
    try:
        say(f"creating kind cluster {name} ({tools.NODE_IMAGE})")
        made = _kind("create", "cluster", "--name", name, f"--image={tools.NODE_IMAGE}", "--wait=3m",
                     f"--kubeconfig={kubeconfig}")
        if made.returncode != 0:
            sys.exit(f"kind create cluster failed:\n{made.stderr[-3000:]}")
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not leave the cluster behind
        say(f"deleting kind cluster {name}")
        _kind("delete", "cluster", "--name", name, timeout=300)
        shutil.rmtree(kubeconfig.parent, ignore_errors=True)
        signal.signal(signal.SIGINT, signal.default_int_handler)


# ── the two modes ────────────────────────────────────────────────────────────
def run_hand_mode(cluster: str, rounds: int, warmup: int, out: Path, results: Results) -> None:
    for w in range(warmup):  # the first rehearsal on a new cluster pays for first image imports and caches
        run = rehearse(cluster, [SCENARIO], 1, out / f"warmup-{w}")
        say(f"warm-up: harness {run.wall_s:.1f}s ({'READY' if run.ok else 'NOT as expected'})")
    for r in range(rounds):
        order = ("hand", "harness") if r % 2 == 0 else ("harness", "hand")
        for who in order:
            if who == "hand":
                run = hand(cluster, out / f"hand-r{r}.log")
                results.hand.append(run)
                verdict = {0: "READY", 1: "NOT_READY"}.get(run.returncode, f"ERROR (exit {run.returncode})")
            else:
                run = rehearse(cluster, [SCENARIO], 1, out / f"harness-r{r}")
                results.harness.append(run)
                verdict = ", ".join(f"{rep['scenario']} {rep['verdict']}" for rep in reports(run)) or "no report"
            say(f"round {r + 1}/{rounds}, {who}: {run.wall_s:.1f}s, {verdict}, peak RSS {run.peak_rss_mb:.0f} MB")


def run_jobs_mode(cluster: str, paths: Sequence[str], jobs: Sequence[int], rounds: int, out: Path,
                  results: Results, warmup: int = 0) -> None:
    for w in range(warmup):  # as in the hand mode: the first run on a new cluster imports every image the first time
        run = rehearse(cluster, paths, max(jobs), out / f"jobs-warmup-{w}")
        say(f"warm-up: -j {max(jobs)} {run.wall_s:.1f}s ({'all as expected' if run.ok else 'NOT all as expected'}), "
            "not counted")
    for r in range(rounds):
        for j in jobs:  # a setting given twice (`--jobs 4 1 4`) runs twice a round, interleaved with the others
            runs = results.jobs.setdefault(j, [])
            run = rehearse(cluster, paths, j, out / f"j{j}-r{len(runs)}")
            runs.append(run)
            say(f"round {r + 1}/{rounds}, -j {j}: {run.wall_s:.1f}s, "
                f"{'all as expected' if run.ok else 'NOT all as expected'}, peak RSS {run.peak_rss_mb:.0f} MB")


# ── what the reports say ─────────────────────────────────────────────────────
def reports(run: Run) -> list[dict[str, Any]]:
    if run.report_dir is None:
        return []
    return [json.loads(p.read_text()) for p in sorted(run.report_dir.glob("*/report.json"))]


def phase_medians(runs: Sequence[Run]) -> dict[str, float]:
    """Median seconds per phase of the harness runs, plus the scenario's cleanup and the rest of the wall
    time (session start and end: Postgres container, kubeconfig, reaper, run reports)."""
    per: dict[str, list[float]] = {}
    for run in runs:
        for rep in reports(run):
            spent = 0.0
            for p in rep.get("phases") or []:
                per.setdefault(p["name"], []).append(p["duration_s"])
                spent += p["duration_s"]
            if rep.get("cleanup_s") is not None:
                per.setdefault("cleanup", []).append(rep["cleanup_s"])
                spent += rep["cleanup_s"]
            per.setdefault("(session: Postgres, kubeconfig, reports)", []).append(run.wall_s - spent)
    return {name: statistics.median(v) for name, v in per.items()}


def step_medians(runs: Sequence[Run]) -> dict[str, float]:
    per: dict[str, list[float]] = {}
    for run in runs:
        for name, secs in STEP.findall(run.output):
            per.setdefault(name, []).append(float(secs))
    return {name: statistics.median(v) for name, v in per.items()}


@dataclass(frozen=True)
class ScenarioBounds:
    scenario: str
    verdicts: str
    verify_s: float | None  # the longest verify of its NOT_READY runs (None: never NOT_READY)
    verify_end: str         # how that verify's wait ended
    cleanup_s: float | None  # the longest cleanup


def verify_end(rep: dict[str, Any]) -> str:
    """How verify's wait ended, from its event (harness/phases/verify.py)."""
    for e in rep.get("events") or []:
        if e["kind"] == "verify" and "not awaited further" in e["message"]:
            return "decided early"
        if e["kind"] == "verify" and "not healthy after" in e["message"]:
            return "waited the whole timeout"
    return "healthy"


def _verify_s(rep: dict[str, Any]) -> float:
    return next((p["duration_s"] for p in rep.get("phases") or [] if p["name"] == "verify"), 0.0)


def bounds(runs: Sequence[Run]) -> list[ScenarioBounds]:
    """Per scenario, the worst over RUNS: time in verify when NOT_READY, and cleanup time."""
    seen: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        for rep in reports(run):
            seen.setdefault(rep["scenario"], []).append(rep)
    rows = []
    for name, reps in sorted(seen.items()):
        slowest = max((r for r in reps if r["verdict"] == "NOT_READY"), key=_verify_s, default=None)
        cleanups = [r["cleanup_s"] for r in reps if r.get("cleanup_s") is not None]
        rows.append(ScenarioBounds(name, "/".join(sorted({r["verdict"] for r in reps})),
                                   None if slowest is None else _verify_s(slowest),
                                   "-" if slowest is None else verify_end(slowest), max(cleanups, default=None)))
    return rows


# ── the Markdown block ───────────────────────────────────────────────────────
def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown CPU")
    mem_kb = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal")))
    docker = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True,
                            text=True, timeout=30).stdout.strip() or "unknown"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                            timeout=30).stdout.strip() or "unknown"
    return (f"{os.cpu_count()} CPUs ({cpu}), {mem_kb / 1024 ** 2:.0f} GiB memory, Linux {platform.release()}, "
            f"Docker {docker}, node image {tools.NODE_IMAGE}, commit {commit}")


def _stats(runs: Sequence[Run]) -> tuple[float, float]:
    times = [r.wall_s for r in runs]
    return min(times), statistics.median(times)


def _rss(runs: Sequence[Run]) -> str:
    return f"{max(r.peak_rss_mb for r in runs):.0f} MB"


def hand_markdown(res: Results) -> list[str]:
    if not res.hand or not res.harness:
        return []
    (hmin, hmed), (rmin, rmed) = _stats(res.hand), _stats(res.harness)
    ok_hand = sum(r.ok for r in res.hand)
    ok_harness = sum(r.ok for r in res.harness)
    lines = ["### The harness against the same steps by hand (bad-migration)", "",
             "| | runs | READY | min | median | peak RSS |", "|---|---|---|---|---|---|",
             f"| hand script (tools/hand-bad-migration.sh) | {len(res.hand)} | {ok_hand} | {hmin:.1f} s | "
             f"{hmed:.1f} s | {_rss(res.hand)} |",
             f"| `rehearse run {SCENARIO}` | {len(res.harness)} | {ok_harness} | {rmin:.1f} s | {rmed:.1f} s | "
             f"{_rss(res.harness)} |", "",
             f"Ratio harness/hand: **{rmed / hmed:.2f}** (medians), {rmin / hmin:.2f} (minimums).", ""]
    phases, steps = phase_medians(res.harness), step_medians(res.hand)
    lines += ["| harness phase | median s | | hand step | median s |", "|---|---|---|---|---|"]
    for i in range(max(len(phases), len(steps))):
        p = list(phases.items())[i] if i < len(phases) else ("", None)
        s = list(steps.items())[i] if i < len(steps) else ("", None)
        lines.append(f"| {p[0]} | {'' if p[1] is None else f'{p[1]:.1f}'} | | {s[0]} | "
                     f"{'' if s[1] is None else f'{s[1]:.1f}'} |")
    return [*lines, ""]


def jobs_markdown(res: Results) -> list[str]:
    if not res.jobs:
        return []
    serial = statistics.median(r.wall_s for r in res.jobs[1]) if 1 in res.jobs else None
    lines = ["### The demo scenarios side by side", "",
             "| jobs | runs | each run | min | median | ratio to -j 1 (each run) | every verdict as expected "
             "| peak RSS |",
             "|---|---|---|---|---|---|---|---|"]
    for j, runs in sorted(res.jobs.items()):
        low, med = _stats(runs)
        ratio = f"{med / serial:.2f} ({', '.join(f'{r.wall_s / serial:.2f}' for r in runs)})" if serial else "-"
        each = ", ".join(f"{r.wall_s:.0f}" for r in runs) + " s"
        lines.append(f"| {j} | {len(runs)} | {each} | {low:.0f} s | {med:.0f} s | {ratio} | "
                     f"{'yes' if all(r.ok for r in runs) else 'NO'} ({sum(r.ok for r in runs)}/{len(runs)}) | "
                     f"{_rss(runs)} |")
    top = max(res.jobs)
    rows = bounds(res.jobs[top])
    over = [b.scenario for b in rows if (b.verify_s or 0) > VERIFY_BOUND_S or (b.cleanup_s or 0) > CLEANUP_BOUND_S]
    lines += ["", f"Verify (NOT_READY scenarios) and cleanup per scenario at `-j {top}`, the worst of "
                  f"{len(res.jobs[top])} run(s); bounds: verify <= {VERIFY_BOUND_S:g} s, cleanup <= "
                  f"{CLEANUP_BOUND_S:g} s.", "",
              "| scenario | verdict | verify s | verify ended | cleanup s |", "|---|---|---|---|---|"]
    for b in rows:
        lines.append(f"| {b.scenario} | {b.verdicts} | {_bounded(b.verify_s, VERIFY_BOUND_S)} | {b.verify_end} | "
                     f"{_bounded(b.cleanup_s, CLEANUP_BOUND_S)} |")
    lines += ["", "Over a bound: " + (", ".join(over) if over else "none"), ""]
    return lines


def _bounded(value: float | None, bound: float) -> str:
    return "-" if value is None else f"{value:.1f}" + (" **over**" if value > bound else "")


def markdown(res: Results, started: datetime.datetime) -> str:
    head = [f"## make bench, {started:%-d %B %Y}", "", f"Machine: {machine()}.", ""]
    return "\n".join(head + hand_markdown(res) + jobs_markdown(res))


# ── the command line ─────────────────────────────────────────────────────────
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--mode", choices=("hand", "jobs", "all"), default="all")
    parser.add_argument("--rounds", type=int, default=5, help="runs of each side in the hand comparison")
    parser.add_argument("--warmup", type=int, default=1, help="uncounted harness runs before the hand comparison")
    parser.add_argument("--scenarios", nargs="+", default=["scenarios"], help="what the jobs comparison rehearses")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--job-rounds", type=int, default=3, help="rounds of the jobs comparison")
    parser.add_argument("--job-warmup", type=int, default=1,
                        help="uncounted runs of the scenarios (at the largest -j) before the jobs comparison")
    parser.add_argument("--cluster-name", default="rr-bench")
    parser.add_argument("--report-dir", type=Path, default=Path("reports/bench"))
    parser.add_argument("--markdown", type=Path, help="also write the Markdown block to this file")
    args = parser.parse_args(argv)
    problems = [f"{name}: must be at least {low}" for name, value, low in
                (("--rounds", args.rounds, 1), ("--warmup", args.warmup, 0), ("--job-rounds", args.job_rounds, 1),
                 ("--job-warmup", args.job_warmup, 0))
                if value < low] + [f"--jobs: {j} is not a positive number" for j in args.jobs if j < 1]
    if problems:
        parser.error("; ".join(problems))
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    started = datetime.datetime.now(datetime.UTC)
    out = (REPO / args.report_dir / f"{started:%Y%m%dT%H%M%SZ}").resolve()
    out.mkdir(parents=True)
    results = Results()
    with bench_cluster(args.cluster_name):
        if args.mode in ("hand", "all"):
            run_hand_mode(args.cluster_name, args.rounds, args.warmup, out, results)
        if args.mode in ("jobs", "all"):
            run_jobs_mode(args.cluster_name, args.scenarios, args.jobs, args.job_rounds, out, results,
                          warmup=args.job_warmup)
    block = markdown(results, started)
    if args.markdown:
        args.markdown.write_text(block + "\n")
    say(f"\nlogs and reports: {out}\n\n<!-- paste into docs/performance.md -->\n{block}")


if __name__ == "__main__":
    main()
