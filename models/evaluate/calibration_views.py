"""streamrec at another calibration weight, ranking from the state a streamrec system beside it learns.

Calibration re-ranks what the learnt state scores and learning never reads it, so streamrec at two calibration
weights learns the same profiles and item side, bit for bit: a sweep of weights (`streamrec evaluate
--calibration-weights 0,0.6`) learns each event once and ranks it once per weight.
"""

from __future__ import annotations

from dataclasses import replace

from streamrec.models.base import Recommendation, Recommender
from streamrec.models.events import CatalogItem, UserEvent
from streamrec.models.recommender import StreamRecommender


class CalibrationView(Recommender):
    """Ranks `learner`'s state at `calibration_weight`. The evaluator must hand every item and event to `learner`
    before this view ranks (the learner comes first among the systems); the view learns nothing itself."""

    name = "streamrec"

    def __init__(self, learner: StreamRecommender, calibration_weight: float) -> None:
        self.learner = learner
        params = replace(learner.params, calibration_weight=calibration_weight)
        # Never learns: it reads the learner's profiles and item side through its own ranker.
        self._view = StreamRecommender(params, profiles=learner.profiles, item_side=learner.item_side)

    def add_item(self, item: CatalogItem) -> None:
        self._view.follow_item_side()  # the learner added it: rank by candidates if the catalog grew large

    def learn_one(self, event: UserEvent) -> bool:
        return True  # the learner learnt it

    def rank(self, user_id: str, n: int) -> list[Recommendation]:
        self.learner.settle()
        return self._view.rank(user_id, n)
