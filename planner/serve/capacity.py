"""Candidate instance shapes and their SLO-feasible capacities (requests/s), per serving mode.

Notation: λ arrival rate (req/s); L, O input/output lengths (distribution from the workload); q the SLO
percentile; P(L) prefill time of one prompt; t_kv(L) KV transfer time; d(B, c) decode step of B sequences at
context c; T_ttft, T_tpot the SLOs.
  prefill   one router queue in front of the prefill instances (the first free instance takes the oldest
            prompts): each step carries every queued prompt that fits the token budget B (batched prefill,
            planner.serve.batching); c instances of a shape with batch cap k form an M/G/(c·k) queue with per-slot
            service S_k = P_k(L)/pp (pp stages pipeline steps): w_q(λ; c·k) + P_k(L_q) + t_kv(L_q) ≤ T_ttft →
            λ_P(c) = largest λ meeting it over the caps k, for c = 1 .. MAX_POOLED (costmodels.queueing; with B = 1
            λ_P(1) is the M/G/1 figure, λ_P(c) ≥ c·λ_P(1))
  decode    caps B with d(b, c̄) ≤ T_tpot at every b ≤ B and B·(L+O)_q ≤ KV capacity, c̄ the time-averaged
            context E[L·O]/E[O] + E[O²]/(2E[O]); slots busy at the (1+3q)/4 quantile ≤ B (square-root
            staffing) → λ_D = max over those caps of a_max(B) / (E[O]·d(B, c̄)) (d is not monotone in B, so the
            largest cap is not always the best; a looser TPOT never gives less)
  colocated chunked prefill (Sarathi): each iteration carries ≤ B decode tokens and up to C prompt tokens,
            m(B, C) ≤ T_tpot; the prompts' queue (planner.serve.colocated: several queued prompts per chunk when
            the engine batches prompts, token budget > 1; iterations priced at the decode batch the load brings):
            λ_P = largest λ with W_q(λ) + ⌈L_q/C⌉·τ(λ) ≤ T_ttft; λ = min(λ_P, λ_D), maximised over C ∈ CHUNKS
            (B the largest feasible for each C)
  intra_gpu semi-PD: prefill gets a compute share s, decode 1 − s of the same GPUs (no KV transfer);
            prefill steps (batched as above) P/s, decode step d·max(1, BW_SATURATION_SHARE/(1 − s)) (HBM
            bandwidth saturates with BW_SATURATION_SHARE of the SMs); both engine processes hold the weights, so
            the KV room is the HBM left after two copies. The KV stays on the instance, so the router commits a
            request to an instance before its prefill (weighted round-robin, as for colocated): one prefill queue
            per instance. λ_P(s) increases and λ_D(s) decreases in s, so max_s min(λ_P, λ_D) is at their crossing,
            found by bisection (exact to SHARE_TOL); λ_D is flat up to BW_SATURATION_SHARE, so a crossing below it
            moves up to it (the same rate, shorter prefill steps).
  round robin  colocated and intra_gpu instances each queue alone, fed round-robin: c instances each get every c-th
            request of the Poisson stream (squared coefficient of variation of the gaps 1/c), a GI/G/1 prompt queue
            (costmodels.queueing, QNA): the rate of c instances is c·min(λ_P(c_a² = 1/c), λ_D) (pooled_rps), at the
            colocated chunk chosen for one instance and at the intra-GPU share set for the most instances the pool
            holds (the crossing above at c_a² = 1/most: a smaller share, so more of the GPU for decode).
"""

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from costmodels.errors import SpecError
from costmodels.hardware import ClusterSpec, NodePool
from costmodels.kv import kv_bytes_per_token
from costmodels.model import ModelSpec
from costmodels.queueing import max_offered_load
from costmodels.serving import (
    InstanceShape,
    check_shape,
    decode_step_time,
    default_prefill_token_budget,
    kv_capacity_tokens,
    kv_transfer_time,
    mixed_step_time,
    prefill_time,
)
from costmodels.serving_shapes import quant_block_problem
from planner.serve import batching
from planner.serve.colocated import ColocatedQueue
from planner.serve.request import ServeOptions, ServingWorkload

