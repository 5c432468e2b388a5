"""Alpha-beta collectives: ring factors, node spanning, hierarchy."""

import math

from costmodels import DeviceCalibration
from costmodels.comm import collective_time_s, members_per_node

CAL = DeviceCalibration(intra_node_efficiency=0.5, inter_node_efficiency=0.5, collective_latency_s=10e-6)
LINKS = dict(devices_per_node=8, intra_bytes_per_s=400e9, inter_bytes_per_s=50e9, calibration=CAL)


def t(op, size, n, stride):
    return collective_time_s(op, size, n, stride, **LINKS)


def test_members_per_node():
    assert members_per_node(8, 1, 8) == 8
    assert members_per_node(16, 1, 8) == 8
    assert members_per_node(32, 4, 8) == 2
    assert members_per_node(6, 8, 8) == 1


def test_intra_node_ring():
    # all-reduce of 1 GB over 8 GPUs in a node: 10 us + 2*7/8 * 1e9 / (400e9*0.5) = 10 us + 8.75 ms
    assert math.isclose(t("all_reduce", 1e9, 8, 1), 10e-6 + 8.75e-3)
    # all-gather / reduce-scatter: half the traffic
    assert math.isclose(t("all_gather", 1e9, 8, 1), 10e-6 + 4.375e-3)
    assert t("all_reduce", 1e9, 1, 1) == 0.0


def test_one_member_per_node_uses_the_nic():
    # 4 ranks with stride 8: 4 nodes; 2*3/4 * 1e9 / 25e9 = 60 ms
    assert math.isclose(t("all_reduce", 1e9, 4, 8), 10e-6 + 60e-3)


def test_hierarchical_all_reduce():
    # 16 ranks, stride 1: 8 per node, 2 nodes. RS inside (7/8 * 1e9/200e9 = 4.375 ms) + AR across
    # on 1e9/8 (2*1/2 * 125e6/25e9 = 5 ms) + AG inside (4.375 ms), three latencies
    assert math.isclose(t("all_reduce", 1e9, 16, 1), 3 * 10e-6 + 4.375e-3 + 5e-3 + 4.375e-3)
    # reduce-scatter: the inside phase once: 4.375 ms + across 1/2 * 125e6/25e9 = 2.5 ms
    assert math.isclose(t("reduce_scatter", 1e9, 16, 1), 2 * 10e-6 + 4.375e-3 + 2.5e-3)


def test_all_to_all_and_p2p():
    # a2a over 16 ranks (2 nodes): 7/16 of S on NVLink, 8/16 on the NIC
    assert math.isclose(t("all_to_all", 1.6e9, 16, 1), 10e-6 + 0.7e9 / 200e9 + 0.8e9 / 25e9)
    assert math.isclose(t("p2p", 1e9, 2, 4), 10e-6 + 1e9 / 200e9)
    assert math.isclose(t("p2p", 1e9, 2, 8), 10e-6 + 1e9 / 25e9)
