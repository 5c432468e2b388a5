"""Executor configurations for a `kind: train` plan: Megatron-LM arguments, torchtitan TOML, DeepSpeed JSON.

Option names are the executors' own (looked up in their sources and docs):
- Megatron-LM (megatron/training/arguments.py): --tensor-model-parallel-size, --pipeline-model-parallel-size,
  --context-parallel-size, --expert-model-parallel-size, --expert-tensor-parallel-size,
  --num-layers-per-virtual-pipeline-stage, --decoder-first-pipeline-num-layers /
  --decoder-last-pipeline-num-layers (uneven end stages), --pipeline-model-parallel-layout (any other
  split; E embedding, t layer, m MTP, L loss), --micro-batch-size, --global-batch-size, --seq-length,
  --sequence-parallel, --use-distributed-optimizer, --use-megatron-fsdp with
  --data-parallel-sharding-strategy optim_grads|optim_grads_params, --recompute-granularity,
  --recompute-method, --recompute-num-layers, --bf16 / --fp16, --fp8-format.
- torchtitan (torchtitan/config job config): [parallelism] data_parallel_replicate_degree,
  data_parallel_shard_degree, fsdp_reshard_after_forward, tensor_parallel_degree, pipeline_parallel_degree,
  pipeline_parallel_schedule, pipeline_parallel_microbatch_size, module_fqns_per_model_part,
  context_parallel_degree, expert_parallel_degree, expert_tensor_parallel_degree; [training]
  local_batch_size, global_batch_size, seq_len, mixed_precision_param; [activation_checkpoint] mode.
- DeepSpeed (deepspeed/runtime/config.py): train_batch_size, train_micro_batch_size_per_gpu,
  gradient_accumulation_steps, zero_optimization.stage, bf16/fp16.enabled, tensor_parallel.autotp_size,
  pipeline.stages, activation_checkpointing.
"""

import json

from costmodels.errors import SpecError
from costmodels.training import even_stage_layers
from planner.plan import Plan

EXPORT_FORMATS = ("megatron", "torchtitan", "deepspeed")


def _decision(plan: Plan) -> tuple[dict, dict, dict]:
    """(decision, model, workload) of a train plan or of an estimate of a train configuration; an estimate
    without an explicit split gets the even split `estimate_training` costed."""
    if plan.kind not in ("train", "estimate"):
        raise SpecError(f"export needs a 'train' plan or a train estimate, got kind {plan.kind!r}", field="kind")
    inputs = plan["inputs"]
    decision = dict(plan["decision"])
    if decision.get("stage_layers") is None:
        decision["stage_layers"] = list(even_stage_layers(inputs["model"]["layers"], decision["pp"]))
    return decision, inputs["model"], inputs["workload"]


