"""One bash per runbook section, fed one complete command at a time: a person's terminal, recorded.

Design (docs/ARCHITECTURE.md, "Runbook execution"):

- `bash --noprofile --norc -o pipefail /dev/fd/N` in its own session and process group reads its
  script from a pipe only the harness writes (bash keeps it on fd 255, close-on-exec, and the first
  line closes N), so no command can read the next commands. Variables, `cd`, functions and shell
  options carry over from one command to the next, as in a terminal.
- Each command is sent as `eval -- '<command>'` followed by a `printf` of a marker with a fresh random
  nonce and `$?`: the marker ends the command's output and carries its exit code. A command cannot
  print a marker it does not know, and a syntax error in it fails that `eval` (exit 2) instead of
  swallowing the marker.
- stdout and stderr share one pipe (in order, as on a screen); stdin is a pseudo-terminal without
  echo that is nobody's controlling terminal: `read -p` shows its prompt, and a command that reads
  stdin waits for input the way it would for a person instead of reading the next command or EOF.
- A command is waiting for input when its output has been idle for IDLE_S and a process of the
  session is blocked in read(2) on that terminal for CONFIRM_S more (/proc/<pid>/syscall). It then
  gets the next answer that fits (by runbook line or by prompt text) or the session is ended and the
  step fails as `waiting_for_input`, within a few seconds instead of at the step timeout.
- A timeout, Ctrl-C or SIGTERM ends the whole process group (SIGTERM, SIGKILL after a grace), and
  with it the session; so does `close()`, so a background child of a command never outlives the
  section. A command that ends the shell (`exit`, `set -e` then a failure, `exec`) fails: the
  session is gone and later commands cannot run in it.
"""

from __future__ import annotations

import os
import platform
import re
import secrets
import select
import shlex
import signal
import stat
import subprocess
import termios
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Protocol

from harness.runbook_commands import Step, StepResult, split_commands
from harness.teardown import check_stop

IDLE_S = 0.5      # no output for this long before looking for a reader of stdin
CONFIRM_S = 0.5   # and still blocked reading it this much later: waiting for input
POLL_S = 0.1
KILL_GRACE_S = 5.0
# read(2) and friends, by machine: the syscall numbers /proc/<pid>/syscall shows first.
READ_SYSCALLS: dict[str, frozenset[int]] = {
    "x86_64": frozenset({0, 17, 19}),      # read, pread64, readv
    "aarch64": frozenset({63, 65, 67}),    # read, readv, pread64
}.get(platform.machine(), frozenset())  # type: ignore[assignment]


class Answer(Protocol):
    """One declared answer (harness.scenario.models.Answer): for a command at `line`, a prompt matching
    `prompt`, or both."""

    line: int | None
    prompt: str | None
    answer: str


def answer_fits(a: Answer, step: Step, last_line: str) -> bool:
    """Whether answer `a` is for this step's prompt: its line is one of the command's lines, and its
    prompt is in the last output line as text or matches it as a regular expression."""
    if a.line is not None and not step.line <= a.line <= step.line + step.command.count("\n"):
        return False
    if a.prompt is None:
        return True
    if a.prompt in last_line:
        return True
    try:
        return re.search(a.prompt, last_line) is not None
    except re.error:
        return False


class _Pump(threading.Thread):
    """Reads the output pipe and the terminal's master side into one buffer, as a screen would show them."""

    def __init__(self, fds: Sequence[int]) -> None:
        super().__init__(daemon=True, name="runbook-output")
        self.fds = list(fds)
        self.buf = bytearray()
        self.cond = threading.Condition()
        self.last = time.monotonic()  # last output (or answer) seen
        self._wake_r, self._wake_w = os.pipe()

    def run(self) -> None:
        fds = set(self.fds)
        while fds:
            ready, _, _ = select.select([*fds, self._wake_r], [], [])
            if self._wake_r in ready:
                return
            for fd in ready:
                try:
                    data = os.read(fd, 65536)
                except OSError:  # EIO from the master once no process holds the terminal
                    data = b""
                if not data:
                    fds.discard(fd)
                    continue
                with self.cond:
                    self.buf += data
                    self.last = time.monotonic()
                    self.cond.notify_all()

    def stop(self) -> None:
        os.write(self._wake_w, b"x")
        self.join(timeout=5)
        os.close(self._wake_r)
        os.close(self._wake_w)


