"""The table of migration tools (harness/snapshot/migration_tools.py), tool by tool, on real shapes.

Each case is a version table as its tool leaves it: the columns of the tool's own DDL (cited in
SHAPES and in tests/e2e/test_migration_tables.py, which creates them on Postgres) and rows as the
tool writes them, timestamps and ids included. `migration_table` is what the snapshot does with the
text values read from the table; the expectations are what the tool itself would say is applied."""

from __future__ import annotations

import typing
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.journal import Difference, Journal
from harness.redact import Redactor
from harness.report.html import render_html
from harness.snapshot.database import migration_table
from harness.snapshot.db_models import DatabaseSnapshot, MigrationTable, MigrationTool, SchemaFingerprint
from harness.snapshot.diff_db import diff_migrations
from harness.snapshot.migration_tools import SHAPES, TERMS, UNRECOGNISED, considered, shape_for
from harness.snapshot.version_table import version_table_differences

Row = tuple[str | None, ...]


@dataclass(frozen=True)
class Case:
    """One tool's table: its rows in the order the tool wrote them (the last one is the migration the
    bad release applied), and what the tool derives from all of them."""

    tool: str
    table: str
    columns: tuple[str, ...]
    rows: tuple[Row, ...]
    version: str | None
    applied: tuple[str, ...]
    schema: str = "public"
    dirty: bool = False

    @property
    def last(self) -> str:
        return self.applied[-1]


T1, T2, T3 = "2024-01-01 10:00:00", "2024-01-02 10:00:00", "2024-01-03 10:00:00"

