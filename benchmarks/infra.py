"""What the benchmark phases share: the broker, producing records, the worker under measurement, HTTP and
Prometheus scraping, sampling a value over time, and py-spy. Subprocesses are `ManagedProcess`es, stopped with
SIGTERM and waited for, and the broker with `noida-db down`, never killed (the embedded broker's gaps are listed
in streams/tools/broker.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from streamrec.benchmarks.report import Sample, parse_prometheus
from streamrec.benchmarks.workloads import EventRecord
from streamrec.models.recommender import StreamParams
from streamrec.streams.settings import Settings
from streamrec.streams.tools.worker_process import ROOT as ROOT
from streamrec.streams.tools.worker_process import ManagedProcess as ManagedProcess
from streamrec.streams.tools.worker_process import WorkerProcess
from streamrec.streams.tools.worker_process import free_port as free_port
from streamrec.streams.tools.worker_process import http_get as _http_get
from streamrec.streams.tools.worker_process import settings_env as settings_env

Metrics = dict[str, list[tuple[dict[str, str], float]]]  # name -> [(labels, value)]


def memory_available_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (Linux), else None."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def dir_bytes(path: Path) -> int:
    """Total size of the regular files under `path` (0 if it does not exist)."""
    if not path.exists():
        return 0
    return sum(entry.stat().st_size for entry in path.rglob("*") if entry.is_file() and not entry.is_symlink())


# -- the broker ------------------------------------------------------------------------------------------------


@dataclass
class BenchBroker:
    """The embedded noida-db broker the bench owns (port + data dir), or an external cluster it only uses.

    `fresh()` gives a phase an empty broker (embedded only: stop, delete the data dir, start), which is how
    phases stay independent although the worker's topic names are fixed; on an external cluster it only makes
    sure the topics exist.
    """

    settings: Settings
    embedded: bool
    started: bool = False

    @classmethod
    def embedded_at(cls, port: int, root: Path, partitions: int) -> BenchBroker:
        settings = Settings(
            _env_file=None,
            bootstrap_servers=f"127.0.0.1:{port}",
            broker_dir=root / "broker",
            partitions=partitions,
        )
        return cls(settings, embedded=True)

    @classmethod
    def external(cls, bootstrap: str, partitions: int) -> BenchBroker:
        settings = Settings(_env_file=None, bootstrap_servers=bootstrap, partitions=partitions)
        return cls(settings, embedded=False)

    @property
    def bootstrap(self) -> str:
        return self.settings.bootstrap_servers

    def pid(self) -> int | None:
        """The embedded broker's process id (its CPU is read from /proc); None for an external cluster."""
        if not self.embedded or not self.started:
            return None
        from streamrec.streams.tools import broker

        return broker.status(self.settings).pid

    async def fresh(self) -> None:
        if self.embedded:
            await asyncio.to_thread(self._reset_kafka if self.started else self._restart_empty)
        else:
            from streamrec.streams.kafka import wait_for_broker

            await wait_for_broker(self.bootstrap, timeout_s=30.0)
        await self.ensure_topics()

    def _restart_empty(self) -> None:
        from streamrec.streams.tools import broker

        broker.down(self.settings)
        shutil.rmtree(self.settings.broker_dir, ignore_errors=True)
        broker.up(self.settings, timeout_s=60.0)
        self.started = True

    def _reset_kafka(self) -> None:
        """`noida-db reset kafka --yes`: every topic and group gone at once, the server keeps running. Much
        faster than `down` + `up`, which first saves the whole log as JSON (minutes after the state phase)."""
        from streamrec.streams.tools.broker import noida_binary

        data_dir = str(self.settings.broker_dir.resolve())
        result = subprocess.run(
            [str(noida_binary()), "reset", "kafka", "--yes", "--data-dir", data_dir],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=300,
            check=False,
        )
        if result.returncode != 0:
            output = "\n".join(line for line in (result.stdout + result.stderr).splitlines() if "GLIBC_" not in line)
            raise RuntimeError(f"noida-db reset kafka failed ({result.returncode}): {output}")

    async def ensure_topics(self) -> None:
        from streamrec.streams.kafka import create_topics, default_topics

        await create_topics(self.bootstrap, default_topics(self.settings))

    def stop(self) -> None:
        """Empty and stop the embedded broker (`reset kafka`, then `noida-db down`: nothing left to save) and
        delete its data; no-op if external."""
        if not self.embedded or not self.started:
            return
        from streamrec.streams.tools import broker

        try:
            self._reset_kafka()
        finally:
            broker.down(self.settings, timeout_s=120.0)
            shutil.rmtree(self.settings.broker_dir, ignore_errors=True)
            self.started = False


