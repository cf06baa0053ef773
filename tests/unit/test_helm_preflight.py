"""The `helm-*` preflight checks on a scenario with `app.helm`: the rendered chart is given as objects (what
`helm template` would print), the runbook is real Markdown parsed by the harness."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness import preflight as pf
from harness.preflight.checks import CHECKS
from harness.preflight.helm_checks import Operation, helm_operations, parse_helm, simulate
from harness.preflight.shell import simple_commands
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
           bad_objects: list[K8sObject] | None = None, bad_pre_release: str | None = None,
           failure: dict[str, Any] | None = None, variables: dict[str, str] | None = None,
           faults: list[dict[str, Any]] | None = None, **app_helm: Any) -> Inputs:
    """A helm scenario with these runbook commands; `objects`: the chart rendered for the good version (and for the
    bad one unless `bad_objects`)."""
    md = "# r\n\n## Rollback\n\n" + "".join(f"```sh\n{c}\n```\n\n" for c in commands)
    doc = helm_doc(**app_helm)
    if bad_pre_release:
        doc["versions"]["bad"]["pre_release"] = bad_pre_release
    doc.update({k: v for k, v in (("failure", failure), ("variables", variables), ("faults", faults)) if v})
    d = kit.write_scenario(tmp_path, "h", doc, runbook=md, manifest=False)
    write_chart(d)
    s = load_scenario(d)
    steps = parse_runbook(md, "Rollback")
    good = [DEPLOYMENT, *(objects or [])]
    return Inputs(s, manifests=good, bad_manifests=good if bad_objects is None else [DEPLOYMENT, *bad_objects],
                  manifests_path=d / "chart", runbook_path=d / "runbook.md", steps=steps, section=steps)


def found(inp: Inputs, check: str) -> list[str]:
    return [f"{f.severity}: {f.message}" for f in CHECKS[check](inp)]


def test_helm_commands_are_read_past_their_flags() -> None:
    steps = parse_runbook("## R\n\n```sh\nhelm rollback --namespace x demo 1 --wait --timeout 5m\n"
                          "/usr/bin/helm -n x rollback demo\nhelm rollback demo \"$REV\"\nhelm history demo\n"
                          "helm upgrade -f v.yaml --set a=b demo ./chart --history-max=3\n```\n", "R")
    got = [(c.subcommand, c.args, c.flags.get("--history-max")) for s in steps for w in simple_commands(s.command)
           if (c := parse_helm(w)) is not None]
    assert got == [("rollback", ["demo", "1"], None), ("rollback", ["demo"], None), ("rollback", ["demo", "$REV"], None),
                   ("history", ["demo"], None), ("upgrade", ["demo", "./chart"], "3")]
    ops = helm_operations(steps[0].command + "\n" + steps[2].command, "demo", "here", 10)
    assert [(o.kind, o.target, o.target_known) for o in ops] == [("rollback", 1, True), ("rollback", None, False)]


# ── the history helm keeps: the simulation against what helm v3.19.5 did on a kind cluster ──────────────
# Each case: the operations, then `helm history -o json` as the real helm printed it after them (revision, status),
# recorded from runs of `helm upgrade`/`rollback` with these flags on the demo chart (migration hook off).
def _op(kind: str, limit: int, ends: str = "deployed", target: int | None = None, atomic: bool = False) -> Operation:
    return Operation(where=f"{kind} {limit}", kind=kind, history_max=limit, ends=ends, target=target, atomic=atomic,
                     written=f"helm {kind} r" + (f" {target}" if target else ""))


REAL_HISTORIES = [
    # install, upgrade --history-max 1: the deployed revision 1 survives the limit
    ([_op("upgrade", 1), _op("upgrade", 1)], {1: "superseded", 2: "deployed"}),
    # ... then upgrade --history-max 2: revision 1 (superseded) is pruned
    ([_op("upgrade", 1), _op("upgrade", 1), _op("upgrade", 2)], {2: "superseded", 3: "deployed"}),
    # two failed upgrades with --history-max 1: the failed 2 goes, the deployed 1 stays; rollback 1 then works
    ([_op("upgrade", 1), _op("upgrade", 1, "failed"), _op("upgrade", 1, "failed")], {1: "deployed", 3: "failed"}),
    ([_op("upgrade", 1), _op("upgrade", 1, "failed"), _op("upgrade", 1, "failed"), _op("rollback", 10, target=1)],
     {1: "superseded", 3: "failed", 4: "deployed"}),
    # an upgrade killed while helm waited stays pending-upgrade; `helm rollback 1` repairs it (and leaves it listed)
    ([_op("upgrade", 10), _op("upgrade", 10, "pending-upgrade"), _op("rollback", 10, target=1)],
     {1: "superseded", 2: "pending-upgrade", 3: "deployed"}),
    # --atomic: helm's own rollback, written without a limit
    ([_op("upgrade", 1), _op("upgrade", 1, "failed", atomic=True)], {1: "superseded", 2: "failed", 3: "deployed"}),
]


@pytest.mark.parametrize(("ops", "real"), REAL_HISTORIES)
def test_the_simulated_history_is_the_one_helm_kept(ops: list[Operation], real: dict[int, str]) -> None:
    history, refused = simulate(ops)
    assert history.revisions == real and refused == []


def test_a_pruned_revision_fails_the_rollback_as_helm_said() -> None:
    """Seen: `Error: release has no 1 version` after three releases with --history-max 2."""
    ops = [_op("upgrade", 1), _op("upgrade", 1), _op("upgrade", 2), _op("rollback", 10, target=1)]
    history, refused = simulate(ops)
    assert [r.check for r in refused] == [pf.HELM_HISTORY] and refused[0].fails
    assert "needs revision 1, but upgrade 2 pruned it (--history-max=2" in refused[0].why
    assert "release has no 1 version" in refused[0].why and history.revisions == {2: "superseded", 3: "deployed"}


def test_an_upgrade_on_a_pending_release_is_refused_and_a_rollback_is_not() -> None:
    """Seen: `Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress`."""
    _, refused = simulate([_op("upgrade", 10), _op("upgrade", 10, "pending-upgrade"), _op("upgrade", 10)])
    assert [r.check for r in refused] == [pf.HELM_PENDING] and "pending-upgrade at revision 2" in refused[0].why
    assert simulate([_op("upgrade", 10), _op("upgrade", 10, "pending-upgrade"), _op("rollback", 10)])[1] == []


def test_a_revision_helm_does_not_hold_fails_the_rollback(tmp_path: Path, kit: Any) -> None:
    out = found(inputs(tmp_path, kit, ["helm rollback demo 4 --wait"], history_max=1), pf.HELM_HISTORY)
    assert len(out) == 1 and out[0].startswith("failure: runbook step 1")
    assert "`helm rollback demo 4` needs revision 4, but it never existed here; helm holds only revision(s) " \
           "1 (superseded), 2 (deployed) by then" in out[0]


def test_the_previous_revision_after_atomic_is_the_failed_release(tmp_path: Path, kit: Any) -> None:
    for flag in ("atomic", "rollback_on_failure"):
        out = found(inputs(tmp_path, kit, ["helm rollback demo"], **{flag: True}), pf.HELM_HISTORY)
        assert len(out) == 1 and "goes to revision 2, the bad release (failed)" in out[0], flag


def test_the_good_revision_survives_and_unknown_revisions_are_not_judged(tmp_path: Path, kit: Any) -> None:
    for kw in ({"history_max": 1}, {"history_max": 1, "wait": True}, {"history_max": 1, "atomic": True}, {}):
        assert found(inputs(tmp_path, kit, ["helm rollback demo 1"], **kw), pf.HELM_HISTORY) == [], kw
    assert found(inputs(tmp_path, kit, ["helm rollback demo"], history_max=1), pf.HELM_HISTORY) == []
    assert found(inputs(tmp_path, kit, ['REV=$(cat rev.txt)', 'helm rollback demo "$REV"'], history_max=1,
                        atomic=True), pf.HELM_HISTORY) == []


def test_pre_release_upgrades_count_and_the_runbooks_own_flags_prune(tmp_path: Path, kit: Any) -> None:
    """One more release before the bad one (a pre_release `helm upgrade`) and --history-max 2: the bad release
    prunes revision 1. The runbook's own upgrade with --history-max 2 prunes too, before its rollback."""
    inp = inputs(tmp_path, kit, ['helm rollback demo 1 -n "$NAMESPACE"'], history_max=2,
                 bad_pre_release="helm upgrade demo ../chart --reuse-values -n \"$NAMESPACE\"")
    out = found(inp, pf.HELM_HISTORY)
    assert len(out) == 1 and "needs revision 1, but the bad release pruned it (--history-max=2" in out[0], out
    own = inputs(tmp_path, kit, ["helm upgrade demo chart --reuse-values --set replicaCount=0 --history-max 1",
                                 "helm rollback demo 1"], history_max=5, failure={"mode": "smoke"})
    out = found(own, pf.HELM_HISTORY)
    assert len(out) == 1 and out[0].startswith("failure: runbook step 2") and "runbook step 1 (line 6) pruned it" \
        in out[0], out
    env = inputs(tmp_path, kit, ["helm upgrade demo chart --reuse-values", "helm rollback demo 1"],
                 failure={"mode": "smoke"}, variables={"HELM_MAX_HISTORY": "1"})
    assert "(--history-max=1" in found(env, pf.HELM_HISTORY)[0]


