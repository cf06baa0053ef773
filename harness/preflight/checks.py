"""Preflight: rollback hazards found in a scenario's files, without a cluster.

Every check reads what the team wrote (migrations, manifests, runbook) and
returns `Finding`s with a concrete fix. Findings are advice: they are kept
apart from the rehearsal's verdict, which only the real state decides (see
docs/preflight.md).

SQL is read with a real tokenizer (sqlparse), so comments, string literals
and dollar-quoted function bodies never look like statements; shell commands
with `shlex`; Markdown with markdown-it (harness.runbook_commands); YAML with PyYAML,
`${VAR}` placeholders left as they are.
"""

from __future__ import annotations

import re
import shlex
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import sqlparse
import yaml
from markdown_it import MarkdownIt
from sqlparse import tokens as T

from harness.journal import Finding
from harness.runbook_commands import SHELL_LANGS, RunbookError, Step, _commands, parse_runbook
from harness.scenario.models import Scenario

Severity = Literal["warning", "failure"]
WARNING: Severity = "warning"
FAILURE: Severity = "failure"

# Check ids (stable: they appear in reports and in docs/preflight.md).
MIGRATION_PAIRS = "migration-pairs"
NOOP_DOWN = "noop-down"
DESTRUCTIVE = "destructive-migration"
NON_TRANSACTIONAL = "non-transactional"
REVISION_HISTORY = "revision-history"
RUNBOOK_OBJECTS = "runbook-objects"
RUNBOOK_NAMESPACE = "runbook-namespace"
DOUBLE_UNDO = "double-undo"
DOWN_WITH_GOOD_IMAGE = "down-with-good-image"
WORKLOADS = "workloads"
INPUTS = "inputs"

DEFAULT_REVISION_HISTORY_LIMIT = 10  # Kubernetes' default for apps/v1 Deployments
# Revisions the rehearsal creates before the runbook runs: the good release, then the bad one.
REHEARSAL_REVISIONS = ((1, "good release"), (2, "bad release"))


# ══ SQL ═══════════════════════════════════════════════════════════════════
@dataclass(frozen=True)
class Tok:
    """A significant SQL token: `word` (keyword or bare name, `up` upper-cased),
    `ident` (quoted name), `literal` (string, number, $$ body), `punct` or `other`."""

    kind: str
    value: str
    depth: int  # parenthesis depth

    @property
    def up(self) -> str:
        return self.value.upper() if self.kind == "word" else ""


@dataclass(frozen=True)
class Statement:
    toks: tuple[Tok, ...]
    line: int   # 1-based line of its first token
    text: str   # without comments, whitespace collapsed

    def words(self, depth: int | None = 0) -> list[str]:
        return [t.up for t in self.toks if t.kind == "word" and (depth is None or t.depth == depth)]

    @property
    def first(self) -> str:
        return self.toks[0].up if self.toks else ""


def _tok_kind(ttype: Any) -> str:
    if ttype in T.Keyword or ttype in T.Name:
        return "word"
    if ttype in T.Literal.String.Symbol:
        return "ident"
    if ttype in T.Literal:
        return "literal"
    if ttype in T.Punctuation:
        return "punct"
    return "other"


def split_sql(text: str) -> list[Statement]:
    """The statements of a SQL file with their significant tokens; empty statements dropped."""
    out: list[Statement] = []
    offset = 0
    for raw in sqlparse.parse(text):
        raw_text = str(raw)
        toks: list[Tok] = []
        first_pos: int | None = None
        pos = offset
        depth = 0
        for t in raw.flatten():
            start = pos
            pos += len(t.value)
            if t.is_whitespace or t.ttype in T.Comment:
                continue
            kind = _tok_kind(t.ttype)
            if kind == "punct" and t.value == ";":
                continue
            if kind == "punct" and t.value == ")":
                depth = max(0, depth - 1)
            if first_pos is None:
                first_pos = start
            if kind == "word" and " " in t.value.strip():  # sqlparse joins e.g. "NOT NULL", "IF EXISTS"
                toks.extend(Tok("word", w, depth) for w in t.value.split())
            else:
                toks.append(Tok(kind, t.value, depth))
            if kind == "punct" and t.value == "(":
                depth += 1
        offset += len(raw_text)
        if toks:
            assert first_pos is not None
            stripped = sqlparse.format(raw_text, strip_comments=True).strip().rstrip(";")
            out.append(Statement(tuple(toks), text.count("\n", 0, first_pos) + 1, " ".join(stripped.split())))
    return out


SCHEMA_CHANGING = {"CREATE", "ALTER", "DROP", "COMMENT"}
_NOOP_FIRST = {"BEGIN", "COMMIT", "END", "START", "ROLLBACK"}


