"""Commands are cut where bash itself ends them: property-based, against bash's own reading of the block.

The oracle is an interactive bash reading the block on stdin: before each line it reads it prints PS1
(a new command) or PS2 (the line continues the command: heredoc body, open loop, quote, `\\`, `|`).
A command starts at a PS1 line that is not blank or a comment and runs over the PS2 lines after it.
The generated shell is harmless (echo, cat of heredocs, loops over fixed words) because the oracle runs it.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.runbook_commands import parse_runbook, split_commands
from harness.shell_syntax import Verdict, command_end, verdict

SLOW_OK = settings(max_examples=40, derandomize=True, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

word = st.sampled_from(["a", "b c", "done", "fi", "EOF", "$HOME", "x=1", "#not-a-comment", "it's", '"q"', "}", ")"])
plain = st.sampled_from(["echo one", 'echo "two $HOME"', "x=3", "true && echo ok", "echo 'a b' | cat",
                         "echo a; echo b", "echo done", ": fi", "echo a # it's a comment"])


def _quoted(w: str) -> str:
    return "'" + w.replace("'", "'\\''") + "'"


@st.composite
def heredoc(draw: st.DrawFn) -> list[str]:
    quote, dash = draw(st.sampled_from(["", "'"])), draw(st.booleans())
    body = draw(st.lists(st.sampled_from(["line one", "  indented", "done", "fi", "$HOME", "a \\", "'", '"', "",
                                          "EOF2", "`x`" if quote else "plain"]), max_size=4))
    end = "\tEOF" if dash else "EOF"
    return [f"cat <<{'-' if dash else ''}{quote}EOF{quote}", *body, end]


@st.composite
def block_of(draw: st.DrawFn, inner: st.SearchStrategy[list[str]]) -> list[str]:
    body = [line for piece in draw(st.lists(inner, min_size=1, max_size=2)) for line in piece]
    kind = draw(st.sampled_from(["for", "if", "while", "case", "func", "brace", "subst"]))
    head, tail = {
        "for": (["for i in 1 2; do"], ["done"]),
        "if": (["if true", "then"], ["else", "  echo never", "fi"]),
        "while": (["n=0", "while [ $n -lt 2 ]; do", "n=$((n+1))"], ["done"]),
        "case": (["case x in", "  x)"], ["  ;;", "  *) echo other;;", "esac"]),
        "func": (["f() {"], ["}"]),
        "brace": (["{"], ["} | cat"]),
        "subst": (["v=$("], [")"]),
    }[kind]
    return [*head, *("  " + line for line in body), *tail]


@st.composite
def spanning(draw: st.DrawFn) -> list[str]:
    w1, w2 = draw(word), draw(word)
    return draw(st.sampled_from([
        [f"echo {_quoted(w1)} \\", f"  {_quoted(w2)}"],          # continuation
        [f"echo \"{w1.replace(chr(34), '')}", f"{w2.replace(chr(34), '')}\""],  # quoted newline
        ["echo 'first", "second'"],
        ["echo a |", "  cat"],
        ["true &&", "  echo and"],
        [f"echo {_quoted(w1)} # comment \\", "echo after-comment"],  # a comment's backslash continues nothing
    ]))


simple = plain.map(lambda c: [c])
piece = st.recursive(simple | heredoc() | spanning(), lambda inner: block_of(inner), max_leaves=4)
filler = st.sampled_from([[""], ["# a comment"], ["  # indented comment"], []])


@st.composite
def shell_block(draw: st.DrawFn) -> list[str]:
    lines: list[str] = []
    for p in draw(st.lists(piece, min_size=1, max_size=5)):
        lines += draw(filler) + p
    return lines


def bash_commands(lines: list[str], tmp: Path) -> list[tuple[str, int]]:
    """(command, 1-based line) as an interactive bash reads the lines."""
    proc = subprocess.run(["bash", "--noprofile", "--norc", "--noediting", "+H", "-i"],
                          input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=30, cwd=tmp,
                          env={"PATH": "/usr/bin:/bin", "PS1": "\x01", "PS2": "\x02", "HOME": str(tmp)})
    prompts = [c for c in proc.stderr if c in "\x01\x02"][:len(lines)]
    assert len(prompts) == len(lines), proc.stderr
    out: list[tuple[str, int]] = []
    for i, (line, prompt) in enumerate(zip(lines, prompts)):
        if prompt == "\x02" and out and out[-1][1] != 0:
            out[-1] = (out[-1][0] + "\n" + line, out[-1][1])
        elif prompt == "\x01":
            skip = not line.strip() or line.strip().startswith("#")
            out.append((line.strip(), 0 if skip else i + 1))
    return [(c, n) for c, n in out if n]


@SLOW_OK
@given(shell_block())
def test_the_split_agrees_with_bash(lines: list[str]) -> None:
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        expected = bash_commands(lines, Path(tmp))
    assert split_commands("\n".join(lines) + "\n", 1) == expected


@SLOW_OK
@given(shell_block(), st.integers(min_value=0, max_value=3))
def test_line_numbers_in_a_runbook_are_the_commands_first_lines(lines: list[str], prose: int) -> None:
    md = "# Runbook\n\n## Rollback\n\n" + "text\n\n" * prose + "```sh\n" + "\n".join(lines) + "\n```\n"
    file_lines = md.split("\n")
    for step in parse_runbook(md, "Rollback"):
        assert file_lines[step.line - 1].strip() == step.command.split("\n")[0].strip()
        n = step.command.count("\n") + 1
        assert "\n".join(file_lines[step.line - 1:step.line - 1 + n]).strip() == step.command.strip()


def test_the_issues_examples() -> None:
    block = ('kubectl -n "$NAMESPACE" apply -f - <<YAML\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: flags}\n'
             'data: {new_checkout: "false"}\nYAML\n'
             'for d in api worker; do kubectl -n "$NAMESPACE" rollout status deployment/$d --timeout=120s; done\n')
    cmds = split_commands(block, 20)
    assert [n for _, n in cmds] == [20, 26] and cmds[0][0].endswith("\nYAML")
    assert split_commands('NS=production\nkubectl -n "$NS" rollout undo deployment/myapp\n', 5) == [
        ("NS=production", 5), ('kubectl -n "$NS" rollout undo deployment/myapp', 6)]


def test_console_transcripts_keep_prompts_and_continuations() -> None:
    block = "$ cat <<EOF\n> one\n>\n> EOF\none\n\n$ for i in 1 2; do\n>   echo $i\n> done\n1\n2\n# echo root-prompt\n"
    assert split_commands(block, 1, prompted=True) == [("cat <<EOF\none\n\nEOF", 1),
                                                       ("for i in 1 2; do\n  echo $i\ndone", 7)]


def test_verdicts() -> None:
    assert verdict("echo a") is Verdict.COMPLETE
    assert verdict("cat <<EOF\nx") is Verdict.INCOMPLETE      # bash only warns: here-document delimited by EOF
    assert verdict("echo a \\") is Verdict.INCOMPLETE         # bash accepts it at the end of input
    assert verdict("echo a # c \\") is Verdict.COMPLETE       # a comment continues nothing
    assert verdict("done") is Verdict.BROKEN
    assert command_end(["done", "echo next"], 0) == 1          # broken: run (and fail) as written
    assert command_end(["echo 'open", "echo next"], 0) == 2    # open at the block's end: the rest of it


def test_ten_thousand_plain_lines_need_no_bash() -> None:
    lines = [f'kubectl -n "$NS" rollout status deployment/app-{i} --timeout=120s | tee -a "${{LOG}}"'
             for i in range(10_000)]
    t0 = time.monotonic()
    assert len(split_commands("\n".join(lines), 1)) == 10_000
    assert time.monotonic() - t0 < 2
