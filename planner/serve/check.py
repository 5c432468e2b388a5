"""Independent verification and readable summaries of serve plans and serve estimates."""

import math
from typing import Any

from costmodels.errors import SpecError
from costmodels.serving import InstanceShape, check_shape
from planner.confidence import alternative_note, confidence_lines
from planner.confidence.documents import check_confidence
from planner.plan import Plan
from planner.serve.capacity import CapacityModel
from planner.serve.estimate import Workload, estimate_numbers
from planner.serve.front import front_lines
from planner.serve.io import cluster_from_dict, device_from_dict, model_from_dict, options_from_dict, workload_from_dict
from planner.serve.moe_skew import skew_line

REL_TOL = 1e-6


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=1e-12)


def _check_estimate(plan: Plan) -> list[str]:
    inp = plan["inputs"]
    model, device = model_from_dict(inp["model"]), device_from_dict(inp["device"])
    shape = InstanceShape(**inp["shape"])
    got = estimate_numbers(model, device, shape, batch=inp["batch"], isl=inp["isl"], osl=inp["osl"],
                           engine=inp["engine"], dtype=inp["dtype"], devices_per_node=inp["devices_per_node"],
                           kv_dtype=inp.get("kv_dtype", ""), skew=inp.get("moe_skew", 1.0),
                           quant_block=inp.get("quant_block", 0),
                           work=Workload(isl=inp["isl"], osl=inp["osl"], prefix_len=inp.get("prefix_len", 0),
                                         spec_depth=inp.get("spec_depth", 0), spec_accept=inp.get("spec_accept", 1.0),
                                         offline=inp.get("offline", False),
                                         prefill_token_budget=inp.get("prefill_token_budget", 0)))
    problems = []
    keys = ["prefill_s", "decode_step_s", "weights_bytes_per_gpu", "kv_capacity_tokens"]
    keys += ["offline_output_tokens_per_s_per_gpu"] if inp.get("offline") else []
    for key in keys:
        if not _close(got[key], plan["predicted"][key]):
            problems.append(f"predicted.{key} is {plan['predicted'][key]}, recomputed {got[key]}")
    fits = got["kv_capacity_tokens"] >= inp["batch"] * (inp["isl"] + inp["osl"])
    if bool(plan.get("feasible")) != fits:
        problems.append(f"feasible is {plan.get('feasible')}, but weights + KV {'fit' if fits else 'do not fit'}")
    return problems


def _pack(sizes: list[int], per_node: int, nodes: int) -> bool:
    """First-fit decreasing of instance sizes into nodes (multi-node instances take whole nodes)."""
    free = [per_node] * nodes
    for size in sorted(sizes, reverse=True):
        if size > per_node:
            whole = size // per_node
            empty = [i for i, f in enumerate(free) if f == per_node]
            if size % per_node or len(empty) < whole:
                return False
            for i in empty[:whole]:
                free[i] = 0
            continue
        for i, f in enumerate(free):
            if f >= size:
                free[i] -= size
                break
        else:
            return False
    return True


def _check_offline(plan: Plan, model, cluster, workload, options) -> list[str]:
    """An offline (objective throughput) plan: its shape's throughput recomputed, and no shape does better."""
    from planner.serve.offline import _best_shape

    rows = _best_shape(CapacityModel(model, cluster, workload, options), workload, options)
    (g,) = plan["decision"]["groups"]
    got = plan["predicted"]["offline_output_tokens_per_s_per_gpu"]
    mine = [r for r in rows if (r[1].name, r[2].tp, r[2].pp, r[2].ep, r[2].dp) == (g["pool"], g["tp"], g["pp"], g["ep"],
                                                                                  g["dp"])]
    problems = []
    if not mine:
        problems.append(f"offline shape tp{g['tp']}pp{g['pp']} on {g['pool']} does not hold one request")
    elif not _close(mine[0][0], got):
        problems.append(f"offline_output_tokens_per_s_per_gpu is {got}, recomputed {mine[0][0]}")
    elif g.get("prefill_token_budget", mine[0][3]["offline_token_budget"]) != mine[0][3]["offline_token_budget"]:
        problems.append(f"prefill_token_budget is {g['prefill_token_budget']}, the engine and options give "
                        f"{mine[0][3]['offline_token_budget']}")
    if rows and rows[0][0] > got * (1 + REL_TOL):
        problems.append(f"shape tp{rows[0][2].tp}pp{rows[0][2].pp} reaches {rows[0][0]:.1f} output tok/s/GPU, "
                        f"more than the plan's {got:.1f}")
    if g["instances"] * g["gpus"] > cluster.pool(g["pool"]).num_devices:
        problems.append(f"pool {g['pool']}: plan uses {g['instances'] * g['gpus']} GPUs, inventory is "
                        f"{cluster.pool(g['pool']).num_devices}")
    return problems


