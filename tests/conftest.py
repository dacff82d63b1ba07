"""Shared fixtures: a private FiftyOne database and media folder per test session, small data.

The environment is set before FiftyOne is imported, so every test talks to a real ``mongod``
that FiftyOne starts in a temporary folder.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="synthcurate-tests-"))
os.environ["FIFTYONE_DO_NOT_TRACK"] = "true"
os.environ["FIFTYONE_DATABASE_DIR"] = str(_SESSION_DIR / "db")
os.environ["FIFTYONE_DEFAULT_DATASET_DIR"] = str(_SESSION_DIR / "media")
os.environ.pop("FIFTYONE_DATABASE_URI", None)
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["MPLBACKEND"] = "Agg"
os.environ["FIFTYONE_DATABASE_VALIDATION"] = "false"  # mongod 6.0 is supported; skip the notice
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path.home() / ".cache" / "synthcurate" / "numba"))

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data, skipping the test when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not available: {path}")
    return path


@pytest.fixture
def name() -> str:
    """A fresh dataset name."""
    return f"t-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def session_dir() -> Path:
    return _SESSION_DIR


@pytest.fixture(scope="session")
def demo_data(session_dir: Path):
    """A small simulated FISH crop set on disk (400 labelled, 120 pool)."""
    from curation.demo import make_demo_data

    return make_demo_data(session_dir / "demo", n_labelled=400, n_pool=120, seed=1)


@pytest.fixture(scope="session")
def demo_dataset(demo_data) -> str:
    """A persistent dataset ingested from :func:`demo_data` (treat as read-only)."""
    from curation.ingest import ingest_records
    from curation.readers import read_csv, read_pool

    ingest_records(
        read_csv(demo_data.labels_csv), "demo-session", source="test", rare="translocation"
    )
    ingest_records(read_pool(demo_data.pool_dir), "demo-session", source="test", append=True)
    return "demo-session"
