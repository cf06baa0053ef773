"""Scenario loading: parse → defaults → validate, every problem reported at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml

from harness.scenario import Expect, ScenarioError, discover, load_all, load_scenario
from harness.scenario.models import FailureMode, MigrationPlace, Scenario

EXAMPLE_EXPECT = {
    "bad-image": ("READY", "crashloop"),
    "bad-migration": ("READY", "readiness"),
    "forgot-migrate-down": ("NOT_READY", "readiness"),
    "promotion": ("READY", "readiness"),
    "runbook-drift": ("NOT_READY", "readiness"),
    "undo-twice": ("NOT_READY", "crashloop"),
    "history-limit-too-low": ("NOT_READY", "smoke"),
    "rollout-deadline": ("READY", "rollout_deadline"),
    "down-script-missing": ("NOT_READY", "readiness"),
    "configmap-drift": ("NOT_READY", "crashloop"),
    "fault-db-connections-during-migrate-down": ("NOT_READY", "readiness"),
    "fault-pause-postgres": ("READY", "readiness"),
    "fault-delete-pod-during-undo": ("READY", "crashloop"),
    "fault-pause-control-plane": ("READY", "crashloop"),
    "destructive-migration": ("NOT_READY", "readiness"),
    "destructive-migration-with-backup": ("READY", "readiness"),
    "half-way-migration": ("NOT_READY", "smoke"),
    "noop-down-migration": ("NOT_READY", "readiness"),
    "runbook-session": ("READY", "crashloop"),
    "skip-paging": ("READY", "crashloop"),
    "node-pg-migrate-rollback": ("READY", "readiness"),
    "node-pg-migrate-noop-down": ("NOT_READY", "readiness"),
    "node-pg-migrate-forgot-down": ("NOT_READY", "readiness"),
    "alembic-rollback": ("READY", "readiness"),
    "alembic-forgot-downgrade": ("NOT_READY", "readiness"),
    "alembic-noop-downgrade": ("NOT_READY", "readiness"),
    "golang-migrate-rollback": ("READY", "readiness"),
    "golang-migrate-empty-down": ("NOT_READY", "readiness"),
    "golang-migrate-forgot-down": ("NOT_READY", "readiness"),
    "helm-rollback": ("READY", "readiness"),
    "helm-rollback-forgets-schema": ("NOT_READY", "readiness"),
    "helm-atomic-upgrade": ("NOT_READY", "readiness"),
    "helm-pending-upgrade": ("NOT_READY", "readiness"),
    "helm-history-too-short": ("NOT_READY", "readiness"),
}


def _problems(exc_info: pytest.ExceptionInfo[ScenarioError]) -> dict[str, object]:
    return {p.field: p for p in exc_info.value.problems}


# ── the example scenarios ──────────────────────────────────────────────
def test_examples_are_the_expected_ones(kit) -> None:
    assert sorted(p.name for p in discover([kit.EXAMPLES])) == sorted(EXAMPLE_EXPECT)


@pytest.mark.parametrize("name", sorted(EXAMPLE_EXPECT))
def test_example_loads_with_defaults(kit, name: str) -> None:
    d = kit.EXAMPLES / name
    raw = yaml.safe_load((d / "scenario.yaml").read_text())
    assert "name" not in raw, "the example must rely on the directory-name default for this test to mean anything"

    s = load_scenario(d)

    assert s.name == name  # defaulted from the directory
    assert s.directory == d.resolve()
    assert (s.expect.value, s.failure.mode.value) == EXAMPLE_EXPECT[name]
    # defaults of fields none of the examples sets
    assert s.schema_version == 1
    assert s.runbook.step_timeout_s == 180
    assert s.database.postgres == "15"
    assert s.timeouts.deploy_s == s.timeouts.migrate_s == 180
    raw = yaml.safe_load((d / "scenario.yaml").read_text())
    assert s.timeouts.verify_s == raw.get("timeouts", {}).get("verify_s", 180)
    assert s.migrations is not None and s.migrations.runs_in is MigrationPlace.JOB
    assert s.app.smoke is not None and s.app.smoke.path == raw["app"]["smoke"]["path"]
    # paths written in the file resolve relative to the scenario directory and exist
    if s.app.helm is not None:  # the helm-* examples: the demo chart instead of manifests
        assert s.app.manifests is None and (s.path(s.app.helm.chart) / "Chart.yaml").is_file()
    else:
        assert s.app.manifests is not None and s.path(s.app.manifests).is_file()
    assert s.path(s.runbook.file) == (d / "runbook.md").resolve()
    assert s.database.tracked_tables == ["users", "orders"]


def test_example_promotion_has_registry_and_tags(kit) -> None:
    s = load_scenario(kit.EXAMPLES / "promotion")
    assert s.registry is not None and s.registry.production_tag == "production"
    assert (s.versions.good.tag, s.versions.bad.tag) == ("abc123", "def456")


def test_load_accepts_the_yaml_file_itself(kit) -> None:
    s = load_scenario(kit.EXAMPLES / "bad-image" / "scenario.yaml")
    assert s.name == "bad-image"


def test_minimal_scenario_gets_runbook_and_other_defaults(scenario_dir) -> None:
    s = load_scenario(scenario_dir("my-app"))
    assert s.name == "my-app"
    assert s.runbook.file == Path("runbook.md")
    assert s.runbook.section == "Rollback"
    assert s.expect is Expect.READY
    assert s.failure.mode is FailureMode.CRASHLOOP and s.failure.within_s == 120
    assert s.migrations is None and s.registry is None
    assert s.variables == {} and s.pass_env == []
    assert s.objectives.max_recover_s is None


def test_explicit_name_wins_over_directory(scenario_dir, kit) -> None:
    s = load_scenario(scenario_dir("dir-name", kit.minimal_doc(name="explicit")))
    assert s.name == "explicit"


def test_variables_shorthand_and_secrets(scenario_dir, kit) -> None:
    doc = kit.minimal_doc(variables={"PLAIN": "x", "NUM": 5, "PW": {"value": "hunter22", "secret": True}})
    s = load_scenario(scenario_dir("vars", doc))
    assert s.variables["PLAIN"].value == "x" and not s.variables["PLAIN"].secret
    assert s.variables["NUM"].value == "5"
    assert s.secret_values == ["hunter22"]


# ── every problem at once ──────────────────────────────────────────────
def test_pass_env_names_are_secret_unless_marked(scenario_dir, kit) -> None:
    doc = kit.minimal_doc(pass_env=["TOKEN", {"name": "REGION", "secret": False}, {"name": "KEY"}])
    s = load_scenario(scenario_dir("passenv", doc))
    assert s.pass_env_names == ["TOKEN", "REGION", "KEY"]
    assert s.secret_pass_env == ["TOKEN", "KEY"]


def test_pass_env_entries_are_checked_in_both_forms(scenario_dir, kit) -> None:
    doc = kit.minimal_doc(pass_env=[{"name": "PATH", "secret": False}, "bad-name", {"name": "X", "secrt": 1}])
    with pytest.raises(ScenarioError) as exc_info:
        load_scenario(scenario_dir("passenv-bad", doc))
    text = str(exc_info.value)
    assert "cannot pass PATH, bad-name" in text and "secrt" in text


def test_several_problems_are_all_reported_in_one_error(broken_scenario, kit) -> None:
    with pytest.raises(ScenarioError) as ei:
        load_scenario(broken_scenario)
    problems = ei.value.problems
    by_field = {p.field: p for p in problems}
    missing = set(kit.BROKEN_EXPECTED) - set(by_field)
    assert not missing, f"not reported: {sorted(missing)}; got {[str(p) for p in problems]}"
    for field, word in kit.BROKEN_EXPECTED.items():
        p = by_field[field]
        assert p.file == broken_scenario / "scenario.yaml"
        assert word.lower() in p.message.lower(), (field, p.message)
        assert p.fix.strip(), f"empty fix for {field}"
    # The exception text carries every problem too (it is what pytest and the CLI show).
    text = str(ei.value)
    for field in kit.BROKEN_EXPECTED:
        assert f": {field}: " in text
    assert text.count("fix: ") == len(problems)


def test_fixes_are_specific(broken_scenario) -> None:
    with pytest.raises(ScenarioError) as ei:
        load_scenario(broken_scenario)
    p = _problems(ei)
    assert "READY" in p["expect"].fix and "NOT_READY" in p["expect"].fix
    assert "[a-z0-9]" in p["name"].fix
    assert "remove" in p["colour"].fix
    assert "add" in p["app.workloads[0].deployment"].fix
    assert "'Deploy'" in p["runbook.section"].message  # lists the headings the runbook has
    assert "versions.good.tag" in p["registry"].message


def test_nested_unknown_key_is_reported_with_its_path(scenario_dir, kit) -> None:
    doc = kit.minimal_doc(app={"manifests": "app.yaml", "workloads": [{"deployment": "demo", "imgae": "x"}]})
    with pytest.raises(ScenarioError) as ei:
        load_scenario(scenario_dir("typo", doc))
    assert [p.field for p in ei.value.problems] == ["app.workloads[0].imgae"]


def test_file_problems_alone(scenario_dir, kit) -> None:
    doc = kit.minimal_doc(database={"seed": "nope.sql"}, migrations={"up": "migrate up", "files": "migs"},
                          versions={"good": {"image": "a", "build": {"context": "ctx"}}, "bad": {"image": "b"}})
    with pytest.raises(ScenarioError) as ei:
        load_scenario(scenario_dir("files", doc, manifest=False, runbook=None))
    fields = sorted(p.field for p in ei.value.problems)
    assert fields == sorted(["app.manifests", "database.seed", "migrations.files",
                             "versions.good.build.context", "runbook.file"])
    assert all("does not exist" in p.message for p in ei.value.problems)


def test_runbook_section_without_shell_blocks(scenario_dir) -> None:
    md = "# Runbook\n\n## Rollback\n\nCall the on-call engineer.\n\n```python\nprint('x')\n```\n"
    with pytest.raises(ScenarioError) as ei:
        load_scenario(scenario_dir("noblocks", runbook=md))
    (p,) = ei.value.problems
    assert p.field == "runbook.section" and "no shell code blocks" in p.message and p.fix


def test_registry_needs_the_bad_tag_too(scenario_dir, kit) -> None:
    doc = kit.minimal_doc(registry={"repository": "demo"},
                          versions={"good": {"image": "a", "tag": "abc123"}, "bad": {"image": "b"}})
    with pytest.raises(ScenarioError) as ei:
        load_scenario(scenario_dir("reg", doc))
    (p,) = ei.value.problems
    assert p.field == "registry" and "versions.bad.tag" in p.message


def test_invalid_yaml(scenario_dir) -> None:
    d = scenario_dir("yaml", "app: [unclosed\nfailure: {mode: crashloop}\n")
    with pytest.raises(ScenarioError) as ei:
        load_scenario(d)
    (p,) = ei.value.problems
    assert p.field == "(yaml)" and "not valid YAML" in p.message and p.fix
    assert p.file == d / "scenario.yaml"


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", ""])
def test_document_must_be_a_mapping(scenario_dir, text: str) -> None:
    with pytest.raises(ScenarioError) as ei:
        load_scenario(scenario_dir("notmap", text))
    (p,) = ei.value.problems
    assert p.field == "(document)" and "mapping" in p.message and p.fix


def test_missing_scenario_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as ei:
        load_scenario(tmp_path / "nowhere")
    (p,) = ei.value.problems
    assert p.field == "(file)" and "not found" in p.message


# ── immutability ───────────────────────────────────────────────────────
def test_models_are_frozen(kit) -> None:
    s = load_scenario(kit.EXAMPLES / "bad-image")
    with pytest.raises(pydantic.ValidationError):
        s.name = "other"  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        s.runbook.section = "Deploy"  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        s.app.workloads[0].deployment = "x"  # type: ignore[misc]
    assert s.name == "bad-image" and s.runbook.section == "Rollback"


def test_model_rejects_registry_without_tags_directly() -> None:
    """The invariant holds for models built in code too, not only through the loader."""
    with pytest.raises(pydantic.ValidationError, match="versions.good.tag"):
        Scenario.model_validate({
            "name": "x", "app": {"manifests": "a.yaml", "workloads": [{"deployment": "d"}]},
            "versions": {"good": {"image": "a"}, "bad": {"image": "b", "tag": "t"}},
            "failure": {"mode": "smoke"}, "registry": {"repository": "demo"},
        })


# ── several files ──────────────────────────────────────────────────────
def test_load_all_loads_every_example(kit) -> None:
    names = [s.name for s in load_all([kit.EXAMPLES])]
    assert sorted(names) == sorted(EXAMPLE_EXPECT)


def test_load_all_reports_problems_of_several_files_and_duplicate_names(tmp_path: Path, kit) -> None:
    kit.write_scenario(tmp_path, "a", kit.minimal_doc(name="same"))
    kit.write_scenario(tmp_path, "b", kit.minimal_doc(name="same"))
    kit.write_scenario(tmp_path, "c", kit.minimal_doc(expect="PERHAPS"))
    bad_d = kit.minimal_doc()
    del bad_d["failure"]
    kit.write_scenario(tmp_path, "d", bad_d)
    kit.write_scenario(tmp_path, "ok", kit.minimal_doc())

    with pytest.raises(ScenarioError) as ei:
        load_all([tmp_path])
    got = {(p.file.parent.name if p.file.name == "scenario.yaml" else str(p.file), p.field) for p in ei.value.problems}
    assert ("c", "expect") in got
    assert ("d", "failure") in got
    dup = [p for p in ei.value.problems if "used 2 times" in p.message]  # one problem per file of the name
    assert sorted(p.file.parent.name for p in dup) == ["a", "b"]
    assert all("same" in p.message and p.field == "name" and p.fix for p in dup)
    assert len(ei.value.problems) == 4


def test_load_all_without_scenarios(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as ei:
        load_all([tmp_path])
    (p,) = ei.value.problems
    assert "no scenario.yaml" in p.message and p.fix


def test_discover_accepts_scenario_dirs_files_and_parents(tmp_path: Path, kit) -> None:
    a = kit.write_scenario(tmp_path / "set", "a")
    b = kit.write_scenario(tmp_path / "set", "b")
    (tmp_path / "set" / "not-a-scenario").mkdir()
    assert discover([tmp_path / "set"]) == [a, b]
    assert discover([a]) == [a]
    assert discover([b / "scenario.yaml"]) == [b]


def test_runbook_answers_are_checked_against_the_section(tmp_path: Path, kit: Any) -> None:
    runbook = "## Rollback\n\n```sh\nread -p 'Continue? ' ok\ncat <<EOF\nx\nEOF\n```\n"
    answers = [{"line": 4, "answer": "y"}, {"line": 6, "answer": "y"}, {"line": 9, "answer": "y"},
               {"answer": "y"}, {"prompt": "Continue", "answer": "two\nlines"}]
    with pytest.raises(ScenarioError) as caught:
        load_scenario(kit.write_scenario(tmp_path, "s", kit.minimal_doc(runbook={"answers": answers}),
                                         runbook=runbook))
    fields = sorted(p.field for p in caught.value.problems)
    assert fields == ["runbook.answers[2].line", "runbook.answers[3]", "runbook.answers[4].answer"]
    (line,) = [p for p in caught.value.problems if p.field == "runbook.answers[2].line"]
    assert "line 9 is not a line of a command of section 'Rollback'" in line.message
    assert "start at lines 4, 5" in line.fix
