"""`${VAR}` substitution in manifests that can never change their YAML structure.

Substituting into the text would let a value such as `a: b`, `[x]` or
`x # y` add a key, a list or a comment to the manifest (a variable value is
data, not YAML). So the manifests are parsed first and the substitution is
done inside each scalar (keys included); the node tree is then written back
as it was, the emitter quoting whatever needs quoting.

A plain (unquoted) scalar gets its type from its substituted text, as it
would have with textual substitution: `replicas: ${REPLICAS}` with
REPLICAS=3 is still the integer 3. A quoted scalar stays a string.

Each reference is first replaced by a unique token that is a plain word
anywhere in YAML (inside `{...}` too, where `${X}` itself does not parse),
so the template is parsed once with the references in place. Text that is
not YAML at all is substituted as text and left to kubectl to reject.
"""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Iterable, Mapping

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode


_STR = "tag:yaml.org,2002:str"
# The implicit types a plain scalar's text can give it in Kubernetes' YAML; anything else (PyYAML's `=` "value",
# timestamps) stays the string a Kubernetes field would read.
_TYPED = frozenset(f"tag:yaml.org,2002:{t}" for t in ("null", "bool", "int", "float"))


def _substitute(node: Node, values: Mapping[str, str], pattern: re.Pattern[str],
                resolver: yaml.resolver.BaseResolver, seen: set[int]) -> None:
    """Put the values back for the tokens in every scalar under `node` (aliases share nodes: each is visited once)."""
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, ScalarNode):
        value = pattern.sub(lambda m: values[m.group()], node.value)
        if value != node.value:
            if node.style is None:  # plain: the type follows the text, as with textual substitution
                typed = resolver.resolve(ScalarNode, value, (True, False))
                node.tag = typed if typed in _TYPED else _STR
            node.value = value
        return
    children: Iterable[Node]
    if isinstance(node, MappingNode):
        children = (n for pair in node.value for n in pair)
    elif isinstance(node, SequenceNode):
        children = node.value
    else:  # pragma: no cover - the composer makes only these three
        return
    for child in children:
        _substitute(child, values, pattern, resolver, seen)


def render_manifests(text: str, variables: Mapping[str, str]) -> str:
    """`text` (one or more YAML documents) with `${NAME}`/`$NAME` of known names substituted, `$$` → `$`.

    Each reference first becomes a token that is a plain word anywhere in YAML (also inside `{...}`,
    where `${X}` itself would not parse); the tokens are replaced by the values inside the parsed
    scalars."""
    nonce = secrets.token_hex(6)
    tokens = {name: f"rrvar{nonce}x{i}x" for i, name in enumerate(variables)}
    values = {token: variables[name] for name, token in tokens.items()}
    templated = string.Template(text).safe_substitute(tokens)
    try:
        documents = list(yaml.compose_all(templated, Loader=yaml.SafeLoader))
    except yaml.YAMLError:  # not YAML: kubectl will say so; substitute as text meanwhile
        return string.Template(text).safe_substitute(variables)
    pattern = re.compile(f"rrvar{nonce}x[0-9]+x")
    resolver = yaml.SafeLoader("")  # the resolver the YAML is read with
    seen: set[int] = set()
    for doc in documents:
        if doc is not None:
            _substitute(doc, values, pattern, resolver, seen)
    return yaml.serialize_all([d for d in documents if d is not None], Dumper=yaml.SafeDumper,
                              allow_unicode=True, width=1 << 16)
