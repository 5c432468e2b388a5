"""plan_serving: candidates → per-mode ILP → best mode → simulator verification → plan document.

Modes compared in one plan: disaggregated (prefill and decode instances, KV moved between them),
colocated (continuous batching with chunked prefill), intra_gpu (semi-PD compute shares inside each
instance). The best mode by the objective wins; the simulator then replays the workload against it. If the
simulated attainment is not accepted (planner.serve.verify: independent replays whose one-sided 95% lower bound
must clear the target), the capacities are derated by DERATE and the counts re-solved (rate given), or the
sustainable rate is lowered by DERATE (goodput objective), at most MAX_REPAIRS times; with the goodput objective
an accepted rate is then raised by 1/DERATE steps while the replays still accept it, so the plan reports the
sustained maximum the simulator supports.
`options.time_limit_s` bounds all of it (planner.serve.budget): replays stop when the time left cannot cover
one more, the plan is the best simulated so far and its solver.status says "time_limit".
"""

import dataclasses
import math

from costmodels.errors import InfeasibleError, SolverError, require
from costmodels.hardware import ClusterSpec
from costmodels.kv import kv_bytes_per_token
from costmodels.model import ModelSpec
from costmodels.serving import KV_MEMORY_FRACTION, kv_capacity_tokens, weight_bytes_per_gpu
from costmodels.serving_shapes import quant_block_problem
from costmodels.training import GiB
from planner.confidence import serve_plan_fields
from planner.confidence.attach import goodput_versus
from planner.confidence.robust_serve import robust_workload
from planner.plan import Plan, make_plan
from planner.serve.budget import VerifyBudget
from planner.serve.capacity import CapacityModel, build_candidates, shapes_for
from planner.serve.formulation import CountSolution, solve_counts
from planner.serve.front import pareto_fronts, top_alternatives
from planner.serve.layouts import LAYOUT_MARGIN, ranked_layouts, same_counts
from planner.serve.request import ServeOptions, ServeRequest, ServingWorkload, check_serve_inputs
from planner.serve.simulate import Deployment, simulate
from planner.serve.verify import accepted, replicate
from solvers.deadline import Deadline

DERATE = 0.9
MAX_REPAIRS = 8
MAX_RAISES = 4
"""goodput objective: upward steps of 1/DERATE tried beyond the first accepted rate"""
BISECT_STEPS = 2
"""goodput objective: bisections between the last accepted and the first rejected rate"""
WRITE_UP_S = 0.1
"""seconds of the time limit kept for writing the plan up after the search (confidence figures, the document)"""
UNVERIFIED = "not simulated: the solve stopped at its time limit"
MODE_ROLES = {"disaggregated": ("prefill", "decode"), "colocated": ("colocated",), "intra_gpu": ("intra_gpu",)}


def _derated(groups: dict, factor: float) -> dict:
    return {role: [c.scaled(factor) for c in cands]
            for role, cands in groups.items()}


def groups_of(sol: CountSolution, rate: float) -> list[dict]:
    """Decision groups (one per candidate with instances > 0), with the load each instance carries."""
    out = []
    total = {}
    for c, k in sol.counts:
        total[(c.role, c.dest_pool)] = total.get((c.role, c.dest_pool), 0.0) + c.group_rps(k)
    for c, k in sol.counts:
        # each instance of a group carries an equal part of the group's share (capacity-proportional across groups)
        share = c.group_rps(k) / k / total[(c.role, c.dest_pool)] if total[(c.role, c.dest_pool)] else 0.0
        g = c.to_json()
        g["instances"] = k
        g["load_rps"] = rate * share
        out.append(g)
    return out


