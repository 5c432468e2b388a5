"""The ops benchmarks/serve_engine_fit.py fits: for each, the measured points of its domain, the predictor that times
one point with a set of kernel constants, and the constants fitted on it (OPS, in fitting order); the whole-table
point sets reported beside the domain (WIDE); the shipped models' shapes that bound the domains (SHIPPED*).
A point is a table row's key followed by its measured latency (benchmarks/aiconfigurator_tables.py)."""

import pathlib
import sys

sys.path[:0] = [str(pathlib.Path(__file__).resolve().parents[1]), str(pathlib.Path(__file__).resolve().parent)]

from aic_moe_workload import GROUPED_ROUTING, RAW_KERNEL_SHAPES, measured_rows  # noqa: E402
from aic_quant_tables import ScaleTable, dynamic_scale_s, static_quant_points  # noqa: E402
from aiconfigurator_tables import Tables  # noqa: E402

import profiles  # noqa: E402
from costmodels import serving_moe_flashinfer  # noqa: E402
from costmodels.serving_allreduce import allreduce_s  # noqa: E402
from costmodels.serving_attention import (  # noqa: E402
    decode_attention_s,
    prefill_attention_s,
    query_tiles,
)
from costmodels.serving_attention_sm100 import longest_tile_flops, runs_decode_kernel  # noqa: E402
from costmodels.serving_gemm import (  # noqa: E402
    FP4_WEIGHT_BYTES,
    fp8_quant_s,
    gemm_fp4_s,
    grouped_gemm_rows_s,
    moe_input_quant_s,
)
from costmodels.serving_kernels import (  # noqa: E402
    block_fp8_kernels,
    block_quant_s,
    gemm_s,
    gen_activation_s,
    grouped_gemm_s,
)
from costmodels.serving_moe_configs import (  # noqa: E402
    config_block_rows,
    family_refusal,
    flashinfer_fallback_tile,
    walks_all_slots,
)

HEAD_DIM = 128
"""attention head width of every GQA/MHA model in profiles/models (MLA runs other kernels): the attention
constants are fitted on it; other widths behave differently per kernel and are reported separately (WIDE)"""

NO_FP4_KERNEL_RATES = dict(fp4_sm_bytes_per_s=0.0, fp4_quant_cta_bytes_per_s=0.0)
"""the rates of the FlashInfer NVFP4 kernels' terms (fp4_cutedsl_tiles, fp4_quant_tma) where an engine's rows are not
modelled with them: not fitted (TensorRT-LLM: its own CUTLASS GEMM; vLLM's quantise kernel is its own,
_C.scaled_fp4_quant, so only the TMA quantise rate)"""
GEMM_SM100 = {("vllm", "b200"): dict(fp8_sm100_tiles=1.0, fp8_k_overhead=0.0, fp8_oob_penalty=0.0,
                                     fp8_large_efficiency_max=0.0,
                                     bf16_sm100_tile=1.0, fp4_cutedsl_tiles=1.0, fp4_quant_warm_l2=1.0,
                                     fp4_quant_cta_bytes_per_s=0.0),
              ("trtllm", "b200"): dict(fp4_pair_tiles=1.0, fp8_k_overhead=0.0, fp8_oob_penalty=0.0, fp8_wave_weight=0.0,
                                       bf16_sm100_tile=1.0, **NO_FP4_KERNEL_RATES),
              ("sglang", "b200"): dict(bf16_sm100_tile=1.0, fp4_cutedsl_tiles=1.0, fp4_quant_tma=1.0)}