def _check_group(cm: CapacityModel, g: dict) -> tuple[list[str], Any]:
    """Problems of one decision group recomputed from the inputs, and its recomputed figures (None when the shape
    cannot be split or does not fit)."""
    cluster, model, workload = cm.cluster, cm.model, cm.workload
    pool = cluster.pool(g["pool"])
    shape = InstanceShape(tp=g["tp"], pp=g["pp"], ep=g["ep"], dp=g["dp"])
    try:  # an edited decision: a shape the model cannot be split into has no figures to compare
        check_shape(model, shape)
    except SpecError as exc:
        return [f"{g['role']} group on {g['pool']}: {exc}"], None
    if g["role"] == "prefill":
        fresh = cm.prefill(pool, cluster.pool(g["dest_pool"]), shape)
    else:
        fresh = getattr(cm, g["role"])(pool, shape)
    if fresh is None:
        return [f"{g['role']} tp{g['tp']}pp{g['pp']} on {g['pool']} does not fit in memory"], None
    problems = []
    for key in ("capacity_rps", "max_batch", "tpot_s", "ttft_floor_s", "chunk_tokens"):
        if not _close(float(getattr(fresh, key)), float(g[key])):
            problems.append(f"{g['role']} group on {g['pool']}: {key} is {g[key]}, recomputed {getattr(fresh, key)}")
    if g.get("prefill_token_budget", fresh.prefill_token_budget) != fresh.prefill_token_budget:
        problems.append(f"{g['role']} group on {g['pool']}: prefill_token_budget is {g['prefill_token_budget']}, "
                        f"the options and engine give {fresh.prefill_token_budget}")
    if g["role"] in ("decode", "colocated", "intra_gpu") and fresh.tpot_s > workload.tpot_s * (1 + REL_TOL):
        problems.append(f"{g['role']} step {fresh.tpot_s * 1e3:.2f} ms exceeds the TPOT SLO")
    return problems, fresh


