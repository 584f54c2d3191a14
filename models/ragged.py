"""Ragged arrays: slices of different lengths laid end to end in one flat array, slice k being
flat[offsets[k] : offsets[k + 1]]. How every batched (compiled) pass over many users' lists takes its input.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
_T = TypeVar("_T", bound=np.generic)


def offsets(lengths: Sequence[int] | npt.NDArray[np.integer[Any]]) -> I64:
    """[0, l0, l0 + l1, ...]: where each slice starts, then the end of the last."""
    out = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=out[1:])
    return out


def positions(lengths: npt.NDArray[np.integer[Any]]) -> I64:
    """Each element's position within its slice: [0, 1, ..., l0 - 1, 0, 1, ..., l1 - 1, ...]."""
    starts = offsets(lengths)[:-1]
    return np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(starts, lengths)


def flatten(parts: Sequence[npt.NDArray[_T]], empty: npt.NDArray[_T]) -> npt.NDArray[_T]:
    """The parts end to end (`empty` for none; a single part as it is, without a copy)."""
    if len(parts) > 1:
        return np.concatenate(parts)
    return parts[0] if parts else empty


def join(parts: Sequence[npt.NDArray[_T]], empty: npt.NDArray[_T]) -> tuple[npt.NDArray[_T], I64]:
    """`flatten(parts)` and the offsets of the parts in it."""
    return flatten(parts, empty), offsets([part.shape[0] for part in parts])
