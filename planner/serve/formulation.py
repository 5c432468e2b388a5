"""Integer instance counts per candidate shape: an ILP per serving mode (PuLP, solved by solvers.solve_pulp).

Sets     K pools (nodes N_k of n_k GPUs); P prefill candidates i (shape, pool k(i), destination decode pool
         l(i)); D decode candidates j (shape, pool k(j)); for colocated / intra_gpu a single set C of
         candidates c that serve whole requests.
Data     g_i GPUs per instance; cap_i SLO-feasible req/s of one instance (planner.serve.capacity);
         b_i KV bytes/s per GPU of the link from i to its destination pool, b_j the decode pool's NIC;
         κ KV bytes per request; price_i $/h per instance; R target rate (objectives gpus, cost).
Variables x_i, y_j, z_c ∈ Z≥0 instance counts; λ_l ≥ 0 req/s sent to decode pool l; s_k ∈ Z≥0 nodes of pool
         k given to instances smaller than a node.
Objective goodput: max Σλ / Σ g·count (linear-fractional: Dinkelbach, max Σλ − θ·Σg·count with θ updated
         to the last ratio until the optimum is 0; every step an ILP, so the ratio is exact);
         gpus: min Σ g·count; cost: min Σ price·count; both with Σλ ≥ R.
(C1) prefill capacity   Σ_{i: l(i)=l} Σ_m cap_i(m)·z_im ≥ λ_l          for every decode pool l
     (C1p) x_i = Σ_m m·z_im, Σ_m z_im ≤ 1, z binary: cap_i(m) is the rate of m instances of i pooled behind
           one router (M/G/m, planner.serve.capacity), more than m·cap_i(1)
(C2) decode capacity    Σ_{j: k(j)=l} cap_j y_j ≥ λ_l                 for every l
(C3) KV bandwidth       κ·λ_l ≤ Σ_{i: l(i)=l} b_i g_i x_i  and  κ·λ_l ≤ Σ_{j: k(j)=l} b_j g_j y_j
         (b: NVLink inside a one-node pool, the NIC between nodes, the inter-pool link between pools)
(C4) GPU inventory      Σ_{instances on k} g·count ≤ N_k·n_k           for every pool k
(C5) node packing       Σ_{small on k} g·count ≤ n_k·s_k;  s_k + Σ_{big on k} (g/n_k)·count ≤ N_k
         (instance sizes are powers of two dividing n_k or multiples of it, so small instances pack exactly)
(C6) rate               Σ_l λ_l ≥ R                                     (objectives gpus and cost)
Single-phase modes use (C4)-(C6) with (C1') Σ_c cap_c z_c ≥ λ; a candidate with pooled_rps supplies the rate of
the chosen count as in (C1p) (c instances fed round-robin by the router, GI/G/1 at c_a² = 1/c, more than c·cap_c
when the prompt queue binds).
"""

import dataclasses
from dataclasses import dataclass

import pulp

from costmodels.errors import SpecError
from costmodels.hardware import ClusterSpec
from planner.serve.budget import MIN_SOLVER_S
from planner.serve.capacity import Candidate, kv_link
from solvers import SolverOptions, solve_pulp
from solvers.deadline import Deadline

DINKELBACH_TOL = 1e-9
MAX_DINKELBACH = 30


@dataclass(frozen=True, kw_only=True, slots=True)
class CountSolution:
    """Instance counts and the rate they serve."""

    counts: tuple[tuple[Candidate, int], ...]
    """(candidate, instances) with instances > 0, sorted by candidate key"""
    rate_rps: float
    """Σλ, the SLO-feasible rate the counts sustain"""
    gpus: int
    cost_per_hour: float
    solver: dict
    """backend, status, objective, bound, gap of the last solve"""

    @property
    def goodput_per_gpu(self) -> float:
        return self.rate_rps / self.gpus if self.gpus else 0.0


def _ingress(cluster: ClusterSpec, pool) -> float:
    """KV bytes/s per decode GPU: NVLink in a one-node pool (unless other pools send), else the NIC."""
    if pool.nodes == 1 and len(cluster.pools) == 1:
        return pool.intra_node_bytes_per_s
    return pool.inter_node_bytes_per_s


def _int_var(name: str, ub: int) -> pulp.LpVariable:
    return pulp.LpVariable(name, lowBound=0, upBound=max(ub, 0), cat="Integer")


def _fits(c: Candidate, pool_nodes: int, per_node: int) -> bool:
    if c.gpus <= per_node:
        return per_node % c.gpus == 0
    return c.gpus % per_node == 0 and c.gpus // per_node <= pool_nodes