# -- producing -------------------------------------------------------------------------------------------------


async def produce(
    bootstrap: str,
    records: Sequence[EventRecord],
    *,
    on_progress: Callable[[int], None] | None = None,
    chunk: int = 5_000,
) -> float:
    """Send every record (acks=all), flushing per chunk; returns the seconds it took."""
    from streamrec.streams.kafka import JsonProducer

    started = time.perf_counter()
    async with JsonProducer(bootstrap, linger_ms=20, client_id="streamrec-bench") as producer:
        for begin in range(0, len(records), chunk):
            for record in records[begin : begin + chunk]:
                await producer.send(record.topic, record.value, key=record.key)
            await producer.flush()
            if on_progress is not None:
                on_progress(min(begin + chunk, len(records)))
    return time.perf_counter() - started


async def produce_catalog(bootstrap: str, records: Sequence[tuple[str, bytes]]) -> None:
    from streamrec.streams.kafka import JsonProducer

    async with JsonProducer(bootstrap, linger_ms=20, client_id="streamrec-bench") as producer:
        for key, value in records:
            await producer.send("catalog", value, key=key)


# -- HTTP and metrics ------------------------------------------------------------------------------------------


async def http_get(url: str, timeout_s: float = 5.0) -> tuple[int, bytes]:
    """(status, body); status 0 when nothing answers."""
    status, _, body = await asyncio.to_thread(_http_get, url, timeout_s)
    return status, body


async def scrape(base_url: str) -> Metrics | None:
    """The worker's /metrics, parsed; None when it does not answer."""
    status, body = await http_get(f"{base_url}/metrics")
    if status != 200:
        return None
    return parse_prometheus(body.decode("utf-8", "replace"))


def metric_sum(metrics: Metrics | None, name: str, **labels: str) -> float | None:
    """Sum of the series of `name` whose labels include `labels`; None if there is no such series."""
    if metrics is None or name not in metrics:
        return None
    values = [value for series, value in metrics[name] if all(series.get(k) == v for k, v in labels.items())]
    return sum(values) if values else None


async def wait_for(
    check: Callable[[], Awaitable[bool]],
    *,
    timeout_s: float,
    interval_s: float = 0.25,
    alive: Callable[[], bool] | None = None,
    what: str = "condition",
) -> float:
    """Poll `check` until it is true; returns the seconds waited. Raises TimeoutError, or RuntimeError if
    `alive()` turns false (the process we wait for died)."""
    started = time.perf_counter()
    while True:
        if await check():
            return time.perf_counter() - started
        if alive is not None and not alive():
            raise RuntimeError(f"the process died while waiting for {what}")
        if time.perf_counter() - started > timeout_s:
            raise TimeoutError(f"{what} not reached in {timeout_s:.0f} s")
        await asyncio.sleep(interval_s)


