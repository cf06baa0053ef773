"""`rehearse report trend`: time to recover over runs, from merged history files.

Writes, into the report directory:
  trend.html  one self-contained page: per-scenario SVG chart (points colored
              by verdict, the recovery objective as a dashed line) and tables;
  trend.png   the same charts as a PNG (matplotlib, Agg backend: no display);
  badge.svg   "rollback readiness | N/M ready" from each scenario's latest run.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.report.badge import render_badge, write_badge
from harness.report.common import Redact, as_redact, fmt_s, parse_dt, redact_tree
from harness.report.history import History

COLORS = {"READY": "#1a7f37", "NOT_READY": "#cf222e", "ERROR": "#9a6700"}
OTHER = "#57606a"


@dataclass
class TrendResult:
    html: Path
    png: Path
    badge: Path
    ready: int
    total: int
    runs: int


def readiness(history: History, against_expect: bool = False) -> tuple[int, int]:
    """(ready, total) over each scenario's latest entry."""
    latest = history.latest()
    if against_expect:
        ready = sum(1 for e in latest.values() if e.get("verdict") == e.get("expect"))
    else:
        ready = sum(1 for e in latest.values() if e.get("verdict") == "READY")
    return ready, len(latest)


def _nice_max(v: float) -> tuple[float, float]:
    """(axis maximum, tick step) for values up to v."""
    v = max(v, 0.1)
    for step in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600):
        if v / step <= 6:
            top = step * (int(v / step) + 1)
            return top, step
    return v * 1.1, v / 5


def _short_time(ts: str) -> str:
    try:
        return parse_dt(ts).strftime("%m-%d %H:%M")
    except ValueError:
        return ts[:16]


