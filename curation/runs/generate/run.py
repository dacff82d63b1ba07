"""Generate runs: synthetic rare-class samples added to a project dataset (``curate generate``).

:func:`generate` trains a generator (:mod:`generators`) on the dataset's real *train*
rare-class images (never val or test), or loads the run's finished checkpoint, then makes one
image per planned ``(source sample, seed)`` pair and adds it as a sample with ``origin =
synthetic``, ``ground_truth`` = the rare class, ``split = train`` (synthetic samples are
training candidates), the source's ``group`` and a ``lineage`` (source id and path, method, run,
checkpoint digest, seed, parameters). Files live under the dataset's media folder, never beside
the sources::

    <media>/generate/<run>/checkpoint/   generator.json, weights.safetensors, training_state.pt
    <media>/generate/<run>/images/       <source id>_<seed>.png
    <media>/generate/<run>/loss.png      the loss curve

The run record ``generate_<run>`` (:class:`GenerateConfig`, :class:`GenerateResults`, with the
loss history and any warnings) is stored with FiftyOne's runs API. Deleting the run removes its
samples and that folder.

Images of mixed sizes reach the generator through the dataset's size policy (``curate config
NAME --size N``, or ``size`` / ``pad`` here): each is padded to a centred square keeping the
background and resized, in memory; outputs are written at that size. A generator never emits
the same image twice in a run: methods with a finite set of outputs per source
(``interpolation``) add no more than that, with a warning.

Reruns are idempotent: the plan of pairs is deterministic (a seeded order of the sources, seed =
``seed + round``), pairs already in the dataset for the run are skipped, and samples are added in
batches of ``batch_size`` so that a killed run loses at most one batch (its PNGs are rewritten,
identically, on the rerun). A training that was interrupted continues with ``resume=True``.
A rerun whose earlier samples lost their image files is refused, saying how many are missing:
delete the run and generate it again (its samples are never silently counted as made).

On several devices (``devices`` > 1, :mod:`generators.parallel`) a network generator trains
data-parallel, one process per device, and generation shards the planned batches over the
processes; this process alone adds samples, each batch once, as its PNGs are reported written.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import fiftyone as fo
import numpy as np

from brain.devices import torch_threads
from brain.distributed import plan_devices
from brain.progress import every_nth, progress_bar
from brain.size_policy import SizePolicy
from curation.datasets import as_dataset
from curation.errors import CurateError
from curation.media import run_area_folder
from curation.names import RARE_TRAIN, check_run_name
from curation.runs.base import Record, RunKind, register
from curation.runs.footprint import Footprint, own_folder
from curation.runs.generate import data as data
from curation.runs.generate.data import existing_pairs, make_sample, run_samples
from curation.runs.records import run_key
from curation.schema import GROUP_FIELD, SPLIT_FIELD, ensure_schema, rare_class, run_size_policy
from generators import GENERATORS
from generators.parallel import Batch, generate_on_devices, write_batch
from generators.planning import distinct_only, downsample_history, plan_pairs
from generators.plots import write_loss_curve
from generators.sessions import make_generator, train_or_load, with_defaults
from generators.sources import read_images

CHECKPOINT_DIR, IMAGES_DIR, LOSS_PNG = "checkpoint", "images", "loss.png"


def run_dir(dataset_name: str, run: str) -> Path:
    """The folder of generate run ``run`` (checkpoint, images, loss curve; not created),
    strictly inside ``<media>/generate``.

    Raises:
        CurateError: a name whose folder would not lie inside it (e.g. an empty one).
    """
    suffix = run_key("generate", run).removeprefix("generate_")
    return run_area_folder(dataset_name, "generate", suffix)


@dataclass(frozen=True)
class GenerateConfig(Record):
    """What a generate run is asked (stored as ``config``, resolved: the method's full
    parameters, the source view, the condition and the size policy it used). Built at the edge
    (:func:`generate`, the CLI, the App, a study)."""

    generator: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    source_view: str | None = None
    seed: int = 0
    condition: str | None = None
    train_steps: int | None = None
    sampling_steps: int | None = None
    n: int | None = None
    mask_field: str | None = None
    checkpoint: str | None = None
    size: int | None = None
    pad: str | None = None
    devices: int = 1

    @property
    def size_policy(self) -> SizePolicy:
        """The size policy the run's images were shaped by."""
        return SizePolicy.from_record({"size": self.size, "pad": self.pad})


