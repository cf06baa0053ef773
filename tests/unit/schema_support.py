"""Shared by the tests of our two shipped JSON Schemas (scenario.yaml, report.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator


def load_validator(path: Path) -> Draft202012Validator:
    """A validator for a committed schema file, which must itself be a valid 2020-12 schema."""
    schema = json.loads(path.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def schema_errors(validator: Draft202012Validator, doc: Any) -> list[str]:
    """Every validation error as 'dotted.path: message', in path order."""
    return [f"{'.'.join(map(str, e.absolute_path)) or '(document)'}: {e.message}"
            for e in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))]
