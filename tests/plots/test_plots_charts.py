"""Chart logic of the sweep report and the serve plot: axis choice, derived cost, Pareto front."""

import pytest

pytest.importorskip("matplotlib", reason="matplotlib is not installed (pip install 'parplan[plots]')")

from planner.plots.serve import pareto_front  # noqa: E402
from planner.plots.sweep_charts import charts, derived, x_axis  # noqa: E402


def test_pareto_front_keeps_only_points_no_other_beats():
    points = [(50.0, 3000.0), (43.0, 2250.0), (50.0, 2251.0), (60.0, 2900.0), (40.0, 1000.0)]
    # (60, 2900) is beaten by (50, 3000): more latency, less goodput; (50, 2251) by (50, 3000)
    assert pareto_front(points) == [(40.0, 1000.0), (43.0, 2250.0), (50.0, 3000.0)]


def test_serving_cost_per_million_output_tokens():
    # 5000 output tokens/s per GPU: 1e6 tokens take 200 GPU-seconds = 0.0556 GPU-hours
    assert derived({"predicted.goodput_tokens_per_s_per_gpu": 5000.0})["cost_per_mtok"] == pytest.approx(200 / 3600)
    assert derived({"predicted.goodput_tokens_per_s_per_gpu": 0.0}) == {}


def test_charts_pick_the_planners_axis_and_draw_one_line_per_other_setting():
    axes = {"gpu": ["h100-sxm", "h200"], "tpot_ms": [30, 50], "model": ["llama3-8b"]}
    assert x_axis("serve", axes) == "tpot_ms"
    assert x_axis("train", {"seq": [1024, 2048], "num_gpus": [8, 16]}) == "num_gpus"
    assert x_axis("train", {"model": ["a", "b"]}) is None
    rows = [{"status": "ok", "gpu": g, "tpot_ms": t, "model": "llama3-8b",
             "predicted.goodput_tokens_per_s_per_gpu": 1000.0 * t} for g in axes["gpu"] for t in axes["tpot_ms"]]
    rows.append({"status": "error", "gpu": "h200", "tpot_ms": 40, "model": "llama3-8b"})
    drawn = charts("serve", rows, axes)
    assert [title for title, _ in drawn] == ["GPU-hours per million output tokens vs tpot_ms",
                                             "goodput (tokens/s per GPU) vs tpot_ms"]
    cost_axes = drawn[0][1].axes[0]
    lines = {line.get_label(): list(zip(line.get_xdata(), line.get_ydata(), strict=True))
             for line in cost_axes.get_lines()}
    assert sorted(lines) == ["gpu=h100-sxm", "gpu=h200"]  # the error row draws nothing
    assert lines["gpu=h200"] == [(30, pytest.approx(1e6 / 30000 / 3600)), (50, pytest.approx(1e6 / 50000 / 3600))]
