"""The table of migration tools: how each one's version table is recognised and read.

A migration tool decides what to run from its own bookkeeping table, so the rollback is only done
when that table is back too. Each row of ``SHAPES`` is one table of one tool: its name, the
columns that identify it (several tools share a name: ``schema_migrations`` is golang-migrate's,
Ecto's or Rails', ``migrations`` is db-migrate's, TypeORM's or Laravel's; the columns tell them
apart), and how the tool itself derives its state from the rows:

- ``history``: one row per applied migration (knex, Django, Prisma, Liquibase, ...). The tool's
  "applied" list is the rows in the tool's own order, minus the rows the tool does not count
  (a Prisma row that never finished, a flyway row that failed, a goose row that records a down);
  its current version is the last applied migration.
- ``pointer``: the table holds the current version only (golang-migrate, alembic's heads).
- ``lock``: the tool's run lock (knex, Liquibase); set means the next run waits or refuses.
- ``metadata``: other bookkeeping the tool reads back (Rails' environment, TypeORM's view
  definitions); compared as rows, no version.

Columns that say when, by whom or how long a migration ran, and surrogate ids handed out by a
sequence at insert time, are ``ignored``: they change when the same migration is applied again,
so they are read (the order of application comes from them) but not compared. A checksum is
compared: another checksum is another script. ``presence`` columns are timestamps whose value
is ignored but whose being set is state (Prisma's ``finished_at``, ``rolled_back_at``).

The DDL each shape follows, and the code that reads it back, are cited next to it (`source`), with
the commit of the tool's repository they were checked against (a `# checked:` comment); the e2e test
creates the tables with that DDL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

Record = Mapping[str, str | None]
Role = Literal["history", "pointer", "lock", "metadata"]

UNRECOGNISED = "unrecognised"  # a known table name with columns no tool's shape has


def natural_key(value: str | None) -> tuple[int, int, str]:
    """Numbers sort numerically (so rank 10 follows rank 9), text after, NULL last."""
    if value is None:
        return (2, 0, "")
    if value.isdigit():
        return (0, int(value), "")
    return (1, 0, value)


def version_key(version: str) -> tuple[tuple[int, int, str], ...]:
    """Order dotted versions (flyway "1.10" > "1.9") and plain numbers naturally."""
    return tuple(natural_key(part) for part in version.replace("_", ".").split("."))


def _is_true(value: str | None) -> bool:
    return value in ("true", "1", "t")


def _always(_: Record) -> bool:
    return True


def _never(_: Record) -> bool:
    return False


def _column(name: str) -> Callable[[Record], str | None]:
    return lambda r: r.get(name)


@dataclass(frozen=True)
class Shape:
    """One table of one migration tool, and how the tool reads it."""

    tool: str
    table: str  # the tool's default table name (any schema in scope)
    columns: frozenset[str]  # the tool's DDL: a table with these columns (and only optional others) is this shape
    role: Role
    source: str  # where the DDL and the reading rule come from (repository: path)
    ignored: frozenset[str] = frozenset()  # when / by whom / how long / insert-time ids
    optional: frozenset[str] = frozenset()  # columns an option of the tool adds (also ignored)
    presence: frozenset[str] = frozenset()  # compared as set / not set only
    order_by: tuple[str, ...] = ()  # the tool's order of application
    ident: Callable[[Record], str | None] = field(default=_column("name"))  # one migration's name
    counts: Callable[[Record], bool] = _always  # the row applies its migration
    reverts: Callable[[Record], bool] = _never  # the row records an undo of its migration
    dirty: Callable[[Sequence[Record]], bool] = lambda rows: False  # the tool refuses to run on
    dirty_means: str = "is dirty (a migration failed half-way)"
    version_of: Callable[[Sequence[str]], str | None] | None = None  # default: the last applied
    # What the tool calls the version it derives, when that is not one migration's name (default: `term`)
    version_term: str | None = None

    def fits(self, table: str, columns: frozenset[str]) -> bool:
        return table == self.table and self.columns <= columns <= self.columns | self.optional

    def not_compared(self, column: str) -> bool:
        return column in self.ignored or column in self.optional


def _any(rows: Sequence[Record], test: Callable[[Record], bool]) -> bool:
    return any(test(r) for r in rows)


def _max_version(applied: Sequence[str]) -> str | None:
    return max(applied, key=version_key) if applied else None


def _heads(applied: Sequence[str]) -> str | None:
    return ", ".join(sorted(applied)) or None


def _last_per_app(applied: Sequence[str]) -> str | None:
    """Django keeps a graph per app: the state is each app's last applied migration."""
    last: dict[str, str] = {}
    for name in applied:
        last[name.split(".", 1)[0]] = name
    return ", ".join(last[app] for app in sorted(last)) or None


