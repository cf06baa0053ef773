"""`rehearse report merge` (harness/report/merge.py).

The shard report directories are written by the run's own writers
(`write_scenario_reports`, `write_run_reports`) from real judged journals: the
report.json files of demo runs in tests/data/reports, split with the real
partition. The merged set is compared with an unsharded run of the same
journals written by the same writers; JUnit files are checked with the JUnit
XSD (tests/data/junit.xsd) and read with junitparser.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import xmlschema
from click.testing import CliRunner
from junitparser import Error, Failure, JUnitXml, Properties

from harness.cli import cli
from harness.journal import Journal
from harness.options import Shard
from harness.report import write_run_reports, write_scenario_reports
from harness.report.history import read_history
from harness.shard import ShardPlan, partition, weights

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "reports"
XSD = REPO / "tests" / "data" / "junit.xsd"


def journals(run: str = "rr3") -> dict[str, Journal]:
    """A real run's judged journals (bad-image, bad-migration, forgot-migrate-down (NOT_READY), promotion)."""
    return {p.parent.name: Journal.model_validate_json(p.read_text(encoding="utf-8"))
            for p in sorted((DATA / run).glob("*/report.json"))}


def write_run(out: Path, run_id: str, js: list[Journal], plan: ShardPlan | None = None) -> Path:
    """A report directory as `rehearse run` leaves it: each scenario's reports, then the run reports."""
    shard = str(plan.shard) if plan else None
    stamped = [j.model_copy(update={"run_id": run_id, "shard": shard}) for j in js]
    for j in stamped:
        write_scenario_reports(j, out / j.scenario)
    write_run_reports(stamped, out, run_id=run_id, host="runner", shard=plan.record() if plan else None,
                      notes=[plan.empty_note()] if plan and not js else [])
    return out


def write_shards(base: Path, count: int, js: dict[str, Journal], prefix: str = "rehearsal-a") -> list[Path]:
    names = sorted(js)
    parts = partition(names, count, weights(names, {}))
    dirs = []
    for k in range(1, count + 1):
        plan = ShardPlan(Shard(k, count), parts, 0, base / "history.jsonl")
        dirs.append(write_run(base / f"shard-{k}", f"{prefix}{k:07d}", [js[n] for n in plan.scenarios], plan))
    return dirs


def merge(*args: Path | str) -> Any:
    return CliRunner().invoke(cli, ["report", "merge", *map(str, args)])


def cases(junit: Path) -> dict[str, dict[str, Any]]:
    """{scenario case name: its verdict property, expect, and whether it failed or errored}, from junitparser."""
    xmlschema.XMLSchema(str(XSD)).validate(str(junit))
    xml = JUnitXml.fromfile(str(junit))
    suites = list(xml) if isinstance(xml, JUnitXml) else [xml]
    out: dict[str, dict[str, Any]] = {}
    for suite in suites:
        for case in suite:
            if case.classname != "rollback-rehearsal":
                continue  # a runbook step's case (classname: its scenario); the scenario's case has the verdict
            assert case.name not in out, f"{case.name} twice in {junit}"
            props = {p.name: p.value for group in case.iterchildren(Properties) for p in group}
            out[case.name] = {"verdict": props.get("verdict"), "expect": props.get("expect"),
                              "failed": any(isinstance(r, Failure) for r in case.result),
                              "error": any(isinstance(r, Error) for r in case.result), "run_id": props.get("run_id")}
    return out


def table_rows(summary: Path) -> list[str]:
    return [line for line in summary.read_text(encoding="utf-8").splitlines() if line.startswith("| ")][1:]


def history_keys(path: Path) -> list[tuple[str, str]]:
    return [(e["run_id"], e["scenario"]) for e in read_history([path]).entries]


