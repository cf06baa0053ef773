"""Framework migrations as the checks see them, and what their DSL calls do to a rollback.

The readers (`alembic`, `js_migrations`, `sql_migrations`) turn a migration file into a
`FrameworkMigration`: its up and its down, each a `Direction` with the schema calls it makes
(`Call`: `op.drop_column(...)`, `pgm.dropColumn(...)`, `table.dropColumn(...)`) and the raw SQL
it passes to `op.execute` / `pgm.sql` / `knex.raw` / `queryRunner.query` (as `Statement`s of
`sql.split_sql`, at their lines in the file). Nothing here reads files: the tables below say
which calls destroy data, which only touch data, and which carry SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from harness.preflight.sql import SCHEMA_CHANGING, Statement, is_noop

# How a direction is written: real code; nothing (`pass`, `() => {}`, a comment); not at all; or declared
# impossible (`exports.down = false`, `raise NotImplementedError`, `throw new Error(...)`).
State = Literal["code", "empty", "missing", "irreversible"]
ValueKind = Literal["string", "array", "object", "call", "other"]


@dataclass(frozen=True)
class Value:
    """An argument as written, and its source text: a string literal's value; an array's items; an object
    literal's entries; a call's positional items and keyword entries (`sa.Column("x", sa.Text, nullable=False)`)."""

    text: str
    kind: ValueKind = "other"
    string: str | None = None
    items: tuple[Value, ...] = ()
    entries: Mapping[str, Value] = field(default_factory=dict)

    def strings(self) -> list[str]:
        """The string, or the strings of an array (`dropColumns('users', ['a', 'b'])`)."""
        if self.kind == "array":
            return [i.string for i in self.items if i.string is not None]
        return [self.string] if self.string is not None else []


@dataclass(frozen=True)
class Call:
    """One call of the migration's DSL: `op.drop_column("users", "nickname")` is method `drop_column`
    with two string arguments. `table` is the table the receiver stands for, when the call is made
    inside `with op.batch_alter_table("users") as batch_op` or knex's `alterTable('users', (t) => ...)`."""

    method: str
    args: tuple[Value, ...]
    line: int
    text: str  # the call as written, on one line, shortened (for messages)
    table: str | None = None
    receiver: str = ""  # the name the call is made on (`op`, `pgm`, `t`); "" for a plain function call
    keywords: Mapping[str, Value] = field(default_factory=dict)  # Python keyword arguments
    sql_read: bool = False  # a raw-SQL call whose SQL text the reader could read (a literal)

    @property
    def options(self) -> Mapping[str, Value]:
        """Keyword arguments (Python), else the last object literal argument (JavaScript)."""
        if self.keywords:
            return self.keywords
        return next((a.entries for a in reversed(self.args) if a.kind == "object"), {})


@dataclass(frozen=True)
class Direction:
    """A migration's up or down as written."""

    state: State
    line: int                             # where it is defined (the file's first line when missing)
    calls: tuple[Call, ...] = ()          # schema calls, raw-SQL calls included, in source order
    sql: tuple[Statement, ...] = ()       # the raw SQL those calls pass, at its lines in the file
    written: str = ""                     # how an empty or irreversible one reads (`exports.down = false`)


@dataclass(frozen=True)
class FrameworkMigration:
    """One migration of a framework: its file, up and down. `down_file` is set when the down lives in a
    file of its own (Flyway's `U<version>__*.sql`)."""

    tool: str       # alembic, node-pg-migrate, knex, Sequelize, TypeORM, db-migrate, goose, Flyway, ...
    file: Path
    name: str       # what the tool calls it: a revision id, a file name, a version
    up: Direction
    down: Direction
    down_file: Path | None = None


