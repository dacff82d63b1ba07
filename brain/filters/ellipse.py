"""The Gaussian-mixture ellipse test shared by ``umap_gmm`` and ``gmm_full``.

Fit a Gaussian mixture to the real rare-class points (in whatever space the subclass projects
to), take the component with the largest weight, and grade a point by its squared Mahalanobis
distance ``d2`` to that component: ``score = 1 - chi2.cdf(d2, dof)``. At confidence level
``L`` a point passes when ``d2 <= chi2.ppf(L, dof)``, i.e. when ``score >= 1 - L``; a higher
level draws a larger ellipse and lets more through. The default level is the weight of the
chosen component, as in Tallon et al. (2024).
"""

from __future__ import annotations

import warnings
from abc import abstractmethod

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

from brain.errors import InputError
from brain.filters.base import (
    EmbeddingFilter,
    FilterOutput,
    check_covariance,
    check_rare_count,
    check_spread,
)
from brain.filters.maths import (
    chi2_radius_sq,
    chi2_tail,
    full_covariances,
    heaviest_component,
    mahalanobis_sq,
)

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
SINGLE_COMPONENT_LEVEL = 0.95
"""The default level of a one-component mixture (whose weight, 1, is not a valid level)."""


def fit_rare_mixture(
    points: np.ndarray,
    *,
    n_components: int,
    covariance_type: str,
    reg_covar: float,
    n_init: int,
    random_state: int | None,
) -> GaussianMixture:
    """A Gaussian mixture fitted to the real rare-class ``points``, with user-facing checks.

    Raises:
        InputError: fewer (distinct) points than components, points that do not span the
            space, or a mixture sklearn cannot fit.
    """
    if covariance_type not in COVARIANCE_TYPES:
        raise InputError(
            f"unknown covariance type {covariance_type!r}; known: {', '.join(COVARIANCE_TYPES)}"
        )
    if n_components < 1:
        raise InputError(f"the mixture needs at least one component, got {n_components}")
    check_rare_count(len(points), n_components, why=f"{n_components} mixture components")
    check_spread(points, what="real rare-class points")
    n_distinct = len(np.unique(points, axis=0))
    if n_distinct < n_components:
        raise InputError(
            f"only {n_distinct} distinct real rare-class points for {n_components} mixture "
            "components"
        )
    covariance = np.atleast_2d(np.cov(points, rowvar=False))
    if covariance_type in ("diag", "spherical"):
        covariance = np.diag(np.diag(covariance))
    check_covariance(covariance, what="covariance of the real rare class")
    mixture = GaussianMixture(
        n_components=n_components,
        covariance_type=covariance_type,
        reg_covar=reg_covar,
        n_init=n_init,
        random_state=random_state,
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            mixture.fit(points)
    except ValueError as error:
        raise InputError(f"degenerate covariance: the mixture cannot be fitted ({error})") from None
    return mixture


class EllipseFilter(EmbeddingFilter):
    """Base of the mixture-ellipse filters; subclasses define the space the test runs in.

    Subclasses implement :meth:`_fit_space` (learn the projection from all real samples and
    return their coordinates) and :meth:`_transform_validated` (project new samples), and hold the
    parameters ``gmm_components``, ``gmm_covariance``, ``gmm_reg_covar``, ``gmm_n_init``
    and ``random_state``.

    Attributes (after ``fit``):
        fit_points_: coordinates of the real fit samples in the test space.
        rare_: boolean mask of the rare class among them.
        mixture_: the fitted ``GaussianMixture``.
        component_: index of the heaviest component; ``weight_``, ``mean_``, ``covariance_``,
            ``precision_`` describe it.
        covariances_: ``(K, d, d)`` covariances of all components.
        dof_: dimension of the test space (chi-square degrees of freedom).
        default_level_: ``weight_``.
    """

    reject_reason = "outside-ellipse"
    level_help = (
        "confidence level of the ellipse, in (0, 1); higher lets more through; "
        "default: the weight of the heaviest mixture component"
    )

    gmm_components: int
    gmm_covariance: str
    gmm_reg_covar: float
    gmm_n_init: int
    random_state: int | None

    @abstractmethod
    def _fit_space(self, X: np.ndarray, rare: np.ndarray) -> np.ndarray:
        """Learn the projection on real samples; return their coordinates."""

    @abstractmethod
    def _transform_validated(self, X: np.ndarray) -> np.ndarray:
        """Project already validated samples into the space the ellipse test runs in."""

    def transform(self, X: object) -> np.ndarray:
        """Coordinates of new samples in the space of the test (validated like
        :meth:`score_samples`)."""
        self.check_is_fitted()
        return self._transform_validated(self._validate_new(X))

    def _fit(
        self, X: np.ndarray, rare: np.ndarray, fine: np.ndarray | None = None, features=None
    ) -> None:
        check_rare_count(int(rare.sum()), 2, why="a covariance")
        check_spread(X[rare], what="real rare-class embeddings")
        points = self._fit_space(X, rare)
        dim = points.shape[1]
        components, covariance_type = self._estimable(int(rare.sum()), dim)
        mixture = fit_rare_mixture(
            points[rare],
            n_components=components,
            covariance_type=covariance_type,
            reg_covar=self.gmm_reg_covar,
            n_init=self.gmm_n_init,
            random_state=self.random_state,
        )
        covariances = full_covariances(mixture.covariances_, covariance_type, components, dim)
        component = heaviest_component(mixture.weights_)
        empirical = covariances[component] - self.gmm_reg_covar * np.eye(dim)
        check_covariance(empirical, what="covariance of the heaviest mixture component")
        self.fit_points_ = points
        self.rare_ = rare
        self.mixture_ = mixture
        self.covariances_ = covariances
        self.component_ = component
        self.weight_ = float(mixture.weights_[component])
        self.mean_ = mixture.means_[component].astype(np.float64)
        self.covariance_ = covariances[component]
        self.precision_ = np.linalg.inv(self.covariance_)
        self.dof_ = dim
        self.n_components_, self.covariance_type_ = components, covariance_type
        # one component weighs 1, a level that would pass everything: its 95% ellipse instead
        self.default_level_ = self.weight_ if self.weight_ < 1.0 else SINGLE_COMPONENT_LEVEL

    def _estimable(self, n_rare: int, dim: int) -> tuple[int, str]:
        """The mixture that ``n_rare`` points in ``dim`` dimensions can support: the asked
        components and covariance, else fewer components, else a diagonal covariance (noted in
        ``notes_``). A full covariance per component needs ``dim + 2`` points, a diagonal one 2."""
        components, covariance_type = self.gmm_components, self.gmm_covariance
        per_component = {"full": dim + 2, "tied": 2, "diag": 2, "spherical": 2}
        need = per_component.get(covariance_type, 2)
        if n_rare < components * need:
            fitted = max(1, n_rare // need)
            if fitted < components:
                self.notes_.append(
                    f"{n_rare} real rare samples support {fitted} of the {components} mixture "
                    f"components ({need} points each in {dim}-d): fitted {fitted}"
                )
                components = fitted
            if n_rare < need:
                self.notes_.append(
                    f"{n_rare} real rare samples are too few for a full {dim}-d covariance "
                    f"(need {need}): fitted a diagonal one"
                )
                covariance_type = "diag"
        return components, covariance_type

    def _score(self, X: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:
        return self.score_transformed(self._transform_validated(X))

    def distance_sq_transformed(self, points: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distance of projected ``points`` to the chosen component."""
        self.check_is_fitted()
        return mahalanobis_sq(points, self.mean_, self.precision_)

    def radius_sq(self, level: float | None = None) -> float:
        """The squared Mahalanobis radius of the ellipse at ``level``: a sample passes when its
        :meth:`distance_sq_transformed` is at most this."""
        return chi2_radius_sq(self.resolve_level(level), self.dof_)

    def score_transformed(self, points: np.ndarray) -> np.ndarray:
        """Scores of already projected ``points`` (from :meth:`transform`), in ``[0, 1]``."""
        return chi2_tail(self.distance_sq_transformed(points), self.dof_)

    def evaluate(self, X: object, *, image_features: object = None) -> FilterOutput:
        """Scores of new samples, with their coordinates in the test space (projected once)."""
        points = self.transform(X)
        return FilterOutput(self.score_transformed(points), {}, points)

    def _threshold(self, level: float) -> float:
        return 1.0 - level

    def _level_for_threshold(self, threshold: float) -> float:
        return 1.0 - threshold
