"""The migrations directory preflight reads: golang-migrate style NNNN_name.up.sql / NNNN_name.down.sql files,
grouped by version so the checks can see missing, orphaned and duplicate halves."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

MIGRATION_FILE = re.compile(r"^(\d+)_(.+)\.(up|down)\.sql$")


@dataclass
class Migration:
    """One version of a golang-migrate style directory: NNNN_name.up.sql / NNNN_name.down.sql."""

    version: str
    ups: list[Path] = field(default_factory=list)
    downs: list[Path] = field(default_factory=list)

    @property
    def up(self) -> Path | None:
        return self.ups[0] if self.ups else None

    @property
    def down(self) -> Path | None:
        return self.downs[0] if self.downs else None


def load_migrations(directory: Path) -> list[Migration]:
    """Migrations by version (numeric order); files not named NNNN_name.(up|down).sql are ignored.
    OSError when the directory cannot be listed."""
    by_version: dict[int, Migration] = {}
    for f in sorted(directory.iterdir()):
        m = MIGRATION_FILE.match(f.name)
        if not m or not f.is_file():
            continue
        mig = by_version.setdefault(int(m.group(1)), Migration(m.group(1)))
        (mig.ups if m.group(3) == "up" else mig.downs).append(f)
    return [by_version[v] for v in sorted(by_version)]

