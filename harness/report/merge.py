"""`rehearse report merge DIR... --out OUT`: the report directories of several runs (the shards of one
suite, `rehearse run --shard K/N`) as one report set.

A result is a (run id, scenario) pair: the scenario's report.json in a
directory whose run.json lists it. The same pair met twice (a directory given
twice, an artifact downloaded twice) counts once. A scenario judged by two
different runs (a shard run again) keeps the latest result (by when its
rehearsal started), and the merge says which it kept. The merged junit.xml and
summary.md are rendered by the run's own writers from the kept report.json
files, so they read as one unsharded run of the same scenarios would; each
kept scenario directory (report.json, report.html) is copied into OUT, so the
paths summary.md names exist there. history.jsonl is every input's history
(and OUT's own, from an earlier merge) deduplicated by (run id, scenario), and
the trend (trend.html, trend.png, badge.svg) is drawn from it.

Every scenario that a shard's partition names (run.json) must have a result:
one without (a shard that failed before writing its reports, a directory not
downloaded) is listed as missing, in summary.md and by the exit status, never
silently left out of the verdicts.
"""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from harness.journal import Journal
from harness.report.common import RedactChain, as_redact, journal_data, parse_dt
from harness.report.history import HISTORY_FILE, History, read_history, write_history
from harness.report.junit import write_junit
from harness.report.run_file import RUN_FILE, run_record, write_run_file
from harness.report.summary import write_summary
from harness.report.trend import write_trend
from harness.scenario.models import is_scenario_name

REPORT_FIX = "pass the --report-dir of a `rehearse run` (it writes run.json, history.jsonl and <scenario>/report.json)"


class MergeInputError(Exception):
    """Directories that cannot be merged: one line per problem (directory, what is wrong, the fix)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class RunDir:
    """One input: a report directory of one run (its run.json)."""

    path: Path
    record: dict[str, Any]

    @property
    def run_id(self) -> str:
        return str(self.record["run_id"])

    @property
    def shard(self) -> str | None:
        return self.record.get("shard")

    @property
    def partition(self) -> list[list[str]] | None:
        return self.record.get("partition")

    def label(self) -> str:
        return f"{self.run_id} ({'shard ' + self.shard if self.shard else 'unsharded'}, {self.path})"


@dataclass(frozen=True)
class Result:
    scenario: str
    run_id: str
    data: dict[str, Any]  # report.json as the writers take it
    source: RunDir

    @property
    def started(self) -> float:
        try:
            return parse_dt(str(self.data.get("started_at"))).timestamp()
        except ValueError:
            return 0.0


@dataclass
class Merged:
    runs: list[RunDir]
    results: list[Result]                       # one per scenario, by name
    history: History
    notes: list[str] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)  # scenario without a result: why


# ── reading the inputs ────────────────────────────────────────────────────────
def _record_problem(record: Any) -> str | None:
    """What makes a run.json unusable, None when it is fine."""
    if not isinstance(record, dict):
        return "run.json is not a JSON object"
    if not isinstance(record.get("run_id"), str) or not record["run_id"]:
        return "run.json has no run_id"
    names = record.get("scenarios")
    if not isinstance(names, list) or not all(isinstance(n, str) and is_scenario_name(n) for n in names):
        return "run.json's scenarios is not a list of scenario names"
    partition = record.get("partition")
    if partition is not None and not (
            isinstance(partition, list) and all(isinstance(p, list) for p in partition)
            and all(isinstance(n, str) and is_scenario_name(n) for p in partition for n in p)):
        return "run.json's partition is not a list of lists of scenario names"
    return None


def read_run_dir(path: Path) -> RunDir | list[str]:
    """The run directory, or why it is not one (each line: DIR: why. Fix: ...)."""
    if not path.is_dir():
        return [f"{path}: {'not a directory' if path.exists() else 'does not exist'}. Fix: {REPORT_FIX}"]
    run_file = path / RUN_FILE
    if not run_file.is_file():
        return [f"{path}: not a report directory: no {RUN_FILE}. Fix: {REPORT_FIX}"]
    try:
        record = json.loads(run_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return [f"{run_file}: not readable JSON ({exc}). Fix: {REPORT_FIX}"]
    if isinstance(record, dict) and record.get("merged_from") is not None:
        return [f"{path}: a merged report set (its run.json has merged_from). Fix: pass the directories it was "
                "merged from (its --out may be the next merge's --out, whose history.jsonl is kept)"]
    problem = _record_problem(record)
    if problem is not None:
        return [f"{run_file}: {problem}. Fix: {REPORT_FIX}"]
    if not (path / HISTORY_FILE).is_file():
        return [f"{path}: no {HISTORY_FILE} beside {RUN_FILE}. Fix: {REPORT_FIX}"]
    return RunDir(path, record)


def read_results(run: RunDir) -> tuple[list[Result], list[str]]:
    """The run's judged scenarios (report.json of each name in run.json), and what is wrong with them."""
    results: list[Result] = []
    problems: list[str] = []
    for name in run.record["scenarios"]:
        report = run.path / name / "report.json"
        if (run.path / name).is_symlink():  # its copy would be whatever it points at
            problems.append(f"{run.path / name}: a symbolic link, not the run's scenario directory. Fix: {REPORT_FIX}")
            continue
        try:
            journal = Journal.model_validate_json(report.read_bytes())
        except OSError as exc:
            problems.append(f"{report}: run.json lists {name} but its report.json cannot be read "
                            f"({exc.strerror or exc}). Fix: {REPORT_FIX}")
            continue
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(x) for x in first.get("loc", ())) or "(document)"
            problems.append(f"{report}: not a report.json: {where}: {first.get('msg')}. Fix: {REPORT_FIX}")
            continue
        if journal.scenario != name or (journal.run_id or run.run_id) != run.run_id:
            problems.append(f"{report}: holds scenario {journal.scenario} of run {journal.run_id}, not {name} of "
                            f"run {run.run_id} as run.json says (another run wrote it). Fix: {REPORT_FIX}")
            continue
        results.append(Result(name, run.run_id, journal_data(journal, as_redact(None)), run))
    return results, problems


