"""SSIM analysis: how close each synthetic sample comes to a real training image.

For every synthetic sample: the maximum SSIM (:mod:`brain.ssim`, exact over all real training
images) and which real sample reaches it, stored as fields; samples at or above a threshold are
tagged ``near-copy`` and linked to their nearest real neighbour in the embedding similarity
index; the view ``near-copies`` collects them for the App.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from brain.data import decode_view, stack_images
from brain.runs import store_run
from brain.ssim import max_ssim
from curation.datasets import builtin_views, open_dataset, resolve_view, save_view
from curation.errors import CurateError

SSIM_FIELD = "max_ssim"
SSIM_SOURCE_FIELD = "max_ssim_real_id"
NEAREST_FIELD = "nearest_real_id"
NEAR_COPY_TAG = "near-copy"
NEAR_COPY_VIEW = "near-copies"


def _as_nhwc(arrays, size: int | None) -> np.ndarray:
    return stack_images(arrays, size).permute(0, 2, 3, 1).numpy()


def compute_max_ssim(
    dataset_name: str,
    *,
    threshold: float = 0.9,
    view: str = "synthetic",
    size: int | None = None,
    embed_name: str | None = None,
    run: str = "ssim",
    progress: bool = True,
) -> dict[str, Any]:
    """Score every sample of ``view`` (synthetic by default) against all real training images.

    Args:
        dataset_name: the project dataset.
        threshold: SSIM at or above which a sample is a near-copy.
        view: the samples to score.
        size: pad-and-resize every image to ``size x size`` (needed when sizes differ).
        embed_name: the embed run whose similarity index finds each near-copy's nearest real
            neighbour (default: the latest; skipped when there is none).
        run: the name the analysis is stored under (run kind ``ssim``).
        progress: progress bars while decoding.

    Returns:
        ``n_scored``, ``n_near_copies``, ``threshold``, ``quantiles`` of the maximum SSIM.
    """
    if not 0 < threshold <= 1:
        raise CurateError(f"SSIM threshold must lie in (0, 1], got {threshold}")
    dataset = open_dataset(dataset_name)
    candidates = decode_view(resolve_view(dataset, view), progress=progress, desc="ssim: samples")
    references = decode_view(
        builtin_views(dataset)["real-train"], progress=progress, desc="ssim: real"
    )
    shapes = {a.shape for a in candidates.arrays + references.arrays}
    if size is None and len(shapes) > 1:
        raise CurateError("images differ in size: give a size to compare them by SSIM")
    best, where = max_ssim(_as_nhwc(candidates.arrays, size), _as_nhwc(references.arrays, size))
    source_ids = [references.ids[i] for i in where]
    scored = dataset.select(candidates.ids, ordered=True)
    scored.set_values(SSIM_FIELD, best.tolist())
    scored.set_values(SSIM_SOURCE_FIELD, source_ids)
    dataset.untag_samples(NEAR_COPY_TAG)
    near = [i for i, value in zip(candidates.ids, best, strict=True) if value >= threshold]
    if near:
        dataset.select(near).tag_samples(NEAR_COPY_TAG)
        _link_nearest(dataset_name, dataset, near, embed_name)
    save_view(
        dataset,
        NEAR_COPY_VIEW,
        dataset.match_tags(NEAR_COPY_TAG).sort_by(SSIM_FIELD, reverse=True),
        description=f"synthetic samples with max SSIM >= {threshold} against real train",
    )
    summary = {
        "n_scored": len(candidates.ids),
        "n_near_copies": len(near),
        "threshold": threshold,
        "quantiles": {str(q): float(np.quantile(best, q)) for q in (0.05, 0.5, 0.95)},
    }
    store_run(dataset, "ssim", run, {"view": view, "size": size, "threshold": threshold}, summary)
    return summary


def _link_nearest(dataset_name: str, dataset, ids: list[str], embed_name: str | None) -> None:
    from brain.embeddings import find_similar
    from brain.runs import list_runs

    if embed_name is None and not list_runs(dataset, "embed"):
        return
    nearest = []
    for sample_id in ids:
        try:
            hits = find_similar(dataset_name, sample_id, k=1, name=embed_name)
        except CurateError:  # e.g. a sample embedded by no run
            hits = []
        nearest.append(hits[0]["id"] if hits else None)
    dataset.select(ids, ordered=True).set_values(NEAREST_FIELD, nearest)
