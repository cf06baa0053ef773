"""summary.md: a Markdown table of the run, for CI job summaries
(e.g. ``cat reports/summary.md >> "$GITHUB_STEP_SUMMARY"``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.report.common import Redact, first_reason, fmt_s, matches_expect

ICON = {"READY": "✅", "NOT_READY": "❌", "ERROR": "⚠️"}


def _cell(text: Any, limit: int = 160) -> str:
    """One table cell: one line, pipes escaped, bounded length."""
    s = " ".join(str("" if text is None else text).split())
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return s.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _vs(value: float | None, objective: float | None) -> str:
    if value is None:
        return "–"
    if objective is None:
        return fmt_s(value)
    mark = " ⚠️" if value > objective else ""
    return f"{fmt_s(value)} / {fmt_s(objective)}{mark}"


def render_summary(journals: Sequence[Mapping[str, Any]], redact: Redact, *, run_id: str = "") -> str:
    ready = sum(1 for d in journals if d.get("verdict") == "READY")
    as_expected = sum(1 for d in journals if matches_expect(d))
    lines = [
        f"## Rollback readiness: {ready}/{len(journals)} ready",
        "",
        f"{as_expected}/{len(journals)} verdicts as expected" + (f" · run `{_cell(redact(run_id))}`" if run_id else ""),
        "",
        "| scenario | verdict | expect | time to detect | time to recover | first reason |",
        "|---|---|---|---:|---:|---|",
    ]
    for d in journals:
        obj = d.get("objectives") or {}
        verdict = str(d.get("verdict"))
        flag = "" if matches_expect(d) else " (unexpected)"
        lines.append(
            f"| {_cell(redact(str(d.get('scenario'))))} | {ICON.get(verdict, '')} {_cell(verdict)}{flag} "
            f"| {_cell(d.get('expect'))} | {_vs(d.get('time_to_detect_s'), obj.get('max_detect_s'))} "
            f"| {_vs(d.get('time_to_recover_s'), obj.get('max_recover_s'))} | {_cell(redact(first_reason(d)))} |")
    lines += ["", "Times are measured / objective. Details: `<scenario>/report.html` in the report directory."]
    return "\n".join(lines) + "\n"


def write_summary(journals: Sequence[Mapping[str, Any]], path: Path, redact: Redact, **kw: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_summary(journals, redact, **kw), encoding="utf-8")
    return path
