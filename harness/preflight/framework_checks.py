"""The checks of framework migrations (Alembic, knex, node-pg-migrate, db-migrate, Sequelize, TypeORM,
goose, Flyway): a down that cannot revert its up, and destructive changes in an up. They follow the SQL
checks' rules (`noop-down`, `destructive-migration`): only an up that changes the schema needs a down;
a destructive up is a failure without a backup/restore step in the runbook, a warning with one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from harness.journal import Finding
from harness.preflight.destructive import backup_advice, destructive_finding
from harness.preflight.dsl import (
    DATA_METHODS,
    RAW_SQL_METHODS,
    Call,
    Direction,
    FrameworkMigration,
    State,
    call_hazards,
    changes_schema,
    first_change,
)
from harness.preflight.ids import FAILURE, FRAMEWORK_DESTRUCTIVE, FRAMEWORK_DOWN
from harness.preflight.inputs import Inputs
from harness.preflight.shell import backup_steps
from harness.preflight.sql import statement_hazards


@dataclass(frozen=True)
class _Tool:
    """What a tool does with a down that is missing or declared irreversible, in its own terms."""

    down: str            # what the down is called in a migration of this tool
    missing: str | None  # what migrating down does without one; None: the tool infers the down from the up
    irreversible: str    # what migrating down does with a down declared impossible


_DEFAULT = _Tool("down", "migrating it down fails: there is no down to run", "migrating it down fails")
TOOLS: dict[str, _Tool] = {
    "Alembic": _Tool("downgrade()", "`alembic downgrade` fails on it (Alembic calls the revision's downgrade())",
                     "`alembic downgrade` stops on that raise"),
    "knex": _Tool("exports.down", "knex refuses to run any migration while it is there: \"Invalid migration: "
                                  "... must have both an up and down function\"", "migrating it down throws"),
    # salsita/node-pg-migrate src/migration.ts: down `false` throws, down undefined replays up in reverse mode
    "node-pg-migrate": _Tool("exports.down", None,
                             "`node-pg-migrate down` stops with \"User has disabled down migration on file\""),
    # pressly/goose internal/sqlparser/parser.go: no Down section, no statements; the version is still removed
    "goose": _Tool("`-- +goose Down` section",
                   "`goose down` runs no statement and still removes the version: the schema stays", ""),
    # flyway/flyway flyway-core/.../Flyway.java: undo() is "Flyway Teams only"
    "Flyway": _Tool("undo migration (U<version>__<description>.sql)",
                    "Flyway has no other down: `flyway undo`, which runs U files, is a Flyway Teams (paid) "
                    "feature, and the free edition only migrates forward", ""),
}
# node-pg-migrate's operations that have a reverse (src/operations/*: `.reverse`), so an up made only of
# these gets its down inferred; drop*, alter*, set*, remove*, revoke*, addTypeValue and sql() have none.
_PGM_REVERSIBLE_PREFIXES = ("create", "add", "rename", "grant")
_PGM_IRREVERSIBLE = frozenset({"addTypeValue"})


def _tool(m: FrameworkMigration) -> _Tool:
    return TOOLS.get(m.tool, _DEFAULT)


def _subject(m: FrameworkMigration) -> str:
    return f"{m.tool} migration {m.name}"


def _pgm_cannot_reverse(c: Call) -> bool:
    if c.method in DATA_METHODS or not c.receiver:
        return False
    return c.method in RAW_SQL_METHODS or c.method in _PGM_IRREVERSIBLE or not (
        c.method.startswith(_PGM_REVERSIBLE_PREFIXES) or c.method == "refreshMaterializedView")


def _inferred_down(m: FrameworkMigration) -> Finding | None:
    """node-pg-migrate without `exports.down`: it replays up in reverse, which fails on the first operation
    without a reverse."""
    stuck = next((c for c in m.up.calls if _pgm_cannot_reverse(c)), None)
    if stuck is None:
        return None
    return Finding(
        check=FRAMEWORK_DOWN, severity=FAILURE, file=str(m.file),
        message=f"{_subject(m)} has no exports.down, so node-pg-migrate infers it by reversing the up, and "
                f"`{stuck.text}` (line {stuck.line}) has no reverse: `node-pg-migrate down` fails with "
                "\"Impossible to automatically infer down migration\"",
        fix=f"write exports.down in {m.file.name} with the operations that revert the up; if it cannot be "
            "reverted, declare `exports.down = false` and document the restore from a backup")


def _empty_down(_: Inputs, m: FrameworkMigration) -> Finding:
    where = m.down_file or m.file
    return Finding(
        check=FRAMEWORK_DOWN, severity=FAILURE, file=str(where),
        message=f"{_subject(m)}: its {_tool(m).down} (line {m.down.line} of {where.name}) does nothing "
                f"(`{m.down.written}`) while its up changes the schema ({first_change(m.up)}): migrating it "
                "down reports success and the schema stays",
        fix=f"write the {_tool(m).down} that reverts the up in {where.name} (e.g. drop the column the up adds); "
            "if it cannot be reverted, say so in the runbook and document the restore from a backup")


def _missing_down(inp: Inputs, m: FrameworkMigration) -> Finding | None:
    tool = _tool(m)
    if tool.missing is None:
        return _inferred_down(m)
    return Finding(
        check=FRAMEWORK_DOWN, severity=FAILURE, file=str(m.file),
        message=f"{_subject(m)} has no {tool.down} while its up changes the schema ({first_change(m.up)}): "
                f"{tool.missing}",
        fix=f"write the {tool.down} that reverts the up")


def _flyway_order(version: str) -> tuple[int, ...]:
    """Flyway's version order: 1.10 after 1.9 (versions are digits and dots or underscores, sql_migrations)."""
    return tuple(int(part) for part in version.replace("_", ".").split("."))


