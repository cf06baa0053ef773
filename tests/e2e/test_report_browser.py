"""report.html and trend.html in a real browser (Debian's chromium, headless, offline).

Checks what a reader sees: the DOM after parsing (verdict, the timeline SVG
with one rect per phase, the highlighted differences) and a screenshot.
Set REHEARSAL_SHOTS_DIR to keep the screenshots.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from harness.journal import Journal
from harness.redact import Redactor
from harness.report import write_run_reports, write_scenario_reports
from harness.report.history import read_history
from harness.report.trend import write_trend

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
DATA = Path(__file__).resolve().parents[1] / "data" / "reports"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
WINDOW = (1200, 2000)


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} not found: the report browser test needs Debian's chromium. "
                    "Fix: apt-get install chromium")
    return CHROMIUM


def _browser(chromium: Path, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp / "chromium-profile"
    profile.mkdir(exist_ok=True)
    cmd = [str(chromium), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, f"chromium failed ({proc.returncode}):\n{proc.stderr[-2000:]}"
    return proc


def dump_dom(chromium: Path, tmp: Path, page: Path) -> str:
    return _browser(chromium, tmp, "--dump-dom", page.resolve().as_uri()).stdout


def screenshot(chromium: Path, tmp: Path, page: Path, name: str) -> Path:
    png = tmp / name
    _browser(chromium, tmp, f"--screenshot={png}", f"--window-size={WINDOW[0]},{WINDOW[1]}", page.resolve().as_uri())
    shots = os.environ.get("REHEARSAL_SHOTS_DIR")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        shutil.copy(png, Path(shots) / name)
    return png


class Dom(HTMLParser):
    """What the checks need from the browser's DOM."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.stack: list[tuple[str, set[str], str]] = []  # (tag, classes, id)
        self.verdict = ""
        self.timeline_svgs = 0  # the whole rehearsal
        self.zoom_svgs = 0  # the rollback, zoomed (its bars are zphase/zstep)
        self.phase_rects = 0
        self.step_rects = 0
        self.differences_text = ""
        self.diff_elements = 0
        self.details = 0
        self.feed(text)

    def _inside(self, tag: str, cls: str) -> bool:
        return any(t == tag and cls in c for t, c, _ in self.stack)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        classes = set((a.get("class") or "").split())
        if tag == "svg" and "timeline" in classes:
            self.timeline_svgs += "timeline-zoom" not in classes
            self.zoom_svgs += "timeline-zoom" in classes
        if tag == "rect" and self._inside("svg", "timeline"):
            self.phase_rects += "phase" in classes
            self.step_rects += "step" in classes
        self.diff_elements += "diff" in classes
        self.details += tag == "details"
        if tag not in {"br", "meta", "line", "rect", "path", "circle", "stop", "polyline"}:
            self.stack.append((tag, classes, a.get("id") or ""))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break

    def handle_data(self, data: str) -> None:
        if any(i == "verdict" for _, _, i in self.stack):
            self.verdict += data
        if self._inside("ul", "differences"):
            self.differences_text += data


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def _pixel(path: Path, xy: tuple[int, int]) -> tuple[int, int, int]:
    from PIL import Image  # noqa: PLC0415 (pillow comes with matplotlib)

    with Image.open(path) as im:
        return im.convert("RGB").getpixel(xy)


def _report(tmp: Path, run: str, scenario: str) -> tuple[Journal, Path]:
    journal = Journal.model_validate_json((DATA / run / scenario / "report.json").read_text(encoding="utf-8"))
    out = tmp / run / scenario
    write_scenario_reports(journal, out, Redactor())
    return journal, out / "report.html"


def test_not_ready_report_in_the_browser(chromium: Path, tmp_path: Path) -> None:
    journal, page = _report(tmp_path, "rr3", "forgot-migrate-down")
    dom = Dom(dump_dom(chromium, tmp_path, page))
    assert dom.verdict.strip() == "NOT_READY"
    assert dom.timeline_svgs == 1 and dom.zoom_svgs == 1
    assert dom.phase_rects == len(journal.phases) == 7
    assert dom.step_rects == len(journal.runbook_steps)
    assert "users.nickname" in dom.differences_text
    assert dom.diff_elements >= 4  # leftover column and index, migration version, users checksum
    assert dom.details >= len(journal.runbook_steps)

    png = screenshot(chromium, tmp_path, page, "report-not-ready.png")
    assert _png_size(png) == WINDOW
    assert png.stat().st_size > 50_000  # a rendered page, not a blank one
    r, g, b = _pixel(png, (30, 30))  # the verdict banner: red
    assert r > 150 and g < 90 and b < 90, (r, g, b)


def test_ready_report_in_the_browser(chromium: Path, tmp_path: Path) -> None:
    journal, page = _report(tmp_path, "rr3", "promotion")
    dom = Dom(dump_dom(chromium, tmp_path, page))
    assert dom.verdict.strip() == "READY"
    assert dom.phase_rects == len(journal.phases)
    assert dom.differences_text == ""  # no differences list at all
    png = screenshot(chromium, tmp_path, page, "report-ready.png")
    r, g, b = _pixel(png, (30, 30))  # green banner
    assert g > 100 and r < 80, (r, g, b)


def test_trend_page_in_the_browser(chromium: Path, tmp_path: Path) -> None:
    for run in ("rr1", "rr2", "rr3"):
        journals = [Journal.model_validate_json(p.read_text(encoding="utf-8"))
                    for p in sorted((DATA / run).glob("*/report.json"))]
        write_run_reports(journals, tmp_path, Redactor(), run_id=run, host="ci")
    result = write_trend(read_history([tmp_path / "history.jsonl"]), tmp_path)
    dom = dump_dom(chromium, tmp_path, result.html)
    assert dom.count('class="trend-chart"') == 4
    assert "3/4 ready" in dom
    png = screenshot(chromium, tmp_path, result.html, "trend.png")
    assert _png_size(png) == WINDOW and png.stat().st_size > 30_000
