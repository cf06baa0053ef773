"""tools/bench.py (`make bench`): the measurement of a child and what it reads from the reports."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

_SPEC = importlib.util.spec_from_file_location("bench", Path(__file__).parents[2] / "tools" / "bench.py")
assert _SPEC is not None and _SPEC.loader is not None
bench = importlib.util.module_from_spec(_SPEC)
sys.modules["bench"] = bench  # dataclasses look their module up there
_SPEC.loader.exec_module(bench)


def test_a_child_is_measured_by_its_own_peak_rss_and_exit_code(tmp_path: Path) -> None:
    # 80 MB touched, then exit 3: the kernel's high-water mark of that child, not of this test process.
    code = "b = bytearray(80 * 2**20); b[::4096] = b'x' * len(b[::4096]); print('done'); raise SystemExit(3)"
    run = bench.measured([sys.executable, "-c", code], tmp_path / "child.log")
    assert run.returncode == 3 and not run.ok
    assert 80 <= run.peak_rss_mb < 400
    assert run.output == "done\n" and run.wall_s > 0


def _report(root: Path, run: str, scenario: str, verdict: str, phases: dict[str, float],
            cleanup_s: float | None, events: list[dict[str, str]] | None = None) -> None:
    rep: dict[str, Any] = {"scenario": scenario, "verdict": verdict, "cleanup_s": cleanup_s, "events": events or [],
                           "phases": [{"name": n, "duration_s": d} for n, d in phases.items()]}
    (root / run / scenario).mkdir(parents=True)
    (root / run / scenario / "report.json").write_text(json.dumps(rep))


def test_phase_medians_add_the_cleanup_and_the_session_around_the_scenario(tmp_path: Path) -> None:
    _report(tmp_path, "r0", "bad-migration", "READY", {"deploy_good": 10.0, "verify": 6.0}, 1.0)
    _report(tmp_path, "r1", "bad-migration", "READY", {"deploy_good": 14.0, "verify": 8.0}, 3.0)
    runs = [bench.Run(30.0, 0, 100.0, report_dir=tmp_path / "r0"), bench.Run(40.0, 0, 100.0, report_dir=tmp_path / "r1")]
    medians = bench.phase_medians(runs)
    assert list(medians) == ["deploy_good", "verify", "cleanup", "(session: Postgres, kubeconfig, reports)"]
    assert medians["deploy_good"] == 12.0 and medians["cleanup"] == 2.0
    assert medians["(session: Postgres, kubeconfig, reports)"] == 14.0  # (30-17 + 40-25) / 2


def test_bounds_keep_the_worst_verify_of_not_ready_runs_and_the_worst_cleanup(tmp_path: Path) -> None:
    waited = [{"kind": "verify", "message": "not healthy after 30s: 0/1 ready"}]
    decided = [{"kind": "verify", "message": "not healthy; not awaited further: the runbook stopped"}]
    _report(tmp_path, "r0", "runbook-drift", "NOT_READY", {"verify": 3.1}, 1.5, decided)
    _report(tmp_path, "r1", "runbook-drift", "NOT_READY", {"verify": 31.0}, 2.5, waited)
    _report(tmp_path, "r0", "bad-image", "READY", {"verify": 9.0}, 0.5)
    rows = bench.bounds([bench.Run(1.0, 0, 1.0, report_dir=tmp_path / r) for r in ("r0", "r1")])
    assert rows == [bench.ScenarioBounds("bad-image", "READY", None, "-", 0.5),
                    bench.ScenarioBounds("runbook-drift", "NOT_READY", 31.0, "waited the whole timeout", 2.5)]


def test_the_hand_scripts_step_times_are_read_from_its_output() -> None:
    runs = [bench.Run(1.0, 0, 0.0, output="x\nhand-step detect 4.5\nhand-step teardown 2.000\n"),
            bench.Run(1.0, 0, 0.0, output="hand-step detect 5.5\n")]
    assert bench.step_medians(runs) == {"detect": 5.0, "teardown": 2.0}


@pytest.mark.parametrize(("argv", "says"), [(["--rounds", "0"], "--rounds: must be at least 1"),
                                            (["--jobs", "0", "2"], "--jobs: 0 is not a positive number"),
                                            (["--warmup", "-1"], "--warmup: must be at least 0")])
def test_bad_arguments_exit_2_and_say_which(argv: list[str], says: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        bench.parse_args(argv)
    assert exc.value.code == 2 and says in capsys.readouterr().err


def test_a_setting_given_twice_runs_twice_into_its_own_report_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                                   ) -> None:
    """`--jobs 4 1 4 2 4`: three runs at -j 4 interleaved with the others, none overwriting another's reports;
    the Markdown names every run's wall time and its ratio to -j 1."""
    walls = iter([999.0, 100.0, 300.0, 110.0, 170.0, 120.0])  # the first: the uncounted warm-up
    seen: list[tuple[int, str]] = []

    def rehearse(cluster: str, paths: Any, jobs: int, report_dir: Path) -> Any:
        seen.append((jobs, report_dir.name))
        return bench.Run(next(walls), 0, 90.0, report_dir=report_dir)

    monkeypatch.setattr(bench, "rehearse", rehearse)
    res = bench.Results()
    bench.run_jobs_mode("rr-bench", ["scenarios"], [4, 1, 4, 2, 4], 1, tmp_path, res, warmup=1)
    assert seen == [(4, "jobs-warmup-0"), (4, "j4-r0"), (1, "j1-r0"), (4, "j4-r1"), (2, "j2-r0"), (4, "j4-r2")]
    assert [r.wall_s for r in res.jobs[4]] == [100.0, 110.0, 120.0]
    row = next(line for line in bench.jobs_markdown(res) if line.startswith("| 4 |"))
    assert "100, 110, 120 s" in row and "0.37 (0.33, 0.37, 0.40)" in row and "yes (3/3)" in row
