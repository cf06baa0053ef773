"""Rollback-readiness reports: every writer formats the journal, nothing else.

Fixtures are real report.json files of rehearsals (tests/data/reports/<run>/<scenario>/):
rr1 has one scenario whose bad version was not detected; rr2 and rr3 are
full runs of the demo scenarios (forgot-migrate-down is NOT_READY).
"""

from __future__ import annotations

import html
import json
import re
import struct
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from jsonschema import Draft202012Validator
from junitparser import Failure, JUnitXml
from schema_support import load_validator, schema_errors

from harness.cli import cli
from harness.journal import Difference, Event, Finding, Journal, PhaseRecord, RunbookStepRecord
from harness.redact import MASK, Redactor
from harness.report import write_json, write_run_reports, write_scenario_reports
from harness.report.badge import badge_color, render_badge
from harness.report.common import parse_dt
from harness.report.history import read_history
from harness.report.html import render_html, schema_rows
from harness.report.json_schema import SHIPPED, json_schema, shipped_text
from harness.report.recommend import recommendations
from harness.report.summary import render_summary
from harness.report.trend import write_trend
from harness.snapshot.db_models import ColumnInfo, SchemaFingerprint, TableInfo
from harness.snapshot.diff_db import diff_schema

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "reports"
FIXTURES = sorted(DATA.glob("*/*/report.json"))
RUNS = ("rr1", "rr2", "rr3")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def load(run: str, scenario: str) -> Journal:
    return Journal.model_validate_json((DATA / run / scenario / "report.json").read_text(encoding="utf-8"))


def run_journals(run: str) -> list[Journal]:
    return [Journal.model_validate_json(p.read_text(encoding="utf-8")) for p in sorted((DATA / run).glob("*/report.json"))]


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    return load_validator(SHIPPED)


def _errors(validator: Draft202012Validator, doc: Any) -> list[str]:
    return schema_errors(validator, doc)


def broken_journal() -> Journal:
    """forgot-migrate-down, made worse: a failing step, a slow recovery above its
    objective, a hard-coded --to-revision that preflight found gone, lost rows."""
    j = load("rr3", "forgot-migrate-down").model_copy(deep=True)
    j.expect = "READY"
    j.objectives = {"max_recover_s": 30.0, "max_detect_s": 120.0}
    j.time_to_recover_s = 95.5
    step = j.runbook_steps[0]
    j.runbook_steps = [
        step.model_copy(update={"command": 'kubectl -n "$NAMESPACE" rollout undo deployment/demo --to-revision=5'}),
        step.model_copy(update={"index": 2, "line": 9, "command": "migrate down 1", "exit_code": 3,
                                "output_tail": "error: no down migration for version 2\n"}),
    ]
    assert j.after_bad_deploy is not None and j.after_rollback is not None
    for w in j.after_bad_deploy["workloads"]:
        w["revision_history_limit"] = 2
    for t in j.after_rollback["database"]["data"]:
        if t["table"] == "orders":
            t["row_count"] = 2
    j.differences.append(Difference(area="data", object="table orders", message="table orders: 3 rows lost (5 -> 2)"))
    j.findings.append(Finding(
        check="revision-history", severity="failure", file="runbook.md",
        message="step 1 (line 6) rolls deployment/demo back to revision 5, which does not exist: by then the "
                "rehearsal has made revisions 1 (good), 2 (bad)",
        fix="roll back without a revision number (`kubectl rollout undo deployment/demo`)"))
    j.differences.append(Difference(area="objective", object="time to recover",
                                    message="recovery took 95.5s, above the objective max_recover_s=30s"))
    return j


# ───────────────────────────────────────────────────────── report.json schema


def test_shipped_schema_equals_generated() -> None:
    assert json.loads(SHIPPED.read_text(encoding="utf-8")) == json_schema(), (
        "harness/report/report.schema.json is stale. Fix: python -m harness.report.json_schema")
    assert json.loads(shipped_text()) == json_schema()  # what `rehearse report schema` reads (package data)


def test_schema_is_versioned() -> None:
    schema = json_schema()
    assert schema["properties"]["schema_version"]["const"] == 1
    assert schema["$id"].endswith(":v1")
    assert {"schema_version", "scenario", "expect", "verdict"} <= set(schema["required"])


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}")
def test_real_reports_validate(validator: Draft202012Validator, path: Path) -> None:
    assert _errors(validator, json.loads(path.read_text(encoding="utf-8"))) == []


