"""Pure helpers of benchmarks/serve_aic_compare.py (no aiconfigurator needed)."""

import math
import pathlib
import sys

import pytest

import profiles

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "benchmarks"))

import serve_aic_compare as cmp  # noqa: E402


def test_the_issue_has_99_static_points():
    pts = cmp.points()
    assert len(pts) == 99
    assert sum(p.phase == "prefill" for p in pts) == 11 * 4
    assert {p.config.model for p in pts} == {"llama3.1-70b", "qwen3-32b"}
    assert all(p.batch == 1 for p in pts if p.phase == "prefill")
    assert {p.batch for p in pts if p.phase == "decode"} == {1, 4, 16, 64, 128}


def test_aic_parts_groups_ops_by_kind_in_seconds():
    ops = {"generation_qkv_gemm": 1.0, "generation_proj_gemm": 2.0, "generation_gate_ffn1_gemm": 3.0,
           "generation_ffn2_gemm": 4.0, "generation_logits_gemm": 0.5, "generation_attention": 7.0,
           "generation_add_norm_1": 0.25, "generation_act_gate": 0.5, "generation_embedding": 0.25,
           "generation_ar_1": 0.1, "generation_embedding_ar": 0.2, "generation_p2p": 0.3}
    parts = cmp.aic_parts(ops)
    assert parts["gemm"] == pytest.approx(10e-3)  # the LM head is not a block GEMM
    assert parts["lm_head"] == pytest.approx(0.5e-3)
    assert parts["attention"] == pytest.approx(7e-3)
    assert parts["elementwise"] == pytest.approx(1e-3)
    assert parts["allreduce"] == pytest.approx(0.3e-3)  # embedding_ar is an all-reduce, not the embedding
    assert parts["other"] == pytest.approx(0.3e-3)
    assert sum(parts.values()) == pytest.approx(sum(ops.values()) * 1e-3)


def test_parplan_parts_and_gpu_work_leave_out_cpu_overhead():
    step = {"gemm_s": 1.0, "attention_s": 2.0, "elementwise_s": 0.5, "allreduce_s": 0.25, "alltoall_s": 0.25,
            "lm_head_s": 0.125, "pipeline_p2p_s": 0.0625, "overhead_s": 3.0, "launch_bound_s": 1.0}
    step["time_s"] = sum(step.values())
    parts = cmp.parplan_parts(step)
    assert parts["allreduce"] == 0.5 and parts["other"] == 0.0625
    assert cmp.gpu_work_s(step) == pytest.approx(sum(parts.values()))


def test_ratio_summary_worst_is_farthest_from_one_on_a_log_scale():
    n, med, worst = cmp.ratio_summary([1.1, 0.8, 1.2, 1.0])
    assert (n, med) == (4, pytest.approx(1.05))
    assert worst == 0.8  # |log 0.8| = 0.223 > |log 1.2| = 0.182
    assert cmp.ratio_summary([2.0])[2] == 2.0 and math.isclose(cmp.ratio_summary([0.5, 1.9])[1], 1.2)


def test_summary_lines_group_by_engine_device_phase():
    pts = cmp.points(cmp.CONFIGS[:1])
    rows = [cmp.Row(p, eng, 1.0, 1.5 if p.phase == "decode" else 0.9, 1.2 if p.phase == "decode" else 0.9)
            for p in pts for eng in cmp.ENGINES]
    lines = cmp.summary_lines(rows)
    assert len(lines) == 2 + len(cmp.ENGINES) * 3  # prefill, decode, all
    # 4 prefill at 0.9, 5 decode at 1.5 (GPU work 0.9, 1.2): medians 1.5, 1.2; worst 1.5, 1.2 (|log 1.2| > |log 0.9|)
    assert "| vllm (vllm) | all | all | 9 | 1.50 | 1.50 | 1.20 | 1.20 |" in lines
    assert "| trtllm (trtllm) | h100-sxm | decode | 5 | 1.50 | 1.50 | 1.20 | 1.20 |" in lines
    assert "| legacy (trtllm) | h100-sxm | prefill | 4 | 0.90 | 0.90 | 0.90 | 0.90 |" in lines
    assert len(cmp.point_lines(rows)) == 2 + len(pts)


def test_real_aiconfigurator_ops_all_map_to_a_part_and_agree_on_one_step():
    pytest.importorskip("aiconfigurator_core", reason="aiconfigurator-core is not installed (optional extra)")
    import logging

    logging.disable(logging.WARNING)
    try:
        point = cmp.Point(cmp.Config("llama3.1-8b", "h200", "fp8", 1, "fp8"), "decode", 64, 1024)
        ops = cmp.Aic().step_ms("trtllm", point)
    finally:
        logging.disable(logging.NOTSET)
    named = {name for name, ms in ops.items() if ms > 0}
    assert {"generation_qkv_gemm", "generation_attention", "generation_logits_gemm"} <= named
    unmapped = [name for name in named if next((p for key, p in cmp.AIC_PART_OF if key in name), None) is None]
    assert unmapped == []
    ours = cmp.parplan_step(point, "trtllm")
    # like for like: aiconfigurator's GEMM rows also hold the quantise kernels TensorRT-LLM fuses and the amax pass of
    # the table's dynamic input scale, which parplan's static-scale step leaves out (serve_fp8_step_ratio)
    from serve_fp8_step_ratio import tables_only_quant_s

    quant = tables_only_quant_s("h200", "trtllm", profiles.load_model("llama3.1-8b"), 1, point.batch)
    assert 0.8 < (cmp.gpu_work_s(ours) + quant) / (sum(ops.values()) * 1e-3) < 1.25
