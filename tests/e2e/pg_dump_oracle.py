"""pg_dump as the oracle of schema fidelity (tests/e2e/test_fidelity.py).

`pg_dump --schema-only` renders every object and property Postgres can
restore. Whatever it renders differently after a change is, by definition,
something a rollback would have to undo, so the harness's diff must name it.

Normalisation removes only what carries no schema: comment lines (`--`, the
per-object headers with names and owners that the statements repeat),
session `SET` lines and the `set_config('search_path', ...)` line that open
the dump, the `\\restrict` / `\\unrestrict` lines (a random key per dump, since
15.14) and blank lines. Nothing is sorted: pg_dump's order is deterministic
for the same objects, and reordering could hide a real change (a column
dropped and re-added moves to the end).
"""

from __future__ import annotations

import difflib
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

_NOISE = re.compile(r"^(--|SET |SELECT pg_catalog\.set_config\('search_path'|\\restrict |\\unrestrict )")


def normalise(dump: str) -> list[str]:
    """The dump's statements, line by line, without comments, settings and blanks."""
    return [line for line in dump.splitlines() if line.strip() and not _NOISE.match(line)]


def changed_lines(before: Sequence[str], after: Sequence[str]) -> list[str]:
    """The lines that differ, as a unified diff without headers (for messages)."""
    return [line for line in difflib.unified_diff(list(before), list(after), lineterm="", n=0)
            if not line.startswith(("---", "+++", "@@"))]


def host_pg_dump(server_major: int) -> str | None:
    """The host's pg_dump when its major version is the server's (faster than
    docker exec, and the same program); None otherwise."""
    binary = shutil.which("pg_dump")
    if binary is None:
        return None
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10, check=False).stdout
    m = re.search(r"\) (\d+)", out)
    return binary if m and int(m.group(1)) == server_major else None


class Dumper:
    """Runs pg_dump / pg_dumpall of the server's own major version: the host's
    binary when it matches, else the one inside the Postgres container."""

    def __init__(self, container_id: str, user: str, password: str, host: str, port: int, server_major: int) -> None:
        self.container_id, self.user, self.password = container_id, user, password
        self.host, self.port = host, port
        self.host_binary = host_pg_dump(server_major)

    @property
    def where(self) -> str:
        return f"host {self.host_binary}" if self.host_binary else f"docker exec {self.container_id[:12]} pg_dump"

    def _run(self, program: str, args: list[str]) -> str:
        if self.host_binary:
            binary = str(Path(self.host_binary).with_name(program))
            cmd = [binary, "-h", self.host, "-p", str(self.port), "-U", self.user, *args]
            env = {"PGPASSWORD": self.password, "PATH": "/usr/bin:/bin"}
        else:
            cmd = ["docker", "exec", "-e", f"PGPASSWORD={self.password}", self.container_id,
                   program, "-h", "127.0.0.1", "-U", self.user, *args]
            env = None
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"{program} failed ({proc.returncode}): {proc.stderr.strip()[-800:]}")
        return proc.stdout

    def schema(self, dbname: str) -> list[str]:
        """Normalised `pg_dump --schema-only` of one database."""
        return normalise(self._run("pg_dump", ["--schema-only", "-d", dbname]))

    def globals(self) -> list[str]:
        """Normalised `pg_dumpall --globals-only`: roles, their attributes and memberships."""
        return normalise(self._run("pg_dumpall", ["--globals-only", "--no-role-passwords"]))