class _Model:
    """Builds (C1)-(C6) for one mode; `terms()` give the expressions the objectives need."""

    def __init__(self, cluster: ClusterSpec, groups: dict[str, list[Candidate]], kv_bytes_per_req: float,
                 rate: float | None):
        self.cluster = cluster
        self.prob = None
        self.groups = {role: [c for c in cands if _fits(c, cluster.pool(c.pool).nodes,
                                                          cluster.pool(c.pool).devices_per_node)]
                       for role, cands in groups.items()}
        self.kv = kv_bytes_per_req
        self.rate = rate

    def build(self, sense) -> tuple:
        prob = pulp.LpProblem("serve_counts", sense)
        var = {}
        pooled = {}
        for role, cands in self.groups.items():
            for n, c in enumerate(cands):
                pool = self.cluster.pool(c.pool)
                var[(role, n)] = _int_var(f"{role}_{n}", pool.num_devices // c.gpus)
                if c.pooled_rps:
                    pooled[(role, n)] = self._pool_choice(prob, f"{role}_{n}", var[(role, n)], c)
        lam = {}  # λ in units of `unit` req/s
        # rows in units of a target rate below 1 req/s: the solver's absolute feasibility tolerance (~1e-6) would
        # otherwise let λ = R be served by no instance at all at R ~ 1e-6 req/s
        unit = min(self.rate, 1.0) if self.rate else 1.0
        if "prefill" in self.groups:
            for pool in self.cluster.pools:
                lam[pool.name] = pulp.LpVariable(f"lam_{pool.name}", lowBound=0)
                pre = [(c, var[("prefill", n)]) for n, c in enumerate(self.groups["prefill"])
                       if c.dest_pool == pool.name]
                dec = [(c, var[("decode", n)]) for n, c in enumerate(self.groups["decode"]) if c.pool == pool.name]
                supply = [pooled.get(("prefill", n), c.capacity_rps * var[("prefill", n)])
                          for n, c in enumerate(self.groups["prefill"]) if c.dest_pool == pool.name]
                # (C1) prefill capacity (pooled: the M/G/c rate of the chosen count), (C2) decode capacity
                prob += pulp.lpSum(supply) * (1.0 / unit) >= lam[pool.name], f"C1_{pool.name}"
                prob += pulp.lpSum(c.capacity_rps / unit * v for c, v in dec) >= lam[pool.name], f"C2_{pool.name}"
                # (C3) KV bandwidth out of the prefill instances and into the decode instances
                out_bw = []
                for c, v in pre:
                    out_bw.append(kv_link(self.cluster, self.cluster.pool(c.pool), pool)[0] * c.gpus * v)
                prob += self.kv * unit * lam[pool.name] <= pulp.lpSum(out_bw), f"C3_out_{pool.name}"
                prob += self.kv * unit * lam[pool.name] <= pulp.lpSum(_ingress(self.cluster, pool) * c.gpus * v
                                                               for c, v in dec), f"C3_in_{pool.name}"
        else:
            (role,) = tuple(self.groups)
            lam["all"] = pulp.LpVariable("lam_all", lowBound=0)
            # (C1') whole-request capacity
            supply = [pooled.get((role, n), c.capacity_rps * var[(role, n)]) for n, c in enumerate(self.groups[role])]
            prob += pulp.lpSum(supply) * (1.0 / unit) >= lam["all"], "C1"
        for pool in self.cluster.pools:
            small, big = [], []
            for (role, n), v in var.items():
                c = self.groups[role][n]
                if c.pool != pool.name:
                    continue
                (small if c.gpus <= pool.devices_per_node else big).append((c, v))
            # (C4) GPU inventory
            prob += pulp.lpSum(c.gpus * v for c, v in small + big) <= pool.num_devices, f"C4_{pool.name}"
            # (C5) node packing
            s_k = _int_var(f"nodes_{pool.name}", pool.nodes)
            prob += pulp.lpSum(c.gpus * v for c, v in small) <= pool.devices_per_node * s_k, f"C5a_{pool.name}"
            prob += (s_k + pulp.lpSum(c.gpus // pool.devices_per_node * v for c, v in big) <= pool.nodes,
                     f"C5b_{pool.name}")
        total_rate = unit * pulp.lpSum(lam.values())
        if self.rate is not None:
            # (C6) target rate
            prob += pulp.lpSum(lam.values()) >= self.rate / unit, "C6"
        gpus = pulp.lpSum(self.groups[role][n].gpus * v for (role, n), v in var.items())
        cost = pulp.lpSum(self.groups[role][n].cost_per_hour * v for (role, n), v in var.items())
        return prob, var, total_rate, gpus, cost

    @staticmethod
    def _pool_choice(prob, name: str, count, c: Candidate):
        """(C1p) pooled capacity: binaries z_m pick the count m of instances (count = Σ m·z_m, Σ z_m ≤ 1), and the
        candidate supplies Σ λ_P(m)·z_m, the M/G/c rate of m pooled instances (exact, not a linearisation)."""
        z = {m: pulp.LpVariable(f"{name}_pool_{m}", cat="Binary") for m in range(1, len(c.pooled_rps) + 1)}
        prob += pulp.lpSum(z.values()) <= 1, f"C1p_one_{name}"
        prob += count == pulp.lpSum(m * v for m, v in z.items()), f"C1p_count_{name}"
        return pulp.lpSum(c.pooled_rps[m - 1] * v for m, v in z.items())

    def extract(self, var, total_rate) -> tuple[tuple[tuple[Candidate, int], ...], float]:
        counts = []
        for (role, n), v in sorted(var.items(), key=lambda kv: self.groups[kv[0][0]][kv[0][1]].key):
            k = int(round(v.value() or 0))
            if k > 0:
                counts.append((self.groups[role][n], k))
        return tuple(counts), float(pulp.value(total_rate) or 0.0)


def _solution(model: _Model, var, total_rate, result) -> CountSolution:
    counts, _ = model.extract(var, total_rate)
    # the rate the integer counts sustain (λ can sit below its bounds when the objective does not push it)
    rate = _sustained_rate(model, counts)
    gpus = sum(c.gpus * k for c, k in counts)
    cost = sum(c.cost_per_hour * k for c, k in counts)
    return CountSolution(counts=counts, rate_rps=rate, gpus=gpus, cost_per_hour=cost, solver=result.to_json())


def _sustained_rate(model: _Model, counts) -> float:
    """Largest Σλ the counts support under (C1)-(C3)."""
    if "prefill" not in model.groups:
        return sum(c.group_rps(k) for c, k in counts)
    total = 0.0
    for pool in model.cluster.pools:
        pre = sum(c.group_rps(k) for c, k in counts if c.role == "prefill" and c.dest_pool == pool.name)
        dec = sum(c.group_rps(k) for c, k in counts if c.role == "decode" and c.pool == pool.name)
        bw_out = sum(kv_link(model.cluster, model.cluster.pool(c.pool), pool)[0] * c.gpus * k for c, k in counts
                     if c.role == "prefill" and c.dest_pool == pool.name)
        bw_in = sum(_ingress(model.cluster, pool) * c.gpus * k for c, k in counts
                    if c.role == "decode" and c.pool == pool.name)
        total += min(pre, dec, bw_out / model.kv if model.kv else pre, bw_in / model.kv if model.kv else dec)
    return total


def solve_counts(cluster: ClusterSpec, groups: dict[str, list[Candidate]], *, objective: str, rate: float | None,
                 kv_bytes_per_req: float, options: SolverOptions) -> CountSolution | None:
    """Optimal integer counts for one mode (groups: {"prefill", "decode"} or {"colocated"} / {"intra_gpu"}).
    options.time_limit_s bounds the whole call (the Dinkelbach ILPs share it; past it, the best found so far)."""
    if not all(groups.values()):
        return None
    model = _Model(cluster, groups, kv_bytes_per_req, rate)
    if not all(model.groups.values()):
        return None
    deadline = Deadline(options.time_limit_s)

    def solve(prob):
        return solve_pulp(prob, dataclasses.replace(options, time_limit_s=max(deadline.remaining(), MIN_SOLVER_S)))
    if objective in ("gpus", "cost") or (objective == "goodput" and rate is not None):
        prob, var, total_rate, gpus, cost = model.build(pulp.LpMinimize)
        if objective == "cost":
            if all(c.cost_per_hour == 0 for cands in model.groups.values() for c in cands):
                raise SpecError("the cost objective needs cost_per_hour in the hardware profiles", field="objective")
            prob += cost
        else:
            prob += gpus
        result = solve(prob)
        if not result.status.has_solution:
            return None
        return _solution(model, var, total_rate, result)
    # goodput per GPU without a target rate: Dinkelbach on max Σλ / Σg
    theta, best = 0.0, None
    for _ in range(MAX_DINKELBACH):
        if best is not None and deadline.expired():
            return best
        prob, var, total_rate, gpus, _ = model.build(pulp.LpMaximize)
        prob += total_rate - theta * gpus
        result = solve(prob)
        if not result.status.has_solution:
            return best
        sol = _solution(model, var, total_rate, result)
        if sol.gpus == 0 or sol.rate_rps <= 0:
            return best
        value = (result.objective or 0.0)
        best = sol if best is None or sol.goodput_per_gpu > best.goodput_per_gpu + 1e-12 else best
        if value <= DINKELBACH_TOL * max(1.0, sol.rate_rps):
            break
        theta = sol.goodput_per_gpu
    if best is None or deadline.expired():
        return best
    # among the counts reaching the optimal ratio, take the largest rate (replicas of the best unit)
    theta = best.goodput_per_gpu
    prob, var, total_rate, gpus, _ = model.build(pulp.LpMaximize)
    prob += total_rate - theta * gpus >= -DINKELBACH_TOL * max(1.0, best.rate_rps), "ratio"
    prob += total_rate
    result = solve(prob)
    if result.status.has_solution:
        sol = _solution(model, var, total_rate, result)
        if sol.gpus and sol.goodput_per_gpu >= theta * (1 - 1e-7):
            return sol
    return best
