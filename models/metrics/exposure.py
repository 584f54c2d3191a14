"""Exposure: how the attention the lists give is spread over the catalog and over the creators.

An item's exposure is how many times it was in the top k of the lists held at evaluation points: a plain
count, not weighted by position (a top-k list shows its k items together). Items never shown count as zero
exposure, so a system that shows a few items only is as unequal as it looks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence, Sized

TOP_FRACTION = 0.01  # the "head" whose share of exposure is reported: the top 1% of the catalog


def gini(values: Sequence[float]) -> float:
    """Gini coefficient of non-negative values: 0 when all are equal, 1 - 1/n when one holds everything (0.0 for
    no values or a zero total)."""
    n = len(values)
    total = math.fsum(values)
    if n == 0 or total <= 0.0:
        return 0.0
    ranked = math.fsum(rank * value for rank, value in enumerate(sorted(values), start=1))
    return min(max((2.0 * ranked) / (n * total) - (n + 1) / n, 0.0), 1.0)


def top_share(values: Sequence[float], fraction: float = TOP_FRACTION) -> float:
    """The share of the total held by the largest ceil(fraction * n) values (at least one; 0.0 for a zero total)."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    total = math.fsum(values)
    if not values or total <= 0.0:
        return 0.0
    head = max(1, math.ceil(fraction * len(values)))
    return math.fsum(sorted(values, reverse=True)[:head]) / total


class ItemExposure:
    """Each item's exposure over the evaluation points, and what it says: the Gini coefficient over the catalog
    and the share of the top 1% of the catalog."""

    def __init__(self, catalog: Sized) -> None:
        self.catalog = catalog  # read at `get`: a catalog that grows counts at its final size
        self.counts: dict[str, int] = {}

    def update(self, items: Iterable[str]) -> None:
        """Count one list's top k."""
        counts = self.counts
        for item in items:
            counts[item] = counts.get(item, 0) + 1

    def values(self) -> list[float]:
        """Per catalog item, its exposure (unexposed items as zeros)."""
        unexposed = max(len(self.catalog) - len(self.counts), 0)
        return [float(c) for c in self.counts.values()] + [0.0] * unexposed

    def gini(self) -> float:
        return gini(self.values())

    def top_share(self, fraction: float = TOP_FRACTION) -> float:
        return top_share(self.values(), fraction)


def total_variation(p: Mapping[str, float], q: Mapping[str, float]) -> float:
    """Half the L1 distance between two distributions over the same keys (missing keys are 0): 0 when equal, 1
    when disjoint."""
    return 0.5 * math.fsum(abs(p.get(key, 0.0) - q.get(key, 0.0)) for key in p.keys() | q.keys())


class CreatorExposure:
    """Each creator's share of the exposure (read from an `ItemExposure`) against their share of consumption (the
    items consumed at the evaluation points). An item with creators C gives 1/|C| to each; items without
    creators are left out of both sides. `get`: the total variation distance between the two distributions (0:
    every creator gets the exposure their consumption would earn; 1: the lists show other creators than the
    ones watched)."""

    def __init__(self, creators_of: Callable[[str], Sequence[str]], exposure: ItemExposure) -> None:
        self.creators_of = creators_of
        self.exposure = exposure
        self.consumed: dict[str, int] = {}  # item -> times consumed at an evaluation point

    def update(self, consumed: str) -> None:
        """One evaluation point: the item the viewer consumed (the list's top k goes to `exposure`)."""
        self.consumed[consumed] = self.consumed.get(consumed, 0) + 1

    def _by_creator(self, counts: Mapping[str, int]) -> dict[str, float]:
        totals: dict[str, float] = {}
        for item, count in counts.items():
            creators = tuple(dict.fromkeys(self.creators_of(item)))
            for creator in creators:
                totals[creator] = totals.get(creator, 0.0) + count / len(creators)
        total = math.fsum(totals.values())
        return {creator: value / total for creator, value in totals.items()} if total > 0 else {}

    def shares(self) -> dict[str, tuple[float, float]]:
        """creator -> (exposure share, consumption share), over every creator seen on either side."""
        exposure, consumption = self._by_creator(self.exposure.counts), self._by_creator(self.consumed)
        return {c: (exposure.get(c, 0.0), consumption.get(c, 0.0)) for c in sorted(exposure.keys() | consumption)}

    def get(self) -> float | None:
        """The total variation distance; None while either side is empty (no creators to compare)."""
        exposure, consumption = self._by_creator(self.exposure.counts), self._by_creator(self.consumed)
        if not exposure or not consumption:
            return None
        return total_variation(exposure, consumption)

    def head_ratio(self, head: int = 10) -> float | None:
        """The exposure share of the `head` most consumed creators over their consumption share (1: exposed as
        much as consumed; above 1: the lists favour them); None while either side is empty."""
        shares = self.shares()
        top = sorted(shares.values(), key=lambda pair: pair[1], reverse=True)[:head]
        consumed = math.fsum(c for _, c in top)
        if not shares or consumed <= 0.0 or self.get() is None:
            return None
        return math.fsum(e for e, _ in top) / consumed
