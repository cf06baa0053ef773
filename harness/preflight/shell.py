"""Runbook commands read as shell, without running them: simple commands, kubectl calls, backup steps.

The commands come from harness.runbook_commands (the one parser of runbook
Markdown); here each is split with `shlex` into simple commands, and the
kubectl ones into verb, flags and the objects they name.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from harness.runbook_commands import Step
from harness.scenario.models import Scenario

_OPERATORS = {"|", "||", "&&", ";", "&", "(", ")", ";;", "|&"}
_KIND_ALIASES = {
    "deployment": "deployment", "deployments": "deployment", "deploy": "deployment",
    "statefulset": "statefulset", "statefulsets": "statefulset", "sts": "statefulset",
    "daemonset": "daemonset", "daemonsets": "daemonset", "ds": "daemonset",
    "service": "service", "services": "service", "svc": "service",
}
# kubectl flags that take a separate value (`-n ns`); `--flag=value` needs no entry.
_VALUE_FLAGS = {
    "-n", "--namespace", "-l", "--selector", "-o", "--output", "-f", "--filename", "-c", "--container",
    "--context", "--kubeconfig", "--cluster", "--user", "-k", "--kustomize", "--timeout", "--to-revision",
    "--replicas", "--field-selector", "--type", "-p", "--patch", "--image", "--revision", "-L", "--label-columns",
    "--sort-by", "--template", "--for", "--server", "-s", "--token", "--as", "--tail", "--since",
}


_HEREDOC = re.compile(r"<<-?[ \t]*(['\"]?)([^\s'\"<>|&;()]+)\1")


def _without_heredoc_bodies(command: str) -> str:
    """The command's lines with heredoc bodies left out (they are data, not words of the command), each
    line ending a command as in bash (a `\\` continuation joins the next one)."""
    out: list[str] = []
    until: list[tuple[str, bool]] = []  # delimiters still to come, and whether `<<-` (tabs stripped)
    for line in command.split("\n"):
        if until:
            delim, dash = until[0]
            if (line.lstrip("\t") if dash else line) == delim:
                until.pop(0)
            continue
        until += [(m.group(2), m.group(0).startswith("<<-")) for m in _HEREDOC.finditer(line)]
        out.append(line[:-1] if line.endswith("\\") else line + " ;")
    return " ".join(out)


def simple_commands(command: str) -> list[list[str]]:
    """Shell words of each simple command (split at |, &&, ;, newlines, ...); heredoc bodies are left out."""
    command = _without_heredoc_bodies(command) if "\n" in command else command
    try:
        lx = shlex.shlex(command, posix=True, punctuation_chars=True)
        lx.whitespace_split = True
        words = list(lx)
    except ValueError:  # unbalanced quotes: best effort
        words = command.split()
    out: list[list[str]] = [[]]
    for w in words:
        if w in _OPERATORS:
            out.append([])
        else:
            out[-1].append(w)
    return [c for c in out if c]


@dataclass(frozen=True)
class Ref:
    """An object a kubectl command names: `deployment/web` or `deploy web` is Ref("deployment", "web")."""

    kind: str
    name: str


@dataclass(frozen=True)
class Kubectl:
    """One kubectl invocation in a runbook step."""

    step: Step
    positionals: tuple[str, ...]
    refs: tuple[Ref, ...]
    namespace: str | None
    to_revision: str | None  # as written; None when absent

    @property
    def verb(self) -> tuple[str, ...]:
        return self.positionals[:2]

    @property
    def is_undo(self) -> bool:
        return self.verb == ("rollout", "undo")

    @property
    def plain_undo(self) -> bool:
        """`rollout undo` to the previous revision (no --to-revision, or --to-revision=0)."""
        return self.is_undo and self.to_revision in (None, "0")

    @property
    def changes_template(self) -> bool:
        """Makes the Deployment a new revision."""
        return self.is_undo or self.verb == ("rollout", "restart") or (
            self.positionals[:1] == ("set",) and self.positionals[1:2] in (("image",), ("env",), ("resources",)))


def _named_objects(pos: list[str]) -> list[Ref]:
    """The objects named by kubectl's positionals: `kind/name`, or `kind name name...` after the verb."""
    refs: list[Ref] = []
    k = 0
    while k < len(pos):
        p = pos[k]
        if "/" in p:
            alias, _, name = p.partition("/")
            slash_kind = _KIND_ALIASES.get(alias.split(".")[0].lower())
            if slash_kind and name:
                refs.append(Ref(slash_kind, name))
        elif p.lower() in _KIND_ALIASES and k > 0:
            kind = _KIND_ALIASES[p.lower()]
            k += 1
            while k < len(pos) and not any(c in pos[k] for c in "=/:,") and pos[k].lower() not in _KIND_ALIASES:
                refs.append(Ref(kind, pos[k]))
                k += 1
            continue
        k += 1
    return refs


