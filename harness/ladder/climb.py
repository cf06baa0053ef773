"""The ladder's logic, without a database or a container: what is compared, when to stop, what a step says.

For each migration in order: fingerprint, up one, down one, fingerprint (must equal the first), up again
(must reach the first up's state). The fingerprint is the schema and the migration version tables, read
and compared by the harness's own code (`harness/snapshot/`), so a step round-trips exactly when verify
would find nothing between the two states. `climb` takes the command runner and the fingerprint reader
as functions: the unit tests drive it with a fake database, `harness/ladder/run.py` with a real one.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict

from harness.journal import Difference
from harness.ladder.frameworks import says_nothing_left
from harness.snapshot.db_models import MigrationTable, SchemaFingerprint
from harness.snapshot.diff_db import diff_migrations, diff_schema
from harness.snapshot.kinds import KINDS, ObjectKind
from harness.snapshot.migration_tools import term

MAX_STEPS = 1000  # an up-one that never runs out of migrations is a broken command, not a long history


@dataclass(frozen=True)
class Fingerprint:
    """What one ladder reading holds: the schema (the kinds table) and the version tables."""

    schema: SchemaFingerprint
    versions: tuple[MigrationTable, ...]


@dataclass(frozen=True)
class Outcome:
    """One command's end: its exit code (None: timed out), its output (already redacted)."""

    exit_code: int | None
    output: str
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


Run = Callable[[str], Outcome]
Read = Callable[[], Fingerprint]


# ── comparing two readings ───────────────────────────────────────────────────
@dataclass(frozen=True)
class Comparison:
    schema: tuple[Difference, ...]
    versions: tuple[Difference, ...]

    @property
    def same(self) -> bool:
        return not self.schema and not self.versions

    @property
    def differences(self) -> list[Difference]:
        return [*self.schema, *self.versions]


def _holds_nothing(table: MigrationTable) -> bool:
    return not table.applied and table.version is None and not table.dirty


def created_bookkeeping(before: Fingerprint, after: Fingerprint) -> frozenset[str]:
    """Version tables that `after` has, `before` has not, and that record no migration: a tool creates its
    table on its first run and no down drops it, so the table itself is no migration's leftover."""
    old = {t.key for t in before.versions}
    return frozenset(t.key for t in after.versions if t.key not in old and _holds_nothing(t))


_PLAIN_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_$]*")


def schema_key(table: str) -> str:
    """A version table's name (`pgmigrations`, `sqitch.changes`) as the schema fingerprint keys its table
    (quote_ident'ed parts, unqualified in public)."""
    parts = table.split(".", 1)
    return ".".join(p if _PLAIN_IDENTIFIER.fullmatch(p) else '"' + p.replace('"', '""') + '"' for p in parts)


def _belongs(kind: ObjectKind, obj: Any, tables: frozenset[str]) -> bool:
    return (kind.container and kind.key(obj) in tables) or kind.parent(obj) in tables


def without_tables(fingerprint: SchemaFingerprint, tables: frozenset[str]) -> SchemaFingerprint:
    """The fingerprint without these tables and what belongs to them (columns, indexes, owned sequences...)."""
    if not tables:
        return fingerprint
    kept = {k.field: tuple(o for o in k.objects(fingerprint) if not _belongs(k, o, tables)) for k in KINDS}
    return fingerprint.model_copy(update=kept)


def compare(before: Fingerprint, after: Fingerprint) -> Comparison:
    """The differences verify would report between two readings (diff_schema, diff_migrations), the tool's
    own new empty bookkeeping tables left out (`created_bookkeeping`)."""
    fresh = created_bookkeeping(before, after)
    in_schema = frozenset(schema_key(t) for t in fresh)
    return Comparison(
        schema=tuple(diff_schema(without_tables(before.schema, in_schema), without_tables(after.schema, in_schema))),
        versions=tuple(diff_migrations(before.versions, [t for t in after.versions if t.key not in fresh])),
    )


