"""One geometry for every cost path: weights per GPU agree across training, sequence and serving."""

import math

import pytest

from costmodels import ClusterSpec, ParallelConfig, TrainingWorkload, layer_costs, sequence, serving
from costmodels import geometry as G
from costmodels.flops import step_flops
from costmodels.memory import PARAM_BYTES
from profiles import list_profiles, load_device, load_model

MODELS = sorted(list_profiles()["models"])


def _training_params(model) -> float:
    """Parameters the training path holds on one GPU at tp = pp = dp = ep = 1 (MTP modules excluded)."""
    cl = ClusterSpec.homogeneous(load_device("h100-sxm"), 1)
    lc = layer_costs(model, cl.primary, TrainingWorkload(global_batch=1, seq_len=128), ParallelConfig(zero=0))
    mtp = model.mtp_layers * sum(G.mtp_params(model))
    per_param = lc.embed_weight_bytes / G.embedding_params(model)  # 18 B of states per parameter
    return (sum(lc.layer_weight_bytes) + lc.embed_weight_bytes + lc.head_weight_bytes) / per_param - mtp


@pytest.mark.parametrize("name", MODELS)
def test_weights_agree_across_paths(name):
    model = load_model(name)
    total = G.total_params(model)
    assert math.isclose(_training_params(model), total, rel_tol=1e-9)
    assert math.isclose(sequence.parameter_count(model), total, rel_tol=1e-12)
    assert math.isclose(sequence.static_bytes_per_gpu(model, tp=1, zero=0, dp=1), 18 * total, rel_tol=1e-12)
    # serving holds the bf16 weight matrices; it leaves out the norm vectors (2h per layer + final + MLA
    # latent norms), a few parts per million of the total
    served = serving.weight_bytes_per_gpu(model, serving.InstanceShape()) / PARAM_BYTES
    assert math.isclose(served, total, rel_tol=1e-4)


@pytest.mark.parametrize("name", MODELS)
def test_training_flops_follow_the_geometry(name):
    # without attention and MTP the forward FLOPs per token are 2 x the active parameters a token multiplies
    model = load_model(name)
    if model.mtp_layers:
        pytest.skip("MTP modules add their own FLOPs")
    moe = model.moe
    active = G.total_params(model) - G.embedding_params(model)  # the embedding is a lookup, not a GEMM
    if moe is not None:
        active -= model.moe_layers * (moe.experts - moe.top_k) * G.mlp_params(model, moe.expert_ffn)
    norms = model.layers * 2 * model.hidden + model.hidden
    if model.attention == "mla":
        norms += model.layers * (model.mla.q_lora_rank + model.mla.kv_lora_rank)
    if model.tied_embeddings:
        active += G.embedding_params(model)  # the LM head reuses the embedding matrix
    one_token = step_flops(model, 1, 1, "none")  # s = 1: the attention core is negligible
    assert math.isclose(one_token / 3, 2 * (active - norms), rel_tol=1e-3)
