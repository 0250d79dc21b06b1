"""``nnlearn serve``'s web application: draw a digit, watch the network think, train one.

A Starlette app (:func:`create_app`) with three views on one page (draw, model, train) and
the JSON API behind them; ``docs/web.md`` describes both. It needs the ``web`` extra
(``pip install "nnlearn[web]"``): Starlette and uvicorn.

* :mod:`~nnlearn.web._app`: the routes and :func:`create_app`;
* :mod:`~nnlearn.web._limits`: :class:`Limits` and the checks of a training request;
* :mod:`~nnlearn.web._security`: the Host and Origin checks, bounded request bodies;
* :mod:`~nnlearn.web._served`: the model being served, swapped in one assignment;
* :mod:`~nnlearn.web._render`: what a prediction shows; :mod:`~nnlearn.web._figures` the
  report's figures as SVG;
* :mod:`~nnlearn.web._runs`: the one training run at a time and its events.
"""

from __future__ import annotations

#: What a missing extra says, on one line.
MISSING_EXTRA = 'nnlearn.web needs the web extra: pip install "nnlearn[web]"'

try:
    import starlette  # noqa: F401
    import uvicorn  # noqa: F401
except ImportError as exc:
    raise ImportError(f"{MISSING_EXTRA} ({exc})") from exc

from ._app import PRETRAINED_SOURCE, create_app  # noqa: E402  (after the check above, which says what is missing)
from ._limits import Limits  # noqa: E402

__all__ = ["create_app", "Limits", "MISSING_EXTRA", "PRETRAINED_SOURCE"]
