"""Runbook parsing (Markdown → steps) and literal execution (one bash session, env, timeouts), with real bash."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from harness.runbook_commands import (
    RunbookError,
    Step,
    all_commands,
    parse_runbook,
    split_commands,
)
from harness.shell_session import run_step, run_steps

RUNBOOK = """\
# Service runbook

## Deploy

```sh
echo deploy
```

## Rollback

Take a breath.

```bash
# undo the rollout (this comment is not a step)
$ kubectl rollout undo \\
    deployment/demo \\
    --to-revision=1

echo "two $HOME"
```

```python
print("not shell")
```

```
echo no-info-string
```

    echo indented-code-block

### Check

```console
$ kubectl get pods
```

```shell title="last"
echo shell
```

```zsh
echo zsh
```

## After

```sh
echo after
```

# Appendix

```sh
echo appendix
```
"""


def _words(command: str) -> str:
    """A command's words: `\\`-newline continuations and runs of blanks are not significant to the shell."""
    return " ".join(command.replace("\\\n", " ").split())


def _line_of(text: str, needle: str) -> int:
    """1-based line number of the first line containing needle."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


# ── parsing ────────────────────────────────────────────────────────────
def test_section_steps_in_order_with_subsections() -> None:
    steps = parse_runbook(RUNBOOK, "Rollback")
    # (whitespace between words is not significant to the shell: compare words)
    assert [_words(s.command) for s in steps] == [
        "kubectl rollout undo deployment/demo --to-revision=1",  # continuation kept as written, `$ ` stripped
        'echo "two $HOME"',                                       # `$HOME` is not a prompt
        "kubectl get pods",                                       # from the ### subsection
        "echo shell",
        "echo zsh",
    ]
    assert [s.index for s in steps] == [1, 2, 3, 4, 5]


def test_line_numbers_point_at_the_command_start() -> None:
    steps = parse_runbook(RUNBOOK, "Rollback")
    assert steps[0].line == _line_of(RUNBOOK, "$ kubectl rollout undo")
    assert steps[1].line == _line_of(RUNBOOK, 'echo "two')
    assert steps[2].line == _line_of(RUNBOOK, "$ kubectl get pods")
    assert steps[4].line == _line_of(RUNBOOK, "echo zsh")


def test_other_sections_and_languages_are_not_steps() -> None:
    commands = " ".join(s.command for s in parse_runbook(RUNBOOK, "Rollback"))
    for absent in ("echo deploy", "not shell", "no-info-string", "indented-code-block", "after", "appendix", "#"):
        assert absent not in commands


def test_section_stops_at_same_or_higher_level_heading() -> None:
    assert [s.command for s in parse_runbook(RUNBOOK, "Check")] == ["kubectl get pods", "echo shell", "echo zsh"]
    assert [s.command for s in parse_runbook(RUNBOOK, "After")] == ["echo after"]  # stops at `# Appendix`
    assert [s.command for s in parse_runbook(RUNBOOK, "Appendix")] == ["echo appendix"]
    # a top-level section includes every subsection below it, up to the next `#` heading
    top = [s.command for s in parse_runbook(RUNBOOK, "Service runbook")]
    assert top[0] == "echo deploy" and top[-1] == "echo after" and "echo appendix" not in top


def test_section_match_ignores_case_and_surrounding_space() -> None:
    assert parse_runbook(RUNBOOK, "  rollback ") == parse_runbook(RUNBOOK, "Rollback")


def test_hash_lines_inside_fences_are_not_headings() -> None:
    md = "## Rollback\n\n```sh\n# Deploy\necho one\n```\n\n```sh\necho two\n```\n\n## Deploy\n\n```sh\necho no\n```\n"
    assert [s.command for s in parse_runbook(md, "Rollback")] == ["echo one", "echo two"]


def test_setext_headings_count() -> None:
    md = "Rollback\n========\n\n```sh\necho one\n```\n\nOther\n=====\n\n```sh\necho two\n```\n"
    assert [s.command for s in parse_runbook(md, "Rollback")] == ["echo one"]


def test_trailing_backslash_at_block_end(tmp_path: Path) -> None:
    """Kept as written (it used to be cut off): bash drops a `\\`-newline at the end of its input."""
    md = "## Rollback\n\n```sh\necho a \\\n```\n"
    (step,) = parse_runbook(md, "Rollback")
    assert step.command == "echo a \\"
    assert run_step(step, BASE_ENV, tmp_path, 10).output == "a\n"


def test_unknown_section_lists_the_headings() -> None:
    with pytest.raises(RunbookError) as ei:
        parse_runbook(RUNBOOK, "Roll back")
    msg = str(ei.value)
    assert "'Roll back'" in msg
    for heading in ("Service runbook", "Deploy", "Rollback", "Check", "After", "Appendix"):
        assert f"'{heading}'" in msg


def test_runbook_without_headings() -> None:
    with pytest.raises(RunbookError, match="headings: none"):
        parse_runbook("```sh\necho x\n```\n", "Rollback")


def test_section_without_shell_blocks_is_empty() -> None:
    assert parse_runbook("## Rollback\n\nCall someone.\n\n## Next\n", "Rollback") == []


# ── execution ──────────────────────────────────────────────────────────
BASE_ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}


def _step(cmd: str, index: int = 1) -> Step:
    return Step(index=index, command=cmd, line=10 + index)


def test_exit_codes_and_ok(tmp_path: Path) -> None:
    ok = run_step(_step("true"), BASE_ENV, tmp_path, 10)
    assert ok.exit_code == 0 and ok.ok and not ok.timed_out
    bad = run_step(_step("exit 3"), BASE_ENV, tmp_path, 10)
    assert bad.exit_code == 3 and not bad.ok and not bad.timed_out
    assert bad.step == _step("exit 3") and bad.duration_s >= 0


def test_pipefail(tmp_path: Path) -> None:
    res = run_step(_step("false | cat"), BASE_ENV, tmp_path, 10)
    assert res.exit_code == 1 and not res.ok


def test_stdout_and_stderr_are_captured_together(tmp_path: Path) -> None:
    res = run_step(_step("echo to-out; echo to-err >&2; printf 'ünï'"), BASE_ENV, tmp_path, 10)
    assert res.output.splitlines() == ["to-out", "to-err", "ünï"]


def test_runs_in_cwd(tmp_path: Path) -> None:
    res = run_step(_step("pwd; echo done"), BASE_ENV, tmp_path, 10)
    assert res.ok and res.output.split() == [str(tmp_path), "done"]


def test_env_is_exactly_what_is_passed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REHEARSAL_UNIT_LEAK", "leaked")
    res = run_step(_step('echo "foo=[$FOO] leak=[${REHEARSAL_UNIT_LEAK-unset}]"; env'),
                   {**BASE_ENV, "FOO": "bar baz"}, tmp_path, 10)
    assert res.ok
    assert res.output.splitlines()[0] == "foo=[bar baz] leak=[unset]"
    names = {line.split("=", 1)[0] for line in res.output.splitlines()[1:] if "=" in line}
    assert "REHEARSAL_UNIT_LEAK" not in names and "leaked" not in res.output
    # bash adds only its own bookkeeping variables to what was passed
    assert names - {"PATH", "FOO"} <= {"PWD", "SHLVL", "_", "OLDPWD"}


def _alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "bg.pid"
    cmd = f"echo started; sleep 30 & echo $! > {pidfile}; sleep 30"
    t0 = time.monotonic()
    res = run_step(_step(cmd), BASE_ENV, tmp_path, 1.0)
    took = time.monotonic() - t0
    assert res.timed_out and res.exit_code is None and not res.ok
    assert 0.9 <= took < 8, took  # not the 30 s of the background sleep holding the output pipe
    assert "started" in res.output  # output so far is kept
    bg = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while _alive(bg) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(bg), f"background sleep {bg} survived the timeout"


def test_timeout_escalates_to_sigkill(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    res = run_step(_step(f"trap '' TERM; echo $$ > {pidfile}; sleep 30"), BASE_ENV, tmp_path, 0.5)
    assert res.timed_out and res.duration_s < 15
    assert not _alive(int(pidfile.read_text()))


def test_run_steps_stops_at_first_failure(tmp_path: Path) -> None:
    steps = [_step("echo one", 1), _step("exit 4", 2), _step("touch three", 3)]
    seen: list[int] = []
    results = run_steps(steps, BASE_ENV, tmp_path, 10, on_step=lambda r: seen.append(r.step.index))
    assert [r.exit_code for r in results] == [0, 4]
    assert seen == [1, 2]
    assert not (tmp_path / "three").exists()


def test_run_steps_stops_after_a_timeout(tmp_path: Path) -> None:
    steps = [_step("sleep 30", 1), _step("touch two", 2)]
    results = run_steps(steps, BASE_ENV, tmp_path, 0.5)
    assert len(results) == 1 and results[0].timed_out
    assert not (tmp_path / "two").exists()


def test_steps_share_one_shell(tmp_path: Path) -> None:
    """One bash for the steps, like pasting them one by one into one terminal (it was a bash per step)."""
    steps = [_step("X=1; echo x > f", 1), _step('cat f; echo "[${X-}]"', 2)]
    results = run_steps(steps, BASE_ENV, tmp_path, 10)
    assert results[1].output.split() == ["x", "[1]"]


def test_tilde_fences_and_fences_in_list_items() -> None:
    md = (
        "## Rollback\n\n"
        "1. First undo the schema:\n\n"
        "   ```sh\n"
        "   migrate down 1\n"
        "   ```\n\n"
        "2. Then the rollout:\n\n"
        "~~~bash\n"
        "kubectl rollout undo deployment/demo\n"
        "~~~\n"
    )
    steps = parse_runbook(md, "Rollback")
    assert [s.command for s in steps] == ["migrate down 1", "kubectl rollout undo deployment/demo"]
    assert steps[0].line == _line_of(md, "migrate down 1")
    assert steps[1].line == _line_of(md, "kubectl rollout undo")


def test_first_matching_heading_wins() -> None:
    md = "# A\n\n## Rollback\n\n```sh\necho first\n```\n\n# B\n\n## Rollback\n\n```sh\necho second\n```\n"
    assert [s.command for s in parse_runbook(md, "Rollback")] == ["echo first"]


def test_console_blocks_run_only_prompted_lines() -> None:
    """A `console` fence is a terminal transcript: output lines are not commands."""
    md = "## Rollback\n\n```console\n$ kubectl rollout undo deployment/demo\ndeployment.apps/demo rolled back\n$ echo done\ndone\n```\n"
    steps = parse_runbook(md, "Rollback")
    assert [s.command for s in steps] == ["kubectl rollout undo deployment/demo", "echo done"]
    assert [s.line for s in steps] == [4, 6]


# ── the public parsing API preflight uses ──────────────────────────────
def test_split_commands_of_one_block() -> None:
    block = "# a comment\n\n$ kubectl rollout undo \\\n    deployment/demo\necho   two  \ntrailing \\\n"
    assert split_commands(block, first_line=10) == [
        ("kubectl rollout undo \\\n    deployment/demo", 12), ("echo   two", 14), ("trailing \\", 15)]


def test_split_commands_prompted_keeps_only_prompt_lines() -> None:
    block = "$ kubectl get pods\nNAME READY\n$ echo done\ndone\n"
    assert split_commands(block, first_line=1, prompted=True) == [("kubectl get pods", 1), ("echo done", 3)]
    assert split_commands(block, first_line=1) == [
        ("kubectl get pods", 1), ("NAME READY", 2), ("echo done", 3), ("done", 4)]


def test_all_commands_reads_every_shell_block_in_file_order() -> None:
    steps = all_commands(RUNBOOK)
    assert [_words(s.command) for s in steps] == [
        "echo deploy", "kubectl rollout undo deployment/demo --to-revision=1", 'echo "two $HOME"',
        "kubectl get pods", "echo shell", "echo zsh", "echo after", "echo appendix"]
    assert [s.index for s in steps] == list(range(1, 9))
    assert steps[0].line == _line_of(RUNBOOK, "echo deploy")
    assert steps[-1].line == _line_of(RUNBOOK, "echo appendix")


def test_all_commands_agrees_with_each_section() -> None:
    """One parser: a section's steps are the same commands, at the same lines, as in the whole file."""
    whole = {(s.command, s.line) for s in all_commands(RUNBOOK)}
    for section in ("Deploy", "Rollback", "After", "Appendix"):
        assert {(s.command, s.line) for s in parse_runbook(RUNBOOK, section)} <= whole


def test_all_commands_without_headings_or_shell_blocks() -> None:
    assert [s.command for s in all_commands("```sh\necho only\n```\n")] == ["echo only"]
    assert all_commands("# Title\n\n```python\nprint(1)\n```\n") == []


def test_all_commands_read_console_blocks_as_transcripts() -> None:
    md = "## Before\n\n```console\n$ pg_dump -Fc db > before.dump\npg_dump: dumping table users\n```\n"
    assert [(s.command, s.line) for s in all_commands(md)] == [("pg_dump -Fc db > before.dump", 4)]
