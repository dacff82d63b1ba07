"""Train runs: a classifier trained on the real train split, one network per seed.

``records`` holds the config (:class:`TrainConfig`, built once at the edge) and results,
``fit`` the kind (:data:`TRAIN`) and the training, ``data`` what a run reads, ``evaluation``
the stored test predictions, ``predictions`` loading a run's network to predict or embed.
"""

from curation.runs.train.fit import (
    TRAIN,
    FittedRun,
    TrainKind,
    fit_classifier,
    store_fitted,
    train_classifier,
)
from curation.runs.train.records import TrainConfig, TrainResults, field_names, run_folder

__all__ = [
    "TRAIN",
    "FittedRun",
    "TrainConfig",
    "TrainKind",
    "TrainResults",
    "field_names",
    "fit_classifier",
    "run_folder",
    "store_fitted",
    "train_classifier",
]
