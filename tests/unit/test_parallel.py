"""Scenarios side by side (harness/parallel.py): the shared-infrastructure lock, the worker pool's
order, errors and stop on a signal, the prefixed output, and Session.rehearse_all on fake phases.

Real threads and a real signal; the only fakes are the phases and the infrastructure."""

from __future__ import annotations

import io
import os
import signal
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console

import harness.session as session_mod
from harness import faults, parallel, pipeline, progress, teardown
from harness.context import RehearsalContext
from harness.phases import OnFailure, Phase
from harness.scenario import load_scenario
from harness.scenario.models import FaultKind, Scenario
from harness.teardown import Interrupted, Teardown
from harness.wait import Wait


@pytest.fixture(autouse=True)
def _no_stop_left() -> Any:
    teardown.clear_stop()
    yield
    teardown.clear_stop()


def _in_thread(fn: Callable[[], Any]) -> threading.Thread:
    t = threading.Thread(target=fn, daemon=True)
    t.start()
    return t


# ── the lock ─────────────────────────────────────────────────────────────────
def test_shared_holders_overlap_and_an_exclusive_holder_waits_for_all_of_them() -> None:
    lock, events = parallel.InfraLock(), []
    first, second = lock.shared(), lock.shared()
    first.__enter__(), second.__enter__()  # two scenarios at once

    def writer() -> None:
        with lock.exclusive() as waited:
            events.append(("exclusive", round(waited, 1)))

    t = _in_thread(writer)
    time.sleep(0.3)
    assert events == []  # both readers still hold it
    first.__exit__(None, None, None)
    time.sleep(0.3)
    assert events == []
    second.__exit__(None, None, None)
    t.join(2)
    assert events and events[0][0] == "exclusive" and events[0][1] >= 0.5


def test_a_waiting_exclusive_holder_keeps_new_scenarios_from_starting() -> None:
    """Writer preference: otherwise a steady stream of ordinary scenarios would starve the fault one."""
    lock, order = parallel.InfraLock(), []
    held = lock.shared()
    held.__enter__()

    def writer() -> None:
        with lock.exclusive():
            order.append("fault scenario")
            time.sleep(0.2)

    def reader() -> None:
        with lock.shared():
            order.append("later scenario")

    w = _in_thread(writer)
    time.sleep(0.2)
    r = _in_thread(reader)
    time.sleep(0.3)
    assert order == []  # the later scenario waits behind the waiting writer
    held.__exit__(None, None, None)
    w.join(2), r.join(2)
    assert order == ["fault scenario", "later scenario"]


def test_a_lock_wait_gives_way_to_a_stop_request() -> None:
    lock, raised = parallel.InfraLock(), []
    held = lock.exclusive()
    held.__enter__()

    def reader() -> None:
        try:
            with lock.shared():
                raised.append("acquired")
        except Interrupted as exc:
            raised.append(exc.signum)

    t = _in_thread(reader)
    time.sleep(0.3)
    teardown.request_stop(signal.SIGTERM)
    t.join(2)
    held.__exit__(None, None, None)
    assert raised == [signal.SIGTERM]


def test_only_faults_that_freeze_shared_infrastructure_take_it_exclusively(kit: Any, tmp_path: Path) -> None:
    assert parallel.SHARED_FAULTS <= set(faults.ACTIONS)
    exclusive = {k for k in FaultKind
                 if parallel.needs_exclusive(_scenario(kit, tmp_path, k.value.replace("_", "-"), faults=[_fault(k)],
                                                       **_release_for(k)))}
    assert exclusive == {FaultKind.PAUSE_POSTGRES, FaultKind.PAUSE_CONTROL_PLANE, FaultKind.NETWORK_LATENCY}
    assert not parallel.needs_exclusive(_scenario(kit, tmp_path, "plain"))


def _release_for(kind: FaultKind) -> dict[str, Any]:
    """kill_helm needs a chart to interrupt; the others take the minimal scenario's manifests."""
    if kind is not FaultKind.KILL_HELM:
        return {}
    return {"app": {"helm": {"chart": "chart", "release": "demo"}, "workloads": [{"deployment": "demo"}]}}


def _fault(kind: FaultKind) -> dict[str, Any]:
    return {"kind": kind.value, **({"latency_ms": 100} if kind is FaultKind.NETWORK_LATENCY else {})}


def _scenario(kit: Any, tmp_path: Path, name: str, **doc: Any) -> Scenario:
    d = kit.write_scenario(tmp_path / "scenarios", name, kit.minimal_doc(**doc))
    if "helm" in doc.get("app", {}):
        (d / "chart").mkdir()
        (d / "chart" / "Chart.yaml").write_text("apiVersion: v2\nname: demo\nversion: 0.1.0\n")
    return load_scenario(d)


