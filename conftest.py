"""Repository-wide test policy.

`make test` sets REHEARSAL_REQUIRE_E2E=1: there, a skipped end-to-end test is a
failure, because CI must prove the real environment (kind, Postgres, registry,
Docker) works; a skip would silently count as coverage.
"""

from __future__ import annotations

import os

import pytest

_skipped_e2e: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and "e2e" in report.keywords:
        _skipped_e2e.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("REHEARSAL_REQUIRE_E2E") == "1" and _skipped_e2e:
        session.config.get_terminal_writer().line(
            f"REHEARSAL_REQUIRE_E2E=1 but {len(_skipped_e2e)} e2e test(s) were skipped: " + ", ".join(_skipped_e2e),
            red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