HISTORY: tuple[Case, ...] = (
    # knex names a migration <YYYYMMDDHHMMSS>_<name>.js (migrate:make); its currentVersion is that prefix,
    # reported as the migration it comes from
    Case("knex", "knex_migrations", ("id", "name", "batch", "migration_time"),
         (("1", "20240101090000_create_users.js", "1", T1), ("2", "20240102090000_add_email.js", "1", T1),
          ("3", "20240103090000_add_nickname.js", "2", T3)),
         "20240103090000_add_nickname.js",
         ("20240101090000_create_users.js", "20240102090000_add_email.js", "20240103090000_add_nickname.js")),
    Case("node-pg-migrate", "pgmigrations", ("id", "name", "run_on"),
         (("1", "1700000000000_create-users", T1), ("2", "1700000000001_add-nickname", T2)),
         "1700000000001_add-nickname", ("1700000000000_create-users", "1700000000001_add-nickname")),
    Case("db-migrate", "migrations", ("id", "name", "run_on"),
         (("1", "/20240101000000-create-users", T1), ("2", "/20240102000000-add-nickname", T2)),
         "/20240102000000-add-nickname", ("/20240101000000-create-users", "/20240102000000-add-nickname")),
    Case("typeorm", "migrations", ("id", "timestamp", "name"),
         (("1", "1700000000000", "CreateUsers1700000000000"), ("2", "1700000000001", "AddNickname1700000000001")),
         "AddNickname1700000000001", ("CreateUsers1700000000000", "AddNickname1700000000001")),
    Case("sequelize", "SequelizeMeta", ("name",),
         (("20240101000000-create-users.js",), ("20240102000000-add-nickname.js",)),
         "20240102000000-add-nickname.js", ("20240101000000-create-users.js", "20240102000000-add-nickname.js")),
    Case("prisma", "_prisma_migrations",
         ("id", "checksum", "finished_at", "migration_name", "logs", "rolled_back_at", "started_at",
          "applied_steps_count"),
         (("0b9f6f2c-1b1e-4a53-9a0e-4f1f2b7d8e01", "a" * 64, T1, "20240101000000_init", None, None, T1, "1"),
          ("5d0c1c0e-77aa-4f0b-8f43-9d1c6b1e2f02", "b" * 64, T2, "20240102000000_add_nickname", None, None, T2, "1")),
         "20240102000000_add_nickname", ("20240101000000_init", "20240102000000_add_nickname")),
    Case("drizzle", "__drizzle_migrations", ("id", "hash", "created_at"),
         (("1", "9f2c" * 16, "1700000000000"), ("2", "1e7d" * 16, "1700000100000")),
         "1700000100000", ("1700000000000", "1700000100000"), schema="drizzle"),
    Case("django", "django_migrations", ("id", "app", "name", "applied"),
         (("1", "contenttypes", "0001_initial", T1), ("2", "shop", "0001_initial", T1),
          ("3", "shop", "0002_user_nickname", T2)),
         "contenttypes.0001_initial, shop.0002_user_nickname",
         ("contenttypes.0001_initial", "shop.0001_initial", "shop.0002_user_nickname")),
    Case("liquibase", "databasechangelog",
         ("id", "author", "filename", "dateexecuted", "orderexecuted", "exectype", "md5sum", "description",
          "comments", "tag", "liquibase", "contexts", "labels", "deployment_id"),
         (("1", "ana", "db/changelog.xml", T1, "1", "EXECUTED", "9:1f2e", "createTable tableName=users", "", None,
           "4.25.0", None, None, "4000000001"),
          ("2", "ana", "db/changelog.xml", T2, "2", "EXECUTED", "9:3c4d", "addColumn tableName=users", "", None,
           "4.25.0", None, None, "4000000002")),
         "db/changelog.xml::2::ana", ("db/changelog.xml::1::ana", "db/changelog.xml::2::ana")),
    Case("sqitch", "changes",
         ("change_id", "script_hash", "change", "project", "note", "committed_at", "committer_name",
          "committer_email", "planned_at", "planner_name", "planner_email"),
         (("c1" * 20, "d1" * 20, "users", "shop", "Add users", T1, "Ana", "ana@example.com", T1, "Ana",
           "ana@example.com"),
          ("c2" * 20, "d2" * 20, "nickname", "shop", "Add nickname", T2, "Ana", "ana@example.com", T2, "Ana",
           "ana@example.com")),
         "nickname", ("users", "nickname"), schema="sqitch"),
    Case("sqitch", "tags",
         ("tag_id", "tag", "project", "change_id", "note", "committed_at", "committer_name", "committer_email",
          "planned_at", "planner_name", "planner_email"),
         (("e1" * 20, "@v1.0", "shop", "c1" * 20, "", T1, "Ana", "ana@example.com", T1, "Ana", "ana@example.com"),
          ("e2" * 20, "@v1.1", "shop", "c2" * 20, "", T2, "Ana", "ana@example.com", T2, "Ana", "ana@example.com")),
         "@v1.1", ("@v1.0", "@v1.1"), schema="sqitch"),
    Case("ecto", "schema_migrations", ("version", "inserted_at"),
         (("20240101000000", T1), ("20240102000000", T2)), "20240102000000", ("20240101000000", "20240102000000")),
    Case("rails", "schema_migrations", ("version",),
         (("20240101000000",), ("20240102000000",)), "20240102000000", ("20240101000000", "20240102000000")),
    Case("flyway", "flyway_schema_history",
         ("installed_rank", "version", "description", "type", "script", "checksum", "installed_by", "installed_on",
          "execution_time", "success"),
         (("1", "1", "init", "SQL", "V1__init.sql", "11", "app", T1, "12", "true"),
          ("2", "1.1", "nickname", "SQL", "V1.1__nickname.sql", "22", "app", T2, "7", "true")),
         "1.1", ("1", "1.1")),
    Case("goose", "goose_db_version", ("id", "version_id", "is_applied", "tstamp"),
         (("1", "0", "true", T1), ("2", "20240101000000", "true", T1), ("3", "20240102000000", "true", T2)),
         "20240102000000", ("0", "20240101000000", "20240102000000")),
)

POINTERS: tuple[Case, ...] = (
    Case("golang-migrate", "schema_migrations", ("version", "dirty"), (("20240102000000", "false"),),
         "20240102000000", ()),
    Case("alembic", "alembic_version", ("version_num",), (("ae1027a6acf",), ("3b2f9c1d0e4a",)),
         "3b2f9c1d0e4a, ae1027a6acf", ()),
)


def _read(case: Case, rows: tuple[Row, ...] | None = None) -> MigrationTable:
    return migration_table(case.table, case.columns, case.rows if rows is None else rows, schema=case.schema)


def _name(case: Case) -> str:
    return case.table if case.schema == "public" else f"{case.schema}.{case.table}"


@pytest.mark.parametrize("case", HISTORY + POINTERS, ids=lambda c: f"{c.tool}-{c.table}")
def test_each_tool_reads_its_table_as_the_tool_does(case: Case) -> None:
    table = _read(case)
    assert (table.tool, table.table, table.version, table.applied, table.dirty) == (
        case.tool, _name(case), case.version, case.applied, case.dirty)


