"""Which fused-MoE shapes vLLM's and SGLang's Triton MoE kernels run with a tuned tile configuration.

Both engines' Triton fused-MoE kernel (BF16 experts; FP8 experts with 128x128 block scales: SGLang always, the
kind its measured table has, and vLLM 0.24.0 on Hopper at expert-parallel size 1, where its FP8 oracle puts TRITON
first for block FP8, FlashInfer's CUTLASS MoE at EP > 1) reads its tile configuration (BLOCK_SIZE_M/N/K,
GROUP_SIZE_M, warps, stages per token-count bucket) from a JSON file named by (E, N, device, dtype) that ships
with the engine: E the experts held by the GPU, N the expert width per GPU (the inner dimension of the down
projection's weight). Without such a file the kernel runs the engine's default configuration (vLLM 0.24.0
get_default_config: tiles by token count, for block FP8 BLOCK_SIZE_M 16 up to 64 tokens, else 64, with 128 x 128
N x K tiles; SGLang 0.5.14: 64 x 64 x 32 tiles for BF16, 64 x 128 x 128 for FP8 block scales). This is a fact about
the engine release, not a fitted number: TUNED lists the (E, N) of the files for the two devices with measured
tables, read from the file listing of the released wheels (benchmarks/moe_tuned_configs.py regenerates it; expert
dtype "fp8_block": vLLM's `dtype=fp8_w8a8,block_shape=[128,128]` files, SGLang's "fp8" are those too):
  vllm 0.24.0     vllm/model_executor/layers/fused_moe/configs/  (device H200 for every H200 variant)
  sglang 0.5.14   sglang/srt/layers/moe/moe_runner/triton_utils/configs/triton_*/  (any Triton version's file
                  is used when the installed version has none)
The default configuration's row block (BLOCK_SIZE_M: each expert's token rows are padded to whole blocks) is
taken from the releases' get_default_config (default_block_rows); a tuned file's own row blocks are read from the
file where costmodels/serving_moe_blocks.py lists it (SGLang's FP8 files: file_block_rows, the key nearest the
layer's tokens as SGLang's try_get_optimal_moe_config picks it), else fitted (moe_block_rows, moe_fp8_block_rows).
TensorRT-LLM and vLLM's FP8 experts (FlashInfer CUTLASS kernels: per-tensor scales, and block scales at EP > 1) pick
their tiles at run time: every shape counts as tuned.
"""

from costmodels.serving_moe_blocks import BLOCKS

RELEASES = {"vllm": "0.24.0", "sglang": "0.5.14"}
"""engine -> the release whose config files TUNED lists (aiconfigurator_tables.ENGINE_VERSIONS)"""

