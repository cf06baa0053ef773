"""The `helm-*` preflight checks on a scenario with `app.helm`: the rendered chart is given as objects (what
`helm template` would print), the runbook is real Markdown parsed by the harness."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness import preflight as pf
from harness.preflight.checks import CHECKS
from harness.preflight.helm_checks import create_revision, helm_rollbacks, rehearsal_history
from harness.preflight.inputs import Inputs
from harness.preflight.manifests import K8sObject
from harness.runbook_commands import parse_runbook
from harness.scenario import load_scenario
from tests.unit.test_helm import helm_doc, write_chart

DEPLOYMENT = K8sObject("deployment", "demo", {"kind": "Deployment", "metadata": {"name": "demo"}}, Path("chart"))


def hook_job(events: str) -> K8sObject:
    return K8sObject("job", "demo-migrate", {"kind": "Job", "metadata": {
        "name": "demo-migrate", "annotations": {"helm.sh/hook": events, "helm.sh/hook-delete-policy": "hook-succeeded"}}},
        Path("chart"))


def inputs(tmp_path: Path, kit: Any, commands: list[str], objects: list[K8sObject] | None = None,
           **app_helm: Any) -> Inputs:
    md = "# r\n\n## Rollback\n\n" + "".join(f"```sh\n{c}\n```\n\n" for c in commands)
    d = kit.write_scenario(tmp_path, "h", helm_doc(**app_helm), runbook=md, manifest=False)
    write_chart(d)
    s = load_scenario(d)
    steps = parse_runbook(md, "Rollback")
    return Inputs(s, manifests=[DEPLOYMENT, *(objects or [])], manifests_path=d / "chart", runbook_path=d / "runbook.md",
                  steps=steps, section=steps)


def found(inp: Inputs, check: str) -> list[str]:
    return [f"{f.severity}: {f.message}" for f in CHECKS[check](inp)]


def test_rollbacks_are_read_with_their_revision_past_flags() -> None:
    steps = parse_runbook("## R\n\n```sh\nhelm rollback --namespace x demo 1 --wait --timeout 5m\n"
                          "/usr/bin/helm -n x rollback demo\nhelm rollback demo \"$REV\"\nhelm history demo\n```\n", "R")
    got = [(r.release, r.revision, r.revision_text) for r in helm_rollbacks(steps)]
    assert got == [("demo", 1, "1"), ("demo", None, ""), ("demo", None, "$REV")]


@pytest.mark.parametrize(("history_max", "fails", "atomic", "history", "current"), [
    (None, False, False, {1: "superseded", 2: "deployed"}, 2),
    # helm never prunes the last deployed revision: --history-max=1 still leaves the good one
    (1, False, False, {1: "superseded", 2: "deployed"}, 2),
    (1, True, False, {1: "deployed", 2: "failed"}, 2),
    # --atomic's own rollback (revision 3) is created without --history-max: nothing is pruned
    (1, True, True, {1: "superseded", 2: "failed", 3: "deployed"}, 3),
])
def test_the_history_helm_holds_when_the_runbook_starts(history_max: int | None, fails: bool, atomic: bool,
                                                         history: dict[int, str], current: int) -> None:
    assert rehearsal_history(history_max, fails, atomic) == (history, current)


def test_pruning_keeps_the_last_deployed_and_removes_the_oldest_others() -> None:
    history = {1: "superseded", 2: "superseded", 3: "deployed", 4: "failed"}
    create_revision(history, 5, "pending-upgrade", 2)
    assert history == {3: "deployed", 5: "pending-upgrade"}
    unlimited = {1: "superseded", 2: "deployed"}
    create_revision(unlimited, 3, "pending-upgrade", 0)
    assert sorted(unlimited) == [1, 2, 3]


def test_a_revision_helm_does_not_hold_fails_the_rollback(tmp_path: Path, kit: Any) -> None:
    out = found(inputs(tmp_path, kit, ["helm rollback demo 4 --wait"], history_max=1), pf.HELM_HISTORY)
    assert len(out) == 1 and out[0].startswith("failure: runbook step 1")
    assert "`helm rollback demo 4` needs revision 4, but with --history-max=1 helm holds only revision(s) " \
           "1 (superseded), 2 (deployed) when the runbook starts" in out[0]


def test_the_previous_revision_after_atomic_is_the_failed_release(tmp_path: Path, kit: Any) -> None:
    out = found(inputs(tmp_path, kit, ["helm rollback demo"], atomic=True), pf.HELM_HISTORY)
    assert len(out) == 1 and "goes to revision 2, the bad release (failed)" in out[0]


def test_the_good_revision_survives_and_unknown_revisions_are_not_judged(tmp_path: Path, kit: Any) -> None:
    for kw in ({"history_max": 1}, {"history_max": 1, "wait": True}, {"history_max": 1, "atomic": True}, {}):
        assert found(inputs(tmp_path, kit, ["helm rollback demo 1"], **kw), pf.HELM_HISTORY) == [], kw
    assert found(inputs(tmp_path, kit, ["helm rollback demo"], history_max=1), pf.HELM_HISTORY) == []
    assert found(inputs(tmp_path, kit, ['REV=$(cat rev.txt)', 'helm rollback demo "$REV"'], history_max=1,
                        atomic=True), pf.HELM_HISTORY) == []


def test_crd_in_templates(tmp_path: Path, kit: Any) -> None:
    crd = K8sObject("customresourcedefinition", "widgets.example.com", {}, Path("chart"))
    out = found(inputs(tmp_path, kit, ["helm rollback demo 1"], [crd]), pf.HELM_CRDS)
    assert out == [out[0]] and "widgets.example.com from templates/" in out[0] and out[0].startswith("warning")
    assert found(inputs(tmp_path, kit, ["helm rollback demo 1"]), pf.HELM_CRDS) == []


def test_helm_rollback_alone_after_an_upgrade_hook_migrated(tmp_path: Path, kit: Any) -> None:
    inp = inputs(tmp_path, kit, ["helm rollback demo 1 --wait"], [hook_job("pre-install,pre-upgrade")])
    out = found(inp, pf.HELM_ROLLBACK_SCHEMA)
    assert len(out) == 1 and "upgrade hook Job demo-migrate migrates the database" in out[0]
    assert "helm never runs a down migration" in out[0]


@pytest.mark.parametrize("first", [
    'kubectl -n "$NAMESPACE" run down --rm -i --restart=Never --image="$BAD_IMAGE" -- migrate down',
    'pg_restore --clean -d "$DATABASE_URL" "$HOME/before.dump"'])
def test_a_down_migration_or_a_restore_first_is_no_finding(tmp_path: Path, kit: Any, first: str) -> None:
    inp = inputs(tmp_path, kit, [first, "helm rollback demo 1"], [hook_job("pre-upgrade")])
    assert found(inp, pf.HELM_ROLLBACK_SCHEMA) == []


def test_no_upgrade_hook_or_no_helm_rollback_is_no_finding(tmp_path: Path, kit: Any) -> None:
    assert found(inputs(tmp_path, kit, ["helm rollback demo 1"], [hook_job("pre-install")]), pf.HELM_ROLLBACK_SCHEMA) == []
    assert found(inputs(tmp_path, kit, ['kubectl -n "$NAMESPACE" rollout undo deployment/demo'],
                        [hook_job("pre-upgrade")]), pf.HELM_ROLLBACK_SCHEMA) == []


def test_atomic_without_a_schema_step_is_the_same_trap(tmp_path: Path, kit: Any) -> None:
    """Seen on the cluster: --atomic put v1 back (history 1 superseded, 2 failed, 3 deployed), users.nickname stayed."""
    inp = inputs(tmp_path, kit, ['helm history demo -n "$NAMESPACE"'], [hook_job("pre-upgrade")], atomic=True)
    out = found(inp, pf.HELM_ROLLBACK_SCHEMA)
    assert len(out) == 1 and "relies on --atomic" in out[0] and "never runs a down migration" in out[0]
    no_atomic = inputs(tmp_path, kit, ['helm history demo -n "$NAMESPACE"'], [hook_job("pre-upgrade")])
    assert found(no_atomic, pf.HELM_ROLLBACK_SCHEMA) == []


def test_rollback_hooks_run_the_older_release(tmp_path: Path, kit: Any) -> None:
    out = found(inputs(tmp_path, kit, ["helm rollback demo 1"], [hook_job("pre-upgrade,pre-rollback")]),
                pf.HELM_ROLLBACK_HOOKS)
    assert len(out) == 1 and "runs on pre-rollback" in out[0] and "target (older) release" in out[0]


def test_manifest_scenarios_get_no_helm_findings(tmp_path: Path, kit: Any) -> None:
    d = kit.write_scenario(tmp_path, "m", runbook="# r\n\n## Rollback\n\n```sh\nhelm rollback demo 1\n```\n")
    s = load_scenario(d)
    steps = parse_runbook((d / "runbook.md").read_text(), "Rollback")
    inp = Inputs(s, manifests=[hook_job("pre-upgrade")], steps=steps, section=steps)
    assert [f for c in (pf.HELM_HISTORY, pf.HELM_CRDS, pf.HELM_ROLLBACK_SCHEMA, pf.HELM_ROLLBACK_HOOKS)
            for f in CHECKS[c](inp)] == []


def test_demo_helm_scenarios_through_helm_template() -> None:
    """The real chart rendered by the built helm: the READY demo has no finding, the other exactly the trap."""
    from harness import tools
    from tests.unit.conftest import EXAMPLES
    try:
        tools.tool("helm")
    except tools.ToolMissing:
        pytest.skip("helm is not built (make env builds it)")
    assert pf.run_checks(load_scenario(EXAMPLES / "helm-rollback")) == []
    findings = pf.run_checks(load_scenario(EXAMPLES / "helm-rollback-forgets-schema"))
    assert [(f.check, f.severity) for f in findings] == [(pf.HELM_ROLLBACK_SCHEMA, "warning")]
    assert "upgrade hook Job demo-migrate migrates the database" in findings[0].message
