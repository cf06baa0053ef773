"""The report writers show faults, the fault-free second run, readiness risks and the compat lines.

Journals are built from a real report (tests/data/reports/rr3/bad-image, READY)
with the new parts added by hand; nothing here runs a rehearsal.
"""

from __future__ import annotations

import html
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from junitparser import Failure, JUnitXml
from schema_support import load_validator, schema_errors

from harness import judge
from harness.journal import Difference, FaultRecord, Journal, PhaseRecord, Risk
from harness.redact import MASK, Redactor
from harness.report import write_json, write_run_reports, write_scenario_reports
from harness.report.common import failure_message, journal_data, parse_dt
from harness.report.html import render_html
from harness.report.json_schema import SHIPPED
from harness.report.junit import render_junit
from harness.report.recommend import recommendations
from harness.report.summary import render_summary

DATA = Path(__file__).resolve().parents[2] / "tests" / "data" / "reports"
RISK_MESSAGE = ("the good version (demo:v1) does not run on the bad release's schema: readiness probe failed 3 "
                "times. Expand/contract is broken: a rollback that puts the old code back before the schema, "
                "or whose migrate down fails, leaves the app down")


def load(scenario: str, run: str = "rr3") -> Journal:
    return Journal.model_validate_json((DATA / run / scenario / "report.json").read_text(encoding="utf-8"))


def at(journal: Journal, phase: str, seconds: float) -> str:
    """A timestamp `seconds` after the start of `phase`."""
    start = parse_dt(next(p.started_at for p in journal.phases if p.name == phase))
    return (start + timedelta(seconds=seconds)).isoformat(timespec="milliseconds")


def faulted_journal() -> Journal:
    """bad-image (READY) rehearsed under three faults, then run a second time without them."""
    j = load("bad-image").model_copy(deep=True)
    j.phases = [p.model_copy(update={"duration_s": 8.0}) if p.name == "runbook" else p for p in j.phases]
    verify = next(p for p in j.phases if p.name == "verify")
    j.phases = [p.model_copy(update={"started_at": at(j, "runbook", 8.1)}) if p is verify else p for p in j.phases]
    j.phases.append(PhaseRecord(name="rerun", status="ok", started_at=at(j, "runbook", 9.0), duration_s=3.0,
                                detail="second run: 2/2 steps, idempotent, 0 new difference(s)"))
    j.faults = [
        FaultRecord(kind="terminate_db_connections", index=0, at_step=1, applied_at=at(j, "runbook", 0.0),
                    reverted_at=at(j, "runbook", 5.0), status="applied", detail="terminated 3 connections",
                    hits=3),
        FaultRecord(kind="delete_app_pod", index=1, at_step=2, applied_at=at(j, "runbook", 2.0), status="applied",
                    detail="deleted pod demo-7d9f"),
        FaultRecord(kind="network_latency", index=2, status="unsupported",
                    detail="tc qdisc add dev eth0 root netem delay 200ms: Error: Specified qdisc kind is unknown."),
    ]
    j.rerun_steps = [s.model_copy(update={"started_at": at(j, "rerun", 0.1 + i)}) for i, s in enumerate(j.runbook_steps)]
    j.runbook_converged, j.idempotent, j.fault_cost_s = True, True, 2.5
    return j


def not_idempotent_journal() -> Journal:
    """The first run did not converge, and the second run failed a step."""
    j = faulted_journal()
    j.verdict, j.reasons = "NOT_READY", ["after a second run of the runbook: pod demo not ready"]
    j.runbook_converged, j.idempotent, j.fault_cost_s = False, False, None
    j.rerun_steps[1] = j.rerun_steps[1].model_copy(update={"exit_code": 1, "output_tail": "error: timed out\n"})
    j.differences.append(Difference(area="idempotence", object="deployment demo",
                                    message="after a second run of the runbook: pod demo not ready"))
    return j


