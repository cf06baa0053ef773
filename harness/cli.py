"""`rehearse`: run, validate, check and list rollback rehearsals.

`rehearse check` exits 0 when no preflight finding is a failure, 1 when one
is, 2 when a scenario could not be read or a check could not finish (never 1:
"could not check" must not look like "found a hazard").

Exit codes: 0 every verdict READY (or, with --against-expect, every verdict
equals its scenario's `expect`); 1 otherwise; 2 usage or scenario errors;
3 the infrastructure (cluster, Postgres) could not be provided.
`rehearse cleanup` exits 0 when every dead run's leftovers are gone, 1 when
something could not be removed (listed, and kept in its run state).
`rehearse ladder` exits 0 when every migration round-trips, 1 when one does
not or a command fails, 2 for bad input, 3 when Docker or Postgres could not
be provided (or a removal failed).

Everything taken from scenarios, runbooks and commands is printed as plain
text (rich markup off, Text cells in tables): `[/x]` in a description is text.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click
from rich.table import Table
from rich.text import Text

from harness.options import OptionError, SessionOptions, click_options, session_options
from harness.redact import Redactor
from harness.journal import Journal
from harness.judge import expectation_problems
from harness.progress import console
from harness.scenario import Problem, Scenario, ScenarioError, discover, load_all
from harness.scenario.loader import SCENARIO_FILE
from harness.teardown import Interrupted, TeardownIncomplete

if TYPE_CHECKING:  # annotations only: importing the report writers would slow `validate` down
    from collections.abc import Callable

    from harness.journal import Finding
    from harness.report import RunReports
    from harness.shard import ShardPlan

EXIT_OK, EXIT_NOT_READY, EXIT_USAGE, EXIT_INFRA = 0, 1, 2, 3


class _ScenarioPath(click.ParamType):
    """A path argument taken as written: the loader reports every way it can be wrong (click.Path's own
    stat() raises on a NUL byte before any of that)."""

    name = "path"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> Path:
        return value if isinstance(value, Path) else Path(str(value))


SCENARIO_PATHS = _ScenarioPath()


def _print_problems(problems: list[Problem]) -> NoReturn:
    """Every problem, then exit 2. Plain text: messages quote user text ([brackets], regexes, file names)."""
    console.print(f"scenario errors ({len(problems)}):", style="red")
    for p in problems:
        console.print(f"  {p.file}: {p.field}: {p.message}\n    fix: {p.fix}")
    sys.exit(EXIT_USAGE)


def _load(paths: tuple[Path, ...]) -> list[Scenario]:
    try:
        return load_all(list(paths) or [Path("scenarios")])
    except ScenarioError as exc:
        _print_problems(exc.problems)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Rehearse production rollbacks (app image, schema and data) on disposable kind + Postgres."""


@cli.command()
@click.argument("paths", nargs=-1, type=SCENARIO_PATHS)
def validate(paths: tuple[Path, ...]) -> None:
    """Check scenario files; report every problem at once."""
    scenarios = _load(paths)
    for s in scenarios:
        console.print(Text.assemble(("ok", "green"), f" {s.name} ({s.directory})"))


@cli.command(name="list")
@click.argument("paths", nargs=-1, type=SCENARIO_PATHS)
def list_(paths: tuple[Path, ...]) -> None:
    """List scenarios with their expected verdicts."""
    table = Table("scenario", "expect", "failure", "description")
    for s in _load(paths):  # Text cells: a description is the user's text, not markup
        table.add_row(Text(s.name), s.expect.value, s.failure.mode.value, Text(s.description.strip()[:80]))
    console.print(table)


_SEVERITY_CELLS = {"failure": Text("failure", "red"), "warning": Text("warning", "yellow")}


def _checked(scenario: Scenario, run_checks: Callable[[Scenario], list[Finding]]) -> list[Finding] | Problem:
    """The scenario's findings, or the problem that stopped its checks (a check must never crash the command,
    nor hide the other scenarios' findings)."""
    try:
        return run_checks(scenario)
    except Exception as exc:  # noqa: BLE001 (listed with its type and exit 2, never taken for a finding)
        return Problem(scenario.directory / SCENARIO_FILE, "(preflight)",
                       f"the checks could not finish: {type(exc).__name__}: {exc}",
                       "run `rehearse validate` on it; if that passes, report this as a harness bug")


