"""Generate synthetic rare-class samples into a project dataset (the API of ``curate generate``).

:func:`generate` trains a generator on the dataset's real *train* rare-class images (never val or
test), or loads the run's finished checkpoint, then makes one image per planned
``(source sample, seed)`` pair and adds it as a sample with ``origin = synthetic``,
``ground_truth`` = the rare class, ``split = train`` (synthetic samples are training candidates),
the source's ``group`` and a ``lineage`` (source id and path, method, run, checkpoint digest, seed,
parameters). Files live under the dataset's media folder, never beside the sources::

    <media>/generate/<run>/checkpoint/   generator.json, weights.safetensors, training_state.pt
    <media>/generate/<run>/images/       <source id>_<seed>.png
    <media>/generate/<run>/loss.png      the loss curve

The run record ``generate_<run>`` (config and results, with the loss history) is stored through
FiftyOne's runs API (``brain.runs``).

Reruns are idempotent: the plan of pairs is deterministic (a seeded order of the sources, seed =
``seed + round``), pairs already in the dataset for the run are skipped, and samples are added in
batches of ``batch_size`` so that a killed run loses at most one batch (its PNGs are rewritten,
identically, on the rerun). A training that was interrupted continues with ``resume=True``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from curation.datasets import resolve_view
from curation.errors import CurateError
from generators.base import CARD_FILE, GENERATORS, Generator, read_card
from generators.sources import (
    COMMON_TRAIN,
    RARE_TRAIN,
    by_label,
    image_shapes,
    one_shape,
    read_images,
    read_masks,
    real_train,
)

CHECKPOINT_DIR, IMAGES_DIR, LOSS_PNG = "checkpoint", "images", "loss.png"
MAX_HISTORY_POINTS = 2000


@dataclass
class GenerateReport:
    """What :func:`generate` did."""

    dataset: str
    run: str
    method: str
    added: int
    skipped: int
    total: int
    checkpoint_digest: str
    trained_steps: int
    run_dir: str
    images_dir: str
    loss_curve: str | None
    train_seconds: float
    generate_seconds: float
    images_per_second: float | None
    config: dict[str, Any] = field(default_factory=dict)


# -- planning -----------------------------------------------------------------------------------
def plan_pairs(
    n_sources: int, n: int, seed: int, weights: np.ndarray | None = None
) -> list[tuple[int, int]]:
    """The first ``n`` ``(source index, sample seed)`` pairs of a run, deterministically.

    Sources are visited in an order drawn from ``seed``; round ``r`` uses sample seed
    ``seed + r``. With ``weights`` (ADASYN), source ``i`` gets about ``n * weights[i]`` pairs
    (largest remainders), interleaved by round.
    """
    order = np.random.default_rng(seed).permutation(n_sources)
    if weights is None:
        return [(int(order[k % n_sources]), seed + k // n_sources) for k in range(n)]
    share = np.asarray(weights, dtype=np.float64) * n
    counts = np.floor(share).astype(int)
    remainder = share - counts
    for i in np.argsort(-remainder, kind="stable")[: n - counts.sum()]:
        counts[i] += 1
    pairs = [
        (int(i), seed + r)
        for r in range(int(counts.max(initial=0)))
        for i in order
        if counts[i] > r
    ]
    return pairs[:n]


def _downsample(history: list[float]) -> tuple[list[float], int]:
    """At most ``MAX_HISTORY_POINTS`` means of consecutive steps, and the steps per point."""
    every = max(1, -(-len(history) // MAX_HISTORY_POINTS))
    values = np.asarray(history, dtype=np.float64)
    points = [float(values[i : i + every].mean()) for i in range(0, len(values), every)]
    return points, every


# -- the generator of a run ---------------------------------------------------------------------
def _make_generator(method: str, shape, condition, seed, params) -> Generator:
    cls = GENERATORS.get(method)
    allowed = set(cls._param_names()) - {"image_size", "channels", "condition", "seed"}
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise CurateError(
            f"unknown parameter(s) for {method}: {', '.join(unknown)}; known: "
            f"{', '.join(sorted(allowed)) or 'none'}"
        )
    kwargs = dict(params)
    if condition is not None:
        kwargs["condition"] = condition
    generator = cls(shape[0], shape[2], seed=seed, **kwargs)
    generator._validate_params()
    return generator


def _train_or_load(
    generator: Generator,
    *,
    checkpoint_dir: Path,
    checkpoint: str | None,
    targets: np.ndarray,
    fit_sources: np.ndarray | None,
    target_masks: np.ndarray | None,
    train_steps: int | None,
    checkpoint_every: int | None,
    resume: bool,
    progress: bool,
) -> Generator:
    """Load ``checkpoint`` or the run's finished checkpoint, else train (or resume). A run's
    checkpoint trained on other images (e.g. the dataset was replaced) is refused."""
    from generators.training import TRAIN_STATE_FILE

    size, channels = generator.image_size, generator.channels
    device = getattr(generator, "device", "auto")
    if checkpoint is not None:
        loaded = type(generator).load(checkpoint, image_size=size, channels=channels)
        return loaded.set_device(device)
    saved = (checkpoint_dir / CARD_FILE).is_file()
    if saved:
        card = read_card(checkpoint_dir)
        if card["method"] != generator.method:
            raise CurateError(
                f"{checkpoint_dir} holds a {card['method']!r} checkpoint, not {generator.method!r}"
            )
        wanted = json.loads(json.dumps(generator.get_params()))
        changed = sorted(k for k in wanted if card["params"].get(k) != wanted[k])
        if changed:
            raise CurateError(
                f"the run's checkpoint was made with other parameters ({', '.join(changed)}); "
                "use another run name"
            )
        target = card.get("steps_target") or getattr(generator, "default_train_steps", 0)
        done = not generator.trains or card.get("steps_trained", 0) >= (train_steps or target)
        if done:
            loaded = type(generator).load(checkpoint_dir, image_size=size, channels=channels)
            if not loaded.trained_on(targets, fit_sources, target_masks):
                raise CurateError(
                    f"the run's checkpoint in {checkpoint_dir} was trained on other images (did "
                    "the dataset change?); use another run name"
                )
            return loaded.set_device(device)
    if generator.trains and (checkpoint_dir / TRAIN_STATE_FILE).is_file() and not resume:
        raise CurateError(
            f"run checkpoint {checkpoint_dir} holds an unfinished training; pass --resume to "
            "continue it, or use another run name"
        )
    if generator.trains and train_steps is not None and checkpoint_every is None:
        checkpoint_every = max(1, min(500, train_steps // 10))
    generator.fit(
        targets,
        fit_sources,
        masks=target_masks,
        steps=train_steps,
        checkpoint_dir=checkpoint_dir if generator.trains else None,
        checkpoint_every=checkpoint_every,
        resume=resume,
        progress=progress,
    )
    if not generator.trains:
        generator.save(checkpoint_dir)
    return generator


def _check_run_config(dataset, run: str, config: dict[str, Any]) -> None:
    """Refuse to reuse a run name with another method, parameters or sources."""
    from brain.runs import has_run, load_run

    if not has_run(dataset, "generate", run):
        return
    stored, _ = load_run(dataset, "generate", run)
    for key in ("generator", "params", "source_view", "seed"):
        before, now = (json.loads(json.dumps(c)) for c in (stored.get(key), config[key]))
        if before == now:
            continue
        if isinstance(before, dict) and isinstance(now, dict):
            changed = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))
            what = f"params ({', '.join(f'{k}: {before.get(k)!r}' for k in changed)})"
        else:
            what = f"{key} ({before!r})"
        raise CurateError(
            f"run {run!r} exists with another {what}; use another run name or delete the run"
        )


# -- the API ---------------------------------------------------------------------------------
@dataclass
class _Inputs:
    """Everything :func:`generate` needs, validated before anything is written."""

    dataset: Any
    rare: str
    generator: Generator
    shape: tuple[int, int, int]
    targets: np.ndarray
    target_masks: np.ndarray | None
    fit_sources: np.ndarray | None
    view_name: str
    source_ids: list[str]
    source_paths: list[str]
    source_groups: list[str | None]
    source_masks: np.ndarray | None
    config: dict[str, Any]


def _fit_sources(dataset, generator: Generator, rare: str, sources, view_name: str, shape):
    from fiftyone import ViewField as F

    from curation.schema import SPLIT_FIELD

    if generator.fit_sources == "other-class":
        others = by_label(real_train(dataset), rare, rare_class=False).sort_by("id")
        if len(others) == 0:
            raise CurateError(f"{generator.method} needs real train images of another class")
        one_shape([*image_shapes(others), shape], "the train images")
        return read_images(others.values("filepath"))
    if generator.fit_sources == "source-domain":
        domain = sources.match(F(SPLIT_FIELD).is_in(["train", "pool"]))
        if len(domain) < generator.min_train_images:
            raise CurateError(
                f"{generator.method} trains on the train/pool images of the source view: "
                f"{len(domain)} in {view_name!r}, at least {generator.min_train_images} needed"
            )
        return read_images(domain.values("filepath"))
    return None


def _prepare(
    dataset_name,
    method,
    run,
    *,
    condition,
    source_view,
    n,
    steps,
    train_steps,
    seed,
    params,
    mask_field,
    checkpoint,
    batch_size,
) -> _Inputs:
    from brain.runs import run_key
    from curation.datasets import open_dataset
    from curation.schema import GROUP_FIELD, rare_class

    dataset = open_dataset(dataset_name)
    run_key("generate", run)
    rare = rare_class(dataset)
    if rare is None:
        raise CurateError(f"dataset {dataset_name!r} has no rare class recorded")
    cls = GENERATORS.get(method)
    if n is not None and n < 1:
        raise CurateError(f"n must be at least 1, got {n}")
    if batch_size < 1:
        raise CurateError(f"batch size must be at least 1, got {batch_size}")
    if steps is not None and not cls.samples_in_steps:
        raise CurateError(f"{method} does not take sampling steps")
    if train_steps is not None and not cls.trains:
        raise CurateError(f"{method} does not train: drop the training steps")

    train_view = by_label(real_train(dataset), rare, rare_class=True).sort_by("id")
    if len(train_view) == 0:
        raise CurateError(f"dataset {dataset_name!r} has no real train images of {rare!r}")
    shape = one_shape(image_shapes(train_view), f"the {rare!r} train images")
    generator = _make_generator(method, shape, condition, seed, params or {})
    if steps is not None:
        generator.check_sampling_steps(steps)
    if checkpoint is None and len(train_view) < generator.min_train_images:
        raise CurateError(
            f"{method} needs at least {generator.min_train_images} rare-class images to train; "
            f"the train split has {len(train_view)}"
        )

    view_name = source_view or cls.default_source
    if source_view is None and view_name == "pool" and not len(resolve_view(dataset, "pool")):
        view_name = COMMON_TRAIN
    sources = resolve_view(dataset, view_name).sort_by("id")
    if len(sources) == 0:
        raise CurateError(f"source view {view_name!r} is empty")
    got = one_shape(image_shapes(sources), f"images of source view {view_name!r}")
    if got != shape:
        raise CurateError(
            f"source view {view_name!r} has {got[0]}x{got[1]}x{got[2]} images but the {rare!r} "
            f"train images are {shape[0]}x{shape[1]}x{shape[2]}"
        )
    if mask_field is not None and not generator._uses_masks():
        raise CurateError(f"{method} with condition {generator._condition().spec()} uses no masks")
    source_ids, source_paths, source_groups = sources.values(["id", "filepath", GROUP_FIELD])
    source_masks = read_masks(sources, mask_field, source_ids)
    train_ids, train_paths = train_view.values(["id", "filepath"])
    target_masks = None
    if mask_field is not None and generator._condition().uses_masks and method == "bbdm":
        target_masks = read_masks(train_view, mask_field, train_ids, required=False)
    for masks in (source_masks, target_masks):
        if masks is not None and masks.shape[1:] != shape[:2]:
            raise CurateError(
                f"masks in {mask_field!r} are {masks.shape[1]}x{masks.shape[2]} but the images "
                f"are {shape[0]}x{shape[1]}"
            )
    config = {
        "generator": method,
        "params": generator.get_params(),
        "source_view": view_name,
        "seed": seed,
        "condition": generator._condition().spec(),
        "train_steps": train_steps,
        "sampling_steps": steps,
        "n": n,
        "mask_field": mask_field,
        "checkpoint": checkpoint,
    }
    _check_run_config(dataset, run, config)
    return _Inputs(
        dataset=dataset,
        rare=rare,
        generator=generator,
        shape=shape,
        targets=read_images(train_paths),
        target_masks=target_masks,
        fit_sources=_fit_sources(dataset, generator, rare, sources, view_name, shape),
        view_name=view_name,
        source_ids=list(source_ids),
        source_paths=list(source_paths),
        source_groups=list(source_groups),
        source_masks=source_masks,
        config=config,
    )


def existing_pairs(dataset, run: str) -> set[tuple[str, int]]:
    """``(source id, seed)`` of the synthetic samples run ``run`` already added."""
    from fiftyone import ViewField as F

    from curation.schema import LINEAGE_FIELD, ORIGIN_FIELD, SYNTHETIC

    if LINEAGE_FIELD not in dataset.get_field_schema():
        return set()
    view = dataset.match((F(ORIGIN_FIELD) == SYNTHETIC) & (F(f"{LINEAGE_FIELD}.run") == run))
    ids, seeds = view.values([f"{LINEAGE_FIELD}.source_id", f"{LINEAGE_FIELD}.seed"])
    return set(zip(ids, seeds, strict=True))


def _make_sample(inputs: _Inputs, i: int, seed: int, path: Path, run: str, digest: str, params):
    import fiftyone as fo

    from curation.schema import (
        GROUP_FIELD,
        LABEL_FIELD,
        LINEAGE_FIELD,
        ORIGIN_FIELD,
        SPLIT_FIELD,
        SYNTHETIC,
        make_lineage,
    )

    height, width, channels = inputs.shape
    sample = fo.Sample(
        filepath=str(path),
        metadata=fo.ImageMetadata(width=width, height=height, num_channels=channels),
    )
    sample[LABEL_FIELD] = fo.Classification(label=inputs.rare)
    sample[SPLIT_FIELD] = "train"
    sample[ORIGIN_FIELD] = SYNTHETIC
    sample[GROUP_FIELD] = inputs.source_groups[i]
    sample[LINEAGE_FIELD] = make_lineage(
        source_id=inputs.source_ids[i],
        source_filepath=inputs.source_paths[i],
        generator=inputs.generator.method,
        run=run,
        checkpoint_digest=digest,
        seed=seed,
        params=params,
    )
    return sample


def _add_batches(inputs: _Inputs, todo, run, images_dir: Path, *, steps, batch_size, progress):
    """Generate ``todo`` pairs batch by batch: write the PNGs, then add the batch's samples."""
    from tqdm.auto import tqdm

    from curation.images import write_png
    from curation.schema import ensure_schema

    generator = inputs.generator
    digest = generator.checkpoint_digest
    sampling_steps = steps if steps is not None else getattr(generator, "sampling_steps", None)
    params = {**generator.get_params(), "sampling_steps": sampling_steps}
    ensure_schema(inputs.dataset)
    with tqdm(
        total=len(todo), unit="img", desc=f"generate {generator.method}", disable=not progress
    ) as bar:
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            index = [i for i, _ in batch]
            images = generator.generate(
                read_images([inputs.source_paths[i] for i in index]),
                [seed for _, seed in batch],
                masks=None if inputs.source_masks is None else inputs.source_masks[index],
                steps=steps,
            )
            samples = []
            for (i, seed), image in zip(batch, images, strict=True):
                path = images_dir / f"{inputs.source_ids[i]}_{seed}.png"
                write_png(image, path)
                samples.append(_make_sample(inputs, i, seed, path, run, digest, params))
            inputs.dataset.add_samples(samples, progress=False)
            bar.update(len(samples))