def hit_nothing_journal() -> Journal:
    """A terminate_db_connections fault that terminated nothing: the engine adds a `fault` difference."""
    j = faulted_journal()
    j.faults[0] = j.faults[0].model_copy(update={"hits": 0, "detail": "terminated 0 connections"})
    j.verdict = "NOT_READY"
    message = ("fault terminate_db_connections (before runbook step 1) hit nothing: the rollback was not rehearsed "
               "under it. Hint: pin the migration with hold_lock_on (a table it touches) or move the fault to the "
               "step that opens connections")
    j.differences.append(Difference(area="fault", object="terminate_db_connections", message=message))
    j.reasons = [message]
    return j


def risky_journal() -> Journal:
    """READY, but the good version did not run on the bad release's schema (phase compat)."""
    j = load("bad-image").model_copy(deep=True)
    j.risks = [Risk(kind="old_version_on_new_schema", object="deployment demo", message=RISK_MESSAGE,
                    evidence="Readiness probe failed: HTTP 500\nERROR: column users.nickname does not exist")]
    j.compatibility = [("deployment demo: the good version does NOT run on the bad release's schema "
                        "(readiness probe failed 3 times); schema changes: column users.nickname added")]
    return j


def section(page: str, sid: str) -> str:
    found = re.search(rf'<section id="{sid}"[^>]*>(.*?)</section>', page, re.DOTALL)
    assert found, f"no section {sid}"
    return found.group(1)


# ─────────────────────────────────────────────────────────────── report.html


def test_html_faults_section() -> None:
    page = render_html(faulted_journal(), Redactor())
    faults = section(page, "faults")
    assert "<h2>Faults during the rollback</h2>" in faults
    headers = re.findall(r"<th>(.*?)</th>", faults)
    assert headers == ["fault", "when", "status", html.escape("applied → removed"), "hits", "detail"]
    rows = re.findall(r"<tr(?: class=\"diff\")?>(.*?)</tr>", faults.split("<tbody>")[1], re.DOTALL)
    assert len(rows) == 3
    assert "terminate_db_connections" in rows[0] and "+0.00s → +5.00s (5.00s)" in rows[0]
    assert '<span class="pill applied">applied</span>' in rows[0] and '<td class="num">3</td>' in rows[0]
    assert "delete_app_pod" in rows[1] and "+2.00s (instant)" in rows[1] and '<td>before step 2</td>' in rows[1]
    assert '<span class="pill unsupported">unsupported</span>' in rows[2] and "not applied" in rows[2]
    assert "Specified qdisc kind is unknown." in rows[2]
    # Only the fault the rollback did not face is highlighted.
    assert faults.count('<tr class="diff">') == 1 and "network_latency" in faults.split('<tr class="diff">')[1]
    assert "converged despite the faults" in faults
    assert "was idempotent" in faults
    assert "Fault cost: 2.50 s" in faults


def test_html_second_run_section() -> None:
    j = faulted_journal()
    page = render_html(j, Redactor())
    rerun = section(page, "rerun")
    assert "<h2>Second run of the runbook</h2>" in rerun
    assert rerun.count("<details>") == len(j.rerun_steps) == 2  # collapsed: every step passed
    assert html.escape(j.rerun_steps[0].command) in rerun and "deployment.apps/demo rolled back" in rerun
    nav = re.search(r"<nav>(.*?)</nav>", page, re.DOTALL)
    assert nav and 'href="#faults"' in nav.group(1) and 'href="#rerun"' in nav.group(1)
    # Order: runbook steps, faults, second run, workloads.
    assert page.index('id="runbook"') < page.index('id="faults"') < page.index('id="rerun"') < page.index(
        'id="workloads"')


