"""Inputs of the serve planner: the workload with its SLOs, and planner options."""

import csv
import dataclasses
import math
import types
import typing
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from costmodels.errors import SpecError, require
from costmodels.hardware import ClusterSpec
from costmodels.model import ModelSpec
from costmodels.serving import ENGINES, Skew
from costmodels.serving_precision import Precision, check_precision
from planner.serve.moe_skew import check_skew_table, check_table_fits
from planner.typed import Typed

ARRIVALS = ("poisson", "bursty")
OBJECTIVES = ("goodput", "gpus", "cost", "throughput")
MAX_SIMULATED_REQUESTS = 10_000_000
"""largest replay (about 4 minutes and 3 GB for one replay of 10 million requests)"""
MIN_RATE = 1e-5
"""slowest arrival rate, requests/s (one in 28 hours): far slower, a replay's arrival times grow so large that float
rounding swallows the milliseconds of service (1e-300 req/s replayed with TTFT 0 ms), and at 1e-6 the planner's
verification replays crash (an IndexError in planner/serve/simulate.py's disaggregated router)"""
MOMENT_SAMPLES = 4096
"""seeded draws used to summarise a lognormal length distribution"""


def _scalar_ok(hint: object, value: object) -> bool:
    """`value` is of the scalar type `hint` (int: not bool or float; float: any finite int or float), or `hint`
    is not a plain scalar/tuple type (checked elsewhere)."""
    if isinstance(hint, types.UnionType) and type(None) in typing.get_args(hint):
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return value is None or len(inner) != 1 or _scalar_ok(inner[0], value)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if hint is str or hint is bool:
        return isinstance(value, hint)
    if typing.get_origin(hint) is tuple:
        return isinstance(value, tuple | list)
    return True