@cli.command()
@click.argument("paths", nargs=-1, type=SCENARIO_PATHS)
def check(paths: tuple[Path, ...]) -> None:
    """Preflight: find rollback hazards in migrations, manifests and runbooks, without a cluster.

    Exit 0 when no finding has severity failure, 1 otherwise, 2 when a scenario
    could not be read or checked (never 1 for that).
    """
    from harness.preflight import FAILURE, run_checks  # noqa: PLC0415 (keeps `validate` fast)

    scenarios = _load(paths)
    table = Table("scenario", "severity", "check", "finding", "fix", show_lines=True)
    failures = warnings = 0
    problems: list[Problem] = []
    for s in scenarios:
        findings = _checked(s, run_checks)
        if isinstance(findings, Problem):
            problems.append(findings)
            continue
        for f in findings:  # Text cells: findings quote runbook commands and SQL ([/], regexes)
            failures += f.severity == FAILURE
            warnings += f.severity != FAILURE
            table.add_row(Text(s.name), _SEVERITY_CELLS[f.severity], Text(f.check), Text(f.message), Text(f.fix))
        if not findings:
            table.add_row(Text(s.name), Text("ok", "green"), "-", "no findings", "")
    console.print(table)
    console.print(f"preflight: {failures} failure(s), {warnings} warning(s) in {len(scenarios)} scenario(s)")
    if problems:
        _print_problems(problems)
    sys.exit(EXIT_NOT_READY if failures else EXIT_OK)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click_options
@click.option("--against-expect", is_flag=True, help="Exit 0 when each verdict equals the scenario's `expect`.")
def run(paths: tuple[Path, ...], against_expect: bool, **session_values: Any) -> None:
    """Rehearse each scenario; write REPORT_DIR/<scenario>/report.{json,html} and REPORT_DIR/{junit.xml,summary.md,history.jsonl}."""
    from harness.session import open_session  # noqa: PLC0415 (keeps `validate` fast)

    try:
        opts = session_options(session_values)
    except OptionError as exc:
        for line in str(exc).splitlines():
            console.print(line, style="red")
        sys.exit(EXIT_USAGE)
    scenarios = _load(paths)
    report_dir = opts.report_dir
    plan = _shard_plan(scenarios, opts)
    if plan is not None:
        scenarios = plan.select(scenarios, lambda s: s.name)
        if not scenarios:
            sys.exit(_empty_shard(plan, opts))
    try:
        with open_session(opts) as session:
            if plan is not None:
                session.shard = plan.record()
            session.rehearse_all(scenarios, opts.jobs)  # -j N: side by side; results in the order given
    except Interrupted as exc:  # after the teardown: its message says what it could not remove
        console.print(exc.message(), style="red")
        sys.exit(exc.exit_code)
    except TeardownIncomplete as exc:  # every scenario ran; some resources may be left: say so, exit 3
        finish_run(session.results, report_dir, session.run_reports, against_expect)
        console.print(f"infrastructure error: {exc}", style="red")
        sys.exit(EXIT_INFRA)
    except KeyboardInterrupt:  # before any session existed: nothing to clean up
        console.print("interrupted", style="red")
        sys.exit(130)
    except Exception as exc:  # infrastructure could not be provided: no verdict at all
        redact = _infra_redactor(opts)  # e.g. a DSN with its password in a connection error
        console.print(redact(f"infrastructure error: {type(exc).__name__}: {exc}"), style="red")
        for note in getattr(exc, "__notes__", []):  # what the teardown could not remove
            console.print(redact(f"  {note}"), style="red")
        sys.exit(EXIT_INFRA)
    sys.exit(finish_run(session.results, report_dir, session.run_reports, against_expect))


def _shard_plan(scenarios: Sequence[Scenario], opts: SessionOptions) -> ShardPlan | None:
    """With --shard K/N: the partition every shard computes alike (harness/shard.py), announced."""
    if opts.shard is None:
        return None
    from harness.report.history import HISTORY_FILE  # noqa: PLC0415 (keeps `validate` fast)
    from harness.shard import plan  # noqa: PLC0415

    planned = plan(scenarios, opts.shard, opts.report_dir / HISTORY_FILE)
    console.print(planned.describe() + (": " + ", ".join(planned.scenarios) if planned.scenarios else ""),
                  markup=False, highlight=False)
    return planned


