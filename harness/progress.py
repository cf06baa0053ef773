"""Progress output for long steps (rich console on stderr)."""

from __future__ import annotations

import os
import sys
import time

from rich.console import Console

# Not a terminal (CI logs, files): rich would wrap at 80 columns and fold every table cell; COLUMNS still wins.
console = Console(stderr=True, highlight=False,
                  width=None if sys.stderr.isatty() or os.environ.get("COLUMNS") else 160)
_T0 = time.monotonic()


def say(message: str, style: str = "") -> None:
    """One timestamped progress line; cheap enough to call from any phase."""
    elapsed = time.monotonic() - _T0
    console.print(f"[dim]{elapsed:7.1f}s[/dim] {message}", style=style or None)
    sys.stderr.flush()
