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
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import mutations as mut  # tests/e2e/mutations.py (tests/e2e is on sys.path: no package)
import pytest

from harness import runstate
from harness.options import session_options_from_pytest
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


def _selected_here(session: pytest.Session, test_name: str) -> list[mut.Mutation]:
    """The mutations of TEST_NAME's items that this session will run (after -k, --lf, deselection)."""
    return [item.callspec.params["mutation"] for item in session.items
            if isinstance(item, pytest.Function) and item.originalname == test_name
            and item.module is not None and item.module.__name__ == __name__]


def _rehearse_batch(request: pytest.FixtureRequest, test_name: str, session: Any,
                    node_images: list[str]) -> Iterator[dict[str, mut.Outcome]]:
    """Every selected mutation of TEST_NAME rehearsed on the session, `--jobs` at a time (they are
    independent scenarios, each in its own namespace and database, as the demo batch is); each test
    item then judges its own outcome. Mutated images are removed from Docker when the module ends."""
    jobs = session_options_from_pytest(request.config).jobs
    workdir = request.getfixturevalue("tmp_path_factory").mktemp(test_name)
    outcomes: dict[str, mut.Outcome] = {}
    with ExitStack() as stack:
        made: dict[str, tuple[mut.Mutation, Path]] = {}
        for m in _selected_here(request.session, test_name):
            try:
                built = stack.enter_context(mut.mutated_scenario(m, workdir))
            except Exception as exc:  # a build failure is that mutation's error, not the batch's
                outcomes[m.name] = mut.Outcome(m, "ERROR", None, [], 0.0, error=f"{type(exc).__name__}: {exc}"[:500])
                continue
            if built.image:
                node_images.append(built.image)  # `kind load` puts it on the nodes during the rehearsal
            made[m.name] = (m, built.path)
        errors: dict[str, Exception] = {}
        journals = session.rehearse_all([load_scenario(path) for _, path in made.values()], jobs, errors=errors)
        for journal in journals:
            m = made[journal.scenario][0]
            outcomes[m.name] = mut.judge(m, journal, sum(p.duration_s for p in journal.phases))
        for name, exc in errors.items():
            outcomes[name] = mut.Outcome(made[name][0], "ERROR", None, [], 0.0,
                                         error=f"{type(exc).__name__}: {exc}"[:500])
        yield outcomes


@pytest.fixture(scope="module")
def detected_batch(request: pytest.FixtureRequest, rehearsal_session: Any,
                   node_images: list[str]) -> Iterator[dict[str, mut.Outcome]]:
    yield from _rehearse_batch(request, "test_mutation_is_detected", rehearsal_session, node_images)


def _outcome_of(batch: dict[str, mut.Outcome], mutation: mut.Mutation) -> mut.Outcome:
    outcome = batch.get(mutation.name)
    if outcome is None:  # only a bug gets here: the batch covers every selected item
        raise RuntimeError(f"mutation {mutation.name} was not rehearsed in its batch")
    return outcome


@pytest.mark.parametrize("mutation", mut.selected(), ids=str)
def test_mutation_is_detected(mutation: mut.Mutation, detected_batch: dict[str, mut.Outcome]) -> None:
    outcome = _outcome_of(detected_batch, mutation)
    TALLY[mutation.name] = outcome
    assert not outcome.error, outcome.explain()
    assert outcome.detected, outcome.explain()


# Known blind spots are only collected with REHEARSAL_MUTATIONS=all, and only
# when there are any (a skip, or an empty parameter set, would count as a
# skipped e2e test, which `make test` rejects).
if os.environ.get("REHEARSAL_MUTATIONS", "") == "all" and mut.BLIND_SPOTS:
    @pytest.fixture(scope="module")
    def blind_spot_batch(request: pytest.FixtureRequest, rehearsal_session: Any,
                         node_images: list[str]) -> Iterator[dict[str, mut.Outcome]]:
        yield from _rehearse_batch(request, "test_known_blind_spot", rehearsal_session, node_images)

    @pytest.mark.xfail(strict=True, reason="known blind spot of the harness (see mutations.BLIND_SPOTS)")
    @pytest.mark.parametrize("mutation", mut.BLIND_SPOTS, ids=str)
    def test_known_blind_spot(mutation: mut.Mutation, blind_spot_batch: dict[str, mut.Outcome]) -> None:
        """Not counted in the detection rate. Strict: once the harness detects it,
        this XPASSes and fails, and the mutation moves to the catalogue."""
        outcome = _outcome_of(blind_spot_batch, mutation)
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
