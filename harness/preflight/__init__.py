"""Preflight: rollback hazards found in a scenario's files, without a cluster (being split into modules)."""

from harness.preflight.checks import (
    CHECKS,
    DESTRUCTIVE,
    DOUBLE_UNDO,
    DOWN_WITH_GOOD_IMAGE,
    FAILURE,
    INPUTS,
    MIGRATION_PAIRS,
    NON_TRANSACTIONAL,
    NOOP_DOWN,
    REVISION_HISTORY,
    RUNBOOK_NAMESPACE,
    RUNBOOK_OBJECTS,
    WARNING,
    WORKLOADS,
    is_noop,
    load_manifests,
    non_transactional,
    run_checks,
    split_sql,
    statement_hazards,
)

__all__ = [
    "CHECKS", "DESTRUCTIVE", "DOUBLE_UNDO", "DOWN_WITH_GOOD_IMAGE", "FAILURE", "INPUTS", "MIGRATION_PAIRS",
    "NON_TRANSACTIONAL", "NOOP_DOWN", "REVISION_HISTORY", "RUNBOOK_NAMESPACE", "RUNBOOK_OBJECTS", "WARNING",
    "WORKLOADS", "is_noop", "load_manifests", "non_transactional", "run_checks", "split_sql", "statement_hazards",
]
