"""Report writers: they only format the journal (never measure anything).

The writers live in harness.report; this module is the entry point the
session calls once per scenario.
"""

from __future__ import annotations

from pathlib import Path

from harness.journal import Journal
from harness.progress import say
from harness.redact import Redactor
from harness.report import write_html, write_json


def write_report(journal: Journal, directory: Path, redactor: Redactor) -> Path:
    """DIR/report.json and DIR/report.html, redacted (every string passes the redactor); returns report.json.

    report.json is the record: a failure to render the HTML page is reported, never raised over it.
    """
    path = write_json(journal, directory, redactor)
    try:
        write_html(journal, directory, redactor)
    except Exception as exc:  # noqa: BLE001 (the rehearsal's own outcome matters more than its page)
        say(f"report.html for {journal.scenario} not written: {type(exc).__name__}: {exc}", style="yellow")
    return path
