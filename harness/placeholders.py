"""Placeholders in a runbook section: found, bound and substituted, read with a real bash parser.

A runbook holds things a person fills in before running a command:
`--to-revision=<N>`, `{{ release }}`, or a `$VAR` nobody sets. Run as
written, `<N>` is a redirection and `$VAR` an empty string. The scenario binds
each one (`runbook.placeholders`); what is left unbound is a validation
problem (docs/scenario-format.md#placeholders).

The commands are parsed with tree-sitter-bash (the grammar GitHub and the
editors use; it keeps going past what bash would reject, such as `<N>` at the
end of a line, and gives every node its byte range). It tells where a `$VAR`
is expanded and where the section assigns a name, and in which quoting a
`<N>` stands, so that its value is quoted for exactly that context.
"""

from __future__ import annotations

import re
import shlex
import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import tree_sitter_bash
from tree_sitter import Language, Node, Parser

from harness.runbook_commands import Step

Form = Literal["angle", "braces", "variable"]

# What the runbook environment holds without any declaration (harness/context.py runbook_env, documented in
# docs/scenario-format.md#the-runbook-environment); tests/unit/test_placeholders.py checks both against the code.
RUNBOOK_BUILTINS = frozenset({
    "PATH", "HOME", "KUBECONFIG", "LANG", "DOCKER_HOST", "HELM_NAMESPACE",
    "NAMESPACE", "DATABASE_URL", "CLUSTER_DATABASE_URL", "GOOD_IMAGE", "BAD_IMAGE",
})
REGISTRY_BUILTINS = frozenset({"REGISTRY", "REPOSITORY", "GOOD_TAG", "BAD_TAG"})  # only with `registry`
# What bash sets itself (or reads with a default): never a placeholder. USER, TERM, LOGNAME and the like are not
# here: the runbook environment does not have them, so a runbook that reads them needs pass_env or a binding.
SHELL_VARIABLES = frozenset({
    "PWD", "OLDPWD", "RANDOM", "SRANDOM", "SECONDS", "LINENO", "HOSTNAME", "HOSTTYPE", "OSTYPE", "MACHTYPE",
    "BASH", "BASHPID", "BASHOPTS", "BASH_VERSION", "BASH_VERSINFO", "BASH_SOURCE", "BASH_LINENO", "BASH_COMMAND",
    "BASH_SUBSHELL", "BASH_REMATCH", "BASH_ARGC", "BASH_ARGV", "BASH_ARGV0", "BASH_ALIASES", "BASH_CMDS",
    "BASH_EXECUTION_STRING", "EPOCHSECONDS", "EPOCHREALTIME", "PPID", "UID", "EUID", "GROUPS", "IFS", "PS1", "PS2",
    "PS3", "PS4", "SHELL", "SHELLOPTS", "SHLVL", "OPTIND", "OPTARG", "OPTERR", "REPLY", "PIPESTATUS", "FUNCNAME",
    "MAPFILE", "DIRSTACK", "HISTCMD", "HISTFILE", "HISTSIZE", "HISTFILESIZE", "COLUMNS", "LINES", "TMOUT",
    "COMP_WORDS", "COPROC", "_",
})
# {{ end }} and {{ else }} close Go templates (kubectl -o go-template=...): never a placeholder.
_TEMPLATE_WORDS = frozenset({"end", "else"})

_NAME = r"[A-Za-z_][A-Za-z0-9_-]*"
# <word>, not part of <<EOF / <<<, not an escaped \< (grep's word boundary), not followed by a redirection's
# >>, >& or >| (`<in>>out`): a person reads `--to-revision=<N>` and `backup-<date>.dump` as something to fill in.
# Write redirections with spaces (`sort < in > out`), as people do, and they are never read as placeholders.
_ANGLE = re.compile(r"(?<![<\\])<(" + _NAME + r")>(?![>&|])")
_BRACES = re.compile(r"\{\{\s*(" + _NAME + r")\s*\}\}")
_SHELL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# ${X:-default} and the like give a value when X is unset: X is not required.
_DEFAULTING = frozenset({":-", "-", ":=", "=", ":+", "+"})
# Commands that assign the names they are given (the words that are not options or option values).
_READ_VALUE_OPTIONS = frozenset({"-p", "-t", "-d", "-n", "-N", "-u", "-i"})
_ARITHMETIC = frozenset({"arithmetic_expansion", "c_style_for_statement"})


