import numpy as np
import pytest

from .helpers import EX4WEIGHTS


@pytest.fixture(scope="session")
def ex4weights():
    return EX4WEIGHTS


@pytest.fixture(scope="session")
def digits20():
    from nnlearn import load_digits20

    return load_digits20()


@pytest.fixture(scope="session")
def digits8():
    from nnlearn import load_digits8

    return load_digits8()


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
