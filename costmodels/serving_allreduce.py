"""TP all-reduce time of a serving engine inside a node and across nodes (seconds).

The constants are an engine's `KernelConstants` (fitted per device by benchmarks/serve_engine_fit.py to the
engines' measured per-op tables); `EngineKernels` carries them with the device.

  TP all-reduce inside a node: the engine's custom one-shot / two-shot kernels below a size limit, NCCL (ring or
      NVLS) above it (`engine_allreduce_s`); across nodes the comm layer's ring (costmodels/comm.py)
  an engine whose source picks the algorithm by size tables: vLLM 0.24.0 on Hopper and Blackwell (`vllm_allreduce_s`),
      SGLang 0.5.14 on Hopper (`sglang_v2_allreduce_s`), TensorRT-LLM 1.3.0rc20 on Hopper and Blackwell
      (`trtllm_allreduce_s`)
"""

import math

from costmodels import comm
from costmodels.serving_kernels import EngineKernels


def allreduce_s(ek: EngineKernels, size_bytes: float, n: int) -> float:
    """TP all-reduce of `size_bytes` over n consecutive GPUs: inside one node the engine's algorithm for the
    size (`engine_allreduce_s`), else (or without a custom kernel) the comm layer's ring across NICs."""
    k = ek.k
    if size_bytes <= 0 or n <= 1:
        return 0.0
    if k.allreduce_custom_max_bytes <= 0 or n > ek.links.devices_per_node:
        return comm.collective_time_s("all_reduce", size_bytes, n, 1, ek.links)
    return engine_allreduce_s(ek, size_bytes, n)


def engine_allreduce_s(ek: EngineKernels, size_bytes: float, n: int) -> float:
    """All-reduce inside an NVSwitch node as the engines run it, with B the NVLink bandwidth per GPU:
    below the custom kernel's size limit the faster of
      one-shot (every GPU reads the n-1 peers' buffers):  t_call + (n-1)·(t_hop + S / (B·η_1))
      two-shot (reduce-scatter + all-gather in peer memory):  t_call,2 + 2(n-1)/n · S / (B·η_2)
    and above it NCCL, t_call,nccl + v·S / (B·η) with the per-GPU volume v of the lower-volume algorithm:
    ring 2(n-1)/n at η_ring, or NVLS (in-switch reduction; sends S, receives S/n, then sends S/n, receives S)
    (n+1)/n at η_nccl (`nccl_allreduce_s`);
    an engine with allreduce_vllm_sm100 / allreduce_vllm_sm90 set picks by vLLM's Blackwell / Hopper size tables
    (`vllm_allreduce_s`), one with allreduce_trtllm_sm100 / allreduce_trtllm_sm90 by TensorRT-LLM's Blackwell /
    Hopper rules (`trtllm_allreduce_s`)."""
    k, link = ek.k, ek.device.intra_node_bytes_per_s
    if k.allreduce_vllm_sm100 or k.allreduce_vllm_sm90:
        return vllm_allreduce_s(ek, size_bytes, n, 100 if k.allreduce_vllm_sm100 else 90)
    if k.allreduce_sglang_v2:
        return sglang_v2_allreduce_s(ek, size_bytes, n)
    if k.allreduce_trtllm_sm100 or k.allreduce_trtllm_sm90:
        return trtllm_allreduce_s(ek, size_bytes, n, 100 if k.allreduce_trtllm_sm100 else 90)
    if size_bytes >= k.allreduce_custom_max_bytes:
        return nccl_allreduce_s(ek, size_bytes, n)
    two = k.allreduce_twoshot_call_s + 2 * (n - 1) / n * size_bytes / (link * k.allreduce_twoshot_efficiency)
    return min(one_shot_allreduce_s(ek, size_bytes, n), two)


def one_shot_allreduce_s(ek: EngineKernels, size_bytes: float, n: int) -> float:
    """The custom one-shot kernel, every GPU reading the n-1 peers' buffers: t_call + (n-1)·(t_hop + S / (B·η_1))."""
    k, link = ek.k, ek.device.intra_node_bytes_per_s
    return k.allreduce_call_s + (n - 1) * (k.allreduce_hop_s + size_bytes / (link * k.allreduce_efficiency))


