"""Version-table honesty (harness/snapshot/version_table.py): a version table that names another
release than the one whose schema is in place is reported, agreement never is.

The snapshots are real: the database halves of the demo's bad-migration and forgot-migrate-down
reports (tests/data/reports), whose good release is at schema_migrations version 1 and whose bad
release added users.nickname and its index at version 2. The mismatches are those snapshots'
schemas and version tables recombined, as a rollback that moves only one of them leaves them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.journal import Difference
from harness.snapshot.db_models import DatabaseSnapshot, MigrationTable
from harness.snapshot.state import StateSnapshot, diff_states
from harness.snapshot.version_table import version_table_differences

REPORTS = Path(__file__).resolve().parents[1] / "data" / "reports"
OBJECT = "migration version table schema_migrations"


def _snapshot(scenario: str, stage: str) -> DatabaseSnapshot:
    data = json.loads((REPORTS / "rr3" / scenario / "report.json").read_text(encoding="utf-8"))
    return DatabaseSnapshot.model_validate(data[stage]["database"])


GOOD = _snapshot("bad-migration", "baseline")
BAD = _snapshot("bad-migration", "after_bad_deploy")


def _with(db: DatabaseSnapshot, *, schema_of: DatabaseSnapshot | None = None,
          migrations_of: DatabaseSnapshot | None = None) -> DatabaseSnapshot:
    """`db` with another snapshot's schema or version tables."""
    return db.model_copy(update={
        "schema_fingerprint": (schema_of or db).schema_fingerprint,
        "migrations": (migrations_of or db).migrations})


def _neither() -> DatabaseSnapshot:
    """The bad release's schema with its index dropped by hand: a half-done down migration."""
    fp = BAD.schema_fingerprint
    fp = fp.model_copy(update={"indexes": tuple(i for i in fp.indexes if i.name != "users_nickname_idx")})
    return GOOD.model_copy(update={"schema_fingerprint": fp})


def test_the_real_snapshots_are_what_the_tests_say() -> None:
    assert [m.version for m in GOOD.migrations] == ["1"] and [m.version for m in BAD.migrations] == ["2"]
    assert GOOD.schema_hash != BAD.schema_hash
    assert _neither().schema_hash not in (GOOD.schema_hash, BAD.schema_hash)


@pytest.mark.parametrize(("scenario", "run"), [(p.parent.name, p.parent.parent.name)
                                                for p in sorted(REPORTS.glob("*/*/report.json"))])
def test_no_new_noise_on_the_demos_real_outcomes(scenario: str, run: str) -> None:
    """Every stored rehearsal: the rolled-back good state (version 1, good schema) and the untouched bad
    one (forgot-migrate-down: version 2, bad schema) agree, so nothing is said."""
    data = json.loads((REPORTS / run / scenario / "report.json").read_text(encoding="utf-8"))
    stages = {k: DatabaseSnapshot.model_validate(data[k]["database"])
              for k in ("baseline", "after_bad_deploy", "after_rollback") if data.get(k)}
    assert "after_rollback" in stages
    assert version_table_differences(stages["baseline"], stages.get("after_bad_deploy"),
                                     stages["after_rollback"]) == []


def test_agreement_is_never_reported() -> None:
    assert version_table_differences(GOOD, BAD, GOOD) == []
    assert version_table_differences(GOOD, BAD, _snapshot("forgot-migrate-down", "after_rollback")) == []


def test_equal_means_what_the_schema_diff_says() -> None:
    """A field the diff does not compare (an index's `unique`, said by its definition) changes the hash but
    not the schema: the version table is not called a liar for it."""
    fp = GOOD.schema_fingerprint
    index = fp.indexes[0]
    flipped = fp.model_copy(update={"indexes": (index.model_copy(update={"unique": not index.unique}),
                                                *fp.indexes[1:])})
    after = GOOD.model_copy(update={"schema_fingerprint": flipped})
    assert after.schema_hash != GOOD.schema_hash
    assert version_table_differences(GOOD, BAD, after) == []


