"""Layer-level selective checkpointing ("selective-layer", torchtitan selective_ac_option "2"): every 2nd
layer runs its whole forward again and keeps only its input, the others keep everything. Hand calculations
of its recompute FLOPs, recompute time and activation bytes, and the frameworks' rules for it."""

import math

import pytest

from costmodels import flops as F
from costmodels import memory as M
from costmodels.compute import attention_time_s, gemm_time_s, memory_bound_time_s
from costmodels.framework import unsupported
from costmodels.hardware import ClusterSpec
from costmodels.layer_parts import Setting, layer_cost
from tests.costmodels.helpers import device, gpt

S, B = 2048, 1


def test_selective_layer_flops_are_half_a_forward():
    m = gpt(layers=4, hidden=1024, heads=16)
    lf = F.layer_forward_flops(m, False, B, S)
    # GPT layer per token: QKV 2*h*3h, out 2*h*h, MLP 2*h*4h*2 -> 24 h^2; attention core 2*s*h (causal)
    h = 1024
    per_token = 24 * h * h + 2 * S * h
    assert math.isclose(lf.total, per_token * S)
    assert math.isclose(F.recompute_forward_flops(lf, F.recompute_share("selective-layer")), per_token * S / 2)
    assert math.isclose(F.recompute_forward_flops(lf, F.recompute_share("full")), per_token * S)
    # a step: 3 forwards + half a forward of recompute per layer, + 3 x the LM head
    head = 2 * S * h * m.vocab
    assert math.isclose(F.step_flops(m, B, S, "selective-layer"), 4 * 3.5 * per_token * S + 3 * head)


def test_selective_layer_recompute_time_by_hand():
    """tp = cp = 1, fused element-wise kernels: recompute = half of (GEMMs + attention core + element-wise)."""
    m = gpt(layers=4, hidden=1024, heads=16)
    pool = ClusterSpec.homogeneous(device(), 8).primary
    st = Setting(mbs=B, seq=S, dtype="bf16", tp=1, cp=1, dp=8, ep=1, etp=1, zero=1, recompute="selective-layer",
                 sp=False)
    dev, h, f, t = pool.device, 1024, 4096, B * S
    gemms = gemm_time_s(t, 3 * h, h, "bf16", dev) + gemm_time_s(t, h, h, "bf16", dev) \
        + gemm_time_s(t, f, h, "bf16", dev) + gemm_time_s(t, h, f, "bf16", dev)
    attention = attention_time_s(B, S, S, 16, 64, 64, dev, causal=True)
    elementwise = memory_bound_time_s(2 * t * (15 * h + 2 * f), dev)  # 15h + 2f elements/token, 2 B each
    cost = layer_cost(m, False, pool, st)
    assert math.isclose(cost.parts["recompute"], (gemms + attention + elementwise) / 2, rel_tol=1e-12)
    full = layer_cost(m, False, pool, Setting(**{**_fields(st), "recompute": "full"}))
    assert math.isclose(cost.parts["recompute"], full.parts["recompute"] / 2, rel_tol=1e-12)
    # the checkpointed layer rebuilds its activations during its backward, as under full recompute
    assert cost.working_bytes == full.working_bytes > 0


def _fields(st: Setting) -> dict:
    return {k: getattr(st, k) for k in st.__dataclass_fields__}


def test_selective_layer_activation_bytes_by_hand():
    """GPT layer, no parallelism: 34·s·b·h + 4·a·s·b kept without recompute (Korthikanti et al. + flash
    statistics), 2·s·b·h under full recompute; selective-layer keeps their average per layer."""
    h, a = 2304, 24
    m = gpt(layers=24, hidden=h, heads=a)
    kept = 34 * S * B * h + 4 * a * S * B
    ckpt = 2 * S * B * h
    got = M.layer_activation_bytes(m, False, B, S, tp=1, cp=1, etp=1, sp=False, recompute="selective-layer")
    assert got == (kept + ckpt) / 2 == 18 * S * B * h + 2 * a * S * B
    # torchtitan (ops_sac) changes "selective" only, not the layer-level mode
    assert M.layer_activation_bytes(m, False, B, S, tp=1, cp=1, etp=1, sp=False, recompute="selective-layer",
                                    ops_sac=True) == got
    # TP + SP shards both halves by t
    sp = M.layer_activation_bytes(m, False, B, S, tp=8, cp=1, etp=1, sp=True, recompute="selective-layer")
    assert math.isclose(sp, (kept + ckpt) / 2 / 8)


