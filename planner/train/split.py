"""The layer-to-stage split: which contiguous block of transformer layers each pipeline stage runs.

Math (one candidate strategy; everything per micro-batch, per GPU of a stage)
  Sets
    l in 0..L-1     transformer layers, in model order (dense-then-MoE and MTP handled through the data)
    s in 0..p-1     pipeline stages, in pipeline order; k(s) is the pool stage s sits on (fixed per solve)
  Data
    tau[l,k]  s     forward+backward(+recompute) time of layer l on one GPU of pool k
    w[l,k]    B     weights + gradients + optimizer state of layer l per GPU on pool k
    a[l,k]    B     activations of layer l kept for one in-flight micro-batch on pool k
    r[l,k]    B     working set rebuilt while layer l runs its backward under full or layer-level recompute (else 0)
    y[l,k]    s     data-parallel sync of layer l per step (gradient reduce + parameter gather)
    h[k]      -     dp_overlap: the fraction of one micro-batch of a stage that can hide its sync
    o[l,k]    s     optimizer update of layer l per step
    n[s]      -     micro-batches in flight on stage s (1F1B: min(p - s, m); interleaved: the schedule's)
    E0*             embedding time / states / activations (x n[0]) / sync / optimizer, first stage only
    EL*             LM head + loss + MTP time / states / activations (one micro-batch) / sync / optimizer,
                    last stage only
    c[s]      s     point-to-point time of stage s per micro-batch (slow inter-pool link where k(s) != k(s+1))
    M[k]      B     usable memory per GPU on pool k
    m, v      -     micro-batches per step, virtual chunks per device
  Variables
    u[l,s] in {0,1}  layer l sits on a stage <= s (cumulative assignment; u[l,p-1] = 1; runs of identical
                     layers are aggregated exactly, see solve_split_ilp)
    x[l,s] = u[l,s] - u[l,s-1]  layer l sits on stage s (u[l,-1] = 0)
    t[s] >= 0        time of stage s for one micro-batch;  T >= 0 the slowest stage
    Y, O, R[s] >= 0  largest exposed dp sync, slowest stage's optimizer update, stage s's working set
  Objective (exactly the step time of costmodels.training: pipeline_step_time + dp sync + optimizer)
    minimise  (m - 1/v) T + (1/v) sum_s t[s] + Y + O      (v = 1: sum_s t[s] + (m - 1) T + Y + O)
  Constraints
    (C1) order / contiguity:  u[l+1,s] <= u[l,s]   (a later layer is never on an earlier stage)
    (C2) cumulative:          u[l,s] <= u[l,s+1]
    (C3) every stage runs a layer per virtual stage:  sum_l x[l,s] >= vpp
    (C4) stage time:  t[s] = sum_l x[l,s] tau[l,k(s)] + [s=0] E0t + [s=p-1] ELt + c[s]
    (C5) slowest stage:  t[s] <= T
    (C6) working set:  R[s] >= r[l,k(s)] x[l,s]
    (C7) per-GPU memory:  sum_l x[l,s] (w[l,k(s)] + n[s] a[l,k(s)]) + R[s] + [s=0](E0w + n[0] E0a)
                          + [s=p-1](ELw + ELa) <= M[k(s)]
    (C8) exposed sync:  Y >= sum_l x[l,s] y[l,k(s)] + [s=0] E0y + [s=p-1] ELy - h[k(s)] t[s]   (and Y >= 0)
    (C9) slowest update:  O >= sum_l x[l,s] o[l,k(s)] + [s=0] E0o + [s=p-1] ELo
  `best_split_dp` minimises T exactly by dynamic programming over prefix sums (each stage costed on its
  pool). On one pool sum_s t[s] is a constant and Y, O are small, so its split is usually optimal and
  (m - 1/v) T* + (1/v) sum t + mean exposed sync + mean update is a valid lower bound that proves it; the
  ILP is solved with PuLP + HiGHS where that bound leaves a gap (always on several pools, where sum_s t[s]
  depends on the split) and for the final plan, and reports status, bound and gap. Interleaved
  schedules (vpp > 1) use the same model with (C3) at vpp layers per stage; a stage's layers fill its virtual
  stages larger-first (costmodels.pipeline.virtual_stage_layers), so the loss sits on the smallest chunk.
"""

