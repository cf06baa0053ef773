"""Unit tests of the database diff on hand-built snapshots (pure logic, no database)."""

from __future__ import annotations

import random
from typing import Any

import pydantic
import pytest

from harness.journal import Difference
from harness.snapshot.database import migration_table
from harness.snapshot.db_models import (
    ColumnInfo,
    ConstraintInfo,
    DatabaseSnapshot,
    DomainInfo,
    EnumInfo,
    ExtensionInfo,
    FunctionInfo,
    IndexInfo,
    PolicyInfo,
    MigrationTable,
    SchemaFingerprint,
    SequenceInfo,
    SequencePosition,
    TableData,
    TableInfo,
    TriggerInfo,
    ViewInfo,
)
from harness.snapshot.diff_db import diff_data, diff_database, diff_sequence_positions, rows_lost

# ------------------------------------------------------------------ fixtures


def _schema(**changes: Any) -> SchemaFingerprint:
    """A small but complete schema: users/orders, an enum, a view, a function..."""
    base: dict[str, Any] = {
        "schemas": ("public",),
        "namespaces": ("public",),
        "tables": (TableInfo(name="orders", kind="table", persistence="permanent"),
                TableInfo(name="users", kind="table", persistence="permanent")),
        "columns": (
            ColumnInfo(table="orders", name="created_at", position=3, type="timestamp with time zone",
                       default="now()", not_null=True),
            ColumnInfo(table="orders", name="id", position=1, type="bigint", not_null=True, identity="always"),
            ColumnInfo(table="orders", name="user_id", position=2, type="bigint", not_null=True),
            ColumnInfo(table="users", name="age", position=3, type="integer"),
            ColumnInfo(table="users", name="email", position=2, type="text", not_null=True),
            ColumnInfo(table="users", name="id", position=1, type="bigint", not_null=True,
                       default="nextval('public.users_id_seq'::regclass)"),
        ),
        "indexes": (
            IndexInfo(name="orders_created_idx", table="orders",
                      definition="CREATE INDEX orders_created_idx ON public.orders USING btree (created_at)"),
            IndexInfo(name="orders_pkey", table="orders", unique=True, primary=True,
                      definition="CREATE UNIQUE INDEX orders_pkey ON public.orders USING btree (id)"),
            IndexInfo(name="users_pkey", table="users", unique=True, primary=True,
                      definition="CREATE UNIQUE INDEX users_pkey ON public.users USING btree (id)"),
        ),
        "constraints": (
            ConstraintInfo(name="orders_pkey", table="orders", type="primary key", definition="PRIMARY KEY (id)"),
            ConstraintInfo(name="orders_user_id_fkey", table="orders", type="foreign key",
                           definition="FOREIGN KEY (user_id) REFERENCES public.users(id)"),
            ConstraintInfo(name="users_pkey", table="users", type="primary key", definition="PRIMARY KEY (id)"),
        ),
        "views": (ViewInfo(name="recent_orders", kind="view",
                        definition=" SELECT orders.id\n   FROM public.orders\n  WHERE (orders.created_at > now());"),),
        "sequences": (SequenceInfo(name="users_id_seq", type="bigint", start=1, increment=1, min_value=1,
                                max_value=9223372036854775807, cache=1, cycle=False, owned_by="users.id"),),
        "enums": (EnumInfo(name="mood", labels=("a", "b")),),
        "functions": (FunctionInfo(signature="touch()", kind="function", result="trigger",
                                definition_md5="0" * 32),),
        "triggers": (TriggerInfo(name="orders_touch", table="orders", enabled="origin",
                              definition="CREATE TRIGGER orders_touch BEFORE UPDATE ON public.orders "
                                         "FOR EACH ROW EXECUTE FUNCTION public.touch()"),),
        "extensions": (ExtensionInfo(name="plpgsql", version="1.0", schema_name="pg_catalog"),),
    }
    base.update(changes)
    return SchemaFingerprint(**base)


