"""Every migration tool's version table on a real Postgres: created with the tool's own DDL, filled
with rows as the tool writes them, snapshotted, then changed the ways a rollback leaves it.

The DDL below is written here from each tool's source (cited per tool); the rows are what the tool
inserts. For each tool: the snapshot names the tool and derives its version; the migration the bad
release applied, left in the table, is a difference naming the tool and that migration; a migration
of the baseline gone is one too; the same rows applied again later (new timestamps, new ids, another
user) are no difference. All the tables together, shared names in their own schemas, are each told
apart by their columns. Needs only Postgres (the image `make env` builds), no cluster."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

# tests/e2e is on sys.path (no package): the Postgres fixtures shared with test_db_snapshot.py.
from pg import admin_conninfo, conn

from harness.snapshot import diff_database, snapshot_database
from harness.snapshot.migration_tools import in_terms

pytestmark = pytest.mark.e2e
__all__ = ["admin_conninfo", "conn"]  # fixtures: imported to be found here



@dataclass(frozen=True)
class Tool:
    """One tool's table(s) and four moments of its life. ``table`` is the snapshot's key of the
    table the checks look at; ``add`` records ``added`` (the bad release's migration), ``remove``
    deletes ``removed`` (a migration of the baseline), ``again`` changes only when/who/how long."""

    tool: str
    table: str
    version: str | None
    ddl: str
    rows: str
    add: str
    added: str
    remove: str
    removed: str
    again: str


TOOLS: tuple[Tool, ...] = (
    # knex/knex lib/migrations/migrate/table-creator.js: increments(), string('name'), integer('batch'),
    # timestamp('migration_time') (timestamptz on Postgres); the lock table: increments('index'), integer('is_locked');
    # the version is Migrator.currentVersion, the highest name prefix before `_`, named by its migration
    Tool("knex", "knex_migrations", "20240102090000_add_email.js",
         """CREATE TABLE knex_migrations (id serial PRIMARY KEY, name varchar(255), batch integer,
                                          migration_time timestamptz);
            CREATE TABLE knex_migrations_lock (index serial PRIMARY KEY, is_locked integer);""",
         """INSERT INTO knex_migrations_lock (is_locked) VALUES (0);
            INSERT INTO knex_migrations (name, batch, migration_time) VALUES
              ('20240101090000_create_users.js', 1, now()), ('20240102090000_add_email.js', 1, now());""",
         "INSERT INTO knex_migrations (name, batch, migration_time) VALUES ('20240103090000_add_nickname.js', 2, now())",
         "migration 20240103090000_add_nickname.js is still recorded as applied",
         "DELETE FROM knex_migrations WHERE name = '20240102090000_add_email.js'",
         "migration 20240102090000_add_email.js is no longer recorded as applied",
         """DELETE FROM knex_migrations; INSERT INTO knex_migrations (name, batch, migration_time) VALUES
              ('20240101090000_create_users.js', 1, now() + interval '1 day'),
              ('20240102090000_add_email.js', 1, now() + interval '1 day');"""),
    # salsita/node-pg-migrate src/runner.ts: id SERIAL PRIMARY KEY, name varchar(255) NOT NULL, run_on timestamp NOT NULL
    Tool("node-pg-migrate", "pgmigrations", "1700000000001_add-email",
         "CREATE TABLE pgmigrations (id SERIAL PRIMARY KEY, name varchar(255) NOT NULL, run_on timestamp NOT NULL)",
         """INSERT INTO pgmigrations (name, run_on) VALUES ('1700000000000_create-users', now()),
                                                             ('1700000000001_add-email', now() + interval '1 s')""",
         "INSERT INTO pgmigrations (name, run_on) VALUES ('1700000000002_add-nickname', now() + interval '1 h')",
         "migration 1700000000002_add-nickname is still recorded as applied",
         "DELETE FROM pgmigrations WHERE name = '1700000000001_add-email'",
         "migration 1700000000001_add-email is no longer recorded as applied",
         "UPDATE pgmigrations SET run_on = run_on + interval '30 days'"),
    # db-migrate/pg index.js createMigrationsTable: id SERIAL PRIMARY KEY, name VARCHAR(255) NOT NULL,
    # run_on TIMESTAMP NOT NULL; addMigrationRecord writes the name with a leading slash
    Tool("db-migrate", "migrations", "/20240102000000-add-email",
         "CREATE TABLE migrations (id SERIAL PRIMARY KEY, name VARCHAR(255) NOT NULL, run_on TIMESTAMP NOT NULL)",
         """INSERT INTO migrations (name, run_on) VALUES ('/20240101000000-create-users', now()),
                                                           ('/20240102000000-add-email', now() + interval '1 s')""",
         "INSERT INTO migrations (name, run_on) VALUES ('/20240103000000-add-nickname', now() + interval '1 h')",
         "migration /20240103000000-add-nickname is still recorded as applied",
         "DELETE FROM migrations WHERE name = '/20240102000000-add-email'",
         "migration /20240102000000-add-email is no longer recorded as applied",
         "UPDATE migrations SET run_on = run_on + interval '30 days', id = id + 100"),
    # typeorm/typeorm src/migration/MigrationExecutor.ts createMigrationsTableIfNotExist: id (increment, primary),
    # timestamp bigint NOT NULL, name varchar NOT NULL; typeorm_metadata: src/schema-builder/RdbmsSchemaBuilder.ts
    # createTypeormMetadataTable; the schema option puts them in the app's schema
    Tool("typeorm", "app_ts.migrations", "AddEmail1700000000001",
         """CREATE SCHEMA app_ts;
            CREATE TABLE app_ts.migrations ("id" SERIAL NOT NULL, "timestamp" bigint NOT NULL,
                                            "name" character varying NOT NULL,
                                            CONSTRAINT "PK_8c82d7f526340ab734260ea46be" PRIMARY KEY ("id"));
            CREATE TABLE app_ts.typeorm_metadata ("type" character varying NOT NULL, "database" character varying,
                                                  "schema" character varying, "table" character varying,
                                                  "name" character varying, "value" text);""",
         """INSERT INTO app_ts.migrations ("timestamp", name) VALUES (1700000000000, 'CreateUsers1700000000000'),
                                                                   (1700000000001, 'AddEmail1700000000001');
            INSERT INTO app_ts.typeorm_metadata VALUES ('VIEW', NULL, 'app_ts', NULL, 'active_users',
                                                        'SELECT id FROM users');""",
         """INSERT INTO app_ts.migrations ("timestamp", name) VALUES (1700000000002, 'AddNickname1700000000002')""",
         "migration AddNickname1700000000002 is still recorded as applied",
         "DELETE FROM app_ts.migrations WHERE name = 'AddEmail1700000000001'",
         "migration AddEmail1700000000001 is no longer recorded as applied",
         "UPDATE app_ts.migrations SET id = id + 100"),
    # sequelize/umzug src/storage/sequelize.ts: one column, the name (sequelize-cli: VARCHAR(255) primary key)
    Tool("sequelize", "SequelizeMeta", "20240102000000-add-email.js",
         """CREATE TABLE "SequelizeMeta" ("name" VARCHAR(255) NOT NULL UNIQUE, PRIMARY KEY ("name"))""",
         """INSERT INTO "SequelizeMeta" VALUES ('20240101000000-create-users.js'), ('20240102000000-add-email.js')""",
         """INSERT INTO "SequelizeMeta" VALUES ('20240103000000-add-nickname.js')""",
         "migration 20240103000000-add-nickname.js is still recorded as applied",
         """DELETE FROM "SequelizeMeta" WHERE name = '20240102000000-add-email.js'""",
         "migration 20240102000000-add-email.js is no longer recorded as applied",
         """DELETE FROM "SequelizeMeta"; INSERT INTO "SequelizeMeta" VALUES ('20240102000000-add-email.js'),
                                                                           ('20240101000000-create-users.js')"""),
    # prisma/prisma-engines schema-engine/connectors/sql-schema-connector/src/flavour/postgres.rs
    Tool("prisma", "_prisma_migrations", "20240102000000_add_email",
         """CREATE TABLE "_prisma_migrations" (
                "id" VARCHAR(36) PRIMARY KEY NOT NULL, "checksum" VARCHAR(64) NOT NULL, "finished_at" TIMESTAMPTZ,
                "migration_name" VARCHAR(255) NOT NULL, "logs" TEXT, "rolled_back_at" TIMESTAMPTZ,
                "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(), "applied_steps_count" INTEGER NOT NULL DEFAULT 0)""",
         """INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, started_at, applied_steps_count)
            VALUES (gen_random_uuid()::text, repeat('a', 64), now(), '20240101000000_init', now(), 1),
                   (gen_random_uuid()::text, repeat('b', 64), now() + interval '1 s', '20240102000000_add_email',
                    now() + interval '1 s', 1)""",
         """INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, started_at, applied_steps_count)
            VALUES (gen_random_uuid()::text, repeat('c', 64), now() + interval '1 h', '20240103000000_add_nickname',
                    now() + interval '1 h', 1)""",
         "migration 20240103000000_add_nickname is still recorded as applied",
         "UPDATE _prisma_migrations SET rolled_back_at = now() WHERE migration_name = '20240102000000_add_email'",
         "migration 20240102000000_add_email is no longer recorded as applied",
         """UPDATE _prisma_migrations SET id = gen_random_uuid()::text, started_at = started_at + interval '9 days',
                                         finished_at = finished_at + interval '9 days', logs = NULL"""),
    # drizzle-team/drizzle-orm drizzle-orm/src/pg-core/dialect.ts migrate(): schema drizzle, id SERIAL PRIMARY KEY,
    # hash text NOT NULL, created_at bigint (the migration's folderMillis)
    Tool("drizzle", "drizzle.__drizzle_migrations", "1700000100000",
         """CREATE SCHEMA drizzle;
            CREATE TABLE drizzle.__drizzle_migrations (id SERIAL PRIMARY KEY, hash text NOT NULL, created_at bigint)""",
         """INSERT INTO drizzle.__drizzle_migrations (hash, created_at) VALUES (md5('0000_init'), 1700000000000),
                                                                              (md5('0001_email'), 1700000100000)""",
         "INSERT INTO drizzle.__drizzle_migrations (hash, created_at) VALUES (md5('0002_nickname'), 1700000200000)",
         "migration 1700000200000 is still recorded as applied",
         "DELETE FROM drizzle.__drizzle_migrations WHERE created_at = 1700000100000",
         "migration 1700000100000 is no longer recorded as applied",
         "UPDATE drizzle.__drizzle_migrations SET id = id + 100"),
    # django/django django/db/migrations/recorder.py: app, name CharField(255), applied DateTimeField; the id is a
    # bigint identity since Django 3.2 (DEFAULT_AUTO_FIELD)
    Tool("django", "django_migrations", "auth.0001_initial, shop.0002_user_email",
         """CREATE TABLE django_migrations (id bigint NOT NULL PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY,
                                            app varchar(255) NOT NULL, name varchar(255) NOT NULL,
                                            applied timestamptz NOT NULL)""",
         """INSERT INTO django_migrations (app, name, applied) VALUES ('auth', '0001_initial', now()),
                ('shop', '0001_initial', now()), ('shop', '0002_user_email', now())""",
         "INSERT INTO django_migrations (app, name, applied) VALUES ('shop', '0003_user_nickname', now())",
         "migration shop.0003_user_nickname is still recorded as applied",
         "DELETE FROM django_migrations WHERE app = 'shop' AND name = '0002_user_email'",
         "migration shop.0002_user_email is no longer recorded as applied",
         "UPDATE django_migrations SET applied = applied + interval '1 year'"),
    # liquibase/liquibase liquibase-standard/.../sqlgenerator/core/CreateDatabaseChangeLogTableGenerator.java and
    # CreateDatabaseChangeLogLockTableGenerator.java (Postgres folds the upper-case names)
    Tool("liquibase", "databasechangelog", "db/changelog.xml::2::ana",
         """CREATE TABLE databasechangelog (ID VARCHAR(255) NOT NULL, AUTHOR VARCHAR(255) NOT NULL,
                FILENAME VARCHAR(255) NOT NULL, DATEEXECUTED TIMESTAMP WITHOUT TIME ZONE NOT NULL,
                ORDEREXECUTED INTEGER NOT NULL, EXECTYPE VARCHAR(10) NOT NULL, MD5SUM VARCHAR(35),
                DESCRIPTION VARCHAR(255), COMMENTS VARCHAR(255), TAG VARCHAR(255), LIQUIBASE VARCHAR(20),
                CONTEXTS VARCHAR(255), LABELS VARCHAR(255), DEPLOYMENT_ID VARCHAR(10));
            CREATE TABLE databasechangeloglock (ID INTEGER NOT NULL, LOCKED BOOLEAN NOT NULL,
                LOCKGRANTED TIMESTAMP WITHOUT TIME ZONE, LOCKEDBY VARCHAR(255),
                CONSTRAINT databasechangeloglock_pkey PRIMARY KEY (ID));""",
         """INSERT INTO databasechangeloglock VALUES (1, false, NULL, NULL);
            INSERT INTO databasechangelog VALUES
              ('1', 'ana', 'db/changelog.xml', now(), 1, 'EXECUTED', '9:1f2e3d', 'createTable tableName=users', '',
               NULL, '4.25.0', NULL, NULL, '4000000001'),
              ('2', 'ana', 'db/changelog.xml', now(), 2, 'EXECUTED', '9:3c4d5e', 'addColumn tableName=users', '',
               NULL, '4.25.0', NULL, NULL, '4000000001')""",
         """INSERT INTO databasechangelog VALUES ('3', 'ana', 'db/changelog.xml', now(), 3, 'EXECUTED', '9:7a8b9c',
               'addColumn tableName=users', '', NULL, '4.25.0', NULL, NULL, '4000000002')""",
         "migration db/changelog.xml::3::ana is still recorded as applied",
         "DELETE FROM databasechangelog WHERE id = '2'",
         "migration db/changelog.xml::2::ana is no longer recorded as applied",
         """UPDATE databasechangelog SET dateexecuted = dateexecuted + interval '1 day', deployment_id = '5000000001',
                                        liquibase = '4.29.1', orderexecuted = orderexecuted + 10;
            UPDATE databasechangeloglock SET lockgranted = now(), lockedby = 'ci (10.0.0.7)'"""),
    # sqitchers/sqitch lib/App/Sqitch/Engine/pg.sql (the registry schema, "sqitch" by default)
    Tool("sqitch", "sqitch.changes", "email",
         """CREATE SCHEMA sqitch;
            CREATE TABLE sqitch.projects (project TEXT PRIMARY KEY, uri TEXT NULL UNIQUE,
                created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(), creator_name TEXT NOT NULL,
                creator_email TEXT NOT NULL);
            CREATE TABLE sqitch.changes (change_id TEXT PRIMARY KEY, script_hash TEXT NULL, change TEXT NOT NULL,
                project TEXT NOT NULL REFERENCES sqitch.projects(project) ON UPDATE CASCADE,
                note TEXT NOT NULL DEFAULT '', committed_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
                committer_name TEXT NOT NULL, committer_email TEXT NOT NULL, planned_at TIMESTAMPTZ NOT NULL,
                planner_name TEXT NOT NULL, planner_email TEXT NOT NULL, UNIQUE(project, script_hash));
            CREATE TABLE sqitch.tags (tag_id TEXT PRIMARY KEY, tag TEXT NOT NULL,
                project TEXT NOT NULL REFERENCES sqitch.projects(project) ON UPDATE CASCADE,
                change_id TEXT NOT NULL REFERENCES sqitch.changes(change_id) ON UPDATE CASCADE,
                note TEXT NOT NULL DEFAULT '', committed_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
                committer_name TEXT NOT NULL, committer_email TEXT NOT NULL, planned_at TIMESTAMPTZ NOT NULL,
                planner_name TEXT NOT NULL, planner_email TEXT NOT NULL, UNIQUE(project, tag));""",
         """INSERT INTO sqitch.projects (project, creator_name, creator_email) VALUES ('shop', 'Ana', 'ana@example.com');
            INSERT INTO sqitch.changes (change_id, script_hash, change, project, committer_name, committer_email,
                                        planned_at, planner_name, planner_email) VALUES
              (md5('users'), md5('deploy/users.sql'), 'users', 'shop', 'Ana', 'ana@example.com',
               '2024-01-01', 'Ana', 'ana@example.com');
            INSERT INTO sqitch.changes (change_id, script_hash, change, project, committer_name, committer_email,
                                        planned_at, planner_name, planner_email) VALUES
              (md5('email'), md5('deploy/email.sql'), 'email', 'shop', 'Ana', 'ana@example.com',
               '2024-01-02', 'Ana', 'ana@example.com');
            INSERT INTO sqitch.tags (tag_id, tag, project, change_id, committer_name, committer_email, planned_at,
                                     planner_name, planner_email) VALUES
              (md5('@v1.0'), '@v1.0', 'shop', md5('users'), 'Ana', 'ana@example.com', '2024-01-02', 'Ana',
               'ana@example.com');""",
         """INSERT INTO sqitch.changes (change_id, script_hash, change, project, committer_name, committer_email,
                                        planned_at, planner_name, planner_email) VALUES
              (md5('nickname'), md5('deploy/nickname.sql'), 'nickname', 'shop', 'Ana', 'ana@example.com',
               '2024-01-03', 'Ana', 'ana@example.com')""",
         "migration nickname is still recorded as applied",
         "DELETE FROM sqitch.changes WHERE change = 'email'",
         "migration email is no longer recorded as applied",
         """UPDATE sqitch.changes SET committed_at = committed_at + interval '1 day', committer_name = 'CI',
                                     committer_email = 'ci@example.com';
            UPDATE sqitch.tags SET committed_at = committed_at + interval '1 day', committer_name = 'CI'"""),
    # elixir-ecto/ecto_sql lib/ecto/migration/schema_migration.ex: version bigint primary key,
    # inserted_at naive_datetime (timestamp(0)); the :prefix option puts it in the app's schema
    Tool("ecto", "app_ex.schema_migrations", "20240102000000",
         """CREATE SCHEMA app_ex;
            CREATE TABLE app_ex.schema_migrations (version bigint PRIMARY KEY, inserted_at timestamp(0))""",
         "INSERT INTO app_ex.schema_migrations VALUES (20240101000000, now()), (20240102000000, now())",
         "INSERT INTO app_ex.schema_migrations VALUES (20240103000000, now())",
         "migration 20240103000000 is still recorded as applied",
         "DELETE FROM app_ex.schema_migrations WHERE version = 20240102000000",
         "migration 20240102000000 is no longer recorded as applied",
         "UPDATE app_ex.schema_migrations SET inserted_at = inserted_at + interval '1 day'"),
    # rails/rails activerecord/lib/active_record/schema_migration.rb (version string primary key) and
    # internal_metadata.rb (key string primary key, value, timestamps)
    Tool("rails", "app_rb.schema_migrations", "20240102000000",
         """CREATE SCHEMA app_rb;
            CREATE TABLE app_rb.schema_migrations (version character varying NOT NULL PRIMARY KEY);
            CREATE TABLE app_rb.ar_internal_metadata (key character varying NOT NULL PRIMARY KEY,
                value character varying, created_at timestamp(6) NOT NULL, updated_at timestamp(6) NOT NULL)""",
         """INSERT INTO app_rb.schema_migrations VALUES ('20240101000000'), ('20240102000000');
            INSERT INTO app_rb.ar_internal_metadata VALUES ('environment', 'production', now(), now())""",
         "INSERT INTO app_rb.schema_migrations VALUES ('20240103000000')",
         "migration 20240103000000 is still recorded as applied",
         "DELETE FROM app_rb.schema_migrations WHERE version = '20240102000000'",
         "migration 20240102000000 is no longer recorded as applied",
         "UPDATE app_rb.ar_internal_metadata SET updated_at = now() + interval '1 day'"),
    # flyway/flyway flyway-database/flyway-database-postgresql/.../PostgreSQLDatabase.java getRawCreateScript
    Tool("flyway", "flyway_schema_history", "1.1",
         """CREATE TABLE flyway_schema_history (installed_rank INT NOT NULL, version VARCHAR(50),
                description VARCHAR(200) NOT NULL, type VARCHAR(20) NOT NULL, script VARCHAR(1000) NOT NULL,
                checksum INT, installed_by VARCHAR(100) NOT NULL, installed_on TIMESTAMP NOT NULL DEFAULT now(),
                execution_time INT NOT NULL, success BOOLEAN NOT NULL);
            ALTER TABLE flyway_schema_history ADD CONSTRAINT flyway_schema_history_pk PRIMARY KEY (installed_rank);
            CREATE INDEX flyway_schema_history_s_idx ON flyway_schema_history (success)""",
         """INSERT INTO flyway_schema_history VALUES
              (1, '1', 'init', 'SQL', 'V1__init.sql', 11, 'app', now(), 12, true),
              (2, '1.1', 'email', 'SQL', 'V1.1__email.sql', 22, 'app', now(), 7, true)""",
         "INSERT INTO flyway_schema_history VALUES (3, '1.2', 'nickname', 'SQL', 'V1.2__nickname.sql', 33, 'app', "
         "now(), 5, true)",
         "migration 1.2 is still recorded as applied",
         "DELETE FROM flyway_schema_history WHERE version = '1.1'",
         "migration 1.1 is no longer recorded as applied",
         """UPDATE flyway_schema_history SET installed_on = installed_on + interval '1 day', execution_time = 99,
                                            installed_by = 'ci'"""),
    # pressly/goose internal/dialects/postgres.go CreateTable: id integer identity, version_id bigint, is_applied
    # boolean, tstamp timestamp NOT NULL default now(); goose inserts version 0 when it creates the table
    Tool("goose", "goose_db_version", "20240102000000",
         """CREATE TABLE goose_db_version (id integer PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY,
                                           version_id bigint NOT NULL, is_applied boolean NOT NULL,
                                           tstamp timestamp NOT NULL DEFAULT now())""",
         """INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, true), (20240101000000, true),
                                                                         (20240102000000, true)""",
         "INSERT INTO goose_db_version (version_id, is_applied) VALUES (20240103000000, true)",
         "migration 20240103000000 is still recorded as applied",
         "DELETE FROM goose_db_version WHERE version_id = 20240102000000",
         "migration 20240102000000 is no longer recorded as applied",
         "UPDATE goose_db_version SET tstamp = tstamp + interval '1 day'"),
)

