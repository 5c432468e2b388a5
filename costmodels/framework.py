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
  "selective"        attention core recomputed    op-level SAC: every other matmul attention core recomputed
  recompute                                       and the element-wise ops recomputed
  attention kernel   cuDNN / TE fused attention   PyTorch SDPA flash (FA2):      fused
                                                  sdpa_attention_factor x speed
Runnable combinations (the planner searches only these): DeepSpeed refuses pipeline parallelism with
ZeRO >= 2 and has no context parallelism or interleaved pipeline; torchtitan shards experts with
etp = 1 or etp = tp only; Megatron-FSDP runs without pipeline parallelism.
"""

from dataclasses import dataclass

from costmodels.errors import require

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


_RULES = {
    "megatron": Framework("megatron", (0, 1, 3), 2.0, True, True, True, False, False, True),
    "torchtitan": Framework("torchtitan", (0, 3), 4.0, False, True, False, True, True, False),
    "deepspeed": Framework("deepspeed", (0, 1, 2, 3), 2.0, True, False, False, False, False, False),
}


def framework(name: str) -> Framework:
    """The rules of framework `name`; a clear error naming the valid choices otherwise."""
    require(name in _RULES, f"unknown framework {name!r}; valid: {', '.join(FRAMEWORKS)}", field="framework")
    return _RULES[name]


def unsupported(name: str, *, zero: int, pp: int, cp: int, vpp: int, tp: int, etp: int) -> list[tuple[str, str]]:
    """Reasons, as (field, reason), why framework `name` cannot run this combination; empty = runnable."""
    fw, out = framework(name), []
    if zero not in fw.zero_stages:
        out.append(("zero", f"{name} has no ZeRO stage {zero}; valid: {', '.join(map(str, fw.zero_stages))}"))
    if name == "deepspeed":
        if pp > 1 and zero >= 2:
            out.append(("zero", "DeepSpeed pipeline parallelism supports ZeRO stage 0 or 1 only"))
        if cp > 1:
            out.append(("cp", "DeepSpeed has no context parallelism (ring attention)"))
        if vpp > 1:
            out.append(("vpp", "DeepSpeed has no interleaved pipeline schedule"))
    if name == "torchtitan" and etp not in (1, tp):
        out.append(("etp", f"torchtitan shards experts with etp = 1 or etp = tp ({tp}), not {etp}"))
    if name == "megatron" and zero == 3 and pp > 1:
        out.append(("zero", "Megatron-FSDP (ZeRO 3) runs without pipeline parallelism"))
    return out
