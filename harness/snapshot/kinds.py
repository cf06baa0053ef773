"""The one table of schema object kinds: how each is read, compared and named.

``KINDS`` drives the three places that used to list kinds separately: the
snapshot (``database.snapshot_schema`` runs each kind's catalog query), the
diff (``diff_db.diff_schema`` compares each kind's objects by key) and the
HTML report (its object table names each kind and describes each object).
Adding a kind is one model in db_models.py (plus its field in
``SchemaFingerprint``), one query below and one ``ObjectKind`` entry.

Why the catalogs (pg_catalog) and not information_schema: information_schema
hides what a rollback most often gets wrong - index definitions, enum label
order, trigger and function bodies, extension versions, and objects owned by
the current role only. Every ``pg_get_*def`` function used here renders the
object the way ``pg_dump`` would, which makes definitions comparable as text.
Each query's column aliases equal its model's field names.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql
from pydantic import BaseModel

from harness.snapshot.db_models import (
    ColumnInfo,
    ConstraintInfo,
    DomainInfo,
    EnumInfo,
    ExtensionInfo,
    FunctionInfo,
    IndexInfo,
    PolicyInfo,
    SchemaFingerprint,
    SequenceInfo,
    TableInfo,
    TriggerInfo,
    ViewInfo,
)

# ------------------------------------------------------------------ SQL helpers


def display_name(nsp: str, name: str) -> sql.Composable:
    """SQL expression rendering an object name like the diff messages do:
    quote_ident'ed, schema-qualified unless the schema is public."""
    return sql.SQL(
        "(CASE WHEN {nsp} = 'public' THEN '' ELSE quote_ident({nsp}) || '.' END || quote_ident({name}))"
    ).format(nsp=sql.SQL(nsp), name=sql.SQL(name))


def not_extension_member(catalog: str, oid: str) -> sql.Composable:
    """SQL predicate: the object is not a member of an extension (those are
    versioned by the extension itself and recorded through pg_extension)."""
    return sql.SQL(
        "NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = {cat}::regclass"
        " AND d.objid = {oid} AND d.deptype = 'e')"
    ).format(cat=sql.Literal(catalog), oid=sql.SQL(oid))


_IN_SCOPE = sql.SQL("n.nspname = ANY(%(schemas)s)")


def scoped_query(template: str, **parts: sql.Composable) -> sql.Composed:
    """A catalog query limited to the snapshot's schemas (parameter ``schemas``),
    built from a template plus the shared fragments."""
    return sql.SQL(template).format(in_scope=_IN_SCOPE, **parts)


# --------------------------------------------------------------------- queries

NAMESPACES_SQL = sql.SQL(
    "SELECT nspname FROM pg_namespace"
    " WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema' ORDER BY nspname"
)

TABLES_SQL = scoped_query(
    """
    SELECT {name} AS name,
           CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'partitioned table'
                          ELSE 'foreign table' END AS kind,
           CASE c.relpersistence WHEN 'u' THEN 'unlogged' ELSE 'permanent' END AS persistence,
           c.relrowsecurity AS row_security, c.relforcerowsecurity AS force_row_security
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'f') AND {in_scope} AND {not_ext}
    """,
    name=display_name("n.nspname", "c.relname"),
    not_ext=not_extension_member("pg_class", "c.oid"),
)

COLUMNS_SQL = scoped_query(
    """
    SELECT {table} AS "table",
           quote_ident(a.attname) AS name,
           row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum)::int AS "position",
           format_type(a.atttypid, a.atttypmod) AS "type",
           CASE WHEN a.attgenerated = '' THEN pg_get_expr(ad.adbin, ad.adrelid) END AS "default",
           a.attnotnull AS not_null,
           CASE WHEN a.attcollation <> t.typcollation THEN quote_ident(co.collname) END AS "collation",
           CASE a.attidentity WHEN 'a' THEN 'always' WHEN 'd' THEN 'by default' END AS "identity",
           CASE WHEN a.attgenerated <> '' THEN pg_get_expr(ad.adbin, ad.adrelid) END AS "generated"
    FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_type t ON t.oid = a.atttypid
    LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
    LEFT JOIN pg_collation co ON co.oid = a.attcollation
    WHERE a.attnum > 0 AND NOT a.attisdropped
      AND c.relkind IN ('r', 'p', 'f') AND {in_scope} AND {not_ext}
    """,
    table=display_name("n.nspname", "c.relname"),
    not_ext=not_extension_member("pg_class", "c.oid"),
)

