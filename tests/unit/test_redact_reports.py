"""Redaction and JUnit validity across every writer (issue 9, items 6 and 7).

A journal is built from a real report (tests/data/reports) and secrets are planted
in each spelling and each channel a rehearsal fills: runbook step output and
commands, events, reasons, differences, phase details. Every file the writers
produce (report.json, report.html, junit.xml, summary.md, history.jsonl) must be
free of them, also where a writer shortens the text. junit.xml must be valid XML
that our JUnit XSD (tests/data/junit.xsd) accepts, whatever the step output holds.
"""

from __future__ import annotations

import base64
import html
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
import xmlschema
from hypothesis import given, settings
from hypothesis import strategies as st
from junitparser import JUnitXml

from harness.journal import Difference, Event, Journal, RunbookStepRecord
from harness.redact import MASK, Redactor
from harness.report import write_run_reports, write_scenario_reports
from harness.report.common import RedactChain, journal_data
from harness.report.junit import render_junit, xml_safe

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "reports"
XSD = REPO / "tests" / "data" / "junit.xsd"

REGISTERED = "Reg1stered-Pa55@x/y&\"z"   # the database role's password / a `secret: true` variable
PASS_ENV = "pass-env-V4lue+77 ok"         # a pass_env value, registered through Redactor.with_env
DSN_PASSWORD = "dsn@pw:with/at"           # not registered: only the DSN pattern can find it
KV_PASSWORD = "kv-value-s3cret"           # not registered: `password: value`
ENVIRON = {"DEPLOY_TOKEN": PASS_ENV, "HOME": "/root"}


