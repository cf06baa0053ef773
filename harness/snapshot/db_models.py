"""Pydantic models of the database half of a state snapshot.

Every model is frozen and holds only JSON-friendly values (str, int, bool,
None, tuples), so a snapshot taken before a rehearsal can be written to the
report, read back later and compared with one taken after the rollback.

Collections are tuples sorted by ``key`` (validators sort them on construction), which
keeps the canonical JSON - and therefore the schema hash - independent of the
order in which the catalogs happened to return rows.

Naming: object names are rendered the way the diff messages show them -
``quote_ident(name)``, prefixed with ``quote_ident(schema) + "."`` unless the
schema is ``public``. Quoting keeps keys unambiguous (a table literally named
``a.b`` in ``public`` renders as ``"a.b"``, not as table ``b`` of schema ``a``).
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, computed_field, field_validator, model_validator

Area = Literal["schema", "data", "migrations"]


def _sorted_by_key(items: tuple[Any, ...]) -> tuple[Any, ...]:
    """Collections are kept sorted by object key so that canonical JSON, hash and
    diff order never depend on the order the objects were produced in."""
    return tuple(sorted(items, key=lambda item: item.key))


class _Frozen(BaseModel):
    """Base of every snapshot model: immutable, and strict about unknown fields
    so a typo in a hand-built test snapshot fails loudly instead of being ignored."""

    model_config = ConfigDict(frozen=True, extra="forbid")


# --------------------------------------------------------------------------- schema


class TableInfo(_Frozen):
    """A table (or partitioned table / foreign table) in one of the snapshotted schemas."""

    name: str
    kind: str  # "table" | "partitioned table" | "foreign table"
    persistence: str  # "permanent" | "unlogged"
    row_security: bool = False  # ENABLE ROW LEVEL SECURITY: with no policy, every row is hidden
    force_row_security: bool = False  # FORCE ROW LEVEL SECURITY: the owner is filtered too
    owner: str | None = None
    options: tuple[str, ...] = ()  # storage parameters (reloptions), e.g. "fillfactor=90"
    replica_identity: str | None = None  # None: DEFAULT; "nothing" | "full" | "using index <name>"
    partition_key: str | None = None  # pg_get_partkeydef of a partitioned table
    partition_of: str | None = None  # "<parent> FOR VALUES ..." of a partition
    inherits: tuple[str, ...] = ()  # parents of a table that uses INHERITS
    comment: str | None = None

    @property
    def key(self) -> str:
        return self.name


class ColumnInfo(_Frozen):
    """One live column. ``position`` is the ordinal among live columns (not the raw
    attnum, which keeps gaps from dropped columns): a column dropped and re-added
    by a rollback moves to the end, which changes ``SELECT *`` and is worth reporting."""

    table: str
    name: str
    position: int
    type: str  # format_type(atttypid, atttypmod), e.g. "character varying(80)"
    default: str | None = None  # pg_get_expr(adbin, adrelid)
    not_null: bool = False
    collation: str | None = None  # only when it differs from the type's default collation
    identity: str | None = None  # "always" | "by default"
    generated: str | None = None  # generation expression of a GENERATED ... STORED column
    statistics: int | None = None  # SET STATISTICS target; None: the server's default
    storage: str | None = None  # SET STORAGE, only when it differs from the type's default
    compression: str | None = None  # SET COMPRESSION, when set
    options: tuple[str, ...] = ()  # attribute options, e.g. "n_distinct=100"
    comment: str | None = None

    @property
    def key(self) -> str:
        return f"{self.table}.{self.name}"


class IndexInfo(_Frozen):
    """An index; ``definition`` is pg_get_indexdef, which already covers method,
    columns, opclasses and predicate."""

    name: str
    table: str
    definition: str
    unique: bool = False
    primary: bool = False
    valid: bool = True  # False after a failed CREATE INDEX CONCURRENTLY
    clustered: bool = False  # ALTER TABLE ... CLUSTER ON this index
    statistics: tuple[str, ...] = ()  # "column <n>: <target>" of expression columns with SET STATISTICS
    comment: str | None = None

    @property
    def key(self) -> str:
        return self.name


class ConstraintInfo(_Frozen):
    """A table constraint. Constraint names are unique per table only, hence the key."""

    name: str
    table: str
    type: str  # "primary key" | "unique" | "foreign key" | "check" | "exclusion" | "trigger" | "not null"
    definition: str  # pg_get_constraintdef
    comment: str | None = None

    @property
    def key(self) -> str:
        return f"{self.name} on {self.table}"


class ViewInfo(_Frozen):
    """A view or materialized view with its pg_get_viewdef text."""

    name: str
    kind: str  # "view" | "materialized view"
    definition: str
    owner: str | None = None
    options: tuple[str, ...] = ()  # reloptions: security_barrier, check_option, fillfactor, ...
    column_comments: tuple[str, ...] = ()  # "column: comment"
    comment: str | None = None

    @property
    def key(self) -> str:
        return self.name


class SequenceInfo(_Frozen):
    """Sequence parameters. Not its current value: sequences advance during any
    rehearsal and are not rolled back by design, so the position is kept apart
    (``DatabaseSnapshot.sequence_positions``) and never changes the schema hash."""

    name: str
    type: str
    start: int
    increment: int
    min_value: int
    max_value: int
    cache: int
    cycle: bool
    owned_by: str | None = None  # "table.column" of an owning serial/identity column
    owner: str | None = None  # None for an owned sequence: it follows its table's owner
    comment: str | None = None

    @property
    def key(self) -> str:
        return self.name


class EnumInfo(_Frozen):
    """An enum type with its labels in sort order (order is part of the type's meaning)."""

    name: str
    labels: tuple[str, ...]
    owner: str | None = None
    comment: str | None = None

    @property
    def key(self) -> str:
        return self.name


class DomainInfo(_Frozen):
    """A domain: base type, default, NOT NULL and its CHECK constraints
    (pg_get_constraintdef), which validate every column of that type."""

    name: str
    base_type: str
    default: str | None = None
    not_null: bool = False
    checks: tuple[str, ...] = ()  # "name: definition", sorted
    owner: str | None = None
    comment: str | None = None

    @property
    def key(self) -> str:
        return self.name


class FunctionInfo(_Frozen):
    """A function/procedure identified by its signature; the body is kept as an md5
    of pg_get_functiondef so the snapshot stays small."""

    signature: str  # name(identity arguments)
    kind: str  # "function" | "procedure" | "window function" | "aggregate"
    result: str | None = None  # pg_get_function_result
    definition_md5: str
    owner: str | None = None
    comment: str | None = None

    @property
    def key(self) -> str:
        return self.signature


class TriggerInfo(_Frozen):
    """A user trigger (internal FK triggers are excluded: constraints cover them)."""

    name: str
    table: str
    definition: str  # pg_get_triggerdef
    enabled: str  # "origin" | "disabled" | "replica" | "always"
    comment: str | None = None

    @property
    def key(self) -> str:
        return f"{self.name} on {self.table}"


class PolicyInfo(_Frozen):
    """A row-level-security policy (pg_policy). Its names are unique per table only.
    The table's own switches (enabled, forced) are TableInfo flags: they matter without
    any policy too (enabled with none hides every row)."""

    name: str
    table: str
    command: str  # "all" | "select" | "insert" | "update" | "delete"
    permissive: bool = True  # False: AS RESTRICTIVE
    roles: tuple[str, ...] = ()  # sorted; "public" for PUBLIC
    using: str | None = None  # USING expression, pg_get_expr
    with_check: str | None = None  # WITH CHECK expression, pg_get_expr
    comment: str | None = None

    @property
    def key(self) -> str:
        return f"{self.name} on {self.table}"


class SchemaInfo(_Frozen):
    """A non-system schema of the database (in scope or not: a new schema is a leftover too)."""

    name: str
    owner: str | None = None
    comment: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, data: Any) -> Any:
        """Snapshots written before schemas had properties hold bare names."""
        return {"name": data} if isinstance(data, str) else data

    @property
    def key(self) -> str:
        return self.name


