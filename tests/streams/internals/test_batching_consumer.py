"""The batching consumer's plumbing without Kafka behind it: what its hold releases goes to each topic's handler
in the hold's order, and acknowledging a record twice acks it once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from faust.types import TP

from streamrec.streams.internals.batching import BatchingConsumer, ReadOrderHold


@dataclass(eq=False)
class Rec:
    topic: str
    partition: int = 0
    acked: bool = False

    @property
    def tp(self) -> TP:
        return TP(self.topic, self.partition)


@dataclass
class _App:
    """What `BatchingConsumer._release` reads of the app."""

    batch_handlers: dict[str, Any]


@dataclass
class _Hold:
    """A hold releasing fixed records; notes whether it was asked with partition states."""

    records: list[Rec]
    asked: list[Mapping[tuple[str, int], float]] = field(default_factory=list)
    holding = False

    def ordered(self, topic: str) -> bool:
        return True

    def release(self, caught_up_ms: Mapping[tuple[str, int], float]) -> list[Rec]:
        self.asked.append(caught_up_ms)
        return self.records


def _consumer(hold: Any) -> Any:
    consumer: Any = BatchingConsumer.__new__(BatchingConsumer)  # the release logic only: no Kafka behind it
    consumer._hold = hold
    return consumer


def test_released_records_go_to_their_topics_handlers_in_the_holds_order() -> None:
    records = [Rec("catalog"), Rec("plays"), Rec("ratings"), Rec("plays", 1)]
    hold = _Hold(records)
    app = _App({"plays": "events", "ratings": "events", "catalog": "validate"})
    out = _consumer(hold)._release(app)
    assert out == {"validate": [records[0]], "events": [records[1], records[2], records[3]]}
    assert hold.asked == [{}]  # nothing held back: no partition state asked for


def test_the_default_hold_hands_records_over_as_read() -> None:
    hold = ReadOrderHold()
    records = [Rec("ratings"), Rec("plays"), Rec("ratings", 1)]
    for record in records:
        hold.add(record, 0)  # type: ignore[arg-type]
    assert not hold.holding and hold.release({}) == records and hold.take_all() == []


def test_acknowledging_skips_records_already_acked() -> None:
    acked: list[Rec] = []
    consumer = _consumer(ReadOrderHold())

    def ack(message: Rec) -> bool:
        message.acked = True
        acked.append(message)
        return True

    consumer.ack = ack
    first, second = Rec("plays"), Rec("plays", 1)
    consumer.acknowledge([first])
    consumer.acknowledge([first, second])
    assert acked == [first, second]
