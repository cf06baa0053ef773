"""The kinds table (snapshot/kinds.py) drives the snapshot model, the diff and the HTML alike,
and the HTML's object table says what the Differences list says (nothing is compared twice)."""

from __future__ import annotations

import types
import typing
from html.parser import HTMLParser
from typing import Any

import pytest

from harness.journal import Journal
from harness.report.html import render_html
from harness.snapshot.db_models import (
    ColumnInfo,
    ConstraintInfo,
    DatabaseSnapshot,
    SCOPE_FIELDS,
    IndexInfo,
    SchemaFingerprint,
    TableInfo,
)
from harness.snapshot.diff_db import diff_database
from harness.snapshot.kinds import KINDS, ObjectKind

# ───────────────────────────────────────────────────────────── page reading


class _Page(HTMLParser):
    """The cells of every table (by class) and the (area, object) of every Differences item."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.differences: list[tuple[str, str]] = []
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._in_diffs = False
        self._item: dict[str, str] | None = None
        self._part: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        cls = dict(attrs).get("class") or ""
        if tag == "table":
            self._table = cls
            self.tables.setdefault(cls, [])
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []
        elif tag == "ul" and cls == "differences":
            self._in_diffs = True
        elif tag == "li" and self._in_diffs:
            self._item = {"area": "", "object": ""}
        elif self._item is not None and (tag == "b" or (tag == "span" and cls == "area")):
            self._part = "object" if tag == "b" else "area"

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self.tables[self._table][-1].append("".join(self._cell))
            self._cell = None
        elif tag == "table":
            self._table = None
        elif tag in ("b", "span"):
            self._part = None
        elif tag == "li" and self._item is not None:
            self.differences.append((self._item["area"], self._item["object"]))
            self._item = None
        elif tag == "ul":
            self._in_diffs = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._item is not None and self._part is not None:
            self._item[self._part] += data


def read_page(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    return parser


def render(before: SchemaFingerprint, after: SchemaFingerprint) -> tuple[_Page, Journal]:
    """A journal whose differences come from the real diff of two database snapshots, rendered."""
    snaps = [DatabaseSnapshot(database="rr", server_version="15", schema_fingerprint=fp) for fp in (before, after)]
    journal = Journal(scenario="kinds", expect="READY", verdict="NOT_READY",
                      baseline={"workloads": [], "database": snaps[0].model_dump(mode="json")},
                      after_rollback={"workloads": [], "database": snaps[1].model_dump(mode="json")},
                      differences=diff_database(*snaps))
    return read_page(render_html(journal)), journal


def object_rows(page: _Page) -> list[list[str]]:
    return page.tables.get("schema-objects", [])[1:]  # without the header row


# ────────────────────────────────────────── the page agrees with its differences

USERS = TableInfo(name="users", kind="table", persistence="permanent")
AUDIT = TableInfo(name="audit", kind="table", persistence="permanent")


def _with_audit(fp: SchemaFingerprint) -> SchemaFingerprint:
    """The bad release's leftovers: a table with columns, two indexes and a unique constraint."""
    return fp.model_copy(update={
        "tables": (AUDIT, USERS),
        "columns": (*fp.columns, ColumnInfo(table="audit", name="id", position=1, type="bigint", not_null=True),
                    ColumnInfo(table="audit", name="email", position=2, type="text")),
        "indexes": (*fp.indexes,
                    IndexInfo(name="audit_pkey", table="audit", unique=True, primary=True,
                              definition="CREATE UNIQUE INDEX audit_pkey ON public.audit USING btree (id)"),
                    IndexInfo(name="audit_email_key", table="audit", unique=True,
                              definition="CREATE UNIQUE INDEX audit_email_key ON public.audit USING btree (email)")),
        "constraints": (*fp.constraints,
                        ConstraintInfo(name="audit_email_key", table="audit", type="unique",
                                       definition="UNIQUE (email)")),
    })


BASELINE = SchemaFingerprint(
    schemas=("public",), namespaces=("public",), tables=(USERS,),
    columns=(ColumnInfo(table="users", name="id", position=1, type="bigint", not_null=True),),
    indexes=(IndexInfo(name="users_pkey", table="users", unique=True, primary=True,
                       definition="CREATE UNIQUE INDEX users_pkey ON public.users USING btree (id)"),),
)


