"""The steady-state watch after verify, on the real cluster (harness/steady.py).

The READY scenario bad-image is rehearsed with one extra runbook step that starts, detached from
the runbook, what would undo a recovery a few seconds after it: a GitOps-like sync applying the
bad release again, or an eviction of the app's pod. Verify sees the good state; the watch must
then see the flap and make the rehearsal NOT_READY with a `stability` difference that names it.
The detached command waits for the rollout and then SYNC_DELAY_S, so the change lands after
verify's snapshot and inside the window (stable_for_s 30: the watch ends at the flap, so the long
window costs nothing when the flap comes).

    .venv/bin/pytest tests/e2e/test_steady_state.py -v --reuse-cluster --cluster-name rr-dev

The three rehearsals run side by side (`--jobs`) in one module fixture; each test judges its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import mutations as mut  # tests/e2e/mutations.py: writes the changed copy of a scenario
import pytest

from harness.options import session_options_from_pytest
from harness.scenario import load_scenario

pytestmark = pytest.mark.e2e

SYNC_DELAY_S = 10  # after verify's snapshot even with the three rehearsals side by side on a loaded machine


def _later(command: str) -> str:
    """A runbook line that runs `command` SYNC_DELAY_S after the rollout, detached (its own session, no
    inherited output), so the runbook step returns at once and the runbook's process group is not its."""
    inner = (f'echo started > "$HOME/sync.started"; '
             f'kubectl -n "$NAMESPACE" rollout status deployment/demo --timeout=60s; sleep {SYNC_DELAY_S}; '
             f"{command}")
    # The next step waits until the detached shell runs (in its own session by then): the runbook's shell
    # session ends its process group when the section ends, and a child still between fork and setsid
    # would go with it.
    return (f"setsid sh -c '{inner}' </dev/null >/dev/null 2>&1 &\n"
            'until [ -s "$HOME/sync.started" ]; do sleep 0.1; done\n')


WATCH = {"checks": {"stable_for_s": 30}}
DISTURBANCES = (
    mut.Mutation("s1", "sync-puts-bad-back", "bad-image", "runbook",
                 "after the rollback, a sync applies the bad image again",
                 ("stability", "went back to image rollback-rehearsal/demo-app:v3 (the bad release's)"),
                 runbook=((mut.STATUS, mut.STATUS + _later(
                     'kubectl -n "$NAMESPACE" set image deployment/demo app="$BAD_IMAGE"')),),
                 settings=WATCH),
    mut.Mutation("s2", "pod-evicted", "bad-image", "runbook",
                 "after the rollback, the app's pod is deleted",
                 ("stability", "went away"),
                 runbook=((mut.STATUS, mut.STATUS + _later(
                     'kubectl -n "$NAMESPACE" delete pod -l app=demo --wait=false')),),
                 settings=WATCH),
)


# The same scenario unchanged, under its own name (scenarios/bad-image may run in the same session).
UNDISTURBED = mut.Mutation("s0", "undisturbed", "bad-image", "runbook", "nothing changed", ("", ""))


@pytest.fixture(scope="module")
def journals(tmp_path_factory: pytest.TempPathFactory, rehearsal_session: Any,
             pytestconfig: pytest.Config) -> Iterator[dict[str, Any]]:
    """The three rehearsals side by side (`--jobs`), as the mutation batch: each in its own namespace and
    database; each test then judges its own journal."""
    workdir = tmp_path_factory.mktemp("steady")
    with ExitStack() as stack:
        made = [stack.enter_context(mut.mutated_scenario(m, workdir)) for m in (*DISTURBANCES, UNDISTURBED)]
        done = rehearsal_session.rehearse_all([load_scenario(m.path) for m in made],
                                              session_options_from_pytest(pytestconfig).jobs)
        yield {j.scenario: j for j in done}


@pytest.mark.parametrize("disturbance", DISTURBANCES, ids=str)
def test_a_flap_after_verify_is_not_ready(disturbance: mut.Mutation, journals: dict[str, Any]) -> None:
    journal = journals[disturbance.name]
    outcome = mut.judge(disturbance, journal, 0.0)
    assert outcome.detected, outcome.explain()
    watch = journal.steady_state
    assert watch is not None and watch.flaps >= 1 and watch.samples >= 1
    assert watch.watched_s < watch.stable_for_s  # it ended at the flap
    verify = next(p for p in journal.phases if p.name == "verify")
    assert verify.status == "ok" and "steady-state watch ended at" in verify.detail


def test_an_undisturbed_rollback_stays_ready_and_is_watched(journals: dict[str, Any]) -> None:
    journal = journals[UNDISTURBED.name]
    assert journal.verdict == "READY", journal.reasons
    watch = journal.steady_state
    assert watch is not None and watch.flaps == 0 and watch.samples >= 5
    assert watch.watched_s >= watch.stable_for_s == 5
