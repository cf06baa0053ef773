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
    CollationInfo,
    ColumnInfo,
    ConstraintInfo,
    DomainInfo,
    EnumInfo,
    EventTriggerInfo,
    ExtensionInfo,
    FunctionInfo,
    GrantInfo,
    IndexInfo,
    OtherObjectInfo,
    PolicyInfo,
    PublicationInfo,
    RuleInfo,
    SchemaFingerprint,
    SchemaInfo,
    SequenceInfo,
    StatisticsInfo,
    TableInfo,
    TriggerInfo,
    TypeInfo,
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

def owner_of(oid: str) -> sql.Composable:
    """SQL expression: the quoted name of the role ``oid`` (an owner, a grantee)."""
    return sql.SQL("quote_ident(pg_get_userbyid({oid}))").format(oid=sql.SQL(oid))


def comment_of(oid: str, catalog: str) -> sql.Composable:
    """SQL expression: the COMMENT ON an object."""
    return sql.SQL("obj_description({oid}, {cat})").format(oid=sql.SQL(oid), cat=sql.Literal(catalog))


def sorted_options(array: str) -> sql.Composable:
    """SQL expression: a text[] of options (reloptions, attoptions) sorted, never NULL:
    the same settings made in another order mean the same. Options named pg_* are
    the server's own bookkeeping (some builds keep a per-table "pg_attver" there),
    never set by a user and never dumped."""
    return sql.SQL("coalesce((SELECT array_agg(o ORDER BY o) FROM unnest({a}) AS o"
                   " WHERE left(o, 3) <> 'pg_'), '{{}}')").format(a=sql.SQL(array))


def not_internal(catalog: str, oid: str) -> sql.Composable:
    """SQL predicate: the object is not an internal part of another one (a range
    type's constructor functions): pg_dump makes them with their owner."""
    return sql.SQL(
        "NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = {cat}::regclass"
        " AND d.objid = {oid} AND d.deptype = 'i')"
    ).format(cat=sql.Literal(catalog), oid=sql.SQL(oid))


_ENABLED = ("CASE {col} WHEN 'O' THEN 'origin' WHEN 'D' THEN 'disabled'"
            " WHEN 'R' THEN 'replica' ELSE 'always' END")


def enabled_state(column: str) -> sql.Composable:
    """SQL expression: a trigger's or rule's firing state in words."""
    return sql.SQL(_ENABLED).format(col=sql.SQL(column))


# Every non-system schema, in scope or not (unscoped: sent without parameters).
NAMESPACES_SQL = sql.SQL(
    "SELECT nspname AS name, {owner} AS owner, {comment} AS comment FROM pg_namespace"
    " WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'"
).format(owner=owner_of("nspowner"), comment=comment_of("oid", "pg_namespace"))

_PARENT_NAME = display_name("pn.nspname", "pc.relname")

TABLES_SQL = scoped_query(
    """
    SELECT {name} AS name,
           CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'partitioned table'
                          ELSE 'foreign table' END AS kind,
           CASE c.relpersistence WHEN 'u' THEN 'unlogged' ELSE 'permanent' END AS persistence,
           c.relrowsecurity AS row_security, c.relforcerowsecurity AS force_row_security,
           {owner} AS owner,
           {options} || coalesce((SELECT array_agg('toast.' || o ORDER BY o)
                                    FROM pg_class tc, unnest(tc.reloptions) AS o
                                   WHERE tc.oid = c.reltoastrelid), '{{}}') AS options,
           CASE c.relreplident WHEN 'd' THEN NULL WHEN 'n' THEN 'nothing' WHEN 'f' THEN 'full'
                ELSE 'using index ' || coalesce((SELECT quote_ident(ic.relname) FROM pg_index ri
                                                   JOIN pg_class ic ON ic.oid = ri.indexrelid
                                                  WHERE ri.indrelid = c.oid AND ri.indisreplident), '?')
           END AS replica_identity,
           CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END AS partition_key,
           CASE WHEN c.relispartition THEN
                (SELECT {parent} FROM pg_inherits ih JOIN pg_class pc ON pc.oid = ih.inhparent
                   JOIN pg_namespace pn ON pn.oid = pc.relnamespace WHERE ih.inhrelid = c.oid)
                || ' ' || pg_get_expr(c.relpartbound, c.oid) END AS partition_of,
           coalesce((SELECT array_agg({parent} ORDER BY ih.inhseqno)
                       FROM pg_inherits ih JOIN pg_class pc ON pc.oid = ih.inhparent
                       JOIN pg_namespace pn ON pn.oid = pc.relnamespace
                      WHERE ih.inhrelid = c.oid AND NOT c.relispartition), '{{}}') AS inherits,
           {comment} AS comment
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'f') AND {in_scope} AND {not_ext}
    """,
    name=display_name("n.nspname", "c.relname"),
    parent=_PARENT_NAME,
    owner=owner_of("c.relowner"),
    options=sorted_options("c.reloptions"),
    comment=comment_of("c.oid", "pg_class"),
    not_ext=not_extension_member("pg_class", "c.oid"),
)

