"""SQL migrations of the tools that do not pair `.up.sql` / `.down.sql` files (those are `migrations.py`):

- goose: one `NNN_name.sql` with `-- +goose Up` and `-- +goose Down` sections (pressly/goose
  internal/sqlparser/parser.go: without a Down section, `goose down` runs nothing and still removes
  the version);
- node-pg-migrate's SQL migrations: `-- Up Migration` / `-- Down Migration` (salsita/node-pg-migrate
  src/sqlMigration.ts: without a Down section the down is `false`, "User has disabled down migration");
- Flyway: `V<version>__<description>.sql` and its undo `U<version>__<description>.sql`.

Each section is read by `sql.split_sql` at its lines in the file, so messages give the file's lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from harness.preflight.dsl import Direction, FrameworkMigration, State, sql_is_noop
from harness.preflight.sql import split_sql

# goose reads an annotation only at the start of a line (leading whitespace is an error there).
_GOOSE = (re.compile(r"^--\s*\+goose\s+Up\b", re.M), re.compile(r"^--\s*\+goose\s+Down\b", re.M))
_NODE_PG_MIGRATE = (re.compile(r"^\s*--[\s-]*up\s+migration", re.M | re.I),
                    re.compile(r"^\s*--[\s-]*down\s+migration", re.M | re.I))
FLYWAY_FILE = re.compile(r"^([VU])(\d+(?:[._]\d+)*)__(.+)\.sql$")


@dataclass(frozen=True)
class _Sections:
    """A tool whose single file holds both directions: its markers, and how it treats a missing Down."""

    tool: str
    markers: tuple[re.Pattern[str], re.Pattern[str]]
    missing_down: State  # what a file without a Down marker has as its down
    missing_written: str


SECTION_TOOLS: tuple[_Sections, ...] = (
    _Sections("goose", _GOOSE, "missing", "no `-- +goose Down` section"),
    _Sections("node-pg-migrate", _NODE_PG_MIGRATE, "irreversible", "no `-- Down Migration` section"),
)


def _section(text: str, start: int, end: int) -> str:
    """Lines [start, end) of the text kept, every other line blanked: statements keep their file lines."""
    return "\n".join(line if start <= n < end else "" for n, line in enumerate(text.split("\n")))


def _sql_direction(text: str, line: int) -> Direction:
    statements = tuple(split_sql(text))
    if sql_is_noop(statements):
        return Direction("empty", line, written="; ".join(st.text for st in statements)[:60] or "nothing")
    return Direction("code", line, sql=statements)


def read_sections(path: Path, text: str) -> FrameworkMigration | None:
    """A goose or node-pg-migrate SQL migration, or None when the file has neither tool's Up marker."""
    for tool in SECTION_TOOLS:
        up = tool.markers[0].search(text)
        if up is None:
            continue
        down = tool.markers[1].search(text)
        up_at = _line_of(text, up)
        down_at = _line_of(text, down) if down is not None else None
        lines = text.count("\n") + 1
        up_dir = _sql_direction(_section(text, up_at + 1, down_at if down_at and down_at > up_at else lines),
                                up_at + 1)
        if down_at is None:
            return FrameworkMigration(tool.tool, path, path.name, up_dir,
                                      Direction(tool.missing_down, 1, written=tool.missing_written))
        down_dir = _sql_direction(_section(text, down_at + 1, up_at if up_at > down_at else lines), down_at + 1)
        return FrameworkMigration(tool.tool, path, path.name, up_dir, down_dir)
    return None


def _line_of(text: str, match: re.Match[str]) -> int:
    """The 0-based line a marker is on; its section starts on the next one."""
    return text.count("\n", 0, match.start())


def read_flyway(texts: dict[Path, str]) -> list[FrameworkMigration]:
    """Flyway's versioned migrations, each with its undo file if there is one (paired by version)."""
    undo: dict[str, Path] = {}
    versioned: list[tuple[str, Path]] = []
    for path in texts:
        m = FLYWAY_FILE.match(path.name)
        if m:
            (versioned.append((m.group(2), path)) if m.group(1) == "V" else undo.setdefault(m.group(2), path))
    out: list[FrameworkMigration] = []
    for version, path in versioned:
        u = undo.get(version)
        down = _sql_direction(texts[u], 1) if u is not None else Direction("missing", 1)
        out.append(FrameworkMigration("Flyway", path, version, _sql_direction(texts[path], 1), down, u))
    return out

