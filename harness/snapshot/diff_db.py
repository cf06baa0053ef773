"""Compare two database snapshots and say, in plain words, what is not back to baseline.

The output is meant for a human reading a rehearsal report, so each
difference names one object and one change ("column users.age type changed:
integer -> bigint") instead of dumping two JSON documents. An empty list
means the database is back to the baseline.

Ordering is deterministic: schema (in a fixed object-kind order), then
migration version tables, then tracked data, then rewound sequences; within a
kind, by object name.
Children of a table that is missing or was added (its columns, indexes,
constraints, triggers, owned sequences) are not listed one by one: the
table-level line already says it all.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict

from harness.snapshot.db_models import (
    Area,
    DatabaseSnapshot,
    MigrationTable,
    SchemaFingerprint,
    SequenceInfo,
    SequencePosition,
    TableData,
)


class Difference(BaseModel):
    """One way in which the state after the rollback differs from the baseline."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    area: Area
    object: str  # e.g. "column users.nickname"
    message: str  # full sentence, starts with the object

    def __str__(self) -> str:
        return f"[{self.area}] {self.message}"


# ------------------------------------------------------------------ entry point


def diff_database(baseline: DatabaseSnapshot, after: DatabaseSnapshot) -> list[Difference]:
    """All differences between ``baseline`` and ``after``; empty means equal."""
    return [
        *diff_schema(baseline.schema_fingerprint, after.schema_fingerprint),
        *diff_migrations(baseline.migrations, after.migrations),
        *diff_data(baseline.data, after.data),
        *diff_sequence_positions(baseline.sequence_positions, after.sequence_positions),
    ]


# ----------------------------------------------------------------- value render

_MAX_SHOWN = 160  # long definitions are shortened so one difference stays one line


