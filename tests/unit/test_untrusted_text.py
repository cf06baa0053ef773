"""validate, list and check print user text verbatim: rich markup never reads a description, a finding,
a file name or a problem; and `check` keeps "could not check" (2) apart from "found a failure" (1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

import harness.preflight
from harness.cli import cli
from harness.journal import Finding
from harness.scenario import Scenario

# Each of these is a markup error, a markup tag that would vanish, or an escape rich would eat.
BRACKETS = ['sed "s/[/]/-/g"', "[/x]", "[bold]not bold[/bold]", "grep -E '[a-z]+'", '"${pods[@]}"', "\\[x]"]


def _scenario(base: Path, dirname: str, **doc: Any) -> Path:
    d = base / dirname
    d.mkdir()
    full = {"app": {"manifests": "app.yaml", "workloads": [{"deployment": "demo"}]},
            "versions": {"good": {"image": "demo:v1"}, "bad": {"image": "demo:v2"}},
            "failure": {"mode": "crashloop"}, **doc}
    (d / "scenario.yaml").write_text(yaml.safe_dump(full))
    (d / "runbook.md").write_text("# R\n## Rollback\n```sh\nkubectl rollout undo deployment/demo\n```\n")
    (d / "app.yaml").write_text("kind: List\n")
    return d


def _run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, list(args))
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exc_info
    return res.exit_code, res.output


@pytest.mark.parametrize("text", BRACKETS)
def test_list_prints_descriptions_verbatim(tmp_path: Path, text: str) -> None:
    _scenario(tmp_path, "demo", description=text)
    code, out = _run("list", str(tmp_path))
    assert code == 0, out
    assert text in out


def test_validate_prints_problems_and_names_verbatim(tmp_path: Path) -> None:
    d = _scenario(tmp_path, "demo", runbook={"file": "[bold]run[/x].md"})
    code, out = _run("validate", str(d))
    assert code == 2
    assert "[bold]run[/x].md does not exist" in out


def test_validate_ok_line_verbatim(tmp_path: Path) -> None:
    d = _scenario(tmp_path, "[bold]dir[x]", name="demo")
    code, out = _run("validate", str(d))
    assert code == 0, out
    assert "[bold]dir[x]" in out


def _finding(text: str, severity: str = "failure") -> Finding:
    return Finding(check=f"c{text}", severity=severity, file="f", message=f"m {text}", fix=f"x {text}")  # type: ignore[arg-type]


@pytest.mark.parametrize("text", BRACKETS)
def test_check_prints_findings_verbatim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    _scenario(tmp_path, "demo", description=text)
    monkeypatch.setattr(harness.preflight, "run_checks", lambda s: [_finding(text)])
    code, out = _run("check", str(tmp_path))
    assert code == 1, out
    flat = out.replace("\n", "")
    assert f"m {text}" in " ".join(out.split()) or f"m {text}" in flat
    assert f"c{text}" in " ".join(out.split()) or f"c{text}" in flat


def test_check_a_crash_is_exit_2_and_hides_no_other_scenario(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _scenario(tmp_path, "a-crashes")
    _scenario(tmp_path, "b-fails")

    def run_checks(s: Scenario) -> list[Finding]:
        if s.name == "a-crashes":
            raise KeyError("[/boom]")
        return [_finding("hazard")]

    monkeypatch.setattr(harness.preflight, "run_checks", run_checks)
    code, out = _run("check", str(tmp_path))
    assert code == 2, out  # not 1: "could not check" must not read as "found a failure"
    assert "m hazard" in out  # b's finding is still shown
    assert "(preflight): the checks could not finish: KeyError: '[/boom]'" in " ".join(out.split())
    assert "Traceback" not in out


def test_check_exit_1_only_for_failures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _scenario(tmp_path, "demo")
    monkeypatch.setattr(harness.preflight, "run_checks", lambda s: [_finding("w", "warning")])
    assert _run("check", str(tmp_path))[0] == 0
    monkeypatch.setattr(harness.preflight, "run_checks", lambda s: [_finding("w", "warning"), _finding("f")])
    assert _run("check", str(tmp_path))[0] == 1
