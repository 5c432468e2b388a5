"""Independent verifier and readable summary of an experts plan.

check(plan) re-reads the statistics from the plan's inputs (inline, or the file at `path` whose digest
must match) and verifies, without the planner's code: per layer G GPUs with <= S slots each, ids in
range, no expert twice on one GPU, every expert placed, shares >= 0 only on GPUs that hold the expert and
summing to 1 per expert, node_limit and max_moves; then recomputes every predicted metric from the
statistics and compares (relative tolerance 1e-6), and checks bound <= objective, per layer and in total.
"""

from pathlib import Path

import numpy as np

from costmodels.errors import SpecError
from costmodels.expert_time import TOKEN_COST, expert_cost
from costmodels.hardware import DeviceCalibration, DeviceSpec
from costmodels.model import MLASpec, ModelSpec, MoESpec
from costmodels.routing import RoutingStats, load_stats
from planner.plan import Plan

TOL = 1e-6


def _model(d: dict) -> ModelSpec:
    d = dict(d)
    d["moe"] = MoESpec(**d["moe"]) if d.get("moe") else None
    d["mla"] = MLASpec(**d["mla"]) if d.get("mla") else None
    return ModelSpec(**d)


def _device(d: dict) -> DeviceSpec:
    d = dict(d)
    d["calibration"] = DeviceCalibration(**d["calibration"])
    return DeviceSpec(**d)


def plan_stats(plan: Plan) -> RoutingStats:
    """The statistics a plan was made from (inline, or re-read from its path with the digest checked)."""
    ref = plan["inputs"]["stats"]
    if "inline" in ref:
        doc = ref["inline"]
        return RoutingStats(expert_load=doc["expert_load"], transitions=doc.get("transitions"),
                            window_load=doc.get("window_load"))
    if not ref.get("path") or not Path(ref["path"]).is_file():
        raise SpecError(f"statistics file {ref.get('path')!r} is not available to re-check the plan",
                        field="inputs.stats.path")
    stats = load_stats(ref["path"])
    if stats.digest() != ref["digest"]:
        raise SpecError("statistics file changed since the plan was made (digest mismatch)",
                        field="inputs.stats.digest")
    return stats


