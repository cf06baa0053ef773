"""Reading untrusted files safely: every way a path or a file can be wrong becomes a message, never an exception.

Used by the scenario loader (scenario.yaml and the files it names) and by
preflight (manifests, kustomizations, migrations). Limits are documented in
docs/scenario-format.md#limits.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Any

import yaml

# PyYAML is pure Python here: 100 KB of the densest YAML measured (flow mappings) takes ~0.7 s; real scenario
# files are a few KB. Manifests and migrations are only decoded by validation (preflight parses manifests).
MAX_SCENARIO_BYTES = 100_000
MAX_TEXT_FILE_BYTES = 4_000_000  # one manifest, kustomization or migration file
MAX_YAML_DEPTH = 64  # real scenarios and manifests nest well under 20 levels; PyYAML recurses per level
MAX_NAME_BYTES = 255  # one path component (NAME_MAX on Linux and macOS)
MAX_PATH_BYTES = 4096  # PATH_MAX


# The migration files the harness reads under `migrations.files` (validation decodes them, preflight parses
# them): SQL, Alembic revisions, and JavaScript / TypeScript migrations (harness/preflight/frameworks.py).
MIGRATION_SUFFIXES = frozenset({".sql", ".py", ".js", ".cjs", ".mjs", ".ts", ".mts", ".cts"})
# Alembic keeps its revisions in versions/ beside env.py: `files` may name either directory.
MIGRATION_SUBDIRECTORIES = ("versions",)


class ReadError(Exception):
    """A file cannot be used; the message says why in words a user can act on."""


_ERRNO_WORDS = {
    errno.ELOOP: "is a symlink loop",
    errno.ENAMETOOLONG: "has a name that is too long",
    errno.ENOTDIR: "goes through something that is not a directory",
    errno.EACCES: "cannot be read (permission denied)",
    errno.EISDIR: "is a directory, not a file",
    errno.ENOENT: "does not exist",
}


def os_error_words(exc: OSError) -> str:
    """An OSError as the end of a sentence about the path ("<path> is a symlink loop")."""
    return _ERRNO_WORDS.get(exc.errno or 0, f"cannot be read ({exc.strerror or exc})")


def path_problem(raw: str) -> str | None:
    """What makes a path written by a user unusable before the file system is asked (NUL, over-long names)."""
    if "\x00" in raw:
        return "contains a NUL byte"
    encoded = os.fsencode(raw) if raw else b""
    if len(encoded) > MAX_PATH_BYTES:
        return f"is {len(encoded)} bytes long, more than the limit of {MAX_PATH_BYTES}"
    long_part = next((p for p in encoded.split(b"/") if len(p) > MAX_NAME_BYTES), None)
    if long_part is not None:
        return f"has a name of {len(long_part)} bytes, more than the limit of {MAX_NAME_BYTES}"
    return None


def kind_of(path: Path) -> str:
    """"file", "dir", "missing" or "other"; ReadError for loops, over-long names and unreadable parents."""
    problem = path_problem(str(path))
    if problem:
        raise ReadError(f"{path!s:.200} {problem}")
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        if exc.errno == errno.ENOTDIR:
            return "missing"
        raise ReadError(f"{path} {os_error_words(exc)}") from None
    return "file" if stat.S_ISREG(mode) else "dir" if stat.S_ISDIR(mode) else "other"


def kind_of_quietly(path: Path) -> str:
    """kind_of, with "other" for a path that cannot even be looked at (its reader reports why)."""
    try:
        return kind_of(path)
    except ReadError:
        return "other"


def migration_sources(directory: Path) -> list[Path]:
    """The migration files of a `migrations.files` directory (and of its Alembic versions/), sorted by path.
    OSError when a directory cannot be listed."""
    dirs = [directory, *(d for name in MIGRATION_SUBDIRECTORIES if (d := directory / name).is_dir())]
    return sorted(f for d in dirs for f in d.iterdir() if f.suffix in MIGRATION_SUFFIXES
                  and not f.name.endswith(".d.ts"))


def read_text(path: Path, limit: int = MAX_TEXT_FILE_BYTES) -> str:
    """A regular file's UTF-8 text; ReadError when it is missing, not a file, too big or not UTF-8."""
    kind = kind_of(path)
    if kind != "file":
        raise ReadError(f"{path} " + {"missing": "does not exist", "dir": "is a directory, not a file"}.get(
            kind, "is not a regular file"))
    try:
        size = path.stat().st_size
        if size > limit:
            raise ReadError(f"{path} is {size:,} bytes, more than the limit of {limit:,}")
        data = path.read_bytes()
    except OSError as exc:
        raise ReadError(f"{path} {os_error_words(exc)}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ReadError(f"{path} is not UTF-8 text (byte {exc.start}, line {line})") from None


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate mapping keys (PyYAML keeps the last silently) and deep nesting
    (PyYAML composes recursively: thousands of levels end in RecursionError)."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise yaml.composer.ComposerError(None, None, f"nested more than {MAX_YAML_DEPTH} levels deep",
                                                  self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<:` merges may be overridden by explicit keys: that is their purpose
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node)
            except TypeError:
                continue  # unhashable key: the base class reports it
            if first is not key_node:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first on line {first.start_mark.line + 1})",
                    key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str, what: str) -> Any:
    """One YAML document with StrictLoader; ReadError naming the line on any YAML problem."""
    try:
        return yaml.load(text, Loader=StrictLoader)  # noqa: S506 (StrictLoader is a SafeLoader)
    except yaml.YAMLError as exc:
        raise ReadError(f"{what}: not valid YAML: {exc}") from None


def load_yaml_all(text: str, what: str) -> list[Any]:
    """Every document of a multi-document YAML stream, as load_yaml."""
    try:
        return list(yaml.load_all(text, Loader=StrictLoader))  # noqa: S506
    except yaml.YAMLError as exc:
        raise ReadError(f"{what}: not valid YAML: {exc}") from None