def applied_between(before: Fingerprint, after: Fingerprint) -> tuple[list[str], str | None]:
    """The migrations `after` records as applied that `before` did not (a history table's new names, a
    pointer table's new version), in the tool's own names, and that tool."""
    old = {t.key: t for t in before.versions}
    names: list[str] = []
    tool: str | None = None
    for table in after.versions:
        prev = old.get(table.key)
        if table.applied:
            new = [a for a in table.applied if prev is None or a not in prev.applied]
        elif table.version is not None and (prev is None or prev.version != table.version):
            new = [table.version]
        else:
            continue
        names += new
        tool = tool or (table.tool if new else None)
    return names, tool


def migration_label(names: Sequence[str], tool: str | None, index: int) -> str:
    """`version 3 (golang-migrate)`, `revision 8e4b7c1d2a65 (alembic)`: the step in the framework's terms."""
    if not names:
        return f"step {index} (no migration version table moved)"
    return f"{term(tool)} {', '.join(names)}" + (f" ({tool})" if tool else "")


# ── the stop rule ────────────────────────────────────────────────────────────
class AfterUp(str, Enum):
    APPLIED = "applied"          # the up-one moved the state: a migration to round-trip
    NOTHING_LEFT = "nothing left"  # the ladder is done
    FAILED = "failed"            # an error: reported, never taken for the end


def after_up(outcome: Outcome, change: Comparison) -> AfterUp:
    """The end of the ladder is an up-one that changed nothing and either succeeded (most tools: "no
    change") or failed saying there was nothing to apply (`alembic upgrade +1` at head). A failure that
    says anything else, a timeout, or a failure that changed the state, is an error."""
    if outcome.timed_out:
        return AfterUp.FAILED
    if change.same and (outcome.ok or says_nothing_left(outcome.output)):
        return AfterUp.NOTHING_LEFT
    return AfterUp.APPLIED if outcome.ok else AfterUp.FAILED


# ── results ──────────────────────────────────────────────────────────────────
class LadderStep(BaseModel):
    """One migration's round trip. None: that part did not run (the step stopped before it)."""

    model_config = ConfigDict(frozen=True)

    index: int
    migration: str                       # in the framework's terms: `version 3 (golang-migrate)`
    tool: str | None = None              # the version table's tool
    up_ok: bool
    down_ok: bool | None = None          # the down command succeeded
    schema_restored: bool | None = None  # after the down, the schema equals the one before the up
    version_restored: bool | None = None  # ... and so do the version tables
    up_again_ok: bool | None = None      # the up-one again succeeded and reached the first up's state
    leftovers: list[Difference] = []     # what the down left different (schema and version tables)
    error: str | None = None             # a command that failed, or an up-one that applied several migrations
    bad_input: bool = False              # the error is the scenario's commands' (exit 2)
    seconds: float = 0.0

    @property
    def round_trips(self) -> bool:
        return bool(self.up_ok and self.down_ok and self.schema_restored and self.version_restored
                    and self.up_again_ok and self.error is None)


class LadderResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    scenario: str
    runs_in: str                   # job: in the bad release's image; host: on this machine
    image: str | None = None
    steps: list[LadderStep] = []
    ended: str = ""                # why the ladder stopped, in one sentence
    problem: str | None = None     # a problem with the scenario's commands found while running (exit 2)
    seconds: float = 0.0

    @property
    def failed_step(self) -> LadderStep | None:
        return next((s for s in self.steps if not s.round_trips), None)

    @property
    def exit_code(self) -> int:
        """0 every migration round-trips; 1 one does not (or a command failed); 2 the scenario's commands
        are wrong (an up-one that applies several migrations, or none on an empty database)."""
        if self.problem is not None or any(s.bad_input for s in self.steps):
            return 2
        return 1 if self.failed_step is not None else 0


# ── the climb ────────────────────────────────────────────────────────────────
def _failed(what: str, outcome: Outcome, limit: int = 1500) -> str:
    how = "timed out" if outcome.timed_out else f"failed (exit {outcome.exit_code})"
    tail = outcome.output.strip()[-limit:]
    return f"{what} {how}" + (f": {tail}" if tail else "")


