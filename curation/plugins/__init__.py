"""FiftyOne App plugins shipped with synthcurate.

``PLUGINS_DIR`` is the folder to put on ``FIFTYONE_PLUGINS_DIR`` (``curate app`` does it):

    export FIFTYONE_PLUGINS_DIR="$(python -c 'import curation.plugins as p; print(p.PLUGINS_DIR)')"
"""

from __future__ import annotations

import os
from pathlib import Path

PLUGINS_DIR = Path(__file__).resolve().parent
PLUGIN_NAME = "@synthcurate/curation"


def enable_plugins() -> str:
    """Make the synthcurate plugin visible to FiftyOne in this process and its children (the App
    server) and return the plugins folder in use.

    FiftyOne reads one plugins folder. Without ``FIFTYONE_PLUGINS_DIR``, it becomes
    :data:`PLUGINS_DIR`; when you set your own, ours is linked into it as ``synthcurate``.
    """
    import fiftyone as fo

    current = os.environ.get("FIFTYONE_PLUGINS_DIR")
    if current and Path(current).resolve() != PLUGINS_DIR:
        link = Path(current) / "synthcurate"
        if not link.exists():
            Path(current).mkdir(parents=True, exist_ok=True)
            link.symlink_to(PLUGINS_DIR / "synthcurate", target_is_directory=True)
        folder = current
    else:
        folder = str(PLUGINS_DIR)
    os.environ["FIFTYONE_PLUGINS_DIR"] = folder
    fo.config.plugins_dir = folder
    return folder


def operator_uri(name: str) -> str:
    """The URI of one of the plugin's operators."""
    return f"{PLUGIN_NAME}/{name}"
