"""Independent verifier and readable summary of scatter plans.

`check` rebuilds the specs from the plan's own inputs and recomputes everything with the cost model
(costmodels.sequence), not with the planner's tables: every sequence is assigned exactly once, ranks are
disjoint and within the cluster, each group's degree is allowed for the SP style and its GPU count matches,
each micro-batch fits the memory left per GPU, group and step times match, and the bound is not above
the step time.
"""

import numpy as np

from costmodels import sequence as seqcost
from costmodels.errors import SpecError
from costmodels.hardware import ClusterSpec, DeviceCalibration, DeviceSpec, NodePool
from costmodels.model import MLASpec, ModelSpec, MoESpec
from planner.plan import Plan

REL_TOL = 1e-6


def request_specs(plan: Plan) -> tuple[dict, ModelSpec, ClusterSpec]:
    """(request dict, model, cluster) rebuilt from plan.inputs.request."""
    try:
        req = plan["inputs"]["request"]
        m = dict(req["model"])
        m["mla"] = MLASpec(**m["mla"]) if m.get("mla") else None
        m["moe"] = MoESpec(**m["moe"]) if m.get("moe") else None
        model = ModelSpec(**m)
        pools = []
        for p in req["cluster"]["pools"]:
            dev = dict(p["device"])
            dev["calibration"] = DeviceCalibration(**dev["calibration"])
            pools.append(NodePool(**{**p, "device": DeviceSpec(**dev)}))
        cluster = ClusterSpec(**{**req["cluster"], "pools": tuple(pools)})
    except (KeyError, TypeError) as exc:
        raise SpecError(f"scatter plan inputs are incomplete: {exc}", field="inputs.request") from None
    return req, model, cluster


