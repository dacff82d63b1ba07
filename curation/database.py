"""Which database a command uses: the one its environment names, or one line saying why not.

FiftyOne 1.22 finds a running database service by its process, not by its folder: without
``FIFTYONE_DATABASE_URI``, a command attaches to whichever ``service/main.py --51-service db
--multi`` the same user runs, whatever ``FIFTYONE_DATABASE_DIR`` names, and writes there. So
every ``curate`` command that uses the database calls :func:`connect` first (``curation.cli``):

- ``FIFTYONE_DATABASE_URI`` set: the user chose a server; one that does not answer is one line.
- Otherwise the folder FiftyOne uses (``FIFTYONE_DATABASE_DIR``, its config file, or its
  default) decides. A ``mongod`` outside a FiftyOne service holding that folder (FiftyOne's own
  could not start there, and would wait 60 s to say so) is refused before connecting. Then
  FiftyOne attaches to a running service or starts one; one that cannot start is one line. The
  service it attached to is compared with the folder (the ``--dbpath`` on the service's own
  command line; the port from its ``mongod``): on another folder, the command lets it go
  untouched and stops in one line that names it, its folder and port, and says how to choose:
  ``FIFTYONE_DATABASE_URI`` to use it, or stop it. A service that does not answer (shutting
  down) is skipped by FiftyOne, as before, so it is never a reason to stop.

A process that FiftyOne gave ``FIFTYONE_PRIVATE_DATABASE_PORT`` (a worker of a command that
connected) uses that port, as FiftyOne does, unchecked. Errors are :class:`CurateError`.
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass
from pathlib import Path

import fiftyone as fo
import fiftyone.core.odm.database as food
import fiftyone.core.service as fos
import psutil
from fiftyone.core.config import FiftyOneConfigError

from curation.errors import CurateError

SERVICE_ARGS = ["--51-service", "db", "--multi"]  # how FiftyOne finds its database service


@dataclass(frozen=True)
class Mongod:
    """A running database: a FiftyOne service (``service``) or a ``mongod`` of its own."""

    pid: int
    folder: Path | None
    port: int | None
    service: bool

    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}" if self.port else "mongodb://HOST:PORT"


def _option(cmdline: list[str], name: str) -> str | None:
    """The value after ``name`` on a command line (``None`` without it)."""
    if name in cmdline[:-1]:
        return cmdline[cmdline.index(name) + 1]
    return None


def _folder(process: psutil.Process, cmdline: list[str]) -> Path | None:
    """The ``--dbpath`` on ``cmdline``, resolved against the process's working folder."""
    value = _option(cmdline, "--dbpath")
    if value is None:
        return None
    try:
        return Path(process.cwd(), value).resolve()
    except psutil.Error:
        return Path(value).resolve()


def _listening_port(process: psutil.Process) -> int | None:
    """A TCP port ``process`` listens on (``None``: none, or not allowed to look)."""
    try:
        for connection in process.net_connections(kind="tcp"):
            if connection.status == psutil.CONN_LISTEN and not connection.raddr:
                return connection.laddr[1]
    except psutil.Error:
        pass
    return None


def _is_mongod(cmdline: list[str]) -> bool:
    return bool(cmdline) and Path(cmdline[0]).name.startswith("mongod")


def _service_port(service: psutil.Process) -> int | None:
    """The port of the ``mongod`` a FiftyOne service runs."""
    try:
        children = service.children(recursive=True)
    except psutil.Error:
        return None
    for child in children:
        try:
            if _is_mongod(child.cmdline()):
                return _listening_port(child)
        except psutil.Error:
            continue
    return None


def _is_service(cmdline: list[str]) -> bool:
    n = len(SERVICE_ARGS)
    return any(cmdline[i : i + n] == SERVICE_ARGS for i in range(len(cmdline) - n + 1))


def outside_mongods() -> list[Mongod]:
    """The ``mongod`` processes this user runs outside a FiftyOne service."""
    user = psutil.Process().username()
    found = []
    for process in psutil.process_iter(["cmdline", "username"]):
        cmdline = process.info["cmdline"] or []
        if process.info["username"] != user or not _is_mongod(cmdline):
            continue
        if not _inside_service(process):
            port = _listening_port(process)
            found.append(Mongod(process.pid, _folder(process, cmdline), port, service=False))
    return found