# ── the pool ─────────────────────────────────────────────────────────────────
def test_at_most_jobs_items_run_at_once_and_every_item_runs_once() -> None:
    running, peak, seen, mutex = [0], [0], [], threading.Lock()

    def work(n: int) -> None:
        with mutex:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
            seen.append(n)
        time.sleep(0.05)
        with mutex:
            running[0] -= 1

    parallel.run_all(list(range(9)), 3, work, name=str)
    assert sorted(seen) == list(range(9)) and peak[0] == 3


def test_a_workers_error_stops_new_items_and_is_raised_after_the_running_ones_finish() -> None:
    finished: list[int] = []
    one_started = threading.Event()

    def work(n: int) -> None:
        if n == 0:
            one_started.wait(2)
            raise ValueError("no such Postgres major")
        one_started.set()
        time.sleep(0.3)
        finished.append(n)

    with pytest.raises(ValueError, match="no such Postgres major"):
        parallel.run_all(list(range(6)), 2, work, name=str)
    assert finished == [1]  # item 1 was running and finished; 2..5 never started


def test_a_signal_stops_the_workers_waits_for_their_cleanup_and_is_raised() -> None:
    """Signals reach only the main thread: it asks the workers to stop; each unwinds through its
    cleanup (here a wait of the harness, which notices the stop) before the Interrupted goes up."""
    log: list[str] = []

    def work(n: int) -> None:
        try:
            Wait(f"item {n}", 30, 0.05).until(lambda: (False, "never"))
        finally:
            time.sleep(0.2)  # a cleanup that takes time: it must finish before the main thread goes on
            log.append(f"cleanup {n}")

    threading.Timer(0.4, os.kill, (os.getpid(), signal.SIGTERM)).start()
    t0 = time.monotonic()
    with pytest.raises(Interrupted) as caught:
        with Teardown().installed():
            parallel.run_all([1, 2, 3], 2, work, name=str)
    assert caught.value.signum == signal.SIGTERM
    assert sorted(log) == ["cleanup 1", "cleanup 2"]  # item 3 never started
    assert time.monotonic() - t0 < 5


def test_check_stop_never_raises_in_the_main_thread() -> None:
    teardown.request_stop(signal.SIGINT)
    teardown.check_stop()  # the main thread's own signal handler raises there, not this
    assert teardown.stop_requested()


