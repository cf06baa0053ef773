"""Version-table honesty: does each migration version table name the release whose schema is in place?

The migration tool decides what to run next from its version table alone. A rollback that moved
the version table without the schema (a down migration that did nothing, or did half) or the
schema without the version table (SQL run by hand) leaves a database whose next deploy goes
wrong: the tool re-applies a migration onto objects that already exist, or skips one. The diff
with the baseline lists the schema objects and the version; this check says what the two facts
mean together, in the tool's terms, e.g. `schema_migrations (golang-migrate) says version 1 (the
good release's) but the schema is the bad release's (version 2)`.

A release's schema fingerprint is its snapshot's schema fingerprint, recorded at deploy time:
the baseline for the good release, the snapshot after the bad deploy for the bad one. It covers
the structure of every object, the version table's own columns included, but not its rows
(those are `migrations`), so it identifies a schema whatever the table says. The schema in place
"is" a release's when the schema diff finds nothing between them (`diff_schema`, whose fast path
is the equal `schema_hash`): the same notion of equal as the verdict's, so a rehearsal whose
schema and version table are back to the baseline never gets a `version` difference.

The rule, per version table present after the rollback: V are the releases whose version the
table names, S the releases whose schema is in place. Nothing is said when V and S share a
release (version and schema agree: a good rollback, or a database the runbook never touched),
nor when neither names one (the diff with the baseline already says all there is).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.journal import Difference
from harness.snapshot.db_models import DatabaseSnapshot, MigrationTable
from harness.snapshot.diff_db import diff_schema
from harness.snapshot.migration_tools import in_terms, shape_named

AREA = "version"
GOOD, BAD = "the good release", "the bad release"


@dataclass(frozen=True)
class Release:
    label: str  # "the good release"
    snapshot: DatabaseSnapshot

    def table(self, name: str) -> MigrationTable | None:
        return next((m for m in self.snapshot.migrations if m.table == name), None)

    def version(self, name: str) -> str | None:
        found = self.table(name)
        return found.version if found is not None else None

    def named(self, name: str) -> str:
        """Its version of the table, in the tool's terms: `revision 3f1c2a9d7b10`."""
        found = self.table(name)
        return in_terms(found.tool, name, found.version) if found else in_terms(None, name, None)


# (releases the version table names, releases whose schema is in place) → what the next deploy does.
CONSEQUENCES: dict[tuple[tuple[str, ...], tuple[str, ...]], str] = {
    ((GOOD,), (BAD,)): ("the next deploy of the bad release's version will apply its migration again onto a schema "
                        "that already has it"),
    ((BAD,), (GOOD,)): "the next deploy of the bad release's version will skip its migration",
}


def _says(table: MigrationTable, named: list[Release]) -> str:
    says = f"{table.table} ({table.tool}) says {in_terms(table.tool, table.table, table.version)}"
    if not named:
        return f"{says} (no release's)"
    return f"{says} (" + " and ".join(f"{r.label}'s" for r in named) + ")"


def _has_version(table: MigrationTable) -> bool:
    """Only a table from which the tool derives a version says which release is in place (a lock,
    other metadata or an unrecognised table does not)."""
    shape = shape_named(table.tool, table.table)
    return shape is not None and shape.role in ("history", "pointer")


def _schema_is(table: str, matching: list[Release], known: Sequence[Release]) -> str:
    if matching:
        return " and ".join(f"{r.label}'s ({r.named(table)})" for r in matching)
    if len(known) == 1:
        return f"not {known[0].label}'s"
    return "neither " + " nor ".join(f"{r.label}'s" for r in known)


def version_table_differences(good: DatabaseSnapshot, bad: DatabaseSnapshot | None,
                              after: DatabaseSnapshot) -> list[Difference]:
    """A `version` difference for each version table whose version names another release than the one
    whose schema is in place after the rollback (empty when they agree)."""
    known = [Release(GOOD, good)] + ([Release(BAD, bad)] if bad is not None else [])
    matching = [r for r in known if not diff_schema(r.snapshot.schema_fingerprint, after.schema_fingerprint)]
    out: list[Difference] = []
    for table in filter(_has_version, after.migrations):
        releases = [r for r in known if r.table(table.table) is not None]
        named = [r for r in releases if r.version(table.table) == table.version]
        says, schema_is = tuple(r.label for r in named), tuple(r.label for r in matching)
        if set(says) & set(schema_is) or not (says or schema_is):
            continue
        message = f"{_says(table, named)} but the schema is {_schema_is(table.table, matching, known)}"
        then = CONSEQUENCES.get((says, schema_is))
        out.append(Difference(area=AREA, object=f"migration version table {table.table}",
                              message=f"{message}: {then}" if then else message))
    return out
