"""torchtitan exports: a Python recipe for current torchtitan (b5bcd76) and a TOML job file for v0.2.2.

Semantics, from torchtitan's sources:
- Batch. v0.2.2: training.local_batch_size is the batch per data-parallel rank per accumulation step; with
  pp > 1 the pipeline cuts it into local_batch_size / pipeline_parallel_microbatch_size micro-batches, and
  gradient accumulation = global_batch_size / (local_batch_size x dp). So pp = 1: local = mbs, accumulation =
  the plan's micro-batches; pp > 1: local = mbs x micro-batches, accumulation 1. b5bcd76 counts tokens:
  num_tokens_per_microbatch_per_dp_rank = mbs x seq, parallelism.num_pp_microbatches, num_tokens_per_train_step
  = global batch x seq, max_context_length = seq.
- Split: module_fqns_per_model_part, one list per virtual stage (model part i runs on rank i mod pp), names
  tok_embeddings, layers.N, norm, output (v0.2.2) / lm_head (b5bcd76); torchtitan's own default split
  differs from the plan's.
- Data parallel: ZeRO 0 = data_parallel_replicate_degree (DDP); ZeRO 3 = data_parallel_shard_degree with
  fsdp_reshard_after_forward "always" (FSDP2); FSDP2 has no ZeRO 1 or 2 (refused, with every other rule of
  costmodels.framework.unsupported("torchtitan", ...), the rules the planner searches under).
- Workload switches: compile = compile.enable; async_tp = v0.2.2 parallelism.enable_async_tensor_parallel,
  b5bcd76 compile.enable_async_tensor_parallel (both need compile); a2a_dedup = the DeepEP all-to-all (v0.2.2
  expert_parallel_comm_backend "deepep", b5bcd76 model_registry(..., moe_comm_backend="deepep")); fp8_allgather
  = v0.2.2 quantize.linear.float8.enable_fsdp_float8_all_gather (b5bcd76 has none); fp8_dispatch and
  a2a_overlap have no setting (refused).
- Experts: EP groups come out of dp_shard x cp x tp. v0.2.2: expert_tensor_parallel_degree must be 1 or tp when
  ep > 1; with ep = 1 experts are TP-sharded (etp = tp). b5bcd76 has no expert TP: ep > 1 needs etp = 1.
- Recompute: full = mode "full"; selective = per-op SAC (v0.2.2 mode "selective" with selective_ac_option
  "op"; b5bcd76 SelectiveAC), which saves the expensive matmuls' outputs and recomputes the rest;
  selective-layer = v0.2.2 mode "selective" with selective_ac_option "2" (every 2nd transformer block of a
  rank wrapped in full checkpointing, distributed/activation_checkpoint.py _apply_layer_sac); b5bcd76 has
  no layer-level SAC (refused).
- Sequence parallel: b5bcd76 parallelism.enable_sequence_parallel; v0.2.2 always applies it with TP (a plan
  without it runs with less activation memory than planned).
- FP8: v0.2.2 model.converters ["quantize.linear.float8"] (+ "quantize.grouped_mm.float8" with
  quantize.grouped_mm.float8.fqns ["experts"] for MoE, a prototype that asserts pp = 1 and cp = 1);
  b5bcd76 converters of model_registry(flavor, converters=[...]). MTP: b5bcd76 model_registry(...,
  num_mtp_layers=N) with config.loss = MTPLoss.Config(...), without PP or CP; v0.2.2 has no MTP.
"""

import json

from costmodels.flops import LAYER_SAC_INTERVAL
from planner.exports.common import ExportRefused, Target
from planner.exports.train_layout import TrainView, node_comment_lines, refuse_unsupported, torchrun_line


def _model_parts(view: TrainView, target: Target) -> list[list[str]]:
    """Module names per model part (virtual stage), part i on rank i mod pp; the output projection is `output`
    in v0.2.2 and `lm_head` in b5bcd76."""
    head = "output" if target.fmt == "torchtitan-toml" else "lm_head"
    d, pp, vpp = view.d, view.d["pp"], view.d["vpp"]
    per_rank = []
    for n in d["stage_layers"]:
        base, extra = divmod(n, vpp)
        per_rank.append([base + (1 if i < extra else 0) for i in range(vpp)])
    counts = [per_rank[s][v] for v in range(vpp) for s in range(pp)]
    parts, start = [], 0
    for i, n in enumerate(counts):
        names = (["tok_embeddings"] if i == 0 else []) + [f"layers.{j}" for j in range(start, start + n)]
        if i == len(counts) - 1:
            names += ["norm", head]
        parts.append(names)
        start += n
    return parts


