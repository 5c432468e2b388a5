"""Small real serve plans for the export tests, and edited copies for shapes the planner picks only at scale."""

import copy
import functools

import profiles
from costmodels.hardware import ClusterSpec
from planner import plan_serving
from planner.plan import Plan
from planner.serve import ServeOptions, ServingWorkload

WORKLOAD = ServingWorkload(input_len=2000, output_len=200, ttft_s=0.6, tpot_s=0.03)


@functools.cache
def planned(model: str, gpus: int, mode: str) -> Plan:
    cluster = ClusterSpec.homogeneous(profiles.load_device("h100-sxm"), gpus)
    return plan_serving(profiles.load_model(model), cluster, WORKLOAD,
                        options=ServeOptions(simulate_requests=200, modes=(mode,)))


def group(plan: Plan, role: str) -> dict:
    return next(g for g in plan["decision"]["groups"] if g["role"] == role)


def multi_node() -> Plan:
    """A disaggregated MoE plan edited to a 16-GPU data-parallel decode instance and a 16-GPU tp x pp prefill
    instance on 4 nodes (the planner picks such shapes for large models on large clusters)."""
    doc = copy.deepcopy(planned("qwen3-30b-a3b", 16, "disaggregated").doc)
    doc["inputs"]["cluster"]["pools"][0]["nodes"] = 4
    prefill, decode = dict(group(Plan(doc), "prefill")), dict(group(Plan(doc), "decode"))
    prefill.update(tp=8, pp=2, dp=1, ep=1, gpus=16, instances=1)
    decode.update(tp=1, pp=1, dp=16, ep=16, gpus=16, instances=1)
    doc["decision"]["groups"] = [decode, prefill]
    return Plan(doc)


def edited_group(plan: Plan, role: str, **fields) -> Plan:
    doc = copy.deepcopy(plan.doc)
    for g in doc["decision"]["groups"]:
        if g["role"] == role:
            g.update(fields)
    return Plan(doc)


def unequal_prefills() -> Plan:
    """A disaggregated plan edited to two prefill instances whose planned loads differ threefold (on a spare node)."""
    doc = copy.deepcopy(planned("llama3-8b", 8, "disaggregated").doc)
    doc["inputs"]["cluster"]["pools"][0]["nodes"] += 1
    prefill = dict(group(Plan(doc), "prefill"), instances=1)
    slow, fast = dict(prefill, load_rps=1.0), dict(prefill, load_rps=3.0)
    doc["decision"]["groups"] = [g for g in doc["decision"]["groups"] if g["role"] != "prefill"] + [slow, fast]
    return Plan(doc)
