"""benchmarks/serve_fp8_scatter.py's anomaly tests on hand-made tables (no aiconfigurator-core needed)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
scatter = pytest.importorskip("serve_fp8_scatter")


def test_next_n_compares_with_the_next_larger_n_of_the_same_m_and_k() -> None:
    table = {(4, 512, 1024): 12e-6, (4, 1024, 1024): 10e-6, (4, 2048, 1024): 11e-6, (8, 512, 1024): 1e-6}
    q = scatter.next_n(table)
    assert q == {(4, 512, 1024): pytest.approx(1.2), (4, 1024, 1024): pytest.approx(10 / 11)}  # (8, 512): no larger n


def test_flat_ratio_is_time_over_the_median_of_m_2_to_16() -> None:
    table = {(m, 256, 512): 10e-6 for m in range(1, 17)} | {(5, 256, 512): 13e-6, (1, 256, 512): 30e-6}
    r = scatter.flat_ratios(table)
    assert (1, 256, 512) not in r  # m = 1 is outside the flat region (its own step)
    assert r[(5, 256, 512)] == pytest.approx(1.3)
    assert r[(6, 256, 512)] == pytest.approx(1.0)


def test_incomplete_flat_group_has_no_ratios() -> None:
    table = {(m, 256, 512): 10e-6 for m in range(2, 16)}  # m 16 missing
    assert scatter.flat_ratios(table) == {}


def test_outliers_are_counted_per_group_and_followed_along_m() -> None:
    r = {(m, 256, 512): 1.0 for m in range(2, 17)} | {(m, 512, 512): 1.0 for m in range(2, 17)}
    r |= {(3, 256, 512): 1.2, (4, 256, 512): 1.2, (9, 512, 512): 1.16, (10, 512, 512): 1.15}  # 1.15: not above
    assert scatter.group_counts(r) == [2, 1]
    assert scatter.follow_rate(r) == pytest.approx(1 / 3)  # after m 3: m 4 is one; after m 4 and m 9: not


def test_tile_features_follow_vllms_sm100_dispatch() -> None:
    # m 8: M16 swap-AB, 64 n per CTA in clusters of 4 along n: n 320 -> 5 CTAs -> padded to 8 (even), one wave
    f = scatter.tile_features(8, 320, 4096)
    assert f == {"m bucket (largest m)": "16", "CTA waves on 148 SMs": "1", "CTAs along n": "even",
                 "n padded by cluster rounding": "yes"}
    # m 64, k < 4096: 64 x 64 CTAs, cluster 1 x 1: n 192 -> 3 CTAs along n (odd), no cluster padding
    f = scatter.tile_features(64, 192, 2048)
    assert (f["CTAs along n"], f["n padded by cluster rounding"]) == ("odd", "no")
    # m 4096 (default 256 x 128 on a pair, 128 x 128 per CTA, cluster 2 x 2), n 8192: 32 x 64 CTAs, > 1 wave
    assert scatter.tile_features(4096, 8192, 4096)["CTA waves on 148 SMs"] == "> 1"
