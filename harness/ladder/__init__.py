"""`rehearse ladder`: every migration of a scenario applied, undone and applied again on a scratch Postgres,
each down checked against the state before its up with the harness's own schema and version-table
comparison (docs/ARCHITECTURE.md, "The migration ladder").

- `frameworks.py`: the table of migration frameworks (their up, down and up-one commands);
- `climb.py`: the logic (what is compared, when the ladder ends, what a step says), pure;
- `run.py`: the scratch Postgres and where the commands run (the bad release's image, or this machine);
- `output.py`: the table per step, the verdict's lines, JSON.

Only `climb` and `output` are imported here: `run` starts containers and is imported where it is used.
"""

from harness.ladder.climb import LadderResult, LadderStep
from harness.ladder.output import ladder_json, ladder_table, verdict_lines

__all__ = ["LadderResult", "LadderStep", "ladder_json", "ladder_table", "verdict_lines"]
