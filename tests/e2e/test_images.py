"""End-to-end checks of the images built by `make env` (env/images/*.sh).

- the Docker engine answers;
- rollback-rehearsal/postgres:15 works unchanged under testcontainers'
  PostgresContainer and with psycopg 3;
- rollback-rehearsal/registry:2 takes a push over plain HTTP on loopback, a
  re-tag and a re-push, and reports the same manifest digests as Docker.

Every container started here carries the label rollback-rehearsal.test=1 and
is removed by a finalizer, as is every image built or tagged here.
"""

from __future__ import annotations

import hashlib
import io
import ipaddress
import os
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable

import docker
import docker.errors
import psycopg
import pytest
from testcontainers.community.postgres import PostgresContainer
from testcontainers.core.container import DockerContainer

PREFIX = os.environ.get("REHEARSAL_IMAGE_PREFIX", "rollback-rehearsal")
BASE_IMAGE = f"{PREFIX}/debian:bookworm"
POSTGRES_IMAGE = f"{PREFIX}/postgres:15"
REGISTRY_IMAGE = f"{PREFIX}/registry:2"
TEST_LABELS = {"rollback-rehearsal.test": "1"}
READY_LINE = "database system is ready to accept connections"
DOCKER_V2_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"

# Talks to the loopback registry directly, whatever *_proxy variables say.
_http = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# ── helpers ──────────────────────────────────────────────────────────────────


def _require_image(client: docker.DockerClient, image: str, script: str) -> None:
    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        pytest.fail(f"image {image} is missing. Fix: run {script} (or 'make env')")


def _publish_on_loopback(container: DockerContainer, port: int) -> None:
    """Publish PORT on a random port of 127.0.0.1 only, not on every interface."""
    container.ports[str(port)] = ("127.0.0.1", None)  # docker SDK form: (host ip, any port)