class TypeInfo(_Frozen):
    """A composite type (CREATE TYPE ... AS (...)) or a range type; ``definition`` is
    its attributes (name, type, collation) or its range parameters, as text."""

    name: str
    kind: str  # "composite type" | "range type"
    definition: str
    owner: str | None = None
    comment: str | None = None

    @property
    def key(self) -> str:
        return self.name


class CollationInfo(_Frozen):
    """A collation created in the application's schemas (CREATE COLLATION)."""

    name: str
    definition: str  # provider, locales, deterministic...: the catalog row as JSON, version-proof
    owner: str | None = None
    comment: str | None = None

    @property
    def key(self) -> str:
        return self.name


class RuleInfo(_Frozen):
    """A rewrite rule (CREATE RULE); a view's own _RETURN rule is its definition, not listed."""

    name: str
    table: str
    definition: str  # pg_get_ruledef
    enabled: str  # "origin" | "disabled" | "replica" | "always"
    comment: str | None = None

    @property
    def key(self) -> str:
        return f"{self.name} on {self.table}"


class StatisticsInfo(_Frozen):
    """An extended statistics object (CREATE STATISTICS) and its SET STATISTICS target."""

    name: str
    table: str
    definition: str  # pg_get_statisticsobjdef
    target: int | None = None  # None: the default
    owner: str | None = None
    comment: str | None = None

    @property
    def key(self) -> str:
        return self.name


