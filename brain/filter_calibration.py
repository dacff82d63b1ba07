"""Choose a filter's level on the real val split: by pass rate, or by retraining.

Two ways, neither reads the test split:

- :func:`calibrate_pass_rate` (:class:`brain.level_choice.PassRate`, no training): the level
  at which a target share (default 95%) of the real rare-class *val* samples pass. Val samples
  are real, so they should pass; the network behind the embeddings never saw them, so they land
  where new samples land, unlike the train samples the filter was fitted on.
- :func:`calibrate_level` (:class:`brain.level_choice.Retrain`): for every candidate level,
  the synthetic samples that pass at that level join the real train split, a classifier is
  trained per seed (the epoch kept is the one best on the validation split, as in
  :func:`brain.training.fit`), and the level whose mean validation F1 of the rare class is
  highest wins (:class:`LevelTrainer` trains on decoded images; the dataset layer decodes
  them).

Calibration is config (:class:`CalibrationSettings`) -> method (the two functions) -> typed
results (:class:`PassRateCalibration`, :class:`RetrainCalibration`); a filter run stores the
results in its own record and writes nothing else. The test split is never read here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from brain.errors import InputError
from brain.metrics import FEW_RARE
from brain.progress import progress_bar
from brain.settings import TrainSettings

if TYPE_CHECKING:  # brain.data imports torch: the level choice and the CLI need none of it
    from brain.data import ImageSet


@dataclass
class PassRateCalibration:
    """The level at which a target share of the real rare val samples pass.

    Attributes:
        level: the chosen level; threshold: the score it asks for.
        target: the share of rare val samples that must pass.
        n_val_rare: rare val samples; val_rare_pass: the share of them passing;
            val_other_pass: the share of the other class passing (NaN without one).
        warnings: a target out of reach, too few rare val samples, a level held back.
        fallback: why the level is not the one the val samples asked for: ``"few-val"`` (too
            few rare val samples for the target: the filter's default level), ``"floor"``
            (the val samples asked for a looser level than :func:`loosest_threshold`);
            ``None``: calibrated.
        method: ``"val"``.
    """

    level: float
    threshold: float
    target: float
    n_val_rare: int
    val_rare_pass: float
    val_other_pass: float
    warnings: list[str] = field(default_factory=list)
    fallback: str | None = None
    method: str = "val"

    def as_dict(self) -> dict[str, Any]:
        """The calibration as stored in a filter run's record."""
        return asdict(self)


@dataclass
class RetrainCalibration:
    """The level whose retrained classifiers score best on val.

    Attributes:
        level: the chosen level.
        sweep: per level: ``level``, ``n_pass``, ``val_f1`` (per seed), ``val_f1_mean``,
            ``val_f1_std`` (see :func:`sweep_levels`).
        real_only: the same without synthetic samples (``None`` unless asked for).
        settings: the sweep's settings (:meth:`CalibrationSettings.as_dict`).
        method: ``"retrain"``.
    """

    level: float
    sweep: list[dict[str, Any]]
    real_only: dict[str, Any] | None
    settings: dict[str, Any]
    method: str = "retrain"

    def as_dict(self) -> dict[str, Any]:
        """The calibration as stored in a filter run's record."""
        return asdict(self)


def calibration_from_record(data: dict[str, Any] | None):
    """A stored calibration as :class:`PassRateCalibration` or :class:`RetrainCalibration`
    (``None`` for none)."""
    if not data:
        return None
    if data.get("method") == "val":
        return PassRateCalibration(**data)
    return RetrainCalibration(**{**data, "method": "retrain"})


#: The lowest threshold a calibration sets: a score of 0 or below never passes.
MIN_THRESHOLD = 1e-12


def val_samples_needed(target: float) -> int:
    """Rare val samples a pass-rate ``target`` needs to be resolved: with fewer, one sample
    is more than the share ``1 - target`` the target lets fail (20 for 95%)."""
    return int(np.ceil(1.0 / (1.0 - float(target)) - 1e-9))


def loosest_threshold(flt) -> float:
    """The lowest pass threshold a calibration may set on fitted ``flt``: that of its default
    level or of the loosest end of its useful level range, whichever is lower. Below it the
    filter's own gates (e.g. realism) would pass images they call unrealistic."""
    ends = [flt.threshold(level) for level in flt.level_range()]
    return float(min(flt.threshold(flt.default_level_), *ends))


def calibrate_pass_rate(
    flt,
    val_scores: np.ndarray,
    val_rare: np.ndarray,
    *,
    target: float = 0.95,
) -> PassRateCalibration:
    """The level of the fitted filter ``flt`` at which ``target`` of the real rare val samples
    pass.

    Args:
        flt: a fitted filter.
        val_scores: its scores of the real val samples (both classes).
        val_rare: rare-class mask of those samples.
        target: the share of rare val samples that must pass, in ``(0, 1)``.

    Raises:
        InputError: a target outside (0, 1) or no rare val sample.
    """
    check_target(target)
    scores = np.asarray(val_scores, dtype=np.float64)
    rare = np.asarray(val_rare, dtype=bool)
    n_rare = int(rare.sum())
    if n_rare == 0:
        raise InputError("the real val split has no rare-class sample to calibrate on")
    needed_val = val_samples_needed(target)
    if n_rare < needed_val:
        level = flt.resolve_level(None)
        warning = (
            f"the level rests on the filter's default ({level:.4g}), not on the {n_rare} real "
            f"rare val sample(s): a {target:.0%} target needs at least {needed_val}"
        )
        return _pass_rate_result(flt, level, scores, rare, target, [warning], "few-val")
    ordered = np.sort(scores[rare])[::-1]
    needed = max(int(np.ceil(target * n_rare - 1e-9)), 1)
    # rare val samples that fail at every level (a score of 0 or below: e.g. classified as the
    # other class) cannot be reached by opening the level further; aim at those that can pass,
    # so that an unreachable target does not open the gate to everything else
    passable = int((ordered >= MIN_THRESHOLD).sum())
    needed = min(needed, passable) if passable else needed
    # the threshold lies in the middle of the gap below the last sample that must pass (not on
    # it), so that new samples scored just under it, or ties at a saturated score, still pass;
    # the gap ends at 0 (a score of 0 or below never passes)
    last = float(ordered[needed - 1])
    below = ordered[ordered < last]
    floor = max(float(below[0]), 0.0) if len(below) else last  # no passing score is <= 0
    threshold = max((last + floor) / 2, MIN_THRESHOLD)
    warnings, fallback = [], None
    if threshold < loosest_threshold(flt):
        warnings.append(
            f"the val samples asked for a pass threshold of {threshold:.3g}, below the "
            f"filter's loosest ({loosest_threshold(flt):.3g}): the level is held there, so "
            "images its own gates reject do not pass"
        )
        threshold, fallback = loosest_threshold(flt), "floor"
    level = _nearest_valid_level(flt, flt.level_for_threshold(threshold))
    return _pass_rate_result(flt, level, scores, rare, target, warnings, fallback)


def _pass_rate_result(
    flt,
    level: float,
    scores: np.ndarray,
    rare: np.ndarray,
    target: float,
    warnings: list[str],
    fallback: str | None,
) -> PassRateCalibration:
    """The :class:`PassRateCalibration` of ``level``, with what the val samples say of it."""
    passed = flt.decide_scores(scores, level)
    n_rare = int(rare.sum())
    reached = float(passed[rare].mean())
    if reached < target and fallback is None:
        warnings.append(
            f"only {reached:.0%} of the real rare val samples can pass at any level, short of "
            f"the {target:.0%} target (the filter rejects the others whatever the level: see "
            "their reasons); the level passes those that can"
        )
    if n_rare < FEW_RARE and fallback != "few-val":
        warnings.append(
            f"the level rests on {n_rare} real rare val sample(s): fewer than {FEW_RARE}, "
            "so the pass rate it aims at is a rough guess"
        )
    return PassRateCalibration(
        level=level,
        threshold=float(flt.threshold(level)),
        target=float(target),
        n_val_rare=n_rare,
        val_rare_pass=reached,
        val_other_pass=float(passed[~rare].mean()) if (~rare).any() else float("nan"),
        warnings=warnings,
        fallback=fallback,
    )


def check_target(target: float) -> None:
    """Raise an :class:`InputError` unless the pass-rate ``target`` lies in (0, 1)."""
    if not 0.0 < float(target) < 1.0:
        raise InputError(
            f"the calibration `target` must lie strictly between 0 and 1, got {target}",
            params=("target",),
        )


def _nearest_valid_level(flt, level: float) -> float:
    """``level``, or the nearest level ``flt`` accepts when it lies just outside an open end."""
    for candidate in (level, 1.0 - 1e-9 if level >= 1.0 else 1e-9):
        try:
            return flt.resolve_level(candidate)
        except InputError:
            continue
    raise InputError(f"no valid level near {level} for this filter")


@dataclass(frozen=True)
class CalibrationSettings:
    """How the level sweep trains.

    Attributes:
        levels: candidate levels; ``None`` = ``n_levels`` from the filter's ``level_grid``.
        n_levels: grid size when ``levels`` is ``None``.
        seeds: classifier seeds per level (``seed``, ``seed + 1``, ...).
        seed: the first seed.
        train: how each classifier is trained (10 epochs by default; ``subset`` is not used:
            the sweep trains on the whole real train split).
        num_threads: torch CPU threads.
        real_only: also train without synthetic samples, as a reference row in the sweep.
        progress: report the sweep, a line per level off a terminal (not part of the record,
            nor of equality: it says how a run reports, not what it asks).
    """

    levels: tuple[float, ...] | None = None
    n_levels: int = 7
    seeds: int = 1
    seed: int = 0
    train: TrainSettings = field(default_factory=lambda: TrainSettings(epochs=10))
    num_threads: int | None = None
    real_only: bool = True
    progress: bool = field(default=False, compare=False)

    def check(self) -> CalibrationSettings:
        """``self`` if the settings are in range.

        Raises:
            InputError: no seed, or training settings out of range.
        """
        if self.seeds < 1:
            raise InputError(f"calibration needs at least one seed, got {self.seeds}")
        self.train.check()
        return self

    def as_dict(self) -> dict[str, Any]:
        """The settings as a JSON-able dict (the training settings inline)."""
        return {
            "levels": list(self.levels) if self.levels is not None else None,
            "n_levels": self.n_levels,
            "seeds": self.seeds,
            "seed": self.seed,
            **self.train.as_dict(),
            "num_threads": self.num_threads,
            "real_only": self.real_only,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CalibrationSettings:
        """The settings :meth:`as_dict` gave (keys neither knows are ignored)."""
        own = {f.name for f in fields(cls)} - {"train", "progress"}
        values = {name: data[name] for name in own if name in data}
        if values.get("levels") is not None:
            values["levels"] = tuple(values["levels"])
        train = {f.name: data[f.name] for f in fields(TrainSettings) if f.name in data}
        return cls(**values, train=cls().train.replace(**train))


def sweep_levels(
    levels: Sequence[float],
    decide: Callable[[float], np.ndarray],
    evaluate: Callable[[np.ndarray], list[float]],
    *,
    progress: bool = False,
    desc: str = "calibration",
) -> list[dict[str, Any]]:
    """Evaluate each level: ``decide(level)`` gives the pass mask, ``evaluate(mask)`` the
    validation F1 of each seed. With ``progress``, a bar (a line per level off a terminal)
    named ``desc``.

    Returns:
        One entry per level: ``level``, ``n_pass``, ``val_f1`` (per seed), ``val_f1_mean``,
        ``val_f1_std``.
    """
    sweep = []
    bar = progress_bar(total=len(levels), desc=desc, unit="level", enabled=progress, every=1)
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
        shown = {} if np.isnan(level) else {"level": f"{level:.3g}"}
        bar.set_postfix(**shown, val_f1=f"{sweep[-1]['val_f1_mean']:.3f}")
        bar.update()
    bar.close()
    return sweep


def choose_level(sweep: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The sweep entry with the best mean validation F1 (then the smaller spread, then the
    lower level)."""
    if not sweep:
        raise InputError("no levels to calibrate")
    return max(sweep, key=lambda e: (e["val_f1_mean"], -e["val_f1_std"], -e["level"]))


class LevelTrainer:
    """Trains a classifier per seed on real train plus a chosen part of the synthetic samples
    and reports its best val F1 of the rare class.

    Args:
        train: real train images (labels as class indices).
        val: real val images (at least one of the rare class).
        synthetic: the scored synthetic images, in score order.
        num_classes: classes of the task.
        rare_index: the rare class's index.
        settings: the sweep's settings (``settings.train.device`` resolved by the trainer).

    Raises:
        InputError: no rare-class sample in ``val``.
    """

    def __init__(
        self,
        train: ImageSet,
        val: ImageSet,
        synthetic: ImageSet,
        *,
        num_classes: int,
        rare_index: int,
        settings: CalibrationSettings,
    ) -> None:
        from brain.data import channel_stats
        from brain.devices import resolve_device

        if rare_index not in set(val.labels.tolist()):
            raise InputError("the real val split has no rare-class sample to calibrate on")
        self.train, self.val, self.synthetic = train, val, synthetic
        self.num_classes, self.rare_index = num_classes, rare_index
        self.mean, self.std = channel_stats(train.images)
        self.settings = settings
        self.train_settings = settings.train.replace(device=resolve_device(settings.train.device))

    def val_f1(self, passed: np.ndarray) -> list[float]:
        """Per seed, the best val F1 of a classifier trained with the ``passed`` samples."""
        from brain.data import ImageSet
        from brain.devices import torch_threads
        from brain.training import fit

        train = ImageSet.concat([self.train, self.synthetic.subset(np.flatnonzero(passed))])
        scores = []
        with torch_threads(self.settings.num_threads):
            for offset in range(self.settings.seeds):
                result = fit(
                    train,
                    self.val,
                    num_classes=self.num_classes,
                    rare_index=self.rare_index,
                    mean=self.mean,
                    std=self.std,
                    settings=self.train_settings,
                    seed=self.settings.seed + offset,
                    progress=False,
                )
                scores.append(float(result.best_val.get("f1", 0.0)))
        return scores


def sweep_grid(flt, settings: CalibrationSettings) -> list[float]:
    """The levels a sweep tries: ``settings.levels``, else the filter's grid.

    Raises:
        InputError: a level outside the filter's range.
    """
    levels = (
        list(settings.levels)
        if settings.levels is not None
        else flt.level_grid(settings.n_levels).tolist()
    )
    for level in levels:
        flt.resolve_level(level)  # raises for levels outside the filter's range
    return levels


def calibrate_level(
    flt,
    scores: np.ndarray,
    trainer: LevelTrainer,
    settings: CalibrationSettings,
) -> RetrainCalibration:
    """Sweep levels of the fitted filter ``flt`` and pick the best one.

    Args:
        flt: a fitted filter.
        scores: its scores of the synthetic samples ``trainer`` holds.
        trainer: trains and validates a classifier per seed for a pass mask.
        settings: the sweep's settings.

    Raises:
        InputError: a level outside the filter's range.
    """
    levels = sweep_grid(flt, settings)
    sweep = sweep_levels(
        levels,
        lambda lv: flt.decide_scores(scores, lv),
        trainer.val_f1,
        progress=settings.progress,
    )
    real_only = None
    if settings.real_only:
        real_only = sweep_levels(
            [float("nan")],
            lambda _: np.zeros(len(scores), bool),
            trainer.val_f1,
            progress=settings.progress,
            desc="calibration, real only",
        )
        real_only = {k: v for k, v in real_only[0].items() if k != "level"}
    best = choose_level(sweep)
    return RetrainCalibration(best["level"], sweep, real_only, settings.as_dict())
