"""A plan: which form of each product the fast kernel runs, as data.

The kernel's products can be written several ways that give the same numbers up to the
last bits, and which way is fastest depends on the BLAS library and its kernel
(docs/planner.md). A :class:`Plan` names one choice of each; :mod:`nnlearn.planner`
measures the candidates on the machine at hand and keeps the fastest. The kernel takes a
plan as it is: this module only describes and checks one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

__all__ = ["Plan", "HIDDEN_ORDERS", "GRADIENT_FORMS", "MAX_PAD"]

#: Memory orders of the hidden activations: "F" computes z = (theta a')' (examples down
#: contiguous columns), "C" computes z = a theta'. The deltas follow their layer's order.
HIDDEN_ORDERS = ("C", "F")
#: The weight gradients' products: delta' a, or its transpose's transpose (a' delta)'.
GRADIENT_FORMS = ("delta' a", "(a' delta)'")
#: The largest multiple the hidden widths may be padded to.
MAX_PAD = 64


@dataclass(frozen=True)
class Plan:
    """The forms of the fast kernel's products, and the shards of the examples.

    Parameters
    ----------
    hidden_order : {"C", "F"}
        Memory order of the hidden layers' activations and deltas; "F" runs their
        products as (theta a')'.
    gradient : {"delta' a", "(a' delta)'"}
        How the weight gradients' products are written.
    pad : int
        The hidden widths are padded with zero weights up to a multiple of ``pad``
        (1: not padded). Padded units add exact zeros to every real sum.
    shards : int or None
        How many shards :class:`nnlearn.threads.ShardedDataTerm` cuts the examples into
        (None: its rule of the least work per shard). The kernel ignores it.

    Every plan gives the same cost and gradient up to the last bits: each form is tested
    equal to the reference (:mod:`nnlearn.core.backprop`).
    """

    hidden_order: str = "F"
    gradient: str = GRADIENT_FORMS[0]
    pad: int = 1
    shards: int | None = None

    def __post_init__(self) -> None:
        if self.hidden_order not in HIDDEN_ORDERS:
            raise ValueError(f"plan: hidden_order must be one of {HIDDEN_ORDERS}, got {self.hidden_order!r}")
        if self.gradient not in GRADIENT_FORMS:
            raise ValueError(f"plan: gradient must be one of {GRADIENT_FORMS}, got {self.gradient!r}")
        if not _whole(self.pad) or not 1 <= self.pad <= MAX_PAD:
            raise ValueError(f"plan: pad must be an integer from 1 to {MAX_PAD}, got {self.pad!r}")
        if self.shards is not None and (not _whole(self.shards) or self.shards < 1):
            raise ValueError(f"plan: shards must be a positive integer or None, got {self.shards!r}")

    @classmethod
    def fixed(cls, dtype: DTypeLike) -> Plan:
        """The choices written into the kernel before plans existed, for ``dtype``.

        float64 hidden layers in Fortran order, float32 ones in C order, gradients as
        delta' a, no padding, shards by the least-work rule: with this plan the kernel
        computes exactly (bit for bit) what it computes with none.
        """
        return cls(hidden_order="F" if np.dtype(dtype) == np.float64 else "C")

    def to_dict(self) -> dict[str, Any]:
        """The plan as a JSON-able dict (for model histories, checkpoints and the plan cache)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, record: Any) -> Plan:
        """The plan :meth:`to_dict` wrote; ValueError (one line) for anything else."""
        fields = set(cls.__dataclass_fields__)
        if not isinstance(record, dict) or set(record) != fields:
            got = sorted(record) if isinstance(record, dict) else type(record).__name__
            raise ValueError(f"plan: expected the fields {sorted(fields)}, got {got}")
        return cls(**record)

    def describe(self) -> str:
        """``"F order, delta' a, pad 1, shards by rule"``: the choices in one line."""
        shards = "shards by rule" if self.shards is None else f"{self.shards} shard(s)"
        return f"{self.hidden_order} order, {self.gradient}, pad {self.pad}, {shards}"


def _whole(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)