CHUNKS = (256, 512, 1024, 2048, 4096)
BW_SATURATION_SHARE = 0.5
SHARE_TOL = 1e-4
MAX_BATCH = 1024
GRID_POINTS = 16
INTRA_GPU_WEIGHT_COPIES = 2
"""intra_gpu: the prefill and decode engine processes on the same GPUs each load the weights (vLLM/SGLang)"""
MAX_POOLED = 64
"""largest number of pooled prefill instances of one shape priced exactly (more: linear beyond)"""


@dataclass(frozen=True, kw_only=True, slots=True)
class LengthStats:
    """Summary of the length distribution used by every capacity model."""

    mean_in: float
    mean_out: float
    q_in: float
    q_out: float
    q_total: float
    ctx_avg: float
    inputs: tuple
    """the sample of input lengths (for E[S], E[S²])"""

    @staticmethod
    def of(workload: ServingWorkload) -> "LengthStats":
        li, lo = workload.length_sample()
        li, lo = li.astype(float), lo.astype(float)
        q = workload.quantile
        ctx = float(np.mean(li * lo) / np.mean(lo) + np.mean(lo ** 2) / (2 * np.mean(lo)))
        return LengthStats(mean_in=float(li.mean()), mean_out=float(lo.mean()), q_in=float(np.quantile(li, q)),
                           q_out=float(np.quantile(lo, q)), q_total=float(np.quantile(li + lo, q)), ctx_avg=ctx,
                           inputs=tuple(li.tolist()))


@dataclass(frozen=True, kw_only=True, slots=True)
class Candidate:
    """One instance shape on one pool, with its capacity in one role."""

    role: str
    """prefill, decode, colocated or intra_gpu"""
    pool: str
    """cluster pool of the instance"""
    dest_pool: str
    """prefill only: the pool of the decode instances it sends KV to (others: == pool)"""
    tp: int
    pp: int
    ep: int
    dp: int
    gpus: int
    """GPUs per instance"""
    capacity_rps: float
    """SLO-feasible request rate of one instance"""
    max_batch: int = 0
    """decode/colocated/intra_gpu: largest decode batch"""
    chunk_tokens: int = 0
    """colocated: prefill chunk size"""
    prefill_share: float = 0.0
    """intra_gpu: compute share given to prefill"""
    ttft_floor_s: float = 0.0
    """TTFT percentile at zero load (prefill time + KV transfer)"""
    tpot_s: float = 0.0
    """decode step at max_batch (the TPOT bound)"""
    mean_service_s: float = 0.0
    """mean prefill service time (prefill, colocated, intra_gpu)"""
    second_moment_s2: float = 0.0
    """E[S²] of the prefill service time"""
    kv_bytes_per_req: float = 0.0
    """prefill: KV bytes sent per request"""
    cost_per_hour: float = 0.0
    """price of one instance"""
    pooled_rps: tuple[float, ...] = ()
    """SLO-feasible rate of c = 1, 2, ... instances: prefill behind one router (M/G/c); colocated and intra_gpu fed
    round-robin by the router (GI/G/1 at c_a² = 1/c, CapacityModel.round_robin_rates); empty: c x one"""
    prefill_token_budget: int = 0
    """prefill and intra_gpu: tokens one prefill step carries (1 = one prompt per step; 0 = no prefill server)"""
    caps: tuple[batching.CapModel, ...] = ()
    """prefill and intra_gpu: the batched prefill server's queueing model per batch cap (planner.serve.batching)"""
    queue: ColocatedQueue | None = dataclasses.field(default=None, compare=False)
    """colocated: the prompt queue, whose iterations lengthen with the load (round-robin instances past one
    instance's capacity)"""

    def group_rps(self, count: int) -> float:
        """SLO-feasible rate of `count` instances of this candidate (pooled for prefill)."""
        if count <= 0:
            return 0.0
        if self.pooled_rps and count <= len(self.pooled_rps):
            return self.pooled_rps[count - 1]
        return count * self.capacity_rps

    def scaled(self, factor: float) -> "Candidate":
        """The candidate with every capacity multiplied by `factor`."""
        return dataclasses.replace(self, capacity_rps=self.capacity_rps * factor,
                                   pooled_rps=tuple(r * factor for r in self.pooled_rps))

    @property
    def shape(self) -> InstanceShape:
        return InstanceShape(tp=self.tp, pp=self.pp, ep=self.ep, dp=self.dp)

    @property
    def key(self) -> tuple:
        return (self.role, self.pool, self.dest_pool, self.tp, self.pp, self.ep, self.dp)

    @property
    def name(self) -> str:
        extra = f">{self.dest_pool}" if self.role == "prefill" and self.dest_pool != self.pool else ""
        return f"{self.role}:{self.pool}{extra}:tp{self.tp}pp{self.pp}ep{self.ep}dp{self.dp}"

    def ttft_quantile_s(self, rate: float, quantile: float, servers: int = 1, arrival_scv: float = 1.0) -> float:
        """Predicted TTFT percentile of `servers` pooled instances (one router queue) at total arrival rate `rate`,
        or of one instance fed round-robin (arrivals of squared coefficient of variation arrival_scv: its share of a
        Poisson stream, costmodels.queueing): the batched prefill server's best batch cap (planner.serve.batching)."""
        caps = self.caps or (batching.CapModel(cap=1, mean_s=self.mean_service_s, second_s2=self.second_moment_s2,
                                               own_s=(self.ttft_floor_s,)),)
        ttft = batching.ttft_quantile_s(caps, rate, quantile, servers, arrival_scv)
        if self.queue is None:
            return ttft
        # colocated: `caps` holds the queue at the capacity rate (conservative below it); past it (c >= 2 instances fed
        # round-robin) the queue's own figure at the load, which is the larger there
        return max(ttft, self.queue.ttft_s(rate, quantile, arrival_scv))

    def to_json(self) -> dict:
        out = {"role": self.role, "pool": self.pool, "dest_pool": self.dest_pool, "tp": self.tp, "pp": self.pp,
               "ep": self.ep, "dp": self.dp, "gpus": self.gpus, "capacity_rps": self.capacity_rps,
               "max_batch": self.max_batch, "chunk_tokens": self.chunk_tokens, "prefill_share": self.prefill_share,
               "ttft_floor_s": self.ttft_floor_s, "tpot_s": self.tpot_s}
        if self.prefill_token_budget:
            out["prefill_token_budget"] = self.prefill_token_budget
        return out


