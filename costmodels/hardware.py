"""Hardware specs: DeviceSpec (datasheet figures + a separate fitted calibration block) and ClusterSpec.

Datasheet numbers and fitted factors never mix: `DeviceSpec` fields are what the vendor publishes,
`DeviceCalibration` holds achievable fractions fitted against measured runs (see profiles/hardware/*.yaml
for the sources and benchmarks/calibrate.py for the fit). Link bandwidths are per device, per direction.
"""

from dataclasses import dataclass

from costmodels.errors import require
from costmodels.serving_constants import EngineCalibration

DTYPES = ("bf16", "fp16", "fp8")
MEASURED_ENGINES = ("sglang", "trtllm", "vllm")
"""inference engines whose kernel constants a profile may carry (serving_engines)"""


@dataclass(frozen=True, kw_only=True, slots=True)
class DeviceCalibration:
    """Achievable fractions of datasheet peaks and fixed overheads, fitted once per device.

    GEMM efficiency follows a saturating curve in the GEMM's FLOP count F per dtype, attention efficiency
    one in the work of a query row (costmodels/compute.py).
    """

    gemm_efficiency_max: float = 0.80
    """asymptotic fraction of peak dense FLOP/s reached by large GEMMs"""
    gemm_half_flops: float = 2.0e9
    """GEMM size (FLOPs) at which efficiency reaches half of gemm_efficiency_max"""
    fp8_gemm_efficiency_max: float = 0.60
    """asymptotic fraction of the FP8 peak reached by large FP8 GEMMs (own curve: same GEMM, twice the peak)"""
    fp8_gemm_half_flops: float = 1.0e11
    """FP8 GEMM size (FLOPs) at which FP8 efficiency reaches half of fp8_gemm_efficiency_max"""
    attention_efficiency: float = 0.60
    """asymptotic fraction of the 16-bit peak reached by fused (flash) attention kernels on long rows"""
    attention_half_work: float = 512.0
    """row work (keys x head width / 128) at which attention reaches half of attention_efficiency"""
    eager_elementwise_factor: float = 1.0
    """element-wise HBM traffic of an eager (uncompiled) PyTorch model relative to fused kernels (>= 1)"""
    sdpa_attention_factor: float = 1.0
    """speed of PyTorch SDPA's flash kernel (FlashAttention-2) relative to cuDNN/TE fused attention"""
    hbm_efficiency: float = 0.85
    """fraction of datasheet HBM bandwidth reached by streaming kernels"""
    intra_node_efficiency: float = 0.75
    """fraction of the intra-node link bandwidth seen by large collectives (bus bandwidth)"""
    inter_node_efficiency: float = 0.90
    """fraction of the NIC line rate seen by large collectives"""
    collective_latency_s: float = 20e-6
    """alpha: fixed latency of one collective call"""
    kernel_floor_s: float = 5e-6
    """minimum time of any kernel (launch bound)"""
    dp_overlap: float = 0.8
    """fraction of data-parallel gradient/parameter traffic hidden behind compute"""
    tp_overlap: float = 0.0
    """fraction of tensor-parallel traffic hidden behind compute"""
    step_overhead_s: float = 0.0
    """fixed per-training-step overhead (optimizer launch, data loading, logging)"""
    decode_step_overhead_s: float = 1.0e-3
    """fixed per-iteration overhead of a serving engine (scheduling, sampling, launch)"""
    serving_gemm_efficiency_max: float = 0.70
    """serving: asymptotic fraction of peak reached by prefill GEMMs inside an inference engine"""
    serving_gemm_half_flops: float = 2.0e10
    """serving: per-GPU GEMM size (FLOPs) at which prefill GEMM efficiency is half its maximum"""
    allreduce_hop_latency_s: float = 7.0e-6
    """serving: latency of one step of a small-message TP all-reduce (a ring of n ranks takes 2(n-1) steps)"""
    serving_hbm_efficiency: float = 0.80
    """serving: fraction of HBM bandwidth reached by an engine's decode kernels (weights and KV reads)"""
    serving_kernel_floor_s: float = 5.0e-6
    """serving: GPU-side minimum time of one kernel (replayed from a CUDA graph)"""
    serving_allreduce_efficiency: float = 0.75
    """serving: fraction of the intra-node link bandwidth seen by an engine's TP all-reduces of activations"""
    launch_floor_s: float = 9.0e-6
    """serving: CPU launch cost of one kernel when the engine runs eagerly (no CUDA graphs)"""
    seq_overhead_s: float = 3.0e-4
    """serving: CPU time per running sequence per engine iteration (scheduling, sampling) in an eager engine"""
    prefill_overhead_s: float = 1.0e-2
    """serving: fixed CPU/host time of one prefill iteration (input preparation, first-token sampling)"""
    source: str = "uncalibrated defaults"
    """how these numbers were obtained"""

    def __post_init__(self) -> None:
        for name in ("gemm_efficiency_max", "fp8_gemm_efficiency_max", "attention_efficiency", "sdpa_attention_factor",
                     "hbm_efficiency", "serving_allreduce_efficiency", "serving_hbm_efficiency",
                     "intra_node_efficiency", "inter_node_efficiency"):
            v = getattr(self, name)
            require(0.0 < v <= 1.0, f"must be in (0, 1], got {v}", field=f"calibration.{name}")
        for name in ("dp_overlap", "tp_overlap"):
            v = getattr(self, name)
            require(0.0 <= v <= 1.0, f"must be in [0, 1], got {v}", field=f"calibration.{name}")
        require(0.0 < self.serving_gemm_efficiency_max <= 1.0,
                f"must be in (0, 1], got {self.serving_gemm_efficiency_max}",
                field="calibration.serving_gemm_efficiency_max")
        require(self.eager_elementwise_factor >= 1.0, f"must be >= 1, got {self.eager_elementwise_factor}",
                field="calibration.eager_elementwise_factor")
        for name in ("gemm_half_flops", "fp8_gemm_half_flops", "attention_half_work", "collective_latency_s",
                     "kernel_floor_s", "step_overhead_s", "decode_step_overhead_s", "serving_gemm_half_flops",
                     "allreduce_hop_latency_s", "serving_kernel_floor_s", "launch_floor_s",
                     "seq_overhead_s", "prefill_overhead_s"):
            v = getattr(self, name)
            require(v >= 0.0, f"must be >= 0, got {v}", field=f"calibration.{name}")


