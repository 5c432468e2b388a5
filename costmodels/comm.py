"""Collectives (seconds): algorithm steps x per-hop latency + bytes / bandwidth of each level crossed.

A group of n ranks with rank stride `stride` (Megatron order: tp innermost, then cp, then dp, then pp;
experts: etp, then ep, then edp) on nodes of D devices keeps k = min(n, max(1, D // stride)) members
per node and spans n / k nodes. `Links` carries the effective bandwidths per device and direction
(datasheet x the fitted intra_node_efficiency / inter_node_efficiency) and the latencies:

  call_s   fixed cost of one collective call (launch, setup; calibration.collective_latency_s)
  hop_s    one dependent step of the algorithm: intra_node_latency_s inside a node, inter_node_latency_s
           across nodes (device profile)

Ring algorithms over n ranks (nccl-tests `PERFORMANCE.md` bus-bandwidth factors), buffer of S bytes:
  all-reduce       2(n-1) steps, 2(n-1)/n · S / B
  all-gather       (n-1) steps,  (n-1)/n · S / B        (S = gathered size)
  reduce-scatter   (n-1) steps,  (n-1)/n · S / B        (S = size before scattering)
  p2p              1 step,       S / B
Inside one node B = B_intra. A group with one member per node crosses the NICs; every GPU drives its own
NIC rail, so the ring runs at B_inter. A group with k > 1 members on each of several nodes runs
hierarchically, with the k members of a node driving k NICs in parallel (NCCL opens one channel per
NIC): all-gather / reduce-scatter = the across-node ring on S/k per member + the inside-node ring on S;
all-reduce = reduce-scatter inside + all-reduce across on S/k + all-gather inside. The number of dependent
steps, and so the latency, grows with the group: (k-1)·hop_intra + (n/k - 1)·hop_inter for a gather.

All-to-all (every rank sends S bytes in total, spread evenly): the (k-1)/n share on NVLink and the
(n-k)/n share on the NICs move at the same time (max of the two), one hop of each level.
MoE dispatch/combine (`moe_dispatch_time_s`) adds per-node de-duplication (DeepEP: a token bound for
several experts on one node crosses the NIC once, then fans out over NVLink) and an FP8 payload.
"""

from dataclasses import dataclass

from costmodels.hardware import DeviceSpec

OPS = ("all_reduce", "all_gather", "reduce_scatter", "all_to_all", "p2p")
FP8_SCALE_BYTES_PER_VALUE = 4.0 / 128
"""FP8 dispatch payload carries one fp32 scale per 128 values (DeepSeek-V3 block-wise quantisation)"""


@dataclass(frozen=True, slots=True)
class Links:
    """Effective link figures of one node type, per device and direction."""

    devices_per_node: int
    intra_bytes_per_s: float
    """NVLink (scale-up) bandwidth actually reached by collectives"""
    inter_bytes_per_s: float
    """NIC bandwidth actually reached by collectives"""
    intra_hop_s: float
    """one dependent step inside a node"""
    inter_hop_s: float
    """one dependent step across nodes"""
    call_s: float
    """fixed cost of one collective call"""

    @classmethod
    def of(cls, device: DeviceSpec, devices_per_node: int, intra_bytes_per_s: float,
           inter_bytes_per_s: float) -> "Links":
        """Links of a node of `device`s with the given datasheet bandwidths (efficiencies applied here)."""
        cal = device.calibration
        return cls(devices_per_node, intra_bytes_per_s * cal.intra_node_efficiency,
                   inter_bytes_per_s * cal.inter_node_efficiency, device.intra_node_latency_s,
                   device.inter_node_latency_s, cal.collective_latency_s)


