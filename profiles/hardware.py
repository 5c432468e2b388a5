"""Hardware and cluster YAML -> DeviceSpec / ClusterSpec, converting human units to SI once.

Device YAML (profiles/hardware/NAME.yaml):

| key                    | unit              | DeviceSpec field          | required |
|------------------------|-------------------|---------------------------|----------|
| description            | text              | (shown by profiles show)  | no       |
| bf16_tflops            | 1e12 FLOP/s dense | bf16_flops_per_s          | yes      |
| fp8_tflops             | 1e12 FLOP/s dense | fp8_flops_per_s           | no (0)   |
| fp4_tflops             | 1e12 FLOP/s dense | fp4_flops_per_s (NVFP4)   | no (0)   |
| hbm_gib or hbm_gb      | 2^30 / 1e9 bytes  | hbm_bytes                 | one      |
| hbm_tb_per_s           | 1e12 bytes/s      | hbm_bytes_per_s           | yes      |
| l2_mib                 | 2^20 bytes        | l2_bytes                  | no (0)   |
| devices_per_node       | count             | devices_per_node          | yes      |
| intra_node_gb_per_s    | 1e9 bytes/s, per direction | intra_node_bytes_per_s | yes   |
| nic_gb_per_s           | 1e9 bytes/s per device, per direction | inter_node_bytes_per_s | yes |
| intra_node_latency_us  | 1e-6 s            | intra_node_latency_s      | no       |
| inter_node_latency_us  | 1e-6 s            | inter_node_latency_s      | no       |
| memory_reserve_gib     | 2^30 bytes        | memory_reserve_bytes      | no       |
| cost_per_hour          | currency / device-hour | cost_per_hour        | no       |
| calibration            | mapping of DeviceCalibration fields, SI | calibration | no |
| serving_engines        | {engine: EngineCalibration fields, SI} | serving_engines | no |

Cluster YAML (profiles/clusters/NAME.yaml): `name` (optional, default the file stem), optional
`inter_pool_gb_per_s`, and `pools:` a list of {name (optional), device (profile name or YAML path relative
to the cluster file), nodes, optional devices_per_node, intra_node_gb_per_s, nic_gb_per_s}.
"""

import dataclasses

from costmodels.hardware import MEASURED_ENGINES, ClusterSpec, DeviceCalibration, DeviceSpec, NodePool
from costmodels.serving_constants import SLOT_KEYS, EngineCalibration
from profiles.strict import Section

GB = 1e9
GIB = 2**30
MIB = 2**20
TB = 1e12
PER_US = 1e6  # microseconds per second

DEVICE_KEYS = ("description", "bf16_tflops", "fp8_tflops", "fp4_tflops", "hbm_gib", "hbm_gb", "hbm_tb_per_s",
               "l2_mib", "devices_per_node", "intra_node_gb_per_s", "nic_gb_per_s", "intra_node_latency_us",
               "inter_node_latency_us", "memory_reserve_gib", "cost_per_hour", "calibration", "serving_engines")
DEVICE_REQUIRED = ("bf16_tflops", "hbm_tb_per_s", "devices_per_node", "intra_node_gb_per_s", "nic_gb_per_s")
CALIBRATION_KEYS = tuple(f.name for f in dataclasses.fields(DeviceCalibration))
CLUSTER_KEYS = ("name", "description", "inter_pool_gb_per_s", "pools")
POOL_KEYS = ("name", "device", "nodes", "devices_per_node", "intra_node_gb_per_s", "nic_gb_per_s")


def device_from_mapping(data: dict, *, name: str, source: str) -> DeviceSpec:
    """Build a DeviceSpec from a parsed hardware YAML mapping."""
    s = Section(data, source=source, allowed=DEVICE_KEYS, required=DEVICE_REQUIRED)
    hbm_key = s.one_of(("hbm_gib", "hbm_gb"))
    hbm_unit = GIB if hbm_key == "hbm_gib" else GB
    default = {name: f.default for name, f in DeviceSpec.__dataclass_fields__.items()}
    return DeviceSpec(
        name=name,
        bf16_flops_per_s=s.number("bf16_tflops") * TB,
        fp8_flops_per_s=s.number("fp8_tflops", 0.0) * TB,
        fp4_flops_per_s=s.number("fp4_tflops", 0.0) * TB,
        hbm_bytes=s.number(hbm_key) * hbm_unit,
        hbm_bytes_per_s=s.number("hbm_tb_per_s") * TB,
        l2_bytes=s.number("l2_mib", 0.0) * MIB,
        devices_per_node=s.integer("devices_per_node"),
        intra_node_bytes_per_s=s.number("intra_node_gb_per_s") * GB,
        inter_node_bytes_per_s=s.number("nic_gb_per_s") * GB,
        intra_node_latency_s=s.number("intra_node_latency_us", default["intra_node_latency_s"] * PER_US) / PER_US,
        inter_node_latency_s=s.number("inter_node_latency_us", default["inter_node_latency_s"] * PER_US) / PER_US,
        memory_reserve_bytes=s.number("memory_reserve_gib", default["memory_reserve_bytes"] / GIB) * GIB,
        cost_per_hour=s.number("cost_per_hour", 0.0),
        calibration=calibration_from_mapping(s.raw("calibration", {}), source=source),
        serving_engines=engines_from_mapping(s.raw("serving_engines", {}), source=source),
        source=source,
    )


