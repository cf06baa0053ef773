"""Load → default → validate scenario files, reporting every problem at once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from harness import placeholders as ph
from harness.runbook_commands import MarkerError, RunbookError, SectionNotFound, Step, parse_runbook, read_runbook
from harness.scenario.models import Runbook, Scenario
from harness.scenario.reading import (
    MAX_SCENARIO_BYTES,
    ReadError,
    kind_of,
    kind_of_quietly,
    migration_sources,
    load_yaml,
    os_error_words,
    path_problem,
    read_text,
)

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
    if kind_of_quietly(file) == "missing":
        return None, [Problem(file, "(file)", "file not found", f"create {file.name} (see docs/scenario-format.md)")]
    try:
        text = read_text(file, MAX_SCENARIO_BYTES)
    except ReadError as exc:
        return None, [Problem(file, "(file)", str(exc), f"make it a UTF-8 text file of at most "
                              f"{MAX_SCENARIO_BYTES // 1000} KB (see docs/scenario-format.md#limits)")]
    try:
        doc = load_yaml(text, "scenario.yaml")
    except ReadError as exc:
        return None, [Problem(file, "(yaml)", str(exc), "fix the YAML at the line shown")]
    if not isinstance(doc, dict):
        what = "empty" if doc is None else f"a {type(doc).__name__}"
        return None, [Problem(file, "(document)", f"must be a mapping of fields (the document is {what})",
                              "start from docs/scenario-format.md")]
    return doc, []


def _with_defaults(doc: dict[str, Any], directory: Path) -> dict[str, Any]:
    """Defaults that depend on where the file lives (the rest are in the models)."""
    doc = dict(doc)
    doc.setdefault("name", directory.name)
    doc["directory"] = directory
    return doc


# Path fields, what each must be, and what it names (for messages).
_PATH_FIELDS: list[tuple[str, str, str]] = [
    ("app.manifests", "any", "manifests"),
    ("database.seed", "file", "seed file"),
    ("runbook.file", "file", "runbook"),
    ("migrations.files", "dir", "migrations directory"),
    ("versions.good.build.context", "dir", "build context"),
    ("versions.bad.build.context", "dir", "build context"),
]
_KIND_WORDS = {"file": "a file", "dir": "a directory", "other": "neither a file nor a directory"}
_MANIFEST_SUFFIXES = (".yaml", ".yml")


def _get(doc: dict[str, Any], dotted: str, default: Any = None) -> Any:
    cur: Any = doc
    for part in dotted.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    return default if cur is None else cur


def _texts_to_read(field: str, path: Path, kind: str) -> list[Path]:
    """The files of a path field that the harness reads as UTF-8 text (manifests, kustomization, migrations)."""
    if field == "app.manifests":
        if kind == "file":
            return [path]
        return sorted(f for f in path.iterdir() if f.suffix in _MANIFEST_SUFFIXES or f.name == "Kustomization")
    if field == "migrations.files":
        return migration_sources(path)
    return []


def _check_path(file: Path, directory: Path, field: str, want: str, what: str, rel: Any) -> list[Problem]:
    """One path field: usable, existing, of the right type, and (for files the harness reads) UTF-8 text."""
    if not isinstance(rel, (str, Path)) or not str(rel):
        return []  # wrong types are reported by the schema check
    fix = f"create it or correct the path (relative to {directory})"
    bad = path_problem(str(rel))
    if bad:
        return [Problem(file, field, f"the path {bad}", "write a plain relative path")]
    path = directory / rel
    try:
        kind = kind_of(path)
        if kind == "missing":
            return [Problem(file, field, f"{what} {rel} does not exist (resolved to {_resolved(path)})", fix)]
        if kind not in ({"file", "dir"} if want == "any" else {want}):
            wanted = "" if want == "any" else f", not {_KIND_WORDS[want]}"
            return [Problem(file, field, f"{what} {rel} is {_KIND_WORDS[kind]}{wanted}", fix)]
        texts = _texts_to_read(field, path, kind)
    except (ReadError, OSError) as exc:
        msg = str(exc) if isinstance(exc, ReadError) else f"{path} {os_error_words(exc)}"
        return [Problem(file, field, msg, fix)]
    problems: list[Problem] = []
    for text_file in texts:
        try:
            read_text(text_file)
        except ReadError as exc:
            problems.append(Problem(file, field, str(exc),
                                    "save it as UTF-8 text (see docs/scenario-format.md#limits)"))
    return problems


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python < 3.13)
        return path


def _check_runbook(doc: dict[str, Any], file: Path, directory: Path) -> list[Problem]:
    """The runbook reads, has the section, the section has commands, and every fault's step exists."""
    rb_file = _get(doc, "runbook.file", Runbook.model_fields["file"].default)
    section = _get(doc, "runbook.section", Runbook.model_fields["section"].default)
    if not isinstance(rb_file, (str, Path)) or not isinstance(section, str) or not section:
        return []  # wrong types are reported by the schema check
    runbook = directory / rb_file
    if path_problem(str(rb_file)) or kind_of_quietly(runbook) != "file":
        return []  # reported by the path check
    try:
        steps = parse_runbook(read_runbook(runbook), section)
    except SectionNotFound as exc:
        return [Problem(file, "runbook.section", str(exc),
                        f"use one of the headings of {runbook.name} or add the section")]
    except MarkerError as exc:  # every wrong `rehearse:` marker of the section
        return [Problem(file, "runbook.file", f"{runbook.name} line {m.line}: {m.message}", m.fix)
                for m in exc.problems]
    except RunbookError as exc:  # the file itself: encoding, size, unclosed fences, too many blocks
        return [Problem(file, "runbook.file", str(exc), exc.fix)]
    if not steps:
        return [Problem(file, "runbook.section", f"section '{section}' of {runbook.name} has no shell code blocks",
                        "add ```sh blocks with the rollback commands to that section")]
    if all(st.skip is not None for st in steps):
        return [Problem(file, "runbook.section", f"every command of section '{section}' of {runbook.name} is "
                        "marked `rehearse: skip`: the rehearsal would run nothing",
                        "skip only the steps that must not run in a rehearsal (paging, chat), never the rollback")]
    problems = _placeholder_problems(doc, file, runbook.name, steps)
    problems += _check_answers(doc, file, steps, f"section '{section}' of {runbook.name}")
    faults = doc.get("faults")  # a fault at a step that never starts would never apply
    for i, fault in enumerate(faults if isinstance(faults, list) else []):
        at = fault.get("at_step", 1) if isinstance(fault, dict) else None
        if isinstance(at, int) and not isinstance(at, bool) and at > len(steps):
            problems.append(Problem(file, f"faults[{i}].at_step",
                                    f"section '{section}' of {runbook.name} has {len(steps)} steps: "
                                    f"step {at} never starts, so the fault would never apply",
                                    f"use a step number from 1 to {len(steps)}"))
    return problems


