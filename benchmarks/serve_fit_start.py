"""Where the serving fit starts, how far each constant may go, and the kernel rules read from the engines' sources
(benchmarks/serve_engine_fit.py imports them): START and the per-engine / per-device starting points, the constants
fixed by source (ENGINE_CONSTANTS, ENGINE_DEVICE_CONSTANTS, from serve_engine_ops' selector tables), BOUNDS and GRID."""

import pathlib
import sys

sys.path[:0] = [str(pathlib.Path(__file__).resolve().parents[1]), str(pathlib.Path(__file__).resolve().parent)]

from serve_engine_ops import ATTENTION_SM100, FP8_GEMM_HOPPER, GEMM_SM100, MOE_INPUT_QUANT, MOE_WARM_L2  # noqa: E402

from costmodels.serving_moe_configs import TRTLLM_GEN_MOE  # noqa: E402

START = dict(gemm_efficiency_max=0.8, gemm_half_flops=1e9, fp8_gemm_efficiency_max=0.6, fp8_gemm_half_flops=1e9,
             fp8_quant_s=5e-6,
             hbm_efficiency=0.8, kernel_floor_s=5e-6, attention_efficiency=0.5, attention_floor_s=5e-6,
             attention_half_work=512.0, attention_tile_s=1e-8, prefill_kv_passes=1.0,
             kv_read_efficiency=0.8, decode_attention_floor_s=5e-6,
             decode_seq_s=1e-8, decode_fp8_floor_s=5e-6, decode_fp8_seq_s=1e-8, decode_mha_seq_s=1e-8,
             decode_mha_floor_s=9e-6, decode_mha_dequant_s=1e-13,
             decode_free_units=100.0, kv_dequant_s=1e-13, decode_split_s=5e-6, decode_split_tokens=500.0,
             decode_overlap_exponent=2.0, decode_mha_token_s=3e-8, kv_l2_bytes_per_s=0.0, moe_warm_l2=0.0,
             moe_input_quant=0.0,
             allreduce_call_s=3e-6, allreduce_hop_s=1e-7, allreduce_efficiency=0.6,
             allreduce_custom_max_bytes=2.0**24, allreduce_twoshot_call_s=6e-6, allreduce_twoshot_efficiency=0.6,
             allreduce_nccl_call_s=2e-5, allreduce_nccl_efficiency=0.6, allreduce_nccl_ring_efficiency=0.6,
             allreduce_vllm_sm100=0.0,
             allreduce_twoshot_hop_s=0.0, allreduce_symm_call_s=0.0, allreduce_symm_efficiency=1.0,
             allreduce_sglang_v2=0.0, allreduce_pass_s=0.0, allreduce_trtllm_sm100=0.0, allreduce_trtllm_sm90=0.0,
             allreduce_vllm_sm90=0.0,
             moe_efficiency=1.0, moe_fp8_efficiency=1.0, moe_block_rows=64.0, moe_floor_s=1e-5, moe_slot_bytes=1.0,
             moe_hbm_efficiency=0.8, moe_fp8_block_rows=64.0, moe_fp8_floor_s=1e-5, moe_fp8_hbm_efficiency=0.8,
             moe_default_efficiency=1.0, moe_fp8_default_efficiency=1.0, moe_fp8_slot_bytes=1.0,
             moe_overlap_exponent=0.0, moe_fp8_overlap_exponent=0.0,
             moe_fp8_tile_s=0.0, moe_fp8_oob_penalty=0.0, moe_block_weight_reads=0.0,
             moe_blockfp8_efficiency=0.0, moe_blockfp8_block_rows=64.0, moe_blockfp8_floor_s=1e-5,
             moe_blockfp8_hbm_efficiency=0.8, moe_blockfp8_slot_bytes=1.0, moe_blockfp8_default_efficiency=1.0,
             moe_fp8_expert_s=0.0, moe_blockfp8_k_overhead=0.0, moe_fp8_k_overhead=0.0, moe_gen_l2_bytes=0.0,
             moe_gen_act_s=0.0, moe_gen_cta_s=0.0,
             moe_blockfp8_quant_s=0.0, moe_blockfp8_act_s=0.0,
             moe_blockfp8_expert_s=0.0, moe_fp8_serial_bytes=0.0, moe_blockfp8_serial_bytes=0.0, moe_trtllm_gen=0.0,
             fp8_k_overhead=100.0, fp8_wave_weight=0.5, fp8_oob_penalty=1.0, fp8_cta_bytes_per_s=1e11,
             fp8_quant_bytes=3.0,
             fp8_quant_row_s=1e-10, fp8_hbm_efficiency=0.8, fp8_overlap_exponent=3.0, fp8_large_efficiency_max=0.7,
             gemm_sms=132.0, gemm_wave_weight=0.2, gemm_large_efficiency_max=0.75, fp8_gemm_row_s=0.0,
             fp8_gemm_row_chunk_s=0.0, fp8_quant_l2_share=0.7, fp8_quant_row_bytes_per_s=0.0)
