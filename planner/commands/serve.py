"""`parplan plan serve`, `parplan estimate serve` and `parplan simulate`."""

import click

import profiles
from costmodels.errors import SpecError
from costmodels.hardware import ClusterSpec
from costmodels.serving import DEFAULT_ENGINE, ENGINES
from planner.commands.common import (
    emit,
    gpus_per_node_option,
    model_option,
    output_option,
    progress,
    time_limit_option,
    warn,
    write_output,
)
from planner.plan import dumps_canonical, load_plan
from solvers.deadline import TIME_LIMIT_STATUS

_engines = click.Choice(sorted(ENGINES))
_ENGINE_HELP = ("trtllm / vllm / sglang: kernel constants fitted to the engine's measured per-op tables (hardware "
                "profile serving_engines); legacy: fitted to Splitwise-profiled vLLM (2023); modern: generic estimate.")
_DTYPES = click.Choice(["bf16", "fp16", "fp8", "fp4"])


def _feature_options(f):
    """--prefix-len, --prefill-token-budget, --spec-depth, --spec-accept (plan serve and estimate serve)."""
    f = click.option("--spec-accept", type=float, default=1.0, show_default=True,
                     help="Speculative decoding / MTP: mean tokens emitted per decode step (1 .. spec-depth + 1).")(f)
    f = click.option("--spec-depth", type=int, default=0, show_default=True,
                     help="Speculative decoding / MTP: draft tokens verified per decode step (0: off).")(f)
    f = click.option("--prefill-token-budget", type=str, default=None, metavar="N",
                     help="Tokens one prefill step carries: queued prompts are batched up to it (vLLM "
                          "max_num_batched_tokens, SGLang chunked_prefill_size, TRT-LLM max_num_tokens; 1: one "
                          "whole prompt per step, unchunked; default: "
                          "the engine's default for the GPU; legacy/modern: one prompt per step in plan serve, the "
                          "whole batch in one step in estimate serve; auto (plan serve): each prefill group gets the "
                          "budget up to the default with the most SLO capacity).")(f)
    return click.option("--prefix-len", type=int, default=0, show_default=True,
                        help="Prompt tokens of a shared prefix already in the prefix cache (prefill skips them).")(f)


def _token_budget(text: str | None) -> int | str | None:
    """--prefill-token-budget as an integer >= 1 or "auto" (SpecError naming the flag otherwise); None when not
    given."""
    if text is None or text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        raise SpecError(f"must be an integer >= 1 (tokens per prefill step), got {text!r}",
                        field="prefill-token-budget") from None
    if value < 1:
        raise SpecError(f"must be an integer >= 1 (tokens per prefill step), got {value}", field="prefill-token-budget")
    return value


def _dtype_options(f):
    """--dtype, --kv-dtype, --moe-skew, --quant-block (shared by plan serve and estimate serve)."""
    f = click.option("--quant-block", type=int, default=0, show_default=True,
                     help="FP8 block-scaled checkpoint's quantization block (e.g. 128): splits that break it are "
                          "refused (exit 3); with --dtype fp8 the experts run the block-scaled kernels (0: none).")(f)
    f = click.option("--moe-stats", "moe_stats", default=None, type=click.Path(dir_okay=False), metavar="STATS",
                     help="Routing statistics (parplan trace stats/synth, JSON or NPZ) of the model: the skew at each "
                          "EP degree is read from them for the engines' contiguous expert placement (not with "
                          "--moe-skew).")(f)
    f = click.option("--moe-skew", type=float, default=None,
                     help="MoE routing skew: expert slots on the busiest EP GPU / the mean (default 1 = balanced; "
                          "MoE only, at most experts/top_k, and 1 at ep 1).")(f)
    f = click.option("--kv-dtype", type=click.Choice(["bf16", "fp16", "fp8"]), default=None,
                     callback=lambda _ctx, _param, value: value or "",
                     help="KV-cache dtype (default: --dtype; required with --dtype fp4).")(f)
    return click.option("--dtype", type=_DTYPES, default="bf16", show_default=True,
                        help="Weight and GEMM dtype (fp8: FP8 GEMMs at the FP8 peak; fp4: NVFP4 weights and GEMM "
                        "inputs at the FP4 peak, devices with one (b200), dense models, measured engines).")(f)


