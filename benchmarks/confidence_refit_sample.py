"""True leave-one-out refits on a seeded sample of calibration rows: coverage of the stated 80 % interval.

The shipped residuals (planner/confidence/residuals.json) use each row's leverage in its family's
linearised fit as its leave-one-out error; a true refit (calibrate.fit_device without the row) costs about a
minute per row on the 2-core machine, so the full refit over every row is the slow test
tests/planner_confidence/test_coverage.py::test_full_leave_one_out_refit_covers_at_least_70_percent.
This script refits a seeded sample of rows for real, puts those errors in place of the leverage ones, and
reports (a) the refit-vs-leverage difference and (b) whether each refitted row falls inside the interval
that the other rows give it (planner.confidence.coverage.held_out).

Usage: .venv/bin/python benchmarks/confidence_refit_sample.py [--rows N] [--seed S]
Writes benchmarks/results/confidence_refit.md.
"""

import argparse
import math
import pathlib
import random
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import confidence_loo  # noqa: E402
import confidence_residuals as cr  # noqa: E402
import published_runs  # noqa: E402
from machine import machine_note  # noqa: E402

from planner.confidence.coverage import coverage, held_out  # noqa: E402
from planner.confidence.residuals import table_from_json  # noqa: E402


def sample(rows: list, count: int, seed: int) -> list[tuple[str, object, str]]:
    """(family, row, source) of `count` fitted rows drawn with `seed` from families with more than two rows."""
    pool = [(family, row, source) for family, members in sorted(cr.fitted_groups(rows).items())
            if len(members) > 2 for source, row in members]
    return random.Random(seed).sample(pool, min(count, len(pool)))


def refit_records(picked: list, rows: list, devices: dict) -> dict:
    """label -> true leave-one-out step-time error of each picked row."""
    groups = cr.fitted_groups(rows)
    for members in groups.values():  # the refit looks each row's device up in `devices`
        for _, r in members:
            published_runs.device_for(r, devices)
    out = {}
    for family, row, _ in picked:
        others = [r for _, r in groups[family] if r is not row]
        started = time.perf_counter()
        residual = confidence_loo.refit_error(row, others, devices, cr.fit_profile(family))
        out[row.label] = cr._step_error(row, residual)
        print(f"  refit {row.label}: {out[row.label]:+.3f} ({time.perf_counter() - started:.0f} s)", flush=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    note = machine_note()
    rows = cr.training_rows()
    picked = sample(rows, args.rows, args.seed)
    refits = refit_records(picked, rows, {})
    records = cr.train_records(loo="leverage", progress=lambda _: None)
    leverage = {r["label"]: r["log_error"] for r in records}
    for r in records:
        if r["label"] in refits:
            r["log_error"] = refits[r["label"]]
    table = table_from_json({"format": 1, "families": {}, "rows": records})
    verdicts = [v for v in held_out(table, "train") if v.label in refits]
    lines = ["# True leave-one-out refits on a sample of calibration rows", "",
             "Command: `.venv/bin/python benchmarks/confidence_refit_sample.py "
             f"--rows {args.rows} --seed {args.seed}`.",
             note, "",
             f"Rows refitted: {len(verdicts)} ({'every fitted row' if args.rows >= len(verdicts) else 'seeded sample'}"
             "). Inside their stated 80 % interval: "
             f"{sum(v.covered for v in verdicts)} of {len(verdicts)} ({coverage(verdicts):.0%}; target >= 70 %).", "",
             "| row | refit LOO error | leverage LOO error | interval (ln) | inside |", "|---|---|---|---|---|"]
    for v in verdicts:
        lines.append(f"| {v.label} | {math.expm1(refits[v.label]):+.1%} | {math.expm1(leverage[v.label]):+.1%} | "
                     f"[{v.low:+.3f}, {v.high:+.3f}] | {'yes' if v.covered else 'no'} |")
    (HERE / "results" / "confidence_refit.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
