"""JavaScript and TypeScript migrations (knex, node-pg-migrate, db-migrate, Sequelize, TypeORM), read with
tree-sitter: what `up` and `down` are, the schema calls they make and the SQL they pass.

Every export form the libraries document is read: `exports.up = ...`, `module.exports = { up, down }`
(methods, arrow functions, or local functions by name), `export const up`, `export async function down`,
`export default { ... }`, and a class with `up` / `down` methods (TypeORM's `MigrationInterface`,
`export class` or `module.exports = class`). Comments and strings are never read as code.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import tree_sitter_javascript
import tree_sitter_typescript
from tree_sitter import Language, Node, Parser

from harness.preflight.dsl import RAW_SQL_METHODS, Call, Direction, FrameworkMigration, Value
from harness.preflight.sql import Statement, split_sql


class MigrationSyntaxError(ValueError):
    """The file does not parse: its checks are skipped and an `inputs` warning says where."""


_JS = Language(tree_sitter_javascript.language())
_TS = Language(tree_sitter_typescript.language_typescript())
LANGUAGES: dict[str, Language] = {".js": _JS, ".cjs": _JS, ".mjs": _JS, ".ts": _TS, ".mts": _TS, ".cts": _TS}
_parsers = threading.local()  # a Parser is not shared between threads (scenarios side by side, `-j N`)

_FUNCTIONS = frozenset({"function_expression", "function", "arrow_function", "function_declaration",
                        "method_definition", "generator_function", "generator_function_declaration"})
# The migration's tool, from the name or TypeScript type of up's first parameter, as each library's docs
# and templates write it, or from an export only one library reads.
_RECEIVER_TOOLS = {"pgm": "node-pg-migrate", "knex": "knex", "queryInterface": "Sequelize",
                   "queryRunner": "TypeORM", "db": "db-migrate"}
_TYPE_TOOLS = {"MigrationBuilder": "node-pg-migrate", "Knex": "knex", "QueryInterface": "Sequelize",
               "QueryRunner": "TypeORM"}
_EXPORT_TOOLS = {"shorthands": "node-pg-migrate", "_meta": "db-migrate", "setup": "db-migrate"}
UNKNOWN_TOOL = "JavaScript"  # the library could not be told: "JavaScript migration 20240101_x.js ..."
_JS_GLOBALS = frozenset({"require", "Number", "String", "Boolean", "BigInt", "Symbol", "parseInt", "parseFloat",
                         "setTimeout", "Date"})
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0"}


def _parser(language: Language) -> Parser:
    cache: dict[int, Parser] = _parsers.__dict__.setdefault("by_language", {})
    return cache.setdefault(id(language), Parser(language))


def _text(node: Node) -> str:
    return (node.text or b"").decode("utf-8", "replace")


def _line(node: Node) -> int:
    return node.start_point.row + 1


def _short(node: Node, limit: int = 80) -> str:
    one = " ".join(_text(node).split())
    return one if len(one) <= limit else one[:limit - 3] + "..."


def _unwrap(node: Node) -> Node:
    """The expression inside parentheses, `await`, and TypeScript's `x as T` / `x!` / `x satisfies T`."""
    while node.type in ("parenthesized_expression", "await_expression", "as_expression", "non_null_expression",
                        "satisfies_expression") and node.named_child_count:
        node = node.named_children[0]
    return node


# ── values ──────────────────────────────────────────────────────────────────
def _string_value(node: Node) -> str | None:
    """A string literal's value: quotes, escapes, template substitutions (as their source), `'a' + 'b'`."""
    if node.type in ("string", "template_string"):
        parts: list[str] = []
        for child in node.named_children:
            if child.type == "string_fragment":
                parts.append(_text(child))
            elif child.type == "escape_sequence":
                esc = _text(child)[1:]
                parts.append(_ESCAPES.get(esc, esc))
            elif child.type == "template_substitution":
                parts.append(" ".join(_text(child)[2:-1].split()))
        return "".join(parts)
    if node.type == "binary_expression" and node.child_by_field_name("operator") is not None \
            and _text(node.child_by_field_name("operator")) == "+":  # type: ignore[arg-type]
        left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
        a = _string_value(_unwrap(left)) if left else None
        b = _string_value(_unwrap(right)) if right else None
        return a + b if a is not None and b is not None else None
    return None


def _key(node: Node) -> str:
    return _string_value(node) if node.type == "string" else _text(node)  # type: ignore[return-value]


