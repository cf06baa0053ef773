"""Phase compat (the good version on the bad release's schema) and the expectation rule: pure logic."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.journal import Journal, Risk
from harness.judge import as_expected, decide, expectation_problems
from harness.phases import OnFailure, compat
from harness.pipeline import PHASES
from harness.scenario import ScenarioError, load_scenario
from harness.scenario.models import Workload

LIVE: dict[str, Any] = {
    "metadata": {"name": "demo", "namespace": "rr-x", "resourceVersion": "7", "uid": "u"},
    "spec": {
        "replicas": 3, "selector": {"matchLabels": {"app": "demo"}},
        "template": {
            "metadata": {"labels": {"app": "demo"}, "annotations": {"kubectl.kubernetes.io/restartedAt": "t"}},
            "spec": {"containers": [
                {"name": "app", "image": "reg/demo:production", "imagePullPolicy": "Always",
                 "env": [{"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "db", "key": "url"}}}]},
                {"name": "sidecar", "image": "proxy:1"},
            ]},
        },
    },
    "status": {"replicas": 1},
}
W = Workload(deployment="demo", container="app")


def test_the_copy_runs_the_good_image_where_no_service_can_route_to_it() -> None:
    dep = compat.compat_deployment(LIVE, W, "demo-app:v1")
    labels = {compat.LABEL: "demo"}
    assert dep["metadata"] == {"name": "demo-compat-check", "namespace": "rr-x", "labels": labels}
    assert dep["spec"]["replicas"] == 1 and dep["spec"]["selector"] == {"matchLabels": labels}
    assert dep["spec"]["template"]["metadata"] == {"labels": labels}  # the app's labels are gone
    app, sidecar = dep["spec"]["template"]["spec"]["containers"]
    assert (app["image"], app["imagePullPolicy"]) == ("demo-app:v1", "IfNotPresent")
    assert app["env"] == LIVE["spec"]["template"]["spec"]["containers"][0]["env"]  # same Secret, same DSN
    assert sidecar == {"name": "sidecar", "image": "proxy:1"}
    assert LIVE["spec"]["template"]["spec"]["containers"][0]["image"] == "reg/demo:production"  # not mutated
    assert "status" not in dep


def _pod(name: str, ready: bool = False, restarts: int = 0, waiting: str = "", container: str = "app") -> dict:
    state = {"waiting": {"reason": waiting}} if waiting else {"running": {}}
    return {"metadata": {"name": name}, "status": {"containerStatuses": [
        {"name": container, "ready": ready, "restartCount": restarts, "state": state}]}}


def _unhealthy(pod: str, count: int, msg: str = "HTTP probe failed with statuscode: 503") -> dict:
    return {"reason": "Unhealthy", "message": f"Readiness probe failed: {msg}", "count": count,
            "involvedObject": {"name": pod}}


@pytest.mark.parametrize(("pods", "events", "runs", "seen"), [
    ([_pod("c-1", ready=True)], [], True, "pod c-1 is ready"),
    ([_pod("c-1", restarts=1)], [], False, "restarts=1"),
    ([_pod("c-1", waiting="CrashLoopBackOff")], [], False, "CrashLoopBackOff"),
    ([_pod("c-1")], [_unhealthy("c-1", 2), _unhealthy("c-1", 1, "schema check failed")], False,
     "readiness probe failed 3 times: Readiness probe failed: schema check failed"),
    ([_pod("c-1")], [_unhealthy("c-1", 2)], None, "(2 readiness failure(s))"),
    ([_pod("c-1")], [_unhealthy("c-1", 9, 'Get "http://10.244.0.7:8080/healthz": dial tcp 10.244.0.7:8080: '
                                           "connect: connection refused")], None, "(0 readiness failure(s))"),   # a slow start is not a verdict
    ([_pod("c-1")], [_unhealthy("demo-abc", 9)], None, "(0 readiness failure(s))"),  # the bad release's own pods
    ([_pod("c-1", ready=True, container="sidecar")], [], None, "not ready yet"),  # only the tracked container
    ([], [], None, "0 pod(s)"),
])
def test_copy_outcome(pods: list[dict], events: list[dict], runs: bool | None, seen: str) -> None:
    got_runs, got_seen = compat.copy_outcome(pods, events, "app")
    assert got_runs is runs and seen in got_seen


def test_compat_runs_between_detect_and_runbook_and_never_stops_the_rehearsal() -> None:
    names = [p.name for p in PHASES]
    assert names.index("detect") + 1 == names.index("compat") == names.index("runbook") - 1
    assert compat.CompatPhase.on_failure is OnFailure.EVIDENCE


def _journal(verdict: str, *risks: str, expect_risks: list[str] | None = None) -> Journal:
    return Journal(scenario="s", expect="READY", verdict=verdict, expect_risks=expect_risks,
                   risks=[Risk(kind=k, object="deployment demo", message="m") for k in risks])  # type: ignore[arg-type]


def test_expectations_cover_the_verdict_and_the_risks() -> None:
    none: list[str] = []
    risky = ["old_version_on_new_schema"]
    assert expectation_problems(_journal("READY", expect_risks=none)) == []
    assert expectation_problems(_journal("NOT_READY", expect_risks=none)) == ["verdict NOT_READY, expected READY"]
    assert expectation_problems(_journal("READY", "old_version_on_new_schema", expect_risks=none)) == [
        "risks ['old_version_on_new_schema'], expected none"]
    assert expectation_problems(_journal("READY", expect_risks=risky)) == [
        "risks none, expected ['old_version_on_new_schema']"]
    assert expectation_problems(_journal("READY", "old_version_on_new_schema", expect_risks=risky)) == []
    assert expectation_problems(_journal("ERROR", expect_risks=risky)) == ["verdict ERROR, expected READY"]
    # A report from before expect_risks existed is judged on its verdict alone.
    assert expectation_problems(_journal("READY", "old_version_on_new_schema")) == []


def test_reports_judge_expectations_like_the_pipeline() -> None:
    j = _journal("READY", "old_version_on_new_schema", expect_risks=[])
    assert not as_expected(j.model_dump(mode="json"))  # junit, summary and html (report.json data) agree with pytest
    assert expectation_problems(j) == expectation_problems(j.model_dump(mode="json"))


def test_a_risk_is_judged_against_expect_risks_not_the_verdict(tmp_path: Path, kit, monkeypatch) -> None:
    from contextlib import ExitStack  # noqa: PLC0415
    from types import SimpleNamespace  # noqa: PLC0415

    from harness import pipeline  # noqa: PLC0415

    s = load_scenario(kit.write_scenario(tmp_path, "r", kit.minimal_doc(expect_risks=["old_version_on_new_schema"])))

    class Risky:
        name, on_failure = "compat", OnFailure.EVIDENCE

        def applies(self, ctx: Any) -> bool:
            return True

        def execute(self, ctx: Any) -> str:
            ctx.journal.risks.append(Risk(kind="old_version_on_new_schema", object="deployment demo", message="m"))
            return "risk"

    monkeypatch.setattr(pipeline, "PHASES", [Risky()])
    monkeypatch.setattr(pipeline, "say", lambda *a, **k: None)
    journal = Journal(scenario="r", expect="READY", expect_risks=[k.value for k in s.expect_risks])
    ctx = SimpleNamespace(scenario=s, journal=journal, cleanup=ExitStack(), keep=False)
    pipeline.rehearse(ctx)  # type: ignore[arg-type]
    decide(ctx.journal).record(ctx.journal)
    assert ctx.journal.verdict == "READY" and ctx.journal.expect_risks == ["old_version_on_new_schema"]
    assert expectation_problems(ctx.journal) == []


def test_checks_and_expect_risks_are_validated(tmp_path: Path, kit) -> None:
    d = kit.write_scenario(tmp_path, "bad", kit.minimal_doc(
        expect_risks=["old_code_breaks"], checks={"old_version_timeout_s": 0, "compat": True}))
    with pytest.raises(ScenarioError) as err:
        load_scenario(d)
    text = str(err.value)
    assert "expect_risks[0]" in text and "checks.old_version_timeout_s" in text and "checks.compat" in text


def test_checks_default_on(tmp_path: Path, kit) -> None:
    s = load_scenario(kit.write_scenario(tmp_path, "plain", kit.minimal_doc()))
    assert s.checks.old_version_on_new_schema is True and s.checks.old_version_timeout_s == 60
    assert s.expect_risks == []


def test_the_smoke_port_of_the_copy_is_resolved_to_a_number() -> None:
    pod = {"metadata": {"name": "c-1"}, "spec": {"containers": [
        {"name": "app", "ports": [{"containerPort": 8080, "name": "http"}]}]}}
    svc = {"spec": {"ports": [{"port": 80, "targetPort": "http"}, {"port": 9090, "targetPort": 9091},
                              {"port": 7070}]}}
    assert compat.pod_port(svc, pod, 80) == 8080
    assert compat.pod_port(svc, pod, 9090) == 9091
    assert compat.pod_port(svc, pod, 7070) == 7070
    svc["spec"]["ports"][0]["targetPort"] = "metrics"
    with pytest.raises(RuntimeError, match="named port 'metrics', which pod c-1 does not declare"):
        compat.pod_port(svc, pod, 80)


class FakeKubectl:
    """Answers the calls phase compat makes; the copy's pod fails its readiness probe."""

    def __init__(self, ready: bool) -> None:
        self.ready, self.calls = ready, []

    def __call__(self, *args: str, input: str | None = None, check: bool = True, timeout: float = 0) -> Any:
        import json  # noqa: PLC0415
        from types import SimpleNamespace  # noqa: PLC0415

        self.calls.append(args)
        out: Any = ""
        if args[:2] == ("get", "deployment"):
            out = LIVE
        elif args[0] == "logs":
            return SimpleNamespace(stdout="GET /healthz 503 \"column created_at does not exist\"\n", returncode=0)
        return SimpleNamespace(stdout=json.dumps(out) if out else "", stderr="", returncode=0)

    def get_json(self, path: str, query: dict[str, str] | None = None) -> Any:
        """The API paths compat polls (RehearsalContext.get_json): the copy's pods by label, the events."""
        self.calls.append(("GET", path, *sorted((query or {}).items())))
        if path == "/api/v1/namespaces/rr-c/pods":
            assert query == {"labelSelector": "rollback-rehearsal/compat-check=demo"}, query
            return {"items": [_pod("demo-compat-check-1", ready=self.ready)]}
        assert path == "/api/v1/namespaces/rr-c/events", path
        return {"items": [_unhealthy("demo-compat-check-1", 3)]}