def check_field_types(obj: object) -> None:
    """SpecError naming the first field of the dataclass `obj` whose value is not of its annotated scalar type
    (API callers: a float where an integer count goes, a string for a number, nan/inf, a string for a tuple)."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):  # type: ignore[arg-type]
        value, hint = getattr(obj, f.name), hints[f.name]
        if not _scalar_ok(hint, value):
            optional = isinstance(hint, types.UnionType)
            base = [a for a in typing.get_args(hint) if a is not type(None)][0] if optional else hint
            want = {int: "an integer", float: "a finite number", str: "a string", bool: "True or False"}.get(
                base, "a tuple" if typing.get_origin(base) is tuple else str(base)) + (" or None" if optional else "")
            raise SpecError(f"must be {want}, got {value!r}", field=f"{type(obj).__name__}.{f.name}")


@dataclass(frozen=True, kw_only=True, slots=True)
class ServingWorkload:
    """Requests and their service-level objectives."""

    input_len: int
    """prompt tokens (fixed lengths; the mean is reported when a distribution is given)"""
    output_len: int
    """output tokens (fixed lengths)"""
    ttft_s: float
    """time-to-first-token SLO"""
    tpot_s: float
    """time-per-output-token SLO (mean inter-token time of one request)"""
    rate_per_s: float | None = None
    """arrival rate; None lets the goodput objective find the largest sustainable rate"""
    prefix_len: int = 0
    """tokens of a prompt prefix shared by every request and kept in the prefix cache (prefill skips them)"""
    percentile: float = 90.0
    """SLO percentile used by the capacity models"""
    attainment: float = 0.9
    """target fraction of requests meeting both SLOs"""
    lengths: tuple[tuple[int, int], ...] = ()
    """empirical (input, output) pairs; when given they replace the fixed lengths"""
    lognormal: tuple[float, float, float, float] | tuple[()] = ()
    """(mu_in, sigma_in, mu_out, sigma_out) of log-lengths; when given they replace the fixed lengths"""
    arrival: str = "poisson"
    """poisson, or bursty (gamma inter-arrival times with coefficient of variation burst_cv)"""
    burst_cv: float = 2.0
    """coefficient of variation of inter-arrival times for bursty arrivals"""

    def __post_init__(self):
        check_field_types(self)
        require(all(_scalar_ok(float, v) for v in self.lognormal), f"must be finite numbers, got {self.lognormal}",
                field="lognormal")
        require(self.input_len >= 1, f"must be >= 1, got {self.input_len}", field="isl")
        require(self.output_len >= 1, f"must be >= 1, got {self.output_len}", field="osl")
        require(self.ttft_s >= 0, f"must be > 0 (0: no SLO, objective throughput), got {self.ttft_s}", field="ttft_ms")
        require(self.tpot_s >= 0, f"must be > 0 (0: no SLO, objective throughput), got {self.tpot_s}", field="tpot_ms")
        check_rate(self.rate_per_s)
        require(0 <= self.prefix_len < self.input_len, f"must be in [0, isl), got {self.prefix_len}",
                field="prefix-len")
        require(50.0 <= self.percentile < 100.0, f"must be in [50, 100), got {self.percentile}", field="percentile")
        require(0.0 < self.attainment < 1.0, f"must be in (0, 1), got {self.attainment}", field="attainment")
        require(self.arrival in ARRIVALS, f"unknown arrival {self.arrival!r}; valid: {', '.join(ARRIVALS)}",
                field="arrival")
        require(self.burst_cv > 0, f"must be > 0, got {self.burst_cv}", field="burst_cv")
        require(not (self.lengths and self.lognormal), "give lengths or lognormal, not both", field="lengths")
        for i, pair in enumerate(self.lengths):
            require(len(pair) == 2 and pair[0] >= 1 and pair[1] >= 1, f"pair {i} must be two lengths >= 1",
                    field="lengths")
        if self.lognormal:
            require(len(self.lognormal) == 4 and self.lognormal[1] >= 0 and self.lognormal[3] >= 0,
                    "needs (mu_in, sigma_in >= 0, mu_out, sigma_out >= 0)", field="lognormal")
        if self.lengths and self.prefix_len:
            shortest = min(i for i, _ in self.lengths)
            require(self.prefix_len < shortest, f"must be shorter than every prompt (the shared prefix is part of "
                    f"each one); the shortest input in --lengths is {shortest} tokens, got {self.prefix_len}",
                    field="prefix-len")

    @property
    def quantile(self) -> float:
        return self.percentile / 100.0

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """n (input, output) lengths drawn from the workload's distribution."""
        if self.lengths:
            pairs = np.asarray(self.lengths, dtype=np.int64)
            idx = rng.integers(0, len(pairs), size=n)
            return pairs[idx, 0], pairs[idx, 1]
        if self.lognormal:
            mu_i, s_i, mu_o, s_o = self.lognormal
            li = np.maximum(1, np.rint(np.exp(rng.normal(mu_i, s_i, size=n)))).astype(np.int64)
            lo = np.maximum(1, np.rint(np.exp(rng.normal(mu_o, s_o, size=n)))).astype(np.int64)
            return li, lo
        return np.full(n, self.input_len, dtype=np.int64), np.full(n, self.output_len, dtype=np.int64)

    def length_sample(self) -> tuple[np.ndarray, np.ndarray]:
        """A fixed, seeded sample that summarises the length distribution (moments, quantiles)."""
        if self.lengths:
            pairs = np.asarray(self.lengths, dtype=np.int64)
            return pairs[:, 0], pairs[:, 1]
        n = MOMENT_SAMPLES if self.lognormal else 1
        return self.sample(n, np.random.default_rng(12345))

    def interarrivals(self, n: int, rate: float, rng: np.random.Generator) -> np.ndarray:
        """n inter-arrival gaps (seconds) at mean rate `rate`."""
        if self.arrival == "poisson":
            return rng.exponential(1.0 / rate, size=n)
        shape = 1.0 / (self.burst_cv ** 2)
        return rng.gamma(shape, 1.0 / (rate * shape), size=n)


