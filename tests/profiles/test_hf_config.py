"""Hugging Face config.json files of every supported model_type parse into the right ModelSpec."""

import json

import pytest

import profiles
from costmodels.errors import SpecError
from profiles.params import count_parameters

LLAMA3_8B = {"model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
             "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
             "max_position_embeddings": 8192, "tie_word_embeddings": False, "rope_theta": 500000.0}
MISTRAL_7B = {"model_type": "mistral", "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
              "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 32000, "head_dim": None,
              "max_position_embeddings": 32768}
MIXTRAL_8X7B = {"model_type": "mixtral", "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
                "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 32000, "num_local_experts": 8,
                "num_experts_per_tok": 2, "max_position_embeddings": 32768, "tie_word_embeddings": False}
QWEN2_7B = {"model_type": "qwen2", "hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28,
            "num_attention_heads": 28, "num_key_value_heads": 4, "vocab_size": 152064,
            "max_position_embeddings": 131072, "tie_word_embeddings": False}
QWEN3_32B = {"model_type": "qwen3", "hidden_size": 5120, "intermediate_size": 25600, "num_hidden_layers": 64,
             "num_attention_heads": 64, "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 151936,
             "max_position_embeddings": 40960, "tie_word_embeddings": False}
QWEN2_57B = {"model_type": "qwen2_moe", "hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28,
             "num_attention_heads": 28, "num_key_value_heads": 4, "vocab_size": 151936, "num_experts": 64,
             "num_experts_per_tok": 8, "moe_intermediate_size": 2560, "shared_expert_intermediate_size": 20480,
             "decoder_sparse_step": 1, "mlp_only_layers": [], "tie_word_embeddings": False}
QWEN3_30B = {"model_type": "qwen3_moe", "hidden_size": 2048, "intermediate_size": 6144, "num_hidden_layers": 48,
             "num_attention_heads": 32, "num_key_value_heads": 4, "head_dim": 128, "vocab_size": 151936,
             "num_experts": 128, "num_experts_per_tok": 8, "moe_intermediate_size": 768, "decoder_sparse_step": 1,
             "mlp_only_layers": [], "max_position_embeddings": 40960, "tie_word_embeddings": False}
DEEPSEEK_V3 = {"model_type": "deepseek_v3", "hidden_size": 7168, "intermediate_size": 18432,
               "moe_intermediate_size": 2048, "num_hidden_layers": 61, "num_attention_heads": 128,
               "num_key_value_heads": 128, "q_lora_rank": 1536, "kv_lora_rank": 512, "qk_nope_head_dim": 128,
               "qk_rope_head_dim": 64, "v_head_dim": 128, "n_routed_experts": 256, "n_shared_experts": 1,
               "num_experts_per_tok": 8, "first_k_dense_replace": 3, "moe_layer_freq": 1,
               "num_nextn_predict_layers": 1, "vocab_size": 129280, "max_position_embeddings": 163840,
               "tie_word_embeddings": False}
GPT3_175B = {"model_type": "gpt2", "n_layer": 96, "n_embd": 12288, "n_head": 96, "n_inner": None,
             "vocab_size": 51200, "n_positions": 2048}


def write_config(tmp_path, config, folder="model"):
    path = tmp_path / folder / "config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2))
    return path


def test_llama_config_equals_the_shipped_profile(tmp_path):
    path = write_config(tmp_path, LLAMA3_8B, "Meta-Llama-3-8B")
    m = profiles.load_model(str(path))
    shipped = profiles.load_model("llama3-8b")
    assert m.name == "Meta-Llama-3-8B" and m.source == str(path)
    for field in ("layers", "hidden", "heads", "kv_heads", "head_dim", "ffn", "vocab", "tied_embeddings",
                  "gated_mlp", "attention", "moe", "mla", "max_position"):
        assert getattr(m, field) == getattr(shipped, field), field