_LANGUAGE = Language(tree_sitter_bash.language())
_parsers = threading.local()  # a Parser is not shared between threads (scenarios side by side, `-j N`)


def _parser() -> Parser:
    parser: Parser | None = getattr(_parsers, "parser", None)
    if parser is None:
        parser = _parsers.parser = Parser(_LANGUAGE)
    return parser


@dataclass(frozen=True)
class Placeholder:
    """One placeholder in a step: its name, how it is written, and where."""

    name: str
    form: Form
    text: str  # as written: <N>, {{ N }}, $NS, ${NS}
    step: Step
    line: int  # runbook line of the placeholder itself

    def fix(self) -> str:
        """How to bind it (scenario.yaml)."""
        if self.form == "variable":
            return (f"bind it in scenario.yaml: `runbook.placeholders: {{{self.name}: \"...\"}}` (exported to the "
                    f"runbook environment), declare it in `variables` or `pass_env`, or assign it in the runbook "
                    f"before line {self.line}")
        tail = (" If it is literal text (an HTML tag in a pattern), bind it to itself." if self.form == "angle"
                else "")
        return f"bind it in scenario.yaml: `runbook.placeholders: {{{self.name}: \"...\"}}`.{tail}"


@dataclass(frozen=True)
class _Hit:
    """A `<N>` or `{{ N }}` in a command: its name, character range and quoting context."""

    name: str
    form: Form
    start: int
    end: int
    context: str


def _byte_offsets(text: str) -> list[int]:
    """Byte offset of each character (and of the end), to meet tree-sitter's byte ranges."""
    out = [0]
    for ch in text:
        out.append(out[-1] + len(ch.encode("utf-8")))
    return out


def _heredoc_quoted(body: Node) -> bool:
    """A heredoc whose delimiter is quoted (<<'EOF', <<"EOF", <<\\EOF) is not expanded."""
    parent = body.parent
    starts = [c for c in (parent.children if parent else []) if c.type == "heredoc_start"]
    return bool(starts) and any(q in (starts[0].text or b"").decode(errors="replace") for q in "'\"\\")


def _context(root: Node, byte: int) -> str:
    """The quoting the byte stands in: plain, double, single, ansi, heredoc, quoted-heredoc, comment, arithmetic."""
    node: Node | None = root.descendant_for_byte_range(byte, byte + 1)
    while node is not None:
        t = node.type
        if t in ("comment", "raw_string", "ansi_c_string", "heredoc_body") or t in _ARITHMETIC:
            return {"comment": "comment", "raw_string": "single", "ansi_c_string": "ansi",
                    "heredoc_body": "quoted-heredoc" if _heredoc_quoted(node) else "heredoc"}.get(t, "arithmetic")
        if t in ("string", "translated_string"):
            return "double"
        if t == "compound_statement" and node.children and node.children[0].type == "((":
            return "arithmetic"
        if t in ("command_substitution", "process_substitution"):
            return "plain"  # quoting starts afresh inside $(...)
        node = node.parent
    return "plain"