def members_per_node(n: int, stride: int, devices_per_node: int) -> int:
    """Members of a group of n ranks with the given stride that share one node."""
    return min(n, max(1, devices_per_node // stride))


def _ring(op: str, size_bytes: float, n: int, bw: float, hop_s: float) -> float:
    """Bandwidth + step latency of a flat ring (no call cost)."""
    if n <= 1:
        return 0.0
    steps = 2 * (n - 1) if op == "all_reduce" else n - 1
    return steps * hop_s + steps / n * size_bytes / bw


def collective_time_s(op: str, size_bytes: float, n: int, stride: int, links: Links) -> float:
    """Time of one collective of `op` over a group of n ranks spaced `stride` apart."""
    if op not in OPS:
        raise ValueError(f"unknown collective {op!r}; valid: {', '.join(OPS)}")
    if size_bytes <= 0 or (n <= 1 and op != "p2p"):
        return 0.0
    if op == "p2p":
        same_node = stride < links.devices_per_node
        bw, hop = (links.intra_bytes_per_s, links.intra_hop_s) if same_node else \
            (links.inter_bytes_per_s, links.inter_hop_s)
        return links.call_s + hop + size_bytes / bw
    k = members_per_node(n, stride, links.devices_per_node)
    nodes = n // k
    if op == "all_to_all":
        return links.call_s + _all_to_all(size_bytes * (k - 1) / n, size_bytes * (n - k) / n, k, nodes, links)
    if nodes <= 1:
        return links.call_s + _ring(op, size_bytes, n, links.intra_bytes_per_s, links.intra_hop_s)
    if k == 1:
        return links.call_s + _ring(op, size_bytes, n, links.inter_bytes_per_s, links.inter_hop_s)
    inside = _ring("all_gather", size_bytes, k, links.intra_bytes_per_s, links.intra_hop_s)
    across = _ring(op, size_bytes / k, nodes, links.inter_bytes_per_s, links.inter_hop_s)
    return links.call_s + across + (2 * inside if op == "all_reduce" else inside)


def _all_to_all(intra_bytes: float, inter_bytes: float, k: int, nodes: int, links: Links) -> float:
    intra = (links.intra_hop_s + intra_bytes / links.intra_bytes_per_s) if k > 1 else 0.0
    inter = (links.inter_hop_s + inter_bytes / links.inter_bytes_per_s) if nodes > 1 else 0.0
    return max(intra, inter)


def dispatch_bytes_per_value(fp8: bool) -> float:
    """Bytes on the wire per hidden value of a dispatched token: bf16, or fp8 plus its block scales."""
    return 1.0 + FP8_SCALE_BYTES_PER_VALUE if fp8 else 2.0


def moe_dispatch_time_s(tokens: float, hidden: int, top_k: int, ep: int, stride: int, links: Links, *,
                        dedup: bool = False, fp8: bool = False) -> float:
    """One MoE dispatch (or combine) over an EP group of `ep` ranks spaced `stride` apart (seconds).

    `tokens` tokens of this rank each go to `top_k` experts spread uniformly over the ep ranks; a copy for
    the own GPU is free, (k-1)/ep of the copies stay in the node, (ep-k)/ep cross a NIC. With `dedup` a
    token crosses to each remote node it needs once: E[remote nodes] = (N-1)·(1 - (1 - 1/N)^top_k) for
    N = ep/k nodes, and the copies fan out over NVLink at the receiving node. `fp8` sends fp8 values
    with block scales (dispatch only; the combine carries bf16 partial outputs).
    """
    if ep <= 1 or tokens <= 0:
        return 0.0
    k = members_per_node(ep, stride, links.devices_per_node)
    nodes = ep // k
    per_copy = hidden * dispatch_bytes_per_value(fp8)
    intra = tokens * top_k * (k - 1) / ep * per_copy
    if dedup and nodes > 1:
        remote_nodes = (nodes - 1) * (1.0 - (1.0 - 1.0 / nodes) ** top_k)
        inter = tokens * remote_nodes * per_copy
        intra += tokens * top_k * (ep - k) / ep * (k - 1) / k * per_copy  # fan-out at the receiving node
    else:
        inter = tokens * top_k * (ep - k) / ep * per_copy
    return links.call_s + _all_to_all(intra, inter, k, nodes, links)


def p2p_time_s(size_bytes: float, bytes_per_s: float, device: DeviceSpec) -> float:
    """One point-to-point message over a given link (e.g. between two pools) at the NICs' efficiency."""
    if size_bytes <= 0:
        return 0.0
    cal = device.calibration
    wire = size_bytes / (bytes_per_s * cal.inter_node_efficiency)
    return cal.collective_latency_s + device.inter_node_latency_s + wire
