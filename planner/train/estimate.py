"""`estimate train`: the cost of ONE given training configuration as a plan document of kind "estimate".

    estimate_plan(model, cluster, workload, config) -> Plan
    check_estimate(plan) -> list[str]     recompute from plan["inputs"] and compare (empty = consistent)
    explain_estimate(plan) -> str         a readable table

Document: inputs = {target: "train", model, cluster, workload, config} (dataclasses as dicts), decision =
the configuration, predicted = step time, throughput, TFLOP/s, MFU, peak memory and breakdowns, plus the
top-level `feasible` and `infeasible_reasons`. A configuration that does not fit in memory is a valid
estimate (feasible = false); structurally impossible numbers are SpecErrors (see `validate_config`).
"""

import dataclasses
import math

from costmodels.errors import SpecError
from costmodels.hardware import ClusterSpec, DeviceCalibration, DeviceSpec, NodePool
from costmodels.model import MLASpec, ModelSpec, MoESpec
from costmodels.parallel import ParallelConfig, TrainingWorkload
from costmodels.training import check_config, estimate_training
from planner.confidence import confidence_lines, train_confidence
from planner.plan import Plan, make_plan
from planner.train.explain import recompute_line

PREDICTED_KEYS = ("step_time_s", "tokens_per_s_per_gpu", "model_tflops_per_gpu", "hardware_tflops_per_gpu", "mfu",
                  "memory_per_gpu_bytes")
RELATIVE_TOLERANCE = 1e-6
GiB = float(2**30)


def config_to_dict(config: ParallelConfig) -> dict:
    return dataclasses.asdict(config)


def config_from_dict(d: dict) -> ParallelConfig:
    """A ParallelConfig from its dict form (lists become tuples); unknown keys are a SpecError."""
    fields = {f.name for f in dataclasses.fields(ParallelConfig)}
    unknown = sorted(set(d) - fields)
    if unknown:
        raise SpecError(f"unknown keys {unknown}; valid: {', '.join(sorted(fields))}", field="config")
    d = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
    return ParallelConfig(**d)


def model_from_dict(d: dict) -> ModelSpec:
    d = dict(d)
    if d.get("mla") is not None:
        d["mla"] = MLASpec(**d["mla"])
    if d.get("moe") is not None:
        d["moe"] = MoESpec(**d["moe"])
    return ModelSpec(**d)


def cluster_from_dict(d: dict) -> ClusterSpec:
    pools = []
    for p in d["pools"]:
        dev = dict(p["device"])
        dev["calibration"] = DeviceCalibration(**dev["calibration"])
        pools.append(NodePool(**{**p, "device": DeviceSpec(**dev)}))
    return ClusterSpec(**{**d, "pools": tuple(pools)})


def inputs_to_specs(inputs: dict):
    """(model, cluster, workload, config) from an estimate document's inputs."""
    try:
        return (model_from_dict(inputs["model"]), cluster_from_dict(inputs["cluster"]),
                TrainingWorkload(**inputs["workload"]), config_from_dict(inputs["config"]))
    except (KeyError, TypeError) as exc:
        raise SpecError(f"estimate inputs cannot be read back: {exc}", field="inputs") from None


def validate_config(model: ModelSpec, cluster: ClusterSpec, workload: TrainingWorkload, config: ParallelConfig):
    """Raise SpecError (exit 2) naming the field when the configuration is structurally impossible."""
    problems = check_config(model, cluster, workload, config)
    if problems:
        field, reason = problems[0]
        more = f" (and {len(problems) - 1} more: " + "; ".join(r for _, r in problems[1:]) + ")" if problems[1:] else ""
        raise SpecError(reason + more, field=field)


def estimate_plan(model: ModelSpec, cluster: ClusterSpec, workload: TrainingWorkload, config: ParallelConfig) -> Plan:
    """Cost `config` and wrap the result in an estimate document (no exception for memory overflow)."""
    est = estimate_training(model, cluster, workload, config)
    inputs = {"target": "train", "model": dataclasses.asdict(model), "cluster": dataclasses.asdict(cluster),
              "workload": dataclasses.asdict(workload), "config": config_to_dict(config)}
    predicted = {k: getattr(est, k) for k in PREDICTED_KEYS}
    predicted.update(microbatches=est.microbatches, stage_layers=list(est.stage_layers),
                     stage_time_s=list(est.stage_time_s), stage_memory_bytes=list(est.stage_memory_bytes),
                     breakdown=est.breakdown)
    if est.step_time_s:  # interval, regime, extrapolated (planner/confidence)
        predicted.update(train_confidence(model, cluster, workload, config, step_time_s=est.step_time_s,
                                          tokens_per_s_per_gpu=est.tokens_per_s_per_gpu))
    decision = {"framework": workload.framework, **config_to_dict(config)}
    return make_plan("estimate", inputs=inputs, decision=decision, predicted=predicted,
                     feasible=est.feasible, infeasible_reasons=list(est.infeasible_reasons))