def test_html_timeline_draws_the_faults() -> None:
    j = faulted_journal()
    page = render_html(j, Redactor())
    timeline = section(page, "timeline")
    main, zoom = re.findall(r"<svg class=\"timeline[^\"]*\".*?</svg>", timeline, re.DOTALL)
    # Two faults were in place (the unsupported one never was): a bar and a band each.
    assert main.count('<rect class="fault st-applied"') == 2 and main.count('<rect class="band"') == 2
    assert zoom.count('<rect class="zfault st-applied"') == 2 and zoom.count('<rect class="zband"') == 2
    assert "network_latency" not in main
    assert ">instant</text>" in main  # delete_app_pod: a marker, not a bar
    assert "5.00s hits 3" in main
    # The second run's steps are drawn under the rerun phase.
    assert main.count('<rect class="step rerun') == len(j.rerun_steps)
    assert main.count('<rect class="step') == len(j.runbook_steps) + len(j.rerun_steps)
    assert page.count('<rect class="phase') == len(j.phases)
    assert "amber: faults in place" in timeline


def test_html_not_idempotent() -> None:
    page = render_html(not_idempotent_journal(), Redactor())
    faults, rerun = section(page, "faults"), section(page, "rerun")
    assert "did not converge under the faults" in faults and "was NOT idempotent" in faults
    assert "Fault cost: not measured." in faults
    assert '<li class="failed"><details open>' in rerun and "exit 1" in rerun
    assert "The runbook is not idempotent" in section(page, "recommendations")


def test_html_risks_right_under_the_verdict() -> None:
    page = render_html(risky_journal(), Redactor())
    assert 'id="verdict">READY<' in page  # a risk never changes the verdict
    header_end = page.index("</header>")
    risks_at = page.index('<section id="risks"')
    assert header_end < risks_at < page.index("<nav>") < page.index('<section id="summary"')
    risks = section(page, "risks")
    assert "Readiness risks (1)" in risks and "never change it" in risks
    assert "old_version_on_new_schema" in risks and "<b>deployment demo</b>" in risks
    assert html.escape(RISK_MESSAGE) in risks
    assert "<details><summary>evidence</summary><pre>Readiness probe failed: HTTP 500\n" in risks
    assert 'href="#risks">⚠ 1 readiness risk</a>' in page[:header_end]
    recs = section(page, "recommendations")
    assert "The good version does not run on the bad release" in recs and "Nothing to fix" not in recs


def test_html_compatibility_section() -> None:
    j = risky_journal()
    page = render_html(j, Redactor())
    compat = section(page, "compatibility")
    assert html.escape(j.compatibility[0]) in compat
    assert 'href="#compatibility"' in page
    # Lines without any risk still show (what was checked), and no risk block does.
    nothing = "the bad release did not change the schema: nothing to check"
    ok = load("bad-image").model_copy(update={"compatibility": [nothing]})
    page = render_html(ok, Redactor())
    assert "nothing to check" in section(page, "compatibility")
    assert 'id="risks"' not in page and "readiness risk" not in page


def test_html_escapes_faults_risks_and_compatibility() -> None:
    j = faulted_journal()
    j.faults[2] = j.faults[2].model_copy(update={"detail": '<img src=x onerror="alert(1)"> & <b>bold</b>'})
    j.faults[0] = j.faults[0].model_copy(update={"kind": "<script>k</script>"})
    j.rerun_steps[0] = j.rerun_steps[0].model_copy(update={"command": 'echo "<i>x</i>"', "output_tail": "<u>u</u>"})
    j.risks = [Risk(kind="old_version_on_new_schema", object="<svg onload=1>", message="a <b>b</b> & c",
                    evidence="<script>alert('e')</script>")]
    j.compatibility = ["<em>compat</em> & more"]
    page = render_html(j, Redactor())
    for raw in ("<img src=x", "<b>bold</b>", "<script>", "<i>x</i>", "<u>u</u>", "<svg onload", "<b>b</b>",
                "<em>compat</em>"):
        assert raw not in page, raw
    for text in ('<img src=x onerror="alert(1)"> & <b>bold</b>', "<script>k</script>", 'echo "<i>x</i>"',
                 "<u>u</u>", "<svg onload=1>", "a <b>b</b> & c", "<script>alert('e')</script>",
                 "<em>compat</em> & more"):
        assert html.escape(text) in page or html.escape(text, quote=False) in page, text


