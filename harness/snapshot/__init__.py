"""State snapshots taken before a rehearsal and after the rollback.

Database half: ``snapshot_database`` reads schema (from pg_catalog), migration
version tables, tracked-table data and sequence positions into a frozen ``DatabaseSnapshot``;
``diff_database`` turns two of them into human-readable ``Difference`` lines.
"""

from harness.journal import Difference
from harness.snapshot.database import snapshot_database
from harness.snapshot.db_models import (
    DatabaseSnapshot,
    MigrationTable,
    SchemaFingerprint,
    SequencePosition,
    TableData,
)
from harness.snapshot.diff_db import diff_database

__all__ = [
    "DatabaseSnapshot",
    "Difference",
    "MigrationTable",
    "SchemaFingerprint",
    "SequencePosition",
    "TableData",
    "diff_database",
    "snapshot_database",
]
