"""What a serving deployment's precision and routing ask of the cost model: the weight, GEMM and KV dtypes with the
routing skew (`Precision`), bytes per weight element by dtype, whether a device and its fitted engine constants can
time a model at a dtype (`check_precision`), and the largest skew expert parallelism allows (`max_routing_skew`)."""

from dataclasses import dataclass

from costmodels.errors import require
from costmodels.hardware import MEASURED_ENGINES, DeviceSpec
from costmodels.kv import BYTES_PER_ELEMENT
from costmodels.model import ModelSpec
from costmodels.serving_constants import EngineCalibration
from costmodels.serving_gemm import FP4_WEIGHT_BYTES
from costmodels.serving_kernels import engine_calibration
from costmodels.serving_moe_configs import family_refusal, moe_refusal


@dataclass(frozen=True, kw_only=True, slots=True)
class Precision:
    """Dtypes of one deployment and the routing skew of its MoE layers."""

    dtype: str = "bf16"
    """weights and GEMM inputs (bf16, fp16, fp8: FP8 GEMMs at the FP8 peak)"""
    kv_dtype: str = ""
    """KV cache ("" = dtype)"""
    skew: float = 1.0
    """MoE: token-expert slots on the busiest expert-parallel GPU / the mean (1 = balanced routing)"""
    quant_block: int = 0
    """FP8 checkpoint with block scales of this width (e.g. 128, DeepSeek-V3): its experts run the engine's
    block-scaled FP8 MoE kernel (serving_kernels.block_fp8_constants); 0: per-tensor scales"""

    def __post_init__(self) -> None:
        require(self.dtype in WEIGHT_BYTES, f"unknown dtype {self.dtype!r}; valid: {', '.join(WEIGHT_BYTES)}",
                field="dtype")
        require(self.kv_dtype in BYTES_PER_ELEMENT or self.kv_dtype == "", f"unknown kv_dtype {self.kv_dtype!r}; "
                f"valid: {', '.join(BYTES_PER_ELEMENT)}", field="kv-dtype")
        require(self.dtype != "fp4" or self.kv_dtype != "", "FP4 (NVFP4) weights need an explicit KV-cache dtype "
                f"(the KV cache has no FP4 format); valid: {', '.join(BYTES_PER_ELEMENT)}", field="kv-dtype")
        require(self.skew >= 1.0, f"must be >= 1 (busiest GPU / mean), got {self.skew}", field="moe-skew")
        require(self.quant_block >= 0, f"must be >= 0, got {self.quant_block}", field="quant-block")

    @property
    def block_scaled(self) -> bool:
        """FP8 weights with block scales (quant_block > 0)"""
        return self.dtype == "fp8" and self.quant_block > 0

    @property
    def kv(self) -> str:
        return self.kv_dtype or self.dtype


WEIGHT_BYTES = {**BYTES_PER_ELEMENT, "fp4": FP4_WEIGHT_BYTES}
"""bytes per weight element by weight dtype (fp4: NVFP4, E2M1 values and an FP8 scale per 16 elements)"""


def check_precision(model: ModelSpec, device: DeviceSpec, engine: str, dtype: str, quant_block: int = 0) -> None:
    """SpecError where the device or the fitted constants cannot time the model at `dtype`: FP4 weights need the
    device's FP4 peak and a dense model (no FP4 MoE kernel is fitted); MoE models need the engine's MoE constants
    fitted on the device (EngineCalibration.moe_fitted; FP8 experts moe_fp8_fitted, or with block scales, quant_block
    > 0, moe_blockfp8_fitted: the engine runs another kernel for them; the message says why they are not:
    serving_moe_configs.moe_refusal) and, where the engine picks its MoE kernel by model family (SGLang on B200), a
    family whose kernel those constants describe (serving_moe_configs.family_refusal)."""
    if dtype == "fp4":
        device.peak_flops_per_s("fp4")
        require(not model.is_moe, f"FP4 (NVFP4) experts have no fitted MoE kernel model; serve {model.name} at "
                "--dtype bf16 or fp8", field="dtype")
    if model.is_moe and engine in MEASURED_ENGINES:
        kind = str(model.extra.get("hf_model_type", ""))
        family = family_refusal(engine, device.name, kind, dtype)
        require(family is None, f"device {device.name!r}, engine {engine!r} cannot time {model.name}'s MoE layers: "
                f"{family}; use another engine on this device, an H100/H200 profile or engine 'legacy'/'modern'",
                field="model")
        cal = engine_calibration(device, engine)
        require(cal.moe_fitted, f"device {device.name!r} has no fitted MoE kernel constants for engine {engine!r} "
                f"({moe_refusal(engine, device.name)}: dense models only); use another engine with MoE constants on "
                "this device, an H100/H200 profile or engine 'legacy'/'modern'", field="device")
        if dtype == "fp8":
            _check_fp8_experts(model, device, cal, quant_block, family_refusal(engine, device.name, kind, "bf16"))


def _check_fp8_experts(model: ModelSpec, device: DeviceSpec, cal: EngineCalibration, quant_block: int,
                       no_bf16: str | None) -> None:
    """SpecError where the engine's FP8 expert kernel for the checkpoint's scales (block-scaled with quant_block >
    0, else per-tensor) misses the accuracy bar on the device; the message offers what is served instead (BF16
    unless the family has no BF16 kernel there, `no_bf16`; block scales where those are fitted)."""
    engine, why = cal.engine, moe_refusal(cal.engine, device.name)
    offers = ([] if no_bf16 else ["at --dtype bf16"]) + (
        ["with --quant-block 128 (a block-scaled checkpoint)"] if cal.moe_blockfp8_fitted and not quant_block else [])
    offer = ", ".join(offers)
    offer = f"{offer} or with another engine" if offer else "with another engine"
    if quant_block:
        require(cal.moe_blockfp8_fitted, f"device {device.name!r} has no fitted block-scaled FP8 MoE kernel "
                f"constants for engine {engine!r} ({why}); serve {model.name} {offer}", field="quant-block")
    else:
        require(cal.moe_fp8_fitted, f"device {device.name!r} has no fitted per-tensor FP8 MoE kernel constants for "
                f"engine {engine!r} ({why}); serve {model.name} {offer}", field="dtype")


def max_routing_skew(model: ModelSpec, ep: int) -> float:
    """The largest routing skew ep expert-parallel GPUs allow: the busiest receives at most min(top_k, experts / ep)
    of each token's top_k slots against a mean of top_k / ep, so ep·min(top_k, experts / ep) / top_k (1 at ep 1)."""
    moe = model.moe_dims
    return ep * min(moe.top_k, moe.experts / ep) / moe.top_k