def value(node: Node) -> Value:
    node = _unwrap(node)
    text = _short(node, 120)
    s = _string_value(node)
    if s is not None:
        return Value(text, "string", string=s)
    if node.type == "array":
        return Value(text, "array", items=tuple(value(c) for c in node.named_children if c.type != "comment"))
    if node.type == "object":
        entries: dict[str, Value] = {}
        for c in node.named_children:
            if c.type == "pair" and (k := c.child_by_field_name("key")) and (v := c.child_by_field_name("value")):
                entries[_key(k)] = value(v)
            elif c.type == "shorthand_property_identifier":
                entries[_text(c)] = Value(_text(c))
        return Value(text, "object", entries=entries)
    if node.type in ("call_expression", "new_expression"):
        args = node.child_by_field_name("arguments")
        return Value(text, "call", items=tuple(value(a) for a in (args.named_children if args else [])
                                               if a.type != "comment"))
    return Value(text)


# ── the exports ─────────────────────────────────────────────────────────────
@dataclass
class _Module:
    """What a migration file exports under the names `up` and `down` (None: exported as nothing)."""

    exported: dict[str, Node | None] = field(default_factory=dict)
    other_exports: set[str] = field(default_factory=set)
    classes: list[Node] = field(default_factory=list)  # classes that define up / down
    local: dict[str, Node] = field(default_factory=dict)  # top-level functions and constants by name

    def export(self, name: str, node: Node | None) -> None:
        if name in ("up", "down"):
            self.exported[name] = node
        else:
            self.other_exports.add(name)


def _exports_member(left: Node) -> str | None:
    """`exports.up` / `module.exports.up` → "up"; `module.exports` → ""; else None."""
    if left.type != "member_expression":
        return None
    obj, prop = left.child_by_field_name("object"), left.child_by_field_name("property")
    if obj is None or prop is None:
        return None
    if _text(obj) in ("exports", "module.exports"):
        return _text(prop)
    return "" if _text(left) == "module.exports" else None


def _object_members(module: _Module, obj: Node) -> None:
    """`{ up: fn, async down() {}, up }` (a shorthand names a local function)."""
    for c in obj.named_children:
        if c.type == "pair" and (k := c.child_by_field_name("key")):
            module.export(_key(k), c.child_by_field_name("value"))
        elif c.type == "method_definition" and (n := c.child_by_field_name("name")):
            module.export(_text(n), c)
        elif c.type == "shorthand_property_identifier":
            module.export(_text(c), module.local.get(_text(c)))


def _class_members(module: _Module, cls: Node) -> None:
    body = cls.child_by_field_name("body")
    methods = {_text(n): m for m in (body.named_children if body else [])
               if m.type == "method_definition" and (n := m.child_by_field_name("name"))}
    if "up" in methods or "down" in methods:
        module.classes.append(cls)
        for name in ("up", "down"):
            module.export(name, methods.get(name))


def _exported_value(module: _Module, node: Node) -> None:
    """What `module.exports = X` or `export default X` exports."""
    node = _unwrap(node)
    if node.type == "identifier":
        node = module.local.get(_text(node), node)
    if node.type == "object":
        _object_members(module, node)
    elif node.type in ("class", "class_declaration"):
        _class_members(module, node)


def _declarations(module: _Module, node: Node) -> Iterator[tuple[str, Node]]:
    """Names a top-level statement declares: functions, classes, `const x = ...`."""
    if node.type in ("function_declaration", "generator_function_declaration", "class_declaration"):
        name = node.child_by_field_name("name")
        if name is not None:
            yield _text(name), node
    elif node.type in ("lexical_declaration", "variable_declaration"):
        for d in node.named_children:
            name, val = d.child_by_field_name("name"), d.child_by_field_name("value")
            if d.type == "variable_declarator" and name is not None and val is not None:
                yield _text(name), val


def _read_exports(root: Node) -> _Module:
    module = _Module()
    for top in root.named_children:
        inner = top.child_by_field_name("declaration") if top.type == "export_statement" else top
        for name, decl in _declarations(module, inner) if inner is not None else ():
            module.local[name] = decl
    for top in root.named_children:
        if top.type == "expression_statement" and top.named_child_count:
            expr = top.named_children[0]
            left, right = expr.child_by_field_name("left"), expr.child_by_field_name("right")
            if expr.type == "assignment_expression" and left is not None and right is not None:
                member = _exports_member(left)
                if member:
                    module.export(member, right)
                elif member == "":
                    _exported_value(module, right)
        elif top.type == "export_statement":
            _read_export_statement(module, top)
    return module


