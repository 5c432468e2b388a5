"""Discrete-event, request-level simulator of a serve plan.

Requests arrive (Poisson, or bursty gamma gaps) with lengths drawn from the workload (seeded
numpy Generator). Per mode:
  disaggregated  one router queue (FCFS) in front of the prefill instances; the head request goes to the
                 instance that finishes it first, and that instance's step takes every queued prompt that has
                 arrived by the step's start and fits the token budget with the prompts before it (batched
                 prefill, planner.serve.batching; budget 1: one prompt at a time); pp stages pipelined (the next
                 step starts after S/pp). Each request's KV then moves to a decode instance
                 (smooth weighted round-robin by capacity) taking t_kv(L); the decode instance runs continuous
                 batching: it admits waiting requests FCFS while the batch < max_batch and the reserved KV
                 (L + O tokens per request) fits its KV capacity; one iteration takes d(B, mean context).
  intra_gpu      one prefill and one decode server per instance (compute shares), no transfer: the KV stays on
                 the instance, so requests are routed to instances up front (smooth weighted round-robin by
                 capacity, as colocated) and each instance's prefill server has its own queue.
  colocated      one engine per instance with chunked prefill: every iteration carries the running decode
                 batch and up to C prompt tokens (m(B, C)): the oldest admitted prompt's next chunk and, when the
                 engine batches prompts (token budget > 1), the next admitted prompts' tokens up to C (one prompt
                 per iteration otherwise); a prompt is admitted (FCFS) when a batch slot and its KV reservation are
                 free and the admitted prompts' tokens do not yet fill a chunk.
The first token is emitted when a request joins a decode batch (disaggregated, intra_gpu) or when its last
prompt chunk finishes (colocated): TTFT = that time − arrival. TPOT = (finish − first token)/(O − 1).
A request attains its SLO when TTFT ≤ T_ttft and TPOT ≤ T_tpot. Between events the simulator advances
whole runs of identical iterations at once (the batch only changes at admissions and completions).
"""

import bisect
import functools
import heapq
import math
from dataclasses import dataclass

import numpy as np

from costmodels.errors import SpecError
from costmodels.serving import InstanceShape, kv_capacity_tokens
from planner.serve.batching import PrefillTable
from planner.serve.capacity import INTRA_GPU_WEIGHT_COPIES, CapacityModel

BATCH_GRID = 24
CTX_PROBE = 8192.0


@dataclass(frozen=True, slots=True)
class _Prefill:
    """One prefill server: its step table (scaled by 1/share for intra-GPU instances) and where its KV goes."""

    table: PrefillTable
    share: float
    pp: int
    dest: str
    transfer: bool
    src: object
    shape: InstanceShape
    dest_pool: object

    def step(self, count: int, mean_len: float) -> float:
        """One step of `count` prompts of mean input length `mean_len`."""
        return self.table.step(count, mean_len) / self.share


def _interp(x: float, xs: list[float], ys: list[float]) -> float:
    """np.interp(x, xs, ys) for one x (xs increasing), bit for bit as numpy's compiled loop computes it: clamped at
    the ends, the entry itself at a grid point, else slope·(x − xs[j]) + ys[j]."""
    if x >= xs[-1]:
        return ys[-1]
    if x <= xs[0]:
        return ys[0]
    j = bisect.bisect_right(xs, x) - 1
    if xs[j] == x:
        return ys[j]
    slope = (ys[j + 1] - ys[j]) / (xs[j + 1] - xs[j])
    out = slope * (x - xs[j]) + ys[j]
    return out if out == out else slope * (x - xs[j + 1]) + ys[j + 1]  # numpy's NaN fallback (infinite slopes)


def _per_batch(grid: np.ndarray, values: np.ndarray) -> list[float]:
    """The table interpolated at every whole batch 0 .. grid[-1] (batches beyond clamp to the last entry): the
    simulator prices hundreds of thousands of iterations one at a time, always at a whole batch."""
    xs, ys = grid.tolist(), values.tolist()
    return [_interp(b, xs, ys) for b in range(int(grid[-1]) + 1)]