def _predicted(cm: CapacityModel, sol: CountSolution, rate: float) -> dict:
    # TTFT at the analytic capacity when the simulator supported a higher rate (the queueing model has no
    # finite figure past its capacity; the simulated block reports the raised rate)
    served = min(rate, sol.rate_rps)
    groups = groups_of(sol, served)
    cands = {c.key: c for c, _ in sol.counts}
    ttft = 0.0
    tpot = 0.0
    for g, (c, k) in zip(groups, sol.counts, strict=True):
        if c.role == "prefill":
            # when a pool feeds several decode pools, its load splits in proportion to capacity; a prefill
            # group's instances share one router queue (M/G/c at the group's load)
            servers = k if c.pooled_rps else 1
            ttft = max(ttft, cands[c.key].ttft_quantile_s(g["load_rps"] * servers, cm.q, servers=servers))
        elif c.role in ("colocated", "intra_gpu"):
            # the router deals requests to these instances up front (weighted round-robin): each queues alone, fed
            # every 1/p-th arrival of the Poisson stream (its share p), gaps of squared coefficient of variation p
            share = g["load_rps"] / served if served > 0 else 1.0
            ttft = max(ttft, cands[c.key].ttft_quantile_s(g["load_rps"], cm.q, arrival_scv=min(share, 1.0)))
        if c.role in ("decode", "colocated", "intra_gpu"):
            tpot = max(tpot, c.tpot_s)
    tokens = rate * cm.stats.mean_out
    return {"rate_rps": rate, "gpus": sol.gpus, "cost_per_hour": sol.cost_per_hour,
            "goodput_tokens_per_s": tokens, "goodput_tokens_per_s_per_gpu": tokens / sol.gpus if sol.gpus else 0.0,
            "ttft_s": ttft, "tpot_s": tpot, "capacity_rps": sol.rate_rps}


def _decision(mode: str, groups: list[dict]) -> dict:
    decision = {"mode": mode, "groups": groups, "prefill": None, "decode": None, "colocated": None, "intra_gpu": None}
    for role in ("prefill", "decode", "colocated", "intra_gpu"):
        mine = [g for g in groups if g["role"] == role]
        if mine:
            main = max(mine, key=lambda g: (g["instances"] * g["gpus"], -g["tp"], g["pool"]))
            decision[role] = {k: main[k] for k in ("tp", "pp", "ep", "dp", "pool", "instances", "max_batch",
                                                   "chunk_tokens", "prefill_share", "dest_pool")}
            decision[role]["instances_total"] = sum(g["instances"] for g in mine)
    return decision


