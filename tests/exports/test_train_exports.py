"""Train exports: every emitted name exists in the targeted executor version, the executor's semantics give
back the plan's batch and split, and what a target cannot run is refused (exit 2) instead of dropped."""

import ast
import json
import re
import shlex
import tomllib

import pytest
from click.testing import CliRunner
from names import accepted, deepspeed_names, megatron_names, recipe_names, toml_names
from train_plans import FAST, device, edited, model, planned

from cli import main
from costmodels.hardware import ClusterSpec
from costmodels.parallel import TrainingWorkload
from costmodels.training import check_config, even_stage_layers
from planner.documents import export_plan
from planner.exports.common import ExportRefused
from planner.train import EXPORT_FORMATS, TrainOptions, export, plan_training
from planner.train.request import TrainRequest
from planner.train.space import configs_for_shape, shapes

NAMES = {"megatron": megatron_names, "torchtitan": recipe_names, "torchtitan-toml": toml_names,
         "deepspeed": deepspeed_names}


def matrix():
    """(case, plan) pairs: real plans and edited copies covering the decisions the formats must carry."""
    cp = planned("cp_pp_tp")  # tp 2, pp 2, cp 2, sequence parallel, ZeRO 0
    hetero = edited(planned("hetero"), pp=2, dp=2, stage_layers=[4, 2], stage_pools=["fast", "slow"], zero=0,
                    microbatches=2)
    return {
        "dense": planned("dense"), "zero3": planned("dense_zero3"), "moe": planned("moe"),
        "moe_mtp": planned("moe_mtp"), "moe_mtp_zero3": edited(planned("moe_mtp"), zero=3), "fp8": planned("fp8"),
        "cp_pp_tp": cp, "hetero": hetero,
        "uneven": edited(cp, cp=1, dp=2, microbatches=8, stage_layers=[3, 5], recompute="selective"),
        "uneven4": edited(cp, pp=4, cp=1, dp=1, microbatches=16, stage_layers=[1, 3, 3, 1], recompute="full"),
        "interleaved": edited(cp, vpp=2, cp=1, dp=2, microbatches=8, recompute="full"),
        "layer_sac": edited(cp, vpp=2, cp=1, dp=2, microbatches=8, recompute="selective-layer"),
    }


CASES = matrix()


def _export_or_refusal(plan, fmt):
    try:
        return export(plan, fmt)
    except ExportRefused as exc:
        return exc


@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_every_emitted_name_exists_in_the_target(case, fmt):
    out = _export_or_refusal(CASES[case], fmt)
    if isinstance(out, ExportRefused):
        assert str(out).startswith("decision") or str(out).startswith("inputs"), out
        return
    names = NAMES[fmt](out)
    assert names and names <= accepted(fmt), sorted(names - accepted(fmt))
    assert "plan sha256" in out and "inputs_digest" not in out.split("sha256")[0]


def _megatron_args(text: str) -> dict:
    body = text.split("MEGATRON_ARGS=(\n", 1)[1].split("\n)", 1)[0]
    return {words[0]: words[1] if len(words) > 1 else True for words in map(shlex.split, body.splitlines())}


def _layout_layers(layout: str) -> list[int]:
    return [sum(int(part.split("*")[1]) if "*" in part else 1 for part in entry.replace("E", "").replace("L", "")
                .replace("m", "").split("t") if part) for entry in layout.split("|")]


