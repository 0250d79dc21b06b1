"""The docs' code blocks are tests too (tests/docs_blocks.py): Sybil collects README.md and docs/*.md.

Without Sybil (not the test extra) the docs are not collected, and the rest of the suite runs.
"""

import contextlib

import pytest

from tests.docs_blocks import make_sybil

with contextlib.suppress(ImportError):  # pip install -e ".[test]" brings Sybil
    pytest_collect_file = make_sybil().pytest()


def pytest_collection_modifyitems(items):
    """A ``console slow`` (``python slow``, ``bash slow``) block runs in the full tier only."""
    for item in items:
        region = getattr(getattr(item, "example", None), "region", None)
        if getattr(region, "slow", False):
            item.add_marker(pytest.mark.slow)