def _names(value: Any) -> list[str]:
    """The names of a raw `variables` mapping or `pass_env` list (`NAME` or `{name: NAME}`; none when it has the
    wrong type)."""
    items = value.keys() if isinstance(value, dict) else value if isinstance(value, list) else []
    return [n for n in (e.get("name") if isinstance(e, dict) else e for e in items) if isinstance(n, str)]


def _one_line(command: str, limit: int = 80) -> str:
    return " ".join(command.split())[:limit]


def _placeholder_problems(doc: dict[str, Any], file: Path, runbook: str, steps: list[Step]) -> list[Problem]:
    """One problem per placeholder of the section that nothing binds (the raw document: also when the schema
    check failed elsewhere)."""
    raw = _get(doc, "runbook.placeholders", {})
    bound = {k: str(v) for k, v in raw.items() if isinstance(k, str)} if isinstance(raw, dict) else {}
    names = ph.env_names(_names(doc.get("variables")), _names(doc.get("pass_env")), doc.get("registry") is not None)
    return [Problem(file, "runbook.placeholders",
                    f"{runbook} line {p.line}: {p.text} in step {p.step.index} `{_one_line(p.step.command)}` is "
                    + ("a variable that nothing sets" if p.form == "variable" else "a placeholder that nothing fills in"),
                    p.fix())
            for p in ph.unbound(steps, bound, names)]