@dataclass(frozen=True, kw_only=True, slots=True)
class ServeOptions:
    """How to plan."""

    engine: str = "vllm"
    """engine model for the planner (costmodels.serving.ENGINES); estimate defaults to the calibrated 'legacy'"""
    dtype: str = "bf16"
    """weight and GEMM dtype (fp8: FP8 GEMMs at the FP8 peak; fp4: NVFP4 at the FP4 peak, devices with one)"""
    kv_dtype: str = ""
    """KV-cache dtype ("" = dtype)"""
    moe_skew: float = 1.0
    """MoE routing skew: token-expert slots on the busiest expert-parallel GPU / the mean"""
    moe_skew_by_ep: tuple[tuple[int, float], ...] = ()
    """MoE routing skew per expert-parallel degree, (ep, skew) pairs read from routing statistics (--moe-stats,
    planner/serve/moe_skew.py); when given, each instance's step model uses the value at its ep instead of moe_skew"""
    moe_stats_digest: str = ""
    """sha256 of the routing statistics moe_skew_by_ep was read from"""
    spec_depth: int = 0
    """speculative decoding / MTP: draft tokens verified per decode step (0 = off)"""
    spec_accept: float = 1.0
    """mean tokens emitted per decode step (accepted drafts + the bonus token), 1 <= spec_accept <= spec_depth + 1"""
    ep: int = 0
    """expert-parallel degree of every instance (0 = the planner chooses)"""
    attention_dp: int = 0
    """attention data-parallel replicas per instance (0 = the planner chooses)"""
    quant_block: int = 0
    """FP8-block checkpoints: the quantisation block; split weight dimensions must be multiples of it (0 = none)"""
    max_pp: int = 4
    """largest pipeline degree considered"""
    modes: tuple[str, ...] = ("disaggregated", "colocated", "intra_gpu")
    """serving modes compared"""
    simulate_requests: int = 2000
    """requests replayed by the simulator to verify the chosen plan"""
    seed: int = 0
    """simulator seed (replays use seed, seed+1, ...)"""
    verify_seeds: int = 4
    """independent simulator replays behind each accepted rate (planner.serve.verify)"""
    top: int = 0
    """also report the next `top` deployments (alternatives, best first)"""
    pareto: bool = False
    """also report the front of goodput per GPU against an SLO (predicted.pareto: TPOT; pareto_ttft: TTFT)"""
    pareto_axis: str = "tpot"
    """the SLO the front scales: tpot (predicted.pareto), ttft (predicted.pareto_ttft) or both (serve/front.py)"""
    verify_layouts: int = 3
    """goodput objective: layouts per mode verified by simulation (the mode's ILP solution and the next best
    single-layout solutions, planner.serve.layouts); the best simulated one is kept"""
    time_limit_s: float = 60.0
    """solver time limit per solve"""
    robust: bool = False
    """plan against the SLOs divided by the 90th-percentile latency factor of the calibration residuals
    (planner/confidence/robust_serve.py), so the SLOs hold even when the cost model is optimistic"""
    prefill_token_budget: int | str | None = None
    """tokens one prefill step of a prefill (or intra-GPU) instance carries: every queued prompt that fits is batched
    (None: the engine's default on each pool's device, costmodels.serving.default_prefill_token_budget; 1 = one
    prompt per step; "auto": each disaggregated prefill group gets the budget up to the engine's default that gives
    it the most SLO capacity, planner.serve.capacity.CapacityModel.prefill_budgets)"""
    prefill_pools: tuple[str, ...] = ()
    """pools allowed to host prefill instances in disaggregated mode (empty: any)"""
    decode_pools: tuple[str, ...] = ()
    """pools allowed to host decode instances in disaggregated mode (empty: any)"""

    def __post_init__(self):
        check_field_types(self)
        require(self.engine in ENGINES, f"unknown engine {self.engine!r}; valid: {', '.join(sorted(ENGINES))}",
                field="engine")
        Precision(dtype=self.dtype, kv_dtype=self.kv_dtype, skew=self.moe_skew)
        object.__setattr__(self, "moe_skew_by_ep", check_skew_table(self.moe_skew_by_ep))
        require(not self.moe_skew_by_ep or self.moe_skew == 1.0, "give --moe-skew or --moe-stats, not both",
                field="moe-stats")
        require(self.spec_depth >= 0, f"must be >= 0, got {self.spec_depth}", field="spec-depth")
        require(1.0 <= self.spec_accept <= self.spec_depth + 1,
                f"must be in [1, spec-depth + 1 = {self.spec_depth + 1}], got {self.spec_accept}", field="spec-accept")
        for name in ("quant_block", "ep", "attention_dp"):
            v = getattr(self, name)
            require(v >= 0, f"must be >= 0, got {v}", field=name.replace("_", "-"))
        require(self.max_pp >= 1, f"must be >= 1, got {self.max_pp}", field="max_pp")
        check_token_budget(self.prefill_token_budget)
        for m in self.modes:
            require(m in ("disaggregated", "colocated", "intra_gpu"), f"unknown mode {m!r}", field="modes")
        require(len(self.modes) >= 1, "needs at least one mode", field="modes")
        check_requests(self.simulate_requests, least=10)
        require(self.seed >= 0, f"must be >= 0 (a numpy seed), got {self.seed}", field="seed")
        require(self.top >= 0, f"must be >= 0, got {self.top}", field="top")
        require(self.pareto_axis in ("tpot", "ttft", "both"),
                f"unknown axis {self.pareto_axis!r}; valid: tpot, ttft, both", field="pareto-axis")
        require(self.pareto or self.pareto_axis == "tpot", f"--pareto-axis {self.pareto_axis} needs --pareto",
                field="pareto-axis")
        require(self.verify_layouts >= 1, f"must be >= 1, got {self.verify_layouts}", field="verify_layouts")
        require(2 <= self.verify_seeds <= 11, f"must be in 2..11, got {self.verify_seeds}", field="verify_seeds")
        require(self.time_limit_s > 0, f"must be > 0, got {self.time_limit_s}", field="time_limit")

    @property
    def skew(self) -> Skew:
        """The routing skew the step model gets: the per-degree table from routing statistics, else moe_skew."""
        return self.moe_skew_by_ep or self.moe_skew


