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


@dataclass(frozen=True)
class MarkerProblem:
    """A `rehearse:` marker that cannot be used: its runbook line, what is wrong, and the fix."""

    line: int
    message: str
    fix: str


class MarkerError(RunbookError):
    """The section's `rehearse:` markers are wrong; `problems` lists every one."""

    def __init__(self, problems: list[MarkerProblem]) -> None:
        super().__init__("; ".join(f"line {p.line}: {p.message}" for p in problems), problems[0].fix)
        self.problems = problems


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
    skip: str | None = None  # the reason of a `rehearse: skip` marker: the rehearsal records the step, never runs it


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


# ── skip markers ─────────────────────────────────────────────────────────────
# `<!-- rehearse: skip <reason> -->` before a fenced block skips the block; `# rehearse: skip <reason>` on the
# lines right before a command inside a shell block skips that command (docs/scenario-format.md#skipped-steps).
_HTML_COMMENT = re.compile(r"<!--(.*?)-->", re.S)  # applied to markdown-it's html tokens, not to the raw file
_DIRECTIVE = re.compile(r"\s*rehearse\s*:\s*(\S*)\s*(.*?)\s*", re.S | re.I)
_LINE_MARKER = re.compile(r"[ \t]*#[ \t]*(rehearse[ \t]*:.*)", re.I)  # in a console block too: no `$ `
SKIP_FIX = "say why the step must not run in a rehearsal, e.g. `<!-- rehearse: skip paging the on-call -->`"


def _directive(text: str, line: int, problems: list[MarkerProblem]) -> str | None:
    """The skip reason of one `rehearse:` directive (None when `text` is none, or a wrong one: then a problem)."""
    m = _DIRECTIVE.fullmatch(text)
    if m is None:
        return None
    verb, reason = m.group(1).lower(), " ".join(m.group(2).split())
    if verb != "skip":
        problems.append(MarkerProblem(line, f"unknown marker `rehearse: {verb}`",
                                      "the one marker is `rehearse: skip <reason>`; a plain comment must not start "
                                      "with `rehearse:`"))
    elif not reason:
        problems.append(MarkerProblem(line, "`rehearse: skip` without a reason: a runbook must say why a step does "
                                            "not run in the rehearsal", SKIP_FIX))
    else:
        return reason
    return None


def _html_marker(tok: Token, problems: list[MarkerProblem]) -> str | None:
    """The skip reason an html_block, or a paragraph's html_inline comments, carry."""
    line = (tok.map[0] + 1) if tok.map else 0
    htmls = [tok.content] if tok.type == "html_block" else [c.content for c in tok.children or []
                                                              if c.type == "html_inline"]
    reasons = [r for html in htmls for m in _HTML_COMMENT.finditer(html)
               if (r := _directive(m.group(1), line, problems)) is not None]
    return reasons[0] if reasons else None


def _marker_lines(lines: list[str], stop: int, end: int) -> list[int]:
    """Offsets of the comment and blank lines right before offset `end` (not before `stop`)."""
    found: list[int] = []
    k = end - 1
    while k > stop:
        text = lines[k].strip(_BLANKS)
        if text and not text.startswith("#"):
            break
        found.append(k)
        k -= 1
    return found


def _line_skips(tok: Token, first_line: int, starts: list[int],
                problems: list[MarkerProblem]) -> dict[int, str]:
    """Skip reasons by command line for the `# rehearse: skip` lines of one shell block; a marker that skips
    no command (at the block's end, or inside a multi-line command) is a problem."""
    lines = tok.content.split("\n")
    offsets = [line - first_line for line in starts]
    skips: dict[int, str] = {}
    used: set[int] = set()
    for n, end in enumerate([*offsets, len(lines)]):
        stop = offsets[n - 1] if n else -1
        for k in sorted(_marker_lines(lines, stop, end)):
            m = _LINE_MARKER.fullmatch(lines[k])
            if m is None:
                continue
            used.add(k)
            reason = _directive(m.group(1), first_line + k, problems)
            if reason is None:
                continue
            if n == len(offsets):
                problems.append(MarkerProblem(first_line + k, "`rehearse: skip` is followed by no command of its "
                                                              "block", "put the marker right before the command"))
            else:
                skips.setdefault(starts[n], reason)
    for k, text in enumerate(lines):
        if k not in used and _LINE_MARKER.fullmatch(text):
            problems.append(MarkerProblem(first_line + k, "a `rehearse:` marker inside a multi-line command cannot "
                                                          "skip part of it", "put the marker before the whole command"))
    return skips


def _unfollowed(pending: tuple[int, str] | None, problems: list[MarkerProblem]) -> None:
    """A block marker whose next block is not a shell block skips nothing: a problem."""
    if pending is not None:
        problems.append(MarkerProblem(pending[0], "`rehearse: skip` is not followed by a shell code block",
                                      "put the marker on the line right before the ``` of the block"))


def _is_shell_fence(tok: Token) -> bool:
    return tok.type == "fence" and (tok.info.strip().split() or [""])[0] in SHELL_LANGS


def _split_fences(tokens: Sequence[Token]) -> dict[int, list[tuple[str, int]]]:
    """(command, line) pairs of each shell fence, by token index. Cutting a block may ask bash (a process
    each time): blocks are independent, so they are cut in parallel."""
    fences = [(i, tok.content, (tok.map[0] + 2) if tok.map else 0,  # +1 for 1-based, +1 for the fence line
               (tok.info.strip().split() or [""])[0] == "console")
              for i, tok in enumerate(tokens) if _is_shell_fence(tok)]
    if len(fences) <= 1:
        return {i: split_commands(content, line, console) for i, content, line, console in fences}
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) * 2)) as pool:
        cut = pool.map(lambda f: split_commands(f[1], f[2], f[3]), fences)
        return {f[0]: commands for f, commands in zip(fences, cut)}


def _shell_steps(tokens: Sequence[Token], strict: bool = True) -> list[Step]:
    """Steps of the shell fences among `tokens`, numbered from 1 in order, with their skip markers.

    strict: a wrong marker raises MarkerError (listing every one); otherwise it skips nothing."""
    split = _split_fences(tokens)
    steps: list[Step] = []
    problems: list[MarkerProblem] = []
    pending: tuple[int, str] | None = None  # (line, reason) of a block marker waiting for its fence
    for index, tok in enumerate(tokens):
        if tok.type.endswith("_close"):
            continue  # a marker's paragraph ends: the block after it is the next opening token
        reason = _html_marker(tok, problems) if tok.type in ("html_block", "inline") else None
        if reason is not None:
            _unfollowed(pending, problems)
            pending = ((tok.map[0] + 1) if tok.map else 0, reason)
            continue
        if tok.type == "inline":
            continue  # the text of a block whose opening token was already seen
        if not _is_shell_fence(tok):
            _unfollowed(pending, problems)
            pending = None
            continue
        first_line = (tok.map[0] + 2) if tok.map else 0  # +1 for 1-based, +1 for the fence line
        commands = split[index]
        skips = _line_skips(tok, first_line, [line for _, line in commands], problems)
        for cmd, line in commands:
            reason = pending[1] if pending is not None else skips.get(line)
            steps.append(Step(index=len(steps) + 1, command=cmd, line=line, skip=reason))
        pending = None
    _unfollowed(pending, problems)
    if problems and strict:
        raise MarkerError(problems)
    return steps


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
    """Every command of every shell block of the runbook, in any section (or none), numbered in file order.
    Markers are only checked in the rehearsed section (parse_runbook): a wrong one elsewhere skips nothing."""
    return _shell_steps(_tokens(markdown), strict=False)
