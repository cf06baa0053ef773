"""Waiting as its own object: every wait has a timeout, a poll interval, and
on timeout raises with the evidence gathered at that moment and a hint."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from harness.teardown import check_stop

T = TypeVar("T")


class WaitTimeout(TimeoutError):
    def __init__(self, what: str, timeout_s: float, last: str, evidence: str, hint: str) -> None:
        self.what, self.timeout_s, self.last, self.evidence, self.hint = what, timeout_s, last, evidence, hint
        msg = f"timed out after {timeout_s:.0f}s waiting for {what}"
        if last:
            msg += f"\nlast state: {last}"
        if evidence:
            msg += f"\nevidence:\n{evidence.rstrip()}"
        if hint:
            msg += f"\nHint: {hint}"
        super().__init__(msg)


@dataclass(frozen=True)
class Wait:
    """`Wait("rollout of demo", 120).until(check)`: check returns (done, state_text)."""

    what: str
    timeout_s: float
    poll_s: float = 1.0
    hint: str = ""
    evidence: Callable[[], str] | None = None
    # Exceptions that end the wait at once (a failed Job will not succeed later).
    fatal: tuple[type[BaseException], ...] = ()

    def until(self, check: Callable[[], tuple[bool, str]]) -> float:
        """Poll until check() reports done; return the seconds waited."""
        t0 = time.monotonic()
        last = ""
        while True:
            try:
                done, last = check()
            except self.fatal:
                raise
            except Exception as exc:  # transient API errors are states, not failures
                done, last = False, f"{type(exc).__name__}: {exc}"
            if done:
                return time.monotonic() - t0
            if time.monotonic() - t0 >= self.timeout_s:
                ev = ""
                if self.evidence:
                    try:
                        ev = self.evidence()
                    except Exception as exc:  # evidence is best effort
                        ev = f"(could not gather evidence: {exc})"
                raise WaitTimeout(self.what, self.timeout_s, last, ev, self.hint)
            check_stop()  # a worker thread of a stopped session (`-j N`) stops waiting here
            time.sleep(self.poll_s)