def quant_block_note(quant_block: int, dtype: str) -> str | None:
    """A warning when a quantization block is given for weights that are not FP8: the block describes an FP8
    block-scaled checkpoint, so with BF16/FP16 weights only its split check applies (kernels run at `dtype`)."""
    if quant_block and dtype != "fp8":
        return (f"--quant-block {quant_block} describes an FP8 block-scaled checkpoint, but --dtype is {dtype}: the "
                f"shapes must still split it, the kernels are timed at {dtype} (add --dtype fp8 to time the "
                f"block-scaled FP8 kernels, or omit --quant-block for a {dtype} checkpoint)")
    return None


def check_serve_inputs(model: ModelSpec, cluster: ClusterSpec, options: ServeOptions, *, objective: str = "goodput",
                       rate: float | None = None) -> None:
    """SpecError naming the flag when an option does not apply to the model, the cluster or the objective (plan
    serve, before any work): expert parallelism, attention data parallelism and routing skew need an MoE model; the
    skew cannot exceed experts / top_k (every slot of a token on the busiest GPU, one expert per GPU); --ep and
    --attention-dp must be degrees of some instance shape the planner searches; --pareto needs SLOs and no target
    rate (the front maximises goodput per GPU at each TPOT or TTFT SLO)."""
    for pool in cluster.pools:  # FP4 needs the device's FP4 peak; MoE models the engine's fitted MoE constants
        check_precision(model, pool.device, options.engine, options.dtype, options.quant_block)
    for flag, v in (("ep", options.ep), ("attention-dp", options.attention_dp)):
        require(v <= 1 or model.is_moe, f"{flag} {v} needs an MoE model; {model.name} is dense (use 0 or 1)",
                field=flag)
    require(options.moe_skew == 1.0 or model.is_moe,
            f"routing skew needs an MoE model; {model.name} is dense (omit --moe-skew)", field="moe-skew")
    if model.is_moe:
        moe = model.moe_dims
        most = moe.experts / moe.top_k
        require(options.moe_skew <= most, f"must be in [1, experts / top_k = {moe.experts}/{moe.top_k} = {most:g}] "
                f"(the busiest GPU holds at most every slot of its tokens), got {options.moe_skew:g}",
                field="moe-skew")
        _check_degrees(model, cluster, options)
    check_table_fits(model, options.moe_skew_by_ep)
    require(not (options.pareto and objective == "throughput"), "the front is goodput per GPU against an SLO; "
            "objective 'throughput' has no SLOs (use --top N for the next shapes)", field="pareto")
    require(not (options.robust and objective == "throughput"), "robust planning tightens the SLOs; objective "
            "'throughput' has none: drop --robust", field="robust")
    if options.pareto and rate is not None:
        raise SpecError(f"the front maximises goodput per GPU at each SLO, so it takes no target rate: drop "
                        f"--rate {rate:g} (objective {objective}) or --pareto", field="pareto")


