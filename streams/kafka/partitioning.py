"""Which worker serves a viewer: Kafka's default partitioner (murmur2 of the key, as the Java client and aiokafka
compute it) and an even spread of the partitions over the group's workers."""

from __future__ import annotations

from collections.abc import Callable

from aiokafka.partitioner import murmur2


def partition_of(key: bytes, partitions: int) -> int:
    """The partition a keyed record goes to when the producer chooses (Kafka's default partitioner)."""
    return (int(murmur2(key)) & 0x7FFFFFFF) % partitions


def worker_of_viewer(workers: int, partitions: int) -> Callable[[str], int]:
    """viewer id -> index of the worker owning its partition, partitions dealt round-robin over the workers (a
    fresh group's assignment; with more workers than partitions the rest stay idle)."""
    if workers < 1 or partitions < 1:
        raise ValueError("workers and partitions must be >= 1")
    owners: dict[str, int] = {}

    def worker_of(user_id: str) -> int:
        owner = owners.get(user_id)
        if owner is None:
            owner = owners[user_id] = partition_of(user_id.encode(), partitions) % workers
        return owner

    return worker_of