def _migrations(version: str = "1", dirty: bool = False) -> tuple[MigrationTable, ...]:
    return (MigrationTable(tool="golang-migrate", table="schema_migrations", columns=("version", "dirty"),
                           rows=((version, "true" if dirty else "false"),), version=version, dirty=dirty),)


def _data(**counts: tuple[int, str] | None) -> tuple[TableData, ...]:
    """_data(orders=(10, "c1")) ; None marks the table missing."""
    out = []
    for name, value in sorted(counts.items()):
        if value is None:
            out.append(TableData(table=name, missing=True))
        else:
            out.append(TableData(table=name, row_count=value[0], checksum=value[1]))
    return tuple(out)


def _pos(name: str = "users_id_seq", last_value: int | None = 5, is_called: bool = True,
         increment: int = 1) -> SequencePosition:
    return SequencePosition(name=name, last_value=last_value, is_called=is_called, increment=increment)


def snap(schema: SchemaFingerprint | None = None, migrations: tuple[MigrationTable, ...] | None = None,
         data: tuple[TableData, ...] | None = None,
         positions: tuple[SequencePosition, ...] | None = None) -> DatabaseSnapshot:
    return DatabaseSnapshot(
        database="app",
        server_version="15.8",
        schema_fingerprint=schema or _schema(),
        migrations=_migrations() if migrations is None else migrations,
        data=_data(orders=(10, "c-orders"), users=(5, "c-users")) if data is None else data,
        sequence_positions=(_pos(),) if positions is None else positions,
    )


def replace(items: tuple[Any, ...], key: str, **changes: Any) -> tuple[Any, ...]:
    """Copy of a section with the object ``key`` modified."""
    assert any(i.key == key for i in items), key
    return tuple(i.model_copy(update=changes) if i.key == key else i for i in items)


def drop(items: tuple[Any, ...], key: str) -> tuple[Any, ...]:
    assert any(i.key == key for i in items), key
    return tuple(i for i in items if i.key != key)


def messages(diffs: list[Difference]) -> list[str]:
    return [d.message for d in diffs]


BASE = _schema()

# ------------------------------------------------------------------ equality


def test_identical_snapshots_have_no_difference_and_equal_hash() -> None:
    assert diff_database(snap(), snap()) == []
    assert snap().schema_hash == snap().schema_hash


def test_schema_hash_changes_with_schema_but_not_with_data() -> None:
    changed = _schema(enums=(EnumInfo(name="mood", labels=("a", "b", "c")),))
    assert snap(changed).schema_hash != snap().schema_hash
    assert snap(data=_data(orders=(1, "x"))).schema_hash == snap().schema_hash
    assert len(snap().schema_hash) == 64


def test_snapshot_round_trips_through_json() -> None:
    original = snap()
    text = original.model_dump_json()
    assert '"schema_hash"' in text  # the hash is part of the written report
    restored = DatabaseSnapshot.from_json(text)
    assert restored == original
    assert restored.schema_hash == original.schema_hash
    assert diff_database(original, restored) == []
    assert DatabaseSnapshot.model_validate(original.model_dump()) == original
    tampered = original.model_dump(mode="json") | {"schema_hash": "0" * 64}
    assert DatabaseSnapshot.model_validate(tampered).schema_hash == original.schema_hash


def test_models_are_frozen() -> None:
    s = snap()
    with pytest.raises(pydantic.ValidationError):
        s.database = "other"
    d = Difference(area="schema", object="x", message="x is missing")
    with pytest.raises(pydantic.ValidationError):
        d.message = "y"
    assert hash(d) == hash(Difference(area="schema", object="x", message="x is missing"))


# ------------------------------------------------------------------ columns


def test_added_column_is_reported_as_still_present() -> None:
    after = _schema(columns=BASE.columns + (ColumnInfo(table="users", name="nickname", position=4, type="text"),))
    diffs = diff_database(snap(), snap(after))
    assert diffs == [Difference(area="schema", object="column users.nickname",
                                message="column users.nickname is still present (added after baseline)")]


def test_missing_column() -> None:
    after = _schema(columns=drop(BASE.columns, "users.email"))
    assert messages(diff_database(snap(), snap(after))) == ["column users.email is missing"]


