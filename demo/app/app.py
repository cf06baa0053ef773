#!/usr/bin/env python3
"""demo-app: the service whose rollback is rehearsed.

GET /healthz  200 when the database answers and has the schema this version
              needs; 503 otherwise (and v2 answers 500: its readiness bug)
GET /livez    200 while the process runs (for liveness probes)
GET /version  APP_VERSION as plain text
GET /users    JSON list of users

Environment: APP_VERSION (baked into the image), DATABASE_URL
(postgres://user:password@host:5432/db?sslmode=disable), PORT (default 8080).
"""
import datetime
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg

# What each release needs and how it misbehaves. REQUIRED_SCHEMA is the lowest
# migration version the release works with; newer, additive schemas are fine.
RELEASES = {
    "v1": {
        "REQUIRED_SCHEMA": 1,
        "users_sql": "SELECT id, email, created_at FROM users ORDER BY id",
    },
    "v2": {
        "REQUIRED_SCHEMA": 2,
        "users_sql": "SELECT id, email, nickname, created_at FROM users ORDER BY id",
        "readiness_bug": "v2 bug: nickname lookup fails",
    },
    "v3": {
        "REQUIRED_SCHEMA": 1,
        "users_sql": "SELECT id, email, created_at FROM users ORDER BY id",
        "crash_on_start": "fatal: invalid feature-flag configuration 'users.nickname=required'; refusing to start",
    },
    # Failure-mode catalogue releases: each ships 0001 plus its own 0003
    # (demo/release-migrations/<version>/) and fails readiness like v2.
    "v4": {  # 0003 drops users.created_at (destructive)
        "REQUIRED_SCHEMA": 3,
        "users_sql": "SELECT id, email FROM users ORDER BY id",
        "readiness_bug": "v4 bug: user listing times out",
    },
    "v5": {  # 0003 fails half-way (CREATE INDEX CONCURRENTLY in a transaction)
        "REQUIRED_SCHEMA": 3,
        "users_sql": "SELECT id, email, created_at FROM users ORDER BY id",
        "readiness_bug": "v5 bug: order status lookup fails",
    },
    "v6": {  # 0003 adds orders.discount_cents; its down migration is a no-op
        "REQUIRED_SCHEMA": 3,
        "users_sql": "SELECT id, email, created_at FROM users ORDER BY id",
        "readiness_bug": "v6 bug: discount lookup fails",
    },
    # Ready, so Kubernetes calls its rollout a success, but /users fails:
    # only a smoke request catches it (failure mode `smoke`).
    "v7": {
        "REQUIRED_SCHEMA": 1,
        "users_sql": "SELECT id, email, created_at FROM users ORDER BY id",
        "users_bug": "v7 bug: user listing returns 500",
    },
    # 0003 adds orders.coupon_code; its down file is empty, as `migrate create`
    # leaves it (the gomigrate images run it with the real golang-migrate CLI).
    "v8": {
        "REQUIRED_SCHEMA": 3,
        "users_sql": "SELECT id, email, created_at FROM users ORDER BY id",
        "readiness_bug": "v8 bug: coupon lookup fails",
    },
}

APP_VERSION = os.environ.get("APP_VERSION", "")
DATABASE_URL = os.environ.get("DATABASE_URL", "")
PORT = int(os.environ.get("PORT", "8080"))
# Which table says the schema's version: golang-migrate's (the demo's own
# migrate and the real CLI), or none (the version is read by the migration
# tool only, e.g. Alembic's revision ids).
VERSION_TABLE = os.environ.get("VERSION_TABLE", "schema_migrations")


def log(msg, stream=sys.stdout):
    ts = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    print(f"{ts} demo-app {APP_VERSION} {msg}", file=stream, flush=True)


class Unavailable(Exception):
    """The database is unreachable or its schema does not suit this release."""


def connect():
    if not DATABASE_URL:
        raise Unavailable("DATABASE_URL is not set")
    try:
        return psycopg.connect(DATABASE_URL, connect_timeout=3, autocommit=True)
    except psycopg.OperationalError as e:
        raise Unavailable(f"database unreachable: {str(e).strip()}") from None


