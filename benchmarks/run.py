"""One benchmark run: per catalog, the same pre-produced events through the raw baseline, a Faust null agent and
the full worker; then freshness, state and live costs; then the ANN and candidate-ranking comparisons. Results
are written after every phase (a failed or interrupted run keeps what it measured).
"""

from __future__ import annotations

import asyncio
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from streamrec.benchmarks import infra
from streamrec.benchmarks.report import live_rate, ratio, write_results
from streamrec.benchmarks.workloads import (
    CATALOG_NAMES,
    SYNTHETIC_100K,
    CatalogSpec,
    EventGenerator,
    catalog_for,
    catalog_records,
)

PHASES = ("raw", "faust", "pipeline", "freshness", "sweep", "state", "live", "ann")


@dataclass(frozen=True, slots=True)
class BenchConfig:
    events: int = 200_000
    only: frozenset[str] = frozenset(PHASES)
    catalogs: tuple[str, ...] = CATALOG_NAMES
    out: Path = Path("docs/bench")
    partitions: int = 4
    external_bootstrap: str | None = None  # use this cluster instead of starting the embedded broker
    broker_port: int = 0  # 0: a free port
    work_dir: Path | None = None  # broker data, worker state dirs, logs; default: a new /tmp/bench-* dir
    users: int | None = None  # default events // 20
    cache_dir: Path = Path(".streamrec/cache")
    model_dir: Path | None = None  # trained item model artifacts for the workers; default: content-only
    pipeline_seconds: float = 120.0
    faust_seconds: float = 300.0
    start_timeout_s: float = 180.0
    freshness_rate: float = 5_000.0
    freshness_seconds: float = 60.0
    freshness_grace_s: float = 30.0
    freshness_warmup: int = 200
    # Also measure at this share of the pipeline rate measured in the run (a load it can sustain, so the
    # percentiles are latencies rather than queueing behind a growing backlog); 0 turns it off.
    freshness_sustainable_share: float = 0.7  # of the rate the worker covered live in the first run
    # Freshness at each of these rates (shorter runs): where the latency target holds, as a curve.
    sweep_rates: tuple[float, ...] = (250.0, 500.0, 1_000.0, 2_000.0, 3_000.0)
    sweep_seconds: float = 20.0
    state_users: int = 100_000
    state_events_per_user: int = 2
    state_mode: str = "auto"  # auto | events | changelog
    state_seconds: float = 900.0
    ann_queries: int = 500
    ann_dims: tuple[int, ...] = (64, 96)
    memory_budget_bytes: int | None = None  # default: half of MemAvailable
    profile_seconds: int = 0  # py-spy the pipeline worker for this long (0: off)
    seed: int = 0
    keep_work_dir: bool = False
    command: str = "streamrec bench"


@dataclass
class Ui:
    console: Console
    progress: Progress
    tasks: dict[str, TaskID] = field(default_factory=dict)

    def step(self, key: str, description: str, completed: int = 0, total: float | None = None) -> None:
        if key not in self.tasks:
            self.tasks[key] = self.progress.add_task(description, total=total, completed=completed)
        else:
            self.progress.update(self.tasks[key], description=description, completed=completed, total=total)

    def done(self, key: str, description: str) -> None:
        if key not in self.tasks:
            self.tasks[key] = self.progress.add_task(description, total=1, completed=1)
            return
        task = next((t for t in self.progress.tasks if t.id == self.tasks[key]), None)
        total = task.total if task is not None and task.total else 1
        self.progress.update(self.tasks[key], description=description, completed=total, total=total)
        self.progress.stop_task(self.tasks[key])

    def finish(self, *keys: str) -> None:
        """Stop the elapsed-time clock of finished tasks."""
        for key in keys:
            if key in self.tasks:
                self.progress.stop_task(self.tasks[key])

    def counter(self, key: str, description: str, total: float) -> Callable[[int], None]:
        self.step(key, description, 0, total)
        return lambda n: self.progress.update(self.tasks[key], completed=n)

    def staged(self, key: str, prefix: str) -> Callable[[str, int, int], None]:
        return lambda stage, n, total: self.step(key, f"{prefix}: {stage}", n, total)