class GrantInfo(_Frozen):
    """One privilege that differs from the object's built-in default, as the statement
    that sets it ("GRANT SELECT ON TABLE users TO reporting", "REVOKE EXECUTE ON
    FUNCTION f() FROM PUBLIC", "ALTER DEFAULT PRIVILEGES ... GRANT ..."), the way
    pg_dump renders an ACL: only what differs from acldefault()."""

    statement: str
    schema_name: str | None = None  # the schema the object lives in (None: database-wide)
    parent: str | None = None  # the key of the table, view, sequence, function or type it is on

    @property
    def key(self) -> str:
        return self.statement


class PublicationInfo(_Frozen):
    """A logical-replication publication (database-wide)."""

    name: str
    owner: str | None = None
    all_tables: bool = False
    operations: tuple[str, ...] = ()  # "insert", "update", "delete", "truncate"
    via_root: bool = False  # publish_via_partition_root
    tables: tuple[str, ...] = ()  # "table (columns) WHERE (...)"
    schemas: tuple[str, ...] = ()  # FOR TABLES IN SCHEMA
    comment: str | None = None

    @property
    def key(self) -> str:
        return self.name


class EventTriggerInfo(_Frozen):
    """An event trigger (database-wide; created by a superuser)."""

    name: str
    event: str
    tags: tuple[str, ...] = ()
    function: str
    enabled: str  # "origin" | "disabled" | "replica" | "always"
    owner: str | None = None
    comment: str | None = None

    @property
    def key(self) -> str:
        return self.name


class OtherObjectInfo(_Frozen):
    """Any other user object pg_dump would dump (operators, operator classes and
    families, text search objects, conversions, casts, languages, foreign-data
    wrappers and servers, access methods, transforms): its existence, owner and
    comment. ``identity`` is pg_identify_object's."""

    type: str  # pg_identify_object's type, e.g. "operator", "text search configuration"
    identity: str
    schema_name: str | None = None
    owner: str | None = None
    comment: str | None = None

    @property
    def key(self) -> str:
        return f"{self.type} {self.identity}"


class ExtensionInfo(_Frozen):
    """An installed extension. Extensions are database-wide, so they are recorded
    whatever ``schemas`` the snapshot was limited to."""

    name: str
    version: str
    schema_name: str
    comment: str | None = None

    @property
    def key(self) -> str:
        return self.name


# SchemaFingerprint fields that say what was read, not objects (every other field is a kind).
SCOPE_FIELDS: frozenset[str] = frozenset({"schemas", "all_schemas"})


