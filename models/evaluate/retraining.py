"""streamrec with its item model retrained as it runs (`streamrec evaluate --retrain-every N`): the deployed loop.

A worker serves with the item model `streamrec train` saved last and hot-swaps a newer one when it appears
(`set_item_model`, the worker's model timer). Here the model is retrained every `every` interactions on the
interactions learnt so far, and swapped in before the next event: training sees only events before the swap.
The swap is instant (a worker keeps serving the old model while the new one trains and is picked up).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from streamrec.models.base import Recommendation, Recommender
from streamrec.models.events import CatalogItem, Play, Rating, Search, UserEvent
from streamrec.models.item_model import ItemModel, aligned, train_item_model
from streamrec.models.recommender import StreamRecommender

# (user id, item id, confidence) in stream order, as `train_item_model` takes them.
Interaction = tuple[str, str, float]
Trainer = Callable[[Sequence[Interaction]], ItemModel]


def confidence(event: Rating | Play) -> float:
    """What one consumption adds to its pair in training: a rating its value (as `streamrec train` trains on
    ratings), a play 1."""
    return event.rating if isinstance(event, Rating) else 1.0


class RetrainedLoop(Recommender):
    """`recommender` with its item model retrained by `train` every `every` learnt consumptions (ratings and plays;
    duplicates and searches do not count) on all the consumptions learnt before, turned onto the model it
    replaces (`aligned`, as `streamrec train` saves it) and swapped in at once."""

    name = "streamrec (deployed loop)"

    def __init__(self, recommender: StreamRecommender, every: int, train: Trainer | None = None) -> None:
        if every < 1:
            raise ValueError("the item model is retrained every >= 1 interactions")
        self.recommender = recommender
        self.every = every
        self.train: Trainer = train or (lambda interactions: train_item_model(interactions, now_ms=0))
        self.interactions: list[Interaction] = []
        self.swaps = 0

    def add_item(self, item: CatalogItem) -> None:
        self.recommender.add_item(item)

    def learn_one(self, event: UserEvent) -> bool:
        learnt = self.recommender.learn_one(event)
        if learnt and not isinstance(event, Search):
            self.interactions.append((event.user_id, event.item_id, confidence(event)))
            if len(self.interactions) % self.every == 0:
                model = aligned(self.train(self.interactions), self.recommender.item_model)
                self.recommender.set_item_model(model)
                self.swaps += 1
        return learnt

    def rank(self, user_id: str, n: int) -> list[Recommendation]:
        return self.recommender.rank(user_id, n)
