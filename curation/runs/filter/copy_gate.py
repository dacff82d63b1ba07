"""The near-copy gate of every filter run: synthetic samples that copy a real image, on pixels.

Every synthetic sample is compared, under the filter run's size policy, with its own source (from
its lineage), with the real rare train images nearest to it and with the nearest real train
images of the other classes (:mod:`brain.copies`: a shortlist from the embeddings and from
thumbnails, then SSIM and the normalised pixel distance). A copy is rejected whatever its
filter score: ``near-copy`` (of a real rare train image), ``copy-of-source`` (of its own source,
which is not a real rare train image: label noise) or ``copy-of-other-class``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import fiftyone as fo
import numpy as np

from brain.copies import (
    CopyThresholds,
    Match,
    copy_reasons,
    copy_thresholds,
    nearest_real,
    paired_ssim,
    pixel_distance,
)
from brain.size_policy import SizePolicy
from brain.ssim import WINDOW
from curation.datasets import decode_view
from curation.runs.filter.inputs import FilterInputs
from curation.schema import LINEAGE_FIELD

FALLBACK_SIZE = 32
"""The side images are compared at when they differ in size and the run's policy sets none."""


@dataclass
class CopyGate:
    """What the gate found for each synthetic sample (in the order of the filter's inputs).

    Attributes:
        reasons: the rejection reason, ``""`` where the sample is no copy.
        ssim: the highest SSIM to a real train image or to its source.
        distance: the smallest pixel distance to one of them.
        copy_of: the id of the image it copies (where it is a copy), else of its closest one.
        thresholds: the thresholds used; size: the side images were compared at (``None``:
            their own size).
    """

    reasons: np.ndarray
    ssim: np.ndarray
    distance: np.ndarray
    copy_of: list[str | None]
    thresholds: CopyThresholds
    size: int | None

    @property
    def rejected(self) -> np.ndarray:
        """Whether each sample is a copy."""
        return self.reasons != ""

    def summary(self) -> dict[str, Any]:
        """The thresholds, the comparison size and the counts, for the run record."""
        names, counts = np.unique(self.reasons[self.rejected].astype(str), return_counts=True)
        return {
            **self.thresholds.as_dict(),
            "size": self.size,
            "rejected": {str(n): int(c) for n, c in zip(names, counts, strict=True)},
        }


def _comparison_policy(policy: SizePolicy, arrays: list[np.ndarray]) -> SizePolicy:
    """``policy`` where it has a size; without one, the images' own size when they share one
    (at least the SSIM window), else :data:`FALLBACK_SIZE` with ``policy``'s padding."""
    if policy.size is not None:
        return policy
    shapes = {a.shape[:2] for a in arrays}
    if len(shapes) == 1 and min(next(iter(shapes))) >= WINDOW:
        return policy
    return SizePolicy(FALLBACK_SIZE, policy.pad)


def _source_images(
    dataset: fo.Dataset, source_ids: list[str | None], real_index: dict[str, int]
) -> dict[str, np.ndarray]:
    """The decoded sources that are not real train samples (``real_index``), by id."""
    others = sorted({i for i in source_ids if i is not None and i not in real_index})
    found = {}
    if others:
        view = dataset.select(others, ordered=True)
        if len(view):
            decoded = decode_view(view, progress=False, desc="sources")
            found = dict(zip(decoded.ids, decoded.arrays, strict=True))
    return found


def _source_match(synthetic: np.ndarray, sources: list[np.ndarray | None]) -> Match:
    """Each sample against its own source (``None``: none known; ``index`` is 0 where a
    source was compared, -1 where none is known)."""
    n = len(synthetic)
    match = Match(np.full(n, -np.inf), np.full(n, np.inf), np.full(n, -1, dtype=np.int64))
    have = np.array([s is not None for s in sources], dtype=bool)
    if have.any():
        paired = np.stack([s for s in sources if s is not None])
        match.ssim[have] = paired_ssim(synthetic[have], paired)
        match.distance[have] = pixel_distance(synthetic[have], paired)
        match.index[have] = 0
    return match


def _copied_id(matches: list, thresholds: CopyThresholds, i: int) -> str | None:
    """The id of the image sample ``i`` copies (the first match that is a copy), else of the
    closest one by SSIM."""
    usable = [(m, name) for m, name in matches if m.index[i] >= 0]
    for match, name in usable:
        if thresholds.is_copy(match.ssim[i], match.distance[i]):
            return name(i)
    return max(usable, key=lambda pair: pair[0].ssim[i])[1](i) if usable else None


def near_copy_gate(
    dataset: fo.Dataset,
    inputs: FilterInputs,
    images: list[np.ndarray],
    *,
    threshold: float | None = None,
) -> CopyGate:
    """Compare every synthetic sample with its source and the nearest real train images.

    Args:
        dataset: the project dataset.
        inputs: what the filter run read (real train ids, embeddings and rare mask; synthetic
            ids and embeddings).
        images: the decoded synthetic images, in the order of ``inputs.synthetic_ids``.
        threshold: the SSIM at or above which a sample is a copy; ``None``: measured on the
            real rare train images (:func:`brain.copies.copy_thresholds`).
    """
    real_view = dataset.select(inputs.real_ids, ordered=True)
    real_arrays = decode_view(real_view, progress=False, desc="real train").arrays
    policy = _comparison_policy(inputs.policy, real_arrays + list(images))
    real, synthetic = policy.fit(real_arrays), policy.fit(images)
    rare = inputs.rare
    thresholds = copy_thresholds(real[rare], inputs.real[rare], ssim=threshold)
    rare_ids = np.array(inputs.real_ids, dtype=object)[rare]
    other_ids = np.array(inputs.real_ids, dtype=object)[~rare]
    rare_match = nearest_real(synthetic, real[rare], inputs.synthetic, inputs.real[rare])
    other_match = nearest_real(synthetic, real[~rare], inputs.synthetic, inputs.real[~rare])

    source_ids = dataset.select(inputs.synthetic_ids, ordered=True).values(
        f"{LINEAGE_FIELD}.source_id"
    )
    real_index = {sample_id: i for i, sample_id in enumerate(inputs.real_ids)}
    decoded = _source_images(dataset, source_ids, real_index)
    sources: list[np.ndarray | None] = []
    for sample_id in source_ids:
        if sample_id in real_index:
            sources.append(real[real_index[sample_id]])
        elif sample_id in decoded:
            sources.append(policy.fit([decoded[sample_id]])[0])
        else:
            sources.append(None)
    source_match = _source_match(synthetic, sources)
    source_is_rare = np.array([i in real_index and rare[real_index[i]] for i in source_ids])
    reasons = copy_reasons(rare_match, other_match, source_match, source_is_rare, thresholds)

    # in the order copy_reasons names them: the source first, then rare, then other classes
    matches = [
        (source_match, lambda i: source_ids[i]),
        (rare_match, lambda i: rare_ids[rare_match.index[i]]),
        (other_match, lambda i: other_ids[other_match.index[i]]),
    ]
    ssim = np.maximum.reduce([m.ssim for m, _ in matches])
    distance = np.minimum.reduce([m.distance for m, _ in matches])
    copy_of = [_copied_id(matches, thresholds, i) for i in range(len(synthetic))]
    return CopyGate(reasons, ssim, distance, copy_of, thresholds, policy.size)