def is_noop(st: Statement) -> bool:
    """Transaction control, or `SELECT <literal>` (the usual placeholder of an empty down)."""
    if st.first in _NOOP_FIRST:
        return True
    if st.first == "SELECT":
        rest = st.toks[1:]
        return all(t.kind in ("literal", "punct") or t.up in ("NULL", "TRUE", "FALSE") for t in rest)
    return False


def _name(toks: list[Tok], i: int) -> tuple[str, int]:
    """A possibly schema-qualified name starting at toks[i]; returns (name, next index)."""
    parts: list[str] = []
    while i < len(toks) and toks[i].kind in ("word", "ident"):
        parts.append(toks[i].value)
        if i + 2 < len(toks) and toks[i + 1].value == "." and toks[i + 2].kind in ("word", "ident"):
            i += 2
            continue
        i += 1
        break
    return ".".join(parts), i


def _skip(toks: list[Tok], i: int, *words: str) -> int:
    """Skip the optional word sequence `words` at toks[i] (e.g. IF EXISTS)."""
    if [t.up for t in toks[i:i + len(words)]] == list(words):
        return i + len(words)
    return i


def _split_top(toks: list[Tok], base_depth: int = 0) -> list[list[Tok]]:
    parts: list[list[Tok]] = [[]]
    for t in toks:
        if t.kind == "punct" and t.value == "," and t.depth == base_depth:
            parts.append([])
        else:
            parts[-1].append(t)
    return [p for p in parts if p]


def _text(toks: Iterable[Tok]) -> str:
    out = ""
    for t in toks:
        if out and not (t.value in ("(", ")", ",", ".") or out.endswith(("(", "."))):
            out += " "
        out += t.value
    return out


@dataclass(frozen=True)
class Hazard:
    """A destructive statement in an up migration."""

    kind: str    # DROP COLUMN, DROP TABLE, TRUNCATE, DELETE without WHERE, ALTER COLUMN TYPE, SET NOT NULL,
    #              ADD COLUMN NOT NULL without DEFAULT, RENAME COLUMN, RENAME TABLE
    target: str
    statement: Statement


_SERIAL = {"SERIAL", "BIGSERIAL", "SMALLSERIAL", "SERIAL2", "SERIAL4", "SERIAL8"}


def _alter_table_hazards(st: Statement) -> list[Hazard]:
    toks = list(st.toks)
    i = _skip(toks, 2, "IF", "EXISTS")
    i = _skip(toks, i, "ONLY")
    table, i = _name(toks, i)
    if i < len(toks) and toks[i].value == "*":
        i += 1
    out: list[Hazard] = []
    for action in _split_top(toks[i:]):
        head = action[0].up
        if head == "DROP":
            j = 1
            if j < len(action) and action[j].up in ("CONSTRAINT",):
                continue
            j = _skip(action, j, "COLUMN")
            j = _skip(action, j, "IF", "EXISTS")
            col, _ = _name(action, j)
            out.append(Hazard("DROP COLUMN", f"{table}.{col}", st))
        elif head == "ALTER":
            j = _skip(action, 1, "COLUMN")
            col, j = _name(action, j)
            rest = [t.up for t in action[j:]]
            if rest[:1] == ["TYPE"] or rest[:3] == ["SET", "DATA", "TYPE"]:
                k = j + (1 if rest[:1] == ["TYPE"] else 3)
                end = next((n for n in range(k, len(action)) if action[n].depth == 0
                            and action[n].up in ("USING", "COLLATE")), len(action))
                new_type = _text(action[k:end])
                out.append(Hazard("ALTER COLUMN TYPE", f"{table}.{col} to {new_type}", st))
            elif rest[:3] == ["SET", "NOT", "NULL"]:
                out.append(Hazard("SET NOT NULL", f"{table}.{col}", st))
        elif head == "ADD":
            j = 1
            if j < len(action) and action[j].up in ("CONSTRAINT", "PRIMARY", "UNIQUE", "FOREIGN", "CHECK", "EXCLUDE"):
                continue
            j = _skip(action, j, "COLUMN")
            j = _skip(action, j, "IF", "NOT", "EXISTS")
            col, j = _name(action, j)
            words = [t.up for t in action[j:] if t.depth == 0]
            not_null = any(words[k:k + 2] == ["NOT", "NULL"] for k in range(len(words)))
            has_default = "DEFAULT" in words or "GENERATED" in words or bool(_SERIAL & set(words))
            if not_null and not has_default:
                out.append(Hazard("ADD COLUMN NOT NULL without DEFAULT", f"{table}.{col}", st))
        elif head == "RENAME":
            j = 1
            if j < len(action) and action[j].up == "TO":
                new, _ = _name(action, j + 1)
                out.append(Hazard("RENAME TABLE", f"{table} to {new}", st))
            elif j < len(action) and action[j].up == "CONSTRAINT":
                continue
            else:
                j = _skip(action, j, "COLUMN")
                col, j = _name(action, j)
                new, _ = _name(action, _skip(action, j, "TO"))
                out.append(Hazard("RENAME COLUMN", f"{table}.{col} to {new}", st))
    return out


