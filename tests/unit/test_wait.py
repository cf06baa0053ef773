"""Wait: bounded polling that fails with evidence and a hint."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator

import pytest

from harness.wait import Wait, WaitTimeout


def _script(*outcomes: object) -> tuple[Callable[[], tuple[bool, str]], list[int]]:
    """A check returning (or raising) the given outcomes in turn, repeating the last one."""
    calls: list[int] = []
    it: Iterator[object] = iter(outcomes)
    last: list[object] = [None]

    def check() -> tuple[bool, str]:
        calls.append(1)
        last[0] = next(it, last[0])
        if isinstance(last[0], BaseException):
            raise last[0]
        return last[0]  # type: ignore[return-value]

    return check, calls


def test_returns_elapsed_when_done() -> None:
    check, calls = _script((False, "0/1"), (False, "0/1"), (True, "1/1"))
    elapsed = Wait("rollout", timeout_s=5, poll_s=0.05).until(check)
    assert len(calls) == 3
    assert 0.09 <= elapsed < 2  # two polls of 0.05 s


def test_done_at_once_does_not_sleep() -> None:
    check, calls = _script((True, "ok"))
    assert Wait("x", timeout_s=5, poll_s=10).until(check) < 1
    assert len(calls) == 1


def test_elapsed_measures_the_real_wait() -> None:
    t_done = time.monotonic() + 0.3

    def check() -> tuple[bool, str]:
        return time.monotonic() >= t_done, "waiting"

    elapsed = Wait("clock", timeout_s=5, poll_s=0.02).until(check)
    assert 0.3 <= elapsed < 1.5


def test_timeout_carries_last_state_evidence_and_hint() -> None:
    states = iter(f"{i}/3 ready" for i in range(1000))
    w = Wait("rollout of demo", timeout_s=0.3, poll_s=0.05, hint="check the image tag",
             evidence=lambda: "pod demo-1: CrashLoopBackOff\n")
    with pytest.raises(WaitTimeout) as ei:
        w.until(lambda: (False, next(states)))
    e = ei.value
    assert isinstance(e, TimeoutError)
    assert e.what == "rollout of demo" and e.timeout_s == 0.3 and e.hint == "check the image tag"
    assert e.last.endswith("/3 ready") and e.last != "0/3 ready"  # the latest state, not the first
    assert e.evidence == "pod demo-1: CrashLoopBackOff\n"
    msg = str(e)
    assert re.match(r"timed out after \d+s waiting for rollout of demo\n", msg)
    assert f"last state: {e.last}" in msg
    assert "evidence:\npod demo-1: CrashLoopBackOff" in msg
    assert msg.rstrip().endswith("Hint: check the image tag")


def test_timeout_takes_about_the_timeout() -> None:
    t0 = time.monotonic()
    with pytest.raises(WaitTimeout):
        Wait("never", timeout_s=0.4, poll_s=0.05).until(lambda: (False, "no"))
    assert 0.4 <= time.monotonic() - t0 < 2


def test_message_without_optional_parts() -> None:
    with pytest.raises(WaitTimeout) as ei:
        Wait("x", timeout_s=0, poll_s=0).until(lambda: (False, ""))
    assert str(ei.value) == "timed out after 0s waiting for x"


def test_failing_evidence_does_not_hide_the_timeout() -> None:
    def broken() -> str:
        raise RuntimeError("api down")

    with pytest.raises(WaitTimeout) as ei:
        Wait("x", timeout_s=0, poll_s=0, evidence=broken).until(lambda: (False, "s"))
    assert ei.value.evidence == "(could not gather evidence: api down)"


def test_transient_exceptions_are_states() -> None:
    check, calls = _script(ConnectionError("refused"), ValueError("bad json"), (True, "ok"))
    assert Wait("api", timeout_s=5, poll_s=0.01).until(check) >= 0
    assert len(calls) == 3


def test_transient_exception_is_the_last_state_on_timeout() -> None:
    check, _ = _script((False, "starting"), ConnectionError("refused"))
    with pytest.raises(WaitTimeout) as ei:
        Wait("api", timeout_s=0.1, poll_s=0.01).until(check)
    assert ei.value.last == "ConnectionError: refused"


class JobFailed(Exception):
    pass


def test_fatal_exceptions_propagate_at_once() -> None:
    check, calls = _script((False, "running"), JobFailed("backoff limit reached"), (True, "never"))
    t0 = time.monotonic()
    with pytest.raises(JobFailed, match="backoff limit"):
        Wait("job", timeout_s=30, poll_s=0.01, fatal=(JobFailed,)).until(check)
    assert len(calls) == 2 and time.monotonic() - t0 < 5


def test_only_listed_exceptions_are_fatal() -> None:
    check, calls = _script(KeyError("k"), (True, "ok"))
    Wait("x", timeout_s=5, poll_s=0.01, fatal=(JobFailed,)).until(check)
    assert len(calls) == 2


def test_keyboard_interrupt_is_never_swallowed() -> None:
    check, calls = _script(KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        Wait("x", timeout_s=30, poll_s=0.01).until(check)
    assert len(calls) == 1
