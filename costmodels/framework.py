"""Training frameworks as an input: what each ZeRO stage means, which overlaps exist, what can run at all.

                     megatron (Megatron-Core)     torchtitan (FSDP2)             deepspeed
  ZeRO 0             DDP, buckets overlapped      DDP (dp_replicate)             DDP
  ZeRO 1             distributed optimizer:       -- (no such mode)              optimizer states sharded,
                     grads reduce-scattered and                                  grads reduced once per step
                     params all-gathered once
                     per step, in buckets
  ZeRO 2             -- (no such mode)            --                             + grads reduce-scattered
                                                                                 every micro-batch
  ZeRO 3             Megatron-FSDP: per-layer     FSDP2: per-layer all-gather    stage 3: per-layer
                     all-gathers fwd and bwd,     fwd and bwd, reduce-scatter    all-gathers, reduce-scatter
                     reduce-scatter per micro-    per micro-batch                per micro-batch
                     batch
  per-layer overlap  prefetch of the next layer only (never "a fraction of the stage")
  grads on the wire  bf16                         fp32 (FSDP2 reduce_dtype)      bf16
  TP overlap         --tp-comm-overlap            async TP (torch SymmetricMemory) none
  element-wise       fused kernels                fused only with torch.compile  fused kernels (Megatron-DS)
  projections        fused QKV, fused gate/up     wq, wk, wv, w1, w3 separate    fused (Megatron-DeepSpeed)
                                                  matmuls (flops.block_matmuls)
  "selective"        attention core recomputed    op-level SAC: every 2nd matmul attention core recomputed
  recompute                                       in call order (wk, wo, w3) and
                                                  the element-wise ops recomputed
  "selective-layer"  --recompute-granularity full selective_ac_option "2"       -- (refused)
  recompute          --recompute-method block     (v0.2.2; b5bcd76 has no
  (every 2nd layer   --recompute-num-layers N:    layer SAC: its export
  fully recomputed)  N = half of every (virtual)  refuses)
                     stage's layers
  ZeRO 3 with PP     -- (refused)                 parameters gathered once per    -- (refused)
                                                  step and kept; fp32 gradients
                                                  accumulated unsharded, reduce-
                                                  scattered once after the stage's
                                                  last backward (torch pipelining
                                                  backward_maybe_with_nosync;
                                                  reshard_after_forward=False)
  attention kernel   cuDNN / TE fused attention   PyTorch SDPA flash (FA2):      fused
                                                  sdpa_attention_factor x speed
Runnable combinations (the planner searches only these; the exports refuse the rest with the same reasons):
- DeepSpeed (deepspeedai/DeepSpeed@edaa722): pipeline parallelism needs ZeRO <= 1 and an equal number of
  layers per stage (PipelineModule partition 'type:<layer>'); no context parallelism, interleaving, FP8
  training, AutoTP sequence parallelism, selective (attention-only) or layer-level selective recompute
  (activation_checkpoint_interval checkpoints groups of layers, all recomputed) or MTP module. MoE runs through
  AutoEP: expert TP = 1, ep divides the routed experts, and tp > 1 needs ep > 1, pp = 1 and ZeRO <= 2.
- torchtitan (current, b5bcd76): experts are sharded with etp = tp when ep = 1 and etp = 1 when ep > 1 (no
  expert TP beside EP); expert groups lie inside dp_shard x cp x tp (dp_shard = dp under FSDP, 1 under DDP);
  MTP runs without pipeline and context parallelism; FSDP2 has no ZeRO 1 or 2. Layer-level SAC (selective-layer)
  ended with v0.2.2: it is estimated and exported to v0.2.2, and searched only when asked for alone
  (LEGACY_RECOMPUTE).
- Megatron: selective-layer needs the same even number of layers in every (virtual) pipeline stage
  (--recompute-num-layers is one number for all of them, counted from the first layer of each) and no MTP
  module (block recompute skips it);
  Megatron-FSDP (ZeRO 3) runs without pipeline parallelism; ZeRO 2 (Megatron-FSDP optim_grads,
  which the export renders) is not searched: its per-micro-batch reduce-scatter is not costed apart from
  ZeRO 3.
"""

from dataclasses import dataclass
from typing import Any

from costmodels.errors import require
from costmodels.pipeline import virtual_stage_layers

FRAMEWORKS = ("megatron", "torchtitan", "deepspeed")