def _data_parallel(view: TrainView, target: Target) -> dict:
    d = view.d
    if d["zero"] == 0:
        par = {"data_parallel_replicate_degree": d["dp"], "data_parallel_shard_degree": 1}
    else:
        par = {"data_parallel_replicate_degree": 1, "data_parallel_shard_degree": d["dp"],
               "fsdp_reshard_after_forward": "always"}
    if view.model.get("moe") and d["ep"] > 1:
        region = par["data_parallel_shard_degree"] * d["cp"] * d["tp"]
        width = d["ep"] * (d["etp"] if target.fmt == "torchtitan-toml" else 1)
        if region % width:
            raise ExportRefused(target, "decision.ep", d["ep"],
                                f"torchtitan forms expert groups inside dp_shard x cp x tp = {region} ranks "
                                f"(ZeRO {d['zero']}); ep x etp = {width} does not divide it")
    return par


def _check_experts(view: TrainView, target: Target) -> None:
    d = view.d
    if not view.model.get("moe"):
        return
    if d["ep"] == 1 and d["etp"] != d["tp"]:
        raise ExportRefused(target, "decision.etp", d["etp"],
                            f"with ep=1 torchtitan shards experts with the dense TP (etp must be tp={d['tp']})")
    if d["ep"] > 1 and target.fmt == "torchtitan" and d["etp"] != 1:
        raise ExportRefused(target, "decision.etp", d["etp"], "b5bcd76 has no expert TP: with ep > 1 etp must be 1")


def _check_common(view: TrainView, target: Target) -> None:
    refuse_unsupported(view, target, "torchtitan")
    d, mtp = view.d, int(view.model.get("mtp_layers", 0))
    if view.work["dtype"] == "fp16":
        raise ExportRefused(target, "inputs.workload.dtype", "fp16", "mixed_precision_param is bfloat16 or float32")
    if mtp and target.fmt == "torchtitan-toml":
        raise ExportRefused(target, "inputs.model.mtp_layers", mtp, "v0.2.2 has no multi-token prediction")
    if mtp and (d["pp"] > 1 or d["cp"] > 1):
        raise ExportRefused(target, "inputs.model.mtp_layers", mtp,
                            f"MTP runs without PP and CP only (plan: pp={d['pp']}, cp={d['cp']})")
    for name in ("fp8_dispatch", "a2a_overlap") + (("fp8_allgather",) if target.fmt == "torchtitan" else ()):
        if view.option(name):
            raise ExportRefused(target, f"inputs.workload.{name}", True, "no such setting in this version")
    _check_experts(view, target)


def _parallelism(view: TrainView, target: Target) -> dict:
    d = view.d
    par = _data_parallel(view, target) | {"tensor_parallel_degree": d["tp"], "pipeline_parallel_degree": d["pp"],
                                         "context_parallel_degree": d["cp"]}
    if target.fmt == "torchtitan":
        par["enable_sequence_parallel"] = bool(d["sequence_parallel"] and d["tp"] > 1)
    if d["pp"] > 1:
        par["pipeline_parallel_schedule"] = "Interleaved1F1B" if d["vpp"] > 1 else "1F1B"
        par["module_fqns_per_model_part"] = _model_parts(view, target)
        if target.fmt == "torchtitan":
            par["num_pp_microbatches"] = view.accumulation
        else:
            par["pipeline_parallel_microbatch_size"] = d["mbs"]
    if view.model.get("moe"):
        par["expert_parallel_degree"] = d["ep"]
        if target.fmt == "torchtitan-toml":
            par["expert_tensor_parallel_degree"] = d["etp"] if d["ep"] > 1 else d["tp"]
            if view.option("a2a_dedup"):
                par["expert_parallel_comm_backend"] = "deepep"
    if target.fmt == "torchtitan-toml" and view.tp_overlap(default=False):
        par["enable_async_tensor_parallel"] = True
    return par


def _toml_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)
    return "[" + ", ".join(_toml_value(x) for x in v) + "]"