def _cluster(gpu_ref, num_gpus, gpus_per_node, cluster_ref) -> ClusterSpec:
    if cluster_ref:
        if gpu_ref or num_gpus:
            raise SpecError("give --cluster, or --gpu with --num-gpus, not both", field="cluster")
        if gpus_per_node:
            raise SpecError("--gpus-per-node goes with --gpu; a cluster profile sets each pool's node size",
                            field="gpus-per-node")
        return profiles.load_cluster(cluster_ref)
    if not gpu_ref or not num_gpus:
        raise SpecError("needs --gpu and --num-gpus (or --cluster)", field="gpu")
    return ClusterSpec.homogeneous(profiles.load_device(gpu_ref), num_gpus, gpus_per_node)


def _one_skew(moe_skew: float | None, moe_stats: str | None) -> None:
    if moe_skew is not None and moe_stats is not None:
        raise SpecError("give --moe-skew or --moe-stats, not both", field="moe-stats")


def _skew_options(model, moe_skew: float | None, moe_stats: str | None) -> dict:
    """ServeOptions' routing-skew fields: --moe-skew, or the per-EP-degree table read from --moe-stats."""
    if moe_stats is None:
        return {"moe_skew": 1.0 if moe_skew is None else moe_skew}
    _one_skew(moe_skew, moe_stats)
    from planner.serve.moe_skew import stats_skew

    stats = stats_skew(moe_stats, model)
    return {"moe_skew_by_ep": stats.by_ep, "moe_stats_digest": stats.digest}


def _warn_if(note: str | None) -> None:
    if note:
        warn(note)


def _names(text: str) -> tuple[str, ...]:
    return tuple(sorted({t.strip() for t in text.split(",") if t.strip()}))


@click.command("serve")
@model_option
@click.option("--gpu", "gpu_ref", default=None, metavar="G", help="Hardware profile name or hardware YAML path.")
@click.option("--num-gpus", type=int, default=None, metavar="N", help="GPUs to use.")
@gpus_per_node_option
@click.option("--cluster", "cluster_ref", default=None, metavar="CLUSTER",
              help="Cluster profile name or YAML (several pools = heterogeneous) instead of --gpu/--num-gpus.")
@click.option("--isl", type=int, required=True, metavar="L",
              help="Input (prompt) length in tokens (--lengths/--lognormal replace the fixed lengths).")
@click.option("--osl", type=int, required=True, metavar="O",
              help="Output length in tokens (--lengths/--lognormal replace the fixed lengths).")
@click.option("--ttft-ms", type=float, default=None, metavar="X",
              help="Time-to-first-token SLO in ms (required unless --objective throughput).")
@click.option("--tpot-ms", type=float, default=None, metavar="Y",
              help="Time-per-output-token SLO in ms (required unless --objective throughput).")
@click.option("--percentile", type=float, default=90.0, show_default=True, help="SLO percentile.")
@click.option("--attainment", type=float, default=0.9, show_default=True,
              help="Target fraction of requests meeting both SLOs.")
@click.option("--rate", type=float, default=None, metavar="R",
              help="Target arrival rate in requests/s, >= 1e-5 (objective gpus/cost; not with --objective "
                   "throughput).")
@click.option("--objective", type=click.Choice(["goodput", "gpus", "cost", "throughput"]), default=None,
              help="goodput (default without --rate): max goodput per GPU; gpus/cost (need --rate): fewest GPUs/$ "
                   "(cost needs cost_per_hour in the hardware profiles; the built-in ones have none); "
                   "throughput: offline batch inference, max output tokens/s per GPU, no SLOs.")
@click.option("--top", type=int, default=0, show_default=True, help="Also report the next N deployments.")
@click.option("--pareto", is_flag=True,
              help="Also report the front of goodput per GPU against the TPOT SLO (each point a full deployment; "
                   "goodput objective only: not with --rate or --objective throughput).")
@click.option("--pareto-axis", type=click.Choice(["tpot", "ttft", "both"]), default="tpot", show_default=True,
              help="With --pareto: the SLO the front scales (0.5x..2x): tpot (predicted.pareto), ttft "
                   "(predicted.pareto_ttft) or both fronts.")
@click.option("--robust", is_flag=True,
              help="Plan against the SLOs divided by the 90th-percentile latency factor of the calibration residuals "
                   "(the SLOs then hold even when the cost model is optimistic).")
@click.option("--lengths", "lengths_csv", default=None, metavar="CSV",
              help="CSV of input,output length pairs (not with --objective throughput).")
@click.option("--lognormal", nargs=4, type=float, default=None, metavar="MU_IN SIGMA_IN MU_OUT SIGMA_OUT",
              help="Lognormal length distributions (parameters of the log-lengths).")
