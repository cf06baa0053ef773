"""The ladder's logic (harness/ladder/): what it compares, when it stops, what it says, and how.

`climb` runs here against a fake database whose readings are built from the snapshot's own models
(SchemaFingerprint objects, and version tables read by `migration_table` with each tool's real
columns), so the comparison under test is the real one (diff_schema, diff_migrations). No container,
no Postgres: tests/e2e/test_ladder_e2e.py runs the ladder for real.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from rich.console import Console

from harness.cli import cli
from harness.journal import Difference
from harness.ladder import frameworks, ladder_json, ladder_table, verdict_lines
from harness.ladder import run as ladder_run
from harness.ladder.climb import (
    AfterUp,
    Comparison,
    Fingerprint,
    LadderResult,
    LadderStep,
    Outcome,
    after_up,
    applied_between,
    climb,
    compare,
    migration_label,
    schema_key,
)
from harness.redact import Redactor
from harness.scenario import ScenarioError, load_scenario
from harness.snapshot.database import migration_table
from harness.snapshot.db_models import ColumnInfo, SchemaFingerprint, TableInfo
from harness.snapshot.migration_tools import SHAPES

REPO = Path(__file__).resolve().parents[2]


# ── a fake database: tables of columns, and one tool's version table ────────
def _table(name: str) -> TableInfo:
    return TableInfo(name=name, kind="table", persistence="permanent")


def _schema(tables: dict[str, list[str]]) -> SchemaFingerprint:
    columns = [ColumnInfo(table=t, name=c, position=i, type="integer")
               for t, cols in tables.items() for i, c in enumerate(cols, 1)]
    return SchemaFingerprint(schemas=("public",), all_schemas=True, tables=tuple(_table(t) for t in tables),
                             columns=tuple(columns))


@dataclass
class Migration:
    name: str
    adds: tuple[str, str]            # (table, column) the up adds
    down_undoes: bool = True         # False: a no-op down (the version moves, the column stays)
    down_moves_version: bool = True  # False: a down that does nothing at all


# The version table of each tool as the tool creates it: its columns, and its rows for applied migrations.
TOOLS: dict[str, tuple[str, list[str]]] = {
    "golang-migrate": ("schema_migrations", ["version", "dirty"]),
    "node-pg-migrate": ("pgmigrations", ["id", "name", "run_on"]),
    "alembic": ("alembic_version", ["version_num"]),
}


@dataclass
class FakeDb:
    """Commands `up`, `down`; a tool's behaviour at the end of its migrations; readings."""

    migrations: list[Migration]
    tool: str = "golang-migrate"
    applied: list[str] = field(default_factory=list)
    columns: dict[str, list[str]] = field(default_factory=lambda: {"t": []})  # t exists before any migration
    version_table: bool = False
    up_applies: int = 1                      # 2: an `up` instead of an `up 1`
    fail_up_at: int | None = None            # the up of this migration (1-based) fails half-way
    nothing_left: Outcome = field(default_factory=lambda: Outcome(0, "no change"))
    commands: list[str] = field(default_factory=list)

    def run(self, command: str) -> Outcome:
        self.commands.append(command)
        self.version_table = True  # every tool creates its table on its first run
        return self._up() if command == "up" else self._down()

    def _up(self) -> Outcome:
        if len(self.applied) == len(self.migrations):
            return self.nothing_left
        for _ in range(self.up_applies):
            if len(self.applied) == len(self.migrations):
                break
            m = self.migrations[len(self.applied)]
            if self.fail_up_at == len(self.applied) + 1:
                self.columns.setdefault(m.adds[0], []).append(m.adds[1])  # half-way: no record of it
                return Outcome(1, f"error: migration {m.name} failed: relation already exists")
            self.columns.setdefault(m.adds[0], []).append(m.adds[1])
            self.applied.append(m.name)
        return Outcome(0, "applied")

    def _down(self) -> Outcome:
        m = next(x for x in self.migrations if x.name == self.applied[-1])
        if m.down_undoes:
            self.columns[m.adds[0]].remove(m.adds[1])
        if m.down_moves_version:
            self.applied.pop()
        return Outcome(0, "reverted")

    def read(self) -> Fingerprint:
        tables = {t: list(c) for t, c in self.columns.items()}
        versions = ()
        if self.version_table:
            name, cols = TOOLS[self.tool]
            tables[name] = cols
            versions = (migration_table(name, cols, self._rows(cols)),)
        return Fingerprint(_schema(tables), versions)

    def _rows(self, cols: list[str]) -> list[tuple[str | None, ...]]:
        if self.tool == "node-pg-migrate":
            return [(str(i), n, f"2024-01-01 00:00:0{i}") for i, n in enumerate(self.applied, 1)]
        if not self.applied:
            return []
        return [(self.applied[-1], "false")] if self.tool == "golang-migrate" else [(self.applied[-1],)]


