"""Catalog validation in the consumer group: each invalid catalog record is dead-lettered once, not once per worker
(every worker's catalog feed reads the whole catalog and skips invalid records itself)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from streamrec.models.events import ErrorCode, Limits, Rejected, parse_catalog_item
from streamrec.streams.worker.observability import Metrics
from streamrec.streams.worker.outputs import DeadLetters
from streamrec.streams.worker.records import InputRecord, as_read, wall_clock_ms

log = logging.getLogger(__name__)


class CatalogValidator:
    def __init__(
        self,
        *,
        dead_letters: DeadLetters,
        metrics: Metrics,
        limits: Limits,
        last_offsets: dict[tuple[str, int], int],  # consumer lag: last handled offset per partition (shared)
        clock_ms: Callable[[], int] = wall_clock_ms,
    ) -> None:
        self.dead_letters = dead_letters
        self.metrics = metrics
        self.limits = limits
        self.last_offsets = last_offsets
        self.clock_ms = clock_ms

    async def validate_batch(self, records: Sequence[InputRecord]) -> None:
        """Dead-letter the invalid records of a batch of catalog records. Never raises: validation goes on; the
        feed applies valid items independently."""
        for record in records:
            try:
                await self.validate(record)
            except Exception:
                log.exception("catalog validation failed for offset %s", record.offset)
            self.last_offsets[(record.topic, record.partition)] = record.offset

    async def validate(self, record: InputRecord) -> None:
        """Dead-letter an invalid catalog record."""
        self.metrics.events_consumed.labels(topic="catalog").inc()
        try:
            if record.value is None:  # a tombstone removes the item its key names (the feed applies it)
                if not record.key:
                    raise Rejected(ErrorCode.MISSING_FIELD, "a catalog tombstone needs the item id as its key")
                return
            parse_catalog_item(record.value, key=record.key, limits=self.limits)
        except Rejected as rejected:
            self.metrics.events_rejected.labels(topic="catalog", reason=str(rejected.code)).inc()
            incoming = as_read(record, "catalog")
            await self.dead_letters.send(incoming, str(rejected.code), rejected.message, rejected_at_ms=self.clock_ms())
