"""history.jsonl: one JSON line per scenario per run, appended by every run.

Line format (keys in this order; more keys may be added, readers ignore them):

    {"timestamp": "2026-11-26T06:06:42.671+00:00", "run_id": "rehearsal-1a2b3c4d",
     "host": "ci-runner-7", "scenario": "bad-image", "verdict": "READY", "expect": "READY",
     "ttd": 1.64, "ttr": 0.48, "max_recover_s": 60.0, "duration_s": 21.3}

``timestamp`` is when the scenario's rehearsal started (from the journal);
``ttd``/``ttr`` are time to detect/recover in seconds (null when not
measured); ``max_recover_s`` is the scenario's objective (null when none);
``duration_s`` is the rehearsal's length, first phase to last (what
`--shard` balances by; absent in older lines). Several history files (e.g. CI
artifacts of different runners) merge into one series; the same
(run_id, scenario) seen twice counts once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from harness.report.common import Redact, parse_dt, redact_tree, total_duration

HISTORY_FILE = "history.jsonl"
REQUIRED = ("timestamp", "run_id", "scenario", "verdict")
NUMBERS = ("ttd", "ttr", "max_recover_s", "duration_s")


def history_entries(journals: Sequence[Mapping[str, Any]], *, run_id: str, host: str) -> list[dict[str, Any]]:
    """One entry per (redacted) journal."""
    out = []
    for d in journals:
        out.append({
            "timestamp": d.get("started_at"),
            "run_id": run_id,
            "host": host,
            "scenario": d.get("scenario"),
            "verdict": d.get("verdict"),
            "expect": d.get("expect"),
            "ttd": d.get("time_to_detect_s"),
            "ttr": d.get("time_to_recover_s"),
            "max_recover_s": (d.get("objectives") or {}).get("max_recover_s"),
            "duration_s": total_duration(d),
        })
    return out


def _lines(entries: Iterable[Mapping[str, Any]], redact: Redact) -> list[str]:
    return [json.dumps(redact_tree(dict(e), redact), ensure_ascii=False, separators=(", ", ": ")) + "\n"
            for e in entries]


def append_history(path: Path, entries: Iterable[Mapping[str, Any]], redact: Redact) -> Path:
    """Append the entries (the file is created even when there are none: an empty shard's report set)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = _lines(entries, redact)
    with path.open("a", encoding="utf-8") as fh:
        fh.writelines(lines)
    return path


def write_history(path: Path, history: History, redact: Redact) -> Path:
    """Replace the file with these entries (a merged history), through a temporary file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(_lines(history.entries, redact)), encoding="utf-8")
    tmp.replace(path)
    return path


class History:
    """Merged entries of one or more history files, oldest first."""

    def __init__(self, entries: list[dict[str, Any]], skipped: int = 0) -> None:
        self.entries = entries
        self.skipped = skipped  # malformed lines ignored

    @property
    def scenarios(self) -> list[str]:
        return sorted({e["scenario"] for e in self.entries})

    def runs(self) -> list[str]:
        """Run ids, ordered by their earliest timestamp."""
        first: dict[str, datetime] = {}
        for e in self.entries:
            t = parse_dt(e["timestamp"])
            if e["run_id"] not in first or t < first[e["run_id"]]:
                first[e["run_id"]] = t
        return sorted(first, key=lambda r: (first[r], r))

    def for_scenario(self, scenario: str) -> list[dict[str, Any]]:
        return [e for e in self.entries if e["scenario"] == scenario]

    def latest(self) -> dict[str, dict[str, Any]]:
        """The most recent entry of each scenario."""
        out: dict[str, dict[str, Any]] = {}
        for e in self.entries:  # oldest first: later ones win
            out[e["scenario"]] = e
        return out


def _valid(e: Any) -> bool:
    if not isinstance(e, dict) or any(not isinstance(e.get(k), str) or not e.get(k) for k in REQUIRED):
        return False
    try:
        parse_dt(e["timestamp"])
    except ValueError:
        return False
    return all(e.get(k) is None or (isinstance(e.get(k), (int, float)) and not isinstance(e.get(k), bool))
               for k in NUMBERS)


def read_history(paths: Iterable[Path], since: datetime | None = None) -> History:
    """Merge history files: dedupe by (run_id, scenario), the last line read wins; skip bad lines."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    skipped = 0
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                e = json.loads(line)
            except json.JSONDecodeError:
                skipped += 1
                continue
            if not _valid(e):
                skipped += 1
                continue
            if since is not None and parse_dt(e["timestamp"]) < since:
                continue
            merged[(e["run_id"], e["scenario"])] = e
    entries = sorted(merged.values(), key=lambda e: (parse_dt(e["timestamp"]), e["run_id"], e["scenario"]))
    return History(entries, skipped)
