"""Megatron-LM (NVIDIA/Megatron-LM@d98e8a6) launch script for a train plan: pretrain_gpt.py arguments.

Flag semantics, from megatron/training/arguments.py and megatron/core at that commit:
- model shape: --num-layers --hidden-size --num-attention-heads --kv-channels --ffn-hidden-size,
  --group-query-attention --num-query-groups, --swiglu, --untie-embeddings-and-output-weights; MoE
  --num-experts --moe-router-topk --moe-ffn-hidden-size --moe-shared-expert-intermediate-size --moe-layer-freq
  (a Python list, 1 = MoE layer); MLA --multi-latent-attention --q-lora-rank --kv-lora-rank --qk-head-dim
  --qk-pos-emb-head-dim --v-head-dim; MTP --mtp-num-layers (the MTP block sits after the last decoder layer).
- split: equal stages need nothing; --decoder-first/last-pipeline-num-layers when only the end stages differ;
  otherwise --pipeline-model-parallel-layout (E embedding, t decoder layer, m MTP, L loss; one '|'-separated
  entry per virtual stage, virtual stage v of rank s at position v*pp + s). Interleaving with equal chunks:
  --num-layers-per-virtual-pipeline-stage.
- Runnable combinations: costmodels.framework.unsupported("megatron", ...) (the rules the planner searches
  under); a plan outside them is refused.
- ZeRO: 1 = --use-distributed-optimizer; 3 = Megatron-FSDP (--use-megatron-fsdp
  --data-parallel-sharding-strategy optim_grads_params), which requires --use-distributed-optimizer,
  --ckpt-format fsdp_dtensor and --no-gradient-accumulation-fusion, and runs without pipeline parallelism.
  ZeRO 2 (Megatron-FSDP optim_grads) is neither searched nor exported: the cost model does not cost it apart
  from ZeRO 3 (costmodels.framework), so such a plan is refused.
- recompute: full = --recompute-granularity full --recompute-method uniform --recompute-num-layers 1;
  selective = --recompute-granularity selective --recompute-modules core_attn (the attention core only, the
  selective recompute of Korthikanti et al. that parplan's memory model costs); selective-layer =
  --recompute-granularity full --recompute-method block --recompute-num-layers N with N half of every
  (virtual) stage's layers (megatron/core/recompute.py: block checkpoints the first N layers of each
  TransformerBlock, i.e. of each virtual stage), which needs the same even count in every one of them.
- FP8: --fp8-format hybrid --fp8-recipe delayed on top of --bf16 (Transformer Engine); workload.fp8_allgather
  = --fp8-param-gather. TP overlap (workload.async_tp, default on with sequence parallelism, which it needs):
  --tp-comm-overlap. MoE dispatch:
  --moe-token-dispatcher-type alltoall, or flex with --moe-flex-dispatcher-backend deepep for a2a_dedup;
  a2a_overlap = --overlap-moe-expert-parallel-comm.
"""

from costmodels.pipeline import virtual_stage_layers
from planner.exports.common import ExportRefused, Target
from planner.exports.train_layout import TrainView, moe_layer_ids, node_comment_lines, refuse_unsupported, torchrun_line