def toml_job(view: TrainView, target: Target, header: list[str]) -> str:
    """v0.2.2 TOML job file: [parallelism], [training], [activation_checkpoint], [model] converters."""
    _check_common(view, target)
    d, work = view.d, view.work
    local = d["mbs"] * (view.accumulation if d["pp"] > 1 else 1)
    training = {"local_batch_size": local, "global_batch_size": work["global_batch"], "seq_len": work["seq_len"],
                "mixed_precision_param": "bfloat16"}
    ac = {"mode": "selective" if d["recompute"] == "selective-layer" else d["recompute"]}
    if d["recompute"] in ("selective", "selective-layer"):
        ac["selective_ac_option"] = "op" if d["recompute"] == "selective" else str(LAYER_SAC_INTERVAL)
    sections = [("parallelism", _parallelism(view, target)), ("training", training), ("activation_checkpoint", ac)]
    if work["dtype"] == "fp8":
        moe = bool(view.model.get("moe"))
        if moe and (d["pp"] > 1 or d["cp"] > 1):
            raise ExportRefused(target, "inputs.workload.dtype", "fp8", "the Float8 MoE prototype of v0.2.2 asserts "
                                f"pp = 1 and cp = 1 (plan: pp={d['pp']}, cp={d['cp']})")
        converters = ["quantize.linear.float8"] + (["quantize.grouped_mm.float8"] if moe else [])
        sections.append(("model", {"converters": converters}))
        if moe:
            sections.append(("quantize.grouped_mm.float8", {"fqns": ["experts"]}))
        if view.option("fp8_allgather"):
            sections.append(("quantize.linear.float8", {"enable_fsdp_float8_all_gather": True}))
    if view.option("compile"):
        sections.append(("compile", {"enable": True}))
    lines = [*header, *node_comment_lines(view, target),
             "# launch on every node: " + torchrun_line(view, target, ["-m", "torchtitan.train",
                                                                       "--job.config_file", "<this file>"]),
             f"# [model] name / flavor: the torchtitan flavor of {view.model.get('name', '?')} "
             "(set them in your job file or with --model.name / --model.flavor)"]
    if d["tp"] > 1 and not d["sequence_parallel"]:
        lines.append("# sequence_parallel=false in the plan: v0.2.2 always shards activations along the sequence "
                     "with TP (same traffic, less activation memory than planned)")
    lines.append("")
    for name, body in sections:
        lines.append(f"[{name}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in body.items()]
        lines.append("")
    return "\n".join(lines)


def _model_spec_line(view: TrainView) -> list[str]:
    kwargs = []
    if view.work["dtype"] == "fp8":
        conv = ["Float8LinearConverter.Config()"] + (
            ["Float8GroupedExpertsConverter.Config()"] if view.model.get("moe") else [])
        kwargs.append(f"converters=[{', '.join(conv)}]")
    if view.model.get("mtp_layers"):
        kwargs.append(f"num_mtp_layers={int(view.model['mtp_layers'])}")
    if view.model.get("moe") and view.option("a2a_dedup"):
        kwargs.append('moe_comm_backend="deepep"')
    if not kwargs:
        return []
    lines = [f"    config.model_spec = model_registry(flavor, {', '.join(kwargs)})"]
    if view.model.get("mtp_layers"):  # as deepseek_v3_debugmodel_mtp: the MTP heads need their loss
        lines += ["    from torchtitan.models.common.config_utils import decoder_vocab_size",
                  "    from torchtitan.models.deepseek_v3.mtp import MTPLoss",
                  "    config.loss = MTPLoss.Config(global_vocab_size=decoder_vocab_size(config.model_spec))"]
    return lines


def python_recipe(view: TrainView, target: Target, header: list[str]) -> str:
    """b5bcd76 recipe module: `parplan_config(base, model_registry, flavor)` sets the plan on a Trainer.Config."""
    _check_common(view, target)
    d, work = view.d, view.work
    seq = work["seq_len"]
    values = [("training.num_tokens_per_microbatch_per_dp_rank", d["mbs"] * seq),
              ("training.num_tokens_per_train_step", work["global_batch"] * seq),
              ("training.max_context_length", seq), ("training.mixed_precision_param", "bfloat16")]
    values += [(f"parallelism.{k}", v) for k, v in _parallelism(view, target).items()]
    if view.option("compile"):
        values.append(("compile.enable", True))
    if view.tp_overlap(default=False):
        values.append(("compile.enable_async_tensor_parallel", True))
    if d["recompute"] == "selective-layer":
        raise ExportRefused(target, "decision.recompute", d["recompute"], "b5bcd76 has no layer-level selective "
                            "checkpointing (FullAC, SelectiveAC per op, memory budget); v0.2.2 has it: export "
                            "torchtitan-toml")
    ac = {"none": "None", "full": "FullAC.Config()", "selective": "SelectiveAC.Config()"}[d["recompute"]]
    lines = [*header, *node_comment_lines(view, target),
             "# put this module beside your recipes and return parplan_config(<your recipe>(), model_registry, "
             "<flavor>) from a recipe function;",
             "# launch on every node: " + torchrun_line(view, target, ["-m", "torchtitan.train", "--module",
                                                                       "<module>", "--config", "<function>"]),
             "from torchtitan.components.quantization.float8 import Float8GroupedExpertsConverter, "
             "Float8LinearConverter  # noqa: F401",
             "from torchtitan.distributed.activation_checkpoint import FullAC, SelectiveAC  # noqa: F401", "", "",
             "def parplan_config(config, model_registry, flavor):",
             f'    """The parplan plan on a Trainer.Config of {view.model.get("name", "?")} (flavor: its '
             'model_registry flavor)."""']
    lines += _model_spec_line(view)
    lines += [f"    config.{path} = {json.dumps(v) if isinstance(v, str) else repr(v)}" for path, v in values]
    lines += [f"    config.activation_checkpoint = {ac}", "    return config"]
    return "\n".join(lines) + "\n"