def _one_p_one_d(cands: dict, cluster: ClusterSpec, objective: str, rate: float | None, mean_out: float):
    """DistServe-style baseline: one prefill + one decode instance, replicated as a unit: (CountSolution, groups)."""
    best = None
    for p in cands["prefill"]:
        for d in cands["decode"]:
            if p.dest_pool != d.pool:
                continue
            need = {}
            for c in (p, d):
                need[c.pool] = need.get(c.pool, 0) + c.gpus
            units = min(cluster.pool(k).num_devices // v for k, v in need.items())
            if units < 1:
                continue
            unit_rate = min(p.capacity_rps, d.capacity_rps)
            if rate is not None:
                units_needed = math.ceil(rate / unit_rate - 1e-9)
                if units_needed > units:
                    continue
                units = units_needed
            gpus = units * (p.gpus + d.gpus)
            sol = CountSolution(counts=tuple(sorted(((p, units), (d, units)), key=lambda cu: cu[0].key)),
                                rate_rps=units * unit_rate, gpus=gpus,
                                cost_per_hour=units * (p.cost_per_hour + d.cost_per_hour),
                                solver={"backend": "enumeration", "status": "optimal"})
            key = (-gpus, 0.0) if rate is not None else (sol.goodput_per_gpu, -gpus)
            if best is None or key > best[0]:
                best = (key, sol, {"prefill": [p], "decode": [d]})
    return (best[1], best[2]) if best else None


def _verify(cm: CapacityModel, mode: str, sol: CountSolution, groups: dict, *, objective: str, rate: float | None,
            kv_req: float, budget: VerifyBudget, resolve: bool = True):
    """Simulate; while attainment < target, lower the served rate (no target rate) or re-solve with derated
    capacities (target rate; resolve False = no re-solve). Returns (sol, served rate, sim, factor, repairs), or
    None when the budget allowed no replay; a repair or raise the budget refuses keeps the last simulated one."""
    served = rate if rate is not None else sol.rate_rps
    opts = cm.options

    deployments = {}  # the engines' cost tables depend on the counts, not on the rate: build them once

    def run(s, r):
        key = tuple((c.key, k) for c, k in s.counts)
        if key not in deployments:
            deployments[key] = Deployment(cm, _decision(mode, groups_of(s, r)))
        dep = deployments[key]
        return replicate(budget.timed(lambda seed: simulate(dep, rate=r, requests=opts.simulate_requests, seed=seed)),
                         seed=opts.seed, seeds=opts.verify_seeds, requests=opts.simulate_requests,
                         allows=budget.allows_replay)

    sim = run(sol, served)
    if sim is None:
        return None
    repairs, factor = 0, 1.0
    while not accepted(sim, cm.workload.attainment) and repairs < MAX_REPAIRS:
        repairs += 1
        factor *= DERATE
        trial_sol = sol
        if rate is None:
            trial_served = sol.rate_rps * factor
        else:
            if not resolve or budget.deadline.expired():
                break
            again = solve_counts(cm.cluster, _derated(groups, factor), objective=objective, rate=rate,
                                 kv_bytes_per_req=kv_req, options=budget.solver_options())
            if again is None:
                break
            trial_sol = CountSolution(counts=tuple((c0, k) for c0, k in _undo_derate(again.counts, groups)),
                                      rate_rps=again.rate_rps / factor, gpus=again.gpus,
                                      cost_per_hour=again.cost_per_hour, solver=again.solver)
            trial_served = served
        trial = run(trial_sol, trial_served)
        if trial is None:  # out of time: the last simulated deployment stands
            repairs, factor = repairs - 1, factor / DERATE
            break
        sol, served, sim = trial_sol, trial_served, trial
    if rate is None and accepted(sim, cm.workload.attainment):
        served, sim, factor = _raise_rate(lambda r: run(sol, r), sol.rate_rps, factor, sim, cm.workload.attainment,
                                          rejected_above=repairs > 0)
    return sol, served, sim, factor, repairs


def _raise_rate(run, capacity: float, factor: float, sim: dict, target: float,
                rejected_above: bool) -> tuple[float, dict, float]:
    """Raise an accepted rate by steps of 1/DERATE while the replays still accept it (at most MAX_RAISES steps),
    then bisect BISECT_STEPS times between the last accepted and the first rejected rate; the last accepted rate
    is the sustained maximum the plan reports: (rate, its replays, rate / capacity). A replay the time budget
    refuses (run returns None) ends the search at the last accepted rate."""
    high = factor / DERATE
    for _ in range(0 if rejected_above else MAX_RAISES):
        trial = run(capacity * high)
        if trial is None:
            return capacity * factor, sim, factor
        if not accepted(trial, target):
            break
        factor, sim, high = high, trial, high / DERATE
    else:
        if not rejected_above:
            return capacity * factor, sim, factor
    for _ in range(BISECT_STEPS):
        mid = (factor + high) / 2
        trial = run(capacity * mid)
        if trial is None:
            break
        if accepted(trial, target):
            factor, sim = mid, trial
        else:
            high = mid
    return capacity * factor, sim, factor


def _undo_derate(counts, groups: dict):
    """Map derated candidates back to the originals (same key)."""
    originals = {c.key: c for cands in groups.values() for c in cands}
    return [(originals[c.key], k) for c, k in counts]


def _better_verified(a: tuple, b: tuple | None, objective: str, rate: float | None, target: float) -> bool:
    """Compare verified solutions: reaching the attainment target first, then the objective at the verified rate."""
    if b is None:
        return True
    target_a, target_b = a[2]["attainment"], b[2]["attainment"]
    if accepted(a[2], target) != accepted(b[2], target):
        return accepted(a[2], target)
    if objective == "cost":
        return a[0].cost_per_hour < b[0].cost_per_hour - 1e-9
    if objective == "gpus" or rate is not None:
        return (a[0].gpus, -target_a) < (b[0].gpus, -target_b)
    return a[1] / a[0].gpus > b[1] / b[0].gpus * (1 + 1e-9)


def _weights_do_not_fit(model: ModelSpec, cluster: ClusterSpec, options: ServeOptions) -> InfeasibleError | None:
    """When no instance shape's weights fit its GPUs: "weights need X GiB per GPU, the device has Y GiB" for the
    shape needing least per GPU on each pool (costmodels.serving.weight_bytes_per_gpu; the room is the device's
    usable memory times KV_MEMORY_FRACTION, as in kv_capacity_tokens). None when some shape fits."""
    if _fitting_shapes(model, cluster, options):
        return None
    parts, details = [], []
    for pool in cluster.pools:
        shapes = shapes_for(model, pool, options)
        if not shapes:
            continue
        shape = min(shapes, key=lambda s: (weight_bytes_per_gpu(model, s, options.dtype), s.tp * s.pp * s.dp))
        need = weight_bytes_per_gpu(model, shape, options.dtype) / GiB
        room = pool.device.usable_bytes * KV_MEMORY_FRACTION / GiB
        parts.append(f"weights need {need:.1f} GiB per GPU, the device {pool.device.name} has {room:.1f} GiB for "
                     f"weights and KV cache ({KV_MEMORY_FRACTION:.0%} of its {pool.device.usable_bytes / GiB:.1f} GiB "
                     f"usable memory; least-memory shape tp{shape.tp} pp{shape.pp} dp{shape.dp} on pool {pool.name} "
                     f"of {pool.num_devices} GPU{'s' if pool.num_devices > 1 else ''})")
        details.append({"pool": pool.name, "weights_gib_per_gpu": need, "device_gib": room})
    if not parts:
        return None
    hint = "more GPUs" + ("" if options.dtype == "fp8" else " or --dtype fp8")
    return InfeasibleError(f"the weights do not fit: {'; '.join(parts)}; try {hint}",
                           details={"binding": ["memory"], "pools": details})


def _ms(seconds: float) -> str:
    """Milliseconds to four significant digits (a 0.02 ms SLO is not "0.0 ms")."""
    return f"{seconds * 1e3:.4g}"


def _priced(cm: CapacityModel, role: str) -> list:
    """Prefill (zero-load TTFT) or decode (TPOT) candidates of every shape, for the infeasibility message."""
    out = []
    for pool in cm.cluster.pools:
        for shape in shapes_for(cm.model, pool, cm.options):
            c = cm.prefill(pool, pool, shape) if role == "prefill" else cm.decode(pool, shape)
            if c is not None:
                out.append(c)
    return out


def _infeasible(cm: CapacityModel, cands: dict, workload: ServingWorkload) -> InfeasibleError:
    memory = _weights_do_not_fit(cm.model, cm.cluster, cm.options)
    if memory is not None:
        return memory
    pre = cands["prefill"] + cands["prefill_infeasible"] + cands["colocated"] + cands["intra_gpu"]
    dec = cands["decode"] + cands["decode_infeasible"]
    if not pre or not dec:  # modes without disaggregated serving: their shapes' prefill and decode alone
        pre, dec = pre or _priced(cm, "prefill"), dec or _priced(cm, "decode")
    best_t = min(pre, key=lambda c: (c.ttft_floor_s, c.gpus, c.key), default=None)
    best_d = min(dec, key=lambda c: (c.tpot_s, c.gpus, c.key), default=None)
    if best_t is None and best_d is None:
        return InfeasibleError("no instance shape fits the model's weights in the cluster's GPUs",
                               details={"binding": "memory"})
    ttft = best_t.ttft_floor_s if best_t else math.inf
    tpot = best_d.tpot_s if best_d else math.inf
    binding = [name for name, ok in (("TTFT", ttft <= workload.ttft_s), ("TPOT", tpot <= workload.tpot_s)) if not ok]
    what = " and ".join(binding) if binding else "GPU budget / rate"
    cfg_t = best_t.name if best_t else "none"
    cfg_d = best_d.name if best_d else "none"
    msg = (f"no configuration meets the SLOs; binding: {what}. "
           f"Best achievable TTFT (p{workload.percentile:g}, zero load) "
           f"{_ms(ttft)} ms with {cfg_t} (SLO {_ms(workload.ttft_s)} ms); best TPOT {_ms(tpot)} ms "
           f"with {cfg_d} at batch 1 (SLO {_ms(workload.tpot_s)} ms)")
    if not binding:
        where = f"at rate {workload.rate_per_s:.4g} req/s" if workload.rate_per_s is not None else "at any rate"
        msg += f"; each SLO is reachable alone but not together {where} within {cm.cluster.num_devices} GPUs"
    return InfeasibleError(msg, details={"binding": binding or ["capacity"], "best_ttft_s": ttft, "best_tpot_s": tpot,
                                         "ttft_config": cfg_t, "tpot_config": cfg_d})


def plan_serving(model: ModelSpec, cluster: ClusterSpec, workload: ServingWorkload, *, objective: str = "goodput",
                 rate: float | None = None, options: ServeOptions | None = None, progress=None) -> Plan:
    """Best prefill/decode split (or colocated / intra-GPU mode) under the workload's percentile SLOs. The inputs get
    the CLI's refusals (SpecError naming the field: exit 2 from the CLI) before any work."""
    options = ServeOptions() if options is None else options
    require(isinstance(options, ServeOptions), f"must be a planner.serve.ServeOptions (or None for the defaults), got "
            f"{type(options).__name__}", field="options")
    if rate is not None:
        workload = dataclasses.replace(workload, rate_per_s=rate)
    request = ServeRequest(model=model, cluster=cluster, workload=workload, objective=objective)
    check_serve_inputs(model, cluster, options, objective=objective, rate=workload.rate_per_s)
    return plan_request(request, options, progress)


def _alternatives(cm: CapacityModel, verified: dict, modes: tuple[str, ...], best_mode: str, objective: str,
                  predicted: dict, unverified: set[str]) -> list[dict]:
    """The other modes, verified by simulation, each with why it lost."""
    alternatives = []
    for mode in modes:
        if mode == best_mode:
            continue
        if verified.get(mode):
            v_sol, v_rate, v_sim = verified[mode][:3]
            alt = _predicted(cm, v_sol, v_rate)
            alternatives.append({"mode": mode, "gpus": alt["gpus"], "rate_rps": alt["rate_rps"],
                                 "goodput_tokens_per_s_per_gpu": alt["goodput_tokens_per_s_per_gpu"],
                                 "simulated_attainment": v_sim["attainment"],
                                 "why": f"worse {objective} than {best_mode} after simulation",
                                 **goodput_versus(predicted, alt["goodput_tokens_per_s_per_gpu"])})
        elif mode in unverified:
            alternatives.append({"mode": mode, "why": UNVERIFIED})
        else:
            alternatives.append({"mode": mode, "why": "no SLO-feasible configuration"})
    return alternatives


def _baselines(cm: CapacityModel, cands: dict, verified: dict, *, objective: str, rate: float | None,
               kv_req: float, budget: VerifyBudget) -> dict:
    """Colocated serving and DistServe-style 1P1D units, verified by simulation like the plan."""
    keys = ("gpus", "rate_rps", "goodput_tokens_per_s_per_gpu", "ttft_s", "tpot_s")
    baselines: dict = {}
    if verified.get("colocated"):
        c, c_rate, c_sim = verified["colocated"][:3]
        b = _predicted(cm, c, c_rate)
        baselines["colocated"] = {"groups": groups_of(c, c_rate), "simulated_attainment": c_sim["attainment"],
                                  **{k: b[k] for k in keys}}
    else:
        baselines["colocated"] = {"feasible": False}
    one = _one_p_one_d(cands, cm.cluster, objective, rate, cm.stats.mean_out)
    if one is not None:
        one_sol, one_groups = one
        budget.stage = "verifying the 1P1D baseline"
        checked = _verify(cm, "disaggregated", one_sol, one_groups, objective=objective, rate=rate, kv_req=kv_req,
                          budget=budget, resolve=False)
        if checked is not None:
            o_sol, o_rate, o_sim = checked[:3]
            o = _predicted(cm, o_sol, o_rate)
            baselines["disaggregated_1p1d"] = {"groups": groups_of(o_sol, o_rate),
                                               "simulated_attainment": o_sim["attainment"], **{k: o[k] for k in keys}}
        else:
            baselines["disaggregated_1p1d"] = {"verified": False, "why": UNVERIFIED}
    baselines.setdefault("disaggregated_1p1d", {"feasible": False})
    return baselines


def _fitting_shapes(model: ModelSpec, cluster: ClusterSpec, options: ServeOptions) -> list:
    """Candidate shapes whose weights fit their GPUs (any KV room left)."""
    return [s for pool in cluster.pools for s in shapes_for(model, pool, options)
            if kv_capacity_tokens(model, pool.device, s, options.dtype, options.kv_dtype) > 0]


def _require_block_split(model: ModelSpec, cluster: ClusterSpec, options: ServeOptions) -> None:
    """InfeasibleError (exit 3) naming the block when the FP8-block checkpoint splits at no shape that fits."""
    if not options.quant_block or _fitting_shapes(model, cluster, options):
        return
    loose = _fitting_shapes(model, cluster, dataclasses.replace(options, quant_block=0))
    if loose:
        raise InfeasibleError(f"no instance shape that fits can load the FP8-block checkpoint "
                              f"({options.quant_block}-wide quantization block): e.g. "
                              f"{quant_block_problem(model, loose[0], options.quant_block)}",
                              details={"binding": ["quant_block"], "quant_block": options.quant_block})


def plan_request(request: ServeRequest, options: ServeOptions, progress=None) -> Plan:
    """The kind-'serve' plan for one request (the body of planner.serve.plan.plan)."""
    if request.objective == "throughput":
        from planner.serve.offline import plan_offline

        return plan_offline(request, options, progress)
    model, cluster, workload, objective = request.model, request.cluster, request.workload, request.objective
    deadline = Deadline(options.time_limit_s)
    budget = VerifyBudget(deadline.reserve(WRITE_UP_S), progress)
    robust_note = None
    if options.robust:  # SLOs tightened by the 90th-percentile latency factor (planner/confidence/robust_serve.py)
        workload, robust_note = robust_workload(model, cluster, workload, options)
    rate = workload.rate_per_s
    names = [p.name for p in cluster.pools]
    for name in options.prefill_pools + options.decode_pools:
        require(name in names, f"unknown pool {name!r}; valid: {', '.join(names)}", field="prefill_pools/decode_pools")
    _require_block_split(model, cluster, options)
    cm = CapacityModel(model, cluster, workload, options)
    cands = build_candidates(cm)
    kv_req = cm.stats.mean_in * kv_bytes_per_token(model, options.kv_dtype or options.dtype)
    verified, ranked, unverified = _solve_modes(cm, cands, objective=objective, rate=rate, kv_req=kv_req,
                                                budget=budget)
    best_mode = None
    for mode in options.modes:
        if mode in verified and verified[mode] is not None and _better_verified(
                verified[mode], verified[best_mode] if best_mode else None, objective, rate, workload.attainment):
            best_mode = mode
    if best_mode is None:
        if deadline.expired():  # a cut search proves nothing: never report it as infeasible
            raise SolverError(f"the search stopped at its time limit ({options.time_limit_s:g} s, "
                              f"{deadline.elapsed():.1f} s elapsed) before it found a deployment; this does not mean "
                              f"none meets the SLOs: raise --time-limit")
        raise _infeasible(cm, cands, workload)
    sol, served, sim, factor, repairs = verified[best_mode]
    decision = _decision(best_mode, groups_of(sol, served))
    predicted = _predicted(cm, sol, served)
    predicted["capacity_derate"] = factor if rate is None else 1.0
    predicted.update(serve_plan_fields(model, cluster, workload, options, decision, predicted))
    if robust_note:
        predicted["robust"] = robust_note
    alternatives = _alternatives(cm, verified, options.modes, best_mode, objective, predicted, unverified)
    if options.top:
        alternatives += [{**alt, **goodput_versus(predicted, alt["goodput_tokens_per_s_per_gpu"])}
                         for alt in top_alternatives(ranked, sol, cm.stats.mean_out, options.top, groups_of)]
    baselines = _baselines(cm, cands, verified, objective=objective, rate=rate, kv_req=kv_req, budget=budget)
    inputs = {"model": dataclasses.asdict(model), "cluster": dataclasses.asdict(cluster),
              "workload": dataclasses.asdict(workload), "options": dataclasses.asdict(options),
              "objective": objective}
    if progress is not None:
        count = sum(len(cands[role]) for role in ("prefill", "decode", "colocated", "intra_gpu"))
        progress(f"parplan serve: {count} candidates, mode {best_mode}, {deadline.elapsed():.2f} s")
    if options.pareto and rate is None:
        base = make_plan("serve", inputs=inputs, decision=decision, predicted=predicted, alternatives=alternatives,
                         baselines=baselines, solver=sol.solver, simulated={**sim, "repairs": repairs})
        predicted.update(pareto_fronts(request, options, plan_request, base, budget.deadline))
    solver = {**sol.solver, "status": deadline.status(sol.solver["status"])}
    return make_plan("serve", inputs=inputs, decision=decision, predicted=predicted, alternatives=alternatives,
                     baselines=baselines, solver=solver, simulated={**sim, "repairs": repairs})


def _solve_modes(cm: CapacityModel, cands: dict, *, objective: str, rate: float | None, kv_req: float,
                 budget: VerifyBudget) -> tuple[dict, dict, set[str]]:
    """Per mode: the count ILP, its ranked layouts (goodput objective) and the best of up to
    options.verify_layouts of them after simulation: (verified mode -> _verify result, ranked layouts,
    modes with an ILP solution the time budget left unsimulated)."""
    options = cm.options
    results = {}
    cut = set()  # modes whose ILP the time limit left unsolved (the first always runs)
    for mode in options.modes:
        groups = {role: cands[role] for role in MODE_ROLES[mode]}
        if results and budget.deadline.expired():
            cut.add(mode)
            continue
        sol = solve_counts(cm.cluster, groups, objective=objective, rate=rate, kv_bytes_per_req=kv_req,
                           options=budget.solver_options())
        if sol is not None:
            results[mode] = (sol, groups)
    verified, ranked = {}, {}
    for mode, (sol, groups) in results.items():
        budget.stage = f"verifying {mode}"
        ranked[mode] = ranked_layouts(cm.cluster, groups, kv_bytes_per_req=kv_req, budget=budget) \
            if rate is None and not budget.deadline.expired() else []
        floor = sol.goodput_per_gpu * (1 - LAYOUT_MARGIN)
        tries = [(sol, groups)] + [sg for sg in ranked[mode] if not same_counts(sg[0], sol)
                                   and sg[0].goodput_per_gpu >= floor][:options.verify_layouts - 1]
        for t_sol, t_groups in tries:
            checked = _verify(cm, mode, t_sol, t_groups, objective=objective, rate=rate, kv_req=kv_req,
                              budget=budget)
            if checked is not None and _better_verified(checked, verified.get(mode), objective, rate,
                                                        cm.workload.attainment):
                verified[mode] = checked
    budget.deadline.expired()  # an ILP that ran to the limit counts as a hit
    return verified, ranked, (set(results) - set(verified)) | cut
