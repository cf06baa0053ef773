"""SQL reading for preflight: statements, their significant tokens, and what they do to a rollback.

SQL is read with a real tokenizer (sqlparse), so comments, string literals
and dollar-quoted function bodies never look like statements. Nothing here
knows about files or scenarios: `split_sql` takes text, the rest take a
`Statement`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import sqlparse
from sqlparse import tokens as T


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
_ADD_CONSTRAINT = {"CONSTRAINT", "PRIMARY", "UNIQUE", "FOREIGN", "CHECK", "EXCLUDE"}
# One ALTER TABLE action (`DROP COLUMN x`, `ADD y int NOT NULL`, ...) -> its hazard, if any.
_Action = Callable[[list[Tok], str, Statement], Hazard | None]


def _drop_action(action: list[Tok], table: str, st: Statement) -> Hazard | None:
    if action[1:2] and action[1].up == "CONSTRAINT":
        return None
    j = _skip(action, _skip(action, 1, "COLUMN"), "IF", "EXISTS")
    col, _ = _name(action, j)
    return Hazard("DROP COLUMN", f"{table}.{col}", st)


def _alter_action(action: list[Tok], table: str, st: Statement) -> Hazard | None:
    col, j = _name(action, _skip(action, 1, "COLUMN"))
    rest = [t.up for t in action[j:]]
    if rest[:1] == ["TYPE"] or rest[:3] == ["SET", "DATA", "TYPE"]:
        k = j + (1 if rest[:1] == ["TYPE"] else 3)
        end = next((n for n in range(k, len(action)) if action[n].depth == 0
                    and action[n].up in ("USING", "COLLATE")), len(action))
        return Hazard("ALTER COLUMN TYPE", f"{table}.{col} to {_text(action[k:end])}", st)
    if rest[:3] == ["SET", "NOT", "NULL"]:
        return Hazard("SET NOT NULL", f"{table}.{col}", st)
    return None


def _add_action(action: list[Tok], table: str, st: Statement) -> Hazard | None:
    if action[1:2] and action[1].up in _ADD_CONSTRAINT:
        return None
    j = _skip(action, _skip(action, 1, "COLUMN"), "IF", "NOT", "EXISTS")
    col, j = _name(action, j)
    words = [t.up for t in action[j:] if t.depth == 0]
    not_null = any(words[k:k + 2] == ["NOT", "NULL"] for k in range(len(words)))
    has_default = "DEFAULT" in words or "GENERATED" in words or bool(_SERIAL & set(words))
    if not_null and not has_default:
        return Hazard("ADD COLUMN NOT NULL without DEFAULT", f"{table}.{col}", st)
    return None


def _rename_action(action: list[Tok], table: str, st: Statement) -> Hazard | None:
    second = action[1].up if action[1:2] else ""
    if second == "TO":
        new, _ = _name(action, 2)
        return Hazard("RENAME TABLE", f"{table} to {new}", st)
    if second == "CONSTRAINT":
        return None
    col, j = _name(action, _skip(action, 1, "COLUMN"))
    new, _ = _name(action, _skip(action, j, "TO"))
    return Hazard("RENAME COLUMN", f"{table}.{col} to {new}", st)


_ALTER_TABLE_ACTIONS: dict[str, _Action] = {
    "DROP": _drop_action, "ALTER": _alter_action, "ADD": _add_action, "RENAME": _rename_action,
}


def _alter_table_hazards(st: Statement) -> list[Hazard]:
    toks = list(st.toks)
    i = _skip(toks, 2, "IF", "EXISTS")
    i = _skip(toks, i, "ONLY")
    table, i = _name(toks, i)
    if i < len(toks) and toks[i].value == "*":
        i += 1
    out: list[Hazard] = []
    for action in _split_top(toks[i:]):
        rule = _ALTER_TABLE_ACTIONS.get(action[0].up)
        hazard = rule(action, table, st) if rule else None
        if hazard:
            out.append(hazard)
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

