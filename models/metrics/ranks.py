"""Where the one relevant item of an evaluation point sits in a list, and what that position is worth to each
ranking metric. Ranks are 1-based positions, `None` when the item is absent."""

from __future__ import annotations

import math
from collections.abc import Sequence


def rank_of(item_id: str, items: Sequence[str]) -> int | None:
    """1-based position of `item_id` in `items`, or None when absent."""
    if isinstance(items, list | tuple):  # the scan in C (the first equal item, as below)
        try:
            return items.index(item_id) + 1
        except ValueError:
            return None
    for pos, other in enumerate(items, start=1):
        if other == item_id:
            return pos
    return None


def hit_at_k(rank: int | None, k: int) -> float:
    """1.0 if the relevant item is within the top k, else 0.0."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return 1.0 if rank is not None and 1 <= rank <= k else 0.0


def ndcg_at_k(rank: int | None, k: int) -> float:
    """NDCG@k with one relevant item: 1/log2(rank + 1) within the top k (the ideal DCG is 1), else 0."""
    if hit_at_k(rank, k) == 0.0:
        return 0.0
    assert rank is not None
    return 1.0 / math.log2(rank + 1)


def reciprocal_rank(rank: int | None) -> float:
    """1/rank, 0 if absent. The list length it is cut at is the length of the list it was computed on."""
    if rank is None:
        return 0.0
    if rank < 1:
        raise ValueError(f"ranks are 1-based, got {rank}")
    return 1.0 / rank
