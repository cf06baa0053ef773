"""The CI templates in docs/ci/ (docs/ci/README.md), checked with real tools:

- SchemaStore's schemas of a GitHub workflow and of .gitlab-ci.yml, as check-jsonschema vendors them;
- zizmor's security audits of the workflow (offline: template injection, credentials, permissions, pins);
- shellcheck on every GitLab job's script (actionlint does the same for the workflow's `run:` blocks, in
  tests/e2e/test_actionlint.py, with actionlint from `make env`);
- the `rehearse` commands both templates run, parsed by the CLI itself;
- what the templates promise (nightly and by hand, one job per shard, the environment cache, reports per
  shard, one merge) read from the files.

Each linter is also run on a broken copy, so a check that cannot fail would show.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from harness.cli import cli

REPO = Path(__file__).resolve().parents[2]
GITHUB = REPO / "docs" / "ci" / "github-actions.yml"
GITLAB = REPO / "docs" / "ci" / "gitlab-ci.yml"
SCHEMAS = {GITHUB: "vendor.github-workflows", GITLAB: "vendor.gitlab-ci"}
# What the shell would see for the variables the templates' `rehearse` commands use.
SHELL_VALUES = {"SHARD": "2", "SHARDS": "3", "CI_NODE_INDEX": "2", "CI_NODE_TOTAL": "3", "SCENARIOS": "scenarios/",
                "shard_dir": "reports/shard-2"}
GITLAB_KEYWORDS = {"workflow", "stages", "variables", "default", "include"}


def load(path: Path) -> dict[Any, Any]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return doc


def gh_steps(job: str) -> list[dict[str, Any]]:
    return list(load(GITHUB)["jobs"][job]["steps"])


def gh_step(job: str, name: str) -> dict[str, Any]:
    return next(s for s in gh_steps(job) if s.get("name") == name)


def gitlab_jobs() -> dict[str, dict[str, Any]]:
    """The jobs (hidden templates merged in through `extends`, deeply, as GitLab does)."""
    doc = load(GITLAB)

    def merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
        out = dict(base)
        for k, v in over.items():
            out[k] = merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
        return out

    def resolve(job: dict[str, Any]) -> dict[str, Any]:
        parents = job.get("extends") or []
        base: dict[str, Any] = {}
        for name in [parents] if isinstance(parents, str) else parents:
            base = merged(base, resolve(doc[name]))
        return merged(base, {k: v for k, v in job.items() if k != "extends"})

    return {k: resolve(v) for k, v in doc.items() if k not in GITLAB_KEYWORDS and not k.startswith(".")}


def gitlab_script(job: dict[str, Any]) -> str:
    """A job's shell script as the runner runs it: before_script then script, in one bash."""
    return "\n".join(str(line) for key in ("before_script", "script") for line in job.get(key) or [])


def shell_texts() -> Iterator[str]:
    """Every piece of shell both templates run."""
    for job in load(GITHUB)["jobs"].values():
        yield from (str(s["run"]) for s in job["steps"] if "run" in s)
    yield from (gitlab_script(j) for j in gitlab_jobs().values())


def run(*argv: str | Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], input=stdin, capture_output=True, text=True, timeout=120)


def check_jsonschema(path: Path, schema: str) -> subprocess.CompletedProcess[str]:
    return run(sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, path)