"""the Blackwell GEMM terms (costmodels/serving_gemm_sm100.py) per engine, read from its source, not fitted: vLLM
0.24.0's per-tensor FP8 GEMM on its SM100 cutlass_scaled_mm tiles (2-CTA MMA tiles and clusters by m bucket),
without the SM90 kernels' per-tile prologue/epilogue, out-of-bounds row cost and large-GEMM kernel (fitted on B200
with the Hopper tiles, k_0 and π ran to their lower bounds); TensorRT-LLM 1.3's NVFP4 GEMM on 256 x 256 2-CTA tiles
over the SM pairs, and its FP8 GEMM (cuBLASLt, picked per shape) without k_0, π and ω (all ran to their lower bounds on
B200; likewise on Hopper: FP8_GEMM_HOPPER); the FP8 input quantise kernel's L2
residency on the device's L2 (DeviceSpec.l2_bytes); every engine's BF16 GEMM (torch F.linear: cuBLASLt) on Blackwell's
128 x 256 wave tiles (serving_gemm_sm100.BF16_TILE: the tile the B200 tables fit best); SGLang 0.5.14's NVFP4 rows
(aiconfigurator collector/sglang/collect_gemm.py: flashinfer.fp4_quantize, backend "cuda", then mm_fp4 backend
"cute-dsl" outside autotune; FlashInfer 0.6.12, the version SGLang 0.5.14 pins) on the CuTe-DSL kernel's untuned
tactic rule (fp4_cutedsl_tiles) and the CUDA quantise kernel's TMA variant (fp4_quant_tma); vLLM 0.24.0's NVFP4 rows
on the same untuned CuTe-DSL kernel (kernel_source FlashInferCuteDslNvFp4LinearKernel) and its quantise kernel's
input read from L2 where the one layer its collector replays fits there (fp4_quant_warm_l2: aiconfigurator
collector/vllm/collect_gemm.py, outside_loop_count 1 for nvfp4, one input x)"""
ATTENTION_SM100 = {("trtllm", "b200"): dict(prefill_tail_tile=1.0, decode_mha_as_gqa=1.0, kv_warm_l2=1.0,
                                            decode_split_block_tokens=0.0, decode_gqa_min_block_factor=0.0,
                                            decode_mha_block_tokens=0.0, decode_fp8_head_tile=0.0),
                   ("vllm", "b200"): dict(prefill_tail_tile=1.0, prefill_one_token_decode=1.0, decode_mha_as_gqa=1.0,
                                          kv_warm_l2=1.0),
                   ("sglang", "b200"): dict(prefill_tail_tile=1.0, decode_mha_as_gqa=1.0, kv_warm_l2=1.0)}
"""the Blackwell attention terms (costmodels/serving_attention_sm100.py) per engine, read from its source, not fitted:
on B200 all three run TensorRT-LLM-gen FMHA (TensorRT-LLM 1.3.0rc20 natively; vLLM 0.24.0 through FlashInfer,
vllm/utils/flashinfer.py use_trtllm_attention: prefill with a BF16 KV cache on SM100; SGLang 0.5.14 trtllm_mha,
server_args get_default_attn_backend), whose last work unit ends the kernel (prefill_tail_tile); vLLM's FlashInfer
backend sends one-token requests to its decode kernel (prefill_one_token_decode: the table's isl-1 rows are
kernel_source vllm_flashinfer_trtllmdecode); TensorRT-LLM-gen decode packs a KV head's query heads whatever their
number, MHA included (decode_mha_as_gqa), and TensorRT-LLM on SM100 runs it for generation (attentionOp.h
mUseTllmGen = SM >= 100, except 120/121) instead of its Hopper XQA/MMHA pair: their selection rule, multi-block
split and 8-head GMMA padding (ENGINE_CONSTANTS) are off there; the tables time one layer's call repeatedly, so a
KV cache within B200's L2 (kv_warm_l2; DeviceSpec.l2_bytes) is read from it"""

FP8_GEMM_HOPPER = {**{("vllm", d): dict(fp8_k_overhead=0.0) for d in ("h100-sxm", "h200")},
                   **{("trtllm", d): dict(fp8_oob_penalty=0.0, fp8_wave_weight=0.0) for d in ("h100-sxm", "h200")}}
"""per-tensor FP8 GEMM terms an engine's Hopper kernel does not have, read from its source, not fitted (fitted, each ran
to its lower bound): vLLM 0.24.0's cutlass_scaled_mm SM90 kernels for m > 64 (scaled_mm_sm90_fp8_dispatch.cuh:
128 x 128 or 64 x 128 tiles, KernelTmaWarpSpecializedPingpongFP8FastAccum) run one consumer warp group's epilogue
under the other's main loop; the table's rows quantise per token (aiconfigurator's collector: Fp8Config
activation_scheme "dynamic"), so ScaledEpilogue (scaled_mm_epilogues_c3x.hpp) loads a per-token scale vector
(Sm90ColOrScalarBroadcast) and the weight's scalar, and still a tile costs no prologue/epilogue time beyond its MMAs
(k_0 = 0; SGLang's Pingpong kernels load a per-token and a per-channel scale vector in every
tile's epilogue, Sm90ColBroadcast/RowBroadcast, and fit k_0 > 0); TensorRT-LLM 1.3's FP8 linear layer calls
cublas_scaled_mm, whose cuBLASLt heuristic picks the kernel per shape, so a padded row costs no more than its tile's
share (π = 0; the fixed-bucket CUTLASS kernels of vLLM and SGLang pay π ≈ 0.5-1.4) and a partial last wave of a fixed
tile grid does not apply (ω = 0: its tables show no wave step, one row past a 256-row boundary costs 1.014x on H200 and
1.018x on B200 against 1.48x / 1.19x for vLLM's fixed-tile CUTLASS; fitted, ω ran to its 1e-3 bound on B200 and took
0.25-0.34 on Hopper, leaving the held-aside errors within 0.6 points of ω = 0's)"""