# What each tool calls the version it derives (its own word: Alembic's revision, Liquibase's changeset; knex's
# currentVersion is a name's timestamp prefix, sqitch's tags table names a tag).
VERSION_WORD = {
    "knex_migrations": "migration", "pgmigrations": "migration", "migrations": "migration", "SequelizeMeta": "migration",
    "_prisma_migrations": "migration", "__drizzle_migrations": "migration", "django_migrations": "migration",
    "databasechangelog": "changeset", "changes": "change", "tags": "tag", "schema_migrations": "version",
    "flyway_schema_history": "version", "goose_db_version": "version", "alembic_version": "revision",
}


@pytest.mark.parametrize("case", HISTORY, ids=lambda c: f"{c.tool}-{c.table}")
def test_a_migration_left_applied_is_named_with_its_tool(case: Case) -> None:
    """The baseline without the bad release's row, the table after a rollback that did not remove it: the
    migration left recorded, then the version the tool reads now and the baseline's, both in its words."""
    baseline, after = _read(case, case.rows[:-1]), _read(case)
    word, table = VERSION_WORD[case.table], f"migration version table {_name(case)}"
    assert baseline.version not in (None, case.version)
    assert diff_migrations([baseline], [after]) == [
        Difference(area="migrations", object=table, message=f"{table} ({case.tool}): migration {case.last} is still "
                                                              f"recorded as applied (the baseline's is not)"),
        Difference(area="migrations", object=table, message=f"{table} ({case.tool}): at {word} {case.version}, "
                                                              f"expected {word} {baseline.version} (the baseline's)")]
    assert [d.message.split(": ", 1)[1] for d in diff_migrations([after], [baseline])] == [
        f"migration {case.last} is no longer recorded as applied (the baseline's is)",
        f"at {word} {baseline.version}, expected {word} {case.version} (the baseline's)"]


@pytest.mark.parametrize(("case", "rows", "message"), [
    (POINTERS[0], (("20240101000000", "false"),),
     "migration version table schema_migrations (golang-migrate): at version 20240102000000, expected version "
     "20240101000000 (the baseline's)"),
    (POINTERS[1], (("ae1027a6acf",),),
     "migration version table alembic_version (alembic): at revision 3b2f9c1d0e4a, ae1027a6acf, expected revision "
     "ae1027a6acf (the baseline's)"),
], ids=lambda v: v.tool if isinstance(v, Case) else "")
def test_a_pointer_names_its_version_and_the_baselines_in_the_tools_words(case: Case, rows: tuple[Row, ...],
                                                                         message: str) -> None:
    """A table that holds the current version only: one line, the version now and the one expected."""
    assert [d.message for d in diff_migrations([_read(case, rows)], [_read(case)])] == [message]


def test_every_tool_with_its_own_word_is_a_tool_of_the_table() -> None:
    assert set(TERMS) <= {s.tool for s in SHAPES}
    assert {s.table: s.version_term for s in SHAPES if s.version_term} == {"tags": "tag"}


def test_an_empty_version_table_says_no_version() -> None:
    pgm = next(c for c in HISTORY if c.tool == "node-pg-migrate")
    assert [d.message for d in diff_migrations([_read(pgm)], [_read(pgm, ())])][-1] == (
        "migration version table pgmigrations (node-pg-migrate): at no version, expected migration "
        "1700000000001_add-nickname (the baseline's)")


_WHEN = frozenset({"migration_time", "run_on", "applied", "dateexecuted", "orderexecuted", "deployment_id",
                   "installed_on", "installed_rank", "execution_time", "installed_by", "tstamp", "inserted_at",
                   "started_at", "committed_at", "committer_name", "committer_email", "liquibase", "logs", "id"})


def _reapplied(case: Case) -> tuple[Row, ...]:
    """The same migrations applied again later: every when / by whom / how long / insert-time id
    moved, nothing else. `id` moves only where it is a sequence the tool does not read back."""
    shape = shape_for(case.table, case.columns)
    assert shape is not None
    moved = {c for c in case.columns if c in _WHEN and c in shape.ignored}

    def later(col: str, value: str | None) -> str | None:
        if value is None or col not in moved:
            return value
        return str(int(value) + 100) if value.isdigit() else value.replace("2024", "2025")

    return tuple(tuple(later(c, v) for c, v in zip(case.columns, row)) for row in case.rows)


