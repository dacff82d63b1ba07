"""A private, throw-away FiftyOne database for tests and benchmark scripts.

FiftyOne attaches to any database service the same user already runs, whatever its database
folder, so tests and benchmarks start their own ``mongod`` (FiftyOne's bundled binary) on a free
loopback port with a temporary data folder, and point ``FIFTYONE_DATABASE_URI`` at it before
FiftyOne is imported. The server and the folder are removed when the process exits.
This module does not import FiftyOne.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def bundled_mongod() -> str:
    """FiftyOne's bundled ``mongod``, found without importing FiftyOne (which reads its config)."""
    spec = importlib.util.find_spec("fiftyone")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("fiftyone is not installed")
    mongod = Path(spec.submodule_search_locations[0]) / "db" / "bin" / "mongod"
    if not os.access(mongod, os.X_OK):
        raise RuntimeError(f"no executable mongod at {mongod}; run `make install`")
    return str(mongod)


@dataclass
class PrivateMongod:
    """A ``mongod`` started by :func:`start_mongod`: its process, port and data folder."""

    process: subprocess.Popen
    port: int
    folder: Path

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Stop the server (idempotent); its folder stays."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_mongod(workdir: Path) -> PrivateMongod:
    """Start FiftyOne's bundled ``mongod`` on a free loopback port with its data in
    ``workdir / "db"`` and its log in ``workdir / "mongod.log"``; returns once it listens.
    It is stopped when the process exits, if not before (:meth:`PrivateMongod.stop`)."""
    data = workdir / "db"
    data.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    command = [bundled_mongod(), "--dbpath", str(data), "--port", str(port)]
    command += ["--bind_ip", "127.0.0.1", "--logpath", str(workdir / "mongod.log")]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = PrivateMongod(process, port, data)
    atexit.register(server.stop)
    deadline = time.time() + 60
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mongod exited; see {workdir / 'mongod.log'}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except OSError:
            time.sleep(0.2)
    server.stop()
    raise RuntimeError("mongod did not start within 60 s")


def use_private_database(workdir: Path) -> str:
    """Start a private ``mongod`` under ``workdir`` and point FiftyOne at it (call before
    importing FiftyOne); returns its URI. Media go to ``workdir / "media"``. The server is
    stopped and ``workdir`` removed when the process exits."""
    server = start_mongod(workdir)

    def stop_and_remove() -> None:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    atexit.register(stop_and_remove)
    os.environ["FIFTYONE_DATABASE_URI"] = server.uri
    os.environ["FIFTYONE_DEFAULT_DATASET_DIR"] = str(workdir / "media")
    os.environ["FIFTYONE_DO_NOT_TRACK"] = "true"
    os.environ["FIFTYONE_DATABASE_VALIDATION"] = "false"
    os.environ["HF_HUB_OFFLINE"] = "1"
    return server.uri
