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


@pytest.fixture(scope="session")
def phone_photos(tmp_path_factory):
    """20 phone-like 12-megapixel JPEGs of held-out digits (tests/photos.py): (path, label) pairs."""
    from .photos import write

    return write(tmp_path_factory.mktemp("photos"), 20)