class SchemaFingerprint(_Frozen):
    """Everything about the database structure that a rollback must restore."""

    schemas: tuple[str, ...]  # the schemas the snapshot read (with all_schemas: every non-system one)
    all_schemas: bool = False  # the scope was "every non-system schema" (the default), not a list
    # Every non-system schema in the database, to catch new ones. Reports written before
    # schemas had properties hold bare names: read (and validated by the JSON schema) too.
    namespaces: tuple[Annotated[SchemaInfo | str, Field(union_mode="left_to_right")], ...] = ()
    tables: tuple[TableInfo, ...] = ()
    columns: tuple[ColumnInfo, ...] = ()
    indexes: tuple[IndexInfo, ...] = ()
    constraints: tuple[ConstraintInfo, ...] = ()
    views: tuple[ViewInfo, ...] = ()
    sequences: tuple[SequenceInfo, ...] = ()
    enums: tuple[EnumInfo, ...] = ()
    domains: tuple[DomainInfo, ...] = ()
    types: tuple[TypeInfo, ...] = ()
    collations: tuple[CollationInfo, ...] = ()
    functions: tuple[FunctionInfo, ...] = ()
    triggers: tuple[TriggerInfo, ...] = ()
    rules: tuple[RuleInfo, ...] = ()
    policies: tuple[PolicyInfo, ...] = ()
    statistics: tuple[StatisticsInfo, ...] = ()
    privileges: tuple[GrantInfo, ...] = ()
    default_privileges: tuple[GrantInfo, ...] = ()
    extensions: tuple[ExtensionInfo, ...] = ()
    publications: tuple[PublicationInfo, ...] = ()
    event_triggers: tuple[EventTriggerInfo, ...] = ()
    other_objects: tuple[OtherObjectInfo, ...] = ()

    @field_validator("*")
    @classmethod
    def _sort_kinds(cls, value: tuple[Any, ...], info: ValidationInfo) -> tuple[Any, ...]:
        """Every collection of objects is sorted by key (a new kind needs no line here);
        ``schemas`` keeps its order, which is the lookup order of tracked tables."""
        if info.field_name in SCOPE_FIELDS:
            return value
        return tuple(sorted(value, key=lambda item: item if isinstance(item, str) else item.key))

    def canonical_json(self) -> str:
        """Compact, key-sorted JSON: the exact bytes the hash is computed over."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    def sha256(self) -> str:
        return hashlib.sha256(self.canonical_json().encode("utf-8")).hexdigest()


# --------------------------------------------------------------------- migrations


# Every tool of migration_tools.SHAPES, and "unrecognised": a table under a known name whose
# columns no tool's shape has (compared as data; a unit test keeps this list and SHAPES equal).
MigrationTool = Literal[
    "alembic", "db-migrate", "django", "drizzle", "ecto", "flyway", "goose", "golang-migrate", "knex",
    "liquibase", "node-pg-migrate", "prisma", "rails", "sequelize", "sqitch", "typeorm", "unrecognised",
]


class MigrationTable(_Frozen):
    """A migration tool's bookkeeping table and its rows.

    ``rows`` hold text values of ``columns`` only; the columns that record when, by whom or how
    long a migration ran (and insert-time ids) are left out on purpose, because applying the same
    migration again legitimately changes them. ``version`` is the tool's notion of "current
    version" and ``applied`` the migrations the tool counts as applied, in its own order (empty for
    a table that holds only the current version, a lock or other metadata), both derived from the
    rows the way the tool derives them.
    """

    tool: MigrationTool
    table: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str | None, ...], ...]
    version: str | None = None
    applied: tuple[str, ...] = ()
    dirty: bool = False  # the tool refuses to run on: a half-applied or failed migration, a held lock

    @property
    def key(self) -> str:
        return self.table


# ---------------------------------------------------------------------------- data


class TableData(_Frozen):
    """Row count and an order-independent content checksum of one tracked table,
    or ``missing=True`` when the table does not exist (a legitimate baseline state,
    e.g. a table that the migration under test creates)."""

    table: str  # the name as the caller passed it in tracked_tables
    missing: bool = False
    row_count: int | None = None
    checksum: str | None = None
    # Per column (by name): an order-independent checksum of its values, so a
    # content change can be pinned to the columns whose values changed.
    column_checksums: dict[str, str] = {}

    @property
    def key(self) -> str:
        return self.table


class SequencePosition(_Frozen):
    """Where a sequence stands: the ``last_value`` and ``is_called`` of the
    sequence relation. Kept out of the schema fingerprint, because a sequence
    advances during any normal use; the diff only reports one that went back.

    ``is_called`` false means nextval() returns ``last_value`` itself (a fresh
    sequence, or ``setval(seq, n, false)``); true means ``last_value`` has been
    handed out and nextval() returns ``last_value + increment``. ``last_value``
    is None when the snapshot role may not read the sequence: not compared.
    """

    name: str  # rendered like SequenceInfo.name
    last_value: int | None = None
    is_called: bool = False
    increment: int = 1  # the sequence's increment, for next_value and the direction

    @property
    def key(self) -> str:
        return self.name

    @property
    def next_value(self) -> int | None:
        """What nextval() would return now (None: position unknown)."""
        if self.last_value is None:
            return None
        return self.last_value + self.increment if self.is_called else self.last_value


# ------------------------------------------------------------------------ snapshot


class DatabaseSnapshot(_Frozen):
    """Database half of the state snapshot: schema, migration version tables, tracked
    data, and the position of each sequence (outside the schema fingerprint and hash)."""

    database: str
    server_version: str
    schema_fingerprint: SchemaFingerprint
    migrations: tuple[MigrationTable, ...] = ()
    data: tuple[TableData, ...] = ()
    # Empty in snapshots written before positions were recorded: nothing is compared then.
    sequence_positions: tuple[SequencePosition, ...] = ()

    _sort_sections = field_validator("migrations", "data", "sequence_positions")(_sorted_by_key)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def schema_hash(self) -> str:
        """sha256 of the canonical schema JSON: equal hashes mean equal schemas,
        so callers can skip the detailed diff in the common case."""
        return self.schema_fingerprint.sha256()

    @model_validator(mode="before")
    @classmethod
    def _drop_written_hash(cls, data: Any) -> Any:
        """Accept the output of model_dump / model_dump_json as input: the written
        ``schema_hash`` is dropped and recomputed, so a hand-edited file cannot
        carry a stale hash."""
        if isinstance(data, dict) and "schema_hash" in data:
            data = {k: v for k, v in data.items() if k != "schema_hash"}
        return data

    @classmethod
    def from_json(cls, text: str) -> DatabaseSnapshot:
        """Read a snapshot written with ``model_dump_json``."""
        return cls.model_validate_json(text)
