"""What a filter run writes on a dataset: fields, duplicate tags, views, the App's UMAP points."""

from __future__ import annotations

import fiftyone as fo
import fiftyone.brain as fob
import numpy as np

from curation.runs.filter.inputs import FilterInputs

DUPLICATE_TAG = "duplicate"
DUPLICATE_FIELD = "duplicate_of"


def write_fields(dataset: fo.Dataset, ids: list[str], values: dict[str, np.ndarray]) -> list[str]:
    """Store ``values`` (field -> one value per id) on the samples ``ids``; returns the fields."""
    for field, column in values.items():
        dataset.set_values(field, dict(zip(ids, column.tolist(), strict=True)), key_field="id")
    return list(values)


def tag_duplicates(dataset: fo.Dataset, ids: list[str], duplicate_of: np.ndarray) -> None:
    """Tag ``duplicate`` (and set ``duplicate_of``) on the synthetic samples that repeat an
    earlier one; a rerun replaces the tags."""
    dataset.untag_samples(DUPLICATE_TAG)
    if not dataset.has_sample_field(DUPLICATE_FIELD):
        dataset.add_sample_field(DUPLICATE_FIELD, fo.StringField)
    keeper = [ids[k] if k >= 0 else None for k in duplicate_of]
    dataset.set_values(DUPLICATE_FIELD, dict(zip(ids, keeper, strict=True)), key_field="id")
    repeated = [i for i, k in zip(ids, keeper, strict=True) if k is not None]
    if repeated:
        dataset.select(repeated).tag_samples(DUPLICATE_TAG)


def store_visualization(
    dataset: fo.Dataset,
    brain_key: str,
    inputs: FilterInputs,
    real_points: np.ndarray,
    synthetic_points: np.ndarray,
) -> str:
    """Store the plane's points of the real train and synthetic samples
    (:func:`brain.filters.plots.plane_points`) as the visualization brain run ``brain_key``
    (replacing an older one); returns the key."""
    if brain_key in dataset.list_brain_runs():
        dataset.delete_brain_run(brain_key)
    ids = inputs.real_ids + inputs.synthetic_ids
    points = np.vstack([real_points, synthetic_points]).astype(np.float64)
    fob.compute_visualization(
        dataset.select(ids, ordered=True),
        points=points,
        brain_key=brain_key,
        method="manual",
        progress=False,
    )
    return brain_key
