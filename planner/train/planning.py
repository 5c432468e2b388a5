"""plan_training: search, exact split, alternatives, the Megatron baseline, and the plan document."""

import time
from dataclasses import replace

from costmodels.errors import InfeasibleError
from costmodels.hardware import ClusterSpec
from costmodels.model import ModelSpec
from costmodels.parallel import ParallelConfig, TrainingWorkload
from costmodels.training import estimate_training
from planner.confidence import train_confidence, train_versus
from planner.confidence.robust import POOL as ROBUST_POOL
from planner.confidence.robust import robust_alternative, robust_rank
from planner.plan import Plan, make_plan
from planner.train.baselines import megatron_rule_config
from planner.train.feasibility import infeasible_message
from planner.train.request import TrainOptions, TrainRequest
from planner.train.search import Candidate, pools_of, search, split_problem, uneven_split_allowed
from planner.train.split import solve_split_ilp
from solvers.result import SolverOptions

PREDICTED_KEYS = ("step_time_s", "tokens_per_s_per_gpu", "model_tflops_per_gpu", "hardware_tflops_per_gpu", "mfu",
                  "memory_per_gpu_bytes")
PART_REASONS = {
    "gemm": "slower GEMMs", "attention": "slower attention", "elementwise": "more element-wise traffic",
    "recompute": "activation recomputation", "tp_comm": "more tensor-parallel communication",
    "cp_comm": "exposed context-parallel communication", "ep_comm": "more expert all-to-all traffic",
    "zero_comm": "per-micro-batch ZeRO gathers", "p2p": "more pipeline point-to-point traffic",
    "pp_bubble": "larger pipeline bubble", "dp_comm": "exposed data-parallel synchronisation",
    "optimizer": "slower optimizer step", "overhead": "fixed overhead",
}
OPTIMALITY = ("exhaustive enumeration of the outer space; candidates pruned only by valid lower bounds on step "
              "time and memory; the layer split is exact (DP on the slowest stage, HiGHS ILP for the full "
              "objective)")


def decision_of(config: ParallelConfig, microbatches: int, framework: str) -> dict:
    """What an executor needs (the framework fixes what `zero` means)."""
    return {"framework": framework, "tp": config.tp, "pp": config.pp, "dp": config.dp, "cp": config.cp,
            "ep": config.ep, "etp": config.etp, "edp": config.edp, "vpp": config.vpp, "mbs": config.mbs,
            "microbatches": microbatches,
            "zero": config.zero, "recompute": config.recompute,
            "sequence_parallel": bool(config.sequence_parallel and config.tp > 1),
            "stage_layers": list(config.stage_layers),
            "stage_pools": list(config.stage_pools) if config.stage_pools else None}


def config_of(decision: dict) -> ParallelConfig:
    """The ParallelConfig a decision describes."""
    return ParallelConfig(tp=decision["tp"], pp=decision["pp"], dp=decision["dp"], cp=decision["cp"],
                          ep=decision["ep"], etp=decision["etp"], vpp=decision["vpp"], mbs=decision["mbs"],
                          zero=decision["zero"], recompute=decision["recompute"],
                          sequence_parallel=decision["sequence_parallel"],
                          stage_layers=tuple(decision["stage_layers"]),
                          stage_pools=tuple(decision["stage_pools"]) if decision.get("stage_pools") else None)


def predicted_of(est) -> dict:
    out = {k: getattr(est, k) for k in PREDICTED_KEYS}
    out.update(stage_time_s=list(est.stage_time_s), stage_memory_bytes=list(est.stage_memory_bytes),
               breakdown=est.breakdown)
    return out


def why_lost(winner, loser) -> str:
    """'+4.1% step time: larger pipeline bubble' (the breakdown part that grew most)."""
    delta = (loser.step_time_s - winner.step_time_s) / winner.step_time_s
    if abs(delta) < 1e-9:
        return "same step time; ranked after the plan by the deterministic tie-break (smaller degrees first)"
    a, b = winner.breakdown.get("time_s", {}), loser.breakdown.get("time_s", {})
    grew = sorted(((b.get(k, 0.0) - a.get(k, 0.0), k) for k in sorted(set(a) | set(b))), reverse=True)
    part = PART_REASONS.get(grew[0][1], grew[0][1]) if grew and grew[0][0] > 0 else "slower overall"
    return f"+{delta * 100:.1f}% step time: {part}"