@pytest.mark.parametrize("framework, decisions", [
    ("deepspeed", dict(pp=1, layers=24)),
    ("megatron", dict(pp=2, layers=30)),  # 15 layers per stage: odd
    ("megatron", dict(pp=2, layers=32, stage_layers=(18, 14))),  # unequal stages
    ("megatron", dict(pp=2, vpp=2, layers=36, stage_layers=(18, 18))),  # virtual stages of 9 layers
])
def test_refused_where_the_framework_cannot_run_it(framework, decisions):
    base = dict(zero=1, cp=1, vpp=1, tp=1, etp=1, recompute="selective-layer")
    assert [f for f, _ in unsupported(framework, **(base | decisions))] == ["recompute"]


def test_runnable_where_the_framework_has_it():
    base = dict(zero=3, pp=1, cp=1, vpp=1, tp=1, etp=1, recompute="selective-layer", layers=31)
    assert unsupported("torchtitan", **base) == []  # v0.2.2 selective_ac_option "2" (odd counts: every 2nd)
    assert unsupported("megatron", **(base | dict(zero=1, pp=4, layers=32))) == []
    assert unsupported("megatron", **(base | dict(zero=1, pp=2, vpp=4, layers=32, stage_layers=(16, 16)))) == []


def test_torchtitan_rows_map_layer_and_op_sac():
    """../shared/calibration/torchtitan_fsdp_runs.csv: "selective (layer)" is selective-layer, "selective (op)"
    is selective (op-level SAC under torchtitan)."""
    from benchmarks.published_runs import CALIBRATION_DIR, TITAN_CSV, load_torchtitan_rows

    path = CALIBRATION_DIR / TITAN_CSV
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared calibration directory ../shared is not mounted)")
    rows = {r.label.split()[0]: r.config.recompute for r in load_torchtitan_rows(path)}
    assert (rows["T26"], rows["T27"], rows["T29"], rows["T30"], rows["T31"]) == \
        ("selective-layer", "selective", "none", "selective-layer", "selective")


def test_cli_estimate_and_api_agree_and_deepspeed_refuses(tmp_path):
    """`estimate train --recompute selective-layer` writes the API's bytes; the memory sits between full and no
    recompute and the hardware FLOPs count half a forward more; DeepSpeed refuses it with exit 2."""
    from click.testing import CliRunner

    import cli
    from costmodels import ParallelConfig, TrainingWorkload, estimate_training
    from planner.train.estimate import estimate_plan
    from profiles import load_device, load_model

    args = ["estimate", "train", "--model", "llama3-8b", "--gpu", "a100-80gb", "--num-gpus", "8", "--tp", "1",
            "--pp", "2", "--mbs", "1", "--gbs", "16", "--seq", "4096", "--recompute", "selective-layer"]
    out = tmp_path / "e.json"
    res = CliRunner().invoke(cli.main, args + ["-o", str(out)])
    assert res.exit_code == 0, res.output
    model, cluster = load_model("llama3-8b"), ClusterSpec.homogeneous(load_device("a100-80gb"), 8)
    wl = TrainingWorkload(global_batch=16, seq_len=4096)
    assert out.read_text() == estimate_plan(model, cluster, wl, ParallelConfig(pp=2, dp=4, recompute="selective-layer")
                                            ).dumps()
    est = {r: estimate_training(model, cluster, wl, ParallelConfig(pp=2, dp=4, recompute=r))
           for r in ("none", "selective-layer", "full")}
    mem = {r: e.memory_per_gpu_bytes for r, e in est.items()}
    assert mem["full"] < mem["selective-layer"] < mem["none"]
    assert est["none"].step_time_s < est["selective-layer"].step_time_s < est["full"].step_time_s
    e = est["selective-layer"]
    hardware = e.hardware_tflops_per_gpu * 1e12 * e.step_time_s * 8
    assert math.isclose(hardware, F.step_flops(model, 16, 4096, "selective-layer"), rel_tol=1e-9)
    res = CliRunner().invoke(cli.main, args + ["--framework", "deepspeed"])
    assert res.exit_code == 2 and "every other layer" in res.output
