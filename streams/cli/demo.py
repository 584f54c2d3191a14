"""`streamrec demo`: broker, topics, model, worker and a short replay of real MovieLens events, end to end.

The model is trained on the ratings *before* the replayed slice, so the worker sees the slice as new, live
events. Everything it starts it also stops on Ctrl-C (the worker gracefully, then the embedded broker).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from streamrec.streams.settings import Settings, get_settings
from streamrec.streams.tools.worker_process import WorkerError, WorkerProcess, http_get

console = Console()


def _start_broker(settings: Settings) -> bool:
    """Start the embedded broker if the settings point at it; returns whether we started it."""
    from streamrec.streams.tools.broker import BrokerError, embedded_address, status, up

    try:
        embedded_address(settings.bootstrap_servers)
    except BrokerError:
        console.print(f"using the Kafka cluster at [bold]{settings.bootstrap_servers}[/]")
        return False
    was_running = status(settings).running
    with console.status("starting the embedded Kafka broker (noida-db)"):
        up(settings)
    console.print(f"[green]✔[/] broker at {settings.bootstrap_servers} (data in {settings.broker_dir})")
    return not was_running


def _ensure_topics(settings: Settings) -> None:
    from streamrec.streams.kafka import create_topics, default_topics

    results = asyncio.run(create_topics(settings.bootstrap_servers, default_topics(settings)))
    console.print(f"[green]✔[/] topics: {', '.join(sorted(results))}")


def _ensure_model(settings: Settings, ratings: list[Any]) -> str:
    from streamrec.models.item_model import train_item_model
    from streamrec.streams.worker.model_store import ModelStore

    store = ModelStore(settings.model_dir)
    existing = store.load_latest()
    if existing is not None:
        console.print(f"[green]✔[/] model {existing.version} (from {settings.model_dir})")
        return existing.version
    with console.status(f"training the item model on {len(ratings):,} earlier ratings"):
        model = train_item_model((r.user_id, r.item_id, r.rating) for r in ratings)
    store.save(model)
    console.print(f"[green]✔[/] trained model {model.version}")
    return model.version


def _get(url: str, timeout: float = 2.0) -> bytes | None:
    status, _, body = http_get(url, timeout, token=get_settings().http_token)
    return body if status == 200 else None


def _start_worker(settings: Settings, log_path: Path) -> WorkerProcess:
    # own session: Ctrl-C reaches only the demo, which then stops the worker with a single SIGTERM
    worker = WorkerProcess(settings, log_path, log_level="warning", own_session=True).start()
    with console.status(f"starting the worker (log: {log_path})"):
        try:
            asyncio.run(worker.wait_healthy(timeout_s=90))
        except WorkerError as error:
            worker.stop()
            console.print(f"[red]✘ {error}[/]")
            raise typer.Exit(1) from None
    console.print(f"[green]✔[/] worker up at {worker.base_url}")
    return worker


def _consumed(base: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    raw = _get(f"{base}/metrics")
    if raw is None:
        return 0.0
    total = 0.0
    for family in text_string_to_metric_families(raw.decode()):
        if family.name == "streamrec_events_consumed":
            total += sum(s.value for s in family.samples if s.name.endswith("_total"))
    return total


def _show_lists(base: str, user_ids: list[str], titles: dict[str, str], per_user: int) -> None:
    for user_id in user_ids:
        raw = _get(f"{base}/users/{user_id}/recommendations")
        if raw is None:
            console.print(f"[yellow]no list yet for user {user_id}[/]")
            continue
        body = orjson.loads(raw)
        table = Table(title=f"user {user_id} · model {body.get('model_version')}", title_justify="left")
        table.add_column("#", justify="right")
        table.add_column("title")
        table.add_column("why")
        for item in body["items"][:per_user]:
            why = "; ".join(reason["text"] for reason in item["reasons"])
            table.add_row(str(item["rank"]), titles.get(item["item_id"], item["item_id"]), why)
        console.print(table)


def demo(
    events: Annotated[int, typer.Option(min=100, help="how many of the latest MovieLens events to replay")] = 5000,
    rate: Annotated[float, typer.Option(min=0.0, help="events/s to replay at (0 = as fast as possible)")] = 0.0,
    users: Annotated[int, typer.Option(min=1, max=20, help="how many viewers' lists to print")] = 3,
    searches: Annotated[bool, typer.Option(help="include simulated searches in the replay")] = True,
    keep_running: Annotated[
        bool | None, typer.Option(help="keep the worker up until Ctrl-C (default: when run in a terminal)")
    ] = None,
) -> None:
    """Run the whole pipeline on the embedded broker with real MovieLens events, then show lists and reasons."""
    from streamrec.streams.tools.data.movielens import load_movielens_100k
    from streamrec.streams.tools.replay import ReplayOptions, StreamOptions, replay

    settings = get_settings()
    started_broker = _start_broker(settings)
    worker = None
    try:
        _ensure_topics(settings)
        dataset = load_movielens_100k(settings.cache_dir)
        cut = max(0, len(dataset.ratings) - events)
        _ensure_model(settings, list(dataset.ratings[:cut]))
        live = replace(dataset, name=f"{dataset.name}-demo-tail{events}", ratings=dataset.ratings[cut:])
        worker = _start_worker(settings, settings.data_dir / "worker.log")
        base = f"http://{settings.web_host}:{settings.web_port}"
        before = _consumed(base)
        with Progress(
            TextColumn("replaying"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console
        ) as progress:
            task = progress.add_task("replay", total=None)
            result = asyncio.run(
                replay(
                    live,
                    bootstrap=settings.bootstrap_servers,
                    settings=settings,
                    checkpoint_path=settings.data_dir / "demo-replay.json",
                    stream=StreamOptions(plays=True, searches=searches),
                    options=ReplayOptions(rate=rate, resume=False),
                    on_start=lambda total, done: progress.update(task, total=total, completed=done),
                    on_sent=lambda n: progress.advance(task, n),
                )
            )
        console.print(f"[green]✔[/] replayed {result.sent:,} events in {result.elapsed_s:.1f}s")
        with console.status("waiting for the worker to process them"):
            deadline = time.monotonic() + 300
            while _consumed(base) - before < result.sent and time.monotonic() < deadline:
                time.sleep(0.5)
        _show_lists(base, _most_active(live, users), {i.item_id: i.title for i in dataset.items}, per_user=5)
        console.print(
            f"\nlists: {base}/users/<user_id>/recommendations · metrics: {base}/metrics · "
            f"topic 'recommendations' on {settings.bootstrap_servers}"
        )
        if keep_running if keep_running is not None else sys.stdin.isatty():
            console.print("[bold]running — Ctrl-C stops the worker and the broker[/]")
            while worker.proc is not None and worker.proc.poll() is None:
                time.sleep(1)
    except KeyboardInterrupt:
        console.print("\nstopping…")
    finally:
        if worker is not None:
            worker.stop()
            console.print("[green]✔[/] worker stopped")
        if started_broker:
            from streamrec.streams.tools.broker import down

            down(settings)
            console.print("[green]✔[/] broker stopped")


def _most_active(dataset: Any, n: int = 3) -> list[str]:
    counts = Counter(r.user_id for r in dataset.ratings)
    return [user for user, _ in counts.most_common(n)]


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
