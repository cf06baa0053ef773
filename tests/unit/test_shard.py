"""`--shard K/N` (harness/shard.py, harness/options.py): the partition, its inputs, and how `rehearse run`
and pytest use it. Nothing here starts a session: `open_session` is replaced by a recorder."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import xmlschema
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from harness import session
from harness.cli import cli
from harness.options import OptionError, Shard, session_options
from harness.report import write_run_reports
from harness.report.history import HISTORY_FILE, append_history
from harness.scenario import load_all
from harness.shard import last_durations, partition, plan, weights

REPO = Path(__file__).resolve().parents[2]
XSD = REPO / "tests" / "data" / "junit.xsd"
pytest_plugins = ["pytester"]

names_st = st.lists(st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True), min_size=0, max_size=40,
                    unique=True)


def _loads(parts: tuple[tuple[str, ...], ...], weight: dict[str, float]) -> list[float]:
    return [sum(weight[n] for n in p) for p in parts]


# ── K/N ─────────────────────────────────────────────────────────────────────
@pytest.mark.parametrize(("text", "shard"), [("1/1", Shard(1, 1)), ("2/3", Shard(2, 3)), (" 3/3 ", Shard(3, 3)),
                                             ("1000/1000", Shard(1000, 1000))])
def test_a_shard_is_k_of_n(text: str, shard: Shard) -> None:
    assert Shard.parse(text) == shard and str(shard) == f"{shard.index}/{shard.count}"
    assert session_options({"shard": text}).shard == shard


@pytest.mark.parametrize(("text", "why"), [
    ("0/3", "K = 0"), ("4/3", "K = 4"), ("1/0", "N = 0"), ("0/0", "N = 0"), ("1/1001", "N = 1001"),
    ("x", "not K/N"), ("1/2/3", "not K/N"), ("", "not K/N"), ("-1/2", "not K/N"), ("1.5/2", "not K/N"),
    ("/3", "not K/N"),
])
def test_a_bad_shard_says_what_and_how_to_fix_it(text: str, why: str) -> None:
    with pytest.raises(OptionError) as err:
        session_options({"shard": text})
    assert f"--shard {text!r}" in str(err.value) and why in str(err.value)
    assert "Fix: --shard K/N with 1 <= K <= N, e.g. --shard 1/3" in str(err.value)


def test_rehearse_run_refuses_a_bad_shard_with_exit_2_before_anything_starts(opened: list[Any], tmp_path: Path,
                                                                            kit: Any) -> None:
    d = kit.write_scenario(tmp_path, "one")
    result = CliRunner().invoke(cli, ["run", str(d), "--shard", "3/2", "--report-dir", str(tmp_path / "r")])
    assert result.exit_code == 2, result.output
    assert "--shard '3/2' has K = 3" in result.output and "Fix: --shard K/N" in result.output
    assert opened == [] and not (tmp_path / "r").exists()


def test_pytest_refuses_a_bad_shard_as_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--shard", "0/2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--shard '0/2' has K = 0*Fix: --shard K/N*"])


# ── the partition ────────────────────────────────────────────────────────────
@settings(max_examples=150, deadline=None)
@given(names=names_st, count=st.integers(1, 7), seed=st.integers(0, 2**16),
       known=st.lists(st.floats(0.5, 500, allow_nan=False), max_size=40))
def test_every_scenario_lands_in_exactly_one_shard_and_every_shard_computes_the_same(
        names: list[str], count: int, seed: int, known: list[float]) -> None:
    durations = dict(zip(names, known, strict=False))
    exclusive = set(names[::3])
    parts = partition(names, count, weights(names, durations), exclusive)
    assert len(parts) == count
    assert sorted(n for p in parts for n in p) == sorted(names)  # each once
    shuffled = list(names)
    random.Random(seed).shuffle(shuffled)
    assert partition(shuffled, count, weights(shuffled, dict(reversed(list(durations.items())))), exclusive) == parts


@settings(max_examples=150, deadline=None)
@given(names=names_st.filter(bool), count=st.integers(1, 6),
       known=st.lists(st.floats(1, 600, allow_nan=False), min_size=1, max_size=40))
def test_with_a_history_the_shards_differ_by_at_most_the_longest_scenario(names: list[str], count: int,
                                                                          known: list[float]) -> None:
    """Greedy longest-first onto the least loaded shard: the longest and shortest shard differ by at most one
    scenario's length."""
    weight = weights(names, dict(zip(names, known, strict=False)))
    loads = _loads(partition(names, count, weight), weight)
    assert max(loads) - min(loads) <= max(weight.values()) + 1e-9


def test_the_history_decides_the_split_not_the_names() -> None:
    names = ["a", "b", "c", "d"]
    assert partition(names, 2, weights(names, {})) == (("a", "c"), ("b", "d"))  # no history: round-robin by name
    weight = weights(names, {"a": 120.0, "b": 20.0, "c": 20.0, "d": 20.0})
    parts = partition(names, 2, weight)
    assert parts == (("a",), ("b", "c", "d")) and _loads(parts, weight) == [120.0, 60.0]


