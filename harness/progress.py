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
import time

from rich.console import Console
from rich.text import Text

# Not a terminal (CI logs, files): rich would wrap at 80 columns and fold every table cell; COLUMNS still wins.
console = Console(stderr=True, highlight=False, markup=False, emoji=False,
                  width=None if sys.stderr.isatty() or os.environ.get("COLUMNS") else 160)
_T0 = time.monotonic()


def line(message: str | Text, style: str = "") -> Text:
    """The console line of `say`: the dim elapsed time, then the message as text (a `str` is never
    parsed), `style` over the message."""
    body = Text(message) if isinstance(message, str) else message.copy()
    if style:
        body.stylize_before(style)  # under the message's own styled parts
    return Text.assemble((f"{time.monotonic() - _T0:7.1f}s", "dim"), " ", body)


def say(message: str | Text, style: str = "") -> None:
    """One timestamped progress line; cheap enough to call from any phase. `message` is plain text
    (user text goes in as is); emphasis is `style` or a `Text` with styled parts."""
    console.print(line(message, style))
    sys.stderr.flush()
