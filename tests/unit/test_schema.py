"""docs/scenario.schema.json stays true: it equals the schema generated from the
models, every example scenario validates against it, and it accepts and
rejects the same small documents as the loader's models."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml
from jsonschema import Draft202012Validator
from schema_support import load_validator, schema_errors

from harness.scenario.models import Scenario
from harness.scenario.schema import json_schema

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "docs" / "scenario.schema.json"
EXAMPLES = sorted((REPO / "scenarios").glob("*/scenario.yaml"))


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    return load_validator(COMMITTED)


def _errors(validator: Draft202012Validator, doc: Any) -> list[str]:
    return schema_errors(validator, doc)


def test_committed_schema_equals_generated() -> None:
    committed = json.loads(COMMITTED.read_text(encoding="utf-8"))
    assert committed == json_schema(), (
        "docs/scenario.schema.json is stale. Fix: python -m harness.scenario.schema")


def test_schema_is_draft_2020_12_without_id() -> None:
    schema = json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "$id" not in schema
    assert schema["title"]
    assert "directory" not in schema["properties"]
    assert "name" in schema["properties"] and "name" not in schema["required"]


def test_directory_is_not_for_users(validator: Draft202012Validator) -> None:
    """The loader sets `directory` (and overwrites any value); the schema rejects it as unknown."""
    assert _errors(validator, {**MINIMAL, "directory": "/tmp"}) != []


def test_there_are_examples() -> None:
    assert EXAMPLES, "no scenarios/*/scenario.yaml found"


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.parent.name for p in EXAMPLES])
def test_example_scenario_validates(validator: Draft202012Validator, path: Path) -> None:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert _errors(validator, doc) == []


# ── the schema agrees with the models on small documents ────────────────────
MINIMAL: dict[str, Any] = {
    "app": {"manifests": "k8s.yaml", "workloads": [{"deployment": "demo"}]},
    "versions": {"good": {"image": "demo:v1"}, "bad": {"image": "demo:v2"}},
    "failure": {"mode": "readiness"},
}

_DELETE = object()


def _with(**changes: Any) -> dict[str, Any]:
    """MINIMAL with changes; `a__b=v` sets doc["a"]["b"], `_DELETE` removes a key."""
    doc = copy.deepcopy(MINIMAL)
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        cur = doc
        for p in parents:
            cur = cur.setdefault(p, {})
        if value is _DELETE:
            cur.pop(last, None)
        else:
            cur[last] = value
    return doc


CASES: list[tuple[str, dict[str, Any], bool]] = [
    ("minimal, no name", MINIMAL, True),
    ("explicit name", _with(name="my-rehearsal"), True),
    ("bad name", _with(name="My_Rehearsal"), False),
    ("unknown key", _with(colour="blue"), False),
    ("unknown nested key", _with(app__manifest="k8s.yaml"), False),
    ("no failure", _with(failure=_DELETE), False),
    ("bad failure mode", _with(failure__mode="explode"), False),
    ("no workloads", _with(app__workloads=[]), False),
    ("variables shorthand", _with(variables={"FOO": "bar", "N": 3}), True),
    ("variables long form", _with(variables={"TOKEN": {"value": "s3cret", "secret": True}}), True),
    ("lower-case variable", _with(variables={"foo": "bar"}), False),
    ("postgres as a number", _with(database={"postgres": 15}), False),
    ("postgres as a string", _with(database={"postgres": "15"}), True),
    ("registry with tags", _with(registry={"repository": "demo"},
                                 versions={"good": {"image": "a", "tag": "abc123"},
                                           "bad": {"image": "b", "tag": "def456"}}), True),
    ("registry without tags", _with(registry={"repository": "demo"}), False),
    ("registry: null needs no tags", _with(registry=None), True),
    ("expect NOT_READY", _with(expect="NOT_READY"), True),
    ("schema_version 2", _with(schema_version=2), False),
    ("up_one with down", _with(migrations={"up": "m up", "down": "m down 1", "up_one": "m up 1"}), True),
    ("up_one without down", _with(migrations={"up": "m up", "up_one": "m up 1"}), False),
    ("up_one with a null down", _with(migrations={"up": "m up", "down": None, "up_one": "m up 1"}), False),
    ("empty up_one", _with(migrations={"up": "m up", "down": "m down 1", "up_one": ""}), False),
]


@pytest.mark.parametrize(("doc", "valid"), [(d, v) for _, d, v in CASES], ids=[c[0] for c in CASES])
def test_schema_agrees_with_models(validator: Draft202012Validator, doc: dict[str, Any], valid: bool) -> None:
    loader_view = {"name": "from-directory", **doc, "directory": Path(".")}  # what the loader adds
    try:
        Scenario.model_validate(loader_view)
        model_ok = True
    except pydantic.ValidationError:
        model_ok = False
    assert model_ok is valid, "the case's expectation is wrong for the models"
    assert (_errors(validator, doc) == []) is valid, _errors(validator, doc)
