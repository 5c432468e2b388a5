"""Leave-one-out coverage of the stated 80 % intervals on the calibration rows.

Default suite: the shipped residuals (leave-one-out errors written by benchmarks/confidence_bench.py) are
re-checked, each row's interval rebuilt from the other rows only, and the file is checked to be in step with
the cost model (each row's in-sample error recomputed now). Slow suite: the full leave-one-out refit.
"""

import math
import pathlib
import sys

import pytest

from planner.confidence.coverage import coverage, held_out
from planner.confidence.residuals import shipped_table

BENCH = pathlib.Path(__file__).resolve().parents[2] / "benchmarks"
TARGET = 0.7


def test_shipped_residuals_are_leave_one_out_and_cover_at_least_70_percent():
    table = shipped_table()
    verdicts = held_out(table, "train")
    assert len(verdicts) >= 20, "residuals.json holds too few leave-one-out rows (generated with --no-loo?)"
    assert coverage(verdicts) >= TARGET, [v for v in verdicts if not v.covered]
    assert len(table.of("serve", ("prefill_s", "decode_step_s"))) >= 100


def _records():
    sys.path.insert(0, str(BENCH))
    import confidence_residuals

    return confidence_residuals


def test_shipped_residuals_match_the_cost_model(shared_dir):
    """A stale file (cost model or calibration changed since it was generated) fails here: regenerate it with
    `.venv/bin/python benchmarks/confidence_bench.py`."""
    module = _records()
    records = module.train_records(loo=None, progress=lambda _: None)
    fresh = {(r["label"], r["metric"]): r["fit_error"] for r in records}
    stored = {(r.label, r.metric): r.fit_error for r in shipped_table().rows if r.target == "train"}
    assert set(fresh) == set(stored)
    stale = {k: (stored[k], v) for k, v in fresh.items() if abs(stored[k] - v) > 0.02}
    assert not stale, f"residuals.json is stale (stored, now): {stale}"


@pytest.mark.slow
def test_full_leave_one_out_refit_covers_at_least_70_percent(shared_dir):
    from planner.confidence.residuals import table_from_json

    module = _records()
    records = module.train_records(loo="refit", progress=lambda _: None) + module.serve_records()
    table = table_from_json({"format": 1, "families": {}, "rows": records})
    verdicts = held_out(table, "train")
    assert len(verdicts) >= 20 and coverage(verdicts) >= TARGET
    assert all(math.isfinite(v.log_error) for v in verdicts)