def test_a_killed_bad_release_makes_the_runbooks_upgrade_refused(tmp_path: Path, kit: Any) -> None:
    faults = [{"kind": "kill_helm", "during": "deploy_bad", "delay_s": 5}]
    inp = inputs(tmp_path, kit, ["helm upgrade --install demo chart --set image.tag=v1"], faults=faults)
    out = found(inp, pf.HELM_HISTORY)
    assert [o.split(":")[0] for o in out] == ["failure"] and "is refused: the release is pending-upgrade" in out[0]
    assert [f.check for f in CHECKS[pf.HELM_HISTORY](inp)] == [pf.HELM_PENDING]
    repaired = inputs(tmp_path, kit, ["helm rollback demo 1", "helm upgrade --install demo chart"], faults=faults)
    assert found(repaired, pf.HELM_HISTORY) == []


def crd(spec: str = "v1", keep: bool = False) -> K8sObject:
    meta: dict[str, Any] = {"name": "widgets.example.com"}
    if keep:
        meta["annotations"] = {"helm.sh/resource-policy": "keep"}
    return K8sObject("customresourcedefinition", "widgets.example.com", {
        "kind": "CustomResourceDefinition", "metadata": meta, "spec": {"versions": [{"name": spec}]}}, Path("chart"))


def test_crd_in_templates(tmp_path: Path, kit: Any) -> None:
    out = found(inputs(tmp_path, kit, ["helm rollback demo 1"], [crd()]), pf.HELM_CRDS)
    assert out == [out[0]] and "widgets.example.com from templates/" in out[0] and out[0].startswith("warning")
    assert found(inputs(tmp_path, kit, ["helm rollback demo 1"]), pf.HELM_CRDS) == []
    # kept (helm.sh/resource-policy: keep) and the same in both releases: helm never deletes or changes it
    assert found(inputs(tmp_path, kit, ["helm rollback demo 1"], [crd(keep=True)]), pf.HELM_CRDS) == []