def test_a_folder_holding_config_json_is_accepted(tmp_path):
    path = write_config(tmp_path, MISTRAL_7B, "Mistral-7B")
    m = profiles.load_model(str(path.parent))
    assert (m.name, m.head_dim, m.attention, m.kv_heads) == ("Mistral-7B", 128, "gqa", 8)


def test_qwen2_dense(tmp_path):
    m = profiles.load_model(str(write_config(tmp_path, QWEN2_7B)))
    assert (m.layers, m.hidden, m.head_dim, m.ffn, m.vocab, m.moe) == (28, 3584, 128, 18944, 152064, None)


def test_qwen3_uses_explicit_head_dim(tmp_path):
    m = profiles.load_model(str(write_config(tmp_path, QWEN3_32B)))
    assert m.head_dim == 128 and m.heads * m.head_dim == 8192 != m.hidden
    assert count_parameters(m).total == pytest.approx(32.8e9, rel=0.01)


def test_mixtral(tmp_path):
    m = profiles.load_model(str(write_config(tmp_path, MIXTRAL_8X7B)))
    assert (m.moe.experts, m.moe.top_k, m.moe.expert_ffn, m.moe_layers) == (8, 2, 14336, 32)
    assert count_parameters(m).active == pytest.approx(12.9e9, rel=0.01)


def test_qwen2_moe_has_one_shared_expert(tmp_path):
    m = profiles.load_model(str(write_config(tmp_path, QWEN2_57B)))
    assert (m.moe.experts, m.moe.top_k, m.moe.shared_experts, m.moe.shared_expert_ffn) == (64, 8, 1, 20480)
    assert count_parameters(m).total == pytest.approx(57.4e9, rel=0.01)


def test_qwen3_moe(tmp_path):
    m = profiles.load_model(str(write_config(tmp_path, QWEN3_30B)))
    assert (m.moe.experts, m.moe.top_k, m.moe.expert_ffn, m.moe.shared_experts) == (128, 8, 768, 0)
    assert m.moe_layers == 48


@pytest.mark.parametrize("step, only_mlp, expected", [
    (2, [], [False, True, False, True, False, True]),
    (1, [0, 1], [False, False, True, True, True, True]),
    (2, [0, 1], [False, False, False, True, False, True]),
    (3, [], [False, False, True, False, False, True]),
])
def test_qwen_moe_layer_pattern_matches_transformers_rule(tmp_path, step, only_mlp, expected):
    config = dict(QWEN3_30B, num_hidden_layers=6, decoder_sparse_step=step, mlp_only_layers=only_mlp)
    m = profiles.load_model(str(write_config(tmp_path, config)))
    # transformers: MoE iff (i + 1) % decoder_sparse_step == 0 and i not in mlp_only_layers
    rule = [(i + 1) % step == 0 and i not in only_mlp for i in range(6)]
    assert rule == expected
    assert [m.layer_is_moe(i) for i in range(6)] == expected


def test_qwen_moe_scattered_dense_layers_are_rejected(tmp_path):
    path = write_config(tmp_path, dict(QWEN3_30B, mlp_only_layers=[3, 7]))
    with pytest.raises(SpecError, match="mlp_only_layers"):
        profiles.load_model(str(path))


def test_deepseek_v3_equals_the_shipped_profile(tmp_path):
    m = profiles.load_model(str(write_config(tmp_path, DEEPSEEK_V3)))
    shipped = profiles.load_model("deepseek-v3")
    for field in ("layers", "hidden", "heads", "kv_heads", "head_dim", "ffn", "vocab", "attention", "mla", "moe",
                  "mtp_layers", "max_position", "tied_embeddings"):
        assert getattr(m, field) == getattr(shipped, field), field


