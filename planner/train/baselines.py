"""The Megatron-LM rule of thumb, evaluated by the same cost model as the planner's strategies.

megatron_rule: TP = GPUs per node where that divides the attention heads (and kv heads), else the largest
such divisor below it; the smallest PP (a divisor of the remaining GPUs, at most the layer count) whose
even split fits in memory; the rest DP; micro-batch 1, full recompute, ZeRO 1 (distributed optimizer),
sequence parallelism when tp > 1. MoE models: EP = the largest divisor of the experts that fits in a node
and divides tp·dp, ETP = 1. No context parallelism, no interleaving.
"""

from costmodels.parallel import ParallelConfig
from costmodels.training import estimate_training, even_stage_layers
from planner.train.request import TrainRequest
from planner.train.space import divisors


def megatron_rule_config(request: TrainRequest) -> tuple[ParallelConfig | None, str]:
    """(the rule's configuration, '') or (None, why the rule has no valid configuration)."""
    model, pool, gbs = request.model, request.cluster.primary, request.workload.global_batch
    gpus = request.cluster.num_devices
    tps = [t for t in divisors(model.heads) if t <= pool.devices_per_node and gpus % t == 0
           and (model.attention == "mla" or model.kv_heads % t == 0) and (not model.ffn or model.ffn % t == 0)]
    tp = max(tps)
    last_reason = "no pipeline size divides the GPUs and the global batch"
    for pp in divisors(gpus // tp):
        if pp > model.layers:
            break
        dp = gpus // (tp * pp)
        if gbs % dp:
            continue
        ep = 1
        if model.moe is not None:
            ep = max(e for e in divisors(model.moe.experts) if e <= pool.devices_per_node and (tp * dp) % e == 0)
        config = ParallelConfig(tp=tp, pp=pp, dp=dp, cp=1, ep=ep, etp=1, vpp=1, mbs=1, zero=1, recompute="full",
                                sequence_parallel=tp > 1, stage_layers=even_stage_layers(model.layers, pp))
        est = estimate_training(model, request.cluster, request.workload, config)
        if est.feasible:
            return config, ""
        last_reason = "; ".join(est.infeasible_reasons)
    return None, f"no pipeline size fits with tp={tp}, mbs=1, full recompute, ZeRO 1 ({last_reason})"
