"""Rollback-readiness reports. Every writer only formats the Journal.

Per scenario (REPORT_DIR/<scenario>/):
  report.json   the journal itself (schema: report.schema.json, `rehearse report schema`)
  report.html   one self-contained page (no network) for humans
Per run (REPORT_DIR/):
  junit.xml     one testsuite per scenario: its case (failure when verdict != expect) and one case
                per runbook step, at the runbook's file and line
  summary.md    Markdown table for CI job summaries
  history.jsonl one line per scenario appended by every run (`rehearse report trend`)
  run.json      which run (and `--shard K/N`) the directory holds, and its scenarios (run_file.py)
Merged from several report directories (`rehearse report merge`, merge.py): the same files.

Everything written passes the redactors (see common.py for how). The session
is the one caller: `write_scenario_reports` once a scenario is judged (or
interrupted), `write_run_reports` once at the end of the run.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.journal import Journal, now_iso
from harness.progress import say
from harness.report.common import Redact, as_redact, journal_data
from harness.report.history import HISTORY_FILE, append_history, history_entries
from harness.report.html import write_html
from harness.report.junit import write_junit
from harness.report.run_file import ShardRecord, run_record, write_run_file
from harness.report.summary import write_summary


def write_json(journal: Journal | Mapping[str, Any], directory: Path, redactor: Any = None) -> Path:
    """DIR/report.json: the journal with every string redacted."""
    directory.mkdir(parents=True, exist_ok=True)
    data = journal_data(journal, as_redact(redactor))
    path = directory / "report.json"
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def write_scenario_reports(journal: Journal | Mapping[str, Any], directory: Path, redactor: Any = None) -> list[Path]:
    """DIR/report.json and DIR/report.html, redacted; returns the files written.

    report.json is the record: a failure to render the HTML page is reported, never raised over it."""
    redact = as_redact(redactor)
    written = [write_json(journal, directory, redact)]
    try:
        written.append(write_html(journal, directory, redact))
    except Exception as exc:  # noqa: BLE001 (the rehearsal's own outcome matters more than its page)
        name = journal.scenario if isinstance(journal, Journal) else journal.get("scenario")
        say(f"report.html for {name} not written: {type(exc).__name__}: {exc}", style="yellow")
    return written


@dataclass
class RunReports:
    junit: Path
    summary: Path
    history: Path
    run: Path


def write_run_reports(journals: Sequence[Journal | Mapping[str, Any]], report_dir: Path,
                      redactors: Redact | Iterable[Redact] | None = None, *, run_id: str,
                      host: str | None = None, shard: ShardRecord | None = None,
                      notes: Sequence[str] = ()) -> RunReports:
    """REPORT_DIR/junit.xml, summary.md and run.json (rewritten), history.jsonl (appended); also for no
    journal at all (a shard without scenarios), so that every shard leaves the same set of files."""
    redact = as_redact(redactors)
    data = [journal_data(j, redact) for j in journals]
    host = socket.gethostname() if host is None else host
    started = min((str(d.get("started_at") or "") for d in data), default="")
    shard_props = {"shard": shard.shard, "partition": shard.fingerprint} if shard else {}
    report_dir.mkdir(parents=True, exist_ok=True)
    return RunReports(
        junit=write_junit(data, report_dir / "junit.xml", redact, timestamp=started, hostname=host, run_id=run_id,
                          properties=shard_props),
        summary=write_summary(data, report_dir / "summary.md", redact, run_id=run_id,
                              shard=shard.shard if shard else "", notes=notes),
        history=append_history(report_dir / HISTORY_FILE, history_entries(data, run_id=run_id, host=host), redact),
        run=write_run_file(report_dir, run_record(run_id=run_id, host=host, started_at=started or now_iso(),
                                                  scenarios=[str(d.get("scenario")) for d in data], shard=shard),
                           redact),
    )


__all__ = ["RunReports", "ShardRecord", "write_html", "write_json", "write_run_reports", "write_scenario_reports"]
