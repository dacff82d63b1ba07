"""The database a command attaches to (``curation.database``), with real FiftyOne services and
mongods on loopback ports: a service on another folder, a mongod outside FiftyOne holding the
folder, a folder where no service can start; and FiftyOne's notes on a service process that
does not answer, which ``curate`` silences (``curation.environment.ServiceNoise``).

The test session itself uses ``FIFTYONE_DATABASE_URI``, so these commands run without it."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from curation.database import SERVICE_ARGS, Mongod, conflict, connect, outside_mongods
from curation.environment import ServiceNoise
from curation.errors import CurateError
from curation.private_db import start_mongod

NOISE = "did not respond"
# imports FiftyOne, then on a line on stdin starts a FiftyOne database service on
# FIFTYONE_DATABASE_DIR and holds it until its stdin closes
HOLD_SERVICE = (
    "import sys, fiftyone.core.odm.database as d; sys.stdin.readline(); d.get_db_client(); "
    "print('ready', flush=True); sys.stdin.read()"
)


def _environment(folder: Path) -> dict[str, str]:
    """The test session's environment, with FiftyOne's own database on ``folder``."""
    env = {k: v for k, v in os.environ.items() if k not in ("FIFTYONE_DATABASE_URI",)}
    env.pop("FIFTYONE_PRIVATE_DATABASE_PORT", None)
    return {**env, "FIFTYONE_DATABASE_DIR": str(folder), "OMP_NUM_THREADS": "1"}


def _curate(folder: Path, *args: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "curation", *args]
    return subprocess.Popen(
        command, env=_environment(folder), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _finish(process: subprocess.Popen) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=180)
    return process.returncode, out, err


def _services_on(folder: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if all(arg in cmdline for arg in SERVICE_ARGS) and str(folder) in cmdline:
            found.append(process)
    return found


@pytest.fixture
def silent_service_process():
    """A process that looks like a FiftyOne database service but never answers (as one
    shutting down, or a stale one): FiftyOne says "did not respond" and starts its own."""
    process = subprocess.Popen(
        [sys.executable, "-c", "input()", *SERVICE_ARGS], stdin=subprocess.PIPE
    )
    yield process
    process.kill()
    process.wait()


class Holder:
    """A process that is not ``curate`` holding a real FiftyOne database service
    (``service/main.py`` and its mongod) on ``folder``, once :meth:`start` is called."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOLD_SERVICE],
            env=_environment(folder),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )

    def start(self) -> None:
        self.process.stdin.write("go\n")
        self.process.stdin.flush()
        for line in self.process.stdout:  # FiftyOne may log first (a new database is migrated)
            if line.strip() == "ready":
                return
        pytest.fail("the FiftyOne database service did not start")

    def stop(self) -> None:
        """End the holder, then wait until its service has stopped."""
        self.process.stdin.close()
        self.process.wait(timeout=30)
        deadline = time.monotonic() + 30
        while _services_on(self.folder) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _services_on(self.folder), "the service did not stop"


@pytest.fixture
def holder(tmp_path):
    held = Holder((tmp_path / "service-db").resolve())
    yield held
    held.stop()


@pytest.fixture
def outside(tmp_path):
    """A mongod outside FiftyOne, on a loopback port and a folder of its own."""
    server = start_mongod(tmp_path / "outside")
    yield server
    server.stop()


def _one_error_line(err: str) -> str:
    assert err.startswith("curate: error: ") and err.count("\n") == 1, err
    return err


def test_a_mongod_outside_fiftyone_holding_the_folder_is_refused_before_connecting(
    outside, monkeypatch
):
    """In this process (connected to the test database): with FiftyOne's own database on the
    folder a mongod outside FiftyOne holds, :func:`connect` stops before connecting."""
    import fiftyone as fo

    found = [m for m in outside_mongods() if m.pid == outside.process.pid]
    assert [(m.folder, m.port) for m in found] == [(outside.folder.resolve(), outside.port)]
    monkeypatch.setattr(fo.config, "database_uri", None)
    monkeypatch.setattr(fo.config, "database_dir", str(outside.folder))
    monkeypatch.delenv("FIFTYONE_PRIVATE_DATABASE_PORT", raising=False)
    monkeypatch.setenv("FIFTYONE_DATABASE_DIR", str(outside.folder))
    where = f"(process {outside.process.pid}, port {outside.port})"
    with pytest.raises(CurateError) as refused:
        connect()
    message = str(refused.value)
    assert message.startswith(f"a mongod outside FiftyOne {where} holds {outside.folder.resolve()}")
    assert f"set FIFTYONE_DATABASE_URI={outside.uri} to use it, or stop it" in message


@pytest.mark.slow
def test_a_command_uses_the_database_its_environment_names_or_stops_in_one_line(
    tmp_path, holder, silent_service_process
):
    """``curate`` without FIFTYONE_DATABASE_URI, beside a process that looks like a service
    and never answers (FiftyOne logs "did not respond": not printed): a folder where no service
    can start; then a service on another folder, and one on the command's own folder."""
    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("")
    code, out, err = _finish(_curate(not_a_folder, "list"))
    assert code == 2 and NOISE not in out, (out, err)
    _one_error_line(err)
    assert f"FiftyOne's database service cannot start on {not_a_folder}" in err

    holder.start()
    other = (tmp_path / "other-db").resolve()
    elsewhere = _curate(other, "list")
    same = _curate(holder.folder, "list")
    code, out, err = _finish(elsewhere)
    assert code == 2 and out == "", err
    _one_error_line(err)
    [service] = _services_on(holder.folder)
    attached = f"FiftyOne attached to a database service on {holder.folder}"
    assert f"{attached} (process {service.pid}, port " in err
    assert f"not on {other} that FIFTYONE_DATABASE_DIR names" in err
    assert "set FIFTYONE_DATABASE_URI=mongodb://127.0.0.1:" in err
    assert not other.exists()  # no service was started there
    code, out, err = _finish(same)
    assert code == 0, err
    assert NOISE not in out + err and err == "", (out, err)


def test_the_noise_filter_drops_only_the_notes_on_silent_services():
    noise = ServiceNoise()

    def record(msg: str, *args) -> logging.LogRecord:
        return logging.LogRecord("fiftyone.core.service", logging.WARNING, "", 0, msg, args, None)

    desc = "Process 12 (service/main.py --51-service db --multi)"
    assert not noise.filter(record("%s did not respond", desc))
    exiting = RuntimeError("service is exiting, cannot connect")
    assert not noise.filter(record("Failed to connect to %s: %r", desc, exiting))
    assert noise.filter(record("Failed to connect to %s: %r", desc, ValueError("other")))
    assert noise.filter(record("Server version (%s) does not match client version (%s)", 1, 2))


def test_a_conflict_is_another_folder_for_a_service_and_the_same_one_for_a_mongod():
    mine, theirs = Path("/data/mine"), Path("/data/theirs")
    assert conflict(mine, Mongod(1, mine, 5, service=True)) is None
    assert conflict(mine, Mongod(1, theirs, 5, service=False)) is None
    service = conflict(mine, Mongod(1, theirs, 5, service=True))
    assert service.startswith("FiftyOne attached to a database service on /data/theirs")
    assert "FIFTYONE_DATABASE_URI=mongodb://127.0.0.1:5" in service
    outside = conflict(mine, Mongod(1, mine, None, service=False))
    assert outside.startswith("a mongod outside FiftyOne (process 1, no port yet) holds /data/mine")
