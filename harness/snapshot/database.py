"""Take the database half of a state snapshot from a live Postgres.

The schema is read kind by kind from the catalogs, with the queries of the
kinds table (kinds.py); this module adds the migration version tables, the
tracked data and the sequence positions.

All queries run in one REPEATABLE READ, READ ONLY transaction (when the caller
has no transaction open) so schema, version table and data are read from the
same MVCC snapshot (sequence positions excepted: a sequence is not
transactional, so its current position is read), with fixed session settings so the rendered text does not
depend on the caller's search_path, TimeZone or float formatting. The
transaction is always rolled back at the end, which also undoes those settings.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus
from psycopg.rows import class_row

from harness.snapshot.db_models import (
    DatabaseSnapshot,
    MigrationTable,
    SchemaFingerprint,
    SequencePosition,
    TableData,
)
from harness.snapshot.kinds import KINDS, ObjectKind, display_name, not_extension_member, scoped_query
from harness.snapshot.migration_tools import (
    TABLE_NAMES,
    UNRECOGNISED,
    Reading,
    compared_columns,
    compared_row,
    considered,
    natural_key,
    read,
    shape_for,
)

# Schemas that never belong to the application; silently dropped from `schemas`.
# Postgres reserves every name starting with pg_ (pg_toast, pg_temp_3, ...).
SYSTEM_SCHEMAS: frozenset[str] = frozenset({"pg_catalog", "information_schema", "pg_toast"})


def is_system_schema(name: str) -> bool:
    return name in SYSTEM_SCHEMAS or name.startswith("pg_")


# The default scope: every schema the application may own, public first (the
# lookup order of tracked tables given without a schema), then by name.
_ALL_SCHEMAS_SQL = (
    "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'"
    " ORDER BY nspname <> 'public', nspname"
)

# Settings that change how values and names are rendered as text. Fixing them
# makes two snapshots comparable even when taken from differently configured
# sessions. search_path=pg_catalog makes every user object render schema-qualified.
_SESSION_SETTINGS: dict[str, str] = {
    "search_path": "pg_catalog",
    "TimeZone": "UTC",
    "DateStyle": "ISO, YMD",
    "IntervalStyle": "postgres",
    "extra_float_digits": "1",
    "bytea_output": "hex",
    "lc_monetary": "C",
}


# ------------------------------------------------------------------ public entry


def snapshot_database(
    conn: psycopg.Connection[Any],
    tracked_tables: Sequence[str],
    schemas: Sequence[str] | None = None,
) -> DatabaseSnapshot:
    """Snapshot schema, migration version table(s), tracked-table data and the
    position of every sequence in scope (kept apart from the schema fingerprint).

    ``schemas`` None (the default) is every non-system schema of the database
    at the time of the snapshot; a list limits the snapshot to those.

    ``tracked_tables`` are plain (unquoted) names, either ``table`` - looked up in
    ``schemas`` in order, like a search_path - or ``schema.table``. A tracked table
    that does not exist is recorded as missing rather than raising, because "the
    table is absent" is a valid baseline (the migration under test may create it).
    """
    with _snapshot_session(conn):
        scope = all_schemas(conn) if schemas is None else _clean_schemas(schemas)
        return DatabaseSnapshot(
            database=_scalar(conn, "SELECT current_database()"),
            server_version=_scalar(conn, "SELECT current_setting('server_version')"),
            schema_fingerprint=snapshot_schema(conn, scope, every_schema=schemas is None),
            migrations=snapshot_migrations(conn, scope),
            data=snapshot_data(conn, tracked_tables, scope),
            sequence_positions=snapshot_sequence_positions(conn, scope),
        )


def snapshot_schema(conn: psycopg.Connection[Any], schemas: Sequence[str],
                    every_schema: bool = False) -> SchemaFingerprint:
    """The structural part of the snapshot: one catalog query per kind of ``KINDS``.
    ``every_schema``: ``schemas`` are all the non-system schemas (the default scope)."""
    scope = _clean_schemas(schemas)
    params = {"schemas": list(scope)}
    return SchemaFingerprint(schemas=scope, all_schemas=every_schema,
                             **{kind.field: _fetch_kind(conn, kind, params) for kind in KINDS})


def all_schemas(conn: psycopg.Connection[Any]) -> tuple[str, ...]:
    """Every non-system schema of the database, public first."""
    return tuple(r[0] for r in conn.execute(_ALL_SCHEMAS_SQL))


# ------------------------------------------------------------- session handling


@contextmanager
def _snapshot_session(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """Run the body in a transaction (or a savepoint inside the caller's open
    transaction, so the snapshot sees the caller's uncommitted work) that is
    always rolled back: the snapshot only reads, and rolling back restores the
    caller's session settings."""
    status = conn.info.transaction_status
    if status not in (TransactionStatus.IDLE, TransactionStatus.INTRANS):
        raise ValueError(f"cannot snapshot: connection is in transaction state {status.name}")
    with conn.transaction() as tx:
        if status == TransactionStatus.IDLE:
            # Only possible as the first statement of a fresh transaction.
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        for name, value in _SESSION_SETTINGS.items():
            conn.execute("SELECT set_config(%s, %s, true)", (name, value))
        yield
        raise psycopg.Rollback(tx)


def _clean_schemas(schemas: Sequence[str]) -> tuple[str, ...]:
    """Dedupe while keeping order (order is the lookup order of tracked tables)
    and drop system schemas, which are never part of an application's state."""
    if isinstance(schemas, str):  # a bare "public" would otherwise become p,u,b,...
        schemas = (schemas,)
    seen: dict[str, None] = {}
    for s in schemas:
        if not is_system_schema(s):
            seen.setdefault(s, None)
    return tuple(seen)


def _scalar(conn: psycopg.Connection[Any], query: str) -> str:
    row = conn.execute(query).fetchone()
    assert row is not None
    return str(row[0])


def _fetch_kind(conn: psycopg.Connection[Any], kind: ObjectKind, params: dict[str, Any]) -> tuple[Any, ...]:
    """Run a kind's catalog query (only a scoped one takes the schemas: an unscoped
    query is sent without parameters, so its ``%`` needs no escaping); sort by key
    so the snapshot does not depend on catalog order."""
    args = params if kind.scoped else None
    if kind.model is None:
        rows: list[Any] = [r[0] for r in conn.execute(kind.query, args)]
    else:
        with conn.cursor(row_factory=class_row(kind.model)) as cur:
            rows = cur.execute(kind.query, args).fetchall()
    return tuple(sorted(rows, key=kind.key))


# ------------------------------------------------------------ sequence positions

# Every sequence in scope, with what the snapshot role may do with it (reading
# the relation also needs USAGE on its schema). A sequence is read outside MVCC (its value is the current one, not the
# transaction snapshot's), and reading it has no side effect.
_SEQUENCE_ACCESS_SQL = scoped_query(
    """
    SELECT {name} AS name, n.nspname, c.relname, s.seqincrement AS increment,
           has_sequence_privilege(c.oid, 'SELECT') AND has_schema_privilege(n.oid, 'USAGE') AS can_select,
           CASE WHEN has_sequence_privilege(c.oid, 'SELECT,USAGE')
                THEN pg_sequence_last_value(c.oid) END AS called_value
    FROM pg_sequence s
    JOIN pg_class c ON c.oid = s.seqrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE {in_scope} AND {not_ext}
    """,
    name=display_name("n.nspname", "c.relname"),
    not_ext=not_extension_member("pg_class", "c.oid"),
)

_POSITION_BATCH = 200  # sequences read per UNION ALL query


def snapshot_sequence_positions(conn: psycopg.Connection[Any], schemas: Sequence[str]) -> tuple[SequencePosition, ...]:
    """``last_value`` and ``is_called`` of every sequence in scope.

    Read from the sequence relation itself when the role has SELECT on it:
    only that shows ``is_called`` and the value a ``setval(seq, n, false)``
    left (pg_sequences and pg_sequence_last_value() give NULL for a sequence
    that is not called). With USAGE only, pg_sequence_last_value() still gives
    a called sequence's value. Otherwise the position is recorded as unknown
    (``last_value`` None) instead of failing the snapshot.
    """
    params = {"schemas": list(_clean_schemas(schemas))}
    rows = conn.execute(_SEQUENCE_ACCESS_SQL, params).fetchall()
    readable = [(i, r[1], r[2]) for i, r in enumerate(rows) if r[4]]
    read: dict[int, tuple[int, bool]] = {}
    for start in range(0, len(readable), _POSITION_BATCH):
        query = sql.SQL(" UNION ALL ").join(
            sql.SQL("SELECT {i}, last_value, is_called FROM {seq}").format(
                i=sql.Literal(i), seq=sql.Identifier(nsp, rel))
            for i, nsp, rel in readable[start:start + _POSITION_BATCH]
        )
        read.update((r[0], (int(r[1]), bool(r[2]))) for r in conn.execute(query))
    positions = []
    for i, (name, _nsp, _rel, increment, _can_select, called_value) in enumerate(rows):
        if i in read:
            last_value, is_called = read[i]
        elif called_value is not None:
            last_value, is_called = int(called_value), True
        else:
            last_value, is_called = None, False
        positions.append(SequencePosition(name=name, last_value=last_value, is_called=is_called,
                                          increment=int(increment)))
    return tuple(sorted(positions, key=lambda p: p.key))


# ------------------------------------------------------------------- migrations

# Which tables are version tables, and how each tool reads its own, is the table of
# migration tools (migration_tools.SHAPES); this section only reads them.


def snapshot_migrations(conn: psycopg.Connection[Any], schemas: Sequence[str]) -> tuple[MigrationTable, ...]:
    """Every migration tool's table in scope (by name; the columns say which tool), with its rows."""
    found = [_read_migration_table(conn, nsp, rel) for nsp, rel in _find_migration_tables(conn, schemas)]
    return tuple(sorted(found, key=lambda m: m.key))


def _find_migration_tables(conn: psycopg.Connection[Any], schemas: Sequence[str]) -> list[tuple[str, str]]:
    rows = conn.execute(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind IN ('r', 'p') AND c.relname = ANY(%s) AND n.nspname = ANY(%s)"
        # one the snapshot role cannot read (another team's schema) is not this application's
        " AND has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'SELECT')",
        (sorted(TABLE_NAMES), list(_clean_schemas(schemas))),
    ).fetchall()
    return [(r[0], r[1]) for r in rows if considered(r[0], r[1])]


def _table_columns(conn: psycopg.Connection[Any], nsp: str, rel: str) -> list[str]:
    rows = conn.execute(
        "SELECT a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped"
        " ORDER BY a.attnum",
        (nsp, rel),
    ).fetchall()
    return [r[0] for r in rows]


def _read_migration_table(conn: psycopg.Connection[Any], nsp: str, rel: str) -> MigrationTable:
    """Every column is read (the tool's order of application comes from the ignored ones), the
    tool's reading is derived from all of them, and only the compared columns are kept."""
    columns = _table_columns(conn, nsp, rel)
    query = sql.SQL("SELECT {cols} FROM {table}").format(
        cols=sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c)) for c in columns),
        table=sql.Identifier(nsp, rel),
    )
    rows = [tuple(r) for r in conn.execute(query)] if columns else []
    return migration_table(rel, columns, rows, schema=nsp)


