"""Which output tiles FlashInfer's CuTe-DSL NVFP4 GEMM runs untuned, and whether the B200 tables follow them.

vLLM 0.24.0 and SGLang 0.5.14 both run FlashInfer's mm_fp4(backend="cute-dsl") for an NVFP4 linear layer on SM100
(the tables' kernel_source: FlashInferCuteDslNvFp4LinearKernel, sglang_flashinfer_cutedsl_nvfp4), and
aiconfigurator's collectors call it outside FlashInfer's autotune() context, so its untuned tactic runs:
  FlashInfer <= 0.6.8: one fixed tactic (gemm_base.py _SM100_DEFAULT_MMA_TILER_MN (128, 128), cluster (1, 1), no
      operand swap): 128 x 128 tiles on every SM, serving_gemm.FP4_TILE, the model the fit uses
  FlashInfer >= 0.6.9 (commit 42ff2b05, "CuTe DSL FP4 GEMM Heuristic"; gemm/kernels/utils.py
      _select_sm100_mm_fp4_cute_dsl_tactic): per (n, k) and m bucket (the next power of two of m, at most 4096) the
      (MMA tile, cluster, swap) of the highest score: tile padding efficiency x sqrt(tile_n / 256) (halved for
      tiles wider than 128 at k <= 1024, 0.8 at k <= 2048) / (waves x tile_n), 1.05 for 2-CTA tiles (256 rows),
      0.95 per cluster doubling along n and 0.99 along m where the problem is taller than one tile, 1e-6 for a
      tile narrower than 64 that cannot cover n, 0.95 against the swap rule (swap where m <= 32 < n)
The engines' FlashInfer version in those images is not recorded in the tables; this module re-implements the
>= 0.6.9 rule (read, not copied) and refits the 'gemm fp4' constants on its tiles to compare the two on the
held-aside points. Nothing here enters the profiles.
"""

import dataclasses
import functools
import math

TILES = ((128, 8), (128, 16), (128, 32), (128, 64), (256, 64), (128, 128), (256, 128), (128, 192), (256, 192),
         (128, 256), (256, 256))
"""(MMA rows, MMA columns) candidates of the SM100 block-scaled kernel (256 rows: a CTA pair)"""
CLUSTERS = ((1, 1), (1, 2), (1, 4), (2, 1), (2, 2), (2, 4), (4, 1), (4, 2), (4, 4))
LARGEST_BUCKET = 4096

Tactic = tuple[tuple[int, int], tuple[int, int], bool]


def _grid(m: int, n: int, tile: tuple[int, int], cluster: tuple[int, int], swap: bool) -> tuple[int, int, int, int]:
    """(rows, columns of the problem the kernel sees, CTAs along its m, along its n, rounded to whole clusters)."""
    rows, cols = (n, m) if swap else (m, n)
    pair = 2 if tile[0] == 256 else 1
    ctas_m = math.ceil(math.ceil(rows / tile[0]) * pair / cluster[0]) * cluster[0]
    ctas_n = math.ceil(math.ceil(cols / tile[1]) / cluster[1]) * cluster[1]
    return rows, cols, ctas_m, ctas_n


def score(m: int, n: int, k: int, sms: int, tile: tuple[int, int], cluster: tuple[int, int], swap: bool) -> float:
    """The >= 0.6.9 rule's score of one tactic (higher is better)."""
    rows, cols, ctas_m, ctas_n = _grid(m, n, tile, cluster, swap)
    fill = rows / (math.ceil(rows / tile[0]) * tile[0]) * cols / (math.ceil(cols / tile[1]) * tile[1])
    rate = math.sqrt(tile[1] / 256) * ((0.5 if k <= 1024 else 0.8 if k <= 2048 else 1.0) if tile[1] > 128 else 1.0)
    s = fill * rate / (math.ceil(ctas_m * ctas_n / sms) * tile[1])
    s *= 1.05 if tile[0] == 256 else 1.0
    if rows > tile[0]:
        s *= 0.95 ** (cluster[1].bit_length() - 1) * 0.99 ** (cluster[0].bit_length() - 1)
    s *= 1e-6 if tile[1] < 64 and cols > tile[1] else 1.0
    return s * (1.0 if swap == (n % 8 == 0 and 1 <= m <= 32 and n > m) else 0.95)


