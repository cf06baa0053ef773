"""summary.md: a Markdown table of the run, for CI job summaries
(e.g. ``cat reports/summary.md >> "$GITHUB_STEP_SUMMARY"``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.journal import fault_moment
from harness.judge import as_expected
from harness.report.common import Redact, first_reason, fmt_s, skip_sentence, skipped_steps

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


def _risks(d: Mapping[str, Any]) -> str:
    """The risks column: the kinds of readiness risk seen (they never change the verdict)."""
    kinds = sorted({str(r.get("kind")) for r in d.get("risks") or []})
    return "⚠️ " + ", ".join(kinds) if kinds else "–"


def _yes_no(value: bool | None) -> str:
    return "–" if value is None else ("yes" if value else "**no**")


def _fault_note(d: Mapping[str, Any]) -> str:
    """One line: each fault (before which step, status, hits), then convergence, idempotence and cost."""
    faults = []
    for f in d.get("faults") or []:
        hits = "" if f.get("hits") is None else f", hits {f.get('hits')}"
        faults.append(f"{f.get('kind')} {fault_moment(f)}: {f.get('status')}{hits}")
    parts = ["; ".join(faults) or "no fault recorded"]
    if d.get("rerun_steps") or d.get("runbook_converged") is not None:  # the runbook's faults: a second run
        parts += [f"converged despite the faults: {_yes_no(d.get('runbook_converged'))}",
                  f"second run idempotent: {_yes_no(d.get('idempotent'))}"]
    if d.get("fault_cost_s") is not None:
        parts.append(f"fault cost {fmt_s(d.get('fault_cost_s'))}")
    return " · ".join(parts)


# The snapshots whose Helm release history the summary shows, in order.
_HELM_STAGES = (("baseline", "baseline"), ("after_bad_deploy", "after the bad release"),
                ("after_rollback", "after the rollback"))


def _helm_note(d: Mapping[str, Any]) -> str:
    """The release history at each snapshot: `baseline: 1 deployed · after the bad release: ...` ('' without helm)."""
    parts = []
    for key, label in _HELM_STAGES:
        release = (d.get(key) or {}).get("helm")
        if release:
            revisions = ", ".join(f"{r.get('revision')} {r.get('status')}" for r in release.get("history") or [])
            parts.append(f"{label}: {revisions or 'no history'}")
    return " · ".join(parts)


def _notes(journals: Sequence[Mapping[str, Any]], redact: Redact) -> list[str]:
    """Lines under the table: readiness risks, skipped steps, faults and the second run, Helm release histories,
    per scenario."""
    lines: list[str] = []
    risky = [(d, r) for d in journals for r in d.get("risks") or []]
    if risky:
        lines += ["", "**Readiness risks** (they never change the verdict):", ""]
        lines += [f"- {_cell(redact(str(d.get('scenario'))))}: {_cell(redact(str(r.get('object'))))}: "
                  f"{_cell(redact(str(r.get('message'))), 300)}" for d, r in risky]
    skipping = [(d, s) for d in journals for s in skipped_steps(d)]
    if skipping:
        lines += ["", "**Skipped runbook steps** (marked `rehearse: skip` in the runbook, never run):", ""]
        lines += [f"- {_cell(redact(str(d.get('scenario'))))}: {_cell(redact(skip_sentence(s)), 300)}"
                  for d, s in skipping]
    faulted = [d for d in journals if d.get("faults") or d.get("rerun_steps")]
    if faulted:
        lines += ["", "**Faults during the rollback:**", ""]
        lines += [f"- {_cell(redact(str(d.get('scenario'))))}: {_cell(redact(_fault_note(d)), 400)}"
                  for d in faulted]
    helm = [(d, note) for d in journals if (note := _helm_note(d))]
    if helm:
        lines += ["", "**Helm release history** (`helm history`):", ""]
        lines += [f"- {_cell(redact(str(d.get('scenario'))))}: {_cell(redact(note), 400)}" for d, note in helm]
    return lines


def render_summary(journals: Sequence[Mapping[str, Any]], redact: Redact, *, run_id: str = "", shard: str = "",
                   notes: Sequence[str] = (), missing: int = 0) -> str:
    """`shard`: this run's `--shard K/N`; `notes`: lines under the headline (an empty shard, a merge);
    `missing`: scenarios a merged set has no result for, counted in every total (never as ready)."""
    ready = sum(1 for d in journals if d.get("verdict") == "READY")
    expected = sum(1 for d in journals if as_expected(d))
    risky = sum(1 for d in journals if d.get("risks"))
    skipped = sum(len(skipped_steps(d)) for d in journals)
    total = len(journals) + missing
    lines = [
        f"## Rollback readiness: {ready}/{total} ready" + (f" ({missing} without a result)" if missing else ""),
        "",
        f"{expected}/{total} verdicts as expected"
        + (f" · {risky} with readiness risks" if risky else "")
        + (f" · {skipped} runbook step(s) skipped" if skipped else "")
        + (f" · run `{_cell(redact(run_id))}`" if run_id else "")
        + (f" · shard {_cell(shard)}" if shard else ""),
        "",
        *(f"- {_cell(redact(note), 600)}" for note in notes),
        *([""] if notes else []),
        "| scenario | verdict | expect | risks | time to detect | time to recover | first reason |",
        "|---|---|---|---|---:|---:|---|",
    ]
    for d in journals:
        obj = d.get("objectives") or {}
        verdict = str(d.get("verdict"))
        flag = "" if as_expected(d) else " (unexpected)"
        lines.append(
            f"| {_cell(redact(str(d.get('scenario'))))} | {ICON.get(verdict, '')} {_cell(verdict)}{flag} "
            f"| {_cell(d.get('expect'))} | {_cell(redact(_risks(d)))} | {_vs(d.get('time_to_detect_s'), obj.get('max_detect_s'))} "
            f"| {_vs(d.get('time_to_recover_s'), obj.get('max_recover_s'))} | {_cell(redact(first_reason(d)))} |")
    lines += _notes(journals, redact)
    lines += ["", "Times are measured / objective. Details: `<scenario>/report.html` in the report directory."]
    return "\n".join(lines) + "\n"


def write_summary(journals: Sequence[Mapping[str, Any]], path: Path, redact: Redact, **kw: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_summary(journals, redact, **kw), encoding="utf-8")
    return path
