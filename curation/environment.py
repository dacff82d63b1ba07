"""The one place that sets synthcurate's environment defaults.

Called by every entry point: importing :mod:`curation` (the Python API and the App plugin) and
the ``curate`` command. Only defaults are set: a variable the user set is kept.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def set_environment() -> None:
    """Set the defaults: no FiftyOne tracking or database check, offline Hugging Face hub, a
    headless matplotlib, a persistent numba cache, and no FiftyOne progress bars off a terminal."""
    os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")
    os.environ.setdefault("NUMBA_CACHE_DIR", str(Path.home() / ".cache/synthcurate/numba"))
    if not sys.stderr.isatty():
        os.environ.setdefault("FIFTYONE_SHOW_PROGRESS_BARS", "false")
