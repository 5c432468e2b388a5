"""Serve exports: engine names exist in the targeted version, every instance is launched on its own GPUs with
per-node lines, multi-node instances carry node count/rank/rendezvous, and what the engine cannot run exits 2."""

import json
import re
import shlex

import pytest
from click.testing import CliRunner
from names import UNLISTED, accepted, command_lines, is_engine, serve_names
from serve_plans import edited_group, group, multi_node, planned, unequal_prefills

from cli import main
from planner.exports.common import ExportRefused
from planner.plan import Plan
from planner.serve import EXPORT_FORMATS, export

CASES = {
    "disaggregated": lambda: planned("llama3-8b", 8, "disaggregated"),
    "colocated": lambda: planned("llama3-8b", 8, "colocated"),
    "intra_gpu": lambda: planned("llama3-8b", 8, "intra_gpu"),
    "moe_disaggregated": lambda: planned("qwen3-30b-a3b", 16, "disaggregated"),
    "multi_node": multi_node,
}


def _servers(text: str) -> list[list[str]]:
    return [w for w in command_lines(text) if is_engine(w) and "sglang_router.launch_router" not in w]


def _servers_on_nodes(text: str) -> list[tuple[str, list[str]]]:
    """(node named by the preceding '# on nodeN' comment, words) of every engine server line."""
    out, node = [], None
    for line in text.splitlines():
        if line.startswith("# on node"):
            node = line.split()[2]
        elif line and not line.startswith("#"):
            words = shlex.split(line)
            if is_engine(words) and "sglang_router.launch_router" not in words:
                out.append((node, words))
    return out


def _env(words: list[str]) -> dict:
    return dict(w.split("=", 1) for w in words if re.fullmatch(r"[A-Z_]+=.*", w))


def _flag(words: list[str], name: str):
    return words[words.index(name) + 1] if name in words else None


@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_every_emitted_name_exists_in_the_target(case, fmt):
    text = export(CASES[case](), fmt)
    names = serve_names(text)
    unknown = names - accepted(fmt) - UNLISTED.get(fmt, set())
    assert names and not unknown, sorted(unknown)
    assert "plan sha256" in text and text.splitlines()[0].startswith("# parplan export for ")


@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_every_instance_runs_on_its_own_gpus(case, fmt):
    plan = CASES[case]()
    counts: dict[tuple, int] = {}
    for node, words in _servers_on_nodes(export(plan, fmt)):
        for gpu in _env(words)["CUDA_VISIBLE_DEVICES"].split(","):
            counts[(node, gpu)] = counts.get((node, gpu), 0) + 1
    share = 2 if plan["decision"]["mode"] == "intra_gpu" else 1  # semi-PD: two processes on the same GPUs
    assert set(counts.values()) == {share}
    assert len(counts) == sum(g["instances"] * g["gpus"] for g in plan["decision"]["groups"])


def test_disaggregated_vllm_roles_and_proxy():
    plan = CASES["disaggregated"]()
    text = export(plan, "vllm")
    servers = _servers(text)
    roles = [json.loads(_flag(w, "--kv-transfer-config"))["kv_role"] for w in servers]
    counts: dict[str, int] = {}
    for g in plan["decision"]["groups"]:  # a role may have several groups (shapes)
        counts[g["role"]] = counts.get(g["role"], 0) + g["instances"]
    assert roles.count("kv_producer") == counts.get("prefill", 0)
    assert roles.count("kv_consumer") == counts.get("decode", 0)
    assert "toy_proxy_server.py" in text
    ports = [(_env(w)["VLLM_NIXL_SIDE_CHANNEL_HOST"], _env(w)["VLLM_NIXL_SIDE_CHANNEL_PORT"]) for w in servers]
    assert len(set(ports)) == len(ports)


@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
def test_multi_node_lines_carry_node_count_rank_and_rendezvous(fmt):
    servers = _servers(export(multi_node(), fmt))
    assert len(servers) == 4  # two 16-GPU instances, one line per node of 8 GPUs
    if fmt == "sglang":
        for pair in (servers[:2], servers[2:]):
            assert [_flag(w, "--node-rank") for w in pair] == ["0", "1"]
            assert {_flag(w, "--nnodes") for w in pair} == {"2"}
            assert len({_flag(w, "--dist-init-addr") for w in pair}) == 1
            assert int(_flag(pair[0], "--tp-size")) * int(_flag(pair[0], "--pp-size") or 1) == 16
        return
    decode, prefill = servers[:2], servers[2:]
    assert [_flag(w, "--data-parallel-start-rank") for w in decode] == [None, "8"]  # the head balances all ranks
    assert {_flag(w, "--data-parallel-size-local") for w in decode} == {"8"}
    assert ["--headless" in w for w in decode] == [False, True]
    assert [_flag(w, "--node-rank") for w in prefill] == ["0", "1"]
    assert {_flag(w, "--nnodes") for w in prefill} == {"2"} and len({_flag(w, "--master-addr") for w in prefill}) == 1


