"""Alpha-beta collectives over the slowest link a group spans (seconds).

A group of n ranks with rank stride `stride` (Megatron order: tp innermost, then cp, then dp, then pp;
experts: etp, then ep, then edp) on nodes of D devices keeps k = min(n, max(1, D // stride)) members
per node and spans n / k nodes. Bus bandwidths are per device and per direction, times the fitted
efficiencies of DeviceCalibration: B_intra = link·intra_node_efficiency, B_inter = NIC·inter_node_efficiency.

Ring costs for a buffer of S bytes (nccl-tests `PERFORMANCE.md` bus-bandwidth factors):
  all-reduce       alpha + 2(n-1)/n · S / B
  all-gather       alpha + (n-1)/n · S / B        (S = gathered size)
  reduce-scatter   alpha + (n-1)/n · S / B        (S = size before scattering)
  all-to-all       alpha + (n-1)/n · S / B        (S = bytes each rank sends in total)
  p2p              alpha + S / B
Inside one node B = B_intra; with one member per node B = B_inter (each GPU has its own NIC rail).
Groups with k > 1 members on each of several nodes are hierarchical:
  all-reduce = reduce-scatter inside the node (S) + all-reduce across nodes (S/k) + all-gather inside (S)
  all-gather / reduce-scatter = the across-node phase on S/k + the inside-node phase on S
  all-to-all = the (k-1)/n share over the node link + the (n-k)/n share over the NICs.
"""

from costmodels.hardware import DeviceCalibration

OPS = ("all_reduce", "all_gather", "reduce_scatter", "all_to_all", "p2p")


def members_per_node(n: int, stride: int, devices_per_node: int) -> int:
    """Members of a group of n ranks with the given stride that share one node."""
    return min(n, max(1, devices_per_node // stride))


def _ring(op: str, size_bytes: float, n: int, bw: float, alpha: float) -> float:
    if n <= 1 or size_bytes <= 0:
        return 0.0
    if op == "all_reduce":
        return alpha + 2.0 * (n - 1) / n * size_bytes / bw
    return alpha + (n - 1) / n * size_bytes / bw


def collective_time_s(op: str, size_bytes: float, n: int, stride: int, *, devices_per_node: int,
                      intra_bytes_per_s: float, inter_bytes_per_s: float, calibration: DeviceCalibration) -> float:
    """Time of one collective of `op` over a group of n ranks spaced `stride` apart."""
    if op not in OPS:
        raise ValueError(f"unknown collective {op!r}")
    alpha = calibration.collective_latency_s
    b_intra = intra_bytes_per_s * calibration.intra_node_efficiency
    b_inter = inter_bytes_per_s * calibration.inter_node_efficiency
    if op == "p2p":
        if size_bytes <= 0:
            return 0.0
        return alpha + size_bytes / (b_intra if stride < devices_per_node else b_inter)
    if n <= 1 or size_bytes <= 0:
        return 0.0
    k = members_per_node(n, stride, devices_per_node)
    nodes = n // k
    if nodes <= 1:
        return _ring(op, size_bytes, n, b_intra, alpha)
    if k == 1:
        return _ring(op, size_bytes, n, b_inter, alpha)
    if op == "all_to_all":
        return alpha + size_bytes * (k - 1) / n / b_intra + size_bytes * (n - k) / n / b_inter
    inside = _ring("all_gather", size_bytes, k, b_intra, alpha)
    across = _ring(op, size_bytes / k, nodes, b_inter, alpha)
    return across + (2 * inside if op == "all_reduce" else inside)


def p2p_time_s(size_bytes: float, bytes_per_s: float, calibration: DeviceCalibration) -> float:
    """One point-to-point message over a given link (e.g. between two pools), efficiency of the NICs."""
    if size_bytes <= 0:
        return 0.0
    return calibration.collective_latency_s + size_bytes / (bytes_per_s * calibration.inter_node_efficiency)
