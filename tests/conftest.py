"""Shared fixtures: a private mongod and media folder per test session, small data.

FiftyOne attaches to any database service the same user already runs, whatever its database
folder, so the tests start their own ``mongod`` (FiftyOne's bundled binary) on a free loopback
port with a temporary data folder and point ``FIFTYONE_DATABASE_URI`` at it before FiftyOne is
imported. Every test talks to that real database; it is stopped when the session ends. Worker
processes a test starts use it too, and start none of their own.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from curation.private_db import use_private_database

os.environ.setdefault("NUMBA_CACHE_DIR", str(Path.home() / ".cache" / "synthcurate" / "numba"))
os.environ["MPLBACKEND"] = "Agg"
os.environ.pop("FIFTYONE_PLUGINS_DIR", None)
_SESSION = "SYNTHCURATE_TEST_SESSION"
if _SESSION in os.environ:  # a worker a test started, importing its test module and so this file
    _SESSION_DIR = Path(os.environ[_SESSION])  # the session's database, in its environment
else:
    _SESSION_DIR = Path(tempfile.mkdtemp(prefix="synthcurate-tests-"))
    use_private_database(_SESSION_DIR)  # before FiftyOne is imported anywhere
    os.environ[_SESSION] = str(_SESSION_DIR)

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data, skipping the test when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not available: {path}")
    return path


def curate_process(*args: str) -> subprocess.Popen:
    """``curate ARGS`` in a subprocess on the test database (one torch thread; pipes)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "curation", *args]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def kill_when(
    process: subprocess.Popen, condition: Callable[[], bool], timeout: float = 120
) -> None:
    """``kill -9`` ``process`` as soon as ``condition()`` holds (polled every 50 ms), then reap
    it; fails if the process ends first or the condition is not reached in ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, process.communicate()[1].decode()[-2000:]
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stdout.close()
    process.stderr.close()


@pytest.fixture
def name() -> str:
    """A fresh dataset name."""
    return f"t-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def one_torch_thread():
    """Torch on one intra-op thread for a whole test module (restored after); use it with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    from brain.devices import torch_threads

    with torch_threads(1):
        yield


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


@pytest.fixture
def project(demo_dataset, name) -> str:
    """A private copy of the demo dataset (samples share the demo's source images)."""
    import fiftyone as fo

    fo.load_dataset(demo_dataset).clone(name, persistent=True)
    yield name
    if fo.dataset_exists(name):
        fo.load_dataset(name).delete()