def _empty_shard(plan: ShardPlan, opts: SessionOptions) -> int:
    """A shard without scenarios: no infrastructure, an empty report set (so every shard leaves the same
    files for the merge), exit 0."""
    from harness import runstate  # noqa: PLC0415
    from harness.report import write_run_reports  # noqa: PLC0415

    written = write_run_reports([], opts.report_dir, run_id=runstate.new_owner(opts.cluster_name),
                                shard=plan.record(), notes=[plan.empty_note()])
    console.print(plan.empty_note(), markup=False, highlight=False)
    console.print(f"reports in {opts.report_dir}/: {written.junit.name}, {written.summary.name}, "
                  f"{written.history.name}, {written.run.name}")
    return EXIT_OK


def _infra_redactor(opts: SessionOptions) -> Redactor:
    """Masks what the options hold of secrets (the admin DSN's password) and the usual patterns."""
    return Redactor().with_dsns([opts.database_dsn] if opts.database_dsn else [])


def results_table(results: Sequence[Journal]) -> Table:
    """The table `rehearse run` prints: one row per judged journal. Text cells: names and reasons quote
    the user's scenarios and commands, never markup (whatever console prints the table)."""
    table = Table("scenario", "verdict", "expect", "risks", "detect s", "recover s", "first reason")
    for j in results:
        cells = (j.scenario, j.verdict, j.expect, ", ".join(sorted({r.kind for r in j.risks})) or "-",
                 str(j.time_to_detect_s or "-"), str(j.time_to_recover_s or "-"), (j.reasons[0] if j.reasons else "")[:90])
        table.add_row(*(Text(c) for c in cells))
    return table


def finish_run(results: Sequence[Journal], report_dir: Path, written: RunReports | None, against_expect: bool) -> int:
    """Print the judged results and where the session wrote the reports; return the exit code."""
    console.print(results_table(results))
    console.print(f"reports in {report_dir}/: <scenario>/report.html, <scenario>/report.json"
                  + (f", {written.junit.name}, {written.summary.name}, {written.history.name}, {written.run.name}"
                     if written else ""))
    if against_expect:
        unmet = {j.scenario: expectation_problems(j) for j in results}
        for name, problems in unmet.items():
            if problems:
                console.print(f"{name}: {'; '.join(problems)}", style="red")
        ok = not any(unmet.values())
    else:
        ok = all(j.verdict == "READY" for j in results)
    return EXIT_OK if ok else EXIT_NOT_READY


@cli.command()
@click.argument("path", metavar="SCENARIO", type=SCENARIO_PATHS)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout (progress stays on stderr).")
def ladder(path: Path, as_json: bool) -> None:
    """Apply, undo and apply again each migration of SCENARIO, in order, on a scratch Postgres (no cluster).

    Each down must restore the schema and the migration version table to what they were before its up.
    Needs `migrations.up_one` (the command that applies only the next migration). Exit 0 when every
    migration round-trips; 1 when one does not (named, with what its down leaves) or a command fails;
    2 for bad input; 3 when Docker or Postgres could not be provided; 130 when interrupted.
    """
    from harness.ladder import ladder_json, ladder_table, verdict_lines  # noqa: PLC0415 (keeps `validate` fast)
    from harness.ladder.run import LadderInputError, run_ladder  # noqa: PLC0415

    scenarios = _load((path,))
    if len(scenarios) != 1:
        _print_problems([Problem(path, "(path)", f"{len(scenarios)} scenarios found; the ladder takes one",
                                 "point at one scenario directory")])
    try:
        result = run_ladder(scenarios[0])
    except LadderInputError as exc:
        _print_problems(exc.problems)
    except Interrupted as exc:  # after the cleanup: its message says what it could not remove
        console.print(exc.message(), style="red")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:  # before anything was started: nothing to clean up
        console.print("interrupted", style="red")
        sys.exit(130)
    except Exception as exc:  # Docker or Postgres could not be provided, or a removal failed: no verdict
        console.print(Redactor()(f"infrastructure error: {type(exc).__name__}: {exc}"), style="red")
        for note in getattr(exc, "__notes__", []):
            console.print(Redactor()(f"  {note}"), style="red")
        sys.exit(EXIT_INFRA)
    if as_json:
        click.echo(ladder_json(result))
    else:
        console.print(ladder_table(result))
        for line in verdict_lines(result):
            console.print(line, style="" if result.exit_code == EXIT_OK else "red")
    sys.exit(result.exit_code)