def _close(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=RELATIVE_TOLERANCE, abs_tol=1e-12)
    return a == b


def check_estimate(plan: Plan) -> list[str]:
    """Recompute the estimate from the document's inputs; list every figure that does not match."""
    problems = []
    try:
        fresh = estimate_plan(*inputs_to_specs(plan["inputs"]))
    except SpecError as exc:
        return [f"inputs: {exc}"]
    if plan.get("decision") != fresh["decision"]:
        problems.append("decision: does not equal inputs.config")
    for key in ("feasible", "infeasible_reasons"):
        if plan.get(key) != fresh[key]:
            problems.append(f"{key}: plan says {plan.get(key)!r}, recomputed {fresh[key]!r}")
    stored = plan.get("predicted", {})
    for key in PREDICTED_KEYS + ("microbatches",):
        if not _close(stored.get(key), fresh["predicted"][key]):
            problems.append(f"predicted.{key}: plan says {stored.get(key)!r}, recomputed {fresh['predicted'][key]!r}")
    return problems


def explain_estimate(plan: Plan) -> str:
    """A readable summary: configuration, headline figures, time and memory breakdowns."""
    inputs, p, d = plan["inputs"], plan["predicted"], plan["decision"]
    model, cluster, wl = inputs["model"], inputs["cluster"], inputs["workload"]
    gpus = sum(pool["nodes"] * pool["devices_per_node"] for pool in cluster["pools"])
    lines = [f"estimate train: {model['name']} on {gpus} x {cluster['pools'][0]['device']['name']}, "
             f"gbs {wl['global_batch']} x seq {wl['seq_len']} ({wl['dtype']}, {d.get('framework', 'megatron')})",
             f"config: tp={d['tp']} pp={d['pp']} dp={d['dp']} cp={d['cp']} ep={d['ep']} etp={d['etp']} "
             f"vpp={d['vpp']} mbs={d['mbs']} zero={d['zero']} recompute={d['recompute']} "
             f"sp={'on' if d['sequence_parallel'] else 'off'}",
             *(line.strip() for line in recompute_line(d["recompute"], d.get("framework", "megatron"))),
             f"feasible: {'yes' if plan['feasible'] else 'NO'}"]
    lines += [f"  - {r}" for r in plan["infeasible_reasons"]]
    if not p.get("step_time_s"):
        return "\n".join(lines) + "\n"
    lines += ["",
              f"{'step time':<28}{p['step_time_s']:>12.3f} s",
              f"{'tokens/s per GPU':<28}{p['tokens_per_s_per_gpu']:>12.1f}",
              f"{'model TFLOP/s per GPU':<28}{p['model_tflops_per_gpu']:>12.1f}",
              f"{'hardware TFLOP/s per GPU':<28}{p['hardware_tflops_per_gpu']:>12.1f}",
              f"{'MFU':<28}{100 * p['mfu']:>11.1f} %",
              f"{'peak memory per GPU':<28}{p['memory_per_gpu_bytes'] / GiB:>12.1f} GiB",
              f"{'micro-batches per step':<28}{p['microbatches']:>12d}",
              f"{'layers per stage':<28}{' '.join(map(str, p['stage_layers'])):>12}",
              *confidence_lines(p, indent="", width=28),
              "", f"{'time part':<20}{'seconds':>10}{'share':>8}"]
    step = p["step_time_s"]
    for name, value in sorted(p["breakdown"]["time_s"].items(), key=lambda kv: -kv[1]):
        if value > 0:
            lines.append(f"{name:<20}{value:>10.3f}{100 * value / step:>7.1f}%")
    lines += ["", f"{'memory part (stage ' + str(p['breakdown']['peak_memory_stage']) + ')':<20}{'GiB':>10}"]
    for name, value in p["breakdown"]["memory_bytes"].items():
        lines.append(f"{name:<20}{value / GiB:>10.2f}")
    return "\n".join(lines) + "\n"
