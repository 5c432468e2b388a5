"""What the training exports share: the decision read back from a plan, and which node runs which stage.

Megatron-LM and torchtitan both order ranks with the pipeline outermost (Megatron's default order
tp-cp-ep-dp-pp; torchtitan's mesh ["pp", "dp_replicate", "dp_shard", "cp", "tp"]), so stage s owns global ranks
s*G .. (s+1)*G-1 with G = tp*cp*dp, and torchrun's static rendezvous gives node k the ranks
k*gpn .. (k+1)*gpn-1. On a heterogeneous cluster the node order therefore decides which pool runs which stage:
`node_layout` lists, per node rank, the pool it must be taken from.
"""

from dataclasses import dataclass

from costmodels.errors import SpecError
from costmodels.framework import unsupported
from costmodels.training import even_stage_layers
from planner.exports.common import ExportRefused, Target
from planner.plan import Plan


@dataclass(frozen=True, kw_only=True, slots=True)
class TrainView:
    """A train decision with the inputs an executor needs beside it."""

    d: dict
    """the decision (stage_layers filled in for estimates)"""
    model: dict
    """inputs.model"""
    work: dict
    """inputs.workload"""
    cluster: dict
    """inputs.cluster (may be empty for hand-made documents)"""
    framework: str
    """the framework the plan was made for (decision or workload `framework`; 'megatron' when absent)"""

    def option(self, name: str) -> bool:
        """A workload switch that changes how the executor runs (compile, fp8_allgather, a2a_dedup, ...)."""
        return bool(self.work.get(name))

    def tp_overlap(self, default: bool) -> bool:
        """Overlap TP communication with GEMMs (workload.async_tp; None = the executor's default)."""
        value = self.work.get("async_tp")
        return self.d["tp"] > 1 and (default if value is None else bool(value))

    @property
    def stage_gpus(self) -> int:
        return self.d["tp"] * self.d["cp"] * self.d["dp"]

    @property
    def world(self) -> int:
        return self.stage_gpus * self.d["pp"]

    @property
    def accumulation(self) -> int:
        """micro-batches per step per data-parallel rank: global batch / (dp x mbs)"""
        return self.work["global_batch"] // (self.d["dp"] * self.d["mbs"])


def train_view(plan: Plan) -> TrainView:
    """The decision of a train plan or of an estimate of a train configuration (even split when absent)."""
    if plan.kind not in ("train", "estimate"):
        raise SpecError(f"these formats export 'train' plans or train estimates, got kind {plan.kind!r}",
                        field="kind")
    inputs = plan["inputs"]
    d = dict(plan["decision"])
    if d.get("stage_layers") is None:
        d["stage_layers"] = list(even_stage_layers(inputs["model"]["layers"], d["pp"]))
    work = inputs["workload"]
    if work["global_batch"] % (d["dp"] * d["mbs"]):
        raise SpecError(f"global batch {work['global_batch']} is not a multiple of dp x mbs = {d['dp'] * d['mbs']}",
                        field="decision.mbs")
    accumulation = work["global_batch"] // (d["dp"] * d["mbs"])
    if d.get("microbatches", accumulation) != accumulation:
        raise SpecError(f"{d['microbatches']} micro-batches, but global batch / (dp x mbs) = {accumulation}",
                        field="decision.microbatches")
    framework = d.get("framework") or work.get("framework") or "megatron"
    return TrainView(d=d, model=inputs["model"], work=work, cluster=inputs.get("cluster") or {}, framework=framework)


def framework_decisions(view: TrainView) -> dict:
    """The decision as costmodels.framework.Combination fields."""
    d, moe = view.d, view.model.get("moe") or {}
    return dict(zero=d["zero"], pp=d["pp"], cp=d["cp"], vpp=d["vpp"], tp=d["tp"], etp=d["etp"], ep=d["ep"],
                dp=d["dp"], experts=int(moe.get("experts", 0)), recompute=d["recompute"],
                sequence_parallel=bool(d["sequence_parallel"]), fp8=view.work["dtype"] == "fp8",
                mtp_layers=int(view.model.get("mtp_layers") or 0), stage_layers=tuple(d["stage_layers"]),
                layers=int(view.model["layers"]), microbatches=view.accumulation)


_INPUT_FIELDS = {"dtype": ("inputs.workload.dtype", "dtype"), "mtp_layers": ("inputs.model.mtp_layers", "mtp_layers")}