def _check_answers(doc: dict[str, Any], file: Path, steps: list[Step], where: str) -> list[Problem]:
    """Every `runbook.answers[].line` is a line of one of the section's commands: another line is never asked."""
    answers = _get(doc, "runbook.answers", [])
    starts = ", ".join(str(s.line) for s in steps[:20]) + (", ..." if len(steps) > 20 else "")
    problems: list[Problem] = []
    for i, answer in enumerate(answers if isinstance(answers, list) else []):
        line = answer.get("line") if isinstance(answer, dict) else None
        if not isinstance(line, int) or isinstance(line, bool):
            continue  # absent, or a wrong type the schema check reports
        if not any(s.line <= line <= s.line + s.command.count("\n") for s in steps):
            problems.append(Problem(file, f"runbook.answers[{i}].line",
                                    f"line {line} is not a line of a command of {where}, so no command there "
                                    "would get this answer",
                                    f"use the line of the command that asks (the commands start at lines {starts})"))
    return problems


def _helm_paths(doc: dict[str, Any]) -> list[tuple[str, str, str, Any]]:
    """(field, kind wanted, what it names, raw path) of every path under app.helm and versions.*.helm."""
    out: list[tuple[str, str, str, Any]] = []
    chart = _get(doc, "app.helm.chart")
    if chart is not None:
        out.append(("app.helm.chart", "any", "chart", chart))
    for prefix in ("app.helm", "versions.good.helm", "versions.bad.helm"):
        files = _get(doc, f"{prefix}.values", [])
        out += [(f"{prefix}.values[{i}]", "file", "values file", v)
                for i, v in enumerate(files if isinstance(files, list) else [])]
    return out


def _check_chart(doc: dict[str, Any], file: Path, directory: Path) -> list[Problem]:
    """A chart directory has its Chart.yaml; a chart file is a packaged chart (.tgz)."""
    rel = _get(doc, "app.helm.chart")
    if not isinstance(rel, (str, Path)) or not str(rel) or path_problem(str(rel)):
        return []  # reported by the schema or the path check
    kind = kind_of_quietly(directory / rel)
    if kind == "dir" and kind_of_quietly(directory / rel / "Chart.yaml") != "file":
        return [Problem(file, "app.helm.chart", f"chart directory {rel} has no Chart.yaml",
                        "point at the chart's directory (the one holding Chart.yaml) or at a packaged .tgz")]
    if kind == "file" and not str(rel).endswith((".tgz", ".tar.gz")):
        return [Problem(file, "app.helm.chart", f"chart {rel} is a file but not a packaged chart (.tgz)",
                        "point at the chart's directory, or package it with `helm package`")]
    return []


def _check_files(doc: dict[str, Any], file: Path) -> list[Problem]:
    """Semantic checks that need the file system: named files exist and read, the runbook section exists.

    They read the raw document (defaults applied), not the validated model, so
    they also run, and report, when the schema check found problems.
    """
    directory: Path = doc["directory"]
    defaults = {"runbook.file": Runbook.model_fields["file"].default}
    problems = [p for field, want, what in _PATH_FIELDS
                for p in _check_path(file, directory, field, want, what, _get(doc, field, defaults.get(field)))]
    problems += [p for field, want, what, rel in _helm_paths(doc)
                 for p in _check_path(file, directory, field, want, what, rel)]
    problems += _check_chart(doc, file, directory)
    return problems + _check_runbook(doc, file, directory)


def load_scenario(path: Path) -> Scenario:
    """Load one scenario from its directory or its scenario.yaml; raise ScenarioError with all problems."""
    path = Path(path)
    file = path / SCENARIO_FILE if kind_of_quietly(path) == "dir" else path
    directory = _resolved(file.parent)
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


def _scenario_dir(p: Path) -> bool:
    """Whether p holds a scenario file (ReadError when that cannot be told: a loop, an over-long name)."""
    return kind_of(p / SCENARIO_FILE) != "missing"


