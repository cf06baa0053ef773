"""junit.xml's step cases: one <testcase> per runbook step inside each scenario's <testsuite>, with the
runbook's `file` and the step's `line`, as CI test views and annotation tools read them.

The journal comes from a real run of a runbook section in bash (harness.shell_session, no cluster): a step
that prints, a step the runbook marks `rehearse: skip`, and a step that fails after printing a secret (once
whole, once split by a colour code). The session's own writer renders it; junitparser parses it and
tests/data/junit.xsd validates it.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from contextlib import ExitStack
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import xmlschema
from junitparser import Attr, Failure, IntAttr, JUnitXml, Skipped, TestCase, TestSuite

import harness.session as session_mod
from harness import judge
from harness.journal import Journal, PhaseRecord
from harness.phases.runbook import RunbookDrift, RunbookPhase
from harness.redact import MASK, Redactor
from harness.report import write_run_reports
from harness.report.junit import render_junit
from harness.scenario import load_scenario

REPO = Path(__file__).resolve().parents[2]
XSD = REPO / "tests" / "data" / "junit.xsd"
SECRET = "tok-3f9a81c2d7e4"
SCENARIO_CASE = "rollback-rehearsal"  # the classname of each scenario's own case
FAILING = 'echo "connecting with token $TOKEN" >&2; printf \'%s\\033[0m%s\\n\' "${TOKEN:0:5}" "${TOKEN:5}"; (exit 3)'
RUNBOOK = f"""\
## Rollback

```sh
echo "rolling back"
```

<!-- rehearse: skip paging is production's -->
```sh
page-oncall --service demo
```

```sh
{FAILING}
echo "never runs"
```
"""
LINES = {text: RUNBOOK.splitlines().index(text) + 1 for text in ('echo "rolling back"', "page-oncall --service demo",
                                                                  FAILING)}


class Case(TestCase):
    """A testcase with the attributes annotation tools read (pytest's xunit1 family writes them too)."""

    file = Attr()
    line = IntAttr()


class Suite(TestSuite):
    file = Attr()


def _rehearsed(tmp_path: Path, kit: Any, monkeypatch: pytest.MonkeyPatch, expect: str) -> Journal:
    """The runbook phase run for real in bash, judged; the journal names its files as the session does."""
    monkeypatch.chdir(tmp_path)
    s = load_scenario(kit.write_scenario(tmp_path / "scenarios", "rb", kit.minimal_doc(expect=expect, pass_env=["TOKEN"]),
                                         runbook=RUNBOOK))
    journal = Journal(scenario="rb", expect=expect, scenario_file=session_mod.report_path(s.directory / "scenario.yaml"),
                      runbook_file=session_mod.report_path(s.path(s.runbook.file)))
    # The journal keeps what the step printed unmasked (an identity redactor): the writer must mask it itself.
    ctx = SimpleNamespace(scenario=s, journal=journal, cleanup=ExitStack(), redactor=lambda t: t,
                          runbook_env=lambda: {"PATH": os.environ["PATH"], "TOKEN": SECRET}, runbook_started_at=None)
    with pytest.raises(RunbookDrift):
        RunbookPhase().execute(ctx)  # type: ignore[arg-type]
    journal.phases = [PhaseRecord(name="runbook", status="failed", started_at=journal.started_at, duration_s=1.0)]
    judge.decide(journal).record(journal)
    return journal


def _cases(path: Path) -> tuple[list[Suite], dict[str, Case]]:
    xml = JUnitXml.fromfile(str(path))
    suites = [Suite.fromelem(s._elem) for s in xml]  # noqa: SLF001 (junitparser's way to read more attributes)
    return suites, {c.name: Case.fromelem(c._elem) for s in xml for c in s}  # noqa: SLF001


@pytest.fixture(scope="module")
def junit_schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(XSD))