@dataclass(frozen=True, kw_only=True, slots=True)
class DeviceSpec:
    """One accelerator and the node it usually ships in (datasheet figures)."""

    name: str
    """profile name"""
    bf16_flops_per_s: float
    """peak dense BF16/FP16 tensor FLOP/s (not the 2:4-sparse figure)"""
    fp8_flops_per_s: float
    """peak dense FP8 FLOP/s (0 when the device has no FP8 tensor cores)"""
    fp4_flops_per_s: float = 0.0
    """peak dense FP4 (NVFP4: E2M1 with FP8 scales per 16 elements) FLOP/s (0 when the device has no FP4 tensor
    cores: every pre-Blackwell GPU)"""
    hbm_bytes: float
    """device memory in bytes"""
    hbm_bytes_per_s: float
    """device memory bandwidth"""
    l2_bytes: float = 0.0
    """last-level (L2) cache in bytes (0: unknown; serving's FP8 quantise kernel and the per-op tables' warm-L2
    reads use it)"""
    devices_per_node: int
    """devices in the usual node (scale-up domain)"""
    intra_node_bytes_per_s: float
    """scale-up link bandwidth per device, per direction (NVLink / Infinity Fabric / PCIe)"""
    inter_node_bytes_per_s: float
    """scale-out NIC bandwidth per device, per direction"""
    intra_node_latency_s: float = 5e-6
    """one hop inside a node"""
    inter_node_latency_s: float = 10e-6
    """one hop across nodes"""
    memory_reserve_bytes: float = 2.0 * 2**30
    """memory the framework and CUDA context keep (not usable by tensors)"""
    cost_per_hour: float = 0.0
    """list or cloud price per device-hour, for cost objectives (0 = unknown)"""
    calibration: DeviceCalibration = DeviceCalibration()
    """fitted efficiencies"""
    serving_engines: tuple[EngineCalibration, ...] = ()
    """per inference engine kernel constants fitted to measured per-op tables (empty: none measured)"""
    source: str = ""
    """where this spec came from"""

    def __post_init__(self) -> None:
        src = self.source or None
        for name in ("bf16_flops_per_s", "hbm_bytes", "hbm_bytes_per_s", "intra_node_bytes_per_s",
                     "inter_node_bytes_per_s"):
            require(getattr(self, name) > 0, "must be > 0", field=name, source=src)
        require(self.fp8_flops_per_s >= 0, "must be >= 0", field="fp8_flops_per_s", source=src)
        require(self.fp4_flops_per_s >= 0, "must be >= 0", field="fp4_flops_per_s", source=src)
        require(self.devices_per_node >= 1, "must be >= 1", field="devices_per_node", source=src)
        require(0 <= self.memory_reserve_bytes < self.hbm_bytes, "must be in [0, hbm)", field="memory_reserve_bytes",
                source=src)

    def peak_flops_per_s(self, dtype: str) -> float:
        """Dense peak for a compute dtype; FP8 falls back to BF16 on devices without FP8; FP4 only where the device
        has it (SpecError naming the dtypes it has)."""
        if dtype == "fp4":
            require(self.fp4_flops_per_s > 0, f"device {self.name!r} has no FP4 tensor cores (fp4_tflops); its "
                    f"dtypes: {', '.join(self.dtypes)}", field="dtype")
            return self.fp4_flops_per_s
        require(dtype in DTYPES, f"unknown dtype {dtype!r}; valid: {', '.join(DTYPES)}", field="dtype")
        if dtype == "fp8" and self.fp8_flops_per_s > 0:
            return self.fp8_flops_per_s
        return self.bf16_flops_per_s

    @property
    def dtypes(self) -> tuple[str, ...]:
        """Weight/GEMM dtypes the device runs at their own peak, plus BF16's fp16 (fp4 only with an FP4 peak)."""
        return ("bf16", "fp16", *(("fp8",) if self.fp8_flops_per_s > 0 else ()),
                *(("fp4",) if self.fp4_flops_per_s > 0 else ()))

    @property
    def usable_bytes(self) -> float:
        return self.hbm_bytes - self.memory_reserve_bytes