def _flyway_without_undo(inp: Inputs, versions: list[FrameworkMigration]) -> Finding:
    """One finding for all of a Flyway directory's versioned migrations without an undo file: in Flyway's
    free edition that is every migration, so one per file would drown the rest."""
    newest = max(versions, key=lambda m: _flyway_order(m.name))
    severity, tail, fix_tail = backup_advice(inp, backup_steps(inp.all_commands))
    others = sorted((m.name for m in versions if m is not newest), key=_flyway_order)
    also = f" (so do {len(others)} more: {', '.join(others[:5])}{', ...' if len(others) > 5 else ''})" if others else ""
    return Finding(
        check=FRAMEWORK_DOWN, severity=severity, file=str(newest.file),
        message=f"Flyway migration {newest.name} changes the schema ({first_change(newest.up)}) and has no "
                f"{TOOLS['Flyway'].down}{also}: {TOOLS['Flyway'].missing}{tail}",
        fix=f"revert it in the runbook: SQL the runbook runs, a U{newest.name}__<description>.sql with Flyway "
            "Teams, or a restore" + fix_tail)


def _irreversible_down(inp: Inputs, m: FrameworkMigration) -> Finding:
    severity, tail, fix_tail = backup_advice(inp, backup_steps(inp.all_commands))
    return Finding(
        check=FRAMEWORK_DOWN, severity=severity, file=str(m.file),
        message=f"{_subject(m)} declares its down irreversible (`{m.down.written}`, line {m.down.line}) while its "
                f"up changes the schema ({first_change(m.up)}): {_tool(m).irreversible}{tail}",
        fix="the runbook must bring the schema back another way: a restore from a backup taken before the "
            "migration, or a down that reverts the up" + fix_tail)


_DOWN_FINDINGS: dict[State, Callable[[Inputs, FrameworkMigration], Finding | None]] = {
    "empty": _empty_down, "missing": _missing_down, "irreversible": _irreversible_down,
}


def check_framework_down(inp: Inputs) -> list[Finding]:
    """A framework migration whose up changes the schema and whose down is missing, does nothing, or is
    declared irreversible (`exports.down = false`, `raise NotImplementedError`); Flyway's migrations
    without an undo file, together."""
    flagged = [m for m in inp.framework if m.down.state in _DOWN_FINDINGS and changes_schema(m.up)]
    no_undo = [m for m in flagged if m.tool == "Flyway" and m.down.state == "missing"]
    found = [_DOWN_FINDINGS[m.down.state](inp, m) for m in flagged if m not in no_undo]
    return [f for f in found if f is not None] + ([_flyway_without_undo(inp, no_undo)] if no_undo else [])


def _up_hazards(up: Direction) -> list[tuple[int, str, str, str]]:
    """(line, kind, target, as written) of every destructive call or SQL statement of an up."""
    found = [(h.call.line, h.kind, h.target, h.call.text) for c in up.calls for h in call_hazards(c)]
    found += [(st.line, hz.kind, hz.target, st.text[:80]) for st in up.sql for hz in statement_hazards(st)]
    return sorted(found, key=lambda h: h[0])  # by line; one line's hazards in the order written


def check_framework_destructive(inp: Inputs) -> list[Finding]:
    """Destructive DSL calls and SQL in the up of framework migrations (what the rollback must undo)."""
    backups = backup_steps(inp.all_commands)
    return [destructive_finding(FRAMEWORK_DESTRUCTIVE, inp, m.file,
                                f"{_subject(m)} up (line {line}) runs {kind} on {target} (`{written}`)", kind, backups)
            for m in inp.framework if m.up.state == "code" for line, kind, target, written in _up_hazards(m.up)]