def _migrations(n: int, **special: dict[str, Any]) -> list[Migration]:
    """n migrations named 1..n, each adding one column to table t; special={"2": {...}} changes one."""
    return [Migration(str(i), ("t", f"c{i}"), **special.get(str(i), {})) for i in range(1, n + 1)]


def _climb(db: FakeDb) -> tuple[LadderResult, FakeDb]:
    climbed = climb(db.run, db.read, "up", "down")
    return LadderResult(scenario="s", runs_in="job", steps=climbed.steps, ended=climbed.ended,
                        problem=climbed.problem), db


# ── climb ────────────────────────────────────────────────────────────────────
def test_every_migration_round_trips_and_the_ladder_ends_when_nothing_is_left() -> None:
    result, db = _climb(FakeDb(_migrations(3)))
    assert [s.migration for s in result.steps] == ["version 1 (golang-migrate)", "version 2 (golang-migrate)",
                                                   "version 3 (golang-migrate)"]
    assert all(s.round_trips for s in result.steps) and result.exit_code == 0
    assert result.ended == "no migration left after 3"
    # fingerprint, up, down, up again per migration, then the up that found nothing
    assert db.commands == ["up", "down", "up"] * 3 + ["up"]


def test_the_first_migration_s_down_may_leave_the_tool_s_own_empty_table() -> None:
    """golang-migrate's first up creates schema_migrations; its down empties it and leaves it."""
    result, _ = _climb(FakeDb(_migrations(1)))
    assert result.steps[0].schema_restored and result.steps[0].version_restored


def test_a_no_op_down_is_named_with_what_it_leaves() -> None:
    result, db = _climb(FakeDb(_migrations(4, **{"3": {"down_undoes": False}})))
    failed = result.failed_step
    assert failed is not None and failed.migration == "version 3 (golang-migrate)"
    assert (failed.down_ok, failed.schema_restored, failed.version_restored, failed.up_again_ok) \
        == (True, False, True, None)
    assert [d.message for d in failed.leftovers] == ["column t.c3 is still present (added after baseline)"]
    assert result.exit_code == 1 and len(result.steps) == 3
    assert db.commands[-1] == "down"  # stopped there: no up again, no later migration


def test_a_down_that_leaves_the_version_table_is_named_too() -> None:
    result, _ = _climb(FakeDb(_migrations(2, **{"2": {"down_moves_version": False}})))
    failed = result.failed_step
    assert failed is not None and (failed.schema_restored, failed.version_restored) == (True, False)
    assert any("schema_migrations" in d.message and d.area == "migrations" for d in failed.leftovers)


def test_a_history_tool_is_named_in_its_own_terms() -> None:
    migrations = [Migration("1700000000000_init", ("t", "a")),
                  Migration("1700000000001_add-discount", ("orders", "discount_cents"), down_undoes=False)]
    result, _ = _climb(FakeDb(migrations, tool="node-pg-migrate"))
    assert result.failed_step is not None
    assert result.failed_step.migration == "migration 1700000000001_add-discount (node-pg-migrate)"
    assert result.failed_step.version_restored is True  # the row went, the column stayed


def test_alembic_failing_with_nothing_left_ends_the_ladder() -> None:
    end = Outcome(1, "FAILED: Relative revision +1 didn't produce 1 migrations")
    result, _ = _climb(FakeDb(_migrations(2), tool="alembic", nothing_left=end))
    assert result.exit_code == 0 and result.steps[-1].migration == "revision 2 (alembic)"


