"""Differential fidelity suite: the harness's schema diff against pg_dump.

For each single-change DDL case of fidelity_cases.CASES, on a fresh copy of a
realistic baseline database (CREATE DATABASE ... TEMPLATE, one Postgres
container for the whole module): the harness snapshots it, the change is
applied, the harness snapshots again, and `pg_dump --schema-only` (the
server's own major version) dumps it. If the normalised dump differs from the
baseline's, the harness must report a difference naming the object; if it
does not, the harness must report nothing. The session ends with
"N of N mutations agree with pg_dump".

Deliberate exceptions (docs/fidelity.md) have their own tests below.

    .venv/bin/pytest tests/e2e/test_fidelity.py -q
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

for _name, _value in {"TESTCONTAINERS_RYUK_DISABLED": "true", "TESTCONTAINERS_CONNECTION_MODE": "docker_host",
                      "TC_HOST": "127.0.0.1"}.items():
    os.environ.setdefault(_name, _value)

import fidelity_cases as fc  # tests/e2e is on sys.path (no package)
from pg_dump_oracle import Dumper, changed_lines, normalise

from harness.journal import Difference
from harness.snapshot import DatabaseSnapshot, diff_database, snapshot_database

pytestmark = pytest.mark.e2e

POSTGRES_IMAGE = "rollback-rehearsal/postgres:15"
REPO = Path(__file__).resolve().parents[2]
OWNER_PASSWORD = "owner-pw"  # a throwaway container's role
WORKERS = 4  # cases rehearsed at once (CI has 2 cores; most of a case is waiting)


# ─────────────────────────────────────────────────────────── the environment


@dataclass
class Server:
    """The module's Postgres container: the superuser's conninfo, the baseline
    template database and the oracle."""

    admin: str
    dumper: Dumper
    template: str = "fidelity_baseline"
    baseline_dump: list[str] = field(default_factory=list)

    def conninfo(self, db: str, owner: bool = True) -> str:
        if owner:
            return make_conninfo(self.admin, dbname=db, user="app_owner", password=OWNER_PASSWORD)
        return make_conninfo(self.admin, dbname=db)

    def copy(self) -> str:
        """A fresh database from the baseline template (WAL_LOG: no checkpoint, fast for small ones)."""
        name = f"f_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.admin, autocommit=True) as c:
            c.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {} OWNER app_owner STRATEGY WAL_LOG").format(
                sql.Identifier(name), sql.Identifier(self.template)))
        return name

    def drop(self, db: str) -> None:
        with psycopg.connect(self.admin, autocommit=True) as c:
            c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db)))

    def snapshot(self, db: str) -> DatabaseSnapshot:
        """The harness's snapshot, taken as the database owner like a rehearsal does."""
        with psycopg.connect(self.conninfo(db), autocommit=True) as c:
            return snapshot_database(c, [])

    def apply(self, db: str, case: fc.Case) -> None:
        with psycopg.connect(self.conninfo(db, owner=not case.superuser), autocommit=True) as c:
            c.execute(case.sql.encode())


def _require_image(image: str) -> None:
    if shutil.which("docker") is None:
        pytest.skip("docker CLI not found; e2e tests need Docker (see `make env`)")
    if subprocess.run(["docker", "image", "inspect", image], capture_output=True, check=False).returncode != 0:
        pytest.skip(f"image {image} is not built. Fix: env/images/postgres.sh (or `make env`)")


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    _require_image(POSTGRES_IMAGE)
    from testcontainers.community.postgres import PostgresContainer
    from testcontainers.core.config import ConnectionMode, testcontainers_config

    testcontainers_config.ryuk_disabled = True
    testcontainers_config.connection_mode_override = ConnectionMode(os.environ["TESTCONTAINERS_CONNECTION_MODE"])
    testcontainers_config.tc_host_override = os.environ["TC_HOST"]
    pg = PostgresContainer(POSTGRES_IMAGE, driver=None)
    pg.with_kwargs(labels={"rollback-rehearsal.test": "1"})
    # A throwaway server: no fsync, so creating and dropping ~200 databases is quick.
    pg.with_command("postgres -c fsync=off -c synchronous_commit=off -c full_page_writes=off")
    with pg:
        host, port = pg.get_container_host_ip(), int(pg.get_exposed_port(pg.port))
        admin = make_conninfo(host=host, port=str(port), user=pg.username, password=pg.password,
                              dbname=pg.dbname, connect_timeout="10")
        with psycopg.connect(admin, autocommit=True) as c:
            major = int(str(c.execute("SHOW server_version_num").fetchone()[0])[:-4])  # type: ignore[index]
        dumper = Dumper(pg.get_wrapped_container().id, pg.username, pg.password, host, port, major)
        srv = Server(admin=admin, dumper=dumper)
        _build_template(srv)
        first = srv.copy()
        try:
            srv.baseline_dump = dumper.schema(first)
        finally:
            srv.drop(first)
        yield srv


