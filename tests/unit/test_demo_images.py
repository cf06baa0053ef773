"""The demo images the scenarios name are the ones `make env` builds, and the Node release's
dependencies are pinned for `npm ci` on any machine. Both are read from the files themselves: a
scenario naming an image no build script makes would otherwise fail only on the cluster, minutes in."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.scenario.loader import discover, load_all

REPO = Path(__file__).resolve().parents[2]
PREFIX = "rollback-rehearsal"
# family → (build script, the shell variable listing its releases)
FAMILIES = {
    "demo-node": ("frameworks.sh", "NODE_RELEASES"),
    "demo-alembic": ("frameworks.sh", "ALEMBIC_RELEASES"),
    "demo-gomigrate": ("frameworks.sh", "GOMIGRATE_RELEASES"),
    "demo-app": ("demo.sh", "RELEASES"),
}


def releases(family: str) -> list[str]:
    """The tags a build script makes: its `VAR="..."` line (demo.sh writes `version:max-migration`)."""
    script, var = FAMILIES[family]
    text = (REPO / "env" / "images" / script).read_text()
    found = re.search(rf'^{var}="([^"]*)"$', text, re.MULTILINE)
    assert found, f"{script} has no {var}= line"
    return [word.split(":")[0] for word in found.group(1).split()]


def test_every_demo_image_a_scenario_names_is_built() -> None:
    built = {f"{PREFIX}/{family}:{tag}" for family in FAMILIES for tag in releases(family)}
    named = {(s.name, v.image) for s in load_all(discover([REPO / "scenarios"]))
             for v in (s.versions.good, s.versions.bad) if v.build is None}
    missing = sorted(f"{name}: {image}" for name, image in named
                     if image.startswith(f"{PREFIX}/demo-") and image not in built)
    assert not missing, f"images no env/images script builds: {missing}"
    # The framework scenarios are among them (the test would pass vacuously without scenarios).
    assert {image for _, image in named} >= {f"{PREFIX}/demo-node:v2", f"{PREFIX}/demo-alembic:v2",
                                             f"{PREFIX}/demo-gomigrate:v8"}


def test_gomigrate_images_are_built_on_demo_app_releases() -> None:
    assert set(releases("demo-gomigrate")) <= set(releases("demo-app"))


@pytest.mark.parametrize(("family", "directory"), [("demo-node", "demo/node/release-migrations"),
                                                   ("demo-alembic", "demo/alembic/release-migrations"),
                                                   ("demo-app", "demo/release-migrations")])
def test_every_release_migrations_directory_belongs_to_a_built_release(family: str, directory: str) -> None:
    """The Dockerfiles copy release-migrations/<APP_VERSION>/: a directory of no built release is dead."""
    dirs = {p.name for p in (REPO / directory).iterdir() if p.is_dir()}
    assert dirs and dirs <= set(releases(family)), (dirs, releases(family))


def test_every_alembic_image_runs_a_release_app_py_has() -> None:
    """frameworks.sh passes each demo-alembic image its app.py release (v3 runs v6): an image without one fails
    the build under `set -u`, one naming a release app.py lacks exits on start with `unknown APP_VERSION`."""
    script = (REPO / "env" / "images" / "frameworks.sh").read_text()
    found = re.search(r"^declare -A ALEMBIC_APP_RELEASE=\((.*)\)$", script, re.MULTILINE)
    assert found, "frameworks.sh has no ALEMBIC_APP_RELEASE table"
    runs = dict(re.findall(r"\[(\w+)\]=(\w+)", found.group(1)))
    app_releases = set(re.findall(r'^    "(v\d+)": \{', (REPO / "demo" / "app" / "app.py").read_text(), re.MULTILINE))
    assert sorted(runs) == sorted(releases("demo-alembic"))
    assert set(runs.values()) <= app_releases and runs["v3"] == "v6", (runs, app_releases)


def test_node_dependencies_are_pinned_for_npm_ci() -> None:
    app = REPO / "demo" / "node" / "app"
    manifest = json.loads((app / "package.json").read_text())
    lock = json.loads((app / "package-lock.json").read_text())
    deps = manifest["dependencies"]
    assert all(re.fullmatch(r"\d+\.\d+\.\d+", v) for v in deps.values()), deps  # exact versions
    assert lock["packages"][""]["dependencies"] == deps  # npm ci refuses a lock out of step
    for name, version in deps.items():
        assert lock["packages"][f"node_modules/{name}"]["version"] == version
    # resolved + integrity for every package: npm ci elsewhere fetches and checks the same bytes.
    unpinned = [k for k, v in lock["packages"].items() if k and not (v.get("resolved") and v.get("integrity"))]
    assert not unpinned, unpinned
    assert manifest["scripts"]["migrate:down"].startswith("node-pg-migrate down")
