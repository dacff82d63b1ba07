"""Data-parallel work on several devices with plain ``torch.distributed``.

:func:`launch` starts one process per device (``spawn``), joins them in a process group (NCCL
on GPUs, gloo on CPUs, rendezvous on a free loopback port: one machine) and runs a worker
function in each; the worker's rank and device are :func:`current`. Inside a worker the
training loops use the collectives below, which are no-ops in a single process, so the same
loop runs on one device or N:

- :func:`shard`: the items of this rank (the same number on every rank, so collectives match);
- :func:`average_gradients`: the mean gradient over ranks, one flat all-reduce per optimizer
  step (what ``DistributedDataParallel`` computes, without its bucket overlap: it serves loops
  with several networks and frozen parts, like a GAN's);
- :func:`mean_value`, :func:`broadcast_state`, :func:`gather`.

A worker sends progress to the launching process with :func:`send`; :func:`launch` hands each
message to ``on_message`` as it arrives (e.g. to store a finished batch) and returns rank 0's
return value. Workers die with the launching process (``PR_SET_PDEATHSIG``); a worker that fails
or dies stops the others and raises in the launcher: an :class:`~brain.errors.InputError` of a
worker is raised as it is (one line), anything else as :class:`WorkerError` with its traceback.
"""

from __future__ import annotations

import contextlib
import os
import queue as queues
import signal
import socket
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from brain.errors import InputError

_POLL_SECONDS = 0.2


class WorkerError(RuntimeError):
    """A worker process failed (not on bad input) or died."""


@dataclass(frozen=True)
class Rank:
    """Where a worker runs: its rank, the number of processes and its torch device."""

    rank: int
    world_size: int
    device: str


_CURRENT: Rank | None = None
_MESSAGES: Any = None


def cpu_slots() -> int:
    """CPU cores this process may use (its affinity), the most CPU processes :func:`launch`
    starts."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def plan_devices(devices: int, device: str = "auto") -> list[str]:
    """The torch device of each of ``devices`` processes: ``cuda:0 .. cuda:N-1`` when
    ``device`` resolves to CUDA, else ``cpu`` for each (one process per CPU core at most).

    Raises:
        InputError: ``devices`` below 1 or more than the machine has (naming both).
    """
    import torch

    from brain.devices import resolve_device

    if devices < 1:
        raise InputError(f"`devices` must be at least 1, got {devices}", params=("devices",))
    resolved = resolve_device(device)
    if resolved.startswith("cuda"):
        present = torch.cuda.device_count()
        if devices > present:
            raise InputError(
                f"`devices` {devices} asked for but torch sees {present} CUDA device(s)",
                params=("devices",),
            )
        if devices == 1:
            return [resolved]
        if resolved != "cuda":
            raise InputError(
                f"`devices` {devices} uses cuda:0..cuda:{devices - 1}; give `device` cuda or "
                f"auto, not {resolved!r}",
                params=("devices", "device"),
            )
        return [f"cuda:{i}" for i in range(devices)]
    slots = cpu_slots()
    if devices > slots:
        raise InputError(
            f"`devices` {devices} asked for but this machine has no GPU and {slots} CPU "
            "core(s) (one CPU process per core)",
            params=("devices",),
        )
    return ["cpu"] * devices


def current() -> Rank | None:
    """This worker's rank and device (``None`` outside :func:`launch`)."""
    return _CURRENT


def world_size() -> int:
    """Processes in the group (1 outside :func:`launch`)."""
    return 1 if _CURRENT is None else _CURRENT.world_size


def rank() -> int:
    """This process's rank (0 outside :func:`launch`)."""
    return 0 if _CURRENT is None else _CURRENT.rank


def is_main() -> bool:
    """Whether this is rank 0 (the one that writes files and shows progress)."""
    return rank() == 0


def shard(items: Sequence[Any]) -> list[Any]:
    """This rank's share of ``items``: every ``world_size``-th from its rank, the same number
    on every rank (a remainder of fewer than ``world_size`` items is left out)."""
    size = world_size()
    if size == 1:
        return list(items)
    usable = len(items) - len(items) % size
    return list(items[rank() : usable : size])


def average_gradients(parameters: Iterable[Any]) -> None:
    """Replace each gradient by its mean over ranks (one flat all-reduce); parameters without
    a gradient are skipped (the same ones on every rank: the same code ran)."""
    if world_size() == 1:
        return
    import torch
    import torch.distributed as dist

    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def mean_value(value: float) -> float:
    """The mean of ``value`` over ranks (``value`` itself in one process)."""
    if world_size() == 1:
        return value
    import torch
    import torch.distributed as dist

    tensor = torch.tensor([float(value)], dtype=torch.float64)
    dist.all_reduce(tensor)
    return float(tensor.item()) / world_size()


