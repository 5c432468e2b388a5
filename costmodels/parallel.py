"""ParallelConfig: one training strategy, and TrainingWorkload: what is being trained.

Vocabulary (STYLE.md): tp pp dp cp ep etp edp vpp are degrees. Attention/dense layers of a stage use
tp·cp·dp GPUs; MoE layers of the same stage use etp·ep·edp GPUs (MoE parallel folding, Liu et al. 2025,
arXiv 2504.14960); the two products are equal, so edp = tp·cp·dp / (etp·ep).
"""

from dataclasses import dataclass

from costmodels.errors import require
from costmodels.framework import framework

RECOMPUTE_MODES = ("none", "selective", "selective-layer", "full")
ZERO_STAGES = (0, 1, 2, 3)


@dataclass(frozen=True, kw_only=True, slots=True)
class TrainingWorkload:
    """One training step's data."""

    global_batch: int
    """sequences per optimizer step"""
    seq_len: int
    """tokens per sequence"""
    dtype: str = "bf16"
    """compute dtype of GEMMs: bf16 or fp8 (weights/grads/optimizer states stay mixed-precision)"""
    framework: str = "megatron"
    """the training framework (costmodels/framework.py): megatron, torchtitan or deepspeed"""
    compile: bool = False
    """torch.compile fuses element-wise kernels (torchtitan; Megatron and DeepSpeed fuse them anyway)"""
    async_tp: bool | None = None
    """overlap TP communication with GEMMs (torchtitan async TP, Megatron --tp-comm-overlap);
    None = the framework's default"""
    fp8_allgather: bool = False
    """FSDP all-gathers FP8 weights (1 byte per parameter) when dtype is fp8"""
    moe_skew: float = 1.0
    """routed tokens of the busiest expert-parallel rank over the mean (1 = force-balanced, dropless > 1)"""
    a2a_dedup: bool = False
    """MoE dispatch sends a token once per destination node (DeepEP-style de-duplication)"""
    fp8_dispatch: bool = False
    """MoE dispatch sends FP8 values with block scales (the combine stays bf16)"""
    a2a_overlap: bool = False
    """MoE dispatch/combine overlap the compute of another micro-batch (only the excess is exposed)"""
    flash_attention: bool = True
    """fused (flash) attention; False = the scores are materialised in HBM (e.g. Megatron-LM of 2021)"""

    def __post_init__(self) -> None:
        require(self.global_batch >= 1, f"must be >= 1, got {self.global_batch}", field="gbs")
        require(self.seq_len >= 1, f"must be >= 1, got {self.seq_len}", field="seq")
        require(self.dtype in ("bf16", "fp16", "fp8"), f"unknown dtype {self.dtype!r}; valid: bf16, fp16, fp8",
                field="dtype")
        framework(self.framework)
        require(self.moe_skew >= 1.0, f"must be >= 1, got {self.moe_skew}", field="moe_skew")

    @property
    def tp_overlap(self) -> bool:
        """Whether TP communication overlaps GEMMs (the option, else the framework's default)."""
        fw = framework(self.framework)
        return fw.tp_overlap and (fw.default_tp_overlap if self.async_tp is None else self.async_tp)

    @property
    def fused_elementwise(self) -> bool:
        """Whether element-wise kernels are fused (framework kernels or torch.compile)."""
        return self.compile or framework(self.framework).fused_elementwise

    @property
    def tokens(self) -> int:
        return self.global_batch * self.seq_len


@dataclass(frozen=True, kw_only=True, slots=True)
class ParallelConfig:
    """A complete training strategy (what `parplan estimate train` costs and `plan train` decides)."""

    tp: int = 1
    """tensor-parallel degree (attention and dense MLP)"""
    pp: int = 1
    """pipeline stages"""
    dp: int = 1
    """data-parallel degree of the attention/dense part"""
    cp: int = 1
    """context-parallel degree"""
    ep: int = 1
    """expert-parallel degree"""
    etp: int = 1
    """tensor-parallel degree inside one expert"""
    vpp: int = 1
    """virtual pipeline chunks per device (interleaved 1F1B when > 1)"""
    mbs: int = 1
    """micro-batch size in sequences"""
    zero: int = 1
    """ZeRO stage: 0 DDP, 1 optimizer states sharded, 2 + gradients, 3 + parameters (FSDP)"""
    recompute: str = "none"
    """activation recomputation: none, selective (attention core; torchtitan: op-level SAC), selective-layer
    (every 2nd layer fully), full (whole layer)"""
    sequence_parallel: bool = True
    """Megatron sequence parallelism (only meaningful when tp > 1)"""
    stage_layers: tuple[int, ...] | None = None
    """transformer layers per pipeline stage (len pp); None = as even as possible"""
    stage_pools: tuple[str, ...] | None = None
    """cluster pool of each stage on heterogeneous clusters (len pp); None = the first pool"""

    def __post_init__(self) -> None:
        for name in ("tp", "pp", "dp", "cp", "ep", "etp", "vpp", "mbs"):
            v = getattr(self, name)
            require(isinstance(v, int) and v >= 1, f"must be a positive integer, got {v!r}", field=name)
        require(self.zero in ZERO_STAGES, f"must be one of 0, 1, 2, 3, got {self.zero!r}", field="zero")
        require(self.recompute in RECOMPUTE_MODES,
                f"unknown mode {self.recompute!r}; valid: {', '.join(RECOMPUTE_MODES)}", field="recompute")
        dense_group = self.tp * self.cp * self.dp
        require(dense_group % (self.etp * self.ep) == 0,
                f"etp*ep ({self.etp}*{self.ep}) must divide tp*cp*dp ({dense_group}) (MoE parallel folding)",
                field="ep")
        if self.stage_layers is not None:
            require(len(self.stage_layers) == self.pp, f"needs {self.pp} entries (one per stage)",
                    field="stage_layers")
            require(all(n >= 0 for n in self.stage_layers), "layer counts must be >= 0", field="stage_layers")
        if self.stage_pools is not None:
            require(len(self.stage_pools) == self.pp, f"needs {self.pp} entries (one per stage)", field="stage_pools")

    @property
    def edp(self) -> int:
        """expert data-parallel degree"""
        return self.tp * self.cp * self.dp // (self.etp * self.ep)

    @property
    def num_devices(self) -> int:
        return self.tp * self.pp * self.dp * self.cp

    def microbatches(self, workload: TrainingWorkload) -> int:
        """Micro-batches per step per pipeline (global batch / (dp · mbs)); 0 when it does not divide."""
        per_replica, rem = divmod(workload.global_batch, self.dp * self.mbs)
        return per_replica if rem == 0 else 0