# Calls that only read or write rows (or build values): they never change the schema.
DATA_METHODS = frozenset({
    "bulk_insert", "get_bind", "get_context", "inline_literal", "f",                  # Alembic
    "bulkInsert", "bulkUpdate", "bulkDelete", "upsert",                               # Sequelize
    "insert", "update", "del", "delete", "select", "where", "first", "pluck", "returning", "into", "from",
    "noTransaction", "func", "fn", "now", "ref", "transaction", "commit", "rollback",
})
# Calls whose first argument is SQL text run as written.
RAW_SQL_METHODS = frozenset({"sql", "raw", "query", "runSql", "execute"})


@dataclass(frozen=True)
class DslHazard:
    """A destructive DSL call, named like `sql.Hazard` so both read alike in findings."""

    kind: str
    target: str
    call: Call


def _names(call: Call) -> list[str]:
    """The call's table (bound or first argument) followed by the other string arguments."""
    strings = [s for a in call.args for s in a.strings()]
    return [call.table, *strings] if call.table else strings


def _qualified(table: str, name: str) -> str:
    return f"{table}.{name}"


def _drop_columns(call: Call) -> list[tuple[str, str]]:
    names = _names(call)
    if len(names) < 2:
        return [("DROP COLUMN", names[0] if names else call.text)]
    return [("DROP COLUMN", _qualified(names[0], col)) for col in names[1:]]


def _drop_tables(call: Call) -> list[tuple[str, str]]:
    return [("DROP TABLE", t) for t in ([s for a in call.args for s in a.strings()] or [call.text])]


def _rename_table(call: Call) -> list[tuple[str, str]]:
    names = [s for a in call.args for s in a.strings()]
    return [("RENAME TABLE", " to ".join(names[:2]) if len(names) >= 2 else call.text)]


def _rename_column(call: Call) -> list[tuple[str, str]]:
    names = _names(call)
    if len(names) < 3:
        return [("RENAME COLUMN", call.text)]
    return [("RENAME COLUMN", f"{_qualified(names[0], names[1])} to {names[2]}")]


# Option keys of a column definition, across the DSLs: the new type, and NOT NULL as each one writes it.
_TYPE_KEYS = ("type_", "type")
_NOT_NULL = {"nullable": "False", "notNull": "true", "allowNull": "false"}
# What gives an added column a value for the rows already there. Alembic's `default=` is applied by
# SQLAlchemy on insert, not in the DDL: only `server_default` (or an Identity / Computed item) counts.
_ALEMBIC_DEFAULTS = frozenset({"server_default"})
_JS_DEFAULTS = frozenset({"default", "defaultValue", "autoIncrement"})


def _not_null(options: Mapping[str, Value]) -> bool:
    return any(key in options and options[key].text == value for key, value in _NOT_NULL.items())


def _type_text(options: Mapping[str, Value]) -> str:
    return next((options[k].text for k in _TYPE_KEYS if k in options), "")


def _alter_column(call: Call) -> list[tuple[str, str]]:
    """alembic `alter_column`, node-pg-migrate `alterColumn`, Sequelize / db-migrate `changeColumn`."""
    names = _names(call)
    col = _qualified(names[0], names[1]) if len(names) >= 2 else (names[0] if names else call.text)
    opts = call.options
    out: list[tuple[str, str]] = []
    if any(k in opts for k in _TYPE_KEYS):
        out.append(("ALTER COLUMN TYPE", f"{col} to {_type_text(opts)}"))
    if _not_null(opts):
        out.append(("SET NOT NULL", col))
    if "new_column_name" in opts:
        renamed = opts["new_column_name"]
        out.append(("RENAME COLUMN", f"{col} to {renamed.string or renamed.text}"))
    return out


@dataclass(frozen=True)
class _Column:
    name: str
    options: Mapping[str, Value]
    has_default: bool


def _alembic_column(c: Value) -> _Column:
    """`sa.Column(name, type, *constraints, nullable=..., server_default=...)`."""
    name = c.items[0].string if c.items and c.items[0].string else c.text
    generated = any(i.text.split("(", 1)[0].rsplit(".", 1)[-1] in ("Identity", "Computed") for i in c.items)
    type_text = c.items[1].text if len(c.items) > 1 else ""
    return _Column(name, c.entries, generated or bool(_ALEMBIC_DEFAULTS & set(c.entries))
                   or "serial" in type_text.lower())


