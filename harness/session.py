"""A rehearsal session: one cluster, one Postgres (and a registry when a
scenario promotes tags) shared by every scenario, each owned and cleaned up
here, also on Ctrl-C, SIGTERM and errors."""

from __future__ import annotations

import signal
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from harness import faults, judge, tools
from harness.context import Infrastructure, RehearsalContext
from harness.journal import Journal
from harness.pipeline import rehearse as run_pipeline
from harness.progress import say
from harness.providers.cluster import ExistingClusterProvider, KindProvider
from harness.providers.database import ExistingDsnProvider, PostgresContainerProvider
from harness.providers.registry import RegistryContainer
from harness.redact import Redactor
from harness.report import RunReports, write_scenario_reports
from harness.report import write_run_reports as _write_run_reports
from harness.scenario.models import Scenario


@dataclass(frozen=True)
class SessionOptions:
    cluster_name: str = "rehearsal"
    keep_cluster: bool = False
    reuse_cluster: bool = False
    kubeconfig: Path | None = None      # use an existing cluster instead of kind
    database_dsn: str | None = None     # use an existing Postgres instead of a container
    postgres_major: str = "15"
    node_image: str | None = None       # default: the image `make env` builds
    report_dir: Path = Path("reports")


def _sigterm_as_interrupt() -> None:
    """SIGTERM (CI cancelling a job) unwinds like Ctrl-C, so cleanup runs."""
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")
    try:
        signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (e.g. under some runners): leave it
        pass


@dataclass
class Session:
    options: SessionOptions
    infra: Infrastructure
    stack: ExitStack
    owner: str
    results: list[Journal] = field(default_factory=list)
    redactors: list[Redactor] = field(default_factory=list)  # one per scenario, for the run-level reports
    run_reports: RunReports | None = None

    def ensure_registry(self) -> RegistryContainer:
        if self.infra.registry is None:
            reg = RegistryContainer(self.infra.cluster.docker_network(), self.owner)
            if not self.options.keep_cluster:
                self.stack.callback(reg.stop)  # before start: a failed start is cleaned up too
            reg.start()
            for node in self.infra.cluster.node_containers():
                reg.configure_node(node)
                # A reused cluster is left as it was found.
                self.stack.callback(reg.unconfigure_node, node)
            self.infra.registry = reg
        return self.infra.registry

    def rehearse(self, scenario: Scenario) -> Journal:
        """Rehearse one scenario: the pipeline (phases, then the scenario's cleanup), the fault
        after-check, the judge (once, when all of that is done), then its reports."""
        if scenario.database.postgres != self.options.postgres_major and not self.options.database_dsn:
            raise InfrastructureMismatchError(
                f"scenario {scenario.name} asks for Postgres {scenario.database.postgres}, this session runs "
                f"{self.options.postgres_major}. Fix: rehearse it in a session started with that major")
        if scenario.registry is not None:
            self.ensure_registry()
        ctx = self._context(scenario)
        journal = ctx.journal
        try:
            run_pipeline(ctx)
            leftovers = self._fault_leftovers(journal) if scenario.faults else []
            judge.decide(journal, leftovers).record(journal)
            say(f"verdict for {scenario.name}: [bold]{journal.verdict}[/bold] (expected {scenario.expect.value})")
        finally:  # also when interrupted: the journal so far, with its default verdict ERROR
            write_scenario_reports(journal, ctx.report_dir, ctx.redactor)
            self.redactors.append(ctx.redactor)
        self.results.append(journal)
        return journal

    def _context(self, scenario: Scenario) -> RehearsalContext:
        journal = Journal(scenario=scenario.name, description=scenario.description, expect=scenario.expect.value,
                          expect_risks=[k.value for k in scenario.expect_risks],  # reports judge risks too
                          environment={"cluster": self.infra.cluster.name, "node_image": tools.NODE_IMAGE},
                          objectives={**scenario.objectives.model_dump(), "max_detect_s": scenario.failure.within_s})
        report_dir = self.options.report_dir / scenario.name
        report_dir.mkdir(parents=True, exist_ok=True)
        return RehearsalContext(scenario=scenario, infra=self.infra, journal=journal, report_dir=report_dir,
                                keep=self.options.keep_cluster)

    def _fault_leftovers(self, journal: Journal) -> list[str]:
        """After the scenario's cleanup, what its faults left in place. Any leftover is the harness
        breaking its own promise: the judge makes the rehearsal an ERROR whatever its state (and the
        next scenario must not run on a paused database)."""
        problems = faults.leftovers(self.infra)
        if problems:
            say("; ".join(problems), style="bold red")
        journal.event("faults", "after cleanup: " + ("; ".join(problems) if problems
                                                      else "no container paused, no netem qdisc on the nodes"))
        return problems

    def write_run_reports(self) -> RunReports | None:
        """REPORT_DIR/junit.xml, summary.md and one history.jsonl line per scenario; once per session,
        when it closes (`run_reports` then says where they are)."""
        if self.run_reports is None and self.results:
            try:
                self.run_reports = _write_run_reports(self.results, self.options.report_dir, self.redactors,
                                                      run_id=self.owner)
            except Exception as exc:  # noqa: BLE001 (never hide the rehearsals' outcome or the teardown)
                say(f"run reports not written: {type(exc).__name__}: {exc}", style="yellow")
        return self.run_reports