@pytest.mark.parametrize("first_k, freq, expected", [(3, 1, 3), (3, 2, 4), (4, 2, 4), (0, 3, 0)])
def test_deepseek_layer_pattern_matches_transformers_rule(tmp_path, first_k, freq, expected):
    config = dict(DEEPSEEK_V3, num_hidden_layers=10, first_k_dense_replace=first_k, moe_layer_freq=freq)
    m = profiles.load_model(str(write_config(tmp_path, config)))
    assert m.moe.first_dense_layers == expected
    assert [m.layer_is_moe(i) for i in range(10)] == [i >= first_k and i % freq == 0 for i in range(10)]


def test_deepseek_v2_lite_without_query_compression(tmp_path):
    config = dict(DEEPSEEK_V3, model_type="deepseek_v2", q_lora_rank=None, num_nextn_predict_layers=None)
    m = profiles.load_model(str(write_config(tmp_path, config)))
    assert m.mla.q_lora_rank == 0 and m.mtp_layers == 0


def test_gpt2_style_gpt3(tmp_path):
    m = profiles.load_model(str(write_config(tmp_path, GPT3_175B)))
    assert (m.ffn, m.gated_mlp, m.attention, m.tied_embeddings, m.kv_heads, m.head_dim) == (
        4 * 12288, False, "mha", True, 96, 128)
    assert m.vocab == 51200 and m.max_position == 2048
    assert count_parameters(m).total == pytest.approx(175e9, rel=0.01)


def test_gpt_oss(tmp_path):
    # openai/gpt-oss-120b config.json values; about 116.8e9 parameters (model card)
    config = {"model_type": "gpt_oss", "num_hidden_layers": 36, "hidden_size": 2880, "num_attention_heads": 64,
              "num_key_value_heads": 8, "head_dim": 64, "intermediate_size": 2880, "num_local_experts": 128,
              "experts_per_token": 4, "vocab_size": 201088, "sliding_window": 128, "tie_word_embeddings": False,
              "max_position_embeddings": 131072}
    m = profiles.load_model(str(write_config(tmp_path, config)))
    assert (m.moe.experts, m.moe.top_k, m.head_dim, m.extra["sliding_window"]) == (128, 4, 64, 128)
    assert count_parameters(m).total == pytest.approx(116.8e9, rel=0.01)


def test_model_from_hf_config_takes_a_dict():
    m = profiles.model_from_hf_config(LLAMA3_8B, name="x", source="inline")
    assert m.name == "x" and m.extra == {"hf_model_type": "llama"}


def test_unsupported_model_type_names_file_field_and_choices(tmp_path):
    path = write_config(tmp_path, dict(LLAMA3_8B, model_type="falcon"))
    with pytest.raises(SpecError) as err:
        profiles.load_model(str(path))
    text = str(err.value)
    assert str(path) in text and "model_type" in text and "'falcon'" in text
    for supported in ("gpt2", "llama", "mistral", "mixtral", "qwen2", "qwen3", "qwen2_moe", "qwen3_moe",
                      "deepseek_v3"):
        assert supported in text


def test_missing_field_is_named(tmp_path):
    config = {k: v for k, v in LLAMA3_8B.items() if k != "intermediate_size"}
    with pytest.raises(SpecError, match="intermediate_size"):
        profiles.load_model(str(write_config(tmp_path, config)))


def test_wrong_type_is_named(tmp_path):
    with pytest.raises(SpecError, match="num_hidden_layers.*must be int"):
        profiles.load_model(str(write_config(tmp_path, dict(LLAMA3_8B, num_hidden_layers="32"))))


def test_malformed_json_gives_line(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{\n  "model_type": "llama",\n  "hidden_size": 4096\n  "vocab_size": 1\n}\n')
    with pytest.raises(SpecError, match=rf"{path}:4:.*malformed JSON"):
        profiles.load_model(str(path))


def test_impossible_numbers_name_the_file(tmp_path):
    path = write_config(tmp_path, dict(LLAMA3_8B, num_key_value_heads=5))
    with pytest.raises(SpecError, match=rf"{path}: kv_heads"):
        profiles.load_model(str(path))