def _read_export_statement(module: _Module, top: Node) -> None:
    decl = top.child_by_field_name("declaration")
    val = top.child_by_field_name("value")
    if decl is not None and decl.type == "class_declaration":
        _class_members(module, decl)
    elif decl is not None:
        for name, node in _declarations(module, decl):
            module.export(name, node)
    elif val is not None:
        _exported_value(module, val)
    for clause in (c for c in top.named_children if c.type == "export_clause"):
        for spec in clause.named_children:
            name, alias = spec.child_by_field_name("name"), spec.child_by_field_name("alias")
            if name is not None:
                module.export(_text(alias or name), module.local.get(_text(name)))


# ── one direction ───────────────────────────────────────────────────────────
def _params(fn: Node) -> list[tuple[str, str]]:
    """(name, TypeScript type or "") of a function's parameters."""
    params = fn.child_by_field_name("parameters") or fn.child_by_field_name("parameter")
    if params is None:
        return []
    if params.type == "identifier":  # `pgm => ...`
        return [(_text(params), "")]
    out: list[tuple[str, str]] = []
    for p in params.named_children:
        pattern = p.child_by_field_name("pattern") if p.type in ("required_parameter", "optional_parameter") else p
        annotation = p.child_by_field_name("type")
        if pattern is not None and pattern.type == "identifier":
            out.append((_text(pattern), _text(annotation).lstrip(": ").strip() if annotation else ""))
    return out


def _is_noop_expression(expr: Node, params: set[str]) -> bool:
    """`null`, `undefined`, `Promise.resolve()`, a string (`'use strict'`), or `callback()` / `done(null)`
    (db-migrate's old callback style: the down reports success having done nothing)."""
    expr = _unwrap(expr)
    if expr.type in ("null", "undefined", "string") or _text(expr) == "undefined":
        return True
    if expr.type != "call_expression":
        return False
    callee, args = expr.child_by_field_name("function"), expr.child_by_field_name("arguments")
    arg_nodes = [a for a in (args.named_children if args else []) if a.type != "comment"]
    if callee is not None and _text(callee) == "Promise.resolve" and not arg_nodes:
        return True
    return callee is not None and callee.type == "identifier" and _text(callee) in params and all(
        a.type in ("null", "undefined") for a in arg_nodes)


def _is_noop_statement(st: Node, params: set[str]) -> bool:
    if st.type in ("empty_statement", "comment"):
        return True
    if st.type == "return_statement":
        return not st.named_children or all(_is_noop_expression(c, params) for c in st.named_children
                                            if c.type != "comment")
    if st.type == "expression_statement" and st.named_child_count:
        return _is_noop_expression(st.named_children[0], params)
    return False


def _state(fn: Node, params: set[str]) -> tuple[str, str]:
    """("code" | "empty" | "irreversible", how it reads) of a function."""
    body = fn.child_by_field_name("body")
    if body is None:
        return "code", ""
    if body.type != "statement_block":  # an arrow function's expression body
        return ("empty", _short(fn)) if _is_noop_expression(body, params) else ("code", "")
    statements = [s for s in body.named_children if s.type != "comment"]
    real = [s for s in statements if not _is_noop_statement(s, params)]
    if not real:
        return "empty", _short(fn)
    if real[0].type == "throw_statement":
        return "irreversible", _short(real[0])
    return "code", ""


@dataclass
class _Walk:
    """The calls of one direction, gathered in source order."""

    calls: list[Call] = field(default_factory=list)
    sql: list[Statement] = field(default_factory=list)


def _chain_root(node: Node) -> Node:
    """The identifier a call chain starts from: `knex.schema.alterTable(...)` → `knex`."""
    node = _unwrap(node)
    while node.type in ("member_expression", "call_expression", "subscript_expression"):
        inner = node.child_by_field_name("object") if node.type != "call_expression" \
            else node.child_by_field_name("function")
        if inner is None:
            break
        node = _unwrap(inner)
    return node


def _raw_sql(arg: Value, node: Node) -> list[Statement] | None:
    """The statements of a literal SQL argument at their lines in the file; None when it is no literal."""
    if arg.string is None:
        return None
    return [replace(st, line=st.line + _line(node) - 1) for st in split_sql(arg.string)]


def _record(walk: _Walk, call: Node, method: str, args: list[Node], table: str | None, receiver: str) -> None:
    values = tuple(value(a) for a in args)
    sql = _raw_sql(values[0], _unwrap(args[0])) if method in RAW_SQL_METHODS and args else None
    walk.calls.append(Call(method, values, _line(call), _short(call), table, receiver, sql_read=sql is not None))
    walk.sql.extend(sql or [])