@dataclass
class _Rung:
    """One step as it goes: the reading before its up, the reading after it, what it applied."""

    index: int
    before: Fingerprint
    started: float
    after_up: Fingerprint | None = None
    named: dict[str, Any] = field(default_factory=dict)  # migration (its label) and tool

    def step(self, **fields: Any) -> LadderStep:
        return LadderStep(index=self.index, seconds=round(time.monotonic() - self.started, 3), **self.named, **fields)


def _down_and_up_again(rung: _Rung, run: Run, read: Read, down: str, up_one: str) -> LadderStep:
    """Down one: must restore the reading before the up. Then up again: must reach the first up's."""
    down_outcome = run(down)
    back = compare(rung.before, read())
    restored = {"up_ok": True, "down_ok": down_outcome.ok, "schema_restored": not back.schema,
                "version_restored": not back.versions, "leftovers": back.differences}
    if not down_outcome.ok:
        return rung.step(**restored, error=_failed("down", down_outcome))
    if not back.same:
        return rung.step(**restored)
    again = run(up_one)
    if not again.ok:
        return rung.step(**restored, up_again_ok=False, error=_failed("up_one again", again))
    assert rung.after_up is not None
    drift = compare(rung.after_up, read())
    if not drift.same:
        said = "; ".join(d.message for d in drift.differences[:5])
        return rung.step(**restored, up_again_ok=False,
                         error=f"up_one again did not reach the state of the first up: {said}")
    return rung.step(**restored, up_again_ok=True)


class Climbed(NamedTuple):
    steps: list[LadderStep]
    ended: str             # why the ladder stopped
    problem: str | None    # what is wrong with the scenario's commands (None: they behaved)


def climb(run: Run, read: Read, up_one: str, down: str, say: Callable[[str], None] = lambda line: None,
          max_steps: int = MAX_STEPS) -> Climbed:
    """Round-trip every migration in order, from the reading `read()` gives now; stop at the first step
    that does not round-trip."""
    steps: list[LadderStep] = []
    before = read()
    for index in range(1, max_steps + 1):
        rung = _Rung(index, before, time.monotonic())
        up = run(up_one)
        rung.after_up = read()
        decision = after_up(up, compare(before, rung.after_up))
        if decision is AfterUp.NOTHING_LEFT:
            if not steps:
                return Climbed(steps, "up_one applied no migration on an empty database", (
                    "migrations.up_one applied no migration on an empty database, so nothing was checked: make it "
                    "apply the next pending migration, and check that the migrations are where it looks"))
            return Climbed(steps, f"no migration left after {len(steps)}", None)
        names, tool = applied_between(before, rung.after_up)
        rung.named = {"migration": migration_label(names, tool, index), "tool": tool}
        if decision is AfterUp.FAILED:
            steps.append(rung.step(up_ok=False, error=_failed("up_one", up)))
            return Climbed(steps, f"step {index}: up_one failed", None)
        if len(names) > 1:
            steps.append(rung.step(up_ok=True, bad_input=True,
                                   error=f"up_one applied {len(names)} migrations ({', '.join(names)}); it must "
                                         "apply only the next one (e.g. `up 1`, `upgrade +1`), or the down after it "
                                         "undoes just the last"))
            return Climbed(steps, f"step {index}: up_one applied several migrations", None)
        step = _down_and_up_again(rung, run, read, down, up_one)
        steps.append(step)
        say(f"step {index}: {step.migration}: " + ("round-trips" if step.round_trips else "does NOT round-trip")
            + f" ({step.seconds:.1f}s)")
        if not step.round_trips:
            return Climbed(steps, f"step {index} ({step.migration}) does not round-trip", None)
        before = rung.after_up
    return Climbed(steps, f"more than {max_steps} migrations", (
        f"migrations.up_one still applied a migration after {max_steps} steps: it must apply the next pending "
        "migration and report nothing left at the end"))