TUNED: dict[tuple[str, str, str], frozenset[tuple[int, int]]] = {
    # (engine, device profile, expert dtype): {(E, N)} with a tuned config file
    ("vllm", "h100-sxm", "bf16"): frozenset({
        (1, 3072), (8, 1792), (8, 2048), (8, 3584), (8, 4096), (8, 7168), (16, 1344), (16, 1792), (16, 2688),
        (32, 1792), (62, 256), (62, 512), (64, 320), (64, 640), (64, 1280), (64, 1536), (72, 384), (72, 768),
        (128, 192), (128, 384), (128, 512), (128, 928), (128, 1856), (128, 2880), (256, 512), (512, 128),
        (512, 256), (512, 512)}),
    ("vllm", "h200", "bf16"): frozenset({
        (8, 1792), (8, 2048), (8, 3584), (8, 4096), (8, 7168), (8, 14336), (16, 1024), (16, 2048), (64, 320),
        (64, 640), (64, 1280), (64, 2560), (128, 96), (128, 192), (128, 384), (128, 512), (128, 768), (128, 1024),
        (512, 64), (512, 128), (512, 256), (512, 512)}),
    ("vllm", "h100-sxm", "fp8_block"): frozenset({(256, 128), (256, 384), (512, 128), (512, 256)}),
    ("vllm", "h200", "fp8_block"): frozenset({
        (8, 2048), (16, 4096), (32, 2048), (128, 384), (128, 512), (128, 768), (256, 256), (256, 512), (384, 128)}),
    ("sglang", "h100-sxm", "bf16"): frozenset({
        (1, 3072), (8, 1792), (8, 2048), (8, 3584), (8, 4096), (8, 7168), (16, 1024), (16, 1344), (16, 1856),
        (16, 2048), (16, 2688), (20, 2048), (24, 1024), (32, 224), (32, 448), (32, 896), (32, 928), (32, 1792),
        (32, 1856), (64, 192), (64, 320), (64, 384), (64, 464), (64, 640), (64, 768), (64, 928), (64, 1280),
        (64, 1536), (64, 1856), (64, 2688), (65, 1536), (128, 192), (128, 232), (128, 352), (128, 384), (128, 464),
        (128, 512), (128, 704), (128, 768), (128, 928), (128, 1344), (128, 1856), (128, 2688), (144, 512),
        (256, 672), (256, 1344), (256, 2688), (512, 64), (512, 128), (512, 336), (512, 672), (512, 1344),
        (512, 2688)}),
    ("sglang", "h100-sxm", "fp8"): frozenset({
        (64, 1024), (128, 384), (256, 128), (256, 384), (257, 128), (272, 128), (512, 128), (512, 256)}),
    ("sglang", "h200", "bf16"): frozenset({
        (8, 1792), (8, 2048), (8, 3584), (8, 4096), (8, 7168), (8, 14336), (16, 1024), (20, 1536), (64, 320),
        (64, 640), (64, 1280), (64, 2560), (128, 192), (128, 384), (128, 704), (128, 768), (129, 384), (161, 192),
        (512, 64), (512, 128), (512, 256)}),
    ("sglang", "h200", "fp8"): frozenset({
        (64, 512), (80, 640), (128, 384), (128, 768), (160, 640), (256, 256), (257, 128), (257, 256), (257, 512),
        (264, 256), (384, 128), (385, 128), (513, 512)}),
}


VLLM_DEFAULT_ROWS = ((32, 16), (96, 32), (512, 64), (float("inf"), 128))
"""(most tokens, BLOCK_SIZE_M) of vLLM 0.24.0's default config for BF16 experts (get_default_config)"""
VLLM_BLOCK_FP8_DEFAULT_ROWS = ((64, 16), (float("inf"), 64))
"""(most tokens, BLOCK_SIZE_M) of vLLM 0.24.0's default config for FP8 experts with 128x128 block scales"""


def default_block_rows(engine: str, tokens: float, experts: float, dtype: str) -> float:
    """BLOCK_SIZE_M of the engine's default config for `tokens` tokens entering the layer over `experts` local
    experts: vLLM by token count (VLLM_DEFAULT_ROWS; "fp8_block": VLLM_BLOCK_FP8_DEFAULT_ROWS); SGLang 0.5.14 16
    while tokens <= experts, else 64 (BF16), always 64 (FP8 with block scales)."""
    if engine == "vllm":
        table = VLLM_BLOCK_FP8_DEFAULT_ROWS if dtype == "fp8_block" else VLLM_DEFAULT_ROWS
        return float(next(rows for largest, rows in table if tokens <= largest))
    return 64.0 if dtype.startswith("fp8") or tokens > experts else 16.0


class FileRows(float):
    """BLOCK_SIZE_M read from a tuned config file (serving_gemm: the kernel's tuned tiles, no default-config
    efficiency), as opposed to a plain float, the default config's BLOCK_SIZE_M."""


def config_block_rows(engine: str, device: str, tokens: float, experts: float, width: float, dtype: str,
                      block_scaled: bool = False) -> float:
    """The BLOCK_SIZE_M of the MoE kernel's config for `tokens` tokens entering the layer: on a tuned config
    (tuned_config) the file's (FileRows, file_block_rows), or 0 where the model does not list it (the fitted row
    block applies), else the default config's; `block_scaled`: FP8 experts of a 128x128 block-scaled checkpoint
    (expert_dtype)."""
    dtype = expert_dtype(dtype, block_scaled)
    if tuned_config(engine, device, experts, width, dtype):
        return file_block_rows(engine, device, tokens, experts, width, dtype)
    return default_block_rows(engine, tokens, experts, dtype)