@dataclass
class GenerateResults(Record):
    """What a generate run gave (stored as ``results``; :func:`generate` returns it).

    Attributes:
        status: ``generating`` while samples are added, then ``complete``.
        checkpoint_digest: sha256 of the weights that generated.
        checkpoint_dir, images_dir, loss_curve: where its files are.
        trained_steps: training steps of the checkpoint; loss_history: the loss, averaged over
            ``loss_history_every`` steps per point.
        train_seconds, generate_seconds: timings.
        added: samples added by the last call; skipped: those the run already had; total:
            samples of the run.
        warnings: few training images, or fewer different images than asked.
        sources: the source view, its sample count, its samples per split and the condition.
        dataset, run, method, run_dir, config: the run's dataset, name, generator, folder and
            config (not stored: the record's key and config hold them).
    """

    status: str = "generating"
    checkpoint_digest: str = ""
    checkpoint_dir: str = ""
    images_dir: str = ""
    trained_steps: int = 0
    loss_history: list[float] = field(default_factory=list)
    loss_history_every: int = 1
    loss_curve: str | None = None
    train_seconds: float = 0.0
    added: int = 0
    skipped: int = 0
    total: int = 0
    generate_seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    sources: dict[str, Any] = field(default_factory=dict)
    dataset: str = ""
    run: str = ""
    method: str = ""
    run_dir: str = ""
    config: dict[str, Any] = field(default_factory=dict)

    _NOT_STORED = ("dataset", "run", "method", "run_dir", "config")

    @property
    def images_per_second(self) -> float | None:
        """Samples added per second of generation (``None`` when none were added)."""
        if not self.added or self.generate_seconds <= 0:
            return None
        return round(self.added / self.generate_seconds, 3)

    def to_record(self) -> dict[str, Any]:
        record = super().to_record()
        for name in self._NOT_STORED:
            del record[name]
        return record

    def as_dict(self) -> dict[str, Any]:
        """Everything, as a JSON-ready dict (``curate generate --json``)."""
        return {**asdict(self), "images_per_second": self.images_per_second}


def describe_sources(report: GenerateResults) -> str:
    """One line on what a generate run translated: the source view, its samples by split, and
    the condition, e.g. ``sources: view 'pool', 40 samples (pool 40); condition channel:2``."""
    sources = report.sources
    splits = ", ".join(f"{split} {n}" for split, n in sources.get("splits", {}).items())
    return (
        f"sources: view {sources.get('view')!r}, {sources.get('count', 0)} samples ({splits}); "
        f"condition {sources.get('condition') or 'none'}"
    )


@register
class GenerateKind(RunKind):
    """Generate runs: the samples they added and their folder (checkpoint, images, curve)."""

    kind = "generate"
    config_type = GenerateConfig
    results_type = GenerateResults

    def comparable(self, config: Record) -> dict[str, Any]:
        """Method, parameters (with the method's defaults), sources, seed and size policy: a
        run is resumed or extended under its name only with all of them unchanged."""
        params = config.params
        if config.generator in GENERATORS:
            params = with_defaults(config.generator, params)
        asked = {
            "generator": config.generator,
            "seed": config.seed,
            "source_view": config.source_view,
            "size_policy": config.size_policy.as_record(),
            "params": params,
        }
        return json.loads(json.dumps(asked))

    def execute(
        self, dataset: fo.Dataset, name: str, config: GenerateConfig, *, overwrite: bool, **options
    ) -> GenerateResults:
        return _generate(dataset, name, config, overwrite=overwrite, **options)

    def footprint(self, dataset: fo.Dataset, name: str) -> Footprint:
        return Footprint(
            samples=run_samples(dataset, name).values("id"),
            files=own_folder(run_dir, dataset.name, name),
        )


