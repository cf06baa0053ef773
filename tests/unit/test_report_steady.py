"""The steady-state watch and version-table honesty in the reports: the HTML section, the junit
details, the recommendations, and the judge's one rule for the two new areas.

Journals are the demo's real reports (tests/data/reports) with the watch and the differences
added as the verify phase records them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness import judge
from harness.journal import Difference, Journal, SteadyStateRecord
from harness.redact import Redactor
from harness.report import write_run_reports
from harness.report.html import render_html
from harness.report.recommend import recommendations

DATA = Path(__file__).resolve().parents[1] / "data" / "reports"
STEADY = SteadyStateRecord(started_at="2026-11-26T06:00:00+00:00", stable_for_s=5, watched_s=5.02, samples=5)
FLAP = Difference(area="stability", object="deployment demo", message=(
    "deployment demo went back to image rollback-rehearsal/demo-app:v2 (the bad release's) at 3.2s of the 5s "
    "steady-state watch; after the rollback it declared rollback-rehearsal/demo-app:v1"))
LIE = Difference(area="version", object="migration version table schema_migrations", message=(
    "schema_migrations says 1 (the good release's version) but the schema is the bad release's (version 2): the next "
    "deploy of the bad release's version will apply its migration again onto a schema that already has it"))


def _ready() -> Journal:
    j = Journal.model_validate_json((DATA / "rr3" / "bad-image" / "report.json").read_text(encoding="utf-8"))
    return j.model_copy(update={"steady_state": STEADY})


def _flapped() -> Journal:
    j = _ready().model_copy(update={
        "steady_state": STEADY.model_copy(update={"watched_s": 3.2, "samples": 3, "flaps": 1, "unread": 1,
                                                  "last_error": "ReadTimeoutError: read timed out"}),
        "differences": [FLAP]})
    judge.decide(j).record(j)
    return j


@pytest.mark.parametrize("difference", [FLAP, LIE], ids=["stability", "version"])
def test_the_new_areas_make_the_verdict_not_ready(difference: Difference) -> None:
    judged = judge.decide(Journal(scenario="s", expect="READY", differences=[difference]))
    assert (judged.verdict.value, judged.reasons) == ("NOT_READY", [difference.message])


def test_a_steady_watch_is_shown_in_the_html() -> None:
    page = render_html(_ready(), Redactor())
    section = re.search(r'<section id="steady".*?</section>', page, re.DOTALL)
    assert section, "the steady-state section is missing"
    assert "<b>Result:</b> stable for 5.0s (5 samples)." in section.group(0)
    assert "checks.stable_for_s" in section.group(0)


def test_a_flap_is_shown_with_its_reading_errors() -> None:
    page = render_html(_flapped(), Redactor())
    section = re.search(r'<section id="steady".*?</section>', page, re.DOTALL)
    assert section
    text = section.group(0)
    assert "steady-state watch ended at 3.2s of 5s after 3 samples, 1 unread: 1 flap(s)" in text
    assert "went back to image rollback-rehearsal/demo-app:v2 (the bad release&#x27;s)" in text
    assert "ReadTimeoutError: read timed out" in text


def test_reports_without_a_watch_have_no_section() -> None:
    page = render_html(_ready().model_copy(update={"steady_state": None}), Redactor())
    assert 'id="steady"' not in page


def test_junit_carries_the_watch(tmp_path: Path) -> None:
    out = write_run_reports([_ready(), _flapped().model_copy(update={"scenario": "flapped"})], tmp_path, Redactor(),
                            run_id="r", host="h")
    xml = out.junit.read_text(encoding="utf-8")
    assert "after the rollback: steady-state watch ended at 3.2s of 5s after 3 samples, 1 unread: 1 flap(s)" in xml
    assert "went back to image" in xml


def test_recommendations_name_what_to_fix() -> None:
    titles = {r.title: r for r in recommendations(_flapped().model_dump(mode="json"))}
    stayed = titles["The app did not stay recovered"]
    assert stayed.severity == "action" and "deployment demo: deployment demo went back to image" in stayed.text
    lie = _ready().model_copy(update={"differences": [LIE]}).model_dump(mode="json")
    titles = {r.title: r for r in recommendations(lie)}
    honest = titles["The migration version table does not describe the schema"]
    assert honest.text.startswith("schema_migrations says 1 (the good release's version)")
    assert not any(t.startswith("Difference in") for t in titles)  # advised, not the generic line
