"""Cheap lower bounds on a candidate's step time and per-GPU memory, valid for costmodels.training.

Time. Every GEMM of the cost model takes at least F / (P · gemm_efficiency_max) and the attention core at
least F / (P · attention_efficiency) (costmodels.compute); communication, element-wise kernels, the
optimizer and overheads are >= 0. So one micro-batch costs, summed over the stages of one pipeline,
    W >= sum over layers, head, MTP of (3 F_gemm + R_gemm) / (P e_g) + (3 F_att + R_att) / (P e_a)
per GPU (F split over tp·cp GPUs; routed experts also over etp, as the cost model counts them; R the
recompute FLOPs). With stage times t_s, sum_s t_s >= W and max_s t_s >= W / pp, and the step
m·max t + (sum t - max t)/v is increasing in both, so
    step >= m · W / pp + (W - W / pp) / vpp.                                            (LB-time)
Memory. The fullest stage holds at least the average of all stages; every stage holds its model states
and at least n_min = in_flight(last stage) micro-batches of its layers' activations, so
    mem >= (sum_l (w_l + n_min a_l) + w_embed + w_head) / pp                             (LB-memory)
with w the per-GPU states under the candidate's ZeRO stage, sharded over the *largest* group the cost
model could use (dp·cp for dense, edp for experts).
"""

from costmodels import flops as F
from costmodels import memory as M
from costmodels.framework import framework
from costmodels.hardware import NodePool
from costmodels.model import ModelSpec
from costmodels.parallel import ParallelConfig, TrainingWorkload
from costmodels.pipeline import in_flight_microbatches


def _flops_per_gpu(model: ModelSpec, mbs: int, seq: int, tp: int, cp: int, etp: int, recompute: str,
                   ops_sac: bool = False) -> tuple[float, float]:
    """(GEMM FLOPs, attention-core FLOPs) of one micro-batch through all layers + head + MTP, per GPU.
    `ops_sac`: selective recompute is op-level SAC; what each mode repeats is flops.recompute_share."""
    shard = tp * cp
    gemm = att = 0.0
    mtp_moe = model.moe is not None  # an MTP module's transformer layer is of the model's last kind
    kinds = [(False, model.dense_layers + (0 if mtp_moe else model.mtp_layers)),
             (True, model.moe_layers + (model.mtp_layers if mtp_moe else 0))]
    for is_moe, count in kinds:
        if count == 0:
            continue
        lf = F.layer_forward_flops(model, is_moe, mbs, seq)
        dense_g = (lf.qkv + lf.attn_out + lf.mlp + lf.router) / shard
        expert_g = lf.experts / (shard * etp)
        fwd_g, fwd_a = dense_g + expert_g, lf.attention_core / shard
        share = F.recompute_share(recompute, ops_sac, model, is_moe)
        gemm += count * (3 + share.gemm) * fwd_g
        att += count * (3 + share.attention) * fwd_a
    tokens = mbs * seq
    gemm += 3 * F.logits_flops(model, tokens) / shard
    if model.mtp_layers:
        gemm += model.mtp_layers * 3 * F.mtp_extra_flops(model, tokens) / shard
    return gemm, att


class Bounds:
    """(LB-time) and (LB-memory) for one model, pool and workload, memoised over the candidates' keys."""

    def __init__(self, model: ModelSpec, pool: NodePool, workload: TrainingWorkload):
        self.model, self.pool, self.workload = model, pool, workload
        dev = pool.device
        peak = max(dev.peak_flops_per_s(workload.dtype), dev.bf16_flops_per_s)
        self._gemm_rate = peak * max(dev.calibration.gemm_efficiency_max, dev.calibration.fp8_gemm_efficiency_max)
        self._att_rate = peak * dev.calibration.attention_efficiency
        fw = framework(workload.framework)
        self._ops_sac = fw.selective_recomputes_ops
        self._fp8_inputs = workload.dtype == "fp8" and fw.fp8_saves_fp8_inputs
        self._work: dict = {}
        self._states: dict = {}
        self._act: dict = {}

    def work_s(self, c: ParallelConfig) -> float:
        """W: compute time of one micro-batch through the whole model on one GPU (lower bound)."""
        key = (c.mbs, c.tp, c.cp, c.etp, c.recompute)
        if key not in self._work:
            gemm, att = _flops_per_gpu(self.model, c.mbs, self.workload.seq_len, *key[1:], ops_sac=self._ops_sac)
            self._work[key] = gemm / self._gemm_rate + att / self._att_rate
        return self._work[key]

    def time(self, c: ParallelConfig) -> float:
        """(LB-time) in seconds."""
        w = self.work_s(c)
        m = c.microbatches(self.workload)
        return m * w / c.pp + (w - w / c.pp) / c.vpp

    def memory(self, c: ParallelConfig) -> float:
        """(LB-memory) in bytes."""
        skey = (c.tp, c.dp * c.cp, c.ep * c.etp, c.edp, c.zero, c.pp)
        if skey not in self._states:
            self._states[skey] = _states(self.model, *skey)
        akey = (c.mbs, c.tp, c.cp, c.etp, c.sequence_parallel and c.tp > 1, c.recompute)
        if akey not in self._act:
            self._act[akey] = _activations(self.model, self.workload.seq_len, *akey, ops_sac=self._ops_sac,
                                           fp8=self._fp8_inputs)
        n_min = in_flight_microbatches(c.pp - 1, c.pp, c.microbatches(self.workload), c.vpp)
        return (self._states[skey] + n_min * self._act[akey]) / c.pp


def _states(model: ModelSpec, tp: int, dense_shard: int, expert_group: int, expert_shard: int, zero: int,
            pp: int) -> float:
    """Model-state bytes of all layers + embedding + head per GPU (before dividing by pp)."""
    wd = sum(M.state_bytes_per_param(zero, dense_shard))
    we = sum(M.state_bytes_per_param(zero, expert_shard))
    total = 0.0
    for is_moe, count in ((False, model.dense_layers), (True, model.moe_layers)):
        if count:
            dense, experts = M.layer_params(model, is_moe)
            total += count * (dense / tp * wd + experts / expert_group * we)
    if model.mtp_layers:
        dense, experts = M.mtp_params(model)
        total += model.mtp_layers * (dense / tp * wd + experts / expert_group * we)
    total += (M.embedding_params(model) + M.head_params(model, pp)) / tp * wd
    return total


def _activations(model: ModelSpec, seq: int, mbs: int, tp: int, cp: int, etp: int, sp: bool, recompute: str,
                 ops_sac: bool = False, fp8: bool = False) -> float:
    """Activation bytes of all transformer layers for one micro-batch per GPU."""
    act = 0.0
    for is_moe, count in ((False, model.dense_layers), (True, model.moe_layers)):
        if count:
            act += count * M.layer_activation_bytes(model, is_moe, mbs, seq, tp=tp, cp=cp, etp=etp, sp=sp,
                                                    recompute=recompute, ops_sac=ops_sac, fp8=fp8)
    return act
