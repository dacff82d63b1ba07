"""The data users really have: nine rare examples in five slides, mixed sizes, one channel.

Grouped cross-validation tests every rare sample exactly once; warnings say when a metric rests
on fewer than five rare samples; the size policy keeps the light background.
"""

from __future__ import annotations

import csv
from pathlib import Path

import fiftyone as fo
import numpy as np
import pytest

from brain.errors import InputError
from brain.images import write_png
from brain.size_policy import SizePolicy
from curation.cli import main
from curation.errors import CurateError
from curation.runs.records import load_run
from curation.runs.train import train_classifier
from curation.schema import size_policy

pytestmark = pytest.mark.usefixtures("one_torch_thread")

N_RARE_PER_GROUP = (2, 2, 2, 2, 1)  # nine rare samples in five slides


def _chromosome(rng: np.random.Generator, rare: bool) -> np.ndarray:
    """A dark bar on a light background, of its own size; rare ones have a pale band."""
    height, width = int(rng.integers(18, 40)), int(rng.integers(10, 20))
    image = np.full((height, width, 1), 235, np.uint8)
    image[2:-2, 3:-3] = 60 + rng.integers(0, 20)
    if rare:
        image[height // 2 - 2 : height // 2 + 2, 3:-3] = 200
    return image


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory) -> Path:
    """A CSV of 9 rare + 75 other grayscale crops of mixed sizes in 5 groups."""
    root = tmp_path_factory.mktemp("small")
    rng = np.random.default_rng(3)
    rows = []
    for group, n_rare in enumerate(N_RARE_PER_GROUP):
        for i in range(n_rare + 15):
            rare = i < n_rare
            path = root / f"g{group}_{i}.png"
            write_png(_chromosome(rng, rare), path)
            rows.append(
                {
                    "filepath": path.name,
                    "label": "dic" if rare else "mono",
                    "group": f"slide{group}",
                }
            )
    manifest = root / "labels.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["filepath", "label", "group"])
        writer.writeheader()
        writer.writerows(rows)
    return manifest


@pytest.fixture(scope="module")
def small(small_csv) -> str:
    name = "small-nine"
    assert main(["ingest", "csv", str(small_csv), "-d", name, "--rare", "dic"]) == 0
    assert main(["config", name, "--size", "24"]) == 0
    return name


def test_size_policy_is_stored_and_keeps_the_background(small):
    dataset = fo.load_dataset(small)
    assert size_policy(dataset) == SizePolicy(24, "border")
    from brain.data import stack_images
    from curation.datasets import decode_view

    arrays = decode_view(dataset.limit(5), progress=False).arrays
    fitted = stack_images(arrays, 24, "border")
    assert fitted.shape[1:] == (1, 24, 24)
    assert int(fitted[:, 0, :, 0].float().mean()) > 200  # light padding, not black
    for bad in (["--size", "4"], ["--size", "2000"], ["--pad", "black", "--size", "32"]):
        assert main(["config", small, *bad]) == 2
    assert size_policy(fo.load_dataset(small)) == SizePolicy(24, "border")


def test_cross_validation_tests_every_rare_sample_once(small):
    report = train_classifier(small, "cv", cv=3, epochs=1, progress=False)
    dataset = fo.load_dataset(small)
    folds = report.folds
    assert len(folds) == 3 and sum(f["n_test_rare"] for f in folds) == 9
    labelled = dataset.exists("ground_truth.label")
    assert sum(f["n_test"] for f in folds) == len(labelled)
    # every labelled sample got exactly one pooled test prediction
    assert len(dataset.exists(report.predictions_field)) == len(labelled)
    assert report.per_seed[0]["support"] == 9
    point = report.per_seed[0]["at_specificity"]  # each fold at its own val threshold
    assert point["n_rare"] == 9 and len(point["thresholds"]) == 3
    assert point["n_rare"] + point["n_other"] == len(labelled)
    assert report.fold_summary["f1"]["n"] == 3
    config, results = load_run(dataset, "train", "cv")
    assert config["cv"] == 3 and len(results["checkpoints"]) == 3


def test_fixed_split_warns_when_metrics_rest_on_few_rare_samples(small, capsys):
    assert main(["train", small, "--run", "fixed", "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert "warning: the test split holds" in out and "--cv 5" in out
    _, results = load_run(fo.load_dataset(small), "train", "fixed")
    assert any("rare sample(s)" in w for w in results["warnings"])


def test_cv_bad_input(small):
    with pytest.raises(InputError, match="only 5 group"):
        train_classifier(small, "bad", cv=6, epochs=1, progress=False)
    with pytest.raises(CurateError, match="at least 2 folds"):
        train_classifier(small, "bad", cv=1, epochs=1, progress=False)
    assert main(["train", small, "--run", "bad", "--cv", "9", "--epochs", "1"]) == 2


def test_cross_validated_study_tests_every_rare_sample_once(small, tmp_path):
    """A 3-fold study: every rare sample is tested once, and no fold's filter or generator sees
    its test or val groups."""
    from curation.experiment import parse_config, run_experiment
    from curation.experiment.cv import fold_dataset_name

    config = parse_config(
        {
            "dataset": small,
            "name": "cvs",
            "seeds": 2,
            "cv": 3,
            "augment": [False],
            "arms": ["real", "all", "filtered"],
            "classifier": {"epochs": 1, "batch_size": 16},
            "generators": [{"method": "interpolation", "n": 8}],
            "filter": {"method": "combined"},
            "ssim": {"enabled": False},
            "leakage": {"enabled": False},
        }
    )
    results = run_experiment(config, out=tmp_path / "r", echo=lambda _: None, progress=False)
    real = next(row for row in results["tables"] if row["arm"] == "real")
    assert len(real["counts"]) == 2  # per seed, summed over the folds
    for counts in real["counts"]:
        assert counts["tp"] + counts["fn"] == 9  # every rare sample tested once per seed
    low, high = real["recall_ci"]  # from the pooled counts: 9 rare test samples
    assert 0 <= low <= real["recall"]["mean"] <= high <= 1
    assert [p["n_rare"] for p in real["at_specificity"]["per_seed"]] == [9, 9]
    assert len(real["fold_f1"]) == 3 and len(real["f1"]["values"]) == 2
    assert {tuple(v["arms"]) for v in results["verdicts"]} >= {("filtered", "real")}
    tested: list[str] = []
    for fold in range(3):
        fold_set = fo.load_dataset(fold_dataset_name(small, fold, 3))
        groups = {
            split: set(fold_set.match({"split": split, "origin": "real"}).distinct("group"))
            for split in ("train", "val", "test")
        }
        assert not groups["test"] & (groups["train"] | groups["val"])
        tested += fold_set.match({"split": "test", "ground_truth.label": "dic"}).values("filepath")
        synthetic = fold_set.match({"origin": "synthetic"})
        assert len(synthetic) > 0
        train_ids = set(fold_set.match({"split": "train"}).values("id"))
        assert set(synthetic.values("lineage.source_id")) <= train_ids  # sources: train only
        # the fold's filter was fitted on that fold's real train samples only
        assert results["fold_reports"][fold].endswith("report.md")
    assert len(tested) == 9 and len(set(tested)) == 9  # each rare sample tested exactly once
    text = (tmp_path / "r" / "report.md").read_text()
    assert "3-fold cross-validated" in text and "## Verdicts" in text
