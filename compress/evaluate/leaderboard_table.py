"""The leaderboard's table model, shared by the terminal, Markdown and HTML renderings.

Cells hold numbers only. A reason a number is missing or doubtful (a tier "not computed: ..." or "unreliable:
...", a fit not planned) becomes a numbered footnote, shown once however many rows share it: in the column
header when every row shares it, else as `[n]` in the row's first cell of that group. Gates show as a pass count
("3/5"); each failing or not computed gate is listed once below the table with the artifacts it concerns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from compress.artifacts.card import flat_metrics, format_metric
from compress.errors import UserInputError
from compress.evaluate.lipsync import LABELS
from compress.evaluate.records import read_records

DEFAULT_COLUMNS = ("fidelity.frame_psnr", "fidelity.frame_ssim", "fidelity.latent_rel_error", "cost.bytes",
                   "cost.gmacs_per_frame", "cost.dit_forwards_per_clip", "cost.wall_s_per_clip")
TIER_FIELDS = {"A": (("timing.lag", "lag"), ("timing.zero_lag_corr", "r0"), ("articulation.gain", "gain")),
               "B": (("lse_d", "LSE-D"), ("lse_c", "LSE-C"), ("av_offset", "off")),
               "C": (("lse_d", "LSE-D"), ("lse_c", "LSE-C"), ("av_offset", "off"))}
TIER_COLUMNS = tuple(f"tier_{t.lower()}.{key}" for t, fields in TIER_FIELDS.items() for key, _ in fields)
HEADERS = {"fidelity.frame_psnr": "PSNR", "fidelity.frame_ssim": "SSIM", "fidelity.latent_rel_error": "lat.err",
           "cost.parameters": "params", "cost.bytes": "bytes", "cost.gmacs_per_frame": "GMAC",
           "cost.latency_ms_per_frame": "ms/f", "cost.dit_forwards_per_clip": "DiT\nfw", "cost.wall_s_per_clip": "s/clip",
           "cost.dit_s_per_clip": "DiT\ns/clip",
           **{f"tier_{t.lower()}.{key}": f"{t}\n{label}" for t, fields in TIER_FIELDS.items() for key, label in fields}}
LEGEND = ("PSNR, SSIM: frames against the teacher's; lat.err: latent relative error; GMAC: multiply-accumulates "
          "per frame; ms/f: latency per frame; DiT fw: DiT forwards per clip (sampling steps, twice each with "
          "guidance); s/clip: generation wall time per clip (DiT s/clip: of it in the DiT); A: mouth landmarks "
          "against the teacher (lag in frames, r0 zero-lag correlation, gain articulation); B: the toolkit's sync "
          "expert, C: published SyncNet (LSE-D lower is better, LSE-C higher, offset in frames); fit: GPUs of "
          "{targets} the memory planner predicts it fits; gates: passed of all")
#: the text columns; inputs: whether the artifact trained on the clips it is scored on (held-out, seen, partly
#: seen; records from before this was recorded: unknown)
IDENTITY = {"artifact": lambda r: r["artifact"]["name"], "kind": lambda r: r["artifact"]["kind"],
            "suite": lambda r: r["suite"], "inputs": lambda r: r.get("inputs", {}).get("status", "unknown")}


@dataclass
class Cell:
    """A cell's text; `value` for sorting; `state` for gates: pass, fail, partial (some not computed) or none."""

    text: str
    value: float | None = None
    state: str | None = None


@dataclass
class Grid:
    """The table: `identity` text columns (artifact, ...) first, then number columns."""

    identity: int
    header: list[str]
    rows: list[list[Cell]]
    notes: list[str]
    gate_lines: list[str]
    legend: str


@dataclass
class Notes:
    """Footnote texts, numbered from 1 in order of first use; the same text is one footnote."""

    texts: list[str] = field(default_factory=list)

    def mark(self, text: str) -> str:
        if text not in self.texts:
            self.texts.append(text)
        return f"[{self.texts.index(text) + 1}]"


def number(value) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return value if ok else None


def metric_value(record: dict, metric: str):
    return number(flat_metrics(record["metrics"]).get(metric))


def known_metrics(records: list[dict]) -> list[str]:
    """Every numeric (flattened) metric name of `records`."""
    return sorted({k for r in records for k, v in flat_metrics(r["metrics"]).items() if number(v) is not None})


def sort_records(records: list[dict], metric: str, descending: bool = False) -> list[dict]:
    """By `metric` (a flattened metric name); records without it go last."""
    if all(metric_value(r, metric) is None for r in records):
        raise UserInputError(f"--sort {metric}: no record has this metric; known: {', '.join(known_metrics(records))}")
    present = [r for r in records if metric_value(r, metric) is not None]
    missing = [r for r in records if metric_value(r, metric) is None]
    return sorted(present, key=lambda r: metric_value(r, metric), reverse=descending) + missing