def _ctx(tmp_path: Path, kit, ready: bool, changes: list[str]) -> Any:
    from contextlib import ExitStack  # noqa: PLC0415
    from types import SimpleNamespace  # noqa: PLC0415

    s = load_scenario(kit.write_scenario(tmp_path, "c", kit.minimal_doc(app={
        "manifests": "app.yaml", "workloads": [{"deployment": "demo", "container": "app"}]})))
    ctx = SimpleNamespace(scenario=s, journal=Journal(scenario="c", expect="READY"), namespace="rr-c",
                          kubectl=(fake := FakeKubectl(ready)), get_json=fake.get_json, redactor=lambda t: t,
                          cleanup=ExitStack(), db=object())
    return ctx, changes


def test_compat_records_a_risk_with_the_apps_own_words(tmp_path: Path, kit, monkeypatch) -> None:
    ctx, changes = _ctx(tmp_path, kit, ready=False, changes=["column users.created_at is missing"])
    monkeypatch.setattr(compat, "schema_changes", lambda c: changes)
    monkeypatch.setattr(compat, "say", lambda *a, **k: None)
    assert compat.CompatPhase().execute(ctx).startswith("RISK: the good version does not run on the new schema")
    (risk,) = ctx.journal.risks
    assert risk.kind == "old_version_on_new_schema" and risk.object == "deployment demo"
    assert "readiness probe failed 3 times" in risk.message and "column created_at does not exist" in risk.message
    assert "column created_at does not exist" in risk.evidence
    assert "does NOT run" in ctx.journal.compatibility[0] and "users.created_at is missing" in ctx.journal.compatibility[0]
    applied = next(c for c in ctx.kubectl.calls if c[0] == "apply")
    assert applied == ("apply", "-f", "-")
    deleted = [c for c in ctx.kubectl.calls if c[0] == "delete"]
    assert deleted and "--cascade=foreground" in deleted[0] and "demo-compat-check" in deleted[0]


def test_compat_without_schema_change_starts_nothing(tmp_path: Path, kit, monkeypatch) -> None:
    ctx, _ = _ctx(tmp_path, kit, ready=True, changes=[])
    monkeypatch.setattr(compat, "schema_changes", lambda c: [])
    assert compat.CompatPhase().execute(ctx) == "schema unchanged by the bad release: nothing to check"
    assert ctx.journal.risks == [] and ctx.kubectl.calls == []