# ── the merged set is the unsharded run ──────────────────────────────────────
@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_shards_merged_give_the_verdicts_of_one_unsharded_run(tmp_path: Path, count: int) -> None:
    js = journals()
    dirs = write_shards(tmp_path, count, js)
    whole = write_run(tmp_path / "whole", "rehearsal-whole001", list(js.values()))
    result = merge(*dirs, "--out", tmp_path / "merged")
    assert result.exit_code == 0, result.output
    merged, unsharded = cases(tmp_path / "merged" / "junit.xml"), cases(whole / "junit.xml")
    strip = {n: {k: v for k, v in c.items() if k != "run_id"} for n, c in merged.items()}
    assert strip == {n: {k: v for k, v in c.items() if k != "run_id"} for n, c in unsharded.items()}
    assert {n: c["verdict"] for n, c in merged.items()} == {n: j.verdict for n, j in js.items()}
    assert merged["forgot-migrate-down"]["verdict"] == "NOT_READY" and not merged["forgot-migrate-down"]["failed"]
    assert table_rows(tmp_path / "merged" / "summary.md") == table_rows(whole / "summary.md")
    assert f"merged {len(js)} scenario(s) from {count} run(s): 3 READY, 4 as expected" in result.output
    if count == 5:  # one shard had no scenario: its empty report set merges like the others
        assert json.loads((dirs[-1] / "run.json").read_text())["scenarios"] == []


def test_each_scenario_directory_is_copied_so_the_summary_paths_exist(tmp_path: Path) -> None:
    dirs = write_shards(tmp_path, 2, journals())
    assert merge(*dirs, "--out", tmp_path / "m").exit_code == 0
    for name in journals():
        source = next(d / name for d in dirs if (d / name).is_dir())
        for f in ("report.json", "report.html"):
            assert (tmp_path / "m" / name / f).read_bytes() == (source / f).read_bytes()
    assert "`<scenario>/report.html` in the report directory" in (tmp_path / "m" / "summary.md").read_text()
    run = json.loads((tmp_path / "m" / "run.json").read_text())
    assert run["run_id"] is None and run["scenarios"] == sorted(journals()) and run["missing"] == []
    assert [m["shard"] for m in run["merged_from"]] == ["1/2", "2/2"]
    for f in ("trend.html", "trend.png", "badge.svg"):
        assert (tmp_path / "m" / f).stat().st_size > 0
    assert "3/4 ready" in (tmp_path / "m" / "badge.svg").read_text()  # forgot-migrate-down is NOT_READY


def test_the_merged_history_holds_every_run_once_and_feeds_the_trend(tmp_path: Path) -> None:
    dirs = write_shards(tmp_path, 2, journals())
    assert merge(*dirs, "--out", tmp_path / "m").exit_code == 0
    keys = history_keys(tmp_path / "m" / "history.jsonl")
    assert sorted(keys) == sorted({*history_keys(dirs[0] / "history.jsonl"), *history_keys(dirs[1] / "history.jsonl")})
    assert len(keys) == len(set(keys)) == 4
    assert all(isinstance(e.get("duration_s"), float) for e in read_history([tmp_path / "m" / "history.jsonl"]).entries)
    assert "4 result(s)" in (tmp_path / "m" / "trend.html").read_text()


# ── deduplication ────────────────────────────────────────────────────────────
def test_a_directory_given_twice_or_copied_counts_once(tmp_path: Path) -> None:
    dirs = write_shards(tmp_path, 2, journals())
    copy = shutil.copytree(dirs[0], tmp_path / "artifact-again")
    result = merge(dirs[0], *dirs, copy, "--out", tmp_path / "m")
    assert result.exit_code == 0, result.output
    assert "was given more than once: read once" in result.output
    assert len(cases(tmp_path / "m" / "junit.xml")) == 4
    keys = history_keys(tmp_path / "m" / "history.jsonl")
    assert len(keys) == len(set(keys)) == 4
    assert "judged by" not in result.output  # the same run's result, not a conflict