@dataclass(slots=True)
class _Decode:
    """One decode engine: batch limit, KV capacity and a step time linear in context, step(B, c) = s0(B) + s1(B)·c
    (s0, s1 interpolated over a batch grid and tabulated per whole batch)."""

    max_batch: int
    kv_tokens: float
    step0: list[float]
    slope: list[float]
    slowdown: float = 1.0
    chunk: int = 0
    prefix: int = 0
    chunk_step0: list[float] | None = None
    chunk_slope: list[float] | None = None
    pack: bool = False
    """colocated: an iteration's chunk takes tokens from several queued prompts (CapacityModel.packs_prompts)"""

    def step(self, batch: int, ctx: float, chunk: bool = False) -> float:
        if chunk:
            assert self.chunk_step0 is not None and self.chunk_slope is not None
            b = min(batch, len(self.chunk_step0) - 1)
            return self.chunk_step0[b] + self.chunk_slope[b] * ctx
        if batch <= 0:
            return 0.0
        b = min(batch, len(self.step0) - 1)
        return (self.step0[b] + self.slope[b] * ctx) * self.slowdown


def _batch_grid(max_batch: int) -> np.ndarray:
    return np.unique(np.rint(np.geomspace(1, max(max_batch, 1), BATCH_GRID)).astype(int)).astype(float)


class Deployment:
    """The engines of one plan decision, with cost-model tables built once."""

    def __init__(self, cm: CapacityModel, decision: dict):
        self.cm = cm
        self.mode = decision["mode"]
        self.prefill, self.decode, self.weights = [], [], []
        cluster = cm.cluster
        for g in decision["groups"]:
            pool = cluster.pool(g["pool"])
            shape = InstanceShape(tp=g["tp"], pp=g["pp"], ep=g["ep"], dp=g["dp"])
            # the instances of a group share one engine table (the runs keep their state outside it)
            eng = _engine(cm, g, pool, shape) if g["role"] in ("decode", "intra_gpu", "colocated") else None
            for _ in range(g["instances"]):
                if g["role"] in ("prefill", "intra_gpu"):
                    dest = cluster.pool(g.get("dest_pool", g["pool"]))
                    # plans written before batched prefill (schema v1.5) ran one prompt per step
                    table = cm.prefill_table(pool, shape, full=True, budget=g.get("prefill_token_budget", 1))
                    self.prefill.append(_Prefill(table=table,
                                                 share=g.get("prefill_share") or 1.0, pp=shape.pp,
                                                 dest=dest.name, transfer=g["role"] == "prefill", src=pool,
                                                 shape=shape, dest_pool=dest))
                if g["role"] in ("decode", "intra_gpu", "colocated"):
                    self.decode.append((eng, g["pool"]))
                    self.weights.append(g.get("capacity_rps", 1.0))


def _engine(cm: CapacityModel, g: dict, pool, shape: InstanceShape) -> _Decode:
    """The decode (or colocated) engine of a decision group: step times on a batch grid, linear in context."""
    copies = INTRA_GPU_WEIGHT_COPIES if g["role"] == "intra_gpu" else 1
    slowdown = max(1.0, 0.5 / (1.0 - g["prefill_share"])) if g["role"] == "intra_gpu" else 1.0
    bgrid = _batch_grid(g["max_batch"])
    s0 = np.array([cm.token_seconds(pool, shape, b, 0.0) for b in bgrid])
    s1 = np.array([cm.token_seconds(pool, shape, b, CTX_PROBE) for b in bgrid])
    slope = (s1 - s0) / CTX_PROBE
    kv = kv_capacity_tokens(cm.model, pool.device, shape, cm.options.dtype, cm.options.kv_dtype, copies)
    if g["role"] != "colocated":
        return _Decode(max_batch=g["max_batch"], kv_tokens=kv, step0=_per_batch(bgrid, s0),
                       slope=_per_batch(bgrid, slope), slowdown=slowdown)
    chunk = g["chunk_tokens"]
    grid = np.concatenate([[0.0], bgrid])
    c0 = np.array([cm.mixed_seconds(pool, shape, b, 0.0, chunk) for b in grid])
    c1 = np.array([cm.mixed_seconds(pool, shape, b, CTX_PROBE, chunk) for b in grid])
    return _Decode(max_batch=g["max_batch"], kv_tokens=kv, step0=_per_batch(grid, np.concatenate([[s0[0]], s0])),
                   slope=_per_batch(grid, np.concatenate([[slope[0]], slope])), slowdown=slowdown, chunk=chunk,
                   prefix=cm.workload.prefix_len, pack=cm.packs_prompts(pool), chunk_step0=_per_batch(grid, c0),
                   chunk_slope=_per_batch(grid, (c1 - c0) / CTX_PROBE))