def default_config(engine: str, device: str, experts: float, width: float, dtype: str,
                   block_scaled: bool = False) -> bool:
    """Whether the MoE kernel runs the engine's default tile config (no tuned file for the shape)."""
    return not tuned_config(engine, device, experts, width, expert_dtype(dtype, block_scaled))


def file_block_rows(engine: str, device: str, tokens: float, experts: float, width: float, dtype: str) -> float:
    """BLOCK_SIZE_M of the tuned file's config at the key nearest `tokens` (the first in file order on a tie, as
    min() over the keys in SGLang's try_get_optimal_moe_config and vLLM's), as FileRows; 0 where
    costmodels/serving_moe_blocks.py does not list the file. `dtype` as expert_dtype gives it."""
    if engine == "sglang" and dtype == "fp8_block":
        dtype = "fp8"
    pairs = BLOCKS.get((engine, device, dtype, round(experts), round(width)))
    if not pairs:
        return 0.0
    return FileRows(min(pairs, key=lambda pair: abs(pair[0] - tokens))[1])


def walks_all_slots(engine: str, dtype: str) -> bool:
    """Whether the engine's MoE layer passes every token-expert slot of the layer through each GPU (vLLM's and
    SGLang's Triton path under expert parallelism: an expert map turns other GPUs' experts into -1, whose blocks
    write zero rows, and the activation and top-k sum kernels run over all slots), rather than only the slots of
    its own experts (TensorRT-LLM, vLLM's FlashInfer CUTLASS FP8 experts). Measured: their time stops falling
    with EP at a floor that grows with the tokens, TensorRT-LLM's keeps falling."""
    return engine == "sglang" or (engine == "vllm" and dtype != "fp8")


def flashinfer_fallback_tile(engine: str, dtype: str) -> bool:
    """Whether the engine's measured FP8 experts run FlashInfer's CUTLASS fused MoE on its fallback tile (vLLM:
    the table's collector never runs FlashInfer's autotune, costmodels/serving_moe_flashinfer.py)."""
    return engine == "vllm" and dtype == "fp8"


def expert_dtype(dtype: str, block_scaled: bool) -> str:
    """The expert dtype TUNED is keyed by: "fp8_block" for FP8 experts with 128x128 block scales, "fp8" for
    per-tensor FP8, else "bf16" (SGLang keys its block-scaled files as "fp8": its only FP8 kind)."""
    if dtype == "fp8":
        return "fp8_block" if block_scaled else "fp8"
    return "fp8_block" if dtype == "fp8_block" else "bf16"


def tuned_config(engine: str, device: str, experts: float, width: float, dtype: str) -> bool:
    """Whether the engine's MoE kernel runs a tuned tile config for `experts` local experts of expert width
    `width` per GPU on the device profile (True for kernels without shipped configs: TensorRT-LLM, vLLM FP8 with
    per-tensor scales, and the engines and devices TUNED does not cover)."""
    key = (engine, device, expert_dtype(dtype, False))
    if engine == "sglang" and key[2] == "fp8_block":
        key = (engine, device, "fp8")
    if key not in TUNED:
        return True
    return (round(experts), round(width)) in TUNED[key]


