#!/usr/bin/env python3
"""migrate: a small work-alike of golang-migrate for the demo app.

usage: migrate up [N]      apply all pending migrations, or the next N
       migrate down [N]    revert N migrations (default 1)
       migrate goto V      migrate up or down until the database is at V
       migrate force V     set the recorded version to V, clear dirty (-1: none)
       migrate version     print the current version ("2", "2 (dirty)", "none")

Environment: DATABASE_URL (postgres://user:password@host:5432/db?sslmode=disable)
             MIGRATIONS_DIR (default /app/migrations)

Like golang-migrate, the version lives in schema_migrations(version bigint
primary key, dirty boolean not null), one row at most. Each migration file
runs in its own transaction; before it runs, the target version is recorded
as dirty in a separate transaction, so a failed migration leaves the database
marked dirty (the schema change itself is rolled back) until someone runs
`migrate force V`. Migrations are only those files present in MIGRATIONS_DIR:
an image only knows the migrations it was built with.

Exit status: 0 success (including "no change"), 1 failure, 2 usage error.
"""
import os
import re
import sys
import time

import psycopg

MIGRATIONS_DIR = os.environ.get("MIGRATIONS_DIR", "/app/migrations")
FILE_RE = re.compile(r"^(\d+)_(.+)\.(up|down)\.sql$")
LOCK_ID = 0x6D696772  # pg advisory lock key ("migr"): one migrate at a time
LOCK_TIMEOUT_S = float(os.environ.get("MIGRATE_LOCK_TIMEOUT", "60"))
NIL = -1  # golang-migrate's "no version" marker


class MigrateError(Exception):
    """A failure with a message meant for the operator."""


def load_migrations(directory):
    """{version: {"name": str, "up": path|None, "down": path|None}}."""
    if not os.path.isdir(directory):
        raise MigrateError(f"migrations directory {directory} does not exist (set MIGRATIONS_DIR)")
    found = {}
    for fname in sorted(os.listdir(directory)):
        m = FILE_RE.match(fname)
        if not m:
            continue
        version, name, direction = int(m.group(1)), m.group(2), m.group(3)
        entry = found.setdefault(version, {"name": name, "up": None, "down": None})
        if entry[direction] is not None:
            raise MigrateError(f"two {direction} scripts for version {version} in {directory}")
        entry[direction] = os.path.join(directory, fname)
    return found


def describe_known(known):
    versions = sorted(known)
    if not versions:
        return "this image knows no migrations"
    if versions == list(range(versions[0], versions[-1] + 1)):
        return f"this image knows versions {versions[0]}..{versions[-1]}"
    return "this image knows versions " + ", ".join(map(str, versions))


def connect():
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        raise MigrateError("DATABASE_URL is not set (expected postgres://user:password@host:5432/dbname?sslmode=disable)")
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.Error as e:
        raise MigrateError(f"cannot connect to the database: {str(e).strip()}") from None
    deadline = time.monotonic() + LOCK_TIMEOUT_S
    while not conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_ID,)).fetchone()[0]:
        if time.monotonic() > deadline:
            raise MigrateError(f"another migrate holds the lock (waited {LOCK_TIMEOUT_S:.0f}s)")
        time.sleep(1)
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL)"
    )
    return conn


def read_version(conn):
    """(version or None, dirty)."""
    rows = conn.execute("SELECT version, dirty FROM schema_migrations").fetchall()
    if len(rows) > 1:
        raise MigrateError(f"schema_migrations has {len(rows)} rows, expected at most one")
    if not rows or (rows[0][0] == NIL and not rows[0][1]):
        return None, False
    return rows[0][0], rows[0][1]


def set_version(conn, version, dirty):
    conn.execute("DELETE FROM schema_migrations")
    if version is not None and (version != NIL or dirty):
        conn.execute("INSERT INTO schema_migrations (version, dirty) VALUES (%s, %s)", (version, dirty))


def run_file(conn, path, label, new_version):
    """Runs one migration file; records new_version (None: no version)."""
    with open(path, encoding="utf-8") as f:
        sql = f.read()
    marker = NIL if new_version is None else new_version
    with conn.transaction():
        set_version(conn, marker, True)
    t0 = time.monotonic()
    try:
        with conn.transaction():
            if sql.strip():
                conn.execute(sql)
            set_version(conn, new_version, False)
    except psycopg.Error as e:
        raise MigrateError(
            f"{label} failed, its changes were rolled back: {str(e).strip()}\n"
            f"the database is now marked dirty at version {marker}; repair it, then run "
            f"'migrate force V' with the version whose schema it really has"
        ) from None
    print(f"{label} ({(time.monotonic() - t0) * 1000:.1f}ms)", flush=True)


def refuse_dirty(version, dirty):
    if dirty:
        raise MigrateError(
            f"database is dirty at version {version}: a migration failed halfway. "
            f"Repair the schema by hand, then run 'migrate force V' with the version it really has"
        )