def _members(field: int, value: int) -> list[int]:
    """Processes whose /proc stat field (after the name: 2 = process group, 3 = session) is `value`,
    zombies left out: a killed child waits there until its new parent reaps it, it is already gone."""
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            fields = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > field and fields[field] == str(value) and fields[0] != "Z":
            pids.append(int(name))
    return pids


def _session_pids(sid: int) -> list[int]:
    """Processes of the session `sid` (the session's bash and everything it started)."""
    return _members(3, sid)


def _reads_fd_of(pid: int, rdev: int) -> bool:
    """Whether `pid` is blocked in read(2) on a file descriptor that is the terminal device `rdev`."""
    try:
        fields = Path(f"/proc/{pid}/syscall").read_text().split()
        if len(fields) < 2 or not fields[0].isdigit() or int(fields[0]) not in READ_SYSCALLS:
            return False
        st = os.stat(f"/proc/{pid}/fd/{int(fields[1], 16)}")
    except (OSError, ValueError):
        return False
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == rdev


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return bool(_members(2, pgid))


def kill_group(proc: subprocess.Popen[bytes], grace_s: float = KILL_GRACE_S) -> None:
    """A hanging step may have children (kubectl, docker, `sleep 300 &`): end the whole group. SIGTERM
    first, so they can clean up; then SIGKILL for any of the group still there after GRACE_S, also
    when bash itself is already gone (a child that ignores SIGTERM would otherwise outlive the step)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        proc.wait()
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and _group_alive(proc.pid):
        try:
            proc.wait(timeout=0.05)  # reaps bash, so it stops counting as a member
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


class ShellSession:
    """One bash for a list of commands; `run(step, timeout_s)` runs one and returns its own result."""

    def __init__(self, env: Mapping[str, str], cwd: Path, answers: Sequence[Answer] = ()) -> None:
        self.env, self.cwd, self.answers = dict(env), cwd, list(answers)
        self._used: set[int] = set()   # answers with a line are given once
        self._pos = 0                   # output before it belongs to earlier commands
        self._proc: subprocess.Popen[bytes] | None = None
        self.ended = False

    def __enter__(self) -> ShellSession:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def start(self) -> None:
        ctl_r, self._ctl = os.pipe()
        out_r, out_w = os.pipe()
        self._master, slave = os.openpty()
        attrs = termios.tcgetattr(slave)
        attrs[3] &= ~termios.ECHO  # an answer is typed, not shown: the output stays the commands' own
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        self._tty = os.fstat(slave).st_rdev
        try:
            self._proc = subprocess.Popen(
                ["bash", "--noprofile", "--norc", "-o", "pipefail", f"/dev/fd/{ctl_r}"],
                cwd=self.cwd, env=self.env, stdin=slave, stdout=out_w, stderr=out_w,
                pass_fds=(ctl_r,), start_new_session=True)
        finally:
            for fd in (ctl_r, out_w, slave):
                os.close(fd)
        self._out = out_r
        self._pump = _Pump([out_r, self._master])
        self._pump.start()
        self._send(f"exec {ctl_r}<&-\n")  # bash reads its script on fd 255 (close-on-exec); no command sees it

    def _send(self, text: str) -> bool:
        data = text.encode()
        try:
            while data:
                data = data[os.write(self._ctl, data):]
        except BrokenPipeError:  # bash is gone
            return False
        return True

    def run(self, step: Step, timeout_s: float) -> StepResult:
        """Run one command in the session; its output, exit code and duration are its own."""
        t0 = time.monotonic()
        if self.ended or self._proc is None:
            return StepResult(step, None, 0.0, "the shell session had already ended\n", False, ended_session=True)
        nonce = secrets.token_hex(16)
        try:
            self._send(f"eval -- {shlex.quote(step.command + chr(10))}\n"
                       f"builtin printf '\\0rr-{nonce}:%d\\0' \"$?\"\n")
            return self._wait(step, f"\0rr-{nonce}:".encode(), t0, timeout_s)
        except BaseException:
            self._end()  # Ctrl-C, SIGTERM: never leave a runbook command running
            raise

    def _wait(self, step: Step, marker: bytes, t0: float, timeout_s: float) -> StepResult:
        assert self._proc is not None
        pump, blocked_since = self._pump, None
        while True:
            with pump.cond:
                found = self._take(marker)
                if found is None:
                    pump.cond.wait(POLL_S)
                    found = self._take(marker)
            if found is not None:
                return StepResult(step, found[0], time.monotonic() - t0, found[1], False)
            check_stop()  # a worker of a stopped session (`-j N`): `run` ends the group, as on Ctrl-C
            now = time.monotonic()
            if self._proc.poll() is not None:
                self.ended = True
                time.sleep(0.05)  # the last output on its way through the pump
                return StepResult(step, self._proc.returncode, now - t0, self._rest(), False, ended_session=True)
            if now - t0 >= timeout_s:
                self._end()
                return StepResult(step, None, time.monotonic() - t0, self._rest(), True)
            if now - pump.last < IDLE_S or not self._reading_stdin():
                blocked_since = None
            elif blocked_since is None:
                blocked_since = now
            elif now - blocked_since >= CONFIRM_S:
                blocked_since = None
                if not self._answer(step):
                    self._end()
                    return StepResult(step, None, time.monotonic() - t0, self._rest(), False, waiting_for_input=True)

    def _take(self, marker: bytes) -> tuple[int, str] | None:
        """(exit code, output) once the command's marker is complete in the buffer (lock held)."""
        buf = self._pump.buf
        at = buf.find(marker, self._pos)
        end = buf.find(b"\0", at + len(marker)) if at >= 0 else -1
        if end < 0:
            return None
        code, out = int(buf[at + len(marker):end]), bytes(buf[self._pos:at])
        self._pos = end + 1
        return code, out.decode(errors="replace")

    def _rest(self) -> str:
        with self._pump.cond:
            out, self._pos = bytes(self._pump.buf[self._pos:]), len(self._pump.buf)
        return out.decode(errors="replace")

    def _reading_stdin(self) -> bool:
        assert self._proc is not None
        return any(_reads_fd_of(pid, self._tty) for pid in _session_pids(self._proc.pid))

    def _answer(self, step: Step) -> bool:
        """Type the first declared answer that fits the prompt; False when none does."""
        with self._pump.cond:
            shown = bytes(self._pump.buf[self._pos:]).decode(errors="replace")
        last = (shown.strip().splitlines() or [""])[-1].strip()
        for i, a in enumerate(self.answers):
            if i in self._used or not answer_fits(a, step, last):
                continue
            if a.line is not None:
                self._used.add(i)
            os.write(self._master, (a.answer + "\n").encode())
            with self._pump.cond:
                self._pump.last = time.monotonic()  # give the command time to read it
            return True
        return False

    def _end(self) -> None:
        """End the session's whole process group."""
        self.ended = True
        if self._proc is not None:
            kill_group(self._proc)

    def close(self) -> None:
        """End the session: bash reads EOF, and whatever a command left running in the background ends."""
        if self._proc is None:
            return
        try:
            os.close(self._ctl)
            try:
                self._proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
            self._end()
        finally:
            self._pump.stop()
            os.close(self._master)
            os.close(self._out)
            self._proc = None


