"""The whole study on tiny data: tables, figures, resume, export round trip, no test leakage."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import fiftyone as fo
import numpy as np
import pytest
import yaml
from PIL import Image
from test_ingest import assert_one_line_error
from test_runs import snapshot

from brain.images import write_png
from brain.level_choice import Retrain
from curation.cli import main
from curation.demo import make_demo_data
from curation.experiment.cells import filter_key
from curation.experiment.figures import sample_grid
from curation.experiment.report import markdown_table, reasons_table
from curation.experiment.results import at_specificity_summary
from curation.ingest import ingest_csv, ingest_pool
from curation.reasons import count_reasons
from curation.runs.filter import FILTER
from curation.runs.records import has_run

DATASET = "study"


def ingest_study_data(root: Path, name: str, n_labelled: int = 360) -> None:
    """A small 16 px simulated dataset ``name`` (data files under ``root``)."""
    data = make_demo_data(
        root / "data", n_labelled=n_labelled, n_pool=40, size=16, prevalence=0.15, seed=4
    )
    ingest_csv(data.labels_csv, name, rare="translocation")
    ingest_pool(data.pool_dir, name, append=True)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A small 16 px simulated dataset and a finished tiny study on it (every arm)."""
    root = tmp_path_factory.mktemp("study")
    ingest_study_data(root, DATASET)
    before = snapshot(DATASET)
    config = {
        "dataset": DATASET,
        "name": "tiny",
        "seeds": 2,
        "augment": [True],
        "classifier": {"epochs": 1, "batch_size": 32},
        "generators": [{"method": "copies", "n": 16}],
        "filter": {"method": "umap_gmm"},
        "ssim": {"threshold": 0.9},
    }
    path = root / "study.yaml"
    path.write_text(yaml.safe_dump(config))
    out = root / "report"
    code = main(["experiment", str(path), "--out", str(out), "--json"])
    assert code == 0
    return {"root": root, "config": path, "out": out, "before": before}


def test_tables_figures_and_report(study, capsys):
    report = json.loads((study["out"] / "report.json").read_text())
    rows = report["tables"]
    # real, class-weighted, and all / filtered / random-matched / oversampled
    assert len(rows) == 6
    assert {row["arm"] for row in rows} == {
        "real",
        "class-weighted",
        "all",
        "filtered",
        "random-matched",
        "oversampled",
    }
    for row in rows:
        assert len(row["f1"]["values"]) == 2 and row["f1"]["mean"] is not None
        assert 0 <= row["recall_ci"][0] <= row["recall"]["mean"] <= row["recall_ci"][1] <= 1
        assert 0 <= row["f1_ci"][0] <= row["f1_ci"][1] <= 1
        assert row["at_specificity"]["target"] == 0.9
        assert len(row["at_specificity"]["recall"]["values"]) == 2
    assert report["filter_counts"]["copies"]["before"] == 16
    assert len(report["comparisons"]) == 10  # all and random-matched vs oversampled too
    # the generator copies real rare train images: the near-copy gate rejects every one
    assert report["reasons"] == {"near-copy": 16}
    assert all("t_test_p" in c and "ci_low" in c for c in report["comparisons"])
    assert all(c["verdict"] in ("helps", "no evidence", "hurts") for c in report["comparisons"])
    headline = [v for v in report["verdicts"] if v["headline"]]
    assert {tuple(v["arms"]) for v in headline} == {
        ("filtered", "random-matched"),
        ("filtered", "real"),
    }
    n_pass = report["filter_counts"]["copies"]["after"]
    over = [r for r in rows if r["arm"] == "oversampled"]
    assert all(r["n_train_synthetic"] == n_pass for r in over)  # as many copies as passed
    figures = study["out"] / "figures"
    for name in ("roc_pr.png", "ssim_density.png", "umap.png", "density.png"):
        assert (figures / name).stat().st_size > 1000, name
    text = (study["out"] / "report.md").read_text()
    assert "| real, augmented + copies (filtered) |" in text and "+-" in text
    assert "## Verdicts" in text and "detectable" in text
    assert "| R [95% CI] | F1 [95% CI] |" in text and "R at val spec. 0.9" in text
    assert "### Filter decisions per generator" in text
    by_generator = report["reasons_by_generator"]["copies"]
    assert sum(by_generator.values()) == 16 and by_generator.get("pass", 0) >= n_pass
    dataset = fo.load_dataset(DATASET)
    assert has_run(dataset, "experiment", "tiny")
    assert dataset.has_saved_view("near-copies")
    assert len(dataset.match({"origin": "synthetic"}).exists("max_ssim")) == 16
    # copies of real training images are near-copies by construction
    copies = dataset.match({"lineage.run": "copies"})
    assert min(copies.values("max_ssim")) > 0.99