"""starting point of every fit (and the value of a constant no table constrains)"""
ENGINE_START = {"vllm": dict(fp8_gemm_row_s=1e-9, fp8_quant_row_bytes_per_s=3e10, moe_fp8_tile_s=1e-6,
                             moe_fp8_oob_penalty=1.0, moe_block_weight_reads=0.5,
                             moe_efficiency=0.6, moe_default_efficiency=0.6, moe_fp8_hbm_efficiency=0.5,
                             moe_fp8_slot_bytes=3.0, moe_blockfp8_efficiency=0.5),
                "sglang": dict(moe_overlap_exponent=2.0, moe_fp8_overlap_exponent=2.0, moe_fp8_serial_bytes=1.0),
                "trtllm": dict(fp8_gemm_row_s=1e-9, moe_blockfp8_efficiency=0.7, moe_blockfp8_expert_s=1e-7,
                               moe_blockfp8_serial_bytes=3.0)}
"""an engine's own starting point: for constants whose START is 0 (that term off) the engines named here are the
only ones they are fitted for (vLLM's FP8 experts on FlashInfer's fallback tile; its Triton kernel's weight
re-reads per row block; SGLang's Triton MoE kernels' imperfect overlap of weight streaming and MMAs,
serving_gemm.overlap_s, and the slot traffic of its FP8 input quantisation kernels, serving_gemm.serial_s, as that
of TensorRT-LLM's block-scaled MoE with its scheduler's per-expert walk; the block-scaled FP8 MoE kernels fitted
to their own fp8_block rows: TensorRT-LLM's CUTLASS MoE and vLLM's Triton kernel (its EP 1 rows; at EP > 1 vLLM
runs TensorRT-LLM's kernel), SGLang's FP8
constants are block-scaled already); for the others the fit also
starts from START's and keeps the lower cost (vLLM's MoE
least squares has local minima: from START's the H100 BF16 fit can stall at the efficiency bound 1, the H200
FP8 fit in the corner hbm 1 / slot bytes 0.01)"""
START.update(fp4_gemm_efficiency_max=0.6, fp4_gemm_half_flops=1e9, fp4_wave_weight=0.2, fp4_hbm_efficiency=0.8,
             fp4_quant_s=3e-6, fp4_quant_bytes=2.5625,  # 'gemm fp4' (devices with NVFP4: B200); 0 elsewhere
             fp4_sm_bytes_per_s=1e11, fp4_quant_cta_bytes_per_s=3e10)  # SGLang's NVFP4 kernels (GEMM_SM100)
START.update(fp8_sm100_tiles=0.0, fp4_pair_tiles=0.0, bf16_sm100_tile=0.0)  # Blackwell tile selectors (GEMM_SM100)
START.update(fp4_cutedsl_tiles=0.0, fp4_quant_tma=0.0, fp4_quant_warm_l2=0.0)  # NVFP4 kernel selectors (GEMM_SM100)
ENGINE_CONSTANTS = {"trtllm": dict(decode_split_block_tokens=128.0, decode_gqa_min_block_factor=4.0,
                                   decode_mha_block_tokens=256.0, decode_fp8_head_tile=8.0,
                                   moe_blockfp8_slot_bytes=1.0, fp8_quant_row_s=0.0),
                    "vllm": dict(fp8_quant_row_s=0.0)}
"""kernel constants read from an engine's source, not fitted: TensorRT-LLM's XQA decode kernel splits a
sequence's KV history into blocks of >= 128 tokens (its multi-block heuristic, kMinHistoryTokensPerBlock), and
runs only when 4 x its thread blocks reach the SM count (kEnableMinBlockFactor; else MMHA, BF16 KV only); MMHA's
512-thread blocks cover 256 history tokens per pass of their KV loop (16 threads per 128-wide BF16 head, 8 unrolled);
its FP8-KV XQA (Hopper GMMA, swapped AB) pads a KV head's query heads to a multiple of 8 (ctaNbQHeads); its
block-scaled DeepGEMM MoE GEMM reads each slot's input row and writes its output row once (the slot traffic of the
permute/quantise/activation/finalize kernels around it is the fitted moe_blockfp8_serial_bytes: fitted under the GEMM
as well, that share ran to its lower bound 0.01); TensorRT-LLM's and vLLM's static-scale FP8 quantise kernels compute
no per-row scale (fp8_quant_row_s 0; fitted, it ran to its lower bound)"""
ENGINE_DEVICE_CONSTANTS = {("vllm", "b200"): dict(allreduce_vllm_sm100=1.0),
                           ("trtllm", "b200"): dict(allreduce_trtllm_sm100=1.0),
                           **{("sglang", d): dict(allreduce_sglang_v2=1.0) for d in ("h100-sxm", "h200")},
                           **{("trtllm", d): dict(allreduce_trtllm_sm90=1.0) for d in ("h100-sxm", "h200")},
                           **{("vllm", d): dict(allreduce_vllm_sm90=1.0) for d in ("h100-sxm", "h200")}}
