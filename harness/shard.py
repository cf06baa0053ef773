"""`--shard K/N`: the scenarios split into N balanced parts that every shard computes alike.

The split is a greedy longest-processing-time assignment: the scenarios, the
longest first (equal lengths: by name), each go to the part with the least
total so far (equal totals: the lowest K). A scenario's length is its last
known `duration_s` in REPORT_DIR/history.jsonl; one without a known length
counts as the median of the known ones, and when none is known all count the
same, which makes the split a round-robin over the sorted names. Scenarios
whose faults freeze the shared infrastructure (`parallel.SHARED_FAULTS`) are
placed first, each on the part with the fewest of them, so that they do not
all queue for the exclusive lock in one shard (`-j`).

The split depends on nothing but the scenario names, their fault kinds and the
history file: shards given the same scenarios and the same history compute
the same partition, each on its own runner. Each records the whole partition
(and its fingerprint) in run.json; `rehearse report merge` checks that every
scenario of it has a result, so shards that computed different partitions
(different history files) can still not lose a scenario unnoticed.
"""

from __future__ import annotations

import hashlib
import json
import statistics
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from harness.options import Shard
from harness.parallel import needs_exclusive
from harness.report.history import read_history
from harness.report.run_file import ShardRecord
from harness.scenario.models import Scenario

T = TypeVar("T")
UNKNOWN_WEIGHT = 1.0  # every scenario's weight when the history knows none of them


@dataclass(frozen=True)
class ShardPlan:
    shard: Shard
    partition: tuple[tuple[str, ...], ...]  # every shard's scenario names, sorted
    known: int                              # scenarios whose length came from the history
    history: Path

    @property
    def scenarios(self) -> tuple[str, ...]:
        """This shard's scenario names."""
        return self.partition[self.shard.index - 1]

    @property
    def total(self) -> int:
        return sum(len(p) for p in self.partition)

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.partition).encode()).hexdigest()[:12]

    def record(self) -> ShardRecord:
        return ShardRecord(str(self.shard), self.partition, self.fingerprint)

    def select(self, items: Sequence[T], name: Callable[[T], str]) -> list[T]:
        """This shard's items, in the order given."""
        mine = set(self.scenarios)
        return [i for i in items if name(i) in mine]

    def describe(self) -> str:
        how = (f"balanced by the last known durations of {self.known} of them in {self.history}" if self.known
               else f"no durations in {self.history}: split by name")
        return (f"shard {self.shard}: {len(self.scenarios)} of {self.total} scenario(s) ({how}; "
                f"partition {self.fingerprint})")

    def empty_note(self) -> str:
        return (f"shard {self.shard} has no scenario: {self.total} scenario(s) over {self.shard.count} shards; "
                "this empty report set keeps the merge uniform")


def last_durations(history: Path) -> dict[str, float]:
    """Each scenario's latest known rehearsal length (seconds) in a history file ({} without one)."""
    if not history.is_file():
        return {}
    out: dict[str, float] = {}
    for e in read_history([history]).entries:  # oldest first: later ones win
        if isinstance(e.get("duration_s"), (int, float)) and e["duration_s"] > 0:
            out[e["scenario"]] = float(e["duration_s"])
    return out


def weights(names: Collection[str], durations: Mapping[str, float]) -> dict[str, float]:
    known = [durations[n] for n in names if n in durations]
    fill = statistics.median(known) if known else UNKNOWN_WEIGHT
    return {n: durations.get(n, fill) for n in names}


def partition(names: Collection[str], count: int, weight: Mapping[str, float],
              exclusive: Collection[str] = ()) -> tuple[tuple[str, ...], ...]:
    """`count` parts of `names` (each sorted), longest first onto the least loaded part; `exclusive` names
    first, each onto the part with the fewest of them."""
    loads = [0.0] * count
    held = [0] * count  # exclusive scenarios per part
    parts: list[list[str]] = [[] for _ in range(count)]

    def heaviest_first(group: Collection[str]) -> list[str]:
        return sorted(group, key=lambda n: (-weight[n], n))

    first = heaviest_first([n for n in names if n in exclusive])
    for name in first + heaviest_first([n for n in names if n not in exclusive]):
        is_exclusive = name in exclusive
        k = min(range(count), key=lambda i: (held[i] if is_exclusive else 0, loads[i], i))
        parts[k].append(name)
        loads[k] += weight[name]
        held[k] += is_exclusive
    return tuple(tuple(sorted(p)) for p in parts)


def plan(scenarios: Sequence[Scenario], shard: Shard, history: Path) -> ShardPlan:
    """The partition of these scenarios into `shard.count` parts, from the lengths in `history`."""
    names = sorted({s.name for s in scenarios})
    durations = last_durations(history)
    exclusive = {s.name for s in scenarios if needs_exclusive(s)}
    parts = partition(names, shard.count, weights(names, durations), exclusive)
    return ShardPlan(shard, parts, sum(1 for n in names if n in durations), history)