def test_rerun_resumes(study, capsys):
    capsys.readouterr()
    assert main(["experiment", str(study["config"]), "--out", str(study["out"]), "--json"]) == 0
    log = capsys.readouterr().err
    # 4 one-run cells + 2 per-seed arms x 2 seeds; and the embedding
    assert log.count("done earlier, skipped") == 4 + 4 + 1, log
    assert len(fo.load_dataset(DATASET).match({"origin": "synthetic"})) == 16  # no duplicates


def test_export_round_trip(study, tmp_path):
    out = tmp_path / "curated"
    assert (
        main(["export", DATASET, "--filter", "tiny_filter", "--format", "csv", "--out", str(out)])
        == 0
    )
    dataset = fo.load_dataset(DATASET)
    expected = dataset.match({"split": "train", "origin": "real"}).count_values(
        "ground_truth.label"
    )
    expected["translocation"] += len(dataset.match_tags("tiny_filter:pass"))
    ingest_csv(out / "manifest.csv", "study-again")
    assert fo.load_dataset("study-again").count_values("ground_truth.label") == expected


def _checkpoint_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*.safetensors")) + sorted(folder.rglob("*.pt")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def test_test_split_never_shapes_training(study):
    """Scrambling every test label and image path must not change what training produces."""
    from curation.runs.train import run_folder, train_classifier

    kwargs = {"seeds": 1, "epochs": 2, "progress": False, "with_view": "tiny-copies-all"}
    first = train_classifier(DATASET, "leak-a", **kwargs)
    dataset = fo.load_dataset(DATASET)
    test = dataset.match({"split": "test"})
    labels = test.values("ground_truth.label")
    flipped = ["normal" if label == "translocation" else "translocation" for label in labels]
    test.set_values("ground_truth.label", flipped)
    try:
        second = train_classifier(DATASET, "leak-b", **kwargs)
    finally:
        test.set_values("ground_truth.label", labels)
    assert first.per_seed[0]["best_epoch"] == second.per_seed[0]["best_epoch"]
    assert first.per_seed[0]["val_f1"] == second.per_seed[0]["val_f1"]
    digest_a = _checkpoint_digest(run_folder(DATASET, "leak-a"))
    assert digest_a == _checkpoint_digest(run_folder(DATASET, "leak-b"))
    assert (
        first.per_seed[0]["f1"] != second.per_seed[0]["f1"]
        or first.per_seed[0]["confusion"] != second.per_seed[0]["confusion"]
    )  # the test metrics did see the flipped labels


