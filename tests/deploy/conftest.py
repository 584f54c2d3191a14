"""Makes deploy_support importable from these tests under `--import-mode=importlib` (pyproject addopts)."""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
