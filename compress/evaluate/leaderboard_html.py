"""The leaderboard as one static, self-contained HTML page (inline CSS, JS and SVG; works offline).

It holds the table (sortable, gate cells coloured, footnotes), one banner per unreliable lip-sync tier, a short
"how to read this", Pareto plots of lip sync against cost, and per-clip mouth-opening plots. It fits a 1280 px
window: cells hold short numbers, long text wraps, plots shrink to their grid cell.
"""

from __future__ import annotations

import html
from datetime import datetime, timezone

from compress.evaluate import plots
from compress.evaluate.leaderboard_table import Board, Cell, metric_value, provenance
from compress.evaluate.lipsync import LABELS

SYNC = (("tier_a.timing.zero_lag_corr", "A", "tier A r0 (zero-lag mouth correlation)"),
        ("tier_c.lse_c", "C", "tier C Sync-C (SyncNet LSE-C)"))
COSTS = (("cost.gmacs_per_frame", "GMACs per frame"), ("cost.bytes", "weight bytes"),
         ("cost.dit_forwards_per_clip", "DiT forwards per clip"), ("cost.wall_s_per_clip", "wall seconds per clip"))
HOW_TO_READ = (
    "Each row is one artifact, scored against the teacher's stored outputs on the suite's inputs; click a column "
    "header to sort. Cells hold numbers only: a [n] points to the footnote that says why a number is missing or "
    "doubtful. Lip sync comes in three tiers, never folded into one score: A compares mouth landmarks with the "
    "teacher's (lag in frames, 0 is best; r0, the zero-lag correlation of mouth opening, and gain, the articulation, "
    "1 is best), B uses a sync expert the toolkit trained, C the published SyncNet (LSE-C, its Sync-C confidence, "
    "higher is better; LSE-D lower is better). The gates column counts the suite's checks passed: green all pass, "
    "red some fail, yellow some could not be computed; the failing ones are listed under the table. The inputs "
    "column says whether the artifact trained on the clips it is scored on (held-out is the honest case). The "
    "Pareto plots ask how much lip sync each artifact keeps for what it costs: an artifact on the front is beaten "
    "on both axes by none other.")
DIT_FORWARDS = (
    "DiT forwards per clip: the sampling steps an S2V DiT artifact was generated with (the reference's, or the "
    "artifact's own: a few-step model's; the record's sampling says which), twice each with classifier-free "
    "guidance (guidance_scale > 1); a student or decoder that replaces part of the pipeline has no count and is "
    "left off that plot. Wall seconds per clip: each artifact's generation of every input, timed in the same "
    "evaluation. Only artifacts whose tier is computed (status ok) are plotted.")
STYLE = """*{box-sizing:border-box}body{font-family:sans-serif;margin:0;padding:1em 2em;line-height:1.4}
p,li{overflow-wrap:anywhere;max-width:75em}.wrap{overflow-x:auto}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;white-space:nowrap}
th{background:#f3f3f3;cursor:pointer;white-space:pre-line;vertical-align:bottom}
th[data-dir=asc]::after{content:" \\25B2"}th[data-dir=desc]::after{content:" \\25BC"}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.pass{background:#cdeccd}td.fail{background:#f6c6c6}td.partial{background:#fbeab0}td.none{background:#e6e6e6}
li.fail{color:#a00}.banner{border-left:5px solid #d98c00;background:#fff4dc;padding:.5em 1em;margin:.5em 0}
.plots{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,400px),1fr));gap:1em}
.plots svg{width:100%;height:auto}"""
SORT_JS = """document.querySelectorAll("#leaderboard th").forEach((th, i) => th.addEventListener("click", () => {
  const dir = th.dataset.dir === "asc" ? "desc" : "asc", sign = dir === "asc" ? 1 : -1;
  th.parentNode.querySelectorAll("th").forEach(h => delete h.dataset.dir);
  th.dataset.dir = dir;
  const body = document.querySelector("#leaderboard tbody"), text = th.dataset.type === "text";
  const rows = [...body.rows].sort((a, b) => {
    const x = a.cells[i], y = b.cells[i];
    if (text) return sign * x.textContent.localeCompare(y.textContent);
    const u = x.dataset.v === undefined, v = y.dataset.v === undefined;
    return u || v ? u - v : sign * (Number(x.dataset.v) - Number(y.dataset.v));  // no number: last either way
  });
  body.append(...rows);
}));
document.body.dataset.artifacts = String(document.querySelectorAll("#leaderboard tbody tr").length);"""


