"""Sequence-length batches: reading `--lengths` files and seeded synthetic distributions.

File formats: one positive integer per line (one batch; blank lines and `#` comments ignored), or JSON:
a list of integers (one batch) or a list of lists (several batches).
"""

import json
import math
from pathlib import Path

import numpy as np

from costmodels.errors import SpecError, require

DISTRIBUTIONS = ("lognormal", "pareto")


def read_batches(path: str | Path) -> list[list[int]]:
    """Batches from a lengths file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"cannot read lengths: {exc.strerror}", source=str(path)) from None
    except UnicodeDecodeError as exc:
        raise SpecError(f"not UTF-8 text (byte {exc.start}): a lengths file is one integer per line or a JSON list",
                        source=str(path)) from None
    if text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(f"malformed JSON at line {exc.lineno}: {exc.msg}", source=str(path)) from None
        batches = data if data and all(isinstance(b, list) for b in data) else [data]
        return [_ints(b, str(path), f"batch {k}") for k, b in enumerate(batches)]
    out = []
    for no, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(_int(line, str(path), f"line {no}"))
    require(bool(out), "no sequence lengths found", source=str(path))
    return [out]


def _ints(batch, source: str, where: str) -> list[int]:
    require(isinstance(batch, list) and len(batch) > 0, "a batch is a non-empty list of lengths", field=where,
            source=source)
    return [_int(v, source, f"{where}[{i}]") for i, v in enumerate(batch)]


def _int(value, source: str, where: str) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise SpecError(f"not an integer length: {value!r}", field=where, source=source) from None
    require(n >= 1 and n == float(value), f"lengths are positive integers, got {value!r}", field=where, source=source)
    return n


def synthetic_batches(*, dist: str, mean: float, max_len: int, count: int, seed: int, batches: int = 1,
                      shape: float | None = None, min_len: int = 16) -> list[list[int]]:
    """`batches` batches of `count` lengths, clipped to [min_len, max_len] (numpy Generator, seeded).

    lognormal: sigma = shape (default 2.0), mu = ln(mean) - sigma²/2 so the unclipped mean is `mean`.
    pareto: tail index alpha = shape (default 1.5), scale = mean·(alpha-1)/alpha (unclipped mean `mean`).
    """
    require(dist in DISTRIBUTIONS, f"unknown {dist!r}; valid: {', '.join(DISTRIBUTIONS)}", field="dist")
    require(mean >= 1, "must be >= 1", field="mean")
    require(max_len >= max(min_len, 1), f"must be >= {min_len}", field="max")
    require(count >= 1 and batches >= 1, "count and batches must be >= 1", field="count")
    rng = np.random.default_rng(seed)
    if dist == "lognormal":
        sigma = 2.0 if shape is None else shape
        require(sigma > 0, "must be > 0", field="shape")
        raw = rng.lognormal(math.log(mean) - sigma * sigma / 2, sigma, size=(batches, count))
    else:
        alpha = 1.5 if shape is None else shape
        require(alpha > 1, "must be > 1 (finite mean)", field="shape")
        raw = (rng.pareto(alpha, size=(batches, count)) + 1.0) * mean * (alpha - 1) / alpha
    vals = np.clip(np.rint(raw), min_len, max_len).astype(int)
    return [row.tolist() for row in vals]
