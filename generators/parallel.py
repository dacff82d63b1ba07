"""Generators on several devices (:mod:`brain.distributed`, one process per device).

- :func:`fit_on_devices` trains a network generator data-parallel (see
  :mod:`generators.training`) into a checkpoint folder and loads the result in this process;
  the saved generator is the same kind of folder a single process writes.
- :func:`generate_on_devices` shards planned batches over processes: batch ``i`` goes to rank
  ``i mod N``, which loads the saved generator, makes the batch's images and writes their PNGs,
  then reports the batch index; the caller records each batch once, as it is reported. Images
  are seeded per sample, so a batch gives the same PNGs on any rank (same kind of device).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brain import distributed
from brain.size_policy import DEFAULT_PAD
from generators.base import Generator


@dataclass(frozen=True)
class Batch:
    """One batch of generation: source image files, a seed and an output PNG per sample."""

    sources: list[str]
    seeds: list[int]
    outputs: list[str]
    masks: np.ndarray | None = None


def write_batch(
    generator: Generator, batch: Batch, *, size: int | None, pad: str | None, steps: int | None
) -> None:
    """Generate ``batch`` (sources read under the size policy ``size``/``pad``) and write each
    image to its output PNG."""
    from brain.images import write_png
    from generators.sources import read_images

    sources = read_images(batch.sources, size, pad or DEFAULT_PAD)
    images = generator.generate(sources, batch.seeds, masks=batch.masks, steps=steps)
    for image, path in zip(images, batch.outputs, strict=True):
        write_png(image, Path(path))


def fit_on_devices(
    generator: Generator,
    devices: list[str],
    *,
    targets: np.ndarray,
    sources: np.ndarray | None,
    masks: np.ndarray | None,
    steps: int | None,
    checkpoint_dir: Path,
    checkpoint_every: int | None,
    resume: bool,
    progress: bool,
) -> Generator:
    """Train ``generator`` on ``len(devices)`` processes into ``checkpoint_dir`` (as
    :meth:`Generator.fit` does) and return the trained generator loaded in this process.

    Raises:
        InputError: as ``fit`` (raised by the first process that meets it).
    """
    args = (generator, targets, sources, masks, steps, checkpoint_dir, checkpoint_every, resume)
    distributed.launch(_fit_worker, (*args, progress), devices)
    loaded = type(generator).load(
        checkpoint_dir, image_size=generator.image_size, channels=generator.channels
    )
    return loaded.set_device(generator.device)


def _fit_worker(
    generator, targets, sources, masks, steps, checkpoint_dir, checkpoint_every, resume, progress
) -> None:
    here = distributed.current()
    generator.set_device(here.device if here is not None else generator.device)
    generator.fit(
        targets,
        sources,
        masks=masks,
        steps=steps,
        checkpoint_dir=checkpoint_dir,
        checkpoint_every=checkpoint_every,
        resume=resume,
        progress=progress,
    )


def generate_on_devices(
    saved: Path,
    batches: list[Batch],
    devices: list[str],
    *,
    size: int | None,
    pad: str | None,
    steps: int | None,
    on_batch: Callable[[int], None],
) -> None:
    """Make ``batches`` with the generator saved in ``saved`` on ``len(devices)`` processes;
    ``on_batch(i)`` is called here once batch ``i``'s PNGs are written.

    Raises:
        InputError: a worker could not load the generator or read a source.
        brain.distributed.WorkerError: a worker failed otherwise or died.
    """
    distributed.launch(
        _generate_worker, (str(saved), batches, size, pad, steps), devices, on_message=on_batch
    )


def _generate_worker(saved: str, batches: list[Batch], size, pad, steps) -> None:
    here = distributed.current()
    generator = Generator.load(saved)
    if here is not None:
        generator.set_device(here.device)
    for index in range(distributed.rank(), len(batches), distributed.world_size()):
        write_batch(generator, batches[index], size=size, pad=pad, steps=steps)
        distributed.send(index)