def _js_column(name: str, spec: Mapping[str, Value]) -> _Column:
    return _Column(name, spec, bool(_JS_DEFAULTS & set(spec)) or "serial" in _type_text(spec).lower())


def _columns_added(call: Call) -> list[_Column]:
    """The columns an add-column call adds, in each DSL's shape: alembic `add_column(table, sa.Column(...))`
    (batch: `add_column(sa.Column(...))`); node-pg-migrate `addColumns(table, {name: {type, notNull}})`;
    Sequelize / db-migrate `addColumn(table, name, {type, allowNull | notNull, defaultValue})`."""
    columns = [a for a in call.args if a.kind == "call" and a.text.split("(", 1)[0].rsplit(".", 1)[-1] == "Column"]
    if columns:
        return [_alembic_column(c) for c in columns]
    strings = [a.string for a in call.args if a.string is not None]
    objects = [a for a in call.args if a.kind == "object"]
    if len(strings) >= 2 and objects:
        return [_js_column(strings[1], objects[0].entries)]
    if len(strings) == 1 and objects:
        return [_js_column(name, spec.entries) for name, spec in objects[0].entries.items() if spec.kind == "object"]
    return []


def _add_columns(call: Call) -> list[tuple[str, str]]:
    names = _names(call)
    table = names[0] if names else "?"
    return [("ADD COLUMN NOT NULL without DEFAULT", _qualified(table, c.name))
            for c in _columns_added(call) if _not_null(c.options) and not c.has_default]


# method → the hazards one call makes (kinds as in sql.statement_hazards). The method names are the DSLs' own:
# Alembic (op / batch_op), knex (knex.schema, the table builder), node-pg-migrate (pgm), Sequelize
# (queryInterface), TypeORM (queryRunner), db-migrate (db).
DSL_HAZARDS: dict[str, Callable[[Call], list[tuple[str, str]]]] = {
    "drop_column": _drop_columns, "dropColumn": _drop_columns, "dropColumns": _drop_columns,
    "removeColumn": _drop_columns,
    "drop_table": _drop_tables, "dropTable": _drop_tables, "dropTableIfExists": _drop_tables,
    "rename_table": _rename_table, "renameTable": _rename_table,
    "renameColumn": _rename_column,
    "alter_column": _alter_column, "alterColumn": _alter_column, "changeColumn": _alter_column,
    "add_column": _add_columns, "addColumn": _add_columns, "addColumns": _add_columns,
}


def call_hazards(call: Call) -> list[DslHazard]:
    rule = DSL_HAZARDS.get(call.method)
    return [DslHazard(kind, target, call) for kind, target in (rule(call) if rule else [])]


def sql_changes_schema(statements: tuple[Statement, ...]) -> bool:
    return any(st.first in SCHEMA_CHANGING for st in statements)


def _changes(c: Call) -> bool:
    """A call that changes the schema as far as the reader can tell (raw SQL is judged by its statements)."""
    return c.method not in DATA_METHODS and (c.method not in RAW_SQL_METHODS or not c.sql_read)


def changes_schema(d: Direction) -> bool:
    """Whether a direction (an up) changes the schema: a DSL call that is no data call, raw SQL with DDL, or
    raw SQL the reader could not see (a variable), which counts as a change."""
    if d.state != "code":
        return False
    return sql_changes_schema(d.sql) or any(_changes(c) for c in d.calls)


def first_change(d: Direction) -> str:
    """The first thing an up does to the schema, for messages."""
    found = [(st.line, st.text[:80]) for st in d.sql if st.first in SCHEMA_CHANGING]
    found += [(c.line, c.text) for c in d.calls if _changes(c)]
    return "line {}: `{}`".format(*min(found, key=lambda f: f[0])) if found else "its code"


def sql_is_noop(statements: tuple[Statement, ...]) -> bool:
    return all(is_noop(st) for st in statements)
