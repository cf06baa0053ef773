"""Session.rehearse with a fake infrastructure and fake phases, around the real pipeline, judge and writers.

What is checked is the session's part: the judge runs once, after the
scenario's cleanup and the fault after-check; the reports are written once,
from the judged journal; and a fault left in place reads ERROR everywhere.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console

import harness.report as report
import harness.session as session_mod
from harness import faults, judge, pipeline
from harness.cli import results_table
from harness.context import RehearsalContext
from harness.journal import Journal
from harness.phases import OnFailure, Phase
from harness.scenario import load_scenario
from harness.scenario.models import Scenario

LEFTOVER = "container pg-012345678 is still paused (fix: docker unpause pg-012345678)"


class FakePhase(Phase):
    """Succeeds, and registers a cleanup callback that logs when the scenario's cleanup ran."""

    name, on_failure = "deploy_good", OnFailure.STOP

    def __init__(self, log: list[str], fail: BaseException | None = None) -> None:
        self.log, self.fail = log, fail

    def execute(self, ctx: RehearsalContext) -> str:
        self.log.append("phase")
        ctx.cleanup.callback(self.log.append, "cleanup")
        if self.fail is not None:
            raise self.fail
        return "done"


@pytest.fixture
def rig(tmp_path: Path, kit: Any, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """A session on fake infrastructure; every step the session orders is logged."""
    log: list[str] = []
    monkeypatch.setattr(pipeline, "say", lambda *a, **k: None)
    monkeypatch.setattr(session_mod, "say", lambda *a, **k: None)
    monkeypatch.setattr(pipeline, "PHASES", [FakePhase(log)])
    leftovers: list[str] = []

    def fake_leftovers(infra: Any) -> list[str]:
        log.append("leftovers")
        return list(leftovers)

    real_decide, real_write = judge.decide, session_mod.write_scenario_reports

    def logged_decide(*a: Any, **k: Any) -> judge.Judgement:
        log.append("judge")
        return real_decide(*a, **k)

    def logged_write(*a: Any, **k: Any) -> list[Path]:
        log.append("write")
        return real_write(*a, **k)

    monkeypatch.setattr(faults, "leftovers", fake_leftovers)
    monkeypatch.setattr(judge, "decide", logged_decide)
    monkeypatch.setattr(session_mod, "write_scenario_reports", logged_write)
    infra = SimpleNamespace(cluster=SimpleNamespace(name="kind-x"), registry=None, database=None)
    reports = tmp_path / "reports"
    session = session_mod.Session(session_mod.SessionOptions(report_dir=reports), infra=infra,  # type: ignore[arg-type]
                                  stack=ExitStack(), owner="rehearsal-xyz")

    def scenario(name: str, **doc: Any) -> Scenario:
        return load_scenario(kit.write_scenario(tmp_path / "scenarios", name, kit.minimal_doc(**doc)))

    return SimpleNamespace(log=log, session=session, reports=reports, leftovers=leftovers, scenario=scenario)


def test_the_judge_runs_once_after_the_cleanup_and_the_fault_check_then_the_reports(rig: Any) -> None:
    journal = rig.session.rehearse(rig.scenario("faulted", faults=[{"kind": "pause_postgres"}]))
    assert rig.log == ["phase", "cleanup", "leftovers", "judge", "write"]
    assert journal.verdict == "READY" and journal.reasons == [judge.READY_REASON]
    assert journal.events[-1].message == "after cleanup: no container paused, no netem qdisc on the nodes"
    report = json.loads((rig.reports / "faulted" / "report.json").read_text(encoding="utf-8"))
    assert report["verdict"] == "READY" and report["reasons"] == [judge.READY_REASON]
    assert rig.session.results == [journal] and len(rig.session.redactors) == 1


def test_the_journal_names_the_scenario_and_runbook_files_from_the_working_directory(
        rig: Any, kit: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What junit.xml's `file` attributes (and so CI annotations) point at: paths in the checkout."""
    (tmp_path / "scenarios" / "named" / "docs").mkdir(parents=True)
    (tmp_path / "scenarios" / "named" / "docs" / "rollback.md").write_text(kit.RUNBOOK_MD, encoding="utf-8")
    scenario = rig.scenario("named", runbook={"file": "docs/rollback.md"})
    monkeypatch.chdir(tmp_path)
    journal = rig.session.rehearse(scenario)
    assert (journal.scenario_file, journal.runbook_file) == ("scenarios/named/scenario.yaml",
                                                             "scenarios/named/docs/rollback.md")
    report = json.loads((rig.reports / "named" / "report.json").read_text(encoding="utf-8"))
    assert report["runbook_file"] == "scenarios/named/docs/rollback.md"


def test_without_faults_there_is_no_after_check(rig: Any) -> None:
    journal = rig.session.rehearse(rig.scenario("plain", expect_risks=["old_version_on_new_schema"],
                                                failure={"mode": "crashloop", "within_s": 45},
                                                objectives={"max_recover_s": 90}))
    assert rig.log == ["phase", "cleanup", "judge", "write"]
    assert journal.objectives == {"max_recover_s": 90.0, "max_detect_s": 45.0}
    assert journal.expect_risks == ["old_version_on_new_schema"]  # recorded, so the reports judge risks too
    assert {p.name for p in (rig.reports / "plain").iterdir()} == {"report.json", "report.html"}


def test_an_interrupted_rehearsal_is_not_judged_but_reported(rig: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline, "PHASES", [FakePhase(rig.log, fail=KeyboardInterrupt())])
    with pytest.raises(KeyboardInterrupt):
        rig.session.rehearse(rig.scenario("stopped", faults=[{"kind": "pause_postgres"}]))
    assert rig.log == ["phase", "cleanup", "write"]  # no verdict from half a rehearsal
    report = json.loads((rig.reports / "stopped" / "report.json").read_text(encoding="utf-8"))
    assert report["verdict"] == "ERROR" and report["reasons"] == []
    assert rig.session.results == []


def _cli_table(journals: list[Journal]) -> str:
    console = Console(record=True, width=400, color_system=None)
    console.print(results_table(journals))
    return console.export_text()


def _outputs(rig: Any, name: str) -> dict[str, Callable[[], str]]:
    """Where each output shows the verdict of scenario `name`."""
    run = rig.session.write_run_reports()
    assert run is not None
    case = next(c for c in ET.parse(run.junit).getroot().iter("testcase") if c.get("name") == name)
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    failure = case.find("failure")
    html = (rig.reports / name / "report.html").read_text(encoding="utf-8")
    row = next(ln for ln in run.summary.read_text(encoding="utf-8").splitlines() if ln.startswith(f"| {name} "))
    cli_row = next(ln for ln in _cli_table(rig.session.results).splitlines() if f" {name} " in ln)
    return {
        "report.json": lambda: json.loads((rig.reports / name / "report.json").read_text())["verdict"],
        "junit.xml": lambda: f"{props['verdict']} failure={failure is not None and failure.get('type')}",
        "summary.md": lambda: row.split("|")[2].strip(),
        "report.html": lambda: re.search(r'id="verdict">(\w+)<', html).group(1)  # type: ignore[union-attr]
        + (" as expected" if ">expected READY: as expected<" in html else " NOT as expected"),
        "cli table": lambda: [c.strip() for c in re.split(r"[│┃|]", cli_row) if c.strip()][1],
    }


def test_a_fault_left_in_place_turns_ready_into_error_everywhere(rig: Any) -> None:
    rig.session.rehearse(rig.scenario("clean", faults=[{"kind": "pause_postgres"}]))
    rig.leftovers.append(LEFTOVER)
    journal = rig.session.rehearse(rig.scenario("left-over", faults=[{"kind": "pause_postgres"}]))
    assert journal.reasons == [f"a fault was not removed: {LEFTOVER}", judge.READY_REASON]
    assert rig.log.count("judge") == 2  # once per scenario
    clean = {where: show() for where, show in _outputs(rig, "clean").items()}
    left = {where: show() for where, show in _outputs(rig, "left-over").items()}
    assert clean == {"report.json": "READY", "junit.xml": "READY failure=False", "summary.md": "✅ READY",
                     "report.html": "READY as expected", "cli table": "READY"}
    assert left == {"report.json": "ERROR", "junit.xml": "ERROR failure=ERROR", "summary.md": "⚠️ ERROR (unexpected)",
                    "report.html": "ERROR NOT as expected", "cli table": "ERROR"}
    report = json.loads((rig.reports / "left-over" / "report.json").read_text(encoding="utf-8"))
    assert report["reasons"][0] == f"a fault was not removed: {LEFTOVER}"
    assert report["events"][-1]["message"] == f"after cleanup: {LEFTOVER}"


def test_a_page_that_cannot_be_rendered_never_costs_the_record(rig: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*a: Any, **k: Any) -> Path:
        raise ValueError("bad template")

    monkeypatch.setattr(report, "write_html", broken)
    rig.session.rehearse(rig.scenario("no-page"))
    assert {p.name for p in (rig.reports / "no-page").iterdir()} == {"report.json"}


def test_a_session_part_of_another_run_carries_its_id_and_writes_no_run_reports(rig: Any) -> None:
    """A pytest-xdist worker's session: the controller writes junit.xml, summary.md and run.json once."""
    rig.session.part_of = "rehearsal-controller"
    journal = rig.session.rehearse(rig.scenario("worked"))
    assert journal.run_id == "rehearsal-controller"
    assert json.loads((rig.reports / "worked" / "report.json").read_text(encoding="utf-8"))["run_id"] \
        == "rehearsal-controller"
    assert rig.session.write_run_reports() is None
    assert sorted(p.name for p in rig.reports.iterdir()) == ["worked"]
    rig.session.part_of = ""  # the same session as a run of its own: the run-level files, under its owner
    assert rig.session.write_run_reports() is not None
    assert json.loads((rig.reports / "run.json").read_text(encoding="utf-8"))["run_id"] == "rehearsal-xyz"