def _walk(node: Node, scope: dict[str, str | None], walk: _Walk, in_op_args: bool = False) -> None:
    """Gather the DSL calls: calls on a parameter (the migration's receiver or a callback's table builder),
    and calls of helper functions. Calls inside an operation's arguments build values (`pgm.func('now()')`,
    `knex.raw('now()')` as a default): not operations, unless inside a callback (`alterTable('t', t => ...)`)."""
    if node.type in _FUNCTIONS:
        inner = dict(scope)
        inner.update({name: None for name, _ in _params(node) if name not in scope})
        body = node.child_by_field_name("body")
        if body is not None:
            _walk(body, inner, walk)
        return
    if node.type != "call_expression":
        for child in node.named_children:
            _walk(child, scope, walk, in_op_args)
        return
    callee = _unwrap(node.child_by_field_name("function"))  # type: ignore[arg-type]
    args_node = node.child_by_field_name("arguments")
    args = [a for a in (args_node.named_children if args_node else []) if a.type != "comment"]
    root = _chain_root(callee)
    if callee.type == "identifier":  # a helper; calling a parameter starts a query (`knex('users')`)
        is_op = not in_op_args and _text(callee) not in scope and _text(callee) not in _JS_GLOBALS
        method = _text(callee)
    else:
        prop = callee.child_by_field_name("property")
        method = _text(prop) if prop is not None else _text(callee)
        is_op = not in_op_args and root.type in ("identifier", "this") and _text(root) in scope
    table = scope.get(_text(root)) if root.type == "identifier" else None
    if is_op:
        _record(walk, node, method, args, table, _text(root) if callee.type != "identifier" else "")
    if callee.type != "identifier":
        _walk(callee.child_by_field_name("object"), scope, walk, in_op_args)  # type: ignore[arg-type]
    bound = next((s for a in args if (s := _string_value(_unwrap(a))) is not None), None) if is_op else None
    for a in args:
        if a.type in _FUNCTIONS and bound is not None:
            params = _params(a)
            _walk(a, {**scope, **({params[0][0]: bound} if params else {})}, walk)
        else:
            _walk(a, scope, walk, in_op_args or is_op)


def _direction(fn: Node | None) -> Direction:
    if fn is None:
        return Direction("missing", 1)
    fn = _unwrap(fn)
    if fn.type == "false":  # node-pg-migrate's declaration that the migration cannot be reverted
        return Direction("irreversible", _line(fn), written=_short(fn.parent) if fn.parent else "false")
    if fn.type in ("null", "undefined") or _text(fn) == "undefined":
        return Direction("missing", _line(fn), written=_short(fn))
    if fn.type not in _FUNCTIONS:
        return Direction("code", _line(fn))  # a value the reader cannot follow: assumed to be real code
    params = _params(fn)
    state, written = _state(fn, {name for name, _ in params})
    if state != "code":
        return Direction(state, _line(fn), written=written)  # type: ignore[arg-type]
    walk = _Walk()
    body = fn.child_by_field_name("body")
    if body is not None:
        _walk(body, {name: None for name, _ in params}, walk)
    calls = sorted(walk.calls, key=lambda c: c.line)  # a chain is gathered outside in
    return Direction("code", _line(fn), tuple(calls), tuple(walk.sql))


def _tool(module: _Module) -> str:
    up = module.exported.get("up")
    params = _params(_unwrap(up)) if up is not None and _unwrap(up).type in _FUNCTIONS else []
    if params:
        name, annotation = params[0]
        for type_name, tool in _TYPE_TOOLS.items():
            if re.search(rf"\b{type_name}\b", annotation):
                return tool
        if name in _RECEIVER_TOOLS:
            return _RECEIVER_TOOLS[name]
    return next((tool for export, tool in _EXPORT_TOOLS.items() if export in module.other_exports), UNKNOWN_TOOL)


def read_js(path: Path, text: str) -> FrameworkMigration | None:
    """The migration a JavaScript / TypeScript file defines, or None when it exports neither up nor down.
    MigrationSyntaxError when it does not parse."""
    tree = _parser(LANGUAGES[path.suffix]).parse(text.encode("utf-8"))
    if tree.root_node.has_error:
        bad = next(_errors(tree.root_node), tree.root_node)
        raise MigrationSyntaxError(f"line {_line(bad)} does not parse as "
                                   f"{'TypeScript' if LANGUAGES[path.suffix] is _TS else 'JavaScript'}")
    module = _read_exports(tree.root_node)
    if not module.exported:
        return None
    return FrameworkMigration(_tool(module), path, path.name, _direction(module.exported.get("up")),
                              _direction(module.exported.get("down")))


def _errors(node: Node) -> Iterator[Node]:
    if node.type == "ERROR" or node.is_missing:
        yield node
    for child in node.children:
        if child.has_error:
            yield from _errors(child)