def _prisma_applied(r: Record) -> bool:
    # prisma migrate: a migration is applied when it finished and was not rolled back
    return r.get("finished_at") is not None and r.get("rolled_back_at") is None


def _prisma_failed(r: Record) -> bool:
    # started, never finished, not marked rolled back: `migrate deploy` stops with P3009
    return r.get("finished_at") is None and r.get("rolled_back_at") is None


def _flyway_undo(r: Record) -> bool:
    return (r.get("type") or "").upper().startswith("UNDO")


def _flyway_delete(r: Record) -> bool:
    return (r.get("type") or "").upper() == "DELETE"  # `flyway repair` marking a missing migration deleted


def _flyway_applies(r: Record) -> bool:
    # MigrationInfoServiceImpl.current(): any versioned row that is applied, failed ones included
    # (MigrationState.FAILED is applied), is a candidate for the current version
    return r.get("version") is not None and not _flyway_undo(r) and not _flyway_delete(r)


def _flyway_reverts(r: Record) -> bool:
    return r.get("success") == "true" and (_flyway_undo(r) or _flyway_delete(r))


def _knex_version(applied: Sequence[str]) -> str | None:
    """knex's Migrator.currentVersion (lodash max, in string order, of each completed name's part before `_`),
    named by the migration it comes from, as a knex user reads `migrate:list`: `20240103090000_add_nickname.js`
    rather than `20240103090000`. Of two names with that prefix, the later one in string order."""
    if not applied:
        return None
    top = max(name.split("_", 1)[0] for name in applied)
    return max(name for name in applied if name.split("_", 1)[0] == top)


