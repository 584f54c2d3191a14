"""librdkafka's mock cluster, a second Kafka implementation for fault-injection tests: it expires a group member
after its session timeout (noida-db 0.2.3 never does), so a SIGKILLed worker's partitions move to the survivors.

The cluster is librdkafka's own test broker (src/rdkafka_mock.c), bundled in the `confluent-kafka` wheel's shared
library and driven here through its C API with ctypes: it runs on threads of this process, listens on loopback and
keeps everything in memory. Its protocol lacks the admin requests (no CreateTopics, DescribeConfigs, DeleteTopics;
its metadata names no controller), so every topic a test needs is created through `rd_kafka_mock_topic_create`
before any client asks for it; a Metadata or Produce request naming an unknown topic auto-creates it with 4 partitions.

`python tests/streams/mock_kafka.py APP_ID [PARTITIONS]` starts one with the topics of a worker of app APP_ID and
prints its bootstrap address until Ctrl-C: a worker started with STREAMREC_BOOTSTRAP_SERVERS=<that> runs on it.
"""

from __future__ import annotations

import ctypes
import importlib.util
import signal
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from streamrec.streams.kafka.admin import default_topics
from streamrec.streams.settings import Settings
from streamrec.streams.worker.item_log import item_signals_topic_name
from streamrec.streams.worker.records import rekeyed_topic_name

_RD_KAFKA_PRODUCER = 0  # rd_kafka_type_t: the handle only hosts the cluster, it never produces
_ERRSTR_SIZE = 512


class MockClusterUnavailable(RuntimeError):
    """The mock cluster cannot be started here (no confluent-kafka, or its library lacks the mock API)."""


@dataclass(frozen=True)
class MockTopic:
    name: str
    partitions: int


def worker_topics(app_id: str, partitions: int, dlq_topic: str = "events-dlq") -> list[MockTopic]:
    """Every topic a worker of `app_id` uses: the project's (`default_topics`) and the app's internal ones (the
    rekeyed events, the profiles changelog, the item-signal log, Faust's assignor leader topic), which a worker would
    otherwise create through CreateTopics."""
    settings = Settings(_env_file=None, partitions=partitions, dlq_topic=dlq_topic)  # type: ignore[call-arg]
    return [
        *(MockTopic(spec.name, spec.partitions) for spec in default_topics(settings)),
        MockTopic(rekeyed_topic_name(app_id), partitions),
        MockTopic(f"{app_id}-profiles-changelog", partitions),
        MockTopic(item_signals_topic_name(app_id), 1),
        MockTopic(f"{app_id}-__assignor-__leader", 1),
    ]


def library_path() -> Path:
    """The librdkafka shared library inside the installed confluent-kafka wheel (confluent_kafka.libs/)."""
    spec = importlib.util.find_spec("confluent_kafka")
    if spec is None or spec.origin is None:
        raise MockClusterUnavailable("confluent-kafka is not installed (pip install -e '.[dev]')")
    site = Path(spec.origin).parent.parent
    found = sorted((site / "confluent_kafka.libs").glob("librdkafka*.so*"))
    if not found:
        raise MockClusterUnavailable(f"no librdkafka*.so* under {site / 'confluent_kafka.libs'}")
    return found[0]


def _load(path: Path) -> ctypes.CDLL:
    try:
        lib = ctypes.CDLL(str(path))
    except OSError as error:
        raise MockClusterUnavailable(f"cannot load {path}: {error}") from error
    signatures: dict[str, tuple[list[type], type | None]] = {
        "rd_kafka_conf_new": ([], ctypes.c_void_p),
        "rd_kafka_conf_set": (
            [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t],
            ctypes.c_int,
        ),
        "rd_kafka_new": ([ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t], ctypes.c_void_p),
        "rd_kafka_destroy": ([ctypes.c_void_p], None),
        "rd_kafka_mock_cluster_new": ([ctypes.c_void_p, ctypes.c_int], ctypes.c_void_p),
        "rd_kafka_mock_cluster_bootstraps": ([ctypes.c_void_p], ctypes.c_char_p),
        "rd_kafka_mock_topic_create": ([ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_int], ctypes.c_int),
        "rd_kafka_mock_group_initial_rebalance_delay_ms": ([ctypes.c_void_p, ctypes.c_int32], None),
        "rd_kafka_mock_cluster_destroy": ([ctypes.c_void_p], None),
        "rd_kafka_err2str": ([ctypes.c_int], ctypes.c_char_p),
    }
    for name, (argtypes, restype) in signatures.items():
        try:
            function = getattr(lib, name)
        except AttributeError as error:
            raise MockClusterUnavailable(f"{path.name} does not export {name}") from error
        function.argtypes = argtypes
        function.restype = restype
    return lib


class MockCluster:
    """A running mock cluster of `brokers` brokers; `close()` (or leaving `mock_cluster`) stops it."""

    def __init__(self, brokers: int = 1, *, initial_rebalance_delay_ms: int | None = None) -> None:
        self._lib = _load(library_path())
        errstr = ctypes.create_string_buffer(_ERRSTR_SIZE)
        conf = self._lib.rd_kafka_conf_new()
        # The hosting handle has no broker of its own to talk to: keep its log to errors.
        self._lib.rd_kafka_conf_set(conf, b"log_level", b"3", errstr, _ERRSTR_SIZE)
        self._rk = self._lib.rd_kafka_new(_RD_KAFKA_PRODUCER, conf, errstr, _ERRSTR_SIZE)  # owns conf from here
        if not self._rk:
            raise MockClusterUnavailable(f"rd_kafka_new failed: {errstr.value.decode(errors='replace')}")
        self._cluster = self._lib.rd_kafka_mock_cluster_new(self._rk, brokers)
        if not self._cluster:
            self._lib.rd_kafka_destroy(self._rk)
            raise MockClusterUnavailable("rd_kafka_mock_cluster_new returned NULL")
        if initial_rebalance_delay_ms is not None:
            self._lib.rd_kafka_mock_group_initial_rebalance_delay_ms(self._cluster, initial_rebalance_delay_ms)
        self.replication_factor = min(3, brokers)
        self.bootstrap: str = self._lib.rd_kafka_mock_cluster_bootstraps(self._cluster).decode()

    def create_topics(self, topics: Iterable[MockTopic]) -> None:
        for topic in topics:
            code = self._lib.rd_kafka_mock_topic_create(
                self._cluster, topic.name.encode(), topic.partitions, self.replication_factor
            )
            if code != 0:
                message = self._lib.rd_kafka_err2str(code).decode()
                raise RuntimeError(f"mock topic {topic.name!r} not created: {message} (error {code})")

    def close(self) -> None:
        if self._cluster:
            self._lib.rd_kafka_mock_cluster_destroy(self._cluster)
            self._cluster = None
        if self._rk:
            self._lib.rd_kafka_destroy(self._rk)
            self._rk = None


@contextmanager
def mock_cluster(topics: Iterable[MockTopic], brokers: int = 1) -> Iterator[MockCluster]:
    cluster = MockCluster(brokers)
    try:
        cluster.create_topics(topics)
        yield cluster
    finally:
        cluster.close()


def main(argv: list[str]) -> None:
    if not argv or len(argv) > 2:
        sys.exit(f"usage: {Path(__file__).name} APP_ID [PARTITIONS]")
    with mock_cluster(worker_topics(argv[0], int(argv[1]) if len(argv) == 2 else 4)) as cluster:
        print(cluster.bootstrap, flush=True)
        signal.sigwait({signal.SIGINT, signal.SIGTERM})


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    main(sys.argv[1:])
