"""DeepSpeed (deepspeedai/DeepSpeed@edaa722) config JSON for a train plan, or a refusal naming the limit.

Limits, from DeepSpeed's sources at that commit:
- the pipeline engine asserts ZeRO < 2 (runtime/pipe/engine.py); the stage count is the model's
  PipelineModule(num_stages=...) argument, not a config key (`pipeline.stages` is parsed but never read), and
  its partition methods ('uniform', 'parameters', 'type:REGEX') cannot place an arbitrary layer split: only an
  equal number of transformer layers per stage ('type:<layer class>') is expressible; no interleaving.
- AutoEP (module_inject/auto_ep_*.py): expert_parallel.autoep_size must divide the routed experts;
  expert_tensor_parallel_size must be 1; with tensor_parallel.autotp_size > 1 it needs autoep_size > 1,
  pp = 1 and ZeRO <= 2; preset_model names the model family.
- no FP8 training, no Megatron-style sequence parallelism for AutoTP, no context parallelism key, no
  selective (attention-only) or layer-level selective recompute: activation checkpointing is per layer or
  per group of layers, all of them recomputed (pipeline activation_checkpoint_interval, or the model's own
  checkpoint calls with `activation_checkpointing`).
JSON has no comments: the header and the model-side settings go under the top-level key "parplan", which
DeepSpeed ignores (DeepSpeedConfig reads the keys it knows).
"""

import json

from planner.exports.common import ExportRefused, Target, header_facts
from planner.exports.train_layout import TrainView, node_layout, node_runs, refuse_unsupported
from planner.plan import Plan

AUTOEP_PRESETS = ("mixtral", "qwen3_moe", "qwen3_5_moe", "deepseek_v2", "deepseek_v3")


def _refuse_unexpressible(view: TrainView, target: Target) -> None:
    refuse_unsupported(view, target, "deepspeed")  # pipeline + ZeRO >= 2, CP, interleaving
    d = view.d
    checks = [
        ("inputs.workload.dtype", view.work["dtype"], view.work["dtype"] == "fp8", "no FP8 training setting"),
        ("decision.sequence_parallel", True, d["sequence_parallel"] and d["tp"] > 1,
         "AutoTP has no sequence-parallel (sharded layer-norm/dropout activations) setting"),
        ("decision.recompute", d["recompute"], d["recompute"] == "selective",
         "activation checkpointing is per layer; there is no selective (attention-only) recompute"),
        ("decision.stage_layers", d["stage_layers"], d["pp"] > 1 and len(set(d["stage_layers"])) > 1,
         "PipelineModule partition methods cannot place an uneven transformer-layer split"),
        ("inputs.model.mtp_layers", view.model.get("mtp_layers"), bool(view.model.get("mtp_layers")),
         "no multi-token-prediction module"),
        ("inputs.workload.async_tp", True, view.tp_overlap(default=False), "AutoTP does not overlap TP communication"),
    ] + [(f"inputs.workload.{name}", True, view.option(name), "AutoEP has no such setting")
         for name in ("a2a_dedup", "fp8_dispatch", "a2a_overlap")]
    for field, value, bad, limit in checks:
        if bad:
            raise ExportRefused(target, field, value, limit)


def _autoep(view: TrainView, target: Target) -> dict | None:
    """The expert_parallel block (None when ep = 1: the model's own MoE layers run unchanged)."""
    d, moe = view.d, view.model["moe"]
    checks = [
        ("decision.etp", d["etp"], d["etp"] != 1, "AutoEP accepts expert_tensor_parallel_size=1 only"),
        ("decision.ep", d["ep"], moe["experts"] % d["ep"] != 0, f"autoep_size must divide {moe['experts']} experts"),
        ("decision.ep", d["ep"], d["tp"] > 1 and d["ep"] == 1, "AutoEP+AutoTP folding requires autoep_size > 1"),
        ("decision.pp", d["pp"], d["tp"] > 1 and d["pp"] > 1, "AutoEP+AutoTP folding supports pp=1 only"),
        ("decision.zero", d["zero"], d["tp"] > 1 and d["zero"] == 3, "AutoEP+AutoTP folding supports ZeRO 0-2"),
    ]
    for field, value, bad, limit in checks:
        if bad:
            raise ExportRefused(target, field, value, limit)
    if d["ep"] == 1:
        return None
    cfg = {"enabled": True, "autoep_size": d["ep"], "expert_tensor_parallel_size": 1}
    family = (view.model.get("extra") or {}).get("hf_model_type")
    if family not in AUTOEP_PRESETS:
        raise ExportRefused(target, "inputs.model.extra.hf_model_type", family,
                            f"AutoEP presets cover {', '.join(AUTOEP_PRESETS)} models only")
    cfg["preset_model"] = family
    return cfg


def deepspeed_config(view: TrainView, target: Target, plan: Plan) -> str:
    """The config JSON (keys sorted) with the header and the model-side settings under "parplan"."""
    _refuse_unexpressible(view, target)
    d, work = view.d, view.work
    cfg: dict = {"train_batch_size": work["global_batch"], "train_micro_batch_size_per_gpu": d["mbs"],
                 "gradient_accumulation_steps": view.accumulation, "zero_optimization": {"stage": d["zero"]},
                 "bf16": {"enabled": work["dtype"] != "fp16"}, "fp16": {"enabled": work["dtype"] == "fp16"}}
    if d["tp"] > 1:
        cfg["tensor_parallel"] = {"autotp_size": d["tp"]}
    autoep = _autoep(view, target) if view.model.get("moe") else None
    if autoep:
        cfg["expert_parallel"] = autoep
    notes = header_facts(plan, target)
    gpn, layout = node_layout(view, target)
    notes["launch"] = (f"deepspeed --num_nodes {len(layout)} --num_gpus {gpn} --hostfile <hosts in the node order "
                       "below> <train script> --deepspeed_config <this file>")
    notes["node order"] = node_runs(view, target)
    if d["pp"] > 1:
        cfg["pipeline"] = {"activation_checkpoint_interval": 1 if d["recompute"] == "full" else 0}
        notes["model"] = (f"PipelineModule(layers, num_stages={d['pp']}, partition_method='type:<transformer "
                          f"layer class>') gives each stage {d['stage_layers'][0]} transformer layers")
    elif d["recompute"] == "full":
        cfg["activation_checkpointing"] = {"partition_activations": False, "contiguous_memory_optimization": False,
                                           "cpu_checkpointing": False}
        notes["model"] = ("recompute full: the model checkpoints every transformer layer "
                          "(deepspeed.checkpointing.checkpoint, or model.gradient_checkpointing_enable())")
    cfg["parplan"] = notes
    return json.dumps(cfg, indent=2, sort_keys=True) + "\n"
