"""Alembic revisions read with Python's `ast`: what `upgrade()` and `downgrade()` are, the `op.*` calls
they make (`batch_op.*` inside `with op.batch_alter_table(...)` too) and the SQL they pass to
`op.execute` / `connection.execute` (a string, an f-string, or `sa.text(...)` of one).

A file is an Alembic revision when it defines `upgrade()` at module level and names its `revision` or
imports alembic; anything else in the directory (env.py, helpers) is not a migration.
"""

from __future__ import annotations

import ast
import builtins
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness.preflight.dsl import RAW_SQL_METHODS, Call, Direction, FrameworkMigration, Value
from harness.preflight.js_migrations import MigrationSyntaxError
from harness.preflight.sql import Statement, split_sql

_BUILTINS = frozenset(dir(builtins))
_SQL_WRAPPERS = frozenset({"text", "literal_column"})  # sa.text("...") carries its SQL in its first argument


def _short(source: str, node: ast.AST, limit: int = 80) -> str:
    one = " ".join((ast.get_source_segment(source, node) or ast.unparse(node)).split())
    return one if len(one) <= limit else one[:limit - 3] + "..."


def _string(node: ast.expr) -> str | None:
    """A string literal's value; an f-string with its placeholders as written (`{table}`)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{" + ast.unparse(v.value) + "}"  # type: ignore[attr-defined]
                       for v in node.values)
    return None


def _value(source: str, node: ast.expr) -> Value:
    text = _short(source, node, 120)
    s = _string(node)
    if s is not None:
        return Value(text, "string", string=s)
    if isinstance(node, (ast.List, ast.Tuple)):
        return Value(text, "array", items=tuple(_value(source, e) for e in node.elts))
    if isinstance(node, ast.Dict):
        return Value(text, "object", entries={k.value: _value(source, v) for k, v in zip(node.keys, node.values)
                                              if isinstance(k, ast.Constant) and isinstance(k.value, str)})
    if isinstance(node, ast.Call):
        return Value(text, "call", items=tuple(_value(source, a) for a in node.args),
                     entries={k.arg: _value(source, k.value) for k in node.keywords if k.arg})
    return Value(text)


def _name(node: ast.expr) -> str:
    """The last name of `op.execute` / `sa.text` / `text`."""
    return node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""


def _root(node: ast.expr) -> str:
    while isinstance(node, (ast.Attribute, ast.Call, ast.Subscript)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else ""


def _sql_argument(node: ast.Call) -> tuple[str, ast.expr] | None:
    """The SQL text of `op.execute("...")` / `op.execute(sa.text("..."))`, and the node it starts at."""
    if not node.args:
        return None
    arg = node.args[0]
    if isinstance(arg, ast.Call) and _name(arg.func) in _SQL_WRAPPERS and arg.args:
        arg = arg.args[0]
    s = _string(arg)
    return (s, arg) if s is not None else None


@dataclass
class _Walk:
    source: str
    receivers: dict[str, str | None]  # `op`, and each `with op.batch_alter_table(t) as name` → t
    calls: list[Call] = field(default_factory=list)
    sql: list[Statement] = field(default_factory=list)

    def visit(self, node: ast.AST, in_op_args: bool = False) -> None:
        if isinstance(node, (ast.With, ast.AsyncWith)):
            self._bind(node)
        if not isinstance(node, ast.Call):
            for child in ast.iter_child_nodes(node):
                self.visit(child, in_op_args)
            return
        method, root = _name(node.func), _root(node.func)
        is_op = not in_op_args and (
            (isinstance(node.func, ast.Attribute) and (root in self.receivers or method in RAW_SQL_METHODS))
            or (isinstance(node.func, ast.Name) and method not in _BUILTINS))  # a helper of the revision
        if is_op:
            on = root if isinstance(node.func, ast.Attribute) else ""
            self._record(node, method, self.receivers.get(on), on)
        self.visit(node.func, in_op_args)
        for child in [*node.args, *(k.value for k in node.keywords)]:
            self.visit(child, in_op_args or is_op)

    def _bind(self, node: ast.With | ast.AsyncWith) -> None:
        """`with op.batch_alter_table("users") as batch_op:` — batch_op's calls are on table users."""
        for item in node.items:
            ctx = item.context_expr
            if isinstance(ctx, ast.Call) and _root(ctx.func) in self.receivers and isinstance(item.optional_vars,
                                                                                               ast.Name):
                table = next((s for a in ctx.args[:1] if (s := _string(a)) is not None), None)
                self.receivers[item.optional_vars.id] = table

    def _record(self, node: ast.Call, method: str, table: str | None, receiver: str) -> None:
        found = _sql_argument(node) if method in RAW_SQL_METHODS else None
        self.calls.append(Call(method, tuple(_value(self.source, a) for a in node.args), node.lineno,
                               _short(self.source, node), table, receiver,
                               {k.arg: _value(self.source, k.value) for k in node.keywords if k.arg},
                               sql_read=found is not None))
        if found is not None:
            text, at = found
            self.sql.extend(replace(st, line=st.line + at.lineno - 1) for st in split_sql(text))