def nccl_allreduce_s(ek: EngineKernels, size_bytes: float, n: int) -> float:
    """NCCL's all-reduce over NVLink on its lower-volume algorithm, each at its own efficiency:
    t_call,nccl + v·S / (B·η), the ring (v = 2(n-1)/n, η = η_ring) where it moves no more bytes per GPU than NVLS
    (n <= 3), else NVLS, the in-switch reduction (v = (n+1)/n, η = η_nccl). They are different kernels on different
    channel sets (NVIDIA/nccl v2.28.9, the release torch 2.11.0 pins as nvidia-nccl-cu13 for vLLM 0.24.0 and SGLang
    0.5.14: src/graph/tuning.cc ncclTopoTuneModel gives NVLS a bandwidth of its own, the NVLS graph's per-channel
    rate times nvlsEfficiency, on nvlsChannels CTAs, src/transport/nvls.cc 16 on SM90 and 24 on one SM100 node; the
    ring runs on the ring graph's channels). The tables show it: at n = 2 (512 MiB) NCCL moves 338 GB/s per GPU on
    Hopper and 588 GB/s on B200 at the ring's volume 1 (NVLS's 3/2 would need 507 GB/s of a 450 GB/s link), at n = 4
    and 8 about 300 GB/s and 490-510 GB/s at NVLS's (n+1)/n (the ring's volume would need 460 GB/s at n = 8 on
    Hopper); the three engines' tables agree within 1.5 % at >= 128 MiB."""
    k, link = ek.k, ek.device.intra_node_bytes_per_s
    ring, nvls = 2 * (n - 1) / n, (n + 1) / n
    if ring <= nvls:
        return k.allreduce_nccl_call_s + ring * size_bytes / (link * k.allreduce_nccl_ring_efficiency)
    return k.allreduce_nccl_call_s + nvls * size_bytes / (link * k.allreduce_nccl_efficiency)


MIB = 2.0**20
VLLM_CUSTOM_MAX_BYTES = {90: {2: 64 * MIB, 4: 32 * MIB, 6: MIB / 2, 8: MIB / 4},
                         100: {2: 2 * MIB, 4: 2 * MIB, 6: MIB, 8: MIB}}
"""vLLM 0.24.0 vllm/distributed/device_communicators/all_reduce_utils.py CUSTOM_ALL_REDUCE_MAX_SIZES["9.0"] / ["10.0"]
by world size (2, 4, 6, 8 only): its custom all-reduce runs messages below these sizes (custom_all_reduce.py
CustomAllreduce.should_custom_ar: inp_size < max_size), capped at VLLM_CUSTOM_BUFFER_BYTES"""
VLLM_CUSTOM_BUFFER_BYTES = 8 * MIB
"""custom_all_reduce.py CustomAllreduce.__init__: max_size = min(the table's size, its max_size argument, default
8192 * 1024), the IPC buffer it allocates (cuda_communicator.py passes none): on Hopper the table's 64 / 32 MiB at
2 / 4 GPUs run the custom kernel below 8 MiB only. The H100 table shows the step: vLLM at TP 2 takes 20.2 us at
4 MiB and 45.0 us at 8 MiB (torch's two-shot kernel, as up to its 64 MiB symmetric-memory limit, 307 us there)"""
VLLM_SYMM_MEM_MAX_BYTES = {90: {2: 64 * MIB, 4: 32 * MIB, 6: 64 * MIB, 8: 64 * MIB},
                           100: {2: 8 * MIB, 4: 32 * MIB, 6: 128 * MIB, 8: 128 * MIB}}
"""the same file's SYMM_MEM_ALL_REDUCE_MAX_SIZES["9.0"] / ["10.0"]: larger messages run torch symmetric memory's
all-reduce (VLLM_ALLREDUCE_USE_SYMM_MEM, on by default; cuda_communicator.all_reduce tries the custom kernel, then
symm_mem, then PyNCCL) up to these sizes (symm_mem.should_use_symm_mem: inp_size <= max_size)"""
VLLM_MULTIMEM_SIZES = {90: (4, 6, 8), 100: (6, 8)}
"""symm_mem.py SymmMemCommunicator._WORLD_SIZES_MULTIMEM["9.0"] / ["10.0"]: multimem (NVLS) all-reduce at these
world sizes, else torch's two-shot kernel"""