def _out_problems(out: Path, inputs: Sequence[Path]) -> list[str]:
    """OUT must be new, empty, hold only a history.jsonl, or be an earlier merge (whose files it replaces)."""
    fix = "Fix: --out a new or empty directory, or the --out of an earlier merge"
    if out.resolve() in {p.resolve() for p in inputs}:
        return [f"--out {out}: is also an input directory. {fix}"]
    if not out.exists():
        return []
    if not out.is_dir():
        return [f"--out {out}: not a directory. {fix}"]
    if _earlier_merge(out) is not None:
        return []
    others = sorted(p.name for p in out.iterdir() if p.name != HISTORY_FILE)
    if others:
        shown = ", ".join(others[:5]) + (f" (+{len(others) - 5} more)" if len(others) > 5 else "")
        return [f"--out {out}: holds {shown}, and it is not the --out of an earlier merge. {fix}"]
    return []


def _earlier_merge(out: Path) -> dict[str, Any] | None:
    try:
        record = json.loads((out / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("merged_from"), list) else None


def load(dirs: Sequence[Path], out: Path) -> tuple[list[RunDir], list[Result], list[str]]:
    """The runs, all their results and notes; MergeInputError listing every bad directory."""
    problems: list[str] = []
    runs: list[RunDir] = []
    results: list[Result] = []
    notes: list[str] = []
    seen: set[Path] = set()
    for path in dirs:
        if path.resolve() in seen:
            notes.append(f"{path} was given more than once: read once")
            continue
        seen.add(path.resolve())
        run = read_run_dir(path)
        if isinstance(run, list):
            problems += run
            continue
        found, bad = read_results(run)
        problems += bad
        runs.append(run)
        results += found
    problems += _out_problems(out, dirs)
    if problems:
        raise MergeInputError(problems)
    return runs, results, notes


# ── deciding what the merged set holds ────────────────────────────────────────
def choose(results: Sequence[Result]) -> tuple[list[Result], list[str]]:
    """One result per scenario (sorted by name): the same (run id, scenario) counts once; of several
    runs of a scenario, the latest is kept, and a note says so."""
    unique: dict[tuple[str, str], Result] = {}
    for r in results:
        unique.setdefault((r.run_id, r.scenario), r)
    by_scenario: dict[str, list[Result]] = {}
    for r in unique.values():
        by_scenario.setdefault(r.scenario, []).append(r)
    kept: list[Result] = []
    notes: list[str] = []
    for name in sorted(by_scenario):
        runs = sorted(by_scenario[name], key=lambda r: (r.started, r.run_id))
        kept.append(runs[-1])
        if len(runs) > 1:
            seen = "; ".join(f"{r.source.label()} started {r.data.get('started_at')}: {r.data.get('verdict')}"
                             for r in runs)
            notes.append(f"{name} was judged by {len(runs)} runs ({seen}); kept the latest, run {runs[-1].run_id}")
    return kept, notes


def _shard_of(name: str, runs: Sequence[RunDir]) -> tuple[str, str]:
    """("K/N", partition fingerprint) of the first partition that names the scenario."""
    for run in runs:
        for k, part in enumerate(run.partition or [], start=1):
            if name in part:
                return f"{k}/{len(run.partition or [])}", str(run.record.get("partition_fingerprint"))
    return "", ""


def missing(runs: Sequence[RunDir], kept: Sequence[Result]) -> dict[str, str]:
    """Scenarios that a shard's partition names and no directory has a result for: why, by name."""
    expected = {n for run in runs for part in run.partition or [] for n in part}
    present = {r.scenario for r in kept}
    shards_given = {run.shard for run in runs}
    out = {}
    for name in sorted(expected - present):
        shard, fingerprint = _shard_of(name, runs)
        why = ("its directory holds no result for it: interrupted?" if shard in shards_given
               else "no directory of that shard was given")
        out[name] = f"shard {shard} of partition {fingerprint}; {why}"
    return out


def partition_notes(runs: Sequence[RunDir]) -> list[str]:
    prints = sorted({str(r.record.get("partition_fingerprint")) for r in runs if r.partition is not None})
    if len(prints) <= 1:
        return []
    return [f"the shards computed {len(prints)} different partitions ({', '.join(prints)}; different history "
            "files?): every scenario any of them names was looked for, whichever shard had it"]


def _overwritten(out: Path, kept: Sequence[Result]) -> list[str]:
    """Scenario directories in OUT that the copies would replace and no earlier merge made."""
    earlier = set((_earlier_merge(out) or {}).get("scenarios") or [])
    return [f"--out {out}: holds {out / r.scenario}, which no earlier merge wrote. Fix: --out a new or empty "
            "directory, or move it away" for r in kept if (out / r.scenario).exists() and r.scenario not in earlier]


def merge(dirs: Sequence[Path], out: Path) -> Merged:
    """Read and decide; nothing is written. MergeInputError when a directory cannot be merged."""
    runs, results, notes = load(dirs, out)
    kept, kept_notes = choose(results)
    clash = _overwritten(out, kept)
    if clash:
        raise MergeInputError(clash)
    histories = [p for p in [out / HISTORY_FILE, *(r.path / HISTORY_FILE for r in runs)] if p.is_file()]
    merged = Merged(runs, kept, read_history(histories), notes + kept_notes + partition_notes(runs))
    merged.missing = missing(runs, kept)
    return merged


# ── writing OUT ──────────────────────────────────────────────────────────────
@dataclass
class MergedReports:
    junit: Path
    summary: Path
    history: Path
    run: Path
    trend: Path


def _clear_earlier_merge(out: Path) -> None:
    """The scenario directories an earlier merge into OUT copied (its run.json lists them)."""
    earlier = _earlier_merge(out) or {}
    for name in earlier.get("scenarios") or []:
        target = out / str(name)
        if isinstance(name, str) and is_scenario_name(name) and target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)