def _inside_service(process: psutil.Process) -> bool:
    try:
        parent = process.parent()
        return parent is not None and _is_service(parent.cmdline())
    except psutil.Error:
        return False


def _named_by() -> str:
    if os.environ.get("FIFTYONE_DATABASE_DIR"):
        return "FIFTYONE_DATABASE_DIR"
    return "FiftyOne's database_dir setting"


def _where(found: Mongod) -> str:
    port = f"port {found.port}" if found.port else "no port yet"
    return f"process {found.pid}, {port}"


def conflict(folder: Path, found: Mongod) -> str | None:
    """Why a command whose database folder is ``folder`` must not use ``found``, the service
    FiftyOne attached to or a ``mongod`` outside FiftyOne (``None``: it may)."""
    if found.service and found.folder != folder:
        return (
            f"FiftyOne attached to a database service on {found.folder} ({_where(found)}), not "
            f"on {folder} that {_named_by()} names; set FIFTYONE_DATABASE_URI={found.uri()} to "
            f"use that one, or stop it (it stops once the commands and Apps using it end) to "
            f"start one on {folder}"
        )
    if not found.service and found.folder == folder:
        return (
            f"a mongod outside FiftyOne ({_where(found)}) holds {folder}, so FiftyOne cannot "
            f"start its database there; set FIFTYONE_DATABASE_URI={found.uri()} to use it, or "
            "stop it"
        )
    return None


def attached_service() -> Mongod | None:
    """The service FiftyOne attached to (``None``: it started its own, or uses a URI)."""
    service = food._db_service
    if service is None or not getattr(service, "attached", False) or service.child is None:
        return None
    child = service.child
    try:
        cmdline = child.cmdline()
    except psutil.Error:
        return None
    return Mongod(child.pid, _folder(child, cmdline), _service_port(child), service=True)


def _let_go() -> None:
    """Disconnect from a database this command must not use, leaving it as it was (FiftyOne
    would delete its non-persistent datasets at exit when it is their only client)."""
    atexit.unregister(food._delete_non_persistent_datasets_if_allowed)
    food._disconnect()


def _connect_to_uri(uri: str) -> None:
    from pymongo.uri_parser import parse_uri

    try:
        food.get_db_client()
    except ConnectionError:
        try:
            where = ", ".join(f"{host}:{port}" for host, port in parse_uri(uri)["nodelist"])
        except Exception:
            where = "the address given"
        raise CurateError(
            f"no MongoDB answers at {where} (FIFTYONE_DATABASE_URI); start it, or unset "
            "FIFTYONE_DATABASE_URI to use FiftyOne's own database"
        ) from None


def _start_or_attach(folder: Path) -> None:
    log = folder / "log" / "mongo.log"
    try:
        food.get_db_client()
    except fos.ServiceListenTimeout:
        raise CurateError(
            f"FiftyOne's database service did not start on {folder} (mongod did not listen "
            f"within 60 s; see {log}); set FIFTYONE_DATABASE_URI to use a running MongoDB"
        ) from None
    except (PermissionError, FiftyOneConfigError, fos.ServiceException) as error:
        message = " ".join(str(error).split())
        raise CurateError(
            f"FiftyOne's database service cannot start on {folder}: {message}; set "
            "FIFTYONE_DATABASE_DIR to a writable folder or FIFTYONE_DATABASE_URI to a MongoDB"
        ) from None


def connect() -> None:
    """Connect FiftyOne to the database the environment names (see the module).

    Raises:
        CurateError: another service or ``mongod`` is in the way, the service cannot start, or
            the server at ``FIFTYONE_DATABASE_URI`` does not answer.
    """
    if fo.config.database_uri:
        _connect_to_uri(fo.config.database_uri)
        return
    if os.environ.get("FIFTYONE_PRIVATE_DATABASE_PORT") or os.environ.get(
        "FIFTYONE_DISABLE_SERVICES"
    ):
        return  # FiftyOne's own arrangements: a worker of a connected command, or no services
    folder = Path(fo.config.database_dir).expanduser().resolve()
    for found in outside_mongods():  # FiftyOne's own mongod could not start on the folder
        problem = conflict(folder, found)
        if problem is not None:
            raise CurateError(problem)
    _start_or_attach(folder)
    found = attached_service()
    problem = conflict(folder, found) if found is not None else None
    if problem is not None:
        _let_go()
        raise CurateError(problem)