class Sampler:
    """Calls `probe()` every `interval_s` in a background task and keeps (monotonic seconds, value) samples."""

    def __init__(self, probe: Callable[[], Awaitable[float | None]], interval_s: float) -> None:
        self._probe = probe
        self._interval_s = interval_s
        self.samples: list[Sample] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> Sampler:
        self._task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        while True:
            began = time.monotonic()
            try:
                value = await self._probe()
            except Exception:  # a missed sample is not fatal; the gap shows in the samples
                value = None
            if value is not None:
                self.samples.append(Sample(time.monotonic(), float(value)))
            await asyncio.sleep(max(self._interval_s - (time.monotonic() - began), 0.0))

    async def stop(self) -> list[Sample]:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        return self.samples

    @property
    def last(self) -> float | None:
        return self.samples[-1].value if self.samples else None


# -- profiling -------------------------------------------------------------------------------------------------


def py_spy_binary() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    if beside.exists():
        return str(beside)
    return shutil.which("py-spy")


def start_py_spy(pid: int, out: Path, duration_s: int, log_path: Path) -> ManagedProcess | None:
    """`py-spy record` (raw collapsed stacks) on `pid` for `duration_s`; None if py-spy is not installed."""
    binary = py_spy_binary()
    if binary is None:
        return None
    argv = [
        binary,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(duration_s),
        "--rate",
        "100",
        "--format",
        "raw",
        "--nonblocking",
        "--output",
        str(out),
    ]
    return ManagedProcess(argv, log_path).start()


async def wait_exit(process: ManagedProcess, timeout_s: float) -> int | None:
    """Wait for a process that ends by itself (py-spy); stop it if it overruns."""
    deadline = time.monotonic() + timeout_s
    while process.alive() and time.monotonic() < deadline:
        await asyncio.sleep(0.25)
    code = process.returncode()
    await process.stop_async(10.0)
    return code


def clean_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)


# -- the worker ------------------------------------------------------------------------------------------------

INPUT_TOPICS = ("ratings", "plays", "searches")
CONSUMED = "streamrec_events_consumed_total"
READ = "streamrec_records_read_total"  # counted as fetched: before the time-ordered merge holds them
# Events covered by published lists. A list is coalesced (one per user per batch, its `event_ids` naming all
# of the user's events in the batch), so `streamrec_lists_published_total` counts fewer lists than events;
# the worker observes its freshness histogram once per event a published list reflects, so this count is
# the events covered.
COVERED = "streamrec_freshness_seconds_count"


def cooccurrence_bytes(n_items: int, initial_capacity: int = 256) -> int:
    """Peak size of the worker's co-occurrence once `n_items` items have arrived one by one: the dense float32
    matrix (`models.cooccurrence.Cooccurrence.ensure` doubles its capacity: capacity² × 4 bytes) up to
    `exact_max_items`, and past it that matrix as it was at the switch plus the sparse counts' pool
    (`models.sparse_cooccurrence`: at most twice `cooccurrence_slots` slots of 8 bytes, a moved table's old
    slots included) and its per-row index (capacity × 24 bytes)."""
    params = StreamParams()
    capacity = initial_capacity
    while capacity < min(n_items, params.exact_max_items):
        capacity *= 2  # items arrive one by one: `ensure(count)` grows to max(count, 2 × size) = 2 × size
    dense = capacity * capacity * 4
    if n_items <= params.exact_max_items:
        return dense
    rows = max(params.exact_max_items, initial_capacity)  # the sparse lists start at the dense matrix's rows
    while rows < n_items:
        rows *= 2
    return dense + 2 * params.cooccurrence_slots * 8 + rows * 24


def feasible_catalog(n_items: int, memory_budget_bytes: int | None) -> str | None:
    """None if a worker can hold a catalog of `n_items` within the budget, else why not."""
    needed = cooccurrence_bytes(n_items)
    if memory_budget_bytes is not None and needed > memory_budget_bytes:
        return (
            f"the worker's co-occurrence (models/cooccurrence.py, models/sparse_cooccurrence.py) would need "
            f"{needed / 2**30:,.1f} GiB for {n_items:,} items, over the budget of "
            f"{memory_budget_bytes / 2**30:,.1f} GiB (half the available memory; --memory-budget-gb overrides)"
        )
    return None