def _fmt(value: Any) -> str:
    """Render a field value for a message: one line, bounded length."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    text = re.sub(r"\s+", " ", str(value)).strip()
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 1] + "…"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# ----------------------------------------------------------------------- schema

# Readable names for fields whose attribute name is not how a DBA would say it.
_FIELD_NAMES: dict[str, str] = {
    "not_null": "nullability",
    "definition_md5": "definition",
    "row_security": "row level security",
    "min_value": "min value",
    "max_value": "max value",
    "owned_by": "owner column",
    "base_type": "base type",
    "checks": "check constraints",
}

# Field-specific value renderings (e.g. nullability reads NULL / NOT NULL).
_VALUE_FORMATS: dict[str, Callable[[Any], str]] = {
    "not_null": lambda v: "NOT NULL" if v else "NULL",
    "definition_md5": lambda v: f"md5 {str(v)[:12]}",
}

MessageFn = Callable[[str, Any, Any], str]


def _changed(obj: str, field_name: str, old: Any, new: Any) -> str:
    """Default wording: '<object> <field> changed: <old> -> <new>'."""
    fmt = _VALUE_FORMATS.get(field_name, _fmt)
    return f"{obj} {_FIELD_NAMES.get(field_name, field_name.replace('_', ' '))} changed: {fmt(old)} -> {fmt(new)}"


def _enum_labels_changed(obj: str, old: Any, new: Any) -> str:
    return f"{obj}: values changed {_fmt(old)} -> {_fmt(new)}"


def _index_validity_changed(obj: str, old: Any, new: Any) -> str:
    if not new:
        return f"{obj} is invalid (baseline valid; a failed or unfinished concurrent build?)"
    return f"{obj} is valid (baseline invalid)"


@dataclass(frozen=True)
class _Section:
    """How to compare one kind of schema object."""

    get: Callable[[SchemaFingerprint], Sequence[Any]]
    label: Callable[[Any], str]  # "column users.email"
    parent_table: Callable[[Any], str | None] = lambda _: None
    ignore: frozenset[str] = frozenset()  # key fields and fields another field already covers
    messages: dict[str, MessageFn] = field(default_factory=dict)  # field -> wording override


def _owner_table(seq: SequenceInfo) -> str | None:
    return seq.owned_by.rsplit(".", 1)[0] if seq.owned_by else None


_SECTIONS: tuple[_Section, ...] = (
    _Section(
        get=lambda s: s.tables,
        label=lambda t: t.kind + " " + t.name,
        ignore=frozenset({"name", "kind"}),
    ),
    _Section(
        get=lambda s: s.columns,
        label=lambda c: f"column {c.key}",
        parent_table=lambda c: c.table,
        ignore=frozenset({"table", "name"}),
    ),
    _Section(
        get=lambda s: s.indexes,
        label=lambda i: f"index {i.name}",
        parent_table=lambda i: i.table,
        # uniqueness is part of the definition text; reporting it twice is noise
        ignore=frozenset({"name", "table", "unique"}),
        messages={"valid": _index_validity_changed},
    ),
    _Section(
        get=lambda s: s.constraints,
        label=lambda c: f"{c.type} constraint {c.key}",
        parent_table=lambda c: c.table,
        ignore=frozenset({"table", "name"}),
    ),
    _Section(
        get=lambda s: s.views,
        label=lambda v: f"{v.kind} {v.name}",
        ignore=frozenset({"name"}),
    ),
    _Section(
        get=lambda s: s.sequences,
        label=lambda q: f"sequence {q.name}",
        parent_table=_owner_table,
        ignore=frozenset({"name"}),
    ),
    _Section(
        get=lambda s: s.enums,
        label=lambda e: f"enum type {e.name}",
        ignore=frozenset({"name"}),
        messages={"labels": _enum_labels_changed},
    ),
    _Section(
        get=lambda s: s.domains,
        label=lambda d: f"domain {d.name}",
        ignore=frozenset({"name"}),
    ),
    _Section(
        get=lambda s: s.functions,
        label=lambda f: f"{f.kind} {f.signature}",
        ignore=frozenset({"signature"}),
    ),
    _Section(
        get=lambda s: s.triggers,
        label=lambda t: f"trigger {t.key}",
        parent_table=lambda t: t.table,
        ignore=frozenset({"table", "name"}),
    ),
    _Section(
        get=lambda s: s.extensions,
        label=lambda e: f"extension {e.name}",
        ignore=frozenset({"name"}),
    ),
)

def diff_schema(baseline: SchemaFingerprint, after: SchemaFingerprint) -> list[Difference]:
    """Schema differences; fast path when the fingerprints hash equal."""
    if baseline.sha256() == after.sha256():
        return []
    out = _diff_scope(baseline, after)
    out += _diff_namespaces(baseline.namespaces, after.namespaces)
    skip_children = _tables_added_or_removed(baseline, after)
    for section in _SECTIONS:
        out += _diff_section(section, section.get(baseline), section.get(after), skip_children)
    return out


def _diff_scope(baseline: SchemaFingerprint, after: SchemaFingerprint) -> list[Difference]:
    """Snapshots limited to different schemas cannot be compared object by object:
    say so first, since every other difference may be an artefact of it."""
    if baseline.schemas == after.schemas:
        return []
    return [
        Difference(
            area="schema",
            object="snapshot scope",
            message=f"snapshot scope differs: schemas {_fmt(baseline.schemas)} -> {_fmt(after.schemas)}",
        )
    ]


def _diff_namespaces(baseline: Sequence[str], after: Sequence[str]) -> list[Difference]:
    out: list[Difference] = []
    for name in sorted(set(baseline) | set(after)):
        if name not in after:
            out.append(Difference(area="schema", object=f"schema {name}", message=f"schema {name} is missing"))
        elif name not in baseline:
            out.append(
                Difference(
                    area="schema",
                    object=f"schema {name}",
                    message=f"schema {name} is still present (added after baseline)",
                )
            )
    return out


def _tables_added_or_removed(baseline: SchemaFingerprint, after: SchemaFingerprint) -> frozenset[str]:
    before = {t.name for t in baseline.tables}
    now = {t.name for t in after.tables}
    return frozenset(before ^ now)


def _diff_section(
    section: _Section, baseline: Iterable[Any], after: Iterable[Any], skip_children: frozenset[str]
) -> list[Difference]:
    old = {o.key: o for o in baseline}
    new = {o.key: o for o in after}
    out: list[Difference] = []
    for key in sorted(old.keys() | new.keys()):
        o, n = old.get(key), new.get(key)
        if section.parent_table(o or n) in skip_children:
            continue
        out += _diff_object(section, o, n)
    return out


def _diff_object(section: _Section, old: Any | None, new: Any | None) -> list[Difference]:
    """Differences for one object present in at least one snapshot."""
    if new is None:
        label = section.label(old)
        return [Difference(area="schema", object=label, message=f"{label} is missing")]
    label = section.label(new)
    if old is None:
        return [Difference(area="schema", object=label, message=f"{label} is still present (added after baseline)")]
    out: list[Difference] = []
    for name in type(new).model_fields:
        if name in section.ignore:
            continue
        before, now = getattr(old, name), getattr(new, name)
        if before != now:
            wording = section.messages.get(name)
            message = wording(label, before, now) if wording else _changed(label, name, before, now)
            out.append(Difference(area="schema", object=label, message=message))
    return out


# ------------------------------------------------------------------- migrations


def diff_migrations(baseline: Sequence[MigrationTable], after: Sequence[MigrationTable]) -> list[Difference]:
    """Version tables must be present in both and report the same version."""
    old = {m.key: m for m in baseline}
    new = {m.key: m for m in after}
    out: list[Difference] = []
    for key in sorted(old.keys() | new.keys()):
        out += _diff_migration_table(key, old.get(key), new.get(key))
    return out


def _diff_migration_table(key: str, old: MigrationTable | None, new: MigrationTable | None) -> list[Difference]:
    obj = f"migration version table {key}"

    def diff(message: str) -> Difference:
        return Difference(area="migrations", object=obj, message=message)

    if new is None:
        return [diff(f"{obj} is missing (baseline version {_fmt(old.version if old else None)})")]
    if old is None:
        return [diff(f"{obj} is still present (added after baseline, version {_fmt(new.version)})")]
    out: list[Difference] = []
    if old.version != new.version:
        out.append(diff(f"{obj}: {_fmt(new.version)} -> {_fmt(old.version)} expected"))
    if old.dirty != new.dirty:
        state = "is dirty (a migration failed half-way)" if new.dirty else "is no longer dirty"
        out.append(diff(f"{obj} {state}; baseline dirty={_fmt(old.dirty)}"))
    if not out and (old.columns, Counter(old.rows)) != (new.columns, Counter(new.rows)):
        out.append(diff(_history_message(obj, old, new)))
    return out


def _history_message(obj: str, old: MigrationTable, new: MigrationTable) -> str:
    """Same current version but different history rows (e.g. a flyway row for a
    repeatable migration, or a re-applied migration with another checksum)."""
    if old.columns != new.columns:
        return f"{obj}: history columns changed {_fmt(old.columns)} -> {_fmt(new.columns)}"
    before, now = Counter(old.rows), Counter(new.rows)
    added, removed = sum((now - before).values()), sum((before - now).values())
    return f"{obj}: history rows differ ({added} added, {removed} removed; current version unchanged)"


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
        return f"{obj}: {_plural(before - now, 'row')} lost ({before} -> {now})"
    if now > before:
        return f"{obj}: {_plural(now - before, 'row')} added ({before} -> {now})"
    if old.checksum != new.checksum:
        return f"{obj}: content changed (same row count {before}, checksum differs){_changed_columns(old, new)}"
    return None


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
