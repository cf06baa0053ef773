"""shellcheck on the commands of the rehearsed section, its findings mapped back to runbook lines.

The steps the rehearsal runs (skipped ones left out, placeholders bound) are
joined into one bash script, in order, as one shell session runs them; each
script line maps back to the runbook line it came from. shellcheck is Debian's
package (`make env` installs it); without it the caller says so, never crashes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from harness.runbook_commands import Step

# Codes that are noise for a runbook, each with its reason (docs/preflight.md#shellcheck shows this table).
EXCLUDED: dict[str, str] = {
    "SC2034": "a variable assigned but never used: a runbook sets variables for the operator, or for a later "
              "block they run by hand",
    "SC2154": "a variable referenced but not assigned: the runbook environment defines NAMESPACE, DATABASE_URL "
              "and the scenario's variables; the `placeholders` check reports a variable that nothing sets, "
              "knowing that environment",
    "SC1090": "a `source` of a path shellcheck cannot resolve: runbooks source files of the operator's machine",
    "SC1091": "a sourced file shellcheck cannot read: it is not part of the scenario",
    "SC2164": "`cd` without `|| exit`: a failing command stops the runbook (and the rehearsal) anyway",
}
# shellcheck's levels: error and warning are kept (a command that will, or may, not do what it says); info and
# style are not reported (quoting and idiom advice, not a prediction that the rollback breaks).
LEVELS = {"error": "failure", "warning": "warning"}
TIMEOUT_S = 30


class ShellcheckUnavailable(Exception):
    """shellcheck is missing, or could not lint (timeout, crash, unreadable output)."""


@dataclass(frozen=True)
class Lint:
    """One shellcheck comment on a runbook step."""

    step: Step
    line: int  # runbook line
    code: str  # SC2086
    level: str  # failure | warning
    message: str


def script(steps: Sequence[Step]) -> tuple[str, list[tuple[int, Step]]]:
    """The steps as one script, and for each of its lines (1-based) the step and runbook line it came from."""
    lines: list[str] = []
    origin: list[tuple[int, Step]] = []
    for step in steps:
        for k, text in enumerate(step.command.split("\n")):
            lines.append(text)
            origin.append((step.line + k, step))
    return "\n".join(lines) + "\n", origin


def binary() -> str | None:
    return shutil.which("shellcheck")


def lint(steps: Sequence[Step]) -> list[Lint]:
    """shellcheck's error and warning comments on the steps, at their runbook lines, excluded codes left out."""
    exe = binary()
    if exe is None:
        raise ShellcheckUnavailable("shellcheck is not installed")
    if not steps:
        return []
    text, origin = script(steps)
    cmd = [exe, "--format=json1", "--shell=bash", "--severity=warning", "--norc",
           "--exclude=" + ",".join(c.removeprefix("SC") for c in EXCLUDED), "-"]
    try:
        proc = subprocess.run(cmd, input=text, capture_output=True, text=True, timeout=TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ShellcheckUnavailable(f"shellcheck could not run: {exc}") from None
    if proc.returncode not in (0, 1):  # 1: comments found; 2-4: shellcheck itself failed
        raise ShellcheckUnavailable(f"shellcheck failed (exit {proc.returncode}): {proc.stderr.strip()[:200]}")
    try:
        comments = json.loads(proc.stdout or "{}").get("comments", [])
    except (ValueError, AttributeError):
        raise ShellcheckUnavailable("shellcheck's output is not the JSON it should be") from None
    out: list[Lint] = []
    for c in comments:
        level = LEVELS.get(str(c.get("level")))
        n = int(c.get("line", 0))
        if level is None or not 1 <= n <= len(origin):
            continue
        line, step = origin[n - 1]
        out.append(Lint(step, line, f"SC{c.get('code')}", level, str(c.get("message", ""))))
    return out
