"""Why nothing fits, with numbers, and the smallest GPU count that would fit."""

from costmodels.hardware import ClusterSpec
from costmodels.parallel import ParallelConfig
from planner.train.bounds import Bounds
from planner.train.request import TrainRequest
from planner.train.search import split_problem
from planner.train.space import configs_for_shape, shapes
from planner.train.split import best_split_dp

GiB = float(2**30)
MAX_SCALE = 64
"""the GPU-count search looks up to this many times the requested count"""


def _describe(c: ParallelConfig) -> str:
    return (f"tp={c.tp}, pp={c.pp}, dp={c.dp}, cp={c.cp}, ep={c.ep}, etp={c.etp}, mbs={c.mbs}, zero={c.zero}, "
            f"recompute={c.recompute}")


def _fits(request: TrainRequest, c: ParallelConfig) -> bool:
    prob = split_problem(request, c, (request.cluster.primary,) * c.pp)
    return best_split_dp(prob) is not None


def frugal_fit(request: TrainRequest, gpus: int, budget: int = 40) -> bool:
    """Whether some strategy on `gpus` GPUs fits: the candidates with the smallest memory lower bound, among
    the most memory-frugal settings the options allow, get an exact split check."""
    pool = request.cluster.primary
    bounds = Bounds(request.model, pool, request.workload)
    cands = []
    for shape in shapes(request, gpus, pool):
        for c in configs_for_shape(request, shape):
            if c.mbs == 1 and c.vpp == 1:
                cands.append((bounds.memory(c), len(cands), c))
    cands.sort(key=lambda e: (e[0], e[1]))
    cap = pool.device.usable_bytes
    return any(mem <= cap and _fits(request, c) for mem, _, c in cands[:budget])


def minimum_gpus(request: TrainRequest) -> int | None:
    """The smallest GPU count (whole nodes, more than requested) on which a strategy fits, or None."""
    pool = request.cluster.primary
    # a cluster smaller than one node has a shrunken node (ClusterSpec.homogeneous): suggest whole real nodes
    per_node = max(pool.devices_per_node, pool.device.devices_per_node) if pool.nodes == 1 else pool.devices_per_node
    start = request.cluster.num_devices

    def at(n: int) -> TrainRequest:
        cluster = ClusterSpec.homogeneous(pool.device, n, per_node)
        return TrainRequest(model=request.model, cluster=cluster, workload=request.workload, options=request.options)

    lo, hi, n = start, None, max(per_node, start)
    while n <= MAX_SCALE * max(start, per_node):
        n = (n * 2 // per_node) * per_node if n >= per_node else per_node
        if frugal_fit(at(n), n):
            hi = n
            break
        lo = n
    if hi is None:
        return None
    # bisect on whole nodes between the last count that did not fit and the first that did
    lo_nodes, hi_nodes = lo // per_node, hi // per_node
    while hi_nodes - lo_nodes > 1:
        mid = (lo_nodes + hi_nodes) // 2
        if frugal_fit(at(mid * per_node), mid * per_node):
            hi_nodes = mid
        else:
            lo_nodes = mid
    return hi_nodes * per_node


def infeasible_message(request: TrainRequest, stats) -> str:
    """What binds, with numbers, and the smallest GPU count that fits."""
    gpus = request.cluster.num_devices
    usable = request.cluster.primary.device.usable_bytes / GiB
    if stats.enumerated == 0:
        w = request.workload
        return (f"no strategy satisfies the divisibility rules on {gpus} GPUs (global batch {w.global_batch}, "
                f"{request.model.heads} heads, {request.model.kv_heads} kv heads, {request.model.layers} layers); "
                "try a GPU count or global batch with more divisors")
    msg = f"no strategy fits in memory on {gpus} GPUs"
    if stats.tightest_memory:
        need, c = stats.tightest_memory
        msg += (f": the most frugal one ({_describe(c)}) needs at least {need / GiB:.1f} GiB per GPU; "
                f"usable HBM is {usable:.1f} GiB")
    if request.cluster.is_heterogeneous:
        return msg + "; add nodes to a pool (the GPU-count search covers single-pool clusters)"
    best = minimum_gpus(request)
    if best is not None:
        msg += f"; the smallest GPU count that fits is {best}"
    else:
        msg += f"; nothing fits up to {MAX_SCALE}x the GPUs"
    return msg
