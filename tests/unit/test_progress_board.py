"""The live board of scenarios side by side: rows for the scenarios in flight, only in a terminal."""

from __future__ import annotations

import io
import re
import threading

import pytest
from rich.console import Console

from harness import parallel, progress


def _terminal(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120, markup=False, emoji=False, highlight=False)
    monkeypatch.setattr(progress, "console", console)
    return out


def test_the_board_shows_each_running_scenario_with_its_latest_line(monkeypatch: pytest.MonkeyPatch) -> None:
    _terminal(monkeypatch)
    seen: dict[str, str] = {}
    both_running = threading.Barrier(2, timeout=10)

    def work(name: str) -> None:
        progress.say(f"{name}: deploying [bold]not markup[/]")
        both_running.wait()  # both rows exist at once
        board = progress._board
        assert board is not None
        seen.update({n: str(text) for n, (_, text) in board.rows.items()})
        both_running.wait()

    parallel.run_all(["alpha", "beta"], 2, work, name=lambda n: n)
    assert seen == {"alpha": "alpha: deploying [bold]not markup[/]", "beta": "beta: deploying [bold]not markup[/]"}
    assert progress._board is None  # gone with the batch


def test_a_finished_scenario_leaves_the_board(monkeypatch: pytest.MonkeyPatch) -> None:
    _terminal(monkeypatch)
    with progress.live_board() as board:
        assert board is not None
        with progress.scenario_prefix("one"), progress.board_row("one"):
            progress.say("step 1")
            assert str(board.rows["one"][1]) == "step 1"
        assert "one" not in board.rows
        rendered = io.StringIO()
        Console(file=rendered, width=80).print(board.render())
        assert "one" not in rendered.getvalue()


def test_no_board_outside_a_terminal_or_for_one_job(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "console", Console(file=io.StringIO(), force_terminal=False))
    with progress.live_board() as board:
        assert board is None and progress._board is None
    _terminal(monkeypatch)
    with progress.live_board(enabled=False) as board:
        assert board is None
    seen: list[object] = []
    parallel.run_all(["solo"], 1, lambda _: seen.append(progress._board), name=str)
    assert seen == [None]


def test_lines_still_print_in_full_while_the_board_is_up(monkeypatch: pytest.MonkeyPatch) -> None:
    out = _terminal(monkeypatch)
    parallel.run_all(["a", "b"], 2, lambda n: progress.say(f"{n} says hello"), name=str)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())  # the terminal's colour and cursor codes
    assert "a │ a says hello" in text and "b │ b says hello" in text
