"""Small specs shared by the cost-model tests (built directly, no profile files)."""

from costmodels import ClusterSpec, DeviceCalibration, DeviceSpec, ModelSpec, MoESpec

GiB = 2.0**30


def gpt(layers=24, hidden=2304, heads=24, vocab=51200, seq=2048, name="gpt", tied=True) -> ModelSpec:
    """GPT-3 style: MHA, 4h GELU MLP (the Megatron paper's architecture)."""
    return ModelSpec(name=name, layers=layers, hidden=hidden, heads=heads, kv_heads=heads, head_dim=hidden // heads,
                     ffn=4 * hidden, vocab=vocab, tied_embeddings=tied, gated_mlp=False, attention="mha",
                     max_position=seq)


def moe_model(layers=4, experts=8, top_k=2, shared=0, first_dense=0) -> ModelSpec:
    return ModelSpec(name="tiny-moe", layers=layers, hidden=1024, heads=16, kv_heads=4, head_dim=64, ffn=4096,
                     vocab=32000, moe=MoESpec(experts=experts, top_k=top_k, expert_ffn=1024, shared_experts=shared,
                                              first_dense_layers=first_dense))


def device(name="test-gpu", hbm_gib=80.0, fp8=False, **cal) -> DeviceSpec:
    """An A100-80GB-like device with an explicit calibration (fp8: with FP8 tensor cores at 2x BF16)."""
    base = dict(gemm_efficiency_max=0.75, gemm_half_flops=1e10, attention_efficiency=0.5, hbm_efficiency=0.85,
                intra_node_efficiency=0.75, inter_node_efficiency=0.9, collective_latency_s=20e-6,
                kernel_floor_s=5e-6, dp_overlap=0.5, tp_overlap=0.0, step_overhead_s=0.0)
    base.update(cal)
    return DeviceSpec(name=name, bf16_flops_per_s=312e12, fp8_flops_per_s=624e12 if fp8 else 0.0,
                      hbm_bytes=hbm_gib * GiB,
                      hbm_bytes_per_s=2.039e12, devices_per_node=8, intra_node_bytes_per_s=300e9,
                      inter_node_bytes_per_s=25e9, calibration=DeviceCalibration(**base))


def cluster(num_gpus=64, **kw) -> ClusterSpec:
    return ClusterSpec.homogeneous(device(**kw), num_gpus)
