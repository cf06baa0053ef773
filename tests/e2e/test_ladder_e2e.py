"""`rehearse ladder` for real: the demo's framework releases (node-pg-migrate, Alembic, golang-migrate and the
demo's own migrate, in their images as `make env` builds them) and a ten-migration golang-migrate set run
on the host with the golang-migrate CLI `make env` builds. Needs Docker and those images, no cluster.

Each case asserts the verdict the ladder must give: every step round-trips for the good sets; for a set
with a no-op down, that migration is named in its framework's terms with what its down leaves. And the
ladder leaves nothing behind, also when interrupted."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from harness import cleanup, runstate, tools
from harness.ladder.run import run_ladder
from harness.scenario import load_scenario

pytestmark = pytest.mark.e2e
pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[2]
TEN = REPO / "tests" / "data" / "ladder" / "ten"
GOLANG_MIGRATE = tools.CACHE_DIR / "bin" / "golang-migrate" / "migrate"
REHEARSE = Path(sys.executable).parent / "rehearse"
LADDER_OWNERS = "ladder-"


def _require(*images: str) -> None:
    """Skip with the fix rather than let Docker try to pull: no registry here."""
    if shutil.which("docker") is None:
        pytest.skip("docker CLI not found; the ladder needs Docker (see `make env`)")
    for image in (tools.POSTGRES_IMAGE.format(major="15"), *images):
        if subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode != 0:
            pytest.skip(f"image {image} is not built. Fix: `make env`")


def _leftovers() -> list[str]:
    """Containers and run records of ladders: none may outlive its ladder."""
    labels = subprocess.run(["docker", "ps", "-a", "--filter", f"label={tools.OWNER_LABEL}", "--format",
                             f'{{{{.Names}}}} {{{{.Label "{tools.OWNER_LABEL}"}}}}'],
                            capture_output=True, text=True, timeout=60).stdout.splitlines()
    records = [p.name for p in runstate.records() if p.name.startswith(LADDER_OWNERS)]
    return [line for line in labels if f" {LADDER_OWNERS}" in line] + records


@pytest.fixture(autouse=True)
def _nothing_left_behind() -> Any:
    before = set(_leftovers())
    yield
    assert set(_leftovers()) - before == set()


# scenario → (exit code, the migrations in order, the leftover the failing step must name)
DEMO_CASES: dict[str, tuple[int, list[str], str | None]] = {
    "node-pg-migrate-rollback": (0, ["migration 1700000000000_init (node-pg-migrate)",
                                     "migration 1700000000001_add-nickname (node-pg-migrate)"], None),
    "node-pg-migrate-noop-down": (1, ["migration 1700000000000_init (node-pg-migrate)",
                                      "migration 1700000000001_add-discount (node-pg-migrate)"],
                                  "column orders.discount_cents is still present"),
    "alembic-rollback": (0, ["revision 3f1c2a9d7b10 (alembic)", "revision 8e4b7c1d2a65 (alembic)"], None),
    "alembic-noop-downgrade": (1, ["revision 3f1c2a9d7b10 (alembic)", "revision 5c2d9e7a4b18 (alembic)"],
                               "column orders.discount_cents is still present"),
    "golang-migrate-rollback": (0, ["version 1 (golang-migrate)", "version 2 (golang-migrate)"], None),
    "golang-migrate-empty-down": (1, ["version 1 (golang-migrate)", "version 3 (golang-migrate)"],
                                  "column orders.coupon_code is still present"),
    "bad-migration": (0, ["version 1 (golang-migrate)", "version 2 (golang-migrate)"], None),  # the demo's migrate
    "noop-down-migration": (1, ["version 1 (golang-migrate)", "version 3 (golang-migrate)"],
                            "column orders.discount_cents is still present"),
}


@pytest.mark.parametrize("name", list(DEMO_CASES))
def test_the_demo_framework_releases(name: str) -> None:
    scenario = load_scenario(REPO / "scenarios" / name)
    _require(scenario.versions.bad.image)
    code, migrations, leftover = DEMO_CASES[name]
    result = run_ladder(scenario)
    assert [s.migration for s in result.steps] == migrations, result.model_dump_json(indent=1)
    assert result.exit_code == code, result.model_dump_json(indent=1)
    failed = result.failed_step
    if leftover is None:
        assert failed is None and result.ended == f"no migration left after {len(migrations)}"
    else:
        assert failed is not None and failed.migration == migrations[-1]
        # the version moved back, the column stayed
        assert (failed.schema_restored, failed.version_restored) == (False, True)
        assert any(d.message.startswith(leftover) for d in failed.leftovers), failed.leftovers


def test_a_migration_that_fails_half_way_is_an_error_not_the_end() -> None:
    scenario = load_scenario(REPO / "scenarios" / "half-way-migration")
    _require(scenario.versions.bad.image)
    result = run_ladder(scenario)
    assert result.exit_code == 1 and [s.migration for s in result.steps][-1] == "version 3 (golang-migrate)"
    assert result.steps[-1].up_ok is False
    assert "CREATE INDEX CONCURRENTLY cannot run inside a transaction block" in (result.steps[-1].error or "")


def _ten(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, noop_down: str | None = None) -> Path:
    if not GOLANG_MIGRATE.exists():
        pytest.skip(f"{GOLANG_MIGRATE} is not built. Fix: env/go/golang-migrate.sh (or `make env`)")
    monkeypatch.setenv("GOLANG_MIGRATE", str(GOLANG_MIGRATE))
    if noop_down is None:
        return TEN
    copy = tmp_path / "ten-noop"
    shutil.copytree(TEN, copy)
    scenario = copy / "scenario.yaml"
    scenario.write_text(scenario.read_text().replace("../../../../demo/", f"{REPO}/demo/"))
    (copy / "migrations" / noop_down).write_text("")  # as `migrate create` leaves it
    return copy


def test_ten_migrations_round_trip_well_within_thirty_seconds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              record_property: Any) -> None:
    _require()
    scenario = load_scenario(_ten(tmp_path, monkeypatch))
    t0 = time.monotonic()
    result = run_ladder(scenario)
    took = time.monotonic() - t0
    record_property("ladder_10_migrations_s", round(took, 1))
    print(f"\nladder of 10 migrations: {took:.1f}s (Postgres start included)")  # noqa: T201 (the measure asked for)
    assert result.exit_code == 0, result.model_dump_json(indent=1)
    assert [s.migration for s in result.steps] == [f"version {i} (golang-migrate)" for i in range(1, 11)]
    assert took < 120  # the acceptance is 30 s; this bound only catches a ladder gone badly wrong on a busy machine


def test_ten_migrations_with_a_no_op_down_name_it_and_what_it_leaves(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    _require()
    result = run_ladder(load_scenario(_ten(tmp_path, monkeypatch, noop_down="0007_orders_updated_at.down.sql")))
    assert result.exit_code == 1 and len(result.steps) == 7
    failed = result.failed_step
    assert failed is not None and failed.migration == "version 7 (golang-migrate)"
    assert sorted(d.message for d in failed.leftovers) == [
        "column orders.updated_at is still present (added after baseline)",
        "function touch_updated_at() is still present (added after baseline)",
        "trigger orders_touch on orders is still present (added after baseline)",
    ]


def test_rehearse_ladder_json_and_exit_code() -> None:
    _require("rollback-rehearsal/demo-gomigrate:v8")
    proc = subprocess.run([str(REHEARSE), "ladder", "--json", str(REPO / "scenarios" / "golang-migrate-empty-down")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert (doc["exit_code"], doc["failed_migration"]) == (1, "version 3 (golang-migrate)")


def test_pytest_ladder_items_pass_and_fail_with_the_ladder(pytester: pytest.Pytester) -> None:
    _require("rollback-rehearsal/demo-gomigrate:v2", "rollback-rehearsal/demo-gomigrate:v8")
    for name in ("golang-migrate-rollback", "golang-migrate-empty-down"):
        shutil.copytree(REPO / "scenarios" / name, pytester.path / "scenarios" / name)
    shutil.copytree(REPO / "demo", pytester.path / "demo")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--ladder", "-m", "ladder", "scenarios")
    result.assert_outcomes(passed=1, failed=1, deselected=2)
    result.stdout.fnmatch_lines(["*version 3 (golang-migrate) does not round-trip*",
                                 "*column orders.coupon_code is still present*"])


def test_an_interrupted_ladder_removes_its_postgres_and_container() -> None:
    _require("rollback-rehearsal/demo-node:v2")
    proc = subprocess.Popen([str(REHEARSE), "ladder", str(REPO / "scenarios" / "node-pg-migrate-rollback")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "COLUMNS": "200"})
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:  # the migration container runs from this line on
        seen.append(line)
        if "each migration up, down and up again" in line:
            proc.send_signal(signal.SIGINT)
            break
    out = "".join(seen) + proc.communicate(timeout=120)[0]
    assert proc.returncode == 130, out
    assert "interrupted: resources cleaned up" in out


def test_a_ladder_killed_with_kill_9_leaves_what_the_reaper_removes(tmp_path: Path) -> None:
    """Its own cache directory: the reaper below reaps this ladder's run alone, never another run's."""
    _require("rollback-rehearsal/demo-node:v2")
    runs = tmp_path / "cache" / "runs"
    proc = subprocess.Popen([str(REHEARSE), "ladder", str(REPO / "scenarios" / "node-pg-migrate-rollback")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "REHEARSAL_CACHE_DIR": str(tmp_path / "cache"), "COLUMNS": "200"})
    assert proc.stdout is not None
    for line in proc.stdout:
        if "each migration up, down and up again" in line:
            proc.kill()
            break
    proc.communicate(timeout=60)
    [record] = [runstate.read_record(p) for p in runstate.records(runs)]
    assert record is not None
    owned = ["docker", "ps", "-aq", "--filter", f"label={tools.OWNER_LABEL}={record.owner}"]
    assert len(subprocess.run(owned, capture_output=True, text=True).stdout.split()) == 2  # Postgres, migrations

    [outcome] = cleanup.reap(directory=runs)
    assert outcome.left == [] and {r.split(" ")[0] for r in outcome.removed} >= {"container", "database"}
    assert subprocess.run(owned, capture_output=True, text=True).stdout.split() == []
    assert runstate.records(runs) == []
