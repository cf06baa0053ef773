"""How a ladder's result is shown: a table per step and the verdict's lines, or JSON.

Everything here formats a `LadderResult` whose strings were redacted when they were recorded (command
output is masked before it reaches a step), so the table and the JSON say the same thing. Cells are rich
`Text`: migration names and command output are the user's text, never markup.
"""

from __future__ import annotations

import json

from rich.table import Table
from rich.text import Text

from harness.ladder.climb import LadderResult, LadderStep

_CELLS: dict[bool | None, Text] = {True: Text("yes", "green"), False: Text("NO", "bold red"), None: Text("-", "dim")}
LEFTOVERS_SHOWN = 20


def ladder_table(result: LadderResult) -> Table:
    table = Table("#", "migration", "up", "down restores schema", "down restores version table", "up again",
                  "s", title=f"ladder: {result.scenario} ({_where(result)})")
    for s in result.steps:
        table.add_row(str(s.index), Text(s.migration), _CELLS[s.up_ok], _CELLS[_restored(s, s.schema_restored)],
                      _CELLS[_restored(s, s.version_restored)], _CELLS[s.up_again_ok], f"{s.seconds:.1f}")
    return table


def _restored(step: LadderStep, value: bool | None) -> bool | None:
    """A down that failed restores nothing, whatever the reading after it says."""
    return False if step.down_ok is False else value


def _where(result: LadderResult) -> str:
    return f"in {result.image}" if result.runs_in == "job" and result.image else "on this machine"


def verdict_lines(result: LadderResult) -> list[str]:
    """The outcome in sentences: every step round-trips, or the first that does not and what it left."""
    if result.problem is not None:
        return [f"bad input: {result.problem}"]
    failed = result.failed_step
    if failed is None:
        return [f"all {len(result.steps)} migration(s) round-trip ({result.ended}; {result.seconds:.1f}s)"]
    lines = [f"{failed.migration} does not round-trip" + (": " + failed.error if failed.error else "")]
    left = failed.leftovers
    if left and failed.down_ok is not None:
        lines.append(f"its down leaves {len(left)} difference(s) from the state before its up:")
        lines += [f"  - {d.message}" for d in left[:LEFTOVERS_SHOWN]]
        lines += [f"  ... and {len(left) - LEFTOVERS_SHOWN} more"] if len(left) > LEFTOVERS_SHOWN else []
    if failed.bad_input:
        lines.append("fix: migrations.up_one must apply only the next pending migration")
    lines.append(f"{len(result.steps) - 1} migration(s) before it round-trip ({result.seconds:.1f}s)")
    return lines


def ladder_json(result: LadderResult) -> str:
    """The result with its verdict (the exit code, the migration that failed), for tools: `--json`."""
    failed = result.failed_step
    doc = {**result.model_dump(mode="json"), "exit_code": result.exit_code,
           "failed_migration": failed.migration if failed is not None else None}
    return json.dumps(doc, indent=2, ensure_ascii=False)
