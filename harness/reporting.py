"""Report writers: they only format the journal (never measure anything)."""

from __future__ import annotations

import json
from pathlib import Path

from harness.journal import Journal
from harness.redact import Redactor


def write_report(journal: Journal, directory: Path, redactor: Redactor) -> Path:
    """DIR/report.json, redacted as a whole (every string field passes the redactor)."""
    directory.mkdir(parents=True, exist_ok=True)
    text = redactor(json.dumps(journal.model_dump(mode="json"), indent=2, sort_keys=False))
    path = directory / "report.json"
    path.write_text(text + "\n", encoding="utf-8")
    return path