from dataclasses import dataclass  # noqa: I001  (solvers must load before pulp, see below)

import numpy as np

import solvers  # before pulp: OR-Tools' HiGHS must load before highspy's (see solvers/highs.py)
import pulp  # noqa: E402  (import order matters, see above)

from costmodels.errors import SolverUnavailableError, require
from solvers.result import SolveResult, SolveStatus, SolverOptions, relative_gap

_GiB = float(2**30)


@dataclass(frozen=True, kw_only=True, slots=True)
class SplitProblem:
    """Data of the split model (see the module docstring); per-layer arrays are indexed [pool, layer],
    per-end arrays (first*/last*) by pool."""

    layer_time_s: np.ndarray
    """tau"""
    layer_static_bytes: np.ndarray
    """w"""
    layer_activation_bytes: np.ndarray
    """a"""
    layer_working_bytes: np.ndarray
    """r"""
    layer_sync_s: np.ndarray
    """y"""
    layer_optimizer_s: np.ndarray
    """o"""
    first: np.ndarray
    """[pool, (time, states, activations, sync, optimizer)] of the embedding"""
    last: np.ndarray
    """[pool, (time, states, activations, sync, optimizer)] of head + loss + MTP"""
    stage_pool: tuple[int, ...]
    """k(s)"""
    in_flight: tuple[float, ...]
    """n[s]"""
    p2p_time_s: tuple[float, ...]
    """c[s]"""
    memory_cap_bytes: np.ndarray
    """M[k]"""
    dp_overlap: np.ndarray
    """h[k]"""
    microbatches: int
    """m"""
    vpp: int = 1
    """v"""
    overhead_s: float = 0.0
    """fixed per-step overhead (added to the objective)"""

    def __post_init__(self):
        require(len(self.stage_pool) == len(self.in_flight) == len(self.p2p_time_s), "one entry per stage",
                field="split.stage_pool")
        require(self.layer_time_s.shape[1] >= len(self.stage_pool), "needs at least one layer per stage",
                field="split.layers")

    @property
    def layers(self) -> int:
        return int(self.layer_time_s.shape[1])

    @property
    def stages(self) -> int:
        return len(self.stage_pool)

    def _stage_sum(self, per_layer: np.ndarray, col: int, stage_layers) -> list[float]:
        out, start = [], 0
        for s, n in enumerate(stage_layers):
            k = self.stage_pool[s]
            v = float(per_layer[k, start:start + n].sum())
            if s == 0:
                v += self.first[k, col]
            if s == self.stages - 1:
                v += self.last[k, col]
            out.append(v)
            start += n
        return out

    def stage_times(self, stage_layers) -> list[float]:
        """t[s] of a given split (C4)."""
        return [t + c for t, c in zip(self._stage_sum(self.layer_time_s, 0, stage_layers), self.p2p_time_s,
                                          strict=True)]

    def stage_memory(self, stage_layers) -> list[float]:
        """Left side of (C7) for a given split."""
        out, start = [], 0
        for s, n in enumerate(stage_layers):
            k, f = self.stage_pool[s], self.in_flight[s]
            b = float(self.layer_static_bytes[k, start:start + n].sum()
                      + f * self.layer_activation_bytes[k, start:start + n].sum())
            b += float(self.layer_working_bytes[k, start:start + n].max()) if n else 0.0
            if s == 0:
                b += self.first[k, 1] + f * self.first[k, 2]
            if s == self.stages - 1:
                b += self.last[k, 1] + self.last[k, 2]
            out.append(b)
            start += n
        return out

    def fits(self, stage_layers) -> bool:
        caps = [self.memory_cap_bytes[self.stage_pool[s]] for s in range(self.stages)]
        return all(b <= c for b, c in zip(self.stage_memory(stage_layers), caps, strict=True))

    def objective(self, stage_layers) -> float:
        """The step time of a split: pipeline_step_time + slowest sync + slowest update + overhead."""
        times = self.stage_times(stage_layers)
        slowest = max(times)
        pipe = self.microbatches * slowest + (sum(times) - slowest) / self.vpp
        sync = max(max(0.0, y - self.dp_overlap[k] * t) for y, t, k in
                   zip(self._stage_sum(self.layer_sync_s, 3, stage_layers), times, self.stage_pool, strict=True))
        opt = max(self._stage_sum(self.layer_optimizer_s, 4, stage_layers))
        return pipe + sync + opt + self.overhead_s

    def time_lower_bound(self) -> float:
        """The pipeline part of lower_bound(0) (no sync or update terms): valid for any configuration whose
        per-micro-batch layer times are at least these (e.g. a higher ZeRO stage or more recompute)."""
        used = sorted(set(self.stage_pool))
        total = float(self.layer_time_s[used].min(axis=0).sum()) + min(self.first[k, 0] for k in used) \
            + min(self.last[k, 0] for k in used) + sum(self.p2p_time_s)
        return (self.microbatches - 1 / self.vpp) * total / self.stages + total / self.vpp + self.overhead_s

    def lower_bound(self, slowest_s: float) -> float:
        """Valid lower bound on the objective over all splits, given a lower bound on the slowest stage time.

        sum t[s] >= the total with every layer (and each end) on its cheapest pool used by a stage; the
        exposed sync is >= the mean of y_s - h t_s on one pool (their sum is fixed there), >= 0 otherwise;
        the slowest update is >= the mean update.
        """
        used = sorted(set(self.stage_pool))
        total = float(self.layer_time_s[used].min(axis=0).sum()) + min(self.first[k, 0] for k in used) \
            + min(self.last[k, 0] for k in used) + sum(self.p2p_time_s)
        slowest_s = max(slowest_s, total / self.stages)
        opt = (float(self.layer_optimizer_s[used].min(axis=0).sum()) + min(self.first[k, 4] for k in used)
               + min(self.last[k, 4] for k in used)) / self.stages
        exposed = 0.0
        if len(used) == 1:
            k = used[0]
            sync = float(self.layer_sync_s[k].sum()) + self.first[k, 3] + self.last[k, 3]
            exposed = max(0.0, (sync - self.dp_overlap[k] * total) / self.stages)
        return (self.microbatches - 1 / self.vpp) * slowest_s + total / self.vpp + exposed + opt + self.overhead_s


