"""Choose a filter's level on the real val split: by pass rate, or by retraining.

Two ways, neither reads the test split:

- :func:`calibrate_pass_rate` (``calibrate="val"``, no training): the level at which a target
  share (default 95%) of the real rare-class *val* samples pass. Val samples are real, so they
  should pass; the network behind the embeddings never saw them, so they land where new
  samples land, unlike the train samples the filter was fitted on.
- :func:`calibrate_level` (``calibrate="retrain"``): for every candidate level, the synthetic
  samples that pass at that level join the real train split, a classifier is trained per seed
  (the epoch kept is the one best on the validation split, as in :func:`brain.training.fit`),
  and the level whose mean validation F1 of the rare class is highest wins.

The test split is never decoded here. Nothing is written to the dataset or disk.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from brain.metrics import FEW_RARE
from curation.errors import CurateError

CALIBRATIONS = ("val", "retrain")


def calibrate_pass_rate(
    flt,
    val_scores: np.ndarray,
    val_rare: np.ndarray,
    *,
    target: float = 0.95,
) -> dict[str, Any]:
    """The level of the fitted filter ``flt`` at which ``target`` of the real rare val samples
    pass.

    Args:
        flt: a fitted filter.
        val_scores: its scores of the real val samples (both classes).
        val_rare: rare-class mask of those samples.
        target: the share of rare val samples that must pass, in ``(0, 1)``.

    Returns:
        ``method`` ("val"), ``level``, ``threshold``, ``target``, ``n_val_rare``,
        ``val_rare_pass`` (the share reached), ``val_other_pass`` (share of the other class
        passing at that level, NaN without one) and ``warnings``.

    Raises:
        CurateError: a target outside (0, 1) or no rare val sample.
    """
    if not 0.0 < float(target) < 1.0:
        raise CurateError(f"the calibration target must lie strictly between 0 and 1, got {target}")
    scores = np.asarray(val_scores, dtype=np.float64)
    rare = np.asarray(val_rare, dtype=bool)
    n_rare = int(rare.sum())
    if n_rare == 0:
        raise CurateError("the real val split has no rare-class sample to calibrate on")
    ordered = np.sort(scores[rare])[::-1]
    needed = max(int(np.ceil(target * n_rare - 1e-9)), 1)
    # the threshold lies in the middle of the gap below the last sample that must pass (not on
    # it), so that new samples scored just under it, or ties at a saturated score, still pass
    last = float(ordered[needed - 1])
    below = ordered[ordered < last]
    threshold = max((last + float(below[0])) / 2 if len(below) else last, 1e-12)
    level = _nearest_valid_level(flt, flt.level_for_threshold(threshold))
    passed = flt.decide_scores(scores, level)
    warnings = []
    reached = float(passed[rare].mean())
    if reached < target:
        warnings.append(
            f"only {reached:.0%} of the real rare val samples pass at the filter's most "
            f"permissive level, short of the {target:.0%} target (the filter's score cannot "
            "tell them apart from the rest)"
        )
    if n_rare < FEW_RARE:
        warnings.append(
            f"the level rests on {n_rare} real rare val sample(s): fewer than {FEW_RARE}, "
            "so the pass rate it aims at is a rough guess"
        )
    return {
        "method": "val",
        "level": level,
        "threshold": float(flt.threshold(level)),
        "target": float(target),
        "n_val_rare": n_rare,
        "val_rare_pass": reached,
        "val_other_pass": float(passed[~rare].mean()) if (~rare).any() else float("nan"),
        "warnings": warnings,
    }


def _nearest_valid_level(flt, level: float) -> float:
    """``level``, or the nearest level ``flt`` accepts when it lies just outside an open end."""
    for candidate in (level, 1.0 - 1e-9 if level >= 1.0 else 1e-9):
        try:
            return flt.resolve_level(candidate)
        except CurateError:
            continue
    raise CurateError(f"no valid level near {level} for this filter")


@dataclass(frozen=True)
class CalibrationSettings:
    """How the level sweep trains.

    Attributes:
        levels: candidate levels; ``None`` = ``n_levels`` from the filter's :meth:`level_grid`.
        n_levels: grid size when ``levels`` is ``None``.
        seeds: classifier seeds per level (``seed``, ``seed + 1``, ...).
        seed: the first seed.
        epochs, arch, batch_size, lr, augment, class_weighted, select, schedule: the
            training settings (see :class:`brain.training.TrainSettings`).
        size: pad images to a square and resize to ``size`` (needed for mixed sizes).
        device: ``auto``, ``cpu`` or ``cuda``.
        num_threads: torch CPU threads.
        real_only: also train without synthetic samples, as a reference row in the sweep.
    """

    levels: tuple[float, ...] | None = None
    n_levels: int = 7
    seeds: int = 1
    seed: int = 0
    epochs: int = 10
    arch: str = "resnet18"
    batch_size: int = 32
    lr: float = 1e-3
    augment: bool = False
    class_weighted: bool = False
    select: str = "f1"
    schedule: str = "constant"
    size: int | None = None
    device: str = "auto"
    num_threads: int | None = None
    real_only: bool = True

    def as_dict(self) -> dict[str, Any]:
        """The settings as a JSON-able dict."""
        values = asdict(self)
        values["levels"] = list(self.levels) if self.levels is not None else None
        return values


def sweep_levels(
    levels: Sequence[float],
    decide: Callable[[float], np.ndarray],
    evaluate: Callable[[np.ndarray], list[float]],
) -> list[dict[str, Any]]:
    """Evaluate each level: ``decide(level)`` gives the pass mask, ``evaluate(mask)`` the
    validation F1 of each seed.

    Returns:
        One entry per level: ``level``, ``n_pass``, ``val_f1`` (per seed), ``val_f1_mean``,
        ``val_f1_std``.
    """
    sweep = []
    for level in levels:
        passed = np.asarray(decide(float(level)), dtype=bool)
        scores = [float(v) for v in evaluate(passed)]
        sweep.append(
            {
                "level": float(level),
                "n_pass": int(passed.sum()),
                "val_f1": scores,
                "val_f1_mean": float(np.mean(scores)),
                "val_f1_std": float(np.std(scores, ddof=1)) if len(scores) > 1 else 0.0,
            }
        )
    return sweep


def choose_level(sweep: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The sweep entry with the best mean validation F1 (then the smaller spread, then the
    lower level)."""
    if not sweep:
        raise CurateError("no levels to calibrate")
    return max(sweep, key=lambda e: (e["val_f1_mean"], -e["val_f1_std"], -e["level"]))


