"""aiconfigurator-core's measured FP8 quantisation tables (Apache-2.0): the dynamic-scale pass of a per-tensor FP8 GEMM.

    .venv/bin/pip install 'aiconfigurator-core==0.12.0'

Per engine and device the package ships two tables of (m, k) BF16 activations (systems/data/<gpu>/quantize/):
  scale_matrix   the static-scale quantise kernel (TensorRT-LLM: static_quantize_e4m3_per_tensor; vLLM:
                 static_scaled_fp8_quant)
  compute_scale  the dynamic scale's extra cost: the dynamic quantise op minus the static one (TensorRT-LLM:
                 quantize_e4m3_per_tensor, an amax pass over the input before the quantise kernel)
TensorRT-LLM's GEMM table times an FP8 Linear built without an input_scale (aiconfigurator
collector/trtllm/collect_gemm.py loads only weight and weight_scale), so FP8QDQLinearMethod quantises dynamically
(tensorrt_llm/_torch/modules/linear.py: process_weights_after_loading_vanilla sets input_scale = None, apply runs
quantize_e4m3_per_tensor): its FP8 rows hold GEMM + amax pass + quantise kernel. A per-tensor FP8 checkpoint served
by TensorRT-LLM carries static input scales and runs the quantise kernel alone. vLLM's GEMM collector (aiconfigurator
d5bad971c, the 0.24.0 upgrade) builds its Fp8Config with activation_scheme "dynamic": its rows quantise per token, not
with static_scaled_fp8_quant, and not with the CUDA per-token kernel its compute_scale table times
(dynamic_per_token_scaled_fp8_quant minus the static kernel) either: under the collector's default VllmConfig()
QuantFP8 runs its Inductor-compiled forward_native, one program per row (serving_gemm.token_quant_s, fitted in
'gemm fp8'); SGLang's compute_scale table is all zeros, so only TensorRT-LLM's rows take a measured pass
(DYNAMIC_SCALE_ROWS). Nothing here is fitted.

The scale_matrix tables of TensorRT-LLM and vLLM time a static quantise kernel of the engine (see STATIC_KERNEL_ROWS):
serve_engine_fit.py fits serving_gemm.fp8_quant_s to them (op "fp8 quant"); TensorRT-LLM's GEMM rows run that very
kernel, vLLM's the per-token program, whose bytes (read the BF16 row, write its FP8 row) the static kernel's fit
stands for while its per-row program time is token_quant_s. SGLang's do not:
its collector times a torch composite (x / scale, clamp, cast, copy: ~30 bytes per element, 10x the bandwidth bound)
while its GEMM rows quantise with sgl_per_token_quant_fp8 (collector/sglang/collect_gemm.py), a kernel no table times
alone (its compute_scale rows, dynamic minus that composite, are clamped to 0).
"""

import bisect
import functools
import os

from aiconfigurator_tables import DEVICES, ENGINE_VERSIONS, MS, _read, data_dir

DYNAMIC_SCALE_ROWS = ("trtllm",)
"""engines whose FP8 GEMM table rows quantise their input with a dynamic per-tensor scale (an amax pass first)"""
STATIC_KERNEL_ROWS = ("trtllm", "vllm")
"""engines whose scale_matrix table times a static quantise kernel of theirs, fitted on its own: the kernel their FP8
GEMM rows (and serving) run (TensorRT-LLM), or the bytes of the per-token program they run (vLLM; its time per row:
serving_gemm.token_quant_s)"""


@functools.cache
def static_quant_points(device: str, engine: str) -> tuple[tuple[int, int, float], ...]:
    """(m, k, seconds) of the engine's measured static-scale quantise kernel (scale_matrix), median per (m, k), sorted;
    () for an engine whose table times another kernel than its GEMM rows run (STATIC_KERNEL_ROWS)."""
    if engine not in STATIC_KERNEL_ROWS:
        return ()
    path = os.path.join(data_dir(), DEVICES[device], "quantize", engine, ENGINE_VERSIONS[engine],
                        "scale_matrix_perf.parquet")
    grouped = _read(path).groupby(["m", "k"], sort=True)["latency"].median()
    return tuple((int(m), int(k), float(v) * MS) for (m, k), v in grouped.items())


class ScaleTable:
    """One engine's compute_scale table on one device: the amax pass of a dynamic per-tensor scale, by (m, k)."""

    def __init__(self, device: str, engine: str, name: str = "computescale_perf") -> None:
        path = os.path.join(data_dir(), DEVICES[device], "quantize", engine, ENGINE_VERSIONS[engine],
                            f"{name}.parquet")
        grouped = _read(path).groupby(["m", "k"], sort=True)["latency"].median()
        self.ms = sorted({int(m) for m, _ in grouped.index})
        self.ks = sorted({int(k) for _, k in grouped.index})
        self.t = {(int(m), int(k)): float(v) * MS for (m, k), v in grouped.items()}

    def at(self, m: float, k: float) -> float:
        """Seconds at (m, k): bilinear between the neighbouring grid points (linear extrapolation past the last k, whose
        cost grows with the bytes m·k; m beyond the grid clamps to its ends)."""
        m_lo, m_hi, fm = _bracket(self.ms, m)
        return (1 - fm) * self._along_k(m_lo, k) + fm * self._along_k(m_hi, k)

    def _along_k(self, m: int, k: float) -> float:
        k_lo, k_hi, fk = _bracket(self.ks, k, extrapolate=True)
        return max(0.0, (1 - fk) * self.t[(m, k_lo)] + fk * self.t[(m, k_hi)])


def _bracket(grid: list[int], x: float, extrapolate: bool = False) -> tuple[int, int, float]:
    """(lower, upper, fraction) of x between neighbouring grid values; clamped unless `extrapolate` (above the end:
    the last two values, fraction > 1)."""
    i = bisect.bisect_left(grid, x)
    if i < len(grid) and grid[i] == x:
        return grid[i], grid[i], 0.0
    if i == 0:
        return grid[0], grid[0], 0.0
    if i == len(grid):
        if not extrapolate:
            return grid[-1], grid[-1], 0.0
        i = len(grid) - 1
    lo, hi = grid[i - 1], grid[i]
    return lo, hi, (x - lo) / (hi - lo)


def dynamic_scale_s(tables: dict[tuple[str, str], ScaleTable], device: str, engine: str, m: float, k: float) -> float:
    """The amax pass an engine's FP8 GEMM table row includes at (m, k) (0 for engines without one); `tables` caches
    the loaded tables by (device, engine)."""
    if engine not in DYNAMIC_SCALE_ROWS:
        return 0.0
    if (device, engine) not in tables:
        tables[(device, engine)] = ScaleTable(device, engine)
    return tables[(device, engine)].at(m, k)