def test_a_failing_up_that_changed_nothing_is_an_error_not_the_end() -> None:
    refused = Outcome(1, 'connection to server at "127.0.0.1" failed: Connection refused')
    result, _ = _climb(FakeDb(_migrations(2), nothing_left=refused))  # after the last migration
    assert result.exit_code == 1 and [s.round_trips for s in result.steps] == [True, True, False]
    assert result.steps[2].up_ok is False and "Connection refused" in (result.steps[2].error or "")
    db = FakeDb(_migrations(2))
    db.run = lambda command: refused  # type: ignore[method-assign]  # the very first up
    result, _ = _climb(db)
    assert result.exit_code == 1 and result.steps[0].up_ok is False and result.problem is None
    assert (result.steps[0].error or "").startswith("up_one failed (exit 1): connection to server")


def test_a_failing_up_after_some_migrations_is_reported_at_its_step() -> None:
    result, _ = _climb(FakeDb(_migrations(3), fail_up_at=2))
    assert [s.round_trips for s in result.steps] == [True, False]
    assert result.steps[1].up_ok is False and "relation already exists" in (result.steps[1].error or "")
    assert result.exit_code == 1


def test_an_up_one_that_applies_nothing_on_an_empty_database_is_bad_input() -> None:
    result, _ = _climb(FakeDb([]))
    assert result.steps == [] and result.exit_code == 2 and "nothing was checked" in (result.problem or "")


def test_an_up_one_that_applies_several_migrations_is_bad_input() -> None:
    result, _ = _climb(FakeDb(_migrations(3), tool="node-pg-migrate", up_applies=3))
    assert result.exit_code == 2 and result.steps[0].bad_input
    assert "applied 3 migrations (1, 2, 3)" in (result.steps[0].error or "")


def test_an_up_again_that_does_not_reach_the_first_up_s_state_fails_the_step() -> None:
    db = FakeDb(_migrations(2))
    ups = 0

    def run(command: str) -> Outcome:
        nonlocal ups
        ups += command == "up"
        out = db.run(command)
        if ups == 2:  # the up again of migration 1 adds an extra column
            db.columns["t"].append("surprise")
        return out

    climbed = climb(run, db.read, "up", "down")
    assert climbed.steps[0].up_again_ok is False
    assert "up_one again did not reach the state of the first up" in (climbed.steps[0].error or "")


def test_a_ladder_that_never_ends_is_stopped() -> None:
    db = FakeDb(_migrations(5))
    climbed = climb(db.run, db.read, "up", "down", max_steps=3)
    assert len(climbed.steps) == 3 and "after 3 steps" in (climbed.problem or "")


# ── the stop rule and the comparison ─────────────────────────────────────────
SAME = Comparison((), ())
MOVED = Comparison((), (Difference(area="migrations", object="x", message="moved"),))


@pytest.mark.parametrize(("outcome", "change", "decision"), [
    (Outcome(0, "1/u add_nickname"), MOVED, AfterUp.APPLIED),
    (Outcome(0, "no change"), SAME, AfterUp.NOTHING_LEFT),           # golang-migrate, the demo's migrate
    (Outcome(0, ""), SAME, AfterUp.NOTHING_LEFT),                    # silent tools (rails db:forward)
    (Outcome(1, "Relative revision +1 didn't produce 1 migrations"), SAME, AfterUp.NOTHING_LEFT),  # alembic
    (Outcome(1, "goose run: no next version found"), SAME, AfterUp.NOTHING_LEFT),
    (Outcome(1, "error: file does not exist\n"), SAME, AfterUp.NOTHING_LEFT),  # golang-migrate `up 1` at the end
    (Outcome(1, "migrate up: cannot apply 1 migration(s): only 0 pending (database at version 2)"), SAME,
     AfterUp.NOTHING_LEFT),  # the demo's migrate
    (Outcome(1, "migrate up: cannot apply 2 migration(s): only 1 pending"), SAME, AfterUp.FAILED),
    (Outcome(1, "error: no migration found for version 3: read down for version 3 .: file does not exist"), SAME,
     AfterUp.FAILED),  # golang-migrate on a database at a version its directory does not have
    (Outcome(1, "password authentication failed"), SAME, AfterUp.FAILED),  # a real error changes nothing too
    (Outcome(1, "no change"), MOVED, AfterUp.FAILED),                # it failed AND moved the state
    (Outcome(1, "Dirty database version 3. Fix and force version."), SAME, AfterUp.FAILED),
    (Outcome(None, "", timed_out=True), SAME, AfterUp.FAILED),
])
def test_the_stop_rule(outcome: Outcome, change: Comparison, decision: AfterUp) -> None:
    assert after_up(outcome, change) is decision


