"""The `rehearse` command line, run as the installed console script (no cluster needed)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

REHEARSE = shutil.which("rehearse", path=str(Path(sys.executable).parent)) or "rehearse"


def rehearse(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # PYTHONPATH: the code of this checkout, not of whichever copy is installed.
    env = {**os.environ, "COLUMNS": "400", "NO_COLOR": "1", "TERM": "dumb", "PYTHONIOENCODING": "utf-8",
           "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    env.pop("REHEARSAL_DATABASE_DSN", None)
    return subprocess.run([REHEARSE, *args], check=False, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def test_console_script_is_installed() -> None:
    assert Path(REHEARSE).is_file(), "install the project (pip install -e .) to get the `rehearse` script"


def test_validate_examples(kit: SimpleNamespace) -> None:
    res = rehearse("validate", "scenarios", cwd=kit.REPO)
    assert res.returncode == 0, res.stderr
    out = res.stdout + res.stderr
    for name in ("bad-image", "bad-migration", "forgot-migrate-down", "promotion"):
        assert re.search(rf"^ok {re.escape(name)} \(", out, re.MULTILINE), out


def test_validate_defaults_to_scenarios_dir(kit: SimpleNamespace) -> None:
    res = rehearse("validate", cwd=kit.REPO)
    assert res.returncode == 0, res.stderr
    expected = sorted(d.name for d in (kit.REPO / "scenarios").iterdir() if (d / "scenario.yaml").exists())
    assert len(expected) >= 8
    assert (res.stdout + res.stderr).count("ok ") == len(expected)


def test_validate_broken_scenario_prints_every_problem(broken_scenario: Path, kit: SimpleNamespace) -> None:
    res = rehearse("validate", str(broken_scenario), cwd=broken_scenario.parent)
    assert res.returncode == 2
    out = res.stdout + res.stderr
    assert f"scenario errors ({len(kit.BROKEN_EXPECTED)})" in out
    for field in kit.BROKEN_EXPECTED:
        m = re.search(rf"scenario\.yaml: {re.escape(field)}: (.+)\n\s+fix: (\S.*)", out)
        assert m, f"{field} not printed with message and fix:\n{out}"
    assert "Traceback" not in out


def test_validate_reports_all_files_and_still_fails_with_one_good(tmp_path: Path, kit: SimpleNamespace) -> None:
    kit.write_scenario(tmp_path, "good", kit.minimal_doc())
    kit.write_scenario(tmp_path, "bad-one", kit.minimal_doc(expect="MAYBE"))
    kit.write_scenario(tmp_path, "bad-two", kit.minimal_doc(failure={"mode": "explodes"}))
    res = rehearse("validate", str(tmp_path), cwd=tmp_path)
    assert res.returncode == 2
    out = res.stdout + res.stderr
    assert "bad-one/scenario.yaml: expect:" in out and "bad-two/scenario.yaml: failure.mode:" in out
    assert "ok good" not in out  # nothing is declared fine while the set has errors


def test_validate_path_without_scenarios(tmp_path: Path) -> None:
    res = rehearse("validate", str(tmp_path), cwd=tmp_path)
    assert res.returncode == 2
    assert "no scenario.yaml found" in res.stdout + res.stderr


def test_list_shows_scenarios_with_expect(kit: SimpleNamespace) -> None:
    res = rehearse("list", cwd=kit.REPO)
    assert res.returncode == 0, res.stderr
    rows = {}
    for line in (res.stdout + res.stderr).splitlines():
        cells = [c.strip() for c in re.split(r"[│┃|]", line) if c.strip()]
        if len(cells) >= 3:
            rows[cells[0]] = cells[1:3]
    assert rows.get("bad-image") == ["READY", "crashloop"]
    assert rows.get("bad-migration") == ["READY", "readiness"]
    assert rows.get("forgot-migrate-down") == ["NOT_READY", "readiness"]
    assert rows.get("promotion") == ["READY", "readiness"]


def test_list_of_broken_scenario_is_a_usage_error(broken_scenario: Path) -> None:
    res = rehearse("list", str(broken_scenario), cwd=broken_scenario.parent)
    assert res.returncode == 2 and "app.manifests" in res.stdout + res.stderr


@pytest.mark.parametrize("args", [("frobnicate",), ("run", "--no-such-option"), ("validate", "--bogus")])
def test_usage_errors_exit_2(args: tuple[str, ...], tmp_path: Path) -> None:
    res = rehearse(*args, cwd=tmp_path)
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    assert re.search(r"No such (command|option)", res.stderr)


def test_help(tmp_path: Path) -> None:
    res = rehearse("--help", cwd=tmp_path)
    assert res.returncode == 0
    for cmd in ("run", "validate", "list"):
        assert re.search(rf"^\s+{cmd}\s", res.stdout, re.MULTILINE)


def test_validate_a_helm_scenario_with_both_manifests_and_a_missing_chart_exits_2(tmp_path: Path, kit) -> None:
    doc = kit.minimal_doc()
    doc["app"]["helm"] = {"chart": "nope", "release": "demo", "values": ["nope.yaml"]}
    d = kit.write_scenario(tmp_path, "both", doc)
    res = rehearse("validate", str(d), cwd=tmp_path)
    out = res.stdout + res.stderr
    assert res.returncode == 2 and "Traceback" not in out
    assert "app: Value error, both app.manifests and app.helm are set" in " ".join(out.split())
    assert "app.helm.chart: chart nope does not exist" in out and "app.helm.values[0]: values file nope.yaml" in out
    assert out.count("fix:") >= 3
