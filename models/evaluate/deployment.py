"""streamrec as deployed over N workers, simulated in one process (`streamrec evaluate --workers N`)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence

from streamrec.models.base import Recommendation, Recommender
from streamrec.models.events import CatalogItem, UserEvent
from streamrec.models.item_model import content_only_model
from streamrec.models.item_side import ItemSide
from streamrec.models.item_signals import ItemSignal
from streamrec.models.params import StreamParams
from streamrec.models.recommender import StreamRecommender


class Deployment(Recommender):
    """N workers' streamrec. Viewers are split by `worker_of` (a viewer's input partition, then the worker the group
    assigned it to); each worker keeps its viewers' profiles.

    With `shared_items` (how the worker runs), every worker emits what its viewers' events teach the item side to
    one item-signal log, and every worker's item side is the fold of that log: the same state for all, here one
    `ItemSide`. A signal is folded `hop` events after its event, the log's delay (a worker folds what reached the
    log at the start of each batch). Without it, each worker learns the item side from its own viewers only.
    """

    name = "streamrec"

    def __init__(
        self,
        params: StreamParams,
        workers: int,
        worker_of: Callable[[str], int],
        *,
        hop: int = 0,
        shared_items: bool = True,
    ) -> None:
        if workers < 1 or hop < 0:
            raise ValueError("a deployment needs at least one worker and a delay >= 0")
        self.hop = hop
        self.worker_of = worker_of
        self._log: deque[tuple[int, ItemSignal | None]] = deque()  # (position, signal): not yet folded
        self._events = 0  # events learnt so far: the log position of the next one's signal, less one
        if shared_items:
            self.item_side: ItemSide | None = ItemSide(params, content_only_model())
            self.item_side.position = 0
            self.workers = [
                StreamRecommender(params, item_side=self.item_side, item_signals=self._emit) for _ in range(workers)
            ]
        else:
            self.item_side = None
            self.workers = [StreamRecommender(params) for _ in range(workers)]

    def _emit(self, signal: ItemSignal) -> None:
        self._log[-1] = (self._events, signal)

    def _fold(self, up_to: int) -> None:
        item_side, log = self.item_side, self._log
        while log and log[0][0] <= up_to:
            position, signal = log.popleft()
            if item_side is not None:
                if signal is not None:
                    item_side.apply(signal, position)
                else:
                    item_side.position = position  # an event that taught the item side nothing (a duplicate)

    # -- Recommender -------------------------------------------------------------------------------------------
    def add_item(self, item: CatalogItem) -> None:
        self.add_items([(item, 0)])

    def add_items(self, items: Sequence[tuple[CatalogItem, int]]) -> None:
        if self.item_side is None:
            for worker in self.workers:
                worker.add_items(items)
            return
        self.workers[0].add_items(items)  # the shared item side learns the items once
        for worker in self.workers[1:]:
            worker.follow_item_side()

    def learn_one(self, event: UserEvent) -> bool:
        self._events += 1
        self._log.append((self._events, None))  # the worker's signal for it replaces this (`_emit`)
        learnt = self.workers[self.worker_of(event.user_id)].learn_one(event)
        self._fold(self._events - self.hop)
        return learnt

    def rank(self, user_id: str, n: int) -> list[Recommendation]:
        return self.workers[self.worker_of(user_id)].rank(user_id, n)