def sum_values(*values: float) -> list[float]:
    """The sums of ``values`` over ranks (the values themselves in one process)."""
    if world_size() == 1:
        return [float(v) for v in values]
    import torch
    import torch.distributed as dist

    tensor = torch.tensor([float(v) for v in values], dtype=torch.float64)
    dist.all_reduce(tensor)
    return [float(v) for v in tensor.tolist()]


def broadcast_state(module: Any) -> None:
    """Copy rank 0's parameters and buffers of ``module`` to every rank."""
    if world_size() == 1:
        return
    import torch.distributed as dist

    with contextlib.suppress(AttributeError):
        tensors = list(module.state_dict().values())
        for tensor in tensors:
            dist.broadcast(tensor, src=0)


def gather(value: Any) -> list[Any]:
    """``value`` of every rank, in rank order (``[value]`` in one process)."""
    if world_size() == 1:
        return [value]
    import torch.distributed as dist

    values: list[Any] = [None] * world_size()
    dist.all_gather_object(values, value)
    return values


def send(message: Any) -> None:
    """Hand ``message`` (picklable; numpy rather than tensors, whose shared memory dies with
    the sender) to the launcher's ``on_message`` (outside :func:`launch`:
    nothing happens; the caller handles its own results)."""
    if _MESSAGES is not None:
        _MESSAGES.put(("message", rank(), message))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """Ask Linux to kill this process when its parent dies (no effect elsewhere)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _entry(
    index: int,
    devices: list[str],
    port: int,
    threads: int | None,
    messages: Any,
    worker: Callable[..., Any],
    args: tuple,
) -> None:
    global _CURRENT, _MESSAGES
    _die_with_parent()
    import torch
    import torch.distributed as dist

    device = devices[index]
    _CURRENT, _MESSAGES = Rank(index, len(devices), device), messages
    try:
        if threads:
            torch.set_num_threads(threads)
        if device.startswith("cuda"):
            torch.cuda.set_device(device)
        dist.init_process_group(
            "nccl" if device.startswith("cuda") else "gloo",
            init_method=f"tcp://127.0.0.1:{port}",
            rank=index,
            world_size=len(devices),
        )
        result = worker(*args)
        dist.barrier()
        messages.put(("done", index, result if index == 0 else None))
    except InputError as error:
        messages.put(("input-error", index, str(error)))
    except BaseException as error:  # reported to the launcher, which raises
        messages.put(("error", index, f"{error!r}\n{traceback.format_exc()}"))
    finally:
        with contextlib.suppress(Exception):
            if dist.is_initialized():
                dist.destroy_process_group()


def launch(
    worker: Callable[..., Any],
    args: tuple,
    devices: list[str],
    *,
    on_message: Callable[[Any], None] | None = None,
    threads: int | None = None,
) -> Any:
    """Run ``worker(*args)`` in one process per entry of ``devices`` (see the module
    docstring) and return rank 0's return value.

    Args:
        worker: a module-level function (workers are spawned and import it by name); it
            returns numpy arrays rather than tensors (see :func:`send`).
        args: its arguments (pickled to each process).
        devices: each process's torch device (:func:`plan_devices`).
        on_message: called in this process with each message a worker :func:`send`.
        threads: torch CPU threads per process (default: the CPU cores shared among them).

    Raises:
        InputError: a worker rejected its input (its message).
        WorkerError: a worker failed otherwise or died.
    """
    import torch.multiprocessing as mp

    context = mp.get_context("spawn")
    messages = context.Queue()
    port = _free_port()
    if threads is None and devices[0] == "cpu":
        threads = max(1, cpu_slots() // len(devices))
    processes = [
        context.Process(
            target=_entry,
            args=(i, devices, port, threads, messages, worker, args),
            daemon=True,
            name=f"synthcurate-rank{i}",
        )
        for i in range(len(devices))
    ]
    for process in processes:
        process.start()
    done: dict[int, Any] = {}
    try:
        while len(done) < len(processes):
            try:
                kind, index, payload = messages.get(timeout=_POLL_SECONDS)
            except queues.Empty:
                for i, process in enumerate(processes):
                    if i not in done and process.exitcode is not None:
                        raise WorkerError(
                            f"worker {i} of {len(processes)} died (exit code {process.exitcode})"
                        ) from None
                continue
            if kind == "message":
                if on_message is not None:
                    on_message(payload)
            elif kind == "done":
                done[index] = payload
            elif kind == "input-error":
                raise InputError(payload)
            else:
                raise WorkerError(f"worker {index} of {len(processes)} failed: {payload}")
        for process in processes:
            process.join()
        return done[0]
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
            process.join()
        messages.close()
