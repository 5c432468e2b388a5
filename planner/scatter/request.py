"""Inputs of the scatter planner and the cost table every method reads.

A *unit* is one SP rank: tp GPUs (a TP group inside a node). The cluster has U = N / tp units; a group of
degree d takes d units. Allowed degrees: valid for the SP style (costmodels.sequence.degree_valid), at most U,
powers of two under `degrees="pow2"`, and — so that groups keep to the topology — a group of more GPUs than a
node takes whole nodes (d·tp a multiple of the node size).
"""

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from costmodels import sequence as seqcost
from costmodels.errors import InfeasibleError, require
from costmodels.hardware import ClusterSpec
from costmodels.model import ModelSpec

METHODS = ("exact", "milp")
DEGREE_SETS = ("any", "pow2")


@dataclass(frozen=True, kw_only=True, slots=True)
class ScatterOptions:
    """Search controls (identical options give identical plans)."""

    relative_gap: float = 0.025
    """stop when (step time - bound) / step time is at most this (0 = prove optimality)"""
    max_evaluations: int = 6
    """degree multisets whose exact-length assignment is computed (the best by bound first)"""
    stall_evaluations: int = 3
    """stop assigning multisets after this many in a row did not improve the incumbent"""
    max_nodes: int = 300
    """multiset-enumeration nodes visited before the rest is covered by its bound only"""
    improve_rounds: int = 50
    """move/swap improvement steps per assignment"""
    exact_assign_max_sequences: int = 12
    """batches up to this size get an exhaustive assignment per multiset (provably optimal)"""
    tighten_multisets: int = 3
    """multisets with the lowest bounds whose dual weights are tuned at the end to raise the proven bound"""
    refine_evaluations: int = 60
    """multisets scored (by LPT) in the descent from the incumbent's multiset when the gap is not yet proven"""
    long_sequences: int = 3
    """longest sequences placed exactly (not relaxed) when bounding a multiset"""
    milp_buckets: int = 16
    """length buckets of the FlexSP-style MILP"""

    def __post_init__(self):
        require(0.0 <= self.relative_gap < 1.0, f"must be in [0, 1), got {self.relative_gap}", field="relative_gap")
        for name in ("max_evaluations", "stall_evaluations", "max_nodes", "milp_buckets"):
            require(getattr(self, name) >= 1, "must be >= 1", field=name)
        require(self.improve_rounds >= 0, "must be >= 0", field="improve_rounds")
        require(self.long_sequences >= 0, "must be >= 0", field="long_sequences")
        require(self.refine_evaluations >= 0, "must be >= 0", field="refine_evaluations")
        require(self.tighten_multisets >= 0, "must be >= 0", field="tighten_multisets")
        require(self.exact_assign_max_sequences >= 0, "must be >= 0", field="exact_assign_max_sequences")


@dataclass(frozen=True, kw_only=True, slots=True)
class ScatterRequest:
    """One batch of sequence lengths to spread over SP groups."""

    lengths: tuple[int, ...]
    """tokens of each sequence, in input order"""
    model: ModelSpec
    """the model"""
    cluster: ClusterSpec
    """a homogeneous cluster"""
    sp_style: str = "ulysses"
    """ulysses, ring or hybrid"""
    degrees: str = "any"
    """any (every valid degree) or pow2"""
    tp: int = 1
    """tensor-parallel degree inside each SP rank"""
    zero: int | None = None
    """ZeRO stage (None: the smallest whose static memory is at most half of HBM)"""
    method: str = "exact"
    """exact (multiset enumeration with bounds) or milp (FlexSP-style bucketed MILP)"""
    time_limit_s: float = 10.0
    """wall-clock limit of the search"""

    def __post_init__(self):
        require(len(self.lengths) >= 1, "needs at least one sequence", field="lengths")
        for i, s in enumerate(self.lengths):
            require(isinstance(s, (int, np.integer)) and s >= 1, f"sequence {i} has length {s!r}; must be >= 1",
                    field="lengths")
        require(not self.cluster.is_heterogeneous, "scatter plans a single pool of identical GPUs", field="cluster")
        require(self.sp_style in seqcost.SP_STYLES, f"unknown {self.sp_style!r}; valid: {', '.join(seqcost.SP_STYLES)}",
                field="sp_style")
        require(self.degrees in DEGREE_SETS, f"unknown {self.degrees!r}; valid: {', '.join(DEGREE_SETS)}",
                field="degrees")
        require(self.method in METHODS, f"unknown {self.method!r}; valid: {', '.join(METHODS)}", field="method")
        pool = self.cluster.primary
        require(self.tp >= 1 and pool.devices_per_node % self.tp == 0,
                f"tp={self.tp} must divide the GPUs per node ({pool.devices_per_node})", field="tp")
        require(self.model.heads % self.tp == 0, f"tp={self.tp} must divide heads ({self.model.heads})", field="tp")
        require(self.zero is None or self.zero in (0, 1, 2, 3), f"must be 0..3, got {self.zero!r}", field="zero")
        require(math.isfinite(self.time_limit_s) and self.time_limit_s > 0,
                f"must be a finite number of seconds > 0, got {self.time_limit_s}", field="time_limit")

    @property
    def units(self) -> int:
        return self.cluster.num_devices // self.tp

    def resolved_zero(self) -> int:
        pool = self.cluster.primary
        if self.zero is not None:
            return self.zero
        return seqcost.default_zero(self.model, pool.device, tp=self.tp, dp=self.units)

    def to_inputs(self) -> dict:
        """The request as plain data (dataclasses.asdict of every field but the lengths, which are copied once as
        ints: a deep copy of a long batch would dominate the write-up of a plan)."""
        doc = {f.name: dataclasses.asdict(getattr(self, f.name)) if dataclasses.is_dataclass(getattr(self, f.name))
               else getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "lengths"}
        doc["zero"] = self.resolved_zero()
        doc["lengths"] = np.asarray(self.lengths, dtype=np.int64).tolist()
        return doc


