"""report.html: one self-contained page per scenario, formatted from the journal.

No network at all: inline CSS, inline SVG, no scripts, no external fonts or
images (a Content-Security-Policy of ``default-src 'none'`` makes sure).
Every string from the journal is redacted, then escaped. Readable on a phone
(viewport meta, fluid layout, tables scroll sideways) and printable.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from harness.journal import Journal, SteadyStateRecord, fault_moment
from harness.judge import as_expected
from harness.report.common import (
    Redact,
    as_redact,
    fmt_s,
    journal_data,
    parse_dt,
    parse_ts,
    placeholder_sentence,
    step_failed,
    step_skipped,
)
from harness.report.recommend import recommendations
from harness.snapshot.db_models import SchemaFingerprint
from harness.snapshot.kinds import KINDS, labelled_objects

VERDICT_TEXT = {
    "READY": "The rollback works: the app, schema and tracked data are back to the baseline.",
    "NOT_READY": "The rollback does not bring everything back: see the differences.",
    "ERROR": ("The rehearsal could not do what the scenario asks (a phase could not run, a declared fault could "
              "not be applied, or a fault stayed in place): nothing conclusive was found about this rollback."),
}

CSS = """
:root{--ok:#1a7f37;--bad:#cf222e;--err:#9a6700;--muted:#57606a;--line:#d0d7de;--bg:#f6f8fa;--diff:#ffebe9;--diffline:#ff8182}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:#1f2328;background:#fff}
main{max-width:1100px;margin:0 auto;padding:0 16px 32px}
h1{font-size:1.5rem;margin:.2em 0}h2{font-size:1.2rem;margin:1.6em 0 .5em;padding-bottom:.2em;border-bottom:1px solid var(--line)}
h3{font-size:1rem;margin:1em 0 .4em}
code,pre{font:13px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
pre{background:var(--bg);border:1px solid var(--line);border-radius:6px;padding:8px;overflow-x:auto;white-space:pre-wrap;word-break:break-word;margin:.4em 0}
.muted{color:var(--muted)}
header.verdict{color:#fff;padding:20px 16px 16px;margin:0 0 8px}
header.verdict>div{max-width:1100px;margin:0 auto}
.verdict-READY{background:var(--ok)}.verdict-NOT_READY{background:var(--bad)}.verdict-ERROR{background:var(--err)}
.verdict-label{font-size:2.6rem;font-weight:800;letter-spacing:.04em;line-height:1.1}
.verdict-sub{font-size:1.05rem;margin:.3em 0 0}
header.verdict h1{color:#fff}
.expect{display:inline-block;margin-top:.6em;padding:2px 10px;border-radius:12px;background:rgba(255,255,255,.2);font-weight:600}
nav{font-size:.9rem;margin:8px 0 0;display:flex;flex-wrap:wrap;gap:2px 14px}nav a{color:#0969da;text-decoration:none;white-space:nowrap}
.figures{display:flex;flex-wrap:wrap;gap:12px}
.figure{flex:1 1 260px;border:1px solid var(--line);border-left:6px solid var(--muted);border-radius:6px;padding:10px 12px}
.figure.ok{border-left-color:var(--ok)}.figure.over{border-left-color:var(--bad)}.figure.unknown{border-left-color:var(--err)}
.figure .value{font-size:1.7rem;font-weight:700}
.figure svg{display:block;width:100%;height:22px;margin-top:4px}
ul.differences{list-style:none;padding:0;margin:0}
ul.differences li{border:1px solid var(--diffline);background:var(--diff);border-radius:6px;padding:6px 10px;margin:0 0 6px}
.area{display:inline-block;min-width:80px;font-size:.8rem;font-weight:700;text-transform:uppercase;color:var(--bad)}
ul.recommendations{list-style:none;padding:0;margin:0}
ul.recommendations li{border-left:5px solid var(--muted);background:var(--bg);padding:6px 10px;margin:0 0 6px;border-radius:0 6px 6px 0}
li.rec-action{border-left-color:var(--bad)!important}li.rec-ok{border-left-color:var(--ok)!important}li.rec-info{border-left-color:#0969da!important}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;width:100%;margin:.3em 0 .8em;font-size:.9rem}
th,td{border:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
th{background:var(--bg);font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.diff td,td.diff{background:var(--diff)}
tr.diff td:first-child{box-shadow:inset 4px 0 0 var(--bad)}
td.diff{font-weight:600}
.wrap{overflow-wrap:anywhere}
.pill{display:inline-block;padding:0 8px;border-radius:10px;font-size:.8rem;font-weight:700;color:#fff;background:var(--muted)}
.pill.ok{background:var(--ok)}.pill.failed,.pill.error{background:var(--bad)}.pill.skipped{background:var(--err)}
ol.steps{list-style:none;padding:0;margin:0}
ol.steps li{border:1px solid var(--line);border-radius:6px;margin:0 0 6px;padding:0}
ol.steps li.failed{border-color:var(--bad);background:var(--diff)}
ol.steps li.skipped{border-style:dashed;border-color:var(--err)}
details>summary{cursor:pointer;padding:6px 10px;list-style-position:inside}
details>pre{margin:0 10px 10px}
.timeline{min-width:860px;display:block}
.timeline text{font:12px system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;fill:#1f2328}
.timeline .axis text{fill:var(--muted);font-size:11px}
.timeline rect.lane{fill:#f6f8fa}
.timeline rect.phase{fill:#0969da}.timeline rect.phase.st-failed,.timeline rect.phase.st-error{fill:var(--bad)}
.timeline rect.phase.st-skipped{fill:var(--err)}
.timeline rect.step,.timeline rect.zstep{fill:#8250df}.timeline rect.step.failed,.timeline rect.zstep.failed{fill:var(--bad)}
.timeline rect.zphase{fill:#0969da}.timeline rect.zphase.st-failed,.timeline rect.zphase.st-error{fill:var(--bad)}
.timeline rect.step.rerun,.timeline rect.zstep.rerun{fill:#1b7c83}
.timeline rect.fault,.timeline rect.zfault{fill:#bf8700}.timeline rect.fault.st-failed,.timeline rect.zfault.st-failed{fill:var(--bad)}
.timeline rect.band,.timeline rect.zband{fill:#d4a72c;fill-opacity:.16}
.timeline line.grid{stroke:#d0d7de;stroke-width:1}
.timeline line.marker{stroke:var(--ok);stroke-width:2;stroke-dasharray:4 3}
.timeline line.marker.detect{stroke:var(--err)}
.risks{border:1px solid #d4a72c;border-left:6px solid var(--err);background:#fff8c5;border-radius:6px;padding:8px 12px;margin:12px 0 4px}
.risks h2{margin:.1em 0 .3em;border:0;padding:0;color:var(--err)}
.risks ul{list-style:none;padding:0;margin:0}.risks li{margin:0 0 6px}
.risks .area{color:var(--err);min-width:0;margin-right:6px}
.risks details>summary{padding:2px 0}.risks details>pre{margin:0 0 6px}
a.expect{color:#fff;text-decoration:none}
ul.compat{padding-left:1.2em;margin:.3em 0}ul.compat li{margin:0 0 4px}
.pill.applied{background:var(--ok)}.pill.unsupported{background:var(--err)}
footer{margin-top:2em;font-size:.85rem;color:var(--muted)}
@media (max-width:600px){body{font-size:14px}.verdict-label{font-size:2rem}main{padding:0 10px 24px}th,td{padding:3px 5px}}
@media print{
 body{font-size:11pt}nav{display:none}
 header.verdict,.verdict-READY,.verdict-NOT_READY,.verdict-ERROR,tr.diff td,td.diff,ul.differences li,.pill,.timeline rect,.risks{-webkit-print-color-adjust:exact;print-color-adjust:exact}
 details::details-content{content-visibility:visible;display:block}
 details>pre{display:block}
 h2{break-after:avoid}tr,li,.figure{break-inside:avoid}
 .scroll{overflow:visible}.timeline{min-width:0;width:100%}
 a{color:inherit;text-decoration:none}
}
"""


class _Html:
    """Tiny builder: every text goes through redact + html.escape."""

    def __init__(self, redact: Redact) -> None:
        self.redact = redact
        self.parts: list[str] = []

    def e(self, value: Any) -> str:
        return html.escape(self.redact("" if value is None else str(value)), quote=True)

    def add(self, *chunks: str) -> None:
        self.parts.extend(chunks)

    def text(self) -> str:
        return "".join(self.parts)


# ───────────────────────────────────────────────────────────── helpers


def _val(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (list, tuple)):
        return "\n".join(_val(x) for x in v) if v else "–"
    return str(v)


def _table(h: _Html, headers: Sequence[str], rows: Iterable[tuple[Sequence[Any], bool, Sequence[bool]]],
           cls: str = "") -> None:
    """rows: (cells, row differs, per-cell differs). Multi-line cell values become <br>."""
    h.add(f'<div class="scroll"><table class="{h.e(cls)}"><thead><tr>')
    h.add(*(f"<th>{h.e(x)}</th>" for x in headers))
    h.add("</tr></thead><tbody>")
    for cells, row_diff, cell_diffs in rows:
        h.add('<tr class="diff">' if row_diff else "<tr>")
        for i, c in enumerate(cells):
            classes = ["diff"] if i < len(cell_diffs) and cell_diffs[i] else []
            if any(len(tok) > 32 for tok in _val(c).split()):
                classes.append("wrap")  # digests and long image refs break anywhere, words do not
            klass = f' class="{" ".join(classes)}"' if classes else ""
            h.add(f"<td{klass}>" + "<br>".join(h.e(x) for x in _val(c).split("\n")) + "</td>")
        h.add("</tr>")
    h.add("</tbody></table></div>")


def _snap(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    return data.get(key) or {}


# ──────────────────────────────────────────────────────────── timeline


def _nice_step(span: float) -> float:
    for step in (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600):
        if span / step <= 10:
            return step
    return 7200


Lane = tuple[str, Mapping[str, Any], str]  # (kind: phase | step | rerun | fault, record, label)


@dataclass(frozen=True)
class _Frame:
    """Geometry of one Gantt chart: time t0..t1 maps onto x = left..right."""

    t0: float
    span: float
    lanes: int
    left: int = 150
    right: int = 990
    lane_h: int = 24
    top: int = 8

    @property
    def height(self) -> int:
        return self.top + self.lane_h * self.lanes + 34

    def x(self, t: float) -> float:
        return self.left + (t - self.t0) / self.span * (self.right - self.left)

    def cx(self, t: float) -> float:
        """Bars are cut at the edges (a fault can outlast the zoomed range)."""
        return min(max(self.x(t), self.left), self.right)


def _gantt_grid(f: _Frame, n_lanes: int) -> list[str]:
    """Alternate lane shading and the time axis with its grid lines."""
    out = [f'<rect class="lane" x="0" y="{f.top + i * f.lane_h}" width="1000" height="{f.lane_h - 2}"/>'
           for i in range(0, n_lanes, 2)]
    step_len = _nice_step(f.span)
    out.append('<g class="axis">')
    tick = 0.0
    while tick <= f.span + 1e-9:
        tx = f.left + tick / f.span * (f.right - f.left)
        out.append(f'<line class="grid" x1="{tx:.1f}" y1="{f.top}" x2="{tx:.1f}" y2="{f.height - 26}"/>'
                   f'<text x="{tx:.1f}" y="{f.height - 10}" text-anchor="middle">+{tick:g}s</text>')
        tick += step_len
    out.append("</g>")
    return out


def _fault_bands(f: _Frame, lanes: Sequence[Lane], prefix: str) -> list[str]:
    """A faint band across every lane while each fault was in place."""
    out = []
    for kind, rec, _ in lanes:
        if kind == "fault":
            bx = f.cx(parse_ts(rec["started_at"]))
            bw = max(f.cx(parse_ts(rec["started_at"]) + float(rec.get("duration_s") or 0)) - bx, 2.0)
            out.append(f'<rect class="{prefix}band" x="{bx:.1f}" y="{f.top}" width="{bw:.1f}" '
                       f'height="{f.lane_h * len(lanes)}"/>')
    return out


def _bar_text(h: _Html, prefix: str, kind: str, rec: Mapping[str, Any], dur: float) -> tuple[str, str, str]:
    """(class, tooltip, end label) of one bar."""
    if kind == "fault":
        return _fault_bar(h, prefix, rec, dur)
    if kind == "phase":
        klass = f"{prefix}phase st-{h.e(rec.get('status'))}"
        tip = f"{rec.get('name')}: {rec.get('status')}, {dur:.2f}s. {rec.get('detail') or ''}"
        end_label = f"{dur:.2f}s" + ("" if rec.get("status") == "ok" else f" {rec.get('status')}")
        return klass, tip, end_label
    klass = f"{prefix}step" + (" rerun" if kind == "rerun" else "") + (" failed" if step_failed(rec) else "")
    run = "second run, " if kind == "rerun" else ""
    tip = f"{run}step {rec.get('index')}: {rec.get('command')} → exit {rec.get('exit_code')}, {dur:.2f}s"
    end_label = f"{dur:.2f}s exit {rec.get('exit_code')}" + (" timed out" if rec.get("timed_out") else "")
    return klass, tip, end_label


def _bar(h: _Html, f: _Frame, i: int, lane: Lane, prefix: str) -> list[str]:
    """One lane: its name, its bar (with a tooltip) and the label after the bar."""
    kind, rec, name = lane
    y = f.top + i * f.lane_h
    start = parse_ts(rec["started_at"])
    dur = float(rec.get("duration_s") or 0)
    x0 = f.cx(start)
    w = max(f.cx(start + dur) - x0, 2.0)
    klass, tip, end_label = _bar_text(h, prefix, kind, rec, dur)
    tx, anchor = x0 + w + 4, "start"
    if tx > f.right - 90:
        tx, anchor = x0 - 4, "end"
    return [f'<text x="8" y="{y + 16}" xml:space="preserve">{h.e(name[:22])}</text>',
            f'<rect class="{klass}" x="{x0:.1f}" y="{y + 3}" width="{w:.1f}" height="{f.lane_h - 8}" rx="2">'
            f"<title>{h.e(tip[:400])}</title></rect>",
            f'<text x="{tx:.1f}" y="{y + 16}" text-anchor="{anchor}">{h.e(end_label)}</text>']


def _recover_marker(f: _Frame, recovered_at: float | None, recover_s: float | None) -> list[str]:
    if recovered_at is None:
        return []
    mx = f.x(recovered_at)
    if not f.left <= mx <= f.right + 1:
        return []
    return [f'<line class="marker recover" x1="{mx:.1f}" y1="{f.top}" x2="{mx:.1f}" y2="{f.height - 26}">'
            f"<title>healthy again {float(recover_s or 0):.2f}s after the runbook started</title></line>"]


def _gantt(h: _Html, lanes: Sequence[Lane], t0: float, t1: float, *, svg_class: str, label: str,
           prefix: str = "", recovered_at: float | None = None, recover_s: float | None = None) -> str:
    """One lane per record, bars placed by started_at/duration_s. Bars get class
    ``{prefix}phase`` / ``{prefix}step`` / ``{prefix}fault`` (the main timeline uses no prefix);
    every fault also gets a faint ``{prefix}band`` across all lanes while it was in place."""
    f = _Frame(t0=t0, span=max(t1 - t0, 0.001), lanes=len(lanes))
    out = [(f'<svg class="{svg_class}" role="img" aria-label="{h.e(label)}" '
            f'xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1000 {f.height}" width="100%" '
            f'preserveAspectRatio="xMinYMin meet">')]
    out += _gantt_grid(f, len(lanes))
    out += _fault_bands(f, lanes, prefix)
    for i, lane in enumerate(lanes):
        out += _bar(h, f, i, lane, prefix)
    out += _recover_marker(f, recovered_at, recover_s)
    out.append("</svg>")
    return "".join(out)


def _fault_bar(h: _Html, prefix: str, rec: Mapping[str, Any], dur: float) -> tuple[str, str, str]:
    """(class, tooltip, end label) of one fault's bar; an instant fault is a 2px marker."""
    hits = rec.get("hits")
    hit_text = "" if hits is None else f", hits {hits}"
    how = f"in place {dur:.2f}s" if dur > 0 else "instant"
    tip = f"fault {rec.get('kind')} ({rec.get('status')}): {how}{hit_text}. {rec.get('detail') or ''}"
    label = (f"{dur:.2f}s" if dur > 0 else "instant") + ("" if hits is None else f" hits {hits}")
    return f"{prefix}fault st-{h.e(rec.get('status'))}", tip, label


def _end(rec: Mapping[str, Any]) -> float:
    return parse_ts(rec["started_at"]) + float(rec.get("duration_s") or 0)


def fault_lanes(data: Mapping[str, Any]) -> list[Lane]:
    """One lane per fault that was put in place (applied_at set): a bar from applied_at to
    reverted_at, or a marker when it was instant (no reverted_at)."""
    lanes: list[Lane] = []
    for f in data.get("faults") or []:
        applied = f.get("applied_at")
        if not applied:
            continue
        try:
            start = parse_ts(applied)
            dur = max(parse_ts(f["reverted_at"]) - start, 0.0) if f.get("reverted_at") else 0.0
        except ValueError:
            continue
        lanes.append(("fault", {**f, "started_at": applied, "duration_s": dur}, f"  {f.get('kind')}"))
    return lanes


def timeline_svg(h: _Html, data: Mapping[str, Any]) -> str:
    """The whole rehearsal: one lane per phase (rect.phase), runbook steps (rect.step) under it."""
    phases = list(data.get("phases") or [])
    steps = [s for s in data.get("runbook_steps") or [] if not step_skipped(s)]  # a skipped step took no time
    if not phases:
        return '<p class="muted">No phase ran.</p>'
    runbook_lanes: list[Lane] = [("step", s, f"  step {s.get('index')}") for s in steps] + fault_lanes(data)
    rerun_lanes: list[Lane] = [("rerun", s, f"  rerun {s.get('index')}") for s in data.get("rerun_steps") or []
                               if not step_skipped(s)]
    lanes: list[Lane] = []
    for p in phases:
        lanes.append(("phase", p, str(p.get("name"))))
        if p.get("name") == "runbook":
            lanes += runbook_lanes
            runbook_lanes = []
        elif p.get("name") == "rerun":
            lanes += rerun_lanes
            rerun_lanes = []
    lanes += runbook_lanes + rerun_lanes  # no such phase recorded: at the end
    t0 = min(parse_ts(p["started_at"]) for p in phases)
    t1 = max(_end(r) for _, r, _ in lanes)
    rb = next((p for p in phases if p.get("name") == "runbook"), None)
    ttr = data.get("time_to_recover_s")
    recovered = parse_ts(rb["started_at"]) + float(ttr) if rb is not None and ttr is not None else None
    return _gantt(h, lanes, t0, t1, svg_class="timeline", label="timeline of phases and runbook steps",
                  recovered_at=recovered, recover_s=ttr)


def recovery_svg(h: _Html, data: Mapping[str, Any]) -> str:
    """The rollback itself, zoomed: from the runbook's start to the end of verify."""
    phases = [p for p in data.get("phases") or [] if p.get("name") in ("runbook", "verify")]
    steps = [s for s in data.get("runbook_steps") or [] if not step_skipped(s)]
    rb = next((p for p in phases if p.get("name") == "runbook"), None)
    if rb is None or not steps:
        return ""
    lanes: list[Lane] = [("phase", rb, "runbook")]
    lanes += [("step", s, f"  step {s.get('index')}") for s in steps]
    lanes += [("phase", p, str(p.get("name"))) for p in phases if p is not rb]
    t0 = parse_ts(rb["started_at"])
    ttr = data.get("time_to_recover_s")
    recovered = t0 + float(ttr) if ttr is not None else None
    t1 = max([*(_end(r) for _, r, _ in lanes), recovered or t0])  # faults lasting longer are cut at the edge
    faults = fault_lanes(data)
    lanes[1 + len(steps):1 + len(steps)] = faults
    return _gantt(h, lanes, t0, t1, svg_class="timeline timeline-zoom", label="the rollback, zoomed",
                  prefix="z", recovered_at=recovered, recover_s=ttr)


# ─────────────────────────────────────────────────────────── sections


def _figure_bar(value: float | None, objective: float | None) -> str:
    """A small bar: the measured value against the objective (a tick)."""
    if value is None:
        return ""
    top = max(value, objective or 0) * 1.15 or 1
    w = value / top * 100
    over = objective is not None and value > objective
    color = "#cf222e" if over else "#1a7f37"
    tick = ""
    if objective is not None:
        ox = objective / top * 100
        tick = (f'<line x1="{ox:.2f}%" y1="0" x2="{ox:.2f}%" y2="22" stroke="#1f2328" stroke-width="2"/>')
    return (f'<svg role="img" aria-label="value against objective" xmlns="http://www.w3.org/2000/svg">'
            f'<rect x="0" y="5" width="100%" height="12" rx="3" fill="#eaeef2"/>'
            f'<rect x="0" y="5" width="{w:.2f}%" height="12" rx="3" fill="{color}"/>{tick}</svg>')


def _figures(h: _Html, data: Mapping[str, Any]) -> None:
    objectives = data.get("objectives") or {}
    items = [
        ("Time to detect", data.get("time_to_detect_s"), objectives.get("max_detect_s"),
         "from the bad release until its failure was seen", "failure.within_s"),
        ("Time to recover", data.get("time_to_recover_s"), objectives.get("max_recover_s"),
         "from the first runbook step until the app was healthy again", "objectives.max_recover_s"),
    ]
    h.add('<div class="figures">')
    for title, value, objective, what, key in items:
        if value is None:
            klass, verdict = "unknown", "not measured"
        elif objective is None:
            klass, verdict = "ok", f"no objective ({key})"
        elif value > objective:
            klass, verdict = "over", f"above the objective of {fmt_s(objective)}"
        else:
            klass, verdict = "ok", f"within the objective of {fmt_s(objective)}"
        h.add(f'<div class="figure {klass}"><div class="muted">{h.e(title)}</div>'
              f'<div class="value">{h.e(fmt_s(value))}</div><div>{h.e(verdict)}</div>'
              f"{_figure_bar(value, objective)}"
              f'<div class="muted" style="font-size:.8rem">{h.e(what)}</div></div>')
    h.add("</div>")


def _differences(h: _Html, data: Mapping[str, Any]) -> None:
    diffs = data.get("differences") or []
    if not diffs:
        h.add('<p>None: the state after the rollback equals the baseline.</p>')
        return
    h.add('<ul class="differences">')
    for d in diffs:
        h.add(f'<li class="difference area-{h.e(d.get("area"))}"><span class="area">{h.e(d.get("area"))}</span> '
              f'<b>{h.e(d.get("object"))}</b><br>{h.e(d.get("message"))}</li>')
    h.add("</ul>")


def _steady(h: _Html, data: Mapping[str, Any]) -> None:
    """The steady-state watch after verify (shown when it ran)."""
    rec = SteadyStateRecord.model_validate(data.get("steady_state"))
    h.add('<p class="muted" style="font-size:.85rem">Verify found the state equal to the baseline; the app was then '
          "read every second for <code>checks.stable_for_s</code>: a container restart, a pod going unready or "
          "being replaced, or the pod template or running image changing is a <code>stability</code> difference."
          "</p>")
    h.add(f"<p><b>Result:</b> {h.e(rec.summary())}.</p>")
    if rec.unread:
        h.add(f'<p class="muted">Last failed reading: {h.e(rec.last_error)}</p>')
    flaps = [d for d in data.get("differences") or [] if d.get("area") == "stability"]
    if flaps:
        h.add("<ul>" + "".join(f"<li>{h.e(d.get('message'))}</li>" for d in flaps) + "</ul>")


def _recommendations(h: _Html, data: Mapping[str, Any]) -> None:
    h.add('<ul class="recommendations">')
    for r in recommendations(data):
        h.add(f'<li class="rec-{h.e(r.severity)}"><b>{h.e(r.title)}</b><br>{h.e(r.text)}</li>')
    h.add("</ul>")


_WORKLOAD_ROWS: list[tuple[str, Callable[[Mapping[str, Any]], Any], bool]] = [
    ("exists", lambda w: w.get("exists"), True),
    ("spec image", lambda w: w.get("spec_image"), True),
    ("image ids (running)", lambda w: w.get("image_ids"), True),
    ("ready", lambda w: f"{w.get('ready_replicas', 0)}/{w.get('replicas', 0)}", True),
    ("rollout complete", lambda w: w.get("rollout_complete"), True),
    ("revision", lambda w: w.get("revision"), False),  # a rollback always makes a new revision
    ("revisionHistoryLimit", lambda w: w.get("revision_history_limit"), True),
    ("config (content hash)", lambda w: [f"{k} {v}" for k, v in sorted((w.get("config") or {}).items())], True),
    ("pods", lambda w: [f"{p.get('name')} {'ready' if p.get('ready') else 'not ready'} "
                        f"restarts={p.get('restarts')}" for p in w.get("pods") or []], False),
]
_STAGES = (("baseline", "baseline"), ("after_bad_deploy", "after bad deploy"), ("after_rollback", "after rollback"))


def _workloads(h: _Html, data: Mapping[str, Any]) -> None:
    by: dict[tuple[str, str], dict[str, Mapping[str, Any]]] = {}
    for key, _ in _STAGES:
        for w in _snap(data, key).get("workloads") or []:
            by.setdefault((str(w.get("deployment")), str(w.get("container"))), {})[key] = w
    if not by:
        h.add('<p class="muted">No workload snapshot.</p>')
        return
    for (dep, container), stages in by.items():
        h.add(f"<h3>deployment/{h.e(dep)} <span class=\"muted\">container {h.e(container)}</span></h3>")
        rows = []
        for label, get, compared in _WORKLOAD_ROWS:
            vals = [get(stages[k]) if k in stages else None for k, _ in _STAGES]
            differs = compared and "baseline" in stages and "after_rollback" in stages and vals[0] != vals[2]
            rows.append(([label, *vals], differs, [False, False, False, differs]))
        _table(h, ["", *(t for _, t in _STAGES)], rows, "workloads")


def _registry(h: _Html, data: Mapping[str, Any]) -> None:
    refs: list[str] = []
    for key, _ in _STAGES:
        refs += [r for r in (_snap(data, key).get("registry") or {}) if r not in refs]
    if not refs:
        h.add('<p class="muted">No registry tag tracked by this scenario.</p>')
        return
    rows = []
    for ref in refs:
        vals = [(_snap(data, k).get("registry") or {}).get(ref) for k, _ in _STAGES]
        differs = vals[0] != vals[2]
        rows.append(([ref, *vals], differs, [False, False, False, differs]))
    _table(h, ["tag", *(t for _, t in _STAGES)], rows, "registry")


# Rows of the Helm release table: label, value of a snapshot's `helm`, compared between baseline and after rollback.
_HELM_ROWS: tuple[tuple[str, Callable[[Mapping[str, Any]], Any], bool], ...] = (
    ("revision", lambda r: r.get("revision"), False),
    ("status", lambda r: r.get("status"), True),
    ("chart", lambda r: f"{r.get('chart')}-{r.get('chart_version')}" if r.get("chart") else None, True),
    ("app version", lambda r: r.get("app_version"), True),
    ("computed values", lambda r: r.get("values_hash"), True),
    ("history", lambda r: [f"{x.get('revision')} {x.get('status')} {x.get('chart')}: {x.get('description')}"
                           for x in r.get("history") or []], False),
    ("hook Jobs left", lambda r: r.get("hook_jobs") or [], False),
)


def has_helm(data: Mapping[str, Any]) -> bool:
    return any(_snap(data, key).get("helm") for key, _ in _STAGES)


def _helm(h: _Html, data: Mapping[str, Any]) -> None:
    stages = {key: _snap(data, key).get("helm") for key, _ in _STAGES}
    name = next((r.get("release") for r in stages.values() if r), "")
    h.add(f"<h3>release {h.e(name)}</h3>")
    rows = []
    for label, get, compared in _HELM_ROWS:
        vals = [get(r) if r else None for r in stages.values()]
        differs = compared and vals[0] is not None and vals[0] != vals[2]
        rows.append(([label, *vals], differs, [False, False, False, differs]))
    _table(h, ["", *(t for _, t in _STAGES)], rows, "helm")


SchemaRow = tuple[str, str, str, str, str]  # kind, object, change, baseline, after rollback


def _fingerprint(data: Mapping[str, Any], key: str) -> SchemaFingerprint | None:
    """A stage's schema fingerprint as the model (None when absent or unreadable:
    the object table then names the objects without describing them)."""
    fp = (_snap(data, key).get("database") or {}).get("schema_fingerprint")
    try:
        return SchemaFingerprint.model_validate(fp) if fp else None
    except ValidationError:
        return None


def _change(label: str, old: Any, new: Any, messages: Sequence[str]) -> str:
    """The change column: presence, or what each of the object's differences says."""
    if new is None and old is not None:
        return "missing after rollback"
    if old is None and new is not None:
        return "still present (added after baseline)"
    return "; ".join(m[len(label):].lstrip(" :") if m.startswith(label) else m for m in messages)


def schema_rows(differences: Sequence[Mapping[str, Any]], before: SchemaFingerprint | None,
                   after: SchemaFingerprint | None) -> list[SchemaRow]:
    """(kind, object, change, baseline, after) for every object of the journal's
    schema differences, in their order: the table says what the diff said, the
    snapshots only describe the objects (the kinds table maps a label to one)."""
    old_of = labelled_objects(before) if before else {}
    now = labelled_objects(after) if after else {}
    known = {**old_of, **now}
    messages: dict[str, list[str]] = {}
    for d in differences:
        if d.get("area") == "schema":
            messages.setdefault(str(d.get("object")), []).append(str(d.get("message")))
    rows: list[SchemaRow] = []
    for label, said in messages.items():
        if label not in known:  # e.g. the snapshot scope: no object to describe
            rows.append(("schema", label, "; ".join(said), "–", "–"))
            continue
        kind, obj = known[label]
        old, new = old_of.get(label, (kind, None))[1], now.get(label, (kind, None))[1]
        rows.append((kind.noun, kind.key(obj), _change(label, old, new, said),
                     "–" if old is None else kind.describe(old), "–" if new is None else kind.describe(new)))
    return rows


def _differing_kinds(differences: Sequence[Mapping[str, Any]], before: SchemaFingerprint | None,
                     after: SchemaFingerprint | None) -> set[str]:
    """The kinds (fingerprint fields) that some schema difference names."""
    labels = {**(labelled_objects(before) if before else {}), **(labelled_objects(after) if after else {})}
    return {labels[str(d.get("object"))][0].field for d in differences
            if d.get("area") == "schema" and str(d.get("object")) in labels}


def _schema_counts(h: _Html, before: SchemaFingerprint | None, after: SchemaFingerprint | None,
                   differing: set[str]) -> None:
    rows = []
    for kind in KINDS:
        a = kind.objects(before) if before else ()
        b = kind.objects(after) if after else ()
        if kind.counted and (a or b):
            differs = kind.field in differing
            rows.append(([kind.field, len(a), len(b)], differs, [False, False, differs]))
    _table(h, ["objects", "baseline", "after rollback"], rows, "schema-counts")


def _schema(h: _Html, data: Mapping[str, Any]) -> None:
    base_db = _snap(data, "baseline").get("database") or {}
    after_db = _snap(data, "after_rollback").get("database") or {}
    if not base_db.get("schema_fingerprint") and not after_db.get("schema_fingerprint"):
        h.add('<p class="muted">No database snapshot.</p>')
        return
    same = base_db.get("schema_hash") and base_db.get("schema_hash") == after_db.get("schema_hash")
    h.add(f"<p>Schema fingerprint after the rollback: <b>{'equal to' if same else 'different from'}</b> the baseline "
          f'<span class="muted">(sha256 {h.e(str(base_db.get("schema_hash", ""))[:12])} → '
          f'{h.e(str(after_db.get("schema_hash", ""))[:12])})</span>.</p>')
    before, after = _fingerprint(data, "baseline"), _fingerprint(data, "after_rollback")
    differences = data.get("differences") or []
    _schema_counts(h, before, after, _differing_kinds(differences, before, after))
    changes = schema_rows(differences, before, after)
    if changes:
        h.add("<h3>Objects that differ</h3>")
        _table(h, ["kind", "object", "change", "baseline", "after rollback"],
               [(list(c), True, [False, True, False, False, False]) for c in changes], "schema-objects")
    else:
        h.add("<p>Every schema object equals the baseline.</p>")


def _migrations(h: _Html, data: Mapping[str, Any]) -> None:
    tables: dict[str, dict[str, Mapping[str, Any]]] = {}
    for key, _ in _STAGES:
        for m in (_snap(data, key).get("database") or {}).get("migrations") or []:
            tables.setdefault(str(m.get("table")), {})[key] = m
    if not tables:
        h.add('<p class="muted">No migration version table found.</p>')
        return
    rows = []
    for name, stages in tables.items():
        def show(m: Mapping[str, Any] | None) -> str:
            if m is None:
                return "–"
            # a lock, metadata or unrecognised table has no version: say how many rows it holds
            n = len(m.get("rows") or [])
            shown = f"version {m.get('version')}" if m.get("version") is not None else f"{n} row{'s' * (n != 1)}"
            return shown + (" (dirty)" if m.get("dirty") else "")
        vals = [show(stages.get(k)) for k, _ in _STAGES]
        a, b = stages.get("baseline"), stages.get("after_rollback")
        differs = (a or {}).get("rows") != (b or {}).get("rows") or (a or {}).get("dirty") != (b or {}).get("dirty")
        tool = next((m.get("tool") for m in stages.values()), "")
        rows.append(([f"{name} ({tool})", *vals], differs, [False, False, False, differs]))
    _table(h, ["version table", *(t for _, t in _STAGES)], rows, "migrations")


def _data(h: _Html, data: Mapping[str, Any]) -> None:
    by: dict[str, dict[str, Mapping[str, Any]]] = {}
    for key, _ in _STAGES:
        for t in (_snap(data, key).get("database") or {}).get("data") or []:
            by.setdefault(str(t.get("table")), {})[key] = t
    if not by:
        h.add('<p class="muted">No tracked table (database.tracked_tables).</p>')
        return
    rows = []

    def rc(t: Mapping[str, Any] | None) -> str:
        if t is None:
            return "–"
        return "missing" if t.get("missing") else str(t.get("row_count"))

    def ck(t: Mapping[str, Any] | None) -> str:
        return "–" if t is None or not t.get("checksum") else str(t.get("checksum"))[:16]

    for table, st in by.items():
        a, bad, b = st.get("baseline"), st.get("after_bad_deploy"), st.get("after_rollback")
        rc_diff = rc(a) != rc(b)
        ck_diff = ck(a) != ck(b)
        rows.append(([table, rc(a), rc(bad), rc(b), ck(a), ck(b)], rc_diff or ck_diff,
                     [False, False, False, rc_diff, False, ck_diff]))
    _table(h, ["table", "rows baseline", "rows after bad deploy", "rows after rollback",
               "checksum baseline", "checksum after rollback"], rows, "data")


def _runbook(h: _Html, data: Mapping[str, Any]) -> None:
    bound = placeholder_sentence(data)
    if bound:  # the commands below are shown as they ran, with these values in them
        h.add(f'<p class="placeholders">{h.e(bound[0].upper() + bound[1:])} (scenario <code>runbook.placeholders'
              "</code>; the commands below ran with these values).</p>")
    _steps(h, data.get("runbook_steps") or [], "No runbook step ran.")


def _skipped_step(h: _Html, s: Mapping[str, Any]) -> str:
    """A step the runbook marks `rehearse: skip`: shown with its reason, dashed, never as a failure."""
    return (f'<li class="skipped"><details><summary><b>#{h.e(s.get("index"))}</b> <code>{h.e(s.get("command"))}'
            f'</code> <span class="pill skipped">skipped</span> <span class="muted">{h.e(s.get("skipped"))} · '
            f'runbook line {h.e(s.get("line"))}</span></summary><pre>not run in the rehearsal: the runbook marks it '
            f'`rehearse: skip {h.e(s.get("skipped"))}`</pre></details></li>')


def _steps(h: _Html, steps: Sequence[Mapping[str, Any]], empty: str) -> None:
    """Each step with its exit code and duration; the output collapsible (open when it failed)."""
    if not steps:
        h.add(f'<p class="muted">{h.e(empty)}</p>')
        return
    h.add('<ol class="steps">')
    for s in steps:
        if step_skipped(s):
            h.add(_skipped_step(h, s))
            continue
        failed = step_failed(s)
        exit_text = "timed out" if s.get("timed_out") else f"exit {s.get('exit_code')}"
        out = str(s.get("output_tail") or "")
        h.add(f'<li class="{"failed" if failed else "ok"}"><details{" open" if failed else ""}><summary>'
              f'<b>#{h.e(s.get("index"))}</b> <code>{h.e(s.get("command"))}</code> '
              f'<span class="pill {"failed" if failed else "ok"}">{h.e(exit_text)}</span> '
              f'<span class="muted">{h.e(fmt_s(s.get("duration_s")))} · runbook line {h.e(s.get("line"))}</span>'
              f"</summary><pre>{h.e(out) if out.strip() else '(no output)'}</pre></details></li>")
    h.add("</ol>")


def has_faults(data: Mapping[str, Any]) -> bool:
    """Whether the scenario had faults: only then are the faults shown."""
    return bool(data.get("faults") or data.get("rerun_steps"))


def has_rerun(data: Mapping[str, Any]) -> bool:
    """Whether the runbook met faults (and so ran a second time): a fault of the bad release (deploy_bad) is the
    state the runbook starts from, with no second run to show."""
    return bool(data.get("rerun_steps")) or any(f.get("during", "runbook") == "runbook"
                                                 for f in data.get("faults") or [])


def _since_runbook(data: Mapping[str, Any], at: str | None) -> str:
    """A timestamp as seconds after the runbook's start (the timestamp itself without a runbook phase)."""
    if not at:
        return "–"
    rb = next((p for p in data.get("phases") or [] if p.get("name") == "runbook"), None)
    try:
        return f"{parse_ts(at) - parse_ts(rb['started_at']):+.2f}s" if rb is not None else at
    except ValueError:
        return at


def _fault_window(data: Mapping[str, Any], f: Mapping[str, Any]) -> str:
    applied, reverted = f.get("applied_at"), f.get("reverted_at")
    if not applied:
        return "not applied"
    if not reverted:
        end = " (instant)" if f.get("status") == "applied" else " → –"
        return _since_runbook(data, applied) + end
    try:
        lasted = f" ({fmt_s(parse_ts(reverted) - parse_ts(applied))})"
    except ValueError:
        lasted = ""
    return f"{_since_runbook(data, applied)} → {_since_runbook(data, reverted)}{lasted}"


def _fault_missed(f: Mapping[str, Any]) -> bool:
    """Not applied, or applied without hitting anything: the rollback did not face it."""
    return f.get("status") != "applied" or f.get("hits") == 0


def _fault_rows(h: _Html, data: Mapping[str, Any]) -> None:
    faults = data.get("faults") or []
    if not faults:
        h.add('<p class="muted">No fault was recorded.</p>')
        return
    h.add('<div class="scroll"><table class="faults"><thead><tr><th>fault</th><th>when</th><th>status</th>'
          "<th>applied → removed</th><th>hits</th><th>detail</th></tr></thead><tbody>")
    for f in faults:
        status = str(f.get("status") or "")
        hits = f.get("hits")
        row_open = '<tr class="diff">' if _fault_missed(f) else "<tr>"
        h.add(f"{row_open}"
              f'<td>{h.e(f.get("kind"))} <span class="muted">faults[{h.e(f.get("index"))}]</span></td>'
              f'<td>{h.e(fault_moment(f))}</td>'
              f'<td><span class="pill {h.e(status)}">{h.e(status)}</span></td>'
              f'<td class="num">{h.e(_fault_window(data, f))}</td>'
              f'<td class="num{" diff" if hits == 0 else ""}">{h.e("–" if hits is None else hits)}</td>'
              f'<td class="wrap">{"<br>".join(h.e(ln) for ln in str(f.get("detail") or "").splitlines())}</td></tr>')
    h.add("</tbody></table></div>"
          '<p class="muted" style="font-size:.85rem">Times from the start of the runbook. Hits: what the fault '
          "hit (connections terminated); 0 means the rollback never met it.</p>")


def _converged_line(converged: bool | None) -> tuple[str, str]:
    if converged is None:
        return "info", "Convergence under the faults was not recorded (the rerun phase did not run)."
    if converged:
        return "ok", "The runbook converged despite the faults: the first verify found no difference."
    return "action", ("The runbook did not converge under the faults: the first verify found differences "
                      "(see above).")


def _idempotent_line(idempotent: bool | None) -> tuple[str, str]:
    if idempotent is None:
        return "info", "No second run of the runbook was recorded."
    if idempotent:
        return "ok", ("A second run of the runbook, without faults, was idempotent: no step failed and the "
                      "state stayed equal to the baseline.")
    return "action", ("A second run of the runbook, without faults, was NOT idempotent: a step failed or the "
                      "state differs from the baseline.")


def _cost_line(cost: float | None) -> tuple[str, str]:
    if cost is None:
        return "info", "Fault cost: not measured."
    return "info", (f"Fault cost: {cost:.2f} s (time to recover with the faults minus the second run's; an "
                    "upper bound, the second run had no pods to replace).")


def _fault_outcome(h: _Html, data: Mapping[str, Any]) -> None:
    items = [_converged_line(data.get("runbook_converged")), _idempotent_line(data.get("idempotent")),
             _cost_line(data.get("fault_cost_s"))]
    h.add('<ul class="recommendations outcome">'
          + "".join(f'<li class="rec-{sev}">{h.e(text)}</li>' for sev, text in items) + "</ul>")


def _faults(h: _Html, data: Mapping[str, Any]) -> None:
    _fault_rows(h, data)
    if has_rerun(data):
        _fault_outcome(h, data)


def _rerun(h: _Html, data: Mapping[str, Any]) -> None:
    h.add('<p class="muted" style="font-size:.85rem">The runbook section run again after verify, with every fault '
          "removed: a runbook that must be re-run after a fault has to be idempotent.</p>")
    _steps(h, data.get("rerun_steps") or [], "No step ran a second time.")


def risks_block(h: _Html, data: Mapping[str, Any]) -> str:
    """Readiness risks, right under the verdict: each message with its evidence collapsible."""
    risks = data.get("risks") or []
    if not risks:
        return ""
    items = []
    for r in risks:
        evidence = str(r.get("evidence") or "")
        more = f"<details><summary>evidence</summary><pre>{h.e(evidence)}</pre></details>" if evidence.strip() else ""
        items.append(f'<li class="risk kind-{h.e(r.get("kind"))}"><span class="area">{h.e(r.get("kind"))}</span>'
                     f'<b>{h.e(r.get("object"))}</b><br>{h.e(r.get("message"))}{more}</li>')
    return (f'<section id="risks" class="risks"><h2>Readiness risks ({len(risks)})</h2>'
            '<p class="muted" style="font-size:.85rem;margin:0 0 .4em">Seen for real during the rehearsal but '
            "outside the verdict: they never change it. They are what would break a different, plausible "
            f'rollback.</p><ul>{"".join(items)}</ul></section>')


def _compatibility(h: _Html, data: Mapping[str, Any]) -> None:
    h.add('<p class="muted" style="font-size:.85rem">Before the rollback, the good version was started against '
          "the bad release's schema (phase compat).</p>"
          '<ul class="compat">'
          + "".join(f"<li>{h.e(line)}</li>" for line in data.get("compatibility") or []) + "</ul>")


def _phases(h: _Html, data: Mapping[str, Any]) -> None:
    phases = data.get("phases") or []
    if not phases:
        return
    t0 = parse_ts(phases[0]["started_at"])
    h.add('<div class="scroll"><table class="phases"><thead><tr><th>phase</th><th>status</th><th>start</th>'
          "<th>duration</th><th>detail</th></tr></thead><tbody>")
    for p in phases:
        detail = str(p.get("detail") or "")
        first, _, rest = detail.partition("\n")
        cell = h.e(first) + (f"<details><summary>more</summary><pre>{h.e(rest)}</pre></details>" if rest else "")
        bad = p.get("status") != "ok"
        row_open = '<tr class="diff">' if bad else "<tr>"
        h.add(f'{row_open}<td>{h.e(p.get("name"))}</td>'
              f'<td><span class="pill {h.e(p.get("status"))}">{h.e(p.get("status"))}</span></td>'
              f'<td class="num">+{parse_ts(p["started_at"]) - t0:.2f}s</td>'
              f'<td class="num">{h.e(fmt_s(p.get("duration_s")))}</td><td class="wrap">{cell}</td></tr>')
    cleanup = data.get("cleanup_s")
    if cleanup is not None and not any(p.get("name") == "cleanup" for p in phases):  # a failed one is a phase
        h.add('<tr><td>cleanup</td><td><span class="pill ok">ok</span></td><td class="num">after</td>'
              f'<td class="num">{h.e(fmt_s(cleanup))}</td><td class="wrap">the scenario\'s namespace and database '
              "removed (their deletion asked here; the wait for it runs beside the next scenarios)</td></tr>")
    h.add("</tbody></table></div>")


def _findings(h: _Html, data: Mapping[str, Any]) -> None:
    findings = data.get("findings") or []
    if not findings:
        h.add('<p class="muted">No preflight finding.</p>')
        return
    h.add('<ul class="recommendations findings">')
    for f in findings:
        sev = "action" if f.get("severity") == "failure" else "info"
        where = f" ({f.get('file')})" if f.get("file") else ""
        h.add(f'<li class="rec-{sev}"><b>{h.e(f.get("severity"))}: {h.e(f.get("check"))}</b>{h.e(where)}<br>'
              f'{h.e(f.get("message"))}<br><span class="muted">fix: {h.e(f.get("fix"))}</span></li>')
    h.add("</ul>")


def _events(h: _Html, data: Mapping[str, Any]) -> None:
    events = data.get("events") or []
    if not events:
        h.add('<p class="muted">No event.</p>')
        return
    rows: list[tuple[Sequence[Any], bool, Sequence[bool]]] = [
        ([e.get("at"), e.get("kind"), e.get("message")], False, []) for e in events]
    _table(h, ["at", "kind", "message"], rows, "events")


# ──────────────────────────────────────────────────────────────── page


def _head(h: _Html, data: Mapping[str, Any]) -> None:
    """The document head and the coloured verdict banner."""
    verdict = str(data.get("verdict") or "ERROR")
    vclass = verdict if verdict in VERDICT_TEXT else "ERROR"
    expect = str(data.get("expect") or "")
    started = data.get("started_at") or ""
    try:
        when = parse_dt(started).strftime("%Y-%m-%d %H:%M UTC") if started else ""
    except ValueError:
        when = started
    h.add("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
          '<meta name="viewport" content="width=device-width, initial-scale=1">'
          "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
          "img-src data:\">"
          '<meta name="color-scheme" content="light">'
          f"<title>{h.e(verdict)} · {h.e(data.get('scenario'))} · rollback rehearsal</title>"
          f"<style>{CSS}</style></head><body>")
    n_risks = len(data.get("risks") or [])
    risk_pill = (f' <a class="expect" href="#risks">⚠ {n_risks} readiness risk{"s" if n_risks > 1 else ""}</a>'
                 if n_risks else "")
    h.add(f'<header class="verdict verdict-{h.e(vclass)}"><div>'
          f'<div class="verdict-label" id="verdict">{h.e(verdict)}</div>'
          f'<h1>{h.e(data.get("scenario"))}</h1>'
          f'<p class="verdict-sub">{h.e(VERDICT_TEXT.get(vclass, ""))}</p>'
          + (f'<p class="verdict-sub">{h.e(data.get("description"))}</p>' if data.get("description") else "")
          + f'<span class="expect">expected {h.e(expect)}: {"as expected" if as_expected(data) else "NOT as expected"}'
          f"</span> <span class=\"expect\">{h.e(when)}</span>{risk_pill}</div></header><main>")


def _nav(h: _Html, data: Mapping[str, Any]) -> None:
    faulted = has_faults(data)
    h.add('<nav><a href="#summary">summary</a><a href="#differences">differences</a>'
          '<a href="#recommendations">recommendations</a><a href="#timeline">timeline</a>'
          '<a href="#runbook">runbook</a>'
          + ('<a href="#faults">faults</a><a href="#rerun">second run</a>' if faulted else "")
          + '<a href="#workloads">workloads</a><a href="#registry">registry</a>'
          '<a href="#schema">schema</a><a href="#data">data</a><a href="#findings">preflight</a>'
          + ('<a href="#compatibility">compatibility</a>' if data.get("compatibility") else "")
          + '<a href="#phases">phases</a><a href="#events">events</a></nav>')


def _summary(h: _Html, data: Mapping[str, Any]) -> None:
    reasons = data.get("reasons") or []
    if reasons:
        h.add('<ul class="reasons">' + "".join(f"<li>{h.e(r)}</li>" for r in reasons) + "</ul>")
    _figures(h, data)


def _preflight(h: _Html, data: Mapping[str, Any]) -> None:
    h.add('<p class="muted" style="font-size:.85rem">Advice read from the scenario\'s files before the run; '
          "it never changes the verdict.</p>")
    _findings(h, data)


def _timeline(h: _Html, data: Mapping[str, Any]) -> None:
    h.add('<div class="scroll">')
    h.add(timeline_svg(h, data))
    legend = "Blue: phases (red when failed); purple: runbook steps; "
    if has_faults(data):
        legend += "amber: faults in place (a thin mark when instant), shaded across the lanes; teal: second run; "
    h.add(f'</div><p class="muted" style="font-size:.85rem">{legend}dashed green: the app healthy again.</p>')
    zoom = recovery_svg(h, data)
    if zoom:
        h.add('<h3>The rollback, zoomed</h3><div class="scroll">' + zoom + "</div>")


def _schema_and_migrations(h: _Html, data: Mapping[str, Any]) -> None:
    _schema(h, data)
    h.add("<h3>Migration version tables</h3>")
    _migrations(h, data)


def _footer(h: _Html, data: Mapping[str, Any]) -> None:
    env = data.get("environment") or {}
    h.add("<footer>"
          + " · ".join(h.e(f"{k}: {v}") for k, v in env.items())
          + f"<br>started {h.e(data.get('started_at'))}, finished {h.e(data.get('finished_at') or '–')}"
          f" · report.json schema_version {h.e(data.get('schema_version'))}"
          f" · objectives {h.e(json.dumps(data.get('objectives') or {}))}"
          "<br>Generated by rollback-rehearsal from report.json (the journal).</footer></main></body></html>\n")


Section = tuple[str, str, Callable[[_Html, Mapping[str, Any]], None], Callable[[Mapping[str, Any]], bool]]


def _always(_: Mapping[str, Any]) -> bool:
    return True


# The page's sections in order: (id, heading, writer, shown when).
SECTIONS: tuple[Section, ...] = (
    ("summary", "Summary", _summary, _always),
    ("differences", "Differences after the rollback", _differences, _always),
    ("recommendations", "Recommendations", _recommendations, _always),
    ("steady", "Steady state after the rollback", _steady, lambda d: bool(d.get("steady_state"))),
    ("findings", "Preflight findings", _preflight, _always),
    ("compatibility", "Old version on the new schema", _compatibility, lambda d: bool(d.get("compatibility"))),
    ("timeline", "Timeline", _timeline, _always),
    ("runbook", "Runbook steps", _runbook, _always),
    ("faults", "Faults during the rollback", _faults, has_faults),
    ("rerun", "Second run of the runbook", _rerun, has_rerun),
    ("workloads", "Workloads", _workloads, _always),
    ("registry", "Registry tags", _registry, _always),
    ("helm", "Helm release", _helm, has_helm),
    ("schema", "Schema", _schema_and_migrations, _always),
    ("data", "Tracked data", _data, _always),
    ("phases", "Phases", _phases, _always),
    ("events", "Events", _events, _always),
)


def render_html(journal: Journal | Mapping[str, Any], redactor: Any = None) -> str:
    redact = as_redact(redactor)
    data = journal_data(journal, redact)
    h = _Html(redact)
    _head(h, data)
    h.add(risks_block(h, data))
    _nav(h, data)
    for sid, heading, write, shown in SECTIONS:
        if shown(data):
            h.add(f'<section id="{sid}"><h2>{h.e(heading)}</h2>')
            write(h, data)
            h.add("</section>")
    _footer(h, data)
    return h.text()


def write_html(journal: Journal | Mapping[str, Any], directory: Path, redactor: Any = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "report.html"
    path.write_text(render_html(journal, redactor), encoding="utf-8")
    return path
