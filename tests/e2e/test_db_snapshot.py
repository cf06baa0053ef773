"""End-to-end test of the database snapshot and diff against a real Postgres.

Runs the locally built ``rollback-rehearsal/postgres:15`` image through
testcontainers (one container per module, one fresh database per test) and
rehearses what the harness does for real: snapshot, apply a bad migration,
snapshot, read the diff, revert, and prove the diff is empty again.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

# tests/e2e is on sys.path (no package): the Postgres fixtures shared with test_migration_tables.py.
from pg import admin_conninfo, conn

from harness.journal import Difference
from harness.snapshot import DatabaseSnapshot, diff_database, snapshot_database

pytestmark = pytest.mark.e2e
__all__ = ["admin_conninfo", "conn"]  # fixtures: imported to be found here

TRACKED = ("users", "orders", "audit_log")  # audit_log never exists: the "missing" marker


# ------------------------------------------------------------- the application

APP_SCHEMA = """
CREATE EXTENSION citext;
CREATE TYPE mood AS ENUM ('happy', 'sad');
CREATE SEQUENCE invoice_no START 1000 INCREMENT 10;
CREATE DOMAIN percent AS integer DEFAULT 0 CHECK (VALUE BETWEEN 0 AND 100);
CREATE TABLE users (
    id         bigserial PRIMARY KEY,
    email      citext NOT NULL UNIQUE,
    mood       mood NOT NULL DEFAULT 'happy',
    discount   percent NOT NULL,
    created_at timestamptz NOT NULL DEFAULT '2024-01-01 00:00:00+00'
);
CREATE TABLE orders (
    id         integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES users (id),
    amount     numeric(10, 2) NOT NULL CHECK (amount >= 0),
    invoice    bigint NOT NULL DEFAULT nextval('invoice_no'),
    note       text COLLATE "C",
    created_at timestamptz NOT NULL
);
CREATE INDEX orders_created_idx ON orders (created_at);
CREATE VIEW big_orders AS SELECT id, user_id, amount FROM orders WHERE amount > 50;
CREATE FUNCTION touch_note() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.note := coalesce(NEW.note, 'n/a'); RETURN NEW; END $$;
CREATE TRIGGER orders_touch BEFORE INSERT OR UPDATE ON orders
    FOR EACH ROW EXECUTE FUNCTION touch_note();
CREATE TABLE schema_migrations (version bigint PRIMARY KEY, dirty boolean NOT NULL);
INSERT INTO schema_migrations VALUES (1, false);
INSERT INTO users (email, mood)
    SELECT 'user' || g || '@example.com', CASE WHEN g % 2 = 0 THEN 'sad' ELSE 'happy' END::mood
    FROM generate_series(1, 10) g;
INSERT INTO orders (user_id, amount, created_at)
    SELECT g, g * 10.5, timestamptz '2024-02-01 00:00:00+00' + g * interval '1 hour'
    FROM generate_series(1, 10) g;
"""

# The migration under test, "version 2": all of it is what a rollback must undo.
BAD_MIGRATION = """
ALTER TABLE users ADD COLUMN nickname text;
CREATE INDEX users_nickname_idx ON users (nickname);
ALTER TYPE mood ADD VALUE 'angry';
DELETE FROM orders WHERE id IN (2, 5, 7);
UPDATE schema_migrations SET version = 2;
"""

# Its down migration. Postgres cannot drop an enum label, so the type is
# rebuilt; the deleted rows come back with their original ids and values.
REVERT = """
DROP INDEX users_nickname_idx;
ALTER TABLE users DROP COLUMN nickname;
ALTER TABLE users ALTER COLUMN mood DROP DEFAULT;
ALTER TYPE mood RENAME TO mood_old;
CREATE TYPE mood AS ENUM ('happy', 'sad');
ALTER TABLE users ALTER COLUMN mood TYPE mood USING mood::text::mood;
ALTER TABLE users ALTER COLUMN mood SET DEFAULT 'happy';
DROP TYPE mood_old;
INSERT INTO orders (id, user_id, amount, invoice, note, created_at) OVERRIDING SYSTEM VALUE
    SELECT id, id, id * 10.5, invoice, 'n/a', timestamptz '2024-02-01 00:00:00+00' + id * interval '1 hour'
    FROM (VALUES (2, 1010), (5, 1040), (7, 1060)) AS deleted (id, invoice);