def test_a_new_version_table_that_records_a_migration_is_a_difference() -> None:
    empty = Fingerprint(_schema({}), ())
    table = migration_table("schema_migrations", ["version", "dirty"], [("1", "false")])
    after = Fingerprint(_schema({"schema_migrations": ["version", "dirty"]}), (table,))
    assert not compare(empty, after).same
    cleared = Fingerprint(after.schema, (migration_table("schema_migrations", ["version", "dirty"], []),))
    assert compare(empty, cleared).same  # the tool's own table, empty: not a leftover
    other = Fingerprint(_schema({"schema_migrations": ["version", "dirty"], "audit": ["id"]}), cleared.versions)
    assert [d.object for d in compare(empty, other).schema] == ["table audit"]  # anything else still is


@pytest.mark.parametrize(("table", "key"), [("pgmigrations", "pgmigrations"), ("SequelizeMeta", '"SequelizeMeta"'),
                                            ("sqitch.changes", "sqitch.changes")])
def test_version_tables_are_found_in_the_schema_by_their_quoted_names(table: str, key: str) -> None:
    assert schema_key(table) == key


def test_alembic_s_revision_is_its_step_s_name() -> None:
    before = Fingerprint(_schema({}), (migration_table("alembic_version", ["version_num"], [("3f1c2a9d7b10",)]),))
    after = Fingerprint(_schema({}), (migration_table("alembic_version", ["version_num"], [("8e4b7c1d2a65",)]),))
    names, tool = applied_between(before, after)
    assert migration_label(names, tool, 2) == "revision 8e4b7c1d2a65 (alembic)"
    assert migration_label([], None, 4) == "step 4 (no migration version table moved)"


# ── output ───────────────────────────────────────────────────────────────────
def _failing_result() -> LadderResult:
    result, _ = _climb(FakeDb(_migrations(3, **{"2": {"down_undoes": False}})))
    return result


def _rendered(table: Any) -> str:
    console = Console(record=True, width=200)
    console.print(table)
    return console.export_text()


def test_the_table_has_a_row_per_step_and_says_which_part_failed() -> None:
    text = _rendered(ladder_table(_failing_result()))
    assert "down restores schema" in text and "down restores version table" in text
    rows = [line for line in text.splitlines() if "version " in line and "(golang-migrate)" in line]
    assert len(rows) == 2
    assert re.search(r"version 1 \(golang-migrate\)\s*│\s*yes\s*│\s*yes\s*│\s*yes\s*│\s*yes", rows[0])
    assert re.search(r"version 2 \(golang-migrate\)\s*│\s*yes\s*│\s*NO\s*│\s*yes\s*│\s*-", rows[1])


def test_the_verdict_names_the_migration_and_its_leftovers() -> None:
    lines = verdict_lines(_failing_result())
    assert lines[0] == "version 2 (golang-migrate) does not round-trip"
    assert "  - column t.c2 is still present (added after baseline)" in lines
    assert verdict_lines(_climb(FakeDb(_migrations(2)))[0])[0].startswith("all 2 migration(s) round-trip")


def test_a_failed_down_restores_nothing_in_the_table() -> None:
    step = LadderStep(index=1, migration="version 1", up_ok=True, down_ok=False, schema_restored=True,
                      version_restored=True, error="down failed (exit 1): boom")
    result = LadderResult(scenario="s", runs_in="host", steps=[step])
    assert "NO" in _rendered(ladder_table(result)) and result.exit_code == 1


