"""Leaderboard records: one JSON file per evaluation of an artifact under a suite.

A record is named `SUITE--ARTIFACT_ID--DATE.json` (ARTIFACT_ID = name + the first 12 hex digits of the artifact's
hash). Evaluating the same artifact under the same suite again adds a newer record; the leaderboard shows the
newest per (artifact id, suite) and keeps the older ones as history. `replace=True` deletes the older ones.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

from compress.errors import UserInputError
from compress.utils.environment import environment

FORMAT = "compress-eval-record/1"
REQUIRED = ("format", "id", "suite", "artifact", "metrics", "tiers", "gates", "date")


def artifact_id(artifact: dict) -> str:
    return f"{artifact['name']}-{artifact['hash'][:12]}"


def make_record(result: dict, suite_config: dict) -> dict:
    """The leaderboard record of one `evaluate_artifact` result; `inputs` (whether the artifact's lineage saw the
    evaluated clips: `compress.evaluate.report.checked_inputs`) and `sampling` (how an S2V DiT was sampled) when the
    result has them."""
    artifact = {k: v for k, v in result["artifact"].items() if k != "lineage"}
    env = environment()
    optional = {k: result[k] for k in ("inputs", "sampling") if k in result}
    return {"format": FORMAT, "id": artifact_id(artifact), "suite": result["suite"], "suite_config": suite_config,
            "artifact": artifact, "lineage": result["artifact"]["lineage"], "reference": result["reference"],
            "metrics": result["metrics"], "tiers": result["tiers"], "gates": result["gates"], "clips": result["clips"],
            "packages": env["packages"], "git_revision": env["git_revision"],
            "date": datetime.now(timezone.utc).isoformat(timespec="microseconds"), **optional}


def write_record(record: dict, directory: Path, replace: bool = False) -> Path:
    """Add `record` to `directory` (atomically); with `replace`, older records of its (id, suite) go."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.fromisoformat(record["date"]).strftime("%Y%m%dT%H%M%S%fZ")
    path = directory / f"{record['suite']}--{record['id']}--{stamp}.json"
    older = list(directory.glob(f"{record['suite']}--{record['id']}--*.json")) if replace else []
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(record, indent=1, sort_keys=True, default=str) + "\n")
    tmp.rename(path)
    for old in older:
        old.unlink(missing_ok=True)
    return path


def read_record(path: Path) -> dict:
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise UserInputError(f"{path}: not a readable leaderboard record ({err})") from None
    missing = [k for k in REQUIRED if not isinstance(record, dict) or k not in record]
    if missing or record.get("format") != FORMAT:
        raise UserInputError(f"{path}: not a {FORMAT} record (missing or wrong: {', '.join(missing) or 'format'})")
    return record


def read_records(directory: Path, suite: str | None = None, history: bool = False) -> list[dict]:
    """The records in `directory` (of one suite if given): the newest per (id, suite), or all with `history`."""
    directory = Path(directory)
    if not directory.is_dir():
        raise UserInputError(f"leaderboard directory not found: {directory}")
    records = [read_record(p) for p in sorted(directory.glob("*--*--*.json"))]
    records = [r for r in records if suite is None or r["suite"] == suite]
    if history:
        return records
    newest: dict[tuple, dict] = {}
    for record in sorted(records, key=lambda r: r["date"]):
        newest[(record["id"], record["suite"])] = record
    return list(newest.values())