for _dev in ("h100-sxm", "h200"):  # SGLang's block-FP8 Triton MoE: its default config is its tuned files' tile
    ENGINE_DEVICE_CONSTANTS[("sglang", _dev)]["moe_fp8_default_efficiency"] = 1.0
for _key in TRTLLM_GEN_MOE:  # Blackwell's TensorRT-LLM-gen fused MoE: never FlashInfer CUTLASS's fallback tile
    ENGINE_DEVICE_CONSTANTS[_key] = {**ENGINE_DEVICE_CONSTANTS.get(_key, {}), "moe_trtllm_gen": 1.0,
                                     "moe_fp8_tile_s": 0.0, "moe_fp8_oob_penalty": 0.0,
                                     # one slot traffic, the fused GEMMs' own (moe_fp8_slot_bytes): its separate
                                     # activation kernel is trtllm_gen_activation_s; the L2 term sets the re-read
                                     # share (moe_gen_l2_bytes); no per-slot time (see trtllm_gen_launch_s)
                                     "moe_fp8_serial_bytes": 0.0, "moe_block_weight_reads": 0.0}
for _key, _rule in ATTENTION_SM100.items():  # Blackwell's attention kernels (serve_engine_ops.ATTENTION_SM100)
    ENGINE_DEVICE_CONSTANTS[_key] = {**ENGINE_DEVICE_CONSTANTS.get(_key, {}), **_rule}
for _key, _rule in GEMM_SM100.items():  # Blackwell's GEMM tiles (serve_engine_ops.GEMM_SM100)
    ENGINE_DEVICE_CONSTANTS[_key] = {**ENGINE_DEVICE_CONSTANTS.get(_key, {}), **_rule}
for _key, _rule in FP8_GEMM_HOPPER.items():  # FP8 GEMM terms a Hopper kernel lacks (serve_engine_ops.FP8_GEMM_HOPPER)
    ENGINE_DEVICE_CONSTANTS[_key] = {**ENGINE_DEVICE_CONSTANTS.get(_key, {}), **_rule}
for _key, _rule in MOE_WARM_L2.items():  # a repeated MoE layer's weights read from L2 (serve_engine_ops.MOE_WARM_L2)
    ENGINE_DEVICE_CONSTANTS[_key] = {**ENGINE_DEVICE_CONSTANTS.get(_key, {}), **_rule}
for _key, _rule in MOE_INPUT_QUANT.items():  # its per-tensor FP8 MoE input's own quantise kernel (MOE_INPUT_QUANT)
    ENGINE_DEVICE_CONSTANTS[_key] = {**ENGINE_DEVICE_CONSTANTS.get(_key, {}), **_rule}
"""rules of an engine on a device read from its source, not fitted: vLLM 0.24.0 on Blackwell (SM100) picks its
all-reduce by size tables (all_reduce_utils.py CUSTOM_ALL_REDUCE_MAX_SIZES / SYMM_MEM_ALL_REDUCE_MAX_SIZES["10.0"];
costmodels/serving_allreduce.vllm_allreduce_s), on Hopper (SM90) by their "9.0" rows, SGLang 0.5.14 on Hopper by its
CustomAllReduceV2 tables (serving_allreduce.sglang_v2_allreduce_s), TensorRT-LLM 1.3.0rc20 on Blackwell and Hopper by
its 64 MiB workspace limit and SM100 / SM90 lookup table (serving_allreduce.trtllm_allreduce_s); vLLM 0.24.0's MoE on
Blackwell runs FlashInfer's TensorRT-LLM-gen fused MoE (serving_moe_configs.TRTLLM_GEN_MOE: moe_trtllm_gen 1, the
fallback-tile terms off);
SGLang 0.5.14's Triton MoE with 128x128 block-scaled FP8 experts on Hopper runs its default config
(get_default_config: BLOCK_SIZE_M 64, N 128, K 128, 4 warps, 3 stages) at the tuned configs' efficiency
(moe_fp8_default_efficiency 1): 60 of the 69 configs of its shipped H100/H200 block-FP8 files at 2048-4096 tokens
pick that same 64 x 128 x 128 4-warp tile, and the smaller row blocks they pick at fewer tokens are priced as rows
(serving_moe_configs.file_block_rows); fitted, it ran to its bound 1 (H100 0.998 with the tile term k_0)"""
ENGINE_DEVICE_START = {("vllm", "b200"): dict(allreduce_twoshot_hop_s=1e-6, allreduce_symm_call_s=1e-5,
                                               allreduce_symm_efficiency=0.6, allreduce_pass_s=1.5e-6),
                       **{("vllm", d): dict(allreduce_symm_call_s=1e-5, allreduce_symm_efficiency=0.6)
                          for d in ("h100-sxm", "h200")},
                       **{("sglang", d): dict(allreduce_twoshot_hop_s=3e-7) for d in ("h100-sxm", "h200")}}