@pytest.mark.parametrize("scenario", ["bad-image", "bad-migration", "forgot-migrate-down", "promotion"])
def test_html_without_faults_or_risks_has_no_such_sections(scenario: str) -> None:
    page = render_html(load(scenario), Redactor()).split("</style>", 1)[1]  # the body, not the stylesheet
    for sid in ("faults", "rerun", "risks", "compatibility"):
        assert f'id="{sid}"' not in page and f'href="#{sid}"' not in page, sid
    for text in ("Faults during the rollback", "Second run of the runbook", "Readiness risks",
                 "readiness risk", 'class="band"', 'class="zband"', "rerun", "amber: faults"):
        assert text not in page, text


# ─────────────────────────────────────────────────────────── recommendations


def test_recommendation_for_the_risk() -> None:
    recs = {r.title: r for r in recommendations(risky_journal().model_dump(mode="json"))}
    rec = recs["The good version does not run on the bad release's schema"]
    assert rec.severity == "action"
    for words in ("expand/contract", "add before you remove", "keep old columns",
                  "no running version reads them", "later release", "deployment demo"):
        assert words in rec.text, words
    assert "Nothing to fix" not in recs


def test_recommendation_for_a_fault_that_hit_nothing() -> None:
    recs = recommendations(hit_nothing_journal().model_dump(mode="json"))
    titles = [r.title for r in recs]
    assert titles.count("Fault terminate_db_connections hit nothing") == 1
    assert "Difference in fault" not in titles  # the specific one, not the generic one
    rec = next(r for r in recs if r.title == "Fault terminate_db_connections hit nothing")
    assert rec.severity == "action" and "hold_lock_on" in rec.text and rec.text.count("hold_lock_on") == 1
    # From the fault record alone (no difference recorded), with the hint added.
    data = hit_nothing_journal().model_dump(mode="json")
    data["differences"] = [d for d in data["differences"] if d["area"] != "fault"]
    rec = next(r for r in recommendations(data) if r.title == "Fault terminate_db_connections hit nothing")
    assert "(before step 1)" in rec.text and "hold_lock_on" in rec.text


def test_recommendation_for_a_non_idempotent_second_run() -> None:
    recs = recommendations(not_idempotent_journal().model_dump(mode="json"))
    titles = [r.title for r in recs]
    assert "Difference in idempotence" not in titles
    rec = next(r for r in recs if r.title == "The runbook is not idempotent")
    assert rec.severity == "action"
    assert "runbook step 2 (line 15)" in rec.text and "exited 1" in rec.text and "deployment demo" in rec.text
    assert "safe to repeat" in rec.text


def test_recommendations_under_faults_that_went_well() -> None:
    recs = recommendations(faulted_journal().model_dump(mode="json"))
    assert recs[0].title == "Nothing to fix"  # an idempotent, converged rollback under faults
    unsupported = [r for r in recs if r.title == "Fault network_latency was not applied (unsupported)"]
    assert len(unsupported) == 1 and unsupported[0].severity == "info"
    assert not any(r.title in ("The runbook is not idempotent", "Fault terminate_db_connections hit nothing")
                   for r in recs)



def test_a_fault_that_could_not_be_applied_is_an_action_not_an_aside() -> None:
    data = faulted_journal().model_dump(mode="json")
    data["faults"][0].update(status="failed", applied_at=None, reverted_at=None,
                             detail="RuntimeError: `docker pause n` failed (1) after 4 tries: unable to freeze\nmore")
    rec = next(r for r in recommendations(data) if r.title.startswith(f"Fault {data['faults'][0]['kind']}"))
    assert rec.title.endswith("could not be applied") and rec.severity == "action"
    assert rec.text.startswith(
        "RuntimeError: `docker pause n` failed (1) after 4 tries: unable to freeze. The rollback")
    assert "cannot be called READY" in rec.text and "more" not in rec.text