async def all_committed(settings: Settings) -> bool:
    """The worker's group (its app id) has committed offsets at the end of every input partition: every input
    record handled, its batch over (lists out, histograms observed)."""
    from streamrec.streams.kafka.groups import committed_offsets, end_offsets

    ends = await end_offsets(settings.bootstrap_servers, INPUT_TOPICS)
    committed = await committed_offsets(settings.bootstrap_servers, settings.app_id, INPUT_TOPICS)
    return all(committed.get(tp, -1) >= end for tp, end in ends.items())


class BenchWorker(WorkerProcess):
    """The streamrec worker under measurement (`python -m streamrec.streams.cli worker`, log level warning) and the
    /metrics reads the phases need."""

    def __init__(
        self,
        settings: Settings,
        log_path: Path,
        *,
        memory_limit_bytes: int | None = None,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(settings, log_path, log_level="warning", memory_limit_bytes=memory_limit_bytes)
        self.extra_env = dict(extra_env or {})  # e.g. STREAMREC_FAUST_* overrides of Faust's own settings

    def environment(self) -> dict[str, str]:
        return {**super().environment(), **self.extra_env}

    async def metrics(self) -> Metrics | None:
        return await scrape(self.base_url)

    async def consumed(self) -> float | None:
        """Input-topic records the worker has taken in (catalog validation excluded)."""
        metrics = await self.metrics()
        if metrics is None:
            return None
        return sum(metric_sum(metrics, CONSUMED, topic=topic) or 0.0 for topic in INPUT_TOPICS)

    async def read(self) -> float | None:
        """Input-topic records the worker has read from Kafka (held for their time-ordered turn, then consumed;
        catalog records excluded)."""
        metrics = await self.metrics()
        if metrics is None:
            return None
        return sum(metric_sum(metrics, READ, topic=topic) or 0.0 for topic in INPUT_TOPICS)

    async def covered(self) -> float | None:
        """Events reflected by the lists the worker has published (see `COVERED`)."""
        metrics = await self.metrics()
        return None if metrics is None else metric_sum(metrics, COVERED) or 0.0

    async def healthy(self) -> bool:
        status, _ = await self.get("/health", timeout_s=5.0)
        return status == 200


def worker_settings(base: Settings, root: Path, app_id: str, *, model_dir: Path | None = None) -> Settings:
    return base.model_copy(
        update={
            "app_id": app_id,
            "data_dir": root / "data",
            "model_dir": model_dir if model_dir is not None else root / "models",
            "cache_dir": root / "cache",
            "web_port": free_port(),
        }
    )


async def launch_worker(
    settings: Settings,
    log_path: Path,
    *,
    catalog_size: int,
    exact_catalog: bool,
    timeout_s: float,
    memory_limit_bytes: int | None,
    extra_env: Mapping[str, str] | None = None,
) -> tuple[BenchWorker, float]:
    """Start the worker and wait until /metrics shows the whole catalog (`streamrec_catalog_items`); returns it
    with the seconds that took. On failure the worker is stopped and the error carries its log tail."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.model_dir.mkdir(parents=True, exist_ok=True)
    run = BenchWorker(settings, log_path, memory_limit_bytes=memory_limit_bytes, extra_env=extra_env).start()

    async def catalog_loaded() -> bool:
        items = metric_sum(await run.metrics(), "streamrec_catalog_items")
        if items is None:
            return False
        return items == catalog_size if exact_catalog else items >= catalog_size

    try:
        waited = await wait_for(
            catalog_loaded, timeout_s=timeout_s, interval_s=0.25, alive=run.alive, what="catalog loaded"
        )
    except (TimeoutError, RuntimeError) as error:
        code = run.returncode()
        tail = run.log_tail(25)
        await run.stop_async()
        raise RuntimeError(f"{error}; worker exited with {code}; log {run.log_path}:\n{tail}") from error
    return run, waited
