"""Strict loading: every bad input is a SpecError naming the file, the key and the valid choices."""

import pytest

import profiles
from costmodels.errors import SpecError

DEVICE_YAML = """\
bf16_tflops: 100
hbm_gib: 16
hbm_tb_per_s: 1.0
devices_per_node: 4
intra_node_gb_per_s: 50
nic_gb_per_s: 12.5
"""
MODEL_YAML = """\
layers: 2
hidden: 64
heads: 4
ffn: 128
vocab: 100
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_minimal_device_yaml_converts_units(tmp_path):
    d = profiles.load_device(write(tmp_path, "toy.yaml", DEVICE_YAML + "intra_node_latency_us: 3\n"))
    assert d.name == "toy"
    assert d.bf16_flops_per_s == 100e12 and d.hbm_bytes == 16 * 2**30 and d.hbm_bytes_per_s == 1e12
    assert d.intra_node_bytes_per_s == 50e9 and d.inter_node_bytes_per_s == 12.5e9
    assert d.intra_node_latency_s == pytest.approx(3e-6)
    assert d.calibration.source == "uncalibrated defaults"


def test_hbm_gb_is_decimal(tmp_path):
    d = profiles.load_device(write(tmp_path, "toy.yaml", DEVICE_YAML.replace("hbm_gib: 16", "hbm_gb: 16")))
    assert d.hbm_bytes == 16e9


def test_hbm_given_twice_is_an_error(tmp_path):
    with pytest.raises(SpecError, match="exactly one of hbm_gib, hbm_gb"):
        profiles.load_device(write(tmp_path, "toy.yaml", DEVICE_YAML + "hbm_gb: 16\n"))


def test_calibration_block_overrides_defaults(tmp_path):
    text = DEVICE_YAML + "calibration:\n  gemm_efficiency_max: 0.7\n  gemm_half_flops: 3.5e9\n  source: fit\n"
    c = profiles.load_device(write(tmp_path, "toy.yaml", text)).calibration
    assert (c.gemm_efficiency_max, c.gemm_half_flops, c.source) == (0.7, 3.5e9, "fit")
    assert c.hbm_efficiency == 0.85  # untouched default


def test_unknown_device_key_names_file_key_and_valid_keys(tmp_path):
    path = write(tmp_path, "toy.yaml", DEVICE_YAML + "nvlink_gbps: 900\n")
    with pytest.raises(SpecError) as err:
        profiles.load_device(path)
    text = str(err.value)
    assert path in text and "'nvlink_gbps'" in text and "valid keys:" in text and "intra_node_gb_per_s" in text


def test_unknown_calibration_key_is_an_error(tmp_path):
    path = write(tmp_path, "toy.yaml", DEVICE_YAML + "calibration:\n  gemm_eff: 0.7\n")
    with pytest.raises(SpecError, match=r"calibration\.gemm_eff: unknown key 'gemm_eff'; valid keys: .*hbm_efficiency"):
        profiles.load_device(path)


def test_calibration_value_out_of_range_names_file_and_field(tmp_path):
    path = write(tmp_path, "toy.yaml", DEVICE_YAML + "calibration:\n  hbm_efficiency: 1.5\n")
    with pytest.raises(SpecError, match=rf"{path}: calibration.hbm_efficiency: must be in \(0, 1\]"):
        profiles.load_device(path)


def test_missing_required_key_is_named(tmp_path):
    path = write(tmp_path, "toy.yaml", DEVICE_YAML.replace("hbm_tb_per_s: 1.0\n", ""))
    with pytest.raises(SpecError, match=rf"{path}: hbm_tb_per_s: missing required key"):
        profiles.load_device(path)


def test_wrong_type_is_named(tmp_path):
    path = write(tmp_path, "toy.yaml", DEVICE_YAML.replace("devices_per_node: 4", "devices_per_node: four"))
    with pytest.raises(SpecError, match="devices_per_node: must be an integer"):
        profiles.load_device(path)


def test_malformed_yaml_gives_file_and_line(tmp_path):
    path = write(tmp_path, "bad.yaml", "layers: 2\nhidden: 64\nheads: [4\nffn: 128\n")
    with pytest.raises(SpecError) as err:
        profiles.load_model(path)
    assert f"{path}:4:" in str(err.value) and "malformed YAML" in str(err.value)


def test_yaml_that_is_not_a_mapping(tmp_path):
    with pytest.raises(SpecError, match="expected a mapping"):
        profiles.load_model(write(tmp_path, "list.yaml", "- 1\n- 2\n"))


def test_missing_file_is_named(tmp_path):
    path = str(tmp_path / "nope.yaml")
    with pytest.raises(SpecError, match=rf"{path}: file not found"):
        profiles.load_device(path)


@pytest.mark.parametrize("loader, kind, example", [
    (profiles.load_model, "model", "llama3-70b"),
    (profiles.load_device, "hardware", "h100-sxm"),
    (profiles.load_cluster, "cluster", "h100x16-a100x16"),
])
def test_unknown_profile_name_lists_valid_names(loader, kind, example):
    with pytest.raises(SpecError) as err:
        loader("no-such-thing")
    text = str(err.value)
    assert f"unknown {kind} profile 'no-such-thing'" in text and example in text


def test_model_yaml_defaults(tmp_path):
    m = profiles.load_model(write(tmp_path, "toy.yaml", MODEL_YAML))
    assert (m.name, m.kv_heads, m.head_dim, m.attention, m.gated_mlp, m.tied_embeddings) == (
        "toy", 4, 16, "mha", True, False)


def test_unknown_model_key_and_nested_moe_key(tmp_path):
    with pytest.raises(SpecError, match="unknown key 'hidden_size'; valid keys: .*hidden"):
        profiles.load_model(write(tmp_path, "a.yaml", MODEL_YAML + "hidden_size: 64\n"))
    text = MODEL_YAML + "moe:\n  experts: 4\n  top_k: 2\n  expert_ffn: 32\n  topk: 2\n"
    with pytest.raises(SpecError, match=r"moe\.topk: unknown key 'topk'; valid keys: .*top_k"):
        profiles.load_model(write(tmp_path, "b.yaml", text))


def test_model_yaml_validation_error_names_file(tmp_path):
    path = write(tmp_path, "c.yaml", MODEL_YAML + "moe:\n  experts: 4\n  top_k: 5\n  expert_ffn: 32\n")
    with pytest.raises(SpecError, match=rf"{path}: moe.top_k: must be in 1..experts"):
        profiles.load_model(path)


def test_head_dim_required_when_heads_do_not_divide_hidden(tmp_path):
    with pytest.raises(SpecError, match="head_dim: required"):
        profiles.load_model(write(tmp_path, "d.yaml", MODEL_YAML.replace("heads: 4", "heads: 5")))


def test_cluster_yaml_with_relative_device_path_and_overrides(tmp_path):
    write(tmp_path, "toy.yaml", DEVICE_YAML)
    path = write(tmp_path, "c.yaml", "pools:\n  - device: toy.yaml\n    nodes: 3\n    devices_per_node: 2\n"
                                     "    nic_gb_per_s: 100\n  - name: big\n    device: h100-sxm\n    nodes: 1\n")
    c = profiles.load_cluster(path)
    assert c.name == "c" and c.num_devices == 3 * 2 + 8
    assert (c.pools[0].name, c.pools[0].inter_node_bytes_per_s, c.pools[0].intra_node_bytes_per_s) == (
        "toy", 100e9, 50e9)
    assert c.pools[1].device.name == "h100-sxm"


def test_cluster_errors(tmp_path):
    with pytest.raises(SpecError, match=r"pools\[0\]\.gpus: unknown key 'gpus'"):
        profiles.load_cluster(write(tmp_path, "a.yaml", "pools:\n  - device: h100-sxm\n    gpus: 8\n"))
    with pytest.raises(SpecError, match=r"pools\[0\]\.nodes: missing required key"):
        profiles.load_cluster(write(tmp_path, "b.yaml", "pools:\n  - device: h100-sxm\n"))
    with pytest.raises(SpecError, match="unknown hardware profile 'h1000'"):
        profiles.load_cluster(write(tmp_path, "c.yaml", "pools:\n  - device: h1000\n    nodes: 1\n"))
    with pytest.raises(SpecError, match="pools: must be a non-empty list"):
        profiles.load_cluster(write(tmp_path, "d.yaml", "pools: []\n"))
    path = write(tmp_path, "e.yaml", "pools:\n  - device: h100-sxm\n    nodes: 0\n")
    with pytest.raises(SpecError, match=rf"{path}: pools.h100-sxm.nodes: must be >= 1"):
        profiles.load_cluster(path)
