"""The worker's agents: which handler each input topic's batches go to (`streams.worker.ordered_app`)."""

from __future__ import annotations

from faust.types import TopicT

from streamrec.streams.worker.catalog_validation import CatalogValidator
from streamrec.streams.worker.ordered_app import TimeOrderedApp
from streamrec.streams.worker.processor import EventProcessor


def register_agents(
    app: TimeOrderedApp,
    processor: EventProcessor,
    validator: CatalogValidator,
    *,
    input_topics: TopicT,
    rekeyed: TopicT,
    catalog: TopicT,
) -> None:
    """Input topics and re-keyed copies (`processor.handle_batch`), and catalog validation
    (`validator.validate_batch`), all in batches: Faust's per-record agent path is far slower, and a new group's
    first pass over a large catalog would hold up every event meanwhile."""
    app.batch_agent(input_topics, processor.handle_batch)
    app.batch_agent(rekeyed, processor.handle_batch)
    # Validation doesn't depend on the events: outside their time order (nor does it hold them back).
    app.batch_agent(catalog, validator.validate_batch, in_time_order=False)
