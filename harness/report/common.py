"""Shared helpers of the report writers: redaction of the journal data and a
few sentences every format words the same way.

Redaction happens on the *data*, before anything is serialised and before any
writer shortens a string: every string (dict keys included) passes every
redactor, and so does every sentence a writer composes from those strings. Redacting the serialised text instead
would miss secrets that the format escapes (``&`` in HTML, ``"`` in JSON) and
could corrupt the syntax (``PASSWORD=\\S+`` would swallow a closing quote).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from harness.journal import Journal
from harness.redact import Redactor, redact_tail

Redact = Callable[[str], str]
VERDICTS = ("READY", "NOT_READY", "ERROR")


class RedactChain:
    """Several redactors applied as one (a run holds one per scenario), always
    including the default patterns (URL passwords, tokens, KEY=secret).

    The secrets of all `Redactor`s are merged into one Redactor, which runs last:
    so a secret of one scenario that overlaps another's is still masked whole, and
    each text is scanned once per secret. Other callables run first, in order.
    """

    def __init__(self, redactors: Iterable[Redact] = ()) -> None:
        given = list(redactors)
        secrets = [s for r in given if isinstance(r, Redactor) for s in r.secrets]
        self._chain: list[Redact] = [*(r for r in given if not isinstance(r, Redactor)), Redactor(secrets)]

    def __call__(self, text: str) -> str:
        for r in self._chain:
            text = r(text)
        return text

    def tail(self, text: str, limit: int) -> str:
        """The last `limit` characters of the redacted text (redacted first, then cut)."""
        return redact_tail(self, text, limit)


def as_redact(redactor: Redact | Iterable[Redact] | None) -> RedactChain:
    if redactor is None:
        return RedactChain()
    if isinstance(redactor, RedactChain):
        return redactor
    if callable(redactor):
        return RedactChain([redactor])
    return RedactChain(list(redactor))


def redact_tree(obj: Any, redact: Redact) -> Any:
    """A copy of ``obj`` (JSON-like) with every string, keys included, redacted."""
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, Mapping):
        return {redact(str(k)): redact_tree(v, redact) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [redact_tree(v, redact) for v in obj]
    return obj


def journal_data(journal: Journal | Mapping[str, Any], redact: Redact) -> dict[str, Any]:
    """The journal as report.json holds it (JSON types), redacted."""
    data = journal.model_dump(mode="json") if isinstance(journal, Journal) else dict(journal)
    return redact_tree(data, redact)


# ───────────────────────────────────────────────────────── shared wording


def parse_dt(value: str) -> datetime:
    """An ISO-8601 timestamp; naive ones are taken as UTC."""
    dt = datetime.fromisoformat(value)  # Python 3.11+: also "Z" and date-only forms
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def parse_ts(value: str) -> float:
    """An ISO-8601 timestamp as POSIX seconds."""
    return parse_dt(value).timestamp()


def fmt_s(value: float | None, unit: str = "s") -> str:
    if value is None:
        return "–"
    return f"{value:.2f}{unit}" if value < 10 else f"{value:.1f}{unit}"


def step_skipped(step: Mapping[str, Any]) -> bool:
    """A step the runbook marks `rehearse: skip`: recorded, never run, never a failure."""
    return step.get("skipped") is not None


def step_failed(step: Mapping[str, Any]) -> bool:
    return not step_skipped(step) and (bool(step.get("timed_out") or step.get("waiting_for_input")
                                            or step.get("ended_session")) or step.get("exit_code") != 0)


def skipped_steps(data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [s for s in data.get("runbook_steps") or [] if step_skipped(s)]


def skip_sentence(step: Mapping[str, Any]) -> str:
    return (f"runbook step {step.get('index')} (line {step.get('line')}) `{step.get('command')}` skipped: "
            f"{step.get('skipped')}")


def placeholder_sentence(data: Mapping[str, Any]) -> str:
    """The runbook's placeholders as the scenario bound them ("" without any)."""
    bound = data.get("placeholders") or {}
    return ("runbook placeholders bound: " + ", ".join(f"{k} = {v}" for k, v in bound.items())) if bound else ""


def failing_step(data: Mapping[str, Any]) -> dict[str, Any] | None:
    """The first runbook step that exited non-zero or timed out."""
    return next((s for s in data.get("runbook_steps") or [] if step_failed(s)), None)


def step_sentence(step: Mapping[str, Any]) -> str:
    how = (f"timed out after {step.get('duration_s', 0):.0f}s" if step.get("timed_out")
           else f"exited {step.get('exit_code')}")
    return f"runbook step {step.get('index')} (line {step.get('line')}) `{step.get('command')}` {how}"


def first_reason(data: Mapping[str, Any]) -> str:
    reasons = data.get("reasons") or []
    return str(reasons[0]) if reasons else ""


def failure_message(data: Mapping[str, Any], redact: Redact, limit: int = 3) -> str:
    """One paragraph: verdict vs expect, the first differences, the failing runbook step."""
    head = f"verdict {data.get('verdict')}, expected {data.get('expect')}"
    diffs = [str(d.get("message", "")) for d in data.get("differences") or []]
    parts = diffs[:limit] or [str(r) for r in (data.get("reasons") or [])[:limit]]
    if len(diffs) > limit:
        parts.append(f"(+{len(diffs) - limit} more)")
    step = failing_step(data)
    if step is not None:
        parts.append(step_sentence(step))
    return redact(head + (": " + "; ".join(parts) if parts else ""))


def total_duration(data: Mapping[str, Any]) -> float:
    """Seconds from the first phase's start to the end of the last one (0 without phases)."""
    phases = data.get("phases") or []
    if not phases:
        return 0.0
    t0 = parse_ts(phases[0]["started_at"])
    ends = [parse_ts(p["started_at"]) + p.get("duration_s", 0.0) for p in phases]
    return round(max(ends) - t0, 3)
