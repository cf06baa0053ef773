"""Database providers: a Postgres container (testcontainers), or an existing DSN.

One server serves a whole session; each scenario gets its own database and
role (created by `create_database`, dropped at teardown), so scenarios run
one after another without re-provisioning.
"""

from __future__ import annotations

import secrets
import subprocess
from dataclasses import dataclass
from typing import Protocol, runtime_checkable
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql
from testcontainers.community.postgres import PostgresContainer

from harness import tools
from harness.progress import say
from harness.wait import Wait


@dataclass(frozen=True)
class DatabaseHandle:
    """One scenario's database, as seen from the host and from pods."""

    name: str
    role: str
    password: str
    host_dsn: str      # for the harness and host-side runbook commands
    cluster_dsn: str   # for pods (DATABASE_URL in the cluster)

    def dsn_at(self, host: str, port: int) -> str:
        """This database as reached at another address (a container sharing the server's network: 127.0.0.1)."""
        return _dsn(self.role, self.password, host, port, self.name)


@runtime_checkable
class DatabaseProvider(Protocol):
    """What the session, the phases and the faults use of a Postgres server."""

    admin_dsn: str

    @property
    def container_id(self) -> str | None: ...  # None: not a container of this session (nothing to pause)

    def start(self) -> DatabaseProvider: ...
    def create_database(self, name: str) -> DatabaseHandle: ...
    def drop_database(self, handle: DatabaseHandle) -> None: ...
    def stop(self) -> None: ...


def _dsn(user: str, password: str, host: str, port: int, db: str) -> str:
    return f"postgresql://{quote(user)}:{quote(password)}@{host}:{port}/{quote(db)}"


def with_database(dsn: str, db: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{db}"))



class _ServerBase:
    """Database/role lifecycle shared by both providers."""

    admin_dsn: str
    cluster_host: str
    cluster_port: int
    host: str
    port: int

    def create_database(self, name: str) -> DatabaseHandle:
        """NAME is unique per run (runstate.resource_name): an existing database of that name is never
        dropped here (it could be another live run's); a dead run's is the reaper's to remove."""
        db = role = "rr_" + name.replace("-", "_")
        password = secrets.token_urlsafe(18)
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(password)))
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(db), sql.Identifier(role)))
        return DatabaseHandle(
            name=db, role=role, password=password,
            host_dsn=_dsn(role, password, self.host, self.port, db),
            cluster_dsn=_dsn(role, password, self.cluster_host, self.cluster_port, db),
        )

    @staticmethod
    def _drop(conn: psycopg.Connection, db: str, role: str) -> None:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (db,))
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(db)))
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))

    def drop_database(self, handle: DatabaseHandle) -> None:
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            self._drop(conn, handle.name, handle.role)


class PostgresContainerProvider(_ServerBase):
    """Postgres in a container (testcontainers' PostgresContainer), joined to the
    cluster's Docker network so pods reach it by its address there."""

    def __init__(self, major: str = "15", network: str | None = None, owner: str = "rehearsal") -> None:
        self.admin_dsn = ""  # known once started
        self.image = tools.POSTGRES_IMAGE.format(major=major)
        self.network = network
        self.container = PostgresContainer(self.image, username="rehearsal", password=secrets.token_urlsafe(18),
                                           dbname="postgres", driver=None)
        self.container.with_kwargs(labels={tools.OWNER_LABEL: owner})

    def start(self) -> PostgresContainerProvider:
        say(f"starting Postgres ({self.image})")
        self.container.start()
        if self.network:
            # Connect before reading the published port: Docker 20.10 re-publishes
            # (new host port) when a network is connected to a running container.
            wrapped = self.container.get_wrapped_container()
            subprocess.run(["docker", "network", "connect", self.network, wrapped.id],
                           check=True, capture_output=True, timeout=30)
            wrapped.reload()
        self.host = self.container.get_container_host_ip()
        self.port = int(self.container.get_exposed_port(5432))
        self.admin_dsn = self.container.get_connection_url(driver=None)
        self.cluster_host, self.cluster_port = self.host, self.port
        if self.network:
            self.cluster_host = wrapped.attrs["NetworkSettings"]["Networks"][self.network]["IPAddress"]
            self.cluster_port = 5432
        Wait("Postgres to accept connections on its published port", 30, 0.5,
             hint="docker logs of the Postgres container").until(self._accepts)
        return self

    def _accepts(self) -> tuple[bool, str]:
        with psycopg.connect(self.admin_dsn, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return True, "connected"

    @property
    def container_id(self) -> str | None:
        wrapped = self.container.get_wrapped_container()
        return None if wrapped is None else str(wrapped.id)  # None until started

    def stop(self) -> None:
        say("stopping Postgres")
        self.container.stop()


class ExistingDsnProvider(_ServerBase):
    """A Postgres server the user runs; `cluster_host` is how pods reach it."""

    def __init__(self, admin_dsn: str, cluster_host: str | None = None, cluster_port: int | None = None) -> None:
        parts = urlsplit(admin_dsn)
        self.admin_dsn = admin_dsn
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 5432
        self.cluster_host, self.cluster_port = cluster_host or self.host, cluster_port or self.port

    @property
    def container_id(self) -> str | None:
        return None  # not ours: never paused, never stopped

    def start(self) -> ExistingDsnProvider:
        return self

    def stop(self) -> None:
        return None