def migration_table(rel: str, columns: Sequence[str], rows: Sequence[Sequence[str | None]],
                    schema: str = "public") -> MigrationTable:
    """A version table as the snapshot records it, from all its columns and rows (text values).

    Pure, so every tool's rules are unit-tested on real rows without a database. A known name
    whose columns are no tool's shape is kept whole under the tool "unrecognised": compared as
    data, never dropped, with no version."""
    shape = shape_for(rel, columns)
    reading = read(shape, [dict(zip(columns, r)) for r in rows]) if shape else Reading(None, (), False)
    kept = sorted((compared_row(shape, columns, r) for r in rows), key=_row_sort_key)
    return MigrationTable(
        tool=shape.tool if shape else UNRECOGNISED,  # type: ignore[arg-type]  # the Literal lists SHAPES' tools
        table=rel if schema == "public" else f"{schema}.{rel}",
        columns=compared_columns(shape, columns),
        rows=tuple(kept),
        version=reading.version,
        applied=reading.applied,
        dirty=reading.dirty,
    )


def _row_sort_key(row: tuple[str | None, ...]) -> tuple[tuple[int, int, str], ...]:
    return tuple(natural_key(v) for v in row)


# ------------------------------------------------------------------------- data


def snapshot_data(
    conn: psycopg.Connection[Any], tracked_tables: Sequence[str], schemas: Sequence[str]
) -> tuple[TableData, ...]:
    """Row count and content checksum for each tracked table (missing marker if absent)."""
    scope = _clean_schemas(schemas)
    names = dict.fromkeys(tracked_tables)  # dedupe, keep a stable order
    return tuple(sorted((_table_data(conn, name, scope) for name in names), key=lambda d: d.key))


