"""The chart of a scenario with `app.helm`, rendered offline with `helm template` with a version's values (the good
one for the manifest checks; the bad one too, for what a rollback from it removes), so the checks read the objects
each release creates. A reader like manifests.py: errors are ManifestError, and the caller turns them into `inputs`
warnings."""

from __future__ import annotations

import subprocess
import tempfile

from harness import helm, tools
from harness.preflight.manifests import K8sObject, ManifestError, objects_in_text
from harness.scenario.models import Scenario, Version
from harness.scenario.reading import ReadError


def template_argv(scenario: Scenario, version: Version | None = None) -> list[str]:
    """`helm template` of a version (default: the good one), with the images standing in for the rehearsal's
    variables."""
    h = scenario.app.helm
    assert h is not None, "only for scenarios with app.helm"
    version = version or scenario.versions.good
    variables = {"APP_IMAGE": version.image, "GOOD_IMAGE": scenario.versions.good.image,
                 "BAD_IMAGE": scenario.versions.bad.image, **{k: v.value for k, v in scenario.variables.items()}}
    upgrade = helm.upgrade_argv(scenario, version, variables)
    # upgrade --install RELEASE CHART [values and sets] [flags]: keep release, chart, values and sets.
    body = upgrade[2:len(upgrade) - len(helm.upgrade_flags(h))]
    return ["template", *body]


def render_chart(scenario: Scenario, version: Version | None = None, timeout_s: float = 60) -> list[K8sObject]:
    """The objects `helm template` renders for a version (templates/ only: helm leaves crds/ out unless asked)."""
    try:
        exe = tools.tool("helm")
    except tools.ToolMissing as exc:
        raise ManifestError(f"cannot render the chart: {exc}") from None
    with tempfile.TemporaryDirectory(prefix="rehearsal-helm-home-") as home:  # helm's cache, never the user's
        try:
            proc = subprocess.run([str(exe), *template_argv(scenario, version)], capture_output=True, text=True,
                                  timeout=timeout_s, env={"HOME": home, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ManifestError(f"helm template did not finish: {exc}") from None
    if proc.returncode != 0:
        raise ManifestError(f"helm template failed: {proc.stderr.strip()[-500:]}")
    try:
        return objects_in_text(proc.stdout, scenario.path(scenario.app.helm.chart))  # type: ignore[union-attr]
    except ReadError as exc:
        raise ManifestError(str(exc)) from None