GENERATE = GenerateKind()


@dataclass
class _Inputs:
    """Everything :func:`generate` needs, validated before anything is written."""

    dataset: fo.Dataset
    rare: str
    generator: Any
    shape: tuple[int, int, int]
    size: int | None
    pad: str | None
    targets: np.ndarray
    target_masks: np.ndarray | None
    fit_sources: np.ndarray | None
    view_name: str
    source_ids: list[str]
    source_paths: list[str]
    source_groups: list[str | None]
    source_masks: np.ndarray | None
    source_splits: dict[str, int]
    config: GenerateConfig
    warnings: list[str]
    devices: list[str]
    replace: bool = False

    def read_sources(self, index: list[int]) -> np.ndarray:
        """The source images ``index`` as the generator takes them (size policy applied)."""
        return read_images([self.source_paths[i] for i in index], self.size, self.pad)


def _prepare(
    dataset: fo.Dataset,
    run: str,
    asked: GenerateConfig,
    *,
    batch_size: int,
    device: str,
    overwrite: bool,
) -> _Inputs:
    """Read and check everything a run needs, resolving ``asked`` against the dataset (nothing
    is written)."""
    method = asked.generator
    n, steps, train_steps = asked.n, asked.sampling_steps, asked.train_steps
    check_run_name(run)
    devices = plan_devices(asked.devices, device)
    rare = rare_class(dataset)
    if rare is None:
        raise CurateError(f"dataset {dataset.name!r} has no rare class recorded")
    cls = GENERATORS.get(method)
    if n is not None and n < 1:
        raise CurateError(f"`n` must be at least 1, got {n}", params=("n",))
    if batch_size < 1:
        raise CurateError(
            f"`batch_size` must be at least 1, got {batch_size}", params=("batch_size",)
        )
    if steps is not None and not cls.samples_in_steps:
        raise CurateError(f"{method} does not take sampling `steps`", params=("steps",))
    if train_steps is not None and not cls.trains:
        raise CurateError(f"{method} does not train: drop `train_steps`", params=("train_steps",))
    policy = run_size_policy(dataset, asked.size, asked.pad)
    size, pad = policy.size, policy.pad

    train_view = data.by_label(data.real_train(dataset), rare, rare_class=True).sort_by("id")
    if len(train_view) == 0:
        raise CurateError(f"dataset {dataset.name!r} has no real train images of {rare!r}")
    view_name, sources = data.source_view(dataset, cls.default_source, asked.source_view)
    others = data.other_class(dataset, cls.fit_sources, method, rare)
    train_shapes, source_shapes = data.image_shapes(train_view), data.image_shapes(sources)
    what = f"the {rare!r} train images and source view {view_name!r}"
    if others is not None:
        what = f"the train images and source view {view_name!r}"
    other_shapes = [] if others is None else data.image_shapes(others)
    shapes = train_shapes + source_shapes + other_shapes
    shape = data.working_shape(shapes, size, what, dataset.name)
    generator = make_generator(method, shape, asked.condition, asked.seed, asked.params)
    capabilities = generator.capabilities()
    if steps is not None:
        generator.check_sampling_steps(steps)
    checkpoint, mask_field = asked.checkpoint, asked.mask_field
    if checkpoint is None and len(train_view) < capabilities.min_train_images:
        raise CurateError(
            f"{method} needs at least {capabilities.min_train_images} rare-class images to "
            f"train; the train split has {len(train_view)}"
        )
    if mask_field is not None and not capabilities.uses_masks:
        raise CurateError(f"{method} with condition {capabilities.condition} uses no masks")
    source_ids, source_paths, source_groups = sources.values(["id", "filepath", GROUP_FIELD])
    source_masks = data.read_masks(sources, mask_field, source_ids, source_shapes, size)
    train_ids, train_paths = train_view.values(["id", "filepath"])
    target_masks = None
    if mask_field is not None and capabilities.fits_masks:
        target_masks = data.read_masks(
            train_view, mask_field, train_ids, train_shapes, size, required=False
        )
    config = dataclasses.replace(  # what the run resolved
        asked,
        params=generator.get_params(),
        source_view=view_name,
        condition=capabilities.condition,
        size=size,
        pad=pad,
        devices=len(devices),
    )
    replace = GENERATE.check_reuse(dataset, run, config, overwrite=overwrite)
    if not replace:
        data.check_run_images(dataset, run)
    return _Inputs(
        dataset=dataset,
        rare=rare,
        generator=generator,
        shape=shape,
        size=size,
        pad=pad,
        targets=read_images(train_paths, size, pad),
        target_masks=target_masks,
        fit_sources=data.fit_sources(capabilities, sources, others, view_name, size, pad),
        view_name=view_name,
        source_ids=list(source_ids),
        source_paths=list(source_paths),
        source_groups=list(source_groups),
        source_masks=source_masks,
        source_splits=dict(
            sorted((str(k), n) for k, n in sources.count_values(SPLIT_FIELD).items())
        ),
        config=config,
        warnings=[] if checkpoint is not None else generator.training_warnings(len(train_view)),
        devices=devices,
        replace=replace,
    )


