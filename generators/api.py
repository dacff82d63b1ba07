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

The run record ``generate_<run>`` (config and results, with the loss history and any warnings)
is stored through FiftyOne's runs API (``brain.runs``).

Images of mixed sizes reach the generator through the dataset's size policy (``curate config
NAME --size N``, or ``size`` / ``pad`` here): each is padded to a centred square keeping the
background and resized, in memory; outputs are written at that size. A generator never emits
the same image twice in a run: methods with a finite set of outputs per source (``interpolation``)
add no more than that, with a warning.

Reruns are idempotent: the plan of pairs is deterministic (a seeded order of the sources, seed =
``seed + round``), pairs already in the dataset for the run are skipped, and samples are added in
batches of ``batch_size`` so that a killed run loses at most one batch (its PNGs are rewritten,
identically, on the rerun). A training that was interrupted continues with ``resume=True``.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter
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
    read_images,
    read_masks,
    real_train,
    working_shape,
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
    warnings: list[str] = field(default_factory=list)


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
def _with_defaults(method: str, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` as JSON values, with the method's defaults for parameters it lacks (a run or
    checkpoint recorded before a parameter existed)."""
    defaults = GENERATORS.get(method).default_params()
    return json.loads(json.dumps({**defaults, **params}))


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
    kwargs["condition"] = condition if condition is not None else cls.default_condition(shape[2])
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
        saved = _with_defaults(generator.method, card["params"])
        changed = sorted(k for k in wanted if saved.get(k) != wanted[k])
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
    if stored.get("generator") == config["generator"]:
        stored = {**stored, "params": _with_defaults(config["generator"], stored["params"])}
    for key in ("generator", "params", "source_view", "seed", "size", "pad"):
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
    config: dict[str, Any]
    warnings: list[str]

    def read_sources(self, index: list[int]) -> np.ndarray:
        """The source images ``index`` as the generator takes them (size policy applied)."""
        return read_images([self.source_paths[i] for i in index], self.size, self.pad)


def _size_policy(dataset, size: int | None, pad: str | None) -> tuple[int | None, str | None]:
    """``size`` and ``pad`` checked, the dataset's policy filling what is not given (``pad`` is
    ``None`` when no size applies).

    Raises:
        CurateError: on a size outside 8-1024, an unknown padding, or a padding without a size.
    """
    from curation.schema import check_size, size_policy

    policy_size, policy_pad = size_policy(dataset)
    size = check_size(size if size is not None else policy_size)
    if pad is not None:
        from brain.data import check_pad

        check_pad(pad)
        if size is None:
            raise CurateError(
                f"--pad {pad} needs a size: pass --size N or set a size policy with "
                f"`curate config {dataset.name} --size N`"
            )
    return (None, None) if size is None else (int(size), pad or policy_pad)


def _source_view(dataset, cls: type[Generator], source_view: str | None) -> tuple[str, Any]:
    """The name and samples (sorted by id) of the view the run translates."""
    view_name = source_view or cls.default_source
    if source_view is None and view_name == "pool" and not len(resolve_view(dataset, "pool")):
        view_name = COMMON_TRAIN
    sources = resolve_view(dataset, view_name).sort_by("id")
    if len(sources) == 0:
        raise CurateError(f"source view {view_name!r} is empty")
    return view_name, sources


def _other_class(dataset, cls: type[Generator], rare: str):
    """The real train images of the other class, for methods that fit on them (else ``None``)."""
    if cls.fit_sources != "other-class":
        return None
    others = by_label(real_train(dataset), rare, rare_class=False).sort_by("id")
    if len(others) == 0:
        raise CurateError(f"{cls.method} needs real train images of another class")
    return others


def _fit_sources(generator: Generator, sources, others, view_name: str, size, pad):
    """What ``fit`` gets as ``sources``: the other class, the source domain, or ``None``."""
    from fiftyone import ViewField as F

    from curation.schema import SPLIT_FIELD

    if others is not None:
        return read_images(others.values("filepath"), size, pad)
    if generator.fit_sources == "source-domain":
        domain = sources.match(F(SPLIT_FIELD).is_in(["train", "pool"]))
        if len(domain) < generator.min_train_images:
            raise CurateError(
                f"{generator.method} trains on the train/pool images of the source view: "
                f"{len(domain)} in {view_name!r}, at least {generator.min_train_images} needed"
            )
        return read_images(domain.values("filepath"), size, pad)
    return None


def _train_warnings(generator: Generator, n_train: int, checkpoint: str | None) -> list[str]:
    """Warnings about the training data (a network trained on few rare-class images)."""
    from generators.training import few_images_warning

    if not generator.trains or checkpoint is not None:
        return []
    warning = few_images_warning(generator.method, n_train, bool(getattr(generator, "flip", True)))
    return [] if warning is None else [warning]


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
    size,
    pad,
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
    size, pad = _size_policy(dataset, size, pad)

    train_view = by_label(real_train(dataset), rare, rare_class=True).sort_by("id")
    if len(train_view) == 0:
        raise CurateError(f"dataset {dataset_name!r} has no real train images of {rare!r}")
    view_name, sources = _source_view(dataset, cls, source_view)
    others = _other_class(dataset, cls, rare)
    train_shapes, source_shapes = image_shapes(train_view), image_shapes(sources)
    what = f"the {rare!r} train images and source view {view_name!r}"
    if others is not None:
        what = f"the train images and source view {view_name!r}"
    other_shapes = [] if others is None else image_shapes(others)
    shape = working_shape(train_shapes + source_shapes + other_shapes, size, what, dataset_name)
    generator = _make_generator(method, shape, condition, seed, params or {})
    if steps is not None:
        generator.check_sampling_steps(steps)
    if checkpoint is None and len(train_view) < generator.min_train_images:
        raise CurateError(
            f"{method} needs at least {generator.min_train_images} rare-class images to train; "
            f"the train split has {len(train_view)}"
        )
    if mask_field is not None and not generator._uses_masks():
        raise CurateError(f"{method} with condition {generator._condition().spec()} uses no masks")
    source_ids, source_paths, source_groups = sources.values(["id", "filepath", GROUP_FIELD])
    source_masks = read_masks(sources, mask_field, source_ids, source_shapes, size)
    train_ids, train_paths = train_view.values(["id", "filepath"])
    target_masks = None
    if mask_field is not None and generator._condition().uses_masks and method == "bbdm":
        target_masks = read_masks(
            train_view, mask_field, train_ids, train_shapes, size, required=False
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
        "size": size,
        "pad": pad,
    }
    _check_run_config(dataset, run, config)
    return _Inputs(
        dataset=dataset,
        rare=rare,
        generator=generator,
        shape=shape,
        size=size,
        pad=pad,
        targets=read_images(train_paths, size, pad),
        target_masks=target_masks,
        fit_sources=_fit_sources(generator, sources, others, view_name, size, pad),
        view_name=view_name,
        source_ids=list(source_ids),
        source_paths=list(source_paths),
        source_groups=list(source_groups),
        source_masks=source_masks,
        config=config,
        warnings=_train_warnings(generator, len(train_view), checkpoint),
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
    params = {
        **generator.get_params(),
        "sampling_steps": sampling_steps,
        "size": inputs.size,
        "pad": inputs.pad,
    }
    ensure_schema(inputs.dataset)
    with tqdm(
        total=len(todo), unit="img", desc=f"generate {generator.method}", disable=not progress
    ) as bar:
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            index = [i for i, _ in batch]
            images = generator.generate(
                inputs.read_sources(index),
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


def _torch_threads(count: int | None):
    """Torch on ``count`` CPU threads while the block runs (``None``: as it is)."""
    if count is None:
        return contextlib.nullcontext()
    if count < 1:
        raise CurateError(f"threads must be at least 1, got {count}")
    from brain.training import torch_threads

    return torch_threads(count)


def _training_results(generator: Generator, run_dir: Path, seconds: float, title: str) -> dict:
    """The run record's results after training (or loading): digest, loss history and curve."""
    from generators.plots import write_loss_curve

    loss_curve = None
    if generator.loss_history_:
        loss_curve = str(write_loss_curve(generator.loss_history_, run_dir / LOSS_PNG, title=title))
    history, every = _downsample(generator.loss_history_)
    return {
        "status": "generating",
        "checkpoint_digest": generator.checkpoint_digest,
        "checkpoint_dir": str(run_dir / CHECKPOINT_DIR),
        "images_dir": str(run_dir / IMAGES_DIR),
        "trained_steps": len(generator.loss_history_),
        "loss_history": history,
        "loss_history_every": every,
        "loss_curve": loss_curve,
        "train_seconds": round(seconds, 3),
    }


def _distinct_only(inputs: _Inputs, plan: list[tuple[int, int]], wanted: int):
    """``plan`` without the pairs that would repeat an image of their source (for methods with
    a finite set of outputs per source), and a warning when some were dropped."""
    generator = inputs.generator
    if not generator.finite_outputs:
        return plan, []
    used = sorted({i for i, _ in plan})
    limits = generator.distinct_images(inputs.read_sources(used))
    limit = dict(zip(used, limits.tolist(), strict=True))
    counts: Counter[int] = Counter()
    kept = []
    for i, sample_seed in plan:
        counts[i] += 1
        if counts[i] <= limit[i]:
            kept.append((i, sample_seed))
    if len(kept) == len(plan):
        return plan, []
    warning = (
        f"{generator.method} can make only {sum(limit.values())} different images from these "
        f"{len(used)} source images; the run holds {len(kept)} of the {wanted} asked (more "
        "rare-class images give more)"
    )
    return kept, [warning]


def _pairs_to_add(inputs: _Inputs, run: str, n: int | None, seed: int):
    """The ``(source index, seed)`` pairs still to add, the pairs the run already has, and
    warnings about the plan."""
    generator = inputs.generator
    existing = existing_pairs(inputs.dataset, run)
    weights = getattr(generator, "source_weights_", None)
    weights = weights if inputs.view_name == RARE_TRAIN else None
    wanted = n if n is not None else len(inputs.source_ids)
    plan = plan_pairs(len(inputs.source_ids), wanted, seed, weights)
    plan, warnings = _distinct_only(inputs, plan, wanted)
    todo = [(i, s) for i, s in plan if (inputs.source_ids[i], s) not in existing]
    return todo[: max(0, len(plan) - len(existing))], existing, warnings


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
    size: int | None = None,
    pad: str | None = None,
    device: str = "auto",
    num_threads: int | None = None,
    progress: bool = True,
) -> GenerateReport:
    """Train (or load) a generator and add its synthetic rare-class samples to a dataset.

    Args:
        dataset_name: the project dataset.
        method: a generator name (``GENERATORS.names()``).
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
        mask_field: a Segmentation field holding the masks of the sources (and, for bbdm with
            the ``masked`` condition, of the training images if they have them); random boxes
            when omitted.
        checkpoint: a saved generator folder to use instead of training.
        checkpoint_every: training checkpoint interval (default: a tenth of the run, <= 500).
        batch_size: images generated and added per batch (a kill loses at most one batch).
        size: pad every image to a centred square and resize it to ``size x size`` (8-1024)
            before the generator sees it; outputs are made at that size. Default: the dataset's
            size policy (``curate config``), else all images must share one square size.
        pad: how ``size`` pads (``border``, ``edge``, ``reflect``, ``constant:VALUE``); default:
            the dataset's policy, else ``border`` (the colour of the image border).
        device: where networks run: ``auto`` (CUDA if available), ``cpu`` or ``cuda``.
        num_threads: torch CPU threads while training and generating (``None``: as it is).
        progress: show progress bars.

    Returns:
        A :class:`GenerateReport` (its ``warnings`` are also in the run record's results).

    Raises:
        CurateError: on bad input (too few rare-class images, a condition that does not fit the
            method or the channel count, an empty source view, mixed image sizes without a size
            policy, a checkpoint of another method or shape, masks of the wrong size, a run name
            reused with other settings); nothing is added then.
    """
    from brain.runs import run_key, store_run
    from curation.datasets import media_root

    threads = _torch_threads(num_threads)
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
        size=size,
        pad=pad,
    )
    run_dir = media_root(dataset_name) / "generate" / run_key("generate", run)[len("generate_") :]
    with threads:
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
        results = _training_results(generator, run_dir, train_seconds, f"{method} {run}")
        results["warnings"] = list(inputs.warnings)
        store_run(inputs.dataset, "generate", run, inputs.config, results)  # listed meanwhile

        todo, existing, plan_warnings = _pairs_to_add(inputs, run, n, seed)
        warnings = inputs.warnings + plan_warnings
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
        warnings=warnings,
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
        checkpoint_digest=generator.checkpoint_digest,
        trained_steps=len(generator.loss_history_),
        run_dir=str(run_dir),
        images_dir=str(run_dir / IMAGES_DIR),
        loss_curve=results["loss_curve"],
        train_seconds=round(train_seconds, 3),
        generate_seconds=round(generate_seconds, 3),
        images_per_second=None if rate is None else round(rate, 3),
        config=inputs.config,
        warnings=warnings,
    )


def report_dict(report: GenerateReport) -> dict[str, Any]:
    """The report as a JSON-ready dict."""
    return asdict(report)