def _wrr(weights: list[float], n: int) -> np.ndarray:
    """Smooth weighted round-robin assignment of n items (each item to the first instance with the largest credit,
    which then pays 1; credits grow by the normalised weights). Read-only: every replay of a deployment asks for the
    same assignment, so it is built once."""
    return _wrr_built(tuple(weights), n)


@functools.lru_cache(maxsize=256)
def _wrr_built(weights: tuple[float, ...], n: int) -> np.ndarray:
    total = np.asarray(weights, dtype=float)
    w = (total / total.sum() if total.sum() > 0 else np.full(len(total), 1.0 / len(total))).tolist()
    current = [0.0] * len(w)
    members = range(len(w))
    out = np.empty(n, dtype=np.int64)
    for k in range(n):
        for m in members:
            current[m] += w[m]
        i = max(members, key=current.__getitem__)
        out[k] = i
        current[i] -= 1.0
    out.flags.writeable = False
    return out


def _retire(active: list, done: int, t: float, finish: np.ndarray, li: list[float], lo: list[float]):
    """Pop every request whose last token is generated by step `done`, stamp its finish time `t`, and return
    (context tokens it no longer adds to the batch's base, KV tokens it frees)."""
    freed_ctx = freed_kv = 0.0
    while active and active[0][0] <= done:
        _, j, start = heapq.heappop(active)
        finish[j] = t
        freed_ctx += li[j] - start
        freed_kv += li[j] + lo[j]
    return freed_ctx, freed_kv


def _run_decode(eng: _Decode, ready_a: np.ndarray, li_a: np.ndarray, lo_a: np.ndarray):
    """Continuous batching on one engine. Returns (first-token times, finish times)."""
    order = np.argsort(ready_a, kind="stable").tolist()
    first = np.empty(len(ready_a))
    finish = np.empty(len(ready_a))
    ready, li, lo = ready_a.tolist(), li_a.tolist(), lo_a.tolist()  # scalar reads from lists: the same values, faster
    n, max_batch, kv_tokens = len(order), eng.max_batch, eng.kv_tokens
    step0, slope, slowdown, top = eng.step0, eng.slope, eng.slowdown, len(eng.step0) - 1  # eng.step, inlined
    t, nxt, done = 0.0, 0, 0  # done: iterations run so far
    active: list[tuple[int, int, int]] = []  # heap of (finishing iteration, idx, admission iteration)
    base = 0.0  # Σ (L_j − admission_j): mean context of the batch = base / B + done
    kv_used = 0.0
    while nxt < n or active:
        while nxt < n:
            i = order[nxt]
            need = li[i] + lo[i]
            if ready[i] > t or len(active) >= max_batch or (active and kv_used + need > kv_tokens):
                break
            first[i] = t
            steps = max(int(lo[i]) - 1, 0)
            if steps == 0:
                finish[i] = t
            else:
                heapq.heappush(active, (done + steps, i, done))
                base += li[i] - done
                kv_used += need
            nxt += 1
        if not active:
            t = max(t, ready[order[nxt]])
            continue
        b = len(active)
        row = b if b < top else top
        ctx = base / b + done
        k = active[0][0] - done
        if nxt < n and b < max_batch and ready[order[nxt]] > t:
            k = min(k, max(1, math.ceil((ready[order[nxt]] - t) / ((step0[row] + slope[row] * ctx) * slowdown))))
        t += k * ((step0[row] + slope[row] * (ctx + k / 2.0)) * slowdown)
        done += k
        if active[0][0] <= done:
            freed_ctx, freed_kv = _retire(active, done, t, finish, li, lo)
            base -= freed_ctx
            kv_used -= freed_kv
    return first, finish