def test_each_step_is_a_case_at_its_runbook_line(tmp_path: Path, kit: Any, monkeypatch: pytest.MonkeyPatch,
                                                 junit_schema: xmlschema.XMLSchema) -> None:
    journal = _rehearsed(tmp_path, kit, monkeypatch, expect="READY")
    assert journal.verdict == "NOT_READY"
    run = write_run_reports([journal], tmp_path / "reports", [Redactor([SECRET])], run_id="run-1", host="ci")
    text = run.junit.read_text(encoding="utf-8")
    junit_schema.validate(ET.fromstring(text.encode("utf-8")))
    suites, cases = _cases(run.junit)

    (suite,) = suites
    assert (suite.name, suite.file) == ("rb", "scenarios/rb/scenario.yaml")
    assert (suite.tests, suite.failures, suite.skipped, suite.errors) == (4, 2, 1, 0)  # step 4 never ran: no case
    ok, skip = cases['runbook step 1: echo "rolling back"'], cases["runbook step 2: page-oncall --service demo"]
    fail = cases[f"runbook step 3: {FAILING[:100]}…"]  # a long first line is cut
    assert cases["rb"].classname == SCENARIO_CASE and cases["rb"].file == "scenarios/rb/scenario.yaml"
    assert [type(r) for r in cases["rb"].result] == [Failure]  # the verdict, as before
    assert {ok.classname, skip.classname, fail.classname} == {"rb"}
    assert [(c.file, c.line) for c in (ok, skip, fail)] == [("scenarios/rb/runbook.md", LINES[k]) for k in LINES]

    assert ok.is_passed and "rolling back" in (ok.system_out or "")
    (skipped,) = skip.result
    assert isinstance(skipped, Skipped) and skipped.type == "rehearse: skip"
    assert skipped.message == f"runbook step 2 (line {LINES['page-oncall --service demo']}) skipped, as the runbook " \
                              "marks it: paging is production's"
    (failure,) = fail.result
    assert isinstance(failure, Failure) and failure.type == "exit 3"
    assert failure.message == f"runbook step 3 (line {LINES[FAILING]}) exit 3"
    assert f"connecting with token {MASK}" in (failure.text or "")  # the redacted output tail
    assert f"  {MASK}" in (failure.text or "")  # the secret split by a colour code, joined again and masked
    assert SECRET[:5] not in text and SECRET[5:] not in text  # neither the secret nor either half of it
    assert "never runs" not in text


def test_a_failed_step_the_scenario_expects_is_not_a_failure(tmp_path: Path, kit: Any,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A scenario that expects NOT_READY passes; its failing step is an expected failure (pytest's xfail), so
    the file's failures are exactly the scenarios `--against-expect` fails."""
    journal = _rehearsed(tmp_path, kit, monkeypatch, expect="NOT_READY")
    run = write_run_reports([journal], tmp_path / "reports", [Redactor([SECRET])], run_id="run-1", host="ci")
    xml = JUnitXml.fromfile(str(run.junit))
    _, cases = _cases(run.junit)
    assert (xml.tests, xml.failures, xml.skipped) == (4, 0, 2)
    assert cases["rb"].is_passed
    (xfail,) = cases[f"runbook step 3: {FAILING[:100]}…"].result
    assert isinstance(xfail, Skipped) and xfail.type == "pytest.xfail"
    assert xfail.message == (f"runbook step 3 (line {LINES[FAILING]}) exit 3; not a failure: the scenario's verdict "
                             "NOT_READY is as expected")
    assert f"connecting with token {MASK}" in run.junit.read_text(encoding="utf-8")


def test_second_run_steps_and_older_reports(tmp_path: Path, kit: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fault-free second run's steps are cases of their own; a report from before `runbook_file` still
    gets its step cases and lines, without `file`."""
    journal = _rehearsed(tmp_path, kit, monkeypatch, expect="READY")
    journal.rerun_steps = [s.model_copy(update={"duration_s": 0.5}) for s in journal.runbook_steps[:1]]
    old = journal.model_dump(mode="json") | {"scenario_file": "", "runbook_file": ""}
    root = ET.fromstring(render_junit([old], Redactor([SECRET])).encode("utf-8"))
    cases = {c.get("name"): c.attrib for c in root.iter("testcase")}
    rerun = cases['second run, step 1: echo "rolling back"']
    assert (rerun["classname"], rerun["line"], rerun["time"]) == ("rb", str(LINES['echo "rolling back"']), "0.500")
    assert all("file" not in a for a in cases.values())
    assert root.get("tests") == "5" and root.find("testsuite").get("tests") == "5"  # type: ignore[union-attr]


def test_step_case_names_keep_to_one_line(tmp_path: Path) -> None:
    """A heredoc or a long command is named by its first line, cut; the runbook line is not in the name."""
    data = {"scenario": "s", "expect": "READY", "verdict": "READY", "runbook_steps": [
        {"index": 1, "line": 7, "command": "cat <<EOF\nsecret-free\nEOF", "exit_code": 0, "duration_s": 0.1,
         "output_tail": ""},
        {"index": 2, "line": 12, "command": "x" * 150, "exit_code": 0, "duration_s": 0.1, "output_tail": ""}]}
    names = [c.get("name") for c in ET.fromstring(render_junit([data], Redactor())).iter("testcase")][1:]
    assert names == ["runbook step 1: cat <<EOF …", f"runbook step 2: {'x' * 100}…"]


def test_report_path_is_relative_to_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert session_mod.report_path(tmp_path.resolve() / "scenarios" / "a" / "runbook.md") == "scenarios/a/runbook.md"
    assert session_mod.report_path(Path("/elsewhere/runbook.md")) == "/elsewhere/runbook.md"
