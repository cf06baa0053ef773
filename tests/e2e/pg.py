"""A throwaway Postgres for the e2e tests that need Postgres alone (no cluster): the locally built image
through testcontainers, one container per test module, one fresh database per test."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

# testcontainers reads these when it is first imported, so they are set before
# the (lazy) import below. No registry is reachable here: Ryuk cannot be pulled,
# and the container is reached on the published port of the local daemon.
_TESTCONTAINERS_ENV = {
    "TESTCONTAINERS_RYUK_DISABLED": "true",
    "TESTCONTAINERS_CONNECTION_MODE": "docker_host",
    "TC_HOST": "127.0.0.1",
}
for _name, _value in _TESTCONTAINERS_ENV.items():
    os.environ.setdefault(_name, _value)

POSTGRES_IMAGE = "rollback-rehearsal/postgres:15"


# ---------------------------------------------------------------- environment


def _require_image(image: str) -> None:
    """Skip (with the fix) rather than let testcontainers try to pull: no registry here."""
    if shutil.which("docker") is None:
        pytest.skip("docker CLI not found; e2e tests need Docker (see `make env`)")
    probe = subprocess.run(["docker", "image", "inspect", image], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"image {image} is not built. Fix: env/images/postgres.sh (or `make env`)")


def _configure_testcontainers() -> None:
    """Apply the environment to testcontainers' config object too, in case another
    module imported testcontainers before the defaults above were set."""
    from testcontainers.core.config import ConnectionMode, testcontainers_config

    testcontainers_config.ryuk_disabled = os.environ["TESTCONTAINERS_RYUK_DISABLED"].lower() in ("1", "true", "yes")
    testcontainers_config.connection_mode_override = ConnectionMode(os.environ["TESTCONTAINERS_CONNECTION_MODE"])
    testcontainers_config.tc_host_override = os.environ["TC_HOST"]


@pytest.fixture(scope="module")
def admin_conninfo() -> Iterator[str]:
    """libpq conninfo of the superuser database in a throwaway Postgres container."""
    _require_image(POSTGRES_IMAGE)
    _configure_testcontainers()
    from testcontainers.community.postgres import PostgresContainer

    with PostgresContainer(POSTGRES_IMAGE, driver=None) as pg:
        yield make_conninfo(
            host=pg.get_container_host_ip(),
            port=str(pg.get_exposed_port(pg.port)),
            user=pg.username,
            password=pg.password,
            dbname=pg.dbname,
            connect_timeout="10",
        )


@pytest.fixture
def conn(admin_conninfo: str) -> Iterator[psycopg.Connection[Any]]:
    """Autocommit connection to a fresh database, dropped afterwards, so tests
    cannot see each other's objects (enums and extensions are database-wide)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_conninfo, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        with psycopg.connect(make_conninfo(admin_conninfo, dbname=name), autocommit=True) as c:
            yield c
    finally:
        with psycopg.connect(admin_conninfo, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
