"""Serving kernel constants: what each inference engine's kernels achieve on one device (KernelConstants, the
constants every serving kernel formula takes; EngineCalibration, one engine's set fitted to its measured per-op
tables by benchmarks/serve_engine_fit.py and stored in a device profile's serving_engines block)."""

import dataclasses
from dataclasses import dataclass

from costmodels.errors import require

CURVE_RELATIVE = {"moe_efficiency": "gemm_efficiency_max", "moe_fp8_efficiency": "fp8_gemm_efficiency_max",
                  "moe_blockfp8_efficiency": "fp8_gemm_efficiency_max"}
"""expert-GEMM efficiencies that scale a dense GEMM curve, and its maximum: a grouped kernel may beat the dense curve
(DeepGEMM vs cuBLASLt), never the peak, so each is at most 1 / that maximum (checked here; the fit's upper bound)"""
SLOT_KEYS = ("moe_fp8_k_overhead",)
"""KernelConstants fields no profile sets: slots serving_kernels.block_fp8_constants fills from the block-scaled
kernel's own constants (moe_blockfp8_*), so the per-tensor FP8 kernels never read a block-scaled value; an engine
whose FP8 constants are its block-scaled kernel's own (EngineCalibration.__post_init__) keeps its value there too"""


@dataclass(frozen=True, kw_only=True, slots=True)
class KernelConstants:
    """The constants every serving kernel formula takes (costmodels/serving_kernels.py)."""

    gemm_efficiency_max: float
    """BF16 GEMMs: asymptotic fraction of the BF16 peak"""
    gemm_half_flops: float
    """BF16 GEMMs: FLOPs at which efficiency is half its maximum"""
    fp8_gemm_efficiency_max: float
    """FP8 GEMMs: asymptotic fraction of the FP8 peak"""
    fp8_gemm_half_flops: float
    """FP8 GEMMs: FLOPs at which efficiency is half its maximum"""
    fp8_quant_s: float
    """FP8 GEMMs: fixed time of the kernel that quantises the input (tensor-wise scale)"""
    hbm_efficiency: float
    """fraction of HBM bandwidth reached streaming weights (small-m GEMMs)"""
    kernel_floor_s: float
    """GPU time of the smallest kernel"""
    attention_efficiency: float
    """prefill (context) attention: fraction of the BF16 peak"""
    attention_floor_s: float
    """prefill attention: fixed time per call"""
    attention_half_work: float
    """prefill attention: work of a query row (keys x d_qk / 128) at which efficiency is half its maximum"""
    kv_read_efficiency: float
    """decode attention: fraction of HBM bandwidth reached reading the KV cache"""
    decode_attention_floor_s: float
    """decode attention: fixed time per call"""
    decode_seq_s: float
    """decode attention: time per (sequence, KV head) work unit (scheduling and split-KV reduction)"""
    allreduce_call_s: float
    """TP all-reduce (engine's custom kernel): fixed time per call"""
    allreduce_hop_s: float
    """TP all-reduce: latency of one of its 2(n-1) dependent steps"""
    allreduce_efficiency: float
    """TP all-reduce: fraction of the NVLink bandwidth reached"""
    moe_efficiency: float = 1.0
    """grouped expert GEMMs (fused MoE kernel): efficiency relative to the dense GEMM curve of the same size"""
    moe_block_rows: float = 128.0
    """grouped expert GEMMs: rows of one block; each expert's tokens are padded to whole blocks"""
    moe_floor_s: float = 0.0
    """grouped expert GEMMs: fixed time per grouped GEMM (its share of the routing, sort/align, finalize kernels)"""
    moe_hbm_efficiency: float = 0.0
    """grouped expert GEMMs: fraction of HBM bandwidth reached streaming expert weights (0: hbm_efficiency)"""
    moe_fp8_efficiency: float = 1.0
    """FP8 grouped expert GEMMs (their own kernel): efficiency relative to the dense FP8 GEMM curve"""
    moe_fp8_block_rows: float = 128.0
    """FP8 grouped expert GEMMs: rows of one block"""
    moe_fp8_floor_s: float = 0.0
    """FP8 grouped expert GEMMs: fixed time per grouped GEMM"""
    moe_fp8_hbm_efficiency: float = 0.0
    """FP8 grouped expert GEMMs: fraction of HBM bandwidth streaming expert weights (0: hbm_efficiency)"""
    moe_default_efficiency: float = 1.0
    """grouped expert GEMMs on the engine's default Triton tile config (no tuned config file ships for the
    layer's experts per GPU and expert width, costmodels/serving_moe_configs.py): efficiency relative to a tuned one"""
    moe_fp8_default_efficiency: float = 1.0
    """FP8 grouped expert GEMMs on the default Triton tile config: efficiency relative to a tuned one"""
    moe_slot_bytes: float = 1.0
    """grouped expert GEMMs: HBM traffic per token-expert slot relative to one input read and one output write"""
    moe_fp8_slot_bytes: float = 0.0
    """FP8 grouped expert GEMMs (their own kernel): traffic per slot likewise (0: moe_slot_bytes)"""
    moe_overlap_exponent: float = 0.0
    """grouped expert GEMMs: compute and HBM time combine as (c^p + m^p)^(1/p) (weight streaming and MMAs overlap
    imperfectly; SGLang's Triton kernel); 0: max(c, m)"""
    moe_fp8_overlap_exponent: float = 0.0
    """FP8 grouped expert GEMMs (their own kernel): the same exponent (0: max)"""
    moe_block_weight_reads: float = 0.0
    """grouped expert GEMMs: share of an expert's row blocks after its first whose programs stream its weights from
    HBM again (serving_gemm.weight_passes; vLLM's Triton kernel); 0: weights once per expert"""
    moe_gen_l2_bytes: float = 0.0
    """grouped expert GEMMs on FlashInfer's TensorRT-LLM-gen MoE (B200): weight bytes C of one expert GEMM at which
    half of a further token tile's weight reads miss L2 (serving_gemm.weight_passes; fitted); 0: no such term"""
    moe_gen_cta_s: float = 0.0
    """grouped expert GEMMs on FlashInfer's TensorRT-LLM-gen MoE (B200), BF16 and FP8: time per token-dimension CTA
    each grouped GEMM launches, computing or exiting (serving_moe_flashinfer.trtllm_gen_launch_s; fitted); 0: none"""
    moe_gen_act_s: float = 0.0
    """block-scaled (DeepSeek) FP8 experts on FlashInfer's TensorRT-LLM-gen MoE (SGLang's FP8 experts on B200): time
    per element of its activation kernel's walk, the layer's routed slots (tokens · top_k, all GPUs' slots) times the
    expert width per GPU (serving_moe_flashinfer.trtllm_gen_activation_s; fitted); 0: no such kernel"""
    moe_fp8_tile_s: float = 0.0
    """FP8 grouped expert GEMMs on FlashInfer's CUTLASS fused MoE at its fallback tile (vLLM as measured,
    costmodels/serving_moe_flashinfer.py): fixed time of one 128 x 16 output tile; 0: not that kernel"""
    moe_fp8_oob_penalty: float = 0.0
    """FP8 grouped expert GEMMs on FlashInfer's fallback tile: extra main-loop time of a partial row tile per
    whole tile of empty (zero-filled) rows, relative to a full tile"""
    moe_blockfp8_efficiency: float = 0.0
    """FP8 grouped expert GEMMs of a block-scaled (128 x 128) checkpoint, the engine's own kernel for those
    (serving_kernels.block_fp8_constants): efficiency relative to the dense FP8 GEMM curve; 0: no such kernel
    fitted, block-scaled experts are timed with the per-tensor FP8 constants (SGLang: those are block-scaled)"""
    moe_blockfp8_block_rows: float = 128.0
    """block-scaled FP8 grouped expert GEMMs: rows of one block"""
    moe_blockfp8_floor_s: float = 0.0
    """block-scaled FP8 grouped expert GEMMs: fixed time per grouped GEMM"""
    moe_blockfp8_hbm_efficiency: float = 0.0
    """block-scaled FP8 grouped expert GEMMs: fraction of HBM bandwidth streaming expert weights (0: hbm_efficiency)"""
    moe_blockfp8_slot_bytes: float = 0.0
    """block-scaled FP8 grouped expert GEMMs: traffic per slot relative to one input read and output write
    (0: moe_slot_bytes)"""
    moe_blockfp8_default_efficiency: float = 1.0
    """block-scaled FP8 grouped expert GEMMs on the engine's default Triton tile config (vLLM at EP 1 without a
    tuned config file for the shape, costmodels/serving_moe_configs.py): efficiency relative to a tuned one"""
    moe_fp8_expert_s: float = 0.0
    """FP8 grouped expert GEMMs: time per local expert of the kernel's tile scheduler, which walks every local
    expert's row offsets (serving_gemm.serial_s); 0: no such walk (the block-scaled kernel's value is
    moe_blockfp8_expert_s)"""
    moe_blockfp8_expert_s: float = 0.0
    """block-scaled FP8 grouped expert GEMMs (TensorRT-LLM's DeepGEMM GroupedWithOffset kernel): time per local
    expert of its scheduler's walk over the experts' row offsets; 0: none"""
    moe_fp8_serial_bytes: float = 0.0
    """FP8 grouped expert GEMMs: HBM traffic per slot of the separate kernels (permute, quantise, activation,
    finalize) that run before and after the GEMM rather than under it, relative to one input read and output write
    (serving_gemm.serial_s; SGLang: its per-token-group input quantisation); 0: none (the block-scaled kernel's
    value is moe_blockfp8_serial_bytes)"""
    moe_blockfp8_serial_bytes: float = 0.0
    """block-scaled FP8 grouped expert GEMMs (TensorRT-LLM's CutlassMoeFCRunner around DeepGEMM): traffic per slot
    of its separate slot kernels, as moe_fp8_serial_bytes; 0: none"""
    moe_blockfp8_k_overhead: float = 0.0
    """block-scaled FP8 grouped expert GEMMs (vLLM's and SGLang's Triton kernels on Hopper): per-tile
    prologue/epilogue k_0 in elements of k; 0: none (the value serving_kernels.block_fp8_constants puts in
    moe_fp8_k_overhead; SGLang's, fitted with its FP8 constants in 'moe fp8', is that slot's value itself)"""
    moe_blockfp8_quant_s: float = 0.0
    """block-scaled FP8 experts on FlashInfer's TensorRT-LLM-gen MoE (vLLM on B200): time per element of the layer's
    input (tokens · hidden, every token entering the layer, at any expert-parallel size) of the kernels before the
    fused MoE that quantise it per 128-element group and transpose its scales (serving_kernels.block_quant_s;
    fitted); 0: none"""
    moe_blockfp8_act_s: float = 0.0
    """block-scaled FP8 experts on FlashInfer's TensorRT-LLM-gen MoE (vLLM on B200): time per (routed slot x expert
    width element) of its separate DeepSeek-FP8 activation kernel between the two grouped GEMMs (the value
    serving_kernels.block_fp8_constants puts in moe_gen_act_s, serving_moe_flashinfer.trtllm_gen_activation_s;
    fitted); 0: none"""
    moe_fp8_k_overhead: float = 0.0
    """FP8 grouped expert GEMMs: per-tile prologue/epilogue k_0 (serving_gemm._grouped_s). A slot, not a profile key
    (SLOT_KEYS): 0 on the per-tensor kernels, moe_blockfp8_k_overhead once block_fp8_constants swaps the block-scaled
    kernel's constants in; for an engine whose FP8 constants are those of its block-scaled kernel (no block-scaled
    constants of its own, moe_blockfp8_efficiency 0: SGLang, whose Triton fused MoE its FP8 table times with
    128x128 block scales only) moe_blockfp8_k_overhead always (EngineCalibration.__post_init__)"""
    moe_trtllm_gen: float = 0.0
    """1: the engine's MoE layer runs FlashInfer's TensorRT-LLM-gen fused MoE (Blackwell, SM100; read from the engine's
    source, not fitted: costmodels/serving_moe_configs.py TRTLLM_GEN_MOE): routing inside the kernel, only the slots of
    its own experts computed, tiles picked at run time (no shipped Triton configs), BF16, FP8 and block-scaled FP8
    experts on that kernel's own constants at every expert-parallel size; 0: the engine's Hopper kernels"""
    fp8_k_overhead: float = 0.0
    """FP8 GEMMs: per-tile prologue/epilogue in elements of k (the main loop costs (k + k_0) / k of its MMAs; 0: hidden
    under the main loop, vLLM's Pingpong kernels on Hopper)"""
    fp8_wave_weight: float = 0.0
    """FP8 GEMMs: share of the idle SMs of a partial last wave that costs time (0: stream-k, 1: whole waves)"""
    fp8_oob_penalty: float = 0.0
    """FP8 GEMMs: extra main-loop time of a padded (out-of-bounds, zero-filled) row of the last row tiles, relative
    to a real row (serving_gemm.gemm_fp8_s; 0: padded rows cost as much as real ones)"""
    gemm_wave_weight: float = 0.0
    """BF16 GEMMs: share of the idle SMs of a partial last wave of output tiles that costs time (0: the compute
    layer's 128-row padding alone, no tiles or waves)"""
    gemm_large_efficiency_max: float = 0.0
    """BF16 GEMMs of m >= serving_gemm.BF16_LARGE_M: fraction of the BF16 peak (0: gemm_efficiency_max)"""
    fp8_large_efficiency_max: float = 0.0
    """FP8 GEMMs of m >= 8192 and k >= 6144 (vLLM's cooperative 256-row tiles): fraction of the FP8 peak
    (0: fp8_gemm_efficiency_max)"""
    fp8_hbm_efficiency: float = 0.0
    """FP8 GEMMs: fraction of HBM bandwidth reached streaming operands (0: hbm_efficiency)"""
    fp8_overlap_exponent: float = 0.0
    """FP8 GEMMs: p of the smooth maximum (t_compute^p + t_memory^p)^(1/p) (0: the plain maximum)"""
    fp8_cta_bytes_per_s: float = 0.0
    """FP8 GEMMs: HBM bandwidth one thread block reaches streaming operands (0: no per-block limit)"""
    fp8_quant_bytes: float = 3.0
    """FP8 input quantisation: HBM bytes per input element (read 2, write 1: one pass)"""
    fp8_quant_row_s: float = 0.0
    """FP8 input quantisation: time per row (per-token scale computation)"""
    fp8_gemm_row_s: float = 0.0
    """FP8 GEMMs: time per input row outside the tiles' overlap (serving_gemm.gemm_fp8_s; vLLM: its per-token
    quantise kernel's fixed time per row program, serving_gemm.token_quant_s)"""
    fp8_gemm_row_chunk_s: float = 0.0
    """FP8 GEMMs: time per input row and per loop iteration over a 2048-element chunk of the row in vLLM's per-token
    quantise kernel (serving_gemm.token_quant_s; fitted); 0: none"""
    fp8_quant_l2_share: float = 1.0
    """FP8 input quantisation: share of its HBM bytes that an input still costs when its BF16 input and FP8 output
    fit in the device's L2 (DeviceSpec.l2_bytes)"""
    fp8_quant_row_bytes_per_s: float = 0.0
    """FP8 input quantisation: bandwidth of one row's thread block (one block per row; 0: no per-row limit)"""
    gemm_sms: float = 132.0
    """SMs the GEMM tiles run on (H100/H200 SXM: 132)"""
    attention_tile_s: float = 0.0
    """prefill attention: time per (sequence, query head, 128-row query tile) work unit (scheduling, softmax
    state set-up and output write of the tile)"""
    prefill_kv_passes: float = 0.0
    """prefill attention: times the K and V of the keys are read from HBM (query tiles of one KV head that do not
    share them through L2 read them again)"""
    decode_fp8_floor_s: float = 0.0
    """decode attention over an FP8 KV cache (its own kernel): fixed time per call"""
    decode_fp8_seq_s: float = 0.0
    """decode attention over an FP8 KV cache: time per (sequence, KV head) work unit"""
    decode_mha_floor_s: float = 0.0
    """decode attention with one query head per KV head (MHA: no GQA packing; its own kernel for either KV dtype):
    fixed time per call"""
    decode_mha_seq_s: float = 0.0
    """decode attention, MHA: time per (sequence, head) work unit"""
    decode_mha_dequant_s: float = 0.0
    """decode attention, MHA over an FP8 KV cache: time per KV element dequantised (that kernel's math limit)"""
    decode_free_units: float = 0.0
    """decode attention: work units of the first wave (they run on idle SMs at no per-unit cost)"""
    kv_dequant_s: float = 0.0
    """decode attention over an FP8 KV cache: time per KV element dequantised (the kernel's math limit)"""
    decode_split_s: float = 0.0
    """decode attention: split-KV reduction time reached at long contexts, scaled by c / (c + split_tokens)"""
    decode_split_tokens: float = 1.0
    """decode attention: context at which the split-KV reduction costs half of decode_split_s"""
    decode_overlap_exponent: float = 1.0
    """decode attention: p of the smooth maximum (Σ tᵢᵖ)^(1/p) of its unit, KV-read and dequant times (1: sum)"""
    decode_split_block_tokens: float = 0.0
    """decode attention with GQA: KV tokens per thread block below which the engine stops splitting a unit's
    context (its multi-block heuristic, `split_blocks`; a kernel constant read from the engine's source, not
    fitted); 0: one thread block per (sequence, KV head)"""
    decode_mha_block_tokens: float = 0.0
    """decode attention, MHA kernel with a multi-block mode: history tokens of one pass of a thread block's KV loop,
    the smallest chunk it splits a sequence into (`mha_chunks`; TensorRT-LLM's MMHA, read from its source, not
    fitted); 0: no per-block streaming term"""
    decode_mha_token_s: float = 0.0
    """decode attention, MHA kernel with a multi-block mode: time one thread block takes per history token of its
    chunk (a block streams K and V at a latency-bound rate, far below its share of HBM bandwidth)"""
    decode_fp8_head_tile: float = 0.0
    """decode attention, GQA over an FP8 KV cache: query heads per tile of that kernel; a unit's time scales with the
    tiles its query heads fill (`head_tiles`; TensorRT-LLM's Hopper XQA rounds them up to 8, read from its source,
    not fitted); 0: one tile whatever the group"""
    decode_gqa_min_block_factor: float = 0.0
    """decode attention with GQA over a BF16 KV cache: the engine runs its GQA kernel only when its thread blocks
    times this factor reach the SM count, else its MHA kernel on every query head (`runs_gqa_kernel`; TensorRT-LLM's
    kEnableMinBlockFactor, read from its source, not fitted); 0: always the GQA kernel"""
    allreduce_custom_max_bytes: float = 0.0
    """TP all-reduce: messages below this size run the engine's custom kernel (one- or two-shot), larger ones
    NCCL (ring or NVLS); 0: no custom kernel, every size on the comm layer's ring"""
    allreduce_twoshot_call_s: float = 0.0
    """custom two-shot all-reduce (reduce-scatter + all-gather through peer memory): fixed time per call"""
    allreduce_twoshot_efficiency: float = 1.0
    """custom two-shot all-reduce (under the vLLM SM100 tables: torch symmetric memory's two-shot kernel): fraction of
    the NVLink bandwidth reached"""
    allreduce_nccl_call_s: float = 0.0
    """NCCL all-reduce above the custom kernel's size limit: fixed time per call"""
    allreduce_nccl_efficiency: float = 1.0
    """NCCL all-reduce on its NVLS algorithm (in-switch reduction): fraction of the NVLink bandwidth reached"""
    allreduce_nccl_ring_efficiency: float = 1.0
    """NCCL all-reduce on its ring algorithm (where the ring moves fewer bytes than NVLS: n <= 3): fraction of the
    NVLink bandwidth reached (serving_allreduce.nccl_allreduce_s)"""
    allreduce_vllm_sm100: float = 0.0
    """1: the engine picks its all-reduce by vLLM 0.24.0's Blackwell (SM100) size tables (serving_allreduce.
    vllm_allreduce_s; read from vLLM's source, not fitted; their size limits stand for
    allreduce_custom_max_bytes, and its two-stage kernel reaches the one-shot efficiency); 0: `engine_allreduce_s`"""
    allreduce_vllm_sm90: float = 0.0
    """1: the same by vLLM 0.24.0's Hopper (SM90) size tables; 0: `engine_allreduce_s`"""
    prefill_tail_tile: float = 0.0
    """1: the engine's prefill kernel ends with its longest work unit run at one SM's share of the peak after the
    rest (TensorRT-LLM-gen FMHA on Blackwell, SM100: costmodels/serving_attention_sm100.py tail_tile_s; read from
    the engine's source, not fitted); 0: the Hopper formula alone"""
    prefill_one_token_decode: float = 0.0
    """1: a prefill batch of one new token per sequence runs the engine's decode kernel (vLLM 0.24.0's FlashInfer
    backend on SM100 splits batches by query length: serving_attention_sm100.runs_decode_kernel; read from its
    source, not fitted); 0: its prefill kernel"""
    decode_mha_as_gqa: float = 0.0
    """1: decode attention with one query head per KV head (MHA) runs the engine's GQA kernel with a group of one,
    on its constants (TensorRT-LLM-gen decode on SM100 packs a KV head's query heads, MHA included: no kernel of its
    own; read from the engine's source, not fitted); 0: its MHA kernel and constants (decode_mha_*)"""
    kv_warm_l2: float = 0.0
    """1: a per-op benchmark's repeated decode calls find a KV cache that fits in the device's L2 (DeviceSpec.l2_bytes)
    there (serving_attention_sm100.kv_read_s; read from the engine's kernel, not fitted); 0: always read from HBM"""
    kv_l2_bytes_per_s: float = 0.0
    """decode attention: rate of KV reads that hit L2 (kv_warm_l2; fitted); also the rate of a MoE layer's expert
    weights read from L2 (moe_warm_l2)"""
    moe_warm_l2: float = 0.0
    """1: a per-op benchmark's repeated MoE layer calls find the expert weights the layer reads (its hit experts', both
    GEMMs) in the device's L2 when they fit (DeviceSpec.l2_bytes) and read them at kv_l2_bytes_per_s (never a server,
    whose other layers evict them; serving_gemm.moe_memory_s warm_l2); 0: always from HBM"""
    moe_input_quant: float = 0.0
    """1: the engine's MoE layer with per-tensor FP8 experts quantises its whole BF16 input (every token entering the
    layer, at any expert-parallel size) to FP8 in the static-scale quantise kernel of its FP8 linear layers before the
    fused MoE op (TensorRT-LLM's CutlassFusedMoE; read from its source, not fitted: serving_gemm.moe_input_quant_s,
    priced by fp8_quant_s); 0: the fused kernel reads BF16 or its fitted constants carry the quantisation"""
    allreduce_twoshot_hop_s: float = 0.0
    """custom two-stage all-reduce under the vLLM SM100 tables, and SGLang's pull kernels under its Hopper tables
    (allreduce_sglang_v2): time per peer (its two barriers over n-1 peers); 0 under vLLM's SM90 tables (their
    two-stage kernel runs at n = 4 alone of the measured sizes, where t_call,2 carries it)"""
    allreduce_symm_call_s: float = 0.0
    """torch symmetric-memory all-reduce under vLLM's SM100 / SM90 tables (copy in, multimem or two-shot): time per
    call"""
    allreduce_symm_efficiency: float = 1.0
    """torch symmetric-memory all-reduce under vLLM's SM100 / SM90 tables: fraction of the NVLink bandwidth reached"""
    allreduce_sglang_v2: float = 0.0
    """1: the engine picks its all-reduce by SGLang 0.5.14's JIT custom all-reduce (CustomAllReduceV2, its default on
    CUDA) size tables for Hopper (serving_allreduce.sglang_v2_allreduce_s; read from SGLang's source, not fitted:
    one-shot push, one-shot pull, two-shot pull up to its 16 MiB pull buffer, then NCCL; the pull kernels run on the
    two-shot constants); 0: `engine_allreduce_s`"""
    allreduce_trtllm_sm100: float = 0.0
    """1: the engine picks its all-reduce as TensorRT-LLM 1.3.0rc20's AUTO strategy does on Blackwell (SM100;
    serving_allreduce.trtllm_allreduce_s: NCCL above the custom kernels' 64 MiB workspace, else its SM100 lookup
    table's one-shot / two-shot / NCCL choice; read from TensorRT-LLM's source, not fitted; it stands for
    allreduce_custom_max_bytes); 0: `engine_allreduce_s`"""
    allreduce_trtllm_sm90: float = 0.0
    """1: the same on Hopper (SM90: the same workspace rule, the SM90 lookup table); 0: `engine_allreduce_s`"""
    allreduce_pass_s: float = 0.0
    """all-reduce kernels under the vLLM SM100 tables: time of one pass of the grid's remote loads (a kernel of few
    thread blocks keeps a fixed number of bytes per peer in flight, serving_allreduce.pass_bound_s); 0: no such bound
    (vLLM on Hopper: at half Blackwell's NVLink rate the link binds first)"""
    fp4_gemm_efficiency_max: float = 0.0
    """NVFP4 GEMMs (serving_gemm.gemm_fp4_s): fraction of the FP4 peak reached on large GEMMs (0: not fitted)"""
    fp4_gemm_half_flops: float = 0.0
    """NVFP4 GEMMs: FLOPs' worth of fixed time per call, at the FP4 peak and efficiency"""
    fp4_wave_weight: float = 0.0
    """NVFP4 GEMMs: weight of the idle share of the last wave of 128 x 128 tiles (0: filled)"""
    fp4_hbm_efficiency: float = 0.0
    """NVFP4 GEMMs: fraction of HBM bandwidth reached streaming operands (0: hbm_efficiency)"""
    fp4_quant_s: float = 0.0
    """NVFP4 input quantisation (BF16 -> FP4 E2M1 with an FP8 scale per 16 elements): fixed time per call"""
    fp4_quant_bytes: float = 2.5625
    """NVFP4 input quantisation: HBM bytes per input element (read 2, write 0.5 + 1/16 of scales: one pass)"""
    fp4_pair_tiles: float = 0.0
    """1: the engine's NVFP4 GEMM runs 256 x 256 output tiles on pairs of SMs (TensorRT-LLM's CUTLASS SM100 FP4 GEMM,
    2-CTA cluster MMA: costmodels/serving_gemm_sm100.py; read from its source, not fitted); 0: 128 x 128 tiles"""
    fp4_cutedsl_tiles: float = 0.0
    """1: the engine's NVFP4 GEMM runs FlashInfer 0.6.12's CuTe-DSL kernel on the tactic its untuned path picks per
    (n, k, m bucket) (costmodels/serving_gemm_sm100.py; read from its source, not fitted); 0: fp4_pair_tiles' rule"""
    fp4_sm_bytes_per_s: float = 0.0
    """NVFP4 GEMMs on fp4_cutedsl_tiles: bytes per second through one SM (its CTA's operand tiles in, its BF16 output
    tile out; serving_gemm.cutedsl_fp4_s); 0: no such bound"""
    fp4_quant_tma: float = 0.0
    """1: the NVFP4 input quantisation is FlashInfer 0.6.12's CUDA kernel, whose TMA variant (m >= 1024) runs one CTA
    per 16-row tile on at most 2 per SM (serving_gemm.fp4_quant_s; read from its source, not fitted); 0: one pass"""
    fp4_quant_cta_bytes_per_s: float = 0.0
    """NVFP4 input quantisation on fp4_quant_tma: BF16 input bytes per second one CTA of the TMA kernel reads"""
    fp4_quant_warm_l2: float = 0.0
    """1: the engine's NVFP4 table replays one layer on one input (vLLM 0.24.0: aiconfigurator collector/vllm/
    collect_gemm.py, outside_loop_count 1 for nvfp4), so where input and operands fit in L2 the quantise kernel reads
    its input from there (serving_gemm.fp4_quant_s; read from the collector, not fitted); 0: from HBM"""
    bf16_sm100_tile: float = 0.0
    """1: the engine's BF16 GEMM waves count Blackwell's 128 x 256 tiles (costmodels/serving_gemm_sm100.py; the tile the
    B200 tables fit best, not read from source: cuBLASLt picks per shape); 0: serving_gemm.BF16_TILE"""
    fp8_sm100_tiles: float = 0.0
    """1: the engine's per-tensor FP8 GEMM picks its tiles by vLLM's SM100 cutlass_scaled_mm dispatch (2-CTA MMA tiles
    and clusters by m bucket: costmodels/serving_gemm_sm100.py; read from its source, not fitted); 0: the Hopper
    tiles of serving_gemm.FP8_TILES"""

    @classmethod
    def of_engine(cls, cal: "EngineCalibration") -> "KernelConstants":
        """The constants alone of an engine's calibration (its name and provenance dropped)."""
        return cls(**{f.name: getattr(cal, f.name) for f in dataclasses.fields(cls)})


