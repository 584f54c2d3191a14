"""The co-occurrence counts' update paths agree with each other."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from streamrec.models.cooccurrence import Cooccurrence, TrendingCounter


@settings(deadline=None)  # the first call compiles (numba)
@given(
    updates=st.lists(
        st.tuples(
            st.integers(0, 11),
            st.lists(st.integers(-1, 11), max_size=15, unique=True),  # a history's rows are distinct; -1: unknown
        ),
        max_size=20,
    )
)
def test_add_pairs_counts_as_add_with_the_known_rows_other_than_the_item(updates: list[tuple[int, list[int]]]) -> None:
    compiled, reference = Cooccurrence(capacity=4), Cooccurrence(capacity=4)
    for counts in (compiled, reference):
        counts.ensure(12)  # as the recommender does for every catalog row (`add_item`)
    for item, recent in updates:
        compiled.add_pairs(item, recent)
        reference.add(item, np.array([r for r in recent if r >= 0 and r != item], dtype=np.intp))
    assert compiled.n_items == reference.n_items
    np.testing.assert_array_equal(compiled.counts, reference.counts)
    np.testing.assert_array_equal(compiled.item_counts, reference.item_counts)
    assert np.array_equal(compiled.counts, compiled.counts.T)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 50)), max_size=40), st.integers(1, 20))
def test_trending_counts_views_in_the_window_whatever_their_arrival_order(
    views: list[tuple[int, int]], window: int
) -> None:
    """Views folded out of time order (several workers' batches) count exactly the views of the window that
    ends at the counter's time, as if they had come in order."""
    counter = TrendingCounter(window)
    counter.ensure(5)
    arrived: list[tuple[int, int]] = []
    for item, ts in views:
        if ts > counter.now - window:  # a view already outside the window is never counted
            arrived.append((item, ts))
        counter.add(item, ts)
        expected = [0] * 5
        for seen_item, seen_ts in arrived:
            if seen_ts > counter.now - window:
                expected[seen_item] += 1
        assert counter.counts[:5].tolist() == expected
