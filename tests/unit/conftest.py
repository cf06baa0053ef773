"""Shared helpers of the unit tests: small scenario trees written on disk.

Pure files only: nothing here starts a cluster, a container or a database.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "scenarios"

RUNBOOK_MD = """\
# demo: release runbook

## Deploy

```sh
kubectl -n "$NAMESPACE" set image deployment/demo app="$NEW_IMAGE"
```

## Rollback

```sh
kubectl -n "$NAMESPACE" rollout undo deployment/demo
```
"""


def minimal_doc(**overrides: Any) -> dict[str, Any]:
    """The smallest valid scenario.yaml content (name comes from the directory)."""
    doc: dict[str, Any] = {
        "app": {"manifests": "app.yaml", "workloads": [{"deployment": "demo"}]},
        "versions": {"good": {"image": "demo:v1"}, "bad": {"image": "demo:v2"}},
        "failure": {"mode": "crashloop"},
    }
    doc.update(overrides)
    return doc


def write_scenario(base: Path, dirname: str, doc: dict[str, Any] | str | None = None, *,
                   runbook: str | None = RUNBOOK_MD, manifest: bool = True) -> Path:
    """Write base/dirname/{scenario.yaml, runbook.md, app.yaml}; return the directory."""
    d = base / dirname
    d.mkdir(parents=True, exist_ok=True)
    text = doc if isinstance(doc, str) else yaml.safe_dump(minimal_doc() if doc is None else doc, sort_keys=False)
    (d / "scenario.yaml").write_text(text, encoding="utf-8")
    if runbook is not None:
        (d / "runbook.md").write_text(runbook, encoding="utf-8")
    if manifest:
        (d / "app.yaml").write_text("apiVersion: v1\nkind: List\nitems: []\n", encoding="utf-8")
    return d


# A scenario with seven problems of different kinds at once. Each entry: the
# dotted field the problem must be reported on, and a word its message names.
BROKEN_DOC = """\
name: Bad_Name
expect: MAYBE
colour: blue
app:
  manifests: missing-manifest.yaml
  workloads:
    - container: app
versions:
  good: {image: "demo:v1"}
  bad: {image: "demo:v2"}
registry:
  repository: demo
failure:
  mode: crashloop
runbook:
  section: Rollbakc
"""
BROKEN_EXPECTED: dict[str, str] = {
    "name": "pattern",                          # bad name pattern
    "expect": "READY",                          # wrong enum value (message lists the allowed ones)
    "colour": "Extra",                          # unknown key
    "app.workloads[0].deployment": "required",  # missing required field
    "app.manifests": "missing-manifest.yaml",   # file that does not exist
    "runbook.section": "Rollbakc",              # section the runbook does not have
    "registry": "tag",                          # registry without version tags
}


def fake_shell(run: Callable[..., Any]) -> Callable[..., Any]:
    """A stand-in for harness.shell_session.ShellSession (patch it where it is used: steps.ShellSession)
    whose `run(step, timeout_s)` calls `run(step, env, cwd, timeout_s)`: the one seam of a runbook's commands."""

    class FakeShell:
        def __init__(self, env: Any, cwd: Path, answers: Any = ()) -> None:
            self.env, self.cwd = env, cwd

        def __enter__(self) -> FakeShell:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def run(self, step: Any, timeout_s: float) -> Any:
            return run(step, self.env, self.cwd, timeout_s)

    return FakeShell


@pytest.fixture
def kit() -> SimpleNamespace:
    """The helpers above, as a fixture (test modules cannot import a conftest reliably)."""
    return SimpleNamespace(REPO=REPO, EXAMPLES=EXAMPLES, RUNBOOK_MD=RUNBOOK_MD, minimal_doc=minimal_doc,
                           write_scenario=write_scenario, BROKEN_DOC=BROKEN_DOC, BROKEN_EXPECTED=BROKEN_EXPECTED,
                           fake_shell=fake_shell)


@pytest.fixture
def scenario_dir(tmp_path: Path) -> Callable[..., Path]:
    """`scenario_dir("name", doc=..., runbook=...)` writes a scenario under tmp_path."""

    def make(dirname: str = "demo", doc: dict[str, Any] | str | None = None, **kw: Any) -> Path:
        return write_scenario(tmp_path, dirname, doc, **kw)

    return make


@pytest.fixture
def broken_scenario(tmp_path: Path) -> Path:
    return write_scenario(tmp_path, "broken", BROKEN_DOC)
