"""Runbook parsing: the team's runbook.md read into the commands a rehearsal runs.

The runbook is parsed with a real Markdown parser (markdown-it-py); the fenced
shell blocks of one section are the steps, cut into commands where bash itself
ends them (harness.shell_syntax). harness.shell_session runs them in order in
one shell session, each with a timeout and captured output.

This is the one reader of runbook text: `parse_runbook` (one section, what
the rehearsal runs), `all_commands` (every shell block, what preflight
searches for backups) and `split_commands` (one block) share its rules.
"""

from __future__ import annotations

import functools
import os
import re
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.token import Token

from harness.shell_syntax import command_end

SHELL_LANGS = {"sh", "bash", "shell", "console", "zsh"}
# Limits that keep validation fast and a mistake (a pasted log, a generated file) obvious. markdown-it is pure
# Python: 100 KB of dense nested lists and quotes (the worst case measured) take ~0.6 s to parse; real runbooks
# are a few KB.
MAX_RUNBOOK_BYTES = 100_000
MAX_SHELL_BLOCKS = 10_000


class RunbookError(Exception):
    """The runbook or the requested section cannot be used; `fix` says what to do, when that is specific."""

    def __init__(self, message: str, fix: str = "") -> None:
        super().__init__(message)
        self.fix = fix


class SectionNotFound(RunbookError):
    """The runbook has no heading of the requested section (the runbook itself reads)."""


def read_runbook(path: Path) -> str:
    """The runbook's text; RunbookError (not OSError/UnicodeError) when it is too big, not a file or not UTF-8."""
    try:
        if not path.is_file():
            raise RunbookError(f"{path} is not a file", "point runbook.file at the runbook's Markdown file")
        size = path.stat().st_size
        if size > MAX_RUNBOOK_BYTES:
            raise RunbookError(f"{path.name} is {size:,} bytes, more than the limit of {MAX_RUNBOOK_BYTES:,}",
                               "keep the runbook to the procedure; move logs and generated text elsewhere")
        data = path.read_bytes()
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise RunbookError(f"cannot read {path}: {exc}", "correct runbook.file or the file's permissions") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise RunbookError(f"{path.name} is not UTF-8 text (byte {exc.start}, line {line})",
                           "save the runbook as UTF-8") from None


@dataclass(frozen=True)
class Step:
    """One command of the runbook, as written: as many lines as bash reads for it."""

    index: int
    command: str
    line: int  # 1-based line in runbook.md where the command starts


@dataclass(frozen=True)
class StepResult:
    step: Step
    exit_code: int | None  # None: timed out, or ended while waiting for input
    duration_s: float
    output: str
    timed_out: bool
    waiting_for_input: bool = False  # it read stdin and no declared answer fitted: ended within seconds
    ended_session: bool = False      # it ended the shell (`exit`, `exec`, `set -e`): later commands cannot run

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not (self.timed_out or self.waiting_for_input or self.ended_session)


def _headings(tokens: Sequence[Token]) -> list[tuple[int, int, str]]:
    """(token index, level, text) of each heading."""
    out: list[tuple[int, int, str]] = []
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open":
            out.append((i, int(tok.tag[1]), tokens[i + 1].content.strip()))
    return out


# What bash treats as blanks around a command (str.strip() would also eat Unicode separators).
_BLANKS = " \t\r"
_PROMPT = "$ "
# A console transcript's continuation line: bash's PS2 prompt `> ` (or a bare `>` for an empty line).
_CONTINUATION = re.compile(r"> ?")


def split_commands(block: str, first_line: int, prompted: bool = False) -> list[tuple[str, int]]:
    """Split a code block into (command, line) pairs where bash itself would end each command.

    A command is as many lines as bash reads for it (heredocs, `if`/`for`/`while`/`case` blocks,
    functions, quoted newlines, `\\` continuations: harness.shell_syntax asks bash's parser); its text
    is those lines as written, and its line is its first line (`first_line` is the 1-based line of the
    block's first line in the file). Blank lines and comments between commands are skipped, a leading
    `$ ` prompt is removed. In a `console` block (prompted) a command starts at a `$ ` line and may go on
    over `> ` continuation lines; every other line is sample output, as in a terminal transcript.
    """
    return list(_split(block, first_line, prompted))


@functools.lru_cache(maxsize=16384)  # validation, preflight and the runbook phase read the same blocks
def _split(block: str, first_line: int, prompted: bool) -> tuple[tuple[str, int], ...]:
    out: list[tuple[str, int]] = []
    for lines, numbers in _segments(block, first_line, prompted):
        out.extend(_commands(lines, numbers))
    return tuple(out)


def _segments(block: str, first_line: int, prompted: bool) -> list[tuple[list[str], list[int]]]:
    """The block's runs of shell input with their file line numbers: the whole block, or in a console
    transcript each `$ ` line with its `> ` continuation lines."""
    # bash ends a line at \n only: str.splitlines() would also cut at U+2028, \x0b, \x0c, ... inside quotes.
    raw = block.split("\n")
    if raw and raw[-1] == "":
        raw.pop()
    numbered = list(zip(raw, range(first_line, first_line + len(raw))))
    if not prompted:
        return [([t for t, _ in numbered], [n for _, n in numbered])]
    segments: list[tuple[list[str], list[int]]] = []
    for text, number in numbered:
        stripped = text.strip(_BLANKS)
        if stripped.startswith(_PROMPT):
            segments.append(([stripped], [number]))
        elif segments and _CONTINUATION.match(text) and segments[-1][1][-1] == number - 1:
            segments[-1][0].append(_CONTINUATION.sub("", text, count=1))
            segments[-1][1].append(number)
    return segments


