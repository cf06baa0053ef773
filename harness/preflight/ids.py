"""The names a preflight finding carries: its severity and its check id.

Both are stable: they appear in report.json, the reports and
docs/preflight.md, and `rehearse check` exits 1 on any `failure`.
"""

from __future__ import annotations

from typing import Literal

Severity = Literal["warning", "failure"]
WARNING: Severity = "warning"
FAILURE: Severity = "failure"

MIGRATION_PAIRS = "migration-pairs"
NOOP_DOWN = "noop-down"
DESTRUCTIVE = "destructive-migration"
NON_TRANSACTIONAL = "non-transactional"
REVISION_HISTORY = "revision-history"
RUNBOOK_OBJECTS = "runbook-objects"
RUNBOOK_NAMESPACE = "runbook-namespace"
DOUBLE_UNDO = "double-undo"
STATUS_AFTER_UNDO = "status-after-undo"  # rollout status may read the stale ProgressDeadlineExceeded condition
DOWN_WITH_GOOD_IMAGE = "down-with-good-image"
WORKLOADS = "workloads"
PLACEHOLDERS = "placeholders"
SKIPPED_STEP = "skipped-step"
SHELLCHECK = "shellcheck"
HELM_HISTORY = "helm-history"                  # --history-max leaves nothing for the runbook's helm rollback
HELM_PENDING = "helm-pending-release"          # the runbook's helm upgrade meets a release stuck in pending-*
HELM_CRDS = "helm-crd-in-templates"            # a CRD rendered from templates/: a rollback deletes or changes it
HELM_ROLLBACK_SCHEMA = "helm-rollback-schema"  # helm rollback after an upgrade hook migrated, schema untouched
HELM_ROLLBACK_HOOKS = "helm-rollback-hooks"    # rollback hooks run the target (older) release's image
FRAMEWORK_DOWN = "framework-down"                # a framework migration's down missing, a no-op, or irreversible
FRAMEWORK_DESTRUCTIVE = "framework-destructive"  # a destructive DSL call or SQL in a framework migration's up
INPUTS = "inputs"  # the scenario's manifests or runbook could not be read