def _build_template(srv: Server) -> None:
    with psycopg.connect(srv.admin, autocommit=True) as c:
        c.execute(sql.SQL("CREATE ROLE app_owner LOGIN PASSWORD {}").format(sql.Literal(OWNER_PASSWORD)))
        for role in fc.ROLES[1:]:
            c.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(role)))
        c.execute(sql.SQL("CREATE DATABASE {} OWNER app_owner").format(sql.Identifier(srv.template)))
    with psycopg.connect(srv.conninfo(srv.template), autocommit=True) as c:
        c.execute(fc.BASELINE.encode())
    with psycopg.connect(srv.conninfo(srv.template, owner=False), autocommit=True) as c:
        c.execute(fc.BASELINE_SUPERUSER.encode())


# ──────────────────────────────────────────────────────────────── the tally


@dataclass
class Outcome:
    case: fc.Case
    dump_changed: list[str]
    differences: list[Difference]
    seconds: float

    @property
    def named(self) -> bool:
        return self.case.names is not None and any(self.case.names in d.object for d in self.differences)

    @property
    def excepted(self) -> bool:
        """Every line the dump changed is one of the case's documented exception."""
        if self.case.exception is None or not self.dump_changed:
            return False
        pattern = re.compile(fc.EXCEPTIONS[self.case.exception][0])
        return all(pattern.match(line) for line in self.dump_changed)

    @property
    def agrees(self) -> bool:
        """The harness says what pg_dump says: a named difference when the dump changed, nothing when not
        (or when only a documented exception changed it)."""
        if self.excepted:
            return not self.differences
        return self.named if self.dump_changed else not self.differences

    def explain(self) -> str:
        lines = [f"{self.case.id}: pg_dump {'changed' if self.dump_changed else 'unchanged'}"
                 f"{' (exception ' + self.case.exception + ')' if self.case.exception else ''}; "
                 f"harness reported {len(self.differences)} difference(s); expected one naming {self.case.names!r}",
                 f"  change: {self.case.sql}"]
        lines += [f"  dump {line}" for line in self.dump_changed[:8]]
        lines += [f"  harness: [{d.area}] {d.object}: {d.message}" for d in self.differences[:8]]
        return "\n".join(lines)


TALLY: dict[str, Outcome] = {}


def rehearse_case(srv: Server, case: fc.Case) -> Outcome:
    t0 = time.monotonic()
    db = srv.copy()
    try:
        before = srv.snapshot(db)
        srv.apply(db, case)
        after = srv.snapshot(db)
        dumped = srv.dumper.schema(db)
    finally:
        srv.drop(db)
    outcome = Outcome(case, changed_lines(srv.baseline_dump, dumped), diff_database(before, after),
                      time.monotonic() - t0)
    TALLY[case.id] = outcome
    return outcome


class _Summary:
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not TALLY:
            return
        outcomes = list(TALLY.values())
        agree = sum(o.agrees for o in outcomes)
        terminalreporter.section("schema fidelity (pg_dump as the oracle)")
        for o in outcomes:
            if not o.agrees:
                terminalreporter.write_line(o.explain())
        terminalreporter.write_line(
            f"{agree} of {len(outcomes)} mutations agree with pg_dump "
            f"({sum(1 for o in outcomes if o.dump_changed)} change the dump, "
            f"{sum(o.excepted for o in outcomes)} of them only by a documented exception; "
            f"{sum(o.seconds for o in outcomes):.0f}s of cases, {WORKERS} at a time)")