def _same_objects(page: _Page) -> None:
    """Row by row, the object table names the objects of the schema differences, in their order."""
    named = [obj for area, obj in page.differences if area == "schema"]
    rows = object_rows(page)
    assert [row[0] for row in rows] and len(rows) == len(dict.fromkeys(named))
    for (kind, obj, *_), label in zip(rows, dict.fromkeys(named), strict=True):
        assert label.endswith(f" {obj}") and kind in label.split(), (kind, obj, label)


def test_an_added_table_is_one_row_like_its_one_difference() -> None:
    page, _ = render(BASELINE, _with_audit(BASELINE))
    assert page.differences == [("schema", "table audit")]
    assert object_rows(page) == [["table", "audit", "still present (added after baseline)", "–",
                                  "kind=table, persistence=permanent"]]
    _same_objects(page)
    counts = {row[0]: row for row in page.tables["schema-counts"][1:]}
    assert counts["indexes"][1:] == ["1", "3"]  # counted, but not called a difference: the table line covers it


def test_changed_and_missing_objects_agree_too() -> None:
    """A new unique index on a kept table and a changed column: the index's `unique` flag is part of
    its definition, so the diff says one thing about it and so does the page."""
    after = BASELINE.model_copy(update={
        "columns": (ColumnInfo(table="users", name="id", position=1, type="integer", not_null=True),),
        "indexes": (*BASELINE.indexes, IndexInfo(name="users_email_key", table="users", unique=True,
                                                 definition="CREATE UNIQUE INDEX users_email_key ON public.users")),
        "namespaces": ("public", "staging"),
    })
    page, journal = render(BASELINE, after)
    _same_objects(page)
    rows = {(r[0], r[1]): r[2] for r in object_rows(page)}
    assert rows == {("schema", "staging"): "still present (added after baseline)",
                    ("column", "users.id"): "type changed: bigint -> integer",
                    ("index", "users_email_key"): "still present (added after baseline)"}
    page, _ = render(after, BASELINE)  # the other way round: missing
    _same_objects(page)
    assert {r[2] for r in object_rows(page)} >= {"missing after rollback"}


# ────────────────────────────────────────────── every kind, everywhere

_VALUES: dict[Any, Any] = {str: "x", int: 1, bool: True}


def _value(name: str, annotation: Any) -> Any:
    """A value for one required field: the parent table is the baseline's `users`."""
    if name == "table":
        return "users"
    if typing.get_origin(annotation) is tuple:
        return ("x",)
    if isinstance(annotation, types.UnionType):
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    return _VALUES[annotation]


def sample(kind: ObjectKind) -> Any:
    """One object of `kind` that the baseline does not have (a bare name for a model-less kind)."""
    if kind.model is None:
        return "x"
    fields = {name: _value(name, f.annotation) for name, f in kind.model.model_fields.items() if f.is_required()}
    return kind.model(**fields)


def test_the_fingerprint_has_exactly_the_kinds_of_the_table() -> None:
    """A kind added to the table needs its field in SchemaFingerprint, and no field is left out."""
    assert [k.field for k in KINDS] == [f for f in SchemaFingerprint.model_fields if f not in SCOPE_FIELDS]
    for kind in KINDS:
        annotation = typing.get_args(SchemaFingerprint.model_fields[kind.field].annotation)[0]
        if typing.get_origin(annotation) is typing.Annotated:  # namespaces: also bare names of old reports
            annotation = typing.get_args(typing.get_args(annotation)[0])[0]
        assert annotation is (kind.model or str), kind.field
    assert len({k.noun for k in KINDS}) == len(KINDS)


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.field)
def test_every_kind_is_diffed_and_rendered(kind: ObjectKind) -> None:
    obj = sample(kind)
    after = BASELINE.model_copy(update={kind.field: (*kind.objects(BASELINE), obj)})
    after = SchemaFingerprint.model_validate(after.model_dump())  # sorted like a real snapshot
    page, journal = render(BASELINE, after)
    assert [(d.area, d.object) for d in journal.differences] == [("schema", kind.label(obj))]
    assert object_rows(page) == [[kind.noun, kind.key(obj), "still present (added after baseline)", "–",
                                  kind.describe(obj)]]
    counts = {row[0]: row for row in page.tables["schema-counts"][1:]}
    assert (kind.field in counts) is kind.counted
