"""benchmarks/fp4_cutedsl_tiles.py: FlashInfer >= 0.6.9's untuned CuTe-DSL NVFP4 tactic rule, hand-checked on B200
(148 SMs); no aiconfigurator-core needed."""

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
tiles = pytest.importorskip("fp4_cutedsl_tiles")


def test_one_token_swaps_onto_the_narrowest_tile() -> None:
    # m 1, n k 4096, swapped: the kernel sees 4096 rows x 1 column; 128 x 8 tiles: 32 CTAs (one wave), column fill
    # 1/8, rate sqrt(8/256); score = 0.125 * sqrt(1/32) / 8; swap matches the rule (m <= 32 < n): no 0.95
    expected = 0.125 * math.sqrt(8 / 256) / 8
    assert tiles.score(1, 4096, 4096, 148, (128, 8), (1, 1), True) == pytest.approx(expected)
    # 128 x 16 fills 1/16 at rate 1/4 over 16 columns: lower
    assert tiles.score(1, 4096, 4096, 148, (128, 16), (1, 1), True) == pytest.approx(1 / 16 * 0.25 / 16)
    assert tiles.tactic(1, 4096, 4096, 148) == ((128, 8), (1, 1), True)


def test_m_takes_the_tactic_of_its_power_of_two_bucket() -> None:
    # m 9 runs the tactic chosen for m 16: a 128 x 16 swapped tile (8 columns could not cover 16 rows)
    assert tiles.tactic(9, 4096, 4096, 148) == ((128, 16), (1, 1), True)
    assert tiles.tactic(9, 4096, 4096, 148) == tiles.tactic(16, 4096, 4096, 148)


def test_large_m_runs_pair_tiles_in_one_wave() -> None:
    # m 1024, n k 4096: 256 x 256 pair tiles, cluster 2 x 1: 8 x 16 = 128 CTAs, one wave; score
    # 1 / 256 * 1.05 (2-CTA) * 0.99 (cluster 2 along m, problem taller than a tile)
    assert tiles.score(1024, 4096, 4096, 148, (256, 256), (2, 1), False) == pytest.approx(1.05 * 0.99 / 256)
    # 128 x 128 on one SM each: 256 CTAs, two waves, rate sqrt(1/2)
    assert tiles.score(1024, 4096, 4096, 148, (128, 128), (1, 1), False) == pytest.approx(math.sqrt(0.5) / 256)
    assert tiles.tactic(1024, 4096, 4096, 148) == ((256, 256), (2, 1), False)


def test_tile_flops_count_whole_cta_tiles() -> None:
    # m 1: the 4096 x 8 swapped tiles of 32 CTAs (one partial wave: weight 0 counts none of it)
    assert tiles.tile_flops(1, 4096, 4096, 148, 0.0) == pytest.approx(2.0 * 4096 * 8 * 4096)
    # weight 1: 32 CTAs of 148 SMs run as a whole wave, 148 / 32 times the work
    assert tiles.tile_flops(1, 4096, 4096, 148, 1.0) == pytest.approx(2.0 * 4096 * 8 * 4096 * 148 / 32)
