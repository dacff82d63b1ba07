"""Classic baselines (Bhatta & Rahman): copies, random erasing, interpolation, SMOTE, ADASYN and
SMOTE-Tomek on pixels.

None of these trains a network: ``fit`` stores the images it needs (these are its "weights"; the
checkpoint digest covers them) and ``generate`` makes one image per ``(source, seed)``. For all of
them the sources are meant to be rare-class images (the API passes the rare training images).

The SMOTE family works on flattened pixels (``S * S * C`` dimensions) with the neighbour search
imbalanced-learn uses (``imblearn.utils.check_neighbors_object``: ``NearestNeighbors`` with one
extra neighbour for the point itself). imbalanced-learn's ``fit_resample`` draws base samples at
random for a whole batch; to make each output depend only on its ``(source, seed)`` pair (and so
make generation resumable), the source is the base sample and the seed draws the neighbour and
the gap, which is SMOTE's rule as Chawla et al. (2002) state it per minority sample. Outputs are
rounded to ``uint8``.

Not provided: SMOTE on classifier embeddings decoded back to images. The only decoder available
without training one is the nearest real image, which would return a copy of a real image
labelled as new: not an honest synthetic sample.
"""

from __future__ import annotations

import hashlib
from typing import ClassVar

import numpy as np

from brain.errors import InputError
from generators.arrays import seeded_rng
from generators.base import GENERATORS, Generator


class _StoredImagesGenerator(Generator):
    """A generator whose fitted state is the images it was given."""

    stores_sources: ClassVar[bool] = False

    def __init__(
        self,
        image_size: int = 64,
        channels: int = 3,
        *,
        condition: str = "grayscale",
        seed: int = 0,
    ) -> None:
        super().__init__(image_size, channels, condition=condition, seed=seed)

    def _fit(self, targets, sources, *, masks, **kwargs) -> None:
        if masks is not None:
            raise InputError(f"{self.method} does not use masks")
        self.targets_ = targets.copy()
        if self.stores_sources:
            self.sources_ = sources.copy()
        self._after_fit()
        self.loss_history_ = []

    def _after_fit(self) -> None:
        """Derive fitted state from ``targets_`` (and ``sources_``)."""

    def _weights(self) -> dict[str, np.ndarray]:
        weights = {"targets": self.targets_}
        if self.stores_sources:
            weights["sources"] = self.sources_
        return weights

    def _set_weights(self, weights) -> None:
        self.targets_ = np.asarray(weights["targets"])
        if self.stores_sources:
            self.sources_ = np.asarray(weights["sources"])
        self._after_fit()

    def uses_masks(self) -> bool:
        return False

    def _generate(self, sources, seeds, masks, steps) -> np.ndarray:
        return np.stack(
            [self._one(source, seed) for source, seed in zip(sources, seeds, strict=True)]
        )

    def _one(self, source: np.ndarray, seed: int) -> np.ndarray:
        raise NotImplementedError


@GENERATORS.register("copies")
class CopyGenerator(_StoredImagesGenerator):
    """Random oversampling: each output is an exact copy of its source (the seed is unused)."""

    method = "copies"

    def _after_fit(self) -> None:
        self.targets_ = self.targets_[:0]  # nothing to keep: outputs are the sources

    def _one(self, source, seed):
        return source.copy()


