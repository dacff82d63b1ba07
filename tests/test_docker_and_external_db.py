"""The Docker compose file, and the external-database path against a second real mongod."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from brain.images import write_png

REPO = Path(__file__).resolve().parents[1]


def test_compose_names_the_database_uri_and_publishes_the_app():
    compose = yaml.safe_load((REPO / "docker" / "compose.yaml").read_text())
    services = compose["services"]
    assert {"mongo", "synthcurate"} <= set(services)
    tool = services["synthcurate"]
    assert tool["environment"]["FIFTYONE_DATABASE_URI"] == "mongodb://mongo:27017"
    assert "5151:5151" in tool["ports"]
    assert tool["build"]["dockerfile"] == "docker/Dockerfile"
    dockerfile = (REPO / "docker" / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["curate"]' in dockerfile and "torch==2.14.1" in dockerfile


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def external_mongod(tmp_path):
    from fiftyone.core.service import DatabaseService

    port = _free_port()
    data = tmp_path / "mongo-data"
    data.mkdir()
    process = subprocess.Popen(
        [
            DatabaseService.find_mongod(),
            "--dbpath",
            str(data),
            "--port",
            str(port),
            "--bind_ip",
            "127.0.0.1",
            "--quiet",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.3)
    else:
        process.kill()
        pytest.fail("the external mongod did not start")
    yield f"mongodb://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=30)


def test_ingest_and_info_through_external_uri(external_mongod, tmp_path):
    import pymongo

    rng = np.random.default_rng(0)
    for label, n in {"normal": 12, "rare": 6}.items():
        for i in range(n):
            write_png(
                rng.integers(0, 255, (8, 8, 3), dtype=np.uint8),
                tmp_path / "tree" / label / f"{i}.png",
            )
    env = {
        **os.environ,
        "FIFTYONE_DATABASE_URI": external_mongod,
        "FIFTYONE_DATABASE_DIR": str(tmp_path / "unused-db"),
    }
    curate = [sys.executable, "-m", "curation"]
    run = subprocess.run(
        [*curate, "ingest", "dir", str(tmp_path / "tree"), "--dataset", "ext", "--rare", "rare"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    info = subprocess.run(
        [*curate, "info", "ext", "--json"], env=env, capture_output=True, text=True, timeout=300
    )
    assert info.returncode == 0, info.stderr
    assert '"rare_class": "rare"' in info.stdout
    client = pymongo.MongoClient(external_mongod, serverSelectionTimeoutMS=5000)
    names = [d["name"] for d in client["fiftyone"]["datasets"].find({}, {"name": 1})]
    assert "ext" in names
    assert not (tmp_path / "unused-db").exists()  # no local mongod was started
