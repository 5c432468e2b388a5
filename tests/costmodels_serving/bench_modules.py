"""benchmarks/ modules (the serving fit, its ops and table loaders) for tests that read aiconfigurator-core's
measured tables: skipped, with what they need, where that optional extra is not installed."""

import importlib
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def bench_modules(*names: str, needs: str) -> tuple[ModuleType, ...]:
    """Import `names` from benchmarks/, or skip the test (reason: aiconfigurator-core and `needs`)."""
    pytest.importorskip("aiconfigurator_core", reason=f"needs aiconfigurator-core (optional extra `aiconfigurator`): "
                                                      f"{needs}")
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return tuple(importlib.import_module(name) for name in names)