def _is_noop(st: ast.stmt) -> bool:
    """`pass`, `...`, a docstring, `return` / `return None`."""
    if isinstance(st, ast.Pass):
        return True
    if isinstance(st, ast.Expr) and isinstance(st.value, ast.Constant):
        return st.value.value is Ellipsis or isinstance(st.value.value, str)
    return isinstance(st, ast.Return) and (st.value is None or (isinstance(st.value, ast.Constant)
                                                                 and st.value.value is None))


def _direction(source: str, fn: ast.FunctionDef | ast.AsyncFunctionDef | None) -> Direction:
    if fn is None:
        return Direction("missing", 1)
    real = [st for st in fn.body if not _is_noop(st)]
    if not real:
        return Direction("empty", fn.lineno, written="; ".join(_short(source, st, 40) for st in fn.body))
    if isinstance(real[0], ast.Raise):
        return Direction("irreversible", real[0].lineno, written=_short(source, real[0]))
    walk = _Walk(source, {"op": None})
    for st in fn.body:
        walk.visit(st)
    return Direction("code", fn.lineno, tuple(sorted(walk.calls, key=lambda c: c.line)), tuple(walk.sql))


def _revision(tree: ast.Module) -> str | None:
    for st in tree.body:
        if isinstance(st, (ast.Assign, ast.AnnAssign)):
            targets = st.targets if isinstance(st, ast.Assign) else [st.target]
            if any(isinstance(t, ast.Name) and t.id == "revision" for t in targets) and st.value is not None:
                return _string(st.value)
    return None


def _imports_alembic(tree: ast.Module) -> bool:
    return any((isinstance(st, ast.ImportFrom) and (st.module or "").split(".")[0] == "alembic")
               or (isinstance(st, ast.Import) and any(a.name.split(".")[0] == "alembic" for a in st.names))
               for st in tree.body)


def read_alembic(path: Path, text: str) -> FrameworkMigration | None:
    """The revision a Python file defines, or None when it is not an Alembic revision.
    MigrationSyntaxError when it does not parse."""
    try:
        tree = ast.parse(text, filename=str(path))
    except (SyntaxError, ValueError) as exc:
        line = getattr(exc, "lineno", None)
        raise MigrationSyntaxError(f"line {line or '?'} does not parse as Python: {getattr(exc, 'msg', exc)}") \
            from None
    functions = {st.name: st for st in tree.body if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef))}
    revision = _revision(tree)
    if "upgrade" not in functions or (revision is None and not _imports_alembic(tree)):
        return None
    return FrameworkMigration("Alembic", path, revision or path.stem, _direction(text, functions["upgrade"]),
                              _direction(text, functions.get("downgrade")))
