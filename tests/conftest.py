"""Shared fixtures: a private mongod and media folder per test session, small data.

FiftyOne attaches to any database service the same user already runs, whatever its database
folder, so the tests start their own ``mongod`` (FiftyOne's bundled binary) on a free loopback
port with a temporary data folder and point ``FIFTYONE_DATABASE_URI`` at it before FiftyOne is
imported. Every test talks to that real database; it is stopped when the session ends.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="synthcurate-tests-"))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _bundled_mongod() -> str:
    """FiftyOne's bundled mongod, found without importing FiftyOne (which reads its config)."""
    spec = importlib.util.find_spec("fiftyone")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("fiftyone is not installed")
    mongod = Path(spec.submodule_search_locations[0]) / "db" / "bin" / "mongod"
    if not os.access(mongod, os.X_OK):
        raise RuntimeError(f"no executable mongod at {mongod}; run `make install`")
    return str(mongod)


def _start_private_mongod() -> str:
    data = _SESSION_DIR / "db"
    data.mkdir(parents=True)
    port = _free_port()
    process = subprocess.Popen(
        [
            _bundled_mongod(),
            "--dbpath",
            str(data),
            "--port",
            str(port),
            "--bind_ip",
            "127.0.0.1",
            "--logpath",
            str(_SESSION_DIR / "mongod.log"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def stop() -> None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(_SESSION_DIR, ignore_errors=True)

    atexit.register(stop)
    deadline = time.time() + 60
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mongod exited; see {_SESSION_DIR / 'mongod.log'}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return f"mongodb://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("mongod did not start within 60 s")


os.environ["FIFTYONE_DO_NOT_TRACK"] = "true"
os.environ["FIFTYONE_DATABASE_DIR"] = str(_SESSION_DIR / "db")
os.environ["FIFTYONE_DEFAULT_DATASET_DIR"] = str(_SESSION_DIR / "media")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["MPLBACKEND"] = "Agg"
os.environ["FIFTYONE_DATABASE_VALIDATION"] = "false"  # mongod 6.0 is supported; skip the notice
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path.home() / ".cache" / "synthcurate" / "numba"))
os.environ["FIFTYONE_DATABASE_URI"] = _start_private_mongod()

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