# Rails and Sequelize record nothing but the migration's name.
RECORDING_WHEN = tuple(c for c in HISTORY if (s := shape_for(c.table, c.columns)) is not None and s.ignored)


@pytest.mark.parametrize("case", RECORDING_WHEN, ids=lambda c: f"{c.tool}-{c.table}")
def test_when_by_whom_and_how_long_are_not_compared(case: Case) -> None:
    again = _reapplied(case)
    assert again != case.rows
    assert diff_migrations([_read(case)], [_read(case, again)]) == []


def test_the_shared_name_schema_migrations_is_told_apart_by_its_columns() -> None:
    tools = {cols: migration_table("schema_migrations", cols, ()).tool
             for cols in [("version", "dirty"), ("version", "inserted_at"), ("version",)]}
    assert tools == {("version", "dirty"): "golang-migrate", ("version", "inserted_at"): "ecto",
                     ("version",): "rails"}
    assert {migration_table("migrations", cols, ()).tool
            for cols in [("id", "name", "run_on"), ("id", "timestamp", "name")]} == {"db-migrate", "typeorm"}


def test_sequelize_with_its_timestamps_option() -> None:
    cols = ("name", "createdAt", "updatedAt")
    before = migration_table("SequelizeMeta", cols, (("20240101000000-create-users.js", T1, T1),))
    after = migration_table("SequelizeMeta", cols, (("20240101000000-create-users.js", T2, T3),))
    assert (before.tool, before.columns, before.version) == ("sequelize", ("name",), "20240101000000-create-users.js")
    assert diff_migrations([before], [after]) == []


def test_an_unknown_shape_under_a_known_name_is_kept_and_compared_as_data() -> None:
    cols = ("id", "migration", "batch")  # a tool the table does not know, under the name `migrations`
    before = migration_table("migrations", cols, (("1", "2014_10_12_000000_create_users_table", "1"),))
    after = migration_table("migrations", cols, (("1", "2014_10_12_000000_create_users_table", "1"),
                                                 ("2", "2024_01_02_000000_add_nickname", "2")))
    assert (after.tool, after.columns, after.version, after.applied) == (UNRECOGNISED, cols, None, ())
    assert len(after.rows) == 2
    assert [d.message for d in diff_migrations([before], [after])] == [
        "migration version table migrations (unrecognised): rows differ (1 added, 0 removed; no known tool has "
        "these columns, so the table is compared as data)"]


def _case(tool: str) -> Case:
    return next(c for c in HISTORY if c.tool == tool)


def test_what_the_tools_do_not_count() -> None:
    prisma = _case("prisma")
    failed = ("7e0c1c0e-77aa-4f0b-8f43-9d1c6b1e2f03", "c" * 64, None, "20240103000000_broken", "ERROR: boom",
              None, T3, "0")
    rolled_back = ("8e0c1c0e-77aa-4f0b-8f43-9d1c6b1e2f04", "d" * 64, None, "20240104000000_undone", None, T3, T3,
                   "0")
    table = _read(prisma, (*prisma.rows, failed, rolled_back))
    assert (table.applied, table.dirty) == (prisma.applied, True)
    assert _read(prisma, (*prisma.rows, rolled_back)).dirty is False

    flyway = _case("flyway")
    undo = ("3", "1.1", "nickname", "UNDO_SQL", "U1.1__nickname.sql", "33", "app", T3, "2", "true")
    repeatable = ("4", None, "views", "SQL", "R__views.sql", "44", "app", T3, "2", "true")
    table = _read(flyway, (*flyway.rows, undo, repeatable))
    assert (table.version, table.applied, table.dirty) == ("1", ("1",), False)
    deleted = ("3", "1.1", "nickname", "DELETE", "V1.1__nickname.sql", None, "app", T3, "0", "true")  # repair
    assert _read(flyway, (*flyway.rows, deleted)).applied == ("1",)

    goose = _case("goose")
    down = ("4", "20240102000000", "false", T3)  # older goose records a down as a row
    assert _read(goose, (*goose.rows, down)).version == "20240101000000"