def _b64_fragment(secret: str, offset: int) -> str:
    enc = base64.b64encode(b"\0" * offset + secret.encode()).decode()
    return enc[-(-8 * offset // 6):8 * (offset + len(secret.encode())) // 6]


def _spellings(secret: str) -> list[str]:
    """The secret as a tool or a writer could spell it (plain, percent, JSON, HTML, base64 at each offset)."""
    plain = [secret, quote(secret), quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1],
             json.dumps(secret, ensure_ascii=False)[1:-1], html.escape(secret), html.escape(secret, quote=False)]
    return plain + [_b64_fragment(secret, n) for n in range(3)]


def _planted_forms(secret: str) -> str:
    """One line per spelling, as runbook output would show them (`kubectl get secret -o yaml` etc.)."""
    blobs = [base64.b64encode(b"postgres://app:"[:13 + n] + secret.encode() + b"@db/app").decode() for n in range(3)]
    return "\n".join([f"plain {secret}", f"url {quote(secret, safe='')} {quote_plus(secret)}",
                      f"json {json.dumps({'v': secret})}", *(f"  DATABASE_URL: {b}" for b in blobs)])


def planted_journal(long: bool = False) -> Journal:
    """forgot-migrate-down (NOT_READY) with the secrets planted in every channel.

    long: the texts exceed the writers' limits (summary cells, junit output tail) with a
    secret right where they cut."""
    j = Journal.model_validate_json((DATA / "rr3" / "forgot-migrate-down" / "report.json").read_text(encoding="utf-8"))
    j.expect = "READY"  # so junit writes the failure message and details too
    dsn = f"postgres://app:{DSN_PASSWORD}@db.internal:5432/app"
    pad = "x" * (150 if long else 0)
    everything = "\n".join([_planted_forms(REGISTERED), _planted_forms(PASS_ENV), dsn, f"password: {KV_PASSWORD}"])
    filler = "\n".join(f"line {n}" for n in range(60)) if long else ""
    j.reasons = [f"{pad}{REGISTERED} {PASS_ENV} at {dsn}", *j.reasons]
    j.differences.insert(0, Difference(area="app", object=f"env {PASS_ENV}", message=f"{pad}{REGISTERED} still at {dsn}"))
    j.events.append(Event(at=j.started_at, kind="release", message=everything))
    j.phases[0] = j.phases[0].model_copy(update={"detail": everything})
    j.runbook_steps.append(RunbookStepRecord(
        index=9, command=f"psql '{dsn}' -c \"select '{REGISTERED}'\" # {PASS_ENV}", line=40,
        started_at=j.runbook_steps[-1].started_at, exit_code=1, timed_out=False, duration_s=0.2,
        output_tail=f"{filler}\n{everything}\n{pad}{REGISTERED}"))
    return j


def _write_all(journal: Journal, where: Path) -> list[Path]:
    redactor = Redactor([REGISTERED]).with_env(["DEPLOY_TOKEN"], ENVIRON)
    files = write_scenario_reports(journal, where / journal.scenario, redactor)
    # The host name stands in for free text in history.jsonl (its other fields are ids and numbers).
    run = write_run_reports([journal], where, [redactor], run_id="run-1", host=f"ci {PASS_ENV}")
    return [*files, run.junit, run.summary, run.history]


@pytest.mark.parametrize("long", [False, True], ids=["short", "longer-than-the-limits"])
def test_no_planted_secret_in_any_writer_output(tmp_path: Path, long: bool) -> None:
    files = _write_all(planted_journal(long), tmp_path)
    assert sorted(p.name for p in files) == ["history.jsonl", "junit.xml", "report.html", "report.json", "summary.md"]
    wanted = {s: _spellings(s) for s in (REGISTERED, PASS_ENV)}
    wanted |= {s: [s, json.dumps(s)[1:-1], html.escape(s)] for s in (DSN_PASSWORD, KV_PASSWORD)}
    halves = [h for s in wanted for h in (s[: len(s) // 2], s[len(s) // 2:]) if len(h) >= 6]
    leaks = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        leaks += [f"{path.name}: {form!r}" for forms in wanted.values() for form in forms if form in text]
        leaks += [f"{path.name}: half {h!r}" for h in halves if h in text]
    assert leaks == []
    for path in files:  # redacted, not dropped
        assert MASK in path.read_text(encoding="utf-8"), path.name


def test_report_json_keeps_its_shape(tmp_path: Path) -> None:
    (report_json, *_rest) = _write_all(planted_journal(), tmp_path)
    data = json.loads(report_json.read_text(encoding="utf-8"))
    assert data["reasons"][0] == f"{MASK} {MASK} at postgres://app:{MASK}@db.internal:5432/app"
    assert data["runbook_steps"][-1]["output_tail"].endswith(f"password: {MASK}\n{MASK}")


def test_chain_merges_scenario_redactors() -> None:
    """Two scenarios' secrets that overlap in one text are both masked whole."""
    chain = RedactChain([Redactor(["first-secret-123"]), Redactor(["123-second-secret"]),
                         lambda t: t.replace("a ", "A ")])
    assert chain("a first-secret-123-second-secret b") == f"A {MASK} b"
    assert chain.tail("x" * 10 + "first-secret-123", 4) == "x" + MASK


# ─────────────────────────────────────────────────────────────── JUnit validity

NASTY = ("\x1b[31mred\x1b[0m \x1b[1;4mbold\x1b[m \x1b]0;title\x07\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\ "
         "\x1b(B\x1b7 nul\x00 bell\x07 bs\x08 vt\x0b ff\x0c esc-alone\x1b del\x7f c1\x85\x9b "
         "lone\ud800surrogate \udfff fffe\ufffe ffff\uffff cr\r\nlf progress\r100% emoji \U0001f600 ok")
VISIBLE = ("red", "bold", "link", "nul", "bell", "lone", "surrogate", "fffe", "ffff", "progress", "100%", "\U0001f600 ok")


@pytest.fixture(scope="module")
def junit_schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(XSD))


def nasty_journal(text: str) -> dict[str, Any]:
    """Journal data (as the writers get it) with `text` in every field junit shows."""
    j = Journal.model_validate_json((DATA / "rr3" / "forgot-migrate-down" / "report.json").read_text(encoding="utf-8"))
    j.expect = "READY"
    j.reasons = [text, *j.reasons]
    j.differences.insert(0, Difference(area="app", object=text, message=text))
    j.runbook_steps.append(RunbookStepRecord(
        index=9, command=text, line=40, started_at=j.runbook_steps[-1].started_at, exit_code=1,
        timed_out=False, duration_s=0.2, output_tail=text))
    j.phases[0] = j.phases[0].model_copy(update={"status": "error", "detail": text})
    data = j.model_dump(mode="json")
    data["scenario"] = f"{data['scenario']} {text}"
    data["objectives"] = {text: 1.0}
    return data


def _parse_and_validate(xml: str, schema: xmlschema.XMLSchema) -> ET.Element:
    root = ET.fromstring(xml.encode("utf-8"))  # raises on anything XML 1.0 forbids
    schema.validate(root)
    return root


def test_junit_is_valid_xml_whatever_the_output_holds(tmp_path: Path, junit_schema: xmlschema.XMLSchema) -> None:
    ok = Journal.model_validate_json((DATA / "rr3" / "bad-image" / "report.json").read_text(encoding="utf-8"))
    data = [nasty_journal(NASTY), journal_data(ok, Redactor())]
    path = tmp_path / "junit.xml"
    path.write_text(render_junit(data, Redactor(), timestamp=str(data[0]["started_at"]), hostname=f"h{NASTY}",
                                 run_id=NASTY), encoding="utf-8")
    root = _parse_and_validate(path.read_text(encoding="utf-8"), junit_schema)
    texts = [t for el in root.iter() for t in (el.text or "", *el.attrib.values())]
    everything = "\n".join(texts)
    assert "\x1b" not in everything and "\r" not in everything
    assert all(ch not in everything for ch in "\x00\x07\x08\x0b\x0c\x7f\x85\x9b\ud800\udfff\ufffe\uffff")
    assert all(word in everything for word in VISIBLE)  # the text itself survives
    assert "title" not in everything  # an OSC title is a terminal instruction, not output
    first = next(iter(JUnitXml.fromfile(str(path))))
    assert first.name.startswith("forgot-migrate-down red bold") and next(iter(first)).name == first.name


def test_junit_of_the_real_reports_validates(tmp_path: Path, junit_schema: xmlschema.XMLSchema) -> None:
    journals = [Journal.model_validate_json(p.read_text(encoding="utf-8")) for p in sorted(DATA.glob("*/*/report.json"))]
    run = write_run_reports(journals, tmp_path, Redactor(), run_id="run-1", host="ci")
    _parse_and_validate(run.junit.read_text(encoding="utf-8"), junit_schema)


def test_schema_rejects_what_ci_tools_reject(junit_schema: xmlschema.XMLSchema) -> None:
    """The XSD is a real check: a testcase without a name or a bad count fails."""
    bad = ['<testsuites><testsuite name="s" tests="1"><testcase/></testsuite></testsuites>',
           '<testsuites><testsuite name="s" tests="-1"/></testsuites>',
           '<testsuites><testsuite name="s" tests="1"><testcase name="c"><failure><x/></failure>'
           "</testcase></testsuite></testsuites>"]
    assert [junit_schema.is_valid(doc) for doc in bad] == [False, False, False]


def test_a_secret_split_by_a_colour_code_is_still_masked(junit_schema: xmlschema.XMLSchema) -> None:
    secret = "split-by-colour-42"
    text = f"value {secret[:7]}\x1b[0m{secret[7:]} end"
    xml = render_junit([nasty_journal(text)], Redactor([secret]))
    _parse_and_validate(xml, junit_schema)
    assert secret not in xml and f"value {MASK} end" in xml


@pytest.mark.parametrize(("text", "expected"), [
    ("\x1b[38;5;196mx\x1b[0m", "x"), ("a\x1b[31", "a31"), ("\x1b]0;unterminated\nrest", "0;unterminated\nrest"),
    ("a\r\nb\rc", "a\nb\nc"), ("tab\tok", "tab\tok"), ("\x00\x1f\ufffe", ""),
])
def test_xml_safe(text: str, expected: str) -> None:
    assert xml_safe(text) == expected


@settings(max_examples=60, derandomize=True, deadline=None)
@given(st.text(st.characters(exclude_categories=()), max_size=80))
def test_junit_valid_for_any_text(junit_schema: xmlschema.XMLSchema, text: str) -> None:
    _parse_and_validate(render_junit([nasty_journal(text)], Redactor()), junit_schema)