VLLM_CUSTOM_PASS_BYTES = 36 * 512 * 16
"""bytes per peer one pass of vLLM's custom kernel loads: csrc/custom_all_reduce.cuh CustomAllreduce::allreduce
launches min(block_limit 36, ⌈packs / 512⌉) blocks of 512 threads, each thread one 16-byte pack per peer a pass"""
TORCH_TWO_SHOT_PASS_BYTES = 24 * 1024 * 16
"""the same of torch symmetric memory's two_shot_all_reduce_ (CUDASymmetricMemoryOps.cu: at most 24 blocks of 1024
threads, 16-byte vectors)"""


def vllm_allreduce_s(ek: EngineKernels, size_bytes: float, n: int, sm: int) -> float:
    """vLLM 0.24.0 on Hopper (sm 90) or Blackwell (sm 100) inside an NVSwitch node, by its size tables: the custom
    kernel below VLLM_CUSTOM_MAX_BYTES (and its 8 MiB buffer), one-stage at n = 2 or below 512 KiB (n <= 4) /
    256 KiB (n <= 8) (csrc/custom_all_reduce.cuh, CustomAllreduce::allreduce), else two-stage:
      one-stage  t_call + (n-1)·t_hop + max((n-1)·S / (B·η_1), pass bound of S per peer)
      two-stage  t_call,2 + (n-1)·t_hop,2 + max(2(n-1)/n · S / (B·η_1), pass bound of S/n per peer, twice)
    (the same peer loads; two barriers per peer), then torch symmetric memory up to VLLM_SYMM_MEM_MAX_BYTES,
    multimem (volume (n+1)/n) t_call,symm + v·S / (B·η_symm), or two-shot
    t_call,symm + max(2(n-1)/n · S / (B·η_2), pass bound of S/n, twice), and PyNCCL above (ring or NVLS, the lower
    volume). The pass bound (`pass_bound_s`) is the time a kernel of few thread blocks takes to stream its bytes per
    peer at a fixed number in flight: at n = 2 it, not the link, limits both kernels."""
    k, link = ek.k, ek.device.intra_node_bytes_per_s
    if size_bytes < min(VLLM_CUSTOM_MAX_BYTES[sm].get(n, 0.0), VLLM_CUSTOM_BUFFER_BYTES):
        if n == 2 or size_bytes < (512 if n <= 4 else 256) * 1024:
            return k.allreduce_call_s + (n - 1) * k.allreduce_hop_s + max(
                (n - 1) * size_bytes / (link * k.allreduce_efficiency),
                pass_bound_s(ek, size_bytes, VLLM_CUSTOM_PASS_BYTES, 1))
        return k.allreduce_twoshot_call_s + (n - 1) * k.allreduce_twoshot_hop_s + max(
            2 * (n - 1) / n * size_bytes / (link * k.allreduce_efficiency),
            pass_bound_s(ek, size_bytes / n, VLLM_CUSTOM_PASS_BYTES, 2))
    if size_bytes <= VLLM_SYMM_MEM_MAX_BYTES[sm].get(n, 0.0):
        if n in VLLM_MULTIMEM_SIZES[sm]:
            return k.allreduce_symm_call_s + (n + 1) / n * size_bytes / (link * k.allreduce_symm_efficiency)
        return k.allreduce_symm_call_s + max(2 * (n - 1) / n * size_bytes / (link * k.allreduce_twoshot_efficiency),
                                             pass_bound_s(ek, size_bytes / n, TORCH_TWO_SHOT_PASS_BYTES, 2))
    return nccl_allreduce_s(ek, size_bytes, n)


def pass_bound_s(ek: EngineKernels, peer_bytes: float, pass_bytes: float, phases: int) -> float:
    """A kernel whose grid loads `pass_bytes` per peer a pass, each pass one remote-load latency t_pass:
    phases · ⌈peer_bytes / pass_bytes⌉ · t_pass (0 without the constant)."""
    return phases * math.ceil(peer_bytes / pass_bytes) * ek.k.allreduce_pass_s