def rows(conn, sql):
    cur = conn.execute(sql)
    cols = [c.name for c in cur.description]
    return [dict(zip(cols, row)) for row in cur.fetchall()]


def schema_version(conn, required):
    """(version, problem): the golang-migrate version table's verdict on the schema."""
    try:
        found = rows(conn, "SELECT version, dirty FROM schema_migrations")
    except psycopg.errors.UndefinedTable:
        return None, f"schema not migrated (no schema_migrations table); requires version >= {required}"
    if not found:
        return None, f"schema has no version; requires version >= {required}"
    version, dirty = found[0]["version"], found[0]["dirty"]
    if dirty:
        return version, f"schema version {version} is dirty (a migration failed halfway)"
    if version < required:
        return version, f"schema version {version} < required {required}"
    return version, None


def check_ready(release):
    """Returns (status, message). With VERSION_TABLE=none (the Alembic images:
    alembic_version holds revision ids, not numbers) only the release's query
    tells whether its schema is in place."""
    required = release["REQUIRED_SCHEMA"]
    version = None
    try:
        with connect() as conn:
            if VERSION_TABLE == "schema_migrations":
                version, problem = schema_version(conn, required)
                if problem:
                    return 503, problem
            try:
                rows(conn, release["users_sql"] + " LIMIT 1")
            except psycopg.Error as e:
                return 503, f"schema check failed at version {version}: {str(e).strip()}"
    except Unavailable as e:
        return 503, str(e)
    except psycopg.Error as e:
        return 503, f"database error: {str(e).strip()}"
    if release.get("readiness_bug"):
        return 500, release["readiness_bug"]
    if version is None:
        return 200, f"ok: {APP_VERSION} (its schema query works)"
    return 200, f"ok: {APP_VERSION} on schema version {version} (requires >= {required})"


class Handler(BaseHTTPRequestHandler):
    server_version = "demo-app"
    sys_version = ""

    def do_GET(self):
        t0 = time.monotonic()
        release = RELEASES[APP_VERSION]
        path = self.path.split("?", 1)[0]
        detail = ""
        if path == "/healthz":
            status, detail = check_ready(release)
            self.reply(status, detail + "\n")
        elif path == "/livez":
            status = 200
            self.reply(status, "alive\n")
        elif path == "/version":
            status = 200
            self.reply(status, APP_VERSION + "\n")
        elif path == "/users" and release.get("users_bug"):
            status, detail = 500, release["users_bug"]
            self.reply(status, json.dumps({"error": detail}) + "\n", "application/json")
        elif path == "/users":
            try:
                with connect() as conn:
                    users = rows(conn, release["users_sql"])
                status = 200
                self.reply(status, json.dumps(users, default=str) + "\n", "application/json")
            except (Unavailable, psycopg.Error) as e:
                status, detail = 503, str(e).strip()
                self.reply(status, json.dumps({"error": detail}) + "\n", "application/json")
        else:
            status = 404
            self.reply(status, "not found\n")
        ms = (time.monotonic() - t0) * 1000
        extra = f' "{detail}"' if detail and status != 200 else ""
        log(f"{self.client_address[0]} GET {self.path} {status} {ms:.1f}ms{extra}")

    def reply(self, status, body, ctype="text/plain; charset=utf-8"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_request(self, code="-", size="-"):
        pass  # do_GET logs one line per request, with its duration

    def log_message(self, fmt, *args):
        log(f"{self.client_address[0]} {fmt % args}", sys.stderr)


def main():
    release = RELEASES.get(APP_VERSION)
    if release is None:
        log(f"unknown APP_VERSION {APP_VERSION!r} (known: {', '.join(RELEASES)})", sys.stderr)
        return 1
    if release.get("crash_on_start"):
        log(release["crash_on_start"], sys.stderr)
        return 1

    server = ThreadingHTTPServer(("0.0.0.0", PORT), Handler)
    server.daemon_threads = False  # server_close waits for requests in flight

    def stop(signum, _frame):
        log(f"{signal.Signals(signum).name} received, shutting down")
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log(f"listening on :{PORT} (requires schema version >= {release['REQUIRED_SCHEMA']}, "
        f"database {'configured' if DATABASE_URL else 'NOT configured'})")
    server.serve_forever()
    server.server_close()
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