# attstattarget: -1 (NULL from Postgres 17 on) is "the default".
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
           CASE WHEN a.attgenerated <> '' THEN pg_get_expr(ad.adbin, ad.adrelid) END AS "generated",
           NULLIF(a.attstattarget, -1)::int AS statistics,
           CASE WHEN a.attstorage <> t.typstorage THEN
                CASE a.attstorage WHEN 'p' THEN 'plain' WHEN 'e' THEN 'external'
                                  WHEN 'm' THEN 'main' ELSE 'extended' END END AS storage,
           CASE a.attcompression WHEN 'p' THEN 'pglz' WHEN 'l' THEN 'lz4' END AS compression,
           {options} AS options,
           col_description(c.oid, a.attnum) AS comment
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
    options=sorted_options("a.attoptions"),
    not_ext=not_extension_member("pg_class", "c.oid"),
)

INDEXES_SQL = scoped_query(
    """
    SELECT {index} AS name, {table} AS "table",
           pg_get_indexdef(i.indexrelid) AS definition,
           i.indisunique AS "unique", i.indisprimary AS "primary", i.indisvalid AS valid,
           i.indisclustered AS clustered,
           coalesce((SELECT array_agg('column ' || ia.attnum || ': ' || ia.attstattarget ORDER BY ia.attnum)
                       FROM pg_attribute ia
                      WHERE ia.attrelid = i.indexrelid AND ia.attstattarget <> -1), '{{}}') AS statistics,
           {comment} AS comment
    FROM pg_index i
    JOIN pg_class ic ON ic.oid = i.indexrelid
    JOIN pg_class tc ON tc.oid = i.indrelid
    JOIN pg_namespace n ON n.oid = ic.relnamespace
    WHERE {in_scope} AND {not_ext}
    """,
    index=display_name("n.nspname", "ic.relname"),
    table=display_name("n.nspname", "tc.relname"),
    comment=comment_of("i.indexrelid", "pg_class"),
    not_ext=not_extension_member("pg_class", "tc.oid"),
)

CONSTRAINTS_SQL = scoped_query(
    """
    SELECT quote_ident(con.conname) AS name, {table} AS "table",
           CASE con.contype WHEN 'p' THEN 'primary key' WHEN 'u' THEN 'unique'
                            WHEN 'f' THEN 'foreign key' WHEN 'c' THEN 'check'
                            WHEN 'x' THEN 'exclusion' WHEN 't' THEN 'trigger'
                            WHEN 'n' THEN 'not null' ELSE con.contype::text END AS "type",
           pg_get_constraintdef(con.oid) AS definition,
           {comment} AS comment
    FROM pg_constraint con
    JOIN pg_class c ON c.oid = con.conrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE con.conrelid <> 0 AND {in_scope} AND {not_ext}
    """,
    table=display_name("n.nspname", "c.relname"),
    comment=comment_of("con.oid", "pg_constraint"),
    not_ext=not_extension_member("pg_class", "c.oid"),
)

VIEWS_SQL = scoped_query(
    """
    SELECT {name} AS name,
           CASE c.relkind WHEN 'v' THEN 'view' ELSE 'materialized view' END AS kind,
           pg_get_viewdef(c.oid) AS definition,
           {owner} AS owner,
           {options} AS options,
           coalesce((SELECT array_agg(quote_ident(a.attname) || ': ' || col_description(c.oid, a.attnum)
                                      ORDER BY a.attnum)
                       FROM pg_attribute a
                      WHERE a.attrelid = c.oid AND a.attnum > 0
                        AND col_description(c.oid, a.attnum) IS NOT NULL), '{{}}') AS column_comments,
           {comment} AS comment
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('v', 'm') AND {in_scope} AND {not_ext}
    """,
    name=display_name("n.nspname", "c.relname"),
    owner=owner_of("c.relowner"),
    options=sorted_options("c.reloptions"),
    comment=comment_of("c.oid", "pg_class"),
    not_ext=not_extension_member("pg_class", "c.oid"),
)

# An owned sequence (serial, identity) has no owner of its own: Postgres keeps it
# equal to its table's, and the table's line says it.
SEQUENCES_SQL = scoped_query(
    """
    SELECT name, "type", start, increment, min_value, max_value, cache, cycle, owned_by,
           CASE WHEN owned_by IS NULL THEN owner END AS owner, comment
    FROM (
    SELECT {name} AS name, format_type(s.seqtypid, NULL) AS "type",
           s.seqstart AS start, s.seqincrement AS increment,
           s.seqmin AS min_value, s.seqmax AS max_value,
           s.seqcache AS cache, s.seqcycle AS cycle,
           (SELECT {owner_table} || '.' || quote_ident(a.attname)
              FROM pg_depend d
              JOIN pg_class tc ON tc.oid = d.refobjid
              JOIN pg_namespace tn ON tn.oid = tc.relnamespace
              JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
             WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
               AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
             LIMIT 1) AS owned_by,
           {owner} AS owner,
           {comment} AS comment
    FROM pg_sequence s
    JOIN pg_class c ON c.oid = s.seqrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE {in_scope} AND {not_ext}
    ) AS seqs
    """,
    name=display_name("n.nspname", "c.relname"),
    owner_table=display_name("tn.nspname", "tc.relname"),
    owner=owner_of("c.relowner"),
    comment=comment_of("c.oid", "pg_class"),
    not_ext=not_extension_member("pg_class", "c.oid"),
)

