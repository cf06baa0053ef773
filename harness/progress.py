"""Progress output for long steps (rich console on stderr)."""

from __future__ import annotations

import sys
import time

from rich.console import Console

console = Console(stderr=True, highlight=False)
_T0 = time.monotonic()


def say(message: str, style: str = "") -> None:
    """One timestamped progress line; cheap enough to call from any phase."""
    elapsed = time.monotonic() - _T0
    console.print(f"[dim]{elapsed:7.1f}s[/dim] {message}", style=style or None)
    sys.stderr.flush()
