"""`rehearse`: run, validate, check and list rollback rehearsals.

`rehearse check` exits 0 when no preflight finding is a failure, 1 otherwise,
2 for scenario errors.

Exit codes: 0 every verdict READY (or, with --against-expect, every verdict
equals its scenario's `expect`); 1 otherwise; 2 usage or scenario errors;
3 the infrastructure (cluster, Postgres) could not be provided.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table

from harness.options import click_options, session_options
from harness.journal import Journal
from harness.judge import expectation_problems
from harness.progress import console
from harness.scenario import ScenarioError, discover, load_all
from harness.scenario.models import Scenario

if TYPE_CHECKING:  # annotations only: importing the report writers would slow `validate` down
    from harness.report import RunReports

EXIT_OK, EXIT_NOT_READY, EXIT_USAGE, EXIT_INFRA = 0, 1, 2, 3


def _load(paths: tuple[Path, ...]) -> list[Scenario]:
    try:
        return load_all(list(paths) or [Path("scenarios")])
    except ScenarioError as exc:
        console.print(f"[red]scenario errors ({len(exc.problems)}):[/red]")
        for p in exc.problems:  # markup off: messages contain [brackets] and regexes
            console.print(f"  {p.file}: {p.field}: {p.message}\n    fix: {p.fix}", markup=False, highlight=False)
        sys.exit(EXIT_USAGE)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Rehearse production rollbacks (app image, schema and data) on disposable kind + Postgres."""


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
def validate(paths: tuple[Path, ...]) -> None:
    """Check scenario files; report every problem at once."""
    scenarios = _load(paths)
    for s in scenarios:
        console.print(f"[green]ok[/green] {s.name} ({s.directory})")


@cli.command(name="list")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
def list_(paths: tuple[Path, ...]) -> None:
    """List scenarios with their expected verdicts."""
    table = Table("scenario", "expect", "failure", "description")
    for s in _load(paths):
        table.add_row(s.name, s.expect.value, s.failure.mode.value, s.description.strip()[:80])
    console.print(table)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
def check(paths: tuple[Path, ...]) -> None:
    """Preflight: find rollback hazards in migrations, manifests and runbooks, without a cluster.

    Exit 0 when no finding has severity failure, 1 otherwise, 2 for scenario errors.
    """
    from harness.preflight import FAILURE, run_checks  # noqa: PLC0415 (keeps `validate` fast)

    scenarios = _load(paths)
    table = Table("scenario", "severity", "check", "finding", "fix", show_lines=True)
    failures = warnings = 0
    for s in scenarios:
        findings = run_checks(s)
        for f in findings:
            failures += f.severity == FAILURE
            warnings += f.severity != FAILURE
            sev = "[red]failure[/red]" if f.severity == FAILURE else "[yellow]warning[/yellow]"
            table.add_row(s.name, sev, f.check, f.message, f.fix)
        if not findings:
            table.add_row(s.name, "[green]ok[/green]", "-", "no findings", "")
    console.print(table)
    console.print(f"preflight: {failures} failure(s), {warnings} warning(s) in {len(scenarios)} scenario(s)")
    sys.exit(EXIT_NOT_READY if failures else EXIT_OK)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click_options
@click.option("--against-expect", is_flag=True, help="Exit 0 when each verdict equals the scenario's `expect`.")
def run(paths: tuple[Path, ...], against_expect: bool, **session_values: Any) -> None:
    """Rehearse each scenario; write REPORT_DIR/<scenario>/report.{json,html} and REPORT_DIR/{junit.xml,summary.md,history.jsonl}."""
    from harness.session import open_session  # noqa: PLC0415 (keeps `validate` fast)

    scenarios = _load(paths)
    opts = session_options(session_values)
    report_dir = opts.report_dir
    try:
        with open_session(opts) as session:
            for s in scenarios:
                session.rehearse(s)
            results = session.results
    except KeyboardInterrupt:
        console.print("[red]interrupted: resources cleaned up[/red]")
        sys.exit(130)
    except Exception as exc:  # infrastructure could not be provided: no verdict at all
        console.print(f"infrastructure error: {type(exc).__name__}: {exc}", markup=False, style="red")
        sys.exit(EXIT_INFRA)
    sys.exit(finish_run(results, report_dir, session.run_reports, against_expect))


