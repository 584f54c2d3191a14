"""Item model artifacts in `settings.model_dir`: save, find the latest, load.

One file per saved model, `item-model-<saved_at_ns>-<version slug>.npz` (`ItemModel.to_bytes`). "Latest"
means most recently *saved* (the name sorts by save time), so re-saving an older model is a rollback.
Writes go to a hidden temp file in the same directory and are renamed into place, so a worker polling the
directory never sees a half-written artifact. Unreadable artifacts are skipped (logged), not fatal.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import time
from pathlib import Path

from streamrec.models.item_model import ItemModel
from streamrec.streams.settings import Settings, get_settings

log = logging.getLogger(__name__)

PREFIX = "item-model-"
SUFFIX = ".npz"
_NAME = re.compile(rf"^{re.escape(PREFIX)}(?P<ns>\d{{19,}})-(?P<slug>[\w.\-]*){re.escape(SUFFIX)}$")
_UNSAFE = re.compile(r"[^\w.\-]+")


class ModelStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def save(self, model: ItemModel) -> Path:
        """Write `model` atomically; returns the artifact's path (which becomes the latest)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        slug = _UNSAFE.sub("_", model.version)[:80]
        saved_ns = max(time.time_ns(), self._latest_ns() + 1)  # strictly newer, even within one clock tick
        path = self.directory / f"{PREFIX}{saved_ns:019d}-{slug}{SUFFIX}"
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=SUFFIX, dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(model.to_bytes())
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def artifacts(self) -> list[Path]:
        """Artifact paths, newest first."""
        if not self.directory.is_dir():
            return []
        found = [(int(m["ns"]), p) for p in self.directory.iterdir() if (m := _NAME.match(p.name))]
        return [p for _, p in sorted(found, reverse=True)]

    def latest_path(self) -> Path | None:
        found = self.artifacts()
        return found[0] if found else None

    @staticmethod
    def load(path: Path) -> ItemModel:
        return ItemModel.from_bytes(path.read_bytes())

    def load_latest(self) -> ItemModel | None:
        """The newest readable model, or None when there is none (the worker then runs content-only)."""
        loaded = self.load_latest_with_path()
        return loaded[1] if loaded else None

    def load_latest_with_path(self) -> tuple[Path, ItemModel] | None:
        for path in self.artifacts():
            try:
                return path, self.load(path)
            except Exception:  # a corrupt or foreign file must not stop the worker
                log.exception("skipping unreadable model artifact %s", path)
        return None

    def _latest_ns(self) -> int:
        latest = self.latest_path()
        match = _NAME.match(latest.name) if latest else None
        return int(match["ns"]) if match else 0


def store(settings: Settings | None = None) -> ModelStore:
    return ModelStore((settings or get_settings()).model_dir)


def save(model: ItemModel, settings: Settings | None = None) -> Path:
    """Save `model` in `settings.model_dir` (default: the environment's settings)."""
    return store(settings).save(model)


def load_latest(settings: Settings | None = None) -> ItemModel | None:
    """The latest model in `settings.model_dir`, or None."""
    return store(settings).load_latest()