# The tables that hold the current version only: a change of version is the difference.
POINTERS: tuple[tuple[str, str, str, str, str, str], ...] = (
    # golang-migrate/migrate database/postgres/postgres.go: version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL
    ("golang-migrate", "schema_migrations",
     "CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL)",
     "INSERT INTO schema_migrations VALUES (20240102000000, false)",
     "UPDATE schema_migrations SET version = 20240103000000",
     "at version 20240103000000, expected version 20240102000000 (the baseline's)"),
    # sqlalchemy/alembic alembic/ddl/impl.py version_table_impl: version_num VARCHAR(32) NOT NULL, primary key
    # alembic_version_pkc
    ("alembic", "alembic_version",
     "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
     "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))",
     "INSERT INTO alembic_version VALUES ('ae1027a6acf')",
     "UPDATE alembic_version SET version_num = '3b2f9c1d0e4a'",
     "at revision 3b2f9c1d0e4a, expected revision ae1027a6acf (the baseline's)"),
)


def _run(conn: psycopg.Connection[Any], script: str) -> None:
    with conn.transaction():
        conn.execute(script)  # type: ignore[arg-type]  # literal test DDL, several statements (simple protocol)


def _messages(before: Any, after: Any) -> list[str]:
    return [d.message for d in diff_database(before, after)]