def test_column_type_change() -> None:
    after = _schema(columns=replace(BASE.columns, "users.age", type="bigint"))
    assert messages(diff_database(snap(), snap(after))) == ["column users.age type changed: integer -> bigint"]


def test_column_nullability_default_and_position_changes() -> None:
    cols = replace(BASE.columns, "users.email", not_null=False, default="''::text", position=3)
    cols = replace(cols, "users.age", position=2)
    assert messages(diff_database(snap(), snap(_schema(columns=cols)))) == [
        "column users.age position changed: 3 -> 2",
        "column users.email position changed: 2 -> 3",
        "column users.email default changed: none -> ''::text",
        "column users.email nullability changed: NOT NULL -> NULL",
    ]


# ------------------------------------------------------------------ other object kinds


def test_missing_and_added_index() -> None:
    extra = IndexInfo(name="users_email_idx", table="users",
                      definition="CREATE INDEX users_email_idx ON public.users USING btree (email)")
    after = _schema(indexes=drop(BASE.indexes, "orders_created_idx") + (extra,))
    assert messages(diff_database(snap(), snap(after))) == [
        "index orders_created_idx is missing",
        "index users_email_idx is still present (added after baseline)",
    ]


def test_index_definition_and_validity() -> None:
    after = _schema(indexes=replace(
        BASE.indexes, "orders_created_idx", valid=False,
        definition="CREATE INDEX orders_created_idx ON public.orders USING btree (created_at DESC)"))
    assert messages(diff_database(snap(), snap(after))) == [
        ("index orders_created_idx definition changed: "
        "CREATE INDEX orders_created_idx ON public.orders USING btree (created_at) -> "
        "CREATE INDEX orders_created_idx ON public.orders USING btree (created_at DESC)"),
        "index orders_created_idx is invalid (baseline valid; a failed or unfinished concurrent build?)",
    ]


def test_enum_values_changed() -> None:
    after = _schema(enums=(EnumInfo(name="mood", labels=("a", "b", "c")),))
    assert diff_database(snap(), snap(after)) == [Difference(
        area="schema", object="enum type mood", message="enum type mood: values changed [a, b] -> [a, b, c]")]


def test_enum_reorder_is_a_change() -> None:
    after = _schema(enums=(EnumInfo(name="mood", labels=("b", "a")),))
    assert messages(diff_database(snap(), snap(after))) == ["enum type mood: values changed [a, b] -> [b, a]"]


def test_constraint_view_function_trigger_sequence_extension_changes() -> None:
    after = _schema(
        constraints=replace(BASE.constraints, "orders_user_id_fkey on orders",
                            definition="FOREIGN KEY (user_id) REFERENCES public.users(id) ON DELETE CASCADE"),
        views=replace(BASE.views, "recent_orders",
                      definition=" SELECT orders.id,\n    orders.user_id\n   FROM public.orders;"),
        functions=replace(BASE.functions, "touch()", definition_md5="1" * 32),
        triggers=(),
        sequences=replace(BASE.sequences, "users_id_seq", increment=10),
        extensions=replace(BASE.extensions, "plpgsql", version="1.1"),
    )
    assert messages(diff_database(snap(), snap(after))) == [
        ("foreign key constraint orders_user_id_fkey on orders definition changed: "
        "FOREIGN KEY (user_id) REFERENCES public.users(id) -> "
        "FOREIGN KEY (user_id) REFERENCES public.users(id) ON DELETE CASCADE"),
        ("view recent_orders definition changed: SELECT orders.id FROM public.orders WHERE (orders.created_at > now());"
        " -> SELECT orders.id, orders.user_id FROM public.orders;"),
        "sequence users_id_seq increment changed: 1 -> 10",
        "function touch() definition changed: md5 000000000000 -> md5 111111111111",
        "trigger orders_touch on orders is missing",
        "extension plpgsql version changed: 1.0 -> 1.1",
    ]