@dataclass(frozen=True, kw_only=True, slots=True)
class SplitResult:
    """A split and how it was proven."""

    stage_layers: tuple[int, ...]
    """layers per stage (empty when nothing fits)"""
    objective_s: float
    """step time of the split"""
    solve: SolveResult
    """status / bound / gap"""


def best_split_dp(problem: SplitProblem) -> tuple[tuple[int, ...], float] | None:
    """The split with the smallest slowest-stage time T* among those that fit.

    f[s][j] = smallest achievable max stage time when stages 0..s run layers 0..j-1 and all fit
    ((C3), (C4), (C6), (C7)), each stage costed on its own pool; returns (stage_layers, T*) or None when
    no split fits. On one pool this split also minimises the objective up to the small sync / update
    terms (see lower_bound); on several pools sum t[s] depends on the split and the ILP decides.
    """
    p, n = problem.stages, problem.layers
    idx = np.arange(n + 1)
    valid = idx[None, :] >= idx[:, None] + problem.vpp  # (C3): a layer per virtual stage
    blocks = {}

    def pool_blocks(k):
        if k not in blocks:
            pre = [np.concatenate(([0.0], np.cumsum(a[k]))) for a in
                   (problem.layer_time_s, problem.layer_static_bytes, problem.layer_activation_bytes)]
            diff = [c[None, :] - c[:, None] for c in pre]
            r = problem.layer_working_bytes[k]
            block_r = 0.0
            if r.any():
                block_r = np.zeros((n + 1, n + 1))
                for i in range(n):
                    block_r[i, i + 1:] = np.maximum.accumulate(r[i:])
            blocks[k] = (*diff, block_r)
        return blocks[k]

    f = np.full(n + 1, np.inf)
    f[0] = 0.0
    choice = np.zeros((p, n + 1), dtype=np.int64)
    for s in range(p):
        k = problem.stage_pool[s]
        block_t, block_w, block_a, block_r = pool_blocks(k)
        t = block_t + problem.p2p_time_s[s]
        mem = block_w + problem.in_flight[s] * block_a + block_r
        if s == 0:
            t = t + problem.first[k, 0]
            mem = mem + problem.first[k, 1] + problem.in_flight[s] * problem.first[k, 2]
        if s == p - 1:
            t = t + problem.last[k, 0]
            mem = mem + problem.last[k, 1] + problem.last[k, 2]
        cost = np.where(valid & (mem <= problem.memory_cap_bytes[k]), t, np.inf)
        total = np.maximum(f[:, None], cost)
        choice[s] = np.argmin(total, axis=0)
        f = total[choice[s], idx]
    if not np.isfinite(f[n]):
        return None
    bounds, j = [n], n
    for s in range(p - 1, -1, -1):
        j = int(choice[s, j])
        bounds.append(j)
    bounds.reverse()
    return tuple(bounds[i + 1] - bounds[i] for i in range(p)), float(f[n])