def check(plan: Plan) -> list[str]:
    """Problems found by recomputing the plan from its inputs; an empty list means the plan is valid."""
    if plan.kind == "estimate":
        return _check_estimate(plan) + check_confidence(plan)
    inp = plan["inputs"]
    model, cluster = model_from_dict(inp["model"]), cluster_from_dict(inp["cluster"])
    workload, options = workload_from_dict(inp["workload"]), options_from_dict(inp["options"])
    if inp.get("objective") == "throughput":
        return _check_offline(plan, model, cluster, workload, options)
    cm = CapacityModel(model, cluster, workload, options)
    problems = []
    decision, predicted = plan["decision"], plan["predicted"]
    derate = predicted.get("capacity_derate", 1.0)
    by_pool = {}
    supply = {}
    for g in decision["groups"]:
        found, fresh = _check_group(cm, g)
        problems += found
        if fresh is None:
            continue
        by_pool.setdefault(g["pool"], []).extend([g["gpus"]] * g["instances"])
        phase = "prefill" if g["role"] == "prefill" else "decode" if g["role"] == "decode" else "whole"
        supply[phase] = supply.get(phase, 0.0) + fresh.group_rps(g["instances"])
    for name, sizes in sorted(by_pool.items()):
        pool = cluster.pool(name)
        if sum(sizes) > pool.num_devices:
            problems.append(f"pool {name}: plan uses {sum(sizes)} GPUs, inventory is {pool.num_devices}")
        elif not _pack(sizes, pool.devices_per_node, pool.nodes):
            problems.append(f"pool {name}: instances {sorted(sizes)} do not pack into {pool.nodes} nodes of "
                            f"{pool.devices_per_node}")
    rate = predicted["rate_rps"]
    for phase, cap in sorted(supply.items()):
        if cap * derate < rate * (1 - REL_TOL):
            problems.append(f"{phase} capacity {cap * derate:.4f} req/s (derate {derate}) is below the rate {rate:.4f}")
    # a rate raised past the analytic capacity on simulator evidence (derate > 1) has no analytic TTFT guarantee
    if predicted["ttft_s"] > workload.ttft_s * (1 + REL_TOL) and derate <= 1 + REL_TOL:
        problems.append(f"predicted TTFT {predicted['ttft_s']:.4f} s exceeds the SLO {workload.ttft_s} s")
    if predicted["tpot_s"] > workload.tpot_s * (1 + REL_TOL):
        problems.append(f"predicted TPOT {predicted['tpot_s']:.4f} s exceeds the SLO {workload.tpot_s} s")
    gpus = sum(sum(s) for s in by_pool.values())
    if gpus != predicted["gpus"]:
        problems.append(f"predicted.gpus is {predicted['gpus']}, the groups use {gpus}")
    sim = plan.get("simulated") or {}
    if "attainment" not in sim:
        problems.append("simulated.attainment is missing")
    elif sim["attainment"] < workload.attainment:
        problems.append(f"simulated attainment {sim['attainment']:.3f} is below the target {workload.attainment}")
    elif "attainment_interval" in sim and sim["attainment_interval"][0] < workload.attainment:
        problems.append(f"simulated attainment's lower bound {sim['attainment_interval'][0]:.3f} is below the target "
                        f"{workload.attainment} (the rate was not accepted)")
    return problems + check_confidence(plan)


def _feature_lines(inp: dict, p: dict) -> list[str]:
    """Estimate lines for the cached prefix, speculative decoding and offline throughput (when asked for)."""
    lines = []
    if p.get("prefill_steps", 1) > 1:
        lines.append(f"  prefill steps      {p['prefill_steps']:10d} of <= {inp['prefill_token_budget']} tokens "
                     f"(prefill token budget)")
    if inp.get("prefix_len"):
        lines.append(f"  cached prefix      {inp['prefix_len']:10d} tokens "
                     f"(prefill computes {inp['isl'] - inp['prefix_len']})")
    if inp.get("spec_depth"):
        lines.append(f"  speculative        depth {inp['spec_depth']}, {inp['spec_accept']:g} tokens/step: "
                     f"TPOT {p['tpot_s'] * 1e3:.2f} ms")
    if inp.get("offline"):
        lines.append(f"  offline            batch {p['offline_batch']}, {p['offline_requests_per_s']:.2f} req/s, "
                     f"{p['offline_output_tokens_per_s_per_gpu']:.1f} output tok/s/GPU")
    return lines


def _workload_line(inp: dict, groups: list) -> str:
    """What a serve plan was made for: model, lengths, dtypes and the workload features that change its costs."""
    wl, o = inp["workload"], inp["options"]
    if wl.get("lengths"):
        lengths = f"{len(wl['lengths'])} (input, output) length pairs"
    elif wl.get("lognormal"):
        lengths = "lognormal lengths (log-mean/sd in {:g}/{:g}, out {:g}/{:g})".format(*wl["lognormal"])
    else:
        lengths = f"ISL {wl['input_len']} / OSL {wl['output_len']}"
    parts = [inp["model"]["name"], lengths, f"{o['dtype']} weights / {o.get('kv_dtype') or o['dtype']} KV"]
    if wl.get("prefix_len"):
        parts.append(f"cached prefix {wl['prefix_len']} tokens")
    if o.get("spec_depth"):
        parts.append(f"speculative depth {o['spec_depth']} at {o['spec_accept']:g} tokens/step")
    if o.get("quant_block"):
        parts.append(f"FP8 block {o['quant_block']}")
    if o.get("moe_skew", 1.0) != 1.0:
        parts.append(f"MoE skew {o['moe_skew']:g}")
    if o.get("moe_skew_by_ep"):
        used = tuple(sorted({g["ep"] for g in groups}))
        parts.append(skew_line(tuple(map(tuple, o["moe_skew_by_ep"])), o.get("moe_stats_digest", ""), used))
    if wl.get("rate_per_s"):
        parts.append(f"target rate {wl['rate_per_s']:g} req/s")
    return "  workload   " + ", ".join(parts)


