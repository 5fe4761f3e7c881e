"""The leaderboard: records of a directory as a rich table, Markdown, and a static self-contained HTML page.

Lip-sync tiers get a column each (their label and, when not computed, the reason); gates show pass / FAIL /
n/a per artifact. The HTML page adds Pareto plots (quality against latency and size) and per-clip mouth-opening
plots (student against teacher), all inline SVG.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from rich.table import Table

from compress.artifacts.card import flat_metrics, format_metric, human_bytes, human_count
from compress.errors import UserInputError
from compress.evaluate import plots
from compress.evaluate.lipsync import LABELS
from compress.evaluate.records import read_records

DEFAULT_COLUMNS = ("fidelity.frame_psnr", "fidelity.frame_ssim", "fidelity.latent_rel_error", "cost.parameters",
                   "cost.bytes", "cost.gmacs_per_frame", "cost.latency_ms_per_frame")
QUALITY = "fidelity.frame_psnr"
_TIER_FIELDS = {"A": (("timing.lag", "lag"), ("articulation.gain", "gain"), ("timing.zero_lag_corr", "r0")),
                "B": (("lse_d", "LSE-D"), ("lse_c", "LSE-C"), ("av_offset", "offset")),
                "C": (("lse_d", "LSE-D"), ("lse_c", "LSE-C"), ("av_offset", "offset"))}


@dataclass
class Board:
    records: list[dict]
    columns: list[str]
    title: str

    @classmethod
    def load(cls, directory: Path, suite: str | None = None, sort: str | None = None,
             descending: bool = False) -> "Board":
        records = read_records(directory, suite)
        if not records:
            raise UserInputError(f"no leaderboard records in {directory}" + (f" for suite '{suite}'" if suite else ""))
        return cls.of(sort_records(records, sort, descending) if sort else records)

    @classmethod
    def of(cls, records: list[dict]) -> "Board":
        """Columns: the metrics the records' suites list (default: fidelity and cost)."""
        columns = list(dict.fromkeys(c for r in records for c in r.get("suite_config", {}).get("metrics", [])))
        suites = sorted({r["suite"] for r in records})
        return cls(records, columns or list(DEFAULT_COLUMNS), f"leaderboard: suite {', '.join(suites)}")

    def header(self) -> list[str]:
        short = [c.removeprefix("fidelity.").removeprefix("cost.") for c in self.columns]
        return ["artifact", "kind", "suite", *short, *(f"tier {t}" for t in LABELS), "fit", "gates"]

    def rows(self) -> list[list[str]]:
        return [[r["artifact"]["name"], r["artifact"]["kind"], r["suite"],
                 *(metric_cell(r, c) for c in self.columns), *(tier_cell(r, t) for t in LABELS), fit_cell(r),
                 gates_cell(r)] for r in self.records]


def metric_value(record: dict, metric: str):
    value = flat_metrics(record["metrics"]).get(metric)
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) else None


def sort_records(records: list[dict], metric: str, descending: bool = False) -> list[dict]:
    """By `metric` (a flattened metric name); records without it go last."""
    if all(metric_value(r, metric) is None for r in records):
        known = sorted({k for r in records for k, v in flat_metrics(r["metrics"]).items()
                        if isinstance(v, (int, float)) and not isinstance(v, bool)})
        raise UserInputError(f"--sort {metric}: no record has this metric; known: {', '.join(known)}")
    present = [r for r in records if metric_value(r, metric) is not None]
    missing = [r for r in records if metric_value(r, metric) is None]
    return sorted(present, key=lambda r: metric_value(r, metric), reverse=descending) + missing


def metric_cell(record: dict, metric: str) -> str:
    value = metric_value(record, metric)
    if value is None:
        return "-"
    if metric.endswith("bytes"):
        return human_bytes(value)
    return human_count(value) if metric.endswith("parameters") else format_metric(value)


def tier_cell(record: dict, tier: str) -> str:
    status = record["tiers"][tier]["status"]
    if status != "ok":
        return status
    metrics = flat_metrics(record["metrics"].get(f"tier_{tier.lower()}", {}))
    return ", ".join(f"{label} {format_metric(metrics[key])}" for key, label in _TIER_FIELDS[tier]
                     if metrics.get(key) is not None)


def fit_cell(record: dict) -> str:
    fit = record["metrics"].get("cost", {}).get("fit") or {}
    if fit.get("status") != "ok":
        return fit.get("status", "-")
    return ", ".join(f"{t} {'yes' if p['fits'] else 'no'}" for t, p in fit["targets"].items())


