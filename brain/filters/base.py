"""The filter interface, the shared input validation, and the ``filter`` registry.

A filter learns where the real rare class lives from real samples and grades new (synthetic)
samples by how well they fit there. Every filter is a scikit-learn style estimator with the same
surface, so they can be swapped:

- ``fit(X, y) -> self``: ``X`` holds one row per real sample, ``y`` is 1 (or ``True``) for the
  rare class and 0 for every other class;
- ``score_samples(X) -> float array``: one score per sample, higher means more like the real
  rare class;
- ``score(X) -> float``: the mean of ``score_samples`` (scikit-learn's meaning of ``score``
  for estimators without targets, as ``GaussianMixture.score``);
- ``decide(X, level=None) -> bool array``: ``True`` = pass, i.e.
  ``score_samples >= threshold(level)``.

What a row of ``X`` is depends on :attr:`EmbeddingFilter.input_kind`: ``"embedding"`` (a
classifier's feature vector, shape ``(N, D)``) or ``"probability"`` (the classifier's rare-class
probability, shape ``(N,)`` or ``(N, 1)``). The dataset layer reads that attribute to pass the
right input.

What the *level* means is filter-specific (a confidence level, a radius factor, a probability
threshold) and documented on each filter. It is an argument of ``decide``, ``threshold`` and
:meth:`~EmbeddingFilter.resolve_level`, never a constructor parameter (a run chooses it:
:mod:`brain.level_choice`); ``level=None`` means the default the filter learned in ``fit``
(``default_level_``). :meth:`EmbeddingFilter.level_limits` says which levels are valid (also
before ``fit``), :meth:`~EmbeddingFilter.level_range` which are worth sweeping.

Before ``fit`` every method that needs the learned state raises :class:`NotFittedError`
(scikit-learn's ``check_is_fitted``; fitted means ``default_level_`` is set).

What plots and the App show is computed in :mod:`brain.filters.plots` from what a fitted filter
exposes: :meth:`~EmbeddingFilter.evaluate` (scores, parts and the samples' coordinates in the
filter's own space, in one pass) and its fitted attributes (``embedding_`` for a filter that
tests in a 2-D plane of its own, the mixture of the ellipse filters).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.utils.validation import check_is_fitted as sklearn_check_is_fitted

from brain.errors import InputError
from brain.registry import Registry

InputKind = Literal["embedding", "probability"]

FILTERS: Registry[type[EmbeddingFilter]] = Registry("filter")
"""Filter classes by name (``umap_gmm``, ``gmm_full``, ``knn_precision``, ``confidence``)."""

# Smallest eigenvalue / largest eigenvalue below which a covariance counts as degenerate.
_DEGENERATE_RATIO = 1e-10


class NotFittedError(SklearnNotFittedError, RuntimeError):
    """A filter was used before ``fit`` (a programming error, not a user error): scikit-learn's
    ``NotFittedError``, as generators raise, and a ``RuntimeError`` as before."""


@dataclass(frozen=True)
class LevelLimits:
    """The levels a filter accepts: between ``low`` and ``high``, each end included or not.

    Attributes:
        low, high: the ends (``high`` may be ``inf``).
        low_inclusive, high_inclusive: whether an end is a valid level itself.
        what: what the level is, for messages (e.g. ``"probability threshold"``; empty: none).
    """

    low: float
    high: float
    low_inclusive: bool = False
    high_inclusive: bool = False
    what: str = ""

    def contains(self, level: float) -> bool:
        """Whether ``level`` is valid."""
        level = float(level)
        above = level >= self.low if self.low_inclusive else level > self.low
        below = level <= self.high if self.high_inclusive else level < self.high
        return bool(np.isfinite(level) and above and below)

    def check(self, level: float) -> None:
        """Raise an :class:`InputError` (about the parameter ``level``) unless valid."""
        if self.contains(level):
            return
        what = f"`level` ({self.what})" if self.what else "`level`"
        low, high = f"{self.low:g}", f"{self.high:g}"
        if self.high == np.inf:
            rule = "be positive"
        elif self.low_inclusive and self.high_inclusive:
            rule = f"lie in [{low}, {high}]"
        else:
            rule = f"lie strictly between {low} and {high}"
        raise InputError(f"{what} must {rule}, got {level}", params=("level",))


@dataclass
class FilterOutput:
    """What a fitted filter says about new samples (:meth:`EmbeddingFilter.evaluate`).

    Attributes:
        scores: ``(N,)`` scores, higher = more like the real rare class.
        parts: per-sample parts of the score worth storing (empty for single-score filters).
        points: ``(N, d)`` coordinates in the space the filter tests in (the ellipse
            filters'), else ``None``; the plots reuse them (:mod:`brain.filters.plots`).
    """

    scores: np.ndarray
    parts: dict[str, np.ndarray] = field(default_factory=dict)
    points: np.ndarray | None = None


def as_float_matrix(X: object, *, name: str = "embeddings") -> np.ndarray:
    """``X`` as a finite 2-D float64 array, or a :class:`InputError` naming the problem.

    Args:
        X: array-like of shape ``(N, D)``; ``None`` entries (missing embeddings) are rejected.
        name: what the rows are, for messages.
    """
    try:
        array = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(
            f"{name} are missing or ragged (every sample needs a vector of the same length)"
        ) from None
    if array.ndim != 2:
        raise InputError(f"{name} must be a 2-D array (samples x features), got {array.ndim}-D")
    if array.shape[1] == 0:
        raise InputError(f"{name} have no features")
    bad = ~np.isfinite(array).all(axis=1)
    if bad.any():
        raise InputError(
            f"{name} contain NaN or infinite values in {int(bad.sum())} of {len(array)} samples"
        )
    return array


def as_probability_column(p: object, *, name: str = "probabilities") -> np.ndarray:
    """``p`` (shape ``(N,)`` or ``(N, 1)``) as a finite ``(N, 1)`` float64 array in ``[0, 1]``."""
    try:
        array = np.asarray(p, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{name} are missing for some samples") from None
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise InputError(f"{name} must be one number per sample, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise InputError(f"{name} contain NaN or infinite values")
    if array.size and (array.min() < 0.0 or array.max() > 1.0):
        raise InputError(f"{name} must lie in [0, 1]")
    return array[:, None]


def as_rare_mask(y: object, n_samples: int) -> np.ndarray:
    """``y`` as a boolean rare-class mask of length ``n_samples`` (values must be 0/1 or bool)."""
    array = np.asarray(y)
    if array.ndim != 1 or len(array) != n_samples:
        raise InputError(
            f"labels must be one value per sample ({n_samples}), got shape {array.shape}"
        )
    if array.dtype != bool:
        if not np.isin(array, (0, 1)).all():
            raise InputError("labels must be 0/1 or True/False (1 = rare class)")
        array = array.astype(bool)
    return array


def as_fine_labels(labels: object, n_samples: int) -> np.ndarray | None:
    """``labels`` (one value per sample, at least two distinct) as a string array, or ``None``."""
    if labels is None:
        return None
    array = np.asarray(labels, dtype=object)
    if array.ndim != 1 or len(array) != n_samples:
        raise InputError(
            f"fine labels must be one value per sample ({n_samples}), got shape {array.shape}"
        )
    if any(label is None for label in array):
        raise InputError("fine labels are missing for some real samples")
    array = array.astype(str)
    if len(np.unique(array)) < 2:
        raise InputError(f"fine labels hold a single class ({array[0]!r}); need at least two")
    return array


def check_rare_count(n_rare: int, minimum: int, *, why: str) -> None:
    """Raise a :class:`InputError` when there are fewer than ``minimum`` real rare samples."""
    if n_rare < minimum:
        raise InputError(
            f"{n_rare} real rare-class samples to fit on, need at least {minimum} ({why})"
        )


def check_covariance(covariance: np.ndarray, *, what: str = "covariance") -> None:
    """Raise a :class:`InputError` when ``covariance`` is singular or nearly so.

    Args:
        covariance: symmetric ``(D, D)`` matrix.
        what: which covariance, for the message.
    """
    eigenvalues = np.linalg.eigvalsh(np.atleast_2d(covariance))
    largest = float(eigenvalues.max())
    if not np.isfinite(eigenvalues).all() or largest <= 0.0:
        raise InputError(f"degenerate {what}: the points do not spread at all")
    if float(eigenvalues.min()) <= _DEGENERATE_RATIO * largest:
        raise InputError(
            f"degenerate {what}: the points lie on a lower-dimensional subspace "
            "(too few distinct real rare-class samples?)"
        )


def check_spread(points: np.ndarray, *, what: str) -> None:
    """Raise a :class:`InputError` when all ``points`` are identical."""
    if len(points) < 2 or float(np.ptp(points, axis=0).max()) == 0.0:
        raise InputError(f"degenerate covariance: all {what} are identical")


class EmbeddingFilter(ABC, BaseEstimator):
    """Base class of all filters (see the module docstring for the contract).

    Subclasses store their constructor arguments unchanged, implement :meth:`_fit`,
    :meth:`_score` and :meth:`_threshold`, and set ``default_level_`` last in :meth:`_fit`
    (its presence is what "fitted" means, see :meth:`check_is_fitted`).
    """

    input_kind: ClassVar[InputKind] = "embedding"
    """Which input the filter takes: ``"embedding"`` or ``"probability"``."""

    level_help: ClassVar[str] = ""
    """One line saying what the level means for this filter (for CLI help and reports)."""

    reject_reason: ClassVar[str] = "low-score"
    """What a rejection by this filter means, stored as the sample's reason (``K_reason``)."""

    uses_fine_labels: ClassVar[bool] = False
    """Whether :meth:`fit` makes use of ``fine_labels``."""

    uses_image_features: ClassVar[bool] = False
    """Whether the filter judges images by their statistics (``image_features``)."""

    # -- public API ------------------------------------------------------------------------------

    def fit(
        self, X: object, y: object, *, fine_labels: object = None, image_features: object = None
    ) -> EmbeddingFilter:
        """Learn from real samples.

        Args:
            X: real samples, one row each (see :attr:`input_kind`).
            y: 1 / ``True`` for the rare class, 0 / ``False`` otherwise.
            fine_labels: optional finer labels of the same samples (e.g. all 24 chromosome
                classes when the task is one chromosome against the rest); filters that model
                subgroups use them (:attr:`uses_fine_labels`), the others ignore them.
            image_features: optional per-image statistics of the same samples
                (:func:`brain.filters.image_stats.image_statistics`); filters that judge image
                realism use them (:attr:`uses_image_features`) and then need them in
                :meth:`score_samples` too.

        Returns:
            ``self``.

        Raises:
            InputError: bad input (NaN, wrong shape, too few rare samples, degenerate data).
        """
        array = self._validate(X, name="real samples")
        rare = as_rare_mask(y, len(array))
        fine = as_fine_labels(fine_labels, len(array)) if self.uses_fine_labels else None
        features = self._validate_features(image_features, len(array))
        self.n_features_in_ = array.shape[1]
        self.n_image_features_ = None if features is None else features.shape[1]
        self.notes_: list[str] = []  # what the fit had to simplify (few samples), for reports
        self._fit(array, rare, fine, features)
        return self

    def score_samples(self, X: object, *, image_features: object = None) -> np.ndarray:
        """Score each sample; higher means more like the real rare class.

        Args:
            X: samples to grade, same kind and width as in :meth:`fit`.
            image_features: their image statistics, when the filter was fitted with them.

        Returns:
            float64 array of shape ``(N,)``.

        Raises:
            NotFittedError: before :meth:`fit`.
            InputError: bad input (NaN, wrong width, no samples, missing image statistics).
        """
        self.check_is_fitted()
        array = self._validate_new(X)
        return self._score(array, self._validate_new_features(image_features, len(array)))

    def score(self, X: object, y: object = None, *, image_features: object = None) -> float:
        """The mean of :meth:`score_samples` over ``X`` (scikit-learn's ``score`` of an
        estimator without targets, as ``GaussianMixture.score``): how well the samples fit the
        real rare class as a whole.

        Args:
            X: samples to grade (see :meth:`score_samples`).
            y: ignored (scikit-learn's signature).
            image_features: their image statistics, when the filter was fitted with them.
        """
        del y
        return float(np.mean(self.score_samples(X, image_features=image_features)))

    def decide(
        self, X: object, level: float | None = None, *, image_features: object = None
    ) -> np.ndarray:
        """Pass (``True``) or reject each sample at ``level`` (see :meth:`resolve_level`)."""
        return self.decide_scores(self.score_samples(X, image_features=image_features), level)

    def decide_scores(self, scores: np.ndarray, level: float | None = None) -> np.ndarray:
        """Pass / reject from already computed :meth:`score_samples` values."""
        return np.asarray(scores) >= self.threshold(level)

    def parts(self, X: object, *, image_features: object = None) -> dict[str, np.ndarray]:
        """Per-sample parts of the score worth storing (e.g. ``realism``, ``rare_prob``);
        empty for filters with a single score."""
        self.check_is_fitted()
        array = self._validate_new(X)
        return self._parts(array, self._validate_new_features(image_features, len(array)))

    def reasons(
        self, scores: np.ndarray, parts: dict[str, np.ndarray], level: float | None = None
    ) -> np.ndarray:
        """Why each sample passed or not at ``level``: ``pass`` or a rejection reason, from
        its :meth:`score_samples` and :meth:`parts`."""
        passed = self.decide_scores(scores, level)
        return np.where(passed, "pass", self.reject_reason).astype(object)

    def threshold(self, level: float | None = None) -> float:
        """The score a sample needs to pass at ``level``."""
        return self._threshold(self.resolve_level(level))

    def evaluate(self, X: object, *, image_features: object = None) -> FilterOutput:
        """Scores and parts of new samples in one pass (and, for filters that test in a space
        of their own, the samples' coordinates there, which the plots reuse)."""
        return FilterOutput(
            self.score_samples(X, image_features=image_features),
            self.parts(X, image_features=image_features),
        )

    def resolve_level(self, level: float | None = None) -> float:
        """``level`` (checked), else the learned ``default_level_``."""
        self.check_is_fitted()
        if level is None:
            level = self.default_level_
        self._check_level(level)
        return float(level)

    def check_level(self, level: float) -> None:
        """Raise a :class:`InputError` when ``level`` is outside this filter's valid range
        (works before ``fit``)."""
        self._check_level(level)

    def level_limits(self) -> LevelLimits:
        """The valid levels (works before ``fit``): by default strictly between 0 and 1."""
        return LevelLimits(0.0, 1.0)

    def level_for_threshold(self, threshold: float) -> float:
        """The level whose pass threshold on the score is ``threshold`` (inverse of
        :meth:`threshold`); used to set a level from scores of real validation samples."""
        return float(self._level_for_threshold(float(threshold)))

    def level_grid(self, n: int = 9) -> np.ndarray:
        """``n`` levels spanning the useful range, for a calibration sweep."""
        low, high = self.level_range()
        return np.linspace(low, high, n)

    def __sklearn_is_fitted__(self) -> bool:
        """Whether :meth:`fit` has run (what scikit-learn's ``check_is_fitted`` asks):
        ``default_level_``, the last attribute :meth:`_fit` sets, is there."""
        return hasattr(self, "default_level_")

    def check_is_fitted(self) -> None:
        """Raise :class:`NotFittedError` unless :meth:`fit` has run (scikit-learn's
        ``check_is_fitted``, raising this module's subclass of its error)."""
        try:
            sklearn_check_is_fitted(self, msg="%(name)s is not fitted yet; call fit first")
        except SklearnNotFittedError as error:
            raise NotFittedError(str(error)) from None

    # -- what subclasses provide -----------------------------------------------------------------

    @abstractmethod
    def _fit(
        self, X: np.ndarray, rare: np.ndarray, fine: np.ndarray | None, features: np.ndarray | None
    ) -> None:
        """Learn state (attributes ending in ``_``, including ``default_level_``); ``fine``
        and ``features`` hold the fine labels and image statistics when the filter uses them
        and they were given."""

    @abstractmethod
    def _score(self, X: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:
        """Scores of validated samples."""

    def _parts(self, X: np.ndarray, features: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Parts of validated samples (see :meth:`parts`)."""
        return {}

    @abstractmethod
    def _threshold(self, level: float) -> float:
        """The pass threshold on the score at a valid ``level``."""

    @abstractmethod
    def _level_for_threshold(self, threshold: float) -> float:
        """The level at which :meth:`_threshold` returns ``threshold``."""

    def level_range(self) -> tuple[float, float]:
        """Useful level range for sweeps (subclasses narrow it)."""
        return (0.05, 0.95)

    def _check_level(self, level: float) -> None:
        """Raise a :class:`InputError` when ``level`` is outside :meth:`level_limits`."""
        self.level_limits().check(level)

    # -- validation ------------------------------------------------------------------------------

    def _validate(self, X: object, *, name: str) -> np.ndarray:
        if self.input_kind == "probability":
            return as_probability_column(X, name=f"{name} (rare-class probabilities)")
        return as_float_matrix(X, name=f"{name} (embeddings)")

    def _validate_features(self, features: object, n_samples: int) -> np.ndarray | None:
        if not self.uses_image_features or features is None:
            return None
        array = as_float_matrix(features, name="image statistics")
        if len(array) != n_samples:
            raise InputError(
                f"image statistics for {len(array)} samples, embeddings for {n_samples}"
            )
        return array

    def _validate_new_features(self, features: object, n_samples: int) -> np.ndarray | None:
        if not self.uses_image_features or getattr(self, "n_image_features_", None) is None:
            return None
        if features is None:
            raise InputError("this filter was fitted with image statistics: score them too")
        array = self._validate_features(features, n_samples)
        if array.shape[1] != self.n_image_features_:
            raise InputError(
                f"image statistics have {array.shape[1]} columns, the filter was fitted on "
                f"{self.n_image_features_}"
            )
        return array

    def _validate_new(self, X: object) -> np.ndarray:
        array = self._validate(X, name="samples to score")
        if len(array) == 0:
            raise InputError("no samples to score")
        if array.shape[1] != self.n_features_in_:
            raise InputError(
                f"embeddings have {array.shape[1]} dimensions but the filter was fitted on "
                f"{self.n_features_in_} (embeddings from different runs mixed?)"
            )
        return array


class ProbabilityLevel:
    """Level semantics of filters whose score is a probability: a sample passes when its score
    is at least the level, a number in ``[0, 1]`` (higher lets fewer through)."""

    level_what: ClassVar[str] = "probability threshold"

    def _threshold(self, level: float) -> float:
        return level

    def _level_for_threshold(self, threshold: float) -> float:
        return threshold

    def level_limits(self) -> LevelLimits:
        return LevelLimits(0.0, 1.0, True, True, self.level_what)


def filter_params(name: str) -> list[str]:
    """The parameter names of the filter registered as ``name`` (its constructor's).

    Raises:
        InputError: unknown name (the message lists the known ones).
    """
    return list(FILTERS.get(name)().get_params(deep=False))


def make_filter(name: str, **params: object) -> EmbeddingFilter:
    """The filter registered as ``name``, built with ``params``.

    Raises:
        InputError: unknown name (the message lists the known ones) or unknown parameter
            (``level`` among them: a run chooses the level, see :mod:`brain.level_choice`).
    """
    cls = FILTERS.get(name)
    valid = filter_params(name)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        level = "level" in unknown
        why = " (the level is chosen per run: `level` or a calibration)" if level else ""
        raise InputError(
            f"unknown parameter(s) {', '.join(unknown)} for filter {name!r}{why}; "
            f"valid: {', '.join(sorted(valid)) or 'none'}",
            params=("level",) if level else (),
        )
    return cls(**params)
