"""Where a sweep keeps its results: plan documents by digest, a journal of finished rows, Parquet and CSV tables.

`<plans>/<digest>.json` holds each scenario's plan exactly as the planner printed it; `<plans>/journal.jsonl` gets
one line per finished scenario as it arrives, so an interrupted sweep resumes where it stopped: a scenario whose
digest has a journal row (and, if it succeeded, its plan file) is not run again. Scenarios that ended in an
error are re-run, since a crash may not repeat.
"""

import csv
import json
import math
from pathlib import Path

from planner.commands.output import atomic_path
from planner.sweep.rows import scenario_row

JOURNAL = "journal.jsonl"
FIRST_COLUMNS = ("status", "exit_code", "error", "wall_s", "digest", "plan_file")


class ResultStore:
    """The plans folder and its journal."""

    def __init__(self, plans_dir: str | Path):
        self.plans_dir = Path(plans_dir)
        self.plans_dir.mkdir(parents=True, exist_ok=True)
        self.journal = self.plans_dir / JOURNAL

    def plan_path(self, digest: str) -> Path:
        return self.plans_dir / f"{digest}.json"

    def done_rows(self) -> dict[str, dict]:
        """digest -> journal row of every scenario already finished without error (last row wins)."""
        rows: dict[str, dict] = {}
        if not self.journal.is_file():
            return rows
        for line in self.journal.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:  # a line cut short by an interrupted run
                continue
            if isinstance(row, dict) and "digest" in row:
                rows[row["digest"]] = row
        return {d: r for d, r in rows.items()
                if r.get("status") != "error" and (r.get("status") != "ok" or self.plan_path(d).is_file())}

    def record(self, values: dict, result: dict) -> dict:
        """Write the plan file (if any) and append the row to the journal; return the row."""
        plan_file = None
        if result.get("plan"):
            path = self.plan_path(result["digest"])
            with atomic_path(str(path)) as tmp:
                Path(tmp).write_text(result["plan"], encoding="utf-8")
            plan_file = path.name
        row = scenario_row(values, result, plan_file)
        with self.journal.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(row, sort_keys=True, allow_nan=False, default=str) + "\n")
        return row


def column_order(rows: list[dict], keys: list[str]) -> list[str]:
    """Grid keys first, then the bookkeeping columns, then every other column sorted."""
    seen = sorted({c for r in rows for c in r} - set(keys) - set(FIRST_COLUMNS))
    return [*keys, *FIRST_COLUMNS, *seen]


def _uniform(values: list) -> list:
    """A column pyarrow can type: numbers stay numbers, booleans stay booleans, anything mixed becomes text."""
    kinds = {("num" if isinstance(v, (int, float)) and not isinstance(v, bool) else type(v).__name__)
             for v in values if v is not None}
    if len(kinds) <= 1:
        if kinds == {"num"} and any(isinstance(v, float) for v in values):
            return [None if v is None or (isinstance(v, float) and not math.isfinite(v)) else float(v) for v in values]
        return values
    return [None if v is None else (json.dumps(v) if isinstance(v, bool) else str(v)) for v in values]


def write_tables(rows: list[dict], columns: list[str], output: Path) -> list[Path]:
    """Write `output` (.parquet or .csv, checked by run_sweep) and the CSV beside it; return the files written."""
    csv_path = output.with_suffix(".csv")
    with atomic_path(str(csv_path)) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: ("" if row.get(c) is None else row[c]) for c in columns})
    if output.suffix == ".csv":
        return [csv_path]
    import pyarrow as pa  # type: ignore[import-untyped]  # run_sweep checked that it is installed
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    table = pa.table({c: _uniform([r.get(c) for r in rows]) for c in columns})
    with atomic_path(str(output)) as tmp:
        pq.write_table(table, tmp)
    return [output, csv_path]