def _commands(lines: list[str], numbers: list[int]) -> list[tuple[str, int]]:
    """Commands of one run of shell input, cut where bash ends them."""
    out: list[tuple[str, int]] = []
    work = list(lines)
    i = 0
    while i < len(work):
        stripped = work[i].strip(_BLANKS)
        if not stripped or stripped.startswith("#"):
            i += 1
            continue
        work[i] = work[i].lstrip(_BLANKS).removeprefix(_PROMPT)  # trailing blanks may be an escaped space
        end = command_end(work, i)
        out.append((_tidy("\n".join(work[i:end])), numbers[i]))
        i = end
    return out


def _tidy(command: str) -> str:
    """Trailing blanks and blank lines (of a command left open at the block's end) removed, unless they
    follow a backslash (`echo a\\ ` is an escaped space)."""
    trimmed = command.rstrip(_BLANKS + "\n")
    return command if trimmed.endswith("\\") else trimmed


def _fence_run(markup: str) -> str:
    """Regex of a line's start up to a run of the fence's character at least as long as `markup`."""
    return r"[ \t>]*" + re.escape(markup[0]) + "{" + str(len(markup)) + ",}"


def _closing_fence(line: str, markup: str) -> bool:
    """Whether `line` closes a fence opened with `markup` (container prefixes such as `>` and indentation allowed)."""
    return re.fullmatch(_fence_run(markup) + r"[ \t]*", line) is not None


def _opening_fence(line: str, markup: str) -> bool:
    """Whether `line` opens a fence with an info string (```sh) that `markup` would also close: inside a block it
    means the block was never closed and has swallowed the next one's opening line."""
    return re.fullmatch(_fence_run(markup) + r"[ \t]*[^\s`~].*", line) is not None


def _unclosed(tok: Token, lines: list[str]) -> int | None:
    """The 1-based line where an unclosed fence opens, or None when it is closed where its author meant."""
    start, end = tok.map  # type: ignore[misc]
    last = lines[end - 1] if end - 1 < len(lines) else ""
    if end - start < 2 or not _closing_fence(last, tok.markup):
        return start + 1
    if any(_opening_fence(line, tok.markup) for line in lines[start + 1:end - 1]):
        return start + 1
    return None


@functools.lru_cache(maxsize=8)  # validation, then preflight's two readings of the same text: parse once
def _tokens(markdown: str) -> list[Token]:
    """Parsed runbook; RunbookError for an unclosed fence or too many shell blocks.

    CommonMark lets an unclosed fence run to the end of its container (or to
    the next block's closing fence), so the next sections' commands would
    silently join the section that opened it.
    """
    tokens = MarkdownIt("commonmark").parse(markdown)
    lines = markdown.replace("\r\n", "\n").replace("\r", "\n").split("\n")  # markdown-it's own line numbering
    fences = [t for t in tokens if t.type == "fence" and t.map]
    for tok in fences:
        line = _unclosed(tok, lines)
        if line is not None:
            raise RunbookError(f"line {line}: the code fence {tok.markup}{tok.info.strip()} opened here is never "
                               "closed, so what follows it would be read as its content",
                               f"close the block with a line {tok.markup} where its commands end")
    if len(fences) > MAX_SHELL_BLOCKS:
        raise RunbookError(f"the runbook has {len(fences):,} code blocks, more than the limit of {MAX_SHELL_BLOCKS:,}",
                           "split the procedure into fewer, longer blocks")
    return tokens


def _shell_steps(tokens: Sequence[Token]) -> list[Step]:
    """Steps of the shell fences among `tokens`, numbered from 1 in order."""
    fences = [(tok.content, (tok.map[0] + 2) if tok.map else 0,  # +1 for 1-based, +1 for the fence line
               (tok.info.strip().split() or [""])[0] == "console")
              for tok in tokens if tok.type == "fence" and (tok.info.strip().split() or [""])[0] in SHELL_LANGS]
    # Cutting a block may ask bash (a process each time): blocks are independent, so ask in parallel.
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) * 2)) as pool:
        split = list(pool.map(lambda f: split_commands(*f), fences)) if len(fences) > 1 else \
            [split_commands(*f) for f in fences]
    commands = [c for block in split for c in block]
    return [Step(index=i, command=cmd, line=line) for i, (cmd, line) in enumerate(commands, 1)]


def parse_runbook(markdown: str, section: str) -> list[Step]:
    """Steps of the section whose heading equals `section` (case-insensitive), in order."""
    tokens = _tokens(markdown)
    heads = _headings(tokens)
    match = [h for h in heads if h[2].lower() == section.strip().lower()]
    if not match:
        names = ", ".join(f"'{h[2]}'" for h in heads) or "none"
        raise SectionNotFound(f"runbook has no section '{section}' (headings: {names})")
    start, level, _ = match[0]
    end = next((i for i, lvl, _ in heads if i > start and lvl <= level), len(tokens))
    return _shell_steps(tokens[start:end])


def all_commands(markdown: str) -> list[Step]:
    """Every command of every shell block of the runbook, in any section (or none), numbered in file order."""
    return _shell_steps(_tokens(markdown))
