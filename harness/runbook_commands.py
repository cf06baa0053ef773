"""Runbook parsing and literal execution.

The team's runbook.md is parsed with a real Markdown parser (markdown-it-py);
the fenced shell blocks of one section are the steps, run in order in a
controlled environment, each with a timeout and captured output.

This is the one reader of runbook text: `parse_runbook` (one section, what
the rehearsal runs), `all_commands` (every shell block, what preflight
searches for backups) and `split_commands` (one block) share its rules.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.token import Token

SHELL_LANGS = {"sh", "bash", "shell", "console", "zsh"}


class RunbookError(Exception):
    """The runbook or the requested section cannot be used."""


@dataclass(frozen=True)
class Step:
    """One command of the runbook, as written (continuation lines joined)."""

    index: int
    command: str
    line: int  # 1-based line in runbook.md where the command starts


@dataclass(frozen=True)
class StepResult:
    step: Step
    exit_code: int | None  # None: timed out
    duration_s: float
    output: str
    timed_out: bool

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


def _headings(tokens: Sequence[Token]) -> list[tuple[int, int, str]]:
    """(token index, level, text) of each heading."""
    out: list[tuple[int, int, str]] = []
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open":
            out.append((i, int(tok.tag[1]), tokens[i + 1].content.strip()))
    return out


def split_commands(block: str, first_line: int, prompted: bool = False) -> list[tuple[str, int]]:
    """Split a code block into (command, line) pairs: skip comments and blank lines, join `\\` continuations,
    strip `$ ` prompts.

    `first_line` is the 1-based line of the block's first line in the file.
    In a `console` block (prompted) only `$ ` lines are commands; the rest is
    sample output, as in a terminal transcript.
    """
    out: list[tuple[str, int]] = []
    pending: list[str] = []
    start = first_line
    for offset, raw in enumerate(block.splitlines()):
        line = raw.rstrip()
        if not pending:
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            if prompted and not stripped.startswith("$ "):
                continue
            start = first_line + offset
            line = stripped[2:] if stripped.startswith("$ ") else stripped
        if line.endswith("\\"):
            pending.append(line[:-1].rstrip())
            continue
        pending.append(line.strip())
        out.append((" ".join(p for p in pending if p), start))
        pending = []
    if pending:
        out.append((" ".join(pending), start))
    return out


def _shell_steps(tokens: Sequence[Token]) -> list[Step]:
    """Steps of the shell fences among `tokens`, numbered from 1 in order."""
    steps: list[Step] = []
    for tok in tokens:
        lang = (tok.info.strip().split() or [""])[0]
        if tok.type != "fence" or lang not in SHELL_LANGS:
            continue
        first_line = (tok.map[0] + 2) if tok.map else 0  # +1 for 1-based, +1 for the fence line
        for cmd, line in split_commands(tok.content, first_line, prompted=lang == "console"):
            steps.append(Step(index=len(steps) + 1, command=cmd, line=line))
    return steps


def parse_runbook(markdown: str, section: str) -> list[Step]:
    """Steps of the section whose heading equals `section` (case-insensitive), in order."""
    tokens = MarkdownIt("commonmark").parse(markdown)
    heads = _headings(tokens)
    match = [h for h in heads if h[2].lower() == section.strip().lower()]
    if not match:
        names = ", ".join(f"'{h[2]}'" for h in heads) or "none"
        raise RunbookError(f"runbook has no section '{section}' (headings: {names})")
    start, level, _ = match[0]
    end = next((i for i, lvl, _ in heads if i > start and lvl <= level), len(tokens))
    return _shell_steps(tokens[start:end])


def all_commands(markdown: str) -> list[Step]:
    """Every command of every shell block of the runbook, in any section (or none), numbered in file order."""
    return _shell_steps(MarkdownIt("commonmark").parse(markdown))


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """A hanging step may have children (kubectl, docker): end the whole group."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=5)
            return
        except subprocess.TimeoutExpired:
            continue


def run_step(step: Step, env: Mapping[str, str], cwd: Path, timeout_s: float) -> StepResult:
    """Run one command with bash (pipefail), its own process group and a timeout."""
    t0 = time.monotonic()
    proc = subprocess.Popen(
        ["bash", "-o", "pipefail", "-c", step.command],
        cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout_s)
        return StepResult(step, proc.returncode, time.monotonic() - t0, out.decode(errors="replace"), False)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out, _ = proc.communicate()
        return StepResult(step, None, time.monotonic() - t0, (out or b"").decode(errors="replace"), True)
    except BaseException:
        _kill_group(proc)  # Ctrl-C: never leave a runbook command running
        raise


def run_steps(
    steps: list[Step], env: Mapping[str, str], cwd: Path, timeout_s: float,
    on_step: Callable[[StepResult], None] | None = None, stop_on_failure: bool = True,
) -> list[StepResult]:
    """Run steps in order; like a person following the runbook, stop at the first failure."""
    results: list[StepResult] = []
    for step in steps:
        res = run_step(step, env, cwd, timeout_s)
        results.append(res)
        if on_step:
            on_step(res)
        if not res.ok and stop_on_failure:
            break
    return results
