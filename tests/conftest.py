"""Shared test fixtures."""

import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture
def shared_dir() -> pathlib.Path:
    """The project's shared/ folder (calibration data) beside the checkout."""
    if not SHARED.is_dir():
        pytest.skip("../shared is not present")
    return SHARED


# Property tests draw the same examples on every run, so CI results do not depend on luck.
from hypothesis import settings  # noqa: E402

settings.register_profile("parplan", derandomize=True, print_blob=True)
settings.load_profile("parplan")
