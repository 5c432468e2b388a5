"""Where each serving instance of a serve plan runs: nodes, GPUs, ports, and the intra-GPU memory split.

Placement follows the planner's node packing (constraint C5 of planner/serve/formulation.py): an instance
larger than a node takes whole nodes of its pool; smaller instances (whose GPU counts divide a node) are
packed first-fit, largest first, into the remaining nodes. Nodes are named node0, node1, ... in pool order;
commands refer to their addresses as ${NODE<i>_ADDR} placeholders (set them before running a line).
"""

import shlex
from dataclasses import dataclass, field

from costmodels.errors import SpecError
from planner.exports.common import ExportRefused, Target
from planner.plan import Plan

BASE_PORT = {"prefill": 8100, "decode": 8200, "colocated": 8100, "intra_gpu": 8100}

QUANTIZATION = {"fp8": "fp8", "fp4": "modelopt_fp4"}
"""vLLM's and SGLang's --quantization by the plan's weight dtype: FP8 (per-tensor), NVFP4 (a ModelOpt FP4 checkpoint)"""


@dataclass(frozen=True, kw_only=True, slots=True)
class Node:
    """One node of a pool."""

    index: int
    """global node index (node0, node1, ... in pool order)"""
    pool: str
    """its pool"""
    gpus: int
    """GPUs per node"""

    @property
    def name(self) -> str:
        return f"node{self.index}"

    @property
    def addr(self) -> str:
        return "${NODE" + str(self.index) + "_ADDR}"


@dataclass(kw_only=True, slots=True)
class Worker:
    """One serving instance: its group in the decision and where it runs."""

    role: str
    """prefill, decode, colocated or intra_gpu"""
    n: int
    """index among the instances of its role"""
    group: dict
    """its entry of decision.groups"""
    group_index: int
    """position of that entry"""
    port: int
    """HTTP port of the instance (on its first node)"""
    placement: list[tuple[Node, list[int]]] = field(default_factory=list)
    """(node, GPU ids on it) in node-rank order"""

    @property
    def head(self) -> Node:
        return self.placement[0][0]

    def where(self) -> str:
        parts = [f"{node.name} (pool {node.pool}) GPUs {','.join(map(str, ids))}" for node, ids in self.placement]
        return "; ".join(parts)


def _nodes(plan: Plan) -> list[Node]:
    out = []
    for pool in plan["inputs"]["cluster"]["pools"]:
        for _ in range(pool["nodes"]):
            out.append(Node(index=len(out), pool=pool["name"], gpus=pool["devices_per_node"]))
    return out


def _workers(plan: Plan) -> list[Worker]:
    counters: dict[str, int] = {}
    out = []
    for gi, g in enumerate(plan["decision"]["groups"]):
        for _ in range(g["instances"]):
            n = counters.get(g["role"], 0)
            counters[g["role"]] = n + 1
            out.append(Worker(role=g["role"], n=n, group=g, group_index=gi, port=BASE_PORT[g["role"]] + n))
    return out


def place(plan: Plan, target: Target) -> tuple[list[Node], list[Worker]]:
    """Every instance on nodes and GPUs; refuses a decision that does not pack into the cluster."""
    nodes, workers = _nodes(plan), _workers(plan)
    free = {node.index: list(range(node.gpus)) for node in nodes}
    for w in sorted(workers, key=lambda w: (-w.group["gpus"], w.group_index, w.n)):
        size, pool, g = w.group["gpus"], w.group["pool"], w.group
        if size != g["tp"] * g["pp"] * g["dp"]:
            raise SpecError(f"gpus={size} but tp x pp x dp = {g['tp'] * g['pp'] * g['dp']}",
                            field=f"decision.groups[{w.group_index}].gpus")
        own = [node for node in nodes if node.pool == pool]
        per_node = own[0].gpus if own else 0
        if own and size > per_node and size % per_node == 0:
            whole = [node for node in own if len(free[node.index]) == node.gpus][:size // per_node]
            if len(whole) == size // per_node:
                for node in whole:
                    w.placement.append((node, free[node.index]))
                    free[node.index] = []
                continue
        elif own and size <= per_node:
            fit = next((node for node in own if len(free[node.index]) >= size), None)
            if fit is not None:
                w.placement.append((fit, free[fit.index][:size]))
                free[fit.index] = free[fit.index][size:]
                continue
        raise ExportRefused(target, f"decision.groups[{w.group_index}]", f"{w.role} x{w.group['instances']}",
                            f"an instance of {size} GPUs does not fit the free GPUs of pool {pool} "
                            "(instances larger than a node need whole nodes)")
    return nodes, workers


def node_lines(nodes: list[Node], workers: list[Worker]) -> list[str]:
    """Comment lines: which node is which, and which instance runs where."""
    used = sorted({node.index for w in workers for node, _ in w.placement})
    lines = ["# nodes (set NODE<i>_ADDR to each node's address before running its lines):"]
    lines += [f"#   {nodes[i].name}: a node of pool {nodes[i].pool} ({nodes[i].gpus} GPUs)" for i in used]
    return lines


def shell_line(env: dict, argv: list[str]) -> str:
    """A shell command; words holding ${...} placeholders stay expandable (double quotes)."""
    def word(w: str) -> str:
        return f'"{w}"' if "${" in w else shlex.quote(w)
    return " ".join([f"{k}={word(str(v))}" for k, v in env.items()] + [word(a) for a in argv])


def visible(ids: list[int]) -> dict:
    return {"CUDA_VISIBLE_DEVICES": ",".join(map(str, ids))}


@dataclass(frozen=True, kw_only=True, slots=True)
class Route:
    """The prefill instances that send their KV to one decode pool, and that pool's decode instances."""

    dest_pool: str
    """the decode pool (decision.groups[].dest_pool of the prefill instances)"""
    prefill: list
    """prefill (or intra_gpu) workers"""
    decode: list
    """decode (or intra_gpu) workers"""
    rate_rps: float
    """requests/s the plan sends this way (sum of the prefill instances' load_rps)"""


def routes(workers: list[Worker]) -> list[Route]:
    """One route per decode pool: a separate proxy/router per route keeps each prefill's KV on its planned pool."""
    out = []
    pools = sorted({w.group.get("dest_pool") or w.group["pool"] for w in workers
                    if w.role in ("prefill", "intra_gpu")})
    for pool in pools:
        pre = [w for w in workers if w.role in ("prefill", "intra_gpu")
               and (w.group.get("dest_pool") or w.group["pool"]) == pool]
        dec = [w for w in workers if w.role in ("decode", "intra_gpu") and w.group["pool"] == pool]
        out.append(Route(dest_pool=pool, prefill=pre, decode=dec,
                         rate_rps=sum(float(w.group.get("load_rps") or 0.0) for w in pre)))
    return out


def load_weights(workers: list[Worker], limit: int = 8) -> list[int]:
    """Small integer weights proportional to each instance's planned load_rps (1 each when loads are equal or
    unknown); a round-robin balancer that lists instance i weights[i] times sends it that share."""
    loads = [float(w.group.get("load_rps") or 0.0) for w in workers]
    top = max(loads, default=0.0)
    if top <= 0 or min(loads) == top:
        return [1] * len(workers)
    return [max(1, round(limit * x / top)) for x in loads]
