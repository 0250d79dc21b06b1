"""Where nnlearn keeps what it can rebuild: converted datasets and downloaded files.

A module of its own, below :mod:`nnlearn.datasets._builtin` and :mod:`nnlearn.datasets._mnist`, so that both
can use it without importing each other.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir"]


def cache_dir() -> Path:
    """Where converted datasets are cached: ``$NNLEARN_CACHE_DIR`` or ``~/.cache/nnlearn``."""
    return Path(os.environ.get("NNLEARN_CACHE_DIR") or Path.home() / ".cache" / "nnlearn")
