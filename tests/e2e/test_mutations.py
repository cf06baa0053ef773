"""Mutation self-test of the harness (failure-mode catalogue, deliverable 4).

The READY scenarios (bad-image, bad-migration, promotion) are broken one way at
a time: a runbook step removed, mistyped, repeated or hanging, a migration
whose down script forgets something or whose up script rewrites data, a
promotion of the wrong SHA, a ConfigMap the rollback does not restore. Each
mutated copy (tests/e2e/mutations.py) is rehearsed for real on the session's
cluster and Postgres, and must come out NOT_READY *with the difference that
names the defect* (an area and a substring of its message): a NOT_READY for
another reason does not count. `test_detection_rate` then asserts that every
mutation that ran was detected, and the session ends with the mutation table.

    .venv/bin/pytest tests/e2e/test_mutations.py -v --reuse-cluster --cluster-name rr-dev

REHEARSAL_MUTATIONS=all adds mutations.EXTENDED (more ways to leave the bad
version running, more schema object kinds, the dirty flag of the version
table, a rewound sequence) to the default catalogue, and rehearses
mutations.BLIND_SPOTS, if any: known misses, expected (strict xfail) not to
be detected.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mutations as mut  # tests/e2e/mutations.py (tests/e2e is on sys.path: no package)
import pytest

from harness import runstate
from harness.scenario import load_scenario

pytestmark = pytest.mark.e2e

# mutation name -> outcome, filled in run order by test_mutation_is_detected.
TALLY: dict[str, mut.Outcome] = {}


class _Summary:
    """Prints the mutation table and the detection rate at the end of the session."""

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not TALLY:
            return
        outcomes = list(TALLY.values())
        detected = sum(o.detected for o in outcomes)
        terminalreporter.section("mutation self-test")
        for line in mut.table(outcomes).splitlines():
            terminalreporter.write_line(line)
        for o in outcomes:
            if not o.detected:
                terminalreporter.write_line(o.explain())
        terminalreporter.write_line(
            f"detected {detected}/{len(outcomes)} mutations "
            f"({sum(o.seconds for o in outcomes):.0f}s of rehearsals)")


@pytest.fixture(scope="module", autouse=True)
def _summary(request: pytest.FixtureRequest) -> None:
    if not request.config.pluginmanager.has_plugin("mutation-summary"):
        request.config.pluginmanager.register(_Summary(), "mutation-summary")


@pytest.fixture(scope="module")
def node_images(kind_cluster: Any, kubectl: Any, rehearsal_session: Any) -> Iterator[list[str]]:
    """Mutated images loaded into the kind nodes; removed from them at the end of
    the module, once the mutations' namespaces (and so their pods) are gone."""
    images: list[str] = []
    yield images
    if not images:
        return
    deadline = time.monotonic() + 90
    # Namespaces are rr-<scenario>-<run id>: match this session's run id, never another run's.
    ours = {runstate.namespace_name(m.name, rehearsal_session.infra.run_id)
            for m in mut.CATALOGUE + mut.EXTENDED + mut.BLIND_SPOTS}
    while time.monotonic() < deadline:
        names = set(kubectl("get", "namespaces", "-o", "jsonpath={.items[*].metadata.name}").split())
        if not names & ours:
            break
        time.sleep(3)
    failed = mut.remove_from_nodes(kind_cluster.node_containers(), images)
    if failed:
        print("mutated images not removed from the kind nodes:\n  " + "\n  ".join(failed))


def test_catalogue_is_well_formed(tmp_path: Path) -> None:
    """Every mutation writes a valid scenario with a unique name and really changes
    something (no cluster, no build): a mutation that silently did nothing would
    be 'detected' for the wrong reason, or not at all."""
    everything = mut.CATALOGUE + mut.EXTENDED + mut.BLIND_SPOTS
    assert len(mut.CATALOGUE) >= 12
    names = [m.name for m in everything]
    assert len(set(names)) == len(names), names
    assert len({m.id for m in everything}) == len(everything)
    assert {m.kind for m in mut.CATALOGUE} == {"runbook", "migration", "manifest"}
    assert {m.base for m in mut.CATALOGUE} == {"bad-image", "bad-migration", "promotion"}
    for m in everything:
        with mut.mutated_scenario(m, tmp_path, build=False) as made:
            s = load_scenario(made.path)  # ScenarioError lists every problem
        assert s.name == m.name and s.directory == made.path.resolve()
        original = load_scenario(mut.SCENARIOS / m.base)
        assert s.app.manifests.is_absolute() or m.manifests is not None
        if m.migrations:
            assert s.versions.bad.image == m.image
            assert s.migrations is not None and s.migrations.files is not None
            assert original.migrations is not None and original.migrations.files is not None
            assert s.path(s.migrations.files) != original.path(original.migrations.files)
        else:
            assert s.versions == original.versions
        if not m.runbook:
            assert (made.path / "runbook.md").read_text() == (mut.SCENARIOS / m.base / "runbook.md").read_text()


@pytest.mark.parametrize("mutation", mut.selected(), ids=str)
def test_mutation_is_detected(mutation: mut.Mutation, tmp_path: Path, rehearsal: Any,
                              node_images: list[str]) -> None:
    t0 = time.monotonic()
    try:
        with mut.mutated_scenario(mutation, tmp_path) as made:
            if made.image:
                node_images.append(made.image)  # `kind load` puts it on the nodes during the rehearsal
            journal = rehearsal(made.path)
    except Exception as exc:
        TALLY[mutation.name] = mut.Outcome(mutation, "ERROR", None, [], time.monotonic() - t0,
                                           error=f"{type(exc).__name__}: {exc}"[:500])
        raise
    outcome = mut.judge(mutation, journal, time.monotonic() - t0)
    TALLY[mutation.name] = outcome
    assert outcome.detected, outcome.explain()


# Known blind spots are only collected with REHEARSAL_MUTATIONS=all, and only
# when there are any (a skip, or an empty parameter set, would count as a
# skipped e2e test, which `make test` rejects).
if os.environ.get("REHEARSAL_MUTATIONS", "") == "all" and mut.BLIND_SPOTS:
    @pytest.mark.xfail(strict=True, reason="known blind spot of the harness (see mutations.BLIND_SPOTS)")
    @pytest.mark.parametrize("mutation", mut.BLIND_SPOTS, ids=str)
    def test_known_blind_spot(mutation: mut.Mutation, tmp_path: Path, rehearsal: Any, node_images: list[str]) -> None:
        """Not counted in the detection rate. Strict: once the harness detects it,
        this XPASSes and fails, and the mutation moves to the catalogue."""
        t0 = time.monotonic()
        with mut.mutated_scenario(mutation, tmp_path) as made:
            if made.image:
                node_images.append(made.image)
            journal = rehearsal(made.path)
        outcome = mut.judge(mutation, journal, time.monotonic() - t0)
        print(outcome.explain())
        assert outcome.detected, outcome.explain()


def test_detection_rate() -> None:
    """All mutations that ran were detected (100%)."""
    if not TALLY:
        pytest.skip("no mutation was rehearsed (deselected?)")
    outcomes = list(TALLY.values())
    total, detected = len(outcomes), sum(o.detected for o in outcomes)
    print(f"detected {detected}/{total} mutations")
    missed = "\n".join(o.explain() for o in outcomes if not o.detected)
    assert detected == total, f"detected {detected}/{total} mutations; missed:\n{missed}"
