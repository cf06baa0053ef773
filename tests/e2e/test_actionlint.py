"""actionlint on the GitHub Actions template (docs/ci/github-actions.yml), with shellcheck on its `run:` blocks.

actionlint is built from its Go module by `make env` (env/go/actionlint.sh) and linked in bin/current; without
it these tests skip, which `make test` (REHEARSAL_REQUIRE_E2E=1) turns into a failure. actionlint skips
shellcheck silently when it cannot find it, so the path is passed explicitly and a broken copy proves that
shellcheck's findings come through. The other checks of both templates are tests/unit/test_ci_templates.py.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness import tools

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / "docs" / "ci" / "github-actions.yml"
PINNED = re.search(r"^ACTIONLINT_VERSION=(\S+)$", (REPO / "env" / "versions.env").read_text(), re.M)


@pytest.fixture(scope="module")
def actionlint() -> list[str]:
    """actionlint with the environment's shellcheck; skips (a failure under REHEARSAL_REQUIRE_E2E=1) when not built."""
    try:
        exe = tools.tool("actionlint")
    except tools.ToolMissing as exc:
        pytest.skip(f"{exc} (env/go/actionlint.sh builds it)")
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is not installed: run `make env` (or apt-get install shellcheck)"
    return [str(exe), "-no-color", "-shellcheck", shellcheck, "-pyflakes", ""]


def lint(actionlint: list[str], path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*actionlint, str(path)], capture_output=True, text=True, timeout=120)


def test_actionlint_is_the_pinned_build(actionlint: list[str]) -> None:
    assert PINNED is not None
    out = subprocess.run([actionlint[0], "-version"], capture_output=True, text=True, timeout=30).stdout
    assert out.splitlines()[0] == PINNED.group(1)


def test_actionlint_passes_the_workflow(actionlint: list[str]) -> None:
    proc = lint(actionlint, WORKFLOW)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


@pytest.mark.parametrize(("old", "new", "said"), [
    ('SHARD: ${{ matrix.shard }}\n          SHARDS:', 'SHARD: ${{ matrix.shards }}\n          SHARDS:',
     'property "shards" is not defined'),
    ('--report-dir "reports/shard-$SHARD"', "--report-dir reports/shard-$SHARD", "SC2086"),  # shellcheck's finding
    ("needs: rehearse", "needs: rehearsal", 'job "merge" needs job "rehearsal" which does not exist'),
], ids=["matrix-typo", "unquoted-variable", "unknown-needs"])
def test_actionlint_fails_on_a_broken_workflow(actionlint: list[str], tmp_path: Path, old: str, new: str,
                                               said: str) -> None:
    text = WORKFLOW.read_text(encoding="utf-8")
    assert old in text, old
    broken = tmp_path / WORKFLOW.name
    broken.write_text(text.replace(old, new, 1), encoding="utf-8")
    proc = lint(actionlint, broken)
    assert proc.returncode == 1 and said in proc.stdout, proc.stdout + proc.stderr