def statement_hazards(st: Statement) -> list[Hazard]:
    """Destructive changes one statement makes (see docs/preflight.md for the list)."""
    toks = list(st.toks)
    words = st.words()
    if st.first == "ALTER" and words[1:2] == ["TABLE"]:
        return _alter_table_hazards(st)
    if st.first == "DROP" and words[1:2] == ["TABLE"]:
        i = _skip(toks, 2, "IF", "EXISTS")
        names = [_name(p, 0)[0] for p in _split_top(toks[i:]) if p and p[0].kind in ("word", "ident")]
        return [Hazard("DROP TABLE", n, st) for n in names if n.upper() not in ("CASCADE", "RESTRICT")]
    if st.first == "TRUNCATE":
        i = _skip(toks, 1, "TABLE")
        i = _skip(toks, i, "ONLY")
        names = [_name(p, 0)[0] for p in _split_top(toks[i:]) if p and p[0].kind in ("word", "ident")]
        return [Hazard("TRUNCATE", ", ".join(names), st)]
    deletes = [n for n, t in enumerate(toks) if t.depth == 0 and t.up == "DELETE"]
    if deletes and st.first in ("DELETE", "WITH"):
        after = toks[deletes[0] + 1:]
        if not any(t.depth == 0 and t.up == "WHERE" for t in after):
            i = _skip(after, 0, "FROM")
            i = _skip(after, i, "ONLY")
            table, _ = _name(after, i)
            return [Hazard("DELETE without WHERE", table, st)]
    return []


def non_transactional(st: Statement, postgres_major: int) -> str | None:
    """What makes the statement impossible inside a transaction, or None."""
    words = st.words()
    if st.first in ("CREATE", "DROP", "REINDEX") and "CONCURRENTLY" in words:
        obj = next((w for w in words[1:] if w not in ("UNIQUE",)), "")
        return f"{st.first} {obj} CONCURRENTLY"
    if st.first == "VACUUM":
        return "VACUUM"
    if st.first in ("CREATE", "DROP") and words[1:2] in (["DATABASE"], ["TABLESPACE"]):
        return f"{st.first} {words[1]}"
    if st.first == "ALTER" and words[1:2] == ["SYSTEM"]:
        return "ALTER SYSTEM"
    if (st.first == "ALTER" and words[1:2] == ["TYPE"] and postgres_major < 12
            and any(words[k:k + 2] == ["ADD", "VALUE"] for k in range(len(words)))):
        return f"ALTER TYPE ... ADD VALUE (before PostgreSQL 12, postgres {postgres_major} here)"
    return None


# ══ migrations ════════════════════════════════════════════════════════════
_MIGRATION_FILE = re.compile(r"^(\d+)_(.+)\.(up|down)\.sql$")


@dataclass
class Migration:
    """One version of a golang-migrate style directory: NNNN_name.up.sql / NNNN_name.down.sql."""

    version: str
    ups: list[Path] = field(default_factory=list)
    downs: list[Path] = field(default_factory=list)

    @property
    def up(self) -> Path | None:
        return self.ups[0] if self.ups else None

    @property
    def down(self) -> Path | None:
        return self.downs[0] if self.downs else None


def load_migrations(directory: Path) -> list[Migration]:
    """Migrations by version (numeric order); files not named NNNN_name.(up|down).sql are ignored."""
    by_version: dict[int, Migration] = {}
    for f in sorted(directory.iterdir()):
        m = _MIGRATION_FILE.match(f.name)
        if not m or not f.is_file():
            continue
        mig = by_version.setdefault(int(m.group(1)), Migration(m.group(1)))
        (mig.ups if m.group(3) == "up" else mig.downs).append(f)
    return [by_version[v] for v in sorted(by_version)]


# ══ manifests ═════════════════════════════════════════════════════════════
class ManifestError(Exception):
    pass


@dataclass(frozen=True)
class K8sObject:
    kind: str  # lower case: deployment, service, ...
    name: str
    doc: dict[str, Any]
    file: Path


_KUSTOMIZATION = ("kustomization.yaml", "kustomization.yml", "Kustomization")