def check(plan: Plan) -> list[str]:
    """Problems found (empty = the plan is valid)."""
    req, model, cluster = request_specs(plan)
    pool = cluster.primary
    dev, tp, style = pool.device, req["tp"], req["sp_style"]
    lengths = req["lengths"]
    n_gpus, per_node = cluster.num_devices, pool.devices_per_node
    problems = []
    groups = plan["decision"]["groups"]
    seen: dict[int, int] = {}
    used: set[int] = set()
    left = dev.usable_bytes - seqcost.static_bytes_per_gpu(
        model, tp=tp, zero=plan["decision"]["zero"], dp=n_gpus // tp)
    step = 0.0
    for g, group in enumerate(groups):
        d, ranks, seqs = group["degree"], group["ranks"], group["sequences"]
        if not seqcost.degree_valid(model, style, d, tp):
            problems.append(f"group {g}: degree {d} is not valid for {style} at tp={tp}")
        if req["degrees"] == "pow2" and d & (d - 1):
            problems.append(f"group {g}: degree {d} is not a power of two")
        if len(ranks) != d * tp or group["gpus"] != d * tp:
            problems.append(f"group {g}: {len(ranks)} ranks for degree {d} x tp {tp}")
        bad = [r for r in ranks if not 0 <= r < n_gpus or r in used]
        if bad:
            problems.append(f"group {g}: ranks {bad[:4]} are outside 0..{n_gpus - 1} or reused")
        used.update(ranks)
        for i in seqs:
            if not 0 <= i < len(lengths):
                problems.append(f"group {g}: sequence index {i} out of range")
            elif i in seen:
                problems.append(f"sequence {i} is assigned to groups {seen[i]} and {g}")
            seen[i] = g
        seqs = [i for i in seqs if 0 <= i < len(lengths)]
        spans = len({r // per_node for r in ranks}) > 1
        s = np.asarray([lengths[i] for i in seqs], dtype=float)
        times = seqcost.sequence_times_s(model, dev, s, degree=d, style=style, tp=tp, inter_node=spans,
                                         gpus_per_node=per_node, intra_bytes_per_s=pool.intra_node_bytes_per_s,
                                         inter_bytes_per_s=pool.inter_node_bytes_per_s) if len(s) else s
        load = float(np.sum(times))
        if abs(load - group["time_s"]) > REL_TOL * max(load, 1e-9):
            problems.append(f"group {g}: time {group['time_s']} s, recomputed {load} s")
        step = max(step, load)
        mem = seqcost.activation_bytes_per_gpu(model, s, degree=d, tp=tp)
        mbs = group.get("micro_batch", [0] * len(seqs))
        if len(mbs) != len(seqs):
            problems.append(f"group {g}: micro_batch has {len(mbs)} entries for {len(seqs)} sequences")
            continue
        for b in sorted(set(mbs)):
            need = float(sum(m for m, bb in zip(mem, mbs, strict=True) if bb == b))
            if need > left * (1 + REL_TOL):
                problems.append(f"group {g} micro-batch {b}: {need / 2**30:.2f} GiB of activations per GPU, "
                                f"{left / 2**30:.2f} GiB left")
    missing = [i for i in range(len(lengths)) if i not in seen]
    if missing:
        problems.append(f"sequences {missing[:8]} are not assigned")
    predicted = plan["predicted"].get("step_time_s")
    if not isinstance(predicted, (int, float)) or isinstance(predicted, bool):
        problems.append(f"predicted.step_time_s: {predicted!r} is not a number (recomputed {step} s)")
        return problems
    if abs(step - predicted) > REL_TOL * max(step, 1e-9):
        problems.append(f"predicted.step_time_s: {predicted} s, recomputed {step} s")
    bound = plan["solver"].get("bound")
    if isinstance(bound, (int, float)) and bound > predicted * (1 + REL_TOL):
        problems.append(f"bound {bound} s is above the step time {predicted} s")
    return problems


def explain(plan: Plan) -> str:
    """A readable table of the groups."""
    dec, pred, sol = plan["decision"], plan["predicted"], plan["solver"]
    req = plan["inputs"]["request"]
    lines = [f"scatter plan: {len(req['lengths'])} sequences on {sum(g['gpus'] for g in dec['groups'])} GPUs, "
             f"{dec['sp_style']}, tp={dec['tp']}, zero={dec['zero']}",
             f"step time {pred['step_time_s'] * 1e3:.1f} ms, bound {_ms(sol.get('bound'))} ms, gap "
             f"{_pct(sol.get('gap'))} ({sol.get('status')}, {sol.get('backend')})"]
    static = plan["baselines"].get("static_best")
    if static:
        lines.append(f"static best: degree {static.get('degree', '?')}, {_ms(static.get('step_time_s'))} ms "
                     f"(speedup {static.get('speedup', 0):.2f}x)")
    milp = plan["baselines"].get("milp")
    if milp:
        lines.append(f"FlexSP-style MILP: {_ms(milp.get('step_time_s'))} ms, its bound {_ms(milp.get('bound_s'))} ms")
    lines.append(f"{'group':>5} {'degree':>6} {'ranks':>11} {'seqs':>5} {'tokens':>8} {'longest':>8} {'time ms':>9} mb")
    for g, group in enumerate(dec["groups"]):
        toks = [req["lengths"][i] for i in group["sequences"]]
        r = group["ranks"]
        span = f"{r[0]}-{r[-1]}" if r == list(range(r[0], r[-1] + 1)) else f"{r[0]}.."
        mb = max(group.get("micro_batch", [0])) + 1 if group["sequences"] else 0
        lines.append(f"{g:>5} {group['degree']:>6} {span:>11} {len(toks):>5} {sum(toks):>8} {max(toks, default=0):>8} "
                     f"{group['time_s'] * 1e3:>9.1f} {mb}")
    return "\n".join(lines)


def _ms(v) -> str:
    return "?" if v is None else f"{v * 1e3:.1f}"


def _pct(v) -> str:
    return "?" if v is None else f"{v * 100:.2f}%"
