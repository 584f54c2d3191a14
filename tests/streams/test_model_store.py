"""Item model artifacts in settings.model_dir: save, latest, load; no broker needed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from streamrec.models.item_model import ItemModel
from streamrec.streams.settings import Settings
from streamrec.streams.worker import model_store
from streamrec.streams.worker.model_store import ModelStore


def model(version: str, n_items: int = 4, dim: int = 3, created: int = 1_700_000_000_000) -> ItemModel:
    rng = np.random.default_rng(abs(hash(version)) % 2**32)
    factors = rng.normal(size=(n_items, dim)).astype(np.float32)
    return ItemModel(version, tuple(f"i{n}" for n in range(n_items)), factors, 10 * n_items, created)


def assert_same(a: ItemModel, b: ItemModel) -> None:
    assert (a.version, a.item_ids, a.trained_on, a.created_at_ms) == (
        b.version,
        b.item_ids,
        b.trained_on,
        b.created_at_ms,
    )
    np.testing.assert_array_equal(a.factors, b.factors)


def test_empty_or_missing_directory_has_no_model(tmp_path: Path) -> None:
    assert ModelStore(tmp_path / "missing").load_latest() is None
    assert ModelStore(tmp_path).load_latest() is None
    assert ModelStore(tmp_path).latest_path() is None


def test_save_then_load_round_trips(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "models")  # created on save
    saved = model("als-32f-100i-1")
    path = store.save(saved)
    assert path.parent == tmp_path / "models" and path.name.startswith("item-model-") and path.suffix == ".npz"
    loaded = store.load_latest()
    assert loaded is not None
    assert_same(loaded, saved)


def test_latest_is_the_most_recently_saved(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    store.save(model("newer-by-training", created=2_000_000_000_000))
    last = store.save(model("older-by-training-but-saved-last", created=1_000))  # a rollback is a re-save
    assert store.latest_path() == last
    loaded = store.load_latest()
    assert loaded is not None and loaded.version == "older-by-training-but-saved-last"
    paths = [store.save(model(f"v{n}")) for n in range(5)]  # same clock tick or not: strictly ordered
    assert store.artifacts()[:5] == paths[::-1]


def test_unsafe_version_characters_stay_out_of_the_file_name(tmp_path: Path) -> None:
    path = ModelStore(tmp_path).save(model("../../etc/passwd v1"))
    assert path.parent == tmp_path and "/" not in path.name[len("item-model-") :]
    loaded = ModelStore(tmp_path).load_latest()
    assert loaded is not None and loaded.version == "../../etc/passwd v1"


def test_unreadable_latest_artifact_is_skipped(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    store.save(model("good"))
    broken = store.save(model("broken"))
    broken.write_bytes(b"not an npz file")
    assert store.latest_path() == broken
    loaded = store.load_latest()
    assert loaded is not None and loaded.version == "good"


def test_temp_and_foreign_files_are_ignored(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    (tmp_path / ".tmp-abc.npz").write_bytes(b"half written")
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "item-model-latest.npz").write_bytes(b"no timestamp in the name")
    assert store.load_latest() is None
    store.save(model("real"))
    loaded = store.load_latest()
    assert loaded is not None and loaded.version == "real"


def test_module_functions_use_the_settings_model_dir(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory()
    path = model_store.save(model("via-settings"), settings)
    assert path.parent == settings.model_dir
    loaded = model_store.load_latest(settings)
    assert loaded is not None and loaded.version == "via-settings"


@pytest.mark.parametrize("n_items", [0, 1])
def test_degenerate_models_round_trip(tmp_path: Path, n_items: int) -> None:
    saved = model(f"tiny-{n_items}", n_items=n_items)
    ModelStore(tmp_path).save(saved)
    loaded = ModelStore(tmp_path).load_latest()
    assert loaded is not None
    assert_same(loaded, saved)


def test_train_turns_the_new_model_onto_the_latest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`streamrec train` saves a retrained model turned onto the one the workers run (its factors come out of a
    retraining turned at random): the profiles learnt with the old one keep their meaning."""
    import typer
    from typer.testing import CliRunner

    import streamrec.models.item_model as item_model
    import streamrec.streams.tools.data as data
    from streamrec.models.dataset import Dataset
    from streamrec.streams.cli import train
    from streamrec.streams.settings import get_settings

    app = typer.Typer()
    train.register(app)

    monkeypatch.setenv("STREAMREC_MODEL_DIR", str(tmp_path))
    get_settings.cache_clear()
    monkeypatch.setattr(data, "load_dataset", lambda **_: Dataset("tiny", (), ()))
    running = model("running", n_items=6, dim=4)
    ModelStore(tmp_path).save(running)
    turn, _ = np.linalg.qr(np.random.default_rng(3).normal(size=(4, 4)))
    retrained = ItemModel("retrained", running.item_ids, (running.factors @ turn).astype(np.float32), 60, 0)
    monkeypatch.setattr(item_model, "train_item_model", lambda *_, **__: retrained)
    try:
        result = CliRunner().invoke(app, [])  # the one command
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    saved = ModelStore(tmp_path).load_latest()
    assert saved is not None and saved.version == "retrained"
    np.testing.assert_allclose(saved.factors, running.factors, atol=1e-5)