def _objects_in(file: Path, prefix: str = "", suffix: str = "") -> list[K8sObject]:
    try:
        docs = list(yaml.safe_load_all(file.read_text(encoding="utf-8")))
    except yaml.YAMLError as exc:
        raise ManifestError(f"{file}: not valid YAML: {exc}") from None
    out: list[K8sObject] = []
    stack = [d for d in docs if isinstance(d, dict)]
    while stack:
        d = stack.pop(0)
        if d.get("kind") == "List" and isinstance(d.get("items"), list):
            stack.extend(x for x in d["items"] if isinstance(x, dict))
            continue
        meta = d.get("metadata")
        name = meta.get("name") if isinstance(meta, dict) else None
        if isinstance(d.get("kind"), str) and isinstance(name, str):
            out.append(K8sObject(d["kind"].lower(), f"{prefix}{name}{suffix}", d, file))
    return out


def load_manifests(path: Path, _prefix: str = "", _suffix: str = "", _seen: frozenset[Path] = frozenset()) -> list[K8sObject]:
    """Objects of a manifest file, a directory of *.yaml/*.yml files, or a kustomize directory
    (its `resources`, recursively, with namePrefix/nameSuffix applied)."""
    path = path.resolve()
    if path in _seen:
        return []
    if path.is_file():
        return _objects_in(path, _prefix, _suffix)
    if not path.is_dir():
        raise ManifestError(f"{path} does not exist")
    kfile = next((path / k for k in _KUSTOMIZATION if (path / k).is_file()), None)
    if kfile is None:
        files = sorted(f for f in path.iterdir() if f.suffix in (".yaml", ".yml") and f.is_file())
        return [o for f in files for o in _objects_in(f, _prefix, _suffix)]
    try:
        k = yaml.safe_load(kfile.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ManifestError(f"{kfile}: not valid YAML: {exc}") from None
    if not isinstance(k, dict):
        raise ManifestError(f"{kfile}: must be a mapping")
    prefix = str(k.get("namePrefix") or "") + _prefix
    suffix = _suffix + str(k.get("nameSuffix") or "")
    out: list[K8sObject] = []
    for res in [*(k.get("resources") or []), *(k.get("bases") or [])]:
        if not isinstance(res, str) or "://" in res or res.startswith(("github.com/", "git@")):
            continue  # remote bases cannot be read offline
        target = path / res
        if not target.exists():
            raise ManifestError(f"{kfile}: resource {res} does not exist")
        out.extend(load_manifests(target, prefix, suffix, _seen | {path}))
    return out


# ══ runbook commands ══════════════════════════════════════════════════════
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
_NAMESPACE_VARS = {"$NAMESPACE", "${NAMESPACE}"}


def simple_commands(command: str) -> list[list[str]]:
    """Shell words of each simple command (split at |, &&, ;, ...)."""
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


def _parse_kubectl(step: Step, args: list[str]) -> Kubectl:
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
    refs: list[Ref] = []
    if pos[:1] not in (["create"], ["run"]):  # those make new objects
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
    return Kubectl(step, tuple(pos), tuple(refs), ns, to_rev)


def kubectl_calls(steps: list[Step]) -> list[Kubectl]:
    out: list[Kubectl] = []
    for step in steps:
        for words in simple_commands(step.command):
            idx = next((n for n, w in enumerate(words) if w.rsplit("/", 1)[-1] == "kubectl"), None)
            if idx is not None:
                out.append(_parse_kubectl(step, words[idx + 1:]))
    return out


def all_runbook_commands(markdown: str) -> list[Step]:
    """Every command of every shell block of the runbook, in any section."""
    out: list[Step] = []
    for tok in MarkdownIt("commonmark").parse(markdown):
        if tok.type == "fence" and (tok.info.strip().split() or [""])[0] in SHELL_LANGS:
            first = (tok.map[0] + 2) if tok.map else 0
            for cmd, line in _commands(tok.content, first):
                out.append(Step(index=len(out) + 1, command=cmd, line=line))
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


# ══ inputs ════════════════════════════════════════════════════════════════
@dataclass
class Inputs:
    """What the checks read, gathered once from the scenario's files."""

    scenario: Scenario
    migrations: list[Migration] = field(default_factory=list)
    manifests: list[K8sObject] | None = None  # None: could not be read
    manifests_path: Path | None = None
    runbook_path: Path | None = None
    steps: list[Step] = field(default_factory=list)           # the section the rehearsal runs
    all_commands: list[Step] = field(default_factory=list)    # every shell command of the runbook
    problems: list[Finding] = field(default_factory=list)
    _sql: dict[Path, list[Statement]] = field(default_factory=dict, repr=False)

    def sql(self, path: Path) -> list[Statement]:
        """The statements of a migration file (parsed once)."""
        if path not in self._sql:
            self._sql[path] = split_sql(path.read_text(encoding="utf-8", errors="replace"))
        return self._sql[path]

    @property
    def postgres_major(self) -> int:
        try:
            return int(self.scenario.database.postgres)
        except ValueError:
            return 15

    @property
    def variables(self) -> dict[str, str]:
        return {k: v.value for k, v in self.scenario.variables.items()}

    def step_where(self, step: Step) -> str:
        return f"runbook step {step.index} (line {step.line})"


def gather(scenario: Scenario) -> Inputs:
    inp = Inputs(scenario)
    m = scenario.migrations
    if m is not None and m.files is not None:
        d = scenario.path(m.files)
        if d.is_dir():
            inp.migrations = load_migrations(d)
    inp.manifests_path = scenario.path(scenario.app.manifests)
    try:
        inp.manifests = load_manifests(inp.manifests_path)
    except ManifestError as exc:
        inp.problems.append(Finding(check=INPUTS, severity=WARNING, file=str(inp.manifests_path),
                                    message=f"cannot read the manifests, manifest checks skipped: {exc}",
                                    fix="fix the manifests so `kubectl apply --dry-run=client` accepts them"))
    inp.runbook_path = scenario.path(scenario.runbook.file)
    try:
        text = inp.runbook_path.read_text(encoding="utf-8")
        inp.all_commands = all_runbook_commands(text)
        inp.steps = parse_runbook(text, scenario.runbook.section)
    except (OSError, RunbookError) as exc:
        inp.problems.append(Finding(check=INPUTS, severity=WARNING, file=str(inp.runbook_path),
                                    message=f"cannot read the runbook, runbook checks skipped: {exc}",
                                    fix="run `rehearse validate` and fix the runbook path or section"))
    return inp


# ══ checks ════════════════════════════════════════════════════════════════
def check_migration_pairs(inp: Inputs) -> list[Finding]:
    """Every up has a down (failure); every down has an up (warning); one file per version and direction."""
    out: list[Finding] = []
    for mig in inp.migrations:
        if mig.up and not mig.downs:
            want = mig.up.name.replace(".up.sql", ".down.sql")
            out.append(Finding(
                check=MIGRATION_PAIRS, severity=FAILURE, file=str(mig.up),
                message=f"migration {mig.version} has no down migration: nothing can revert {mig.up.name}",
                fix=f"add {want} beside it with the statements that undo the up migration"))
        if mig.down and not mig.ups:
            out.append(Finding(
                check=MIGRATION_PAIRS, severity=WARNING, file=str(mig.down),
                message=f"down migration {mig.down.name} has no up migration {mig.version}: "
                        "a typo in the name, or a leftover",
                fix=f"name the matching up migration {mig.version}_<name>.up.sql, or delete {mig.down.name}"))
        for files, direction in ((mig.ups, "up"), (mig.downs, "down")):
            if len(files) > 1:
                out.append(Finding(
                    check=MIGRATION_PAIRS, severity=FAILURE, file=str(files[1]),
                    message=f"version {mig.version} has {len(files)} {direction} migrations "
                            f"({', '.join(f.name for f in files)}): migrate tools refuse duplicate versions",
                    fix="give each migration its own version number"))
    return out


def check_noop_down(inp: Inputs) -> list[Finding]:
    """A down that is empty or a no-op (comments, `SELECT 1`) while its up changes the schema."""
    out: list[Finding] = []
    for mig in inp.migrations:
        if not (mig.up and mig.down):
            continue
        ddl = [s for s in inp.sql(mig.up) if s.first in SCHEMA_CHANGING]
        if not ddl:
            continue
        down = inp.sql(mig.down)
        if all(is_noop(s) for s in down):
            what = "is empty" if not down else "is a no-op (" + "; ".join(s.text for s in down)[:60] + ")"
            out.append(Finding(
                check=NOOP_DOWN, severity=FAILURE, file=str(mig.down),
                message=f"down migration {mig.version} is a no-op but {mig.version} up changes the schema: "
                        f"{mig.down.name} {what} while {mig.up.name} runs `{ddl[0].text[:80]}`"
                        + (f" and {len(ddl) - 1} more" if len(ddl) > 1 else ""),
                fix=f"write the statements that revert {mig.up.name} into {mig.down.name} "
                    "(e.g. DROP COLUMN for ADD COLUMN); if it cannot be reverted, say so in the runbook "
                    "and document the restore from a backup"))
    return out


_HAZARD_WHY = {
    "DROP COLUMN": "destroys the column's data, which no down migration can bring back",
    "DROP TABLE": "destroys the table's data, which no down migration can bring back",
    "TRUNCATE": "deletes every row, which no down migration can bring back",
    "DELETE without WHERE": "deletes every row, which no down migration can bring back",
    "ALTER COLUMN TYPE": "rewrites the column: a narrower type truncates or rejects values, "
                         "and converting back cannot restore what was lost",
    "SET NOT NULL": "makes the old version's inserts fail if it does not write the column",
    "ADD COLUMN NOT NULL without DEFAULT": "fails on a table with rows, and makes the old version's "
                                           "inserts fail since it does not write the column",
    "RENAME COLUMN": "breaks the old version, which still uses the old name, until the down migration runs",
    "RENAME TABLE": "breaks the old version, which still uses the old name, until the down migration runs",
}
_HAZARD_FIX = {
    "ADD COLUMN NOT NULL without DEFAULT": "add a DEFAULT, or add the column nullable, backfill, and set "
                                           "NOT NULL in a later release",
    "SET NOT NULL": "set NOT NULL in a later release, once the old version can no longer come back",
    "RENAME COLUMN": "expand/contract: add the new column, write both, drop the old one in a later release",
    "RENAME TABLE": "expand/contract: create the new table (or a view with the old name), "
                    "drop the old name in a later release",
}


def check_destructive(inp: Inputs) -> list[Finding]:
    """Destructive statements of up migrations: failure without a backup/restore step in the runbook."""
    backups = backup_steps(inp.all_commands)
    out: list[Finding] = []
    for mig in inp.migrations:
        if mig.up is None:
            continue
        for st in inp.sql(mig.up):
            for hz in statement_hazards(st):
                why = _HAZARD_WHY[hz.kind]
                base_fix = _HAZARD_FIX.get(hz.kind, "expand/contract: keep the old schema working for one "
                                                    "more release and remove it in a later one")
                sev: Severity
                if backups:
                    sev = WARNING
                    tail = (f"; the runbook has a backup/restore step "
                            f"(line {backups[0].line}: `{backups[0].command[:60]}`): rehearse the restore")
                    fix = base_fix
                else:
                    sev = FAILURE
                    tail = "; the runbook has no backup/restore step (pg_dump, pg_restore, psql -f)"
                    fix = (f"{base_fix}; or take a backup before migrating and document the restore in "
                           f"{inp.runbook_path.name if inp.runbook_path else 'the runbook'} "
                           '(e.g. `pg_dump -Fc "$DATABASE_URL" > before.dump` / `pg_restore --clean -d "$DATABASE_URL" '
                           "before.dump`)")
                out.append(Finding(
                    check=DESTRUCTIVE, severity=sev, file=str(mig.up),
                    message=f"migration {mig.version} up (line {st.line}) runs {hz.kind} on {hz.target}: "
                            f"{why}{tail}",
                    fix=fix))
    return out


def check_non_transactional(inp: Inputs) -> list[Finding]:
    """A statement that cannot run in a transaction, mixed with other statements in one file."""
    out: list[Finding] = []
    for mig in inp.migrations:
        for path, direction in ((mig.up, "up"), (mig.down, "down")):
            if path is None:
                continue
            stmts = [s for s in inp.sql(path) if not is_noop(s)]
            if len(stmts) < 2:
                continue
            for st in stmts:
                what = non_transactional(st, inp.postgres_major)
                if what:
                    out.append(Finding(
                        check=NON_TRANSACTIONAL, severity=WARNING, file=str(path),
                        message=f"migration {mig.version} {direction} (line {st.line}) runs {what}, which cannot run "
                                f"inside a transaction, with {len(stmts) - 1} other statement(s) in the same file: "
                                "a tool that runs the file in one transaction fails on it every time, one that runs "
                                "it statement by statement can leave it half applied (version marked dirty)",
                        fix=f"move the {what.split(' (')[0]} statement (line {st.line}) of {path.name} into a "
                            "migration file of its own"))
    return out


def _deployments(inp: Inputs) -> dict[str, K8sObject]:
    return {o.name: o for o in inp.manifests or [] if o.kind == "deployment"}


def check_workloads(inp: Inputs) -> list[Finding]:
    """The deployments the scenario tracks are defined by the manifests."""
    if inp.manifests is None:
        return []
    deps = _deployments(inp)
    if any("$" in n for n in deps):
        return []
    out: list[Finding] = []
    for w in inp.scenario.app.workloads:
        if w.deployment not in deps:
            known = ", ".join(sorted(deps)) or "none"
            out.append(Finding(
                check=WORKLOADS, severity=FAILURE, file=str(inp.scenario.directory / "scenario.yaml"),
                message=f"the scenario tracks deployment/{w.deployment}, which the manifests do not define "
                        f"(their deployments: {known})",
                fix=f"set app.workloads[].deployment to one of: {known}"))
    return out


def _history_limit(dep: K8sObject) -> int | None:
    spec = dep.doc.get("spec")
    value = (spec if isinstance(spec, dict) else {}).get("revisionHistoryLimit", DEFAULT_REVISION_HISTORY_LIMIT)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _kept(revisions: dict[int, str], current: int, limit: int) -> set[int]:
    """What Kubernetes keeps once a rollout completes: the current revision and the `limit` newest old ones."""
    return {current, *sorted((r for r in revisions if r != current), reverse=True)[:limit]}


def check_revision_history(inp: Inputs) -> list[Finding]:
    """revisionHistoryLimit vs the runbook's `rollout undo --to-revision=N` (see docs/preflight.md: the rule)."""
    out: list[Finding] = []
    deps = _deployments(inp)
    calls = kubectl_calls(inp.steps)
    for w in inp.scenario.app.workloads:
        dep = deps.get(w.deployment)
        if dep is None:
            continue
        limit = _history_limit(dep)
        if limit is None:
            continue
        if limit == 0:
            out.append(Finding(
                check=REVISION_HISTORY, severity=WARNING, file=str(dep.file),
                message=f"deployment/{dep.name} has revisionHistoryLimit: 0: rollout undo impossible once a "
                        "rollout completes (Kubernetes then deletes every old ReplicaSet)",
                fix=f"set revisionHistoryLimit to at least 2 in {dep.file.name} (Kubernetes' default is 10)"))
        # Simulate revisions: each template change makes a new one; a rollback re-numbers the revision it
        # brings back; after each, only the current revision and the `limit` newest old ones are kept.
        unlimited: dict[int, str] = dict(REHEARSAL_REVISIONS)  # what would exist with no limit
        latest = max(unlimited)
        alive = _kept(unlimited, latest, limit)
        for call in calls:
            if not any(r.kind == "deployment" and _resolve(r.name, inp.variables) == dep.name for r in call.refs):
                continue
            label = f"step {call.step.index}: {' '.join(call.positionals[:2])}"
            if call.is_undo and not call.plain_undo:
                try:
                    n = int(call.to_revision or "")
                except ValueError:
                    break  # a variable: cannot follow the revisions any further
                if n not in alive:
                    created = ", ".join(f"{r} ({what})" for r, what in sorted(unlimited.items()))
                    if n in unlimited:
                        old = sorted((r for r in unlimited if r != latest), reverse=True)
                        need = old.index(n) + 1
                        why = (f"which Kubernetes will have pruned: revisionHistoryLimit {limit} keeps the current "
                               f"revision and {limit} old one(s), and by then the rehearsal has made revisions "
                               f"{created}, so only {', '.join(str(r) for r in sorted(alive))} remain")
                        fix = (f"set revisionHistoryLimit to at least {need} in {dep.file.name}, or roll back "
                               f"without a revision number (`kubectl rollout undo deployment/{dep.name}` once)")
                    else:
                        why = f"which does not exist: by then the rehearsal has made revisions {created}"
                        fix = (f"roll back without a revision number (`kubectl rollout undo deployment/{dep.name}`), "
                               "or use the revision `kubectl rollout history` shows for the good release")
                    out.append(Finding(
                        check=REVISION_HISTORY, severity=FAILURE, file=str(inp.runbook_path),
                        message=f"{inp.step_where(call.step)} rolls deployment/{dep.name} back to revision {n}, "
                                f"{why}", fix=fix))
                    break  # that step fails: the rehearsal stops there
                if n == latest:
                    continue  # already the current revision: kubectl skips
                label += f" to revision {n}"
                alive.discard(n)
                unlimited.pop(n)
            elif call.plain_undo:
                old = [r for r in alive if r != latest]
                if not old:
                    break  # nothing to undo to: the limit-0 warning above says so
                alive.discard(max(old))
                unlimited.pop(max(old))
            elif not call.changes_template:
                continue
            latest = max([*unlimited, latest]) + 1
            unlimited[latest] = label
            alive = {r for r in _kept(unlimited, latest, limit) if r in alive or r == latest}
    return out


def _resolve(name: str, variables: dict[str, str]) -> str:
    return string.Template(name).safe_substitute(variables)


def check_runbook_objects(inp: Inputs) -> list[Finding]:
    """kubectl commands of the runbook section name objects the manifests define."""
    if inp.manifests is None:
        return []
    defined: dict[str, set[str]] = {}
    for o in inp.manifests:
        defined.setdefault(o.kind, set()).add(_resolve(o.name, inp.variables))
    out: list[Finding] = []
    for call in kubectl_calls(inp.steps):
        for ref in call.refs:
            name = _resolve(ref.name, inp.variables)
            names = defined.get(ref.kind, set())
            if "$" in name or any("$" in n for n in names) or name in names:
                continue
            others = ", ".join(f"{ref.kind}/{n}" for n in sorted(names)) or f"no {ref.kind}"
            out.append(Finding(
                check=RUNBOOK_OBJECTS, severity=FAILURE, file=str(inp.runbook_path),
                message=f"{inp.step_where(call.step)} refers to {ref.kind}/{ref.name} which the manifests do not "
                        f"define (they define {others})",
                fix=f"update the runbook to the current name ({others}), or add {ref.kind} {ref.name} to "
                    f"{inp.manifests_path.name if inp.manifests_path else 'the manifests'}"))
        if call.refs and call.namespace not in _NAMESPACE_VARS:
            where = ("without -n" if call.namespace is None else f"with the fixed namespace {call.namespace}")
            out.append(Finding(
                check=RUNBOOK_NAMESPACE, severity=WARNING, file=str(inp.runbook_path),
                message=f"{inp.step_where(call.step)} runs kubectl {where}: in the rehearsal the app lives in its "
                        "own namespace, so the step acts on "
                        + ("the kubeconfig's default namespace" if call.namespace is None else call.namespace),
                fix='pass -n "$NAMESPACE" (the rehearsal sets it; production sets it to the real namespace)'))
    return out


def check_double_undo(inp: Inputs) -> list[Finding]:
    """`rollout undo` twice for one deployment without --to-revision: the second flips back to the bad version."""
    first: dict[str, Kubectl] = {}
    out: list[Finding] = []
    for call in kubectl_calls(inp.steps):
        if not call.plain_undo:
            continue
        for ref in call.refs:
            if ref.kind != "deployment":
                continue
            name = _resolve(ref.name, inp.variables)
            prev = first.get(name)
            if prev is None:
                first[name] = call
                continue
            out.append(Finding(
                check=DOUBLE_UNDO, severity=FAILURE, file=str(inp.runbook_path),
                message=f"{inp.step_where(call.step)} runs `rollout undo` for deployment/{ref.name} a second time "
                        f"without --to-revision (first: {inp.step_where(prev.step)}): `rollout undo` goes to the "
                        "previous revision, which after the first undo is the bad version again",
                fix=f"undo once, or name the good revision: `kubectl rollout undo deployment/{ref.name} "
                    "--to-revision=<N>` with N from `kubectl rollout history`"))
    return out


def _good_image_patterns(s: Scenario) -> list[re.Pattern[str]]:
    pats = [re.compile(r"\$\{?GOOD_IMAGE\}?"), re.compile(r"\$\{?GOOD_TAG\}?"),
            re.compile(r"(^|=)" + re.escape(s.versions.good.image) + r"$")]
    if s.versions.good.tag:
        pats.append(re.compile(r":" + re.escape(s.versions.good.tag) + r"$"))
    return pats


def check_down_with_good_image(inp: Inputs) -> list[Finding]:
    """`migrate down` run with the good (old) image, which may not contain the down script."""
    pats = _good_image_patterns(inp.scenario)
    down_cmd = (inp.scenario.migrations.down or "") if inp.scenario.migrations else ""
    tool = down_cmd.split()[0] if down_cmd.split() else "migrate"
    out: list[Finding] = []
    for step in inp.steps:
        for words in simple_commands(step.command):
            hit = next((n for n, w in enumerate(words) if any(p.search(w) for p in pats)), None)
            if hit is None:
                continue
            rest = words[hit + 1:]
            if "down" in rest and any("migrate" in w or w == tool for w in words):
                out.append(Finding(
                    check=DOWN_WITH_GOOD_IMAGE, severity=WARNING, file=str(inp.runbook_path),
                    message=f"{inp.step_where(step)} migrates down with the good (old) image ({words[hit]}): "
                            "the old image may not contain the down script of the migration the bad release added",
                    fix='run the down migration with the bad release\'s image ("$BAD_IMAGE"), which ships it, '
                        "then roll the app back"))
                break
    return out


Check = Callable[[Inputs], list[Finding]]
CHECKS: dict[str, Check] = {
    MIGRATION_PAIRS: check_migration_pairs,
    NOOP_DOWN: check_noop_down,
    DESTRUCTIVE: check_destructive,
    NON_TRANSACTIONAL: check_non_transactional,
    WORKLOADS: check_workloads,
    REVISION_HISTORY: check_revision_history,
    RUNBOOK_OBJECTS: check_runbook_objects,  # also reports RUNBOOK_NAMESPACE
    DOUBLE_UNDO: check_double_undo,
    DOWN_WITH_GOOD_IMAGE: check_down_with_good_image,
}


def run_checks(scenario: Scenario, only: Iterable[str] | None = None) -> list[Finding]:
    """Every check (or those named in `only`) on one scenario; failures first."""
    inp = gather(scenario)
    findings = list(inp.problems)
    for check_id, check in CHECKS.items():
        if only is None or check_id in set(only):
            findings.extend(check(inp))
    return sorted(findings, key=lambda f: f.severity != FAILURE)