def test_flyway_counts_a_failed_migration_as_current_and_refuses_to_migrate() -> None:
    """MigrationInfoServiceImpl.current() takes applied states, and MigrationState.FAILED is one."""
    flyway = _case("flyway")
    failed_v2 = ("3", "2", "broken", "SQL", "V2__broken.sql", "55", "app", T3, "2", "false")
    table = _read(flyway, (*flyway.rows, failed_v2))
    assert (table.version, table.applied, table.dirty) == ("2", ("1", "1.1", "2"), True)


def test_liquibase_counts_every_row_as_ran_in_date_then_order() -> None:
    """ShouldRunChangeSetFilter skips any changeset with a row, FAILED or SKIPPED too; getRanChangeSets
    reads ORDER BY DATEEXECUTED, ORDEREXECUTED (ORDEREXECUTED restarts low after a table rebuild)."""
    liquibase = _case("liquibase")
    failed_cs = ("3", "ana", "db/changelog.xml", T3, "3", "FAILED", "9:5e6f", "sql", "", None, "4.25.0", None, None,
                 "4000000003")
    assert _read(liquibase, (*liquibase.rows, failed_cs)).applied == (*liquibase.applied, "db/changelog.xml::3::ana")
    later_but_lower = ("4", "ana", "db/changelog.xml", T3, "1", "EXECUTED", "9:7a8b", "sql", "", None, "4.29.1", None,
                       None, "5000000001")
    table = _read(liquibase, (*liquibase.rows, later_but_lower))
    assert table.version == "db/changelog.xml::4::ana"


def test_goose_version_is_the_newest_row_not_the_highest_version() -> None:
    """migrate.go EnsureDBVersionContext: rows by id, newest first; an out-of-order migration
    (`goose up -allow-missing`) applied last is the current version although a higher one exists."""
    goose = _case("goose")
    out_of_order = ("4", "20240101120000", "true", T3)
    table = _read(goose, (*goose.rows, out_of_order))
    assert (table.version, table.applied[-1]) == ("20240101120000", "20240101120000")


def test_knex_current_version_is_the_highest_name_prefix() -> None:
    """Migrator.currentVersion: lodash max of name.split('_')[0] over the completed migrations, whatever
    order they ran in; named by its migration file."""
    knex = _case("knex")
    rows = (knex.rows[2], knex.rows[0], knex.rows[1])  # the newest migration recorded first
    assert _read(knex, tuple((str(i), *r[1:]) for i, r in enumerate(rows, 1))).version == \
        "20240103090000_add_nickname.js"


def test_flyway_versions_order_naturally() -> None:
    flyway = next(c for c in HISTORY if c.tool == "flyway")
    v110 = ("3", "1.10", "ten", "SQL", "V1.10__ten.sql", "3", "app", T3, "1", "true")
    v19 = ("4", "1.9", "nine", "SQL", "V1.9__nine.sql", "4", "app", T3, "1", "true")
    assert _read(flyway, (*flyway.rows, v110, v19)).version == "1.10"


@pytest.mark.parametrize(("case", "rows", "message"), [
    (POINTERS[0], (("20240102000000", "true"),), "is dirty (a migration failed half-way); the baseline's was not"),
    (Case("knex", "knex_migrations_lock", ("index", "is_locked"), (("1", "0"),), None, ()), (("1", "1"),),
     "is locked (knex refuses to migrate: \"Migration table is already locked\"); the baseline's was not"),
    (Case("liquibase", "databasechangeloglock", ("id", "locked", "lockgranted", "lockedby"),
          (("1", "false", None, None),), None, ()),
     (("1", "true", T2, "ci-runner (10.0.0.7)"),),
     "is locked (liquibase waits for the lock, then fails); the baseline's was not"),
], ids=["golang-migrate", "knex-lock", "liquibase-lock"])
def test_a_flag_the_tool_refuses_to_run_on(case: Case, rows: tuple[Row, ...], message: str) -> None:
    assert [d.message for d in diff_migrations([_read(case)], [_read(case, rows)])] == [
        f"migration version table {case.table} ({case.tool}) {message}"]


def test_a_lock_released_and_taken_by_another_run_is_not_a_difference() -> None:
    cols = ("id", "locked", "lockgranted", "lockedby")
    before = migration_table("databasechangeloglock", cols, (("1", "false", T1, "host-a"),))
    after = migration_table("databasechangeloglock", cols, (("1", "false", T2, "host-b"),))
    assert diff_migrations([before], [after]) == []


