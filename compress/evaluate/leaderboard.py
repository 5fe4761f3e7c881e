"""The leaderboard: the records of a directory as a terminal table, Markdown, and a static self-contained HTML page.

The table model is `leaderboard_table` (numbers only in cells, reasons as footnotes, gates as pass counts), rendered
by `leaderboard_terminal` (rich, fits 120 columns), here (Markdown) and `leaderboard_html` (sortable table, Pareto
plots of lip sync against cost, per-clip mouth-opening plots).
"""

from __future__ import annotations

from pathlib import Path

from compress.evaluate.leaderboard_html import html_page
from compress.evaluate.leaderboard_table import Board, provenance, sort_records
from compress.evaluate.leaderboard_terminal import rich_table

__all__ = ["Board", "html_page", "markdown", "rich_table", "sort_records", "write_outputs"]


def markdown(board: Board) -> str:
    """The terminal's layout as Markdown (artifact kind and suite as columns too), footnotes and gates below."""
    grid = board.grid()

    def line(cells):
        return "| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in cells) + " |"

    lines = [f"# {board.title}", "", provenance(board.records), "", line(grid.header),
             line(["---"] * len(grid.header)), *(line(c.text for c in row) for row in grid.rows), ""]
    lines += [f"- [{i}] {text}" for i, text in enumerate(grid.notes, 1)] + [""] if grid.notes else []
    lines += [f"- {text}" for text in grid.gate_lines] + [""] if grid.gate_lines else []
    return "\n".join([*lines, grid.legend]) + "\n"


def write_outputs(board: Board, markdown_path: Path | None = None, html_path: Path | None = None) -> list[Path]:
    written = []
    for path, render in ((markdown_path, markdown), (html_path, html_page)):
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(render(board))
            written.append(Path(path))
    return written