@pytest.fixture(scope="module", autouse=True)
def _summary(request: pytest.FixtureRequest) -> None:
    if not request.config.pluginmanager.has_plugin("fidelity-summary"):
        request.config.pluginmanager.register(_Summary(), "fidelity-summary")


# ──────────────────────────────────────────────────────────────────── tests


def test_the_baseline_is_realistic(server: Server) -> None:
    """The baseline has every kind the cases change, and a copy of it has no difference from itself."""
    db = server.copy()
    try:
        snap = server.snapshot(db)
        again = server.snapshot(db)
    finally:
        server.drop(db)
    fp = snap.schema_fingerprint
    assert snap.schema_fingerprint.all_schemas and set(fp.schemas) == {"app", "audit", "billing", "public"}
    for kind in ("tables", "columns", "indexes", "constraints", "views", "sequences", "enums", "domains", "types",
                 "collations", "functions", "triggers", "rules", "policies", "statistics", "privileges",
                 "default_privileges", "extensions", "publications", "event_triggers"):
        assert getattr(fp, kind), f"the baseline has no {kind}"
    assert diff_database(snap, again) == []
    assert len(fc.CASES) >= 80 and len({c.id for c in fc.CASES}) == len(fc.CASES)


@pytest.fixture(scope="module")
def outcomes(server: Server) -> dict[str, Outcome]:
    """Every case, rehearsed a few at a time (each on its own database; most of
    the time is spent waiting for Postgres and pg_dump), before the first
    per-case test reads its own."""
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        list(pool.map(lambda case: rehearse_case(server, case), fc.CASES))
    return TALLY


@pytest.mark.parametrize("case", fc.CASES, ids=str)
def test_case_agrees_with_pg_dump(outcomes: dict[str, Outcome], case: fc.Case) -> None:
    outcome = outcomes[case.id]
    # The case does what it says (a case that changes nothing cannot pass for the wrong reason) ...
    assert bool(outcome.dump_changed) == (case.names is not None or case.exception is not None), outcome.explain()
    assert case.exception is None or outcome.excepted, outcome.explain()
    # ... and the harness says what pg_dump says.
    assert outcome.agrees, outcome.explain()


def test_all_cases_agree_with_pg_dump(outcomes: dict[str, Outcome]) -> None:
    """The figure of the suite."""
    done = [outcomes[c.id] for c in fc.CASES]
    agree = sum(o.agrees for o in done)
    print(f"{agree} of {len(done)} mutations agree with pg_dump")
    assert len(done) >= 80
    assert agree == len(done), "\n".join(o.explain() for o in done if not o.agrees)


# ───────────────────────────── the demo stays quiet, the self-test's new kinds show


DEMO = REPO / "demo"


def _demo_database(srv: Server) -> str:
    """A database at the demo's schema version 1 with its seed, made by its owner like a rehearsal."""
    name = f"demo_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(srv.admin, autocommit=True) as c:
        c.execute(sql.SQL("CREATE DATABASE {} OWNER app_owner").format(sql.Identifier(name)))
    with psycopg.connect(srv.conninfo(name), autocommit=True) as c:
        c.execute((DEMO / "migrations" / "0001_init.up.sql").read_bytes())
        c.execute((DEMO / "seed.sql").read_bytes())
    return name


def _run_file(srv: Server, db: str, text: str) -> None:
    with psycopg.connect(srv.conninfo(db), autocommit=True) as c:
        c.execute(text.encode())


# The demo's releases whose down migration restores the schema (the READY scenarios
# bad-migration and destructive-migration-with-backup, and every scenario whose
# release has no migration: a no-op).
ROUND_TRIPS = {
    "no-op": ("", ""),
    "0002 (bad-migration)": ("migrations/0002_add_nickname.up.sql", "migrations/0002_add_nickname.down.sql"),
    "v4 0003 (destructive-migration-with-backup)": ("release-migrations/v4/0003_drop_users_created_at.up.sql",
                                                     "release-migrations/v4/0003_drop_users_created_at.down.sql"),
}