MOE_WARM_L2 = {(engine, "b200"): dict(moe_warm_l2=1.0) for engine in ("trtllm", "vllm", "sglang")}
"""engines whose MoE tables on a device time one layer's call repeated (aiconfigurator's collector, all three
engines: the same routed batch each repeat, no L2 flush), so the weights of the experts it hits stay in the L2 when
they fit (B200: 126 MiB, DeviceSpec.l2_bytes) and are read from there at the L2 rate fitted on the engine's decode
attention (moe_warm_l2; serving_gemm.moe_memory_s). Every B200 engine: one collector, one physics (for vLLM and
SGLang the held-aside rows moved by at most 0.7 points of median or p90, 2.2 of SGLang's BF16 median, all within
the bar); not on Hopper, where no warm-L2 rate is fitted (its attention tables show no L2 step) and a fitted one did
not move SGLang's FP8 rows (benchmarks/results/serve_hopper_bounds.md)"""

MOE_INPUT_QUANT = {("trtllm", d): dict(moe_input_quant=1.0) for d in ("h100-sxm", "h200", "b200")}
"""engines whose per-tensor FP8 MoE layer quantises its whole BF16 input (all T tokens x hidden, at any expert-parallel
size) in a kernel of its own before the fused op, priced by the engine's fitted static quantise kernel (fp8_quant_s,
fitted on its own table in 'fp8 quant'; serving_gemm.moe_input_quant_s), not by the MoE constants: TensorRT-LLM
1.3.0rc20's CutlassFusedMoE (moe_backend "cutlass", the B200 per-tensor FP8 rows' kernel_source moe_torch_flow_cutlass:
aiconfigurator collector/trtllm/collect_moe.py) runs quantize_input -> static_quantize_e4m3_per_tensor on its input,
then the fused op (tensorrt_llm/_torch/modules/fused_moe/fused_moe_cutlass.py), on Hopper as on B200 (the collector
sets moe_backend "cutlass" for per-tensor FP8 on both). Without the term, fitted into the local-slot traffic, it left
EP 1 over- and EP 8-16 under-predicted at many tokens (B200: Qwen3-235B's layer at 16384 tokens, EP 1 +30 %; Qwen3-30B's
at EP 16 -22 %). vLLM's FlashInfer CUTLASS experts, which serving times with these constants on Hopper
(serving_kernels.tuned_moe_kernels), quantise their input in a kernel of their own as well (vLLM 0.24.0
prepare_finalize/no_dp_ep.py _quantize_input: FlashInferExperts.expects_unquantized_inputs is false for per-tensor
FP8), so serving charges it there on the same constants (serving._routed_experts)"""

ELEM_BYTES = 2.0
"""bytes of a BF16 element: the all-reduce tables give message sizes in elements; prefill K and V are BF16"""

SCALE_TABLES: dict[tuple[str, str], ScaleTable] = {}
"""compute_scale tables loaded so far, by (device, engine) (aic_quant_tables.dynamic_scale_s)"""


def predict_gemm(ek, p, engine: str = "", device: str = ""):
    # an FP8 row of TensorRT-LLM's table also holds the amax pass of a dynamic input scale (its collector loads no
    # input_scale), taken from the measured compute_scale table: the fitted quantisation is the static kernel alone
    m, n, kk, dtype, _ = p
    if dtype == "fp4":  # a table replaying one layer on one input finds it in L2 where all fits (fp4_quant_warm_l2)
        footprint = 2.0 * m * kk + FP4_WEIGHT_BYTES * (m * kk + kk * n) + 2.0 * m * n
        return gemm_fp4_s(ek.device, ek.k, m, n, kk, warm_l2=footprint <= ek.device.l2_bytes)
    scale = dynamic_scale_s(SCALE_TABLES, device, engine, m, kk) if dtype == "fp8" else 0.0
    return gemm_s(ek, m, n, kk, dtype) + scale