@pytest.mark.parametrize(("good", "bad", "says"), [
    ([], [crd()], "the bad release adds CustomResourceDefinition widgets.example.com from templates/: `helm "
                  "rollback` to the good revision deletes it, and every custom resource of it with it"),
    ([crd()], [], "the bad release no longer renders CustomResourceDefinition widgets.example.com: its upgrade "
                  "deletes it with every custom resource of it, and `helm rollback` re-creates it empty"),
    ([crd("v1")], [crd("v2")], "the bad release changes CustomResourceDefinition widgets.example.com (rendered from "
                               "templates/): `helm rollback` puts the good release's definition back"),
    ([crd("v1", keep=True)], [crd("v2", keep=True)], "the bad release changes CustomResourceDefinition"),
    ([], [crd(keep=True)], None),
])
def test_what_the_rollback_does_to_a_crd_depends_on_which_release_renders_it(
        tmp_path: Path, kit: Any, good: list[K8sObject], bad: list[K8sObject], says: str | None) -> None:
    out = found(inputs(tmp_path, kit, ["helm rollback demo 1"], good, bad_objects=bad), pf.HELM_CRDS)
    assert out == ([] if says is None else [out[0]]) and (says is None or says in out[0]), out


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


def migration_job(events: str, *command: str, name: str = "demo-migrate") -> K8sObject:
    return K8sObject("job", name, {"kind": "Job", "metadata": {"name": name, "annotations": {"helm.sh/hook": events}},
                                   "spec": {"template": {"spec": {"containers": [
                                       {"name": "m", "command": list(command)}]}}}}, Path("chart"))


