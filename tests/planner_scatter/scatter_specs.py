"""Specs built directly (no profile files) for the scatter tests."""

from costmodels.hardware import ClusterSpec, DeviceSpec
from costmodels.model import ModelSpec

LLAMA8B = ModelSpec(name="llama3-8b-like", layers=32, hidden=4096, heads=32, kv_heads=8, head_dim=128, ffn=14336,
                    vocab=128256)
H100 = DeviceSpec(name="h100-like", bf16_flops_per_s=989e12, fp8_flops_per_s=1979e12, hbm_bytes=80 * 2**30,
                  hbm_bytes_per_s=3.35e12, devices_per_node=8, intra_node_bytes_per_s=450e9,
                  inter_node_bytes_per_s=50e9)
SMALL_HBM = DeviceSpec(name="h100-40g-like", bf16_flops_per_s=989e12, fp8_flops_per_s=0, hbm_bytes=40 * 2**30,
                       hbm_bytes_per_s=3.35e12, devices_per_node=4, intra_node_bytes_per_s=450e9,
                       inter_node_bytes_per_s=50e9)


def cluster(device=H100, gpus=32, per_node=None) -> ClusterSpec:
    return ClusterSpec.homogeneous(device, gpus, per_node)

TINY = ModelSpec(name="llama-1b-like", layers=16, hidden=2048, heads=32, kv_heads=8, head_dim=64, ffn=8192,
                 vocab=128256)
"""~1.5e9 parameters: fits 40 GB GPUs at any ZeRO stage, while long sequences still need SP degree > 1"""
