"""Where nnlearn keeps what it can rebuild: downloaded files and the arrays converted from them.

A module of its own, below :mod:`nnlearn.datasets._mnist` (the downloads and their resampled
arrays) and the command line (models it rescues), so that they need not import each other.
The embedded digits ship with nnlearn and are not cached.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir"]


def cache_dir() -> Path:
    """Where converted datasets are cached: ``$NNLEARN_CACHE_DIR`` or ``~/.cache/nnlearn``."""
    return Path(os.environ.get("NNLEARN_CACHE_DIR") or Path.home() / ".cache" / "nnlearn")
