"""TP all-reduce time of a serving engine inside a node and across nodes (seconds).

The constants are an engine's `KernelConstants` (fitted per device by benchmarks/serve_engine_fit.py to the
engines' measured per-op tables); `EngineKernels` carries them with the device.

  TP all-reduce inside a node: the engine's custom one-shot / two-shot kernels below a size limit, NCCL (ring or
      NVLS) above it (`engine_allreduce_s`); across nodes the comm layer's ring (costmodels/comm.py)
"""

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
    and above it NCCL, t_call,nccl + v·S / (B·η_nccl) with the per-GPU volume v of the lower-volume algorithm:
    ring 2(n-1)/n, or NVLS (in-switch reduction; sends S, receives S/n, then sends S/n, receives S) (n+1)/n;
    an engine with allreduce_vllm_sm100 set picks by vLLM's Blackwell size tables (`vllm_sm100_allreduce_s`)."""
    k, link = ek.k, ek.device.intra_node_bytes_per_s
    if k.allreduce_vllm_sm100:
        return vllm_sm100_allreduce_s(ek, size_bytes, n)
    if size_bytes >= k.allreduce_custom_max_bytes:
        return nccl_allreduce_s(ek, size_bytes, n)
    two = k.allreduce_twoshot_call_s + 2 * (n - 1) / n * size_bytes / (link * k.allreduce_twoshot_efficiency)
    return min(one_shot_allreduce_s(ek, size_bytes, n), two)


def one_shot_allreduce_s(ek: EngineKernels, size_bytes: float, n: int) -> float:
    """The custom one-shot kernel, every GPU reading the n-1 peers' buffers: t_call + (n-1)·(t_hop + S / (B·η_1))."""
    k, link = ek.k, ek.device.intra_node_bytes_per_s
    return k.allreduce_call_s + (n - 1) * (k.allreduce_hop_s + size_bytes / (link * k.allreduce_efficiency))


def nccl_allreduce_s(ek: EngineKernels, size_bytes: float, n: int) -> float:
    """NCCL's all-reduce over NVLink on its lower-volume algorithm (ring 2(n-1)/n or NVLS (n+1)/n per GPU):
    t_call,nccl + v·S / (B·η_nccl)."""
    k, link = ek.k, ek.device.intra_node_bytes_per_s
    volume = min(2 * (n - 1) / n, (n + 1) / n)
    return k.allreduce_nccl_call_s + volume * size_bytes / (link * k.allreduce_nccl_efficiency)


MIB = 2.0**20
VLLM_SM100_CUSTOM_MAX_BYTES = {2: 2 * MIB, 4: 2 * MIB, 6: MIB, 8: MIB}
"""vLLM 0.24.0 vllm/distributed/device_communicators/all_reduce_utils.py CUSTOM_ALL_REDUCE_MAX_SIZES["10.0"]: its
custom all-reduce runs messages below these sizes (should_custom_ar; world sizes 2, 4, 6, 8 only)"""
VLLM_SM100_SYMM_MEM_MAX_BYTES = {2: 8 * MIB, 4: 32 * MIB, 6: 128 * MIB, 8: 128 * MIB}
"""the same file's SYMM_MEM_ALL_REDUCE_MAX_SIZES["10.0"]: larger messages run torch symmetric memory's all-reduce
(cuda_communicator.all_reduce tries the custom kernel, then symm_mem, then PyNCCL) below these sizes"""
VLLM_SM100_MULTIMEM_SIZES = (6, 8)
"""symm_mem.py SymmMemCommunicator._WORLD_SIZES_MULTIMEM["10.0"]: multimem (NVLS) all-reduce, else two-shot"""


def vllm_sm100_allreduce_s(ek: EngineKernels, size_bytes: float, n: int) -> float:
    """vLLM 0.24.0 on Blackwell (SM100) inside an NVSwitch node, by its size tables: the custom kernel below
    VLLM_SM100_CUSTOM_MAX_BYTES, one-stage at n = 2 or below 512 KiB (n <= 4) / 256 KiB (n <= 8)
    (csrc/custom_all_reduce.cuh, CustomAllreduce::allreduce), else two-stage:
      one-stage  t_call + (n-1)·(t_hop + S / (B·η_1))
      two-stage  t_call,2 + (n-1)·t_hop,2 + 2(n-1)/n · S / (B·η_1)   (the same peer loads; two barriers per peer)
    then torch symmetric memory below VLLM_SM100_SYMM_MEM_MAX_BYTES, multimem (volume (n+1)/n) or two-shot
    (2(n-1)/n), t_call,symm + v·S / (B·η_symm), and PyNCCL above (ring or NVLS, the lower volume)."""
    k, link = ek.k, ek.device.intra_node_bytes_per_s
    if size_bytes < VLLM_SM100_CUSTOM_MAX_BYTES.get(n, 0.0):
        if n == 2 or size_bytes < (512 if n <= 4 else 256) * 1024:
            return one_shot_allreduce_s(ek, size_bytes, n)
        return (k.allreduce_twoshot_call_s + (n - 1) * k.allreduce_twoshot_hop_s
                + 2 * (n - 1) / n * size_bytes / (link * k.allreduce_efficiency))
    if size_bytes < VLLM_SM100_SYMM_MEM_MAX_BYTES.get(n, 0.0):
        volume = (n + 1) / n if n in VLLM_SM100_MULTIMEM_SIZES else 2 * (n - 1) / n
        return k.allreduce_symm_call_s + volume * size_bytes / (link * k.allreduce_symm_efficiency)
    return nccl_allreduce_s(ek, size_bytes, n)