def _quant(ek, p):
    m, kk, _ = p  # the static-scale quantise kernel alone (aic_quant_tables.static_quant_points)
    return fp8_quant_s(ek.device, ek.k, m, kk)


def _prefill(ek, p):
    # one-token sequences on an engine that runs its decode kernel for them (vLLM on B200: the table's isl-1 rows are
    # kernel_source vllm_flashinfer_trtllmdecode): decode attention over the one key (serving_attention_sm100)
    b, isl, heads, kv_heads, d, _ = p
    if runs_decode_kernel(ek, isl):
        return decode_attention_s(ek, b, kv_heads, heads, isl, b * isl * kv_heads * 2 * d * ELEM_BYTES,
                                  2.0 * b * isl * heads * 2 * d)
    return prefill_attention_s(ek, 2.0 * b * isl * (isl / 2) * heads * 2 * d, isl / 2, query_tiles(b, heads, isl),
                               b * isl * kv_heads * 2 * d * ELEM_BYTES, longest_tile_flops(isl, 0.0, 2 * d))


def _decode(ek, p):
    b, ctx, heads, kv_heads, d, kv, _ = p
    per_token = 2.0 * kv_heads * d * (1.0 if kv == "fp8" else 2.0)
    # the table repeats one layer's call: a KV cache that fits in L2 is read from there (kv_warm_l2; B200 only)
    return decode_attention_s(ek, b, kv_heads, heads, ctx, b * ctx * per_token, 2.0 * b * ctx * heads * 2 * d,
                              kv == "fp8", warm_l2=True)


def _allreduce(ek, p):
    n, size, _ = p
    return allreduce_s(ek, size * ELEM_BYTES, int(n))


def predict_moe(ek, p, engine: str = ""):
    # the table's tokens are all tokens entering the layer, each engine's rows timed on what its collector built
    # (aic_moe_workload: balanced routing, GPU 0's share of moe_tp·ep GPUs holding experts/ep experts each)
    if engine == "sglang" and not ek.k.moe_trtllm_gen:
        return _moe_sglang_collector(ek, p)
    return _moe_collector(ek, p, engine)