INDEXES_SQL = scoped_query(
    """
    SELECT {index} AS name, {table} AS "table",
           pg_get_indexdef(i.indexrelid) AS definition,
           i.indisunique AS "unique", i.indisprimary AS "primary", i.indisvalid AS valid
    FROM pg_index i
    JOIN pg_class ic ON ic.oid = i.indexrelid
    JOIN pg_class tc ON tc.oid = i.indrelid
    JOIN pg_namespace n ON n.oid = ic.relnamespace
    WHERE {in_scope} AND {not_ext}
    """,
    index=display_name("n.nspname", "ic.relname"),
    table=display_name("n.nspname", "tc.relname"),
    not_ext=not_extension_member("pg_class", "tc.oid"),
)

CONSTRAINTS_SQL = scoped_query(
    """
    SELECT quote_ident(con.conname) AS name, {table} AS "table",
           CASE con.contype WHEN 'p' THEN 'primary key' WHEN 'u' THEN 'unique'
                            WHEN 'f' THEN 'foreign key' WHEN 'c' THEN 'check'
                            WHEN 'x' THEN 'exclusion' WHEN 't' THEN 'trigger'
                            WHEN 'n' THEN 'not null' ELSE con.contype::text END AS "type",
           pg_get_constraintdef(con.oid) AS definition
    FROM pg_constraint con
    JOIN pg_class c ON c.oid = con.conrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE con.conrelid <> 0 AND {in_scope} AND {not_ext}
    """,
    table=display_name("n.nspname", "c.relname"),
    not_ext=not_extension_member("pg_class", "c.oid"),
)

VIEWS_SQL = scoped_query(
    """
    SELECT {name} AS name,
           CASE c.relkind WHEN 'v' THEN 'view' ELSE 'materialized view' END AS kind,
           pg_get_viewdef(c.oid) AS definition
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('v', 'm') AND {in_scope} AND {not_ext}
    """,
    name=display_name("n.nspname", "c.relname"),
    not_ext=not_extension_member("pg_class", "c.oid"),
)

SEQUENCES_SQL = scoped_query(
    """
    SELECT {name} AS name, format_type(s.seqtypid, NULL) AS "type",
           s.seqstart AS start, s.seqincrement AS increment,
           s.seqmin AS min_value, s.seqmax AS max_value,
           s.seqcache AS cache, s.seqcycle AS cycle,
           (SELECT {owner} || '.' || quote_ident(a.attname)
              FROM pg_depend d
              JOIN pg_class tc ON tc.oid = d.refobjid
              JOIN pg_namespace tn ON tn.oid = tc.relnamespace
              JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
             WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
               AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
             LIMIT 1) AS owned_by
    FROM pg_sequence s
    JOIN pg_class c ON c.oid = s.seqrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE {in_scope} AND {not_ext}
    """,
    name=display_name("n.nspname", "c.relname"),
    owner=display_name("tn.nspname", "tc.relname"),
    not_ext=not_extension_member("pg_class", "c.oid"),
)

ENUMS_SQL = scoped_query(
    """
    SELECT {name} AS name,
           coalesce(array_agg(e.enumlabel::text ORDER BY e.enumsortorder)
                    FILTER (WHERE e.enumlabel IS NOT NULL), '{{}}') AS labels
    FROM pg_type t
    JOIN pg_namespace n ON n.oid = t.typnamespace
    LEFT JOIN pg_enum e ON e.enumtypid = t.oid
    WHERE t.typtype = 'e' AND {in_scope} AND {not_ext}
    GROUP BY n.nspname, t.typname
    """,
    name=display_name("n.nspname", "t.typname"),
    not_ext=not_extension_member("pg_type", "t.oid"),
)