@pytest.mark.parametrize("rerun_first", [False, True])
def test_a_scenario_judged_by_two_runs_keeps_the_latest_and_says_so(tmp_path: Path, rerun_first: bool) -> None:
    js = journals()
    dirs = write_shards(tmp_path, 2, js)
    first = json.loads((dirs[0] / "run.json").read_text())["scenarios"]
    again = js[first[0]].model_copy(update={"started_at": "2030-01-01T00:00:00.000+00:00", "verdict": "ERROR",
                                            "reasons": ["the re-run was interrupted"]})
    rerun = write_run(tmp_path / "rerun", "rehearsal-b0000001", [again])
    inputs = [rerun, *dirs] if rerun_first else [*dirs, rerun]
    result = merge(*inputs, "--out", tmp_path / "m")
    assert result.exit_code == 0, result.output
    merged = cases(tmp_path / "m" / "junit.xml")
    assert len(merged) == 4 and merged[first[0]] == {"verdict": "ERROR", "expect": "READY", "failed": True,
                                                     "error": False, "run_id": "rehearsal-b0000001"}
    output = " ".join(result.output.split())
    assert f"{first[0]} was judged by 2 runs" in output and "kept the latest, run rehearsal-b0000001" in output
    summary = (tmp_path / "m" / "summary.md").read_text()
    assert f"{first[0]} was judged by 2 runs" in summary and "3/4 verdicts as expected" in summary
    assert (tmp_path / "m" / first[0] / "report.json").read_bytes() == (rerun / first[0] / "report.json").read_bytes()
    keys = history_keys(tmp_path / "m" / "history.jsonl")  # history keeps both runs: it is a history
    assert ("rehearsal-a0000001", first[0]) in keys and ("rehearsal-b0000001", first[0]) in keys


# ── what is missing is said, never dropped ───────────────────────────────────
def test_a_missing_shard_is_listed_in_every_report_and_the_exit_status(tmp_path: Path) -> None:
    dirs = write_shards(tmp_path, 3, journals())
    lost = json.loads((dirs[1] / "run.json").read_text())["scenarios"]
    result = merge(dirs[0], dirs[2], "--out", tmp_path / "m")
    assert result.exit_code == 1, result.output
    assert lost and all(f"no result for {n}: shard 2/3 of partition" in " ".join(result.output.split()) for n in lost)
    merged = cases(tmp_path / "m" / "junit.xml")
    assert all(merged[n]["error"] for n in lost) and len(merged) == 4
    summary = (tmp_path / "m" / "summary.md").read_text()
    assert f"({len(lost)} without a result)" in summary and f"/4 verdicts as expected" in summary
    assert json.loads((tmp_path / "m" / "run.json").read_text())["missing"] == sorted(lost)


# ── bad inputs: exit 2, every one listed, nothing written ────────────────────
def test_inputs_that_are_not_report_directories_are_each_listed_with_exit_2(tmp_path: Path) -> None:
    good = write_shards(tmp_path, 2, journals())
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.txt").write_text("x")
    bad_json = tmp_path / "bad-json"
    bad_json.mkdir()
    (bad_json / "run.json").write_text("{")
    escaping = shutil.copytree(good[0], tmp_path / "escaping")
    record = json.loads((escaping / "run.json").read_text())
    (escaping / "run.json").write_text(json.dumps({**record, "scenarios": ["../../etc"]}))
    no_report = shutil.copytree(good[1], tmp_path / "no-report")
    name = json.loads((no_report / "run.json").read_text())["scenarios"][0]
    (no_report / name / "report.json").unlink()
    other_run = shutil.copytree(good[0], tmp_path / "other-run")
    name1 = json.loads((other_run / "run.json").read_text())["scenarios"][0]
    doc = json.loads((other_run / name1 / "report.json").read_text())
    (other_run / name1 / "report.json").write_text(json.dumps({**doc, "run_id": "rehearsal-ffffffff"}))
    not_a_report = shutil.copytree(good[1], tmp_path / "not-a-report")
    (not_a_report / name / "report.json").write_text(json.dumps({"hello": "world"}))
    linked = shutil.copytree(good[1], tmp_path / "linked")
    shutil.rmtree(linked / name)
    (linked / name).symlink_to(good[1] / name)  # its copy would be whatever the link points at
    assert merge(*good, "--out", tmp_path / "merged").exit_code == 0
    out = tmp_path / "new-out"
    result = merge(*good, tmp_path / "absent", tmp_path / "empty", tmp_path / "file.txt", bad_json, escaping,
                   no_report, other_run, not_a_report, linked, tmp_path / "merged", "--out", out)
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "cannot merge (10 problem(s))" in text
    for expected in (f"{tmp_path / 'absent'}: does not exist", f"{tmp_path / 'empty'}: not a report directory: no "
                     "run.json", f"{tmp_path / 'file.txt'}: not a directory", f"{bad_json / 'run.json'}: not "
                     "readable JSON", f"{escaping / 'run.json'}: run.json's scenarios is not a list of scenario "
                     "names", f"{no_report / name / 'report.json'}: run.json lists {name} but its report.json "
                     "cannot be read", f"{other_run / name1 / 'report.json'}: holds scenario {name1} of run "
                     "rehearsal-ffffffff", f"{not_a_report / name / 'report.json'}: not a report.json: scenario: "
                     "Field required", f"{tmp_path / 'merged'}: a merged report set", f"{linked / name}: a "
                     "symbolic link, not the run's scenario directory"):
        assert expected in text, expected
    assert text.count("Fix: ") == 10
    assert not out.exists()