def predict_moe_block(ek, p, engine: str = ""):
    # FP8 experts of a 128x128 block-scaled checkpoint as serving times them (grouped_gemm_s block_scaled: the
    # engine's block-scaled kernel, for vLLM on Hopper its Triton kernel at EP 1 and TensorRT-LLM's at EP > 1, on
    # B200 FlashInfer's TensorRT-LLM-gen MoE at every EP with its layer input's group quantisation, block_quant_s,
    # and its separate DeepSeek-FP8 activation kernel, gen_activation_s; without one, its per-tensor FP8 path). vLLM's
    # Triton kernel scales each 128-deep k step's MMA result by its
    # token and weight block scales before adding it (fused_moe.py: accumulator += tl.dot(a, b) * a_scale *
    # b_scale, where the per-tensor kernel accumulates in the MMA and scales once): work proportional to the MMAs,
    # so the fitted efficiency carries it (0.46 of the FP8 curve on H100, about BF16's speed). Tested and not kept:
    # a fixed time per (row block, 128 columns, k step) iteration (fits to 0), a time per program launched over
    # the grid's worst-case padding E·(BLOCK_SIZE_M - 1) that exits at once (~0.65 µs each; p90 11.2 -> 9.8 %
    # H100, 10.5 -> 11.0 % H200), the tuned files' own BLOCK_SIZE_M per token count and a weight re-read share of
    # its own (p90 9.9-10.3 % H100, 9.8-10.1 % H200; H200's efficiency stays at 1: its tuned rows fit as
    # memory-bound); kept:
    # each output tile's prologue/epilogue, k_0 more k elements at the kernel's full rate (serving_gemm._grouped_s;
    # fitted 690 / 658, which takes the default config's efficiency off its bound 1 on H100);
    # SGLang's FP8 rows are these very rows, predicted as the "moe fp8" op predicts them; vLLM's and TensorRT-LLM's
    # on the rows their collector built (aic_moe_workload balanced routing, GPU 0's experts computing their own
    # slots; TensorRT-LLM's DeepSeek-V3 rows without the grouped top-k: its EP 2 runs half of EP 1, 104.5 vs 191.8 µs
    # at 1 token on H100, where grouped routing would put all 8 slots on GPU 0)
    # vLLM on B200 (TensorRT-LLM-gen), tested on its training rows and not kept: a fixed time for vLLM's scale
    # transpose at > 1 token (a1q_scale.t().contiguous() copies nothing at 1 token; fits 13 µs, an implausible copy,
    # and moves DeepSeek-V3's 1-token rows to -25..-32 %: the 1 -> 2 token step is Qwen3-30B's only), a latency per
    # 128-deep k step of each GEMM (fits to its lower bound), waves of output tiles ⌈tiles / 148⌉ · ⌈k / 128⌉ · t
    # added to the GEMM (held-aside p90 15.2 %, but moe_blockfp8_hbm_efficiency at its bound 1) or as its compute
    # time (t = 289 ns, p90 15.9 %, but moe_blockfp8_efficiency at its bound: the FLOP term superseded), σ fixed at
    # 1 (p90 19.0 %)
    if engine == "sglang":
        return predict_moe(ek, p, engine)
    tokens, h, inter, topk, experts, tp, ep, _, _ = p
    shapes = ((2 * inter / tp, h), (h, inter / tp))
    block = block_fp8_kernels(ek, int(ep))  # vLLM: its Triton kernel at EP 1, FlashInfer's CUTLASS (TRT-LLM's) above
    if engine in ("vllm", "trtllm") and block is not None:
        grouped = GROUPED_ROUTING.get(p[1:5]) if engine == "vllm" else None
        _, rows, _ = measured_rows(int(tokens), int(experts), int(topk), int(ep), False, grouped)
        # the engine's own Triton kernel on the tile config chosen for all tokens (tuned file or default)
        cfg = (config_block_rows(engine, ek.device.name, tokens, experts / ep, inter / tp, "fp8", True) if block[2]
               else 0.0)  # (a tuned file's rows stay FileRows: no default-config efficiency on them)
        if ek.k.moe_trtllm_gen:  # Blackwell's TensorRT-LLM-gen MoE (vLLM on B200): its own token tiles
            cfg = serving_moe_flashinfer.trtllm_gen_tile(tokens * topk, experts / ep)
        act = gen_activation_s(ek, tokens * topk, inter / tp, int(ep), True)  # vLLM on B200: its activation kernel
        warm = warm_weights(ek, rows, h, inter / tp, "fp8")  # a repeated layer's weights in L2 (moe_warm_l2)
        # its launched token-tile CTAs, as serving adds them (serving_kernels.grouped_gemm_s)
        launch = (serving_moe_flashinfer.trtllm_gen_launch_s(ek.k, tokens * topk, experts / ep)
                  if ek.k.moe_trtllm_gen else 0.0)
        return act + block_quant_s(ek, tokens, h) + sum(  # and its input's group quantisation (else 0)
            grouped_gemm_rows_s(block[0], block[1], rows, n, kk, "fp8", cfg, 0.0, warm) + launch for n, kk in shapes)
    local, slots = experts / ep, tokens * topk / ep
    return sum(grouped_gemm_s(ek, slots, local, n, kk, "fp8", True, 0.0, 0.0, True) for n, kk in shapes)


def _moe_sglang_collector(ek, p):
    # SGLang's table times the rows the collector builds (aic_moe_workload: balanced routing; for Mixtral under EP
    # GPU 0's tokens with their remote slots computed by its expert 0, else the engine's layer walking all slots),
    # on the config chosen for the tokens the kernel receives
    tokens, h, inter, topk, experts, tp, ep, dtype, _ = p
    m, rows, walked = measured_rows(int(tokens), int(experts), int(topk), int(ep), p[1:5] in RAW_KERNEL_SHAPES,
                                    GROUPED_ROUTING.get(p[1:5]))
    block = config_block_rows("sglang", ek.device.name, m, experts / ep, inter / tp, dtype)
    return (grouped_gemm_rows_s(ek.device, ek.k, rows, 2 * inter / tp, h, dtype, block, walked)
            + grouped_gemm_rows_s(ek.device, ek.k, rows, h, inter / tp, dtype, block, walked))