@click.option("--arrival", type=click.Choice(["poisson", "bursty"]), default="poisson", show_default=True)
@click.option("--engine", type=_engines, default="vllm", show_default=True, help=_ENGINE_HELP)
@_dtype_options
@_feature_options
@click.option("--ep", type=int, default=0, show_default=True, help="Expert-parallel degree of every instance (0: any).")
@click.option("--attention-dp", type=int, default=0, show_default=True,
              help="Attention data-parallel replicas per instance (MoE; 0: any).")
@click.option("--modes", default="disaggregated,colocated,intra_gpu", show_default=True,
              help="Comma-separated serving modes to compare.")
@click.option("--prefill-pools", default="", help="Comma-separated pools allowed for prefill instances (default: any).")
@click.option("--decode-pools", default="", help="Comma-separated pools allowed for decode instances (default: any).")
@click.option("--requests", type=int, default=2000, show_default=True, help="Requests the simulator replays.")
@click.option("--seed", type=int, default=0, show_default=True, help="Simulator seed (replays use seed, seed+1, ...).")
@click.option("--verify-seeds", type=int, default=4, show_default=True,
              help="Independent simulator replays; a rate is accepted when their 95% lower bound clears the target.")
@click.option("--verify-layouts", type=int, default=3, show_default=True,
              help="Layouts per mode verified by simulation (goodput objective); the best simulated one wins.")
@time_limit_option
@output_option
def plan_serve(model_ref, gpu_ref, num_gpus, gpus_per_node, cluster_ref, isl, osl, ttft_ms, tpot_ms, percentile,
               attainment, rate, objective, top, pareto, robust, lengths_csv, lognormal, arrival, engine, dtype,
               kv_dtype, moe_skew, moe_stats, quant_block, prefix_len, prefill_token_budget, spec_depth, spec_accept,
               ep, attention_dp, modes, prefill_pools, decode_pools, requests, seed, verify_seeds, verify_layouts,
               time_limit_s, output, pareto_axis):
    """Prefill/decode split (or colocated / intra-GPU) maximising goodput under TTFT/TPOT SLOs."""
    from planner import plan_serving
    from planner.serve import ServeOptions, ServingWorkload, explain
    from planner.serve.request import check_serve_inputs, quant_block_note, read_lengths_csv

    model = profiles.load_model(model_ref)
    cluster = _cluster(gpu_ref, num_gpus, gpus_per_node, cluster_ref)
    if objective != "throughput" and (ttft_ms is None or tpot_ms is None):
        raise SpecError("needs --ttft-ms and --tpot-ms (only --objective throughput plans without SLOs)",
                        field="ttft-ms" if ttft_ms is None else "tpot-ms")
    workload = ServingWorkload(input_len=isl, output_len=osl, ttft_s=(ttft_ms or 0.0) / 1e3,
                               tpot_s=(tpot_ms or 0.0) / 1e3, prefix_len=prefix_len,
                               rate_per_s=rate, percentile=percentile, attainment=attainment,
                               lengths=read_lengths_csv(lengths_csv) if lengths_csv else (),
                               lognormal=tuple(lognormal) if lognormal else (), arrival=arrival)
    options = ServeOptions(engine=engine, dtype=dtype, kv_dtype=kv_dtype, **_skew_options(model, moe_skew, moe_stats),
                           quant_block=quant_block,
                           ep=ep, attention_dp=attention_dp,
                           modes=tuple(m.strip() for m in modes.split(",") if m.strip()),
                           simulate_requests=requests, seed=seed, verify_seeds=verify_seeds,
                           verify_layouts=verify_layouts, spec_depth=spec_depth, spec_accept=spec_accept, top=top,
                           pareto=pareto, pareto_axis=pareto_axis, time_limit_s=time_limit_s,
                           prefill_token_budget=_token_budget(prefill_token_budget),
                           prefill_pools=_names(prefill_pools), decode_pools=_names(decode_pools), robust=robust)
    objective = objective or ("gpus" if rate else "goodput")
    check_serve_inputs(model, cluster, options, objective=objective, rate=rate)
    _warn_if(quant_block_note(quant_block, dtype))
    plan = plan_serving(model, cluster, workload, objective=objective, options=options, progress=progress)
    if plan["solver"]["status"] == TIME_LIMIT_STATUS:
        warn(f"the search stopped at its time limit ({time_limit_s:g} s): the plan is the best simulated so far "
             f"({plan['simulated']['replays']} replays) and may differ from run to run — raise --time-limit for a "
             f"reproducible plan")
    emit(plan, output, explain(plan))