def _headline_notes(merged: Merged) -> list[str]:
    runs = ", ".join(f"`{r.run_id}` ({'shard ' + r.shard if r.shard else 'unsharded'})" for r in merged.runs)
    lines = [f"merged from {len(merged.runs)} run(s): {runs}"]
    lines += [f"⚠️ {name}: no result ({why})" for name, why in merged.missing.items()]
    return lines + merged.notes


def write_merged(merged: Merged, out: Path) -> MergedReports:
    """OUT: the kept scenario directories, junit.xml, summary.md, history.jsonl, run.json and the trend."""
    out.mkdir(parents=True, exist_ok=True)
    _clear_earlier_merge(out)
    for r in merged.results:
        shutil.copytree(r.source.path / r.scenario, out / r.scenario, symlinks=True)
    redact: RedactChain = as_redact(None)  # the inputs were redacted by their runs; the patterns once more
    data = [r.data for r in merged.results]
    started = min((str(d.get("started_at") or "") for d in data), default="")
    runs = {"merged_runs": ", ".join(r.run_id for r in merged.runs)}
    record = run_record(run_id=None, host=socket.gethostname(), started_at=started, scenarios=[r.scenario for r in
                        merged.results], merged_from=[{"dir": str(r.path), "run_id": r.run_id, "shard": r.shard,
                                                       "partition_fingerprint": r.record.get("partition_fingerprint")}
                                                      for r in merged.runs])
    record["missing"] = sorted(merged.missing)
    history = write_history(out / HISTORY_FILE, merged.history, redact)
    return MergedReports(
        junit=write_junit(data, out / "junit.xml", redact, timestamp=started, properties=runs,
                          missing=merged.missing),
        summary=write_summary(data, out / "summary.md", redact, notes=_headline_notes(merged),
                              missing=len(merged.missing)),
        history=history,
        run=write_run_file(out, record, redact),
        trend=write_trend(merged.history, out, redact).html,
    )