def _feasible(m: int, n: int, tile: tuple[int, int], cluster: tuple[int, int], swap: bool) -> bool:
    """The kernel's can_implement for aligned shapes: a pair tile needs an even cluster m, a tile narrower than 64
    must cover the kernel's n in one cluster column."""
    if cluster[0] % (2 if tile[0] == 256 else 1):
        return False
    return not (tile[1] < 64 and ((m if swap else n) > tile[1] or cluster[1] > 1))


@functools.cache
def _bucket_tactic(bucket: int, n: int, k: int, sms: int) -> Tactic:
    candidates = [(tile, cluster, swap) for tile in TILES for cluster in CLUSTERS for swap in (False, True)
                  if (n % 8 == 0 or not swap) and _feasible(bucket, n, tile, cluster, swap)]
    return max(candidates, key=lambda t: score(bucket, n, k, sms, *t))


def tactic(m: int, n: int, k: int, sms: int) -> Tactic:
    """The tactic FlashInfer >= 0.6.9 runs untuned for an (m x k) @ (k x n) NVFP4 GEMM on `sms` SMs."""
    return _bucket_tactic(min(1 << max(m - 1, 0).bit_length(), LARGEST_BUCKET), n, k, sms)


def tile_flops(m: float, n: float, k: float, sms: float, weight: float) -> float:
    """FLOPs of the tactic's whole CTA tiles, times the wave factor of its CTAs on the SMs (weight ω)."""
    from costmodels.serving_gemm import wave_factor

    tile, cluster, swap = tactic(int(m), int(n), int(k), int(sms))
    _, _, ctas_m, ctas_n = _grid(int(m), int(n), tile, cluster, swap)
    pair = 2 if tile[0] == 256 else 1
    return 2.0 * ctas_m * tile[0] / pair * ctas_n * tile[1] * k * wave_factor(ctas_m * ctas_n, sms, weight)


def gemm_fp4_heuristic_s(dev, kc, m: float, n: float, kk: float) -> float:
    """serving_gemm.gemm_fp4_s with the >= 0.6.9 tactic's tiles in place of 128 x 128 tiles on every SM."""
    from costmodels import compute, serving_gemm

    peak = dev.peak_flops_per_s("fp4") * kc.fp4_gemm_efficiency_max
    compute_s = (tile_flops(m, n, kk, kc.gemm_sms, kc.fp4_wave_weight) + kc.fp4_gemm_half_flops) / peak
    moved = serving_gemm.FP4_WEIGHT_BYTES * (m * kk + kk * n) + 2.0 * m * n
    memory_s = kc.kernel_floor_s + moved / (dev.hbm_bytes_per_s * (kc.fp4_hbm_efficiency or kc.hbm_efficiency))
    return max(compute_s, memory_s) + kc.fp4_quant_s + compute.memory_bound_time_s(kc.fp4_quant_bytes * m * kk, dev)


def compare(engine: str) -> list[tuple[str, float, float]]:
    """(tiles, held-aside median, p90 |error|) of the 'gemm fp4' constants refitted from the fit's start on the
    engine's B200 training points, with the fixed 128 x 128 tiles and with the >= 0.6.9 tactics."""
    import numpy as np
    import serve_engine_fit as fit
    import serve_engine_ops as ops
    from aiconfigurator_tables import load

    from costmodels.serving_constants import KernelConstants
    from costmodels.serving_gemm import gemm_fp4_s

    dev = fit.fitted_device("b200")
    cal = next(c for c in dev.serving_engines if c.engine == engine)
    domain, _, names = ops.OPS["gemm fp4"]
    values = {f.name: getattr(cal, f.name) for f in dataclasses.fields(KernelConstants)}
    values.update({n: fit.START[n] for n in names})
    points = domain(load("b200", engine))
    train = [p for p in points if not fit.held_aside(p[:-1])]
    test = [p for p in points if fit.held_aside(p[:-1])]
    rows = []
    for label, model in (("128 x 128 (FlashInfer <= 0.6.8)", gemm_fp4_s),
                         ("per-bucket tactic (FlashInfer >= 0.6.9)", gemm_fp4_heuristic_s)):
        def predict(ek, p, model=model):
            return model(ek.device, ek.k, p[0], p[1], p[2])
        ek = fit._kernels(dev, fit.fit_op(dev, values, names, train, predict))
        err = [abs(predict(ek, p) / p[-1] - 1) for p in test]
        rows.append((label, float(np.median(err)), float(np.quantile(err, 0.9))))
    return rows