def test_a_fault_that_could_not_be_applied_is_judged_error_and_the_page_says_why() -> None:
    j = faulted_journal()
    j.differences = []
    j.faults[0] = j.faults[0].model_copy(update={"status": "failed", "applied_at": None, "reverted_at": None,
                                                 "detail": "RuntimeError: `docker pause n` failed (1): boom"})
    judge.decide(j).record(j)
    assert j.verdict == "ERROR" and j.reasons[0].startswith(f"fault {j.faults[0].kind} (")
    page = html.unescape(render_html(j, Redactor()))
    assert "a declared fault could not be applied" in page and "could not be applied, so the rollback" in page

def test_recommendation_when_only_a_second_run_recovered() -> None:
    data = faulted_journal().model_dump(mode="json")
    data["runbook_converged"] = False
    titles = [r.title for r in recommendations(data)]
    assert "Under the faults, only a second run of the runbook recovered" in titles


# ──────────────────────────────────────────────────────────────── summary.md


def _rows(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.startswith("| ") and not ln.startswith("| scenario")]


def test_summary_risks_column_and_notes() -> None:
    journals = [load("forgot-migrate-down"), risky_journal().model_copy(update={"scenario": "risky"}),
                faulted_journal().model_copy(update={"scenario": "faulted"}),
                not_idempotent_journal().model_copy(update={"scenario": "flaky"})]
    text = render_summary([j.model_dump(mode="json") for j in journals], Redactor(), run_id="run-1")
    lines = text.splitlines()
    assert "| scenario | verdict | expect | risks | time to detect | time to recover | first reason |" in lines
    assert "|---|---|---|---|---:|---:|---|" in lines
    assert "1 with readiness risks" in lines[2]
    rows = _rows(text)
    assert len(rows) == 4 and all(ln.count(" | ") == 6 for ln in rows)
    assert rows[0].split(" | ")[3] == "–"
    assert rows[1].split(" | ")[3] == "⚠️ old_version_on_new_schema"
    assert "**Readiness risks** (they never change the verdict):" in lines
    assert any(ln.startswith("- risky: deployment demo: the good version (demo:v1) does not run") for ln in lines)
    assert "**Faults during the rollback:**" in lines
    faulted = next(ln for ln in lines if ln.startswith("- faulted: "))
    for words in ("terminate_db_connections before step 1: applied, hits 3",
                  "network_latency before step 1: unsupported", "converged despite the faults: yes",
                  "second run idempotent: yes", "fault cost 2.50s"):
        assert words in faulted, words
    flaky = next(ln for ln in lines if ln.startswith("- flaky: "))
    assert "converged despite the faults: **no**" in flaky and "second run idempotent: **no**" in flaky
    assert "fault cost" not in flaky


def test_summary_escapes_risks() -> None:
    j = risky_journal()
    j.risks = [j.risks[0].model_copy(update={"message": "a | pipe <b>and</b>\nnewline"})]
    text = render_summary([j.model_dump(mode="json")], Redactor())
    note = next(ln for ln in text.splitlines() if ln.startswith("- bad-image: "))
    assert note == "- bad-image: deployment demo: a \\| pipe &lt;b&gt;and&lt;/b&gt; newline"


def test_summary_without_faults_or_risks_has_no_notes() -> None:
    text = render_summary([load(s).model_dump(mode="json") for s in ("bad-image", "promotion")], Redactor())
    assert "Readiness risks" not in text and "Faults" not in text and "readiness risks" not in text
    assert all(row.split(" | ")[3] == "–" for row in _rows(text))


# ───────────────────────────────────────────────────────────────── junit.xml


def _cases(path: Path) -> dict[str, object]:
    xml = JUnitXml.fromfile(str(path))
    return {c.name: c for s in xml for c in s}


def test_junit_ready_with_risks_passes_and_says_so(tmp_path: Path) -> None:
    j = risky_journal()
    j.risks = [j.risks[0].model_copy(update={"evidence": "probe said <500> & \"boom\""})]
    out = write_run_reports([j], tmp_path, Redactor(), run_id="run-1", host="ci")
    case = _cases(out.junit)["bad-image"]
    assert case.is_passed  # type: ignore[attr-defined]
    system_out = case.system_out  # type: ignore[attr-defined]
    assert "readiness risks (they do not change the verdict):" in system_out
    assert f"[old_version_on_new_schema] deployment demo: {RISK_MESSAGE}" in system_out
    assert 'probe said <500> & "boom"' in system_out  # escaped in the file, back after parsing
    raw = out.junit.read_text(encoding="utf-8")
    assert '<property name="risks" value="old_version_on_new_schema" />' in raw
    assert "probe said &lt;500&gt; &amp;" in raw