def test_domain_check_changed() -> None:
    base = _schema(domains=(DomainInfo(name="percent", base_type="integer", checks=("percent_check: CHECK (...)",)),))
    after = _schema(domains=(DomainInfo(name="percent", base_type="integer"),))
    assert messages(diff_database(snap(base), snap(after))) == [
        "domain percent check constraints changed: [percent_check: CHECK (...)] -> []"]


def test_long_definitions_are_shortened_to_one_line() -> None:
    long_def = "SELECT " + ",\n  ".join(f"c{i}" for i in range(200)) + " FROM t"
    after = _schema(views=replace(BASE.views, "recent_orders", definition=long_def))
    (diff,) = diff_database(snap(), snap(after))
    assert "\n" not in diff.message
    assert diff.message.endswith("…")
    assert len(diff.message) < 400


def test_dropped_table_is_one_line_not_one_per_child() -> None:
    """Columns, indexes, constraints, triggers of a dropped table are implied."""
    after = _schema(
        tables=drop(BASE.tables, "orders"),
        columns=tuple(c for c in BASE.columns if c.table != "orders"),
        indexes=tuple(i for i in BASE.indexes if i.table != "orders"),
        constraints=tuple(c for c in BASE.constraints if c.table != "orders"),
        views=(), triggers=(),
    )
    assert messages(diff_database(snap(), snap(after))) == [
        "table orders is missing",
        "view recent_orders is missing",
    ]


def test_added_table_suppresses_its_owned_sequence() -> None:
    tables = BASE.tables + (TableInfo(name="audit", kind="table", persistence="permanent"),)
    columns = BASE.columns + (ColumnInfo(table="audit", name="id", position=1, type="integer", not_null=True),)
    seqs = BASE.sequences + (SequenceInfo(name="audit_id_seq", type="integer", start=1, increment=1, min_value=1,
                                          max_value=2147483647, cache=1, cycle=False, owned_by="audit.id"),)
    after = _schema(tables=tables, columns=columns, sequences=seqs)
    assert messages(diff_database(snap(), snap(after))) == ["table audit is still present (added after baseline)"]


def test_new_schema_and_scope_mismatch() -> None:
    after = _schema(namespaces=("app2", "public"))
    assert messages(diff_database(snap(), snap(after))) == ["schema app2 is still present (added after baseline)"]
    other_scope = _schema(schemas=("public", "app"))
    assert messages(diff_database(snap(), snap(other_scope))) == [
        "snapshot scope differs: schemas [public] -> schemas [public, app]"]


# ------------------------------------------------------------------ migrations


def test_migration_version_not_rolled_back() -> None:
    diffs = diff_database(snap(), snap(migrations=_migrations("2")))
    assert diffs == [Difference(area="migrations", object="migration version table schema_migrations",
                                message="migration version table schema_migrations (golang-migrate): at version 2, "
                                        "expected version 1 (the baseline's)")]


def test_migration_dirty_flag() -> None:
    assert messages(diff_database(snap(), snap(migrations=_migrations("1", dirty=True)))) == [
        "migration version table schema_migrations (golang-migrate) is dirty (a migration failed half-way); "
        "the baseline's was not"]
    assert messages(diff_database(snap(migrations=_migrations("1", dirty=True)), snap())) == [
        "migration version table schema_migrations (golang-migrate) is clean but the baseline's is dirty "
        "(a migration failed half-way)"]


def test_migration_table_missing_or_added() -> None:
    assert messages(diff_database(snap(), snap(migrations=()))) == [
        "migration version table schema_migrations (golang-migrate) is missing (the baseline's is at version 1)"]
    assert messages(diff_database(snap(migrations=()), snap())) == [
        "migration version table schema_migrations (golang-migrate) is still present (added after baseline, "
        "at version 1)"]


FLYWAY_COLUMNS = ("installed_rank", "version", "description", "type", "script", "checksum", "installed_by",
                  "installed_on", "execution_time", "success")


def _flyway(*rows: tuple[str | None, ...]) -> tuple[MigrationTable, ...]:
    return (migration_table("flyway_schema_history", FLYWAY_COLUMNS, rows),)


