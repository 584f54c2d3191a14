"""The one abstract recommender every system implements (streamrec itself and the evaluation baselines).

river-style: `learn_one` takes one event, `rank` returns one user's list. Both are pure computation.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from streamrec.models.events import CatalogItem, UserEvent


@dataclass(frozen=True, slots=True)
class Reason:
    """Why an item is recommended. `evidence` names what makes `text` checkably true (item ids, a query)."""

    kind: str  # "watched" | "search" | "creator" | "genre" | "trending" | "popular" | "new"
    text: str
    evidence: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Recommendation:
    item_id: str
    rank: int
    score: float
    reasons: tuple[Reason, ...]


def reason_json(reason: Reason) -> dict[str, str]:
    """A reason as published on `recommendations`: its evidence, kind and text in one object."""
    return {**reason.evidence, "kind": reason.kind, "text": reason.text}


def recommendation_json(rec: Recommendation) -> dict[str, Any]:
    """An item of a published list."""
    return {
        "item_id": rec.item_id,
        "rank": rec.rank,
        "score": rec.score,
        "reasons": [reason_json(reason) for reason in rec.reasons],
    }


class Recommender(ABC):
    """A recommender learns from a stream of catalog items and user events and ranks items for a user."""

    name: str = "recommender"

    @abstractmethod
    def add_item(self, item: CatalogItem) -> None:
        """Make a new item recommendable at once, or replace an existing item's metadata."""

    @abstractmethod
    def learn_one(self, event: UserEvent) -> bool:
        """Apply one event. Returns False if it was a duplicate (already applied) and changed nothing."""

    @abstractmethod
    def rank(self, user_id: str, n: int) -> list[Recommendation]:
        """Top-n items for the user, excluding what they already watched; a new user gets the new-user list."""
