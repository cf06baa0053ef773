"""A destructive change in an up migration as a finding: why the rollback suffers, and the severity the
runbook's backup/restore step decides. Shared by the SQL files' check and the frameworks' check."""

from __future__ import annotations

from pathlib import Path

from harness.journal import Finding
from harness.preflight.ids import FAILURE, WARNING, Severity
from harness.preflight.inputs import Inputs
from harness.runbook_commands import Step

HAZARD_WHY = {
    "DROP COLUMN": "destroys the column's data, which no down migration can bring back",
    "DROP TABLE": "destroys the table's data, which no down migration can bring back",
    "TRUNCATE": "deletes every row, which no down migration can bring back",
    "DELETE without WHERE": "deletes every row, which no down migration can bring back",
    "ALTER COLUMN TYPE": "rewrites the column: a narrower type truncates or rejects values, "
                         "and converting back cannot restore what was lost",
    "SET NOT NULL": "makes the old version's inserts fail if it does not write the column",
    "ADD COLUMN NOT NULL without DEFAULT": "fails on a table with rows, and makes the old version's "
                                           "inserts fail since it does not write the column",
    "RENAME COLUMN": "breaks the old version, which still uses the old name, until the down migration runs",
    "RENAME TABLE": "breaks the old version, which still uses the old name, until the down migration runs",
}
_HAZARD_FIX = {
    "ADD COLUMN NOT NULL without DEFAULT": "add a DEFAULT, or add the column nullable, backfill, and set "
                                           "NOT NULL in a later release",
    "SET NOT NULL": "set NOT NULL in a later release, once the old version can no longer come back",
    "RENAME COLUMN": "expand/contract: add the new column, write both, drop the old one in a later release",
    "RENAME TABLE": "expand/contract: create the new table (or a view with the old name), "
                    "drop the old name in a later release",
}
_EXPAND_CONTRACT = "expand/contract: keep the old schema working for one more release and remove it in a later one"


def backup_advice(inp: Inputs, backups: list[Step]) -> tuple[Severity, str, str]:
    """(severity, message tail, fix tail) for a change no down migration can undo: a warning when the
    runbook has a backup/restore step (rehearse the restore), a failure when it has none."""
    if backups:
        return (WARNING, f"; the runbook has a backup/restore step (line {backups[0].line}: "
                         f"`{backups[0].command[:60]}`): rehearse the restore", "")
    return (FAILURE, "; the runbook has no backup/restore step (pg_dump, pg_restore, psql -f)",
            f"; or take a backup before migrating and document the restore in "
            f"{inp.runbook_path.name if inp.runbook_path else 'the runbook'} "
            '(e.g. `pg_dump -Fc "$DATABASE_URL" > before.dump` / `pg_restore --clean -d "$DATABASE_URL" '
            "before.dump`)")


def destructive_finding(check: str, inp: Inputs, file: Path, what: str, kind: str,
                        backups: list[Step]) -> Finding:
    """`what` says where and what runs, e.g. "migration 0003 up (line 4) runs DROP COLUMN on users.x"."""
    severity, tail, fix_tail = backup_advice(inp, backups)
    return Finding(check=check, severity=severity, file=str(file), message=f"{what}: {HAZARD_WHY[kind]}{tail}",
                   fix=_HAZARD_FIX.get(kind, _EXPAND_CONTRACT) + fix_tail)