@cli.command()
@click.option("--all", "everything", is_flag=True,
              help="Also live runs, kept runs and any labelled container or rehearsal* cluster (listed first).")
@click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
@click.option("--database-dsn", envvar="REHEARSAL_DATABASE_DSN", metavar="DSN",
              help="Admin DSN of a server given to dead runs with --database-dsn: their databases are dropped.")
def cleanup(everything: bool, dry_run: bool, database_dsn: str | None) -> None:
    """Remove what dead runs left behind (killed runs, --keep-cluster runs); never a live run's resources."""
    from harness import cleanup as reaper  # noqa: PLC0415 (keeps `validate` fast: psycopg, subprocesses)

    def show(lines: list[str]) -> None:
        for line in lines:  # owners and paths are printed as they are: markup off
            console.print(line, markup=False, highlight=False)

    if everything and not dry_run:
        planned = reaper.report_lines(reaper.reap_all(dry_run=True), dry_run=True)
        show(["--all: removing every run's resources, live runs included:", *planned] if planned
             else ["--all: nothing to remove"])
    outcomes = (reaper.reap_all(dry_run=dry_run, admin_dsn=database_dsn) if everything
                else reaper.reap(include_kept=True, dry_run=dry_run, admin_dsn=database_dsn))
    lines = reaper.report_lines(outcomes, dry_run=dry_run)
    show(lines or ["nothing to clean up: no dead run left anything"])
    sys.exit(EXIT_NOT_READY if any(o.left for o in outcomes) else EXIT_OK)


@cli.group()
def report() -> None:
    """Report tools: the report.json schema, the readiness trend over runs, merging shards' reports."""


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
        console.print(Text.assemble((f"no history: {missing[0]} not found", "red"), "\n  fix: run `rehearse run "
                                    f"--report-dir {report_dir}` first, or pass --history FILE"))
        sys.exit(EXIT_USAGE)
    history = read_history(files, since_dt)
    result = write_trend(history, report_dir, against_expect=against_expect)
    if history.skipped:
        console.print(f"{history.skipped} malformed history line(s) ignored", style="yellow")
    console.print(f"{result.runs} run(s), {len(history.entries)} result(s): {result.ready}/{result.total} ready")
    for p in (result.html, result.png, result.badge):
        console.print(f"wrote {p}")


@report.command()
@click.argument("dirs", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="DIR...")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Where the merged report set is written: a new or empty directory, or an earlier merge's --out "
                   "(its history.jsonl is kept and merged).")
def merge(dirs: tuple[Path, ...], out: Path) -> None:
    """Merge report directories (the shards of `rehearse run --shard K/N`) into one report set.

    Writes OUT/junit.xml, summary.md, history.jsonl, run.json, the trend (trend.html, trend.png, badge.svg)
    and a copy of each scenario's directory. The same (run id, scenario) counts once; a scenario judged by
    several runs keeps the latest. Exit 0 when merged, 1 when merged but a scenario of a shard's partition has
    no result (listed), 2 when a directory is not a report directory (each listed, nothing written).
    """
    from harness.report.merge import MergeInputError, write_merged  # noqa: PLC0415
    from harness.report.merge import merge as merge_dirs  # noqa: PLC0415

    try:
        merged = merge_dirs(list(dirs), out)
    except MergeInputError as exc:
        console.print(f"cannot merge ({len(exc.problems)} problem(s)):", style="red")
        for line in exc.problems:  # paths and run ids are the user's text: no markup
            console.print(f"  {line}", markup=False, highlight=False)
        sys.exit(EXIT_USAGE)
    written = write_merged(merged, out)
    for line in merged.notes:
        console.print(f"note: {line}", markup=False, highlight=False)
    for name, why in merged.missing.items():
        console.print(Text(f"no result for {name}: {why}", "red"))
    expected = sum(1 for r in merged.results if not expectation_problems(r.data))
    console.print(f"merged {len(merged.results)} scenario(s) from {len(merged.runs)} run(s): "
                  f"{sum(r.data.get('verdict') == 'READY' for r in merged.results)} READY, "
                  f"{expected} as expected" + (f", {len(merged.missing)} without a result" if merged.missing else ""))
    for path in (written.junit, written.summary, written.history, written.run, written.trend):
        console.print(f"wrote {path}", markup=False, highlight=False)
    sys.exit(EXIT_NOT_READY if merged.missing else EXIT_OK)


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