@pytest.mark.parametrize("release", ROUND_TRIPS, ids=str)
def test_demo_round_trip_has_no_schema_difference(server: Server, release: str) -> None:
    """No new noise for the demo: a release migrated up and down again leaves a schema
    the harness calls equal to the baseline (so READY demo scenarios stay READY)."""
    up, down = ROUND_TRIPS[release]
    db = _demo_database(server)
    try:
        baseline = server.snapshot(db)
        for path in (up, down):
            if path:
                _run_file(server, db, (DEMO / path).read_text(encoding="utf-8"))
        after = server.snapshot(db)
    finally:
        server.drop(db)
    assert baseline.schema_fingerprint.tables, "the demo schema was not created"
    assert [d for d in diff_database(baseline, after) if d.area == "schema"] == []


def test_the_self_tests_new_kinds_are_named(server: Server) -> None:
    """The migration mutations of tests/e2e/mutations.py that the new kinds detect,
    applied to the demo schema on Postgres alone: each names its leftover with the
    words the self-test expects (the lead rehearses them on the cluster)."""
    import mutations as mut  # noqa: PLC0415  (tests/e2e/mutations.py)

    up = (DEMO / "migrations" / "0002_add_nickname.up.sql").read_text(encoding="utf-8")
    down = (DEMO / "migrations" / "0002_add_nickname.down.sql").read_text(encoding="utf-8")
    checked = 0
    for m in (*mut.EXTENDED, *mut.CATALOGUE):
        if int(m.id) < 20:
            continue
        db = _demo_database(server)
        try:
            baseline = server.snapshot(db)
            _run_file(server, db, m.migrations.get(mut.UP_0002, lambda t: t)(up))
            _run_file(server, db, m.migrations.get(mut.DOWN_0002, lambda t: t)(down))
            diffs = diff_database(baseline, server.snapshot(db))
        finally:
            server.drop(db)
        for area, text in m.expected:
            assert any(d.area == area and text in d.message for d in diffs), (m.name, text, [d.message for d in diffs])
        checked += 1
    assert checked >= 8


def test_roles_are_compared_through_privileges_only(server: Server) -> None:
    """The exception `roles` (docs/fidelity.md): a role is cluster-wide, so a role the
    release created is not a difference of the application's database by itself
    (pg_dumpall --globals-only sees it, pg_dump -s does not); what it may do in the
    database is (a grant names it)."""
    db = server.copy()
    role = f"r_{uuid.uuid4().hex[:8]}"
    try:
        globals_before, baseline = server.dumper.globals(), server.snapshot(db)
        with psycopg.connect(server.admin, autocommit=True) as c:
            c.execute(sql.SQL("CREATE ROLE {} IN ROLE app_reader").format(sql.Identifier(role)))
        assert changed_lines(globals_before, server.dumper.globals())  # the oracle of roles sees it
        assert server.dumper.schema(db) == server.baseline_dump
        assert diff_database(baseline, server.snapshot(db)) == []
        with psycopg.connect(server.conninfo(db), autocommit=True) as c:
            c.execute(sql.SQL("GRANT SELECT ON app.orders TO {}").format(sql.Identifier(role)))
        assert [d.object for d in diff_database(baseline, server.snapshot(db))] == [
            f"GRANT SELECT ON TABLE app.orders TO {role}"]
    finally:
        server.drop(db)
        with psycopg.connect(server.admin, autocommit=True) as c:
            c.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def test_normalisation_keeps_every_statement() -> None:
    """The oracle's normalisation drops comments, settings, the restrict keys and blanks, nothing else."""
    dump = ("--\n-- PostgreSQL database dump\n--\n\\restrict abc\nSET lock_timeout = 0;\n"
            "SELECT pg_catalog.set_config('search_path', '', false);\n\n"
            "CREATE TABLE public.t (\n    id integer\n);\n-- Name: t; Type: TABLE\n"
            "ALTER TABLE public.t OWNER TO app;\n\\unrestrict abc\n")
    assert normalise(dump) == ["CREATE TABLE public.t (", "    id integer", ");", "ALTER TABLE public.t OWNER TO app;"]
    assert changed_lines(["a", "b"], ["a", "c"]) == ["-b", "+c"]