SHAPES: tuple[Shape, ...] = (
    # ---- Go
    # checked: golang-migrate/migrate@18966c7 database/postgres/postgres.go (ensureVersionTable, SetVersion
    # truncates and inserts the one row, Version reads it)
    Shape("golang-migrate", "schema_migrations", frozenset({"version", "dirty"}), "pointer",
          "golang-migrate/migrate: database/postgres/postgres.go (version bigint PRIMARY KEY, dirty boolean)",
          ident=_column("version"), dirty=lambda rows: _any(rows, lambda r: _is_true(r.get("dirty")))),
    # checked: pressly/goose@520411a internal/dialects/postgres.go (CreateTable, ListMigrations ORDER BY id
    # DESC, DeleteVersion), migrate.go (EnsureDBVersionContext, what `goose version` and `goose down` use)
    Shape("goose", "goose_db_version", frozenset({"id", "version_id", "is_applied", "tstamp"}), "history",
          "pressly/goose: internal/dialects/postgres.go (id integer identity, serial before v3.17; version_id "
          "bigint, is_applied boolean, tstamp timestamp DEFAULT now()); migrate.go EnsureDBVersionContext: the "
          "current version is the newest row by id whose version's newest row is applied (not the highest "
          "version: out-of-order migrations), a false is_applied row (older goose) undoing its version; a down "
          "deletes the row",
          ignored=frozenset({"id", "tstamp"}), order_by=("id",), ident=_column("version_id"),
          counts=lambda r: _is_true(r.get("is_applied")), reverts=lambda r: r.get("is_applied") == "false"),
    # ---- JVM
    # checked: flyway/flyway@c5e20fc flyway-database/flyway-database-postgresql/.../PostgreSQLDatabase.java
    # (getRawCreateScript, getSelectStatement ORDER BY installed_rank), flyway-core/.../info/
    # MigrationInfoServiceImpl.java (current(), DELETE rows), flyway-core/.../api/MigrationState.java
    Shape("flyway", "flyway_schema_history",
          frozenset({"installed_rank", "version", "description", "type", "script", "checksum", "installed_by",
                     "installed_on", "execution_time", "success"}), "history",
          "flyway/flyway: flyway-database-postgresql PostgreSQLDatabase.java getRawCreateScript; "
          "MigrationInfoServiceImpl.current(): the highest version applied (a failed row counts: FAILED is an "
          "applied state), not undone (UNDO rows) nor deleted (DELETE rows); repeatable rows (no version) do "
          "not move it; a failed row blocks migrate",
          ignored=frozenset({"installed_rank", "installed_by", "installed_on", "execution_time"}),
          order_by=("installed_rank",), ident=_column("version"),
          counts=_flyway_applies, reverts=_flyway_reverts,
          dirty=lambda rows: _any(rows, lambda r: r.get("success") == "false"),
          dirty_means="has a failed migration (flyway migrate refuses to run until repair)",
          version_of=_max_version),
    # checked: liquibase/liquibase@cdbdec7 liquibase-standard/src/main/java/liquibase/sqlgenerator/core/
    # CreateDatabaseChangeLogTableGenerator.java, .../changelog/StandardChangeLogHistoryService.java
    # (getRanChangeSets: ORDER BY DATEEXECUTED ASC, ORDEREXECUTED ASC), .../changelog/filter/
    # ShouldRunChangeSetFilter.java (any row, whatever its EXECTYPE, is a changeset that ran)
    Shape("liquibase", "databasechangelog",
          frozenset({"id", "author", "filename", "dateexecuted", "orderexecuted", "exectype", "md5sum",
                     "description", "comments", "tag", "liquibase", "contexts", "labels", "deployment_id"}),
          "history",
          "liquibase/liquibase: liquibase-standard CreateDatabaseChangeLogTableGenerator.java and "
          "StandardChangeLogHistoryService.java (read ORDER BY DATEEXECUTED, ORDEREXECUTED); a changeset is "
          "filename::id::author, every row is one that ran (EXECUTED, MARK_RAN, RERAN, FAILED, SKIPPED: "
          "ShouldRunChangeSetFilter), rolled back = row deleted",
          ignored=frozenset({"dateexecuted", "orderexecuted", "liquibase", "deployment_id"}),
          order_by=("dateexecuted", "orderexecuted"),
          ident=lambda r: f"{r.get('filename')}::{r.get('id')}::{r.get('author')}"),
    # checked: liquibase/liquibase@cdbdec7 .../sqlgenerator/core/CreateDatabaseChangeLogLockTableGenerator.java
    Shape("liquibase", "databasechangeloglock", frozenset({"id", "locked", "lockgranted", "lockedby"}), "lock",
          "liquibase/liquibase: liquibase-standard CreateDatabaseChangeLogLockTableGenerator.java (ID int PRIMARY "
          "KEY, LOCKED boolean, LOCKGRANTED datetime, LOCKEDBY varchar(255)) and StandardLockService.java",
          ignored=frozenset({"lockgranted", "lockedby"}), ident=_column("id"),
          dirty=lambda rows: _any(rows, lambda r: _is_true(r.get("locked"))),
          dirty_means="is locked (liquibase waits for the lock, then fails)"),
    # ---- Python
    # checked: sqlalchemy/alembic@20e58db alembic/ddl/impl.py (version_table_impl), alembic/runtime/migration.py
    # (get_current_heads: every row is a head)
    Shape("alembic", "alembic_version", frozenset({"version_num"}), "pointer",
          "sqlalchemy/alembic: alembic/ddl/impl.py version_table_impl (version_num varchar(32) NOT NULL, PRIMARY "
          "KEY alembic_version_pkc); alembic/runtime/migration.py get_current_heads (one row per head)",
          ident=_column("version_num"), version_of=_heads),
    # checked: django/django@01640c5 django/db/migrations/recorder.py (the Migration model, applied_migrations,
    # record_unapplied deletes the row)
    Shape("django", "django_migrations", frozenset({"id", "app", "name", "applied"}), "history",
          "django/django: django/db/migrations/recorder.py (app, name, applied; a row is an applied migration, "
          "unapplying deletes it)",
          ignored=frozenset({"id", "applied"}), order_by=("id",),
          ident=lambda r: f"{r.get('app')}.{r.get('name')}", version_of=_last_per_app),
    # ---- Node.js / TypeScript
    # checked: knex/knex@e25d54b lib/migrations/migrate/table-creator.js, migration-list-resolver.js
    # (listCompleted orderBy id), Migrator.js (currentVersion)
    Shape("knex", "knex_migrations", frozenset({"id", "name", "batch", "migration_time"}), "history",
          "knex/knex: lib/migrations/migrate/table-creator.js (increments, name, batch, migration_time); "
          "completed migrations are read ordered by id; the current version is Migrator.currentVersion, the "
          "highest name prefix before `_` (named by its migration); batch is kept: migrate:rollback undoes the last batch",
          ignored=frozenset({"id", "migration_time"}), order_by=("id",), version_of=_knex_version),
    Shape("knex", "knex_migrations_lock", frozenset({"index", "is_locked"}), "lock",
          "knex/knex: lib/migrations/migrate/table-creator.js (increments index, integer is_locked)",
          ident=_column("index"), dirty=lambda rows: _any(rows, lambda r: _is_true(r.get("is_locked"))),
          dirty_means="is locked (knex refuses to migrate: \"Migration table is already locked\")"),
    # checked: salsita/node-pg-migrate@55b10c2 src/runner.ts (CREATE TABLE, ORDER BY run_on, id),
    # src/migration.ts (the row inserted on up, deleted on down)
    Shape("node-pg-migrate", "pgmigrations", frozenset({"id", "name", "run_on"}), "history",
          "salsita/node-pg-migrate: src/runner.ts (id SERIAL PRIMARY KEY, name varchar(255) NOT NULL, run_on "
          "timestamp NOT NULL; read ORDER BY run_on, id)",
          ignored=frozenset({"id", "run_on"}), order_by=("run_on", "id")),
    # checked: db-migrate/pg@b43cef6 index.js (createMigrationsTable); db-migrate-base's driver
    # (allLoadedMigrations ORDER BY run_on DESC, name DESC; deleteMigration). db-migrate 1.0's state table
    # (migrations_state, a beta) is not covered
    Shape("db-migrate", "migrations", frozenset({"id", "name", "run_on"}), "history",
          "db-migrate/pg: index.js createMigrationsTable (id integer autoIncrement PRIMARY KEY, name varchar(255) "
          "NOT NULL, run_on timestamp NOT NULL); db-migrate-base allLoadedMigrations reads ORDER BY run_on DESC, "
          "name DESC: the first is the last applied",
          ignored=frozenset({"id", "run_on"}), order_by=("run_on", "name")),
    # checked: typeorm/typeorm@281bfba src/migration/MigrationExecutor.ts (createMigrationsTableIfNotExist,
    # loadExecutedMigrations ORDER BY id DESC, getLatestExecutedMigration: the first of those)
    Shape("typeorm", "migrations", frozenset({"id", "timestamp", "name"}), "history",
          "typeorm/typeorm: src/migration/MigrationExecutor.ts (id increment, timestamp bigint NOT NULL, name "
          "varchar NOT NULL; executed migrations read ORDER BY id; timestamp is the migration's own, from its "
          "class name, not when it ran)",
          ignored=frozenset({"id"}), order_by=("id",)),
    # checked: typeorm/typeorm@281bfba src/schema-builder/RdbmsSchemaBuilder.ts (createTypeormMetadataTable)
    Shape("typeorm", "typeorm_metadata",
          frozenset({"type", "database", "schema", "table", "name", "value"}), "metadata",
          "typeorm/typeorm: src/schema-builder/RdbmsSchemaBuilder.ts createTypeormMetadataTable (type, database, "
          "schema, table, name, value: view and generated-column definitions)",
          ident=_column("name")),
    # checked: sequelize/umzug@d79c19f src/storage/sequelize.ts (the model: name STRING primary key, the
    # timestamps option; executed() findAll order name ASC)
    Shape("sequelize", "SequelizeMeta", frozenset({"name"}), "history",
          "sequelize/umzug: src/storage/sequelize.ts (one column, the migration name; executed() orders by name; "
          "the timestamps option adds createdAt and updatedAt)",
          optional=frozenset({"createdAt", "updatedAt"}), order_by=("name",)),
    # checked: prisma/prisma-engines@1f7ff79 schema-engine/connectors/sql-schema-connector/src/flavour/postgres.rs
    # (create_migrations_table), @27f25c6 .../src/flavour.rs (load_migrations_table ORDER BY started_at)
    Shape("prisma", "_prisma_migrations",
          frozenset({"id", "checksum", "finished_at", "migration_name", "logs", "rolled_back_at", "started_at",
                     "applied_steps_count"}), "history",
          "prisma/prisma-engines: schema-engine/connectors/sql-schema-connector/src/flavour/postgres.rs "
          "(id varchar(36) a random uuid, checksum, finished_at, migration_name, logs, rolled_back_at, "
          "started_at, applied_steps_count); read ORDER BY started_at (src/flavour.rs load_migrations_table)",
          ignored=frozenset({"id", "started_at", "logs"}), presence=frozenset({"finished_at", "rolled_back_at"}),
          order_by=("started_at",), ident=_column("migration_name"), counts=_prisma_applied,
          dirty=lambda rows: _any(rows, _prisma_failed),
          dirty_means="has a failed migration (prisma migrate deploy stops with P3009)"),
    # checked: drizzle-team/drizzle-orm@00cbce5 drizzle-orm/src/pg-core/dialect.ts (migrate(): CREATE TABLE, the
    # last row ORDER BY created_at DESC decides)
    Shape("drizzle", "__drizzle_migrations", frozenset({"id", "hash", "created_at"}), "history",
          "drizzle-team/drizzle-orm: drizzle-orm/src/pg-core/dialect.ts (schema drizzle; id SERIAL, hash text, "
          "created_at bigint = the migration's folderMillis from the journal, not when it ran; the last row by "
          "created_at decides what runs next)",
          ignored=frozenset({"id"}), order_by=("created_at",), ident=_column("created_at")),
    # ---- Ruby / Elixir
    # checked: rails/rails@063db85 activerecord/lib/active_record/schema_migration.rb (create_table, versions
    # ORDER BY version), @003bd6e activerecord/lib/active_record/migration.rb (current_version: the highest
    # version as an integer)
    Shape("rails", "schema_migrations", frozenset({"version"}), "history",
          "rails/rails: activerecord/lib/active_record/schema_migration.rb (version varchar PRIMARY KEY); "
          "migration.rb current_version = the highest version",
          order_by=("version",), ident=_column("version"), version_of=_max_version),
    # checked: rails/rails@0007501 activerecord/lib/active_record/internal_metadata.rb (create_table: key string
    # primary key, value string, timestamps)
    Shape("rails", "ar_internal_metadata", frozenset({"key", "value", "created_at", "updated_at"}), "metadata",
          "rails/rails: activerecord/lib/active_record/internal_metadata.rb (key, value: the environment)",
          ignored=frozenset({"created_at", "updated_at"}), ident=_column("key")),
    # checked: elixir-ecto/ecto_sql@015367b lib/ecto/migration/schema_migration.ex (ensure_schema_migrations_table!,
    # up inserts, down deletes)
    Shape("ecto", "schema_migrations", frozenset({"version", "inserted_at"}), "history",
          "elixir-ecto/ecto_sql: lib/ecto/migration/schema_migration.ex (version bigint PRIMARY KEY, "
          "inserted_at naive_datetime)",
          ignored=frozenset({"inserted_at"}), order_by=("version",), ident=_column("version"),
          version_of=_max_version),
    # ---- sqitch (its registry schema, "sqitch" by default)
    # checked: sqitchers/sqitch@0ab857e lib/App/Sqitch/Engine/pg.sql (changes, tags), lib/App/Sqitch/Role/
    # DBIEngine.pm (current_state: ORDER BY committed_at DESC)
    Shape("sqitch", "changes",
          frozenset({"change_id", "script_hash", "change", "project", "note", "committed_at", "committer_name",
                     "committer_email", "planned_at", "planner_name", "planner_email"}), "history",
          "sqitchers/sqitch: lib/App/Sqitch/Engine/pg.sql (the changes currently deployed; read ORDER BY "
          "committed_at)",
          ignored=frozenset({"committed_at", "committer_name", "committer_email"}), order_by=("committed_at",),
          ident=_column("change")),
    Shape("sqitch", "tags",
          frozenset({"tag_id", "tag", "project", "change_id", "note", "committed_at", "committer_name",
                     "committer_email", "planned_at", "planner_name", "planner_email"}), "history",
          "sqitchers/sqitch: lib/App/Sqitch/Engine/pg.sql (the tags currently applied)",
          ignored=frozenset({"committed_at", "committer_name", "committer_email"}), order_by=("committed_at",),
          ident=_column("tag"), version_term="tag"),
)