def shapes_for(model: ModelSpec, pool: NodePool, options: ServeOptions) -> list[InstanceShape]:
    """Instance shapes that pass divisibility, fit a node per TP group, and fit the pool."""
    out = []
    per_node = pool.devices_per_node
    tps = [t for t in (1, 2, 4, 8, 16) if t <= per_node and model.heads % t == 0]
    pps = [p for p in (1, 2, 4, 8) if p <= options.max_pp and p <= model.layers]
    for tp in tps:
        for pp in pps:
            dps = (1,) if model.moe is None else tuple(d for d in (1, 2, 4, 8, 16) if tp * d <= 2 * per_node)
            for dp in dps:
                if tp * dp * pp > pool.num_devices or (dp > 1 and pp > 1):
                    continue
                eps = (1,) if model.moe is None else \
                    tuple(e for e in sorted({1, tp * dp, options.ep or 1}) if (tp * dp) % e == 0)
                for ep in eps:
                    shape = InstanceShape(tp=tp, pp=pp, ep=ep, dp=dp)
                    try:
                        check_shape(model, shape)
                    except SpecError:
                        continue
                    if (dp > 1 and ep == 1) or quant_block_problem(model, shape, options.quant_block) \
                            or options.ep not in (0, ep) or options.attention_dp not in (0, dp):
                        continue
                    out.append(shape)
    return out


def kv_link(cluster: ClusterSpec, src: NodePool, dst: NodePool) -> tuple[float, float]:
    """(bytes/s per GPU, latency) of the link a KV transfer from pool src to pool dst uses: NVLink when the pool is
    one node (prefill and decode share it), the NIC between nodes of one pool, the inter-pool link between pools."""
    if src.name == dst.name:
        if src.nodes == 1:
            return src.intra_node_bytes_per_s, src.device.intra_node_latency_s
        return src.inter_node_bytes_per_s, src.device.inter_node_latency_s
    bw = cluster.inter_pool_bytes_per_s or min(src.inter_node_bytes_per_s, dst.inter_node_bytes_per_s)
    return bw, max(src.device.inter_node_latency_s, dst.device.inter_node_latency_s)


