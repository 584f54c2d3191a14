"""Views decayed with event time: each item's sum of 2^((t_k - now) / half-life) over its views at t_k.

The decay is common to every item, so the values are kept relative to an anchor time (2^((t_k - anchor) / h))
and their ratio to the largest, what the ranker uses, never needs the clock: learning and reading are O(1) per
item, and the scaled values change only where a view is added. The anchor moves forward before the exponent
grows large (every value is then scaled by the same factor).
"""

from __future__ import annotations

import numpy as np

REBASE_EXPONENT = 256.0  # move the anchor before 2^exponent nears float64's range


class RecencyCounter:
    def __init__(self, half_life_ms: int, capacity: int = 256) -> None:
        if half_life_ms <= 0:
            raise ValueError("half_life_ms must be > 0")
        self.half_life_ms = half_life_ms
        self.values = np.zeros(capacity, dtype=np.float64)
        self.anchor: int | None = None
        self.top = 0.0  # the largest value
        self.version = 0

    def ensure(self, n_items: int) -> None:
        if n_items > self.values.shape[0]:
            grown = np.zeros(max(n_items, 2 * self.values.shape[0]), dtype=np.float64)
            grown[: self.values.shape[0]] = self.values
            self.values = grown

    def add(self, item: int, ts: int) -> None:
        self.ensure(item + 1)
        if self.anchor is None:
            self.anchor = ts
        exponent = (ts - self.anchor) / self.half_life_ms
        if exponent > REBASE_EXPONENT:
            self.values *= 2.0**-exponent
            self.top *= 2.0**-exponent
            self.anchor, exponent = ts, 0.0
        self.values[item] += 2.0**exponent
        self.top = max(self.top, float(self.values[item]))
        self.version += 1

    def scaled(self, item: int) -> float:
        """The item's value over the largest (0 when nothing was viewed)."""
        return float(self.values[item]) / self.top if self.top > 0 else 0.0