def layer_runs(problem: SplitProblem) -> list[tuple[int, int]]:
    """Maximal runs [start, end) of consecutive layers with identical data on every pool."""
    data = np.concatenate([problem.layer_time_s, problem.layer_static_bytes, problem.layer_activation_bytes,
                           problem.layer_working_bytes, problem.layer_sync_s, problem.layer_optimizer_s])
    runs, start = [], 0
    for l in range(1, problem.layers + 1):
        if l == problem.layers or not np.array_equal(data[:, l], data[:, start]):
            runs.append((start, l))
            start = l
    return runs


def solve_split_ilp(problem: SplitProblem, options: SolverOptions) -> SplitResult:
    """Solve (C1)-(C9) with PuLP + HiGHS; infeasibility is reported in the status.

    Identical consecutive layers (a run r of n_r layers: the dense block, the MoE block) are aggregated
    exactly: q[r,s] in 0..n_r counts the layers of run r on stages <= s (the cumulative u summed over the
    run), so x becomes c[r,s] = q[r,s] - q[r,s-1]. (C1) becomes the fill order q[r,s] >= n_r z[r,s],
    q[r+1,s] <= n_{r+1} z[r,s] with z binary (a later run starts only after an earlier one is complete),
    and (C6) uses a presence binary g[r,s] >= c[r,s] / n_r. With all layers distinct this is the per-layer
    model itself.
    """
    runs = layer_runs(problem)
    R, p, m, v = len(runs), problem.stages, problem.microbatches, problem.vpp
    size = [b - a for a, b in runs]
    lp = pulp.LpProblem("stage_split", pulp.LpMinimize)
    q = {(r, s): lp.add_variable(f"q_{r}_{s}", lowBound=0, upBound=size[r], cat="Integer")
         for r in range(R) for s in range(p - 1)}

    def cum(r, s):
        if s < 0:
            return 0
        return size[r] if s == p - 1 else q[r, s]

    def c(r, s):
        return cum(r, s) - cum(r, s - 1)

    def per_run(array, k):
        return [float(array[k, a]) for a, _ in runs]

    t = [lp.add_variable(f"t_{s}", lowBound=0) for s in range(p)]
    T, Y, O = (lp.add_variable(name, lowBound=0) for name in ("T", "Y", "O"))
    lp += (m - 1.0 / v) * T + (1.0 / v) * pulp.lpSum(t) + Y + O + problem.overhead_s
    for s in range(p - 1):
        for r in range(R - 1):
            z = lp.add_variable(f"z_{r}_{s}", cat="Binary")
            lp += q[r, s] >= size[r] * z, f"C1_run_full_{r}_{s}"
            lp += q[r + 1, s] <= size[r + 1] * z, f"C1_fill_order_{r}_{s}"
        if s < p - 2:
            for r in range(R):
                lp += q[r, s] <= q[r, s + 1], f"C2_cumulative_{r}_{s}"
    for s in range(p):
        k, n = problem.stage_pool[s], problem.in_flight[s]
        lp += pulp.lpSum(c(r, s) for r in range(R)) >= problem.vpp, f"C3_nonempty_{s}"
        ends = [problem.first[k] if s == 0 else None, problem.last[k] if s == p - 1 else None]
        fixed = [sum(e[i] for e in ends if e is not None) for i in range(5)]
        tau = per_run(problem.layer_time_s, k)
        lp += t[s] == pulp.lpSum(tau[r] * c(r, s) for r in range(R)) + fixed[0] + problem.p2p_time_s[s], \
            f"C4_stage_time_{s}"
        lp += t[s] <= T, f"C5_slowest_{s}"
        # (C6) working set and (C7) per-GPU memory, in GiB to keep coefficients well conditioned
        work = [w / _GiB for w in per_run(problem.layer_working_bytes, k)]
        held = 0.0
        if any(work):
            held = lp.add_variable(f"R_{s}", lowBound=0)
            for r in range(R):
                if work[r] > 0:
                    g = lp.add_variable(f"g_{r}_{s}", cat="Binary")
                    lp += c(r, s) <= size[r] * g, f"C6_present_{r}_{s}"
                    lp += held >= work[r] * g, f"C6_working_{r}_{s}"
        w, a = per_run(problem.layer_static_bytes, k), per_run(problem.layer_activation_bytes, k)
        act_end = (n * problem.first[k, 2] if s == 0 else 0.0) + (problem.last[k, 2] if s == p - 1 else 0.0)
        lp += pulp.lpSum((w[r] + n * a[r]) / _GiB * c(r, s) for r in range(R)) + held \
            + (fixed[1] + act_end) / _GiB <= float(problem.memory_cap_bytes[k]) / _GiB, f"C7_memory_{s}"
        # (C8) exposed dp sync, (C9) slowest optimizer update
        y, o = per_run(problem.layer_sync_s, k), per_run(problem.layer_optimizer_s, k)
        lp += pulp.lpSum(y[r] * c(r, s) for r in range(R)) + fixed[3] - float(problem.dp_overlap[k]) * t[s] <= Y, \
            f"C8_sync_{s}"
        lp += pulp.lpSum(o[r] * c(r, s) for r in range(R)) + fixed[4] <= O, f"C9_update_{s}"
    solve = _solve(lp, options)
    if not solve.status.has_solution:
        return SplitResult(stage_layers=(), objective_s=float("inf"), solve=solve)
    split = tuple(int(round(sum(pulp.value(c(r, s)) for r in range(R)))) for s in range(p))
    return SplitResult(stage_layers=split, objective_s=problem.objective(split), solve=solve)