@pytest.mark.parametrize("t", TOOLS, ids=lambda t: t.tool)
def test_each_tools_table_changed_as_a_rollback_leaves_it(conn: psycopg.Connection[Any], t: Tool) -> None:
    _run(conn, t.ddl)
    _run(conn, t.rows)
    baseline = snapshot_database(conn, [])
    table = next(m for m in baseline.migrations if m.table == t.table)
    assert (table.tool, table.version) == (t.tool, t.version)
    prefix = f"migration version table {t.table} ({t.tool}): "

    _run(conn, t.again)  # the same migrations, recorded again later, by someone else
    assert _messages(baseline, snapshot_database(conn, [])) == []

    _run(conn, t.add)  # the bad release's migration, left recorded by the rollback
    after = snapshot_database(conn, [])
    assert _messages(baseline, after) == [f"{prefix}{t.added} (the baseline's is not)", *_moved(t, after)]

    _run(conn, t.remove)  # and one of the baseline's gone
    after = snapshot_database(conn, [])
    assert _messages(baseline, after) == [
        f"{prefix}{t.added} (the baseline's is not)", f"{prefix}{t.removed} (the baseline's is)", *_moved(t, after)]


def _moved(t: Tool, after: Any) -> list[str]:
    """When the tool now reads another version than the baseline's: that line, both versions in the tool's words
    (the unit tests pin for which rows each tool's version moves)."""
    now = next(m for m in after.migrations if m.table == t.table)
    if now.version == t.version:
        return []
    return [f"migration version table {t.table} ({t.tool}): at {in_terms(t.tool, t.table, now.version)}, "
            f"expected {in_terms(t.tool, t.table, t.version)} (the baseline's)"]