def _check_degrees(model: ModelSpec, cluster: ClusterSpec, options: ServeOptions) -> None:
    """SpecError naming --ep/--attention-dp with the values that work when no instance shape the planner searches
    (planner.serve.capacity.shapes_for, on any pool) has them."""
    if options.ep <= 1 and options.attention_dp <= 1:
        return
    from planner.serve.capacity import shapes_for  # capacity imports this module

    free = dataclasses.replace(options, ep=0, attention_dp=0, quant_block=0)
    shapes = [s for pool in cluster.pools for s in shapes_for(model, pool, free)]
    if any(options.ep in (0, s.ep) and options.attention_dp in (0, s.dp) for s in shapes):
        return
    eps = sorted({s.ep for s in shapes if options.attention_dp in (0, s.dp)})
    dps = sorted({s.dp for s in shapes if options.ep in (0, s.ep)})
    asked = " ".join(f"--{f} {v}" for f, v in (("ep", options.ep), ("attention-dp", options.attention_dp)) if v)
    raise SpecError(f"no instance shape of {model.name} on {cluster.num_devices} GPUs has {asked} (an instance "
                    f"spans tp x attention-dp GPUs, ep divides that and the {model.moe_dims.experts} experts); valid "
                    f"--ep: {', '.join(map(str, eps)) or 'none'}; valid --attention-dp: "
                    f"{', '.join(map(str, dps)) or 'none'} (0: any)", field="ep" if options.ep > 1 else "attention-dp")


def check_rate(rate: float | None) -> None:
    """SpecError naming --rate unless it is None or at least MIN_RATE requests/s."""
    require(rate is None or rate >= MIN_RATE, f"must be >= {MIN_RATE:g} requests/s (one in 28 hours), got "
            f"{rate:g}" if rate is not None else "", field="rate")


def check_requests(n: int, least: int = 1) -> None:
    """SpecError naming --requests unless least <= n <= MAX_SIMULATED_REQUESTS."""
    require(least <= n <= MAX_SIMULATED_REQUESTS, f"must be in {least}..{MAX_SIMULATED_REQUESTS:,} (one replay of 1 "
            f"million requests takes about 25 s and 0.3 GB), got {n:,}", field="requests")


def check_token_budget(budget: object) -> None:
    """SpecError naming --prefill-token-budget unless `budget` is None, "auto" or an integer >= 1."""
    ok = budget is None or budget == "auto" or (isinstance(budget, int) and not isinstance(budget, bool)
                                                and budget >= 1)
    require(ok, f"must be an integer >= 1 (tokens per prefill step) or auto; omit it for the engine's default; "
                f"got {budget!r}", field="prefill-token-budget")


