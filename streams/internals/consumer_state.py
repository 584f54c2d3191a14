"""What a Faust app's consumer already knows, read without creating or asking anything."""

from __future__ import annotations

from typing import Any

import faust


def started_consumer(app: faust.App) -> Any | None:
    """The app's consumer once the worker has created it, else None (`faust.App.consumer` would create one)."""
    return app._consumer


def committed_offsets(consumer: Any) -> dict[Any, int | None]:
    """The last offset committed per partition, as the consumer noted it (`faust.transport.consumer.Consumer.
    _committed_offset`, updated by `Consumer._commit_offsets`); no broker round trip."""
    committed: dict[Any, int | None] = getattr(consumer, "_committed_offset", {})
    return committed
