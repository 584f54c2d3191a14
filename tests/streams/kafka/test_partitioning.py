"""Which worker serves a viewer: the partition Kafka's default partitioner picks for the viewer's key, and the
partitions dealt round-robin over the workers."""

from __future__ import annotations

from collections import Counter

import pytest
from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from streamrec.streams.kafka import partitioning
from streamrec.streams.kafka.partitioning import partition_of, worker_of_viewer

# Kafka's own murmur2 test vectors (the Java client's UtilsTest): key -> signed 32-bit hash.
JAVA_MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


@given(st.binary(max_size=64), st.integers(1, 256))
def test_a_key_goes_where_aiokafkas_default_partitioner_sends_it(key: bytes, partitions: int) -> None:
    chosen = partition_of(key, partitions)
    assert 0 <= chosen < partitions
    every = list(range(partitions))
    assert chosen == DefaultPartitioner()(key, every, every)


@pytest.mark.parametrize("partitions", [1, 4, 7, 12])
def test_partitions_match_the_java_clients_hash(partitions: int) -> None:
    for key, signed in JAVA_MURMUR2.items():
        assert partition_of(key, partitions) == (signed & 0x7FFFFFFF) % partitions, key


@pytest.mark.parametrize(("workers", "partitions"), [(1, 4), (2, 4), (3, 4), (4, 4), (3, 8), (6, 4)])
def test_partitions_are_dealt_round_robin_over_the_workers(workers: int, partitions: int) -> None:
    worker_of = worker_of_viewer(workers, partitions)
    viewers = [f"user-{n}" for n in range(2_000)]
    served = Counter(worker_of(viewer) for viewer in viewers)
    for viewer in viewers:
        assert worker_of(viewer) == partition_of(viewer.encode(), partitions) % workers
    # Every worker with a partition serves viewers; past one worker per partition the rest stay idle.
    assert set(served) == set(range(min(workers, partitions)))


@pytest.mark.parametrize(
    ("workers", "partitions", "dealt"),
    [(2, 4, {0: {0, 2}, 1: {1, 3}}), (3, 4, {0: {0, 3}, 1: {1}, 2: {2}}), (4, 2, {0: {0}, 1: {1}})],
)
def test_each_worker_serves_the_viewers_of_its_dealt_partitions(
    workers: int, partitions: int, dealt: dict[int, set[int]]
) -> None:
    worker_of = worker_of_viewer(workers, partitions)
    served: dict[int, set[int]] = {}
    for viewer in (f"v{n}" for n in range(500)):
        served.setdefault(worker_of(viewer), set()).add(partition_of(viewer.encode(), partitions))
    assert served == dealt


def test_a_viewers_worker_is_computed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bytes] = []

    def counting(key: bytes, partitions: int) -> int:
        calls.append(key)
        return partition_of(key, partitions)

    monkeypatch.setattr(partitioning, "partition_of", counting)
    worker_of = worker_of_viewer(2, 4)
    first = [worker_of(viewer) for viewer in ("a", "b", "a", "a", "b")]
    assert first[0] == first[2] == first[3] and first[1] == first[4]
    assert calls == [b"a", b"b"]


@pytest.mark.parametrize(("workers", "partitions"), [(0, 4), (2, 0), (-1, 1)])
def test_no_workers_or_no_partitions_is_refused(workers: int, partitions: int) -> None:
    with pytest.raises(ValueError):
        worker_of_viewer(workers, partitions)
