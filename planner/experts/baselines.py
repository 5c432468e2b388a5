"""Anchor baselines, evaluated with the planner's own evaluator (planner.experts.evaluate).

  contiguous        Megatron-LM default: expert e on GPU floor(e * G / E), no replicas
  round_robin       expert e on GPU e mod G, no replicas
  greedy_replicate  in the spirit of DeepSeek's EPLB (written from its published description, not its
                    code): give each spare slot to the expert with the heaviest per-replica load; pack
                    replicas heaviest first onto the least-loaded GPU that has a free slot (and does not
                    hold that expert yet); every replica takes an equal share of its expert's tokens
  affinity_only     in the spirit of MoETuner/ExFlow: no replicas; experts are packed to equalise the
                    expert count per GPU (the average, not the busiest GPU), choosing nodes by routing
                    affinity with the neighbouring layers, sweeping forward and backward
"""

import heapq

import numpy as np

from planner.experts.evaluate import Layout, node_shares
from planner.experts.heuristic import affinity_scores, replica_counts
from planner.experts.request import ExpertRequest

AFFINITY_SWEEPS = 3


def equal_shares(slots: np.ndarray, experts: int) -> np.ndarray:
    """[E, G] equal split of each expert across its replicas."""
    share = np.zeros((experts + 1, slots.shape[0]))
    share[np.where(slots >= 0, slots, experts), np.arange(slots.shape[0])[:, None]] = 1.0
    share = share[:experts]
    counts = share.sum(axis=1, keepdims=True)
    return np.divide(share, counts, out=np.zeros_like(share), where=counts > 0)


def _fixed(request: ExpertRequest, gpu_of_expert: np.ndarray) -> Layout:
    layers, experts, gpus, width = request.layers, request.experts, request.num_gpus, request.slots_per_gpu
    slots = np.full((gpus, width), -1, dtype=np.int64)
    fill = np.zeros(gpus, dtype=np.int64)
    for e in range(experts):
        g = int(gpu_of_expert[e])
        slots[g, fill[g]] = e
        fill[g] += 1
    share = equal_shares(slots, experts)
    return Layout(slots=np.repeat(slots[None], layers, axis=0), share=np.repeat(share[None], layers, axis=0))


def contiguous(request: ExpertRequest) -> Layout:
    e = np.arange(request.experts)
    return _fixed(request, e * request.num_gpus // request.experts)


def round_robin(request: ExpertRequest) -> Layout:
    return _fixed(request, np.arange(request.experts) % request.num_gpus)


def _greedy_layer(load: np.ndarray, gpus: int, width: int, max_replicas: int) -> np.ndarray:
    counts = replica_counts(load, np.ones_like(load), gpus * width, max_replicas)
    slots = np.full((gpus, width), -1, dtype=np.int64)
    free = [width] * gpus
    held: list[set] = [set() for _ in range(gpus)]
    heap = [(0.0, g) for g in range(gpus)]  # (load, GPU) of the GPUs with a free slot: least loaded first
    items = sorted(((load[e] / counts[e], e) for e in range(load.shape[0]) for _ in range(counts[e])),
                   key=lambda it: (-it[0], it[1]))
    for w, e in items:
        skipped = []
        while heap and e in held[heap[0][1]]:
            skipped.append(heapq.heappop(heap))
        if heap:  # else every free slot is on a GPU holding e: leave this replica out
            gpu_load, g = heapq.heappop(heap)
            slots[g, width - free[g]] = e
            free[g] -= 1
            held[g].add(e)
            if free[g]:
                heapq.heappush(heap, (gpu_load + w, g))
        for item in skipped:
            heapq.heappush(heap, item)
    return slots


def greedy_replicate(request: ExpertRequest) -> Layout:
    load = request.stats.expert_load
    slots = np.stack([_greedy_layer(load[l], request.num_gpus, request.slots_per_gpu, request.max_replicas())
                      for l in range(request.layers)])
    share = np.stack([equal_shares(s, request.experts) for s in slots])
    return Layout(slots=slots, share=share)


def _count_balanced(order: list, gpus: int, quota: np.ndarray, node_of: np.ndarray, score) -> np.ndarray:
    """Experts in `order` onto the open GPU (fill < quota) of least key fill - 1e6 * score[e, node] / max_n
    score[e, n], lowest index first: per node, the open GPU of least (fill, index) is its candidate."""
    width = int(quota.max())
    slots = np.full((gpus, width), -1, dtype=np.int64)
    nodes = int(node_of.max()) + 1
    heaps = [[(0, g) for g in range(gpus) if node_of[g] == n and quota[g] > 0] for n in range(nodes)]
    weight = [[0.0] * nodes for _ in order]
    if score is not None:
        weight = (1e6 * score / np.maximum(score.max(axis=1, keepdims=True), 1e-12)).tolist()
    for e in order:
        row = weight[e]
        best = min((heaps[n][0][0] - row[n], heaps[n][0][1], n) for n in range(nodes) if heaps[n])
        n = best[2]
        fill, g = heapq.heappop(heaps[n])
        slots[g, fill] = e
        if fill + 1 < quota[g]:
            heapq.heappush(heaps[n], (fill + 1, g))
    return slots


def affinity_only(request: ExpertRequest) -> Layout:
    layers, experts, gpus = request.layers, request.experts, request.num_gpus
    node_of = request.node_of_gpu()
    nodes = int(node_of.max()) + 1
    quota = np.full(gpus, experts // gpus) + (np.arange(gpus) < experts % gpus)
    load = request.stats.expert_load
    trans = request.stats.transitions
    slots = [None] * layers
    ns = [None] * layers
    for sweep in range(AFFINITY_SWEEPS if trans is not None else 1):
        order = range(layers) if sweep % 2 == 0 else range(layers - 1, -1, -1)
        for l in order:
            score = affinity_scores(trans, l, ns)
            by_load = sorted(range(experts), key=lambda e: (-load[l, e], e))
            slots[l] = _count_balanced(by_load, gpus, quota, node_of, score)
            ns[l] = node_shares(equal_shares(slots[l], experts), node_of, nodes)
    width = request.slots_per_gpu
    padded = np.full((layers, gpus, width), -1, dtype=np.int64)
    for l in range(layers):
        padded[l, :, :slots[l].shape[1]] = slots[l]
    share = np.stack([equal_shares(s, experts) for s in padded])
    return Layout(slots=padded, share=share)


BASELINES = {"contiguous": contiguous, "round_robin": round_robin, "greedy_replicate": greedy_replicate,
             "affinity_only": affinity_only}