def _admit(eng: _Decode, pending: list, state: dict, arrive: list[float], li: list[float], lo: list[float],
           order: list[int]) -> None:
    """Admit arrived requests FCFS to the prefill queue `pending` ([idx, prompt tokens left]) while a batch slot and
    their KV reservation are free and the queue's tokens do not yet fill one chunk (one prompt at a time without
    packing)."""
    active = state["active"]
    while state["nxt"] < len(order):
        i = order[state["nxt"]]
        if arrive[i] > state["t"] or (state["queued"] >= eng.chunk if eng.pack else pending) \
                or len(active) + len(pending) >= eng.max_batch \
                or ((active or pending) and state["kv"] + li[i] + lo[i] > eng.kv_tokens):
            return
        tokens = float(max(li[i] - eng.prefix, 1))
        pending.append([int(i), tokens])
        state["queued"] += tokens
        state["kv"] += li[i] + lo[i]
        state["nxt"] += 1


def _prefill_iterations(eng: _Decode, pending: list, state: dict) -> list[int]:
    """Run the next prefill iteration(s): the head prompt alone while more than one chunk of it is left (or, without
    packing, until it is done; runs of identical iterations at once, up to the next decode completion), else one
    iteration carrying the head's rest and the next queued prompts up to the chunk. Returns the finished prompts."""
    active, done = state["active"], state["done"]
    b = len(active)
    ctx = state["base"] / b + done if b else 0.0
    head = pending[0]
    solo = math.ceil(head[1] / eng.chunk) - (1 if eng.pack else 0)
    if solo >= 1:
        k = max(1, min(solo, active[0][0] - done) if active else solo)
        state["queued"] -= min(head[1], k * eng.chunk)
        head[1] -= k * eng.chunk
        finished = [pending.pop(0)[0]] if head[1] <= 0 else []
    else:
        k, room, finished = 1, float(eng.chunk), []
        while pending and room > 0:
            take = min(pending[0][1], room)
            pending[0][1] -= take
            room -= take
            state["queued"] -= take
            if pending[0][1] > 0:
                break
            finished.append(pending.pop(0)[0])
    state["t"] += k * eng.step(b, ctx + k / 2.0, chunk=True)
    state["done"] += k
    return finished


def _run_colocated(eng: _Decode, arrive_a: np.ndarray, li_a: np.ndarray, lo_a: np.ndarray):
    """Chunked-prefill engine. Returns (first-token times, finish times)."""
    n = len(arrive_a)
    order = np.argsort(arrive_a, kind="stable").tolist()
    first = np.empty(n)
    finish = np.empty(n)
    arrive, li, lo = arrive_a.tolist(), li_a.tolist(), lo_a.tolist()  # scalar reads from lists: the same values
    state = {"t": 0.0, "nxt": 0, "done": 0, "active": [], "base": 0.0, "kv": 0.0, "queued": 0.0}
    active = state["active"]
    pending: list = []
    while state["nxt"] < n or active or pending:
        _admit(eng, pending, state, arrive, li, lo, order)
        if not active and not pending:
            state["t"] = max(state["t"], arrive[order[state["nxt"]]])
            continue
        finished = []
        if pending:
            finished = _prefill_iterations(eng, pending, state)
        else:
            b, done, t = len(active), state["done"], state["t"]
            ctx = state["base"] / b + done
            k = active[0][0] - done
            if state["nxt"] < n and b < eng.max_batch and arrive[order[state["nxt"]]] > t:
                k = min(k, max(1, math.ceil((arrive[order[state["nxt"]]] - t) / eng.step(b, ctx))))
            state["t"] += k * eng.step(b, ctx + k / 2.0)
            state["done"] += k
        freed_ctx, freed_kv = _retire(active, state["done"], state["t"], finish, li, lo)
        state["base"] -= freed_ctx
        state["kv"] -= freed_kv
        for i in finished:
            first[i] = state["t"]
            steps = max(int(lo[i]) - 1, 0)
            if steps == 0:
                finish[i] = state["t"]
                state["kv"] -= li[i] + lo[i]
            else:
                heapq.heappush(active, (state["done"] + steps, i, state["done"]))
                state["base"] += li[i] - state["done"]
    return first, finish