def test_metadata_is_compared_without_its_timestamps() -> None:
    cols = ("key", "value", "created_at", "updated_at")
    base = migration_table("ar_internal_metadata", cols, (("environment", "production", T1, T1),))
    assert base.tool == "rails" and base.columns == ("key", "value") and base.version is None
    touched = migration_table("ar_internal_metadata", cols, (("environment", "production", T1, T3),))
    assert diff_migrations([base], [touched]) == []
    other = migration_table("ar_internal_metadata", cols, (("environment", "staging", T1, T3),))
    assert [d.message for d in diff_migrations([base], [other])] == [
        "migration version table ar_internal_metadata (rails): history rows differ (1 added, 1 removed; current "
        "version unchanged)"]


def test_sqitch_tables_count_only_in_the_sqitch_schema() -> None:
    assert considered("sqitch", "changes") and not considered("public", "changes")
    assert considered("drizzle", "__drizzle_migrations") and considered("public", "knex_migrations")
    assert not considered("public", "users")


def test_the_tool_names_of_the_model_are_the_tools_of_the_table() -> None:
    assert set(typing.get_args(MigrationTool)) == {s.tool for s in SHAPES} | {UNRECOGNISED}


def test_no_two_shapes_claim_the_same_table() -> None:
    for shape in SHAPES:
        others = [s for s in SHAPES if s is not shape]
        assert not any(s.fits(shape.table, shape.columns) or s.fits(shape.table, shape.columns | shape.optional)
                       for s in others), shape
    for shape in SHAPES:
        assert shape.ignored <= shape.columns and shape.presence <= shape.columns
        assert set(shape.order_by) <= shape.columns
        assert shape_for(shape.table, sorted(shape.columns)) is shape


def _db(migrations: tuple[MigrationTable, ...], schema: SchemaFingerprint) -> DatabaseSnapshot:
    return DatabaseSnapshot(database="app", server_version="15.8", schema_fingerprint=schema, migrations=migrations)


@pytest.mark.parametrize("case", HISTORY, ids=lambda c: f"{c.tool}-{c.table}")
def test_the_version_table_check_speaks_each_tools_version(case: Case) -> None:
    """A down migration that did nothing but delete the tool's row: the table names the good release,
    the schema is the bad release's."""
    good_schema, bad_schema = SchemaFingerprint(schemas=("public",)), SchemaFingerprint(schemas=("public", "x"))
    good = _db((_read(case, case.rows[:-1]),), good_schema)
    bad = _db((_read(case),), bad_schema)
    after = _db((_read(case, case.rows[:-1]),), bad_schema)
    good_version, word = good.migrations[0].version, VERSION_WORD[case.table]
    assert [d.message for d in version_table_differences(good, bad, after)] == [
        f"{_name(case)} ({case.tool}) says {word} {good_version} (the good release's) but the schema is the bad "
        f"release's ({word} {case.version}): the next deploy of the bad release's version will apply its "
        f"migration again onto a schema that already has it"]


def test_locks_and_metadata_say_nothing_about_the_release() -> None:
    lock = migration_table("knex_migrations_lock", ("index", "is_locked"), (("1", "0"),))
    good = _db((lock,), SchemaFingerprint(schemas=("public",)))
    bad = _db((lock,), SchemaFingerprint(schemas=("public", "x")))
    assert version_table_differences(good, bad, _db((lock,), SchemaFingerprint(schemas=("public", "y")))) == []


def test_the_report_page_names_each_table_with_its_tool() -> None:
    """report.html's version-table section: a history table by its version, a lock by its rows."""
    data = Path(__file__).resolve().parents[1] / "data" / "reports" / "rr3" / "bad-migration" / "report.json"
    journal = Journal.model_validate_json(data.read_text(encoding="utf-8"))
    knex = _case("knex")
    lock = migration_table("knex_migrations_lock", ("index", "is_locked"), (("1", "0"),))
    for stage in ("baseline", "after_bad_deploy", "after_rollback"):
        snapshot = getattr(journal, stage)
        assert snapshot is not None
        tables = (_read(knex, knex.rows if stage != "baseline" else knex.rows[:-1]), lock)
        snapshot["database"]["migrations"] = [t.model_dump(mode="json") for t in tables]
    page = render_html(journal, Redactor())
    assert "knex_migrations (knex)" in page and "version 20240103090000_add_nickname.js" in page
    assert "knex_migrations_lock (knex)" in page and "1 row<" in page