def _pairs_to_add(inputs: _Inputs, run: str, n: int | None, seed: int):
    """The ``(source index, seed)`` pairs still to add, the pairs the run already has, and
    warnings about the plan."""
    generator = inputs.generator
    existing = existing_pairs(inputs.dataset, run)
    weights = generator.source_weights_ if inputs.view_name == RARE_TRAIN else None
    wanted = n if n is not None else len(inputs.source_ids)
    plan = plan_pairs(len(inputs.source_ids), wanted, seed, weights)
    plan, warnings = distinct_only(generator, plan, wanted, inputs.read_sources)
    todo = [(i, s) for i, s in plan if (inputs.source_ids[i], s) not in existing]
    return todo[: max(0, len(plan) - len(existing))], existing, warnings


def _add_batches(inputs: _Inputs, todo, run, saved: Path, *, steps, batch_size, progress):
    """Generate ``todo`` pairs batch by batch: write the PNGs, then add the batch's samples (on
    several devices the batches are sharded, and each is added when its PNGs are written)."""
    generator = inputs.generator
    images_dir = run_dir(inputs.dataset.name, run) / IMAGES_DIR
    sampling_steps = steps if steps is not None else generator.capabilities().sampling_steps
    params = {
        **generator.get_params(),
        "sampling_steps": sampling_steps,
        "size": inputs.size,
        "pad": inputs.pad,
    }
    pairs = [todo[start : start + batch_size] for start in range(0, len(todo), batch_size)]
    masks = inputs.source_masks
    batches = [
        Batch(
            sources=[inputs.source_paths[i] for i, _ in pair],
            seeds=[seed for _, seed in pair],
            outputs=[str(images_dir / f"{inputs.source_ids[i]}_{seed}.png") for i, seed in pair],
            masks=None if masks is None else masks[[i for i, _ in pair]],
        )
        for pair in pairs
    ]
    ensure_schema(inputs.dataset)
    with progress_bar(
        total=len(todo),
        unit="image",
        desc=f"generate {generator.method}",
        enabled=progress,
        every=every_nth(len(todo)),
    ) as bar:

        def add(index: int) -> None:
            samples = []
            for (i, seed), path in zip(pairs[index], batches[index].outputs, strict=True):
                lineage = {
                    "source_id": inputs.source_ids[i],
                    "source_filepath": inputs.source_paths[i],
                    "generator": generator.method,
                    "run": run,
                    "checkpoint_digest": generator.checkpoint_digest,
                    "seed": seed,
                    "params": params,
                }
                samples.append(
                    make_sample(
                        Path(path),
                        inputs.shape,
                        rare=inputs.rare,
                        group=inputs.source_groups[i],
                        lineage=lineage,
                    )
                )
            inputs.dataset.add_samples(samples, progress=False)
            bar.update(len(samples))

        if len(inputs.devices) > 1 and len(batches) > 1:
            generate_on_devices(
                saved,
                batches,
                inputs.devices,
                size=inputs.size,
                pad=inputs.pad,
                steps=steps,
                on_batch=add,
            )
            return
        for index, batch in enumerate(batches):
            write_batch(generator, batch, size=inputs.size, pad=inputs.pad, steps=steps)
            add(index)