def _batch_end(budget: int, most: int, arrive: list[float], used: list[float], i: int, start: float) -> int:
    """One past the last request of the step that starts at `start` with head request i: the FCFS run of requests
    arrived by then whose uncached tokens (running total `used`) fit the budget, at most `most`; the head always
    runs."""
    if budget <= 1:
        return i + 1
    arrived = bisect.bisect_right(arrive, start)
    fits = bisect.bisect_right(used, (used[i - 1] if i else 0.0) + budget)
    return max(i + 1, min(arrived, fits, i + most))


def _server_groups(servers: list[_Prefill]) -> list[list[int]]:
    """Indices of identical servers (same step table, share and pipeline), each group in index order: within a
    group the step done first is the one that starts first, so only that member needs pricing."""
    groups: dict[tuple[int, float, int], list[int]] = {}
    for k, p in enumerate(servers):
        groups.setdefault((id(p.table), p.share, p.pp), []).append(k)
    return list(groups.values())


def _first_free(members: list[int], free: list[float], arrival: float) -> int:
    """The member (index order) minimising (max(free, arrival), index): the first one free by the arrival, else the
    one free first (the lowest index among equals)."""
    for m in members:
        if free[m] <= arrival:
            return m
    return min(members, key=free.__getitem__)


def _run_prefill(servers: list[_Prefill], cm: CapacityModel, arrive_a: np.ndarray,
                 li_a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The router queue and batched prefill servers: (time each request's KV is ready on its decode instance,
    the prefill instance that served it). Arrivals are in time order. The head request goes to the server whose
    step (started when both it and the request are there, carrying the queued prompts that fit) ends first."""
    n = len(arrive_a)
    arrive, li = arrive_a.tolist(), li_a.tolist()
    free = [0.0] * len(servers)
    ready = np.empty(n)
    which = np.empty(n, dtype=np.int64)
    prefix = float(cm.workload.prefix_len)
    used = np.cumsum(np.maximum(li_a - np.minimum(prefix, li_a - 1.0), 1.0)).tolist()  # uncached tokens, running
    total = [0.0] + np.cumsum(li_a).tolist()
    groups = _server_groups(servers)
    # groups of one server each: the candidates are always the same servers (in index order)
    fixed = sorted(m[0] for m in groups) if all(len(m) == 1 for m in groups) else None
    one_group = groups[0] if len(groups) == 1 else None
    transfer: dict[tuple[int, float], float] = {}
    steps: dict[tuple[int, int, float], float] = {}  # (server, prompts, mean length) -> step seconds
    i = 0
    while i < n:
        best, best_done = -1, math.inf
        if fixed:
            heads = fixed
        elif one_group:
            heads = [_first_free(one_group, free, arrive[i])]
        else:
            heads = sorted(_first_free(members, free, arrive[i]) for members in groups)
        for k in heads:
            p = servers[k]
            start = max(free[k], arrive[i])
            end = _batch_end(p.table.budget, p.table.batches[-1], arrive, used, i, start)
            key = (k, end - i, li[i] if end == i + 1 else (total[end] - total[i]) / (end - i))
            s = steps.get(key)
            if s is None:
                s = steps[key] = p.step(key[1], key[2])
            if start + s < best_done - 1e-15:
                best, best_done, best_start, best_s, best_end = k, start + s, start, s, end
        p = servers[best]
        free[best] = best_start + best_s / p.pp
        for r in range(i, best_end):
            key = (best, li[r])
            if key not in transfer:
                transfer[key] = cm.transfer(p.src, p.dest_pool, p.shape, li[r])[0] if p.transfer else 0.0
            ready[r] = best_done + transfer[key]
            which[r] = best
        i = best_end
    return ready, which


def replay_prefill(cm: CapacityModel, pool, shape: InstanceShape, *, instances: int, rate: float, requests: int,
                   seed: int, budget: int | None = None) -> np.ndarray:
    """The router queue and batched prefill servers alone: `instances` prefill instances of `shape` on `pool` sending
    KV to the same pool (token budget: `budget`, else cm's), Poisson arrivals at `rate` with the workload's input
    lengths; each request's time from arrival to KV ready on the decode side (its TTFT when decode admits it at
    once), in arrival order."""
    rng = np.random.default_rng(seed)
    arrive = np.cumsum(rng.exponential(1.0 / rate, size=requests))
    li = cm.workload.sample(requests, rng)[0].astype(float)
    table = cm.prefill_table(pool, shape, full=True, budget=budget)
    server = _Prefill(table=table, share=1.0, pp=shape.pp, dest=pool.name, transfer=True, src=pool, shape=shape,
                      dest_pool=pool)
    ready, _ = _run_prefill([server] * instances, cm, arrive, li)
    return ready - arrive


def _route_intra_gpu(dep: Deployment, arrive: np.ndarray, li: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(KV ready times, instance of each request): instances picked up front by weighted round-robin, each
    instance's prefill server its own queue."""
    assign = _wrr(dep.weights, len(arrive))
    ready = np.empty(len(arrive))
    for k, server in enumerate(dep.prefill):
        idx = np.nonzero(assign == k)[0]
        if len(idx):
            ready[idx] = _run_prefill([server], dep.cm, arrive[idx], li[idx])[0]
    return ready, assign


def _route_disaggregated(dep: Deployment, arrive: np.ndarray, li: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(KV ready times, decode instance of each request): the pooled prefill router, then per decode pool a
    weighted round-robin over its decode instances."""
    if not dep.prefill or not dep.decode:
        raise SpecError("a disaggregated decision needs at least one prefill and one decode instance",
                        field="decision.groups")
    ready, which = _run_prefill(dep.prefill, dep.cm, arrive, li)
    assign = np.empty(len(arrive), dtype=np.int64)
    for pool in sorted({d[1] for d in dep.decode}):
        members = [k for k, d in enumerate(dep.decode) if d[1] == pool]
        idx = np.nonzero(np.array([dep.prefill[w].dest == pool for w in which]))[0]
        picks = _wrr([dep.weights[k] for k in members], len(idx))
        assign[idx] = np.asarray(members)[picks]
    return ready, assign


def simulate(dep: Deployment, *, rate: float, requests: int, seed: int) -> dict:
    """Replay `requests` requests at `rate` req/s; SLO attainment and TTFT/TPOT percentiles."""
    cm = dep.cm
    wl = cm.workload
    rng = np.random.default_rng(seed)
    arrive = np.cumsum(wl.interarrivals(requests, rate, rng))
    li, lo = wl.sample(requests, rng)
    li, lo = li.astype(float), lo.astype(float)
    first = np.empty(requests)
    finish = np.empty(requests)
    if dep.mode == "colocated":
        assign = _wrr(dep.weights, requests)
        for k, (eng, _) in enumerate(dep.decode):
            idx = np.nonzero(assign == k)[0]
            f, d = _run_colocated(eng, arrive[idx], li[idx], lo[idx])
            first[idx], finish[idx] = f, d
    else:
        ready, assign = (_route_intra_gpu if dep.mode == "intra_gpu" else _route_disaggregated)(dep, arrive, li)
        for k, (eng, _) in enumerate(dep.decode):
            idx = np.nonzero(assign == k)[0]
            if len(idx):
                f, d = _run_decode(eng, ready[idx], li[idx], lo[idx])
                first[idx], finish[idx] = f, d
    ttft = first - arrive
    tpot = np.where(lo > 1, (finish - first) / np.maximum(lo - 1, 1), 0.0)
    ok = (ttft <= wl.ttft_s + 1e-12) & (tpot <= wl.tpot_s + 1e-12)
    pct = wl.percentile
    return {"requests": requests, "rate_rps": rate, "seed": seed, "attainment": float(ok.mean()),
            "ttft_s": {"p50": float(np.percentile(ttft, 50)), f"p{pct:g}": float(np.percentile(ttft, pct)),
                       "p99": float(np.percentile(ttft, 99))},
            "tpot_s": {"p50": float(np.percentile(tpot, 50)), f"p{pct:g}": float(np.percentile(tpot, pct)),
                       "p99": float(np.percentile(tpot, 99))},
            "goodput_rps": float(ok.sum() / (finish.max() - arrive.min())) if requests else 0.0}
