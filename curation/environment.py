"""The one place that sets synthcurate's environment defaults.

Called by every entry point: importing :mod:`curation` (the Python API and the App plugin) and
the ``curate`` command. Only defaults are set: a variable the user set is kept.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

SERVICE_LOGGER = "fiftyone.core.service"


class ServiceNoise(logging.Filter):
    """Drops FiftyOne's notes on a database service process that did not answer while it looked
    for one to attach to (``Process N (service/main.py --51-service db --multi) did not
    respond``, or one that was shutting down): FiftyOne then finds or starts another, and a
    service that cannot start is an error of its own (:mod:`curation.database`). Every other
    record passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == "%s did not respond":
            return False
        if record.msg == "Failed to connect to %s: %r" and len(record.args or ()) == 2:
            return "service is exiting" not in str(record.args[1])
        return True


SERVICE_NOISE = ServiceNoise()


def set_environment() -> None:
    """Set the defaults: no FiftyOne tracking or database check, offline Hugging Face hub, a
    headless matplotlib, a persistent numba cache, no FiftyOne progress bars off a terminal,
    and none of FiftyOne's service noise (:class:`ServiceNoise`)."""
    logging.getLogger(SERVICE_LOGGER).addFilter(SERVICE_NOISE)
    os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")
    os.environ.setdefault("NUMBA_CACHE_DIR", str(Path.home() / ".cache/synthcurate/numba"))
    if not sys.stderr.isatty():
        os.environ.setdefault("FIFTYONE_SHOW_PROGRESS_BARS", "false")
