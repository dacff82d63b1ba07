"""The CI-sized demo study's tables, filter counts and verdicts as JSON (a refactor's check).

Runs tests/test_demo.py's small study (classifier 1 epoch, generators n=12, 4 train steps, BBDM
4 steps on the tiny preset, one torch thread) on a private database and writes what it printed,
so two trees can be compared to the last digit:

    python bench/study_fingerprint.py /tmp/before.json   # on the old tree
    python bench/study_fingerprint.py /tmp/after.json    # on the new tree
    diff /tmp/before.json /tmp/after.json
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from curation.private_db import use_private_database

ROOT = Path(tempfile.mkdtemp(prefix="fingerprint-"))
use_private_database(ROOT / "db")  # before FiftyOne is imported
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path.home() / ".cache" / "synthcurate" / "numba"))
os.environ["MPLBACKEND"] = "Agg"

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_demo import NAME, _small_study  # noqa: E402

from curation.demo_pipeline import run_demo  # noqa: E402


def main(out: str) -> None:
    torch.set_num_threads(1)
    results = run_demo(
        NAME, ROOT / "demo", progress=False, study=_small_study(), echo=lambda m: None
    )
    keep = {k: results[k] for k in ("tables", "filter_counts", "verdicts") if k in results}
    Path(out).write_text(json.dumps(keep, indent=1, sort_keys=True, default=str))
    print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1])