def test_a_scenario_without_history_weighs_the_median_of_the_known() -> None:
    assert weights(["a", "b", "c", "new"], {"a": 10.0, "b": 30.0, "c": 80.0, "gone": 999.0}) == \
        {"a": 10.0, "b": 30.0, "c": 80.0, "new": 30.0}
    assert weights(["x", "y"], {}) == {"x": 1.0, "y": 1.0}


def test_fault_scenarios_that_run_alone_are_spread_over_the_shards() -> None:
    """Plain longest-first would put both short fault scenarios beside the long one's empty neighbour."""
    weight = {"long": 100.0, "fault-a": 10.0, "fault-b": 10.0}
    assert partition(list(weight), 2, weight) == (("long",), ("fault-a", "fault-b"))
    assert partition(list(weight), 2, weight, exclusive={"fault-a", "fault-b"}) == (("fault-a", "long"), ("fault-b",))


def test_the_demo_suite_splits_in_three_with_its_fault_scenarios_apart(tmp_path: Path) -> None:
    scenarios = load_all([REPO / "scenarios"])
    plans = [plan(scenarios, Shard(k, 3), tmp_path / HISTORY_FILE) for k in (1, 2, 3)]
    assert len({p.partition for p in plans}) == 1 and len({p.fingerprint for p in plans}) == 1
    assert sorted(n for p in plans for n in p.scenarios) == sorted(s.name for s in scenarios)
    assert max(len(p.scenarios) for p in plans) - min(len(p.scenarios) for p in plans) <= 1
    faults = [k for k, p in enumerate(plans) for n in p.scenarios if n.startswith("fault-pause")]
    assert len(faults) == 2 and len(set(faults)) == 2  # pause_postgres and pause_control_plane: two shards


def _journal_data(name: str, started: str, seconds: float) -> dict[str, Any]:
    return {"scenario": name, "started_at": started, "verdict": "READY", "expect": "READY", "objectives": {},
            "phases": [{"name": "preflight", "started_at": started, "duration_s": seconds}]}


def test_last_durations_come_from_the_history_the_runs_write(tmp_path: Path) -> None:
    from harness.report.history import history_entries  # noqa: PLC0415
    from harness.report.common import as_redact  # noqa: PLC0415

    path = tmp_path / HISTORY_FILE
    assert last_durations(path) == {}
    append_history(path, history_entries([_journal_data("a", "2026-01-01T00:00:00+00:00", 40.0),
                                          _journal_data("b", "2026-01-01T00:00:00+00:00", 5.0)],
                                         run_id="r1", host="h"), as_redact(None))
    with path.open("a") as fh:  # an older line without duration_s, and a malformed line
        fh.write(json.dumps({"timestamp": "2025-01-01T00:00:00+00:00", "run_id": "r0", "scenario": "c",
                             "verdict": "READY"}) + "\n{not json\n")
    append_history(path, history_entries([_journal_data("a", "2026-02-01T00:00:00+00:00", 12.5)],
                                         run_id="r2", host="h"), as_redact(None))
    assert last_durations(path) == {"a": 12.5, "b": 5.0}  # the latest run's length wins


def test_plan_describes_itself_and_selects_in_the_given_order(tmp_path: Path, kit: Any) -> None:
    for n in ("zeta", "alpha", "mid"):
        kit.write_scenario(tmp_path / "s", n)
    scenarios = load_all([tmp_path / "s"])
    history = tmp_path / HISTORY_FILE
    first = plan(scenarios, Shard(1, 2), history)
    assert first.scenarios == ("alpha", "zeta") and first.known == 0
    assert [s.name for s in first.select(list(reversed(scenarios)), lambda s: s.name)] == ["zeta", "alpha"]
    assert first.describe().startswith("shard 1/2: 2 of 3 scenario(s) (no durations in")
    assert first.fingerprint in first.describe()
    assert plan(scenarios, Shard(3, 5), history).scenarios == ("zeta",)
    assert plan(scenarios, Shard(4, 5), history).scenarios == ()


