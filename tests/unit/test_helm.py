"""`app.helm`: validation of the scenario, the `helm upgrade --install` argv, the release read from helm's
JSON and its comparison with the baseline. helm's answers are fixtures shaped as helm v3.19 prints them
(pkg/release/release.go, pkg/release/info.go, pkg/chart/metadata.go, cmd/helm/history.go)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from harness import helm
from harness.scenario import ScenarioError, load_scenario
from harness.scenario.schema import json_schema

CHART_YAML = "apiVersion: v2\nname: demo\nversion: 0.1.0\nappVersion: \"1\"\n"


def helm_doc(**app_helm: Any) -> dict[str, Any]:
    """A minimal scenario with app.helm instead of manifests."""
    return {
        "app": {"helm": {"chart": "chart", "release": "demo", **app_helm}, "workloads": [{"deployment": "demo"}]},
        "versions": {"good": {"image": "demo:v1", "helm": {"set": {"image.tag": "v1"}}},
                     "bad": {"image": "demo:v2", "helm": {"values": ["bad.yaml"], "set": {"image.tag": "v2"}}}},
        "failure": {"mode": "crashloop"},
    }


def write_chart(d: Path) -> None:
    (d / "chart" / "templates").mkdir(parents=True, exist_ok=True)
    (d / "chart" / "Chart.yaml").write_text(CHART_YAML)
    (d / "bad.yaml").write_text("replicaCount: 1\n")


@pytest.fixture
def helm_dir(tmp_path: Path, kit: Any):
    def make(doc: dict[str, Any], chart: bool = True) -> Path:
        d = kit.write_scenario(tmp_path, "h", doc, manifest=False)
        if chart:
            write_chart(d)
        return d
    return make


def problems(d: Path) -> dict[str, str]:
    with pytest.raises(ScenarioError) as exc:
        load_scenario(d)
    return {p.field: f"{p.message} | fix: {p.fix}" for p in exc.value.problems}


# ── validation ──────────────────────────────────────────────────────────
def test_a_helm_scenario_loads(helm_dir) -> None:
    s = load_scenario(helm_dir(helm_doc(wait=True, history_max=3)))
    assert s.app.manifests is None and s.app.helm is not None
    assert (s.app.helm.release, s.app.helm.wait, s.app.helm.history_max) == ("demo", True, 3)
    assert s.versions.bad.helm is not None and s.versions.bad.helm.set == {"image.tag": "v2"}


def test_both_manifests_and_helm_is_one_problem_naming_the_fix(helm_dir) -> None:
    doc = helm_doc()
    doc["app"]["manifests"] = "app.yaml"
    found = problems(helm_dir(doc))
    assert "both app.manifests and app.helm are set" in found["app"] and "keep one" in found["app"]


def test_neither_manifests_nor_helm(helm_dir) -> None:
    doc = helm_doc()
    del doc["app"]["helm"]
    del doc["versions"]["good"]["helm"], doc["versions"]["bad"]["helm"]
    assert "neither app.manifests nor app.helm" in problems(helm_dir(doc))["app"]


def test_version_values_without_a_chart(helm_dir, kit: Any) -> None:
    doc = kit.minimal_doc()
    doc["versions"]["bad"]["helm"] = {"set": {"a": "b"}}
    found = problems(helm_dir(doc))
    assert "versions.bad.helm is set but app.helm is not" in found["versions"]


def test_missing_chart_and_values_files_are_all_reported(helm_dir) -> None:
    doc = helm_doc(values=["common.yaml"])
    found = problems(helm_dir(doc, chart=False))
    assert "chart chart does not exist" in found["app.helm.chart"]
    assert "values file common.yaml does not exist" in found["app.helm.values[0]"]
    assert "values file bad.yaml does not exist" in found["versions.bad.helm.values[0]"]
    assert all("fix: create it or correct the path" in found[f] for f in found)


def test_chart_directory_needs_chart_yaml_and_a_file_must_be_packaged(helm_dir, tmp_path: Path) -> None:
    d = helm_dir(helm_doc())
    (d / "chart" / "Chart.yaml").unlink()
    assert "has no Chart.yaml" in problems(d)["app.helm.chart"]
    doc = helm_doc(chart="chart.yaml")
    (d / "chart.yaml").write_text("x: 1\n")
    (d / "scenario.yaml").write_text(json.dumps(doc))
    assert "not a packaged chart" in problems(d)["app.helm.chart"]


@pytest.mark.parametrize(("key", "value", "word"), [
    ("a=b", "x", "pattern"),              # `=` would end the key
    ("a,b", "x", "pattern"),              # `,` would start another pair
    ("image.tag", "v1\nx=y", "line break"),
])
def test_set_keys_and_values_cannot_add_pairs(helm_dir, key: str, value: str, word: str) -> None:
    doc = helm_doc()
    doc["versions"]["good"]["helm"]["set"] = {key: value}
    assert any(word in msg for msg in problems(helm_dir(doc)).values())


def test_release_name_follows_helms_rule(helm_dir) -> None:
    found = problems(helm_dir(helm_doc(release="Demo_1")))
    assert "app.helm.release" in found


def test_json_schema_has_exactly_one_of_manifests_and_helm() -> None:
    validator = Draft202012Validator(json_schema())
    base = helm_doc()
    assert not list(validator.iter_errors(base))
    both = json.loads(json.dumps(base))
    both["app"]["manifests"] = "app.yaml"
    assert list(validator.iter_errors(both))
    neither = json.loads(json.dumps(base))
    del neither["app"]["helm"]
    assert list(validator.iter_errors(neither))


# ── the command line ────────────────────────────────────────────────────
def test_upgrade_argv_has_values_files_in_order_sets_and_flags(helm_dir) -> None:
    d = helm_dir(helm_doc(values=["common.yaml"], wait=True, atomic=True, timeout_s=90, history_max=2))
    (d / "common.yaml").write_text("a: 1\n")
    s = load_scenario(d)
    argv = helm.upgrade_argv(s, s.versions.bad, {"APP_IMAGE": "demo:v2"})
    assert argv[:4] == ["upgrade", "--install", "demo", str(d.resolve() / "chart")]
    files = [argv[i + 1] for i, a in enumerate(argv) if a == "--values"]
    assert files == [str(d.resolve() / "common.yaml"), str(d.resolve() / "bad.yaml")]
    assert argv[argv.index("--set") + 1] == "image.tag=v2"
    assert {"--wait", "--atomic", "--timeout=90s", "--history-max=2"} <= set(argv)


def test_upgrade_argv_without_flags_adds_none(helm_dir) -> None:
    s = load_scenario(helm_dir(helm_doc()))
    argv = helm.upgrade_argv(s, s.versions.good, {})
    assert not [a for a in argv if a.startswith(("--wait", "--atomic", "--timeout", "--history-max"))]


def test_set_values_take_variables_escaped_so_they_never_add_a_key() -> None:
    pairs = helm.set_pairs({"image": "${APP_IMAGE}", "db": "${URL}", "keep": "${UNKNOWN}"},
                           {"APP_IMAGE": "demo:v2", "URL": r"postgres://h/db?a=1,b=c\d"})
    assert pairs == ["image=demo:v2", r"db=postgres://h/db?a=1\,b=c\\d", "keep=${UNKNOWN}"]


def test_escaped_values_reach_helm_as_one_value(tmp_path: Path) -> None:
    """The escaping as helm itself reads it: `helm template` of a one-value chart (when helm is built)."""
    from harness import tools
    try:
        exe = tools.tool("helm")
    except tools.ToolMissing:
        pytest.skip("helm is not built (make env); the escaping is asserted above against the string")
    chart = tmp_path / "c"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(CHART_YAML)
    (chart / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata:\n  v: {{ .Values.v | quote }}\n"
        "  keys: {{ keys .Values | sortAlpha | join \",\" | quote }}\n")
    pair = helm.set_pairs({"v": "${X}"}, {"X": r"a,b=c\d"})[0]
    out = subprocess.run([str(exe), "template", "r", str(chart), "--set", pair], capture_output=True, text=True,
                         check=True, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}).stdout
    assert 'v: "a,b=c\\\\d"' in out and 'keys: "v"' in out


# ── helm's JSON ─────────────────────────────────────────────────────────
def metadata_json(revision: int, status: str, version: str = "0.1.0", app_version: str = "1") -> str:
    """`helm get metadata demo -o json` (pkg/action/get_metadata.go), as helm v3.19.5 printed it on the cluster."""
    return json.dumps({"name": "demo", "chart": "demo", "version": version, "appVersion": app_version,
                       "namespace": "rr-demo-1", "revision": revision, "status": status,
                       "deployedAt": "2026-12-02T07:27:10.123456789Z"})


HISTORY = json.dumps([
    {"revision": 1, "updated": "2026-12-02T06:00:00.1Z", "status": "superseded", "chart": "demo-0.1.0",
     "app_version": "1", "description": "Install complete"},
    {"revision": 2, "updated": "2026-12-02T06:05:00.2Z", "status": "superseded", "chart": "demo-0.1.0",
     "app_version": "1", "description": "Upgrade complete"},
    {"revision": 3, "updated": "2026-12-02T06:09:00.3Z", "status": "deployed", "chart": "demo-0.1.0",
     "app_version": "1", "description": "Rollback to 1"},
])
JOBS = {"items": [
    {"metadata": {"name": "demo-migrate", "annotations": {"helm.sh/hook": "pre-install,pre-upgrade"}}},
    {"metadata": {"name": "migrate-good-1", "labels": {"rollback-rehearsal/role": "migration"}}},
]}


def state(revision: int = 3, status: str = "deployed", values: str = '{"image":{"tag":"v1"}}',
          **kw: Any) -> helm.HelmReleaseState:
    return helm.release_state("demo", metadata_json(revision, status, **kw), HISTORY, values, JOBS)


def test_release_state_reads_helms_json() -> None:
    st = state()
    assert (st.revision, st.status, st.chart, st.chart_version, st.app_version) == (3, "deployed", "demo", "0.1.0", "1")
    assert [(r.revision, r.status, r.description) for r in st.history] == [
        (1, "superseded", "Install complete"), (2, "superseded", "Upgrade complete"), (3, "deployed", "Rollback to 1")]
    assert st.hook_jobs == ["demo-migrate"]  # the harness's own migration Job is no hook
    assert helm.history_line(st) == ("1 superseded demo-0.1.0 (Install complete), 2 superseded demo-0.1.0 (Upgrade "
                                     "complete), 3 deployed demo-0.1.0 (Rollback to 1)")


def test_values_hash_ignores_key_order_and_never_holds_the_values() -> None:
    a = state(values='{"image":{"tag":"v1"},"password":"hunter22"}').values_hash
    b = state(values='{"password":"hunter22","image":{"tag":"v1"}}').values_hash
    assert a == b and "hunter22" not in a and a.startswith("sha256:")
    assert state(values='{"image":{"tag":"v2"}}').values_hash != a


def test_a_rollback_to_the_good_values_is_no_difference() -> None:
    assert helm.diff_release(state(revision=1), state(revision=3)) == []


@pytest.mark.parametrize("status", ["pending-rollback", "pending-upgrade", "failed"])
def test_a_release_not_deployed_is_a_difference(status: str) -> None:
    diffs = helm.diff_release(state(revision=1), state(revision=3, status=status))
    assert [d.area for d in diffs] == ["helm"]
    assert f"is {status} at revision 3, not deployed" in diffs[0].message
    assert ("refuses the next upgrade until it is repaired: `helm rollback demo 3`" in diffs[0].message) == \
        status.startswith("pending")


def test_other_values_or_chart_after_the_rollback_are_differences() -> None:
    diffs = helm.diff_release(state(revision=1), state(revision=2, values='{"image":{"tag":"v2"}}', version="0.2.0"))
    messages = " / ".join(d.message for d in diffs)
    assert "other computed values than the good release (revision 1)" in messages
    assert "runs chart demo-0.2.0 (baseline demo-0.1.0)" in messages


def test_an_uninstalled_release_is_a_difference_and_no_helm_no_comparison() -> None:
    gone = helm.HelmReleaseState(release="demo", exists=False)
    assert "no longer exists" in helm.diff_release(state(revision=1), gone)[0].message
    assert helm.diff_release(None, None) == []


# ── the report ──────────────────────────────────────────────────────────
def test_html_report_shows_the_release_at_each_stage_and_marks_what_differs() -> None:
    from harness.journal import Journal
    from harness.redact import Redactor
    from harness.report.html import render_html

    j = Journal(scenario="helm-demo", expect="READY")
    base = state(revision=1).model_dump(mode="json")
    bad = state(revision=2, values='{"image":{"tag":"v2"}}').model_dump(mode="json")
    after = state(revision=3, status="pending-rollback").model_dump(mode="json")
    j.baseline, j.after_bad_deploy, j.after_rollback = ({"helm": base}, {"helm": bad}, {"helm": after})
    page = render_html(j, Redactor())
    assert 'id="helm"' in page and "release demo" in page
    assert "3 deployed demo-0.1.0: Rollback to 1" in page and "demo-migrate" in page
    row = page[page.index("<td>status</td>"):].split("</tr>", 1)[0]
    assert "pending-rollback" in row and 'class="diff"' in row
    assert 'id="helm"' not in render_html(Journal(scenario="plain", expect="READY"), Redactor())


# ── the release step (helm itself faked: its argv and answers are the seam) ──
class FakeHelmCtx:
    """The parts of RehearsalContext that release.helm_upgrade uses; `helm` records argv and answers."""

    def __init__(self, scenario: Any, upgrade_rc: int) -> None:
        from harness.journal import Journal
        from harness.redact import Redactor
        self.scenario, self.upgrade_rc, self.calls = scenario, upgrade_rc, []
        self.journal, self.redactor = Journal(scenario="h", expect="READY"), Redactor(["s3cret"])

    def variables(self, image: str = "") -> dict[str, str]:
        return {"APP_IMAGE": image}

    def helm(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
        self.calls.append((args, timeout))
        if args[0] == "upgrade":
            return subprocess.CompletedProcess(args, self.upgrade_rc, "", "Error: hook failed: password s3cret")
        return subprocess.CompletedProcess(args, 0, HISTORY, "")


@pytest.mark.parametrize("rc", [0, 1])
def test_helm_upgrade_records_the_history_and_fails_with_helms_words(helm_dir, rc: int) -> None:
    from harness import release
    s = load_scenario(helm_dir(helm_doc(timeout_s=100)))
    ctx = FakeHelmCtx(s, rc)
    run = lambda: release.deploy_app(ctx, s.versions.bad, "bad")  # type: ignore[arg-type]  # noqa: E731
    if rc:
        with pytest.raises(RuntimeError, match=r"helm upgrade of the bad release failed \(1\): Error: hook failed"):
            run()
    else:
        run()
    (before, _), (upgrade, timeout), (history, _) = ctx.calls
    assert upgrade[:3] == ("upgrade", "--install", "demo") and "image.tag=v2" in upgrade
    assert timeout == 240  # helm's --timeout (100) or timeouts.migrate_s (180), the larger, plus 60
    assert before == history == ("history", "demo", "-o", "json")
    event = ctx.journal.events[-1]
    said = "; helm said: Error: hook failed: password ***" if rc else ""
    assert f"bad: helm upgrade exit {rc}{said}; history: 1 superseded demo-0.1.0 (Install complete)" in event.message
    assert ctx.bad_upgrade.exit_code == rc and ctx.bad_upgrade.before == 3 and ctx.bad_upgrade_ended_at is not None
    assert "s3cret" not in str(ctx.journal.model_dump())
    if rc:  # the error names helm's failure, masked
        with pytest.raises(RuntimeError) as exc:
            run()
        assert "s3cret" not in str(exc.value) and "hook failed: password" in str(exc.value)


# ── what helm did with the bad release: its answers as helm v3.19.5 printed them on a kind cluster ──
# `helm history -o json` after `helm upgrade --atomic --timeout 5s` whose own rollback's wait failed too.
ATOMIC_ROLLBACK_FAILED = json.dumps([
    {"revision": 1, "updated": "2026-12-02T11:33:58.973012052Z", "status": "deployed", "chart": "demo-0.1.0",
     "app_version": "1", "description": "Install complete"},
    {"revision": 2, "updated": "2026-12-02T11:33:59.180357776Z", "status": "failed", "chart": "demo-0.1.0",
     "app_version": "1", "description": "Upgrade \"r4\" failed: context deadline exceeded"},
    {"revision": 3, "updated": "2026-12-02T11:34:04.408285053Z", "status": "failed", "chart": "demo-0.1.0",
     "app_version": "1", "description": "Release \"r4\" failed: context deadline exceeded"}])
ATOMIC_ROLLBACK_FAILED_ERROR = ("Error: UPGRADE FAILED: an error occurred while rolling back the release. original "
                                "upgrade error: context deadline exceeded: release r4 failed: context deadline exceeded")
# ... after `helm upgrade --wait` killed (SIGKILL) 4 s in, and `helm get metadata -o json` then.
PENDING_HISTORY = json.dumps([
    {"revision": 1, "updated": "2026-12-02T11:33:54.107969497Z", "status": "deployed", "chart": "demo-0.1.0",
     "app_version": "1", "description": "Install complete"},
    {"revision": 2, "updated": "2026-12-02T11:33:54.409086119Z", "status": "pending-upgrade", "chart": "demo-0.1.0",
     "app_version": "1", "description": "Preparing upgrade"}])
PENDING_METADATA = json.dumps({"name": "r3", "chart": "demo", "version": "0.1.0", "appVersion": "1", "namespace": "exp",
                               "revision": 2, "status": "pending-upgrade", "deployedAt": "2026-12-02T11:33:54Z"})


def outcome(history: str, rc: int = 1, error: str = "", before: int | None = 1) -> helm.UpgradeOutcome:
    return helm.UpgradeOutcome(release="demo", label="bad", exit_code=rc, error=error, before=before,
                               history=helm.parse_history(history))


def test_helms_own_rollback_is_the_revision_after_the_failed_upgrade() -> None:
    done = outcome(HISTORY, error="Error: UPGRADE FAILED: release demo failed, and has been rolled back due to "
                                   "atomic being set: context deadline exceeded")
    assert done.revision is not None and done.revision.revision == 2
    assert done.own_rollback is not None and (done.own_rollback.revision, done.own_rollback.status) == (3, "deployed")
    assert done.error_line.endswith("has been rolled back due to atomic being set: context deadline exceeded")
    failed_too = outcome(ATOMIC_ROLLBACK_FAILED, error=ATOMIC_ROLLBACK_FAILED_ERROR)
    assert failed_too.own_rollback is not None and failed_too.own_rollback.status == "failed"
    assert "revision 3 failed (Release \"r4\" failed: context deadline exceeded)" in helm.own_rollback_text(failed_too)
    # no own rollback: a succeeded upgrade, a failure without --atomic, helm killed before it wrote a revision
    assert outcome(HISTORY, rc=0, before=2).own_rollback is None
    assert outcome(PENDING_HISTORY, rc=-9).own_rollback is None
    assert outcome(PENDING_HISTORY, rc=-9, before=2).revision is None
    assert outcome(PENDING_HISTORY, rc=-9).error_line == "helm was killed (signal 9)"


def test_the_dbas_sentence_leads_only_after_helms_own_rollback_with_the_schema_changed() -> None:
    from harness.journal import Difference
    column = Difference(area="schema", object="column users.nickname", message="column users.nickname added (text)")
    lead = helm.schema_after_own_rollback(outcome(HISTORY), [column, column], hook_migrates=True)
    assert lead is not None and lead.area == "schema"
    assert lead.message.startswith("the schema is still migrated after helm's automatic rollback: helm put the good "
                                   "release's manifests back (revision 3, deployed: Rollback to 1)")
    assert "the chart's upgrade hook Job had already migrated the database: column users.nickname added (text) " \
           "(and 1 more schema difference(s))" in lead.message
    assert helm.schema_after_own_rollback(outcome(HISTORY), [], hook_migrates=True) is None
    assert helm.schema_after_own_rollback(outcome(HISTORY, rc=0, before=2), [column], hook_migrates=True) is None
    assert helm.schema_after_own_rollback(None, [column], hook_migrates=False) is None


def test_a_pending_release_is_a_risk_naming_the_repair() -> None:
    pending = helm.release_state("demo", PENDING_METADATA, PENDING_HISTORY, "{}", {"items": []})
    risk = helm.pending_risk(pending)
    assert risk is not None and risk.kind == "helm_release_pending" and risk.object == "helm release demo"
    assert risk.message.startswith("helm release demo is pending-upgrade at revision 2 when the runbook starts: "
                                   "`helm upgrade` refuses it (\"another operation (install/upgrade/rollback) is in "
                                   "progress\")")
    assert "`helm rollback demo 1` (the last deployed revision" in risk.message
    assert "the Secret sh.helm.release.v1.demo.v2" in risk.message and "2 pending-upgrade" in risk.evidence
    assert helm.pending_risk(state()) is None and helm.pending_risk(None) is None
    never = helm.HelmReleaseState(release="demo", revision=1, status="pending-install",
                                  history=[helm.HelmRevision(revision=1, status="pending-install")])
    assert "`helm uninstall demo` (no revision was ever deployed)" in helm.pending_risk(never).message  # type: ignore[union-attr]


def test_both_spellings_of_rollback_on_failure_give_the_flag_of_the_helm_in_use(helm_dir) -> None:
    for flag in ("atomic", "rollback_on_failure"):
        h = load_scenario(helm_dir(helm_doc(**{flag: True}))).app.helm
        assert h is not None and h.rolls_back_on_failure
        assert helm.upgrade_flags(h) == ["--atomic"] and helm.upgrade_flags(h, 4) == ["--rollback-on-failure"]


def test_the_release_before_the_runbook_is_recorded_and_a_pending_one_is_a_risk(
        helm_dir, monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from harness.journal import Journal
    from harness.phases import runbook
    from harness.redact import Redactor
    pending = helm.release_state("demo", PENDING_METADATA, PENDING_HISTORY, "{}", {"items": []})
    for st, risks in ((pending, ["helm_release_pending"]), (state(), [])):
        monkeypatch.setattr(runbook, "read_release", lambda ctx, st=st: st)
        ctx = SimpleNamespace(scenario=load_scenario(helm_dir(helm_doc())), journal=Journal(scenario="h", expect="READY"),
                              redactor=Redactor())
        runbook.release_before_runbook(ctx)  # type: ignore[arg-type]
        assert [r.kind for r in ctx.journal.risks] == risks
        assert ctx.journal.events[-1].message.startswith(f"before the runbook: demo revision {st.revision} {st.status}")


def test_summary_shows_the_release_history_at_each_snapshot() -> None:
    from harness.report.summary import render_summary
    data = {"scenario": "helm-atomic-upgrade", "verdict": "NOT_READY", "expect": "NOT_READY",
            "baseline": {"helm": {"history": [{"revision": 1, "status": "deployed"}]}},
            "after_bad_deploy": {"helm": json.loads(json.dumps({"history": json.loads(HISTORY)}))},
            "after_rollback": None}
    text = render_summary([data, {"scenario": "plain", "verdict": "READY", "expect": "READY"}], str)
    assert "**Helm release history** (`helm history`):" in text
    assert ("- helm-atomic-upgrade: baseline: 1 deployed · after the bad release: 1 superseded, 2 superseded, "
            "3 deployed") in text and "- plain:" not in text