def gates_cell(record: dict) -> str:
    gates = record["gates"]
    if not gates:
        return "-"
    failed = [g["name"] for g in gates if g["passed"] is False]
    unknown = [g["name"] for g in gates if g["passed"] is None]
    if not failed and len(unknown) == len(gates):
        return f"n/a: {', '.join(unknown)}"  # nothing was computed: no verdict either way
    text = f"FAIL: {', '.join(failed)}" if failed else "pass"
    return text + (f" (n/a: {', '.join(unknown)})" if unknown else "")


def rich_table(board: Board) -> Table:
    table = Table(title=board.title)
    for column in board.header():
        table.add_column(column, overflow="fold")
    for row in board.rows():
        table.add_row(*(_rich_gate(cell) for cell in row))
    return table


def _rich_gate(cell: str) -> str:
    from rich.markup import escape

    if cell.startswith("FAIL"):
        return f"[bold red]{escape(cell)}[/]"
    return f"[green]{escape(cell)}[/]" if cell.startswith("pass") else escape(cell)


def markdown(board: Board) -> str:
    def line(cells):
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    lines = [f"# {board.title}", "", _provenance(board), "", line(board.header()), line(["---"] * len(board.header())),
             *(line(row) for row in board.rows()), "", "## Gates", ""]
    for record in board.records:
        lines.append(f"- **{record['artifact']['name']}** ({record['id']}): " + (
            "; ".join(f"{g['name']} {g['bound']}: {_gate_word(g)}"
                      + ("" if g["value"] is None else f" ({format_metric(g['value'])})") for g in record["gates"])
            or "no gates"))
    return "\n".join(lines) + "\n"


def _gate_word(gate: dict) -> str:
    return {True: "pass", False: "FAIL", None: "n/a (not computed)"}[gate["passed"]]


def _provenance(board: Board) -> str:
    devices = sorted({str(r["metrics"].get("cost", {}).get("latency_device")) for r in board.records})
    return (f"{len(board.records)} artifacts. Lip sync in three tiers, each on its own: "
            f"{'; '.join(LABELS.values())}. Latency measured on: {', '.join(devices)}. "
            f"Fit: the memory planner's analytic per-GPU verdict.")


def html_page(board: Board, quality: str = QUALITY) -> str:
    """A static page: the table, gates, Pareto plots and per-clip mouth-opening plots, inline SVG only."""
    e = html.escape
    head = "".join(f"<th>{e(c)}</th>" for c in board.header())
    body = "".join(f'<tr data-artifact="{e(r["id"])}">' + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>"
                   for r, row in zip(board.records, board.rows()))
    gates = "".join(f"<li><b>{e(r['artifact']['name'])}</b> ({e(r['id'])}): "
                    + (e("; ".join(f"{g['name']} {g['bound']}: {_gate_word(g)}" for g in r["gates"])) or "no gates")
                    + "</li>" for r in board.records)
    higher = "psnr" in quality or "ssim" in quality or "corr" in quality
    pareto = (plots.pareto_svg(board.records, quality, "cost.latency_ms_per_frame", higher, "latency (ms per frame)")
              + plots.pareto_svg(board.records, quality, "cost.bytes", higher, "weights (bytes)"))
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(board.title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:4px 6px;vertical-align:top}}th{{background:#f3f3f3}}
.plots svg{{max-width:48%;height:auto}}</style></head>
<body><h1>{e(board.title)}</h1><p>{e(_provenance(board))} Generated {generated}.</p>
<table id="leaderboard"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
<h2>Gates</h2><ul id="gates">{gates}</ul>
<h2>Pareto: {e(quality)} against latency and size</h2><div class="plots" id="pareto">{pareto}</div>
<h2>Mouth opening per clip (tier A), student against teacher</h2>{_mouth_sections(board)}
<script>document.body.dataset.artifacts = String(document.querySelectorAll("#leaderboard tbody tr").length);</script>
</body></html>
"""


def _mouth_sections(board: Board) -> str:
    e = html.escape
    parts = []
    for record in board.records:
        items = []
        for clip in record.get("clips", []):
            series = (clip.get("tier_a") or {}).get("series") or {}
            if any(v is not None for v in series.get("teacher") or []):
                items.append(plots.mouth_svg(clip["id"], series))
            else:
                items.append(f"<p>clip {e(str(clip['id']))}: no mouth-opening series "
                             f"({e(record['tiers']['A']['status'])})</p>")
        parts.append(f'<h3>{e(record["artifact"]["name"])}</h3><div class="plots">{"".join(items) or "<p>no clips</p>"}'
                     f"</div>")
    return "".join(parts)


def write_outputs(board: Board, markdown_path: Path | None = None, html_path: Path | None = None) -> list[Path]:
    written = []
    for path, render in ((markdown_path, markdown), (html_path, html_page)):
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(render(board))
            written.append(Path(path))
    return written