@GENERATORS.register("erasing")
class RandomErasingGenerator(_StoredImagesGenerator):
    """Random erasing: the source with ``n_patches`` square patches set to ``fill``.

    Positions come from the seed. The hernia study erased one 16x16 patch and made two copies per
    rare image (ask for two seeds per source to match it).

    Args:
        patch_size: side of each patch in pixels.
        n_patches: patches per output image.
        fill: the value (0-255) written into the patches.
    """

    method = "erasing"

    def __init__(
        self,
        image_size: int = 64,
        channels: int = 3,
        *,
        condition: str = "grayscale",
        patch_size: int = 16,
        n_patches: int = 1,
        fill: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__(image_size, channels, condition=condition, seed=seed)
        self.patch_size = patch_size
        self.n_patches = n_patches
        self.fill = fill

    def check_params(self) -> None:
        super().check_params()
        if not 1 <= int(self.patch_size) <= int(self.image_size):
            raise InputError(
                f"erasing patch size must be in [1, {self.image_size}], got {self.patch_size}"
            )
        if int(self.n_patches) < 1 or not 0 <= int(self.fill) <= 255:
            raise InputError("erasing needs n_patches >= 1 and a fill value in [0, 255]")

    def _after_fit(self) -> None:
        self.targets_ = self.targets_[:0]

    def _one(self, source, seed):
        rng = seeded_rng(seed)
        out = source.copy()
        size = int(self.patch_size)
        for _ in range(int(self.n_patches)):
            top, left = rng.integers(0, self.image_size - size + 1, size=2)
            out[top : top + size, left : left + size] = int(self.fill)
        return out


@GENERATORS.register("interpolation")
class InterpolationGenerator(_StoredImagesGenerator):
    """Pixel interpolation: ``weight * source + (1 - weight) * partner``, rounded.

    A source's partners are the distinct fitted rare-class images that differ from it; its
    possible outputs are the distinct mixes with them (:meth:`mixes`), visited in an order drawn
    from the source's pixels, one per seed: any ``m`` consecutive seeds give ``m`` different
    images, where ``m`` is the number of mixes (:meth:`distinct_images`), and seed ``s + m``
    repeats seed ``s``. The weight lies strictly between 0.5 and 1: at 0.5 the two images of a
    pair would give the same mix, at 1 a copy.

    Args:
        weight: the source's weight (0.9 in the hernia study).
    """

    method = "interpolation"
    min_train_images = 2
    finite_outputs = True

    def __init__(
        self,
        image_size: int = 64,
        channels: int = 3,
        *,
        condition: str = "grayscale",
        weight: float = 0.9,
        seed: int = 0,
    ) -> None:
        super().__init__(image_size, channels, condition=condition, seed=seed)
        self.weight = weight

    def check_params(self) -> None:
        super().check_params()
        if not 0.5 < float(self.weight) < 1.0:
            raise InputError(
                f"interpolation weight must lie strictly between 0.5 and 1, got {self.weight}"
            )

    def _after_fit(self) -> None:
        self.partners_ = np.unique(self.targets_, axis=0)

    def mixes(self, source: np.ndarray) -> np.ndarray:
        """The distinct images ``source`` can give, ``uint8 (m, S, S, C)``, in the order seeds
        visit them."""
        partners = self.partners_
        others = partners[(partners != source).reshape(len(partners), -1).any(1)]
        weight = float(self.weight)
        mixed = weight * source.astype(np.float64) + (1 - weight) * others.astype(np.float64)
        unique = np.unique(np.clip(np.round(mixed), 0, 255).astype(np.uint8), axis=0)
        return unique[pixel_rng(source).permutation(len(unique))]

    def distinct_images(self, sources: np.ndarray) -> np.ndarray:
        return np.array([len(self.mixes(source)) for source in sources])

    def _one(self, source, seed):
        mixes = self.mixes(source)
        if len(mixes) == 0:
            raise InputError("interpolation needs a rare-class image that differs from the source")
        return mixes[int(seed) % len(mixes)]


def pixel_rng(image: np.ndarray) -> np.random.Generator:
    """A numpy generator seeded by the bytes of ``image`` (the same image, the same stream)."""
    digest = hashlib.sha256(np.ascontiguousarray(image).tobytes()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "big"))


