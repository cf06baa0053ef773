"""The framework migrations under `migrations.files`: every file a reader recognises, read once.

`migrations.py` pairs golang-migrate's `.up.sql` / `.down.sql`; everything else is read here, by
suffix: Alembic revisions (`.py`), knex / node-pg-migrate / db-migrate / Sequelize / TypeORM
migrations (`.js`, `.cjs`, `.mjs`, `.ts`, ...), goose and node-pg-migrate SQL files with their
sections, and Flyway's `V`/`U` files. A file no reader recognises (env.py, a helper module, a
README) is not a migration; one that cannot be read or parsed is reported, never raised.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.preflight.alembic import read_alembic
from harness.preflight.dsl import FrameworkMigration
from harness.preflight.js_migrations import LANGUAGES, MigrationSyntaxError, read_js
from harness.preflight.migrations import MIGRATION_FILE
from harness.preflight.sql_migrations import FLYWAY_FILE, read_flyway, read_sections
from harness.scenario.reading import ReadError, migration_sources, read_text

Reader = Callable[[Path, str], FrameworkMigration | None]
READERS: dict[str, Reader] = {".py": read_alembic, ".sql": read_sections, **{s: read_js for s in LANGUAGES}}


@dataclass
class Loaded:
    migrations: list[FrameworkMigration] = field(default_factory=list)
    unreadable: list[tuple[Path, str]] = field(default_factory=list)  # (file, why its checks are skipped)


def _texts(directory: Path, loaded: Loaded) -> dict[Path, str]:
    """The files a reader may recognise (golang-migrate's pairs are `migrations.py`'s)."""
    texts: dict[Path, str] = {}
    for path in migration_sources(directory):
        if path.suffix not in READERS or MIGRATION_FILE.match(path.name):
            continue
        try:
            texts[path] = read_text(path)
        except ReadError as exc:
            loaded.unreadable.append((path, str(exc)))
    return texts


def load_framework_migrations(directory: Path) -> Loaded:
    """The framework migrations of a directory, in file order. OSError when it cannot be listed."""
    loaded = Loaded()
    texts = _texts(directory, loaded)
    loaded.migrations.extend(read_flyway({p: t for p, t in texts.items() if FLYWAY_FILE.match(p.name)}))
    for path, text in texts.items():
        if FLYWAY_FILE.match(path.name):
            continue
        try:
            migration = READERS[path.suffix](path, text)
        except MigrationSyntaxError as exc:
            loaded.unreadable.append((path, str(exc)))
            continue
        if migration is not None:
            loaded.migrations.append(migration)
    loaded.migrations.sort(key=lambda m: m.file)
    return loaded
