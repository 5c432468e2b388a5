"""Tiny specs for the train planner's tests (small enough to enumerate every strategy and split)."""

from costmodels.hardware import ClusterSpec, DeviceSpec
from costmodels.model import ModelSpec, MoESpec


def tiny_model(layers=4, hidden=512, heads=8, kv_heads=4, ffn=1536, vocab=4096, moe=False, first_dense=0, mtp=0):
    return ModelSpec(name="tiny", layers=layers, hidden=hidden, heads=heads, kv_heads=kv_heads,
                     head_dim=hidden // heads, ffn=ffn, vocab=vocab, mtp_layers=mtp,
                     moe=MoESpec(experts=4, top_k=2, expert_ffn=512, first_dense_layers=first_dense) if moe else None)


def tiny_device(hbm_gib=1.0, per_node=4):
    return DeviceSpec(name="toy", bf16_flops_per_s=100e12, fp8_flops_per_s=0.0, hbm_bytes=hbm_gib * 2**30,
                      hbm_bytes_per_s=1e12, devices_per_node=per_node, intra_node_bytes_per_s=100e9,
                      inter_node_bytes_per_s=10e9, memory_reserve_bytes=0.1 * 2**30)


def tiny_cluster(gpus=8, hbm_gib=1.0, per_node=4):
    return ClusterSpec.homogeneous(tiny_device(hbm_gib, per_node), gpus, per_node)