def test_migration_history_rows_differ_with_same_version() -> None:
    v1 = ("1", "1", "init", "SQL", "V1__init.sql", "11", "app", "2024-01-01 00:00:00", "12", "true")
    repeatable = ("2", None, "views", "SQL", "R__views.sql", "99", "app", "2024-01-02 00:00:00", "3", "true")
    assert messages(diff_database(snap(migrations=_flyway(v1)), snap(migrations=_flyway(v1, repeatable)))) == [
        ("migration version table flyway_schema_history (flyway): history rows differ "
         "(1 added, 0 removed; current version unchanged)")]


def test_a_checksum_is_compared_but_not_when_or_how_long() -> None:
    v1 = ("1", "1", "init", "SQL", "V1__init.sql", "11", "app", "2024-01-01 00:00:00", "12", "true")
    later = ("1", "1", "init", "SQL", "V1__init.sql", "11", "ci", "2025-06-01 00:00:00", "99", "true")
    other_script = ("1", "1", "init", "SQL", "V1__init.sql", "12", "app", "2024-01-01 00:00:00", "12", "true")
    assert diff_database(snap(migrations=_flyway(v1)), snap(migrations=_flyway(later))) == []
    assert messages(diff_database(snap(migrations=_flyway(v1)), snap(migrations=_flyway(other_script)))) == [
        ("migration version table flyway_schema_history (flyway): history rows differ "
         "(1 added, 1 removed; current version unchanged)")]


# ------------------------------------------------------------------ data


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        ((7, "c-x"), "table orders: 3 rows lost (10 -> 7)"),
        ((9, "c-x"), "table orders: 1 row lost (10 -> 9)"),
        ((12, "c-x"), "table orders: 2 rows added (10 -> 12)"),
        ((10, "c-x"), "table orders: content changed (same row count 10, checksum differs)"),
        (None, "table orders is missing (baseline had 10 rows)"),
    ],
)
def test_data_differences(after: tuple[int, str] | None, expected: str) -> None:
    diffs = diff_database(snap(), snap(data=_data(orders=after, users=(5, "c-users"))))
    assert diffs == [Difference(area="data", object="table orders", message=expected)]


def test_content_change_names_the_columns() -> None:
    def users(checksum: str, **cols: str) -> tuple[TableData, ...]:
        return (TableData(table="users", row_count=3, checksum=checksum, column_checksums=cols),)

    base = users("c0", id="a", email="b", created_at="c")
    # A column dropped and re-added empty (an irreversible migration's down): same schema, values lost.
    assert messages(diff_database(snap(data=base), snap(data=users("c1", id="a", email="b", created_at="z")))) == [
        "table users: content changed (same row count 3, checksum differs); values changed in column created_at"]
    assert messages(diff_database(snap(data=base), snap(data=users("c2", id="a", email="y", note="n")))) == [
        ("table users: content changed (same row count 3, checksum differs); values changed in column email; "
         "column note not in the baseline; column created_at gone since the baseline")]
    # Snapshots without per-column checksums (older reports) keep the table-level message.
    assert messages(diff_database(snap(data=users("c0")), snap(data=users("c1")))) == [
        "table users: content changed (same row count 3, checksum differs)"]


def test_tracked_table_missing_at_baseline() -> None:
    base = _data(orders=(10, "c-orders"), users=(5, "c-users"), audit=None)
    assert diff_database(snap(data=base), snap(data=base)) == []
    after = _data(orders=(10, "c-orders"), users=(5, "c-users"), audit=(2, "c-a"))
    assert messages(diff_database(snap(data=base), snap(data=after))) == [
        "table audit is still present (added after baseline, 2 rows)"]


def test_table_tracked_in_one_snapshot_only() -> None:
    after = _data(orders=(10, "c-orders"))
    assert messages(diff_database(snap(), snap(data=after))) == [
        "table users: not tracked in the after snapshot, cannot compare"]


# ------------------------------------------------------------------ sequence positions

REWOUND = "new rows can collide with ids already used"


