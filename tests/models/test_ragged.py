"""Ragged arrays: offsets, positions within slices, and flattening, against the obvious Python."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from streamrec.models import ragged

lengths = st.lists(st.integers(min_value=0, max_value=6), max_size=12)


@given(lengths)
def test_offsets_and_positions_are_the_slices(sizes: list[int]) -> None:
    offsets = ragged.offsets(sizes)
    assert offsets.dtype == np.int64
    assert offsets.tolist() == [sum(sizes[:k]) for k in range(len(sizes) + 1)]
    assert ragged.offsets(np.array(sizes, dtype=np.intp)).tolist() == offsets.tolist()
    positions = ragged.positions(np.array(sizes, dtype=np.intp))
    assert positions.tolist() == [p for size in sizes for p in range(size)]


@given(lengths)
def test_join_lays_the_parts_end_to_end(sizes: list[int]) -> None:
    parts = [np.arange(size, dtype=np.int64) + 10 * k for k, size in enumerate(sizes)]
    empty = np.zeros(0, dtype=np.int64)
    flat, offsets = ragged.join(parts, empty)
    assert flat.tolist() == [v for part in parts for v in part.tolist()]
    for k, part in enumerate(parts):
        assert flat[offsets[k] : offsets[k + 1]].tolist() == part.tolist()


def test_flatten_keeps_a_single_part_and_gives_the_empty_one_for_none() -> None:
    part = np.arange(3, dtype=np.int64)
    empty = np.zeros(0, dtype=np.int64)
    assert ragged.flatten([part], empty) is part
    assert ragged.flatten([], empty) is empty
