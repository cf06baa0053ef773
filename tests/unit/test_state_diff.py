"""snapshot/state.py: the whole state diff (app + database + registry) on snapshots of pure data."""

from __future__ import annotations

from typing import Any

from test_app_diff import BAD, GOOD, ws

from harness.journal import Difference
from harness.snapshot.db_models import (
    ColumnInfo,
    DatabaseSnapshot,
    MigrationTable,
    SchemaFingerprint,
    TableData,
    TableInfo,
)
from harness.snapshot.state import StateSnapshot, diff_states, schema_differences

REF = "demo:production"
DIGEST_GOOD = "sha256:" + "a" * 64
DIGEST_BAD = "sha256:" + "b" * 64


def database(*, extra_column: bool = False, version: str = "1", rows: int = 3) -> DatabaseSnapshot:
    columns = [ColumnInfo(table="users", name="id", position=1, type="bigint", not_null=True)]
    if extra_column:
        columns.append(ColumnInfo(table="users", name="nickname", position=2, type="text"))
    return DatabaseSnapshot(
        database="rr_demo", server_version="15.8",
        schema_fingerprint=SchemaFingerprint(
            schemas=("public",), namespaces=("public",),
            tables=(TableInfo(name="users", kind="table", persistence="permanent"),), columns=tuple(columns)),
        migrations=(MigrationTable(tool="golang-migrate", table="schema_migrations", columns=("version", "dirty"),
                                   rows=((version, "false"),), version=version),),
        data=(TableData(table="users", row_count=rows, checksum=f"c{rows}"),),
    )


def state(image_id: str = GOOD, digest: str | None = DIGEST_GOOD, **db: Any) -> StateSnapshot:
    return StateSnapshot(workloads=[ws(image_id=image_id)], database=database(**db),
                         registry={REF: digest} if digest is not None else {})


def test_equal_states_have_no_differences() -> None:
    assert diff_states(state(), state()) == []
    assert diff_states(state(), state(), bad=state(BAD, DIGEST_BAD, extra_column=True)) == []


def test_every_half_reports_in_order_app_database_registry() -> None:
    after = state(BAD, DIGEST_BAD, extra_column=True, version="2", rows=2)
    diffs = diff_states(state(), after)
    assert [d.area for d in diffs] == ["app", "schema", "migrations", "data", "registry"]
    assert all(isinstance(d, Difference) for d in diffs)
    assert diffs[1].message == "column users.nickname is still present (added after baseline)"
    assert diffs[3].message == "table users: 1 row lost (3 -> 2)"


def test_registry_names_the_bad_version_only_with_its_snapshot() -> None:
    (plain,) = diff_states(state(), state(digest=DIGEST_BAD))
    assert plain == Difference(area="registry", object=f"tag {REF}",
                               message=f"registry serves {REF} as {DIGEST_BAD}; baseline {DIGEST_GOOD}")
    (named,) = diff_states(state(), state(digest=DIGEST_BAD), bad=state(digest=DIGEST_BAD))
    assert named.message == f"registry serves {REF} as {DIGEST_BAD} (the bad version); baseline {DIGEST_GOOD}"


def test_a_tag_gone_from_the_registry_is_a_difference() -> None:
    """The baseline's tags are what must come back; a tag the registry no longer serves reads None."""
    (d,) = diff_states(state(), state(digest=None))
    assert d.area == "registry" and f"as None; baseline {DIGEST_GOOD}" in d.message


def test_a_tag_only_in_the_after_snapshot_is_not_compared() -> None:
    assert diff_states(state(digest=None), state()) == []


def test_bad_snapshot_names_the_bad_image() -> None:
    (d,) = diff_states(state(), state(BAD), bad=state(BAD))
    assert d.area == "app" and "(bad version)" in d.message


def test_schema_differences_are_the_schema_and_migration_lines_only() -> None:
    """What phase compat asks: did the bad release change the schema (data and app aside)?"""
    bad = state(BAD, DIGEST_BAD, extra_column=True, version="2", rows=9)
    changes = schema_differences(state(), bad)
    assert [d.area for d in changes] == ["schema", "migrations"]
    assert changes == [d for d in diff_states(state(), bad) if d.area in ("schema", "migrations")]
    assert schema_differences(state(), state(BAD, rows=9)) == []


def test_snapshot_round_trips_through_the_journal_form() -> None:
    """The journal stores model_dump(mode="json"); the typed model reads it back equal."""
    snap = state(extra_column=True)
    assert StateSnapshot.model_validate(snap.model_dump(mode="json")) == snap