@dataclass(frozen=True, kw_only=True, slots=True)
class NodePool:
    """Identical nodes of one device type."""

    name: str
    """pool name, unique in the cluster"""
    device: DeviceSpec
    """the accelerator"""
    nodes: int
    """number of nodes"""
    devices_per_node: int
    """devices per node (defaults to the device's node shape when loaded)"""
    intra_node_bytes_per_s: float
    """scale-up bandwidth per device, per direction"""
    inter_node_bytes_per_s: float
    """scale-out bandwidth per device, per direction"""

    def __post_init__(self) -> None:
        require(self.nodes >= 1, "must be >= 1", field=f"pools.{self.name}.nodes")
        require(self.devices_per_node >= 1, "must be >= 1", field=f"pools.{self.name}.devices_per_node")
        require(self.intra_node_bytes_per_s > 0, "must be > 0", field=f"pools.{self.name}.intra_node_bytes_per_s")
        require(self.inter_node_bytes_per_s > 0, "must be > 0", field=f"pools.{self.name}.inter_node_bytes_per_s")

    @property
    def num_devices(self) -> int:
        return self.nodes * self.devices_per_node


@dataclass(frozen=True, kw_only=True, slots=True)
class ClusterSpec:
    """One or more pools; several pools = a heterogeneous cluster."""

    name: str
    """cluster name"""
    pools: tuple[NodePool, ...]
    """the pools, in a fixed order"""
    inter_pool_bytes_per_s: float = 0.0
    """bandwidth per device between pools (0 = the slower pool's NIC bandwidth)"""

    def __post_init__(self) -> None:
        require(len(self.pools) >= 1, "a cluster needs at least one pool", field="pools")
        names = [p.name for p in self.pools]
        require(len(set(names)) == len(names), f"pool names must be unique, got {names}", field="pools")
        require(self.inter_pool_bytes_per_s >= 0, "must be >= 0", field="inter_pool_bytes_per_s")

    @classmethod
    def homogeneous(cls, device: DeviceSpec, num_devices: int, devices_per_node: int | None = None) -> "ClusterSpec":
        """`num_devices` devices of one kind in nodes of `devices_per_node` (default: the device's node shape).

        A partial last node is allowed only when everything fits in one node.
        """
        per_node = device.devices_per_node if devices_per_node is None else devices_per_node
        require(num_devices >= 1, f"must be >= 1, got {num_devices}", field="num_gpus")
        require(per_node >= 1, f"must be >= 1, got {per_node}", field="gpus_per_node")
        if num_devices < per_node:
            per_node = num_devices
        require(num_devices % per_node == 0,
                f"{num_devices} GPUs do not fill whole nodes of {per_node}; use a multiple of {per_node}",
                field="num_gpus")
        pool = NodePool(name=device.name, device=device, nodes=num_devices // per_node, devices_per_node=per_node,
                        intra_node_bytes_per_s=device.intra_node_bytes_per_s,
                        inter_node_bytes_per_s=device.inter_node_bytes_per_s)
        return cls(name=f"{num_devices}x{device.name}", pools=(pool,))

    @property
    def num_devices(self) -> int:
        return sum(p.num_devices for p in self.pools)

    @property
    def is_heterogeneous(self) -> bool:
        return len(self.pools) > 1

    @property
    def primary(self) -> NodePool:
        """The first pool (the only one in a homogeneous cluster)."""
        return self.pools[0]

    def pool(self, name: str) -> NodePool:
        for p in self.pools:
            if p.name == name:
                return p
        raise KeyError(name)