def smote_sample(
    source: np.ndarray, neighbours: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """SMOTE's rule: ``x + u (x_nn - x)``, ``x_nn`` drawn from ``neighbours``, ``u ~ U[0, 1)``."""
    chosen = neighbours[rng.integers(0, len(neighbours))]
    gap = rng.uniform()
    return source + gap * (chosen - source)


class _SmoteGenerator(_StoredImagesGenerator):
    """SMOTE on flattened pixels; subclasses add ADASYN weights or Tomek cleaning."""

    def __init__(
        self,
        image_size: int = 64,
        channels: int = 3,
        *,
        condition: str = "grayscale",
        k_neighbors: int = 5,
        seed: int = 0,
    ) -> None:
        super().__init__(image_size, channels, condition=condition, seed=seed)
        self.k_neighbors = k_neighbors

    @property
    def min_train_images(self) -> int:  # type: ignore[override]
        return int(self.k_neighbors) + 1

    def check_params(self) -> None:
        super().check_params()
        if int(self.k_neighbors) < 1:
            raise InputError(f"k_neighbors must be at least 1, got {self.k_neighbors}")

    def _after_fit(self) -> None:
        from imblearn.utils import check_neighbors_object

        self.rare_pixels_ = self.targets_.reshape(len(self.targets_), -1).astype(np.float64)
        self.nn_k_ = check_neighbors_object("k_neighbors", int(self.k_neighbors), 1)
        self.nn_k_.fit(self.rare_pixels_)

    def _neighbours(self, x: np.ndarray) -> list[np.ndarray]:
        """For each row of ``x``, its ``k`` nearest rare-class images other than copies of it."""
        k = int(self.k_neighbors)
        distances, index = self.nn_k_.kneighbors(x, n_neighbors=min(k + 1, len(self.rare_pixels_)))
        neighbours = []
        for row_distances, row_index in zip(distances, index, strict=True):
            row = row_index[row_distances > 0][:k]
            if len(row) == 0:
                raise InputError(
                    f"{self.method} found no rare-class neighbour that differs from the source"
                )
            neighbours.append(self.rare_pixels_[row])
        return neighbours

    def _draw(self, x: np.ndarray, rngs: list[np.random.Generator]) -> np.ndarray:
        """One SMOTE sample per row of ``x`` (flattened pixels), each from its own generator."""
        neighbours = self._neighbours(x)
        return np.stack([smote_sample(*args) for args in zip(x, neighbours, rngs, strict=True)])

    def _generate(self, sources, seeds, masks, steps) -> np.ndarray:
        x = sources.reshape(len(sources), -1).astype(np.float64)
        new = self._draw(x, [seeded_rng(seed) for seed in seeds])
        return np.clip(np.round(new), 0, 255).astype(np.uint8).reshape(sources.shape)


@GENERATORS.register("smote")
class SmoteGenerator(_SmoteGenerator):
    """SMOTE (Chawla et al. 2002) on pixels: each output lies on the segment from its source to one
    of the source's ``k_neighbors`` nearest rare-class images, at a uniform random point."""

    method = "smote"


@GENERATORS.register("adasyn")
class AdasynGenerator(_SmoteGenerator):
    """ADASYN (He et al. 2008) on pixels: SMOTE's rule, with more samples for harder sources.

    ``fit`` also takes the other class (``sources``). ``source_weights_[i]`` is the share of
    other-class images among the ``k_neighbors`` nearest neighbours of fitted rare image ``i`` in
    all the data, normalised to sum to 1 (as imbalanced-learn's ADASYN; uniform when no rare
    image has an other-class neighbour, where imbalanced-learn refuses). The caller allocates
    seeds to sources in proportion to these weights; each output follows SMOTE's rule.
    """

    method = "adasyn"
    requires_fit_sources = True
    fit_sources = "other-class"
    stores_sources = True

    def _after_fit(self) -> None:
        from imblearn.utils import check_neighbors_object

        super()._after_fit()
        others = self.sources_.reshape(len(self.sources_), -1).astype(np.float64)
        everything = np.concatenate([self.rare_pixels_, others])
        is_other = np.r_[np.zeros(len(self.rare_pixels_), bool), np.ones(len(others), bool)]
        nn = check_neighbors_object("n_neighbors", int(self.k_neighbors), 1).fit(everything)
        index = nn.kneighbors(self.rare_pixels_, return_distance=False)[:, 1:]
        ratio = is_other[index].mean(axis=1)
        total = ratio.sum()
        self.source_weights_ = ratio / total if total > 0 else np.full(len(ratio), 1 / len(ratio))


@GENERATORS.register("smote_tomek")
class SmoteTomekGenerator(_SmoteGenerator):
    """SMOTE followed by Tomek-link cleaning (Batista et al. 2004), for the synthetic sample only.

    ``fit`` also takes the other class (``sources``). A SMOTE sample whose nearest neighbour is
    an other-class image that has the sample as its own nearest neighbour (a Tomek link) would be
    removed by imbalanced-learn's ``SMOTETomek``; here it is redrawn from the next random numbers
    of its seed, up to ``max_redraws`` times (the last draw is kept after that). Real images are
    never removed: a generator only adds samples.

    Args:
        max_redraws: redraws of a sample that forms a Tomek link.
    """

    method = "smote_tomek"
    requires_fit_sources = True
    fit_sources = "other-class"
    stores_sources = True

    def __init__(
        self,
        image_size: int = 64,
        channels: int = 3,
        *,
        condition: str = "grayscale",
        k_neighbors: int = 5,
        max_redraws: int = 10,
        seed: int = 0,
    ) -> None:
        super().__init__(
            image_size, channels, condition=condition, k_neighbors=k_neighbors, seed=seed
        )
        self.max_redraws = max_redraws

    def _after_fit(self) -> None:
        from sklearn.neighbors import NearestNeighbors

        super()._after_fit()
        others = self.sources_.reshape(len(self.sources_), -1).astype(np.float64)
        self.all_pixels_ = np.concatenate([self.rare_pixels_, others])
        self.is_other_ = np.r_[np.zeros(len(self.rare_pixels_), bool), np.ones(len(others), bool)]
        self.nn_all_ = NearestNeighbors(n_neighbors=2).fit(self.all_pixels_)
        # each fitted image's distance to its nearest other fitted image
        self.nn_distance_ = self.nn_all_.kneighbors(self.all_pixels_)[0][:, 1]

    def tomek_links(self, x: np.ndarray) -> np.ndarray:
        """Whether each flattened sample (row of ``x``) would form a Tomek link with an
        other-class image: that image is its nearest neighbour and it is nearer to that image
        than any fitted image is."""
        distance, index = self.nn_all_.kneighbors(x, n_neighbors=1)
        nearest = index[:, 0]
        return self.is_other_[nearest] & (distance[:, 0] < self.nn_distance_[nearest])

    def _draw(self, x, rngs):
        new = super()._draw(x, rngs)
        for _ in range(int(self.max_redraws)):
            redraw = np.flatnonzero(self.tomek_links(new))
            if len(redraw) == 0:
                break
            new[redraw] = super()._draw(x[redraw], [rngs[i] for i in redraw])
        return new