def _close(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= TOL * max(1.0, abs(a), abs(b))


def _placement(plan: Plan, experts: int, problems: list) -> tuple[np.ndarray, np.ndarray]:
    inp = plan["inputs"]
    gpus, width = inp["num_gpus"], inp["slots_per_gpu"]
    layers = plan["decision"]["layers"]
    held = np.zeros((len(layers), experts, gpus), dtype=bool)
    share = np.zeros((len(layers), experts, gpus))
    for l, layer in enumerate(layers):
        if len(layer["gpu_experts"]) != gpus:
            problems.append(f"layer {l}: {len(layer['gpu_experts'])} GPUs listed, expected {gpus}")
            continue
        for g, ids in enumerate(layer["gpu_experts"]):
            if len(ids) > width:
                problems.append(f"layer {l} GPU {g}: {len(ids)} experts in {width} slots")
            if len(set(ids)) != len(ids):
                problems.append(f"layer {l} GPU {g}: an expert appears twice")
            for e in ids:
                if not (isinstance(e, int) and 0 <= e < experts):
                    problems.append(f"layer {l} GPU {g}: unknown expert id {e!r}")
                else:
                    held[l, e, g] = True
        missing = np.flatnonzero(~held[l].any(axis=1))
        if missing.size:
            problems.append(f"layer {l}: experts {missing[:8].tolist()} are not placed")
        for e, g, f in layer["token_share"]:
            if not (0 <= e < experts and 0 <= g < gpus) or not held[l, e, g]:
                problems.append(f"layer {l}: share of expert {e} on GPU {g}, which does not hold it")
            elif f < -TOL:
                problems.append(f"layer {l}: negative share {f} of expert {e} on GPU {g}")
            else:
                share[l, e, g] += f
        bad = np.flatnonzero(np.abs(share[l].sum(axis=1) - 1.0) > TOL)
        if bad.size:
            problems.append(f"layer {l}: shares of experts {bad[:8].tolist()} do not sum to 1")
    return held, share


def _constraints(plan: Plan, held: np.ndarray, node_of: np.ndarray, problems: list) -> None:
    inp = plan["inputs"]
    if inp.get("node_limit"):
        for l in range(held.shape[0]):
            for e in range(held.shape[1]):
                span = len(set(node_of[held[l, e]].tolist()))
                if span > inp["node_limit"]:
                    problems.append(f"layer {l}: expert {e} spans {span} nodes > node_limit {inp['node_limit']}")
    if inp.get("previous_gpu_experts") is not None:
        prev = inp["previous_gpu_experts"]
        total = sum(1 for l, layer in enumerate(plan["decision"]["layers"])
                    for g, ids in enumerate(layer["gpu_experts"])
                    for e in ids if e not in prev[l][g])
        if inp.get("max_moves") is not None and total > inp["max_moves"]:
            problems.append(f"{total} replica moves exceed max_moves {inp['max_moves']}")
        if "moves" in plan["predicted"] and plan["predicted"]["moves"] != total:
            problems.append(f"predicted.moves {plan['predicted']['moves']} != recomputed {total}")


def check(plan: Plan) -> list[str]:
    """Problems found in an experts plan (empty list = valid)."""
    problems: list[str] = []
    try:
        stats = plan_stats(plan)
    except SpecError as exc:
        return [str(exc)]
    inp = plan["inputs"]
    gpus, per_node = inp["num_gpus"], min(inp["gpus_per_node"], inp["num_gpus"])
    node_of = np.arange(gpus) // per_node
    if len(plan["decision"]["layers"]) != stats.layers:
        return [f"{len(plan['decision']['layers'])} layers in the decision, {stats.layers} in the statistics"]
    held, share = _placement(plan, stats.experts, problems)
    if problems:
        return problems
    _constraints(plan, held, node_of, problems)
    speed = np.ones(gpus) if inp.get("gpu_speed") is None else np.asarray(inp["gpu_speed"], dtype=float)
    cost = TOKEN_COST
    if inp.get("model"):
        cost = expert_cost(_model(inp["model"]), _device(inp["device"]), num_gpus=gpus,
                           gpus_per_node=inp["gpus_per_node"])
    objective = 0.0
    tokens_max = []
    layer_info = plan["solver"].get("layers") or [{}] * stats.layers
    for l in range(stats.layers):
        gpu_pairs = [sum(stats.expert_load[l, e] * share[l, e, g] for e in range(stats.experts) if share[l, e, g] > 0)
                     for g in range(gpus)]
        tokens_max.append(max(gpu_pairs))
        layer_time = max(cost.time_s(n, speed[g]) for g, n in enumerate(gpu_pairs))
        objective += layer_time
        if layer_info[l].get("bound") is not None and layer_info[l]["bound"] > layer_time * (1 + TOL):
            problems.append(f"layer {l}: bound {layer_info[l]['bound']} exceeds the recomputed time {layer_time}")
        if not _close(tokens_max[-1], plan["predicted"]["layer_max_gpu_tokens"][l]):
            problems.append(f"layer {l}: busiest GPU has {tokens_max[-1]} tokens, plan says "
                            f"{plan['predicted']['layer_max_gpu_tokens'][l]}")
    cross = None
    if stats.transitions is not None:
        cross = 0.0
        for l in range(stats.layers - 1):
            for n in range(int(node_of.max()) + 1):
                left = share[l][:, node_of == n].sum(axis=1)
                right = share[l + 1][:, node_of == n].sum(axis=1)
                cross -= float(left @ stats.transitions[l] @ right)
            cross += float(stats.transitions[l].sum())
    pred = plan["predicted"]
    if not _close(cross, pred.get("cross_node_tokens")):
        problems.append(f"cross_node_tokens recomputed {cross}, plan says {pred.get('cross_node_tokens')}")
    objective += inp["traffic_weight"] * (cross or 0.0)
    if not _close(objective, pred["objective"]):
        problems.append(f"objective recomputed {objective}, plan says {pred['objective']}")
    if inp.get("model") and not _close(objective - inp["traffic_weight"] * (cross or 0.0), pred.get("moe_time_s")):
        problems.append(f"moe_time_s does not match the recomputed {objective}")
    solver = plan["solver"]
    if solver.get("bound") is not None and solver["bound"] > pred["objective"] * (1 + TOL):
        problems.append(f"bound {solver['bound']} exceeds the objective {pred['objective']}")
    return problems


def explain(plan: Plan) -> str:
    """A readable summary: setup, objective/bound/gap, and the plan against every baseline."""
    inp, pred, solver = plan["inputs"], plan["predicted"], plan["solver"]
    layers = plan["decision"]["layers"]
    lines = [f"experts plan: {len(layers)} MoE layers on {inp['num_gpus']} GPUs "
             f"({inp['gpus_per_node']} per node), {inp['slots_per_gpu']} slots per GPU",
             f"solver: {solver.get('method')} status {solver.get('status')}, objective {solver.get('objective'):.6g}, "
             f"bound {solver.get('bound'):.6g}, gap {100 * (solver.get('gap') or 0):.2f}%"]
    if solver.get("layers"):
        methods = sorted({layer["method"] for layer in solver["layers"]})
        worst = max((layer["gap"] or 0.0) for layer in solver["layers"])
        lines.append(f"layers: method {', '.join(methods)}; largest layer gap {100 * worst:.2f}%")
    if pred.get("affinity_found") is False:
        lines.append("affinity: no node structure found in the transitions (cross-node traffic about that of a "
                     "random placement); the load-optimal layers are kept")
    lines.append("")
    rows = [("planned", pred)] + sorted(plan["baselines"].items())
    lines.append(f"{'placement':<18}{'busiest-GPU tokens':>20}{'max/mean':>10}{'cross-node tokens':>19}"
                 + (f"{'MoE time (ms)':>15}" if "moe_time_s" in pred else ""))
    for name, m in rows:
        cross = "-" if m.get("cross_node_tokens") is None else f"{m['cross_node_tokens']:.4g}"
        line = f"{name:<18}{m['busiest_gpu_tokens_total']:>20.6g}{m['max_load_ratio']:>10.4f}{cross:>19}"
        if "moe_time_s" in m:
            line += f"{1e3 * m['moe_time_s']:>15.4f}"
        lines.append(line)
    first = layers[0]["gpu_experts"]
    lines += ["", "layer 0, experts per GPU: " + "  ".join(f"g{g}:{ids}" for g, ids in enumerate(first[:8]))
              + (" ..." if len(first) > 8 else "")]
    return "\n".join(lines)
