"""Sparse co-occurrence: exactly the dense counts while the pool holds them all, Misra-Gries' bounds in the rows
that must make room past it, and the same similarity sums as the dense matrix."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from hypothesis import given, settings
from hypothesis import strategies as st

from streamrec.models.cooccurrence import Cooccurrence
from streamrec.models.sparse_cooccurrence import FIRST_BLOCK, SparseCooccurrence

Update = tuple[int, list[int]]


def updates(n_items: int, max_updates: int, max_recent: int) -> st.SearchStrategy[list[Update]]:
    """Consumptions: (item, the rows of the user's recent history; -1 for items the catalog lost)."""
    return st.lists(
        st.tuples(st.integers(0, n_items - 1), st.lists(st.integers(-1, n_items - 1), max_size=max_recent)),
        max_size=max_updates,
    )


def feed(n_items: int, stream: list[Update], max_slots: int = 1 << 20) -> tuple[SparseCooccurrence, Cooccurrence]:
    sparse, dense = SparseCooccurrence(max_slots, capacity=4), Cooccurrence(capacity=4)
    for counts in (sparse, dense):
        counts.ensure(n_items)  # as the recommender does for every catalog row (`add_item`)
    for item, recent in stream:
        sparse.add_pairs(item, recent)
        dense.add_pairs(item, recent)
    return sparse, dense


def listed(sparse: SparseCooccurrence, row: int) -> dict[int, float]:
    neighbours, counts = sparse.row(row)
    return dict(zip(neighbours.tolist(), counts.tolist(), strict=True))


# -- (a) within the budget: exactly the dense counts ----------------------------------------------------------
@settings(deadline=None, max_examples=60)  # the first call compiles (numba)
@given(data=st.data(), n_items=st.integers(1, 40))
def test_counts_equal_the_dense_matrix_within_the_budget(data: st.DataObject, n_items: int) -> None:
    stream = data.draw(updates(n_items, 60, 30))
    sparse, dense = feed(n_items, stream)
    assert sparse.exact
    assert sparse.n_items == dense.n_items == n_items
    np.testing.assert_array_equal(sparse.item_counts[:n_items], dense.item_counts[:n_items])
    for a in range(n_items):
        row = listed(sparse, a)
        assert len(row) == int(sparse.sizes[a])  # no neighbour listed twice
        assert set(row) == set(np.flatnonzero(dense.counts[a, :n_items]).tolist())
        for b in range(n_items):
            assert sparse.pair_count(a, b) == float(dense.counts[a, b])
    assert sparse.pairs == int(np.count_nonzero(dense.counts[:n_items, :n_items]))
    assert sparse.slots >= sparse.pairs * 4 // 3  # tables at most 3/4 full
    assert sparse.version > 0


def test_rows_grow_past_their_first_table_and_the_pool_moves_them() -> None:
    sparse = SparseCooccurrence(1 << 20, capacity=2)
    many = list(range(1, 300))
    sparse.add_pairs(0, many)  # row 0 outgrows its table again and again; the pool grows under it
    sparse.add_pairs(0, many[::2])
    assert sparse.exact and sparse.sizes[0] == 299
    assert listed(sparse, 0) == {b: (2.0 if b % 2 else 1.0) for b in many}
    assert all(listed(sparse, b) == {0: (2.0 if b % 2 else 1.0)} for b in many)
    assert sparse.slots <= sparse.keys.shape[0]


def test_add_pairs_skips_unknown_rows_and_the_item_itself() -> None:
    sparse = SparseCooccurrence(64, capacity=2)
    sparse.add_pairs(3, [-1, 3, 1, -1])  # grows past its capacity by itself
    assert sparse.n_items == 4
    assert sparse.item_counts[:4].tolist() == [0.0, 0.0, 0.0, 1.0]
    assert listed(sparse, 3) == {1: 1.0}
    assert listed(sparse, 1) == {3: 1.0}
    assert sparse.pair_count(3, 3) == 0.0
    assert sparse.pair_count(0, 3) == 0.0  # a row without a table
    assert sparse.sizes[:4].tolist() == [0, 1, 0, 1]
    sparse.add_pairs(3, [])
    assert sparse.item_counts[3] == 2.0
    assert sparse.pair_count(3, 1) == 1.0


# -- (b) past the budget: rows that must grow make room the Misra-Gries way -----------------------------------
@settings(deadline=None, max_examples=80)
@given(data=st.data(), n_items=st.integers(2, 30), budget=st.integers(0, 200))
def test_past_the_budget_counts_keep_misra_gries_bounds(data: st.DataObject, n_items: int, budget: int) -> None:
    stream = data.draw(updates(n_items, 60, 20))
    sparse, dense = feed(n_items, stream, max_slots=budget)
    np.testing.assert_array_equal(sparse.item_counts[:n_items], dense.item_counts[:n_items])
    # Every row may take its first table; only growth is held to the budget.
    assert sparse.slots <= max(budget, 0) + FIRST_BLOCK * n_items
    for a in range(n_items):
        true = dense.counts[a, :n_items].astype(np.float64)
        row = listed(sparse, a)
        assert len(row) == int(sparse.sizes[a]) and all(0 <= b < n_items and b != a for b in row)
        assert all(count > 0 for count in row.values())
        removed = float(true.sum()) - sum(row.values())
        assert removed >= 0
        places = 3 * int(sparse.caps[a]) // 4  # a table makes room only when full
        for b in range(n_items):
            count = sparse.pair_count(a, b)
            assert count == row.get(b, 0.0)
            assert count <= true[b]  # never over-states
            if places:
                assert true[b] - count <= removed / places  # under-states by at most (row total - kept) / places
        if removed == 0:  # nothing ever taken away: the row is exact
            assert row == {b: float(true[b]) for b in np.flatnonzero(true).tolist()}
    if sparse.exact:
        assert all(listed(sparse, a) == _nonzero(dense, a, n_items) for a in range(n_items))


def _nonzero(dense: Cooccurrence, a: int, n_items: int) -> dict[int, float]:
    return {b: float(dense.counts[a, b]) for b in np.flatnonzero(dense.counts[a, :n_items]).tolist()}


def test_past_the_budget_a_frequent_neighbour_survives_a_flood_of_one_off_pairs() -> None:
    # Budget 0: every row keeps its first table of 8 slots (6 places).
    sparse, dense = feed(40, [(0, [1]) for _ in range(20)] + [(0, [j]) for j in range(2, 40)], max_slots=0)
    assert not sparse.exact
    assert dense.counts[0, 1] == 20.0 and dense.counts[0, :40].sum() == 58.0
    row = listed(sparse, 0)
    assert 1 in row and row[1] < 20.0  # the frequent pair stays, its count lowered by the rounds of making room
    assert 20 - row[1] <= (58 - sum(row.values())) / 6
    for j in range(2, 40):  # the reverse direction: one pair each, rows never full
        assert listed(sparse, j) == {0: 1.0}


# -- (c) from_dense --------------------------------------------------------------------------------------------
@settings(deadline=None, max_examples=40)
@given(data=st.data(), n_items=st.integers(1, 25))
def test_from_dense_keeps_every_count(data: st.DataObject, n_items: int) -> None:
    stream = data.draw(updates(n_items, 40, 12))
    _, dense = feed(n_items, stream)
    sparse = SparseCooccurrence.from_dense(dense)
    assert sparse.exact and sparse.n_items == n_items
    assert sparse.version > dense.version  # readers' caches keyed on the version refresh
    np.testing.assert_array_equal(sparse.item_counts[:n_items], dense.item_counts[:n_items])
    for a in range(n_items):
        assert listed(sparse, a) == _nonzero(dense, a, n_items)


def test_from_dense_past_the_budget_keeps_each_rows_largest_counts() -> None:
    dense = Cooccurrence()
    dense.ensure(300)  # more rows than the sparse default capacity
    for j in range(1, 20):
        for _ in range(j):
            dense.add_pairs(0, [j])  # count(0, j) = j
    sparse = SparseCooccurrence.from_dense(dense, max_slots=0)  # first tables only: 6 places
    row = listed(sparse, 0)
    assert set(row) == set(range(14, 20))  # the largest six, loaded first, fill the table
    assert row == {j: float(j) for j in range(14, 20)}
    assert listed(sparse, 5) == {0: 5.0}


def test_from_dense_then_live_pairs_continue_from_the_kept_counts() -> None:
    dense = Cooccurrence()
    dense.ensure(300)
    for _ in range(3):
        dense.add_pairs(299, [0, 1])
    dense.add_pairs(299, [2])
    sparse = SparseCooccurrence.from_dense(dense)
    assert listed(sparse, 299) == {0: 3.0, 1: 3.0, 2: 1.0}
    sparse.add_pairs(299, [5, 0])
    assert sparse.item_counts[299] == 5.0
    assert listed(sparse, 299) == {0: 4.0, 1: 3.0, 2: 1.0, 5: 1.0}
    assert listed(sparse, 5) == {299: 1.0}
    assert listed(sparse, 0) == {299: 4.0}


# -- (d) seed --------------------------------------------------------------------------------------------------
Seed = tuple[list[int], list[list[int]], list[list[int]], list[int]]


@st.composite
def snapshots(draw: st.DrawFn, n_items: int) -> Seed:
    """A batch snapshot: per model item, up to 3 neighbour rows (-1 pads: not in the catalog) and their counts."""
    rows = draw(st.lists(st.integers(0, n_items - 1), min_size=1, max_size=n_items, unique=True))
    neighbours, counts = [], []
    for row in rows:
        choices = [-1, *(b for b in range(n_items) if b != row)]  # no item is its own neighbour
        others = draw(st.lists(st.sampled_from(choices), min_size=3, max_size=3))
        neighbours.append([b if b not in others[:i] or b < 0 else -1 for i, b in enumerate(others)])
        counts.append(draw(st.lists(st.integers(1, 9), min_size=3, max_size=3)))
    item_counts = draw(st.lists(st.integers(0, 9), min_size=len(rows), max_size=len(rows)))
    return rows, neighbours, counts, item_counts


def _seed(counts: SparseCooccurrence | Cooccurrence, snapshot: Seed) -> None:
    rows, neighbours, values, item_counts = snapshot
    counts.seed(
        np.array(rows, dtype=np.intp),
        np.array(neighbours, dtype=np.intp),
        np.array(values, dtype=np.float32),
        np.array(item_counts, dtype=np.float32),
    )


@settings(deadline=None, max_examples=60)
@given(data=st.data(), n_items=st.integers(2, 12))
def test_seed_keeps_the_larger_of_live_and_snapshot_counts(data: st.DataObject, n_items: int) -> None:
    before = data.draw(updates(n_items, 15, 6))
    snapshot = data.draw(snapshots(n_items))
    after = data.draw(updates(n_items, 10, 6))
    sparse, dense = feed(n_items, before)
    live = dense.counts[:n_items, :n_items].copy()
    live_items = dense.item_counts[:n_items].copy()
    version = sparse.version
    for counts in (sparse, dense):
        _seed(counts, snapshot)
    assert sparse.version > version

    # Independently of the dense implementation: per pair, the max of live and snapshot (not the sum).
    expected = live.astype(np.float64)
    expected_items = live_items.copy()
    rows, neighbours, values, item_counts = snapshot
    for a, others, row_values, item_count in zip(rows, neighbours, values, item_counts, strict=True):
        expected_items[a] = max(expected_items[a], item_count)
        for b, value in zip(others, row_values, strict=True):
            if b >= 0:
                expected[a, b] = max(expected[a, b], value)
                expected[b, a] = max(expected[b, a], value)
    np.testing.assert_array_equal(sparse.item_counts[:n_items], expected_items)
    for a in range(n_items):
        for b in range(n_items):
            assert sparse.pair_count(a, b) == expected[a, b]

    for counts in (sparse, dense):  # the same snapshot again (a restarted worker): nothing counted twice
        _seed(counts, snapshot)
    for item, recent in after:  # live counting continues from there, as the dense matrix does
        sparse.add_pairs(item, recent)
        dense.add_pairs(item, recent)
    np.testing.assert_array_equal(sparse.item_counts[:n_items], dense.item_counts[:n_items])
    for a in range(n_items):
        for b in range(n_items):
            assert sparse.pair_count(a, b) == float(dense.counts[a, b])


def test_seed_of_nothing_changes_nothing() -> None:
    sparse, _ = feed(3, [(0, [1, 2])])
    version = sparse.version
    empty = np.zeros(0, dtype=np.intp)
    sparse.seed(empty, np.zeros((0, 3), dtype=np.intp), np.zeros((0, 3), dtype=np.float32), np.zeros(0, np.float32))
    assert sparse.version == version
    assert listed(sparse, 0) == {1: 1.0, 2: 1.0}


# -- (e) accumulate --------------------------------------------------------------------------------------------
@settings(deadline=None, max_examples=60)
@given(data=st.data(), n_items=st.integers(1, 30))
def test_accumulate_gives_the_dense_similarity_sums(data: st.DataObject, n_items: int) -> None:
    sparse, dense = feed(n_items, data.draw(updates(n_items, 40, 15)))
    histories = data.draw(
        st.lists(st.lists(st.integers(0, n_items - 1), min_size=1, max_size=10, unique=True), min_size=1, max_size=3)
    )
    acc = np.zeros(n_items + 5, dtype=np.float32)  # scratch may be longer than the catalog
    counts_before = sparse.counts.copy()
    for history in histories:  # one scratch for all users, reset by the caller at the touched rows only
        rows = np.array(history, dtype=np.intp)
        weights = np.array(
            data.draw(st.lists(st.floats(0.0625, 2.0, width=32), min_size=rows.size, max_size=rows.size)),
            dtype=np.float32,
        )
        touched = sparse.accumulate(rows, weights, acc)
        expected = dense.similarity_sums(rows, weights, np.array([0, rows.size], dtype=np.intp))[0]
        assert acc[:n_items].tobytes() == expected.tobytes()  # bit for bit
        assert not acc[n_items:].any()
        assert len(set(touched.tolist())) == touched.size  # each row once
        assert sorted(touched.tolist()) == np.flatnonzero(expected).tolist()
        acc[touched] = 0.0
        assert not acc.any()
    np.testing.assert_array_equal(sparse.counts, counts_before)


def test_accumulate_adds_onto_what_the_caller_left_in_acc() -> None:
    sparse, _ = feed(3, [(0, [1]), (1, []), (1, [])])  # item counts 1 and 2: norm sqrt(2)
    rows, weights = np.array([0], dtype=np.intp), np.array([2.0], dtype=np.float32)
    acc = np.zeros(3, dtype=np.float32)
    touched = sparse.accumulate(rows, weights, acc)
    assert touched.tolist() == [1]
    first = float(acc[1])
    assert first == np.float32(2.0 * np.float32(1.0 / np.float32(np.sqrt(2.0))))
    touched = sparse.accumulate(rows, weights, acc)  # not reset: the caller's contract, sums on
    assert touched.tolist() == []  # already non-zero, so not reported again
    assert acc[1] == np.float32(2 * first)


def test_accumulate_of_an_empty_history_touches_nothing() -> None:
    sparse, _ = feed(4, [(0, [1, 2, 3])])
    acc = np.zeros(4, dtype=np.float32)
    touched = sparse.accumulate(np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.float32), acc)
    assert touched.size == 0 and not acc.any()


def _dense_row(sparse: SparseCooccurrence, a: int) -> npt.NDArray[np.float32]:
    out = np.zeros(sparse.n_items, dtype=np.float32)
    for b, count in listed(sparse, a).items():
        out[b] = count
    return out


def test_accumulate_with_truncated_rows_uses_only_the_listed_neighbours() -> None:
    sparse, dense = feed(12, [(0, list(range(1, 11))), (0, [1]), (11, [0, 1])], max_slots=0)
    rows = np.array([0, 11], dtype=np.intp)
    weights = np.array([1.0, 0.5], dtype=np.float32)
    acc = np.zeros(12, dtype=np.float32)
    touched = sparse.accumulate(rows, weights, acc)
    truncated = Cooccurrence()
    truncated.ensure(12)
    truncated.item_counts[:12] = dense.item_counts[:12]
    for a in range(12):
        truncated.counts[a, :12] = _dense_row(sparse, a)
    expected = truncated.similarity_sums(rows, weights, np.array([0, 2], dtype=np.intp))[0]
    assert acc.tobytes() == expected.tobytes()
    assert sorted(touched.tolist()) == np.flatnonzero(expected).tolist()
    assert int(sparse.sizes[0]) < np.count_nonzero(dense.counts[0, :12]) == 11