@pytest.mark.parametrize(
    "change, message",
    [
        ({"colour": "blue"}, "unknown key(s) colour"),
        ({"generators": [{"method": "stylegan"}]}, "unknown generator 'stylegan'"),
        ({"filter": {"method": "magic"}}, "unknown filter 'magic'"),
        ({"classifier": {"schedule": "step"}}, "unknown --schedule 'step'"),
        ({"classifier": {"epochs": 0}}, "--epochs must be at least 1"),
        ({"classifier": {"specificity": 1.0}}, "--specificity must lie strictly between 0 and 1"),
        ({"dataset": "nope"}, "dataset 'nope' does not exist"),
        ({"generators": [{"method": "existing", "name": "elsewhere"}]}, "no synthetic samples"),
        ({"arms": ["all", "filtered"]}, "arms must include real"),
        ({"arms": ["real", "random-matched"]}, "add filtered to arms"),
        ({"arms": ["real", "sideways"]}, "unknown arm(s) sideways"),
        (
            {"arms": ["real", "filtered", "random-matched"], "generators": []},
            "configure a generator",
        ),
        ({"leakage": {"threshold": 0}}, "leakage threshold must lie in (0, 1]"),
        (
            {"filter": {"method": "umap_gmm", "level": 0.5, "calibrate": "val"}},
            "filter: give either level or calibrate, not both",
        ),
        ({"seeds": 1}, "seeds must be an integer >= 2"),
        ({"cv": 1}, "cv must be an integer >= 2"),
    ],
)
def test_bad_configs_exit_2_and_change_nothing(study, tmp_path, capsys, change, message):
    config = yaml.safe_load(study["config"].read_text())
    config.update(change)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    before = sorted(fo.load_dataset(DATASET).list_runs())
    capsys.readouterr()
    assert main(["experiment", str(path), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert_one_line_error(err)
    assert message in err
    assert sorted(fo.load_dataset(DATASET).list_runs()) == before
    assert not (tmp_path / "r").exists()


def test_an_empty_filtered_view_trains_on_real_data_only(study, tmp_path, capsys):
    """When the filter passes nothing, the filtered cell is the real baseline, said in the log."""
    from curation.runs.records import load_run

    config = {
        "dataset": DATASET,
        "name": "strict",
        "seeds": 2,
        "augment": [False],
        "arms": ["real", "all", "filtered"],
        "classifier": {"epochs": 1, "batch_size": 32},
        "generators": [{"method": "existing", "name": "copies"}],
        "filter": {"method": "umap_gmm", "level": 1e-9},  # an ellipse no sample falls into
        "ssim": {"enabled": False},
    }
    path = tmp_path / "strict.yaml"
    path.write_text(yaml.safe_dump(config))
    capsys.readouterr()
    assert main(["experiment", str(path), "--out", str(tmp_path / "r"), "--json"]) == 0
    log = capsys.readouterr().err
    assert "'strict-copies-pass' is empty: strict-copies-pass trains on real data only" in log
    dataset = fo.load_dataset(DATASET)
    assert len(dataset.load_saved_view("strict-copies-pass")) == 0
    _, real = load_run(dataset, "train", "strict-real")
    _, filtered = load_run(dataset, "train", "strict-copies-pass")
    _, unfiltered = load_run(dataset, "train", "strict-copies-all")
    assert filtered["n_train_synthetic"] == 0 and unfiltered["n_train_synthetic"] == 16
    assert filtered["n_train"] == real["n_train"]
    for seed in range(2):  # training is deterministic: the same runs as the real baseline
        assert filtered["per_seed"][seed]["f1"] == real["per_seed"][seed]["f1"]
        assert filtered["per_seed"][seed]["confusion"] == real["per_seed"][seed]["confusion"]


def test_calibrated_filter_level_is_reported_with_its_val_sweep(study, tmp_path):
    config = {
        "dataset": DATASET,
        "name": "cal",
        "seeds": 2,
        "augment": [False],
        "arms": ["real", "all", "filtered"],
        "classifier": {"epochs": 1, "batch_size": 32, "schedule": "cosine"},
        "generators": [{"method": "existing", "name": "copies"}],
        "filter": {"method": "umap_gmm", "calibrate": True},
        "ssim": {"enabled": False},
    }
    path = tmp_path / "cal.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "r"
    assert main(["experiment", str(path), "--out", str(out), "--json"]) == 0
    report = json.loads((out / "report.json").read_text())
    calibration = report["calibration"]
    assert calibration["settings"]["schedule"] == "cosine"
    assert len(calibration["sweep"]) == 7 and calibration["real_only"] is not None
    best = max(e["val_f1_mean"] for e in calibration["sweep"])
    chosen = [e for e in calibration["sweep"] if e["level"] == calibration["level"]]
    assert chosen[0]["val_f1_mean"] == best and report["filter"]["level"] == calibration["level"]
    assert report["filter_counts"]["copies"]["after"] == chosen[0]["n_pass"]
    text = (out / "report.md").read_text()
    assert "## Filter level calibrated on val" in text and "(chosen)" in text
    assert "filter: umap_gmm (the level of best val F1, retraining a classifier per level)" in text
    stored, _ = FILTER.load(fo.load_dataset(DATASET), filter_key("cal"))
    assert isinstance(stored.level_choice, Retrain)
    assert stored.level_choice.settings.train.schedule == "cosine"
    assert "(cosine learning rate)" in text


def test_random_matched_views_match_the_filtered_count_per_seed(study):
    from curation.experiment import load_config
    from curation.experiment.views import save_generator_views

    dataset = fo.load_dataset(DATASET)
    n_pass = len(dataset.load_saved_view("tiny-copies-pass"))

    def drawn_ids(seed: int) -> list[str]:
        return sorted(dataset.load_saved_view(f"tiny-copies-random-s{seed}").values("id"))

    drawn = [drawn_ids(0), drawn_ids(1)]
    assert all(len(ids) == n_pass for ids in drawn)
    if 0 < n_pass < 16:
        assert drawn[0] != drawn[1]  # each seed draws its own subset
    save_generator_views(dataset, load_config(study["config"]))  # drawn again: the same subsets
    assert [drawn_ids(0), drawn_ids(1)] == drawn


def test_a_planted_copy_of_a_test_image_is_caught_and_kept_out(study, tmp_path):
    from curation.experiment import load_config
    from curation.experiment.cells import embed_name
    from curation.experiment.leakage import check_leakage
    from curation.experiment.views import save_generator_views
    from curation.ingest import ingest_records
    from curation.readers import Record

    config = load_config(study["config"])
    dataset = fo.load_dataset(DATASET)
    test_sample = dataset.match({"split": "test", "ground_truth.label": "translocation"}).first()
    planted = tmp_path / "planted.png"
    planted.write_bytes(Path(test_sample.filepath).read_bytes())
    name = "planted-test"
    clone = dataset.clone(name, persistent=True)
    ingest_records(
        [Record(str(planted), "translocation")],
        name,
        source="copies",
        origin="synthetic",
        append=True,
    )
    clone.reload()
    field = f"emb_{embed_name(config.name).replace('-', '_')}"
    sample = clone.match({"filepath": str(planted)}).first()
    sample[field] = test_sample[field]
    sample.save()
    config.dataset = name
    report = check_leakage(clone, config, embed_name(config.name), echo=lambda _: None)
    assert report["n_leaks"] >= 1 and report["by_generator"]["copies"] >= 1
    clone.reload()
    sample = clone[sample.id]
    assert "leak" in sample.tags and sample["leak_of"] == test_sample.id
    counts = save_generator_views(clone, config)
    assert counts["copies"]["leaks"] >= 1
    for view in ("tiny-copies-all", "tiny-copies-pass", "tiny-copies-random-s0"):
        assert sample.id not in clone.load_saved_view(view).values("id"), view


def test_verdicts_follow_the_confidence_interval():
    from brain.stats import detectable_difference, paired_comparison, verdict

    better = paired_comparison([0.8, 0.82, 0.79, 0.81, 0.8], [0.7, 0.71, 0.69, 0.72, 0.7])
    assert verdict(better["ci_low"], better["ci_high"]) == "helps"
    worse = paired_comparison([0.6, 0.62, 0.59, 0.61, 0.6], [0.7, 0.71, 0.69, 0.72, 0.7])
    assert verdict(worse["ci_low"], worse["ci_high"]) == "hurts"
    noisy = paired_comparison([0.8, 0.6, 0.75, 0.55, 0.7], [0.7, 0.7, 0.7, 0.7, 0.7])
    assert verdict(noisy["ci_low"], noisy["ci_high"]) == "no evidence"
    # the design's detectable difference grows with the spread of the paired differences
    steady = detectable_difference([0.8, 0.82, 0.79, 0.81, 0.8], [0.7, 0.71, 0.69, 0.72, 0.7])
    shaky = detectable_difference([0.8, 0.6, 0.75, 0.55, 0.7], [0.7, 0.7, 0.7, 0.7, 0.7])
    assert 0 < steady < shaky
    assert np.isnan(detectable_difference([0.8], [0.7]))


def test_deleting_the_studies_leaves_nothing(study, capsys):
    """Runs last: every study of this module deleted (with the runs, views, samples, fields,
    tags and files it made), and the two train runs made outside a study, leave the dataset
    and its media folder as ingested."""
    from curation.runs import delete_run, list_run_keys

    for key, _, run in list_run_keys(DATASET, "train"):
        if run.startswith("leak-"):
            delete_run(DATASET, key)
    studies = [key for key, _, _ in list_run_keys(DATASET, "experiment")]
    assert "experiment_tiny" in studies and "experiment_strict" in studies
    capsys.readouterr()
    assert main(["runs", "delete", DATASET, "experiment_tiny"]) == 0, capsys.readouterr().err
    assert "deleted experiment_tiny; removed:" in capsys.readouterr().out
    for key in studies:
        if key != "experiment_tiny":
            delete_run(DATASET, key)
    assert list_run_keys(DATASET) == []
    assert snapshot(DATASET) == study["before"]
    assert not study["out"].exists()


def test_table_shows_test_intervals_and_recall_at_fixed_specificity():
    """Pure: the table's R and F1 cells carry the 95% interval over the test samples beside
    the seed spread, and the recall at the val-chosen threshold has its own column."""
    points = [
        {"target": 0.9, "threshold": 0.7, "recall": 0.5, "test_specificity": 0.92},
        {"target": 0.9, "threshold": 0.6, "recall": 0.7, "test_specificity": 0.88},
    ]
    row = {
        "data": "real",
        "n_train": 100,
        "n_train_synthetic": 0,
        "precision": {"values": [0.6, 0.8]},
        "recall": {"values": [0.5, 0.7]},
        "f1": {"values": [0.55, 0.75]},
        "auc": {"values": [0.8, 0.9]},
        "recall_ci": [0.31, 0.83],
        "f1_ci": [0.4, 0.86],
        "at_specificity": at_specificity_summary(points),
    }
    table = markdown_table([row, {**row, "data": "old", "at_specificity": None}], 2)
    assert "| R at val spec. 0.9 (test spec.) |" in table.splitlines()[0]
    assert "| real | 0.70+-0.14 | 0.60+-0.14 [0.31, 0.83] | 0.65+-0.14 [0.40, 0.86] |" in table
    assert "| 0.85+-0.07 | 0.60+-0.14 (0.90+-0.03) | 100 (0) |" in table
    assert "| old |" in table and "| n/a | 100 (0) |" in table
    assert at_specificity_summary([points[0], None]) is None  # a run from before


def test_reasons_per_generator_table_and_labelled_grid(tmp_path):
    counts = count_reasons(
        ["bbdm", "bbdm", "copies", None, "bbdm"], ["pass", "unrealistic", "pass", "pass", None]
    )
    assert counts == {
        "(no lineage)": {"pass": 1},
        "bbdm": {"pass": 1, "unrealistic": 1},
        "copies": {"pass": 1},
    }
    table = reasons_table(counts).splitlines()
    assert table[0] == "| generator | pass | unrealistic | total |"
    assert "| bbdm | 1 | 1 | 2 |" in table and "| copies | 1 | 0 | 1 |" in table
    paths = [str(tmp_path / f"{i}.png") for i in range(3)]
    for i, path in enumerate(paths):
        write_png(np.full((20, 20, 1), 60 * i, np.uint8), path)
    plain = sample_grid(paths, tmp_path / "plain.png", columns=2, tile=32)
    labels = ["copies\npass", "bbdm\nunrealistic", "a-very-long-generator-name\nduplicate"]
    labelled = sample_grid(paths, tmp_path / "labelled.png", columns=2, tile=32, labels=labels)
    with Image.open(plain) as a, Image.open(labelled) as b:
        assert a.size == (64, 64) and b.size == (64, 2 * (32 + 2 * 11 + 2))
        caption = np.asarray(b.convert("L"))[33:56, :32]
        assert caption.max() > 200  # white text under the first tile
