"""Collectives: ring steps x hop latency + bytes / bandwidth, node spanning, hierarchy, MoE dispatch."""

import math

from costmodels.comm import Links, collective_time_s, members_per_node, moe_dispatch_time_s
from tests.costmodels.helpers import device

# effective bandwidths 200 GB/s (NVLink) and 25 GB/s (NIC); hops 1 us inside, 4 us across; call 10 us
LINKS = Links(devices_per_node=8, intra_bytes_per_s=200e9, inter_bytes_per_s=25e9, intra_hop_s=1e-6,
              inter_hop_s=4e-6, call_s=10e-6)


def t(op, size, n, stride):
    return collective_time_s(op, size, n, stride, LINKS)


def test_members_per_node():
    assert members_per_node(8, 1, 8) == 8
    assert members_per_node(16, 1, 8) == 8
    assert members_per_node(32, 4, 8) == 2
    assert members_per_node(6, 8, 8) == 1


def test_links_apply_the_calibrated_efficiencies():
    dev = device(intra_node_efficiency=0.5, inter_node_efficiency=0.8, collective_latency_s=7e-6)
    links = Links.of(dev, 8, 400e9, 50e9)
    assert (links.intra_bytes_per_s, links.inter_bytes_per_s, links.call_s) == (200e9, 40e9, 7e-6)
    assert (links.intra_hop_s, links.inter_hop_s) == (dev.intra_node_latency_s, dev.inter_node_latency_s)


def test_intra_node_ring():
    # all-reduce of 1 GB over 8 GPUs: 10 us + 14 steps x 1 us + 2*7/8 * 1e9 / 200e9 = 8.75 ms
    assert math.isclose(t("all_reduce", 1e9, 8, 1), 10e-6 + 14e-6 + 8.75e-3)
    # all-gather / reduce-scatter: 7 steps, half the traffic
    assert math.isclose(t("all_gather", 1e9, 8, 1), 10e-6 + 7e-6 + 4.375e-3)
    assert t("all_reduce", 1e9, 1, 1) == 0.0


def test_latency_grows_with_the_group():
    # 128 ranks, one per node (stride 8): 127 dependent steps of 4 us; a tiny buffer is latency-bound
    small = t("all_gather", 1e3, 128, 8)
    assert math.isclose(small, 10e-6 + 127 * 4e-6 + 127 / 128 * 1e3 / 25e9)
    assert small > 40 * t("all_gather", 1e3, 4, 8) / 4


def test_one_member_per_node_uses_the_nic():
    # 4 ranks with stride 8: 4 nodes; 6 steps x 4 us + 2*3/4 * 1e9 / 25e9 = 60 ms
    assert math.isclose(t("all_reduce", 1e9, 4, 8), 10e-6 + 24e-6 + 60e-3)


def test_hierarchical_collectives_use_every_nic_of_a_node():
    # 16 ranks, stride 1: 8 per node, 2 nodes. all-reduce = RS inside (7 us + 7/8 * 1e9/200e9 = 4.375 ms)
    # + AR across on 1e9/8 per member, each on its own NIC (2 x 4 us + 2*1/2 * 125e6/25e9 = 5 ms) + AG inside
    assert math.isclose(t("all_reduce", 1e9, 16, 1), 10e-6 + 2 * (7e-6 + 4.375e-3) + 8e-6 + 5e-3)
    # reduce-scatter: the inside phase once + across 4 us + 1/2 * 125e6/25e9 = 2.5 ms
    assert math.isclose(t("reduce_scatter", 1e9, 16, 1), 10e-6 + 7e-6 + 4.375e-3 + 4e-6 + 2.5e-3)


def test_all_to_all_and_p2p():
    # a2a over 16 ranks (2 nodes): 7/16 of S on NVLink and 8/16 on the NIC at the same time
    assert math.isclose(t("all_to_all", 1.6e9, 16, 1), 10e-6 + max(1e-6 + 0.7e9 / 200e9, 4e-6 + 0.8e9 / 25e9))
    assert math.isclose(t("p2p", 1e9, 2, 4), 10e-6 + 1e-6 + 1e9 / 200e9)
    assert math.isclose(t("p2p", 1e9, 2, 8), 10e-6 + 4e-6 + 1e9 / 25e9)


def test_moe_dispatch_dedup_and_fp8():
    # 4096 tokens, h = 1000, top-8 over ep = 64 (8 nodes of 8). Without de-dup 8 x 56/64 copies per token
    # cross a NIC: 4096 * 7 * 2000 B = 57.3 MB at 25 GB/s
    kw = dict(tokens=4096, hidden=1000, top_k=8, ep=64, stride=1, links=LINKS)
    plain = moe_dispatch_time_s(**kw)
    nic = 4096 * 8 * 56 / 64 * 2000
    nvl = 4096 * 8 * 7 / 64 * 2000
    assert math.isclose(plain, 10e-6 + max(1e-6 + nvl / 200e9, 4e-6 + nic / 25e9))
    # de-dup: E[remote nodes] = 7 * (1 - (7/8)^8) = 4.654 copies instead of 7
    dedup = moe_dispatch_time_s(**kw, dedup=True)
    remote = 7 * (1 - (7 / 8) ** 8)
    assert math.isclose(dedup - 10e-6 - 4e-6, 4096 * remote * 2000 / 25e9)
    # fp8: 1 byte + 4/128 of scale per value
    fp8 = moe_dispatch_time_s(**kw, fp8=True)
    assert math.isclose(fp8 - 14e-6, (plain - 14e-6) * (1 + 4 / 128) / 2)
    assert moe_dispatch_time_s(**{**kw, "ep": 1}) == 0.0
