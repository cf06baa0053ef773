"""Untrusted text is never markup (issue 9, item 4).

The real runbook phase runs bracket-heavy commands with real bash (no cluster: nothing here calls
kubectl); the console, report.json and report.html must show every command and its output as
written. A guard keeps markup out of every `say`/`console.print` call site of the harness."""

from __future__ import annotations

import ast
import html
import json
import os
import re
from contextlib import ExitStack
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console
from rich.text import Text

from harness import pipeline, progress
from harness.cli import results_table
from harness.journal import Journal
from harness.phases.runbook import RunbookPhase
from harness.redact import Redactor
from harness.report import write_scenario_reports
from harness.scenario import load_scenario

HARNESS = Path(__file__).resolve().parents[2] / "harness"

# (command, the output line it prints): each one a markup error, a tag rich would eat, or an escape.
STEPS = [
    ('echo a/b | sed "s/[/]/-/g"', "a-b"),
    ("echo 'x[y]' | grep -E '[a-z]+'", "x[y]"),
    ('pods=("[p1]" "[/p2]"); echo "${pods[@]}"', "[p1] [/p2]"),
    ("echo '[bold]x[/bold]'", "[bold]x[/bold]"),
    ("printf '[/]\\n'", "[/]"),
    ("echo ':thumbs_up: \\[x] [red]'", ":thumbs_up: \\[x] [red]"),
]
FAILING = ("echo '[/red] why [b]' && false", "[/red] why [b]")  # its output is shown on the console too


@pytest.fixture
def ran(tmp_path: Path, kit: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """The runbook phase, through the pipeline's own phase runner, on the real console."""
    commands = [c for c, _ in STEPS] + [FAILING[0]]
    runbook = "## Rollback\n\n```sh\n" + "\n".join(commands) + "\n```\n"
    s = load_scenario(kit.write_scenario(tmp_path, "brackets", kit.minimal_doc(runbook={"step_timeout_s": 30}),
                                         runbook=runbook))
    ctx = SimpleNamespace(scenario=s, journal=Journal(scenario="brackets", expect="READY"), cleanup=ExitStack(),
                          redactor=Redactor(), runbook_env=lambda: {"PATH": os.environ["PATH"]},
                          runbook_started_at=None)
    monkeypatch.setattr(progress.console, "width", 1000)  # one console line per message
    capsys.readouterr()
    ok = pipeline._run_phase(ctx, RunbookPhase())  # type: ignore[arg-type]
    console = capsys.readouterr().err
    written = write_scenario_reports(ctx.journal, tmp_path / "report", ctx.redactor)
    return SimpleNamespace(ok=ok, console=console, journal=ctx.journal, commands=commands,
                           json=json.loads(written[0].read_text(encoding="utf-8")),
                           html=written[1].read_text(encoding="utf-8"))


def test_every_step_ran_and_the_failing_one_is_drift(ran: Any) -> None:
    assert ran.ok is False  # the last step fails on purpose: runbook drift, recorded as evidence
    assert [r.exit_code for r in ran.journal.runbook_steps] == [0] * len(STEPS) + [1]
    assert ran.journal.phases[0].status == "failed"


def test_the_console_shows_every_command_and_the_failure_output_verbatim(ran: Any) -> None:
    lines = ran.console.splitlines()
    for i, command in enumerate(ran.commands, start=1):
        assert any(f"runbook step {i}: {command} → " in ln for ln in lines), (command, ran.console)
    assert any(ln.endswith(f"    {FAILING[1]}") for ln in lines), ran.console
    assert "▶ runbook" in ran.console


def test_report_json_keeps_commands_and_outputs_verbatim(ran: Any) -> None:
    steps = ran.json["runbook_steps"]
    assert [s["command"] for s in steps] == ran.commands
    assert [s["output_tail"].strip() for s in steps] == [out for _, out in STEPS] + [FAILING[1]]
    assert FAILING[0] in ran.json["differences"][0]["message"]


def test_report_html_shows_commands_and_outputs_escaped_verbatim(ran: Any) -> None:
    for command, out in [*STEPS, FAILING]:
        assert f"<code>{html.escape(command, quote=True)}</code>" in ran.html
        assert f"<pre>{html.escape(out, quote=True)}\n</pre>" in ran.html


@pytest.mark.parametrize("text", [c for c, _ in STEPS] + ["[/]", "[bold]", "[link=x]y[/link]", ":smile:"])
def test_say_prints_any_text_as_written(text: str, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress.console, "width", 1000)
    progress.say(text)
    progress.say(text, style="bold red")
    out = capsys.readouterr().err.splitlines()
    assert len(out) == 2 and all(ln.endswith(f"s {text}") for ln in out), out


def test_emphasis_is_explicit_and_the_timestamp_stays_dim() -> None:
    line = progress.line(Text.assemble("verdict: ", ("READY", "bold")), style="yellow")
    assert line.plain.endswith("s verdict: READY")
    spans = {(line.plain[sp.start:sp.end], str(sp.style)) for sp in line.spans}
    assert (line.plain[:8], "dim") in spans and line.plain[:8].endswith("s")
    assert ("READY", "bold") in spans and ("verdict: READY", "yellow") in spans
    assert progress.line("[bold]x[/bold]").plain.endswith(" [bold]x[/bold]")


def test_the_shared_console_never_reads_markup_or_emoji_codes() -> None:
    c = progress.console
    assert c._markup is False and c._emoji is False  # noqa: SLF001 (no public getter; this is the guarantee)


def test_the_results_table_cells_are_text_on_any_console() -> None:
    j = Journal(scenario="[bold]s[/bold]", expect="READY")
    j.reasons = ['runbook drift: step 1 `sed "s/[/]/-/g"` failed: [/x]']
    console = Console(record=True, width=400, color_system=None)  # markup ON: the cells must not need it off
    console.print(results_table([j]))
    out = console.export_text()
    assert "[bold]s[/bold]" in out and j.reasons[0] in out


# ── guard: no markup at any call site ───────────────────────────────────────
TAG = re.compile(r"\[/?[a-z#@][^\[\]]*\]|\[/\]")  # what rich would take for a tag: [bold], [/red], [/], [link=…]


def _printing_calls(tree: ast.AST) -> list[ast.Call]:
    """Calls of `say(...)`, `progress.say(...)` and `<anything>console.print(...)`."""
    def printing(f: ast.expr) -> bool:
        if isinstance(f, ast.Name):
            return f.id == "say"
        if isinstance(f, ast.Attribute):
            base = f.value
            named = base.id if isinstance(base, ast.Name) else base.attr if isinstance(base, ast.Attribute) else ""
            return f.attr == "say" or (f.attr == "print" and named.endswith("console"))
        return False
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and printing(n.func)]