ENUMS_SQL = scoped_query(
    """
    SELECT {name} AS name,
           coalesce(array_agg(e.enumlabel::text ORDER BY e.enumsortorder)
                    FILTER (WHERE e.enumlabel IS NOT NULL), '{{}}') AS labels,
           {owner} AS owner, {comment} AS comment
    FROM pg_type t
    JOIN pg_namespace n ON n.oid = t.typnamespace
    LEFT JOIN pg_enum e ON e.enumtypid = t.oid
    WHERE t.typtype = 'e' AND {in_scope} AND {not_ext}
    GROUP BY n.nspname, t.typname, t.oid, t.typowner
    """,
    name=display_name("n.nspname", "t.typname"),
    owner=owner_of("t.typowner"),
    comment=comment_of("t.oid", "pg_type"),
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
                       FROM pg_constraint con WHERE con.contypid = t.oid), '{{}}') AS checks,
           {owner} AS owner, {comment} AS comment
    FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
    WHERE t.typtype = 'd' AND {in_scope} AND {not_ext}
    """,
    name=display_name("n.nspname", "t.typname"),
    owner=owner_of("t.typowner"),
    comment=comment_of("t.oid", "pg_type"),
    not_ext=not_extension_member("pg_type", "t.oid"),
)

# Composite types made with CREATE TYPE (not the row type every table has) and
# range types, each rendered as one line of its definition.
TYPES_SQL = scoped_query(
    """
    SELECT {name} AS name,
           CASE t.typtype WHEN 'c' THEN 'composite type' ELSE 'range type' END AS kind,
           CASE t.typtype WHEN 'c' THEN
               (SELECT string_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod)
                                  || CASE WHEN a.attcollation <> at.typcollation
                                          THEN ' COLLATE ' || quote_ident(co.collname) ELSE '' END
                                  || coalesce(' -- ' || col_description(t.typrelid, a.attnum), ''),
                                  ', ' ORDER BY a.attnum)
                  FROM pg_attribute a JOIN pg_type at ON at.oid = a.atttypid
                  LEFT JOIN pg_collation co ON co.oid = a.attcollation
                 WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped)
           ELSE
               (SELECT concat_ws(', ', 'subtype ' || format_type(r.rngsubtype, NULL),
                                 'opclass ' || (SELECT opcname FROM pg_opclass WHERE oid = r.rngsubopc),
                                 'collation ' || (SELECT quote_ident(collname) FROM pg_collation
                                                   WHERE oid = r.rngcollation),
                                 'canonical ' || NULLIF(r.rngcanonical, 0)::regproc::text,
                                 'subtype_diff ' || NULLIF(r.rngsubdiff, 0)::regproc::text,
                                 'multirange ' || format_type(r.rngmultitypid, NULL))
                  FROM pg_range r WHERE r.rngtypid = t.oid)
           END AS definition,
           {owner} AS owner, {comment} AS comment
    FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
    WHERE (t.typtype = 'r'
           OR (t.typtype = 'c' AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c'))
      AND {in_scope} AND {not_ext}
    """,
    name=display_name("n.nspname", "t.typname"),
    owner=owner_of("t.typowner"),
    comment=comment_of("t.oid", "pg_type"),
    not_ext=not_extension_member("pg_type", "t.oid"),
)

# pg_collation's columns differ between majors (colliculocale, colllocale...):
# the row as JSON, without its identity and collversion (which an OS upgrade
# changes), compares every property on every major.
COLLATIONS_SQL = scoped_query(
    """
    SELECT {name} AS name,
           (to_jsonb(co) - 'oid' - 'collname' - 'collnamespace' - 'collowner' - 'collversion')::text AS definition,
           {owner} AS owner, {comment} AS comment
    FROM pg_collation co JOIN pg_namespace n ON n.oid = co.collnamespace
    WHERE {in_scope} AND {not_ext}
    """,
    name=display_name("n.nspname", "co.collname"),
    owner=owner_of("co.collowner"),
    comment=comment_of("co.oid", "pg_collation"),
    not_ext=not_extension_member("pg_collation", "co.oid"),
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
               ELSE pg_get_functiondef(p.oid) END) AS definition_md5,
           {owner} AS owner, {comment} AS comment
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE {in_scope} AND {not_ext} AND {not_internal}
    """,
    name=display_name("n.nspname", "p.proname"),
    owner=owner_of("p.proowner"),
    comment=comment_of("p.oid", "pg_proc"),
    not_ext=not_extension_member("pg_proc", "p.oid"),
    not_internal=not_internal("pg_proc", "p.oid"),
)

TRIGGERS_SQL = scoped_query(
    """
    SELECT quote_ident(tg.tgname) AS name, {table} AS "table",
           pg_get_triggerdef(tg.oid) AS definition,
           {enabled} AS enabled,
           {comment} AS comment
    FROM pg_trigger tg
    JOIN pg_class c ON c.oid = tg.tgrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE NOT tg.tgisinternal AND {in_scope} AND {not_ext}
    """,
    table=display_name("n.nspname", "c.relname"),
    enabled=enabled_state("tg.tgenabled"),
    comment=comment_of("tg.oid", "pg_trigger"),
    not_ext=not_extension_member("pg_class", "c.oid"),
)

# A view's own rule (_RETURN) is its definition, which the view kind compares.
RULES_SQL = scoped_query(
    """
    SELECT quote_ident(r.rulename) AS name, {table} AS "table",
           pg_get_ruledef(r.oid) AS definition,
           {enabled} AS enabled,
           {comment} AS comment
    FROM pg_rewrite r
    JOIN pg_class c ON c.oid = r.ev_class
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE r.rulename <> '_RETURN' AND {in_scope} AND {not_ext}
    """,
    table=display_name("n.nspname", "c.relname"),
    enabled=enabled_state("r.ev_enabled"),
    comment=comment_of("r.oid", "pg_rewrite"),
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
           pg_get_expr(p.polwithcheck, p.polrelid) AS with_check,
           {comment} AS comment
    FROM pg_policy p
    JOIN pg_class c ON c.oid = p.polrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE {in_scope} AND {not_ext}
    """,
    table=display_name("n.nspname", "c.relname"),
    comment=comment_of("p.oid", "pg_policy"),
    not_ext=not_extension_member("pg_class", "c.oid"),
)

# stxstattarget: -1 (NULL from Postgres 17 on) is "the default".
STATISTICS_SQL = scoped_query(
    """
    SELECT {name} AS name, {table} AS "table",
           pg_get_statisticsobjdef(s.oid) AS definition,
           NULLIF(s.stxstattarget, -1)::int AS target,
           {owner} AS owner, {comment} AS comment
    FROM pg_statistic_ext s
    JOIN pg_namespace n ON n.oid = s.stxnamespace
    JOIN pg_class c ON c.oid = s.stxrelid
    JOIN pg_namespace tn ON tn.oid = c.relnamespace
    WHERE {in_scope} AND {not_ext}
    """,
    name=display_name("n.nspname", "s.stxname"),
    table=display_name("tn.nspname", "c.relname"),
    owner=owner_of("s.stxowner"),
    comment=comment_of("s.oid", "pg_statistic_ext"),
    not_ext=not_extension_member("pg_statistic_ext", "s.oid"),
)

# Privileges the way pg_dump renders an ACL: only what differs from the
# built-in default (acldefault) of the object's type and owner, as the GRANT
# or REVOKE that makes that difference. So an object with default privileges
# contributes nothing, and handing an object to another owner moves no grant.
# The owner's own privileges are the default; granted by the owner is not said.
_ACL_OBJECTS = """
    SELECT 'SCHEMA' AS objtype, quote_ident(n.nspname) AS name, n.nspname AS schema_name, NULL::text AS parent,
           n.nspowner AS owner, n.nspacl AS acl, acldefault('n', n.nspowner) AS defacl, NULL::text AS col
      FROM pg_namespace n WHERE {in_scope} AND {not_ext_n}
    UNION ALL
    SELECT CASE WHEN c.relkind = 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, {rel}, n.nspname, {rel},
           c.relowner, c.relacl, acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner), NULL
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p', 'f', 'v', 'm', 'S') AND {in_scope} AND {not_ext_c}
    UNION ALL
    SELECT 'TABLE', {rel}, n.nspname, {rel}, c.relowner, a.attacl, acldefault('c', c.relowner), quote_ident(a.attname)
      FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE a.attacl IS NOT NULL AND a.attnum > 0 AND NOT a.attisdropped AND {in_scope} AND {not_ext_c}
    UNION ALL
    SELECT CASE p.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END, {fn}, n.nspname, {fn},
           p.proowner, p.proacl, acldefault('f', p.proowner), NULL
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE {in_scope} AND {not_ext_p} AND {not_internal_p}
    UNION ALL
    SELECT CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, {typ}, n.nspname, {typ},
           t.typowner, t.typacl, acldefault('T', t.typowner), NULL
      FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
     WHERE (t.typtype IN ('e', 'd', 'r')
            OR (t.typtype = 'c' AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c'))
       AND {in_scope} AND {not_ext_t}
"""

PRIVILEGES_SQL = scoped_query(
    """
    WITH objs AS (""" + _ACL_OBJECTS + """),
    items AS (
        SELECT o.*, 'GRANT' AS verb, x.*
          FROM objs o, aclexplode(coalesce(o.acl, o.defacl)) x
         WHERE NOT EXISTS (SELECT 1 FROM aclexplode(o.defacl) d
                            WHERE (d.grantor, d.grantee, d.privilege_type, d.is_grantable)
                                = (x.grantor, x.grantee, x.privilege_type, x.is_grantable))
        UNION ALL
        SELECT o.*, 'REVOKE', x.*
          FROM objs o, aclexplode(o.defacl) x
         WHERE o.acl IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM aclexplode(o.acl) d
                            WHERE (d.grantee, d.privilege_type) = (x.grantee, x.privilege_type))
    )
    SELECT DISTINCT
           verb || ' ' || privilege_type || coalesce(' (' || col || ')', '') || ' ON ' || objtype || ' ' || name
           || CASE verb WHEN 'GRANT' THEN ' TO ' ELSE ' FROM ' END
           || CASE WHEN grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(grantee)) END
           || CASE WHEN verb = 'GRANT' AND is_grantable THEN ' WITH GRANT OPTION' ELSE '' END
           || CASE WHEN verb = 'GRANT' AND grantor <> owner
                   THEN ' GRANTED BY ' || quote_ident(pg_get_userbyid(grantor)) ELSE '' END AS statement,
           schema_name, CASE WHEN objtype = 'SCHEMA' THEN NULL ELSE parent END AS parent
    FROM items
    """,
    rel=display_name("n.nspname", "c.relname"),
    fn=sql.SQL("{} || '(' || pg_get_function_identity_arguments(p.oid) || ')'").format(
        display_name("n.nspname", "p.proname")),
    typ=display_name("n.nspname", "t.typname"),
    not_ext_n=not_extension_member("pg_namespace", "n.oid"),
    not_ext_c=not_extension_member("pg_class", "c.oid"),
    not_ext_p=not_extension_member("pg_proc", "p.oid"),
    not_internal_p=not_internal("pg_proc", "p.oid"),
    not_ext_t=not_extension_member("pg_type", "t.oid"),
)

# ALTER DEFAULT PRIVILEGES: a schema's entry only adds to the global one; a
# global entry (no schema) replaces the built-in default, so it is compared
# with acldefault like an object's ACL. pg_default_acl says 'S' for sequences,
# where acldefault() wants 's'.
DEFAULT_PRIVILEGES_SQL = scoped_query(
    """
    WITH d AS (
        SELECT da.defaclrole AS role, n.nspname AS schema_name, da.defaclobjtype AS objtype,
               da.defaclacl AS acl,
               CASE WHEN da.defaclnamespace = 0
                    THEN acldefault(CASE da.defaclobjtype WHEN 'S' THEN 's' ELSE da.defaclobjtype END, da.defaclrole)
                    ELSE acldefault('c', da.defaclrole) END AS defacl  -- an empty ACL
          FROM pg_default_acl da LEFT JOIN pg_namespace n ON n.oid = da.defaclnamespace
         WHERE da.defaclnamespace = 0 OR {in_scope}
    ),
    items AS (
        SELECT d.*, 'GRANT' AS verb, x.* FROM d, aclexplode(d.acl) x
         WHERE NOT EXISTS (SELECT 1 FROM aclexplode(d.defacl) y
                            WHERE (y.grantee, y.privilege_type, y.is_grantable)
                                = (x.grantee, x.privilege_type, x.is_grantable))
        UNION ALL
        SELECT d.*, 'REVOKE', x.* FROM d, aclexplode(d.defacl) x
         WHERE NOT EXISTS (SELECT 1 FROM aclexplode(d.acl) y
                            WHERE (y.grantee, y.privilege_type) = (x.grantee, x.privilege_type))
    )
    SELECT DISTINCT
           'ALTER DEFAULT PRIVILEGES FOR ROLE ' || quote_ident(pg_get_userbyid(role))
           || coalesce(' IN SCHEMA ' || quote_ident(schema_name), '') || ' ' || verb || ' ' || privilege_type
           || ' ON ' || CASE objtype WHEN 'r' THEN 'TABLES' WHEN 'S' THEN 'SEQUENCES' WHEN 'f' THEN 'FUNCTIONS'
                                     WHEN 'T' THEN 'TYPES' ELSE 'SCHEMAS' END
           || CASE verb WHEN 'GRANT' THEN ' TO ' ELSE ' FROM ' END
           || CASE WHEN grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(grantee)) END
           || CASE WHEN verb = 'GRANT' AND is_grantable THEN ' WITH GRANT OPTION' ELSE '' END AS statement,
           schema_name, NULL::text AS parent
    FROM items
    """,
)

# Database-wide (not limited to the snapshot's schemas): an extension changes
# behaviour wherever its objects live.
EXTENSIONS_SQL = sql.SQL(
    """
    SELECT quote_ident(e.extname) AS name, e.extversion AS version, n.nspname AS schema_name,
           {comment} AS comment
    FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
    """
).format(comment=comment_of("e.oid", "pg_extension"))

# Database-wide: a publication may list tables of any schema (or all of them).
PUBLICATIONS_SQL = sql.SQL(
    """
    SELECT quote_ident(p.pubname) AS name, {owner} AS owner, p.puballtables AS all_tables,
           array_remove(ARRAY[CASE WHEN p.pubinsert THEN 'insert' END, CASE WHEN p.pubupdate THEN 'update' END,
                              CASE WHEN p.pubdelete THEN 'delete' END,
                              CASE WHEN p.pubtruncate THEN 'truncate' END], NULL) AS operations,
           p.pubviaroot AS via_root,
           coalesce((SELECT array_agg(entry ORDER BY entry) FROM (
                SELECT {table}
                       || coalesce(' (' || (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum)
                                              FROM pg_attribute a
                                             WHERE a.attrelid = pr.prrelid
                                               AND a.attnum = ANY(pr.prattrs::int2[])) || ')', '')
                       || coalesce(' WHERE ' || pg_get_expr(pr.prqual, pr.prrelid), '') AS entry
                  FROM pg_publication_rel pr
                  JOIN pg_class c ON c.oid = pr.prrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE pr.prpubid = p.oid) AS entries), '{{}}') AS tables,
           coalesce((SELECT array_agg(quote_ident(n.nspname) ORDER BY n.nspname)
                       FROM pg_publication_namespace pn JOIN pg_namespace n ON n.oid = pn.pnnspid
                      WHERE pn.pnpubid = p.oid), '{{}}') AS schemas,
           {comment} AS comment
    FROM pg_publication p
    """
).format(owner=owner_of("p.pubowner"), table=display_name("n.nspname", "c.relname"),
         comment=comment_of("p.oid", "pg_publication"))

# Database-wide; regprocedure renders schema-qualified under the snapshot's search_path.
EVENT_TRIGGERS_SQL = sql.SQL(
    """
    SELECT quote_ident(e.evtname) AS name, e.evtevent AS event, coalesce(e.evttags, '{{}}') AS tags,
           e.evtfoid::regprocedure::text AS function, {enabled} AS enabled,
           {owner} AS owner, {comment} AS comment
    FROM pg_event_trigger e WHERE {not_ext}
    """
).format(enabled=enabled_state("e.evtenabled"), owner=owner_of("e.evtowner"),
         comment=comment_of("e.oid", "pg_event_trigger"),
         not_ext=not_extension_member("pg_event_trigger", "e.oid"))

# The rest of what pg_dump dumps, by existence, owner and comment: each catalog
# with its schema and owner columns (NULL: the object has none). User objects
# only (OIDs from FirstNormalObjectId, 16384, on), not extension members.
_OTHER_CATALOGS: tuple[tuple[str, str | None, str | None], ...] = (
    ("pg_operator", "oprnamespace", "oprowner"),
    ("pg_opclass", "opcnamespace", "opcowner"),
    ("pg_opfamily", "opfnamespace", "opfowner"),
    ("pg_ts_config", "cfgnamespace", "cfgowner"),
    ("pg_ts_dict", "dictnamespace", "dictowner"),
    ("pg_ts_parser", "prsnamespace", None),
    ("pg_ts_template", "tmplnamespace", None),
    ("pg_conversion", "connamespace", "conowner"),
    ("pg_cast", None, None),
    ("pg_language", None, "lanowner"),
    ("pg_foreign_data_wrapper", None, "fdwowner"),
    ("pg_foreign_server", None, "srvowner"),
    ("pg_am", None, None),
    ("pg_transform", None, None),
)


def _other_objects_query() -> sql.Composed:
    parts = [
        sql.SQL("SELECT {cat}::regclass AS classid, oid AS objid, {nsp} AS nsp, {own} AS own FROM {tbl}").format(
            cat=sql.Literal(cat), tbl=sql.Identifier(cat),
            nsp=sql.SQL(nsp) if nsp else sql.SQL("NULL::oid"), own=sql.SQL(own) if own else sql.SQL("NULL::oid"))
        for cat, nsp, own in _OTHER_CATALOGS
    ]
    return scoped_query(
        """
        SELECT ident.type AS "type", ident.identity AS identity, n.nspname AS schema_name,
               CASE WHEN o.own IS NOT NULL THEN {owner} END AS owner,
               obj_description(o.objid, o.classid::regclass::text) AS comment
        FROM ({union}) AS o
        LEFT JOIN pg_namespace n ON n.oid = o.nsp
        CROSS JOIN LATERAL pg_identify_object(o.classid, o.objid, 0) AS ident
        WHERE o.objid >= 16384 AND (o.nsp IS NULL OR {in_scope})
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = o.classid
                          AND d.objid = o.objid AND d.deptype IN ('e', 'i'))
        """,
        union=sql.SQL(" UNION ALL ").join(parts),
        owner=owner_of("o.own"),
    )


OTHER_OBJECTS_SQL = _other_objects_query()


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
    "options": "storage parameters",
    "replica_identity": "replica identity",
    "partition_key": "partition key",
    "partition_of": "partition bound",
    "statistics": "statistics target",
    "column_comments": "column comments",
    "clustered": "CLUSTER ON",
    "via_root": "publish_via_partition_root",
    "all_tables": "FOR ALL TABLES",
}

# Field-specific value renderings (e.g. nullability reads NULL / NOT NULL).
VALUE_FORMATS: dict[str, Callable[[Any], str]] = {
    "not_null": lambda v: "NOT NULL" if v else "NULL",
    "definition_md5": lambda v: f"md5 {str(v)[:12]}",
    "replica_identity": lambda v: "DEFAULT" if v is None else str(v).upper(),
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


# How ALTER TABLE ... ENABLE/DISABLE TRIGGER (or RULE) names each firing state.
_ENABLED_WORDS: dict[str, str] = {
    "origin": "ENABLED", "disabled": "DISABLED", "replica": "ENABLED REPLICA", "always": "ENABLED ALWAYS",
}


def _enabled_changed(obj: str, old: Any, new: Any) -> str:
    return f"{obj} is {_ENABLED_WORDS.get(new, new)} (baseline {_ENABLED_WORDS.get(old, old)})"


def _owner_changed(obj: str, old: Any, new: Any) -> str:
    return f"{obj} is owned by {fmt(new)} (baseline owner {fmt(old)})"


def _comment_changed(obj: str, old: Any, new: Any) -> str:
    if new is None:
        return f"{obj} lost its comment (baseline {fmt(old)!r})"
    if old is None:
        return f"{obj} has a comment added after baseline: {fmt(new)!r}"
    return f"{obj} comment changed: {fmt(old)!r} -> {fmt(new)!r}"


# Fields every kind words the same way.
COMMON_MESSAGES: dict[str, MessageFn] = {
    "owner": _owner_changed,
    "comment": _comment_changed,
    "enabled": _enabled_changed,
}


# ------------------------------------------------------------- schema of a name

_IDENT = re.compile(r'"(?:[^"]|"")*"|[^."(]+')


def schema_of(display: str | None) -> str | None:
    """The schema of a name rendered by ``display_name``: its first identifier when a
    dot follows it (quote_ident'ed parts, so a dot inside quotes is no separator),
    else ``public``. None for None."""
    if display is None:
        return None
    m = _IDENT.match(display)
    if m is None or not display[m.end():].startswith("."):
        return "public"
    first = m.group(0)
    return first[1:-1].replace('""', '"') if first.startswith('"') else first


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


def _table_of(obj: Any) -> str:
    return str(obj.table)


def _schema_of_table(obj: Any) -> str | None:
    return schema_of(obj.table)


def _schema_of_name(obj: Any) -> str | None:
    return schema_of(obj.name)


def _schema_field(obj: Any) -> str | None:
    return obj.schema_name  # type: ignore[no-any-return]


def _database_wide(_: Any) -> str | None:
    return None


ADDED = "is still present (added after baseline)"
MISSING = "is missing"


@dataclass(frozen=True)
class ObjectKind:
    """One kind of schema object: where it lives in the fingerprint, how the
    catalog is read for it, how its objects are named, compared and shown."""

    field: str  # the SchemaFingerprint field; also the row of the HTML count table
    noun: str  # the word of the HTML object table's "kind" column
    query: sql.Composable  # column aliases = the model's fields
    model: type[BaseModel] | None  # None: the query returns bare names (one text column)
    label: Callable[[Any], str]  # how messages name one object: "column users.email"
    parent: Callable[[Any], str | None] = _no_parent  # the object (table, view, function...) it belongs to
    schema: Callable[[Any], str | None] = _database_wide  # its schema: a new schema's objects are not listed
    container: bool = False  # its objects are parents: an added or missing one covers its children
    scoped: bool = True  # the query takes %(schemas)s; False: database-wide
    ignore: frozenset[str] = frozenset()  # not compared: part of the key, or said by another field
    messages: Mapping[str, MessageFn] = field(default_factory=dict)  # field -> wording override
    added: str = ADDED  # what the diff says of an object that is new since the baseline
    missing: str = MISSING  # ... and of one that is gone
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

    def wording(self, field_name: str) -> MessageFn | None:
        """The message of a changed field, when it is not the default one."""
        return self.messages.get(field_name) or COMMON_MESSAGES.get(field_name)


# A grant (or revoke) says itself: "GRANT SELECT ON TABLE users TO PUBLIC is still in place".
_GRANT_ADDED = "is still in place (added after baseline)"
_GRANT_MISSING = "is missing (in place at baseline)"


def _grant_statement(g: GrantInfo) -> str:
    return g.statement


KINDS: tuple[ObjectKind, ...] = (
    # Every non-system schema of the database, in scope or not: a new schema is a leftover too.
    # Its names are listed whole in the fingerprint, so no count row.
    ObjectKind(field="namespaces", noun="schema", query=NAMESPACES_SQL, model=SchemaInfo, scoped=False,
               label=lambda n: f"schema {ObjectKind.key(n)}", ignore=frozenset({"name"}), counted=False),
    ObjectKind(field="tables", noun="table", query=TABLES_SQL, model=TableInfo, schema=_schema_of_name,
               container=True, label=lambda t: f"{t.kind} {t.name}", ignore=frozenset({"name", "kind"})),
    ObjectKind(field="columns", noun="column", query=COLUMNS_SQL, model=ColumnInfo,
               label=lambda c: f"column {c.key}", parent=_table_of, schema=_schema_of_table,
               ignore=frozenset({"table", "name"}), describe=_describe_column),
    # uniqueness is part of the definition text; reporting it twice is noise
    ObjectKind(field="indexes", noun="index", query=INDEXES_SQL, model=IndexInfo,
               label=lambda i: f"index {i.name}", parent=_table_of, schema=_schema_of_table,
               ignore=frozenset({"name", "table", "unique"}), messages={"valid": _index_validity_changed},
               describe=_definition),
    ObjectKind(field="constraints", noun="constraint", query=CONSTRAINTS_SQL, model=ConstraintInfo,
               label=lambda c: f"{c.type} constraint {c.key}", parent=_table_of, schema=_schema_of_table,
               ignore=frozenset({"table", "name"}), describe=_definition),
    ObjectKind(field="views", noun="view", query=VIEWS_SQL, model=ViewInfo, schema=_schema_of_name,
               container=True, label=lambda v: f"{v.kind} {v.name}", ignore=frozenset({"name"}),
               describe=_definition),
    ObjectKind(field="sequences", noun="sequence", query=SEQUENCES_SQL, model=SequenceInfo,
               label=lambda q: f"sequence {q.name}", parent=_owner_table, schema=_schema_of_name,
               container=True, ignore=frozenset({"name"})),
    ObjectKind(field="enums", noun="enum", query=ENUMS_SQL, model=EnumInfo, schema=_schema_of_name,
               container=True, label=lambda e: f"enum type {e.name}", ignore=frozenset({"name"}),
               messages={"labels": _enum_labels_changed}, describe=_enum_labels),
    ObjectKind(field="domains", noun="domain", query=DOMAINS_SQL, model=DomainInfo, schema=_schema_of_name,
               container=True, label=lambda d: f"domain {d.name}", ignore=frozenset({"name"})),
    ObjectKind(field="types", noun="type", query=TYPES_SQL, model=TypeInfo, schema=_schema_of_name,
               container=True, label=lambda t: f"{t.kind} {t.name}", ignore=frozenset({"name", "kind"}),
               describe=_definition),
    ObjectKind(field="collations", noun="collation", query=COLLATIONS_SQL, model=CollationInfo,
               schema=_schema_of_name, label=lambda c: f"collation {c.name}", ignore=frozenset({"name"})),
    ObjectKind(field="functions", noun="function", query=FUNCTIONS_SQL, model=FunctionInfo,
               schema=lambda f: schema_of(f.signature), container=True,
               label=lambda f: f"{f.kind} {f.signature}", ignore=frozenset({"signature"})),
    ObjectKind(field="triggers", noun="trigger", query=TRIGGERS_SQL, model=TriggerInfo,
               label=lambda t: f"trigger {t.key}", parent=_table_of, schema=_schema_of_table,
               ignore=frozenset({"table", "name"}), describe=_definition),
    ObjectKind(field="rules", noun="rule", query=RULES_SQL, model=RuleInfo,
               label=lambda r: f"rule {r.key}", parent=_table_of, schema=_schema_of_table,
               ignore=frozenset({"table", "name"}), describe=_definition),
    ObjectKind(field="policies", noun="policy", query=POLICIES_SQL, model=PolicyInfo,
               label=lambda p: f"policy {p.key}", parent=_table_of, schema=_schema_of_table,
               ignore=frozenset({"table", "name"})),
    ObjectKind(field="statistics", noun="statistics object", query=STATISTICS_SQL, model=StatisticsInfo,
               label=lambda s: f"statistics object {s.name}", parent=_table_of, schema=_schema_of_name,
               ignore=frozenset({"name", "table"}), describe=_definition),
    ObjectKind(field="privileges", noun="privilege", query=PRIVILEGES_SQL, model=GrantInfo,
               label=_grant_statement, parent=lambda g: g.parent, schema=_schema_field,
               ignore=frozenset({"statement", "schema_name", "parent"}), added=_GRANT_ADDED,
               missing=_GRANT_MISSING, describe=_grant_statement),
    ObjectKind(field="default_privileges", noun="default privilege", query=DEFAULT_PRIVILEGES_SQL,
               model=GrantInfo, label=_grant_statement, schema=_schema_field,
               ignore=frozenset({"statement", "schema_name", "parent"}), added=_GRANT_ADDED,
               missing=_GRANT_MISSING, describe=_grant_statement),
    ObjectKind(field="extensions", noun="extension", query=EXTENSIONS_SQL, model=ExtensionInfo, scoped=False,
               label=lambda e: f"extension {e.name}", ignore=frozenset({"name"})),
    ObjectKind(field="publications", noun="publication", query=PUBLICATIONS_SQL, model=PublicationInfo,
               scoped=False, label=lambda p: f"publication {p.name}", ignore=frozenset({"name"})),
    ObjectKind(field="event_triggers", noun="event trigger", query=EVENT_TRIGGERS_SQL, model=EventTriggerInfo,
               scoped=False, label=lambda e: f"event trigger {e.name}", ignore=frozenset({"name"})),
    ObjectKind(field="other_objects", noun="other object", query=OTHER_OBJECTS_SQL, model=OtherObjectInfo,
               schema=_schema_field, label=lambda o: o.key, ignore=frozenset({"type", "identity", "schema_name"})),
)


def labelled_objects(fingerprint: SchemaFingerprint) -> dict[str, tuple[ObjectKind, Any]]:
    """Every object of a fingerprint by the label its differences carry, with its kind."""
    return {kind.label(obj): (kind, obj) for kind in KINDS for obj in kind.objects(fingerprint)}