def _final_split(request: TrainRequest, winner: Candidate, solver: SolverOptions) -> tuple[Candidate, dict]:
    """Prove the winner's split with the ILP (pp > 1, vpp = 1); returns the candidate and the solver block."""
    c = winner.config
    if not uneven_split_allowed(request, c):
        reason = "one stage" if c.pp == 1 else "uniform splits requested or the framework's only"
        return winner, {"backend": "enumeration", "backend_version": "", "status": "optimal",
                        "objective": winner.step_time_s, "bound": winner.step_time_s, "gap": 0.0,
                        "split": f"fixed ({reason})"}
    prob = split_problem(request, c, pools_of(request, c))
    res = solve_split_ilp(prob, solver)
    block = res.solve.to_json()
    block["split"] = "ILP (C1)-(C9)"
    if res.solve.status.has_solution and res.objective_s < winner.step_time_s * (1 - 1e-12):
        winner = Candidate(res.objective_s, res.objective_s, replace(c, stage_layers=res.stage_layers), winner.order)
    return winner, block


def plan(request: TrainRequest, solver: SolverOptions, progress=None) -> Plan:
    """The plan for one request."""
    started = time.perf_counter()
    keep = 1 + request.options.alternatives
    robust = request.options.objective == "robust"
    result = search(request, keep=max(keep, ROBUST_POOL) if robust else keep, solver=solver, progress=progress)
    if not result.ranked:
        raise InfeasibleError(infeasible_message(request, result.stats))
    robust_note = {}
    if robust:  # re-rank the pool by 90th-percentile step time (planner/confidence/robust.py)
        ranked, robust_note = robust_rank(request.model, request.cluster, request.workload, result.ranked,
                                          request.options.zero_stages)
        result.ranked = ranked[:keep]
    winner, solver_block = _final_split(request, result.ranked[0], solver)
    model, cluster, workload = request.model, request.cluster, request.workload
    est = estimate_training(model, cluster, workload, winner.config)
    m = winner.config.microbatches(workload)
    alternatives = []
    for cand in result.ranked[1:]:
        alt = estimate_training(model, cluster, workload, cand.config)
        alt_decision = decision_of(cand.config, cand.config.microbatches(workload), workload.framework)
        alternatives.append({"decision": alt_decision,
                             **{k: getattr(alt, k) for k in PREDICTED_KEYS}, "why_lost": why_lost(est, alt),
                             **train_versus(model, cluster, workload, winner.config, est.step_time_s, cand.config,
                                            alt.step_time_s),
                             **(robust_alternative(model, cluster, workload, winner.config, est.step_time_s,
                                                   cand.config, alt.step_time_s) if robust else {})})
    baselines = {"megatron_rule": _baseline(request, est)}
    solver_block.update(search=result.stats.to_json(), optimality=OPTIMALITY)
    if robust:
        solver_block["robust"] = robust_note
    if result.stats.timed_out:  # the outer search did not close: report its bound, not the split's
        bound = min(result.stats.bound_s, est.step_time_s)
        solver_block.update(status="feasible", objective=est.step_time_s, bound=bound,
                            gap=(est.step_time_s - bound) / est.step_time_s)
    predicted = predicted_of(est)
    predicted.update(train_confidence(model, cluster, workload, winner.config, step_time_s=est.step_time_s,
                                      tokens_per_s_per_gpu=est.tokens_per_s_per_gpu))
    decision = decision_of(winner.config, m, workload.framework)
    doc = make_plan("train", inputs=request.inputs_json(), decision=decision, predicted=predicted,
                    alternatives=alternatives, baselines=baselines, solver=solver_block)
    if progress:
        progress(f"train: planned in {time.perf_counter() - started:.2f} s ({result.stats.evaluated} strategies "
                 f"costed of {result.stats.enumerated})")
    return doc


def _baseline(request: TrainRequest, planned) -> dict:
    if request.cluster.is_heterogeneous:
        return {"feasible": False, "reason": "the rule assumes one GPU type; not applied to several pools"}
    config, why = megatron_rule_config(request)
    if config is None:
        return {"feasible": False, "reason": why}
    est = estimate_training(request.model, request.cluster, request.workload, config)
    wl = request.workload
    return {"feasible": True, "decision": decision_of(config, config.microbatches(wl), wl.framework),
            **{k: getattr(est, k) for k in PREDICTED_KEYS},
            "plan_speedup": est.step_time_s / planned.step_time_s}


def plan_training(model: ModelSpec, cluster: ClusterSpec, workload: TrainingWorkload, *,
                  options: TrainOptions | None = None, time_limit_s: float = 60.0, progress=None) -> Plan:
    """The fastest hybrid-parallel strategy that fits (kind "train"). `progress` receives status lines."""
    request = TrainRequest(model=model, cluster=cluster, workload=workload, options=options or TrainOptions())
    return plan(request, SolverOptions(time_limit_s=time_limit_s, threads=1, seed=0), progress)