def allowed_degrees(req: ScatterRequest) -> list[int]:
    """Degrees a group may have, ascending."""
    node_units = req.cluster.primary.devices_per_node // req.tp
    out = []
    for d in range(1, req.units + 1):
        if not seqcost.degree_valid(req.model, req.sp_style, d, req.tp):
            continue
        if req.degrees == "pow2" and d & (d - 1):
            continue
        if d > node_units and d % node_units:
            continue
        out.append(d)
    return out


@dataclass(frozen=True, kw_only=True, slots=True)
class CostTable:
    """Per-degree times and memory of every sequence (rows follow `degrees`)."""

    degrees: tuple[int, ...]
    """allowed degrees, ascending"""
    intra_s: np.ndarray
    """[k, i] seconds of sequence i on a group of degrees[k] inside one node (inf where it does not fit)"""
    inter_s: np.ndarray
    """[k, i] the same for a group spanning nodes"""
    act_bytes: np.ndarray
    """[k, i] activation bytes per GPU of sequence i on degrees[k]"""
    left_bytes: float
    """HBM per GPU left for activations"""
    node_units: int
    """units per node"""


def build_costs(req: ScatterRequest) -> CostTable:
    """Evaluate the cost model once per allowed degree (vectorised over the batch)."""
    pool = req.cluster.primary
    dev = pool.device
    zero = req.resolved_zero()
    left = seqcost.memory_left_bytes(req.model, dev, tp=req.tp, zero=zero, dp=req.units)
    degrees = allowed_degrees(req)
    lengths = np.asarray(req.lengths, dtype=float)
    node_units = pool.devices_per_node // req.tp
    kw = dict(style=req.sp_style, tp=req.tp, gpus_per_node=pool.devices_per_node,
              intra_bytes_per_s=pool.intra_node_bytes_per_s, inter_bytes_per_s=pool.inter_node_bytes_per_s)
    intra, inter, act = [], [], []
    for d in degrees:
        mem = seqcost.activation_bytes_per_gpu(req.model, lengths, degree=d, tp=req.tp)
        fits = mem <= left
        t_in = seqcost.sequence_times_s(req.model, dev, lengths, degree=d, inter_node=d > node_units, **kw)
        t_out = seqcost.sequence_times_s(req.model, dev, lengths, degree=d, inter_node=True, **kw) \
            if pool.nodes > 1 else t_in
        intra.append(np.where(fits, t_in, np.inf))
        inter.append(np.where(fits, t_out, np.inf))
        act.append(mem)
    table = CostTable(degrees=tuple(degrees), intra_s=np.array(intra), inter_s=np.array(inter),
                      act_bytes=np.array(act), left_bytes=left, node_units=node_units)
    _require_every_sequence_fits(req, table)
    return table


def _require_every_sequence_fits(req: ScatterRequest, table: CostTable) -> None:
    fits_somewhere = np.isfinite(table.intra_s).any(axis=0)
    if fits_somewhere.all():
        return
    i = int(np.flatnonzero(~fits_somewhere)[0])
    d = table.degrees[-1]
    need = float(table.act_bytes[-1, i])
    raise InfeasibleError(
        f"sequence {i} ({req.lengths[i]} tokens) needs {need / 2**30:.1f} GiB of activations per GPU even on the "
        f"largest {req.sp_style} group (degree {d}, {d * req.tp} GPUs); {table.left_bytes / 2**30:.1f} GiB per GPU "
        f"are left after weights, gradients and optimizer states",
        details={"sequence": i, "length": int(req.lengths[i]), "needed_bytes": need,
                 "available_bytes": table.left_bytes, "degree": d})