def test_vllm_refuses_decode_pipeline_with_nixl():
    base = CASES["disaggregated"]()
    decode = group(base, "decode")  # one decode instance of the first decode shape, made two pipeline stages
    doc = base.doc | {"decision": dict(base["decision"])}
    doc["decision"]["groups"] = [g for g in base["decision"]["groups"] if g["role"] != "decode"] + [
        dict(decode, pp=2 * decode.get("pp", 1), gpus=2 * decode["gpus"], instances=1)]
    plan = Plan(doc)
    with pytest.raises(ExportRefused, match=r"decision\.groups\[\d\]\.pp.*NotImplementedError"):
        export(plan, "vllm")
    assert "--disaggregation-mode decode" in export(plan, "sglang")


def test_intra_gpu_memory_split_and_refusal():
    plan = CASES["intra_gpu"]()
    servers = _servers(export(plan, "vllm"))
    fractions = [float(_flag(w, "--gpu-memory-utilization")) for w in servers]
    assert all(a + b <= 1.0 for a, b in zip(fractions[::2], fractions[1::2], strict=True))
    big = planned("qwen3-30b-a3b", 16, "intra_gpu")
    one_gpu = edited_group(big, "intra_gpu", tp=1, ep=1, dp=1, gpus=1)
    for fmt in EXPORT_FORMATS:
        with pytest.raises(ExportRefused, match="two engine processes each load the weights"):
            export(one_gpu, fmt)


def test_cli_serve_export_exit_codes(tmp_path):
    path = tmp_path / "serve.json"
    CASES["disaggregated"]().write(path)
    ok = CliRunner().invoke(main, ["export", str(path), "--format", "sglang"])
    assert ok.exit_code == 0 and "sglang_router.launch_router" in ok.output
    # a real intra-GPU plan whose KV was sized for one weight copy: the engines' two processes do not fit
    intra = tmp_path / "intra.json"
    CASES["intra_gpu"]().write(intra)
    result = CliRunner().invoke(main, ["export", str(intra), "--format", "vllm"])
    assert result.exit_code in (0, 2) and "Traceback" not in result.output
    if result.exit_code == 2:
        assert "decision.groups[0]" in result.output and "two engine processes each load the weights" in result.output


def test_unequal_instances_get_load_weighted_routing():
    plan = unequal_prefills()
    prefill = [g for g in plan["decision"]["groups"] if g["role"] == "prefill"]
    proxy = next(w for w in command_lines(export(plan, "vllm")) if "toy_proxy_server.py" in w)
    ports = proxy[proxy.index("--prefiller-ports") + 1:proxy.index("--decoder-hosts")]
    assert [ports.count("8100"), ports.count("8101")] == [3, 8]  # loads 1 : 3 as small integers (limit 8)
    assert [g["load_rps"] for g in prefill] == [1.0, 3.0]
    router = next(w for w in command_lines(export(plan, "sglang")) if "sglang_router.launch_router" in w)
    assert router[router.index("--prefill-policy") + 1] == "power_of_two"


def test_each_decode_pool_gets_its_own_route():
    """Prefills planned to send KV to different decode pools go through different proxies/routers."""
    def grp(role, pool, dest, load):
        return {"role": role, "pool": pool, "dest_pool": dest, "tp": 1, "pp": 1, "ep": 1, "dp": 1, "gpus": 1,
                "instances": 1, "max_batch": 8, "chunk_tokens": 0, "prefill_share": 0.0, "load_rps": load}
    pools = [{"name": n, "nodes": 2, "devices_per_node": 2} for n in ("a", "b")]
    plan = Plan({"kind": "serve", "inputs": {"model": {"name": "m"}, "options": {"dtype": "bf16"},
                                             "cluster": {"pools": pools}},
                 "decision": {"mode": "disaggregated", "groups": [
                     grp("prefill", "a", "a", 2.0), grp("prefill", "a", "b", 1.0),
                     grp("decode", "a", "a", 2.0), grp("decode", "b", "b", 1.0)]}})
    for fmt, needle in (("vllm", "toy_proxy_server.py"), ("sglang", "sglang_router.launch_router")):
        fronts = [w for w in command_lines(export(plan, fmt)) if needle in w]
        assert len(fronts) == 2
        assert {_flag(w, "--port") for w in fronts} == {"8000", "8001"}
    text = export(plan, "vllm")
    assert "# PD proxy to decode pool a: 2 req/s" in text and "# PD proxy to decode pool b: 1 req/s" in text