def calibration_from_mapping(data: dict, *, source: str) -> DeviceCalibration:
    """The `calibration:` block: exactly DeviceCalibration's field names, SI values; absent keys keep defaults."""
    s = Section(data, source=source, prefix="calibration", allowed=CALIBRATION_KEYS)
    values = {key: (s.text(key) if key == "source" else s.number(key)) for key in CALIBRATION_KEYS if key in s.data}
    return DeviceCalibration(**values)


OPTIONAL_KEYS = ("allreduce_vllm_sm100", "allreduce_trtllm_sm100", "allreduce_twoshot_hop_s", "allreduce_symm_call_s",
                 "allreduce_symm_efficiency", "moe_trtllm_gen", "prefill_tail_tile", "prefill_one_token_decode",
                 "decode_mha_as_gqa", "kv_warm_l2", "kv_l2_bytes_per_s", "fp8_sm100_tiles",
                 "bf16_sm100_tile", "moe_gen_l2_bytes", "moe_blockfp8_quant_s",
                 "moe_gen_act_s", "moe_blockfp8_act_s", "moe_gen_cta_s", "moe_warm_l2", "moe_input_quant",
                 "allreduce_sglang_v2", "allreduce_trtllm_sm90", "allreduce_vllm_sm90", "allreduce_pass_s",
                 "moe_blockfp8_k_overhead")
"""engine keys a profile may leave out (absent: 0, off), besides the fp4_* keys (NVFP4: Blackwell only): those only
an engine sets whose source picks its all-reduce by size tables (vLLM's SM90/SM100 and TensorRT-LLM's lookup tables,
SGLang's CustomAllReduceV2, vLLM's symmetric-memory and pass-bound terms), that runs Blackwell's TensorRT-LLM-gen fused
MoE or attention terms (costmodels/serving_attention_sm100.py), that quantises its MoE layer's input on its own
(moe_input_quant: TensorRT-LLM), or whose Triton MoE pays the block-scaled per-tile overhead"""


FLAGS = ("moe_fitted", "moe_fp8_fitted", "moe_blockfp8_fitted")
"""true/false engine keys (absent: true)"""


def engines_from_mapping(data: dict, *, source: str) -> tuple[EngineCalibration, ...]:
    """The `serving_engines:` block: {engine: {EngineCalibration field: SI value}}, sorted by engine name."""
    keys = tuple(f.name for f in dataclasses.fields(EngineCalibration) if f.name not in ("engine", *SLOT_KEYS))
    outer = Section(data, source=source, prefix="serving_engines", allowed=MEASURED_ENGINES)
    out = []
    for engine in sorted(outer.data):
        s = Section(outer.raw(engine), source=source, prefix=f"serving_engines.{engine}", allowed=keys,
                    required=tuple(k for k in keys if k not in ("source", *FLAGS, *OPTIONAL_KEYS)
                                   and not k.startswith("fp4_")))
        values = {key: (s.text(key) if key == "source" else s.flag(key) if key in FLAGS else s.number(key))
                  for key in keys if key in s.data}
        out.append(EngineCalibration(engine=engine, **values))
    return tuple(out)


def cluster_from_mapping(data: dict, *, name: str, source: str, resolve_device) -> ClusterSpec:
    """Build a ClusterSpec; `resolve_device(ref)` loads a pool's device (profile name or path)."""
    s = Section(data, source=source, allowed=CLUSTER_KEYS, required=("pools",))
    pools_raw = s.raw("pools")
    if not isinstance(pools_raw, list) or not pools_raw:
        raise s.error("pools", "must be a non-empty list of pools")
    pools = []
    for index, entry in enumerate(pools_raw):
        p = Section(entry, source=source, prefix=f"pools[{index}]", allowed=POOL_KEYS, required=("device", "nodes"))
        device = resolve_device(p.text("device"))
        pools.append(NodePool(
            name=p.text("name", device.name),
            device=device,
            nodes=p.integer("nodes"),
            devices_per_node=p.integer("devices_per_node", device.devices_per_node),
            intra_node_bytes_per_s=p.number("intra_node_gb_per_s", device.intra_node_bytes_per_s / GB) * GB,
            inter_node_bytes_per_s=p.number("nic_gb_per_s", device.inter_node_bytes_per_s / GB) * GB,
        ))
    return ClusterSpec(name=s.text("name", name), pools=tuple(pools),
                       inter_pool_bytes_per_s=s.number("inter_pool_gb_per_s", 0.0) * GB)