@dataclass(frozen=True, kw_only=True, slots=True)
class EngineCalibration(KernelConstants):
    """Kernel constants of one inference engine on one device, fitted to its measured per-op tables
    (benchmarks/serve_engine_fit.py; see costmodels/serving_kernels.py for the formulas they enter)."""

    engine: str
    """engine name (trtllm, vllm, sglang)"""
    source: str = ""
    """tables and versions the constants were fitted to"""
    moe_fitted: bool = True
    """False where the device's MoE tables were not fitted (its moe_* constants are the fit's unconstrained starting
    values) or its BF16 MoE model misses the accuracy bar (benchmarks/serve_engine_fit.py MOE_BAR): serving refuses MoE
    models on it (serving_precision.check_precision)"""
    moe_fp8_fitted: bool = True
    """False where its FP8 expert model with per-tensor scales misses the accuracy bar: serving refuses MoE models at
    FP8 on it, unless the checkpoint has block scales (--quant-block) and moe_blockfp8_fitted holds"""
    moe_blockfp8_fitted: bool = True
    """False where its FP8 expert model with 128x128 block scales misses the accuracy bar: serving refuses MoE models
    at FP8 with --quant-block on it"""

    def __post_init__(self) -> None:
        if self.moe_blockfp8_efficiency <= 0:  # its FP8 constants are its block-scaled kernel's (SGLang): one k_0,
            # fitted in the slot (moe_fp8_k_overhead), stored in the profile as moe_blockfp8_k_overhead
            k_0 = self.moe_fp8_k_overhead or self.moe_blockfp8_k_overhead
            object.__setattr__(self, "moe_fp8_k_overhead", k_0)
            object.__setattr__(self, "moe_blockfp8_k_overhead", k_0)
        for name in ("gemm_efficiency_max", "fp8_gemm_efficiency_max", "hbm_efficiency", "attention_efficiency",
                     "kv_read_efficiency", "allreduce_efficiency", "allreduce_twoshot_efficiency",
                     "allreduce_nccl_efficiency", "allreduce_nccl_ring_efficiency", "allreduce_symm_efficiency",
                     "moe_default_efficiency",
                     "moe_fp8_default_efficiency", "moe_blockfp8_default_efficiency"):
            v = getattr(self, name)
            require(0.0 < v <= 1.0, f"must be in (0, 1], got {v}", field=f"serving_engines.{self.engine}.{name}")
        for name in ("gemm_half_flops", "fp8_gemm_half_flops", "fp8_quant_s", "kernel_floor_s", "attention_floor_s",
                     "attention_half_work", "decode_attention_floor_s", "decode_seq_s", "allreduce_call_s",
                     "allreduce_hop_s", "decode_fp8_floor_s", "decode_fp8_seq_s", "decode_mha_seq_s",
                     "decode_mha_floor_s", "decode_mha_dequant_s", "decode_free_units", "kv_dequant_s",
                     "decode_split_s", "decode_split_block_tokens", "decode_gqa_min_block_factor",
                     "decode_mha_block_tokens", "decode_mha_token_s", "decode_fp8_head_tile",
                     "allreduce_custom_max_bytes", "attention_tile_s", "prefill_kv_passes", "allreduce_twoshot_call_s",
                     "allreduce_nccl_call_s", "allreduce_vllm_sm100", "allreduce_twoshot_hop_s", "prefill_tail_tile",
                     "prefill_one_token_decode", "decode_mha_as_gqa", "kv_l2_bytes_per_s",
                     "allreduce_symm_call_s", "allreduce_sglang_v2", "allreduce_pass_s",
                     "allreduce_trtllm_sm100", "allreduce_trtllm_sm90", "allreduce_vllm_sm90"):
            v = getattr(self, name)
            require(v >= 0.0, f"must be >= 0, got {v}", field=f"serving_engines.{self.engine}.{name}")
        for name in ("fp8_wave_weight", "gemm_wave_weight", "gemm_large_efficiency_max"):
            v = getattr(self, name)
            require(0.0 <= v <= 1.0, f"must be in [0, 1], got {v}", field=f"serving_engines.{self.engine}.{name}")
        for name in ("fp8_large_efficiency_max", "fp8_hbm_efficiency", "fp8_overlap_exponent", "moe_floor_s",
                     "moe_slot_bytes", "fp8_k_overhead", "fp8_cta_bytes_per_s", "fp8_quant_bytes", "fp8_quant_row_s",
                     "fp8_gemm_row_s", "fp8_gemm_row_chunk_s", "fp8_quant_l2_share", "fp8_quant_row_bytes_per_s",
                     "moe_fp8_floor_s", "moe_hbm_efficiency", "moe_fp8_hbm_efficiency", "moe_fp8_slot_bytes",
                     "moe_fp8_tile_s", "moe_fp8_oob_penalty", "moe_block_weight_reads", "moe_overlap_exponent",
                     "moe_fp8_overlap_exponent", "fp8_oob_penalty", "moe_blockfp8_floor_s",
                     "moe_blockfp8_hbm_efficiency", "moe_blockfp8_slot_bytes", "moe_fp8_expert_s",
                     "moe_blockfp8_expert_s", "moe_fp8_serial_bytes", "moe_blockfp8_serial_bytes",
                     "moe_trtllm_gen", "moe_blockfp8_k_overhead", "moe_gen_l2_bytes",
                     "moe_fp8_k_overhead", "moe_blockfp8_quant_s", "moe_blockfp8_act_s",
                     "moe_gen_act_s", "moe_gen_cta_s", "fp4_sm_bytes_per_s"):
            v = getattr(self, name)
            require(v >= 0.0, f"must be >= 0, got {v}", field=f"serving_engines.{self.engine}.{name}")
        for name, curve in CURVE_RELATIVE.items():  # at most the peak: 1 / the curve's maximum
            v, top = getattr(self, name), 1.0 / getattr(self, curve)
            zero_ok = name == "moe_blockfp8_efficiency"  # 0: no block-scaled expert kernel of its own
            require((v >= 0.0 if zero_ok else v > 0.0) and v <= top, f"must be in {'[' if zero_ok else '('}0, 1 / "
                    f"{curve} = {top:.4g}], got {v}", field=f"serving_engines.{self.engine}.{name}")
        for name in ("moe_block_rows", "moe_fp8_block_rows", "moe_blockfp8_block_rows", "gemm_sms"):
            v = getattr(self, name)
            require(v >= 1.0, f"must be >= 1, got {v}", field=f"serving_engines.{self.engine}.{name}")
        for name in ("decode_split_tokens", "decode_overlap_exponent"):
            v = getattr(self, name)
            require(v > 0.0, f"must be > 0, got {v}", field=f"serving_engines.{self.engine}.{name}")
        for name in ("fp4_gemm_efficiency_max", "fp4_wave_weight", "fp4_hbm_efficiency"):
            v = getattr(self, name)
            require(0.0 <= v <= 1.0, f"must be in [0, 1], got {v}", field=f"serving_engines.{self.engine}.{name}")
        for name in ("fp4_pair_tiles", "fp8_sm100_tiles", "bf16_sm100_tile", "kv_warm_l2", "moe_warm_l2",
                     "moe_input_quant", "fp4_cutedsl_tiles", "fp4_quant_tma", "fp4_quant_warm_l2"):  # selectors
            v = getattr(self, name)
            require(v in (0.0, 1.0), f"must be 0 or 1, got {v}", field=f"serving_engines.{self.engine}.{name}")
        require(self.kv_l2_bytes_per_s > 0.0 or not self.fp4_quant_warm_l2, "fp4_quant_warm_l2 needs a fitted "
                "kv_l2_bytes_per_s", field=f"serving_engines.{self.engine}.fp4_quant_warm_l2")
        rate = self.fp4_quant_cta_bytes_per_s  # the TMA quantise kernel's CTAs need a rate
        require(rate > 0.0 if self.fp4_quant_tma else rate >= 0.0, f"must be > 0 where fp4_quant_tma is 1, else >= 0, "
                f"got {rate}", field=f"serving_engines.{self.engine}.fp4_quant_cta_bytes_per_s")