@pytest.mark.parametrize(("after", "message"), [
    (_with(GOOD, schema_of=BAD),  # a down migration that did nothing but the tool's bookkeeping
     "schema_migrations (golang-migrate) says version 1 (the good release's) but the schema is the bad release's "
     "(version 2): the next deploy of the bad release's version will apply its migration again onto a schema that "
     "already has it"),
    (_with(GOOD, migrations_of=BAD),  # the schema put back by hand, the version table left alone
     "schema_migrations (golang-migrate) says version 2 (the bad release's) but the schema is the good release's "
     "(version 1): the next deploy of the bad release's version will skip its migration"),
    (_neither(),
     "schema_migrations (golang-migrate) says version 1 (the good release's) but the schema is neither the good "
     "release's nor the bad release's"),
    (_with(_neither(), migrations_of=BAD),
     "schema_migrations (golang-migrate) says version 2 (the bad release's) but the schema is neither the good "
     "release's nor the bad release's"),
])
def test_a_version_table_naming_another_release(after: DatabaseSnapshot, message: str) -> None:
    assert version_table_differences(GOOD, BAD, after) == [Difference(area="version", object=OBJECT, message=message)]


def test_a_version_no_release_had_next_to_a_releases_schema() -> None:
    table = GOOD.migrations[0].model_copy(update={"rows": (("3", "false"),), "version": "3"})
    after = GOOD.model_copy(update={"migrations": (table,)})
    assert [d.message for d in version_table_differences(GOOD, BAD, after)] == [
        "schema_migrations (golang-migrate) says version 3 (no release's) but the schema is the good release's "
        "(version 1)"]


def test_without_the_bad_releases_snapshot_only_the_good_release_is_known() -> None:
    assert version_table_differences(GOOD, None, GOOD) == []
    assert [d.message for d in version_table_differences(GOOD, None, _with(GOOD, schema_of=BAD))] == [
        "schema_migrations (golang-migrate) says version 1 (the good release's) but the schema is not the good "
        "release's"]


def test_a_version_table_gone_after_the_rollback_is_left_to_the_baseline_diff() -> None:
    assert version_table_differences(GOOD, BAD, _with(GOOD, schema_of=BAD).model_copy(update={"migrations": ()})) == []


def test_each_version_table_is_judged_on_its_own() -> None:
    alembic = MigrationTable(tool="alembic", table="alembic_version", columns=("version_num",),
                             rows=(("ae1027a6acf",),), version="ae1027a6acf")
    good, bad = (db.model_copy(update={"migrations": (*db.migrations, alembic)}) for db in (GOOD, BAD))
    # alembic_version names both releases (the bad one did not move it): it agrees with either schema
    assert [d.object for d in version_table_differences(good, bad, _with(good, schema_of=BAD))] == [OBJECT]
    moved = alembic.model_copy(update={"rows": (("f00dcafe",),), "version": "f00dcafe"})
    after = good.model_copy(update={"migrations": (good.migrations[0], moved)})
    assert [d.message for d in version_table_differences(good, bad, after)] == [
        "alembic_version (alembic) says revision f00dcafe (no release's) but the schema is the good release's "
        "(revision ae1027a6acf)"]


def test_the_difference_is_part_of_the_state_diff() -> None:
    """diff_states hands the bad release's snapshot in: the schema lines, then the version line."""
    def state(db: DatabaseSnapshot) -> StateSnapshot:
        return StateSnapshot(workloads=[], database=db)

    diffs = diff_states(state(GOOD), state(_with(GOOD, schema_of=BAD)), state(BAD))
    assert [d.area for d in diffs] == ["schema", "schema", "version"]
    assert diff_states(state(GOOD), state(_with(GOOD, schema_of=BAD)), None)[-1].message.endswith(
        "but the schema is not the good release's")