def _solve(lp: pulp.LpProblem, options: SolverOptions) -> SolveResult:
    """Through the shared solver layer (solvers.solve_pulp); where its backend cannot load in this process
    (another module loaded highspy first), through PuLP's own HiGHS interface, which the result's message records."""
    try:
        return solvers.solve_pulp(lp, options)
    except (ImportError, SolverUnavailableError) as exc:
        note = f"shared solver layer unavailable ({type(exc).__name__}); PuLP HiGHS interface used"
    solver = pulp.HiGHS(msg=options.verbose, timeLimit=options.time_limit_s, threads=options.threads,
                        gapRel=options.relative_gap, random_seed=options.seed)
    code = lp.solve(solver)
    status = {pulp.LpStatusOptimal: SolveStatus.OPTIMAL, pulp.LpStatusInfeasible: SolveStatus.INFEASIBLE,
              pulp.LpStatusUnbounded: SolveStatus.UNBOUNDED}.get(code, SolveStatus.NO_SOLUTION)
    if status is SolveStatus.NO_SOLUTION and lp.sol_status == pulp.LpSolutionIntegerFeasible:
        status = SolveStatus.FEASIBLE
    objective = pulp.value(lp.objective) if status.has_solution else None
    bound = objective if status is SolveStatus.OPTIMAL else None
    return SolveResult(status=status, objective=objective, bound=bound, gap=relative_gap(objective, bound),
                       backend="highs", backend_version=_highs_version(),
                       message=f"{pulp.LpStatus[code]}; {note}")


def _highs_version() -> str:
    from importlib import metadata
    try:
        return metadata.version("highspy")
    except metadata.PackageNotFoundError:
        return ""
