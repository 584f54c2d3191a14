"""The co-occurrence counts' update paths agree with each other."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from streamrec.models.cooccurrence import Cooccurrence


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