def _model_flags(model: dict) -> list[list[str]]:
    heads, kv = model["heads"], model["kv_heads"]
    flags = [["--num-layers", str(model["layers"])], ["--hidden-size", str(model["hidden"])],
             ["--num-attention-heads", str(heads)], ["--kv-channels", str(model["head_dim"])],
             ["--ffn-hidden-size", str(model["ffn"])]]
    if model.get("max_position"):
        flags.append(["--max-position-embeddings", str(model["max_position"])])
    if kv != heads and not model.get("mla"):
        flags += [["--group-query-attention"], ["--num-query-groups", str(kv)]]
    if model.get("gated_mlp", True):
        flags.append(["--swiglu"])
    if not model.get("tied_embeddings", False):
        flags.append(["--untie-embeddings-and-output-weights"])
    mla = model.get("mla")
    if mla:
        flags += [["--multi-latent-attention"], ["--q-lora-rank", str(mla["q_lora_rank"])],
                  ["--kv-lora-rank", str(mla["kv_lora_rank"])], ["--qk-head-dim", str(mla["qk_nope_head_dim"])],
                  ["--qk-pos-emb-head-dim", str(mla["qk_rope_head_dim"])], ["--v-head-dim", str(mla["v_head_dim"])]]
    moe = model.get("moe")
    if moe:
        is_moe = set(moe_layer_ids(model))
        pattern = "[" + ",".join("1" if i in is_moe else "0" for i in range(model["layers"])) + "]"
        flags += [["--num-experts", str(moe["experts"])], ["--moe-router-topk", str(moe["top_k"])],
                  ["--moe-ffn-hidden-size", str(moe["expert_ffn"])], ["--moe-layer-freq", f"'{pattern}'"],
                  ["--moe-grouped-gemm"]]
        if moe.get("shared_experts"):
            width = moe["shared_experts"] * (moe.get("shared_expert_ffn") or moe["expert_ffn"])
            flags.append(["--moe-shared-expert-intermediate-size", str(width)])
    if model.get("mtp_layers"):
        flags.append(["--mtp-num-layers", str(model["mtp_layers"])])
    return flags


def _layout(view: TrainView) -> str:
    """--pipeline-model-parallel-layout for any split (and interleaving): E (embedding) opens the first virtual
    stage, MTP and L (loss) close the last; virtual stages as costed (costmodels.pipeline.virtual_stage_layers)."""
    d, pp, vpp = view.d, view.d["pp"], view.d["vpp"]
    mtp = "m" * int(view.model.get("mtp_layers", 0))
    per_rank = virtual_stage_layers(d["stage_layers"], vpp)
    entries = []
    for v in range(vpp):
        for s in range(pp):
            first, last = v == 0 and s == 0, v == vpp - 1 and s == pp - 1
            entries.append(("E" if first else "") + f"t*{per_rank[s][v]}" + (mtp + "L" if last else ""))
    return "'" + "|".join(entries) + "'"


