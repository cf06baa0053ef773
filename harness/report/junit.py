"""junit.xml: one <testcase> per scenario, for CI test-report views.

A scenario fails when its verdict differs from its ``expect``; the failure
message names the first differences and the failing runbook step (never a
stack trace). Written with xml.etree, which escapes text and attributes but
passes through characters XML 1.0 forbids; so every text and attribute value is
cleaned first (ANSI escape sequences and illegal characters removed, see
`xml_safe`), then redacted again: removing a colour code can join the two
halves of a secret that the first redaction saw apart.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.journal import SteadyStateRecord, fault_moment
from harness.judge import as_expected
from harness.report.common import (
    Redact,
    failing_step,
    failure_message,
    fmt_s,
    placeholder_sentence,
    skip_sentence,
    skipped_steps,
    step_failed,
    step_sentence,
    total_duration,
)

SUITE = "rollback-rehearsal"

# ANSI escape sequences: CSI (colours, cursor moves), OSC (titles, hyperlinks) and
# DCS/SOS/PM/APC strings ended by BEL or ST, and two-character ESC codes. An
# unterminated string loses only its introducer (the last branch), not the text after it.
# 8-bit C1 forms are not decoded (UTF-8 output does not use them); _NOT_XML drops the C1 byte.
_ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b[\]PX^_][^\x07\x1b\n]*(?:\x07|\x1b\\)"
    r"|\x1b[ -/]*[0-~]"
)
# What XML 1.0 forbids (C0 controls but tab/LF/CR, lone surrogates, U+FFFE/U+FFFF)
# plus what it discourages and CI viewers choke on (DEL and the C1 controls).
_NOT_XML = re.compile("[^\t\n\r\x20-\x7e\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# Attributes that carry text from the journal (the others are counts and times).
_TEXT_ATTRIBUTES = ("name", "classname", "message", "type", "value", "hostname", "timestamp")


def xml_safe(text: str) -> str:
    """`text` without ANSI sequences or characters XML 1.0 cannot carry; line ends as LF."""
    text = _ANSI.sub("", text).replace("\r\n", "\n").replace("\r", "\n")
    return _NOT_XML.sub("", text)


def _clean_tree(root: ET.Element, redact: Redact) -> None:
    """Every text and text attribute of the tree made XML-safe, then redacted."""
    for el in root.iter():
        if el.text:
            el.text = redact(xml_safe(el.text))
        for key in _TEXT_ATTRIBUTES:
            if key in el.attrib:
                el.set(key, redact(xml_safe(el.attrib[key])))


def _steady_lines(data: Mapping[str, Any]) -> list[str]:
    """The steady-state watch after verify, when it ran."""
    watch = data.get("steady_state")
    return [f"after the rollback: {SteadyStateRecord.model_validate(watch).summary()}"] if watch else []


def _risk_lines(data: Mapping[str, Any]) -> list[str]:
    """Readiness risks: reported, never a failure (they do not change the verdict)."""
    risks = data.get("risks") or []
    if not risks:
        return []
    lines = ["readiness risks (they do not change the verdict):"]
    for r in risks:
        lines.append(f"  [{r.get('kind')}] {r.get('object')}: {r.get('message')}")
        lines += ["    " + ln for ln in str(r.get("evidence") or "").rstrip().splitlines()[-10:]]
    return lines


def _fault_lines(data: Mapping[str, Any]) -> list[str]:
    """The faults and the fault-free second run, when the scenario had faults."""
    if not (data.get("faults") or data.get("rerun_steps")):
        return []
    lines = ["faults during the rollback:"]
    for f in data.get("faults") or []:
        hits = "" if f.get("hits") is None else f", hits {f.get('hits')}"
        lines.append(f"  {f.get('kind')} {fault_moment(f)}: {f.get('status')}{hits}")

    def yes_no(value: Any) -> str:
        return "not recorded" if value is None else ("yes" if value else "no")

    if data.get("rerun_steps") or data.get("runbook_converged") is not None:  # the runbook's faults: a second run
        lines.append(f"runbook converged despite the faults: {yes_no(data.get('runbook_converged'))}; "
                     f"second run idempotent: {yes_no(data.get('idempotent'))}; "
                     f"fault cost {fmt_s(data.get('fault_cost_s'))}")
    step = next((s for s in data.get("rerun_steps") or [] if step_failed(s)), None)
    if step is not None:
        lines.append("second run: " + step_sentence(step))
    return lines


def _details(data: Mapping[str, Any]) -> str:
    lines = [f"scenario {data.get('scenario')}: verdict {data.get('verdict')}, expected {data.get('expect')}"]
    lines.append(f"time to detect {fmt_s(data.get('time_to_detect_s'))}, "
                 f"time to recover {fmt_s(data.get('time_to_recover_s'))}")
    diffs = data.get("differences") or []
    if diffs:
        lines.append("differences:")
        lines += [f"  [{d.get('area')}] {d.get('message')}" for d in diffs]
    else:
        lines.append("reasons:")
        lines += [f"  {r}" for r in data.get("reasons") or []]
    step = failing_step(data)
    if step is not None:
        lines.append(step_sentence(step))
        tail = str(step.get("output_tail") or "").rstrip()
        if tail:
            lines += ["output (tail):", *("  " + ln for ln in tail.splitlines()[-20:])]
    skipped = skipped_steps(data)
    if skipped:
        lines.append(f"{len(skipped)} runbook step(s) skipped, as the runbook marks them (never run):")
        lines += [f"  {skip_sentence(s)}" for s in skipped]
    bound = placeholder_sentence(data)
    lines += [bound] if bound else []
    lines += _steady_lines(data) + _risk_lines(data) + _fault_lines(data)
    errored = [p for p in data.get("phases") or [] if p.get("status") == "error"]
    for p in errored:
        first = (str(p.get("detail") or "").splitlines() or [""])[0]  # the line, not a list's repr
        lines.append(f"phase {p.get('name')} could not run: {first}")
    return "\n".join(lines)


def render_junit(journals: Sequence[Mapping[str, Any]], redact: Redact, *, timestamp: str = "",
                 hostname: str = "", run_id: str = "") -> str:
    """journals: redacted journal data (see common.journal_data)."""
    failures = sum(1 for d in journals if not as_expected(d))
    total_time = sum(total_duration(d) for d in journals)
    root = ET.Element("testsuites", name=SUITE, tests=str(len(journals)), failures=str(failures),
                      errors="0", time=f"{total_time:.3f}")
    suite = ET.SubElement(root, "testsuite", name=SUITE, tests=str(len(journals)), failures=str(failures),
                          errors="0", skipped="0", time=f"{total_time:.3f}")
    if timestamp:
        suite.set("timestamp", redact(timestamp))
    if hostname:
        suite.set("hostname", redact(hostname))
    if run_id:
        props = ET.SubElement(suite, "properties")
        ET.SubElement(props, "property", name="run_id", value=redact(run_id))
    for d in journals:
        case = ET.SubElement(suite, "testcase", classname=SUITE, name=redact(str(d.get("scenario"))),
                             time=f"{total_duration(d):.3f}")
        props = ET.SubElement(case, "properties")
        for name in ("verdict", "expect", "time_to_detect_s", "time_to_recover_s"):
            value = d.get(name)
            ET.SubElement(props, "property", name=name, value="" if value is None else redact(str(value)))
        if skipped_steps(d):
            ET.SubElement(props, "property", name="skipped_steps", value=str(len(skipped_steps(d))))
        if d.get("risks"):
            kinds = ",".join(sorted({str(r.get("kind")) for r in d.get("risks") or []}))
            ET.SubElement(props, "property", name="risks", value=redact(kinds))
        for name, value in (d.get("objectives") or {}).items():
            ET.SubElement(props, "property", name=f"objective.{redact(name)}",
                          value="" if value is None else str(value))
        if not as_expected(d):
            fail = ET.SubElement(case, "failure", message=failure_message(d, redact), type=str(d.get("verdict")))
            fail.text = redact(_details(d))
        else:
            out = ET.SubElement(case, "system-out")
            out.text = redact(_details(d))
    _clean_tree(root, redact)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(journals: Sequence[Mapping[str, Any]], path: Path, redact: Redact, **kw: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_junit(journals, redact, **kw), encoding="utf-8")
    return path