def _wait_http_ok(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            with _http.open(url, timeout=5) as resp:
                if resp.status == 200:
                    return
                last = resp.status
        except (urllib.error.URLError, ConnectionError) as exc:
            last = exc
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer 200 within {timeout}s (last: {last})")


def _build_demo(client: docker.DockerClient, tag: str, marker: str) -> docker.models.images.Image:
    """A tiny image on top of our base; MARKER makes its content (and digest) unique."""
    dockerfile = f"FROM {BASE_IMAGE}\nRUN echo {marker} >/demo-version\nCMD [\"cat\", \"/demo-version\"]\n"
    image, _ = client.images.build(
        fileobj=io.BytesIO(dockerfile.encode()),
        tag=tag,
        labels={**TEST_LABELS, "rollback-rehearsal.demo": marker},
        rm=True,
        forcerm=True,
        pull=False,
    )
    return image


def _push(client: docker.DockerClient, repo: str, tag: str) -> str:
    """Pushes REPO:TAG and returns the manifest digest the engine reports."""
    digest = None
    for event in client.images.push(repo, tag=tag, stream=True, decode=True):
        if "error" in event:  # push errors arrive in the stream, not as exceptions
            pytest.fail(f"docker push {repo}:{tag} failed: {event['error']}")
        digest = (event.get("aux") or {}).get("Digest", digest)
    assert digest, f"docker push {repo}:{tag} reported no digest"
    return digest


def _manifest_digest(registry_url: str, name: str, tag: str) -> str:
    """The digest of NAME:TAG as the registry serves it (docker v2 manifest)."""
    url = f"{registry_url}/v2/{name}/manifests/{tag}"
    head = urllib.request.Request(url, method="HEAD", headers={"Accept": DOCKER_V2_MANIFEST})
    with _http.open(head, timeout=10) as resp:
        assert resp.headers["Content-Type"] == DOCKER_V2_MANIFEST
        head_digest = resp.headers["Docker-Content-Digest"]
    get = urllib.request.Request(url, headers={"Accept": DOCKER_V2_MANIFEST})
    with _http.open(get, timeout=10) as resp:
        body = resp.read()
        assert resp.headers["Docker-Content-Digest"] == head_digest
    # The digest is the sha256 of the exact manifest bytes served.
    assert head_digest == "sha256:" + hashlib.sha256(body).hexdigest()
    return head_digest


def _repo_digests(client: docker.DockerClient, image_id: str) -> list[str]:
    return client.images.get(image_id).attrs.get("RepoDigests") or []


# ── fixtures ─────────────────────────────────────────────────────────────────


@pytest.fixture(scope="module")
def docker_client():
    client = docker.from_env()
    yield client
    client.close()


@pytest.fixture
def postgres(request, docker_client) -> PostgresContainer:
    _require_image(docker_client, POSTGRES_IMAGE, "env/images/postgres.sh")
    pg = PostgresContainer(
        POSTGRES_IMAGE, username="rehearsal", password="rehearsal-pw", dbname="rehearsal_db", labels=TEST_LABELS
    )
    _publish_on_loopback(pg, 5432)
    request.addfinalizer(pg.stop)  # removes the container even if start() fails half-way
    pg.start()  # returns once `psql --host 127.0.0.1` inside the container succeeds
    return pg


@pytest.fixture
def registry(request, docker_client) -> str:
    """A registry container on a loopback port; returns its URL http://127.0.0.1:PORT."""
    _require_image(docker_client, REGISTRY_IMAGE, "env/images/registry.sh")
    reg = DockerContainer(REGISTRY_IMAGE, labels=TEST_LABELS)
    _publish_on_loopback(reg, 5000)
    request.addfinalizer(reg.stop)
    reg.start()
    url = f"http://{reg.get_container_host_ip()}:{reg.get_exposed_port(5000)}"
    _wait_http_ok(f"{url}/v2/")
    return url


@pytest.fixture
def built_images(request, docker_client) -> Callable[[str], None]:
    """Call it with every image id or tag a test creates; all are removed at the end."""
    refs: list[str] = []

    def cleanup() -> None:
        for ref in reversed(refs):
            try:
                docker_client.images.remove(ref, force=True)
            except docker.errors.ImageNotFound:
                pass

    request.addfinalizer(cleanup)
    return refs.append


def _connect(pg: PostgresContainer, password: str | None = None) -> psycopg.Connection:
    return psycopg.connect(
        host=pg.get_container_host_ip(),
        port=pg.get_exposed_port(5432),
        user=pg.username,
        password=pg.password if password is None else password,
        dbname=pg.dbname,
        connect_timeout=10,
    )


# ── tests ────────────────────────────────────────────────────────────────────


@pytest.mark.e2e
def test_docker_engine_answers(docker_client):
    assert docker.from_env().ping() is True


@pytest.mark.e2e
def test_postgres_round_trip(postgres):
    with _connect(postgres) as conn:
        (version,) = conn.execute("select version()").fetchone()
        assert version.startswith("PostgreSQL 15."), version
        assert conn.execute("select current_user, current_database()").fetchone() == ("rehearsal", "rehearsal_db")
        conn.execute("create table rehearsal_probe (id serial primary key, note text not null)")
        conn.execute("insert into rehearsal_probe (note) values (%s), (%s)", ("before", "after"))
        conn.commit()
    # A new connection sees the committed rows.
    with _connect(postgres) as conn:
        rows = conn.execute("select id, note from rehearsal_probe order by id").fetchall()
        assert rows == [(1, "before"), (2, "after")]


@pytest.mark.e2e
def test_postgres_image_contract(postgres):
    """What the harness relies on beyond a working connection."""
    # Password auth over TCP is enforced (not trust), and stored as SCRAM.
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        _connect(postgres, password="wrong").close()
    with _connect(postgres) as conn:
        assert conn.execute("show password_encryption").fetchone() == ("scram-sha-256",)
        (stored,) = conn.execute("select rolpassword from pg_authid where rolname = current_user").fetchone()
        assert stored.startswith("SCRAM-SHA-256$")
    # Client tools on PATH, running as the postgres user (uid 999).
    tools = postgres.exec(["bash", "-c", "command -v psql pg_dump pg_restore && id -un && id -u"])
    assert tools.exit_code == 0, tools.output.decode()
    lines = tools.output.decode().split()
    assert [os.path.basename(p) for p in lines[:3]] == ["psql", "pg_dump", "pg_restore"]
    assert lines[3:] == ["postgres", "999"]
    # pg_dump works against the live database from inside the container.
    dump = postgres.exec(["pg_dump", "--username", "rehearsal", "--schema-only", "rehearsal_db"])
    assert dump.exit_code == 0, dump.output.decode()
    # The ready line comes once, from the final server (initialisation is silent).
    stdout, stderr = postgres.get_logs()
    assert (stdout + stderr).decode().count(READY_LINE) == 1


@pytest.mark.e2e
def test_postgres_stops_fast(postgres):
    container = postgres.get_wrapped_container()
    t0 = time.monotonic()
    container.stop(timeout=10)  # STOPSIGNAL SIGINT: fast shutdown, not the 10 s kill
    elapsed = time.monotonic() - t0
    container.reload()
    assert container.attrs["State"]["ExitCode"] == 0
    assert elapsed < 5, f"docker stop took {elapsed:.1f}s"
    assert "database system is shut down" in container.logs().decode()


@pytest.mark.e2e
def test_registry_push_retag_repush(docker_client, registry, built_images):
    # Plain-HTTP pushes to 127.0.0.1 work because the engine trusts 127.0.0.0/8
    # by default, without any insecure-registries setting.
    cidrs = docker_client.info()["RegistryConfig"]["InsecureRegistryCIDRs"]
    assert any(ipaddress.ip_address("127.0.0.1") in ipaddress.ip_network(c) for c in cidrs), cidrs

    host = registry.removeprefix("http://")
    repo = f"{host}/demo"
    marker = uuid.uuid4().hex[:8]  # fresh content every run: nothing is cached anywhere

    first = _build_demo(docker_client, f"{repo}:abc123", f"abc123-{marker}")
    built_images(first.id)
    pushed_abc = _push(docker_client, repo, "abc123")

    assert first.tag(repo, "production")
    pushed_prod = _push(docker_client, repo, "production")
    assert pushed_prod == pushed_abc  # same image, same manifest

    abc = _manifest_digest(registry, "demo", "abc123")
    prod = _manifest_digest(registry, "demo", "production")
    assert abc == prod == pushed_abc
    assert f"{repo}@{abc}" in _repo_digests(docker_client, first.id)

    # A different image pushed as :production moves only that tag.
    second = _build_demo(docker_client, f"{repo}:production", f"def456-{marker}")
    built_images(second.id)
    assert second.id != first.id
    pushed_new = _push(docker_client, repo, "production")
    new_prod = _manifest_digest(registry, "demo", "production")
    assert new_prod == pushed_new != abc
    assert _manifest_digest(registry, "demo", "abc123") == abc
    assert f"{repo}@{new_prod}" in _repo_digests(docker_client, second.id)