@pytest.mark.parametrize("case", sorted(CASES))
def test_megatron_batch_split_and_zero(case):
    plan = CASES[case]
    d, work = plan["decision"], plan["inputs"]["workload"]
    out = _export_or_refusal(plan, "megatron")
    if isinstance(out, ExportRefused):
        pytest.fail(f"megatron refused {case}: {out}")
    args = _megatron_args(out)
    mbs, gbs = int(args["--micro-batch-size"]), int(args["--global-batch-size"])
    assert mbs * d["microbatches"] * d["dp"] == gbs == work["global_batch"]
    if "--pipeline-model-parallel-layout" in args:
        per_virtual = _layout_layers(args["--pipeline-model-parallel-layout"])
        pp = d["pp"]
        assert [sum(per_virtual[s::pp]) for s in range(pp)] == d["stage_layers"]
    if d["zero"] >= 2:
        assert args["--ckpt-format"] == "fsdp_dtensor" and "--use-megatron-fsdp" in args
    if plan["inputs"]["model"].get("mtp_layers"):
        assert args["--mtp-num-layers"] == "1"
    assert ("--sequence-parallel" in args) == bool(d["sequence_parallel"])
    assert int(args["--context-parallel-size"]) == d["cp"]


def test_megatron_uneven_ends_and_heterogeneous_node_order():
    out = export(CASES["uneven4"], "megatron")
    args = _megatron_args(out)
    assert args["--decoder-first-pipeline-num-layers"] == "1" and args["--decoder-last-pipeline-num-layers"] == "1"
    hetero = export(CASES["hetero"], "megatron")
    assert "#   node rank 0: pool fast (stage 0)" in hetero and "#   node rank 1: pool slow (stage 1)" in hetero
    assert "--nnodes 2 --nproc-per-node 2" in hetero


