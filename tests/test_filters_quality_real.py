"""Filter quality on real data (BreastMNIST): held-out real rare-class images should score
above corrupted copies of them and above real images of the other class."""

from __future__ import annotations

import fiftyone as fo
import numpy as np
import pytest
from conftest import shared_data

from brain.filters.quality import filter_quality
from brain.images import write_png
from curation.ingest import ingest_records
from curation.readers import Record, read_npz
from curation.runs.embed import compute_embeddings
from curation.runs.filter import run_filter
from curation.runs.train import train_classifier
from curation.schema import ORIGIN_FIELD


def _shuffle_patches(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    tiles = [(y, x) for y in range(0, 28, 7) for x in range(0, 28, 7)]
    out = image.copy()
    for (y, x), i in zip(tiles, rng.permutation(len(tiles)), strict=True):
        sy, sx = tiles[i]
        out[y : y + 7, x : x + 7] = image[sy : sy + 7, sx : sx + 7]
    return out


@pytest.mark.slow  # trains a small classifier (about a minute on 2 cores)
def test_filters_rank_real_rare_above_corrupted_and_other_class(tmp_path):
    records = read_npz(shared_data("medmnist", "breastmnist.npz"), tmp_path / "real")
    rng = np.random.default_rng(0)
    test = [r for r in records if r.split == "test"]
    rare_test = [r for r in test if r.label == "0"]
    other_test = [r for r in test if r.label == "1"]
    held_rare, held_other = rare_test[::2], other_test[::2][: len(rare_test[::2])]
    real = [r for r in records if r.split != "test"] + rare_test[1::2] + other_test[1::2]
    candidates, truth, corrupted = [], [], []
    n_real = len(held_rare) + len(held_other)
    for i, record in enumerate(held_rare + held_other + held_rare):
        image = record.array if i < n_real else _shuffle_patches(record.array, rng)
        path = tmp_path / "candidates" / f"{i:04d}.png"
        write_png(image, path)
        candidates.append(Record(str(path), "0"))
        truth.append(i < len(held_rare))
        corrupted.append(i >= n_real)
    name = "quality-breastmnist"
    ingest_records(real, name, source="test", rare="0")
    ingest_records(candidates, name, source="test", origin="synthetic", append=True)
    train_classifier(name, "r", epochs=2, progress=False, num_threads=1)
    compute_embeddings(name, "r", progress=False, num_threads=1)
    synthetic = fo.load_dataset(name).match(fo.ViewField(ORIGIN_FIELD) == "synthetic")
    index = {c.filepath: i for i, c in enumerate(candidates)}
    order = np.array([index[p] for p in synthetic.values("filepath")])
    truth, corrupted = np.array(truth)[order], np.array(corrupted)[order]
    for method in ("gmm_full", "knn_precision"):
        run_filter(name, method, method, visualize=False, plots=False)
        scores = np.array(synthetic.values(f"{method}_score"), dtype=float)
        assert filter_quality(scores, truth)["auroc"] > 0.6, method
        assert np.median(scores[truth]) > np.median(scores[corrupted]), method
