"""Filling the dataset cache: HTTP with a progress bar, or a wheel via pip; plus checksums."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)

from streamrec.streams.tools.data.errors import DatasetError

_CHUNK = 1 << 16
_console = Console(stderr=True)  # progress goes to stderr so stdout stays parseable


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str, *, remedy: str) -> None:
    """Raise `DatasetError` (with `remedy` as the advice) if `path` is missing or its digest differs."""
    if not path.is_file():
        raise DatasetError(f"missing dataset file {path}; {remedy}")
    actual = sha256_of(path)
    if actual != expected:
        raise DatasetError(
            f"dataset file {path} is corrupt or not the expected version "
            f"(sha256 {actual}, expected {expected}); {remedy}"
        )


def download_url(url: str, target: Path, *, timeout: float, show_progress: bool = True) -> None:
    """Stream `url` to `target` (written via a .part file, so a broken download never looks complete).

    Raises OSError (urllib's URLError is one) or http.client.HTTPException if the transfer fails.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
    )
    try:
        with (
            urllib.request.urlopen(url, timeout=timeout) as response,
            partial.open("wb") as out,
            Progress(*columns, console=_console, disable=not show_progress, transient=True) as progress,
        ):
            total = int(response.headers.get("Content-Length") or 0) or None
            task = progress.add_task(f"downloading {target.name}", total=total)
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                out.write(chunk)
                progress.advance(task, len(chunk))
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


def pip_download(requirement: str, target_dir: Path, *, show_progress: bool = True) -> Path:
    """Fetch one wheel (no dependencies) with this interpreter's pip; returns the wheel's path."""
    target_dir.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
    ]
    command += ["--quiet", requirement, "-d", str(target_dir)]
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=_console, disable=not show_progress, transient=True) as progress:
        progress.add_task(f"pip download {requirement}", total=None)
        try:
            result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DatasetError(f"could not run pip to download {requirement}: {exc}") from exc
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise DatasetError(f"pip could not download {requirement}: {' / '.join(detail) or 'no output'}")
    name, _, version = requirement.partition("==")
    wheels = sorted(target_dir.glob(f"{name.replace('-', '_')}-{version}-*.whl"))
    if not wheels:
        raise DatasetError(f"pip reported success but no wheel for {requirement} is in {target_dir}")
    return wheels[0]


def remove_tree(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