def _megatron_split_flags(d: dict, model: dict) -> list[str]:
    layers = d["stage_layers"]
    pp, vpp = d["pp"], d["vpp"]
    if pp == 1:
        return []
    if vpp > 1:
        return ["--num-layers-per-virtual-pipeline-stage", str(layers[0] // vpp)]
    middle = layers[1:-1]
    if len(set(layers)) == 1:
        return []
    if len(set(middle)) <= 1:
        flags = []
        if not middle or layers[0] != middle[0]:
            flags += ["--decoder-first-pipeline-num-layers", str(layers[0])]
        if not middle or layers[-1] != middle[0]:
            flags += ["--decoder-last-pipeline-num-layers", str(layers[-1])]
        return flags
    mtp = "m" * int(model.get("mtp_layers", 0))
    parts = [("E" if s == 0 else "") + f"t*{n}" + (mtp + "L" if s == pp - 1 else "") for s, n in enumerate(layers)]
    return ["--pipeline-model-parallel-layout", "'" + "|".join(parts) + "'"]


def megatron_args(plan: Plan) -> str:
    """Megatron-LM command-line arguments, one flag per line with shell continuations."""
    d, model, work = _decision(plan)
    args = [["--tensor-model-parallel-size", str(d["tp"])], ["--pipeline-model-parallel-size", str(d["pp"])],
            ["--context-parallel-size", str(d["cp"])]]
    if model.get("moe"):
        args += [["--expert-model-parallel-size", str(d["ep"])], ["--expert-tensor-parallel-size", str(d["etp"])]]
    split = _megatron_split_flags(d, model)
    for i in range(0, len(split), 2):
        args.append(split[i:i + 2])
    args += [["--micro-batch-size", str(d["mbs"])], ["--global-batch-size", str(work["global_batch"])],
             ["--seq-length", str(work["seq_len"])]]
    if d["sequence_parallel"] and d["tp"] > 1:
        args.append(["--sequence-parallel"])
    if d["zero"] == 1:
        args.append(["--use-distributed-optimizer"])
    elif d["zero"] in (2, 3):
        strategy = "optim_grads" if d["zero"] == 2 else "optim_grads_params"
        args += [["--use-megatron-fsdp"], ["--data-parallel-sharding-strategy", strategy],
                 ["--use-distributed-optimizer"]]
    if d["recompute"] == "full":
        args += [["--recompute-granularity", "full"], ["--recompute-method", "uniform"],
                 ["--recompute-num-layers", "1"]]
    elif d["recompute"] == "selective":
        args.append(["--recompute-granularity", "selective"])
    dtype = work["dtype"]
    args.append(["--fp16"] if dtype == "fp16" else ["--bf16"])
    if dtype == "fp8":
        args.append(["--fp8-format", "hybrid"])
    return " \\\n".join(" ".join(a) for a in args) + "\n"


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)
    return "[" + ", ".join(_toml_value(x) for x in v) + "]"


def _torchtitan_fqns(d: dict) -> list[list[str]] | None:
    """Module names per pipeline stage for an uneven split (torchtitan's decoder naming)."""
    layers = d["stage_layers"]
    if d["pp"] == 1 or d["vpp"] > 1 or len(set(layers)) == 1:
        return None
    out, start = [], 0
    for s, n in enumerate(layers):
        names = (["tok_embeddings"] if s == 0 else []) + [f"layers.{i}" for i in range(start, start + n)]
        if s == len(layers) - 1:
            names += ["norm", "output"]
        out.append(names)
        start += n
    return out


def torchtitan_toml(plan: Plan) -> str:
    """A torchtitan job-config fragment ([parallelism], [training], [activation_checkpoint])."""
    d, model, work = _decision(plan)
    dp = d["dp"]
    replicate, shard = (dp, 1) if d["zero"] == 0 else (1, dp)
    par = {"data_parallel_replicate_degree": replicate, "data_parallel_shard_degree": shard}
    if d["zero"] in (1, 2):
        par["fsdp_reshard_after_forward"] = "never"
    elif d["zero"] == 3:
        par["fsdp_reshard_after_forward"] = "always"
    par |= {"tensor_parallel_degree": d["tp"], "pipeline_parallel_degree": d["pp"],
            "context_parallel_degree": d["cp"]}
    if d["pp"] > 1:
        par["pipeline_parallel_schedule"] = "Interleaved1F1B" if d["vpp"] > 1 else "1F1B"
        par["pipeline_parallel_microbatch_size"] = d["mbs"]
        fqns = _torchtitan_fqns(d)
        if fqns is not None:
            par["module_fqns_per_model_part"] = fqns
    if model.get("moe"):
        par |= {"expert_parallel_degree": d["ep"], "expert_tensor_parallel_degree": d["etp"]}
    training = {"local_batch_size": work["global_batch"] // dp, "global_batch_size": work["global_batch"],
                "seq_len": work["seq_len"],
                "mixed_precision_param": "float16" if work["dtype"] == "fp16" else "bfloat16"}
    sections = [("parallelism", par), ("training", training), ("activation_checkpoint", {"mode": d["recompute"]})]
    if work["dtype"] == "fp8":
        sections.append(("model", {"converters": ["float8"]}))
    lines = []
    for name, body in sections:
        lines.append(f"[{name}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in body.items()]
        lines.append("")
    return "\n".join(lines)


def deepspeed_json(plan: Plan) -> str:
    """A DeepSpeed config. Context parallelism, interleaving and uneven splits have no DeepSpeed config key."""
    d, model, work = _decision(plan)
    if d["cp"] > 1 or d["vpp"] > 1:
        raise SpecError("DeepSpeed config has no context-parallel or interleaved-pipeline setting; "
                        f"this plan uses cp={d['cp']}, vpp={d['vpp']} (export megatron or torchtitan instead)",
                        field="format")
    gbs, dp, mbs = work["global_batch"], d["dp"], d["mbs"]
    cfg = {"train_batch_size": gbs, "train_micro_batch_size_per_gpu": mbs,
           "gradient_accumulation_steps": gbs // (dp * mbs),
           "zero_optimization": {"stage": d["zero"]},
           "bf16": {"enabled": work["dtype"] != "fp16"}, "fp16": {"enabled": work["dtype"] == "fp16"}}
    if d["tp"] > 1:
        cfg["tensor_parallel"] = {"autotp_size": d["tp"]}
    if d["pp"] > 1:
        cfg["pipeline"] = {"stages": d["pp"], "activation_checkpoint_interval": 1 if d["recompute"] == "full" else 0}
    if d["recompute"] != "none":
        cfg["activation_checkpointing"] = {"partition_activations": bool(d["sequence_parallel"] and d["tp"] > 1),
                                           "contiguous_memory_optimization": False, "cpu_checkpointing": False}
    return json.dumps(cfg, indent=2, sort_keys=True) + "\n"


def export(plan: Plan, fmt: str) -> str:
    """The plan in executor format `fmt` (one of EXPORT_FORMATS)."""
    writers = {"megatron": megatron_args, "torchtitan": torchtitan_toml, "deepspeed": deepspeed_json}
    if fmt not in writers:
        raise SpecError(f"unknown format {fmt!r}; valid: {', '.join(EXPORT_FORMATS)}", field="format")
    return writers[fmt](plan)
