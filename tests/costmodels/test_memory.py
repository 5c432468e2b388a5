"""Memory: Korthikanti activation formulas, ZeRO sharding, parameter counts."""

import math

import pytest

from costmodels import memory as M
from tests.costmodels.helpers import gpt

S, B = 2048, 1


@pytest.fixture
def m175():
    return gpt(layers=96, hidden=12288, heads=96)


def test_gpt_layer_activations_match_korthikanti(m175):
    h, t = 12288, 8
    sbh = S * B * h
    lse = 4 * 96 * S * B  # fp32 flash-attention statistics, our only addition to the paper's table
    # no parallelism: 34*s*b*h (flash attention removes 5*a*s^2*b)
    assert M.layer_activation_bytes(m175, False, B, S, tp=1, cp=1, etp=1, sp=False, recompute="none") == 34 * sbh + lse
    # TP without SP: s*b*h*(10 + 24/t)
    assert math.isclose(M.layer_activation_bytes(m175, False, B, S, tp=t, cp=1, etp=1, sp=False, recompute="none"),
                        sbh * (10 + 24 / t) + lse / t)
    # TP + SP: 34*s*b*h/t
    assert math.isclose(M.layer_activation_bytes(m175, False, B, S, tp=t, cp=1, etp=1, sp=True, recompute="none"),
                        34 * sbh / t + lse / t)
    # full recompute keeps the layer input: 2*s*b*h/t with SP; cp halves everything
    assert M.layer_activation_bytes(m175, False, B, S, tp=t, cp=2, etp=1, sp=True, recompute="full") == 2 * sbh / t / 2


def test_gated_mlp_activations():
    m = gpt(layers=1, hidden=1024, heads=8)
    gated = type(m)(**{**{f: getattr(m, f) for f in m.__dataclass_fields__}, "gated_mlp": True, "ffn": 2816})
    # dense MLP block per token: 2h + 6f + 1h (mask) + 2h (LN input) = 5h + 6f
    assert M.mlp_activation_bytes(gated, 10, 1, False) == 10 * (5 * 1024 + 6 * 2816)


def test_zero_stages_megatron_bytes():
    # 2 B bf16 params, 4 B fp32 main grads, 12 B fp32 master + Adam moments
    assert M.state_bytes_per_param(0, 64) == (2, 4, 12)
    assert M.state_bytes_per_param(1, 64) == (2, 4, 12 / 64)
    assert M.state_bytes_per_param(2, 64) == (2, 4 / 64, 12 / 64)
    assert M.state_bytes_per_param(3, 64) == (2 / 64, 4 / 64, 12 / 64)


def test_gpt3_parameter_count(m175):
    per_layer = sum(M.layer_params(m175, False))
    # 12*h^2 + norms (2h): attention 4h^2, MLP 8h^2
    assert per_layer == 12 * 12288**2 + 2 * 12288
    total = 96 * per_layer + M.embedding_params(m175)
    assert 174e9 < total < 175.5e9
    # tied embeddings: no separate LM head with one stage, a copy on the last stage with several
    assert M.head_params(m175, 1) == 12288
    assert M.head_params(m175, 8) == 51200 * 12288 + 12288


def test_head_activation_has_fp32_logits():
    m = gpt(layers=2, hidden=1024, heads=8, vocab=50000)
    # tokens*(4h/t with SP + 4V/t): 2048*(4*1024/2 + 4*50000/2)
    assert M.head_activation_bytes(m, 1, 2048, tp=2, cp=1, sp=True) == 2048 * (2 * 1024 + 2 * 50000)
