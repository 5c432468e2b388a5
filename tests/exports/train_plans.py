"""Small real train plans for the export tests (planned in well under a second each), and edited copies."""

import copy
import functools

from costmodels.hardware import ClusterSpec, DeviceSpec, NodePool
from costmodels.model import ModelSpec, MoESpec
from costmodels.parallel import TrainingWorkload
from planner.plan import Plan
from planner.train import TrainOptions, plan_training


def model(*, moe: bool = False, mtp: int = 0, layers: int = 8) -> ModelSpec:
    return ModelSpec(name="tiny", layers=layers, hidden=512, heads=8, kv_heads=4, head_dim=64, ffn=1536, vocab=4096,
                     mtp_layers=mtp, extra={"hf_model_type": "deepseek_v3" if moe else "llama"},
                     moe=MoESpec(experts=8, top_k=2, expert_ffn=512, first_dense_layers=1) if moe else None)


def device(hbm_gib: float = 2.0, flops: float = 100e12, name: str = "toy") -> DeviceSpec:
    return DeviceSpec(name=name, bf16_flops_per_s=flops, fp8_flops_per_s=2 * flops, hbm_bytes=hbm_gib * 2**30,
                      hbm_bytes_per_s=1e12, devices_per_node=4, intra_node_bytes_per_s=100e9,
                      inter_node_bytes_per_s=10e9, memory_reserve_bytes=0.1 * 2**30)


def mid_model() -> ModelSpec:
    return ModelSpec(name="mid", layers=8, hidden=2048, heads=16, kv_heads=4, head_dim=128, ffn=8192, vocab=32000,
                     extra={"hf_model_type": "llama"})


def two_pools() -> ClusterSpec:
    pools = tuple(NodePool(name=n, device=device(2.0, f, n), nodes=1, devices_per_node=2,
                           intra_node_bytes_per_s=100e9, inter_node_bytes_per_s=10e9)
                  for n, f in (("fast", 100e12), ("slow", 25e12)))
    return ClusterSpec(name="toy-hetero", pools=pools, inter_pool_bytes_per_s=5e9)


FAST = dict(alternatives=0, max_vpp=1, max_mbs=2, max_cp=1)


@functools.cache
def planned(name: str) -> Plan:
    """A plan from the real planner; `name` picks the case."""
    cluster = ClusterSpec.homogeneous(device(), 8, 4)
    wl = TrainingWorkload(global_batch=16, seq_len=1024)
    cases = {
        "dense": (model(), cluster, wl, TrainOptions(**FAST)),
        "dense_zero3": (model(), cluster, wl, TrainOptions(**FAST, zero_stages=(3,))),
        "cp_pp_tp": (mid_model(), ClusterSpec.homogeneous(device(3.0), 8, 4),
                     TrainingWorkload(global_batch=16, seq_len=2048), TrainOptions(**{**FAST, "max_cp": 2},
                                                                                   zero_stages=(0,))),
        "moe": (model(moe=True), cluster, wl, TrainOptions(**FAST, zero_stages=(0, 3))),
        "moe_mtp": (model(moe=True, mtp=1), cluster, wl, TrainOptions(**FAST)),
        "fp8": (model(), cluster, TrainingWorkload(global_batch=16, seq_len=1024, dtype="fp8"),
                TrainOptions(**FAST, zero_stages=(0, 3))),
        "hetero": (model(layers=6), two_pools(), TrainingWorkload(global_batch=8, seq_len=1024),
                   TrainOptions(**FAST, zero_stages=(0, 3))),
    }
    m, c, w, o = cases[name]
    return plan_training(m, c, w, options=o)


def edited(plan: Plan, **decision) -> Plan:
    """A copy of `plan` with decision fields replaced (cases the planner would not pick for these tiny specs)."""
    doc = copy.deepcopy(plan.doc)
    doc["decision"].update(decision)
    return Plan(doc)
