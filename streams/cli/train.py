"""`streamrec train`: build the item model artifact (ALS item factors) that workers load."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from streamrec.streams.settings import get_settings


def train(
    dataset: Annotated[str, typer.Option(help="a named dataset (ml-100k)")] = "ml-100k",
    path: Annotated[Path | None, typer.Option(help="a MovieLens 'latest' CSV folder instead")] = None,
    factors: Annotated[int, typer.Option(min=2, max=512, help="ALS latent factors")] = 32,
    iterations: Annotated[int, typer.Option(min=1, max=100)] = 15,
    regularization: Annotated[float, typer.Option(min=0.0)] = 0.05,
) -> None:
    """Train ALS item factors on a dataset's ratings and save a new versioned artifact in the model dir, turned
    onto the latest one there (so the viewers' profiles, learnt with it, keep their meaning after the swap)."""
    from streamrec.models.item_model import aligned, train_item_model
    from streamrec.streams.tools.data import load_dataset
    from streamrec.streams.worker.model_store import ModelStore

    console = Console()
    settings = get_settings()
    with console.status(f"loading {path or dataset}"):
        data = load_dataset(name=dataset, path=path, cache_dir=settings.cache_dir)
    with console.status(f"training ALS on {len(data.ratings):,} ratings ({factors} factors)"):
        model = train_item_model(
            ((r.user_id, r.item_id, r.rating) for r in data.ratings),
            factors=factors,
            iterations=iterations,
            regularization=regularization,
        )
    store = ModelStore(settings.model_dir)
    previous = store.load_latest()
    if previous is not None:
        model = aligned(model, previous)
    path = store.save(model)
    console.print(f"[green]saved[/] model [bold]{model.version}[/] ({len(model.item_ids):,} items) to {path}")


def register(app: typer.Typer) -> None:
    app.command("train")(train)
