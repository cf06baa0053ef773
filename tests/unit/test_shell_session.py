"""One bash session per runbook section, with real bash: shared state, markers, timeouts, prompts and answers."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from harness.runbook_commands import Step, parse_runbook
from harness.scenario.models import Answer
from harness.shell_session import ShellSession, run_steps

ISSUE_RUNBOOK = """\
## Rollback

```sh
NS=production
kubectl -n "$NS" rollout undo deployment/myapp
```

```sh
kubectl -n "$NAMESPACE" apply -f - <<YAML
apiVersion: v1
kind: ConfigMap
metadata: {name: flags}
data: {new_checkout: "false"}
YAML
for d in api worker; do kubectl -n "$NAMESPACE" rollout status deployment/$d --timeout=120s; done
```
"""

# A harmless kubectl on PATH: it logs its arguments and what it read on stdin (the heredoc).
FAKE_KUBECTL = """#!/bin/sh
echo "kubectl $*" >> "$LOG"
case "$*" in *"-f -"*) cat >> "$LOG";; esac
echo "kubectl ok: $*"
"""


def _env(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(FAKE_KUBECTL)
    kubectl.chmod(0o755)
    return {"PATH": f"{bin_dir}:/usr/bin:/bin", "NAMESPACE": "rr-demo", "LOG": str(tmp_path / "log")}


def _steps(*commands: str) -> list[Step]:
    return [Step(index=i, command=c, line=10 + i) for i, c in enumerate(commands, 1)]


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_the_issues_two_blocks_run_as_one_section(tmp_path: Path) -> None:
    steps = parse_runbook(ISSUE_RUNBOOK, "Rollback")
    lines = ISSUE_RUNBOOK.split("\n")
    assert [(s.index, lines[s.line - 1].split()[0]) for s in steps] == [
        (1, "NS=production"), (2, "kubectl"), (3, "kubectl"), (4, "for")]  # each command once, at its first line
    assert steps[2].command.endswith("\nYAML") and steps[2].command.count("\n") == 5
    results = run_steps(steps, _env(tmp_path), tmp_path, 10)
    assert [r.exit_code for r in results] == [0, 0, 0, 0] and all(r.ok for r in results)
    assert results[1].output == "kubectl ok: -n production rollout undo deployment/myapp\n"  # $NS carried over
    assert (tmp_path / "log").read_text() == (
        "kubectl -n production rollout undo deployment/myapp\n"
        "kubectl -n rr-demo apply -f -\n"
        'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: flags}\ndata: {new_checkout: "false"}\n'
        "kubectl -n rr-demo rollout status deployment/api --timeout=120s\n"
        "kubectl -n rr-demo rollout status deployment/worker --timeout=120s\n")
    assert results[3].output.splitlines() == [
        "kubectl ok: -n rr-demo rollout status deployment/api --timeout=120s",
        "kubectl ok: -n rr-demo rollout status deployment/worker --timeout=120s"]


def test_variables_cd_functions_and_options_carry_over(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    steps = _steps("X=one; export Y=two", "cd sub", "greet() { echo \"hi $1 from ${PWD##*/}\"; }", "set -u",
                   'greet "$X-$Y"; sh -c \'echo "child sees Y=$Y"\'', 'echo "${UNSET_VAR}"')
    results = run_steps(steps, _env(tmp_path), tmp_path, 10)
    assert [r.ok for r in results] == [True, True, True, True, True, False]
    assert results[4].output.splitlines() == ["hi one-two from sub", "child sees Y=two"]
    assert "UNSET_VAR: unbound variable" in results[5].output and results[5].exit_code != 0


def test_each_command_has_its_own_output_exit_code_and_duration(tmp_path: Path) -> None:
    results = run_steps(_steps("echo a; echo b >&2", "sleep 0.3; echo c", "false | cat", "echo never"),
                        _env(tmp_path), tmp_path, 10)
    assert [(r.output, r.exit_code) for r in results] == [("a\nb\n", 0), ("c\n", 0), ("", 1)]  # pipefail
    assert results[1].duration_s >= 0.3 > results[0].duration_s


def test_a_failing_command_stops_the_section(tmp_path: Path) -> None:
    results = run_steps(_steps("echo one", "exit 4", "touch three"), _env(tmp_path), tmp_path, 10)
    assert [r.exit_code for r in results] == [0, 4] and results[1].ended_session and not results[1].ok
    assert not (tmp_path / "three").exists()


def test_exit_zero_ends_the_session_and_fails(tmp_path: Path) -> None:
    t0 = time.monotonic()
    results = run_steps(_steps("echo bye; exit 0", "echo never"), _env(tmp_path), tmp_path, 10)
    assert len(results) == 1 and results[0].exit_code == 0 and results[0].ended_session and not results[0].ok
    assert results[0].output == "bye\n" and time.monotonic() - t0 < 3


def test_a_syntax_error_fails_that_command_only(tmp_path: Path) -> None:
    with ShellSession(_env(tmp_path), tmp_path) as shell:
        bad = shell.run(Step(1, 'echo "unclosed', 5), 10)
        assert bad.exit_code == 2 and "unexpected EOF" in bad.output and not bad.ended_session
        assert shell.run(Step(2, "echo still here", 6), 10).output == "still here\n"


def test_output_that_looks_like_a_marker_cannot_end_a_command(tmp_path: Path) -> None:
    forged = r"printf '\0rr-0123456789abcdef0123456789abcdef:0\0'; printf 'rr-x:0\n'; sleep 0.2; echo real; exit 5"
    (res,) = run_steps(_steps(forged), _env(tmp_path), tmp_path, 10)
    assert res.exit_code == 5 and res.output.endswith("real\n") and "rr-x:0" in res.output


def test_a_command_cannot_read_the_next_commands(tmp_path: Path) -> None:
    """stdin is a terminal of the session, never the pipe bash reads its commands from."""
    results = run_steps(_steps("head -c 100 /dev/fd/0 </dev/null; ls /proc/self/fd", "echo second"),
                        _env(tmp_path), tmp_path, 10)
    assert results[1].output == "second\n"
    assert set(results[0].output.split()) <= {"0", "1", "2", "3"}  # 3: ls's own directory handle


def test_a_timeout_kills_the_group_and_ends_the_section(tmp_path: Path) -> None:
    pidfile = tmp_path / "bg.pid"
    steps = _steps(f"echo started; sleep 300 & echo $! > {pidfile}; sleep 300", "touch after")
    t0 = time.monotonic()
    results = run_steps(steps, _env(tmp_path), tmp_path, 1.0)
    assert len(results) == 1 and results[0].timed_out and results[0].exit_code is None
    assert results[0].output == "started\n" and time.monotonic() - t0 < 8
    bg = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while _alive(bg) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(bg), f"background sleep {bg} survived the timeout"
    assert not (tmp_path / "after").exists()


def test_closing_the_session_ends_what_a_command_left_in_the_background(tmp_path: Path) -> None:
    pidfile = tmp_path / "bg.pid"
    (res,) = run_steps(_steps(f"sleep 300 & echo $! > {pidfile}"), _env(tmp_path), tmp_path, 10)
    assert res.ok
    bg = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while _alive(bg) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(bg)


def test_an_interrupt_kills_the_sessions_group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pidfile = tmp_path / "pid"
    calls = {"n": 0}
    real_monotonic = time.monotonic

    def interrupted() -> float:  # Ctrl-C arrives while the command runs
        calls["n"] += 1
        if pidfile.exists() and pidfile.read_text().strip():
            raise KeyboardInterrupt
        return real_monotonic()

    with ShellSession(_env(tmp_path), tmp_path) as shell:
        monkeypatch.setattr("harness.shell_session.time.monotonic", interrupted)
        with pytest.raises(KeyboardInterrupt):
            shell.run(Step(1, f"sleep 300 & echo $! > {pidfile}; wait", 3), 60)
        monkeypatch.undo()
    deadline = time.monotonic() + 5
    while _alive(int(pidfile.read_text())) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(int(pidfile.read_text()))


def test_read_p_without_an_answer_fails_within_seconds(tmp_path: Path) -> None:
    steps = _steps("echo before", "read -p 'Continue? [y/N] ' ok; echo \"ok=$ok\"", "echo never")
    t0 = time.monotonic()
    results = run_steps(steps, _env(tmp_path), tmp_path, 120)
    took = time.monotonic() - t0
    assert took < 10, took
    res = results[-1]
    assert len(results) == 2 and res.waiting_for_input and not res.ok and not res.timed_out
    assert res.output.strip().splitlines()[-1] == "Continue? [y/N]"  # the prompt is shown: stdin is a terminal


def test_any_reader_of_stdin_is_waiting_for_input(tmp_path: Path) -> None:
    t0 = time.monotonic()
    (res,) = run_steps(_steps("echo 'paste the manifest:'; cat"), _env(tmp_path), tmp_path, 120)
    assert res.waiting_for_input and res.output == "paste the manifest:\n" and time.monotonic() - t0 < 10


@pytest.mark.parametrize("answer", [
    Answer(line=12, answer="y"),                               # by the command's line
    Answer(prompt="Continue? [y/N]", answer="y"),              # by the prompt, as text
    Answer(prompt=r"^Continue\?", answer="y"),                 # by the prompt, as a regular expression
    Answer(line=12, prompt="Continue", answer="y"),            # both
])
def test_a_declared_answer_is_typed(tmp_path: Path, answer: Answer) -> None:
    steps = _steps("echo before", "read -p 'Continue? [y/N] ' ok; echo \"ok=$ok\"", "echo after")
    t0 = time.monotonic()
    results = run_steps(steps, _env(tmp_path), tmp_path, 60, answers=[answer])
    assert [r.ok for r in results] == [True, True, True] and time.monotonic() - t0 < 10
    assert results[1].output == "Continue? [y/N] ok=y\n"


def test_answers_that_do_not_fit_are_not_typed(tmp_path: Path) -> None:
    steps = _steps("echo before", "read -p 'Continue? [y/N] ' ok")
    answers = [Answer(line=11, answer="y"), Answer(prompt="Delete everything", answer="y")]
    results = run_steps(steps, _env(tmp_path), tmp_path, 60, answers=answers)
    assert results[1].waiting_for_input


def test_a_line_answer_is_typed_once_a_prompt_answer_each_time(tmp_path: Path) -> None:
    cmd = "read -p 'Name: ' n; read -p 'Sure? ' a; read -p 'Sure? ' b; echo \"$n $a $b\""
    answers = [Answer(line=11, answer="bob"), Answer(prompt="Sure", answer="yes")]
    (res,) = run_steps(_steps(cmd), _env(tmp_path), tmp_path, 60, answers=answers)
    assert res.ok and res.output.endswith("bob yes yes\n")


def test_an_answer_reaches_a_program_as_well(tmp_path: Path) -> None:
    cmd = "python3 -c 'import sys; print(\"typed:\", input(\"Proceed (yes/no)? \"))'"
    (res,) = run_steps(_steps(cmd), _env(tmp_path) | {"PATH": os.environ["PATH"]}, tmp_path, 60,
                       answers=[Answer(prompt="Proceed", answer="yes")])
    assert res.ok and res.output == "Proceed (yes/no)? typed: yes\n"