# The names a version table may have; a table with one of these names is always read.
TABLE_NAMES: frozenset[str] = frozenset(s.table for s in SHAPES)

# Tables that only count as a tool's under their tool's schema: `changes` and `tags` are common
# application table names, sqitch's live in its registry schema.
REQUIRED_SCHEMA: Mapping[str, str] = {"changes": "sqitch", "tags": "sqitch"}


# What each tool calls one migration, so a step or a version is named in the tool's own terms
# ("revision 8e4b7c1d2a65", "version 2"); the others say "migration" (a knex or node-pg-migrate name).
TERMS: Mapping[str, str] = {
    "alembic": "revision", "liquibase": "changeset", "sqitch": "change", "flyway": "version",
    "golang-migrate": "version", "goose": "version", "ecto": "version", "rails": "version",
}


def term(tool: str | None) -> str:
    """What the tool calls one migration ("revision", "version", "migration")."""
    return TERMS.get(tool or "", "migration")


def in_terms(tool: str | None, table: str, version: str | None) -> str:
    """A table's version as its tool names it: `revision 8e4b7c1d2a65`, `version 2`,
    `migration 1700000000001_add-nickname`; `no version` for an empty table."""
    if version is None:
        return "no version"
    shape = shape_named(tool, table) if tool else None
    return f"{(shape.version_term if shape else None) or term(tool)} {version}"