def two_stage_allreduce_s(ek: EngineKernels, size_bytes: float, n: int, efficiency: float) -> float:
    """A custom two-stage kernel (reduce-scatter then all-gather through peer memory, a barrier per peer):
    t_call,2 + (n-1)·t_hop,2 + 2(n-1)/n · S / (B·η)."""
    k, link = ek.k, ek.device.intra_node_bytes_per_s
    return (k.allreduce_twoshot_call_s + (n - 1) * k.allreduce_twoshot_hop_s
            + 2 * (n - 1) / n * size_bytes / (link * efficiency))


KIB = 1024.0
SGLANG_SM90_PUSH_MAX_BYTES = {2: 2 * MIB, 3: 512 * KIB, 4: 384 * KIB, 5: 256 * KIB, 6: 192 * KIB, 7: 192 * KIB,
                              8: 160 * KIB}
"""SGLang 0.5.14 python/sglang/srt/distributed/device_communicators/custom_all_reduce_v2.py _maybe_init_config, the
non-SM100 THRESHOLD_2_SHOT_MAP ("based on benchmarks on H200"): one_shot_push_threshold by world size; messages of
at most this size run the one-shot push kernel (_determine_algo; the push buffer is sized to it)"""
SGLANG_SM90_PULL_MAX_BYTES = {2: 16 * MIB, 3: 512 * KIB, 4: 256 * KIB, 5: 256 * KIB, 6: 192 * KIB, 7: 192 * KIB,
                              8: 160 * KIB}
"""the same table's one_shot_pull_threshold (world size 2: unbounded, clipped to the pull buffer): larger messages
up to it run the one-shot pull kernel, larger still the two-shot pull kernel"""
SGLANG_PULL_BUFFER_BYTES = 16 * MIB
"""CustomAllReduceV2's default max_pull_size (16 MiB): should_custom_ar takes messages up to max(pull, push)
buffer, larger ones go to NCCL (parallel_state.GroupCoordinator.all_reduce, in place on PyNCCL)"""


def sglang_v2_allreduce_s(ek: EngineKernels, size_bytes: float, n: int) -> float:
    """SGLang 0.5.14 on Hopper inside an NVSwitch node (CustomAllReduceV2, world sizes 2-8), by its size tables:
      one-shot push (each GPU writes its input into every peer's buffer) up to SGLANG_SM90_PUSH_MAX_BYTES:
          t_call + (n-1)·(t_hop + S / (B·η_1))
      one-shot pull (each GPU reads the n-1 peers' inputs) up to SGLANG_SM90_PULL_MAX_BYTES:
          t_call,2 + (n-1)·(t_hop,2 + S / (B·η_2))
      two-shot pull (reduce-scatter, then the reduced share broadcast to every peer) up to the 16 MiB pull buffer:
          t_call,2 + (n-1)·t_hop,2 + 2(n-1)/n · S / (B·η_2)
    (the two pull kernels are one kernel file, jit_kernel/csrc/distributed/custom_all_reduce_pull.cuh: one set of
    constants), then NCCL (`nccl_allreduce_s`)."""
    k, link = ek.k, ek.device.intra_node_bytes_per_s
    if n not in SGLANG_SM90_PUSH_MAX_BYTES or size_bytes > SGLANG_PULL_BUFFER_BYTES:
        return nccl_allreduce_s(ek, size_bytes, n)
    if size_bytes <= SGLANG_SM90_PUSH_MAX_BYTES[n]:
        return one_shot_allreduce_s(ek, size_bytes, n)
    if size_bytes <= SGLANG_SM90_PULL_MAX_BYTES[n]:
        return (k.allreduce_twoshot_call_s
                + (n - 1) * (k.allreduce_twoshot_hop_s + size_bytes / (link * k.allreduce_twoshot_efficiency)))
    return two_stage_allreduce_s(ek, size_bytes, n, k.allreduce_twoshot_efficiency)


