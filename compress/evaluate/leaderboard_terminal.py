"""The leaderboard in a terminal: one line per artifact (numbers only), then footnotes, gates and a legend."""

from __future__ import annotations

from rich import box
from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from compress.evaluate.leaderboard_table import Board

GATE_STYLES = {"pass": "green", "fail": "bold red", "partial": "yellow", "none": "dim"}


def rich_table(board: Board) -> Group:
    """The table, its numbered footnotes, the failing and not computed gates, and a legend, as one renderable."""
    several = len({r["suite"] for r in board.records}) > 1  # one suite: the title names it
    identity = ("artifact", "suite", "inputs") if several else ("artifact", "inputs")
    grid = board.grid(identity)
    table = Table(title=board.title, box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 0), show_edge=False)
    for index, name in enumerate(grid.header):
        table.add_column(Text(name), no_wrap=True, justify="left" if index < grid.identity else "right")
    for row in grid.rows:
        table.add_row(*(Text(c.text, style=GATE_STYLES.get(c.state, "")) for c in row))
    notes = [f"[{i}] {escape(text)}" for i, text in enumerate(grid.notes, 1)]
    gates = [f"[{'bold red' if line.startswith('FAIL') else 'dim'}]{escape(line)}[/]" for line in grid.gate_lines]
    return Group(table, *(Text.from_markup(line) for line in [*notes, *gates]), Text(grid.legend, style="dim"))