# ── `rehearse run --shard` ───────────────────────────────────────────────────
@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Replace open_session: a session that records what it is asked to rehearse, and its shard."""
    seen: list[Any] = []

    @contextmanager
    def fake(opts: Any) -> Iterator[Any]:
        fake_session = SimpleNamespace(results=[], run_reports=None, shard=None, rehearsed=[])
        fake_session.rehearse_all = lambda scenarios, jobs: fake_session.rehearsed.extend(
            (s.name, jobs) for s in scenarios)
        seen.append(fake_session)
        yield fake_session

    monkeypatch.setattr(session, "open_session", fake)
    return seen


def test_rehearse_run_rehearses_only_its_shard_side_by_side(opened: list[Any], tmp_path: Path, kit: Any) -> None:
    for n in ("a1", "b2", "c3", "d4", "e5"):
        kit.write_scenario(tmp_path / "s", n)
    base = ["run", str(tmp_path / "s"), "--report-dir", str(tmp_path / "r"), "-j", "2"]
    for k in (1, 2):
        result = CliRunner().invoke(cli, [*base, "--shard", f"{k}/2"])
        assert result.exit_code == 0, result.output
        assert f"shard {k}/2: " in result.output
    (one, two) = opened
    assert one.rehearsed == [("a1", 2), ("c3", 2), ("e5", 2)] and two.rehearsed == [("b2", 2), ("d4", 2)]
    assert one.shard.shard == "1/2" and one.shard.partition == two.shard.partition == (("a1", "c3", "e5"),
                                                                                        ("b2", "d4"))


def test_an_empty_shard_exits_0_and_writes_an_empty_report_set(opened: list[Any], tmp_path: Path, kit: Any) -> None:
    kit.write_scenario(tmp_path / "s", "only")
    report_dir = tmp_path / "r"
    result = CliRunner().invoke(cli, ["run", str(tmp_path / "s"), "--shard", "2/2", "--report-dir", str(report_dir)])
    assert result.exit_code == 0, result.output
    assert "shard 2/2 has no scenario: 1 scenario(s) over 2 shards" in result.output
    assert opened == []  # no cluster, no Postgres for nothing to rehearse
    assert sorted(p.name for p in report_dir.iterdir()) == ["history.jsonl", "junit.xml", "run.json", "summary.md"]
    run = json.loads((report_dir / "run.json").read_text())
    assert (run["shard"], run["scenarios"], run["partition"]) == ("2/2", [], [["only"], []])
    assert (report_dir / "history.jsonl").read_text() == ""
    xmlschema.XMLSchema(str(XSD)).validate(str(report_dir / "junit.xml"))
    assert 'tests="0"' in (report_dir / "junit.xml").read_text()
    assert '<property name="shard" value="2/2" />' in (report_dir / "junit.xml").read_text()
    summary = (report_dir / "summary.md").read_text()
    assert "0/0 ready" in summary and "shard 2/2" in summary and "has no scenario" in summary


def test_a_shard_run_records_its_shard_in_every_report(tmp_path: Path) -> None:
    from harness.journal import Journal  # noqa: PLC0415
    from harness.report.run_file import ShardRecord  # noqa: PLC0415

    journal = Journal(scenario="a1", expect="READY", verdict="READY", run_id="rr-1234abcd", shard="1/2")
    record = ShardRecord("1/2", (("a1",), ("b2",)), "0123456789ab")
    written = write_run_reports([journal], tmp_path, run_id="rr-1234abcd", host="h", shard=record)
    junit = written.junit.read_text()
    assert '<property name="shard" value="1/2" />' in junit and '<property name="partition" value="0123456789ab" />' \
        in junit
    assert junit.count('<property name="run_id" value="rr-1234abcd" />') == 2  # the suite's and the testcase's
    assert "· shard 1/2" in written.summary.read_text()
    assert json.loads(written.run.read_text())["partition_fingerprint"] == "0123456789ab"


# ── pytest --shard ───────────────────────────────────────────────────────────
FAKE_SESSION = '''
from contextlib import contextmanager
from pathlib import Path
import harness.session
from harness.journal import Journal


class FakeSession:
    shard = None

    def rehearse(self, scenario):
        with (Path(__file__).parent / "rehearsed.log").open("a") as f:
            f.write(f"{scenario.name} {self.shard.shard}\\n")
        return Journal(scenario=scenario.name, expect=scenario.expect.value, verdict=scenario.expect.value)


@contextmanager
def fake_open_session(options):
    yield FakeSession()


harness.session.open_session = fake_open_session
'''


@pytest.fixture
def staged(pytester: pytest.Pytester, kit: Any, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # subprocesses load this checkout's plugin
    pytester.makeconftest(FAKE_SESSION)
    for n in ("a1", "b2", "c3"):
        kit.write_scenario(pytester.path, n, kit.minimal_doc())
    return pytester


def test_pytest_shard_keeps_its_scenarios_and_deselects_the_others(staged: pytest.Pytester) -> None:
    staged.makepyfile(test_plain="def test_plain():\n    pass\n")
    result = staged.runpytest_subprocess("-p", "no:cacheprovider", "--shard", "2/2", "--report-dir", "r")
    result.assert_outcomes(passed=2, deselected=2)  # b2 and the ordinary test
    result.stdout.fnmatch_lines(["shard 2/2: 1 of 3 scenario(s)*"])
    assert (staged.path / "rehearsed.log").read_text() == "b2 2/2\n"


def test_pytest_with_an_empty_shard_exits_0_with_an_empty_report_set(staged: pytest.Pytester) -> None:
    result = staged.runpytest_subprocess("-p", "no:cacheprovider", "--shard", "4/4", "--report-dir", "r")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*shard 4/4 has no scenario: 3 scenario(s) over 4 shards*"])
    run = json.loads((staged.path / "r" / "run.json").read_text())
    assert (run["shard"], run["scenarios"]) == ("4/4", [])
    assert not (staged.path / "rehearsed.log").exists()