TRTLLM_GEN_MOE = frozenset({("vllm", "b200"), ("sglang", "b200")})
"""(engine, device profile) whose MoE layer runs FlashInfer's TensorRT-LLM-gen fused MoE (KernelConstants.moe_trtllm_gen
1; read from the sources, not fitted). vLLM 0.24.0 on CUDA tries its MoE backends in the order FLASHINFER_TRTLLM,
FLASHINFER_CUTLASS, TRITON (fused_moe/oracle/unquantized.py _get_priority_backends; the FP8 oracle likewise for
per-tensor and 128x128 block scales), each taken where its experts class supports the device: the TRT-LLM-gen
experts (TrtLlmBf16Experts, TrtLlmFp8Experts) only on SM100, so Hopper runs Triton / FlashInfer CUTLASS and B200 the
TRT-LLM-gen kernel for BF16, FP8 and block FP8 at every expert-parallel size; every B200 row of vLLM's measured table
in the serving domain names it (kernel_source ..._flashinfer_trtllm_trtllm{bf16,fp8}experts...). That kernel routes
inside itself and computes only its own experts' slots, picking its tile at run time: vLLM's Triton tile configs for
B200 (E=..,N=..,device_name=NVIDIA_B200 files) are never read by it. SGLang 0.5.14 on B200 runs it for the model
families of SGLANG_SM100_TRTLLM_GEN only (its constants there are that kernel's; other families are refused)."""

SGLANG_SM100_TRTLLM_GEN = {"qwen3_moe": ("bf16", "fp8"), "deepseek_v3": ("fp8",)}
"""model family (ModelSpec.extra["hf_model_type"]) -> expert dtypes for which SGLang 0.5.14 on Blackwell (SM100) runs
FlashInfer's TensorRT-LLM-gen fused MoE (moe_runner_backend "flashinfer_trtllm"), read from its source, not fitted:
server_args.py ServerArgs._handle_model_specific_adjustments sets it, with --moe-runner-backend auto and no
all-to-all backend, for Qwen3MoeForCausalLM at no quantisation, fp8 or modelopt_fp4 and for DeepseekV3ForCausalLM at
fp8 (the quantisation it defaults DeepSeek to on SM100: "Quantization not specified, default to fp8 for DeepSeek on
sm100"); every other MoE architecture keeps auto, SGLang's Triton fused MoE. The measured B200 table agrees: its
Qwen3 and DeepSeek-V3 rows are sglang_flashinfer_trtllm_moe (DeepSeek-V3 at fp8_block only), its Mixtral rows
sglang_fused_moe_triton."""

MOE_REFUSED: dict[tuple[str, str], str] = {}
"""(engine, device profile) -> why its MoE kernels are not fitted there (serving refuses MoE models with that reason)"""


def family_refusal(engine: str, device: str, family: str, dtype: str) -> str | None:
    """Why the engine's fitted MoE constants on the device cannot time a model of this family (hf_model_type) at
    this expert dtype, or None: SGLang on B200 has only its TensorRT-LLM-gen kernel fitted
    (SGLANG_SM100_TRTLLM_GEN); its Triton fused MoE there would need SGLang's Blackwell tile configs, not modelled."""
    if (engine, device) != ("sglang", "b200"):
        return None
    dtypes = SGLANG_SM100_TRTLLM_GEN.get(family)
    if dtypes is None:
        return (f"SGLang 0.5.14 runs its Triton fused MoE for model family {family or '(unknown)'!r} on B200 "
                f"(server_args: FlashInfer's TensorRT-LLM-gen MoE only for {', '.join(SGLANG_SM100_TRTLLM_GEN)}), "
                "whose Blackwell tile configs are not modelled")
    if dtype not in dtypes:
        return (f"SGLang 0.5.14 serves model family {family!r} on B200 at {'/'.join(dtypes)} only (server_args "
                f"quantises it to fp8 on SM100); use --dtype {dtypes[0]}")
    return None


def moe_refusal(engine: str, device: str) -> str:
    """Why serving refuses MoE models (or FP8 experts) for the engine on the device profile: MOE_REFUSED's reason,
    else that its fitted MoE model misses the accuracy bar (benchmarks/serve_engine_fit.py MOE_BAR)."""
    return MOE_REFUSED.get((engine, device), "its fitted MoE kernel model misses the accuracy bar on the held-aside "
                           "measured rows (median <= 8 %, p90 <= 20 %; benchmarks/results/serve_engines*.md)")
