"""Property-based tests (hypothesis) of the two readers of untrusted text.

- the scenario loader, on arbitrary bytes and arbitrary YAML: it returns a
  Scenario or raises ScenarioError, nothing else;
- the runbook parser, on generated runbooks: each command's reported line is
  its real first line in the file, and on arbitrary text it raises nothing
  but RunbookError.

Deterministic (derandomize) and small (max_examples) so the unit suite stays fast.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.runbook_commands import RunbookError, all_commands, parse_runbook, split_commands
from harness.scenario import ScenarioError, load_scenario
from harness.shell_syntax import command_end

FAST = settings(max_examples=60, derandomize=True, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Valid scenario as a starting point: mutations of it reach the deeper validation layers.
BASE: dict[str, Any] = {
    "app": {"manifests": "app.yaml", "workloads": [{"deployment": "demo"}]},
    "versions": {"good": {"image": "demo:v1"}, "bad": {"image": "demo:v2"}},
    "failure": {"mode": "crashloop"},
}
RUNBOOK = "# R\n## Rollback\n```sh\nkubectl rollout undo deployment/demo\n```\n"

# Everything YAML can hold: scalars of every kind, nested lists and mappings.
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
yaml_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=20)
FIELDS = ["name", "description", "expect", "app", "versions", "database", "migrations", "failure", "runbook",
          "registry", "variables", "pass_env", "timeouts", "faults", "checks", "objectives", "expect_risks"]


def _load(content: bytes) -> None:
    """Load a scenario whose scenario.yaml is `content`; only ScenarioError may escape."""
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "s"
        d.mkdir()
        (d / "scenario.yaml").write_bytes(content)
        (d / "runbook.md").write_text(RUNBOOK)
        (d / "app.yaml").write_text("kind: List\n")
        try:
            load_scenario(d)
        except ScenarioError as exc:
            assert exc.problems and all(p.fix for p in exc.problems)


@FAST
@given(st.binary(max_size=400))
def test_loader_on_arbitrary_bytes(content: bytes) -> None:
    _load(content)


@FAST
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=300))
def test_loader_on_arbitrary_text(content: str) -> None:
    _load(content.encode())


@FAST
@given(st.dictionaries(st.sampled_from(FIELDS), yaml_values, max_size=5))
def test_loader_on_scenarios_with_arbitrary_fields(overrides: dict[str, Any]) -> None:
    _load(yaml.safe_dump({**BASE, **overrides}, allow_unicode=True).encode())


@FAST
@given(st.dictionaries(st.text(max_size=8), yaml_values, max_size=4), st.sampled_from(["app", "versions", "runbook",
                                                                                       "database", "migrations"]))
def test_loader_on_nested_garbage(garbage: dict[str, Any], field: str) -> None:
    _load(yaml.safe_dump({**BASE, field: garbage}).encode())


# ── the runbook parser ──────────────────────────────────────────────────
# Command text: anything on one line that bash ends by itself (no quote or construct left open: those span
# lines, see test_shell_split.py), Unicode separators and brackets included, but no fence characters (a line
# of backticks inside a block would really close it) and nothing the splitter treats specially.
command_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\n\r`~\\\x00"),
    min_size=1, max_size=30,
).map(lambda s: s.strip(" \t")).filter(lambda s: s and not s.startswith("#") and not s.startswith("$ ")).filter(
    lambda s: command_end([s, "echo next"], 0) == 1)
blocks = st.lists(st.lists(command_text, min_size=1, max_size=4), min_size=1, max_size=4)


def _markdown(sections: list[list[list[str]]]) -> tuple[str, list[list[str]]]:
    """A runbook with one section per entry; returns the text and each section's commands in order."""
    lines = ["# Runbook", ""]
    expected: list[list[str]] = []
    for n, section in enumerate(sections):
        lines += [f"## Section {n}", "", "Some prose [with brackets].", ""]
        expected.append([])
        for block in section:
            lines.append("```sh")
            for cmd in block:
                lines += [cmd, ""]  # blank lines inside a block are skipped
                expected[-1].append(cmd)
            lines += ["```", ""]
    return "\n".join(lines), expected


@FAST
@given(st.lists(blocks, min_size=1, max_size=3))
def test_each_command_is_reported_on_its_real_line(sections: list[list[list[str]]]) -> None:
    text, expected = _markdown(sections)
    file_lines = text.split("\n")  # lines as an editor numbers them (bash and markdown-it split on \n only)
    for n, commands in enumerate(expected):
        steps = parse_runbook(text, f"Section {n}")
        assert [s.command for s in steps] == commands
        for s in steps:
            assert file_lines[s.line - 1].strip(" \t") == s.command
    assert [s.command for s in all_commands(text)] == [c for cmds in expected for c in cmds]


@FAST
@given(st.text(max_size=400), st.sampled_from(["Rollback", "R", "x"]))
def test_parser_raises_only_runbook_errors(text: str, section: str) -> None:
    try:
        parse_runbook(text, section)
        all_commands(text)
    except RunbookError as exc:
        assert str(exc)


@FAST
@given(st.lists(st.sampled_from(["# R", "## Rollback", "```sh", "```", "~~~", "echo a", "> ```", "- ```bash",
                                 "  echo b", "", "echo c \\", "$ echo d"]), max_size=30))
def test_parser_on_fence_soup(lines: list[str]) -> None:
    """Structured noise: fences opened, closed, nested in lists and quotes, unclosed."""
    text = "\n".join(lines)
    try:
        steps = parse_runbook(text, "Rollback")
    except RunbookError as exc:
        assert str(exc)
        return
    file_lines = text.split("\n")
    for s in steps:
        first = file_lines[s.line - 1].strip(" \t>-").removeprefix("$ ")
        assert s.command.startswith(first.removesuffix("\\").strip())


def test_unicode_separators_do_not_split_commands() -> None:
    """bash splits at \\n only: U+2028/2029/0085/000B/000C inside a command stay in it."""
    for sep in ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e"]:
        block = f"echo 'a{sep}b'\necho two\n"
        assert split_commands(block, 10) == [(f"echo 'a{sep}b'", 10), ("echo two", 11)]
        text = f"# R\n## Rollback\n```sh\necho 'a{sep}b'\necho two\n```\n"
        assert [(s.command, s.line) for s in parse_runbook(text, "Rollback")] == [(f"echo 'a{sep}b'", 4), ("echo two", 5)]


@settings(FAST, max_examples=25)
@given(st.integers(min_value=1, max_value=3000), st.sampled_from([("[", "]"), ("{a: ", "}"), ("[{b: ", "}]")]),
       st.sampled_from(["app", "description", "variables"]))
def test_loader_on_deep_nesting(depth: int, brackets: tuple[str, str], field: str) -> None:
    """PyYAML composes recursively: depth alone must never end in RecursionError."""
    opening, closing = brackets
    body = yaml.safe_dump(BASE) + f"{field}: " + opening * depth + "1" + closing * depth + "\n"
    _load(body.encode())
