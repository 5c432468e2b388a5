"""Every shipped profile loads, and the model profiles have their published parameter counts."""

import math

import pytest

import profiles
from costmodels.hardware import ClusterSpec, DeviceSpec
from costmodels.model import ModelSpec
from profiles.params import count_parameters

HARDWARE = ("a100-40gb", "a100-80gb", "h100-sxm", "h100-pcie", "h800", "h200", "b200", "mi300x", "l40s")
MODELS = ("llama3-8b", "llama3-70b", "llama3.1-70b", "llama3-405b", "llama2-7b", "llama2-70b", "mixtral-8x7b",
          "mixtral-8x22b", "qwen3-30b-a3b", "qwen3-32b", "qwen3-235b-a22b", "qwen2-57b-a14b", "deepseek-v3",
          "gpt3-175b")

# Published sizes (model cards / papers): (total, active) parameters.
PUBLISHED = {
    "llama3-8b": (8.03e9, None),
    "llama3-70b": (70.6e9, None),
    "llama3.1-70b": (70.6e9, None),
    "llama3-405b": (405.9e9, None),
    "llama2-7b": (6.74e9, None),
    "llama2-70b": (69.0e9, None),
    "mixtral-8x7b": (46.7e9, 12.9e9),
    "mixtral-8x22b": (141e9, 39e9),
    "qwen3-30b-a3b": (30.5e9, 3.3e9),
    "qwen3-32b": (32.8e9, None),
    "qwen3-235b-a22b": (235e9, 22e9),
    "qwen2-57b-a14b": (57.4e9, 14.2e9),
    "deepseek-v3": (671e9, 37e9),
    "gpt3-175b": (175e9, None),
}


def test_list_profiles_names_every_shipped_profile():
    names = profiles.list_profiles()
    assert sorted(names) == ["clusters", "hardware", "models"]
    assert set(HARDWARE) <= set(names["hardware"])
    assert set(MODELS) <= set(names["models"])
    assert {"h100x16-a100x16", "h200x8-h100x8"} <= set(names["clusters"])
    assert all(v == sorted(v) for v in names.values())


@pytest.mark.parametrize("name", HARDWARE)
def test_hardware_profile_loads_in_si_units(name):
    d = profiles.load_device(name)
    assert isinstance(d, DeviceSpec) and d.name == name
    assert 1e14 < d.bf16_flops_per_s < 1e16  # FLOP/s, not TFLOP/s
    assert d.fp8_flops_per_s == 0 or d.fp8_flops_per_s >= d.bf16_flops_per_s
    assert 30 * 2**30 < d.hbm_bytes < 300e9
    assert 5e11 < d.hbm_bytes_per_s < 1e13
    assert d.inter_node_bytes_per_s <= d.intra_node_bytes_per_s
    assert d.calibration.source


def test_hardware_numbers_match_the_datasheets():
    h100 = profiles.load_device("h100-sxm")
    assert h100.bf16_flops_per_s == pytest.approx(989.4e12)
    assert h100.hbm_bytes == 80 * 2**30
    assert h100.intra_node_bytes_per_s == pytest.approx(450e9)
    assert h100.inter_node_bytes_per_s == pytest.approx(50e9)
    h800 = profiles.load_device("h800")
    assert h800.bf16_flops_per_s == h100.bf16_flops_per_s
    assert h800.intra_node_bytes_per_s == pytest.approx(200e9)  # 400 GB/s bidirectional
    assert h800.inter_node_bytes_per_s == pytest.approx(50e9)  # 8 x 400 Gb/s per node
    assert profiles.load_device("h200").hbm_bytes == pytest.approx(141e9)
    assert profiles.load_device("a100-80gb").fp8_flops_per_s == 0


@pytest.mark.parametrize("name", MODELS)
def test_model_profile_matches_published_parameter_count(name):
    m = profiles.load_model(name)
    assert isinstance(m, ModelSpec) and m.name == name
    total, active = PUBLISHED[name]
    counted = count_parameters(m)
    assert counted.total == pytest.approx(total, rel=0.02)
    assert counted.active == pytest.approx(active or total, rel=0.03)


def test_deepseek_v3_layer_pattern_and_mla():
    m = profiles.load_model("deepseek-v3")
    assert m.attention == "mla" and m.mla.kv_lora_rank == 512
    assert [m.layer_is_moe(i) for i in range(4)] == [False, False, False, True]
    assert m.moe_layers == 58 and m.mtp_layers == 1


def test_parameter_count_by_hand_for_a_tiny_model():
    # 2 layers, h=8, 2 heads of 4, 1 kv head, gated ffn 16, vocab 10, untied:
    # embed+head 2*10*8 = 160, final norm 8; per layer: q 8*8=64, o 64, k+v 2*8*4=64, norms 16, mlp 3*8*16=384
    m = ModelSpec(name="tiny", layers=2, hidden=8, heads=2, kv_heads=1, head_dim=4, ffn=16, vocab=10)
    assert count_parameters(m).total == 160 + 8 + 2 * (64 + 64 + 64 + 16 + 384)


@pytest.mark.parametrize("name", ["h100x16-a100x16", "h200x8-h100x8"])
def test_cluster_profiles_load(name):
    c = profiles.load_cluster(name)
    assert isinstance(c, ClusterSpec) and c.is_heterogeneous
    assert c.num_devices == sum(p.nodes * p.devices_per_node for p in c.pools)


def test_heterogeneous_cluster_pools():
    c = profiles.load_cluster("h100x16-a100x16")
    assert [(p.name, p.device.name, p.nodes, p.devices_per_node) for p in c.pools] == [
        ("h100", "h100-sxm", 2, 8), ("a100", "a100-80gb", 2, 8)]
    assert c.inter_pool_bytes_per_s == pytest.approx(25e9)


@pytest.mark.parametrize("kind", ["hardware", "models", "clusters"])
def test_show_profile_returns_the_resolved_spec(kind):
    for name in profiles.list_profiles()[kind]:
        shown = profiles.show_profile(name)
        assert shown["kind"] == kind and shown["name"] == name
        assert shown["source"] == f"profiles/{kind}/{name}.yaml"
        assert shown["description"]
        assert shown["spec"]["name"] == name
        assert all(not (isinstance(v, float) and math.isnan(v)) for v in shown["spec"].values())