def _training_results(generator, folder: Path, seconds: float, title: str) -> GenerateResults:
    """The run record's results after training (or loading): digest, loss history and curve."""
    loss_curve = None
    if generator.loss_history_:
        loss_curve = str(write_loss_curve(generator.loss_history_, folder / LOSS_PNG, title=title))
    history, every = downsample_history(generator.loss_history_)
    return GenerateResults(
        status="generating",
        checkpoint_digest=generator.checkpoint_digest,
        checkpoint_dir=str(folder / CHECKPOINT_DIR),
        images_dir=str(folder / IMAGES_DIR),
        trained_steps=len(generator.loss_history_),
        loss_history=history,
        loss_history_every=every,
        loss_curve=loss_curve,
        train_seconds=round(seconds, 3),
    )


def generate(
    dataset: fo.Dataset | str,
    method: str,
    run: str,
    *,
    condition: str | None = None,
    source_view: str | None = None,
    n: int | None = None,
    steps: int | None = None,
    train_steps: int | None = None,
    resume: bool = False,
    seed: int = 0,
    params: dict[str, Any] | None = None,
    mask_field: str | None = None,
    checkpoint: str | None = None,
    checkpoint_every: int | None = None,
    batch_size: int = 32,
    size: int | None = None,
    pad: str | None = None,
    device: str = "auto",
    devices: int = 1,
    overwrite: bool = False,
    num_threads: int | None = None,
    progress: bool = True,
) -> GenerateResults:
    """Train (or load) a generator and add its synthetic rare-class samples to a dataset.

    Args:
        dataset: the project dataset (or its name).
        method: a generator name (``generators.GENERATORS.names()``).
        run: the run name (letters, digits, ``_``, ``-``); reruns continue it.
        condition: the condition spec (``channel:2``, ``blur:3``, ``masked``, ...); default: the
            method's for the channel count (``Generator.default_condition``: bbdm ``channel:2``
            from 3 channels on, else ``blur:3``; cyclegan ``channel:2``, else ``grayscale``).
        source_view: the view whose images are translated: a saved view, a built-in view
            (``pool``, ``real-train``, ...), ``rare-train`` or ``common-train``. Default: the
            method's (``pool`` for bbdm and cyclegan, ``common-train`` when the pool is empty;
            ``common-train`` for masked_ddpm; ``rare-train`` for the classic methods).
        n: total synthetic samples wanted for the run (default: one per source); a method with
            a finite set of outputs per source (``interpolation``) adds no more than it can make
            different, with a warning.
        steps: sampling steps (diffusion methods; their default if omitted).
        train_steps: total training steps (methods that train; their default if omitted).
        resume: continue an interrupted (or extend a finished) training of this run.
        seed: the run's seed (training randomness, source order, sample seeds).
        params: other constructor parameters of the method (e.g. ``{"preset": "tiny"}``,
            ``{"min_train_images": 4}``).
        mask_field: a Segmentation field holding the masks of the sources (and, for methods
            that fit on masks with the ``masked`` condition, of the training images if they
            have them); random boxes when omitted.
        checkpoint: a saved generator folder to use instead of training.
        checkpoint_every: training checkpoint interval (default: a tenth of the run, <= 500).
        batch_size: images generated and added per batch (a kill loses at most one batch).
        size: pad every image to a centred square and resize it to ``size x size`` (8-1024)
            before the generator sees it; outputs are made at that size. Default: the dataset's
            size policy (``curate config``), else all images must share one square size.
        pad: how ``size`` pads (``border``, ``edge``, ``reflect``, ``constant:VALUE``); default:
            the dataset's policy, else ``border`` (the colour of the image border).
        device: where networks run: ``auto`` (CUDA if available), ``cpu`` or ``cuda``.
        devices: processes, one per device (GPUs ``cuda:0..N-1``, or CPU cores without a GPU):
            a network generator trains data-parallel (``batch_size`` of the method per device;
            a training resumes with the same number) and generation is sharded over them.
        overwrite: replace a stored run of this name that was asked another method,
            parameters, sources, seed or size policy (its samples and files are deleted
            first); without it such a rerun is refused.
        num_threads: torch CPU threads while training and generating (``None``: as it is).
        progress: show progress bars.

    Returns:
        The :class:`GenerateResults` (also stored under ``generate_<run>``).

    Raises:
        InputError: on bad input (too few rare-class images, a condition that does not fit the
            method or the channel count, an empty source view, mixed image sizes without a size
            policy, a checkpoint of another method or shape, masks of the wrong size, an invalid
            run name, a run name reused with other settings, a rerun whose earlier images are
            missing); nothing is added then.
    """
    config = GenerateConfig(
        generator=method,
        params=dict(params or {}),
        source_view=source_view,
        seed=seed,
        condition=condition,
        train_steps=train_steps,
        sampling_steps=steps,
        n=n,
        mask_field=mask_field,
        checkpoint=checkpoint,
        size=size,
        pad=pad,
        devices=devices,
    )
    options = {"resume": resume, "checkpoint_every": checkpoint_every, "batch_size": batch_size}
    return GENERATE.run(
        as_dataset(dataset),
        run,
        config,
        overwrite=overwrite,
        device=device,
        num_threads=num_threads,
        progress=progress,
        **options,
    )