def test_junit_not_ready_keeps_its_message(tmp_path: Path) -> None:
    j = risky_journal().model_copy(deep=True)
    j.verdict = "NOT_READY"
    j.differences = [Difference(area="schema", object="column users.nickname",
                                message="column users.nickname is still present (added after baseline)")]
    data = journal_data(j, Redactor())
    out = write_run_reports([j], tmp_path, Redactor(), run_id="run-1", host="ci")
    (failure,) = [r for r in _cases(out.junit)["bad-image"].result if isinstance(r, Failure)]  # type: ignore[attr-defined]
    assert failure.message == failure_message(data, Redactor())
    assert "old_version_on_new_schema" not in (failure.message or "")
    assert "users.nickname" in (failure.text or "")


def test_junit_faults_and_second_run() -> None:
    j = not_idempotent_journal().model_copy(update={"expect": "NOT_READY"})
    text = render_junit([journal_data(j, Redactor())], Redactor())
    assert "faults during the rollback:" in text
    assert "terminate_db_connections before step 1: applied, hits 3" in text
    assert "runbook converged despite the faults: no; second run idempotent: no; fault cost –" in text
    assert "second run: runbook step 2 (line 15)" in text
    plain = render_junit([journal_data(load("bad-image"), Redactor())], Redactor())
    assert "faults" not in plain and "readiness risks" not in plain and 'name="risks"' not in plain


# ─────────────────────────────────────────────────── report.json, redaction


def test_report_with_faults_and_risks_validates(tmp_path: Path) -> None:
    validator = load_validator(SHIPPED)
    for j in (faulted_journal(), not_idempotent_journal(), hit_nothing_journal(), risky_journal()):
        doc = json.loads(write_json(j, tmp_path / j.scenario, Redactor()).read_text(encoding="utf-8"))
        assert schema_errors(validator, doc) == []
        assert Journal.model_validate(doc) == j


SECRET = 'Fault&<"Secret>'


def test_no_secret_in_fault_risk_or_compat_text(tmp_path: Path) -> None:
    j = not_idempotent_journal()
    j.expect = "READY"
    j.faults[2] = j.faults[2].model_copy(update={"detail": f"netem failed with {SECRET}"})
    j.rerun_steps[1] = j.rerun_steps[1].model_copy(update={"command": f"echo {SECRET}", "output_tail": SECRET})
    j.risks = [Risk(kind="old_version_on_new_schema", object=f"deployment {SECRET}", message=f"m {SECRET}",
                    evidence=f"log: {SECRET}")]
    j.compatibility = [f"compat {SECRET}"]
    redactor = Redactor([SECRET])
    files = write_scenario_reports(j, tmp_path / j.scenario, redactor)
    run = write_run_reports([j], tmp_path, [redactor], run_id="run-1", host="ci")
    forms = {SECRET, html.escape(SECRET), html.escape(SECRET, quote=False), json.dumps(SECRET)[1:-1]}
    for path in [*files, run.junit, run.summary]:
        text = path.read_text(encoding="utf-8")
        assert not [f for f in forms if f in text], path.name
        assert MASK in text or html.escape(MASK) in text, path.name


def test_a_fault_of_the_bad_release_shows_no_second_run() -> None:
    j = Journal(scenario="p", expect="NOT_READY", faults=[
        FaultRecord(kind="kill_helm", index=0, during="deploy_bad", status="applied", hits=1)])
    page = render_html(j, Redactor())
    faults = section(page, "faults")
    assert "during the bad release" in faults and "Convergence under the faults" not in faults
    assert 'id="rerun"' not in page
