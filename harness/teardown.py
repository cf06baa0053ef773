"""Teardown that finishes: signals during cleanup are recorded, not obeyed.

The first SIGINT, SIGTERM or SIGHUP of a session raises `Interrupted` (a
KeyboardInterrupt), so the rehearsal unwinds and every cleanup runs. From that
moment on (or from the moment a session ends normally) the session is tearing
down: a second or third signal (an impatient Ctrl-C, CI sending SIGTERM again,
a closed terminal's SIGHUP) is only recorded and answered with a line saying
what is still being removed. Obeying it would stop `kind delete` or `docker rm`
half way and leave the cluster behind while the exit message claimed otherwise.

Each cleanup callback of the session's stack (`TeardownStack.callback`) runs
guarded: a failure is collected and the others still run. When the session is
over, `Teardown.outcome` says the truth: `Interrupted` (exit 130, whichever
signal) or `TeardownIncomplete`, each naming every removal that failed.
SIGKILL is the only way to abandon a teardown (then `make clean-clusters`).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, ParamSpec, TypeVar

from harness.progress import say
from harness.redact import mask_patterns

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
P = ParamSpec("P")
R = TypeVar("R")

Handler = Callable[[int, FrameType | None], Any] | int | None


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class Interrupted(KeyboardInterrupt):
    """The session was stopped by a signal; raised after its teardown, with what that teardown left."""

    def __init__(self, signum: int, received: int = 1, steps: int = 0, failures: tuple[str, ...] = ()) -> None:
        super().__init__(f"signal {signum}")
        self.signum, self.received, self.steps, self.failures = signum, received, steps, failures

    # 130 whichever signal it was (SIGTERM and SIGHUP too): "interrupted", as the CLI has always said.
    exit_code = 130

    def message(self) -> str:
        more = self.received - 1
        why = signal_name(self.signum) + (f", {more} more received during teardown" if more else "")
        if not self.failures:
            return f"interrupted: resources cleaned up ({why}; {self.steps} cleanup step(s), none failed)"
        return f"interrupted ({why}): " + cleanup_summary(self.steps, self.failures)


# Signals reach only the main thread. When scenarios are rehearsed in worker threads (`-j N`), the main
# thread sets this on the first signal; each worker notices it at its next check (between phases, in
# every wait, in a runbook command's wait) and unwinds through its scenario's cleanup as Ctrl-C would.
_stop: list[int] = []  # the signal that stopped the session, once set
_stop_event = threading.Event()


def request_stop(signum: int) -> None:
    """Ask every worker thread to stop (the main thread was interrupted by `signum`)."""
    if not _stop:
        _stop.append(signum)
    _stop_event.set()


def clear_stop() -> None:
    """A new session starts with no stop requested."""
    _stop.clear()
    _stop_event.clear()


def stop_requested() -> bool:
    return _stop_event.is_set()


def check_stop() -> None:
    """In a worker thread: raise `Interrupted` once a stop was requested. In the main thread it does
    nothing: the signal handler itself raises there."""
    if _stop_event.is_set() and threading.current_thread() is not threading.main_thread():
        raise Interrupted(_stop[0] if _stop else signal.SIGINT)


class TeardownIncomplete(RuntimeError):
    """The session ended normally but some of its resources could not be removed."""

    def __init__(self, steps: int, failures: tuple[str, ...]) -> None:
        super().__init__(cleanup_summary(steps, failures))
        self.steps, self.failures = steps, failures


def cleanup_summary(steps: int, failures: tuple[str, ...]) -> str:
    """What the cleanup did, truthfully: every failed removal by name."""
    if not failures:
        return f"cleanup finished ({steps} step(s), none failed)"
    return (f"cleanup finished, but {len(failures)} of {steps} step(s) failed and may have left resources "
            "behind: " + "; ".join(failures))


def describe(fn: Callable[..., Any], args: tuple[Any, ...]) -> str:
    """A cleanup callback as a person reads it: `KindClusterProvider.delete (rehearsal)`."""
    owner = getattr(fn, "__self__", None)
    name = (getattr(fn, "__qualname__", None) or repr(fn)).rsplit(".<locals>.", 1)[-1]
    label = getattr(owner, "name", None)
    extra = [str(label)] if isinstance(label, str) else []
    extra += [str(a) for a in args if isinstance(a, (str, int))]
    return name + (f" ({', '.join(extra)})" if extra else "")


@dataclass
class Teardown:
    """The signal policy and the cleanup record of one session."""

    received: list[int] = field(default_factory=list)  # every signal, in order; the first one stopped the run
    pending: list[str] = field(default_factory=list)   # cleanup steps not run yet, in registration order
    failures: list[str] = field(default_factory=list)
    steps: int = 0                                    # cleanup steps that ran (failed ones included)
    tearing_down: bool = False
    # Failures quote exception texts (a DSN, a psql error): masked before they are said or kept.
    redact: Callable[[str], str] = mask_patterns
    _previous: dict[int, Handler] = field(default_factory=dict)

    def begin(self) -> None:
        """From here on, signals are recorded, not obeyed."""
        self.tearing_down = True

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signum)
        if not self.tearing_down:
            self.tearing_down = True  # the unwinding this starts is the teardown
            raise Interrupted(signum)
        waiting = ", ".join(reversed(self.pending)) or "nothing more (finishing)"
        say(f"{signal_name(signum)} received during teardown: recorded, cleanup goes on; still to remove: "
            f"{waiting} (SIGKILL abandons it)", style="yellow")

    def run(self, name: str, fn: Callable[P, object], *args: P.args, **kwargs: P.kwargs) -> None:
        """One cleanup step: its failure is collected (and said), never raised over the others."""
        try:
            fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 (the other removals must still run; the outcome names it)
            self.failures.append(self.redact(f"{name}: {type(exc).__name__}: {exc}"))
            say(f"cleanup step failed: {self.failures[-1]}", style="red")
        finally:
            self.steps += 1
            if name in self.pending:
                self.pending.remove(name)

    @contextmanager
    def installed(self) -> Iterator[Teardown]:
        """SIGINT, SIGTERM and SIGHUP handled by this teardown while the block runs; the previous
        handlers afterwards. Then the truth about the teardown is raised (see `outcome`)."""
        self._install()
        try:
            yield self
        except KeyboardInterrupt:
            self._restore()
            raise self.outcome(interrupted=True) from None
        except BaseException as exc:
            self._restore()
            if self.failures:
                exc.add_note(cleanup_summary(self.steps, tuple(self.failures)))
            raise
        self._restore()
        outcome = self.outcome(interrupted=False)
        if outcome is not None:
            raise outcome

    def outcome(self, interrupted: bool) -> Interrupted | TeardownIncomplete | None:
        """`Interrupted` when a signal arrived (or Ctrl-C without one: SIGINT), else `TeardownIncomplete`
        when a removal failed, else None."""
        failures = tuple(self.failures)
        if interrupted or self.received:
            first = self.received[0] if self.received else signal.SIGINT
            return Interrupted(first, max(len(self.received), 1), self.steps, failures)
        return TeardownIncomplete(self.steps, failures) if failures else None

    def _install(self) -> None:
        for sig in SIGNALS:
            try:
                self._previous[sig] = signal.signal(sig, self.on_signal)
            except ValueError:  # not the main thread (e.g. under some runners): signals stay as they were
                return

    def _restore(self) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()


class TeardownStack(ExitStack):
    """The session's ExitStack: callbacks run guarded by its Teardown (failures collected, named), and
    leaving it begins the teardown (from then on signals are recorded)."""

    def __init__(self, teardown: Teardown | None = None) -> None:
        super().__init__()
        self.teardown = teardown if teardown is not None else Teardown()

    def callback(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Callable[P, R]:
        name = describe(fn, args)
        self.teardown.pending.append(name)
        super().callback(self.teardown.run, name, fn, *args, **kwargs)
        return fn

    def __exit__(self, *exc_details: Any) -> bool:
        self.teardown.begin()
        if self.teardown.pending:  # a long step (kind delete): say that it started
            say(f"tearing down: {len(self.teardown.pending)} cleanup step(s)")
        return super().__exit__(*exc_details)
