"""The shard + merge path the CI templates use, end to end: `rehearse run --shard 1/2` and `--shard 2/2`
rehearse two demo scenarios on the session's cluster and Postgres, then `rehearse report merge` makes one
report set of their report directories, whose verdicts are the scenarios' expectations.

The two shard runs are `rehearse run` child processes, side by side, as two CI runners would be. They use the
outer session's cluster through its kubeconfig (`--kubeconfig`: an existing cluster, not created, not deleted,
no cluster-name lock) and its Postgres container through `--database-dsn` and the address pods reach it at
(`--database-cluster-host HOST:PORT`); each run has its own run id, so its own namespaces and databases. An
existing cluster loads no image, so the test loads the two demo images first, as a run on kind would.

    .venv/bin/pytest tests/e2e/test_shard_merge.py -v --cluster-name rr-dev
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import xmlschema
from junitparser import Failure, JUnitXml, Properties
# tests/e2e is on sys.path (no package): the `rehearse run` child process shared with the ownership tests.
from sessions import REPO, Rehearse

pytestmark = pytest.mark.e2e

SCENARIOS = {"bad-image": "READY", "configmap-drift": "NOT_READY"}  # the cheapest demo scenarios, and expect
IMAGES = ("rollback-rehearsal/demo-app:v1", "rollback-rehearsal/demo-app:v3")
RUN_TIMEOUT_S = 240
XSD = REPO / "tests" / "data" / "junit.xsd"


def _verdicts(junit: Path) -> dict[str, str]:
    xmlschema.XMLSchema(str(XSD)).validate(str(junit))
    xml = JUnitXml.fromfile(str(junit))
    out = {}
    for suite in list(xml) if isinstance(xml, JUnitXml) else [xml]:
        for case in suite:
            if case.classname != "rollback-rehearsal":
                continue  # a runbook step's case; the scenario's case carries the verdict
            assert case.name not in out and not any(isinstance(r, Failure) for r in case.result), case.name
            out[case.name] = next(p.value for group in case.iterchildren(Properties) for p in group
                                  if p.name == "verdict")
    return out


def test_two_shards_merged_give_every_expected_verdict(kind_cluster: Any, postgres: Any, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    for image in IMAGES:
        kind_cluster.load_image(image)
    monkeypatch.setenv("REHEARSAL_DATABASE_DSN", postgres.admin_dsn)  # the environment, not the command line
    common = ["--kubeconfig", str(kind_cluster.kubeconfig), "--cluster-name", "rr-shard-e2e", "--against-expect",
              "--database-cluster-host", f"{postgres.cluster_host}:{postgres.cluster_port}"]
    shards = [tmp_path / f"shard-{k}" for k in (1, 2)]
    runs = [Rehearse(*(f"scenarios/{n}" for n in SCENARIOS), "--shard", f"{k}/2", "--report-dir", str(d), *common)
            for k, d in enumerate(shards, start=1)]
    try:
        codes = [r.proc.wait(timeout=RUN_TIMEOUT_S) for r in runs]
    finally:
        for r in runs:
            r.kill()
    for r, code in zip(runs, codes, strict=True):
        assert code == 0, r.output
    records = [json.loads((d / "run.json").read_text()) for d in shards]
    assert [r["shard"] for r in records] == ["1/2", "2/2"]
    assert records[0]["partition"] == records[1]["partition"] and records[0]["run_id"] != records[1]["run_id"]
    assert sorted(n for r in records for n in r["scenarios"]) == sorted(SCENARIOS)  # each once, across shards

    out = tmp_path / "merged"
    merge = subprocess.run([str(Path(sys.executable).with_name("rehearse")), "report", "merge", *map(str, shards),
                            shards[0], "--out", str(out)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert merge.returncode == 0, merge.stdout + merge.stderr
    assert _verdicts(out / "junit.xml") == SCENARIOS
    for name in SCENARIOS:
        assert json.loads((out / name / "report.json").read_text())["verdict"] == SCENARIOS[name]
        assert (out / name / "report.html").is_file()
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert sorted((e["scenario"], e["verdict"]) for e in history) == sorted(SCENARIOS.items())
    assert "1/2 ready" in (out / "summary.md").read_text() and (out / "trend.html").is_file()
