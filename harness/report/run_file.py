"""run.json: what one report directory holds, written with the run reports.

    {"run_id": "rehearsal-1a2b3c4d", "host": "ci-runner-7",
     "started_at": "2026-11-26T06:06:42.671+00:00", "written_at": "2026-11-26T06:09:10.002+00:00",
     "scenarios": ["bad-image", "promotion"],
     "shard": "1/3", "partition": [["bad-image", "promotion"], ["bad-migration"], []],
     "partition_fingerprint": "5d1c0a9e2b7f"}

``scenarios`` are the scenarios this run judged, in its order; their
``<scenario>/report.json`` in the same directory are this run's (a directory
reused by several runs may hold older scenario directories: they are not in
the list). ``shard`` is null for a run without ``--shard``; ``partition`` then
is null too, and otherwise names every shard's scenarios (sorted), so that
`rehearse report merge` knows which scenarios the shards were to rehearse
between them, even when a shard's directory is missing. A merged report set
(`rehearse report merge`) writes its own run.json with ``run_id`` null and
``merged_from`` listing the runs it took results from.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.journal import now_iso
from harness.report.common import Redact, redact_tree

RUN_FILE = "run.json"


@dataclass(frozen=True)
class ShardRecord:
    """Which shard a run was, and the whole partition it computed (see harness/shard.py)."""

    shard: str                               # "K/N"
    partition: tuple[tuple[str, ...], ...]   # every shard's scenario names
    fingerprint: str                         # equal on every shard that computed the same partition


def run_record(*, run_id: str | None, host: str, started_at: str, scenarios: Sequence[str],
               shard: ShardRecord | None = None, merged_from: Sequence[dict[str, Any]] | None = None
               ) -> dict[str, Any]:
    record: dict[str, Any] = {
        "run_id": run_id, "host": host, "started_at": started_at, "written_at": now_iso(),
        "scenarios": list(scenarios),
        "shard": shard.shard if shard else None,
        "partition": [list(p) for p in shard.partition] if shard else None,
        "partition_fingerprint": shard.fingerprint if shard else None,
    }
    if merged_from is not None:
        record["merged_from"] = list(merged_from)
    return record


def write_run_file(directory: Path, record: dict[str, Any], redact: Redact) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / RUN_FILE
    path.write_text(json.dumps(redact_tree(record, redact), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