def _resolve_table(conn: psycopg.Connection[Any], name: str, schemas: Sequence[str]) -> tuple[str, str] | None:
    """(schema, table) of a tracked name; ``schema.table`` is explicit, a bare
    name is searched in ``schemas`` in order. Views are accepted too: a view over
    the real data is a legitimate thing to compare."""
    if "." in name:
        nsp, rel = name.split(".", 1)
        candidates = [nsp]
    else:
        rel, candidates = name, list(schemas)
    row = conn.execute(
        "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relname = %s AND n.nspname = ANY(%s) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')"
        " ORDER BY array_position(%s, n.nspname::text) LIMIT 1",
        (rel, candidates, candidates),
    ).fetchone()
    return (row[0], rel) if row else None


# Order-independent multiset hash: each row is hashed (md5 of its JSON text)
# and the 128-bit row hashes are summed as two 64-bit halves in arbitrary-
# precision numeric. Unlike string_agg(... ORDER BY ...) this needs no sort and
# has no 1 GB text limit, and unlike XOR it still sees duplicated rows. The
# alias ``_rr_row.*`` is a whole-row reference even if the table has a column
# whose name equals the alias.
_CHECKSUM_SQL = """
    SELECT count(*),
           coalesce(sum(('x' || substr(h, 1, 16))::bit(64)::bigint::numeric), 0)::text,
           coalesce(sum(('x' || substr(h, 17, 16))::bit(64)::bigint::numeric), 0)::text
    FROM (SELECT md5(row_to_json(_rr_row.*)::text) AS h FROM {table} AS _rr_row) AS _rr_hashes
"""


