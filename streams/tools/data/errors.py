"""The one error dataset loading raises: its message says what is wrong and what to do about it."""

from __future__ import annotations


class DatasetError(RuntimeError):
    """A dataset file is missing, corrupt, unreadable or cannot be downloaded."""