def _parse_kubectl(step: Step, args: list[str]) -> Kubectl:
    """Namespace, --to-revision, positionals and named objects of one kubectl call (`args` after the word kubectl)."""
    ns: str | None = None
    to_rev: str | None = None
    pos: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            break  # kubectl exec ... -- <the container's command>
        if a in ("-n", "--namespace") and i + 1 < len(args):
            ns = args[i + 1]
        elif a.startswith("--namespace="):
            ns = a.split("=", 1)[1]
        elif a.startswith("-n") and len(a) > 2 and not a.startswith("--"):
            ns = a[2:].lstrip("=")
        elif a == "--to-revision" and i + 1 < len(args):
            to_rev = args[i + 1]
        elif a.startswith("--to-revision="):
            to_rev = a.split("=", 1)[1]
        if a.startswith("-"):
            i += 2 if (a in _VALUE_FLAGS and "=" not in a) else 1
            continue
        pos.append(a)
        i += 1
    refs = _named_objects(pos) if pos[:1] not in (["create"], ["run"]) else []  # those make new objects
    return Kubectl(step, tuple(pos), tuple(refs), ns, to_rev)


def kubectl_calls(steps: list[Step]) -> list[Kubectl]:
    """Every kubectl invocation of the steps, in order (also `/usr/bin/kubectl`, and after a pipe or `&&`)."""
    out: list[Kubectl] = []
    for step in steps:
        for words in simple_commands(step.command):
            idx = next((n for n, w in enumerate(words) if w.rsplit("/", 1)[-1] == "kubectl"), None)
            if idx is not None:
                out.append(_parse_kubectl(step, words[idx + 1:]))
    return out


def backup_steps(commands: list[Step]) -> list[Step]:
    """Commands that back up or restore the database: pg_dump, pg_dumpall, pg_restore, psql -f / psql < file."""
    found: list[Step] = []
    for step in commands:
        for words in simple_commands(step.command):
            base = [w.rsplit("/", 1)[-1] for w in words]
            if {"pg_dump", "pg_dumpall", "pg_restore"} & set(base):
                found.append(step)
                break
            if "psql" in base and any(w in ("-f", "<") or w.startswith("--file")
                                      or (w.startswith("-f") and not w.startswith("--")) for w in words):
                found.append(step)
                break
    return found



def migrates_down(words: list[str], s: Scenario) -> bool:
    """A simple command that migrates the schema down (the scenario's down tool, or any `migrate ... down`)."""
    down = (s.migrations.down or "") if s.migrations else ""
    tool = down.split()[0] if down.split() else "migrate"
    return "down" in words and any("migrate" in w or w.rsplit("/", 1)[-1] == tool for w in words)


def restores_database(words: list[str], _: Scenario) -> bool:
    """A simple command that restores the database from a backup (not one that takes it)."""
    return bool(backup_steps([Step(0, " ".join(words), 0)])) and not any(
        w.rsplit("/", 1)[-1] in ("pg_dump", "pg_dumpall") for w in words)
