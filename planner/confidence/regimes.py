"""Regimes: which part of the cost model an estimate leans on, described by a few coarse dimensions.

A regime is the tuple (target, arch, dtype, framework, scale, context, family):

  target     train | serve
  arch       dense | moe
  dtype      bf16 (bf16 and fp16: same tensor-core peak) | fp8 | fp4 (NVFP4)
  framework  train: the training framework and ZeRO stage, e.g. megatron-zero1, torchtitan-zero3 (FSDP)
             serve: the engine model (legacy = the profiled vLLM the serving constants are fitted to | modern)
  scale      train: bucket of the data-parallel group (dp·cp ranks that synchronise gradients/parameters)
             serve: bucket of the instance's tensor-parallel degree
  context    bucket of the sequence length (train) or prompt length (serve)
  family     the device profile whose fitted calibration the device uses (h200 and h800 use the h100-sxm
             fit, a100-40gb the a100-80gb fit; the map ships with the residuals); any other device is its
             own family

BACKOFF lists the dimensions in the order they are relaxed when a regime has too few calibration rows
(planner.confidence.support); the family is never relaxed: another device's errors say nothing about this one.
"""

from dataclasses import asdict, dataclass

SCALE_EDGES = (8, 64, 512)
"""train: dp·cp group size buckets <=8, <=64, <=512, >512"""
TP_EDGES = (2, 8)
"""serve: tensor-parallel buckets <=2, <=8, >8"""
CONTEXT_EDGES = (4096, 16384)
"""tokens: <=4k, <=16k, >16k"""
BACKOFF = ("context", "scale", "framework", "dtype", "arch")
"""dimensions relaxed one after another, least important first"""
DIMENSIONS = ("arch", "dtype", "framework", "scale", "context")


def bucket(value: int, edges: tuple[int, ...], name: str) -> str:
    """'dp<=64' style label of value among the bucket edges."""
    for edge in edges:
        if value <= edge:
            return f"{name}<={_short(edge)}"
    return f"{name}>{_short(edges[-1])}"


def _short(n: int) -> str:
    return f"{n // 1024}k" if n >= 1024 and n % 1024 == 0 else str(n)


@dataclass(frozen=True, kw_only=True, slots=True)
class Regime:
    """Where an estimate sits; `key` is its readable name."""

    target: str
    """train or serve"""
    arch: str
    """dense or moe"""
    dtype: str
    """bf16 or fp8"""
    framework: str
    """train: framework-zeroN (e.g. megatron-zero1, torchtitan-zero3); serve: the engine model"""
    scale: str
    """bucket label of the data-parallel group (train) or tensor-parallel degree (serve)"""
    context: str
    """bucket label of the sequence / prompt length"""
    family: str
    """the device profile whose calibration applies"""

    @property
    def key(self) -> str:
        return "/".join((self.target, self.arch, self.dtype, self.framework, self.scale, self.context, self.family))

    def to_json(self) -> dict:
        return asdict(self)


def dtype_class(dtype: str) -> str:
    """The regime dtype of a GEMM dtype: its own class for each tensor-core peak (bf16 and fp16 share one)."""
    return dtype if dtype in ("fp8", "fp4") else "bf16"


def framework_of(framework: str, zero: int) -> str:
    """'torchtitan-zero3': what the framework does with its ZeRO stage (costmodels/framework.py)."""
    return f"{framework}-zero{zero}"


def family_of(device_name: str, families: dict[str, str]) -> str:
    """The fitted profile a device's calibration comes from (itself when it shares no fit)."""
    return families.get(device_name, device_name)


def train_regime(*, moe: bool, dtype: str, framework: str, zero: int, dp_group: int, seq_len: int,
                 family: str) -> Regime:
    """The regime of one training estimate; dp_group = dp·cp ranks of the data-parallel group."""
    return Regime(target="train", arch="moe" if moe else "dense", dtype=dtype_class(dtype),
                  framework=framework_of(framework, zero), scale=bucket(dp_group, SCALE_EDGES, "dp"),
                  context=bucket(seq_len, CONTEXT_EDGES, "ctx"), family=family)


def serve_regime(*, moe: bool, dtype: str, engine: str, tp: int, prompt_len: int, family: str) -> Regime:
    """The regime of one serving estimate (an instance shape under an engine model)."""
    return Regime(target="serve", arch="moe" if moe else "dense", dtype=dtype_class(dtype), framework=engine,
                  scale=bucket(tp, TP_EDGES, "tp"), context=bucket(prompt_len, CONTEXT_EDGES, "ctx"),
                  family=family)
