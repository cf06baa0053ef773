"""`rehearse`: run, validate and list rollback rehearsals.

Exit codes: 0 every verdict READY (or, with --against-expect, every verdict
equals its scenario's `expect`); 1 otherwise; 2 usage or scenario errors.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.table import Table

from harness.progress import console
from harness.scenario import ScenarioError, discover, load_all

EXIT_OK, EXIT_NOT_READY, EXIT_USAGE = 0, 1, 2


def _load(paths: tuple[Path, ...]):
    try:
        return load_all(list(paths) or [Path("scenarios")])
    except ScenarioError as exc:
        console.print(f"[red]scenario errors ({len(exc.problems)}):[/red]")
        for p in exc.problems:
            console.print(f"  {p.file}: [bold]{p.field}[/bold]: {p.message}\n    fix: {p.fix}", highlight=False)
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
@click.option("--report-dir", type=click.Path(path_type=Path), default=Path("reports"), show_default=True)
@click.option("--keep-cluster", is_flag=True, help="Keep the cluster, namespaces and databases for inspection.")
@click.option("--reuse-cluster", is_flag=True, help="Use an existing kind cluster of the same name; do not delete it.")
@click.option("--cluster-name", default="rehearsal", show_default=True)
@click.option("--kubeconfig", type=click.Path(path_type=Path, exists=True), help="Use this cluster instead of kind.")
@click.option("--database-dsn", envvar="REHEARSAL_DATABASE_DSN", help="Use this Postgres (admin DSN) instead of a container.")
@click.option("--against-expect", is_flag=True, help="Exit 0 when each verdict equals the scenario's `expect`.")
def run(paths: tuple[Path, ...], report_dir: Path, keep_cluster: bool, reuse_cluster: bool, cluster_name: str,
        kubeconfig: Path | None, database_dsn: str | None, against_expect: bool) -> None:
    """Rehearse each scenario; write REPORT_DIR/<scenario>/report.json."""
    from harness.session import SessionOptions, open_session  # noqa: PLC0415 (keeps `validate` fast)

    scenarios = _load(paths)
    opts = SessionOptions(cluster_name=cluster_name, keep_cluster=keep_cluster, reuse_cluster=reuse_cluster,
                          kubeconfig=kubeconfig, database_dsn=database_dsn, report_dir=report_dir)
    try:
        with open_session(opts) as session:
            for s in scenarios:
                session.rehearse(s)
            results = session.results
    except KeyboardInterrupt:
        console.print("[red]interrupted: resources cleaned up[/red]")
        sys.exit(130)
    table = Table("scenario", "verdict", "expect", "detect s", "recover s", "first reason")
    for j in results:
        table.add_row(j.scenario, j.verdict, j.expect, str(j.time_to_detect_s or "-"),
                      str(j.time_to_recover_s or "-"), (j.reasons[0] if j.reasons else "")[:90])
    console.print(table)
    console.print(f"reports in {report_dir}/")
    if against_expect:
        ok = all(j.verdict == j.expect for j in results)
    else:
        ok = all(j.verdict == "READY" for j in results)
    sys.exit(EXIT_OK if ok else EXIT_NOT_READY)


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