def _hits(command: str, root: Node) -> list[_Hit]:
    """The `<N>` and `{{ N }}` of a command that a person fills in (not in comments or arithmetic, not HTML tags)."""
    offsets = _byte_offsets(command)
    found: list[_Hit] = []
    for form, pattern in (("angle", _ANGLE), ("braces", _BRACES)):
        for m in pattern.finditer(command):
            name = m.group(1)
            if form == "angle" and f"</{name}>" in command:
                continue  # <b>…</b>: markup in a string, not a placeholder
            if form == "braces" and name in _TEMPLATE_WORDS:
                continue
            ctx = _context(root, offsets[m.start()])
            if ctx not in ("comment", "arithmetic"):
                found.append(_Hit(name, form, m.start(), m.end(), ctx))  # type: ignore[arg-type]
    return sorted(found, key=lambda h: h.start)


def _walk(node: Node) -> Iterator[Node]:
    yield node
    for child in node.children:
        yield from _walk(child)


def _expansion_name(node: Node) -> tuple[str, bool] | None:
    """(name, required) of a `$X` / `${X...}`; None for $1, $?, $@ and the like."""
    children = node.children
    name_node = next((c for c in children if c.type == "variable_name"), None)
    if name_node is None:
        sub = next((c for c in children if c.type == "subscript"), None)
        name_node = next((c for c in (sub.children if sub else []) if c.type == "variable_name"), None)
    if name_node is None:
        return None
    name = (name_node.text or b"").decode(errors="replace")
    if not _SHELL_NAME.fullmatch(name):
        return None  # positional parameters
    defaulted = node.type == "expansion" and any(c.type in _DEFAULTING for c in children)
    return name, not defaulted


def _word(node: Node) -> str:
    return (node.text or b"").decode(errors="replace")


def _command_assigns(node: Node) -> list[str]:
    """Names a `read`, `mapfile`/`readarray`, `printf -v` or `getopts` command assigns."""
    words = [c for c in node.children if c.type != "command_name"]
    name_node = next((c for c in node.children if c.type == "command_name"), None)
    program = _word(name_node).rsplit("/", 1)[-1] if name_node is not None else ""
    texts = [_word(w) for w in words]
    if program == "read":
        names, skip_next = [], False
        for i, t in enumerate(texts):
            if skip_next:
                skip_next = False
            elif t in _READ_VALUE_OPTIONS:
                skip_next = True
            elif t == "-a" and i + 1 < len(texts):
                names.append(texts[i + 1])
                skip_next = True
            elif not t.startswith("-"):
                names.append(t)
        return names
    if program in ("mapfile", "readarray"):
        plain = [t for t in texts if not t.startswith("-")]
        return plain[-1:]
    if program == "printf" and "-v" in texts[:-1]:
        return [texts[texts.index("-v") + 1]]
    if program == "getopts" and len(texts) >= 2:
        return [texts[1]]
    return []


def _assignments(node: Node) -> list[tuple[int, str]]:
    """(byte where the name becomes set, name) of one node, when it assigns."""
    t = node.type
    if t == "variable_assignment":
        if node.parent is not None and node.parent.type == "command":
            return []  # `X=1 cmd`: X is set in cmd's environment only, not for the words of cmd nor after it
        first = node.children[0] if node.children else None
        if first is not None and first.type == "subscript":
            first = first.children[0] if first.children else None
        return [(node.end_byte, _word(first))] if first is not None else []
    if t == "declaration_command":  # export X=1, local X, declare -A M, readonly X
        return [(node.end_byte, _word(c)) for c in node.children if c.type == "variable_name"]
    if t == "for_statement":  # for X in ...; select X in ...
        var = next((c for c in node.children if c.type == "variable_name"), None)
        return [(var.end_byte, _word(var))] if var is not None else []
    if t == "command":
        return [(node.end_byte, n) for n in _command_assigns(node) if _SHELL_NAME.fullmatch(n)]
    return []


def _events(root: Node) -> list[tuple[int, int, str, bool]]:
    """(byte, order, name, required) of the uses (order 1) and assignments (order 0) of one command, in order."""
    events: list[tuple[int, int, str, bool]] = []
    for node in _walk(root):
        if node.type in ("simple_expansion", "expansion"):
            found = _expansion_name(node)
            if found is not None:
                events.append((node.start_byte, 1, found[0], found[1]))
        for at, name in _assignments(node):
            events.append((at, 0, name, False))
    return sorted(events)