def _explain_estimate(plan: Plan) -> str:
    """A readable summary of a serve estimate."""
    p, inp = plan["predicted"], plan["inputs"]
    ep = inp["shape"]["ep"]
    return "\n".join([
        f"serve estimate: {inp['model']['name']} on {inp['device']['name']} tp={inp['shape']['tp']} "
        f"pp={inp['shape']['pp']} ep={inp['shape']['ep']} attention-dp={inp['shape']['dp']} (engine {inp['engine']})",
        f"  batch {inp['batch']} x ISL {inp['isl']} / OSL {inp['osl']}, {inp['dtype']} weights / "
        f"{inp.get('kv_dtype') or inp['dtype']} KV" + (f", MoE skew {inp['moe_skew']:g}" if inp.get("moe_skew", 1) != 1
                                                      else "") + (f", FP8 block {inp['quant_block']}"
                                                                  if inp.get("quant_block") else ""),
        *([f"  {skew_line(tuple(map(tuple, inp['moe_stats']['skew_by_ep'])), inp['moe_stats']['digest'], (ep,))}"]
          if inp.get("moe_stats") else []),
        f"  prefill            {p['prefill_s'] * 1e3:10.2f} ms",
        f"  decode step (mean) {p['decode_step_s'] * 1e3:10.2f} ms  ({p['decode_tokens_per_s']:.1f} tok/s)",
        f"  weights per GPU    {p['weights_bytes_per_gpu'] / 2**30:10.2f} GiB; "
        f"KV room {p['kv_capacity_tokens']:.0f} tokens",
        *_feature_lines(inp, p),
        *confidence_lines(p, width=19),
        f"  feasible: {plan.get('feasible')}" + "".join(f"\n    {r}" for r in plan.get("infeasible_reasons", []))])


def _rate(x: float, digits: int = 3) -> str:
    """A rate with `digits` decimals, or 3 significant digits when that would print 0 (a target of 1e-5 req/s)."""
    return f"{x:.{digits}f}" if x == 0 or abs(x) >= 10 ** -digits else f"{x:.3g}"


def _offline_budget_text(budget: int | None) -> str:
    if not budget:
        return "token budget per step not recorded"
    return "one prompt per prefill step" if budget == 1 else f"up to {budget} tokens per step"


