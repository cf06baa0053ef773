"""Progress output for long steps (rich console on stderr).

Untrusted text is never markup. Most of what the harness prints quotes someone
else's text: runbook commands (`sed "s/[/]/-/g"`, `"${pods[@]}"`), command
output, exception messages, descriptions, paths. Read as rich markup, `[/]`
raises MarkupError (outside any phase's error handling: the run dies) and
`[a-z]` silently vanishes. So the console has markup (and `:emoji:` codes)
switched off: a `str` is always printed as written. The harness's own
emphasis is explicit and separate: `say(text, style="bold")` for a whole
line, or a `rich.text.Text` (`Text.assemble(("READY", "bold"), ...)`) for a
part of it; tables take `Text` cells.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

# Not a terminal (CI logs, files): rich would wrap at 80 columns and fold every table cell; COLUMNS still wins.
console = Console(stderr=True, highlight=False, markup=False, emoji=False,
                  width=None if sys.stderr.isatty() or os.environ.get("COLUMNS") else 160)
_T0 = time.monotonic()
# With scenarios rehearsed side by side (`rehearse run -j N`), each worker thread names its scenario on
# every line it prints: the lines of N scenarios interleave, each still readable on its own.
_local = threading.local()
_print_lock = threading.RLock()  # re-entrant: a signal handler in the main thread may say a line mid-print


@contextmanager
def scenario_prefix(name: str) -> Iterator[None]:
    """Every `say` line of this thread begins with `name │ ` while the block runs."""
    previous = getattr(_local, "prefix", "")
    _local.prefix = name
    try:
        yield
    finally:
        _local.prefix = previous


def current_prefix() -> str:
    """This thread's scenario prefix ("" outside a worker): a helper thread a worker starts (a fault's
    timer) hands it on with `scenario_prefix`."""
    return getattr(_local, "prefix", "")


def line(message: str | Text, style: str = "") -> Text:
    """The console line of `say`: the dim elapsed time, then the message as text (a `str` is never
    parsed), `style` over the message."""
    body = Text(message) if isinstance(message, str) else message.copy()
    if style:
        body.stylize_before(style)  # under the message's own styled parts
    prefix = getattr(_local, "prefix", "")
    tag = (f"{prefix} │ ", "cyan") if prefix else ""
    return Text.assemble((f"{time.monotonic() - _T0:7.1f}s", "dim"), " ", tag, body)


class Board:
    """In a terminal, with scenarios side by side: one live row per scenario in flight (its name, how long
    it has run, its latest line) under the scrolling lines, so N interleaved scenarios stay readable.
    The rows are only what `say` already printed; a CI log (not a terminal) gets the plain lines alone."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[float, Text]] = {}  # scenario -> (when it started, its latest line)
        self.live: Live | None = None

    def started(self, name: str) -> None:
        with _print_lock:
            self.rows[name] = (time.monotonic(), Text("starting"))
            self._refresh()

    def said(self, name: str, message: Text) -> None:
        with _print_lock:
            if name in self.rows:
                self.rows[name] = (self.rows[name][0], message)
                self._refresh()

    def ended(self, name: str) -> None:
        with _print_lock:
            self.rows.pop(name, None)
            self._refresh()

    def render(self) -> Table:
        table = Table.grid(padding=(0, 1))
        table.add_column(style="cyan", no_wrap=True)
        table.add_column(style="dim", justify="right", no_wrap=True)
        table.add_column(no_wrap=True, overflow="ellipsis")
        now = time.monotonic()
        for name, (t0, message) in sorted(self.rows.items()):
            table.add_row(name, f"{now - t0:5.0f}s", message)
        return table

    def _refresh(self) -> None:
        if self.live is not None and self.live.is_started:
            self.live.update(self.render(), refresh=True)


_board: Board | None = None


@contextmanager
def live_board(enabled: bool = True) -> Iterator[Board | None]:
    """The live rows while scenarios run side by side, when stderr is a terminal (else nothing changes)."""
    global _board
    if not enabled or not console.is_terminal or _board is not None:
        yield None
        return
    board = Board()
    with Live(board.render(), console=console, refresh_per_second=2, transient=True) as live:
        board.live, _board = live, board
        try:
            yield board
        finally:
            board.live, _board = None, None


@contextmanager
def board_row(name: str) -> Iterator[None]:
    """The scenario's live row (if a board is up) for as long as the block runs."""
    board = _board
    if board is not None:
        board.started(name)
    try:
        yield
    finally:
        if board is not None:
            board.ended(name)


def say(message: str | Text, style: str = "") -> None:
    """One timestamped progress line; cheap enough to call from any phase. `message` is plain text
    (user text goes in as is); emphasis is `style` or a `Text` with styled parts."""
    board, prefix = _board, getattr(_local, "prefix", "")
    if board is not None and prefix:
        body = Text(message) if isinstance(message, str) else message.copy()
        board.said(prefix, body)
    with _print_lock:  # one whole line at a time, whichever thread says it
        # Never folded: a folded line's continuation would lose its scenario prefix (`-j N`) and its time.
        console.print(line(message, style), soft_wrap=True)
        sys.stderr.flush()