def test_sequence_position_is_outside_the_schema_hash() -> None:
    moved = snap(positions=(_pos(last_value=900),))
    assert moved.schema_hash == snap().schema_hash
    assert moved.schema_fingerprint.canonical_json() == snap().schema_fingerprint.canonical_json()
    assert DatabaseSnapshot.from_json(moved.model_dump_json()) == moved


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (_pos(last_value=5), None),  # untouched
        (_pos(last_value=6), None),  # advanced by normal use
        (_pos(last_value=6, is_called=False), None),  # setval(seq, 6, false): nextval gives 6, as at baseline
        (_pos(last_value=5, is_called=False),
         f"sequence users_id_seq was rewound: next value 5, baseline had handed out up to 5; {REWOUND}"),
        (_pos(last_value=1),
         f"sequence users_id_seq was rewound: next value 2, baseline had handed out up to 5; {REWOUND}"),
        (_pos(last_value=1, is_called=False),
         f"sequence users_id_seq was rewound: next value 1, baseline had handed out up to 5; {REWOUND}"),
        (_pos(last_value=None), None),  # unreadable after: unknown, not a difference
    ],
)
def test_sequence_rewound_only_when_behind_baseline(after: SequencePosition, expected: str | None) -> None:
    diffs = diff_database(snap(), snap(positions=(after,)))
    assert diffs == ([Difference(area="data", object="sequence users_id_seq", message=expected)] if expected else [])


def test_sequence_not_called_at_baseline() -> None:
    """A fresh sequence (or one setval(..., false)'d) will hand out last_value itself."""
    base = (_pos(last_value=1000, is_called=False, increment=10),)
    assert diff_sequence_positions(base, (_pos(last_value=1000, is_called=False, increment=10),)) == []
    assert diff_sequence_positions(base, (_pos(last_value=1000, is_called=True, increment=10),)) == []
    assert messages(diff_sequence_positions(base, (_pos(last_value=980, is_called=True, increment=10),))) == [
        f"sequence users_id_seq was rewound: next value 990, the baseline's next value was 1000; {REWOUND}"]


def test_descending_sequence_is_behind_when_higher() -> None:
    base = (_pos(last_value=-5, increment=-1),)  # handed out -1 .. -5, next -6
    assert diff_sequence_positions(base, (_pos(last_value=-9, increment=-1),)) == []
    assert diff_sequence_positions(base, (_pos(last_value=-6, is_called=False, increment=-1),)) == []
    assert messages(diff_sequence_positions(base, (_pos(last_value=-2, increment=-1),))) == [
        f"sequence users_id_seq was rewound: next value -3, baseline had handed out up to -5; {REWOUND}"]


def test_sequence_positions_absent_or_unknown_are_not_compared() -> None:
    base = (_pos("a_seq", 3), _pos("b_seq", 7), _pos("c_seq", None))
    # b_seq gone (the schema diff reports a dropped sequence), d_seq new, c_seq unreadable at baseline.
    after = (_pos("a_seq", 3), _pos("c_seq", 1), _pos("d_seq", 1))
    assert diff_sequence_positions(base, after) == []
    # Snapshots written before positions were recorded have none: nothing to compare.
    assert diff_database(snap(positions=()), snap(positions=(_pos(last_value=1),))) == []
    assert diff_database(snap(), snap(positions=())) == []


def test_rewound_sequences_come_after_tracked_data_in_name_order() -> None:
    base = (_pos("users_id_seq", 5), _pos("orders_id_seq", 10))
    after = (_pos("orders_id_seq", 1), _pos("users_id_seq", 2))
    diffs = diff_database(snap(positions=base), snap(data=_data(orders=(7, "x"), users=(5, "c-users")),
                                                     positions=tuple(reversed(after))))
    assert [(d.area, d.object) for d in diffs] == [
        ("data", "table orders"), ("data", "sequence orders_id_seq"), ("data", "sequence users_id_seq")]


# ------------------------------------------------------------------ ordering


