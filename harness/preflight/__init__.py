"""Preflight: rollback hazards found in a scenario's files, without a cluster.

The package, by layer (each imports only the ones above it):
- `ids`: severities and check ids;
- `sql`, `migrations`, `manifests`, `shell`: readers of SQL, the migrations
  directory, the Kubernetes manifests and the runbook's commands;
- `dsl` (framework migrations as the checks see them, and the DSL calls' hazards), then its readers
  `alembic` (Python `ast`), `js_migrations` (tree-sitter), `sql_migrations` (goose, node-pg-migrate
  SQL, Flyway) and `frameworks`, which reads a directory with them;
- `inputs`: what the checks read, gathered once per scenario;
- `destructive` (a destructive change as a finding), `helm_checks`, `framework_checks`: checks that
  live apart;
- `checks`: the checks, the CHECKS table and `run_checks`.

Callers (`rehearse check`, the preflight phase) need only what is exported here.
"""

from harness.preflight.checks import CHECKS, Check, run_checks
from harness.preflight.ids import (
    DESTRUCTIVE,
    DOUBLE_UNDO,
    DOWN_WITH_GOOD_IMAGE,
    FAILURE,
    FRAMEWORK_DESTRUCTIVE,
    FRAMEWORK_DOWN,
    HELM_CRDS,
    HELM_HISTORY,
    HELM_PENDING,
    HELM_ROLLBACK_HOOKS,
    HELM_ROLLBACK_SCHEMA,
    INPUTS,
    MIGRATION_PAIRS,
    NON_TRANSACTIONAL,
    NOOP_DOWN,
    PLACEHOLDERS,
    REVISION_HISTORY,
    RUNBOOK_NAMESPACE,
    RUNBOOK_OBJECTS,
    SHELLCHECK,
    SKIPPED_STEP,
    STATUS_AFTER_UNDO,
    WARNING,
    WORKLOADS,
    Severity,
)

__all__ = [
    "CHECKS", "Check", "run_checks", "Severity", "WARNING", "FAILURE",
    "MIGRATION_PAIRS", "NOOP_DOWN", "DESTRUCTIVE", "NON_TRANSACTIONAL", "REVISION_HISTORY", "RUNBOOK_OBJECTS",
    "RUNBOOK_NAMESPACE", "DOUBLE_UNDO", "STATUS_AFTER_UNDO", "DOWN_WITH_GOOD_IMAGE", "WORKLOADS", "INPUTS",
    "PLACEHOLDERS",
    "SKIPPED_STEP", "SHELLCHECK", "HELM_HISTORY", "HELM_PENDING", "HELM_CRDS", "HELM_ROLLBACK_SCHEMA",
    "HELM_ROLLBACK_HOOKS", "FRAMEWORK_DOWN", "FRAMEWORK_DESTRUCTIVE",
]