def compact(metric: str, value) -> str:
    """A short number: 3 significant digits; bytes and parameter counts with a unit."""
    if value is None:
        return "-"
    for suffix, units in (("bytes", ("B", "KB", "MB", "GB", "TB")), ("parameters", ("", "K", "M", "B", "T"))):
        if metric.endswith(suffix):
            scale = min(int(math.log10(abs(value)) // 3), 4) if abs(value) >= 1 else 0
            return f"{value / 1000 ** scale:.3g}{units[scale]}"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def tier_of(metric: str) -> str | None:
    return metric[5].upper() if metric in TIER_COLUMNS else None


def tier_note(record: dict, tier: str) -> str | None:
    status = record["tiers"][tier]["status"]
    return None if status == "ok" else f"tier {tier} {status}"


def fit_cell(record: dict, notes: Notes) -> Cell:
    fit = record["metrics"].get("cost", {}).get("fit") or {}
    if fit.get("status") != "ok":
        return Cell("-" + notes.mark(f"fit {fit.get('status', 'not planned')}"))
    fits = sum(bool(t["fits"]) for t in fit["targets"].values())
    return Cell(f"{fits}/{len(fit['targets'])}", fits)


def fit_targets(records: list[dict]) -> list[str]:
    return sorted({t for r in records for t in (r["metrics"].get("cost", {}).get("fit") or {}).get("targets", {})})


def gates_cell(record: dict) -> Cell:
    gates = record["gates"]
    if not gates:
        return Cell("-")
    passed = sum(g["passed"] is True for g in gates)
    failed, unknown = (any(g["passed"] is verdict for g in gates) for verdict in (False, None))
    state = "fail" if failed else "pass" if not unknown else "partial" if passed else "none"
    return Cell(f"{passed}/{len(gates)}", passed, state)


def gate_lines(records: list[dict]) -> list[str]:
    """One line per failing gate ("FAIL: name bound: artifact (value), ...") then per gate not computed."""
    lines = []
    for verdict, word in ((False, "FAIL"), (None, "not computed")):
        concerned: dict[str, list[str]] = {}
        for record in records:
            for gate in record["gates"]:
                if gate["passed"] is verdict:
                    value = "" if gate["value"] is None else f" ({format_metric(gate['value'])})"
                    concerned.setdefault(f"{gate['name']} {gate['bound']}", []).append(
                        record["artifact"]["name"] + value)
        lines += [f"{word}: {gate}: {', '.join(names)}" for gate, names in concerned.items()]
    return lines


@dataclass
class Board:
    records: list[dict]
    columns: list[str]
    title: str

    @classmethod
    def load(cls, directory: Path, suite: str | None = None, sort: str | None = None, descending: bool = False,
             columns: list[str] | None = None) -> "Board":
        records = read_records(directory, suite)
        if not records:
            raise UserInputError(f"no leaderboard records in {directory}" + (f" for suite '{suite}'" if suite else ""))
        return cls.of(sort_records(records, sort, descending) if sort else records, columns)

    @classmethod
    def of(cls, records: list[dict], columns: list[str] | None = None) -> "Board":
        """Columns: `columns`, else the metrics the records' suites list (default: fidelity and cost) and the tiers'."""
        valid = sorted({*known_metrics(records), *TIER_COLUMNS})
        if columns and set(columns) - set(valid):
            raise UserInputError(f"--columns {', '.join(c for c in columns if c not in valid)}: not a metric of these "
                                 f"records; valid: {', '.join(valid)}")
        if not columns:
            listed = [c for r in records for c in r.get("suite_config", {}).get("metrics", [])]
            columns = list(dict.fromkeys(listed or DEFAULT_COLUMNS)) + list(TIER_COLUMNS)
        suites = sorted({r["suite"] for r in records})
        return cls(records, list(dict.fromkeys(columns)), f"leaderboard: suite {', '.join(suites)} "
                                                          f"({len(records)} artifact{'s' * (len(records) != 1)})")

    def empty_tiers(self) -> set[str]:
        """Tiers with columns but no number in any record."""
        return {t for t in TIER_FIELDS if all(metric_value(r, c) is None for r in self.records
                                              for c in self.columns if tier_of(c) == t)}

    def shown_columns(self) -> list[str]:
        """The columns, less a tier's columns beyond its first when no record has a number for that tier."""
        empty, shown, seen = self.empty_tiers(), [], set()
        for column in self.columns:
            if tier_of(column) not in empty or tier_of(column) not in seen:
                shown.append(column)
                seen.add(tier_of(column))
        return shown

    def grid(self, identity: tuple[str, ...] = tuple(IDENTITY)) -> Grid:
        """Header, rows of cells (the `identity` columns first), footnotes and gate lines."""
        notes, columns, empty = Notes(), self.shown_columns(), self.empty_tiers()
        # a tier's note goes on its first column: in the header when every record shares it, else in the cells
        shared = {t: self._shared_note(t) for t in TIER_FIELDS}
        firsts = set({tier_of(c): c for c in reversed(columns) if tier_of(c)}.values())
        header = list(identity)
        for column in columns:
            tier = tier_of(column)
            mark = notes.mark(shared[tier]) if column in firsts and shared[tier] else ""
            name = tier if tier in empty else HEADERS.get(column, column.rsplit(".", 1)[-1])
            header.append(name.replace("\n", mark + "\n") if "\n" in name else name + mark)
        rows = []
        for record in self.records:
            row = [Cell(IDENTITY[name](record)) for name in identity]
            for column in columns:
                tier, value = tier_of(column), metric_value(record, column)
                note = tier_note(record, tier) if column in firsts and not shared[tier] else None
                row.append(Cell(compact(column, value) + (notes.mark(note) if note else ""), value))
            rows.append([*row, fit_cell(record, notes), gates_cell(record)])
        return Grid(len(identity), [*header, "fit", "gates"], rows, notes.texts, gate_lines(self.records),
                    LEGEND.format(targets=", ".join(fit_targets(self.records)) or "none"))

    def _shared_note(self, tier: str) -> str | None:
        """The tier's note when every record has the same one."""
        found = {tier_note(r, tier) for r in self.records}
        return found.pop() if len(found) == 1 else None


def provenance(records: list[dict]) -> str:
    devices = sorted({str(r["metrics"].get("cost", {}).get("latency_device")) for r in records})
    return (f"{len(records)} artifacts. Lip sync in three tiers, each on its own: {'; '.join(LABELS.values())}. "
            f"Latency measured on: {', '.join(devices)}. Fit: the memory planner's analytic per-GPU verdict.")