def test_json_output_carries_the_verdict() -> None:
    doc = json.loads(ladder_json(_failing_result()))
    assert (doc["exit_code"], doc["failed_migration"]) == (1, "version 2 (golang-migrate)")
    assert doc["steps"][1]["leftovers"][0]["message"] == "column t.c2 is still present (added after baseline)"
    assert LadderResult.model_validate({k: v for k, v in doc.items() if k not in ("exit_code", "failed_migration")})


def test_command_output_is_redacted_before_it_is_cut() -> None:
    secret = "hunter2-s3cret"
    text = f"connecting to postgresql://rr_x:{secret}@127.0.0.1:5432/rr_x\n" + "x" * 10
    outcome = ladder_run._outcome(1, text, Redactor([secret]))
    assert secret not in outcome.output and "***" in outcome.output
    long = "y" * ladder_run.OUTPUT_KEPT + f" {secret}"
    assert secret[-6:] not in ladder_run._outcome(1, long, Redactor([secret])).output


def test_a_host_command_runs_in_the_scenario_directory_with_its_exit_code_and_no_secret(tmp_path: Path,
                                                                                       kit: Any) -> None:
    scenario = load_scenario(kit.write_scenario(tmp_path, "host", kit.minimal_doc()))
    secret = "pw-0f3c9a77e1"
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": f"postgresql://rr_host:{secret}@127.0.0.1:5432/rr_host"}
    shell = ladder_run.HostShell(env, scenario, Redactor([secret]))
    outcome = shell.run('pwd; echo "$DATABASE_URL"; exit 3')
    assert (outcome.exit_code, outcome.timed_out) == (3, False)
    assert outcome.output.splitlines() == [str(scenario.directory), "postgresql://rr_host:***@127.0.0.1:5432/rr_host"]
    assert shell.run("true").ok and not shell.run("exit 0").ok  # ending the shell is no success


# ── the frameworks table ─────────────────────────────────────────────────────
def test_every_tool_of_the_version_tables_has_its_commands() -> None:
    assert {f.tool for f in frameworks.FRAMEWORKS} == {s.tool for s in SHAPES}


def test_the_docs_list_every_framework_s_commands() -> None:
    docs = (REPO / "docs" / "scenario-format.md").read_text(encoding="utf-8")
    section = docs[docs.index("### Migration frameworks"):]
    for f in frameworks.FRAMEWORKS:
        for command in (f.up, f.down, f.up_one):
            if command is not None:
                assert f"`{command}`" in section, f"{f.name}: `{command}` missing from the framework table"


@pytest.mark.parametrize(("up", "tool"), [
    ("alembic upgrade head", "alembic"), ("npm run migrate:up", "node-pg-migrate"),
    ('migrate -path /app/migrations -database "${DATABASE_URL}?sslmode=disable" up', "golang-migrate"),
    ("migrate up", "golang-migrate"), ("npx knex migrate:latest", "knex"), ("python manage.py migrate", "django"),
    ("flyway migrate", "flyway"), ("mix ecto.migrate", "ecto"), ("bin/rails db:migrate", "rails"),
    ("./run-my-migrations.sh", None),
])
def test_a_framework_is_recognised_in_migrations_up(up: str, tool: str | None) -> None:
    found = frameworks.recognised(up)
    assert (found.tool if found else None) == tool


@pytest.mark.parametrize(("up", "up_one"), [
    ("alembic upgrade head", "alembic upgrade +1"),
    ("npm run migrate:up", "npm run migrate:up -- 1"),                       # the demo's package.json
    ("node-pg-migrate up", "node-pg-migrate up 1"),
    ('migrate -path /app/migrations -database "${DATABASE_URL}?sslmode=disable" up',
     'migrate -path /app/migrations -database "${DATABASE_URL}?sslmode=disable" up 1'),
    ("migrate up", "migrate up 1"),                                           # the demo's own migrate
    ("npx knex migrate:latest", "npx knex migrate:up"),
    ("goose -dir db postgres \"$DATABASE_URL\" up", "goose -dir db postgres \"$DATABASE_URL\" up-by-one"),
    ("bin/rails db:migrate", "bin/rails db:forward"),
    ("flyway -configFiles=conf/flyway.conf migrate", "flyway -configFiles=conf/flyway.conf migrate -target=next"),
])
def test_the_fix_for_a_missing_up_one_derives_the_command_from_up(up: str, up_one: str) -> None:
    assert f"`{up_one}`" in frameworks.up_one_fix(up)


