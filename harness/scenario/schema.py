"""JSON Schema (draft 2020-12) of `scenario.yaml`, generated from the pydantic models.

The models in models.py are the single source of truth; this module only
turns them into a schema for editors and CI linters, with a few
post-processing steps so the schema describes what users *write* rather than
what the loader builds:

- `directory` is dropped: the loader sets it, users never write it;
- `name` is optional: the loader defaults it to the scenario directory's name;
- `variables` values may use the shorthand `NAME: value` (string or number),
  and names that do not match the pattern are rejected, as the model does;
- `runbook.placeholders` values may be numbers (`N: 1`), and names that do not
  match the pattern are rejected, as the model does;
- `registry` requires `versions.good.tag` and `versions.bad.tag` (a model
  validator in Python, an if/then here);
- `app` has exactly one of `manifests` and `helm` (a rule in Python, a oneOf here).

Regenerate the committed copy after changing the models:

    python -m harness.scenario.schema            # writes docs/scenario.schema.json
    python -m harness.scenario.schema -          # prints it

tests/unit/test_schema.py fails when the committed copy is stale.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from harness.scenario.models import Scenario

DIALECT = "https://json-schema.org/draft/2020-12/schema"
TITLE = "rollback-rehearsal scenario.yaml"
REPO_DIR = Path(__file__).resolve().parents[2]
DEFAULT_OUTPUT = REPO_DIR / "docs" / "scenario.schema.json"

# Fields the loader fills in; never part of what a user writes.
_LOADER_ONLY = ("directory",)
_NAME_NOTE = ("Optional in scenario.yaml: the loader defaults it to the name of the directory "
              "that holds the file. Used for the namespace (rr-<name>-<run id>) and the report directory.")


def _drop_loader_only(schema: dict[str, Any]) -> None:
    for field in _LOADER_ONLY:
        schema["properties"].pop(field, None)
    schema["required"] = [r for r in schema.get("required", []) if r not in _LOADER_ONLY]


def _name_optional(schema: dict[str, Any]) -> None:
    schema["required"] = [r for r in schema["required"] if r != "name"]
    schema["properties"]["name"]["description"] = _NAME_NOTE


def _variables_shorthand(schema: dict[str, Any]) -> None:
    """`FOO: bar` is accepted as `FOO: {value: bar}` (Scenario._plain_values)."""
    variables = schema["properties"]["variables"]
    patterns = variables["patternProperties"]
    for pattern, value_schema in patterns.items():
        patterns[pattern] = {
            "anyOf": [value_schema, {"type": ["string", "number"]}],
            "description": "`{value: ..., secret: true|false}`, or the shorthand `NAME: value`.",
        }
    variables["additionalProperties"] = False  # the model rejects names not matching the pattern


def _pass_env_shorthand(schema: dict[str, Any]) -> None:
    """`- NAME` is accepted as `- {name: NAME}` (Scenario._names)."""
    items = schema["properties"]["pass_env"]["items"]
    schema["properties"]["pass_env"]["items"] = {
        "anyOf": [items, {"type": "string"}],
        "description": "`{name: NAME, secret: true|false}`, or the shorthand `NAME` (secret).",
    }


def _placeholders_numbers(schema: dict[str, Any]) -> None:
    """`N: 1` is accepted as the text "1" (Runbook._plain_strings)."""
    placeholders = schema["$defs"]["Runbook"]["properties"]["placeholders"]
    for pattern in placeholders["patternProperties"]:
        placeholders["patternProperties"][pattern] = {"type": ["string", "number"]}
    placeholders["additionalProperties"] = False


def _promotion_needs_tags(schema: dict[str, Any]) -> None:
    """With `registry`, both versions need their commit-SHA `tag`."""
    tagged = {"required": ["tag"], "properties": {"tag": {"type": "string"}}}
    schema["if"] = {"required": ["registry"], "properties": {"registry": {"type": "object"}}}
    schema["then"] = {"properties": {"versions": {"properties": {"good": tagged, "bad": tagged}}}}


def _manifests_or_helm(schema: dict[str, Any]) -> None:
    """Exactly one of `app.manifests` and `app.helm` (a rule of the raw document in Python)."""
    schema["$defs"]["App"]["oneOf"] = [{"required": ["manifests"], "not": {"required": ["helm"]}},
                                       {"required": ["helm"], "not": {"required": ["manifests"]}}]


def _kill_helm_needs_helm(schema: dict[str, Any]) -> None:
    """A kill_helm fault needs a Helm release (a rule of the raw document in Python)."""
    kill = {"required": ["kind"], "properties": {"kind": {"const": "kill_helm"}}}
    schema.setdefault("allOf", []).append({
        "if": {"required": ["faults"], "properties": {"faults": {"contains": kill}}},
        "then": {"properties": {"app": {"required": ["helm"]}}}})


def json_schema() -> dict[str, Any]:
    """The scenario.yaml schema: a plain, JSON-serialisable dict (no $id)."""
    schema = Scenario.model_json_schema(mode="validation")
    _drop_loader_only(schema)
    _name_optional(schema)
    _variables_shorthand(schema)
    _pass_env_shorthand(schema)
    _placeholders_numbers(schema)
    _promotion_needs_tags(schema)
    _manifests_or_helm(schema)
    _kill_helm_needs_helm(schema)
    schema.pop("title", None)
    return {
        "$schema": DIALECT,
        "title": TITLE,
        "$comment": "Generated from harness/scenario/models.py by `python -m harness.scenario.schema`; do not edit.",
        **schema,
    }


def render() -> str:
    """The schema as written to docs/scenario.schema.json."""
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.scenario.schema",
                                     description="Write the JSON Schema of scenario.yaml.")
    parser.add_argument("output", nargs="?", default=str(DEFAULT_OUTPUT),
                        help=f"file to write, or - for stdout (default: {DEFAULT_OUTPUT.relative_to(REPO_DIR)})")
    args = parser.parse_args(argv)
    text = render()
    if args.output == "-":
        sys.stdout.write(text)
    else:
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