def run_steps(steps: Sequence[Step], env: Mapping[str, str], cwd: Path, timeout_s: float,
              on_step: Callable[[StepResult], None] | None = None,
              answers: Sequence[Answer] = ()) -> list[StepResult]:
    """Run steps in order in one session; like a person following the runbook, stop at the first failure."""
    results: list[StepResult] = []
    with ShellSession(env, cwd, answers) as shell:
        for step in steps:
            res = shell.run(step, timeout_s)
            results.append(res)
            if on_step:
                on_step(res)
            if not res.ok:
                break
    return results


def run_step(step: Step, env: Mapping[str, str], cwd: Path, timeout_s: float) -> StepResult:
    """One command in a session of its own."""
    return run_steps([step], env, cwd, timeout_s)[0]


def run_commands(command: str, env: Mapping[str, str], cwd: Path, timeout_s: float) -> StepResult:
    """A scenario's own command list (a host migration, `pre_release`, a ladder's command), the way a runbook
    section runs: one session (pipefail, its own process group, killed as a group on timeout or interrupt, so
    a background child never outlives it), the commands cut where bash ends them and run in order until one
    fails. `timeout_s` bounds the whole list; the result is the list's (its output, the last exit code)."""
    steps = [Step(index=i, command=c, line=n) for i, (c, n) in enumerate(split_commands(command, 1), 1)]
    whole = Step(index=0, command=command, line=0)
    t0 = time.monotonic()
    deadline = t0 + timeout_s
    outputs: list[str] = []
    res = StepResult(whole, 0, 0.0, "", False)
    with ShellSession(env, cwd) as shell:
        for step in steps:
            res = shell.run(step, max(deadline - time.monotonic(), 0.001))
            outputs.append(res.output)
            if not res.ok:
                break
    return replace(res, step=whole, output="".join(outputs), duration_s=time.monotonic() - t0)