def explain(plan: Plan) -> str:
    """A readable summary of a serve plan or serve estimate."""
    if plan.kind == "estimate":
        return _explain_estimate(plan)
    p = plan["predicted"]
    wl = plan["inputs"]["workload"]
    d = plan["decision"]
    if plan["inputs"].get("objective") == "throughput":
        g = d["groups"][0]
        return "\n".join(
            [f"serve plan: offline batch inference ({plan['inputs']['options']['engine']} engine), "
             "objective throughput", _workload_line(plan["inputs"], d["groups"]),
             f"  {g['instances']} x tp{g['tp']} pp{g['pp']} ep{g['ep']} dp{g['dp']} on {g['pool']} ({p['gpus']} GPUs), "
             f"in-flight batch {p['offline_batch']}, " + _offline_budget_text(g.get("prefill_token_budget")),
             f"  {p['offline_output_tokens_per_s_per_gpu']:.1f} output tok/s/GPU, {p['rate_rps']:.2f} req/s in all"]
            + [f"  alternative {a['rank']}: tp{a['groups'][0]['tp']} pp{a['groups'][0]['pp']}: "
               f"{a['offline_output_tokens_per_s_per_gpu']:.1f} output tok/s/GPU" for a in plan["alternatives"]])
    lines = [f"serve plan: mode {d['mode']} ({plan['inputs']['options']['engine']} engine), objective "
             f"{plan['inputs']['objective']}", _workload_line(plan["inputs"], d["groups"]),
             f"  SLO: TTFT {wl['ttft_s'] * 1e3:.0f} ms, TPOT {wl['tpot_s'] * 1e3:.1f} ms at p{wl['percentile']:g}, "
             f"attainment {wl['attainment']}",
             f"  {'role':10} {'pool':10} {'tp':>3} {'pp':>3} {'ep':>3} {'dp':>3} {'inst':>5} {'GPUs':>5} {'req/s':>8} "
             f"{'batch':>6} {'chunk':>6} {'share':>6}"]
    for g in d["groups"]:
        lines.append(f"  {g['role']:10} {g['pool']:10} {g['tp']:3d} {g['pp']:3d} {g['ep']:3d} {g['dp']:3d} "
                     f"{g['instances']:5d} {g['gpus'] * g['instances']:5d} {g['capacity_rps'] * g['instances']:8.3f} "
                     f"{g['max_batch']:6d} {g['chunk_tokens']:6d} {g['prefill_share']:6.3f}")
    budgets = sorted({g["prefill_token_budget"] for g in d["groups"] if g.get("prefill_token_budget", 1) > 1})
    if budgets:
        lines.append(f"  prefill steps batch queued prompts up to {'/'.join(map(str, budgets))} tokens")
    sim = plan.get("simulated", {})
    pct = f"p{wl['percentile']:g}"
    lines += [f"  rate {_rate(p['rate_rps'])} req/s on {p['gpus']} GPUs: goodput "
              f"{_rate(p['goodput_tokens_per_s_per_gpu'], 1)} "
              f"output tok/s/GPU; predicted TTFT {p['ttft_s'] * 1e3:.0f} ms, TPOT {p['tpot_s'] * 1e3:.2f} ms ({pct})",
              f"  simulated ({sim.get('requests')} requests, seed {sim.get('seed')}): "
              f"attainment {sim.get('attainment', 0):.3f}, "
              f"TTFT {pct} {sim.get('ttft_s', {}).get(pct, 0) * 1e3:.0f} ms, TPOT {pct} "
              f"{sim.get('tpot_s', {}).get(pct, 0) * 1e3:.2f} ms"]
    lines += confidence_lines(p)
    for alt in plan.get("alternatives") or []:
        if "rank" in alt:
            shapes = " + ".join(f"{g['instances']}x {g['role']} tp{g['tp']}pp{g['pp']}" for g in alt["groups"])
            lines.append(f"  top {alt['rank']} ({alt['mode']}): {shapes}: {alt['gpus']} GPUs, {alt['rate_rps']:.3f} "
                         f"req/s, {alt['goodput_tokens_per_s_per_gpu']:.1f} tok/s/GPU (model)")
        else:
            lines.append(f"  alt {alt['mode']}: {alt.get('why', '')}{alternative_note(alt)}")
    lines += front_lines(p, wl["percentile"])
    for name, b in sorted(plan["baselines"].items()):
        if b.get("feasible") is False:
            lines.append(f"  baseline {name}: no SLO-feasible configuration")
        elif b.get("verified") is False:
            lines.append(f"  baseline {name}: {b.get('why', 'not simulated')}")
        else:
            lines.append(f"  baseline {name}: {b['gpus']} GPUs, {b['rate_rps']:.3f} req/s, "
                         f"{b['goodput_tokens_per_s_per_gpu']:.1f} tok/s/GPU")
    s = plan["solver"]
    lines.append(f"  solver {s.get('backend')} {s.get('status')}, objective {s.get('objective')}, gap {s.get('gap')}")
    return "\n".join(lines)