def considered(schema: str, table: str) -> bool:
    """Whether a table of this name in this schema is read as a version table."""
    return table in TABLE_NAMES and REQUIRED_SCHEMA.get(table, schema) == schema


def shape_for(table: str, columns: Sequence[str]) -> Shape | None:
    """The tool's shape whose name and column set this table has (None: unrecognised)."""
    have = frozenset(columns)
    return next((s for s in SHAPES if s.fits(table, have)), None)


def shape_named(tool: str, table: str) -> Shape | None:
    """The shape a snapshot's table was read with (``table`` may be schema-qualified)."""
    bare = table.rsplit(".", 1)[-1].strip('"')
    return next((s for s in SHAPES if s.tool == tool and s.table == bare), None)


@dataclass(frozen=True)
class Reading:
    """What the tool derives from its table."""

    version: str | None
    applied: tuple[str, ...]
    dirty: bool


def read(shape: Shape, records: Sequence[Record]) -> Reading:
    """Replay the rows in the tool's order: the applied migrations, the version, the dirty flag."""
    ordered = sorted(records, key=lambda r: tuple(natural_key(r.get(c)) for c in shape.order_by))
    applied: list[str] = []
    for r in ordered:
        name = shape.ident(r)
        if name is None:
            continue
        if shape.reverts(r):
            applied = [a for a in applied if a != name]
        elif shape.counts(r) and name not in applied:
            applied.append(name)
    dirty = shape.dirty(records)
    if shape.role in ("lock", "metadata"):
        return Reading(None, (), dirty)
    version = shape.version_of(applied) if shape.version_of else (applied[-1] if applied else None)
    # a pointer table holds the state itself: no list of applied migrations to compare one by one
    return Reading(version, tuple(applied) if shape.role == "history" else (), dirty)


def compared_row(shape: Shape | None, columns: Sequence[str], row: Sequence[str | None]) -> tuple[str | None, ...]:
    """The row as compared: ignored columns left out, presence columns as set / not set."""
    if shape is None:
        return tuple(row)
    out: list[str | None] = []
    for col, value in zip(columns, row):
        if shape.not_compared(col):
            continue
        out.append(("set" if value is not None else None) if col in shape.presence else value)
    return tuple(out)


def compared_columns(shape: Shape | None, columns: Sequence[str]) -> tuple[str, ...]:
    if shape is None:
        return tuple(columns)
    return tuple(c for c in columns if not shape.not_compared(c))