def test_the_fix_says_when_a_framework_cannot_be_laddered_and_gives_examples_otherwise() -> None:
    assert "Prisma cannot apply only the next migration" in frameworks.up_one_fix("npx prisma migrate deploy")
    assert "`npm run migrate:up -- 1`" in frameworks.up_one_fix("./migrate.sh")
    knex = frameworks.recognised("knex migrate:latest --env production")
    assert knex is not None and frameworks.derived_up_one(knex, "make migrate-knex") == "knex migrate:up"


# ── bad input ────────────────────────────────────────────────────────────────
@pytest.fixture
def images_built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ladder_run, "_image_missing", lambda image: False)


def test_a_scenario_without_up_one_is_refused_with_the_command_to_write(tmp_path: Path, kit: Any,
                                                                       images_built: None) -> None:
    d = kit.write_scenario(tmp_path, "alembic", kit.minimal_doc(migrations={"up": "alembic upgrade head"}))
    problems = ladder_run.input_problems(load_scenario(d))
    assert [p.field for p in problems] == ["migrations.up_one", "migrations.down"]
    assert "`alembic upgrade +1`" in problems[0].fix


def test_a_missing_image_is_named_before_anything_starts(tmp_path: Path, kit: Any,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ladder_run, "_image_missing", lambda image: image == "demo:v2")
    migrations = {"up": "migrate up", "down": "migrate down 1", "up_one": "migrate up 1"}
    d = kit.write_scenario(tmp_path, "gone", kit.minimal_doc(migrations=migrations))
    assert [p.field for p in ladder_run.input_problems(load_scenario(d))] == ["versions.bad.image"]
    on_host = kit.write_scenario(tmp_path, "host", kit.minimal_doc(migrations={**migrations, "runs_in": "host"}))
    assert ladder_run.input_problems(load_scenario(on_host)) == []  # the image is not used on the host


def test_up_one_without_down_is_a_scenario_error(tmp_path: Path, kit: Any) -> None:
    d = kit.write_scenario(tmp_path, "half", kit.minimal_doc(migrations={"up": "m up", "up_one": "m up 1"}))
    with pytest.raises(ScenarioError) as caught:
        load_scenario(d)
    assert [p.field for p in caught.value.problems] == ["migrations.up_one"]
    assert "migrations.down is not" in caught.value.problems[0].message


def test_rehearse_ladder_exits_2_naming_the_field_and_the_fix(tmp_path: Path, kit: Any, images_built: None) -> None:
    d = kit.write_scenario(tmp_path, "node", kit.minimal_doc(migrations={"up": "npm run migrate:up"}))
    res = CliRunner().invoke(cli, ["ladder", str(d)])
    assert res.exit_code == 2, res.output
    assert "migrations.up_one: missing" in res.output and "`npm run migrate:up -- 1`" in res.output


def test_rehearse_ladder_prints_the_table_or_json_and_exits_with_the_verdict(
        tmp_path: Path, kit: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ladder_run, "run_ladder", lambda scenario: _failing_result())
    migrations = {"up": "migrate up", "down": "migrate down 1", "up_one": "migrate up 1"}
    d = kit.write_scenario(tmp_path, "demo", kit.minimal_doc(migrations=migrations))
    res = CliRunner().invoke(cli, ["ladder", str(d)])
    assert res.exit_code == 1 and "version 2 (golang-migrate) does not round-trip" in res.output
    res = CliRunner().invoke(cli, ["ladder", "--json", str(d)])
    assert res.exit_code == 1 and json.loads(res.stdout)["failed_migration"] == "version 2 (golang-migrate)"