DOMAINS_SQL = scoped_query(
    """
    SELECT {name} AS name,
           format_type(t.typbasetype, t.typtypmod) AS base_type,
           pg_get_expr(t.typdefaultbin, 0) AS "default",
           t.typnotnull AS not_null,
           coalesce((SELECT array_agg(quote_ident(con.conname) || ': ' || pg_get_constraintdef(con.oid)
                                      ORDER BY con.conname)
                       FROM pg_constraint con WHERE con.contypid = t.oid), '{{}}') AS checks
    FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
    WHERE t.typtype = 'd' AND {in_scope} AND {not_ext}
    """,
    name=display_name("n.nspname", "t.typname"),
    not_ext=not_extension_member("pg_type", "t.oid"),
)

# pg_get_functiondef refuses aggregates, so those are fingerprinted from
# pg_aggregate with every OID rendered as a name (OIDs change on re-creation).
FUNCTIONS_SQL = scoped_query(
    """
    SELECT {name} || '(' || pg_get_function_identity_arguments(p.oid) || ')' AS signature,
           CASE p.prokind WHEN 'f' THEN 'function' WHEN 'p' THEN 'procedure'
                          WHEN 'w' THEN 'window function' ELSE 'aggregate' END AS kind,
           pg_get_function_result(p.oid) AS result,
           md5(CASE WHEN p.prokind = 'a' THEN
                 (SELECT concat_ws('|', ag.aggkind, ag.aggtransfn::regprocedure::text,
                                   ag.aggfinalfn::text, ag.aggcombinefn::text,
                                   format_type(ag.aggtranstype, NULL), ag.agginitval,
                                   ag.aggsortop::regoperator::text)
                    FROM pg_aggregate ag WHERE ag.aggfnoid = p.oid)
               ELSE pg_get_functiondef(p.oid) END) AS definition_md5
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE {in_scope} AND {not_ext}
    """,
    name=display_name("n.nspname", "p.proname"),
    not_ext=not_extension_member("pg_proc", "p.oid"),
)

TRIGGERS_SQL = scoped_query(
    """
    SELECT quote_ident(tg.tgname) AS name, {table} AS "table",
           pg_get_triggerdef(tg.oid) AS definition,
           CASE tg.tgenabled WHEN 'O' THEN 'origin' WHEN 'D' THEN 'disabled'
                             WHEN 'R' THEN 'replica' ELSE 'always' END AS enabled
    FROM pg_trigger tg
    JOIN pg_class c ON c.oid = tg.tgrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE NOT tg.tgisinternal AND {in_scope} AND {not_ext}
    """,
    table=display_name("n.nspname", "c.relname"),
    not_ext=not_extension_member("pg_class", "c.oid"),
)

POLICIES_SQL = scoped_query(
    """
    SELECT quote_ident(p.polname) AS name, {table} AS "table",
           CASE p.polcmd WHEN 'r' THEN 'select' WHEN 'a' THEN 'insert' WHEN 'w' THEN 'update'
                         WHEN 'd' THEN 'delete' ELSE 'all' END AS command,
           p.polpermissive AS permissive,
           coalesce((SELECT array_agg(role ORDER BY role)
                       FROM (SELECT CASE WHEN r = 0 THEN 'public' ELSE quote_ident(pg_get_userbyid(r)) END AS role
                               FROM unnest(p.polroles) AS r) AS named), '{{}}') AS roles,
           pg_get_expr(p.polqual, p.polrelid) AS "using",
           pg_get_expr(p.polwithcheck, p.polrelid) AS with_check
    FROM pg_policy p
    JOIN pg_class c ON c.oid = p.polrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE {in_scope} AND {not_ext}
    """,
    table=display_name("n.nspname", "c.relname"),
    not_ext=not_extension_member("pg_class", "c.oid"),
)

# Database-wide (not limited to the snapshot's schemas): an extension changes
# behaviour wherever its objects live.
EXTENSIONS_SQL = sql.SQL(
    """
    SELECT quote_ident(e.extname) AS name, e.extversion AS version, n.nspname AS schema_name
    FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
    """
)