def plan_up(known, current, steps):
    if current is not None and current not in known:
        raise MigrateError(
            f"database is at version {current}, which is not in {MIGRATIONS_DIR} ({describe_known(known)})"
        )
    pending = [v for v in sorted(known) if current is None or v > current]
    if steps is not None:
        if steps > len(pending):
            raise MigrateError(
                f"cannot apply {steps} migration(s): only {len(pending)} pending "
                f"(database at {fmt(current)}, {describe_known(known)})"
            )
        pending = pending[:steps]
    for v in pending:
        if known[v]["up"] is None:
            raise MigrateError(f"no up script for version {v} in {MIGRATIONS_DIR} ({describe_known(known)})")
    return pending


def plan_down(known, current, steps):
    plan, v = [], current
    for _ in range(steps):
        if v is None:
            raise MigrateError(
                f"cannot revert {steps} migration(s): database at {fmt(current)} has only {len(plan)} to revert"
            )
        if v not in known or known[v]["down"] is None:
            raise MigrateError(f"no down script for version {v} in {MIGRATIONS_DIR} ({describe_known(known)})")
        lower = [k for k in known if k < v]
        prev = max(lower) if lower else None
        plan.append((v, prev))
        v = prev
    return plan


def fmt(version):
    return "no version" if version is None else f"version {version}"


def apply_up(conn, known, versions):
    for v in versions:
        run_file(conn, known[v]["up"], f"{v}/u {known[v]['name']}", v)


def apply_down(conn, known, plan):
    for v, prev in plan:
        run_file(conn, known[v]["down"], f"{v}/d {known[v]['name']}", prev)


def parse_int(cmd, arg, minimum):
    try:
        n = int(arg)
    except ValueError:
        n = None
    if n is None or n < minimum:
        raise UsageError(f"migrate {cmd}: expected an integer >= {minimum}, got {arg!r}")
    return n


class UsageError(Exception):
    pass


def main(argv):
    if not argv:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    if argv[0] in ("-h", "--help", "help"):
        print(__doc__.split("\n\n", 1)[1], end="")
        return 0
    cmd, args = argv[0], argv[1:]
    try:
        if cmd not in ("up", "down", "goto", "force", "version"):
            raise UsageError(f"migrate: unknown command {cmd!r} (expected up, down, goto, force or version)")
        max_args = 0 if cmd == "version" else 1
        if len(args) > max_args or (cmd in ("goto", "force") and not args):
            raise UsageError(f"migrate {cmd}: wrong number of arguments (see 'migrate --help')")
        if cmd == "up":
            steps = parse_int(cmd, args[0], 1) if args else None
        elif cmd == "down":
            steps = parse_int(cmd, args[0], 1) if args else 1
        elif cmd == "goto":
            target = parse_int(cmd, args[0], 0)
        elif cmd == "force":
            target = parse_int(cmd, args[0], NIL)
    except UsageError as e:
        print(e, file=sys.stderr)
        return 2

    try:
        known = load_migrations(MIGRATIONS_DIR) if cmd not in ("version", "force") else None
        with connect() as conn:
            current, dirty = read_version(conn)
            if cmd == "version":
                print("none" if current is None else f"{current}{' (dirty)' if dirty else ''}")
                return 0
            if cmd == "force":
                with conn.transaction():
                    set_version(conn, None if target == NIL else target, False)
                print(f"forced to {fmt(None if target == NIL else target)} (was {fmt(current)}{', dirty' if dirty else ''})")
                return 0
            refuse_dirty(current, dirty)
            if cmd == "up":
                pending = plan_up(known, current, steps)
                if not pending:
                    print(f"no change (database at {fmt(current)}, {describe_known(known)})")
                    return 0
                apply_up(conn, known, pending)
            elif cmd == "down":
                apply_down(conn, known, plan_down(known, current, steps))
            elif cmd == "goto":
                if target not in known:
                    raise MigrateError(f"version {target} is not in {MIGRATIONS_DIR} ({describe_known(known)})")
                if current == target:
                    print(f"no change (database at {fmt(current)})")
                    return 0
                if current is None or target > current:
                    pending = plan_up(known, current, None)
                    apply_up(conn, known, [v for v in pending if v <= target])
                else:
                    n = len([v for v in known if target < v <= current]) if current in known else 1
                    apply_down(conn, known, plan_down(known, current, n))
            now, _ = read_version(conn)
            print(f"database now at {fmt(now)}")
            return 0
    except MigrateError as e:
        print(f"migrate {cmd}: {e}", file=sys.stderr)
        return 1
    except psycopg.Error as e:  # e.g. the connection was terminated: one line an operator can act on
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        print(f"migrate {cmd}: database error: {first} (see 'migrate version')", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
