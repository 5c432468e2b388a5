"""FLOP counts: hand-worked parts and Megatron's closed forms."""

import math

import pytest

from costmodels import MLASpec, ModelSpec, MoESpec
from costmodels import flops as F
from tests.costmodels.helpers import gpt


def tiny(**kw):
    base = dict(name="t", layers=2, hidden=8, heads=2, kv_heads=1, head_dim=4, ffn=16, vocab=10)
    base.update(kw)
    return ModelSpec(**base)


def test_gqa_projection_and_core_by_hand():
    m = tiny()
    qkv, out = F.attention_projection_flops(m, tokens=3)
    # QKV: 2*T*h*(a*d + 2*g*d) = 2*3*8*(2*4 + 2*1*4) = 48*16 = 768; out: 2*T*(a*d)*h = 2*3*8*8 = 384
    assert (qkv, out) == (768, 384)
    # core, b=1, s=3: 2*b*s^2*a*(d+d) = 2*9*2*8 = 288, causal halves it -> 144
    assert F.attention_core_flops(m, 1, 3) == 144
    assert F.attention_core_flops(m, 1, 3, causal=False) == 288


def test_mlp_gated_and_not():
    # gated: 2*T*h*f*3 = 2*3*8*16*3 = 2304; GELU (two matrices): 1536
    assert F.mlp_flops(tiny(), 3, 16) == 2304
    assert F.mlp_flops(tiny(gated_mlp=False), 3, 16) == 1536


def test_moe_parts_by_hand():
    m = tiny(moe=MoESpec(experts=4, top_k=2, expert_ffn=8, shared_experts=1, shared_expert_ffn=16))
    routed, shared, router = F.moe_flops(m, tokens=3)
    # routed: k * 2*T*h*f_e*3 = 2 * 2*3*8*8*3 = 2304; shared: 2*3*8*16*3 = 2304; router: 2*T*h*E = 2*3*8*4 = 192
    assert (routed, shared, router) == (2304, 2304, 192)
    layer = F.layer_forward_flops(m, True, 1, 3)
    assert layer.experts == 2304 and layer.mlp == 2304 and layer.router == 192


def test_mla_projection_by_hand():
    mla = MLASpec(q_lora_rank=4, kv_lora_rank=6, qk_nope_head_dim=2, qk_rope_head_dim=1, v_head_dim=3)
    m = tiny(attention="mla", mla=mla, kv_heads=2)
    qkv, out = F.attention_projection_flops(m, tokens=1)
    # q: 2*(h*rq + rq*a*(nope+rope)) = 2*(8*4 + 4*2*3) = 112; kv down: 2*h*(rkv+rope) = 2*8*7 = 112;
    # kv up: 2*rkv*a*(nope+v) = 2*6*2*5 = 120 -> 344; out: 2*a*v*h = 2*2*3*8 = 96
    assert (qkv, out) == (344, 96)
    # core, s=2: 2*s^2*a*(d_qk + d_v) = 2*4*2*(3+3) = 96 -> causal 48
    assert F.attention_core_flops(m, 1, 2) == 48


@pytest.mark.parametrize("layers,hidden,heads,seq,vocab", [(96, 12288, 96, 2048, 51200), (24, 2048, 16, 4096, 131072)])
def test_megatron_formulas_match_part_sums(layers, hidden, heads, seq, vocab):
    m = gpt(layers=layers, hidden=hidden, heads=heads, vocab=vocab)
    b = 8
    assert math.isclose(F.step_flops(m, b, seq, "none", causal=False),
                        F.megatron_formula_flops(m, b, seq, full_recompute=False), rel_tol=1e-12)
    assert math.isclose(F.step_flops(m, b, seq, "full", causal=False),
                        F.megatron_formula_flops(m, b, seq, full_recompute=True), rel_tol=1e-12)


def test_causal_halving_and_selective_recompute():
    m = gpt(layers=2, hidden=1024, heads=16)
    b, s = 2, 2048
    full = F.step_flops(m, b, s, causal=False)
    half = F.step_flops(m, b, s)
    # the causal mask removes half of 3 passes of 4*b*s^2*h per layer: 2 layers * 3 * 2*b*s^2*h
    assert math.isclose(full - half, 2 * 3 * 2 * b * s * s * 1024, rel_tol=1e-12)
    # selective recompute adds one attention-core forward per layer: 2 * (2*b*s^2*h)
    assert math.isclose(F.step_flops(m, b, s, "selective") - half, 2 * 2 * b * s * s * 1024, rel_tol=1e-12)
