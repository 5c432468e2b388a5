"""Cost model of one sequence on an SP group (costmodels/sequence.py), with hand-worked numbers."""

import numpy as np
import pytest
from scatter_specs import H100, LLAMA8B

from costmodels import sequence as sc
from costmodels.errors import InfeasibleError

KW = dict(tp=1, gpus_per_node=8, intra_bytes_per_s=450e9, inter_bytes_per_s=50e9)


def test_activation_bytes_per_token_llama8b():
    # per layer: 10h + 2(a·dh + 2·kv·dh) + 2·a·dh + 10f = 40960 + 2(4096 + 2048) + 8192 + 143360 = 204800
    # 32 layers -> 6,553,600 B; logits 6·V = 769,536 B; total 7,323,136 B per token at tp=1
    assert sc.activation_bytes_per_token(LLAMA8B, tp=1) == pytest.approx(7_323_136)
    assert sc.activation_bytes_per_token(LLAMA8B, tp=2) == pytest.approx(7_323_136 / 2)


def test_static_bytes_zero_stages():
    p = sc.parameter_count(LLAMA8B)
    # 32·(2·4096·4096 + 2·4096·1024 + 3·4096·14336) + 2·128256·4096 = 8.03e9 parameters
    assert p == pytest.approx(8.03e9, rel=1e-3)
    assert sc.static_bytes_per_gpu(LLAMA8B, tp=1, zero=0, dp=8) == pytest.approx(18 * p)
    assert sc.static_bytes_per_gpu(LLAMA8B, tp=1, zero=1, dp=8) == pytest.approx((6 + 12 / 8) * p)
    assert sc.static_bytes_per_gpu(LLAMA8B, tp=1, zero=3, dp=8) == pytest.approx(18 / 8 * p)


def test_ulysses_degrees_follow_heads():
    valid = [d for d in range(1, 65) if sc.ulysses_valid(LLAMA8B, d, 1)]
    assert valid == [1, 2, 4, 8, 16, 32]  # 32 heads; kv 8 divides d or d divides 8 (replication)
    assert sc.degree_valid(LLAMA8B, "ring", 7, 1)


def test_long_sequences_get_faster_with_degree_short_ones_do_not_scale():
    s = np.array([512.0, 65536.0])
    t = {d: sc.sequence_times_s(LLAMA8B, H100, s, degree=d, style="ulysses", inter_node=d > 8, **KW)
         for d in (1, 2, 4, 8)}
    assert t[1][1] > t[2][1] > t[4][1] > t[8][1]
    assert t[8][0] * 8 > t[1][0]  # GPU-seconds of a short sequence grow with the degree


def test_attention_is_quadratic():
    parts = sc.sequence_time_parts(LLAMA8B, H100, np.array([8192.0, 16384.0]), degree=1, style="ring",
                                   inter_node=False, **KW)
    assert parts["compute_attention"][1] == pytest.approx(4 * parts["compute_attention"][0])


def test_ring_overlaps_communication_with_attention():
    # for a long sequence inside a node, ring passes hide behind the attention compute
    parts = sc.sequence_time_parts(LLAMA8B, H100, np.array([65536.0]), degree=4, style="ring",
                                   inter_node=False, **KW)
    assert parts["sp_comm"][0] == 0.0


def test_inter_node_costs_more():
    s = np.array([32768.0])
    inside = sc.sequence_times_s(LLAMA8B, H100, s, degree=8, style="ulysses", inter_node=False, **KW)
    across = sc.sequence_times_s(LLAMA8B, H100, s, degree=8, style="ulysses", inter_node=True, **KW)
    assert across[0] > inside[0]


def test_static_memory_that_does_not_fit_is_infeasible():
    with pytest.raises(InfeasibleError, match="optimizer states need"):
        sc.memory_left_bytes(LLAMA8B, H100, tp=1, zero=0, dp=1)


def test_ulysses_over_whole_nodes_sends_only_remote_peers_bytes_over_the_nic():
    # degree 16 over two nodes of 8: per layer 2 (fwd+bwd) × max(8/16 · B / NIC, 7/16 · B / NVLink) + 4 α,
    # B = (s/16) · 2 B · 128 · (2·32 + 2·16) bytes (kv heads replicated to 16)
    s = np.array([65536.0])
    cal = H100.calibration
    parts = sc.sequence_time_parts(LLAMA8B, H100, s, degree=16, style="ulysses", inter_node=True, **KW)
    b = 65536 / 16 * 2 * 128 * (2 * 32 + 2 * 16)
    per_layer = 4 * cal.collective_latency_s + 2 * max(
        8 / 16 * b / (50e9 * cal.inter_node_efficiency), 7 / 16 * b / (450e9 * cal.intra_node_efficiency))
    assert parts["sp_comm"][0] == pytest.approx(LLAMA8B.layers * per_layer)
    # a group split across nodes without whole nodes is charged every peer over the NIC (conservative)
    split = sc.sequence_time_parts(LLAMA8B, H100, s, degree=4, style="ulysses", inter_node=True, **KW)
    b4 = 65536 / 4 * 2 * 128 * (2 * 32 + 2 * 8)
    assert split["sp_comm"][0] == pytest.approx(
        LLAMA8B.layers * (4 * cal.collective_latency_s + 2 * 3 / 4 * b4 / (50e9 * cal.inter_node_efficiency)))