@dataclass(frozen=True, slots=True)
class Framework:
    """The rules of one training framework."""

    name: str
    zero_stages: tuple[int, ...]
    """ZeRO stages the framework implements"""
    grad_reduce_bytes: float
    """bytes per gradient element on the wire"""
    fused_elementwise: bool
    """element-wise kernels are fused without torch.compile"""
    tp_overlap: bool
    """the framework can overlap TP communication with GEMMs"""
    default_tp_overlap: bool
    """TP-communication overlap is on unless switched off"""
    selective_recomputes_ops: bool
    """selective recompute = op-level SAC (half the matmuls + element-wise ops), else the attention core"""
    sdpa_attention: bool
    """attention runs PyTorch SDPA's flash kernel (FlashAttention-2), not cuDNN/Transformer Engine fused attention"""
    fp8_saves_fp8_inputs: bool
    """FP8 GEMMs keep the FP8 copy of their input for backward (Transformer Engine)"""
    tp_overlap_summed_rs: bool = True
    """TP overlap also hides the backward reduce-scatters of input gradients summed over several GEMMs (q/k/v,
    gate/up): Transformer Engine userbuffers do; torch's micro-pipeline TP fuses a reduce-scatter only with a
    single producing matmul (torch/_inductor/fx_passes/micro_pipeline_tp.py _find_producer_matmul)"""
    cp_torch_ring: bool = False
    """context parallelism is torch's ring attention (torch.distributed.tensor.experimental.context_parallel with
    the default all-gather rotation): K/V repeated to every query head, gathered once per attention call, merged
    with eager fp32 element-wise ops; else Transformer Engine's step-by-step ring"""
    pp_gathers_once: bool = False
    """ZeRO 3 under pipeline parallelism gathers a stage's parameters once per step and keeps them, accumulates
    unsharded gradients in the reduce dtype and reduce-scatters them once, after the stage's last backward"""
    recompute_stops_early: bool = False
    """a fully recomputed block does not rerun its last matmul (w2) and the collective after it: backward never
    reads their outputs, and torch's non-reentrant checkpoint stops recomputing once every saved tensor is back
    (early stop, on by default in torch.utils.checkpoint; torch.compile's partitioner recomputes only what
    backward reads)"""
    separate_projections: bool = False
    """the block runs wq, wk, wv and the MLP's w1, w3 as separate matmuls (torchtitan's Llama, flops.block_matmuls),
    each reading its input again, rather than Megatron's fused QKV and gate/up GEMMs"""


_RULES = {
    "megatron": Framework("megatron", (0, 1, 3), 2.0, True, True, True, False, False, True),
    "torchtitan": Framework("torchtitan", (0, 3), 4.0, False, True, False, True, True, False,
                            tp_overlap_summed_rs=False, cp_torch_ring=True, pp_gathers_once=True,
                            separate_projections=True, recompute_stops_early=True),
    "deepspeed": Framework("deepspeed", (0, 1, 2, 3), 2.0, True, False, False, False, False, False),
}


LEGACY_RECOMPUTE = {"torchtitan": ("selective-layer",)}
"""recompute modes a framework ran in an older version only (torchtitan's layer-level SAC ended with v0.2.2): they
are estimated and exported to that version, but `plan train` searches them only when asked for nothing else"""


def framework(name: str) -> Framework:
    """The rules of framework `name`; a clear error naming the valid choices otherwise."""
    require(name in _RULES, f"unknown framework {name!r}; valid: {', '.join(FRAMEWORKS)}", field="framework")
    return _RULES[name]


@dataclass(frozen=True, slots=True)
class Combination:
    """The decisions of one candidate that a framework may be unable to run."""

    zero: int
    pp: int
    cp: int
    vpp: int
    tp: int
    etp: int
    ep: int = 1
    dp: int = 1
    experts: int = 0
    """routed experts (0 = dense model)"""
    recompute: str = "none"
    sequence_parallel: bool = False
    fp8: bool = False
    mtp_layers: int = 0
    stage_layers: tuple[int, ...] = ()
    """layers per pipeline stage (empty = not chosen yet)"""
    layers: int = 0
    """the model's decoder layers (0 = unknown)"""
    microbatches: int = 0
    """micro-batches per step (0 = unknown)"""


def _deepspeed(c: Combination) -> list[tuple[str, str]]:
    out = []
    if c.pp > 1 and c.zero >= 2:
        out.append(("zero", "DeepSpeed pipeline parallelism supports ZeRO stage 0 or 1 only"))
    if c.cp > 1:
        out.append(("cp", "DeepSpeed has no context parallelism (ring attention)"))
    if c.vpp > 1:
        out.append(("vpp", "DeepSpeed has no interleaved pipeline schedule"))
    if c.fp8:
        out.append(("dtype", "DeepSpeed has no FP8 training setting"))
    if c.sequence_parallel and c.tp > 1:
        out.append(("sequence_parallel", "DeepSpeed AutoTP has no sequence-parallel setting"))
    if c.recompute == "selective":
        out.append(("recompute", "DeepSpeed checkpoints whole layers; there is no selective recompute"))
    if c.recompute == "selective-layer":
        out.append(("recompute", "DeepSpeed checkpoints every layer or groups of layers "
                                 "(activation_checkpoint_interval); it cannot keep every other layer's activations"))
    if c.pp > 1 and (len(set(c.stage_layers)) > 1 or (c.layers and c.layers % c.pp)):
        out.append(("stage_layers", "DeepSpeed's PipelineModule places an equal number of layers per stage only"))
    if c.mtp_layers:
        out.append(("mtp_layers", "DeepSpeed has no multi-token-prediction module"))
    if c.experts:
        out += _autoep(c)
    return out


