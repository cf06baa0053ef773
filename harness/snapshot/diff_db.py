"""Compare two database snapshots and say, in plain words, what is not back to baseline.

The output is meant for a human reading a rehearsal report, so each
difference names one object and one change ("column users.age type changed:
integer -> bigint") instead of dumping two JSON documents. An empty list
means the database is back to the baseline.

Ordering is deterministic: schema (in a fixed object-kind order), then
migration version tables, then tracked data, then rewound sequences; within a
kind, by object name.
Children of an object that is missing or was added (a table's columns,
indexes, constraints, triggers, grants, owned sequences; a function's grants;
every object of a new schema) are not listed one by one: the object's own
line already says it all.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from harness.journal import Difference
from harness.snapshot.db_models import (
    DatabaseSnapshot,
    MigrationTable,
    SchemaFingerprint,
    SequencePosition,
    TableData,
)
from harness.snapshot.kinds import KINDS, ObjectKind, changed_message
from harness.snapshot.kinds import fmt as _fmt
from harness.snapshot.migration_tools import UNRECOGNISED, in_terms, shape_named

# ------------------------------------------------------------------ entry point


def diff_database(baseline: DatabaseSnapshot, after: DatabaseSnapshot) -> list[Difference]:
    """All differences between ``baseline`` and ``after``; empty means equal."""
    return [
        *diff_schema(baseline.schema_fingerprint, after.schema_fingerprint),
        *diff_migrations(baseline.migrations, after.migrations),
        *diff_data(baseline.data, after.data),
        *diff_sequence_positions(baseline.sequence_positions, after.sequence_positions),
    ]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# ----------------------------------------------------------------------- schema


def diff_schema(baseline: SchemaFingerprint, after: SchemaFingerprint) -> list[Difference]:
    """Schema differences, kind by kind in the order of ``KINDS``; fast path when
    the fingerprints hash equal."""
    if baseline.sha256() == after.sha256():
        return []
    out = _diff_scope(baseline, after)
    covered = _Covered.of(baseline, after)
    for kind in KINDS:
        out += _diff_kind(kind, kind.objects(baseline), kind.objects(after), covered)
    return out


def _diff_scope(baseline: SchemaFingerprint, after: SchemaFingerprint) -> list[Difference]:
    """Snapshots limited to different schemas cannot be compared object by object:
    say so first, since every other difference may be an artefact of it. With the
    default scope (every non-system schema) a new or missing schema is no scope
    change: the schema kind names it."""
    if baseline.all_schemas and after.all_schemas:
        return []
    if (baseline.all_schemas, baseline.schemas) == (after.all_schemas, after.schemas):
        return []
    def scope(fp: SchemaFingerprint) -> str:
        return "every schema" if fp.all_schemas else f"schemas {_fmt(fp.schemas)}"
    return [
        Difference(
            area="schema",
            object="snapshot scope",
            message=f"snapshot scope differs: {scope(baseline)} -> {scope(after)}",
        )
    ]


class _Covered:
    """What an added or missing object already says for its children: a table's
    line covers its columns, indexes, grants...; a schema's line covers every
    object in it. Such children are not listed one by one."""

    def __init__(self, parents: frozenset[str], schemas: frozenset[str]) -> None:
        self.parents, self.schemas = parents, schemas

    @classmethod
    def of(cls, baseline: SchemaFingerprint, after: SchemaFingerprint) -> _Covered:
        parents: set[str] = set()
        for kind in KINDS:
            if kind.container:
                before = {kind.key(o) for o in kind.objects(baseline)}
                now = {kind.key(o) for o in kind.objects(after)}
                parents |= before ^ now
        before_nsp = {ObjectKind.key(n) for n in baseline.namespaces}
        now_nsp = {ObjectKind.key(n) for n in after.namespaces}
        return cls(frozenset(parents), frozenset(before_nsp ^ now_nsp))

    def covers(self, kind: ObjectKind, obj: Any) -> bool:
        return kind.parent(obj) in self.parents or kind.schema(obj) in self.schemas


def _diff_kind(kind: ObjectKind, baseline: Iterable[Any], after: Iterable[Any], covered: _Covered) -> list[Difference]:
    old = {kind.key(o): o for o in baseline}
    new = {kind.key(o): o for o in after}
    out: list[Difference] = []
    for key in sorted(old.keys() | new.keys()):
        o, n = old.get(key), new.get(key)
        if covered.covers(kind, o or n):
            continue
        out += _diff_object(kind, o, n)
    return out


def _diff_object(kind: ObjectKind, old: Any | None, new: Any | None) -> list[Difference]:
    """Differences for one object present in at least one snapshot."""
    if new is None:
        label = kind.label(old)
        return [Difference(area="schema", object=label, message=f"{label} {kind.missing}")]
    label = kind.label(new)
    if old is None:
        return [Difference(area="schema", object=label, message=f"{label} {kind.added}")]
    out: list[Difference] = []
    # A bare name (a schema in a report written before schemas had properties) has no fields to compare.
    for name in kind.compared_fields(new) if not isinstance(old, str) else []:
        before, now = getattr(old, name), getattr(new, name)
        if before != now:
            wording = kind.wording(name)
            message = wording(label, before, now) if wording else changed_message(label, name, before, now)
            out.append(Difference(area="schema", object=label, message=message))
    return out


# ------------------------------------------------------------------- migrations


def diff_migrations(baseline: Sequence[MigrationTable], after: Sequence[MigrationTable]) -> list[Difference]:
    """Version tables must be present in both, count the same migrations as applied and report the
    same version."""
    old = {m.key: m for m in baseline}
    new = {m.key: m for m in after}
    out: list[Difference] = []
    for key in sorted(old.keys() | new.keys()):
        out += _diff_migration_table(key, old.get(key), new.get(key))
    return out


def label(table: MigrationTable) -> str:
    """``migration version table knex_migrations (knex)``: the table and the tool that owns it."""
    return f"migration version table {table.table} ({table.tool})"


def _diff_migration_table(key: str, old: MigrationTable | None, new: MigrationTable | None) -> list[Difference]:
    obj = f"migration version table {key}"

    def diff(message: str) -> Difference:
        return Difference(area="migrations", object=obj, message=message)

    if new is None:
        assert old is not None  # the key came from one of the two
        return [diff(f"{label(old)} is missing (the baseline's is at {_named(old)})")]
    if old is None:
        return [diff(f"{label(new)} is still present (added after baseline, at {_named(new)})")]
    out = [diff(m) for m in _applied_messages(old, new)]
    if old.version != new.version:  # after the migrations, for a history table: the version they leave
        out.append(diff(_version_message(old, new)))
    if old.dirty != new.dirty:
        out.append(diff(_dirty_message(old, new)))
    if not out and (old.tool, old.columns, Counter(old.rows)) != (new.tool, new.columns, Counter(new.rows)):
        out.append(diff(_history_message(old, new)))
    return out


def _applied_messages(old: MigrationTable, new: MigrationTable) -> list[str]:
    """One line per migration the tool counts differently: in the tool's own names (a knex file, a
    Django app.migration, a Liquibase filename::id::author)."""
    before, now = set(old.applied), set(new.applied)
    still = [f"{label(new)}: migration {m} is still recorded as applied (the baseline's is not)"
             for m in new.applied if m not in before]
    gone = [f"{label(new)}: migration {m} is no longer recorded as applied (the baseline's is)"
            for m in old.applied if m not in now]
    return still + gone


def _version_message(old: MigrationTable, new: MigrationTable) -> str:
    """The version the tool reads now and the baseline's, in the tool's terms: `at revision 8e4b7c1d2a65,
    expected revision 3f1c2a9d7b10 (the baseline's)`."""
    return f"{label(new)}: at {_named(new)}, expected {_named(old)} (the baseline's)"


def _named(table: MigrationTable) -> str:
    return in_terms(table.tool, table.table, None if table.version is None else _fmt(table.version))


def _dirty_message(old: MigrationTable, new: MigrationTable) -> str:
    shape = shape_named(new.tool, new.table) or shape_named(old.tool, old.table)
    means = shape.dirty_means if shape else "is dirty"
    if new.dirty:
        return f"{label(new)} {means}; the baseline's was not"
    return f"{label(new)} is clean but the baseline's {means}"


def _history_message(old: MigrationTable, new: MigrationTable) -> str:
    """Same applied migrations and version but different rows (e.g. a flyway row for a repeatable
    migration, a migration applied again from another script: another checksum)."""
    if old.tool != new.tool:
        return (f"{label(new)}: the table's columns are {old.tool}'s in the baseline and {new.tool}'s now "
                f"({_fmt(old.columns)} -> {_fmt(new.columns)})")
    if old.columns != new.columns:
        return f"{label(new)}: history columns changed {_fmt(old.columns)} -> {_fmt(new.columns)}"
    before, now = Counter(old.rows), Counter(new.rows)
    added, removed = sum((now - before).values()), sum((before - now).values())
    if new.tool == UNRECOGNISED:
        return (f"{label(new)}: rows differ ({added} added, {removed} removed; no known tool has these "
                f"columns, so the table is compared as data)")
    return f"{label(new)}: history rows differ ({added} added, {removed} removed; current version unchanged)"


# ------------------------------------------------------------------------- data


def diff_data(baseline: Sequence[TableData], after: Sequence[TableData]) -> list[Difference]:
    """Tracked tables must have the same row count and content checksum."""
    old = {d.key: d for d in baseline}
    new = {d.key: d for d in after}
    out: list[Difference] = []
    for key in sorted(old.keys() | new.keys()):
        message = _data_message(key, old.get(key), new.get(key))
        if message:
            out.append(Difference(area="data", object=f"table {key}", message=message))
    return out


_LOST = "lost"  # the word rows_lost() looks for


def _data_message(name: str, old: TableData | None, new: TableData | None) -> str | None:
    """One sentence for a tracked table, or None when it is back to baseline."""
    obj = f"table {name}"
    if old is None or new is None:
        which = "baseline" if old is None else "after"
        return f"{obj}: not tracked in the {which} snapshot, cannot compare"
    if old.missing and new.missing:
        return None
    if new.missing:
        return f"{obj} is missing (baseline had {_plural(old.row_count or 0, 'row')})"
    if old.missing:
        return f"{obj} is still present (added after baseline, {_plural(new.row_count or 0, 'row')})"
    before, now = old.row_count or 0, new.row_count or 0
    if now < before:
        return f"{obj}: {_plural(before - now, 'row')} {_LOST} ({before} -> {now})"
    if now > before:
        return f"{obj}: {_plural(now - before, 'row')} added ({before} -> {now})"
    if old.checksum != new.checksum:
        return f"{obj}: content changed (same row count {before}, checksum differs){_changed_columns(old, new)}"
    return None


def rows_lost(difference: Difference) -> bool:
    """Whether a difference made by ``diff_data`` says tracked rows are gone: fewer
    rows than at baseline, or the table missing. Kept next to the wording it reads,
    so the reports learn it from the diff instead of comparing snapshots again."""
    obj, message = difference.object, difference.message
    if difference.area != "data" or not obj.startswith("table "):
        return False
    fewer = message.startswith(f"{obj}: ") and f" {_LOST} (" in message
    return fewer or message.startswith(f"{obj} is missing (baseline had ")


def _changed_columns(old: TableData, new: TableData) -> str:
    """'; values changed in column created_at' when both snapshots have per-column checksums."""
    if not old.column_checksums or not new.column_checksums:
        return ""
    changed = [c for c in old.column_checksums
               if c in new.column_checksums and old.column_checksums[c] != new.column_checksums[c]]
    added = [c for c in new.column_checksums if c not in old.column_checksums]
    removed = [c for c in old.column_checksums if c not in new.column_checksums]
    out = ""
    if changed:
        out += f"; values changed in {'column' if len(changed) == 1 else 'columns'} {', '.join(changed)}"
    if added:
        out += f"; {'column' if len(added) == 1 else 'columns'} {', '.join(added)} not in the baseline"
    if removed:
        out += f"; {'column' if len(removed) == 1 else 'columns'} {', '.join(removed)} gone since the baseline"
    return out


# ----------------------------------------------------------- sequence positions


def diff_sequence_positions(
    baseline: Sequence[SequencePosition], after: Sequence[SequencePosition]
) -> list[Difference]:
    """Sequences whose position after the rollback is BEHIND the baseline's.

    A sequence that moved forward is normal use (and sequences are never rolled
    back), so it is no difference. A sequence absent from either side is not
    compared: the schema diff reports a missing one, and one added after the
    baseline has no baseline position. Neither is one whose position is unknown.
    """
    now = {p.key: p for p in after}
    out: list[Difference] = []
    for old in sorted(baseline, key=lambda p: p.key):
        new = now.get(old.key)
        message = _rewound_message(old, new) if new is not None else None
        if message:
            out.append(Difference(area="data", object=f"sequence {old.name}", message=message))
    return out


def _rewound_message(old: SequencePosition, new: SequencePosition) -> str | None:
    """One sentence when ``new`` would hand out a value the baseline had already
    passed, else None. Compared on the value nextval() returns next, so
    is_called=false (nextval returns last_value itself) counts one step back;
    for a descending sequence (negative increment) "behind" means higher."""
    before, next_value = old.next_value, new.next_value
    if before is None or next_value is None:
        return None
    behind = next_value < before if old.increment > 0 else next_value > before
    if not behind:
        return None
    baseline = (f"baseline had handed out up to {old.last_value}" if old.is_called
                else f"the baseline's next value was {before}")
    return (f"sequence {old.name} was rewound: next value {next_value}, {baseline}; "
            "new rows can collide with ids already used")