@dataclass(frozen=True, kw_only=True, slots=True)
class ServeRequest(Typed):
    """One planning question: serve `workload` with `model` on `cluster`, optimising `objective`."""

    model: ModelSpec
    """the model"""
    cluster: ClusterSpec
    """the GPUs (one pool, or several)"""
    workload: ServingWorkload
    """requests and their SLOs (its rate_per_s is the target rate, None = find the largest)"""
    objective: str = "goodput"
    """goodput (per GPU), gpus or cost (the last two need a target rate)"""

    def __post_init__(self):
        require(isinstance(self.model, ModelSpec), "must be a ModelSpec (profiles.load_model(name))", field="model")
        require(isinstance(self.cluster, ClusterSpec),
                "must be a ClusterSpec (profiles.load_cluster(name) or ClusterSpec.homogeneous(device, n))",
                field="cluster")
        require(isinstance(self.workload, ServingWorkload), "must be a ServingWorkload", field="workload")
        require(self.objective in OBJECTIVES, f"unknown objective {self.objective!r}; valid: {', '.join(OBJECTIVES)}",
                field="objective")
        require(self.workload.rate_per_s is not None or self.objective in ("goodput", "throughput"),
                f"objective {self.objective!r} needs a target --rate", field="rate")
        require(self.objective == "throughput" or (self.workload.ttft_s > 0 and self.workload.tpot_s > 0),
                f"objective {self.objective!r} needs TTFT and TPOT SLOs > 0 (--ttft-ms, --tpot-ms)", field="ttft_ms")
        free = sorted({p.device.name for p in self.cluster.pools if p.device.cost_per_hour <= 0})
        require(self.objective != "cost" or not free, f"objective 'cost' minimises $/hour, but the hardware profile "
                f"of {', '.join(free)} has no cost_per_hour (every plan would cost 0): give a hardware YAML with "
                f"cost_per_hour, or use --objective gpus", field="objective")
        if self.objective == "throughput":  # offline: every request queued at once, nothing to meet or to target
            require(self.workload.ttft_s == 0 and self.workload.tpot_s == 0,
                    "objective 'throughput' plans offline batch inference, which has no TTFT/TPOT SLOs: drop "
                    "--ttft-ms/--tpot-ms, or plan under them with --objective goodput", field="ttft_ms")
            require(self.workload.rate_per_s is None,
                    "objective 'throughput' finds the largest offline request rate itself: drop --rate, or give "
                    "a target rate with --objective gpus or cost", field="rate")
            require(not (self.workload.lengths or self.workload.lognormal),
                    "objective 'throughput' plans offline batch inference at the fixed --isl/--osl: drop "
                    "--lengths/--lognormal", field="lengths" if self.workload.lengths else "lognormal")
            require(self.workload.arrival == "poisson", "objective 'throughput' queues every request at once, so it "
                    f"has no arrival process: drop --arrival {self.workload.arrival}", field="arrival")


def read_lengths_csv(path: str) -> tuple[tuple[int, int], ...]:
    """(input, output) pairs from a CSV with two integer columns (a header row is skipped)."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise SpecError(f"cannot read lengths: {exc.strerror}", source=path) from None
    pairs = []
    for lineno, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or not "".join(row).strip():
            continue
        try:
            a, b = int(row[0]), int(row[1])
        except (ValueError, IndexError):
            if lineno == 1:
                continue
            raise SpecError(f"line {lineno}: expected two integers (input,output), got {row!r}", source=path) from None
        if a < 1 or b < 1 or math.isnan(a):
            raise SpecError(f"line {lineno}: lengths must be >= 1", source=path)
        pairs.append((a, b))
    if not pairs:
        raise SpecError("no (input,output) rows", source=path)
    return tuple(pairs)
