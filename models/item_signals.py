"""What a viewer's event teaches the item side, as a record any worker can apply.

With several workers, each sees only its own viewers' events, yet co-occurrence, popularity and trending are learnt
across all viewers. So a worker does not change its item side as it learns a viewer's event: it emits the event's
`ItemSignal` to one shared log, and every worker's item side is the fold of that log in log order (`ItemSide.apply`).
Every worker then holds the same item state at the same log position, whatever the number of workers.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ItemSignal:
    """One learnt event, as the item side sees it: its time, and for a viewer's first consumption of an item the
    item, the viewer's recent items it pairs with (oldest first) and its feedback on the blend. Searches and repeat
    consumptions only move the trending window on."""

    ts: int
    item_id: str | None = None
    recent: tuple[str, ...] = ()
    feedback: tuple[int, ...] = ()  # the consumption's credit per candidate blend (`blend.Blend.update`)