"""starting values of the constants only such a rule fits (0, unused, elsewhere)"""
for _dev in ("h100-sxm", "h200"):  # vLLM's block-scaled Triton MoE on Hopper: its per-tile prologue/epilogue k_0,
    # and its FP8 GEMM rows' per-token quantise program's time per 2048-element chunk (serving_gemm.token_quant_s)
    ENGINE_DEVICE_START[("vllm", _dev)] = {**ENGINE_DEVICE_START.get(("vllm", _dev), {}),
                                           "moe_blockfp8_k_overhead": 256.0, "fp8_gemm_row_chunk_s": 1e-10}
for _dev in ("h100-sxm", "h200"):  # SGLang's Triton fused MoE on Hopper, whose FP8 constants are its 128x128
    # block-scaled kernel's: the same per-tile prologue/epilogue k_0 as vLLM's (fused_moe_triton_kernels.py
    # fused_moe_kernel: the block scales loaded and applied per 128-deep k step, accumulator += tl.dot(a, b) *
    # a_scale * b_scale; serving_gemm._grouped_s), fitted in 'moe fp8' (stored as moe_blockfp8_k_overhead)
    ENGINE_DEVICE_START[("sglang", _dev)]["moe_fp8_k_overhead"] = 256.0
# the same per-token quantise program on B200 (its n 32 rows are flat to k 2048 and step up at 2560, as on Hopper)
ENGINE_DEVICE_START[("vllm", "b200")]["fp8_gemm_row_chunk_s"] = 1e-10
for _key in TRTLLM_GEN_MOE:  # TensorRT-LLM-gen MoE (vLLM and SGLang alike): an expert's weights re-read per further
    # token tile miss L2 by the expert's weight bytes (moe_gen_l2_bytes), and its grouped GEMMs pay a time per launched
    # token-tile CTA (serving_moe_flashinfer.trtllm_gen_launch_s), fitted in 'moe bf16' and kept for FP8 (the same
    # launcher's grid rule). Still per engine: the compute/memory overlap exponents (ENGINE_START: SGLang's on every
    # device); tested both ways on B200 and not kept: fitted for vLLM (training BF16 3.7/12.6 -> 3.5/12.1 %, FP8
    # 6.5/17.8 -> 5.4/17.6 %) its held-aside FP8 p90 goes 18.2 -> 20.5 %, off for SGLang its FP8 7.5/17.9 ->
    # 7.5/20.2 % (held-aside p90 22.7 %): over the bar either way
    ENGINE_DEVICE_START[_key] = {**ENGINE_DEVICE_START.get(_key, {}), "moe_gen_l2_bytes": 64.0 * 2**20,
                                 "moe_gen_cta_s": 5e-8}
    if _key[0] == "vllm":
        ENGINE_DEVICE_START[_key].update(moe_blockfp8_quant_s=1e-11,  # block FP8: its input's group quantisation
                                         moe_blockfp8_act_s=4e-12)  # and its activation kernel
# SGLang's FP8 experts (block-scaled) on TensorRT-LLM-gen: its activation kernel's time per routed slot and width
# element (serving_moe_flashinfer.trtllm_gen_activation_s), fitted in 'moe fp8'
ENGINE_DEVICE_START[("sglang", "b200")]["moe_gen_act_s"] = 4e-12
for _key, _rule in ATTENTION_SM100.items():  # the warm-L2 KV read rate: fitted where the rule reads warm L2
    if _rule.get("kv_warm_l2"):
        ENGINE_DEVICE_START[_key] = {**ENGINE_DEVICE_START.get(_key, {}), "kv_l2_bytes_per_s": 1e13}
