"""The token-expert rows that aiconfigurator-core's SGLang MoE collector hands the Triton fused-MoE kernel.

The measured SGLang MoE table (aiconfigurator_tables.load, `moe`, balanced routing) does not time the engine's
expert-parallel layer: its collector (ai-dynamo/aiconfigurator collector/sglang/collect_moe.py at the commit that
collected the SGLang 0.5.14 data, e23be5a7, 2026-07-13) builds GPU 0's share of the layer and calls the kernel
on it directly. What it builds, a fact of that script, not fitted:
  routing   collector/helper.py balanced_logits: stride = ceil(E / topk); token t picks experts
            (t + j·stride) mod E, j < topk (fewer tokens than the stride: floor(t·stride/tokens) + j·stride);
            DeepSeek-V3's grouped top-k on those logits picks groups 0-3 and their lowest ids (grouped_choices)
  EP > 1    GPU 0 owns experts 0 .. E/ep - 1; it keeps the tokens with at least one slot there (M0 of them) and
            marks their other slots -1 with weight 0 (build_rank0_local_workload); the collector then clamps
            -1 to 0, so every remote slot of a kept token is computed, for real, by local expert 0
  config    the tuned config file of (E/ep, inter/tp) at the token-count key nearest M0, else the default config
            for M = M0 (get_default_config)
So under EP the kernel computes M0·topk rows (not tokens·topk/ep), expert 0 holding most of them. SGLang itself
(an expert map: remote slots write zero rows) does not, and the collector runs that bare-kernel path only for
models with plain softmax routing (RAW_KERNEL_SHAPES): this module describes the measurement only and is used by
benchmarks/serve_engine_fit.py to fit the kernel constants on what the table timed.
"""

import functools
import math

import numpy as np


def balanced_choices(tokens: int, experts: int, topk: int) -> np.ndarray:
    """(tokens x topk) expert ids of the collector's balanced routing (balanced_logits, then top-k of it)."""
    stride = math.ceil(experts / topk)
    t = np.arange(tokens)[:, None]
    j = np.arange(topk)[None, :]
    if tokens >= stride:
        picked = (t + j * stride) % experts
    else:
        picked = np.floor(np.mod(t * stride / tokens + j * stride, experts)).astype(np.int64)
    ordered = np.sort(picked, axis=1)
    for row in np.nonzero((ordered[:, 1:] == ordered[:, :-1]).any(axis=1))[0]:
        # a repeated id (E not a multiple of topk) leaves its place to the lowest free expert
        chosen = list(dict.fromkeys(int(i) for i in picked[row]))
        free = (e for e in range(experts) if e not in chosen)
        picked[row] = chosen + [next(free) for _ in range(topk - len(chosen))]
    return picked


def grouped_choices(picked: np.ndarray, experts: int, groups: int, topk_group: int) -> np.ndarray:
    """The experts grouped top-k routing (DeepSeek-V3: sigmoid scores, correction bias 0, n_group, topk_group)
    selects from logits that favour the `picked` experts of each token equally: the topk_group groups with the
    highest top-2 score sum (min(favoured experts in the group, 2)), then the top-k experts inside them, every
    tie going to the lower index (as the measured times show: SGLang's kernel at EP 2 is exactly as slow as at
    EP 1, i.e. GPU 0, holding groups 0-3, gets every slot)."""
    tokens, topk = picked.shape
    favoured = np.zeros((tokens, experts), dtype=np.int64)
    np.put_along_axis(favoured, picked, 1, axis=1)
    per_group = experts // groups
    score = np.minimum(favoured.reshape(tokens, groups, per_group).sum(axis=2), 2)
    chosen_groups = np.argsort(-score * groups + np.arange(groups), axis=1, kind="stable")[:, :topk_group]
    allowed = np.zeros((tokens, groups), dtype=bool)
    np.put_along_axis(allowed, chosen_groups, True, axis=1)
    inside = np.repeat(allowed, per_group, axis=1)
    key = np.where(inside, (1 - favoured) * experts, 2 * experts) + np.arange(experts)
    return np.sort(np.argsort(key, axis=1, kind="stable")[:, :topk], axis=1)


GROUPED_ROUTING = {(7168, 2048, 8, 256): (8, 4)}
"""(hidden, expert width, top-k, experts) -> (n_group, topk_group) of the table's shapes routed by grouped top-k in
the collector (collector/cases/models/DeepseekV3ForCausalLM_cases.yaml: DeepSeek-V3, sigmoid scores)"""

RAW_KERNEL_SHAPES = frozenset({(4096, 14336, 2, 8), (6144, 16384, 2, 8)})
"""(hidden, expert width, top-k, experts) of the table's MoE shapes that the collector times on the bare Triton kernel
with its rank-0 workload: the models whose case file sets no routing method (collector/cases/models/
MixtralForCausalLM_cases.yaml: Mixtral 8x7B, 8x22B). The others (Qwen3 MoE: routing_method_type Renormalize;
DeepSeek-V3: sigmoid grouped routing) run SGLang's own FusedMoE layer (_benchmark_framework_quantized_moe): every
token through the engine's expert map, remote slots walked as zero rows, the config chosen for all tokens."""


@functools.cache
def measured_rows(tokens: int, experts: int, topk: int, ep: int, raw_kernel: bool,
                  grouped: tuple[int, int] | None = None) -> tuple[int, tuple[tuple[int, int], ...], int]:
    """(M, ((rows, number of local experts with that many rows), ...), slots walked) of GPU 0's kernel: M the
    token count its config is chosen for. `raw_kernel` (RAW_KERNEL_SHAPES) under EP: the M0 tokens with a slot on
    GPU 0, their remote slots computed by expert 0, nothing else walked; else every token enters, GPU 0's experts
    compute their own slots and the kernel walks all tokens·topk slots. `grouped`: (n_group, topk_group) of a
    grouped top-k routing applied to the balanced logits (GROUPED_ROUTING)."""
    local = experts // ep
    ids = balanced_choices(tokens, experts, topk)
    if grouped is not None:
        ids = grouped_choices(ids, experts, *grouped)
    walked = tokens * topk
    if ep > 1 and raw_kernel:
        ids = ids[(ids < local).any(axis=1)]
        ids = np.where(ids < local, ids, 0)
        walked = ids.size
    counts = np.bincount(ids[ids < local], minlength=local)
    values, multiplicity = np.unique(counts, return_counts=True)
    rows = tuple((int(v), int(m)) for v, m in zip(values, multiplicity, strict=True))
    return int(ids.shape[0]), rows, walked
