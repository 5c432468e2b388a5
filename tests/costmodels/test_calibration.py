"""Accuracy against published training runs (issue #2, item 5), with the calibration stored in the profiles.

Targets: every dense row within +-15 %, median |error| <= 7 %, every published configuration feasible.
"""

import pathlib
import statistics
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "benchmarks"))
from published_runs import device_for, load_rows, predict  # noqa: E402


@pytest.fixture
def rows(shared_dir):
    return load_rows(shared_dir / "calibration" / "published_training_runs.csv")


def test_published_dense_rows_within_targets(rows):
    devices, errors = {}, []
    estimated = [r for r in rows if not r.skip and r.in_target]
    assert len(estimated) >= 20
    for row in estimated:
        device = device_for(row, devices)
        assert "calibrate.py" in device.calibration.source
        predicted, est = predict(row, device)
        assert est.feasible, f"{row}: {est.infeasible_reasons}"
        err = predicted / row.published - 1
        assert abs(err) <= 0.15, f"{row}: published {row.published}, predicted {predicted:.1f} ({100 * err:+.1f}%)"
        errors.append(abs(err))
    assert statistics.median(errors) <= 0.07


def test_skipped_rows_say_why(rows):
    skipped = [r for r in rows if r.skip]
    assert skipped and all(r.skip for r in skipped)
    assert {r.skip for r in skipped} <= {"tp/pp or the architecture not stated", "MoE row without a stated architecture"}
    assert all(not r.in_target for r in rows if r.model is not None and r.model.is_moe)


def test_row_conventions(rows):
    by_label = {r.label.split(" ", 1)[1]: r for r in rows if not r.skip}
    paper = by_label["GPT-1.7B (32 A100-SXM4-80GB)"]
    assert paper.metric == "hardware_tflops" and paper.model.vocab == 51200 and paper.model.tied_embeddings
    assert paper.config.recompute == "full" and paper.config.mbs == 16
    readme = by_label["GPT 7.1B (96 H100)"]
    assert readme.metric == "model_tflops" and readme.config.mbs == 1 and readme.config.recompute == "none"
    assert readme.config.zero == 1 and readme.config.vpp == 1 and not readme.model.tied_embeddings
