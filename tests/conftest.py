import os
import tempfile

import numpy as np
import pytest

# The suite's runs use the kernel's fixed forms, so that two runs of a test compare bit for
# bit whatever a busy machine would measure; the planner's tests turn planning on, and every
# plan any test makes goes to a directory of the session's own, never the user's cache. Set
# at import, before tests/helpers.py copies the environment for the CLI's subprocesses.
os.environ.setdefault("NNLEARN_PLAN", "off")
os.environ.setdefault("NNLEARN_PLAN_CACHE", tempfile.mkdtemp(prefix="nnlearn-test-plans-"))

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