def _generate(
    dataset: fo.Dataset,
    run: str,
    asked: GenerateConfig,
    *,
    overwrite: bool,
    resume: bool = False,
    checkpoint_every: int | None = None,
    batch_size: int = 32,
    device: str = "auto",
    num_threads: int | None = None,
    progress: bool = True,
) -> GenerateResults:
    """What :meth:`GenerateKind.execute` does (see :func:`generate`)."""
    inputs = _prepare(
        dataset, run, asked, batch_size=batch_size, device=device, overwrite=overwrite
    )
    method, seed, n, steps = asked.generator, asked.seed, asked.n, asked.sampling_steps
    checkpoint, train_steps = asked.checkpoint, asked.train_steps
    if inputs.replace:
        GENERATE.delete(dataset, run)
    folder = run_dir(dataset.name, run)
    with torch_threads(num_threads):
        started = time.perf_counter()
        generator = train_or_load(
            inputs.generator.set_device(device),
            checkpoint_dir=folder / CHECKPOINT_DIR,
            checkpoint=checkpoint,
            targets=inputs.targets,
            fit_sources=inputs.fit_sources,
            target_masks=inputs.target_masks,
            train_steps=train_steps,
            checkpoint_every=checkpoint_every,
            resume=resume,
            progress=progress,
            devices=inputs.devices,
        )
        inputs.generator = generator
        train_seconds = time.perf_counter() - started
        results = _training_results(generator, folder, train_seconds, f"{method} {run}")
        results.warnings = list(inputs.warnings)
        GENERATE.store(dataset, run, inputs.config, results)  # listed meanwhile

        todo, existing, plan_warnings = _pairs_to_add(inputs, run, n, seed)
        warnings = inputs.warnings + plan_warnings
        started = time.perf_counter()
        _add_batches(
            inputs,
            todo,
            run,
            Path(checkpoint) if checkpoint is not None else folder / CHECKPOINT_DIR,
            steps=steps,
            batch_size=batch_size,
            progress=progress,
        )
        generate_seconds = time.perf_counter() - started

    results.status = "complete"
    results.added, results.skipped = len(todo), len(existing)
    results.total = len(existing) + len(todo)
    results.generate_seconds = round(generate_seconds, 3)
    results.warnings = warnings
    results.sources = {
        "view": inputs.view_name,
        "count": len(inputs.source_ids),
        "splits": inputs.source_splits,
        "condition": inputs.config.condition,
    }
    GENERATE.store(dataset, run, inputs.config, results)
    results.dataset, results.run, results.method = dataset.name, run, method
    results.run_dir, results.config = str(folder), inputs.config.to_record()
    return results