def length_grid(stats: LengthStats) -> np.ndarray:
    lo, hi = max(1.0, min(stats.inputs)), max(stats.inputs)
    if hi <= lo:
        return np.array([lo])
    return np.unique(np.geomspace(lo, hi, GRID_POINTS))


class CapacityModel:
    """Evaluates candidates for one (model, cluster, workload, options)."""

    def __init__(self, model: ModelSpec, cluster: ClusterSpec, workload: ServingWorkload, options: ServeOptions):
        self.model, self.cluster, self.workload, self.options = model, cluster, workload, options
        self.stats = LengthStats.of(workload)
        self.q = workload.quantile
        self.slot_q = (1 + 3 * self.q) / 4
        self._tables: dict[tuple[str, InstanceShape, float, int], batching.PrefillTable] = {}
        self._own_caps: dict[tuple[str, InstanceShape], tuple[batching.CapModel, ...]] = {}
        self._tables_d: dict[tuple[str, InstanceShape], tuple[list[float], list[float]]] = {}
        self._steps: dict[tuple, float] = {}
        """step times already priced (the decode-batch searches and the simulator's tables ask for the same ones)"""

    def _kw(self, pool: NodePool) -> dict:
        o = self.options
        return {"engine": o.engine, "dtype": o.dtype, "kv_dtype": o.kv_dtype, "skew": o.skew,
                "devices_per_node": pool.devices_per_node, "quant_block": o.quant_block}

    def prefill_seconds(self, pool: NodePool, shape: InstanceShape, n: float, batch: int = 1) -> float:
        """One prefill step of `batch` prompts of n tokens each whose shared prefix (workload.prefix_len) is cached."""
        cached = min(float(self.workload.prefix_len), n - 1.0)
        return prefill_time(self.model, pool.device, shape, batch=batch, prompt_len=n - cached, context_len=cached,
                            **self._kw(pool))["time_s"]

    def prefill_token_budget(self, pool: NodePool) -> int:
        """Tokens one prefill step carries on this pool: the option, else (and for "auto", the upper bound) the
        engine's default for the device."""
        option = self.options.prefill_token_budget
        return option if isinstance(option, int) else default_prefill_token_budget(self.options.engine, pool.device)

    def packs_prompts(self, pool: NodePool) -> bool:
        """Whether a colocated iteration's C prompt tokens may come from several queued prompts (the engine batches
        prompts: token budget > 1) or from one prompt only."""
        return self.prefill_token_budget(pool) > 1

    def prefill_budgets(self, pool: NodePool) -> list[int]:
        """Budgets a disaggregated prefill group may get: the one budget, or with "auto" k times the uncached tokens
        of the prompt at the length quantile (k in planner.serve.batching.BATCH_CAPS) below the engine's default,
        and the default."""
        top = self.prefill_token_budget(pool)
        if self.options.prefill_token_budget != "auto":
            return [top]
        fresh = max(1, math.ceil(self.stats.q_in - min(self.workload.prefix_len, self.stats.q_in - 1)))
        return [k * fresh for k in batching.BATCH_CAPS if k * fresh < top] + [top]

    def prefill_table(self, pool: NodePool, shape: InstanceShape, full: bool = False,
                      budget: int | None = None) -> batching.PrefillTable:
        """Batched prefill step times of a shape on a pool at a token budget (default: prefill_token_budget), built
        once per CapacityModel: up to the batch of mean-length prompts (the analytic model), or `full` up to the
        batch of the shortest (the simulator)."""
        widest = min(self.stats.inputs) if full else float(np.mean(self.stats.inputs))
        budget = budget or self.prefill_token_budget(pool)
        key = (pool.name, shape, widest, budget)
        if key not in self._tables:
            self._tables[key] = batching.build_table(lambda k, n: self.prefill_seconds(pool, shape, n, k),
                                                     length_grid(self.stats), budget, self.workload.prefix_len,
                                                     widest)
        return self._tables[key]

    def token_seconds(self, pool: NodePool, shape: InstanceShape, batch: float, context: float) -> float:
        """Decode time per emitted token: one step verifying spec_depth + 1 tokens per sequence / spec_accept."""
        key = ("decode", pool.name, shape, batch, type(batch), context)
        if key not in self._steps:
            o = self.options
            self._steps[key] = decode_step_time(self.model, pool.device, shape, batch=batch, context_len=context,
                                                tokens_per_seq=o.spec_depth + 1.0, **self._kw(pool))["time_s"] \
                / o.spec_accept
        return self._steps[key]

    def mixed_seconds(self, pool: NodePool, shape: InstanceShape, batch: float, context: float, chunk: float) -> float:
        """One chunked-prefill iteration: `batch` decode tokens plus a prompt chunk after the cached prefix."""
        key = ("mixed", pool.name, shape, batch, type(batch), context, chunk)
        if key not in self._steps:
            self._steps[key] = mixed_step_time(self.model, pool.device, shape, decode_batch=batch,
                                               decode_context=context, chunk_tokens=chunk,
                                               chunk_context=self.stats.mean_in / 2 + self.workload.prefix_len / 2,
                                               **self._kw(pool))
        return self._steps[key]

    def transfer(self, src: NodePool, dst: NodePool, shape: InstanceShape, tokens: float) -> tuple[float, float]:
        """(seconds, bytes/s per GPU) of a KV transfer from a prefill instance on src to a decode instance on dst."""
        bw, lat = kv_link(self.cluster, src, dst)
        senders = shape.tp * shape.dp
        t = kv_transfer_time(self.model, tokens=tokens, link_bytes_per_s=bw, latency_s=lat, senders=senders,
                             dtype=self.options.kv_dtype or self.options.dtype)
        return t, bw

    def prefill(self, pool: NodePool, dest: NodePool, shape: InstanceShape) -> Candidate | None:
        room = kv_capacity_tokens(self.model, pool.device, shape, self.options.dtype, self.options.kv_dtype)
        if room < self.stats.q_in:
            return None
        t_kv, _ = self.transfer(pool, dest, shape, self.stats.q_in)
        most = min(MAX_POOLED, pool.num_devices // shape.gpus)
        options = []
        for budget in self.prefill_budgets(pool):  # one, or ("auto") the one with the most capacity, then larger
            table = self.prefill_table(pool, shape, budget=budget)
            caps = batching.cap_models(table, np.asarray(self.stats.inputs), self.stats.q_in, shape.pp, t_kv)
            pooled = batching.pooled_rates(caps, self.q, self.workload.ttft_s, most)
            options.append((pooled[0] if pooled else 0.0, budget, table, caps, pooled))
        _, _, table, caps, pooled = max(options, key=lambda o: (o[0], o[1]))
        kv_req = self.stats.mean_in * kv_bytes_per_token(self.model, self.options.kv_dtype or self.options.dtype)
        one = caps[0]  # batches of one: the zero-load TTFT and the one-prompt service moments
        return Candidate(role="prefill", pool=pool.name, dest_pool=dest.name, tp=shape.tp, pp=shape.pp, ep=shape.ep,
                         dp=shape.dp, gpus=shape.gpus, capacity_rps=pooled[0] if pooled else 0.0,
                         ttft_floor_s=one.floor_s, mean_service_s=one.mean_s, second_moment_s2=one.second_s2,
                         kv_bytes_per_req=kv_req, cost_per_hour=pool.device.cost_per_hour * shape.gpus,
                         pooled_rps=pooled, prefill_token_budget=table.budget, caps=caps)

    def _largest_batch(self, step, limit: int, budget_s: float) -> tuple[int, float]:
        """Largest B ≤ limit with step(B) ≤ budget (step nondecreasing in B): (B, step(B)); (0, step(1)) if none."""
        first = step(1)
        if limit < 1 or first > budget_s:
            return 0, first
        lo, hi = 1, limit
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if step(mid) <= budget_s:
                lo = mid
            else:
                hi = mid - 1
        return lo, step(lo)

    def _memory_batch(self, pool: NodePool, shape: InstanceShape, weight_copies: int = 1) -> int:
        """Largest decode batch whose KV (at the (L+O) quantile) fits; with two engine processes (intra_gpu) the
        prefill process also holds one request's KV."""
        cap = kv_capacity_tokens(self.model, pool.device, shape, self.options.dtype, self.options.kv_dtype,
                                 weight_copies)
        return min(MAX_BATCH, int(cap // max(self.stats.q_total, 1.0)) - (weight_copies - 1))

    def _decode_times(self, pool: NodePool, shape: InstanceShape, limit: int) -> tuple[np.ndarray, np.ndarray]:
        """(d(B, c̄), offered-load slots a_max(B)) for B = 1 .. n ≤ limit, n the first B whose step misses the TPOT
        (no larger cap is TPOT-feasible at any slowdown ≥ 1): one table per shape, extended as needed."""
        key = (pool.name, shape)
        times, slots = self._tables_d.get(key, ([], []))
        ctx, tpot = self.stats.ctx_avg, self.workload.tpot_s
        while len(times) < limit and (not times or times[-1] <= tpot):
            b = len(times) + 1
            times.append(self.token_seconds(pool, shape, float(b), ctx))  # float: the key the queues' tables use
            slots.append(max_offered_load(b, self.slot_q))
        self._tables_d[key] = (times, slots)
        return np.asarray(times[:limit]), np.asarray(slots[:limit])

    def decode(self, pool: NodePool, shape: InstanceShape, slowdown: float = 1.0,
               weight_copies: int = 1) -> Candidate | None:
        """The decode candidate at the batch cap B that maximises a_max(B) / d(B) among the TPOT-feasible caps: B ≤
        the KV bound and d(b)·slowdown ≤ T_tpot at every occupancy b ≤ B (the batch fills and drains through them).
        The step is not monotone in B (tile and wave quantisation), so the largest feasible cap is not always the
        best; choosing over all of them makes a looser TPOT never give less capacity (its feasible caps contain the
        tighter one's)."""
        limit = self._memory_batch(pool, shape, weight_copies)
        times, slots = self._decode_times(pool, shape, max(limit, 0))
        times = times * slowdown
        over = np.flatnonzero(times > self.workload.tpot_s)
        count = int(over[0]) if over.size else times.size  # feasible caps: 1 .. count
        if count == 0:
            t = times[0] if limit >= 1 else self.token_seconds(pool, shape, 1, self.stats.ctx_avg) * slowdown
            return Candidate(role="decode", pool=pool.name, dest_pool=pool.name, tp=shape.tp, pp=shape.pp,
                             ep=shape.ep, dp=shape.dp, gpus=shape.gpus, capacity_rps=0.0, tpot_s=float(t))
        index = int(np.argmax(slots[:count] / times[:count]))
        t = float(times[:index + 1].max())  # the TPOT bound: the slowest step up to the cap
        rate = float(slots[index]) / (self.stats.mean_out * float(times[index]))
        return Candidate(role="decode", pool=pool.name, dest_pool=pool.name, tp=shape.tp, pp=shape.pp, ep=shape.ep,
                         dp=shape.dp, gpus=shape.gpus, capacity_rps=rate, max_batch=index + 1, tpot_s=t,
                         cost_per_hour=pool.device.cost_per_hour * shape.gpus)

    def colocated_queue(self, pool: NodePool, shape: InstanceShape, chunk: int) -> ColocatedQueue | None:
        """The prompt queue of a colocated instance at chunk size C (planner.serve.colocated), its decode batch the
        largest with m(B, C) <= T_tpot whose KV fits; None when no batch does."""
        stats = self.stats

        def step(b: float) -> float:
            return self.mixed_seconds(pool, shape, b, stats.ctx_avg, chunk)

        def decode(b: float) -> float:
            return self.token_seconds(pool, shape, b, stats.ctx_avg)

        batch, _ = self._largest_batch(step, self._memory_batch(pool, shape), self.workload.tpot_s)
        if batch == 0:
            return None
        return ColocatedQueue.build(step, decode, chunk=chunk, batch_max=batch, mean_out=stats.mean_out,
                                    fresh=np.maximum(np.asarray(stats.inputs) - self.workload.prefix_len, 1.0),
                                    fresh_q=max(stats.q_in - self.workload.prefix_len, 1.0),
                                    pack=self.packs_prompts(pool))

    def colocated(self, pool: NodePool, shape: InstanceShape) -> Candidate | None:
        if self._memory_batch(pool, shape) < 1:
            return None
        best = None
        for chunk in CHUNKS:
            queue = self.colocated_queue(pool, shape, chunk)
            if queue is None:
                continue
            t = float(queue.times[-1])  # m(B_max, C): the TPOT bound
            rate_p = queue.max_rate(self.q, self.workload.ttft_s)
            rate_d = max_offered_load(queue.batch_max, self.slot_q) / (self.stats.mean_out * t)
            rate = min(rate_p, rate_d)
            if best is None or rate > best[0] + 1e-12:
                best = (rate, queue, t, rate_d)
        if best is None:
            return None
        rate, queue, t, rate_d = best
        pooled = self.round_robin_rates(pool, shape, lambda scv: queue.max_rate(self.q, self.workload.ttft_s, scv),
                                        rate_d)
        return self._colocated_candidate(pool, shape, queue, rate, t, pooled)

    def round_robin_rates(self, pool: NodePool, shape: InstanceShape, rate_p: Callable[[float], float],
                          rate_d: float) -> tuple[float, ...]:
        """SLO-feasible rates of c = 1 .. MAX_POOLED instances of a whole-request candidate (colocated, intra_gpu)
        that the router feeds round-robin, each a share 1/c of the Poisson stream: c·min(λ_P(c_a² = 1/c), λ_D), with
        rate_p(c_a²) the prompt queue's rate at arrivals of squared coefficient of variation c_a² (GI/G/1,
        costmodels.queueing); () when λ_P(1) >= λ_D (the decode side binds at every count: c times one instance)."""
        lam = rate_p(1.0)
        if lam >= rate_d:
            return ()
        rates = []
        for c in range(1, min(MAX_POOLED, pool.num_devices // shape.gpus) + 1):
            if c > 1 and lam < rate_d:  # λ_P rises with c: once past λ_D, λ_D binds for every larger count
                lam = rate_p(1.0 / c)
            rates.append(c * min(lam, rate_d))
        return tuple(rates)

    def _colocated_candidate(self, pool: NodePool, shape: InstanceShape, queue: ColocatedQueue, rate: float,
                             tpot: float, pooled: tuple[float, ...]) -> Candidate:
        """A colocated candidate; its TTFT model is the queue's at the capacity rate (service moments, own iterations
        and the in-flight residual at that load, so conservative below it)."""
        mean_s, m2 = queue.moments(rate)
        cap = batching.CapModel(cap=1, mean_s=mean_s, second_s2=m2,
                                own_s=(queue.floor_s(rate) + queue.residual_s(rate),))
        return Candidate(role="colocated", pool=pool.name, dest_pool=pool.name, tp=shape.tp, pp=shape.pp, ep=shape.ep,
                         dp=shape.dp, gpus=shape.gpus, capacity_rps=rate, max_batch=queue.batch_max,
                         chunk_tokens=queue.chunk, ttft_floor_s=queue.floor_s(), tpot_s=tpot, mean_service_s=mean_s,
                         second_moment_s2=m2, cost_per_hour=pool.device.cost_per_hour * shape.gpus, caps=(cap,),
                         pooled_rps=pooled, queue=queue)

    def intra_gpu_caps(self, pool: NodePool, shape: InstanceShape, share: float) -> tuple[batching.CapModel, ...]:
        """The batched prefill server of an intra-GPU instance at compute share s (step times / s, no transfer)."""
        key = (pool.name, shape)
        if key not in self._own_caps:
            self._own_caps[key] = batching.cap_models(self.prefill_table(pool, shape), np.asarray(self.stats.inputs),
                                                      self.stats.q_in, shape.pp, 0.0)
        return tuple(m.scaled(1.0 / share) for m in self._own_caps[key])

    def intra_gpu_rates(self, pool: NodePool, shape: InstanceShape, share: float,
                        arrival_scv: float = 1.0) -> tuple[float, float, Candidate | None]:
        """(λ_P(s), λ_D(s), decode candidate) of an intra-GPU instance giving prefill the compute share s (prompt
        arrivals of squared coefficient of variation arrival_scv: 1 Poisson, 1/c one of c round-robin instances)."""
        rate_p = batching.pooled_rate(self.intra_gpu_caps(pool, shape, share), self.q, self.workload.ttft_s, 1,
                                      arrival_scv)
        dec = self.decode(pool, shape, slowdown=max(1.0, BW_SATURATION_SHARE / (1.0 - share)),
                          weight_copies=INTRA_GPU_WEIGHT_COPIES)
        return rate_p, dec.capacity_rps if dec else 0.0, dec

    def intra_gpu_share(self, pool: NodePool, shape: InstanceShape, arrival_scv: float) -> tuple[float, Candidate]:
        """The prefill share at the crossing of λ_P(s) (increasing) and λ_D(s) (decreasing), by bisection, moved up
        to BW_SATURATION_SHARE when below it (λ_D is flat there: the same rate, shorter prefill steps); with its
        decode candidate (None when no batch meets the TPOT)."""
        lo, hi = SHARE_TOL, 1.0 - SHARE_TOL
        while hi - lo > SHARE_TOL:
            mid = 0.5 * (lo + hi)
            rate_p, rate_d, _ = self.intra_gpu_rates(pool, shape, mid, arrival_scv)
            if rate_p < rate_d:
                lo = mid
            else:
                hi = mid
        options = []
        for s in (lo, hi, max(hi, BW_SATURATION_SHARE)):
            rate_p, rate_d, dec = self.intra_gpu_rates(pool, shape, s, arrival_scv)
            options.append((min(rate_p, rate_d), s, dec))
        _, share, dec = max(options, key=lambda o: (o[0], o[1]))
        return share, dec

    def intra_gpu(self, pool: NodePool, shape: InstanceShape) -> Candidate | None:
        """An intra-GPU candidate. Its share is set for the most instances the pool holds (c = MAX_POOLED at most),
        each fed every c-th request (c_a² = 1/c): the smoother stream meets the TTFT with a smaller prefill share,
        which leaves decode more of the GPU; pooled_rps prices every count at that share (one instance: Poisson)."""
        if self._memory_batch(pool, shape, INTRA_GPU_WEIGHT_COPIES) < 1:
            return None
        most = min(MAX_POOLED, pool.num_devices // shape.gpus)
        share, dec = self.intra_gpu_share(pool, shape, 1.0 / most)
        if dec is None:
            return None
        caps = self.intra_gpu_caps(pool, shape, share)
        ttft = self.workload.ttft_s
        rate = min(batching.pooled_rate(caps, self.q, ttft, 1), dec.capacity_rps)
        if rate <= 0:
            return None
        pooled = self.round_robin_rates(pool, shape, lambda scv: batching.pooled_rate(caps, self.q, ttft, 1, scv),
                                        dec.capacity_rps)
        return Candidate(role="intra_gpu", pool=pool.name, dest_pool=pool.name, tp=shape.tp, pp=shape.pp, ep=shape.ep,
                         dp=shape.dp, gpus=shape.gpus, capacity_rps=rate, max_batch=dec.max_batch,
                         prefill_share=share, ttft_floor_s=caps[0].floor_s, tpot_s=dec.tpot_s,
                         mean_service_s=caps[0].mean_s, second_moment_s2=caps[0].second_s2,
                         cost_per_hour=pool.device.cost_per_hour * shape.gpus,
                         prefill_token_budget=self.prefill_token_budget(pool), caps=caps, pooled_rps=pooled)


def build_candidates(cm: CapacityModel) -> dict[str, list[Candidate]]:
    """All candidates with positive capacity, by role, sorted by key."""
    out = {"prefill": [], "decode": [], "colocated": [], "intra_gpu": [], "decode_infeasible": [],
           "prefill_infeasible": []}
    modes = cm.options.modes
    for pool in cm.cluster.pools:
        for shape in shapes_for(cm.model, pool, cm.options):
            opts = cm.options
            if "disaggregated" in modes and (not opts.prefill_pools or pool.name in opts.prefill_pools):
                for dest in cm.cluster.pools:
                    if opts.decode_pools and dest.name not in opts.decode_pools:
                        continue
                    c = cm.prefill(pool, dest, shape)
                    if c is not None:
                        out["prefill" if c.capacity_rps > 0 else "prefill_infeasible"].append(c)
            if "disaggregated" in modes and (not opts.decode_pools or pool.name in opts.decode_pools):
                d = cm.decode(pool, shape)
                if d is not None:
                    out["decode" if d.capacity_rps > 0 else "decode_infeasible"].append(d)
            if "colocated" in modes:
                c = cm.colocated(pool, shape)
                if c is not None and c.capacity_rps > 0:
                    out["colocated"].append(c)
            if "intra_gpu" in modes:
                c = cm.intra_gpu(pool, shape)
                if c is not None and c.capacity_rps > 0:
                    out["intra_gpu"].append(c)
    for role in out:
        out[role].sort(key=lambda c: c.key)
    return out