# ── the output ───────────────────────────────────────────────────────────────
def test_each_workers_lines_carry_its_scenario_and_never_mix(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(progress, "console", Console(file=out, width=200, markup=False, highlight=False))

    def work(name: str) -> None:
        for i in range(30):
            progress.say(f"[/] step {i} of {name}")  # untrusted text: printed as written

    parallel.run_all(["bad-image", "half-way"], 2, work, name=lambda n: n)
    lines = out.getvalue().splitlines()
    assert len(lines) == 60
    for line in lines:
        name = line.split()[1]
        assert line.split(" │ ", 1)[1].startswith("[/] step ") and line.endswith(f" of {name}")
    with progress.scenario_prefix("long"):
        progress.say("x" * 500)  # wider than the console: still one line, prefix and all
    assert out.getvalue().splitlines()[-1].endswith("long │ " + "x" * 500)
    progress.say("after")  # the main thread: no prefix
    assert " │ " not in out.getvalue().splitlines()[-1]


# ── the session ──────────────────────────────────────────────────────────────
class TimedPhase(Phase):
    """Sleeps per scenario name (so they finish out of order) and logs who was running alongside."""

    name, on_failure = "deploy_good", OnFailure.STOP

    def __init__(self, spans: list[tuple[str, float, float]], mutex: threading.Lock) -> None:
        self.spans, self.mutex = spans, mutex

    def execute(self, ctx: RehearsalContext) -> str:
        t0 = time.monotonic()
        time.sleep({"a": 0.6, "b": 0.1, "c": 0.3}.get(ctx.scenario.name[0], 0.2))
        with self.mutex:
            self.spans.append((ctx.scenario.name, t0, time.monotonic()))
        return "ok"


def test_rehearse_all_keeps_the_given_order_and_runs_fault_scenarios_alone(
        kit: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spans: list[tuple[str, float, float]] = []
    monkeypatch.setattr(pipeline, "PHASES", [TimedPhase(spans, threading.Lock())])
    monkeypatch.setattr(faults, "leftovers", lambda infra: [])
    infra = SimpleNamespace(cluster=SimpleNamespace(name="kind-x"), registry=None, database=None)
    session = session_mod.Session(session_mod.SessionOptions(report_dir=tmp_path / "reports", jobs=3),
                                  infra=infra, stack=ExitStack(), owner="rehearsal-xyz")  # type: ignore[arg-type]
    scenarios = [_scenario(kit, tmp_path, "a-slow"), _scenario(kit, tmp_path, "b-quick"),
                 _scenario(kit, tmp_path, "c-mid"), _scenario(kit, tmp_path, "pause", faults=[{"kind": "pause_postgres"}]),
                 _scenario(kit, tmp_path, "d-last")]
    journals = session.rehearse_all(scenarios, 3)
    assert [j.scenario for j in journals] == [j.scenario for j in session.results] == \
        ["a-slow", "b-quick", "c-mid", "pause", "d-last"]  # as given, whatever order they ran and finished in
    # Which scenario starts first is the scheduler's (the pause is queued first, but a worker may take the
    # shared lock before the pause's worker asks for it): what must hold is that nothing overlaps the pause.
    by_name = {n: (t0, t1) for n, t0, t1 in spans}
    p0, p1 = by_name.pop("pause")
    assert all(t1 <= p0 or t0 >= p1 for t0, t1 in by_name.values())  # nothing ran alongside the pause
    others = list(by_name.values())
    assert any(a0 < b1 and b0 < a1 for i, (a0, a1) in enumerate(others) for b0, b1 in others[i + 1:])  # they overlapped
    locks = {j.scenario: [e.message for e in j.events if e.kind == "lock"] for j in journals}
    assert len(locks["pause"]) == 1
    assert "(exclusive: its faults freeze infrastructure the other scenarios use); not counted in any phase" \
        in locks["pause"][0]
    shared = [m for name, ms in locks.items() if name != "pause" for m in ms]
    assert all("(shared: a scenario whose faults freeze" in m for m in shared)  # a wait is said as such
    assert all(j.verdict == "READY" for j in journals)


def test_rehearse_all_can_keep_going_past_a_scenarios_error(kit: Any, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline, "PHASES", [TimedPhase([], threading.Lock())])
    infra = SimpleNamespace(cluster=SimpleNamespace(name="kind-x"), registry=None, database=None)
    session = session_mod.Session(session_mod.SessionOptions(report_dir=tmp_path / "reports"),
                                  infra=infra, stack=ExitStack(), owner="rehearsal-xyz")  # type: ignore[arg-type]
    other_major = _scenario(kit, tmp_path, "pg16", database={"postgres": "16"})
    errors: dict[str, Exception] = {}
    journals = session.rehearse_all([other_major, _scenario(kit, tmp_path, "b-quick")], 2, errors=errors)
    assert [j.scenario for j in journals] == ["b-quick"]
    assert isinstance(errors["pg16"], session_mod.InfrastructureMismatchError)
    with pytest.raises(session_mod.InfrastructureMismatchError):
        session.rehearse_all([other_major], 2)


def test_a_faults_timer_thread_names_the_scenario_that_armed_it() -> None:
    from harness.journal import Journal

    seen: list[str] = []
    injector = faults.FaultInjector([], make_action=lambda f: None, journal=Journal(scenario="s", expect="READY"))  # type: ignore[arg-type,return-value]
    with progress.scenario_prefix("fault-pause-postgres"):
        timer = injector._start_timer(0.01, lambda st: seen.append(progress.current_prefix()), None)  # type: ignore[arg-type]
    timer.join(2)
    assert seen == ["fault-pause-postgres"] and progress.current_prefix() == ""


def test_an_image_is_loaded_once_per_content_and_one_load_at_a_time(monkeypatch: pytest.MonkeyPatch,
                                                                     tmp_path: Path) -> None:
    import tempfile

    from harness.providers import cluster

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the provider's kubeconfig directory

    ids = {"demo:good": "sha256:1", "demo:bad": "sha256:2"}
    loads: list[str] = []
    in_flight, peak, mutex = [0], [0], threading.Lock()
    monkeypatch.setattr(cluster, "_local_image_id", lambda image: ids.get(image))

    def kind_load(self: Any, image: str) -> None:
        with mutex:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        time.sleep(0.1)
        loads.append(image)
        with mutex:
            in_flight[0] -= 1

    monkeypatch.setattr(cluster.KindProvider, "_kind_load", kind_load)
    monkeypatch.setattr(cluster.KindProvider, "_nodes_have", lambda self, image, content: False)
    provider = cluster.KindProvider("rr-x")
    parallel.run_all(["demo:good"] * 4, 4, provider.load_image, name=str)
    assert loads == ["demo:good"] and peak[0] == 1  # four scenarios, one load
    ids["demo:good"] = "sha256:3"  # rebuilt: new content, loaded again
    provider.load_image("demo:good")
    provider.load_image("unknown:1")  # Docker cannot say: loaded every time
    provider.load_image("unknown:1")
    assert loads == ["demo:good", "demo:good", "unknown:1", "unknown:1"]