class InfrastructureMismatchError(RuntimeError):
    """A scenario needs infrastructure this session does not provide."""


def _remove_owned_containers(owner: str) -> None:
    """Remove any container still labelled with this session's owner: one an
    interrupt during `docker create` hid from its provider (no id to stop)."""
    try:
        ids = subprocess.run(["docker", "ps", "-aq", "--filter", f"label={tools.OWNER_LABEL}={owner}"],
                             capture_output=True, text=True, timeout=30).stdout.split()
        if ids:
            say(f"removing {len(ids)} leftover container(s) of {owner}")
            subprocess.run(["docker", "rm", "-f", "-v", *ids], capture_output=True, timeout=120)
    except (OSError, subprocess.SubprocessError):  # no Docker here (existing cluster and DSN)
        pass


@contextmanager
def open_session(options: SessionOptions) -> Iterator[Session]:
    """Start the shared infrastructure; tear it all down on exit unless kept."""
    _sigterm_as_interrupt()
    owner = f"{options.cluster_name}-{uuid.uuid4().hex[:8]}"
    with ExitStack() as stack:
        if not options.keep_cluster:
            stack.callback(_remove_owned_containers, owner)  # runs last
        if options.kubeconfig is not None:
            cluster = ExistingClusterProvider(options.kubeconfig).start()
        else:
            cluster = KindProvider(options.cluster_name, options.node_image)
            if not (options.keep_cluster or options.reuse_cluster):
                stack.callback(cluster.delete)  # before start: Ctrl-C during `kind create` is cleaned up too
            cluster.start(reuse=options.reuse_cluster)
        if options.database_dsn:
            database = ExistingDsnProvider(options.database_dsn).start()
        elif cluster.docker_network() is None:
            raise RuntimeError("an existing cluster (--kubeconfig) cannot reach a local Postgres container. "
                               "Fix: pass --database-dsn with an address the cluster's pods can reach")
        else:
            pg = PostgresContainerProvider(options.postgres_major, cluster.docker_network(), owner)
            if not options.keep_cluster:  # --keep-cluster keeps the databases too, for inspection
                stack.callback(pg.stop)  # registered first: a failed start is still cleaned up
            database = pg.start()
        session = Session(options, Infrastructure(cluster=cluster, database=database), stack, owner)
        if options.keep_cluster:
            say(f"--keep-cluster: cluster {cluster.name} and the containers labelled {tools.OWNER_LABEL}={owner} stay; "
                "remove them with `make clean-clusters`")
        try:
            yield session
        finally:  # before teardown; also after Ctrl-C, for the scenarios that finished
            session.write_run_reports()