def scenario_svg(entries: Sequence[dict[str, Any]], e: Any) -> str:
    """One chart: time to recover per run (oldest left). ``e`` escapes text."""
    width, height = 1000, 240
    left, right, top, bottom = 64, 950, 18, 180
    values: list[float] = [float(x["ttr"]) for x in entries if x.get("ttr") is not None]
    objectives = [float(x["max_recover_s"]) for x in entries if x.get("max_recover_s") is not None]
    objective = objectives[-1] if objectives else None
    ymax, ystep = _nice_max(max([*values, objective or 0, 0.1]))
    n = len(entries)

    def x(i: int) -> float:
        return (left + right) / 2 if n == 1 else left + i * (right - left) / (n - 1)

    def y(v: float) -> float:
        return bottom - v / ymax * (bottom - top)

    out = [(f'<svg class="trend-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
            f'width="100%" role="img" aria-label="time to recover over runs">')]
    tick = 0.0
    while tick <= ymax + 1e-9:
        out.append(f'<line class="grid" x1="{left}" x2="{right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}"/>'
                   f'<text class="axis" x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:g}s</text>')
        tick += ystep
    if objective is not None:
        out.append(f'<line class="objective" x1="{left}" x2="{right}" y1="{y(objective):.1f}" '
                   f'y2="{y(objective):.1f}"/><text class="axis" x="{right}" y="{y(objective) - 5:.1f}" '
                   f'text-anchor="end">objective {objective:g}s</text>')
    pts = [(x(i), y(v["ttr"])) for i, v in enumerate(entries) if v.get("ttr") is not None]
    if len(pts) > 1:
        out.append('<polyline class="series" points="' + " ".join(f"{a:.1f},{b:.1f}" for a, b in pts) + '"/>')
    every = max(1, n // 10)
    for i, entry in enumerate(entries):
        verdict = str(entry.get("verdict"))
        color = COLORS.get(verdict, OTHER)
        tip = (f"{entry.get('timestamp')} · run {entry.get('run_id')} · host {entry.get('host') or '-'}\n"
               f"verdict {verdict} (expect {entry.get('expect')}) · time to recover {fmt_s(entry.get('ttr'))}"
               f" · time to detect {fmt_s(entry.get('ttd'))}")
        cx = x(i)
        if entry.get("ttr") is None:  # not recovered / not measured: a cross on the axis
            cy = bottom
            out.append(f'<path class="point nottr v-{e(verdict)}" d="M{cx - 6:.1f},{cy - 6:.1f}L{cx + 6:.1f},{cy + 6:.1f}'
                       f'M{cx - 6:.1f},{cy + 6:.1f}L{cx + 6:.1f},{cy - 6:.1f}" stroke="{color}" stroke-width="3">'
                       f"<title>{e(tip)}</title></path>")
        else:
            out.append(f'<circle class="point v-{e(verdict)}" cx="{cx:.1f}" cy="{y(entry["ttr"]):.1f}" r="7" '
                       f'fill="{color}"><title>{e(tip)}</title></circle>')
        if i % every == 0 or i == n - 1:
            out.append(f'<text class="axis" x="{cx:.1f}" y="{bottom + 18}" text-anchor="middle">'
                       f"{e(_short_time(str(entry.get('timestamp'))))}</text>")
    out.append(f'<line class="axisline" x1="{left}" x2="{right}" y1="{bottom}" y2="{bottom}"/></svg>')
    return "".join(out)


CSS = """
*{box-sizing:border-box}body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;color:#1f2328}
main{max-width:1100px;margin:0 auto;padding:12px 16px 32px}h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:1.6em;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;width:100%;font-size:.9rem;margin:.4em 0}th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left}
th{background:#f6f8fa}.scroll{overflow-x:auto}.muted{color:#57606a}
.v{font-weight:700}.v-READY{color:#1a7f37}.v-NOT_READY{color:#cf222e}.v-ERROR{color:#9a6700}
svg.trend-chart{min-width:560px;display:block}
svg.trend-chart text{font:12px system-ui,sans-serif;fill:#57606a}
svg.trend-chart line.grid{stroke:#eaeef2}svg.trend-chart line.axisline{stroke:#8c959f}
svg.trend-chart line.objective{stroke:#cf222e;stroke-dasharray:6 4;stroke-width:1.5}
svg.trend-chart polyline.series{fill:none;stroke:#8c959f;stroke-width:2}
.legend span{margin-right:14px}.dot{display:inline-block;width:10px;height:10px;border-radius:5px;margin-right:4px}
@media (max-width:600px){body{font-size:14px}main{padding:8px}}
@media print{.scroll{overflow:visible}svg.trend-chart{min-width:0}h2{break-after:avoid}section{break-inside:avoid}
 *{-webkit-print-color-adjust:exact;print-color-adjust:exact}}
"""


def render_trend_html(history: History, redactor: Any = None, against_expect: bool = False) -> str:
    redact = as_redact(redactor)
    entries = [redact_tree(x, redact) for x in history.entries]
    hist = History(entries, history.skipped)

    def e(v: Any) -> str:
        return html.escape(redact("" if v is None else str(v)), quote=True)

    ready, total = readiness(hist, against_expect)
    runs = hist.runs()
    parts = [("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
             '<meta name="viewport" content="width=device-width, initial-scale=1">'
             "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
             "img-src data:\">"
             f"<title>Rollback readiness trend · {ready}/{total} ready</title><style>{CSS}</style></head><body><main>"),
             f"<h1>Rollback readiness trend</h1><p>{render_badge(ready, total)}</p>",
             f'<p class="muted">{len(runs)} run(s), {len(hist.scenarios)} scenario(s), {len(entries)} result(s)'
             + (f", first {e(entries[0]['timestamp'])}, last {e(entries[-1]['timestamp'])}" if entries else "")
             + (f"; {hist.skipped} malformed history line(s) ignored" if hist.skipped else "") + ".</p>",
             '<p class="legend">' + "".join(f'<span><span class="dot" style="background:{c}"></span>{v}</span>'
                                            for v, c in COLORS.items())
             + '<span>× no recovery measured</span><span style="color:#cf222e">- - objective</span></p>']
    if not entries:
        parts.append("<p>No history yet: run <code>rehearse run</code> first.</p>")
    latest = hist.latest()
    if latest:
        parts.append('<h2>Latest</h2><div class="scroll"><table><thead><tr><th>scenario</th><th>latest verdict</th>'
                     "<th>expect</th><th>time to recover</th><th>ready in runs</th><th>last run</th></tr></thead><tbody>")
        for name in hist.scenarios:
            ent = hist.for_scenario(name)
            last = latest[name]
            n_ready = sum(1 for x in ent if x.get("verdict") == "READY")
            parts.append(f"<tr><td>{e(name)}</td><td class=\"v v-{e(last.get('verdict'))}\">{e(last.get('verdict'))}</td>"
                         f"<td>{e(last.get('expect'))}</td><td>{e(fmt_s(last.get('ttr')))}</td>"
                         f"<td>{n_ready}/{len(ent)}</td><td>{e(last.get('timestamp'))}</td></tr>")
        parts.append("</tbody></table></div>")
    for name in hist.scenarios:
        ent = hist.for_scenario(name)
        parts.append(f'<section class="scenario" id="s-{e(name)}"><h2>{e(name)}</h2>'
                     f'<div class="scroll">{scenario_svg(ent, e)}</div>'
                     "<details><summary>runs</summary><div class=\"scroll\"><table><thead><tr><th>time</th><th>run</th>"
                     "<th>host</th><th>verdict</th><th>expect</th><th>detect</th><th>recover</th></tr></thead><tbody>")
        for x in reversed(ent):
            parts.append(f"<tr><td>{e(x.get('timestamp'))}</td><td>{e(x.get('run_id'))}</td><td>{e(x.get('host'))}</td>"
                         f"<td class=\"v v-{e(x.get('verdict'))}\">{e(x.get('verdict'))}</td><td>{e(x.get('expect'))}</td>"
                         f"<td>{e(fmt_s(x.get('ttd')))}</td><td>{e(fmt_s(x.get('ttr')))}</td></tr>")
        parts.append("</tbody></table></div></details></section>")
    parts.append('<p class="muted">Generated by rollback-rehearsal (`rehearse report trend`) from history.jsonl.</p>'
                 "</main></body></html>\n")
    return "".join(parts)


def render_trend_png(history: History, path: Path, redact: Redact | None = None) -> Path:
    """The per-scenario charts as one PNG (matplotlib, Agg backend)."""
    import matplotlib  # noqa: PLC0415 (heavy: only the trend command needs it)

    matplotlib.use("Agg", force=True)
    from matplotlib import pyplot as plt  # noqa: PLC0415
    from matplotlib.lines import Line2D  # noqa: PLC0415

    redact = as_redact(redact)
    scenarios = history.scenarios or ["(no history)"]
    fig, axes = plt.subplots(len(scenarios), 1, figsize=(10, 2.6 * len(scenarios) + 0.6), squeeze=False)
    for ax, name in zip(axes[:, 0], scenarios, strict=True):
        ent = history.for_scenario(name)
        xs = list(range(len(ent)))
        ttr = [x.get("ttr") for x in ent]
        line_x = [i for i, v in zip(xs, ttr, strict=True) if v is not None]
        line_y = [v for v in ttr if v is not None]
        if len(line_x) > 1:
            ax.plot(line_x, line_y, color="#8c959f", linewidth=1.5, zorder=1)
        for i, x in enumerate(ent):
            color = COLORS.get(str(x.get("verdict")), OTHER)
            if x.get("ttr") is None:
                ax.scatter([i], [0], marker="x", s=70, color=color, zorder=3, clip_on=False)
            else:
                ax.scatter([i], [x["ttr"]], s=55, color=color, zorder=2, edgecolors="white")
        objectives = [x.get("max_recover_s") for x in ent if x.get("max_recover_s") is not None]
        if objectives:
            ax.axhline(objectives[-1], color="#cf222e", linestyle="--", linewidth=1)
        ax.set_title(redact(name), loc="left", fontsize=11)
        ax.set_ylabel("recover (s)")
        ax.set_ylim(bottom=0)
        ax.set_xticks(xs, [_short_time(str(x.get("timestamp"))) for x in ent], fontsize=8,
                      rotation=30 if len(xs) > 6 else 0)
        ax.grid(axis="y", color="#eaeef2")
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    handles = [Line2D([], [], marker="o", linestyle="", color=c, label=v) for v, c in COLORS.items()]
    handles.append(Line2D([], [], color="#cf222e", linestyle="--", label="objective"))
    fig.legend(handles=handles, loc="upper right", ncol=4, fontsize=9, frameon=False)
    fig.suptitle("Rollback rehearsal: time to recover over runs", x=0.01, ha="left", fontsize=12)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, format="png", metadata={"Software": "rollback-rehearsal"})
    plt.close(fig)
    return path


def write_trend(history: History, out_dir: Path, redactor: Any = None, against_expect: bool = False) -> TrendResult:
    out_dir.mkdir(parents=True, exist_ok=True)
    redact = as_redact(redactor)
    html_path = out_dir / "trend.html"
    html_path.write_text(render_trend_html(history, redact, against_expect), encoding="utf-8")
    png_path = render_trend_png(History([redact_tree(x, redact) for x in history.entries], history.skipped),
                                out_dir / "trend.png", redact)
    ready, total = readiness(history, against_expect)
    badge_path = write_badge(ready, total, out_dir / "badge.svg")
    return TrendResult(html_path, png_path, badge_path, ready, total, len(history.runs()))