def refuse_unsupported(view: TrainView, target: Target, framework: str) -> None:
    """The framework rules the planner searches under (costmodels.framework.unsupported), as export refusals.
    torchtitan's expert rules are those of current torchtitan; the v0.2.2 export checks its own."""
    for field, reason in unsupported(framework, **framework_decisions(view)):
        if target.fmt == "torchtitan-toml" and field in ("ep", "etp"):
            continue
        if field in _INPUT_FIELDS:
            path, key = _INPUT_FIELDS[field]
            source = view.work if path.startswith("inputs.workload") else view.model
            raise ExportRefused(target, path, source.get(key), reason)
        raise ExportRefused(target, f"decision.{field}", view.d[field], reason)


def moe_layer_ids(model: dict) -> list[int]:
    """0-based ids of the layers with routed experts (ModelSpec.layer_is_moe)."""
    moe = model.get("moe")
    if not moe:
        return []
    first, freq = int(moe.get("first_dense_layers", 0)), int(moe.get("layer_freq", 1))
    return [i for i in range(first, model["layers"]) if (i - first) % freq == 0]


def _pools(view: TrainView) -> dict[str, dict]:
    return {p["name"]: p for p in view.cluster.get("pools", [])}


def node_layout(view: TrainView, target: Target) -> tuple[int, list[str]]:
    """(GPUs per node, pool of each node rank) for torchrun's static rendezvous; refuses layouts it cannot express.

    Homogeneous plans: every node comes from the one pool. Heterogeneous plans (decision.stage_pools): node k
    must come from the pool of the stages its ranks belong to; a node holding ranks of stages on two pools, or
    pools with different GPUs per node (torchrun gives every node the same number of ranks), cannot be laid out.
    """
    pools = _pools(view)
    stage_pools = view.d.get("stage_pools") or []
    if not pools:
        return view.world, ["-"]
    names = sorted(set(stage_pools)) if stage_pools else [next(iter(pools))]
    per_node = {pools[n]["devices_per_node"] for n in names if n in pools}
    if len(per_node) != 1:
        raise ExportRefused(target, "decision.stage_pools", stage_pools,
                            "torchrun gives every node the same number of ranks; these pools have "
                            f"{sorted(per_node)} GPUs per node")
    gpn = per_node.pop()
    gpn = min(gpn, view.world)
    if view.world % gpn:
        raise ExportRefused(target, "decision", f"{view.world} GPUs",
                            f"the job does not fill whole nodes of {gpn} GPUs")
    if not stage_pools:
        return gpn, [names[0]] * (view.world // gpn)
    layout = []
    for node in range(view.world // gpn):
        stages = range(node * gpn // view.stage_gpus, ((node + 1) * gpn - 1) // view.stage_gpus + 1)
        owners = sorted({stage_pools[s] for s in stages})
        if len(owners) != 1:
            raise ExportRefused(target, "decision.stage_pools", stage_pools,
                                f"node rank {node} would hold ranks of stages {list(stages)} on pools {owners}")
        layout.append(owners[0])
    return gpn, layout


def node_runs(view: TrainView, target: Target) -> list[str]:
    """'node ranks a-b: pool P (stages s-t)' for each run of consecutive nodes on one pool."""
    gpn, layout = node_layout(view, target)
    runs: list[list] = []
    for node, pool in enumerate(layout):
        if runs and runs[-1][2] == pool:
            runs[-1][1] = node
        else:
            runs.append([node, node, pool])
    out = []
    for first, last, pool in runs:
        s0, s1 = first * gpn // view.stage_gpus, ((last + 1) * gpn - 1) // view.stage_gpus
        nodes = f"node rank {first}" if first == last else f"node ranks {first}-{last}"
        stages = f"stage {s0}" if s0 == s1 else f"stages {s0}-{s1}"
        out.append(f"{nodes}: pool {pool} ({stages})")
    return out


def node_comment_lines(view: TrainView, target: Target) -> list[str]:
    """The order nodes must be given node ranks in (hostfile, rendezvous), as comment lines."""
    gpn, layout = node_layout(view, target)
    lines = [f"# {view.world} GPUs: pipeline outermost, stage s = global ranks s*{view.stage_gpus}.."
             f"(s+1)*{view.stage_gpus}-1; {len(layout)} node(s) of {gpn} GPUs, in this node-rank order:"]
    return lines + [f"#   {run}" for run in node_runs(view, target)]


def torchrun_line(view: TrainView, target: Target, entry: list[str]) -> str:
    """The per-node launch line (NODE_RANK and MASTER_ADDR are set on each node; see the node order above)."""
    gpn, layout = node_layout(view, target)
    one = len(layout) == 1
    return " ".join(["torchrun", "--nnodes", str(len(layout)), "--nproc-per-node", str(gpn),
                     "--node-rank", "0" if one else "${NODE_RANK:?node rank, see the node order above}",
                     "--master-addr", "localhost" if one else "${MASTER_ADDR:?address of node rank 0}",
                     "--master-port", "29500", *entry])