def html_page(board: Board) -> str:
    """The page for `board` (see the module docstring)."""
    e = html.escape
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{e(board.title)}</title><style>{STYLE}</style></head>
<body><h1>{e(board.title)}</h1><p>{e(provenance(board.records))} Generated {generated}.</p>
{_banners(board.records)}<h2>How to read this</h2><p>{e(HOW_TO_READ)}</p>
{_table(board)}
<h2>Pareto: lip sync against cost</h2><p>{e(DIT_FORWARDS)}</p><div class="plots" id="pareto">{_pareto(board)}</div>
<h2>Mouth opening per clip (tier A), student against teacher</h2>{_mouth_sections(board)}
<script>{SORT_JS}</script>
</body></html>
"""


def _table(board: Board) -> str:
    e, grid = html.escape, board.grid()
    head = "".join(f'<th data-type="{"text" if i < grid.identity else "num"}">{e(name)}</th>'
                   for i, name in enumerate(grid.header))
    rows = [f'<tr data-artifact="{e(record["id"])}">' + "".join(_td(c, i >= grid.identity) for i, c in enumerate(row))
            + "</tr>" for record, row in zip(board.records, grid.rows)]
    notes = "".join(f'<li id="note-{i}">[{i}] {e(text)}</li>' for i, text in enumerate(grid.notes, 1))
    gates = "".join(f'<li class="{"fail" if line.startswith("FAIL") else ""}">{e(line)}</li>'
                    for line in grid.gate_lines)
    return (f'<div class="wrap"><table id="leaderboard"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}'
            f'</tbody></table></div><ul id="notes">{notes}</ul><h2>Gates not passed</h2>'
            f'<ul id="gates">{gates or "<li>every gate passed</li>"}</ul><p>{e(grid.legend)}</p>')


def _td(cell: Cell, number: bool) -> str:
    """A cell: numbers right-aligned with their value for sorting, gate cells classed by verdict."""
    classes = " ".join(filter(None, ["num" if number else "", cell.state]))
    attributes = (f' class="{classes}"' if classes else "") + ("" if cell.value is None else f' data-v="{cell.value}"')
    return f"<td{attributes}>{html.escape(cell.text)}</td>"


def _banners(records: list[dict]) -> str:
    """One banner per tier that is unreliable for some artifact: which artifacts, and why."""
    out = []
    for tier, label in LABELS.items():
        unreliable = [r for r in records if r["tiers"][tier]["status"].startswith("unreliable")]
        if unreliable:
            names = ", ".join(r["artifact"]["name"] for r in unreliable)
            reasons = "; ".join(dict.fromkeys(r["tiers"][tier]["status"].removeprefix("unreliable: ")
                                              for r in unreliable))
            out.append(f'<div class="banner" data-tier="{tier}"><b>{html.escape(label)}</b> is unreliable for '
                       f"{len(unreliable)} of {len(records)} artifacts ({html.escape(names)}): "
                       f"{html.escape(reasons)}. Its numbers are shown but should not be trusted.</div>")
    return "".join(out)


def _pareto(board: Board) -> str:
    """Lip sync (tier A r0; tier C Sync-C where some record has it) against each cost, computed tiers only."""
    svgs = []
    for metric, tier, label in SYNC:
        computed = [r for r in board.records if r["tiers"][tier]["status"] == "ok"]
        if tier == "A" or any(metric_value(r, metric) is not None for r in computed):
            svgs += [plots.pareto_svg(computed, metric, cost, True, cost_label, label) for cost, cost_label in COSTS]
    return "".join(svgs)


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