def _literal_parts(node: ast.AST) -> list[str]:
    """The harness-written parts of an argument (f-string constants, string literals, concatenations)."""
    return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def _offences() -> list[str]:
    found = []
    for path in sorted(HARNESS.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for call in _printing_calls(tree):
            where = f"{path.relative_to(HARNESS.parent)}:{call.lineno}"
            found += [f"{where}: markup {m!r}" for arg in call.args for part in _literal_parts(arg)
                      for m in TAG.findall(part)]
            found += [f"{where}: markup=True" for k in call.keywords
                      if k.arg == "markup" and isinstance(k.value, ast.Constant) and k.value.value is True]
        found += [f"{path.relative_to(HARNESS.parent)}:{n.lineno}: from_markup" for n in ast.walk(tree)
                  if isinstance(n, ast.Attribute) and n.attr in {"from_markup", "render_markup"}]
    return found


def test_no_call_site_passes_markup() -> None:
    assert _offences() == []
    assert len(_printing_calls(ast.parse((HARNESS / "pipeline.py").read_text(encoding="utf-8")))) >= 2  # it sees them


def test_the_guard_catches_a_markup_tag_mixing_in_a_variable() -> None:
    bad = ast.parse('say(f"[bold]{x}[/bold]")\nconsole.print(f"[red]{y}[/]", markup=True)\nsay(f"a [{c}]")\n')
    parts = [m for call in _printing_calls(bad) for a in call.args for p in _literal_parts(a) for m in TAG.findall(p)]
    assert parts == ["[bold]", "[/bold]", "[red]", "[/]"]  # `[{c}]` quotes a value: not a tag
