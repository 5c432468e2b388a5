"""benchmarks/serve_gemm_scatter.py's outlier tests on hand-made tables (no aiconfigurator-core needed)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
scatter = pytest.importorskip("serve_gemm_scatter")


def flat_group(n: int, k: int, t: float, slow: dict[int, float]) -> dict[tuple[int, int, int], float]:
    return {(m, n, k): slow.get(m, t) for m in range(1, 17)}


def test_flat_ratio_is_time_over_group_median() -> None:
    table = flat_group(1024, 1024, 10e-6, {3: 13e-6})  # 15 points at 10 us, one at 13: median 10 us
    r = scatter.flat_ratios(table)
    assert r[(3, 1024, 1024)] == pytest.approx(1.3)
    assert r[(4, 1024, 1024)] == pytest.approx(1.0)


def test_incomplete_group_has_no_ratios() -> None:
    table = flat_group(1024, 1024, 10e-6, {})
    del table[(5, 1024, 1024)]
    assert scatter.flat_ratios(table) == {}


def test_anomaly_is_slower_than_a_larger_m_by_over_20_percent() -> None:
    table = {(1, 512, 512): 5e-6, (2, 512, 512): 6.1e-6, (3, 512, 512): 5.9e-6, (32, 512, 512): 5e-6,
             (64, 512, 512): 9e-6}
    # m 2: 6.1 > 1.2 * 5.0 (m 32) -> anomaly; m 3: 5.9 < 6.0 -> not; the largest m has nothing to compare with
    assert scatter.anomalies(table) == {(2, 512, 512)}


def test_bucket_coherence_counts_mates_in_the_same_power_of_two_bucket() -> None:
    # outliers at m 9 and 10 (bucket 9-16: 7 mates each, one of them an outlier) and at m 3 (mate m 4: not)
    r = {(m, 256, 256): 1.0 for m in range(1, 17)} | {(9, 256, 256): 1.5, (10, 256, 256): 1.5, (3, 256, 256): 1.5}
    same, base, count = scatter.bucket_coherence(r)
    assert count == 3
    assert same == pytest.approx(2 / 15)  # 2 outlier mates among 7 + 7 + 1 mates
    assert base == pytest.approx(3 / 14)  # 3 outliers among the 14 points of buckets 3-4, 5-8, 9-16