def _line_at(step: Step, command: str, char: int) -> int:
    return step.line + command.count("\n", 0, char)


def unbound(steps: Sequence[Step], placeholders: Mapping[str, str], env_names: Collection[str]) -> list[Placeholder]:
    """Every placeholder of the steps that runs that nothing binds, in order.

    `<N>` and `{{ N }}` are bound only by `placeholders`; `$X` also by
    `env_names` (built-ins, variables, pass_env), by a variable of bash
    itself, or by an assignment earlier in the section. Skipped steps run
    nothing and assign nothing."""
    defined = set(env_names) | set(placeholders) | SHELL_VARIABLES
    out: list[Placeholder] = []
    seen: set[tuple[str, int]] = set()
    for step in (s for s in steps if s.skip is None):
        data = step.command.encode("utf-8")
        root = _parser().parse(data).root_node
        for hit in _hits(step.command, root):
            if hit.name not in placeholders:
                out.append(Placeholder(hit.name, hit.form, step.command[hit.start:hit.end], step,
                                       _line_at(step, step.command, hit.start)))
        chars = {b: i for i, b in enumerate(_byte_offsets(step.command))}
        for at, order, name, required in _events(root):
            if order == 0:
                defined.add(name)
            elif required and name not in defined and (name, step.index) not in seen:
                seen.add((name, step.index))
                char = chars.get(at, 0)
                text = data[at:].decode(errors="replace")
                shown = "${" + name + "}" if text.startswith("${") else "$" + name
                out.append(Placeholder(name, "variable", shown, step, _line_at(step, step.command, char)))
    return sorted(out, key=lambda p: (p.step.index, p.line))


def quoted_for(value: str, context: str) -> str:
    """`value` as one literal word in the quoting `context` it replaces a placeholder in.

    A value of shell-safe characters (letters, digits, `@%+=:,./-_`) is literal everywhere and goes in as
    it is; any other is shell-quoted (shlex.quote), closing and reopening the surrounding quotes around it,
    so `--to-revision=<N>` becomes `--to-revision=1` and `'{"n": "<N>"}'` stays one word for any value."""
    q = shlex.quote(value)
    if q == value:
        return value
    if context == "heredoc":  # expanded, but quotes are literal there: escape what bash would expand
        return re.sub(r"([\\$`])", r"\\\1", value)
    return {"double": f'"{q}"', "single": f"'{q}'", "ansi": f"'{q}$'", "quoted-heredoc": value}.get(context, q)


def bind(step: Step, placeholders: Mapping[str, str]) -> Step:
    """The step with each bound `<N>` and `{{ N }}` replaced by its value, quoted for where it stands."""
    if not placeholders or step.skip is not None:
        return step
    root = _parser().parse(step.command.encode("utf-8")).root_node
    hits = [h for h in _hits(step.command, root) if h.name in placeholders]
    if not hits:
        return step
    text = step.command
    for hit in reversed(hits):
        text = text[:hit.start] + quoted_for(placeholders[hit.name], hit.context) + text[hit.end:]
    return replace(step, command=text)


def bind_all(steps: Sequence[Step], placeholders: Mapping[str, str]) -> list[Step]:
    return [bind(s, placeholders) for s in steps]


def env_names(variables: Collection[str], pass_env: Collection[str], registry: bool) -> frozenset[str]:
    """Names the runbook environment defines for a scenario."""
    return RUNBOOK_BUILTINS | (REGISTRY_BUILTINS if registry else frozenset()) | set(variables) | set(pass_env)


def exported(placeholders: Mapping[str, str]) -> dict[str, str]:
    """The bindings that go into the runbook environment: those whose names are shell variable names."""
    return {k: v for k, v in placeholders.items() if _SHELL_NAME.fullmatch(k)}
