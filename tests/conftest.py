from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
EX4WEIGHTS = SHARED / "data" / "ex4weights.mat"


@pytest.fixture(scope="session")
def ex4weights():
    assert EX4WEIGHTS.exists(), f"the course's weights are expected at {EX4WEIGHTS}"
    return EX4WEIGHTS


@pytest.fixture(scope="session")
def digits20():
    from nnlearn import load_digits20

    return load_digits20()


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