def results_table(results: Sequence[Journal]) -> Table:
    """The table `rehearse run` prints: one row per judged journal."""
    table = Table("scenario", "verdict", "expect", "risks", "detect s", "recover s", "first reason")
    for j in results:
        table.add_row(j.scenario, j.verdict, j.expect, ", ".join(sorted({r.kind for r in j.risks})) or "-",
                      str(j.time_to_detect_s or "-"), str(j.time_to_recover_s or "-"),
                      (j.reasons[0] if j.reasons else "")[:90])
    return table


def finish_run(results: Sequence[Journal], report_dir: Path, written: RunReports | None, against_expect: bool) -> int:
    """Print the judged results and where the session wrote the reports; return the exit code."""
    console.print(results_table(results))
    console.print(f"reports in {report_dir}/: <scenario>/report.html, <scenario>/report.json"
                  + (f", {written.junit.name}, {written.summary.name}, {written.history.name}" if written else ""))
    if against_expect:
        unmet = {j.scenario: expectation_problems(j) for j in results}
        for name, problems in unmet.items():
            if problems:
                console.print(f"{name}: {'; '.join(problems)}", markup=False, style="red")
        ok = not any(unmet.values())
    else:
        ok = all(j.verdict == "READY" for j in results)
    return EXIT_OK if ok else EXIT_NOT_READY


@cli.group()
def report() -> None:
    """Report tools: the report.json schema and the readiness trend over runs."""


@report.command()
def schema() -> None:
    """Print the JSON Schema of report.json (versioned by its schema_version)."""
    from harness.report.json_schema import shipped_text  # noqa: PLC0415

    click.echo(shipped_text(), nl=False)


@report.command()
@click.option("--report-dir", type=click.Path(path_type=Path, file_okay=False), default=Path("reports"),
              show_default=True, help="Where trend.html, trend.png and badge.svg are written.")
@click.option("--since", metavar="ISO", help="Leave out history lines older than this ISO-8601 date/time.")
@click.option("--history", "histories", multiple=True, metavar="FILE",
              type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="A history.jsonl to merge; repeatable. Default: REPORT_DIR/history.jsonl.")
@click.option("--against-expect", is_flag=True, help="The badge counts verdicts equal to `expect` as ready.")
def trend(report_dir: Path, since: str | None, histories: tuple[Path, ...], against_expect: bool) -> None:
    """Merge history files (dedupe by run id + scenario); write trend.html, trend.png and badge.svg."""
    from harness.report.common import parse_dt  # noqa: PLC0415
    from harness.report.history import HISTORY_FILE, read_history  # noqa: PLC0415
    from harness.report.trend import write_trend  # noqa: PLC0415

    try:
        since_dt = parse_dt(since) if since else None
    except ValueError as exc:
        raise click.BadParameter(f"{since!r} is not an ISO-8601 date/time (e.g. 2026-11-01 or "
                                 "2026-11-01T12:00:00Z)", param_hint="--since") from exc
    files = list(histories) or [report_dir / HISTORY_FILE]
    missing = [f for f in files if not f.is_file()]
    if missing:
        console.print(f"[red]no history: {missing[0]} not found[/red]\n  fix: run `rehearse run --report-dir "
                      f"{report_dir}` first, or pass --history FILE", highlight=False)
        sys.exit(EXIT_USAGE)
    history = read_history(files, since_dt)
    result = write_trend(history, report_dir, against_expect=against_expect)
    if history.skipped:
        console.print(f"[yellow]{history.skipped} malformed history line(s) ignored[/yellow]")
    console.print(f"{result.runs} run(s), {len(history.entries)} result(s): {result.ready}/{result.total} ready")
    for p in (result.html, result.png, result.badge):
        console.print(f"wrote {p}", highlight=False)


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.UsageError as exc:
        exc.show()
        sys.exit(EXIT_USAGE)
    except click.exceptions.Abort:
        sys.exit(130)
    except SystemExit:
        raise


__all__ = ["cli", "discover", "main"]