def _discover_one(p: Path) -> tuple[list[Path], list[Problem]]:
    """Scenario directories at or one level under `p`, and a problem for each that cannot be looked at."""
    fix = "point at a scenario directory or a directory of them"
    try:
        kind = kind_of(p)
        if kind == "missing":  # a typo on the command line must not pass as "nothing to check"
            raise ReadError(f"{p} does not exist")
        if p.name == SCENARIO_FILE:
            return [p.parent], []
        if kind != "dir":
            return [], []  # other files (a shell glob's README.md) are not scenarios
        if _scenario_dir(p):
            return [p], []
        children = sorted(c for c in p.iterdir() if kind_of_quietly(c) in ("dir", "other"))  # other: loops too
    except (ReadError, OSError) as exc:
        msg = str(exc) if isinstance(exc, ReadError) else f"{p} {os_error_words(exc)}"
        return [], [Problem(p, "(path)", msg, fix)]
    found: list[Path] = []
    problems: list[Problem] = []
    for child in children:
        try:
            if _scenario_dir(child):
                found.append(child)
        except ReadError as exc:  # e.g. scenario.yaml is a symlink loop: say so instead of skipping it
            problems.append(Problem(child / SCENARIO_FILE, "(path)", str(exc), fix))
    return found, problems


def _discover(paths: list[Path]) -> tuple[list[Path], list[Problem]]:
    """Scenario directories, and a problem for each given path that cannot be read."""
    found: list[Path] = []
    problems: list[Problem] = []
    for p in map(Path, paths):
        dirs, bad = _discover_one(p)
        found.extend(dirs)
        problems.extend(bad)
    if not found and not problems:
        problems.append(Problem(Path(" ".join(map(str, paths))), "(path)", "no scenario.yaml found",
                                "point at a scenario directory or a directory of them"))
    return found, problems


def discover(paths: list[Path]) -> list[Path]:
    """Scenario directories under the given paths (a path may itself be one); unusable paths are left out."""
    return _discover(paths)[0]


def scenario_name(file: Path) -> str | None:
    """The name a scenario file gives its scenario (or its directory's, the default); None if it cannot be read."""
    doc, _ = _read(file)
    if doc is None:
        return None
    name = _with_defaults(doc, _resolved(file.parent))["name"]
    return name if isinstance(name, str) else None


def duplicate_names(named: list[tuple[str, Path]]) -> list[Problem]:
    """The one rule for scenario names within a run (validate, run, pytest): each is used once.
    `named` holds (name, scenario file); each file of a shared name gets a problem."""
    files: dict[str, list[Path]] = {}
    for name, file in named:
        files.setdefault(name, []).append(file)
    return [Problem(file, "name", f"scenario name '{name}' is used {len(dup)} times ({', '.join(map(str, dup))})",
                    "give each scenario a unique name: it names the namespace, the database and the report directory")
            for name, dup in sorted(files.items()) if len(dup) > 1 for file in dup]


def load_or_problems(directory: Path) -> Scenario | list[Problem]:
    """One scenario, or its problems. The last resort turns a harness bug into a problem too, so one
    scenario can never hide the others' problems behind a traceback."""
    try:
        return load_scenario(directory)
    except ScenarioError as exc:
        return exc.problems
    except Exception as exc:  # noqa: BLE001 (reported with its type, never swallowed)
        return [Problem(directory / SCENARIO_FILE, "(internal)", f"could not be loaded: {type(exc).__name__}: {exc}",
                        "report this as a harness bug, with the file")]


def load_all(paths: list[Path]) -> list[Scenario]:
    """Load every scenario; problems of all files are reported together."""
    dirs, problems = _discover(paths)
    scenarios: list[Scenario] = []
    for d in dirs:
        loaded = load_or_problems(d)
        if isinstance(loaded, list):
            problems.extend(loaded)
        else:
            scenarios.append(loaded)
    problems += duplicate_names([(s.name, s.directory / SCENARIO_FILE) for s in scenarios])
    if problems:
        raise ScenarioError(problems)
    return scenarios
