"""benchmarks/ modules (the serving fit, its ops and table loaders) for tests that read aiconfigurator-core's
measured tables: skipped, with what they need, where that optional extra is not installed."""

import importlib
import sys
from pathlib import Path
from types import ModuleType

import pytest

from costmodels.errors import SpecError

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def bench_modules(*names: str, needs: str) -> tuple[ModuleType, ...]:
    """Import `names` from benchmarks/, or skip the test (reason: aiconfigurator-core and `needs`)."""
    pytest.importorskip("aiconfigurator_core", reason=f"needs aiconfigurator-core (optional extra `aiconfigurator`): "
                                                      f"{needs}")
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return tuple(importlib.import_module(name) for name in names)


def fit_tables(device: str, engine: str) -> tuple[ModuleType, object]:
    """benchmarks/serve_engine_fit.py and the measured per-op tables of (device, engine), or skip the test (the
    benchmarks' dependencies or aiconfigurator-core's tables not installed)."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    fit = pytest.importorskip("serve_engine_fit", reason="needs benchmarks/ (scipy, numpy)")
    try:
        return fit, fit.load(device, engine)
    except SpecError as e:
        pytest.skip(f"aiconfigurator-core tables not installed: {e}")


def held_aside_errors(ek, device: str, engine: str, op: str) -> tuple[list[float], tuple[float, float]]:
    """|model / measured - 1| of the fit op `op`'s held-aside measured rows of (device, engine) (one in five by key
    hash, never fitted), predicted on the kernels `ek`; and the MoE accuracy bar (median, p90) serving gates on."""
    fit, tables = fit_tables(device, engine)
    domain, predict, _ = fit.OPS[op]
    err = [abs(predict(ek, p, engine=engine) / p[-1] - 1) for p in domain(tables) if fit.held_aside(p[:-1])]
    return err, fit.MOE_BAR
