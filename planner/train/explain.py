"""A readable summary of a `kind: train` plan (estimate documents delegate to planner.train.estimate)."""

from costmodels.framework import framework
from planner.confidence import alternative_note, confidence_lines
from planner.plan import Plan

GiB = float(2**30)


def _strategy(d: dict) -> str:
    text = f"tp={d['tp']} pp={d['pp']} dp={d['dp']} cp={d['cp']}"
    if d["ep"] > 1 or d["etp"] > 1:
        text += f" ep={d['ep']} etp={d['etp']} edp={d['edp']}"
    sp = " sp" if d["sequence_parallel"] else ""
    return text + f" vpp={d['vpp']} mbs={d['mbs']} zero={d['zero']} recompute={d['recompute']}{sp}"


def recompute_line(mode: str, framework_name: str) -> list[str]:
    """What the plan's recompute mode runs again in the backward pass (none: no line)."""
    what = {"full": "every layer runs its whole forward again (each keeps only its input)",
            "selective-layer": "every 2nd layer runs its whole forward again (it keeps only its input; the others "
                               "keep all their activations)",
            "selective": ("every 2nd matmul and the element-wise ops run again (op-level SAC)"
                          if framework(framework_name).selective_recomputes_ops
                          else "the attention core runs again")}.get(mode)
    return [f"  recompute  {mode}: in the backward pass {what}"] if what else []


def explain(plan: Plan) -> str:
    if plan.kind == "estimate":
        from planner.train.estimate import explain_estimate
        return explain_estimate(plan)
    d, p, inputs = plan["decision"], plan["predicted"], plan["inputs"]
    w, cluster = inputs["workload"], inputs["cluster"]
    lines = [f"training plan for {inputs['model']['name']} on {cluster['name']} "
             f"(gbs {w['global_batch']} x seq {w['seq_len']}, {w['dtype']}, {d.get('framework', 'megatron')})",
             f"  strategy   {_strategy(d)}",
             f"  stages     {d['stage_layers']} layers"
             + (f" on pools {d['stage_pools']}" if d.get("stage_pools") else "")
             + f", {d['microbatches']} micro-batches per step",
             *recompute_line(d["recompute"], d.get("framework", "megatron")),
             f"  step       {p['step_time_s']:.4g} s   {p['tokens_per_s_per_gpu']:.6g} tokens/s/GPU   "
             f"{p['model_tflops_per_gpu']:.4g} TFLOP/s/GPU   MFU {p['mfu'] * 100:.1f}%",
             f"  memory     {p['memory_per_gpu_bytes'] / GiB:.1f} GiB per GPU (peak stage)",
             *confidence_lines(p)]
    parts = (p.get("breakdown") or {}).get("time_s") or {}
    top = sorted(((v, k) for k, v in parts.items() if v > 0), reverse=True)[:6]
    if top:
        lines.append("  time       " + ", ".join(f"{k} {v:.3g} s" for v, k in top))
    s = plan["solver"]
    gap = "-" if s.get("gap") is None else f"{s['gap'] * 100:.3g}%"
    search = s.get("search", {})
    lines.append(f"  solver     split: {s.get('split', '')} [{s['backend']} {s['status']}, gap {gap}]; search: "
                 f"{search.get('enumerated', '?')} enumerated, {search.get('evaluated', '?')} costed")
    base = plan["baselines"].get("megatron_rule", {})
    if base.get("feasible"):
        lines.append(f"  baseline   megatron rule {_strategy(base['decision'])}: step {base['step_time_s']:.4g} s, "
                     f"MFU {base['mfu'] * 100:.1f}% (plan is {base['plan_speedup']:.3f}x faster)")
    elif base:
        lines.append(f"  baseline   megatron rule: {base.get('reason', 'infeasible')}")
    for i, alt in enumerate(plan["alternatives"], 1):
        lines.append(f"  alt {i}      {_strategy(alt['decision'])}: {alt['why_lost']}{alternative_note(alt)}")
    return "\n".join(lines)