def test_out_must_be_new_empty_or_an_earlier_merge(tmp_path: Path) -> None:
    dirs = write_shards(tmp_path, 2, journals())
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    result = merge(*dirs, "--out", busy)
    assert result.exit_code == 2 and "holds notes.txt, and it is not the --out of an earlier merge" in \
        " ".join(result.output.split())
    assert (busy / "notes.txt").read_text() == "mine" and len(list(busy.iterdir())) == 1
    result = merge(*dirs, "--out", dirs[0])
    assert result.exit_code == 2 and "is also an input directory" in result.output
    earlier = tmp_path / "earlier"
    assert merge(dirs[0], "--out", earlier).exit_code == 1  # shard 2/2 missing: merged, and said
    theirs = next(n for n in journals() if not (earlier / n).exists())
    (earlier / theirs).mkdir()
    (earlier / theirs / "keep.txt").write_text("mine")
    result = merge(*dirs, "--out", earlier)
    assert result.exit_code == 2 and f"holds {earlier / theirs}, which no earlier merge wrote" in \
        " ".join(result.output.split())
    assert (earlier / theirs / "keep.txt").read_text() == "mine"


def test_merging_again_into_an_earlier_merge_replaces_it_and_keeps_its_history(tmp_path: Path) -> None:
    js = journals()
    out = tmp_path / "m"
    old = write_shards(tmp_path / "night1", 2, js, prefix="rehearsal-1")
    assert merge(*old, "--out", out).exit_code == 0
    fewer = {n: j for n, j in js.items() if n != "promotion"}  # the suite lost a scenario since
    new = write_shards(tmp_path / "night2", 2, {n: j.model_copy(update={"started_at": "2030-01-01T00:00:00+00:00"})
                                                for n, j in fewer.items()}, prefix="rehearsal-2")
    result = merge(*new, "--out", out)
    assert result.exit_code == 0, result.output
    assert set(cases(out / "junit.xml")) == set(fewer)
    assert not (out / "promotion").exists()  # the earlier merge's copy, not this merge's
    keys = history_keys(out / "history.jsonl")
    assert len(keys) == len(set(keys)) == len(js) + len(fewer)  # both nights, each once


def test_a_history_alone_in_out_is_merged_in(tmp_path: Path) -> None:
    dirs = write_shards(tmp_path, 2, journals())
    out = tmp_path / "m"
    out.mkdir()
    older = write_run(tmp_path / "older", "rehearsal-00000000", [journals("rr2")["bad-image"]])
    shutil.copy(older / "history.jsonl", out / "history.jsonl")
    assert merge(*dirs, "--out", out).exit_code == 0
    assert ("rehearsal-00000000", "bad-image") in history_keys(out / "history.jsonl")
    assert len(cases(out / "junit.xml")) == 4