@pytest.mark.parametrize(("tool", "table", "ddl", "rows", "change", "message"), POINTERS, ids=[p[0] for p in POINTERS])
def test_a_version_pointer_changed(conn: psycopg.Connection[Any], tool: str, table: str, ddl: str, rows: str,
                                  change: str, message: str) -> None:
    _run(conn, ddl)
    _run(conn, rows)
    baseline = snapshot_database(conn, [])
    assert [m.tool for m in baseline.migrations] == [tool]
    _run(conn, change)
    assert _messages(baseline, snapshot_database(conn, [])) == [f"migration version table {table} ({tool}): {message}"]


def test_every_table_side_by_side_is_told_apart(conn: psycopg.Connection[Any]) -> None:
    """All tools in one database: `migrations` and `schema_migrations` several times, in their own schemas."""
    for t in TOOLS:
        _run(conn, t.ddl)
        _run(conn, t.rows)
    for _, _, ddl, rows, _, _ in POINTERS:
        _run(conn, ddl)
        _run(conn, rows)
    conn.execute("CREATE TABLE public.changes (id int)")  # an application's own `changes`: not sqitch's
    found = {m.table: m.tool for m in snapshot_database(conn, []).migrations}
    assert found == {
        "SequelizeMeta": "sequelize", "_prisma_migrations": "prisma", "alembic_version": "alembic",
        "app_ex.schema_migrations": "ecto", "app_rb.ar_internal_metadata": "rails",
        "app_rb.schema_migrations": "rails", "app_ts.migrations": "typeorm", "app_ts.typeorm_metadata": "typeorm",
        "databasechangelog": "liquibase", "databasechangeloglock": "liquibase", "django_migrations": "django",
        "drizzle.__drizzle_migrations": "drizzle", "flyway_schema_history": "flyway", "goose_db_version": "goose",
        "knex_migrations": "knex", "knex_migrations_lock": "knex", "migrations": "db-migrate",
        "pgmigrations": "node-pg-migrate", "schema_migrations": "golang-migrate", "sqitch.changes": "sqitch",
        "sqitch.tags": "sqitch",
    }