def generate(
    dataset_name: str,
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
    device: str = "auto",
    progress: bool = True,
) -> GenerateReport:
    """Train (or load) a generator and add its synthetic rare-class samples to a dataset.

    Args:
        dataset_name: the project dataset.
        method: a generator name (``GENERATORS.names()``).
        run: the run name (letters, digits, ``_``, ``-``); reruns continue it.
        condition: the condition spec (``channel:2``, ``masked``, ...); the method's default if
            omitted.
        source_view: the view whose images are translated: a saved view, a built-in view
            (``pool``, ``real-train``, ...), ``rare-train`` or ``common-train``. Default: the
            method's (``pool`` for bbdm and cyclegan, ``common-train`` when the pool is empty;
            ``common-train`` for masked_ddpm; ``rare-train`` for the classic methods).
        n: total synthetic samples wanted for the run (default: one per source).
        steps: sampling steps (diffusion methods; their default if omitted).
        train_steps: total training steps (methods that train; their default if omitted).
        resume: continue an interrupted (or extend a finished) training of this run.
        seed: the run's seed (training randomness, source order, sample seeds).
        params: other constructor parameters of the method (e.g. ``{"preset": "tiny"}``).
        mask_field: a Segmentation field holding the masks of the sources (and, for bbdm with
            the ``masked`` condition, of the training images if they have them); random boxes
            when omitted.
        checkpoint: a saved generator folder to use instead of training.
        checkpoint_every: training checkpoint interval (default: a tenth of the run, <= 500).
        batch_size: images generated and added per batch (a kill loses at most one batch).
        device: where networks run: ``auto`` (CUDA if available), ``cpu`` or ``cuda``.
        progress: show progress bars.

    Returns:
        A :class:`GenerateReport`.

    Raises:
        CurateError: on bad input (too few rare-class images, a channel out of range, an empty
            source view or one of another shape, a checkpoint of another method or shape, masks
            of the wrong size, a run name reused with other settings); nothing is added then.
    """
    from brain.runs import run_key, store_run
    from curation.datasets import media_root
    from generators.plots import write_loss_curve

    inputs = _prepare(
        dataset_name,
        method,
        run,
        condition=condition,
        source_view=source_view,
        n=n,
        steps=steps,
        train_steps=train_steps,
        seed=seed,
        params=params,
        mask_field=mask_field,
        checkpoint=checkpoint,
        batch_size=batch_size,
    )
    run_dir = media_root(dataset_name) / "generate" / run_key("generate", run)[len("generate_") :]
    started = time.perf_counter()
    generator = _train_or_load(
        inputs.generator.set_device(device),
        checkpoint_dir=run_dir / CHECKPOINT_DIR,
        checkpoint=checkpoint,
        targets=inputs.targets,
        fit_sources=inputs.fit_sources,
        target_masks=inputs.target_masks,
        train_steps=train_steps,
        checkpoint_every=checkpoint_every,
        resume=resume,
        progress=progress,
    )
    inputs.generator = generator
    train_seconds = time.perf_counter() - started
    loss_curve = None
    if generator.loss_history_:
        title = f"{method} {run}"
        loss_curve = str(write_loss_curve(generator.loss_history_, run_dir / LOSS_PNG, title=title))
    history, every = _downsample(generator.loss_history_)
    digest = generator.checkpoint_digest
    results = {
        "status": "generating",
        "checkpoint_digest": digest,
        "checkpoint_dir": str(run_dir / CHECKPOINT_DIR),
        "images_dir": str(run_dir / IMAGES_DIR),
        "trained_steps": len(generator.loss_history_),
        "loss_history": history,
        "loss_history_every": every,
        "loss_curve": loss_curve,
        "train_seconds": round(train_seconds, 3),
    }
    store_run(inputs.dataset, "generate", run, inputs.config, results)  # listed while generating

    existing = existing_pairs(inputs.dataset, run)
    weights = getattr(generator, "source_weights_", None)
    weights = weights if inputs.view_name == RARE_TRAIN else None
    wanted = n if n is not None else len(inputs.source_ids)
    plan = plan_pairs(len(inputs.source_ids), wanted, seed, weights)
    todo = [(i, s) for i, s in plan if (inputs.source_ids[i], s) not in existing]
    todo = todo[: max(0, wanted - len(existing))]
    started = time.perf_counter()
    _add_batches(
        inputs,
        todo,
        run,
        run_dir / IMAGES_DIR,
        steps=steps,
        batch_size=batch_size,
        progress=progress,
    )
    generate_seconds = time.perf_counter() - started

    results.update(
        status="complete",
        added=len(todo),
        total=len(existing) + len(todo),
        generate_seconds=round(generate_seconds, 3),
    )
    store_run(inputs.dataset, "generate", run, inputs.config, results)
    rate = len(todo) / generate_seconds if todo and generate_seconds > 0 else None
    return GenerateReport(
        dataset=dataset_name,
        run=run,
        method=method,
        added=len(todo),
        skipped=len(existing),
        total=len(existing) + len(todo),
        checkpoint_digest=digest,
        trained_steps=len(generator.loss_history_),
        run_dir=str(run_dir),
        images_dir=str(run_dir / IMAGES_DIR),
        loss_curve=loss_curve,
        train_seconds=round(train_seconds, 3),
        generate_seconds=round(generate_seconds, 3),
        images_per_second=None if rate is None else round(rate, 3),
        config=inputs.config,
    )


def report_dict(report: GenerateReport) -> dict[str, Any]:
    """The report as a JSON-ready dict."""
    return asdict(report)
