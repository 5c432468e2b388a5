"""torchtitan op-level SAC (every second matmul of a block, counted in call order) and its separate projections,
against hand calculations; the A100 kernel constants against their kernel tables (issue 9)."""

import importlib.util
import math
import pathlib
import sys

import pytest

from costmodels import NodePool
from costmodels import flops as F
from costmodels.compute import gemm_time_s, memory_bound_time_s
from costmodels.layer_parts import Setting, layer_cost
from profiles import load_model
from tests.costmodels.helpers import device, gpt

DEV = device(kernel_floor_s=0.0, eager_elementwise_factor=3.0)
POOL_KW = dict(name="p", nodes=1, devices_per_node=8, intra_node_bytes_per_s=300e9, inter_node_bytes_per_s=25e9)
BENCH = pathlib.Path(__file__).resolve().parents[2] / "benchmarks"


def test_block_matmuls_and_the_recomputed_ones():
    llama = load_model("llama3.1-8b")  # h 4096, 32 heads, 8 kv heads of 128, ffn 14336, gated
    calls = F.block_matmuls(llama, False)
    assert [(c[1], c[2], c[3]) for c in calls] == [
        (4096, 4096, "col"), (4096, 1024, "col"), (4096, 1024, "col"), (4096, 4096, "row"),
        (4096, 14336, "col"), (4096, 14336, "col"), (14336, 4096, "row")]
    # the 2nd, 4th and 6th mm: wk, wo, w3
    assert F.op_sac_recomputed(llama, False) == [False, True, False, True, False, True, False]
    wk, wo, w3, linear = 4096 * 1024, 4096 * 4096, 4096 * 14336, 4096 * (4096 + 2048 + 4096 + 3 * 14336)
    share = F.recompute_share("selective", ops_sac=True, model=llama)
    assert math.isclose(share.gemm, (wk + wo + w3) / linear) and math.isclose(share.gemm, 0.3654, abs_tol=1e-4)
    fr = F.op_sac_gemm_fractions(llama, False)
    assert (fr.qkv, fr.attn_out, fr.mlp) == (1024 / 6144, 1.0, 1 / 3)
    mha = load_model("llama2-13b")  # MHA: wk is a full quarter of the attention projections
    h, f = 5120, 13824
    assert math.isclose(F.recompute_share("selective", ops_sac=True, model=mha).gemm,
                        (2 * h * h + h * f) / (4 * h * h + 3 * h * f))  # 38.8 %
    with pytest.raises(ValueError, match="needs the model"):
        F.recompute_share("selective", ops_sac=True)


def test_op_sac_flops_and_time_by_hand():
    """GPT block (MHA, not gated): q k v o w1 w2 -> wk, wo, w2 recomputed, each GEMM at its own speed."""
    model, h, t = gpt(layers=2, hidden=1024, heads=16, vocab=1000), 1024, 2048
    lf = F.layer_forward_flops(model, False, 1, t)
    share = F.recompute_share("selective", ops_sac=True, model=model)
    assert math.isclose(F.recompute_forward_flops(lf, share), 2 * t * (h * h + h * h + 4 * h * h))
    pool = NodePool(device=DEV, **POOL_KW)
    kw = dict(mbs=1, seq=t, dtype="bf16", tp=1, cp=1, dp=1, ep=1, etp=1, zero=0, sp=False, framework="torchtitan",
              fused=False)
    cost = layer_cost(model, False, pool, Setting(recompute="selective", **kw))
    gemms = gemm_time_s(t, h, h, "bf16", DEV) * 2 + gemm_time_s(t, h, 4 * h, "bf16", DEV)  # wk, wo, w2
    ew = memory_bound_time_s(2 * t * (15 * h + 2 * 4 * h) * 3.0, DEV)  # eager: every element-wise op again
    assert math.isclose(cost.parts["recompute"], gemms + ew, rel_tol=1e-12)


def test_separate_projections_read_their_input_again():
    """torchtitan runs wq, wk, wv as three GEMMs: under tp 8 the 128-column wk/wv are bound by reading the
    hidden states; Megatron's fused QKV reads them once."""
    llama = load_model("llama3.1-8b")
    pool = NodePool(device=DEV, **POOL_KW)
    kw = dict(mbs=2, seq=8192, dtype="bf16", tp=8, cp=1, dp=1, ep=1, etp=1, zero=0, recompute="none", sp=True)
    titan = layer_cost(llama, False, pool, Setting(framework="torchtitan", **kw))
    megatron = layer_cost(llama, False, pool, Setting(framework="megatron", **kw))
    m = 2 * 8192
    separate = gemm_time_s(m, 512, 4096, "bf16", DEV) + 2 * gemm_time_s(m, 128, 4096, "bf16", DEV) \
        + 2 * gemm_time_s(m, 1792, 4096, "bf16", DEV)
    fused = gemm_time_s(m, 768, 4096, "bf16", DEV) + gemm_time_s(m, 3584, 4096, "bf16", DEV)
    assert math.isclose(titan.parts["gemm"] - megatron.parts["gemm"], 3 * (separate - fused), rel_tol=1e-9)
    assert separate > fused


def test_torchtitan_full_recompute_stops_before_the_last_matmul():
    """A fully recomputed torchtitan block reruns everything but w2 (early stop; backward never reads its output)
    and, under TP, the reduce-scatter after it; Megatron reruns the whole layer."""
    model, h, t = gpt(layers=2, hidden=1024, heads=16, vocab=1000), 1024, 2048
    pool = NodePool(device=DEV, **POOL_KW)
    kw = dict(mbs=1, seq=t, dtype="bf16", cp=1, dp=1, ep=1, etp=1, zero=0, framework="torchtitan")
    plain, full = (layer_cost(model, False, pool, Setting(recompute=r, tp=1, sp=False, **kw)) for r in ("none", "full"))
    w2 = gemm_time_s(t, h, 4 * h, "bf16", DEV)
    forward = (plain.parts["gemm"] + plain.parts["elementwise"]) / 3 + plain.parts["attention"] / 3.5
    assert math.isclose(full.parts["recompute"], forward - w2, rel_tol=1e-12)
    tp = {r: layer_cost(model, False, pool, Setting(recompute=r, tp=4, sp=True, **kw)) for r in ("none", "full")}
    rs = 20e-6 + 3 * 5e-6 + 3 / 4 * t * h * 2 / 225e9  # the MLP's reduce-scatter over 4 ranks of one node
    forward = (tp["none"].parts["gemm"] + tp["none"].parts["elementwise"]) / 3 + tp["none"].parts["attention"] / 3.5
    comm = tp["none"].parts["tp_comm"] * 2 / 4  # forward: AG + RS per block, backward: 2 AG + 2 RS
    assert math.isclose(tp["full"].parts["recompute"], forward + comm - gemm_time_s(t, h, h, "bf16", DEV) - rs,
                        rel_tol=1e-9)


@pytest.mark.skipif(importlib.util.find_spec("aiconfigurator_core") is None or
                    importlib.util.find_spec("pandas") is None,
                    reason="needs aiconfigurator-core (optional extra `aiconfigurator`) for its A100 kernel tables")
def test_a100_kernel_constants_are_the_kernel_tables():
    sys.path.insert(0, str(BENCH))
    try:
        import a100_kernel_fit
        import calibrate
    finally:
        sys.path.remove(str(BENCH))
    measured = a100_kernel_fit.fits()
    for name, fixed in calibrate.A100_KERNELS.items():
        assert math.isclose(measured[name], fixed, rel_tol=2e-3), name
