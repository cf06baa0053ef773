"""JSON Schema (draft 2020-12) of report.json, generated from the Journal model.

The Journal (harness/journal.py) is the single source; its snapshot fields
(``baseline``, ``after_bad_deploy``, ``after_rollback``) are plain dicts there
(the journal must not depend on the snapshot package), so the schema takes
their shape from the model they are dumped from, ``StateSnapshot``
(harness/snapshot/state.py), not from a second declaration. The schema is
versioned by ``schema_version`` (a const): additive, optional fields keep the
version; renaming or removing a field bumps JOURNAL_SCHEMA_VERSION.

The shipped copy is harness/report/report.schema.json (package data, printed
by ``rehearse report schema``). Regenerate it after changing the models:

    python -m harness.report.json_schema          # rewrites the shipped copy
    python -m harness.report.json_schema -        # prints it

tests/unit/test_reports.py fails when the shipped copy is stale.
"""

from __future__ import annotations

import json
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ConfigDict

from harness.journal import JOURNAL_SCHEMA_VERSION, Journal
from harness.snapshot.state import StateSnapshot

DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID = f"urn:rollback-rehearsal:report:v{JOURNAL_SCHEMA_VERSION}"
SHIPPED = Path(__file__).with_name("report.schema.json")


class ReportDoc(Journal):
    """report.json: the Journal, with its snapshots typed."""

    model_config = ConfigDict(title="Report")
    baseline: StateSnapshot | None = None  # type: ignore[assignment]
    after_bad_deploy: StateSnapshot | None = None  # type: ignore[assignment]
    after_rollback: StateSnapshot | None = None  # type: ignore[assignment]


def json_schema() -> dict[str, Any]:
    schema = ReportDoc.model_json_schema(mode="serialization")
    props = schema["properties"]
    props["schema_version"] = {
        "const": JOURNAL_SCHEMA_VERSION, "title": "Schema Version",
        "description": "Version of this format; bumped on any change that is not an added optional field.",
    }
    props["verdict"]["enum"] = ["READY", "NOT_READY", "ERROR"]
    props["expect"]["enum"] = ["READY", "NOT_READY"]
    props["objectives"]["description"] = (
        "The scenario's targets: max_recover_s (objectives.max_recover_s) and max_detect_s "
        "(failure.within_s). Absent in reports written before it was added.")
    schema["description"] = ("The rehearsal journal of one scenario run (report.json). "
                             "Every other report (HTML, JUnit, summary, history) is formatted from it.")
    schema["required"] = sorted({*schema.get("required", []), "schema_version", "scenario", "expect", "verdict"})
    return {
        "$schema": DIALECT,
        "$id": SCHEMA_ID,
        "$comment": "Generated from harness/journal.py by `python -m harness.report.json_schema`; do not edit.",
        **schema,
    }


def render() -> str:
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


def shipped_text() -> str:
    """The schema shipped with the package (what `rehearse report schema` prints)."""
    return resources.files("harness.report").joinpath("report.schema.json").read_text(encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    text = render()
    if args and args[0] == "-":
        sys.stdout.write(text)
        return 0
    out = Path(args[0]) if args else SHIPPED
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