def _autoep(c: Combination) -> list[tuple[str, str]]:
    """DeepSpeed AutoEP (module_inject/auto_ep_*.py) limits."""
    out = []
    if c.etp != 1:
        out.append(("etp", "DeepSpeed AutoEP accepts expert_tensor_parallel_size=1 only"))
    if c.experts % c.ep:
        out.append(("ep", f"DeepSpeed AutoEP: autoep_size must divide the {c.experts} experts"))
    if c.tp > 1 and c.ep == 1:
        out.append(("ep", "DeepSpeed AutoEP with AutoTP (tp > 1) needs autoep_size > 1"))
    if c.tp > 1 and c.pp > 1:
        out.append(("pp", "DeepSpeed AutoEP with AutoTP (tp > 1) supports pp = 1 only"))
    if c.tp > 1 and c.zero > 2:
        out.append(("zero", "DeepSpeed AutoEP with AutoTP (tp > 1) supports ZeRO 0-2 only"))
    return out


def _torchtitan(c: Combination) -> list[tuple[str, str]]:
    out = []
    if c.experts and c.ep == 1 and c.etp != c.tp:
        out.append(("etp", f"torchtitan shards experts with the dense TP when ep = 1 (etp = tp = {c.tp}), "
                           f"not {c.etp}"))
    if c.experts and c.ep > 1 and c.etp != 1:
        out.append(("etp", f"torchtitan has no expert TP beside EP: with ep > 1 etp must be 1, not {c.etp}"))
    region = (c.dp if c.zero else 1) * c.cp * c.tp
    if c.experts and c.ep > 1 and region % c.ep:
        out.append(("ep", f"torchtitan forms expert groups inside dp_shard x cp x tp = {region} ranks "
                          f"(ZeRO {c.zero}); ep = {c.ep} does not divide it"))
    rounds = max(1, c.microbatches // c.pp)
    if c.vpp > 1 and c.microbatches and c.microbatches % rounds:
        out.append(("vpp", f"torch's interleaved 1F1B runs {c.microbatches} micro-batches in rounds of pp = {c.pp}: "
                           f"it needs a multiple of the {rounds} rounds"))
    if c.mtp_layers and (c.pp > 1 or c.cp > 1):
        out.append(("mtp_layers", f"torchtitan runs MTP without PP and CP only (pp={c.pp}, cp={c.cp})"))
    return out


def _megatron_layer_sac(c: Combination) -> list[tuple[str, str]]:
    """Megatron renders selective-layer as --recompute-method block --recompute-num-layers N, N layers of every
    (virtual) stage: each needs 2N layers for exactly every second layer to be recomputed."""
    out = []
    if c.mtp_layers:
        out.append(("recompute", "Megatron's block recompute skips the MTP layers (recompute_method 'block' is not "
                                 "supported for MTP)"))
    if c.stage_layers and min(c.stage_layers) >= c.vpp:  # (fewer layers than chunks: check_config says so)
        chunks: list[float] = [n for stage in virtual_stage_layers(c.stage_layers, c.vpp) for n in stage]
    elif c.layers:
        chunks = [c.layers / (c.pp * c.vpp)]
    else:
        return out
    if len(set(chunks)) > 1 or chunks[0] % 2:  # (a fractional average is never even)
        shown = [int(n) if n == int(n) else n for n in chunks]
        out.append(("recompute", f"Megatron recomputes the same number of layers (--recompute-num-layers) in every "
                                 f"(virtual) pipeline stage: selective-layer needs the same even number of layers "
                                 f"in each, got {shown}"))
    return out


def unsupported(name: str, **decisions: Any) -> list[tuple[str, str]]:
    """Reasons, as (field, reason), why framework `name` cannot run this combination (the fields of
    `Combination`); empty = runnable."""
    fw, c, out = framework(name), Combination(**decisions), []
    if c.zero not in fw.zero_stages:
        out.append(("zero", f"{name} has no ZeRO stage {c.zero}; valid: {', '.join(map(str, fw.zero_stages))}"))
    if name == "deepspeed":
        out += _deepspeed(c)
    if name == "torchtitan":
        out += _torchtitan(c)
    if name == "megatron" and c.recompute == "selective-layer":
        out += _megatron_layer_sac(c)
    if name == "megatron" and c.zero == 3 and c.pp > 1:
        out.append(("zero", "Megatron-FSDP (ZeRO 3) runs without pipeline parallelism"))
    return out
