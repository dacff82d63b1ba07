"""A train run's test predictions on the dataset: a Classification field and a FiftyOne
evaluation, so the App shows which test samples its network gets wrong."""

from __future__ import annotations

from collections.abc import Sequence

import fiftyone as fo
import numpy as np

from curation.schema import LABEL_FIELD


def make_predictions(proba: np.ndarray, classes: Sequence[str]) -> list[fo.Classification]:
    """One ``fo.Classification`` per row of ``proba``: the most probable class, its
    probability as ``confidence`` and the log-probabilities as ``logits``."""
    proba = np.asarray(proba, dtype=np.float64)
    best = proba.argmax(axis=1)
    logits = np.log(np.clip(proba, 1e-12, 1.0))
    return [
        fo.Classification(label=classes[b], confidence=float(p[b]), logits=row.tolist())
        for b, p, row in zip(best, proba, logits, strict=True)
    ]


def clear_predictions(dataset: fo.Dataset, field: str, eval_key: str) -> None:
    """Remove an older prediction field and evaluation of the same run, if any."""
    if eval_key in dataset.list_evaluations():
        dataset.delete_evaluation(eval_key)
    if dataset.has_sample_field(field):
        dataset.delete_sample_field(field)


def store_predictions(
    dataset: fo.Dataset,
    ids: Sequence[str],
    proba: np.ndarray,
    *,
    classes: Sequence[str],
    rare_class: str,
    field: str,
    eval_key: str,
) -> dict:
    """Write predictions on samples ``ids`` into ``field`` and evaluate them under ``eval_key``
    (FiftyOne's ``binary`` method with the rare class as positive for two classes, ``simple``
    otherwise); replaces an older field and evaluation of those names.

    Returns:
        FiftyOne's report of the evaluation (``classification_report`` as a dict).
    """
    clear_predictions(dataset, field, eval_key)
    predictions = make_predictions(proba, classes)
    dataset.set_values(field, dict(zip(ids, predictions, strict=True)), key_field="id")
    view = dataset.select(list(ids))
    if len(classes) == 2:
        negative = next(c for c in classes if c != rare_class)
        results = view.evaluate_classifications(
            field,
            gt_field=LABEL_FIELD,
            eval_key=eval_key,
            method="binary",
            classes=[negative, rare_class],
            progress=False,
        )
    else:
        results = view.evaluate_classifications(
            field, gt_field=LABEL_FIELD, eval_key=eval_key, method="simple", progress=False
        )
    return results.report()