def _split_flags(view: TrainView, target: Target) -> list[list[str]]:
    d, pp, vpp = view.d, view.d["pp"], view.d["vpp"]
    layers = d["stage_layers"]
    if sum(layers) != view.model["layers"] or len(layers) != pp:
        raise ExportRefused(target, "decision.stage_layers", layers,
                            f"{pp} stages must hold the model's {view.model['layers']} layers")
    if pp == 1:
        return []
    if vpp > 1:
        if min(layers) < vpp:
            raise ExportRefused(target, "decision.stage_layers", layers,
                                f"each stage needs a decoder layer per virtual stage (vpp={vpp})")
        if len(set(layers)) == 1 and layers[0] % vpp == 0:
            return [["--num-layers-per-virtual-pipeline-stage", str(layers[0] // vpp)]]
        return [["--pipeline-model-parallel-layout", _layout(view)]]
    if len(set(layers)) == 1:
        return []
    middle = layers[1:-1]
    if len(set(middle)) <= 1 and pp > 2:
        flags = []
        if layers[0] != middle[0]:
            flags.append(["--decoder-first-pipeline-num-layers", str(layers[0])])
        if layers[-1] != middle[0]:
            flags.append(["--decoder-last-pipeline-num-layers", str(layers[-1])])
        return flags
    return [["--pipeline-model-parallel-layout", _layout(view)]]


def _moe_comm_flags(view: TrainView, target: Target) -> list[list[str]]:
    """Dispatcher: all-to-all, or DeepEP (sends a token once per destination node) for workload.a2a_dedup."""
    if not view.model.get("moe"):
        return []
    if view.option("fp8_dispatch"):
        raise ExportRefused(target, "inputs.workload.fp8_dispatch", True,
                            "no FP8 dispatch setting was checked against this version")
    flags = ([["--moe-token-dispatcher-type", "flex"], ["--moe-flex-dispatcher-backend", "deepep"]]
             if view.option("a2a_dedup") else [["--moe-token-dispatcher-type", "alltoall"]])
    if view.option("a2a_overlap"):
        flags.append(["--overlap-moe-expert-parallel-comm"])
    return flags


def _strategy_flags(view: TrainView, target: Target) -> list[list[str]]:
    d = view.d
    flags = [["--tensor-model-parallel-size", str(d["tp"])], ["--pipeline-model-parallel-size", str(d["pp"])],
             ["--context-parallel-size", str(d["cp"])]]
    if view.model.get("moe"):
        flags += [["--expert-model-parallel-size", str(d["ep"])], ["--expert-tensor-parallel-size", str(d["etp"])]]
    flags += [["--micro-batch-size", str(d["mbs"])], ["--global-batch-size", str(view.work["global_batch"])],
              ["--seq-length", str(view.work["seq_len"])]]
    if d["sequence_parallel"] and d["tp"] > 1:
        flags.append(["--sequence-parallel"])
    if d["zero"] == 1:
        flags.append(["--use-distributed-optimizer"])
    elif d["zero"] == 3:
        flags += [["--use-megatron-fsdp"], ["--data-parallel-sharding-strategy", "optim_grads_params"],
                  ["--use-distributed-optimizer"], ["--ckpt-format", "fsdp_dtensor"],
                  ["--no-gradient-accumulation-fusion"]]
    if d["recompute"] == "full":
        flags += [["--recompute-granularity", "full"], ["--recompute-method", "uniform"],
                  ["--recompute-num-layers", "1"]]
    elif d["recompute"] == "selective":
        flags += [["--recompute-granularity", "selective"], ["--recompute-modules", "core_attn"]]
    elif d["recompute"] == "selective-layer":  # refuse_unsupported: every (virtual) stage has the same even count
        per_chunk = d["stage_layers"][0] // d["vpp"]
        flags += [["--recompute-granularity", "full"], ["--recompute-method", "block"],
                  ["--recompute-num-layers", str(per_chunk // 2)]]
    dtype = view.work["dtype"]
    flags.append(["--fp16"] if dtype == "fp16" else ["--bf16"])
    if dtype == "fp8":
        flags += [["--fp8-format", "hybrid"], ["--fp8-recipe", "delayed"]]
        if view.option("fp8_allgather"):
            flags.append(["--fp8-param-gather"])
    if view.tp_overlap(default=bool(d["sequence_parallel"])):
        if not d["sequence_parallel"]:
            raise ExportRefused(target, "inputs.workload.async_tp", True,
                                "--tp-comm-overlap runs only with --sequence-parallel (the plan has none)")
        flags.append(["--tp-comm-overlap"])
    return flags + _moe_comm_flags(view, target)


def megatron_script(view: TrainView, target: Target, header: list[str]) -> str:
    """A bash script: the header, the node order, the argument array, and the per-node torchrun line."""
    refuse_unsupported(view, target, "megatron")
    flags = _model_flags(view.model) + _strategy_flags(view, target) + _split_flags(view, target)
    lines = ["#!/bin/bash", *header, *node_comment_lines(view, target),
             "# data, tokenizer and optimizer arguments follow on the command line of this script (\"$@\"), with the",
             "# model family's non-shape flags (e.g. Llama: --position-embedding-type rope --normalization RMSNorm",
             "# --disable-bias-linear); the shape flags below are the ones the plan was costed with",
             "MEGATRON_ARGS=("]
    lines += ["  " + " ".join(flag) for flag in flags]
    lines += [")", torchrun_line(view, target, ["pretrain_gpt.py", '"${MEGATRON_ARGS[@]}"', '"$@"'])]
    return "\n".join(lines) + "\n"