class _Trainer:
    """Decoded real train / val and synthetic images, and a per-seed validation F1."""

    def __init__(self, dataset, synthetic_ids: Sequence[str], settings: CalibrationSettings):
        from brain.data import channel_stats, check_shapes, decode_view
        from brain.training import TrainSettings, resolve_device, shared_settings
        from curation.datasets import builtin_views, labelled
        from curation.schema import project_info, rare_class

        self.classes = list(project_info(dataset).get("classes", []))
        rare = rare_class(dataset)
        if rare not in self.classes:
            raise CurateError(f"dataset {dataset.name!r} records no rare class among its classes")
        self.rare_index = self.classes.index(rare)
        views = builtin_views(dataset)
        decoded = {
            "train": decode_view(labelled(views["real-train"]), progress=False),
            "val": decode_view(labelled(views["real-val"]), progress=False),
            "synthetic": decode_view(
                dataset.select(list(synthetic_ids), ordered=True), progress=False
            ),
        }
        unknown = sum(label not in self.classes for label in decoded["synthetic"].labels)
        if unknown:
            raise CurateError(
                f"{unknown} synthetic samples have no known class label; calibration trains on them"
            )
        check_shapes([s for part in decoded.values() for s in part.shapes], settings.size)
        sets = {name: part.to_set(self.classes, settings.size) for name, part in decoded.items()}
        self.train, self.val, self.synthetic = sets["train"], sets["val"], sets["synthetic"]
        if self.rare_index not in set(self.val.labels.tolist()):
            raise CurateError("the real val split has no rare-class sample to calibrate on")
        self.mean, self.std = channel_stats(self.train.images)
        self.settings = settings
        self.train_settings = TrainSettings(
            **{
                **shared_settings(settings, TrainSettings),
                "device": resolve_device(settings.device),
            }
        )

    def val_f1(self, passed: np.ndarray) -> list[float]:
        from brain.data import ImageSet
        from brain.training import fit, torch_threads

        train = ImageSet.concat([self.train, self.synthetic.subset(np.flatnonzero(passed))])
        scores = []
        with torch_threads(self.settings.num_threads):
            for offset in range(self.settings.seeds):
                result = fit(
                    train,
                    self.val,
                    num_classes=len(self.classes),
                    rare_index=self.rare_index,
                    mean=self.mean,
                    std=self.std,
                    settings=self.train_settings,
                    seed=self.settings.seed + offset,
                    progress=False,
                )
                scores.append(float(result.best_val.get("f1", 0.0)))
        return scores


def calibrate_level(
    dataset,
    flt,
    synthetic_ids: Sequence[str],
    scores: np.ndarray,
    settings: CalibrationSettings,
) -> dict[str, Any]:
    """Sweep levels of the fitted filter ``flt`` on a dataset and pick the best one.

    Args:
        dataset: the FiftyOne dataset.
        flt: a fitted filter.
        synthetic_ids: ids of the scored synthetic samples.
        scores: their scores under ``flt``.
        settings: the sweep's settings.

    Returns:
        ``level`` (chosen), ``sweep`` (one entry per level, see :func:`sweep_levels`),
        ``real_only`` (the no-synthetic reference entry or ``None``) and ``settings``.

    Raises:
        CurateError: bad settings or data the classifier cannot train on.
    """
    if settings.seeds < 1 or settings.epochs < 1:
        raise CurateError("calibration needs at least one seed and one epoch")
    levels = (
        list(settings.levels)
        if settings.levels is not None
        else flt.level_grid(settings.n_levels).tolist()
    )
    for level in levels:
        flt.resolve_level(level)  # raises for levels outside the filter's range
    trainer = _Trainer(dataset, synthetic_ids, settings)
    sweep = sweep_levels(levels, lambda lv: flt.decide_scores(scores, lv), trainer.val_f1)
    real_only = None
    if settings.real_only:
        real_only = sweep_levels(
            [float("nan")], lambda _: np.zeros(len(scores), bool), trainer.val_f1
        )
        real_only = {k: v for k, v in real_only[0].items() if k != "level"}
    best = choose_level(sweep)
    return {
        "level": best["level"],
        "sweep": sweep,
        "real_only": real_only,
        "settings": settings.as_dict(),
    }