UPDATE schema_migrations SET version = 1;
"""


def _run(conn: psycopg.Connection[Any], script: str) -> None:
    """Run a multi-statement script; ALTER TYPE ... ADD VALUE needs its own
    statement, so statements are sent one by one in a single transaction."""
    with conn.transaction():
        for statement in (s.strip() for s in _split_sql(script)):
            if statement:
                conn.execute(statement.encode())


def _split_sql(script: str) -> list[str]:
    """Split on semicolons outside $$-quoted bodies (enough for these scripts)."""
    parts, current, in_body = [], [], False
    for chunk in script.split("$$"):
        if in_body:
            current.append("$$" + chunk + "$$")
        else:
            pieces = chunk.split(";")
            current.append(pieces[0])
            for piece in pieces[1:]:
                parts.append("".join(current))
                current = [piece]
        in_body = not in_body
    parts.append("".join(current))
    return parts


def _snap(conn: psycopg.Connection[Any], tracked: tuple[str, ...] = TRACKED) -> DatabaseSnapshot:
    return snapshot_database(conn, tracked)


def _messages(diffs: list[Difference]) -> list[str]:
    return [d.message for d in diffs]


@pytest.fixture
def app(conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    _run(conn, APP_SCHEMA)
    return conn


# ---------------------------------------------------------------------- tests


def test_snapshot_contents_come_from_the_catalogs(app: psycopg.Connection[Any]) -> None:
    s = _snap(app)
    fp = s.schema_fingerprint
    assert {t.name for t in fp.tables} == {"orders", "schema_migrations", "users"}
    columns = {c.key: c for c in fp.columns}
    assert columns["orders.amount"].type == "numeric(10,2)"
    assert columns["orders.note"].collation == '"C"'
    assert columns["orders.id"].identity == "always"
    assert columns["users.mood"].default == "'happy'::public.mood"
    assert columns["users.email"].type == "public.citext"
    assert {c.type for c in fp.constraints} >= {"primary key", "unique", "foreign key", "check"}
    assert [e.labels for e in fp.enums if e.name == "mood"] == [("happy", "sad")]
    assert [v.name for v in fp.views] == ["big_orders"]
    assert [(d.name, d.base_type, d.default, d.checks) for d in fp.domains] == [
        ("percent", "integer", "0", ("percent_check: CHECK (((VALUE >= 0) AND (VALUE <= 100)))",))
    ]
    assert {q.name: q.increment for q in fp.sequences}["invoice_no"] == 10
    assert [t.definition for t in fp.triggers] == [
        ("CREATE TRIGGER orders_touch BEFORE INSERT OR UPDATE ON public.orders "
        "FOR EACH ROW EXECUTE FUNCTION public.touch_note()")
    ]
    # citext's own functions and types belong to the extension, not to the app.
    assert [f.signature for f in fp.functions] == ["touch_note()"]
    assert {e.name for e in fp.extensions} == {"citext", "plpgsql"}
    assert [(m.tool, m.version, m.dirty) for m in s.migrations] == [("golang-migrate", "1", False)]
    data = {d.table: d for d in s.data}
    assert (data["users"].row_count, data["orders"].row_count) == (10, 10)
    assert data["audit_log"].missing and data["audit_log"].checksum is None
    positions = {q.name: (q.last_value, q.is_called, q.increment) for q in s.sequence_positions}
    assert positions == {"invoice_no": (1090, True, 10), "orders_id_seq": (10, True, 1),
                         "users_id_seq": (10, True, 1)}
    assert DatabaseSnapshot.from_json(s.model_dump_json()) == s


def test_no_op_yields_no_difference(app: psycopg.Connection[Any]) -> None:
    baseline = _snap(app)
    app.execute("ANALYZE")  # touches statistics only
    after = _snap(app)
    assert diff_database(baseline, after) == []
    assert after.schema_hash == baseline.schema_hash


def test_bad_migration_is_named_and_revert_restores_baseline(app: psycopg.Connection[Any]) -> None:
    baseline = _snap(app)

    _run(app, BAD_MIGRATION)
    after_migration = _snap(app)
    assert after_migration.schema_hash != baseline.schema_hash
    assert diff_database(baseline, after_migration) == [
        Difference(area="schema", object="column users.nickname",
                   message="column users.nickname is still present (added after baseline)"),
        Difference(area="schema", object="index users_nickname_idx",
                   message="index users_nickname_idx is still present (added after baseline)"),
        Difference(area="schema", object="enum type mood",
                   message="enum type mood: values changed [happy, sad] -> [happy, sad, angry]"),
        Difference(area="migrations", object="migration version table schema_migrations",
                   message="migration version table schema_migrations (golang-migrate): at version 2, expected "
                           "version 1 (the baseline's)"),
        Difference(area="data", object="table orders", message="table orders: 3 rows lost (10 -> 7)"),
        # Every users row now carries "nickname": null, so its content differs too.
        Difference(area="data", object="table users",
                   message="table users: content changed (same row count 10, checksum differs); "
                           "column nickname not in the baseline"),
    ]

    _run(app, REVERT)
    after_rollback = _snap(app)
    assert diff_database(baseline, after_rollback) == []
    assert after_rollback.schema_hash == baseline.schema_hash


def _physical_order(conn: psycopg.Connection[Any]) -> list[int]:
    return [r[0] for r in conn.execute("SELECT id FROM orders")]  # heap order, no ORDER BY on purpose


def test_row_order_does_not_change_the_checksum(app: psycopg.Connection[Any]) -> None:
    baseline = _snap(app)
    original_order = _physical_order(app)

    # Update-then-revert: the new row versions land at the end of the heap.
    app.execute("UPDATE orders SET amount = amount + 1 WHERE id <= 5")
    app.execute("UPDATE orders SET amount = amount - 1 WHERE id <= 5")
    app.execute("VACUUM FULL orders")
    shuffled = _physical_order(app)
    assert shuffled != original_order, "test precondition: physical row order must have changed"
    assert diff_database(baseline, _snap(app)) == []

    app.execute("CLUSTER orders USING orders_created_idx")
    app.execute("CREATE INDEX orders_amount_desc ON orders (amount DESC)")
    app.execute("CLUSTER orders USING orders_amount_desc")
    assert _physical_order(app) != sorted(original_order)
    app.execute("DROP INDEX orders_amount_desc")
    assert diff_database(baseline, _snap(app)) == []


def test_same_count_content_change_and_back(app: psycopg.Connection[Any]) -> None:
    baseline = _snap(app)
    app.execute("UPDATE orders SET note = 'edited' WHERE id = 3")
    assert _messages(diff_database(baseline, _snap(app))) == [
        "table orders: content changed (same row count 10, checksum differs); values changed in column note"
    ]
    app.execute("UPDATE orders SET note = 'n/a' WHERE id = 3")
    assert diff_database(baseline, _snap(app)) == []


def test_duplicate_rows_are_counted(conn: psycopg.Connection[Any]) -> None:
    """A multiset checksum must see one duplicated row replacing another."""
    conn.execute("CREATE TABLE t (v int)")
    conn.execute("INSERT INTO t VALUES (1), (2)")
    baseline = _snap(conn, ("t",))
    conn.execute("UPDATE t SET v = 1 WHERE v = 2")
    assert _messages(diff_database(baseline, _snap(conn, ("t",)))) == [
        "table t: content changed (same row count 2, checksum differs); values changed in column v"
    ]


def test_session_settings_do_not_change_the_snapshot(app: psycopg.Connection[Any]) -> None:
    """Text rendering depends on TimeZone, search_path, float digits: the snapshot pins them."""
    baseline = _snap(app)
    app.execute("SET TimeZone = 'Asia/Kathmandu'")
    app.execute("SET search_path = public, pg_catalog")
    app.execute("SET extra_float_digits = 0")
    app.execute("SET DateStyle = 'SQL, DMY'")
    assert diff_database(baseline, _snap(app)) == []
    # ... and the caller's settings are left as they were.
    assert app.execute("SHOW TimeZone").fetchone() == ("Asia/Kathmandu",)
    assert app.execute("SHOW search_path").fetchone() == ("public, pg_catalog",)


def test_snapshot_inside_open_transaction_sees_it_and_leaves_it_usable(admin_conninfo: str,
                                                                        app: psycopg.Connection[Any]) -> None:
    baseline = _snap(app)
    dbname = app.info.dbname
    with psycopg.connect(make_conninfo(admin_conninfo, dbname=dbname)) as tx_conn:  # autocommit off
        tx_conn.execute("DELETE FROM orders WHERE id = 1")
        inside = snapshot_database(tx_conn, TRACKED)
        assert _messages(diff_database(baseline, inside)) == ["table orders: 1 row lost (10 -> 9)"]
        assert tx_conn.execute("SHOW search_path").fetchone() == ('"$user", public',)
        tx_conn.rollback()
    assert diff_database(baseline, _snap(app)) == []


def test_quoted_names_and_other_schemas(conn: psycopg.Connection[Any]) -> None:
    conn.execute('CREATE SCHEMA app')
    conn.execute('CREATE TABLE app."Order Items" ("Qty" int, "select" text)')
    conn.execute('INSERT INTO app."Order Items" VALUES (1, \'a\'), (2, \'b\')')
    s = snapshot_database(conn, ["app.Order Items", "Order Items"], schemas=("public", "app"))
    assert [t.name for t in s.schema_fingerprint.tables] == ['app."Order Items"']
    assert {c.key for c in s.schema_fingerprint.columns} == {'app."Order Items"."Qty"', 'app."Order Items"."select"'}
    data = {d.table: d for d in s.data}
    assert data["app.Order Items"].row_count == 2
    assert data["Order Items"].checksum == data["app.Order Items"].checksum  # found via the schema list

    conn.execute('ALTER TABLE app."Order Items" ALTER COLUMN "Qty" TYPE bigint')
    after = snapshot_database(conn, ["app.Order Items", "Order Items"], schemas=("public", "app"))
    assert _messages(diff_database(s, after)) == ['column app."Order Items"."Qty" type changed: integer -> bigint']


def test_other_migration_tools_are_detected(conn: psycopg.Connection[Any]) -> None:
    _run(conn, """
    CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY);
    INSERT INTO alembic_version VALUES ('ae10b2c3');
    CREATE TABLE flyway_schema_history (
        installed_rank int PRIMARY KEY, version varchar(50), description varchar(200) NOT NULL,
        type varchar(20) NOT NULL, script varchar(1000) NOT NULL, checksum int,
        installed_by varchar(100) NOT NULL, installed_on timestamp NOT NULL DEFAULT now(),
        execution_time int NOT NULL, success boolean NOT NULL);
    INSERT INTO flyway_schema_history VALUES
        (1, '1', 'init', 'SQL', 'V1__init.sql', 11, 'app', now(), 12, true),
        (2, '1.1', 'more', 'SQL', 'V1.1__more.sql', 22, 'app', now(), 7, true);
    CREATE TABLE goose_db_version (id serial PRIMARY KEY, version_id bigint NOT NULL,
        is_applied boolean NOT NULL, tstamp timestamp DEFAULT now());
    INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, true), (1, true), (2, true);
    """)
    baseline = snapshot_database(conn, [])
    versions = {m.table: (m.tool, m.version) for m in baseline.migrations}
    assert versions == {
        "alembic_version": ("alembic", "ae10b2c3"),
        "flyway_schema_history": ("flyway", "1.1"),
        "goose_db_version": ("goose", "2"),
    }
    flyway = next(m for m in baseline.migrations if m.tool == "flyway")
    assert "installed_on" not in flyway.columns and "execution_time" not in flyway.columns

    # Re-applying the same history later (new timestamps) is not a difference...
    conn.execute("UPDATE flyway_schema_history SET installed_on = now() + interval '1 day', execution_time = 99")
    assert diff_database(baseline, snapshot_database(conn, [])) == []
    # ... but a goose down-migration that was never undone is.
    conn.execute("DELETE FROM goose_db_version WHERE version_id = 2")
    assert _messages(diff_database(baseline, snapshot_database(conn, []))) == [
        "migration version table goose_db_version (goose): migration 2 is no longer recorded as applied "
        "(the baseline's is)",
        "migration version table goose_db_version (goose): at version 1, expected version 2 (the baseline's)",
    ]


def test_sequence_advance_is_normal_but_a_rewind_is_reported(app: psycopg.Connection[Any]) -> None:
    baseline = _snap(app)

    # Normal use: rows inserted and removed again leave the data at baseline,
    # with every sequence moved forward. Not a difference.
    app.execute("INSERT INTO users (email) VALUES ('x1@example.com'), ('x2@example.com')")
    app.execute("INSERT INTO orders (user_id, amount, created_at) VALUES (1, 1, now()), (1, 2, now())")
    app.execute("DELETE FROM orders WHERE id > 10")
    app.execute("DELETE FROM users WHERE id > 10")
    advanced = _snap(app)
    assert {q.name: q.last_value for q in advanced.sequence_positions} == {
        "invoice_no": 1110, "orders_id_seq": 12, "users_id_seq": 12}
    assert diff_database(baseline, advanced) == []

    # Set back to exactly where the baseline would go on: still not a difference.
    app.execute("SELECT setval('orders_id_seq', 11, false)")
    app.execute("SELECT setval('invoice_no', 1090)")
    assert diff_database(baseline, _snap(app)) == []

    # A migration rewinds them: the next INSERT would reuse ids already handed out.
    app.execute("SELECT setval('orders_id_seq', 1)")
    app.execute("SELECT setval('invoice_no', 1090, false)")
    rewound = _snap(app)
    assert rewound.schema_hash == baseline.schema_hash  # the position is not part of the fingerprint
    assert diff_database(baseline, rewound) == [
        Difference(area="data", object="sequence invoice_no",
                   message="sequence invoice_no was rewound: next value 1090, baseline had handed out up to 1090; "
                           "new rows can collide with ids already used"),
        Difference(area="data", object="sequence orders_id_seq",
                   message="sequence orders_id_seq was rewound: next value 2, baseline had handed out up to 10; "
                           "new rows can collide with ids already used"),
    ]
    # The snapshot read the sequences without moving them.
    assert app.execute("SELECT last_value, is_called FROM orders_id_seq").fetchone() == (1, True)


def test_sequence_positions_follow_the_roles_privileges(admin_conninfo: str, conn: psycopg.Connection[Any]) -> None:
    """A sequence the role may not SELECT is recorded, never fails the snapshot:
    USAGE still shows a called sequence's value, no privilege shows nothing."""
    role = f"r_{uuid.uuid4().hex[:12]}"
    _run(conn, f"""
    CREATE SEQUENCE s_select; SELECT setval('s_select', 7, false);
    CREATE SEQUENCE s_usage_called; SELECT setval('s_usage_called', 4);
    CREATE SEQUENCE s_usage_fresh;
    CREATE SEQUENCE s_none; SELECT setval('s_none', 9);
    CREATE ROLE {role} LOGIN PASSWORD 'pw';
    GRANT SELECT ON SEQUENCE s_select TO {role};
    GRANT USAGE ON SEQUENCE s_usage_called, s_usage_fresh TO {role};
    """)
    try:
        with psycopg.connect(make_conninfo(admin_conninfo, dbname=conn.info.dbname, user=role, password="pw"),
                             autocommit=True) as limited:
            s = snapshot_database(limited, [])
        assert {q.name: (q.last_value, q.is_called) for q in s.sequence_positions} == {
            "s_select": (7, False), "s_usage_called": (4, True), "s_usage_fresh": (None, False),
            "s_none": (None, False)}
    finally:
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_row_level_security_policy_is_named_and_dropping_it_restores_baseline(app: psycopg.Connection[Any]) -> None:
    baseline = _snap(app)
    _run(app, """
ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON users AS RESTRICTIVE FOR UPDATE TO PUBLIC USING (id > 0) WITH CHECK (discount < 50);
""")
    after = _snap(app)
    (policy,) = after.schema_fingerprint.policies
    assert (policy.name, policy.table, policy.command, policy.permissive, policy.roles) == (
        "own_rows", "users", "update", False, ("public",))
    assert policy.using == "(id > 0)" and policy.with_check is not None and "< 50" in policy.with_check
    assert _messages(diff_database(baseline, after)) == [
        "table users row level security changed: false -> true",
        "table users forced row level security changed: false -> true",
        "policy own_rows on users is still present (added after baseline)",
    ]
    _run(app, """
DROP POLICY own_rows ON users;
ALTER TABLE users NO FORCE ROW LEVEL SECURITY;
ALTER TABLE users DISABLE ROW LEVEL SECURITY;
""")
    assert diff_database(baseline, _snap(app)) == []