def test_a_lock_left_held_is_a_difference(conn: psycopg.Connection[Any]) -> None:
    knex = next(t for t in TOOLS if t.tool == "knex")
    _run(conn, knex.ddl)
    _run(conn, knex.rows)
    baseline = snapshot_database(conn, [])
    conn.execute("UPDATE knex_migrations_lock SET is_locked = 1")  # a migrate run killed half-way
    assert _messages(baseline, snapshot_database(conn, [])) == [
        "migration version table knex_migrations_lock (knex) is locked (knex refuses to migrate: \"Migration table "
        "is already locked\"); the baseline's was not"]


def test_an_unknown_shape_under_a_known_name_is_compared_as_data(conn: psycopg.Connection[Any]) -> None:
    # Laravel's `migrations` (id, migration, batch): a tool the table does not know
    _run(conn, "CREATE TABLE migrations (id serial PRIMARY KEY, migration varchar(255) NOT NULL, batch int NOT NULL);"
               "INSERT INTO migrations (migration, batch) VALUES ('2014_10_12_000000_create_users_table', 1)")
    baseline = snapshot_database(conn, [])
    assert [(m.tool, m.columns) for m in baseline.migrations] == [("unrecognised", ("id", "migration", "batch"))]
    conn.execute("INSERT INTO migrations (migration, batch) VALUES ('2024_01_02_000000_add_nickname', 2)")
    assert _messages(baseline, snapshot_database(conn, [])) == [
        "migration version table migrations (unrecognised): rows differ (1 added, 0 removed; no known tool has "
        "these columns, so the table is compared as data)"]