def warm_weights(ek, rows, h: float, width: float, dtype: str) -> bool:
    """Whether the weights a collector's MoE layer reads (its hit experts' gate/up and down GEMMs, `width` expert
    columns per GPU) fit in the device's L2, where a repeated call finds them (moe_warm_l2)."""
    hit = sum(count for r, count in rows if r > 0)
    return bool(ek.k.moe_warm_l2) and hit * 3.0 * h * width * (1.0 if dtype == "fp8" else 2.0) <= ek.device.l2_bytes


def _moe_collector(ek, p, engine: str):
    # vLLM's and TensorRT-LLM's tables time the engine's MoE layer on GPU 0 with the collector's balanced routing
    # (aic_moe_workload; vLLM's, and SGLang's TensorRT-LLM-gen rows on B200, with the grouped top-k where the model has
    # it, TensorRT-LLM's without, as in predict_moe_block): every token enters and GPU 0's experts compute their own
    # slots, not uniform-random hits (where slots ~ experts the balanced rows hit every expert); vLLM's Triton
    # kernel walks all slots, on the config chosen for all tokens, TensorRT-LLM's CUTLASS MoE only its own
    # (walks_all_slots); vLLM's FP8 experts
    # as collected: FlashInfer's CUTLASS MoE on its fallback tile (costmodels/serving_moe_flashinfer.py; the
    # collector never autotunes it, while serving times the tuned kernel with TensorRT-LLM's constants:
    # serving_kernels.grouped_gemm_s)
    tokens, h, inter, topk, experts, tp, ep, dtype, _ = p
    grouped = GROUPED_ROUTING.get(p[1:5]) if engine != "trtllm" else None
    _, rows, _ = measured_rows(int(tokens), int(experts), int(topk), int(ep), False, grouped)
    shapes = ((2 * inter / tp, h), (h, inter / tp))
    # on Blackwell's TensorRT-LLM-gen fused MoE (moe_trtllm_gen: vLLM on B200) neither: tuned tiles, own slots only
    gen = bool(ek.k.moe_trtllm_gen)
    if flashinfer_fallback_tile(engine, dtype) and not gen:
        return sum(serving_moe_flashinfer.grouped_gemm_s(ek.device, ek.k, rows, n, kk) for n, kk in shapes)
    block = (serving_moe_flashinfer.trtllm_gen_tile(tokens * topk, experts / ep) if gen
             else config_block_rows(engine, ek.device.name, tokens, experts / ep, inter / tp, dtype))
    walked = tokens * topk if walks_all_slots(engine, dtype) and not gen else 0.0
    # block-scaled FP8 experts on it (SGLang's FP8 rows): its activation kernel over the layer's routed slots
    act = gen_activation_s(ek, tokens * topk, inter / tp, int(ep)) if dtype == "fp8" else 0.0
    # per-tensor FP8 experts: the layer's input quantised by a kernel of its own where the engine does (MOE_INPUT_QUANT)
    act += moe_input_quant_s(ek.device, ek.k, tokens, h) if dtype == "fp8" else 0.0
    launch = serving_moe_flashinfer.trtllm_gen_launch_s(ek.k, tokens * topk, experts / ep) if gen else 0.0
    warm = warm_weights(ek, rows, h, inter / tp, dtype)
    return act + sum(grouped_gemm_rows_s(ek.device, ek.k, rows, n, kk, dtype, block, walked, warm) + launch
                     for n, kk in shapes)


