"""badge.svg: "rollback readiness | N/M ready", colored by the ready ratio
(a flat, shields.io-style badge; self-contained SVG, no fonts or links)."""

from __future__ import annotations

import html
from pathlib import Path

LABEL = "rollback readiness"


def badge_color(ready: int, total: int) -> str:
    if total <= 0:
        return "#9f9f9f"  # no data
    ratio = ready / total
    if ratio >= 1:
        return "#4c1"      # bright green
    if ratio >= 0.8:
        return "#97ca00"   # green
    if ratio >= 0.5:
        return "#dfb317"   # yellow
    if ratio > 0:
        return "#fe7d37"   # orange
    return "#e05d44"       # red


def _text_width(text: str) -> int:
    """Approximate width of 11px Verdana/DejaVu Sans (shields.io's metric, roughly)."""
    narrow, wide = set("iljtfr.:,;|!' "), set("mwMW@%")
    return int(sum(3.5 if c in narrow else 10 if c in wide else 7 for c in text)) + 10


def render_badge(ready: int, total: int, label: str = LABEL) -> str:
    message = f"{ready}/{total} ready" if total > 0 else "no data"
    color = badge_color(ready, total)
    lw, mw = _text_width(label), _text_width(message)
    w = lw + mw
    lab, msg = html.escape(label), html.escape(message)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="20" role="img" '
        f'aria-label="{lab}: {msg}"><title>{lab}: {msg}</title>'
        '<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/>'
        '<stop offset="1" stop-opacity=".1"/></linearGradient>'
        f'<clipPath id="r"><rect width="{w}" height="20" rx="3" fill="#fff"/></clipPath>'
        f'<g clip-path="url(#r)"><rect width="{lw}" height="20" fill="#555"/>'
        f'<rect x="{lw}" width="{mw}" height="20" fill="{color}"/>'
        f'<rect width="{w}" height="20" fill="url(#s)"/></g>'
        '<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11">'
        f'<text x="{lw / 2:.1f}" y="15" fill="#010101" fill-opacity=".3">{lab}</text>'
        f'<text x="{lw / 2:.1f}" y="14">{lab}</text>'
        f'<text x="{lw + mw / 2:.1f}" y="15" fill="#010101" fill-opacity=".3">{msg}</text>'
        f'<text x="{lw + mw / 2:.1f}" y="14">{msg}</text></g></svg>\n'
    )


def write_badge(ready: int, total: int, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_badge(ready, total), encoding="utf-8")
    return path