@pytest.mark.parametrize("case", sorted(CASES))
def test_torchtitan_toml_batch_and_parts(case):
    plan = CASES[case]
    out = _export_or_refusal(plan, "torchtitan-toml")
    if isinstance(out, ExportRefused):
        return
    job = tomllib.loads(out)
    d, par, train = plan["decision"], job["parallelism"], job["training"]
    dp = par["data_parallel_replicate_degree"] * par["data_parallel_shard_degree"]
    accumulation = train["global_batch_size"] // (train["local_batch_size"] * dp)
    micro = par.get("pipeline_parallel_microbatch_size", train["local_batch_size"])
    assert micro == d["mbs"] and dp == d["dp"]
    assert accumulation * (train["local_batch_size"] // micro) == d["microbatches"]
    assert micro * d["microbatches"] * dp == train["global_batch_size"]
    if d["pp"] > 1:
        parts = par["module_fqns_per_model_part"]
        layers = [sum(name.startswith("layers.") for name in part) for part in parts]
        assert [sum(layers[s::d["pp"]]) for s in range(d["pp"])] == d["stage_layers"]
        assert parts[0][0] == "tok_embeddings" and parts[-1][-2:] == ["norm", "output"]
    mode = {"none": "none", "full": "full", "selective": "selective", "selective-layer": "selective"}[d["recompute"]]
    assert job["activation_checkpoint"]["mode"] == mode
    if mode == "selective":
        option = {"selective": "op", "selective-layer": "2"}[d["recompute"]]
        assert job["activation_checkpoint"]["selective_ac_option"] == option


def test_layer_sac_in_each_format():
    """selective-layer: Megatron block recompute of half of every virtual stage (2 layers each here), torchtitan
    v0.2.2 selective_ac_option "2"; refused by torchtitan b5bcd76 (no layer SAC), by DeepSpeed, and by Megatron
    when the stages differ."""
    plan = CASES["layer_sac"]
    assert [len(chunks) if isinstance(chunks, list) else chunks for chunks in plan["decision"]["stage_layers"]] \
        == [4, 4] and plan["decision"]["vpp"] == 2
    args = _megatron_args(export(plan, "megatron"))
    assert (args["--recompute-granularity"], args["--recompute-method"], args["--recompute-num-layers"]) == \
        ("full", "block", "1")
    ac = tomllib.loads(export(plan, "torchtitan-toml"))["activation_checkpoint"]
    assert ac == {"mode": "selective", "selective_ac_option": "2"}
    with pytest.raises(ExportRefused, match=r"decision\.recompute.*b5bcd76 has no layer-level"):
        export(plan, "torchtitan")
    with pytest.raises(ExportRefused, match=r"decision\.recompute.*every other layer"):
        export(edited(planned("dense"), recompute="selective-layer"), "deepspeed")
    uneven = edited(planned("cp_pp_tp"), cp=1, dp=2, microbatches=8, stage_layers=[3, 5], recompute="selective-layer")
    with pytest.raises(ExportRefused, match=r"decision\.recompute.*same even number of layers.*\[3, 5\]"):
        export(uneven, "megatron")


def test_layer_sac_is_searched_where_the_current_framework_runs_it():
    """Megatron plans may choose selective-layer; torchtitan's default search leaves it out (b5bcd76 removed
    it) unless it is the only mode asked for, and that plan exports to v0.2.2."""
    cluster = ClusterSpec.homogeneous(device(), 8, 4)
    for framework, modes, searched in (("megatron", None, True), ("torchtitan", None, False),
                                       ("torchtitan", ("selective-layer",), True)):
        wl = TrainingWorkload(global_batch=16, seq_len=1024, framework=framework)
        opts = dict(FAST, **({"recompute_modes": modes} if modes else {}))
        request = TrainRequest(model=model(), cluster=cluster, workload=wl, options=TrainOptions(**opts))
        found = {c.recompute for shape in shapes(request, 8, cluster.primary)
                 for c in configs_for_shape(request, shape)}
        assert ("selective-layer" in found) == searched, (framework, modes)
    plan = plan_training(model(), cluster, wl, options=TrainOptions(**FAST, recompute_modes=("selective-layer",)))
    assert plan["decision"]["recompute"] == "selective-layer"
    assert tomllib.loads(export(plan, "torchtitan-toml"))["activation_checkpoint"]["selective_ac_option"] == "2"


def test_torchtitan_recipe_mtp_sets_model_and_loss():
    out = export(edited(CASES["moe_mtp"], zero=3), "torchtitan")
    assert "config.model_spec = model_registry(flavor, num_mtp_layers=1)" in out
    assert "config.loss = MTPLoss.Config(" in out
    compile(out, "recipe.py", "exec")


def test_torchtitan_recipe_tokens_and_microbatches():
    plan = CASES["interleaved"]
    out = export(plan, "torchtitan")
    seq = plan["inputs"]["workload"]["seq_len"]
    assert f"config.training.num_tokens_per_microbatch_per_dp_rank = {seq}" in out
    assert "config.parallelism.num_pp_microbatches = 8" in out
    assert 'config.parallelism.pipeline_parallel_schedule = "Interleaved1F1B"' in out
    assert "config.activation_checkpoint = FullAC.Config()" in out
    assert "'norm', 'lm_head']]" in out and "'output'" not in out  # b5bcd76 names the output projection lm_head
    compile(out, "recipe.py", "exec")  # the recipe is valid Python


@pytest.mark.parametrize("case", ["dense", "zero3", "moe"])
def test_deepspeed_batch(case):
    plan = CASES[case]
    cfg = json.loads(export(plan, "deepspeed"))
    d = plan["decision"]
    assert cfg["train_micro_batch_size_per_gpu"] * cfg["gradient_accumulation_steps"] * d["dp"] == \
        cfg["train_batch_size"]
    assert cfg["zero_optimization"]["stage"] == d["zero"]
    if plan["inputs"]["model"].get("moe"):
        assert cfg["expert_parallel"]["autoep_size"] == d["ep"] and cfg["expert_parallel"]["preset_model"]


@pytest.mark.parametrize("case, fmt, field", [
    ("moe_mtp", "deepspeed", "inputs.model.mtp_layers"),
    ("moe_mtp_zero3", "torchtitan-toml", "inputs.model.mtp_layers"),
    ("fp8", "deepspeed", "inputs.workload.dtype"),
    ("cp_pp_tp", "deepspeed", "decision.cp"),
    ("interleaved", "deepspeed", "decision.vpp"),
    ("uneven", "deepspeed", "decision.sequence_parallel"),
    ("dense", "torchtitan", "decision.zero"),
])
def test_refusals_name_the_decision(case, fmt, field):
    with pytest.raises(ExportRefused, match=field.replace(".", r"\.")):
        export(CASES[case], fmt)


def test_deepspeed_pipeline_with_zero2_and_moe_limits():
    pipe = edited(CASES["uneven4"], stage_layers=[2, 2, 2, 2], zero=2, sequence_parallel=False, tp=1)
    with pytest.raises(ExportRefused, match="ZeRO stage 0 or 1 only"):
        export(pipe, "deepspeed")
    with pytest.raises(ExportRefused, match="expert_tensor_parallel_size=1"):
        export(edited(CASES["moe"], etp=2, tp=2, dp=4, microbatches=2), "deepspeed")


def test_torchtitan_toml_fp8_moe_quantizes_the_experts():
    moe = edited(CASES["moe"], zero=3)
    moe.doc["inputs"]["workload"]["dtype"] = "fp8"
    job = tomllib.loads(export(moe, "torchtitan-toml"))
    assert job["model"]["converters"] == ["quantize.linear.float8", "quantize.grouped_mm.float8"]
    assert job["quantize"]["grouped_mm"]["float8"]["fqns"] == ["experts"]
    with pytest.raises(ExportRefused, match="Float8 MoE prototype"):
        export(edited(moe, pp=2, dp=4, stage_layers=[4, 4], microbatches=2), "torchtitan-toml")


def test_torchtitan_expert_tp_limits():
    moe = edited(CASES["moe"], zero=3, tp=2, dp=4, etp=2, ep=2, sequence_parallel=True, microbatches=2)
    assert "expert_tensor_parallel_degree = 2" in export(moe, "torchtitan-toml")
    with pytest.raises(ExportRefused, match="no expert TP"):
        export(moe, "torchtitan")
    with pytest.raises(ExportRefused, match="etp must be tp"):
        export(edited(moe, ep=1, etp=1), "torchtitan-toml")


def test_cli_export_and_refusal_exit_codes(tmp_path):
    path = tmp_path / "plan.json"
    CASES["moe_mtp"].write(path)
    ok = CliRunner().invoke(main, ["export", str(path), "--format", "megatron"])
    assert ok.exit_code == 0 and "--mtp-num-layers 1" in ok.output
    refused = CliRunner().invoke(main, ["export", str(path), "--format", "deepspeed"])
    assert refused.exit_code == 2 and "inputs.model.mtp_layers" in refused.output
    assert "Traceback" not in refused.output
    unknown = CliRunner().invoke(main, ["export", str(path), "--format", "nemo"])
    assert unknown.exit_code == 2 and "torchtitan-toml" in unknown.output


def _recipe_values(text: str) -> dict:
    return {m.group(1): ast.literal_eval(m.group(2))
            for m in re.finditer(r"^    config\.([a-z_.]+) = (.+)$", text, flags=re.M)
            if not m.group(2).endswith(")") and m.group(2) != "None"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_torchtitan_recipe_batch_and_parts(case):
    plan = CASES[case]
    out = _export_or_refusal(plan, "torchtitan")
    if isinstance(out, ExportRefused):
        return
    v, d = _recipe_values(out), plan["decision"]
    seq = plan["inputs"]["workload"]["seq_len"]
    dp = v["parallelism.data_parallel_replicate_degree"] * v["parallelism.data_parallel_shard_degree"]
    micro_tokens = v["training.num_tokens_per_microbatch_per_dp_rank"]
    per_step = micro_tokens * v.get("parallelism.num_pp_microbatches", 1) * dp
    accumulation = v["training.num_tokens_per_train_step"] // per_step
    assert micro_tokens == d["mbs"] * seq and dp == d["dp"]
    assert accumulation * v.get("parallelism.num_pp_microbatches", 1) == d["microbatches"]
    if d["pp"] > 1:
        parts = v["parallelism.module_fqns_per_model_part"]
        layers = [sum(name.startswith("layers.") for name in part) for part in parts]
        assert [sum(layers[s::d["pp"]]) for s in range(d["pp"])] == d["stage_layers"]


def test_deepspeed_pipeline_with_even_split():
    plan = edited(CASES["uneven4"], stage_layers=[2, 2, 2, 2], zero=1, sequence_parallel=False, tp=1, dp=2,
                  microbatches=8)
    cfg = json.loads(export(plan, "deepspeed"))
    assert cfg["pipeline"] == {"activation_checkpoint_interval": 1}  # recompute full: every layer
    assert "num_stages=4" in cfg["parplan"]["model"] and "2 transformer layers" in cfg["parplan"]["model"]
    assert cfg["train_micro_batch_size_per_gpu"] * cfg["gradient_accumulation_steps"] * 2 == cfg["train_batch_size"]


def test_torchtitan_toml_says_when_it_adds_sequence_parallelism():
    plan = edited(CASES["uneven"], sequence_parallel=False)
    assert "v0.2.2 always shards activations along the sequence with TP" in export(plan, "torchtitan-toml")
    assert "config.parallelism.enable_sequence_parallel = False" in export(plan, "torchtitan")


FRAMEWORK_FORMATS = {"megatron": ("megatron",), "torchtitan": ("torchtitan",), "deepspeed": ("deepspeed",)}


@pytest.mark.parametrize("framework", sorted(FRAMEWORK_FORMATS))
@pytest.mark.parametrize("moe", [False, True])
def test_plans_for_a_framework_export_to_it(framework, moe):
    """`plan train --framework X` on a small dense and a small MoE case; X's export takes the plan (no refusal)."""
    wl = TrainingWorkload(global_batch=16, seq_len=1024, framework=framework)
    plan = plan_training(model(moe=moe), ClusterSpec.homogeneous(device(), 8, 4), wl, options=TrainOptions(**FAST))
    assert plan.doc["inputs"]["workload"]["framework"] == framework
    for fmt in FRAMEWORK_FORMATS[framework]:
        assert export_plan(plan, fmt)


@pytest.mark.parametrize("framework", sorted(FRAMEWORK_FORMATS))
def test_every_searched_configuration_exports(framework):
    """Every configuration the search may return for the framework (space x framework rules x structural checks)
    exports to the framework's format: a plan made for an executor never needs refusing."""
    base = planned("moe")
    cluster = ClusterSpec.homogeneous(device(), 8, 4)
    m = model(moe=True)
    wl = TrainingWorkload(global_batch=16, seq_len=1024, framework=framework)
    request = TrainRequest(model=m, cluster=cluster, workload=wl,
                           options=TrainOptions(max_vpp=2, max_mbs=2, max_cp=2, alternatives=0))
    exported = 0
    for shape in shapes(request, 8, cluster.primary):
        for c in configs_for_shape(request, shape):
            c = c.__class__(**{**{f: getattr(c, f) for f in c.__slots__},
                               "stage_layers": even_stage_layers(m.layers, c.pp)})
            if check_config(m, cluster, wl, c):
                continue
            plan = edited(base, tp=c.tp, pp=c.pp, dp=c.dp, cp=c.cp, ep=c.ep, etp=c.etp, vpp=c.vpp, mbs=c.mbs,
                          zero=c.zero, recompute=c.recompute, sequence_parallel=c.sequence_parallel,
                          stage_layers=list(c.stage_layers), microbatches=c.microbatches(wl))
            plan.doc["inputs"]["workload"]["framework"] = framework
            for fmt in FRAMEWORK_FORMATS[framework]:
                assert export(plan, fmt), (framework, c)
            exported += 1
    assert exported >= 20  # the rules leave a real space to search


def test_megatron_zero2_is_refused_not_rendered():
    """Megatron-FSDP optim_grads (ZeRO 2) is outside the Megatron search, so its export refuses it."""
    with pytest.raises(ExportRefused, match=r"decision\.zero.*valid: 0, 1, 3"):
        export(edited(CASES["dense"], zero=2), "megatron")
