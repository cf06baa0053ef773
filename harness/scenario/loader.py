"""Load → default → validate scenario files, reporting every problem at once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from harness.runbook_commands import RunbookError, parse_runbook
from harness.scenario.models import Runbook, Scenario

SCENARIO_FILE = "scenario.yaml"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a scenario: where, what, and how to fix it."""

    file: Path
    field: str
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.file}: {self.field}: {self.message}\n    fix: {self.fix}"


class ScenarioError(Exception):
    """Raised with every problem found, never just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def _fix_for(err: dict[str, Any]) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return "remove this key or check its spelling (see docs/scenario-format.md)"
    if kind == "missing":
        return "add this required field"
    if kind in ("enum", "literal_error"):
        return f"use one of the allowed values ({err.get('ctx', {}).get('expected', '')})"
    if kind == "string_pattern_mismatch":
        return f"use a value matching {err.get('ctx', {}).get('pattern', '')}"
    return "correct the value (see docs/scenario-format.md)"


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


def _read(file: Path) -> tuple[dict[str, Any] | None, list[Problem]]:
    try:
        doc = yaml.safe_load(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, [Problem(file, "(file)", "file not found", f"create {file.name} (see docs/scenario-format.md)")]
    except yaml.YAMLError as exc:
        return None, [Problem(file, "(yaml)", f"not valid YAML: {exc}", "fix the YAML syntax at the position shown")]
    if not isinstance(doc, dict):
        return None, [Problem(file, "(document)", "must be a mapping of fields", "start from docs/scenario-format.md")]
    return doc, []


def _with_defaults(doc: dict[str, Any], directory: Path) -> dict[str, Any]:
    """Defaults that depend on where the file lives (the rest are in the models)."""
    doc = dict(doc)
    doc.setdefault("name", directory.name)
    doc["directory"] = directory
    return doc


def _check_files(doc: dict[str, Any], file: Path) -> list[Problem]:
    """Semantic checks that need the file system: named files exist, the runbook section exists.

    They read the raw document (defaults applied), not the validated model, so
    they also run, and report, when the schema check found problems.
    """
    problems: list[Problem] = []
    directory: Path = doc["directory"]

    def get(dotted: str, default: Any = None) -> Any:
        cur: Any = doc
        for part in dotted.split("."):
            cur = cur.get(part) if isinstance(cur, dict) else None
        return default if cur is None else cur

    def exists(field: str, what: str, default: Any = None) -> None:
        rel = get(field, default)
        if isinstance(rel, (str, Path)) and str(rel) and not (directory / rel).resolve().exists():
            problems.append(Problem(file, field, f"{what} {rel} does not exist (resolved to {(directory / rel).resolve()})",
                                    f"create it or correct the path (relative to {directory})"))

    exists("app.manifests", "manifests")
    exists("database.seed", "seed file")
    rb_file = get("runbook.file", Runbook.model_fields["file"].default)
    section = get("runbook.section", Runbook.model_fields["section"].default)
    exists("runbook.file", "runbook", rb_file)
    exists("migrations.files", "migrations directory")
    for label in ("good", "bad"):
        exists(f"versions.{label}.build.context", "build context")
    if not isinstance(rb_file, (str, Path)) or not isinstance(section, str) or not section:
        return problems  # wrong types are reported by the schema check
    runbook = (directory / rb_file).resolve()
    if runbook.is_file():

        try:
            steps = parse_runbook(runbook.read_text(encoding="utf-8"), section)
            if not steps:
                problems.append(Problem(file, "runbook.section",
                                        f"section '{section}' of {runbook.name} has no shell code blocks",
                                        "add ```sh blocks with the rollback commands to that section"))
            faults = doc.get("faults")  # a fault at a step that never starts would never apply
            for i, fault in enumerate(faults if isinstance(faults, list) else []):
                at = fault.get("at_step", 1) if isinstance(fault, dict) else None
                if steps and isinstance(at, int) and not isinstance(at, bool) and at > len(steps):
                    problems.append(Problem(file, f"faults[{i}].at_step",
                                            f"section '{section}' of {runbook.name} has {len(steps)} steps: "
                                            f"step {at} never starts, so the fault would never apply",
                                            f"use a step number from 1 to {len(steps)}"))
        except RunbookError as exc:
            problems.append(Problem(file, "runbook.section", str(exc),
                                    f"use one of the headings of {runbook.name} or add the section"))
    return problems


def load_scenario(path: Path) -> Scenario:
    """Load one scenario from its directory or its scenario.yaml; raise ScenarioError with all problems."""
    path = Path(path)
    file = path / SCENARIO_FILE if path.is_dir() else path
    directory = file.parent.resolve()
    doc, problems = _read(file)
    if doc is None:
        raise ScenarioError(problems)
    doc = _with_defaults(doc, directory)
    try:
        scenario = Scenario.model_validate(doc)
    except ValidationError as exc:
        problems = [Problem(file, _loc(e["loc"]), e["msg"], _fix_for(e)) for e in exc.errors()]
        scenario = None
    problems += _check_files(doc, file)  # also when the schema failed: every problem at once
    if problems or scenario is None:
        raise ScenarioError(problems)
    return scenario


def discover(paths: list[Path]) -> list[Path]:
    """Scenario directories under the given paths (a path may itself be one)."""
    found: list[Path] = []
    for p in paths:
        p = Path(p)
        if (p / SCENARIO_FILE).exists() or p.name == SCENARIO_FILE:
            found.append(p if p.is_dir() else p.parent)
        elif p.is_dir():
            found.extend(sorted(f.parent for f in p.glob(f"*/{SCENARIO_FILE}")))
    return found


def load_all(paths: list[Path]) -> list[Scenario]:
    """Load every scenario; problems of all files are reported together."""
    scenarios: list[Scenario] = []
    problems: list[Problem] = []
    dirs = discover(paths)
    if not dirs:
        raise ScenarioError([Problem(Path(str(paths)), "(path)", "no scenario.yaml found",
                                     "point at a scenario directory or a directory of them")])
    for d in dirs:
        try:
            scenarios.append(load_scenario(d))
        except ScenarioError as exc:
            problems.extend(exc.problems)
    names = [s.name for s in scenarios]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.append(Problem(Path(dup), "name", f"scenario name '{dup}' is used twice", "give each scenario a unique name"))
    if problems:
        raise ScenarioError(problems)
    return scenarios