TRTLLM_TOKEN_BYTES = 4096 * 2
"""bytes of a token in the lookup table's row aiconfigurator's collector reads: hidden size 4096 (the shape it gives
every message above 4096 elements: [elements / 4096, 4096]), BF16"""
TRTLLM_STRATEGY_ROWS = {
    90: {2: "OOOOOOOOOOOO", 4: "OOOOOOOOTTT", 8: "OOOOOOONTT"},
    100: {2: "OOOOOOOOOOOO", 4: "OOOOOOOOOOTT", 8: "OOOOOOOOOTTTT"},
}
"""TensorRT-LLM 1.3.0rc20 cpp/tensorrt_llm/common/customAllReduceUtils.h AllReduceBestStrategyTableSM90 / SM100
(selectStrategyLookUpTable: SM versions below 100 read the SM90 table, 100 and above the SM100 one), fusion NONE, hidden
size 4096, by TP size: the strategy at index floor(log2 tokens) (1 to 16384 tokens), O ONESHOT (4), T TWOSHOT (5), N
NCCL (0); every index past the string is NCCL. SM90: one-shot up to 2048 tokens at TP 2; at TP 4 up to 128, two-shot
256-1024; at TP 8 up to 64, NCCL at 128, two-shot 256-512; SM100: one-shot up to 2048 tokens at TP 2; at TP 4 up to 512,
two-shot 1024-2048; at TP 8 up to 256, two-shot 512-4096. A message under one token reads index 0 (one-shot in every
hidden-size row of both tables). thop/allreduceOp.cpp AllreduceOp::selectImplementation runs NCCL above the custom
kernels' workspace before it consults the table (ifFallbackToNCCL: message bytes > customAllReduceUtils.h
getMaxRequiredWorkspaceSize, 64 MiB at every TP size in 1.3.0rc20: raised from 16 MB at two GPUs / 8 MB above by
NVIDIA/TensorRT-LLM PR #9145, merged November 2025; tensorrt_llm/_torch/distributed/allreduce_helper.py
max_workspace_size_auto allocates the same). 64 MiB is 8192 tokens of this row, where every row is NCCL already: the
workspace never binds here. Version: of the header's stored versions, these rows are those of the one with the 64 MiB
workspace (and PR #9541's TRTLLM_NAMESPACE_BEGIN, November 2025), the newest; the older ones (16 MB / 8 MB, other rows:
SM90 two-shot at 8-64 tokens at TP 4, at 2 and 8 tokens at TP 2) predate the 1.3.0 candidates (1.3.0rc20: June 2026),
and the measured tables show no two-shot step there"""


def trtllm_strategy(size_bytes: float, n: int, sm: int) -> str:
    """TensorRT-LLM 1.3.0rc20's AUTO all-reduce choice as aiconfigurator's collector runs it
    (collector/network/collect_all_reduce.py: AllReduceStrategy.AUTO, fusion NONE, TLLM_DISABLE_ALLREDUCE_AUTOTUNE=1,
    so _torch/distributed/ops.py AllReduce.forward calls the C++ op directly, no autotuner; one node on x86: no
    MNNVL) for a message of size_bytes over n GPUs on SM version sm (90, 100): the lookup table's entry in the row of
    the power of two at or below n (the table's index is the integer part of log2(n) - 1; none above 8: NCCL) at index
    floor(log2 tokens): "O", "T" or "N"."""
    row = 2 ** int(math.log2(n))
    if row > 8:
        return "N"
    index = max(int(size_bytes // TRTLLM_TOKEN_BYTES).bit_length() - 1, 0)
    strategies = TRTLLM_STRATEGY_ROWS[sm][row]
    return strategies[index] if index < len(strategies) else "N"


def trtllm_allreduce_s(ek: EngineKernels, size_bytes: float, n: int, sm: int) -> float:
    """TensorRT-LLM 1.3.0rc20 inside an NVSwitch node on SM version sm by its source's rules (`trtllm_strategy`):
    NCCL (`nccl_allreduce_s`), one-shot (`one_shot_allreduce_s`) or two-shot (`two_stage_allreduce_s`: t_call,2 +
    2(n-1)/n · S / (B·η_2)). Only the table's hidden-4096 row is modelled (serving passes the message size alone)."""
    strategy = trtllm_strategy(size_bytes, n, sm)
    if strategy == "N":
        return nccl_allreduce_s(ek, size_bytes, n)
    if strategy == "O":
        return one_shot_allreduce_s(ek, size_bytes, n)
    return two_stage_allreduce_s(ek, size_bytes, n, ek.k.allreduce_twoshot_efficiency)
