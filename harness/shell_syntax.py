"""Where bash itself ends a command: the runbook's lines cut into complete commands by bash's own parser.

A person pastes a block into a terminal and bash decides where each command
ends: a heredoc runs to its delimiter, a `for` loop to its `done`, a quoted
newline or a `\\` continuation joins the next line. `command_lines` asks bash
the same question with `bash -n` (parse, never run) on growing chunks of
lines: the first chunk bash accepts is the command.

Cost: `bash -n` is a process (~3 ms). Most runbook lines are plain commands
that bash cannot continue onto the next line (no quote left open, no
heredoc, no reserved word, no trailing `|`/`&&`/`\\`); `_plain` recognises
them without bash. Verdicts are cached by chunk text.
"""

from __future__ import annotations

import enum
import functools
import os
import re
import subprocess
from collections.abc import Sequence

BASH = "bash"


class Verdict(enum.Enum):
    COMPLETE = "complete"      # bash would end the command at the chunk's last line
    INCOMPLETE = "incomplete"  # bash would read on (open quote, heredoc, loop, `|` at the end, `\\`)
    BROKEN = "broken"          # a syntax error that more lines cannot repair (a stray `done`)


# ── the cheap pre-check: lines bash can never continue ───────────────────────
_PARAM = r"\$(?:[\w@*#?$!-]|\{\w+\})"            # $NS, ${NS}, $1, $?: nothing that can open a construct
_OUTSIDE = r"[^'\"`\\(){}<$\n]|<(?!<)"            # no quote, backslash, paren, brace, heredoc, `$(`/`$'`
_SINGLE = r"'[^']*'"
_DOUBLE = r'"(?:[^"\\`$]|' + _PARAM + r')*"'
_PLAIN = re.compile(rf"(?:{_OUTSIDE}|{_PARAM}|{_SINGLE}|{_DOUBLE})*")
_RESERVED = re.compile(r"(?<![\w/.-])(?:if|then|else|elif|fi|case|esac|for|select|while|until|do|done|function|"
                       r"coproc|\[\[|\]\])(?![\w/.-])")
_OPEN_END = re.compile(r"(?:\||&&|\|&)[ \t]*$")  # a pipe or an and-list waiting for its right side


def _plain(line: str) -> bool:
    """True when bash surely ends a command that starts with `line` at the end of it (no bash call needed).
    False only means "ask bash"."""
    return (_PLAIN.fullmatch(line) is not None and _RESERVED.search(line) is None
            and _OPEN_END.search(line) is None)


# ── bash's own verdict on a chunk ────────────────────────────────────────────
# Messages of bash (LC_ALL=C) when the input ends inside a command; the heredoc one is only a warning.
_AT_EOF = re.compile(r"unexpected end of file|unexpected EOF while looking for matching|"
                     r"here-document at line \d+ delimited by end-of-file")


def _parse(text: str) -> subprocess.CompletedProcess[bytes]:
    # extglob on: `!(x)` patterns parse once a runbook has run `shopt -s extglob`; enabling it only lets more parse.
    return subprocess.run([BASH, "--noprofile", "--norc", "-O", "extglob", "-n"], input=text.encode(),
                          capture_output=True, env={"LC_ALL": "C", "PATH": os.defpath}, timeout=30, check=False)


@functools.lru_cache(maxsize=8192)
def verdict(chunk: str) -> Verdict:
    """bash's verdict on `chunk` (lines joined with \\n) read as the start of a script."""
    text = chunk.replace("\0", "")  # bash drops NUL bytes from its input too
    proc = _parse(text + "\n")
    if _AT_EOF.search(proc.stderr.decode(errors="replace")):
        return Verdict.INCOMPLETE
    if proc.returncode != 0:
        return Verdict.BROKEN
    if text.rstrip(" \t").endswith("\\") and _continues(text):
        return Verdict.INCOMPLETE
    return Verdict.COMPLETE


def _continues(text: str) -> bool:
    """Whether a trailing backslash joins the next line. At the end of the input bash drops `\\`-newline and
    accepts the chunk, so ask with a next line `;`: joined (`echo a ;`) it parses, on its own it is an error.
    A backslash in a comment or a quoted heredoc is not a continuation; bash's lexer knows which is which."""
    return _parse(text + "\n;\n").returncode == 0


# ── cutting lines into commands ──────────────────────────────────────────────
def command_end(lines: Sequence[str], start: int) -> int:
    """The index after the last line of the command that starts at `lines[start]` (its leading blanks and any
    prompt already removed). An incomplete command at the end of `lines` runs to the end: run as written,
    bash then reports what is missing at the command's first line."""
    if _plain(lines[start]):
        return start + 1
    for end in range(start + 1, len(lines) + 1):
        if verdict("\n".join(lines[start:end])) is not Verdict.INCOMPLETE:
            return end
    return len(lines)