BOUNDS = {"gemm_efficiency_max": (0.05, 1.0), "fp8_gemm_efficiency_max": (0.05, 1.0), "hbm_efficiency": (0.05, 1.0),
          "attention_efficiency": (0.02, 1.0), "kv_read_efficiency": (0.05, 1.0),
          "allreduce_efficiency": (0.02, 1.0), "moe_efficiency": (0.05, 1.0), "kv_dequant_s": (1e-16, 1e-9),
          "decode_mha_dequant_s": (1e-16, 1e-9),
          "decode_overlap_exponent": (1.0, 8.0), "decode_free_units": (1.0, 1e4), "decode_split_tokens": (1.0, 1e6),
          "moe_fp8_efficiency": (0.05, 1.0), "fp8_wave_weight": (1e-3, 1.0), "fp8_k_overhead": (1.0, 1e5),
          "fp8_oob_penalty": (1e-3, 20.0),
          "fp8_quant_bytes": (0.1, 100.0), "fp8_quant_row_s": (1e-13, 1e-6), "fp8_cta_bytes_per_s": (1e9, 1e13),
          "fp8_gemm_row_s": (1e-13, 1e-6), "fp8_gemm_row_chunk_s": (1e-14, 1e-7),
          "fp8_quant_l2_share": (0.05, 1.0), "fp8_quant_row_bytes_per_s": (1e9, 1e13),
          "fp8_hbm_efficiency": (0.05, 1.0), "fp8_large_efficiency_max": (0.05, 1.0),
          "gemm_wave_weight": (1e-3, 1.0), "gemm_large_efficiency_max": (0.05, 1.0),
          "fp8_overlap_exponent": (1.0, 16.0),
          "moe_slot_bytes": (0.01, 100.0), "moe_hbm_efficiency": (0.02, 1.0), "moe_fp8_hbm_efficiency": (0.02, 1.0),
          "moe_default_efficiency": (0.05, 1.0), "moe_fp8_default_efficiency": (0.05, 1.0),
          "moe_overlap_exponent": (1.0, 16.0), "moe_fp8_overlap_exponent": (1.0, 16.0),
          "moe_fp8_slot_bytes": (0.01, 100.0), "moe_fp8_tile_s": (1e-8, 1e-4), "moe_fp8_oob_penalty": (1e-3, 10.0),
          "moe_block_weight_reads": (1e-3, 1.0), "moe_blockfp8_efficiency": (0.05, 1.0),
          "moe_blockfp8_hbm_efficiency": (0.02, 1.0), "moe_blockfp8_slot_bytes": (0.01, 100.0),
          "moe_blockfp8_expert_s": (1e-10, 1e-5), "moe_blockfp8_serial_bytes": (0.01, 100.0),
          "moe_blockfp8_default_efficiency": (0.05, 1.0), "moe_blockfp8_k_overhead": (1.0, 1e5),
          "moe_fp8_k_overhead": (1.0, 1e5),
          "moe_gen_l2_bytes": (2.0**20, 2.0**33),
          "moe_blockfp8_quant_s": (1e-14, 1e-9),
          "moe_blockfp8_act_s": (1e-15, 1e-10)}
"""efficiencies live in (0, 1]; times and FLOP counts in [1e-9, 1e13] (log-space fit)"""
BOUNDS.update({"fp4_gemm_efficiency_max": (0.05, 1.0), "fp4_wave_weight": (1e-3, 1.0),
               "fp4_hbm_efficiency": (0.05, 1.0), "fp4_quant_bytes": (0.1, 100.0),
               "fp4_sm_bytes_per_s": (1e9, 1e13), "fp4_quant_cta_bytes_per_s": (1e9, 1e13)})
BOUNDS["allreduce_symm_efficiency"] = (0.02, 1.0)
BOUNDS["allreduce_nccl_ring_efficiency"] = (0.02, 1.0)
BOUNDS["kv_l2_bytes_per_s"] = (1e11, 1e15)
BOUNDS["moe_gen_act_s"] = (1e-15, 1e-10)
BOUNDS["moe_gen_cta_s"] = (1e-10, 1e-5)
GRID = {"allreduce_custom_max_bytes": tuple(2.0 ** e for e in range(20, 30)),
        "moe_block_rows": (16.0, 32.0, 64.0, 128.0), "moe_fp8_block_rows": (16.0, 32.0, 64.0, 128.0),
        "moe_blockfp8_block_rows": (16.0, 32.0, 64.0, 128.0)}
"""constants that switch between algorithms at message sizes the tables step in powers of two: fitted by trying
each value (the rest by least squares for every one), keeping the lowest cost"""