def test_written_report_validates_and_round_trips(tmp_path: Path, validator: Draft202012Validator) -> None:
    j = broken_journal()
    path = write_json(j, tmp_path, Redactor())
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert _errors(validator, doc) == []
    assert doc["objectives"] == {"max_recover_s": 30.0, "max_detect_s": 120.0}
    assert Journal.model_validate(doc) == j


@pytest.mark.parametrize(("mutate", "where"), [
    (lambda d: d.update(verdict="MAYBE"), "verdict"),
    (lambda d: d.update(schema_version=2), "schema_version"),
    (lambda d: d["baseline"]["database"]["data"][0].update(row_count="five"), "baseline"),
    (lambda d: d["runbook_steps"][0].pop("command"), "runbook_steps"),
    (lambda d: d["objectives"].update(max_recover_s="fast"), "objectives"),
])
def test_schema_rejects_broken_reports(validator: Draft202012Validator, mutate: Any, where: str) -> None:
    doc = broken_journal().model_dump(mode="json")
    mutate(doc)
    errors = _errors(validator, doc)
    assert errors and any(e.startswith(where) for e in errors), errors


def test_cli_prints_the_schema() -> None:
    res = CliRunner().invoke(cli, ["report", "schema"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output) == json_schema()


# ─────────────────────────────────────────────────────────────── report.html


def test_html_not_ready_report() -> None:
    j = load("rr3", "forgot-migrate-down")
    page = render_html(j, Redactor())
    assert page.startswith("<!DOCTYPE html>")
    assert 'class="verdict-label" id="verdict">NOT_READY<' in page
    assert "verdict-NOT_READY" in page
    assert page.count('<rect class="phase') == len(j.phases) == 7
    assert page.count('<rect class="step') == len(j.runbook_steps) == 2
    diffs = re.search(r'<ul class="differences">(.*?)</ul>', page, re.DOTALL)
    assert diffs and "users.nickname" in diffs.group(1) and "users_nickname_idx" in diffs.group(1)
    # Highlighted rows: the leftover column and index, the migration version, the users checksum.
    diff_rows = re.findall(r'<tr class="diff">(.*?)</tr>', page, re.DOTALL)
    joined = "\n".join(diff_rows)
    for needle in ("users.nickname", "users_nickname_idx", "schema_migrations", "users"):
        assert needle in joined
    assert not any("orders" in r and "<td>orders</td>" in r for r in diff_rows)  # unchanged table not flagged
    assert page.count("<details") >= len(j.runbook_steps)
    assert "rollout undo deployment/demo" in page
    assert "Time to recover" in page and "0.48s" in page
    assert "The schema was not restored" in page


def test_html_is_self_contained_and_responsive() -> None:
    page = render_html(load("rr3", "promotion"), Redactor())
    lowered = page.lower()
    for banned in ("<script", "<link", "<img", "<iframe", "@import", "src=", "url(http", "//fonts.", "cdn"):
        assert banned not in lowered, banned
    # The only URL is the SVG namespace (an identifier, never fetched).
    assert set(re.findall(r"https?://[^\s\"'<>)]+", page)) <= {"http://www.w3.org/2000/svg"}
    assert "default-src 'none'" in page  # CSP: the browser would refuse any fetch anyway
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert "@media print" in page and "@media (max-width:600px)" in page
    assert "demo:production" in page  # registry tags table


def test_html_escapes_everything() -> None:
    j = load("rr3", "bad-image").model_copy(deep=True)
    j.description = "<script>alert('x')</script> & more"
    j.runbook_steps[0] = j.runbook_steps[0].model_copy(update={"command": 'echo "<b>bold</b>" && exit 0'})
    j.differences.append(Difference(area="app", object="<img src=x>", message="onerror=\"alert(1)\""))
    page = render_html(j, Redactor())
    assert "<script>" not in page and "<img src=x>" not in page and "<b>bold</b>" not in page
    assert html.escape("<script>alert('x')</script> & more") in page
    assert html.escape('echo "<b>bold</b>" && exit 0') in page


def test_schema_rows_come_from_the_differences() -> None:
    """The object table names what the diff said, described from the snapshots."""
    before = SchemaFingerprint(schemas=("public",), tables=(TableInfo(name="users", kind="table", persistence="permanent"),),
                               columns=(ColumnInfo(table="users", name="age", position=1, type="integer"),
                                        ColumnInfo(table="users", name="gone", position=2, type="text")))
    after = SchemaFingerprint(schemas=("public",), tables=(
        TableInfo(name="audit", kind="table", persistence="permanent"),
        TableInfo(name="users", kind="table", persistence="permanent")),
        columns=(ColumnInfo(table="audit", name="id", position=1, type="bigint"),
                 ColumnInfo(table="users", name="age", position=1, type="bigint")))
    differences = [d.model_dump() for d in diff_schema(before, after)]
    rows = {(kind, obj): (change, old, new) for kind, obj, change, old, new in schema_rows(differences, before, after)}
    assert rows[("table", "audit")] == ("still present (added after baseline)", "–", "kind=table, persistence=permanent")
    assert rows[("column", "users.gone")] == ("missing after rollback", "text NULL", "–")
    assert rows[("column", "users.age")] == ("type changed: integer -> bigint", "integer NULL", "bigint NULL")
    assert ("column", "audit.id") not in rows  # the diff covers a new table's columns with the table's line
    assert len(rows) == len(differences)


def test_error_journal_renders() -> None:
    j = Journal(scenario="broken", expect="READY", verdict="ERROR",
                reasons=["phase provision could not run: RuntimeError: no Docker"],
                phases=[PhaseRecord(name="provision", status="error", started_at="2026-11-26T06:00:00+00:00",
                                    duration_s=0.2, detail="RuntimeError: no Docker\nmore lines")])
    page = render_html(j)
    assert "verdict-ERROR" in page and page.count('<rect class="phase') == 1
    assert "could not run phase provision" in page


# ─────────────────────────────────────────────────────────── recommendations


def test_recommendations_from_what_was_seen() -> None:
    titles = {r.title: r for r in recommendations(broken_journal().model_dump(mode="json"))}
    assert "Runbook step 2 failed" in titles
    assert "exited 3" in titles["Runbook step 2 failed"].text
    assert "Recovery was slower than the objective" in titles
    revision = titles["The revision history does not keep what the runbook rolls back to"]
    assert "back to revision 5, which does not exist" in revision.text  # preflight's finding, not a second rule
    assert "The runbook hard-codes --to-revision=5" not in titles  # the finding says more
    assert "The schema was not restored" in titles
    assert "Tracked data was lost" in titles
    assert "Expected READY, got NOT_READY" in titles
    assert all(r.severity == "action" for r in titles.values() if r.title != "No recovery objective")



def _steps(*rows: tuple[int, str, int, str]) -> dict[str, object]:
    return {"verdict": "NOT_READY", "expect": "READY", "runbook_steps": [
        {"index": i, "line": 10 + i, "command": c, "exit_code": code, "output_tail": out, "duration_s": 0.4}
        for i, c, code, out in rows]}


STATUS_FAILED = "error: deployment \"demo\" exceeded its progress deadline"


@pytest.mark.parametrize(("rows", "stale"), [
    # rollout status straight after an undo, failing on the deadline: the stale condition
    ([(1, "kubectl -n ns rollout undo deployment/demo", 0, "rolled back"),
      (2, "kubectl -n ns rollout status deployment/demo --timeout=120s", 1, STATUS_FAILED)], True),
    ([(1, "kubectl rollout undo deploy/demo && kubectl rollout status deploy/demo", 1, STATUS_FAILED)], True),
    # no undo before it: a bad rollout that really missed its deadline
    ([(1, "kubectl rollout status deployment/demo", 1, STATUS_FAILED)], False),
    # another failure of rollout status after an undo
    ([(1, "kubectl rollout undo deployment/demo", 0, ""),
      (2, "kubectl rollout status deployment/demo --timeout=5s", 1, "error: timed out waiting for the condition")],
     False),
    # the deadline words from another command
    ([(1, "kubectl rollout undo deployment/demo", 0, ""), (2, "./check.sh", 1, STATUS_FAILED)], False),
    # helm rollback and set image back go to an existing ReplicaSet too
    ([(1, "helm rollback demo 1", 0, ""), (2, "kubectl rollout status deploy/demo", 1, STATUS_FAILED)], True),
    ([(1, "kubectl set image deploy/demo app=demo:v1", 0, ""), (2, "kubectl rollout status deploy/demo", 1,
                                                                 STATUS_FAILED)], True),
])
def test_a_status_check_failing_on_the_stale_deadline_after_an_undo_is_explained(rows, stale: bool) -> None:
    rec = next(r for r in recommendations(_steps(*rows)) if r.title.startswith("Runbook step"))
    assert ("ProgressDeadlineExceeded condition the bad rollout left" in rec.text) is stale, rec.text
    assert ("|| { sleep 10; kubectl rollout status" in rec.text) is stale


def test_a_status_check_that_waited_out_a_real_deadline_is_not_called_stale() -> None:
    data = _steps((1, "kubectl rollout undo deployment/demo", 0, ""),
                  (2, "kubectl rollout status deployment/demo --timeout=900s", 1, STATUS_FAILED))
    data["runbook_steps"][1]["duration_s"] = 600.5  # it watched until the rollback itself missed the deadline
    rec = next(r for r in recommendations(data) if r.title == "Runbook step 2 failed")
    assert "ProgressDeadlineExceeded condition the bad rollout left" not in rec.text

def test_recommendation_bad_version_not_detected() -> None:
    data = load("rr1", "bad-migration").model_dump(mode="json")
    titles = [r.title for r in recommendations(data)]
    assert "The bad version was not detected" in titles


def test_recommendations_for_a_ready_rollback() -> None:
    recs = recommendations(load("rr3", "bad-image").model_dump(mode="json"))
    assert recs[0].severity == "ok"
    assert not any(r.severity == "action" for r in recs)
    promo = [r.title for r in recommendations(load("rr3", "promotion").model_dump(mode="json"))]
    assert "The runbook hard-codes --to-revision=1" in promo  # limit 10 keeps it, but production differs


# ──────────────────────────────────────────────────────── junit.xml, summary.md


def test_junit_parses_and_carries_the_differences(tmp_path: Path) -> None:
    journals = [*run_journals("rr3"), broken_journal().model_copy(update={"scenario": "worse"})]
    out = write_run_reports(journals, tmp_path, Redactor(), run_id="run-1", host="ci")
    xml = JUnitXml.fromfile(str(out.junit))
    suites = list(xml) if isinstance(xml, JUnitXml) else [xml]
    cases = {c.name: c for s in suites for c in s if c.classname == "rollback-rehearsal"}  # the scenarios' cases
    assert set(cases) == {"bad-image", "bad-migration", "forgot-migrate-down", "promotion", "worse"}
    assert [s.name for s in suites] == [j.scenario for j in journals]  # one suite per scenario, in order
    assert xml.tests == sum(1 + len(j.runbook_steps) for j in journals)  # and one case per runbook step
    assert xml.failures == 2  # the scenario that is not as expected, and its failing step
    assert cases["forgot-migrate-down"].is_passed  # NOT_READY was expected
    failures = [r for r in cases["worse"].result if isinstance(r, Failure)]
    assert len(failures) == 1
    msg = failures[0].message
    assert msg.startswith("verdict NOT_READY, expected READY: ")
    assert "users.nickname" in msg
    assert "runbook step 2 (line 9) `migrate down 1` exited 3" in msg
    assert "(+" in msg  # more differences than shown
    assert "users.nickname" in (failures[0].text or "") and "Traceback" not in (failures[0].text or "")
    assert failures[0].type == "NOT_READY"
    assert cases["worse"].time > 0


def test_summary_table(tmp_path: Path) -> None:
    j = broken_journal()
    j.reasons = ["a | pipe and <tag> in a\nmultiline reason"]
    text = render_summary([*[x.model_dump(mode="json") for x in run_journals("rr3")], j.model_dump(mode="json")],
                          Redactor(), run_id="run-1")
    lines = text.splitlines()
    assert lines[0] == "## Rollback readiness: 3/5 ready"
    rows = [ln for ln in lines if ln.startswith("| ") and not ln.startswith("| scenario")]
    assert len(rows) == 5
    assert all(ln.count(" | ") == 6 for ln in rows)  # escaped pipes do not add columns
    worse = rows[-1]
    assert "a \\| pipe and &lt;tag&gt; in a multiline reason" in worse
    assert "95.5s / 30.0s ⚠️" in worse and "(unexpected)" in worse


# ──────────────────────────────────────────────────────────── history, trend


def _three_runs(report_dir: Path) -> None:
    for run in RUNS:
        write_run_reports(run_journals(run), report_dir, Redactor(), run_id=run, host=f"host-{run}")


def test_history_lines(tmp_path: Path) -> None:
    _three_runs(tmp_path)
    lines = [json.loads(ln) for ln in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert len(lines) == 9
    first = lines[0]
    assert list(first)[:8] == ["timestamp", "run_id", "host", "scenario", "verdict", "expect", "ttd", "ttr"]
    assert first["run_id"] == "rr1" and first["scenario"] == "bad-migration" and first["ttd"] is None
    assert first["ttr"] == 0.91


def test_history_merge_dedupes_and_filters(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    _three_runs(a)
    write_run_reports(run_journals("rr3"), b, Redactor(), run_id="rr3", host="again")  # same run, other file
    write_run_reports(run_journals("rr2"), b, Redactor(), run_id="rr2-other", host="other")
    with (b / "history.jsonl").open("a") as fh:
        fh.write("not json\n{\"run_id\": \"x\"}\n\n")
    merged = read_history([a / "history.jsonl", b / "history.jsonl"])
    assert len(merged.entries) == 9 + 4
    assert merged.skipped == 2
    assert merged.runs() == ["rr1", "rr2", "rr2-other", "rr3"]
    ts = [parse_dt(e["timestamp"]) for e in merged.entries]
    assert ts == sorted(ts)
    since = read_history([a / "history.jsonl"], since=parse_dt("2026-11-26T06:05:00Z"))
    assert {e["run_id"] for e in since.entries} == {"rr3"}


def test_trend_from_three_runs(tmp_path: Path) -> None:
    _three_runs(tmp_path)
    history = read_history([tmp_path / "history.jsonl"])
    assert len(history.runs()) == 3
    res = write_trend(history, tmp_path)
    page = res.html.read_text(encoding="utf-8")
    assert page.count('<svg class="trend-chart"') == 4  # one chart per scenario
    assert page.count('class="point v-READY"') == 7 and page.count('class="point v-NOT_READY"') == 2
    assert "<script" not in page.lower()
    png = res.png.read_bytes()
    assert png[:8] == PNG_SIGNATURE
    width, height = struct.unpack(">II", png[16:24])  # IHDR
    assert width >= 600 and height >= 400 and len(png) > 20_000
    badge = res.badge.read_text(encoding="utf-8")
    assert "rollback readiness" in badge and "3/4 ready" in badge and badge_color(3, 4) in badge
    assert (res.ready, res.total, res.runs) == (3, 4, 3)


def test_trend_cli_merges_history_files(tmp_path: Path) -> None:
    a, b, out = tmp_path / "a", tmp_path / "b", tmp_path / "out"
    for run, where in (("rr1", a), ("rr2", a), ("rr3", b)):
        write_run_reports(run_journals(run), where, Redactor(), run_id=run, host="h")
    res = CliRunner().invoke(cli, ["report", "trend", "--report-dir", str(out), "--history", str(a / "history.jsonl"),
                                   "--history", str(b / "history.jsonl"), "--since", "2026-11-01"])
    assert res.exit_code == 0, res.output
    for name in ("trend.html", "trend.png", "badge.svg"):
        assert (out / name).is_file()
    assert "3 run(s), 9 result(s): 3/4 ready" in res.output
    res = CliRunner().invoke(cli, ["report", "trend", "--report-dir", str(a), "--since", "yesterday"])
    assert res.exit_code == 2 and "ISO-8601" in res.output
    res = CliRunner().invoke(cli, ["report", "trend", "--report-dir", str(tmp_path / "empty")])
    assert res.exit_code == 2 and "rehearse run" in res.output


@pytest.mark.parametrize(("ready", "total", "color", "text"), [
    (4, 4, "#4c1", "4/4 ready"), (4, 5, "#97ca00", "4/5 ready"), (1, 2, "#dfb317", "1/2 ready"),
    (1, 4, "#fe7d37", "1/4 ready"), (0, 3, "#e05d44", "0/3 ready"), (0, 0, "#9f9f9f", "no data"),
])
def test_badge(ready: int, total: int, color: str, text: str) -> None:
    svg = render_badge(ready, total)
    assert f'fill="{color}"' in svg and text in svg and svg.startswith("<svg")


# ──────────────────────────────────────────────────────────────── redaction

SECRET_VAR = 'S3cr&t<"Var>'          # a `secret: true` variable; HTML/JSON/XML special characters
URL_PASSWORD = "Hunter2-db-pass"
TOKEN = "tok_9f8e7d6c5b4a3210"


def planted_journal() -> Journal:
    j = load("rr3", "forgot-migrate-down").model_copy(deep=True)
    url = f"postgres://app:{URL_PASSWORD}@db.internal:5432/app"
    j.description = f"uses {SECRET_VAR}"
    j.reasons = [f"could not reach {url}", *j.reasons]
    j.expect = "READY"  # so the failure message (with the reasons and step) is written too
    j.phases[0] = j.phases[0].model_copy(update={"detail": f"DATABASE_URL={url} API_TOKEN={TOKEN}"})
    j.runbook_steps.append(RunbookStepRecord(
        index=3, command=f"curl -H 'Authorization: Bearer {TOKEN}' -d 'v={SECRET_VAR}' {url}", line=12,
        started_at=j.runbook_steps[-1].started_at, exit_code=1, timed_out=False, duration_s=0.1,
        output_tail=f"token: {TOKEN}\nsecret {SECRET_VAR} rejected by {url}\n"))
    j.events.append(Event(at=j.started_at, kind="release", message=f"pushed with token={TOKEN} as {SECRET_VAR}"))
    j.differences.insert(0, Difference(area="app", object=f"env {SECRET_VAR}", message=f"still {SECRET_VAR} at {url}"))
    assert j.baseline is not None
    j.baseline["registry"] = {f"demo:{SECRET_VAR}": f"sha256:{SECRET_VAR}"}
    j.environment["cluster"] = f"kind {url}"
    return j


def _forms(secret: str) -> set[str]:
    """The secret as each format could spell it."""
    return {secret, html.escape(secret), html.escape(secret, quote=False), json.dumps(secret)[1:-1],
            json.dumps(secret, ensure_ascii=False)[1:-1], secret.replace("&", "&amp;").replace("<", "&lt;")}


def test_no_secret_in_any_report(tmp_path: Path) -> None:
    journal = planted_journal()
    redactor = Redactor([SECRET_VAR])  # what provision builds: the database password + secret variables
    scenario_dir = tmp_path / journal.scenario
    files = write_scenario_reports(journal, scenario_dir, redactor)
    run = write_run_reports([journal], tmp_path, [redactor], run_id="run-1", host="ci")
    files += [run.junit, run.summary, run.history]
    names = sorted(p.name for p in files)
    assert names == ["history.jsonl", "junit.xml", "report.html", "report.json", "summary.md"]
    leaks = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        for secret in (SECRET_VAR, URL_PASSWORD, TOKEN):
            leaks += [f"{path.name}: {form!r}" for form in _forms(secret) if form in text]
    assert leaks == []
    # Redacted, not dropped: the masks are there and each format still parses.
    report = json.loads((scenario_dir / "report.json").read_text(encoding="utf-8"))
    assert f"postgres://app:{MASK}@db.internal" in report["reasons"][0]
    assert MASK in (scenario_dir / "report.html").read_text(encoding="utf-8")
    (case,) = [c for suite in JUnitXml.fromfile(str(run.junit)) for c in suite if c.classname == "rollback-rehearsal"]
    (failure,) = case.result
    assert MASK in failure.message
    assert json.loads(run.history.read_text().splitlines()[0])["scenario"] == journal.scenario


# ────────────────────────────────────────────────────────────────── session


def test_session_writes_run_reports_once(tmp_path: Path) -> None:
    from harness.session import Session, SessionOptions

    session = Session(SessionOptions(report_dir=tmp_path), infra=None, stack=ExitStack(), owner="rehearsal-abc")  # type: ignore[arg-type]
    assert session.write_run_reports() is None  # nothing rehearsed: nothing written
    session.results.extend(run_journals("rr3"))
    session.redactors.append(Redactor())
    first = session.write_run_reports()
    again = session.write_run_reports()
    assert first is not None and again is first
    assert len((tmp_path / "history.jsonl").read_text().splitlines()) == 4
    assert json.loads((tmp_path / "history.jsonl").read_text().splitlines()[0])["run_id"] == "rehearsal-abc"
    assert (tmp_path / "summary.md").read_text().startswith("## Rollback readiness: 3/4 ready")


def test_html_phases_table_ends_with_the_cleanup() -> None:
    """The scenario's cleanup time (`cleanup_s`, issue 10's teardown bound) is a row of the phases table;
    a failed cleanup is a phase of its own already and is not shown twice."""
    j = load("rr3", "forgot-migrate-down").model_copy(update={"cleanup_s": 0.42})
    table = re.search(r'<table class="phases">(.*?)</table>', render_html(j, Redactor()), re.DOTALL)
    assert table is not None
    rows = re.findall(r"<tr>(.*?)</tr>", table.group(1), re.DOTALL)
    assert "<td>cleanup</td>" in rows[-1] and "0.42s" in rows[-1]
    none = j.model_copy(update={"cleanup_s": None})
    assert "<td>cleanup</td>" not in render_html(none, Redactor())