def shipped_heads() -> set[tuple[int, int]]:
    """(query heads, KV heads) per GPU that the serving model issues for the GQA/MHA model profiles (head_dim
    128) at TP 1, 2, 4, 8 (KV heads replicated when fewer than the TP degree)."""
    out = set()
    for name in profiles.list_profiles()["models"]:
        m = profiles.load_model(name)
        if m.attention != "mla" and m.head_dim == HEAD_DIM:
            out |= {(m.heads // tp, max(1, m.kv_heads // tp)) for tp in (1, 2, 4, 8) if m.heads % tp == 0}
    return out


SHIPPED = shipped_heads()


def shipped_gemms() -> tuple[set[tuple[int, int]], set[tuple[int, int, int, int]]]:
    """(n, k) of the dense GEMMs (QKV, output, gate+up, down) of the model profiles at TP 1, 2, 4, 8, and
    (hidden, expert width, top-k, experts) of their routed-expert layers."""
    dense, moe = set(), set()
    for name in profiles.list_profiles()["models"]:
        m = profiles.load_model(name)
        for tp in (t for t in (1, 2, 4, 8) if m.heads % t == 0):
            qkv = (m.heads // tp + 2 * max(1, m.kv_heads // tp)) * m.head_dim
            dense |= {(qkv, m.hidden), (m.hidden, m.heads // tp * m.head_dim)}
            if m.ffn % tp == 0:
                dense |= {((2 if m.gated_mlp else 1) * m.ffn // tp, m.hidden), (m.hidden, m.ffn // tp)}
        if m.moe is not None:
            moe.add((m.hidden, m.moe.expert_ffn, m.moe.top_k, m.moe.experts))
    return dense, moe


SHIPPED_GEMMS, SHIPPED_MOE = shipped_gemms()


def shipped_moe_families() -> dict[tuple[int, int, int, int], str]:
    """(hidden, expert width, top-k, experts) of the MoE model profiles -> their family (extra["hf_model_type"])."""
    out = {}
    for name in profiles.list_profiles()["models"]:
        m = profiles.load_model(name)
        if m.moe is not None:
            out[m.hidden, m.moe.expert_ffn, m.moe.top_k, m.moe.experts] = str(m.extra.get("hf_model_type", ""))
    return out


SHIPPED_MOE_FAMILY = shipped_moe_families()


def _served_shape(t: Tables, p: tuple, dtype: str) -> bool:
    """Whether the shape of MoE point p is of a model family the engine's fitted MoE kernel serves on the device at
    the expert dtype (serving_moe_configs.family_refusal: SGLang on B200, its TensorRT-LLM-gen families only)."""
    return p[1:5] in SHIPPED_MOE and family_refusal(t.engine, t.device, SHIPPED_MOE_FAMILY[p[1:5]], dtype) is None


def _moe_table(t: Tables, dtype: str) -> list:
    return [p for p in t.moe if p[7] == dtype and p[0] <= 16384 and p[5] * p[6] <= 16]


def _moe_domain(t: Tables, dtype: str) -> list:
    return [p for p in _moe_table(t, dtype) if _served_shape(t, p, dtype)]


def _moe_block_table(t: Tables) -> list:
    return [p for p in t.moe_block if p[0] <= 16384 and p[5] * p[6] <= 16]


def _gemm_table(t: Tables, dtype: str) -> list:
    return [p for p in t.gemm if p[3] == dtype and min(p[1], p[2]) >= 512 and p[0] <= 16384]


def _gemm_domain(t: Tables, dtype: str) -> list:
    return [p for p in _gemm_table(t, dtype) if p[1:3] in SHIPPED_GEMMS]


OPS = {
    # op: (points of the domain, predictor, constants fitted on it); fitted in this order
    "gemm bf16": (lambda t: _gemm_domain(t, "bf16"), predict_gemm,
                  ("gemm_efficiency_max", "gemm_half_flops", "hbm_efficiency", "kernel_floor_s", "gemm_wave_weight",
                   "gemm_large_efficiency_max")),
    # the FP8 input quantise kernel on its own measured table (serving's k range), fixed in 'gemm fp8' (op_names)
    "fp8 quant": (lambda t: [p for p in static_quant_points(t.device, t.engine)
                             if p[0] <= 16384 and 512 <= p[1] <= max(k for _, k in SHIPPED_GEMMS)], _quant,
                  ("fp8_quant_s", "fp8_quant_row_s", "fp8_quant_bytes", "fp8_quant_l2_share",
                   "fp8_quant_row_bytes_per_s")),
    "gemm fp8": (lambda t: _gemm_domain(t, "fp8"), predict_gemm,
                 ("fp8_gemm_efficiency_max", "fp8_gemm_half_flops", "fp8_quant_s", "fp8_k_overhead", "fp8_wave_weight",
                  "fp8_cta_bytes_per_s", "fp8_quant_bytes", "fp8_quant_row_s", "fp8_hbm_efficiency",
                  "fp8_overlap_exponent", "fp8_large_efficiency_max", "fp8_oob_penalty", "fp8_gemm_row_s",
                  "fp8_gemm_row_chunk_s")),
    # NVFP4 GEMMs with their input quantisation (serving_gemm.gemm_fp4_s): only devices with an FP4 peak (DEVICE_OPS)
    "gemm fp4": (lambda t: _gemm_domain(t, "fp4"), predict_gemm,
                 ("fp4_gemm_efficiency_max", "fp4_gemm_half_flops", "fp4_wave_weight", "fp4_hbm_efficiency",
                  "fp4_quant_s", "fp4_quant_bytes", "fp4_sm_bytes_per_s", "fp4_quant_cta_bytes_per_s")),
    "prefill attention": (lambda t: [p for p in t.prefill if p[0] * p[1] >= 128 and p[4] == HEAD_DIM
                                     and (p[2], p[3]) in SHIPPED], _prefill,
                          ("attention_efficiency", "attention_floor_s", "attention_half_work", "attention_tile_s",
                           "prefill_kv_passes")),
    "decode attention": (lambda t: [p for p in t.decode if p[4] == HEAD_DIM and (p[2], p[3]) in SHIPPED], _decode,
                         ("kv_read_efficiency", "decode_attention_floor_s", "decode_seq_s", "decode_fp8_floor_s",
                          "decode_fp8_seq_s", "decode_mha_floor_s", "decode_mha_seq_s", "decode_mha_dequant_s",
                          "decode_mha_token_s",
                          "decode_free_units", "kv_dequant_s",
                          "decode_split_s", "decode_split_tokens", "decode_overlap_exponent", "kv_l2_bytes_per_s")),
    "all-reduce": (lambda t: [p for p in t.allreduce if 1024 <= p[1] <= 2**28], _allreduce,
                   ("allreduce_call_s", "allreduce_hop_s", "allreduce_efficiency", "allreduce_twoshot_call_s",
                    "allreduce_twoshot_efficiency", "allreduce_nccl_call_s", "allreduce_nccl_efficiency",
                    "allreduce_nccl_ring_efficiency",
                    "allreduce_custom_max_bytes", "allreduce_twoshot_hop_s",
                    "allreduce_symm_call_s", "allreduce_symm_efficiency", "allreduce_pass_s")),
    # the fused MoE kernels on the GEMM curves fitted above: their efficiency relative to them (BF16 and FP8 run
    # different kernels), block rows, fixed time and slot traffic; instances the planner builds have moe_tp·ep <= 16
    "moe bf16": (lambda t: _moe_domain(t, "bf16"), predict_moe,
                 ("moe_efficiency", "moe_floor_s", "moe_slot_bytes", "moe_hbm_efficiency", "moe_default_efficiency",
                  "moe_block_rows", "moe_block_weight_reads", "moe_overlap_exponent", "moe_gen_l2_bytes",
                  "moe_gen_cta_s")),
    "moe fp8": (lambda t: _moe_domain(t, "fp8"), predict_moe,
                ("moe_fp8_efficiency", "moe_fp8_floor_s", "moe_fp8_hbm_efficiency", "moe_fp8_default_efficiency",
                 "moe_fp8_slot_bytes", "moe_fp8_block_rows", "moe_fp8_tile_s", "moe_fp8_oob_penalty",
                 "moe_fp8_overlap_exponent", "moe_fp8_serial_bytes", "moe_gen_act_s", "moe_fp8_k_overhead")),
    # FP8 experts with 128x128 block scales (serving_kernels.block_fp8_constants): their own kernel's constants
    "moe fp8 block": (lambda t: [p for p in _moe_block_table(t) if _served_shape(t, p, "fp8")], predict_moe_block,
                      ("moe_blockfp8_efficiency", "moe_blockfp8_floor_s", "moe_blockfp8_hbm_efficiency",
                       "moe_blockfp8_slot_bytes", "moe_blockfp8_block_rows", "moe_blockfp8_expert_s",
                       "moe_blockfp8_serial_bytes",
                       "moe_blockfp8_default_efficiency", "moe_blockfp8_k_overhead", "moe_blockfp8_quant_s",
                       "moe_blockfp8_act_s")),
}



WIDE = {"prefill attention": lambda t: [p for p in t.prefill if p[0] * p[1] >= 128],
        "decode attention": lambda t: list(t.decode),
        "gemm bf16": lambda t: _gemm_table(t, "bf16"), "gemm fp8": lambda t: _gemm_table(t, "fp8"),
        "gemm fp4": lambda t: _gemm_table(t, "fp4"),
        "fp8 quant": lambda t: static_quant_points(t.device, t.engine),
        "moe bf16": lambda t: _moe_table(t, "bf16"), "moe fp8": lambda t: _moe_table(t, "fp8"),
        "moe fp8 block": _moe_block_table}
"""the whole table of an op whose fitted domain is narrower (reported, with the same constants)"""
