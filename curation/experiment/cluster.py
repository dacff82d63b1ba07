"""Where a study's trainings run: in this process, one after another (the default), or as Ray
tasks, one device each, on a local Ray or a cluster.

The study hands its trainings over in batches (the real cells, the embedding network, the
generator cells), in the order the study needs them; a batch is gathered before the study goes
on. Every job that reaches a trainer is one the dataset does not hold yet
(:func:`curation.experiment.jobs.finished`), so finished cells are never redone, also after the
driver itself was killed and rerun.

**Only the driver writes to the dataset.** Storing a train run changes the dataset's document
(FiftyOne keeps runs, evaluations and the sample field schema there): the predictions add a
sample field, appended to the schema list that is then saved as a whole. Two processes that
store runs at once each save their own copy of that list, and the second drops the field of the
first (seen here with two processes: one of two new fields was lost, while both run records
survived, as runs are saved key by key). So a Ray task only reads: it loads the dataset by name
from the same MongoDB, trains from the arrays it decodes and writes its own checkpoint folder
(named after its run, swapped into place as one rename), and returns a
:class:`~curation.runs.train.FittedRun`. The driver stores each run as its task finishes
(:func:`~curation.runs.train.store_fitted`), so a killed driver loses only the trainings still
in flight. No lock is needed, and none would be as simple to justify across machines.

**Workers see what the driver sees.** They get the driver's ``FIFTYONE_*`` and
``SYNTHCURATE_*`` variables through the job's ``runtime_env``, with ``FIFTYONE_DATABASE_URI``
set to the database the driver is connected to (also when FiftyOne started it) and
``FIFTYONE_DEFAULT_DATASET_DIR`` to its media folder: on a cluster, both must be reachable at
the same address and path from every machine (a shared filesystem for the media).

**Retries.** A task whose worker dies (killed, out of memory, a lost node) is run again, up to
``retries`` times; an error raised by the training itself (bad input) is not retried.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse

import fiftyone as fo
import fiftyone.core.odm.database as food

from brain.errors import InputError
from brain.progress import progress_bar
from curation.errors import CurateError
from curation.experiment.config import RayConfig
from curation.experiment.jobs import TrainJob
from curation.runs.train.fit import FittedRun, store_fitted

Echo = Callable[[str], None]

LOCAL = "local"
CONNECT_TIMEOUT_S = 3.0
OBJECT_STORE_BYTES = 200 * 2**20  # only job settings and small results travel through it
EXIT_ONCE = "SYNTHCURATE_TEST_EXIT_ONCE"  # test hook, see _exit_once
_FORWARDED = ("FIFTYONE_", "SYNTHCURATE_")
_LOOPBACK = ("localhost", "127.0.0.1", "::1")


class Trainer(Protocol):
    """Trains a batch of jobs and stores each run on the dataset."""

    def train(
        self, dataset: fo.Dataset, jobs: Sequence[TrainJob], echo: Echo, progress: bool
    ) -> None: ...


def cell_progress(jobs: Sequence[TrainJob], progress: bool):
    """Progress over a batch of trainings: a line per finished run off a terminal."""
    return progress_bar(
        total=len(jobs), desc="study trainings", unit="run", enabled=progress, every=1
    )


class InProcess:
    """Train each job in this process, one after another."""

    def train(
        self, dataset: fo.Dataset, jobs: Sequence[TrainJob], echo: Echo, progress: bool
    ) -> None:
        with cell_progress(jobs, progress) as done:
            for job in jobs:
                echo(f"[train] {job.run}: {job.what}")
                store_fitted(dataset, job.fit(dataset, progress=progress))
                done.set_postfix(last=job.run)
                done.update()


class RayTrainer:
    """Train each job as a Ray task on one device (a GPU when the cluster has GPUs, else a CPU
    core with one torch thread) and store the runs here as their tasks finish."""

    def __init__(self, retries: int) -> None:
        import ray

        self.retries = retries
        self.gpus = ray.cluster_resources().get("GPU", 0) > 0

    def train(
        self, dataset: fo.Dataset, jobs: Sequence[TrainJob], echo: Echo, progress: bool
    ) -> None:
        import ray

        task = ray.remote(_fit_on_worker)
        pending = {}
        done = cell_progress(jobs, progress)
        try:
            for job in jobs:
                devices = job.settings.devices
                resources = {"num_gpus": devices} if self.gpus else {"num_cpus": devices}
                options = {**resources, "max_retries": self.retries, "retry_exceptions": False}
                pending[task.options(**options).remote(dataset.name, job)] = job
                echo(f"[train] {job.run}: {job.what} (Ray task)")
            while pending:
                (ref,), _ = ray.wait(list(pending), num_returns=1)
                job = pending.pop(ref)
                store_fitted(dataset, _result(ref))
                echo(f"[train] {job.run}: stored")
                done.set_postfix(last=job.run)
                done.update()
        finally:
            done.close()
            for ref in pending:  # a failed batch: stop the rest
                ray.cancel(ref)


def _result(ref) -> FittedRun:
    """The task's run; the training's own error (bad input) as itself, not wrapped."""
    import ray

    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as error:
        if isinstance(error.cause, InputError):
            raise error.cause from None
        raise


def _fit_on_worker(dataset_name: str, job: TrainJob) -> FittedRun:
    """A Ray task: train ``job`` on the dataset read from the shared database; store nothing."""
    dataset = fo.load_dataset(dataset_name)
    dataset.reload()  # a reused worker process holds the dataset as an earlier task saw it
    fitted = job.fit(dataset, num_threads=1, progress=False)
    _exit_once()
    return fitted


def _exit_once() -> None:
    """Test hook: with ``SYNTHCURATE_TEST_EXIT_ONCE=PATH``, the first task that creates file
    PATH ends its worker process after training, before its result is returned (a worker
    killed mid-cell); later tasks find the file and go on."""
    marker = os.environ.get(EXIT_ONCE)
    if not marker:
        return
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return
    os._exit(1)


def database_uri() -> str:
    """The MongoDB this process is connected to (FiftyOne's own, when it started one)."""
    if fo.config.database_uri:
        return fo.config.database_uri

    host, port = food.get_db_client().address
    return f"mongodb://{host}:{port}"


def worker_environment() -> dict[str, str]:
    """The variables every Ray worker gets: this process's ``FIFTYONE_*`` and
    ``SYNTHCURATE_*``, with its database and media folder (see the module)."""
    env = {k: v for k, v in os.environ.items() if k.startswith(_FORWARDED)}
    env.pop("FIFTYONE_PRIVATE_DATABASE_PORT", None)
    env["FIFTYONE_DATABASE_URI"] = database_uri()
    env["FIFTYONE_DATABASE_NAME"] = fo.config.database_name
    env["FIFTYONE_DEFAULT_DATASET_DIR"] = str(Path(fo.config.default_dataset_dir).resolve())
    return env


def _host_port(address: str) -> tuple[str, int]:
    """Where a Ray address (``auto``, ``ray://HOST:PORT`` or ``HOST:PORT``) listens."""
    if address == "auto":
        from ray._private.utils import read_ray_address

        found = os.environ.get("RAY_ADDRESS") or read_ray_address()
        if not found:
            raise CurateError(
                "--address auto: no Ray cluster was started on this machine (`ray start --head`)"
            )
        address = found
    parsed = urlparse(address if "://" in address else f"//{address}")
    try:
        port = parsed.port
    except ValueError:
        port = None
    if parsed.scheme not in ("", "ray") or not parsed.hostname or port is None:
        raise CurateError(f"Ray address {address!r}: use local, auto, ray://HOST:PORT or HOST:PORT")
    return parsed.hostname, port


def check_address(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Raise a one-line error unless a Ray server answers at ``address`` within ``timeout``
    seconds (``ray.init`` waits much longer for an address that is down): a socket connect,
    then the ping Ray's own client sends (anything may accept a connection: a proxy, a
    firewall).

    Raises:
        CurateError: a malformed address, no answer, or a cluster that wants its token.
    """
    host, port = _host_port(address)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as error:
        why = error.strerror or type(error).__name__
        raise CurateError(
            f"Ray address {address!r} does not answer ({host}:{port}: {why})"
        ) from None
    code = _ping(f"{host}:{port}", client=address.startswith("ray://"), timeout=timeout)
    if code == "UNAUTHENTICATED":
        raise CurateError(
            f"the Ray cluster at {address!r} wants its token: set RAY_AUTH_MODE=token and "
            "copy the head's ~/.ray/auth_token here (or set RAY_AUTH_TOKEN)"
        )
    if code is not None:
        raise CurateError(f"Ray address {address!r} does not answer as Ray ({host}:{port}: {code})")


def _ping(target: str, *, client: bool, timeout: float) -> str | None:
    """``None`` when the Ray client server (``client``) or the GCS at ``target`` answers a
    ping, else the gRPC status code's name."""
    import grpc
    from ray.core.generated import (
        gcs_service_pb2,
        gcs_service_pb2_grpc,
        ray_client_pb2,
        ray_client_pb2_grpc,
    )

    try:  # with the cluster's token when token authentication is on (Ray >= 2.52)
        from ray._private.grpc_utils import init_grpc_channel
    except ImportError:
        init_grpc_channel = grpc.insecure_channel
    channel = init_grpc_channel(target)
    try:
        if client:
            stub = ray_client_pb2_grpc.RayletDriverStub(channel)
            ping = ray_client_pb2.ClusterInfoRequest(type=ray_client_pb2.ClusterInfoType.PING)
            stub.ClusterInfo(ping, timeout=timeout)
        else:
            stub = gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel)
            stub.GetClusterId(gcs_service_pb2.GetClusterIdRequest(), timeout=timeout)
    except grpc.RpcError as error:
        return error.code().name
    finally:
        channel.close()
    return None