# ------------------------------------------------------------------ vocabulary

_MAX_SHOWN = 160  # long definitions are shortened so one difference stays one line


def fmt(value: Any) -> str:
    """Render a field value for a message: one line, bounded length."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    text = re.sub(r"\s+", " ", str(value)).strip()
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 1] + "…"


# Readable names for fields whose attribute name is not how a DBA would say it.
FIELD_NAMES: dict[str, str] = {
    "not_null": "nullability",
    "definition_md5": "definition",
    "row_security": "row level security",
    "force_row_security": "forced row level security",
    "using": "USING expression",
    "with_check": "WITH CHECK expression",
    "min_value": "min value",
    "max_value": "max value",
    "owned_by": "owner column",
    "base_type": "base type",
    "checks": "check constraints",
}

# Field-specific value renderings (e.g. nullability reads NULL / NOT NULL).
VALUE_FORMATS: dict[str, Callable[[Any], str]] = {
    "not_null": lambda v: "NOT NULL" if v else "NULL",
    "definition_md5": lambda v: f"md5 {str(v)[:12]}",
}

MessageFn = Callable[[str, Any, Any], str]  # (object label, baseline value, value now) -> sentence


def changed_message(obj: str, field_name: str, old: Any, new: Any) -> str:
    """Default wording: '<object> <field> changed: <old> -> <new>'."""
    show = VALUE_FORMATS.get(field_name, fmt)
    return f"{obj} {FIELD_NAMES.get(field_name, field_name.replace('_', ' '))} changed: {show(old)} -> {show(new)}"


def _enum_labels_changed(obj: str, old: Any, new: Any) -> str:
    return f"{obj}: values changed {fmt(old)} -> {fmt(new)}"


def _index_validity_changed(obj: str, old: Any, new: Any) -> str:
    if not new:
        return f"{obj} is invalid (baseline valid; a failed or unfinished concurrent build?)"
    return f"{obj} is valid (baseline invalid)"


# ------------------------------------------------------------ HTML descriptions

_KEY_FIELDS = frozenset({"name", "table", "signature"})


def describe_fields(obj: Any) -> str:
    """Every field that is not part of the name and not empty: 'kind=table, persistence=permanent'."""
    if isinstance(obj, str):
        return obj
    data = obj.model_dump(mode="json")
    return ", ".join(f"{k}={v}" for k, v in data.items() if k not in _KEY_FIELDS and v not in (None, False, "", []))


def _describe_column(c: ColumnInfo) -> str:
    bits = [c.type, "NOT NULL" if c.not_null else "NULL"]
    if c.default is not None:
        bits.append(f"DEFAULT {c.default}")
    return " ".join(bits)


def _definition(obj: Any) -> str:
    return str(obj.definition)


def _enum_labels(e: EnumInfo) -> str:
    return ", ".join(e.labels)


# ----------------------------------------------------------------------- table


def _no_parent(_: Any) -> str | None:
    return None


def _owner_table(seq: SequenceInfo) -> str | None:
    return seq.owned_by.rsplit(".", 1)[0] if seq.owned_by else None


@dataclass(frozen=True)
class ObjectKind:
    """One kind of schema object: where it lives in the fingerprint, how the
    catalog is read for it, how its objects are named, compared and shown."""

    field: str  # the SchemaFingerprint field; also the row of the HTML count table
    noun: str  # the word of the HTML object table's "kind" column
    query: sql.Composable  # column aliases = the model's fields
    model: type[BaseModel] | None  # None: the query returns bare names (one text column)
    label: Callable[[Any], str]  # how messages name one object: "column users.email"
    parent: Callable[[Any], str | None] = _no_parent  # a table whose own line covers this object
    scoped: bool = True  # the query takes %(schemas)s; False: database-wide
    ignore: frozenset[str] = frozenset()  # not compared: part of the key, or said by another field
    messages: Mapping[str, MessageFn] = field(default_factory=dict)  # field -> wording override
    describe: Callable[[Any], str] = describe_fields  # one object, for the HTML object table
    counted: bool = True  # has a row in the HTML count table

    def objects(self, fingerprint: SchemaFingerprint) -> Sequence[Any]:
        return tuple(getattr(fingerprint, self.field))

    @staticmethod
    def key(obj: Any) -> str:
        """The key objects are matched by across two snapshots (and sorted by)."""
        return obj if isinstance(obj, str) else str(obj.key)

    def compared_fields(self, obj: Any) -> list[str]:
        """The fields whose change is a difference (none for a bare name)."""
        if isinstance(obj, str):
            return []
        return [name for name in type(obj).model_fields if name not in self.ignore]


KINDS: tuple[ObjectKind, ...] = (
    # Every non-system schema of the database, in scope or not: a new schema is a leftover too.
    # Its names are listed whole in the fingerprint, so no count row.
    ObjectKind(field="namespaces", noun="schema", query=NAMESPACES_SQL, model=None, scoped=False,
               label=lambda n: f"schema {n}", counted=False),
    ObjectKind(field="tables", noun="table", query=TABLES_SQL, model=TableInfo,
               label=lambda t: f"{t.kind} {t.name}", ignore=frozenset({"name", "kind"})),
    ObjectKind(field="columns", noun="column", query=COLUMNS_SQL, model=ColumnInfo,
               label=lambda c: f"column {c.key}", parent=lambda c: c.table,
               ignore=frozenset({"table", "name"}), describe=_describe_column),
    # uniqueness is part of the definition text; reporting it twice is noise
    ObjectKind(field="indexes", noun="index", query=INDEXES_SQL, model=IndexInfo,
               label=lambda i: f"index {i.name}", parent=lambda i: i.table,
               ignore=frozenset({"name", "table", "unique"}), messages={"valid": _index_validity_changed},
               describe=_definition),
    ObjectKind(field="constraints", noun="constraint", query=CONSTRAINTS_SQL, model=ConstraintInfo,
               label=lambda c: f"{c.type} constraint {c.key}", parent=lambda c: c.table,
               ignore=frozenset({"table", "name"}), describe=_definition),
    ObjectKind(field="views", noun="view", query=VIEWS_SQL, model=ViewInfo,
               label=lambda v: f"{v.kind} {v.name}", ignore=frozenset({"name"}), describe=_definition),
    ObjectKind(field="sequences", noun="sequence", query=SEQUENCES_SQL, model=SequenceInfo,
               label=lambda q: f"sequence {q.name}", parent=_owner_table, ignore=frozenset({"name"})),
    ObjectKind(field="enums", noun="enum", query=ENUMS_SQL, model=EnumInfo,
               label=lambda e: f"enum type {e.name}", ignore=frozenset({"name"}),
               messages={"labels": _enum_labels_changed}, describe=_enum_labels),
    ObjectKind(field="domains", noun="domain", query=DOMAINS_SQL, model=DomainInfo,
               label=lambda d: f"domain {d.name}", ignore=frozenset({"name"})),
    ObjectKind(field="functions", noun="function", query=FUNCTIONS_SQL, model=FunctionInfo,
               label=lambda f: f"{f.kind} {f.signature}", ignore=frozenset({"signature"})),
    ObjectKind(field="triggers", noun="trigger", query=TRIGGERS_SQL, model=TriggerInfo,
               label=lambda t: f"trigger {t.key}", parent=lambda t: t.table,
               ignore=frozenset({"table", "name"}), describe=_definition),
    ObjectKind(field="policies", noun="policy", query=POLICIES_SQL, model=PolicyInfo,
               label=lambda p: f"policy {p.key}", parent=lambda p: p.table, ignore=frozenset({"table", "name"})),
    ObjectKind(field="extensions", noun="extension", query=EXTENSIONS_SQL, model=ExtensionInfo, scoped=False,
               label=lambda e: f"extension {e.name}", ignore=frozenset({"name"})),
)


def labelled_objects(fingerprint: SchemaFingerprint) -> dict[str, tuple[ObjectKind, Any]]:
    """Every object of a fingerprint by the label its differences carry, with its kind."""
    return {kind.label(obj): (kind, obj) for kind in KINDS for obj in kind.objects(fingerprint)}
