"""The leakage check of a study: synthetic near-copies of real val or test images, found in the
embedding space and confirmed by exact SSIM, are tagged ``leak`` and kept out of every arm."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import fiftyone as fo
import numpy as np
from fiftyone import ViewField as F
from sklearn.neighbors import NearestNeighbors

from brain.ssim import pairwise_ssim
from curation.datasets import decode_view
from curation.experiment.config import ExperimentConfig
from curation.runs.embed.compute import EMBED
from curation.schema import (
    LINEAGE_FIELD,
    ORIGIN_FIELD,
    REAL,
    SPLIT_FIELD,
    SYNTHETIC,
    run_size_policy,
)

LEAK_TAG = "leak"
LEAK_FIELD = "leak_of"


def check_leakage(
    dataset: fo.Dataset, config: ExperimentConfig, embedding: str, echo: Callable[[str], None]
) -> dict[str, Any]:
    """Find synthetic near-copies of real val or test images: each synthetic sample's nearest
    real neighbours over train, val and test in the embedding space, then the exact SSIM with
    them. Samples at or above the threshold with a val/test image are tagged ``leak`` (field
    ``leak_of``: that image's id) and kept out of every training arm.

    Returns:
        ``threshold``, ``n_checked``, ``n_leaks`` and ``by_generator`` (leaks per lineage run).
    """
    field = EMBED.load(dataset, embedding)[0].field
    real = dataset.match((F(ORIGIN_FIELD) == REAL) & F(SPLIT_FIELD).is_in(["train", "val", "test"]))
    synthetic = dataset.match(F(ORIGIN_FIELD) == SYNTHETIC).exists(field)
    real = real.exists(field)
    dataset.untag_samples(LEAK_TAG)
    if not len(synthetic) or not len(real):
        return {"threshold": config.leakage.threshold, "n_checked": 0, "n_leaks": 0}
    real_ids, real_vectors, splits = real.values(["id", field, SPLIT_FIELD])
    syn_ids, syn_vectors, runs = synthetic.values(["id", field, f"{LINEAGE_FIELD}.run"])
    k = min(config.leakage.neighbours, len(real_ids))
    _, nearest = NearestNeighbors(n_neighbors=k).fit(real_vectors).kneighbors(syn_vectors)
    policy = run_size_policy(dataset, config.classifier.size)

    def fitted(view) -> np.ndarray:
        return policy.fit(decode_view(view, progress=False).arrays)

    real_images = fitted(real)
    syn_images = fitted(synthetic)
    leaks: dict[str, str] = {}
    for i, neighbours in enumerate(nearest):
        held_out = [j for j in neighbours if splits[j] in ("val", "test")]
        if not held_out:
            continue
        scores = pairwise_ssim(syn_images[i : i + 1], real_images[held_out])[0]
        best = int(np.argmax(scores))
        if scores[best] >= config.leakage.threshold:
            leaks[syn_ids[i]] = real_ids[held_out[best]]
    if not dataset.has_sample_field(LEAK_FIELD):
        dataset.add_sample_field(LEAK_FIELD, fo.StringField)
    synthetic.set_values(LEAK_FIELD, [leaks.get(i) for i in syn_ids])
    if leaks:
        dataset.select(list(leaks)).tag_samples(LEAK_TAG)
        echo(f"[leakage] {len(leaks)} synthetic near-copies of val/test images: not trained on")
    by_run: dict[str, int] = {}
    for sample_id, run in zip(syn_ids, runs, strict=True):
        if sample_id in leaks:
            by_run[run or "(no lineage)"] = by_run.get(run or "(no lineage)", 0) + 1
    return {
        "threshold": config.leakage.threshold,
        "n_checked": len(syn_ids),
        "n_leaks": len(leaks),
        "by_generator": by_run,
    }