def _meta(config: BenchConfig, broker: infra.BenchBroker) -> dict[str, Any]:
    import aiokafka
    import faust
    import numpy

    return {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": config.command,
        "events": config.events,
        "partitions": config.partitions,
        "catalogs": list(config.catalogs),
        "phases": [phase for phase in PHASES if phase in config.only],
        "broker": "embedded noida-db (a fresh one per phase group)" if broker.embedded else broker.bootstrap,
        "freshness_rate": config.freshness_rate,
        "freshness_seconds": config.freshness_seconds,
        "cpu_count": os.cpu_count(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "versions": {
            "faust-streaming": faust.__version__,
            "aiokafka": aiokafka.__version__,
            "numpy": numpy.__version__,
        },
        "git": _git_head(),
    }


def _git_head() -> str | None:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=infra.ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=infra.ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{head}{' (with uncommitted changes)' if dirty else ''}"


async def _guard(what: str, ui: Ui, coroutine: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    """Run a phase; a failure becomes its result (status failed + reason), not the end of the run."""
    try:
        return await coroutine
    except asyncio.CancelledError:
        raise
    except Exception as error:
        ui.console.print(f"[red]✗ {what} failed:[/red] {error}")
        return {"status": "failed", "reason": f"{type(error).__name__}: {str(error)[:2000]}"}


def _skipped(reason: str) -> dict[str, Any]:
    return {"status": "skipped", "reason": reason}


async def _throughput(
    config: BenchConfig,
    broker: infra.BenchBroker,
    spec: CatalogSpec,
    root: Path,
    ui: Ui,
    scenario: dict[str, Any],
    infeasible: str | None,
    save: Callable[[], None],
) -> None:
    from streamrec.benchmarks import throughput
    from streamrec.streams.kafka.groups import end_offsets

    key = f"{spec.name}:produce"
    await broker.fresh()
    await infra.produce_catalog(broker.bootstrap, catalog_records(spec.items))
    users = config.users or max(config.events // 20, 1_000)
    generator = EventGenerator(spec.items, n_users=users, seed=config.seed)
    records = generator.events(config.events, base_ts_ms=int(time.time() * 1000) - config.events)
    produce_s = await infra.produce(
        broker.bootstrap, records, on_progress=ui.counter(key, f"{spec.name}: producing events", len(records))
    )
    total = sum((await end_offsets(broker.bootstrap, infra.INPUT_TOPICS)).values())
    scenario.update({"events": len(records), "events_in_topics": total, "users": users, "produce_seconds": produce_s})
    ui.done(key, f"{spec.name}: produced {len(records):,} events in {produce_s:.1f} s")
    ui.finish(key)
    exact = broker.embedded

    if "raw" in config.only:
        progress = ui.counter(f"{spec.name}:raw", f"{spec.name}: raw aiokafka", total)
        scenario["raw"] = await _guard(
            "raw", ui, throughput.raw_baseline(broker.bootstrap, total, on_progress=progress)
        )
        progress = ui.counter(f"{spec.name}:sgd", f"{spec.name}: raw + numpy SGD", total)
        item_ids = [item.item_id for item in spec.items]
        scenario["raw_sgd"] = await _guard(
            "raw+sgd", ui, throughput.raw_baseline(broker.bootstrap, total, sgd_items=item_ids, on_progress=progress)
        )
        ui.finish(f"{spec.name}:raw", f"{spec.name}:sgd")
        save()
    if "faust" in config.only:
        null_agents = (  # stock Faust, then streamrec's consumer in Faust (the worker's ceiling)
            ("faust_null", "faust", "Faust null agent", False),
            ("batching_null", "batching", "streamrec's consumer, null handler", True),
        )
        for phase, key, label, batching in null_agents:
            progress = ui.counter(f"{spec.name}:{key}", f"{spec.name}: {label}", total)
            scenario[phase] = await _guard(
                label,
                ui,
                throughput.faust_null(
                    broker.bootstrap,
                    total,
                    root,
                    partitions=config.partitions,
                    max_seconds=config.faust_seconds,
                    start_timeout_s=config.start_timeout_s,
                    batching=batching,
                    on_progress=progress,
                ),
            )
            ui.finish(f"{spec.name}:{key}")
            save()
    if "pipeline" in config.only:
        if infeasible:
            scenario["pipeline"] = _skipped(infeasible)
        else:
            progress = ui.counter(f"{spec.name}:pipeline", f"{spec.name}: streamrec worker", total)
            scenario["pipeline"] = await _guard(
                "pipeline",
                ui,
                throughput.pipeline(
                    broker.settings,
                    total,
                    spec.size,
                    root,
                    exact_catalog=exact,
                    max_seconds=config.pipeline_seconds,
                    start_timeout_s=config.start_timeout_s,
                    memory_limit_bytes=_worker_memory_limit(config),
                    broker_pid=await asyncio.to_thread(broker.pid),
                    model_dir=config.model_dir,
                    profile_seconds=config.profile_seconds,
                    on_progress=progress,
                ),
            )
            ui.finish(f"{spec.name}:pipeline")
        save()
    rates = {
        name: (scenario.get(name) or {}).get("events_per_s")
        for name in ("raw", "raw_sgd", "faust_null", "batching_null", "pipeline")
    }
    scenario["ratios"] = {
        "pipeline_vs_raw": ratio(rates["pipeline"], rates["raw"]),
        "pipeline_vs_raw_sgd": ratio(rates["pipeline"], rates["raw_sgd"]),
        "pipeline_vs_faust_null": ratio(rates["pipeline"], rates["faust_null"]),
        "faust_null_vs_raw": ratio(rates["faust_null"], rates["raw"]),
        "pipeline_vs_batching_null": ratio(rates["pipeline"], rates["batching_null"]),
        "batching_null_vs_raw": ratio(rates["batching_null"], rates["raw"]),
        "raw_sgd_vs_raw": ratio(rates["raw_sgd"], rates["raw"]),
    }


def _memory_budget(config: BenchConfig) -> int | None:
    if config.memory_budget_bytes is not None:
        return config.memory_budget_bytes
    available = infra.memory_available_bytes()
    return None if available is None else available // 2


def _worker_memory_limit(config: BenchConfig) -> int | None:
    """Address-space limit for workers: the budget plus room for the interpreter, Faust and RocksDB, so an
    oversized allocation fails in the worker instead of pushing a shared machine into the OOM killer."""
    budget = _memory_budget(config)
    return None if budget is None else budget + 4 * 2**30


async def run_bench(config: BenchConfig, console: Console | None = None) -> dict[str, Any]:
    """Every phase of `config.only`, with rich progress on `console`; the results as written to `config.out`.

    The worker's topic names are fixed, so with the embedded broker every group of phases gets an empty broker
    (`BenchBroker.fresh`): the throughput phases share one (the same events), freshness and state each get their
    own. Every worker has its own app id (consumer group, changelog topics) and state dir. With an external
    cluster (`--external`) nothing is deleted: the phases then read whatever the input topics hold, and the
    catalog wait accepts at least the catalog's size."""
    console = console or Console()
    root = config.work_dir or Path(tempfile.mkdtemp(prefix="bench-", dir="/tmp"))
    root.mkdir(parents=True, exist_ok=True)
    if config.external_bootstrap:
        broker = infra.BenchBroker.external(config.external_bootstrap, config.partitions)
    else:
        port = config.broker_port or infra.free_port()
        broker = infra.BenchBroker.embedded_at(port, root, config.partitions)
    results: dict[str, Any] = {"meta": _meta(config, broker), "scenarios": []}
    results["meta"]["work_dir"] = str(root)
    budget = _memory_budget(config)

    def save() -> None:
        results["meta"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
        write_results(results, config.out)

    console.print(
        f"[bold]streamrec bench[/bold]: {', '.join(p for p in PHASES if p in config.only)} on "
        f"{', '.join(config.catalogs)}; broker {broker.bootstrap}; work dir {root}; results → {config.out}/"
    )
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
    ui = Ui(console, progress)
    try:
        with progress:
            for name in config.catalogs:
                spec = await asyncio.to_thread(catalog_for, name, config.cache_dir, config.seed)
                scenario: dict[str, Any] = {
                    "catalog": spec.name,
                    "catalog_items": spec.size,
                    "catalog_source": spec.source,
                }
                results["scenarios"].append(scenario)
                infeasible = infra.feasible_catalog(spec.size, budget)
                if config.only & {"raw", "faust", "pipeline"}:
                    try:
                        await _throughput(config, broker, spec, root, ui, scenario, infeasible, save)
                    except Exception as error:  # e.g. the broker could not be reset: go on with the next phases
                        console.print(f"[red]✗ {spec.name} throughput phases failed:[/red] {error}")
                        scenario["error"] = f"{type(error).__name__}: {str(error)[:2000]}"
                    save()
                if "freshness" in config.only:
                    scenario["freshness"] = await _freshness(
                        config, broker, spec, root, ui, infeasible, config.freshness_rate, "fresh"
                    )
                    save()
                    # The second run's load: a share of what the worker covered live in the first (its backlog
                    # rate is no guide: on a backlog many events share a list, on a live stream few do).
                    covered_live = live_rate(scenario["freshness"].get("covered_samples") or [])
                    if config.freshness_sustainable_share > 0 and covered_live and not infeasible:
                        rate = max(round(covered_live * config.freshness_sustainable_share, 1), 1.0)
                        scenario["freshness_sustainable"] = await _freshness(
                            config, broker, spec, root, ui, infeasible, rate, "fresh-sustainable"
                        )
                        scenario["freshness_sustainable"]["live_rate_covered"] = covered_live
                        scenario["freshness_sustainable"]["share_of_live_rate"] = config.freshness_sustainable_share
                        save()
                if "sweep" in config.only:
                    scenario["freshness_sweep"] = []
                    for rate in config.sweep_rates:
                        scenario["freshness_sweep"].append(
                            await _freshness(
                                config,
                                broker,
                                spec,
                                root,
                                ui,
                                infeasible,
                                rate,
                                f"sweep-{rate:g}",
                                duration_s=config.sweep_seconds,
                            )
                        )
                        save()
                if "state" in config.only:
                    scenario["state"] = await _state(config, broker, spec, root, ui, infeasible, scenario)
                    save()
                if "live" in config.only:
                    ui.step("live", f"{spec.name} live costs: starting", 0, None)
                    scenario["live"] = await _guard(
                        "live costs",
                        ui,
                        asyncio.to_thread(
                            _live,
                            spec,
                            config,
                            partial(_note, ui, "live", f"{spec.name} live costs"),
                        ),
                    )
                    ui.done("live", f"{spec.name} live costs: done")
                    save()
            if "ann" in config.only:
                spec = await asyncio.to_thread(catalog_for, SYNTHETIC_100K, config.cache_dir, config.seed)
                ui.step("ann", "ANN: starting", 0, None)
                results["ann"] = await _guard(
                    "ann",
                    ui,
                    asyncio.to_thread(_ann, spec, config, lambda text: ui.step("ann", f"ANN: {text}", 0, None)),
                )
                ui.done("ann", "ANN: done")
                save()
                ui.step("candidates", "candidate ranking: starting", 0, None)
                results["candidate_ranking"] = await _guard(
                    "candidate ranking",
                    ui,
                    asyncio.to_thread(
                        _candidates,
                        spec,
                        config,
                        lambda text: ui.step("candidates", f"candidate ranking: {text}", 0, None),
                    ),
                )
                ui.done("candidates", "candidate ranking: done")
                save()
    finally:
        await asyncio.to_thread(broker.stop)
        save()
        if not config.keep_work_dir and config.work_dir is None:
            infra.clean_dir(root)
            root.rmdir()
    return results


def _ann(spec: CatalogSpec, config: BenchConfig, note: Callable[[str], None]) -> dict[str, Any]:
    from streamrec.benchmarks.ann import run_ann

    return run_ann(spec, dims=config.ann_dims, n_queries=config.ann_queries, seed=config.seed, on_progress=note)


def _note(ui: Ui, key: str, prefix: str, text: str) -> None:
    ui.step(key, f"{prefix}: {text}", 0, None)


def _live(spec: CatalogSpec, config: BenchConfig, note: Callable[[str], None]) -> dict[str, Any]:
    from streamrec.benchmarks.live_costs import run_live_costs

    return run_live_costs(spec, seed=config.seed, on_progress=note)


def _candidates(spec: CatalogSpec, config: BenchConfig, note: Callable[[str], None]) -> dict[str, Any]:
    from streamrec.benchmarks.candidates import run_candidate_ranking

    return run_candidate_ranking(spec, n_lists=config.ann_queries, seed=config.seed, on_progress=note)


async def _freshness(
    config: BenchConfig,
    broker: infra.BenchBroker,
    spec: CatalogSpec,
    root: Path,
    ui: Ui,
    infeasible: str | None,
    rate: float,
    key: str,
    *,
    duration_s: float | None = None,
) -> dict[str, Any]:
    from streamrec.benchmarks.freshness import freshness

    if infeasible:
        return _skipped(infeasible)

    async def phase() -> dict[str, Any]:
        await broker.fresh()
        await infra.produce_catalog(broker.bootstrap, catalog_records(spec.items))
        return await freshness(
            broker.settings,
            spec,
            root,
            rate=rate,
            duration_s=config.freshness_seconds if duration_s is None else duration_s,
            grace_s=config.freshness_grace_s,
            warmup_events=config.freshness_warmup,
            start_timeout_s=config.start_timeout_s,
            memory_limit_bytes=_worker_memory_limit(config),
            exact_catalog=broker.embedded,
            broker_pid=await asyncio.to_thread(broker.pid),
            seed=config.seed,
            on_progress=ui.staged(f"{spec.name}:{key}", f"{spec.name}: freshness at {rate:,.0f}/s"),
        )

    result = await _guard("freshness", ui, phase())
    ui.done(f"{spec.name}:{key}", f"{spec.name}: freshness at {rate:,.0f}/s {result.get('status')}")
    return result


async def _state(
    config: BenchConfig,
    broker: infra.BenchBroker,
    spec: CatalogSpec,
    root: Path,
    ui: Ui,
    infeasible: str | None,
    scenario: dict[str, Any],
) -> dict[str, Any]:
    from streamrec.benchmarks import state

    key = f"{spec.name}:state"
    ui.step(key, f"{spec.name}: state: profile sizes in-process", 0, None)
    out: dict[str, Any] = {}
    out["profile_bytes"] = await _guard(
        "profile sizes", ui, asyncio.to_thread(state.profile_sizes, spec, config.cache_dir, seed=config.seed)
    )
    if infeasible:
        out.update(_skipped(infeasible))
        out["worker_status"] = "skipped"
        ui.done(key, f"{spec.name}: state: profile sizes only (worker skipped)")
        return out
    pipeline_rate = (scenario.get("pipeline") or {}).get("events_per_s")
    mode = state.choose_mode(
        config.state_mode, config.state_users, config.state_events_per_user, pipeline_rate, config.state_seconds
    )

    async def phase() -> dict[str, Any]:
        await broker.fresh()
        await infra.produce_catalog(broker.bootstrap, catalog_records(spec.items))
        return await state.rebuild(
            broker.settings,
            spec,
            root,
            users=config.state_users,
            per_user=config.state_events_per_user,
            mode=mode,
            max_seconds=config.state_seconds,
            start_timeout_s=max(config.start_timeout_s, 600.0),
            memory_limit_bytes=_worker_memory_limit(config),
            exact_catalog=broker.embedded,
            seed=config.seed,
            on_progress=ui.staged(key, f"{spec.name}: state ({mode})"),
        )

    worker = await _guard("state rebuild", ui, phase())
    out.update(worker)
    if config.state_mode == "auto":
        out["mode_reason"] = (
            f"auto: {config.state_users:,}×{config.state_events_per_user} events at the measured pipeline rate "
            f"({pipeline_rate or 0:,.0f}/s) {'fit' if mode == 'events' else 'do not fit'} in "
            f"{config.state_seconds:.0f} s"
        )
    ui.done(key, f"{spec.name}: state {out.get('status')}")
    return out


def run(config: BenchConfig, console: Console | None = None) -> dict[str, Any]:
    return asyncio.run(run_bench(config, console))