def _check_database_reach(uri: str) -> None:
    """A database on this machine's loopback cannot serve workers on other machines.

    Raises:
        CurateError: the cluster has such workers.
    """
    import ray

    if urlparse(uri).hostname not in _LOOPBACK:
        return
    here = {ray.util.get_node_ip_address(), *_LOOPBACK}
    others = sorted({n["NodeManagerAddress"] for n in ray.nodes() if n["Alive"]} - here)
    if others:
        raise CurateError(
            f"the database {uri} listens on this machine only: Ray nodes {', '.join(others)} "
            "cannot reach it; set FIFTYONE_DATABASE_URI to a MongoDB every node reaches"
        )


def _start_ray(config: RayConfig) -> str:
    """Start a local Ray or join a cluster (checked to answer first); returns where."""
    import ray

    env = worker_environment()
    runtime_env = {"env_vars": env}
    address = config.address or LOCAL
    if address == LOCAL:
        workers = config.workers or os.cpu_count() or 1
        ray.init(
            address=LOCAL,
            num_cpus=workers,
            object_store_memory=OBJECT_STORE_BYTES,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.WARNING,
            runtime_env=runtime_env,
        )
        return f"a local Ray of {workers} CPU(s)"
    check_address(address)
    options = {} if address.startswith("ray://") else {"log_to_driver": False}
    try:
        ray.init(address=address, runtime_env=runtime_env, **options)
    except ConnectionError as error:
        raise CurateError(f"cannot join the Ray cluster at {address!r}: {error}") from None
    try:
        _check_database_reach(env["FIFTYONE_DATABASE_URI"])
    except CurateError:
        ray.shutdown()
        raise
    return f"the Ray cluster at {address}"


def _require_ray() -> None:
    """Raise a one-line error with the install hint when Ray is missing."""
    try:
        import ray  # noqa: F401
    except ImportError:
        raise CurateError("Ray is not installed: pip install 'synthcurate[scale]'") from None


@contextlib.contextmanager
def open_trainer(config: RayConfig | None, echo: Echo) -> Iterator[Trainer]:
    """The trainer that ``config`` asks for (``None``: this process). A Ray started (or
    joined) here is shut down (left) at the end; one this process had already started is used
    as it is, and its workers must reach the same database.

    Raises:
        CurateError: a Ray address that does not answer, or a cluster that cannot reach the
            database; before the study does any work.
    """
    if config is None:
        yield InProcess()
        return
    _require_ray()
    import ray

    started = not ray.is_initialized()
    where = _start_ray(config) if started else "the Ray this process started"
    try:
        trainer = RayTrainer(config.retries)
        unit = "GPU" if trainer.gpus else "CPU"
        echo(f"[ray] trainings run on {where}, one {unit} each")
        yield trainer
    finally:
        if started:
            ray.shutdown()
