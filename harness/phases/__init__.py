"""The pipeline's phases: one class per module, each following the one `Phase` contract.

A phase does one step of the rehearsal, records what it saw in `ctx.journal`
and returns a one-line detail for its phase record. It raises to say it
failed; what that failure means for the run is data of the phase
(`on_failure`), read by harness/pipeline.py, never a special case there.
"""

from __future__ import annotations

from enum import Enum
from typing import Protocol, runtime_checkable

from harness.context import RehearsalContext


class OnFailure(Enum):
    """What a failing phase means; the value is the status its record gets."""

    # Something to report (a bad release that does not fail as described, a runbook that drifts,
    # advice, a risk): recorded as `failed`, and the rollback still gets verified.
    EVIDENCE = "failed"
    # Nothing after it can be compared (no namespace, no good deploy, no baseline, no verify):
    # recorded as `error`, and the pipeline stops.
    STOP = "error"


@runtime_checkable
class Phase(Protocol):
    """The contract of every pipeline phase (harness/pipeline.py runs them in order)."""

    name: str  # the phase's name in the journal and on the console
    on_failure: OnFailure

    def execute(self, ctx: RehearsalContext) -> str:
        """Do the phase's work, record it in ctx.journal and return a one-line detail; raise on failure."""
        ...

    def applies(self, ctx: RehearsalContext) -> bool:
        """Whether this scenario needs the phase; one that does not is neither run nor recorded."""
        return True