def _table_data(conn: psycopg.Connection[Any], name: str, schemas: Sequence[str]) -> TableData:
    resolved = _resolve_table(conn, name, schemas)
    if resolved is None:
        return TableData(table=name, missing=True)
    query = sql.SQL(_CHECKSUM_SQL).format(table=sql.Identifier(*resolved))
    row = conn.execute(query).fetchone()
    assert row is not None
    count, high, low = int(row[0]), row[1], row[2]
    checksum = hashlib.sha256(f"{count}:{high}:{low}".encode()).hexdigest()
    return TableData(table=name, row_count=count, checksum=checksum,
                     column_checksums=_column_checksums(conn, resolved))


# The same multiset hash, per column: md5 of each value's text (NULL marked
# apart from the text 'NULL'), summed as two 64-bit halves.
_COLUMN_SUM = ("coalesce(sum(('x' || substr(md5(coalesce({col}::text, '\\N') || ({col} IS NULL)::text), {start}, 16))"
               "::bit(64)::bigint::numeric), 0)::text")


def _column_checksums(conn: psycopg.Connection[Any], resolved: tuple[str, str]) -> dict[str, str]:
    cols = [r[0] for r in conn.execute(
        "SELECT a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        resolved).fetchall()]
    if not cols:
        return {}
    parts = [sql.SQL(_COLUMN_SUM).format(col=sql.Identifier(c), start=sql.Literal(start))
             for c in cols for start in (1, 17)]
    row = conn.execute(sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(parts),
                                                           sql.Identifier(*resolved))).fetchone()
    assert row is not None
    return {c: hashlib.sha256(f"{row[2 * i]}:{row[2 * i + 1]}".encode()).hexdigest()[:32]
            for i, c in enumerate(cols)}