@click.command("serve")
@model_option
@click.option("--gpu", "gpu_ref", required=True, metavar="G", help="Hardware profile name or hardware YAML path.")
@click.option("--tp", type=int, required=True, help="Tensor-parallel degree.")
@click.option("--pp", type=int, default=1, show_default=True, help="Pipeline stages.")
@click.option("--ep", type=int, default=1, show_default=True, help="Expert-parallel degree (divides tp*dp).")
@click.option("--attention-dp", "--dp", "dp", type=int, default=1, show_default=True,
              help="Attention data-parallel replicas (MoE, DP attention).")
@click.option("--batch", type=int, required=True, help="Sequences prefilled together / decoded together.")
@click.option("--isl", type=int, required=True, help="Input length in tokens.")
@click.option("--osl", type=int, required=True, help="Output length in tokens.")
@click.option("--engine", type=_engines, default=DEFAULT_ENGINE, show_default=True, help=_ENGINE_HELP)
@_dtype_options
@_feature_options
@click.option("--offline", is_flag=True,
              help="Also estimate offline batch inference (all requests queued, in-flight batching up to the KV room).")
@gpus_per_node_option
@output_option
def estimate_serve(model_ref, gpu_ref, tp, pp, ep, dp, batch, isl, osl, engine, dtype, kv_dtype, moe_skew, moe_stats,
                   quant_block, prefix_len, prefill_token_budget, spec_depth, spec_accept, offline, gpus_per_node,
                   output):
    """Prefill latency and mean decode step of one instance shape and batch."""
    from planner.serve import estimate_serving, explain
    from planner.serve.request import quant_block_note

    _warn_if(quant_block_note(quant_block, dtype))
    _one_skew(moe_skew, moe_stats)
    plan = estimate_serving(profiles.load_model(model_ref), profiles.load_device(gpu_ref), tp=tp, pp=pp, ep=ep, dp=dp,
                            batch=batch, isl=isl, osl=osl, engine=engine, dtype=dtype, kv_dtype=kv_dtype,
                            moe_skew=1.0 if moe_skew is None else moe_skew, moe_stats=moe_stats,
                            quant_block=quant_block, devices_per_node=gpus_per_node,
                            prefix_len=prefix_len, spec_depth=spec_depth, spec_accept=spec_accept, offline=offline,
                            prefill_token_budget=_token_budget(prefill_token_budget))
    emit(plan, output, explain(plan))


@click.command("simulate")
@click.argument("plan_path", metavar="PLAN", type=click.Path(dir_okay=False))
@click.option("--rate", type=float, default=None, help="Arrival rate (default: the plan's).")
@click.option("--requests", type=int, default=None, help="Requests to replay (default: the plan's).")
@click.option("--seed", type=int, default=None, help="Seed (default: the plan's).")
@click.option("--arrival", type=click.Choice(["poisson", "bursty"]), default=None,
              help="Arrival process (default: the plan's workload).")
@output_option
def simulate_cmd(plan_path, rate, requests, seed, arrival, output):
    """Replay a serve plan's workload: SLO attainment and TTFT/TPOT percentiles."""
    from planner.documents import require_valid
    from planner.serve import simulate_plan
    from planner.serve.request import check_rate, check_requests

    if requests is not None:
        check_requests(requests)
    check_rate(rate)
    plan = load_plan(plan_path)
    require_valid(plan, plan_path)  # validate's checks first: never replay a hand-edited impossible plan
    result = simulate_plan(plan, rate=rate, requests=requests, seed=seed, arrival=arrival)
    if output is None:
        pct = [k for k in result["ttft_s"] if k not in ("p50", "p99")]
        p = pct[0] if pct else "p50"
        rate_text = f"{result['rate_rps']:.3f}" if result["rate_rps"] >= 1e-3 else f"{result['rate_rps']:.3g}"
        click.echo(f"{result['requests']} requests at {rate_text} req/s (seed {result['seed']}): "
                   f"attainment {result['attainment']:.3f}; TTFT p50/{p}/p99 "
                   + "/".join(f"{result['ttft_s'][k] * 1e3:.0f}" for k in ("p50", p, "p99"))
                   + " ms; TPOT p50/" + p + "/p99 "
                   + "/".join(f"{result['tpot_s'][k] * 1e3:.2f}" for k in ("p50", p, "p99")) + " ms")
    else:
        write_output(dumps_canonical(result), output)


def register(groups):
    """Attach this module's commands to the CLI groups."""
    groups["plan"].add_command(plan_serve)
    groups["estimate"].add_command(estimate_serve)
    groups["root"].add_command(simulate_cmd)