def test_order_is_area_then_kind_then_name_and_independent_of_input_order() -> None:
    after_schema = _schema(
        columns=replace(BASE.columns, "users.age", type="bigint")
        + (ColumnInfo(table="users", name="nickname", position=4, type="text"),),
        indexes=drop(BASE.indexes, "orders_created_idx"),
        enums=(EnumInfo(name="mood", labels=("a", "b", "c")),),
    )
    after = snap(after_schema, _migrations("2"), _data(orders=(7, "x"), users=(5, "y")))
    expected = [
        ("schema", "column users.age type changed: integer -> bigint"),
        ("schema", "column users.nickname is still present (added after baseline)"),
        ("schema", "index orders_created_idx is missing"),
        ("schema", "enum type mood: values changed [a, b] -> [a, b, c]"),
        ("migrations", "migration version table schema_migrations (golang-migrate): at version 2, expected version 1 "
                       "(the baseline's)"),
        ("data", "table orders: 3 rows lost (10 -> 7)"),
        ("data", "table users: content changed (same row count 5, checksum differs)"),
    ]
    assert [(d.area, d.message) for d in diff_database(snap(), after)] == expected

    rng = random.Random(4)
    shuffled_fields = {
        name: tuple(rng.sample(list(value), len(value)))
        for name, value in after_schema
        if isinstance(value, tuple) and name not in ("schemas", "namespaces")
    }
    shuffled_schema = SchemaFingerprint(**{**dict(after_schema), **shuffled_fields})
    assert shuffled_schema.sha256() == after_schema.sha256()  # the model sorts its collections
    shuffled = snap(shuffled_schema, _migrations("2"), tuple(reversed(_data(orders=(7, "x"), users=(5, "y")))))
    assert [(d.area, d.message) for d in diff_database(snap(), shuffled)] == expected


# ------------------------------------------------------------- rows_lost


@pytest.mark.parametrize(("old", "new", "lost"), [
    (TableData(table="t", row_count=5, checksum="a"), TableData(table="t", row_count=2, checksum="b"), True),
    (TableData(table="t", row_count=5, checksum="a"), TableData(table="t", missing=True), True),
    (TableData(table="t", row_count=2, checksum="a"), TableData(table="t", row_count=5, checksum="b"), False),
    (TableData(table="t", row_count=2, checksum="a"), TableData(table="t", row_count=2, checksum="b"), False),
    (TableData(table="t", missing=True), TableData(table="t", row_count=2, checksum="b"), False),
])
def test_rows_lost_reads_the_data_diff(old: TableData, new: TableData, lost: bool) -> None:
    """The reports ask the diff whether rows are gone; it answers from its own wording."""
    (d,) = diff_data([old], [new])
    assert rows_lost(d) is lost


def test_rows_lost_only_for_tracked_tables() -> None:
    assert not rows_lost(Difference(area="schema", object="table t", message="table t is missing"))
    assert not rows_lost(Difference(area="data", object="sequence s",
                                    message="sequence s was rewound: next value 1, baseline had handed out up to 5; "
                                            "new rows can collide with ids already used"))


# --------------------------------------------------------- row-level security


OWN_ROWS = PolicyInfo(name="own_rows", table="users", command="select", roles=("app",),
                      using="(id = (current_setting('app.user_id'::text))::bigint)")


def test_policies_and_the_tables_rls_switches_are_named() -> None:
    rls = _schema(policies=(OWN_ROWS,),
                  tables=replace(BASE.tables, "users", row_security=True, force_row_security=True))
    assert messages(diff_database(snap(BASE), snap(rls))) == [
        "table users row level security changed: false -> true",
        "table users forced row level security changed: false -> true",
        "policy own_rows on users is still present (added after baseline)",
    ]
    looser = _schema(policies=(OWN_ROWS.model_copy(update={"permissive": False, "roles": ("public",),
                                                           "with_check": "true"}),),
                     tables=rls.tables)
    assert messages(diff_database(snap(rls), snap(looser))) == [
        "policy own_rows on users permissive changed: true -> false",
        "policy own_rows on users roles changed: [app] -> [public]",
        "policy own_rows on users WITH CHECK expression changed: none -> true",
    ]
    assert messages(diff_database(snap(rls), snap(BASE)))[-1] == "policy own_rows on users is missing"