@pytest.mark.parametrize(("command", "says"), [
    (["migrate", "up"], "its up migration runs the good release's migrations on the bad release's schema"),
    (["sh", "-c", "alembic upgrade head"], "its up migration runs the good release's migrations"),
    (["npm", "run", "migrate:down"], "its down migration is the good release's: it does not know the bad release's"),
    (["sh", "-c", "migrate down 1 && echo done"], "its down migration is the good release's"),
    (["python", "warm_cache.py"], "which do not know the newer release's schema changes"),
])
def test_a_rollback_hook_says_what_its_migration_does_from_the_wrong_release(
        tmp_path: Path, kit: Any, command: list[str], says: str) -> None:
    out = found(inputs(tmp_path, kit, ["helm rollback demo 1"], [migration_job("pre-rollback", *command)]),
                pf.HELM_ROLLBACK_HOOKS)
    assert len(out) == 1 and says in out[0], out


def test_a_rollback_hook_only_the_bad_release_has_never_runs(tmp_path: Path, kit: Any) -> None:
    down = migration_job("pre-rollback", "migrate", "down", "1", name="demo-migrate-down")
    out = found(inputs(tmp_path, kit, ["helm rollback demo 1"], [], bad_objects=[down]), pf.HELM_ROLLBACK_HOOKS)
    assert len(out) == 1 and out[0].startswith("warning: the bad release's hook Job demo-migrate-down runs on "
                                               "pre-rollback, but it never runs on a `helm rollback` to the good "
                                               "revision") and "(so its down migration never runs)" in out[0]
    both = found(inputs(tmp_path, kit, ["helm rollback demo 1"], [down], bad_objects=[down]), pf.HELM_ROLLBACK_HOOKS)
    assert len(both) == 1 and "never runs" not in both[0]


def test_a_helm_upgrade_back_to_the_good_version_runs_the_good_hook_again(tmp_path: Path, kit: Any) -> None:
    inp = inputs(tmp_path, kit, ['helm upgrade --install demo ../chart -n "$NAMESPACE" --set image.tag=v1 --wait'],
                 [hook_job("pre-install,pre-upgrade")])
    out = found(inp, pf.HELM_ROLLBACK_SCHEMA)
    assert len(out) == 1 and "runbook step 1 (line 6) rolls back with `helm upgrade demo` only" in out[0]
    assert "that `helm upgrade` runs demo-migrate again, the good release's migration, which cannot migrate down" \
        in out[0]


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


def test_a_real_chart_rendered_for_each_release_shows_what_only_the_bad_one_adds(tmp_path: Path, kit: Any) -> None:
    """The real `helm template`, twice: the bad version's values add a CRD and a pre-rollback "migrate down" hook,
    which the good release's rendering does not have."""
    from harness import tools
    try:
        tools.tool("helm")
    except tools.ToolMissing:
        pytest.skip("helm is not built (make env builds it)")
    md = "# r\n\n## Rollback\n\n```sh\nhelm rollback demo 1 --wait\n```\n"
    d = kit.write_scenario(tmp_path, "h", helm_doc(), runbook=md, manifest=False)
    write_chart(d)
    (d / "bad.yaml").write_text("widgets: true\n")
    (d / "chart" / "templates" / "extra.yaml").write_text(
        "{{- if .Values.widgets }}\n"
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
        "metadata: {name: widgets.example.com}\n"
        "spec: {group: example.com, names: {kind: Widget, plural: widgets}, scope: Namespaced, versions: []}\n"
        "---\n"
        "apiVersion: batch/v1\nkind: Job\n"
        "metadata: {name: demo-down, annotations: {helm.sh/hook: pre-rollback}}\n"
        "spec: {template: {spec: {restartPolicy: Never, containers: [{name: m, image: x, command: [migrate, down]}]}}}\n"
        "{{- end }}\n")
    findings = {f.check: f.message for f in pf.run_checks(load_scenario(d), only=[pf.HELM_CRDS,
                                                                                  pf.HELM_ROLLBACK_HOOKS])}
    assert findings[pf.HELM_CRDS].startswith("the bad release adds CustomResourceDefinition widgets.example.com")
    assert findings[pf.HELM_ROLLBACK_HOOKS].startswith("the bad release's hook Job demo-down runs on pre-rollback, "
                                                       "but it never runs")