def zizmor(path: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("zizmor")
    assert exe.exists(), "zizmor is not installed: pip install -e '.[test]'"
    return run(exe, "--offline", "--no-progress", path)


def shellcheck(script: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("shellcheck")
    assert exe, "shellcheck is not installed: run `make env` (or apt-get install shellcheck)"
    return run(exe, "--shell=bash", "--format=gcc", "-", stdin="set -eo pipefail\n" + script)


def broken_copy(tmp_path: Path, path: Path, old: str, new: str) -> Path:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    copy = tmp_path / path.name
    copy.write_text(text.replace(old, new, 1), encoding="utf-8")
    return copy


# ── linters ──────────────────────────────────────────────────────────────────
@pytest.mark.parametrize("path", list(SCHEMAS), ids=lambda p: p.name)
def test_each_template_matches_schemastores_schema(path: Path) -> None:
    proc = check_jsonschema(path, SCHEMAS[path])
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(("path", "old", "new", "said"), [
    (GITHUB, "    runs-on: ubuntu-24.04\n    timeout-minutes: 150", "    runs_on: ubuntu-24.04\n    timeout-minutes: 150",
     "'runs-on' is a required property"),
    (GITLAB, "parallel: 3 ", "parallel: many ", "$.rehearse.parallel"),
], ids=["github-runs_on", "gitlab-parallel"])
def test_the_schema_check_fails_on_a_broken_template(tmp_path: Path, path: Path, old: str, new: str, said: str) -> None:
    proc = check_jsonschema(broken_copy(tmp_path, path, old, new), SCHEMAS[path])
    assert proc.returncode == 1 and said in proc.stdout, proc.stdout + proc.stderr


def test_zizmor_finds_nothing_in_the_workflow() -> None:
    proc = zizmor(GITHUB)
    assert proc.returncode == 0 and "No findings" in proc.stdout + proc.stderr, proc.stdout + proc.stderr


@pytest.mark.parametrize(("old", "new", "audit"), [
    ("run: make venv\n", 'run: echo "${{ inputs.scenarios }}"\n', "template-injection"),
    ("        with:\n          persist-credentials: false\n", "", "artipacked"),
    ("actions/upload-artifact@bbbca2ddaa5d8feaa63e36b76fdaad77386f024f", "actions/upload-artifact@v7", "unpinned-uses"),
], ids=["injection", "credentials", "unpinned"])
def test_zizmor_fails_on_a_broken_workflow(tmp_path: Path, old: str, new: str, audit: str) -> None:
    proc = zizmor(broken_copy(tmp_path, GITHUB, old, new))
    assert proc.returncode != 0 and f"[{audit}]" in proc.stdout, proc.stdout + proc.stderr


def test_gitlab_scripts_are_shellcheck_clean() -> None:
    jobs = gitlab_jobs()
    assert set(jobs) == {"build-env", "rehearse", "report"}
    findings = {name: shellcheck(gitlab_script(job)).stdout for name, job in jobs.items()}
    assert findings == {name: "" for name in jobs}


def test_shellcheck_fails_on_a_broken_gitlab_script() -> None:
    script = gitlab_script(gitlab_jobs()["rehearse"]).replace('-- "$SCENARIOS"', "-- $SCENARIOS")
    assert "SC2086" in shellcheck(script).stdout  # an unquoted variable: word splitting and globbing


def test_no_expression_is_expanded_inside_a_run_block() -> None:
    """Values reach the shell through `env:` (what actionlint and zizmor recommend), never as `${{ }}` text that
    GitHub pastes into the script before bash parses it."""
    runs = [str(s["run"]) for job in load(GITHUB)["jobs"].values() for s in job["steps"] if "run" in s]
    assert runs and [r for r in runs if "${{" in r] == []


# ── the rehearse commands ────────────────────────────────────────────────────
def rehearse_commands() -> list[list[str]]:
    """Every `.venv/bin/rehearse ...` both templates run, as argv, with the shell's values put in."""
    found = []
    for text in shell_texts():
        joined = text.replace("\\\n", " ")
        for m in re.finditer(r"\.venv/bin/rehearse ([^|;&\n]*)", joined):
            words = re.sub(r"\$\{?(\w+)\}?", lambda v: SHELL_VALUES[v.group(1)], m.group(1))
            found.append(shlex.split(words))
    return found


def test_the_templates_run_the_shard_merge_and_trend_commands() -> None:
    subcommands = sorted({" ".join(w for w in argv[:2] if not w.startswith("-")) for argv in rehearse_commands()})
    assert subcommands == ["report merge", "report trend", "run"]


CLI_HAS_SHARDS = (any(p.name == "shard" for p in cli.commands["run"].params)
                  and "merge" in getattr(cli.commands["report"], "commands", {}))


@pytest.mark.xfail(not CLI_HAS_SHARDS, strict=True, reason="`rehearse run --shard` and `rehearse report merge` "
                   "land from another branch; this test checks the templates against them once they are in")
def test_every_rehearse_command_parses_with_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Click parses each command as the shell passes it (globs expanded in a checkout-like directory)."""
    monkeypatch.chdir(tmp_path)
    for k in (1, 2, 3):
        (tmp_path / "reports" / f"shard-{k}").mkdir(parents=True)
    (tmp_path / "scenarios").mkdir()
    for argv in rehearse_commands():
        argv = [p for w in argv for p in (sorted(str(x) for x in Path().glob(w)) if "*" in w else [w])]
        group: click.Command = cli
        while isinstance(group, click.Group) and argv and argv[0] in group.commands:
            group, argv = group.commands[argv[0]], argv[1:]
        group.make_context(group.name or "rehearse", list(argv))  # raises click.UsageError on what it cannot take


# ── what the templates promise ───────────────────────────────────────────────
def test_github_runs_nightly_and_by_hand_one_job_per_shard() -> None:
    doc = load(GITHUB)
    on = doc.get("on", doc.get(True))  # YAML 1.1 reads a bare `on` as true
    assert set(on) == {"schedule", "workflow_dispatch"} and on["schedule"][0]["cron"]
    job = doc["jobs"]["rehearse"]
    assert job["strategy"]["matrix"]["shard"] == [1, 2, 3] and job["strategy"]["fail-fast"] is False
    step = gh_step("rehearse", "Rehearse shard ${{ matrix.shard }}")
    assert step["env"]["SHARD"] == "${{ matrix.shard }}" and step["env"]["SHARDS"] == "${{ strategy.job-total }}"
    assert job["outputs"]["shards"] == "${{ strategy.job-total }}"  # the merge job's count of shards
    upload = gh_step("rehearse", "Upload the shard's reports")
    assert upload["with"]["name"] == "shard-${{ matrix.shard }}" and upload["if"] == "${{ !cancelled() }}"


def test_github_caches_the_environment_and_publishes_summaries() -> None:
    restore = gh_step("rehearse", "Restore the environment cache")
    assert restore["with"]["path"] == "~/.cache/rollback-rehearsal"
    assert "hashFiles('env/**', 'demo/**')" in restore["with"]["key"]
    assert "make env" in gh_step("rehearse", "Build the environment (make env)")["run"]
    assert 'cat "$summary" >> "$GITHUB_STEP_SUMMARY"' in gh_step("rehearse", "Job summary")["run"]
    merge = load(GITHUB)["jobs"]["merge"]
    assert merge["needs"] == "rehearse" and merge["if"] == "${{ !cancelled() }}"
    assert gh_step("merge", "Download the shards' reports")["with"] == {"pattern": "shard-*", "path": "reports"}
    assert gh_step("merge", "Publish the summary")["run"].endswith('>> "$GITHUB_STEP_SUMMARY"')
    assert "rehearse report trend --report-dir reports/nightly" in gh_step("merge", "Trend over the nights")["run"]
    assert gh_step("merge", "Annotate the failing runbook lines")["with"]["report_paths"] == "reports/merged/junit.xml"


def test_gitlab_shards_with_parallel_and_merges_with_needs() -> None:
    jobs = gitlab_jobs()
    rehearse, report = jobs["rehearse"], jobs["report"]
    assert isinstance(rehearse["parallel"], int) and rehearse["parallel"] > 1
    assert '--shard "$CI_NODE_INDEX/$CI_NODE_TOTAL"' in gitlab_script(rehearse)
    assert rehearse["artifacts"]["reports"]["junit"] == "reports/shard-*/junit.xml"
    assert rehearse["artifacts"]["when"] == "always" and rehearse["needs"] == ["build-env"]
    assert rehearse["cache"]["paths"] == [".cache/rollback-rehearsal/"] and rehearse["cache"]["policy"] == "pull"
    assert jobs["build-env"]["cache"]["policy"] == "pull-push"  # one job saves the environment, the shards read it
    assert report["needs"] == [{"job": "rehearse", "artifacts": True}] and report["when"] == "always"
    assert "make env" in gitlab_script(rehearse)


# ── the merge jobs' check that every shard finished, run in bash on report directories ─────────────────────
def merge_check(which: str) -> str:
    if which == "github":
        return str(gh_step("merge", "Check that every shard finished")["run"])
    return str(gitlab_jobs()["report"]["script"][-1])


def run_check(which: str, reports: Path, statuses: dict[int, str | None], total: int = 3) -> tuple[int, str]:
    """The check against shards 1..total whose `exit-status` files hold `statuses` (None: no file)."""
    for k in range(1, total + 1):
        (reports / f"shard-{k}").mkdir(parents=True, exist_ok=True)
        (reports / f"shard-{k}" / "shard-total").write_text(f"{total}\n")
        if statuses.get(k) is not None:
            (reports / f"shard-{k}" / "exit-status").write_text(f"{statuses[k]}\n")
    env = {"PATH": "/usr/bin:/bin", "SHARDS": str(total), "GITHUB_STEP_SUMMARY": str(reports / "summary.md")}
    proc = subprocess.run(["bash", "-eo", "pipefail", "-c", merge_check(which)], cwd=reports.parent, env=env,
                          capture_output=True, text=True, timeout=30)
    return proc.returncode, proc.stdout


@pytest.mark.parametrize("which", ["github", "gitlab"])
def test_the_merge_fails_when_a_shard_did_not_finish(tmp_path: Path, which: str) -> None:
    code, out = run_check(which, tmp_path / "reports", {1: "0", 2: "3", 3: None})
    assert code == 1
    assert "shard 2/3 did not finish its rehearsals (exit status 3)" in out
    assert "shard 3/3 did not finish its rehearsals (exit status unknown)" in out and "shard 1/3" not in out


@pytest.mark.parametrize("which", ["github", "gitlab"])
def test_the_merge_passes_when_every_shard_finished(tmp_path: Path, which: str) -> None:
    """Exit 1 (a verdict not as expected) is a finished shard: its reports are whole."""
    assert run_check(which, tmp_path / "reports", {1: "0", 2: "1", 3: "0"}) == (0, "")


def test_a_status_file_is_never_echoed_as_it_is(tmp_path: Path) -> None:
    """What a shard wrote goes into a workflow command (`::error::`): only its digits are used."""
    code, out = run_check("github", tmp_path / "reports", {1: "0", 2: "0", 3: "9::warning::x"})
    assert code == 1 and "(exit status 9)" in out and "::warning::" not in out
