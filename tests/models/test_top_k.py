"""The k best scores in a total order (score, then key or position): the plain sort's selection, and a subset
holding the k best selects exactly them, however many scores tie at the edge."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from hypothesis import given
from hypothesis import strategies as st

from streamrec.models.top_k import best_first

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]

# Few distinct values: ties everywhere, at the edge too; and the non-finite scores ranking leaves out.
VALUES = st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0, 2.0, -1.0, -np.inf, np.nan])
SCORES = st.lists(VALUES, min_size=0, max_size=60).map(lambda v: np.array(v, dtype=np.float32))


def reference(scores: F32, k: int, keys: I64 | None = None) -> I64:
    """Sort everything: by score descending, then key (position) ascending; keep the finite ones."""
    keys = np.arange(scores.shape[0]) if keys is None else keys
    order = np.lexsort((keys, -scores))
    return order[np.isfinite(scores[order])][:k].astype(np.int64)


@given(SCORES, st.integers(0, 70))
def test_best_first_is_the_sorted_selection_by_position(scores: F32, k: int) -> None:
    np.testing.assert_array_equal(best_first(scores, k), reference(scores, k))


@given(SCORES, st.integers(0, 70), st.data())
def test_best_first_breaks_ties_by_key(scores: F32, k: int, data: st.DataObject) -> None:
    keys = np.array(data.draw(st.permutations(range(scores.shape[0]))), dtype=np.int64)
    np.testing.assert_array_equal(best_first(scores, k, keys), reference(scores, k, keys))


@given(SCORES, st.integers(1, 30), st.data())
def test_a_subset_holding_the_best_selects_them(scores: F32, k: int, data: st.DataObject) -> None:
    """What the candidate ranker relies on: its candidates (sorted rows) hold every item of the every-item top,
    so its top is that top, rows and order, whatever ties with the edge and is left out."""
    full = best_first(scores, k)
    others = data.draw(st.sets(st.integers(0, max(scores.shape[0] - 1, 0)), max_size=scores.shape[0]))
    rows = np.array(sorted(set(full.tolist()) | {r for r in others if r < scores.shape[0]}), dtype=np.int64)
    assert np.isin(full, rows).all()
    np.testing.assert_array_equal(rows[best_first(scores[rows], k)], full)
    np.testing.assert_array_equal(rows[best_first(scores[rows], k, rows)], full)


def test_ties_at_the_edge_keep_the_lowest_rows() -> None:
    scores = np.array([1.0, 3.0, 1.0, 2.0, 1.0, 1.0, 3.0], dtype=np.float32)
    np.testing.assert_array_equal(best_first(scores, 5), [1, 6, 3, 0, 2])
    keys = np.array([6, 5, 4, 3, 2, 1, 0], dtype=np.int64)
    np.testing.assert_array_equal(best_first(scores, 5, keys), [6, 1, 3, 5, 4])


@given(st.integers(0, 2**32 - 1), st.sampled_from([1, 7, 100, 999]), st.sampled_from([3, 50, 10**6]))
def test_best_first_on_long_arrays(seed: int, k: int, distinct: int) -> None:
    """Long arrays (the histogram's many buckets), skewed like relevance scores, with few or many distinct values."""
    rng = np.random.default_rng(seed)
    scores = (np.floor(rng.exponential(1.0, 3000) * distinct) / distinct).astype(np.float32)
    scores[rng.integers(0, 3000, 100)] = -np.inf
    keys = rng.permutation(3000).astype(np.int64)
    np.testing.assert_array_equal(best_first(scores, k), reference(scores, k))
    np.testing.assert_array_equal(best_first(scores, k, keys), reference(scores, k, keys))
