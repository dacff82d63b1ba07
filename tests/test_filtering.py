"""Filter runs on a dataset: scores, tags, views, the App's UMAP brain run, the run record."""

from __future__ import annotations

import json
from pathlib import Path

import fiftyone as fo
import numpy as np
import pytest

from brain.errors import InputError
from brain.filter_calibration import CalibrationSettings
from brain.images import write_png
from brain.level_choice import Fixed, PassRate, Retrain
from curation.cli import main
from curation.demo import make_crop
from curation.errors import CurateError
from curation.info import dataset_info
from curation.ingest import ingest_records
from curation.readers import Record
from curation.runs.filter import run_filter
from curation.runs.records import list_runs, load_run, store_run
from curation.schema import LABEL_FIELD, ORIGIN_FIELD, SPLIT_FIELD

N_NEAR, N_FAR, DIM = 20, 20, 8
FIELD = "emb_blobs"


def _vectors(rng: np.random.Generator, centre: float, n: int, spread: float = 1.0) -> np.ndarray:
    base = np.zeros(DIM)
    base[0] = centre
    return base + spread * rng.normal(size=(n, DIM))


@pytest.fixture(scope="module")
def blobs_dataset(demo_dataset: str, session_dir: Path) -> str:
    """A clone of the demo dataset plus 40 synthetic crops, with hand-made embeddings: real rare
    samples around x0 = 0 (70%) and x0 = 8, other classes around x0 = 20; synthetic ones half
    near the centre of the heavy rare cluster (``near`` in their file name), half near the
    other class."""
    name = "filter-blobs"
    dataset = fo.load_dataset(demo_dataset).clone(name, persistent=True)
    records = []
    for i in range(N_NEAR + N_FAR):
        kind = "near" if i < N_NEAR else "far"
        path = session_dir / "filter-synthetic" / f"{kind}_{i}.png"
        write_png(make_crop(900 + i, size=64, translocation=True), path)
        records.append(Record(str(path), "translocation"))
    ingest_records(records, name, source="test", origin="synthetic", append=True)
    dataset.reload()
    rng = np.random.default_rng(0)
    ids, labels, origins, paths = dataset.values(
        ["id", f"{LABEL_FIELD}.label", ORIGIN_FIELD, "filepath"]
    )
    vectors = {}
    for sample_id, label, origin, path in zip(ids, labels, origins, paths, strict=True):
        if origin == "synthetic":
            centre, spread = (0.0, 0.3) if "near_" in Path(path).name else (20.0, 1.0)
        elif label == "translocation":  # a heavy (70%) and a light rare-class cluster
            centre, spread = (0.0 if rng.random() < 0.7 else 8.0), 1.0
        else:
            centre, spread = 20.0, 1.0
        vectors[sample_id] = _vectors(rng, centre, 1, spread)[0]
    dataset.set_values(FIELD, vectors, key_field="id")
    store_run(dataset, "embed", "blobs", {"field": FIELD, "train_run": None}, {"dim": DIM})
    return name


def _synthetic(dataset: fo.Dataset):
    return dataset.match(fo.ViewField(ORIGIN_FIELD) == "synthetic")


def _near_mask(view) -> np.ndarray:
    return np.array(["near_" in Path(p).name for p in view.values("filepath")])


def test_gmm_full_run_scores_tags_views_and_record(blobs_dataset):
    report = run_filter(blobs_dataset, "gmm_full", "full", params={"pca_components": 3})
    dataset = fo.load_dataset(blobs_dataset)
    synthetic = _synthetic(dataset)
    assert report.n_synthetic == N_NEAR + N_FAR
    assert report.n_pass + report.n_reject == N_NEAR + N_FAR
    assert report.level == pytest.approx(report.default_level)
    near = _near_mask(synthetic)
    tags = synthetic.values("tags")
    passed = np.array(["full:pass" in t for t in tags])
    assert passed[near].mean() >= 0.9 and not passed[~near].any()
    assert all(("full:pass" in t) != ("full:reject" in t) for t in tags)
    scores = np.array(synthetic.values("full_score"))
    assert scores[near].min() > scores[~near].max()
    real = dataset.match(fo.ViewField(ORIGIN_FIELD) == "real")
    assert set(real.values("full_score")) == {None}
    assert not any(t for tags in real.values("tags") for t in tags if t.startswith("full:"))
    for view in ("real-train", "full-pass", "full-reject"):
        assert dataset.has_saved_view(view)
    assert len(dataset.load_saved_view("full-pass")) == report.n_pass
    assert all(s == "train" for s in dataset.load_saved_view("real-train").values(SPLIT_FIELD))
    config, results = load_run(dataset, "filter", "full")
    assert config["method"] == "gmm_full" and config["params"]["pca_components"] == 3
    assert config["embed_run"] == "blobs" and config["field"] == FIELD
    assert results["n_pass"] == report.n_pass and results["level"] == report.level
    brain = dataset.load_brain_results(report.brain_key)
    n_real_train = len(dataset.load_saved_view("real-train").exists(f"{LABEL_FIELD}.label"))
    assert brain.points.shape == (n_real_train + N_NEAR + N_FAR, 2)
    assert all(Path(p).is_file() for p in report.plots)


def test_rerun_replaces_tags_and_runs_coexist(blobs_dataset):
    first = run_filter(blobs_dataset, "knn_precision", "knn", visualize=False)
    assert first.brain_key is None and all(Path(p).is_file() for p in first.plots)
    with pytest.raises(CurateError, match="filter run 'knn' exists with another level_choice"):
        run_filter(blobs_dataset, "knn_precision", "knn", level=Fixed(0.5), plots=False)
    again = run_filter(
        blobs_dataset, "knn_precision", "knn", level=Fixed(0.5), plots=False, overwrite=True
    )
    dataset = fo.load_dataset(blobs_dataset)
    tags = _synthetic(dataset).values("tags")
    assert sum("knn:pass" in t for t in tags) == again.n_pass
    assert all(sum(tag.startswith("knn:") for tag in t) == 1 for t in tags)
    assert all(len(t) == len(set(t)) for t in tags)
    umap = run_filter(
        blobs_dataset, "umap_gmm", "um", level=Fixed(0.99), params={"n_epochs": 50}, plots=True
    )
    assert umap.brain_key == "um_umap"
    assert {"knn", "um"} <= set(list_runs(dataset, "filter"))
    near = _near_mask(_synthetic(dataset))
    passed = np.array(["um:pass" in t for t in _synthetic(dataset).values("tags")])
    scores = np.array(_synthetic(dataset).values("um_score"))
    assert scores[near].min() > scores[~near].max()
    assert passed[near].mean() >= 0.5 and not passed[~near].any()
    points = dataset.load_brain_results("um_umap").points
    assert points.shape[1] == 2 and np.isfinite(points).all()


def _snapshot(dataset: fo.Dataset):
    return (
        sorted(map(tuple, dataset.values("tags"))),
        sorted(dataset.list_runs()),
        sorted(dataset.list_saved_views()),
    )


def test_bad_input_changes_nothing(blobs_dataset):
    dataset = fo.load_dataset(blobs_dataset)
    run_filter(blobs_dataset, "gmm_full", "keep", params={"pca_components": 3}, plots=False)
    before = _snapshot(dataset)
    with pytest.raises(InputError, match="at least one component"):
        run_filter(blobs_dataset, "gmm_full", "keep", params={"gmm_components": 0})
    with pytest.raises(InputError, match="invalid filter key"):
        run_filter(blobs_dataset, "gmm_full", "bad key")
    with pytest.raises(InputError, match="between 0 and 1"):
        run_filter(blobs_dataset, "gmm_full", "keep", level=Fixed(1.5))
    with pytest.raises(InputError, match="between 0 and 1"):  # a sweep level outside the range
        sweep = Retrain(CalibrationSettings(levels=(1.5,)))
        run_filter(blobs_dataset, "gmm_full", "keep", level=sweep)
    with pytest.raises(InputError, match="the level is chosen per run"):
        run_filter(blobs_dataset, "gmm_full", "keep", params={"level": 0.5})
    with pytest.raises(TypeError, match="Fixed"):  # the older bare level
        run_filter(blobs_dataset, "gmm_full", "keep", level=0.5)
    with pytest.raises(InputError, match="unknown filter"):
        run_filter(blobs_dataset, "nope", "keep")
    one = _synthetic(dataset).first()
    original = one[FIELD]
    try:
        one[FIELD] = None
        one.save()
        with pytest.raises(InputError, match="1 of 40 synthetic samples have no embedding"):
            run_filter(blobs_dataset, "gmm_full", "keep")
        one[FIELD] = np.r_[original, 1.0]
        one.save()
        with pytest.raises(InputError, match="different runs mixed"):
            run_filter(blobs_dataset, "gmm_full", "keep")
        one[FIELD] = np.full(DIM, np.nan)
        one.save()
        with pytest.raises(InputError, match="NaN"):
            run_filter(blobs_dataset, "gmm_full", "keep")
    finally:
        one[FIELD] = original
        one.save()
    assert _snapshot(dataset) == before


def test_no_synthetic_samples(demo_dataset):
    name = "filter-no-synthetic"
    dataset = fo.load_dataset(demo_dataset).clone(name, persistent=True)
    rng = np.random.default_rng(1)
    dataset.set_values(FIELD, list(rng.normal(size=(len(dataset), DIM))))
    store_run(dataset, "embed", "blobs", {"field": FIELD, "train_run": None}, {"dim": DIM})
    with pytest.raises(CurateError, match="no synthetic samples"):
        run_filter(name, "gmm_full", "k")
    assert main(["filter", name, "--method", "gmm_full", "--key", "k"]) == 2


def test_cli_json(blobs_dataset, capsys):
    code = main(
        [
            "filter",
            blobs_dataset,
            "--method",
            "gmm_full",
            "--key",
            "cli",
            "-p",
            "pca_components=3",
            "--no-plots",
            "--json",
        ]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"n_synthetic", "n_pass", "level"} <= set(report)
    assert report["n_synthetic"] == N_NEAR + N_FAR
    assert (
        main(["filter", blobs_dataset, "--method", "gmm_full", "--key", "cli", "-p", "colour=red"])
        == 2
    )


@pytest.mark.parametrize(
    "flags, yaml_section, choice",
    [
        (["--level", "0.9"], {"level": 0.9}, Fixed(0.9)),
        ([], {}, Fixed()),
        (["--calibrate", "--target", "0.9"], {"calibrate": "val", "target": 0.9}, PassRate(0.9)),
        (["--calibrate", "val"], {"calibrate": "val"}, PassRate()),
    ],
)
def test_cli_python_and_yaml_build_the_same_level_choice(
    blobs_dataset, flags, yaml_section, choice
):
    """The CLI's flags, the Python keyword and the study YAML's keys build one choice, stored
    in one form."""
    from curation.experiment import parse_config
    from curation.runs.filter import FILTER

    common = ["--method", "gmm_full", "-p", "pca_components=3", "--no-plots", "--no-visualization"]
    # each case replaces the runs of the one before
    assert main(["filter", blobs_dataset, "--key", "lc_cli", *common, *flags, "--overwrite"]) == 0
    python = run_filter(
        blobs_dataset,
        "gmm_full",
        "lc_api",
        level=choice,
        params={"pca_components": 3},
        plots=False,
        visualize=False,
        overwrite=True,
    )
    dataset = fo.load_dataset(blobs_dataset)
    from_cli, cli_results = FILTER.load(dataset, "lc_cli")
    from_api, _ = FILTER.load(dataset, "lc_api")
    assert from_cli.level_choice == from_api.level_choice == choice
    assert load_run(dataset, "filter", "lc_cli")[0]["level_choice"] == choice.as_dict()
    assert cli_results.level == python.level
    study = parse_config({"dataset": blobs_dataset, "filter": yaml_section})
    assert study.filter.level_choice() == choice


@pytest.fixture(scope="module")
def trained_dataset(demo_dataset: str, session_dir: Path) -> str:
    """A clone of the demo dataset plus 12 synthetic crops, a tiny train run and its embeddings."""
    from curation.runs.embed import compute_embeddings
    from curation.runs.train import train_classifier

    name = "filter-trained"
    fo.load_dataset(demo_dataset).clone(name, persistent=True)
    records = []
    for i in range(12):
        path = session_dir / "filter-trained" / f"syn_{i}.png"
        write_png(make_crop(700 + i, size=64, translocation=i % 2 == 0), path)
        records.append(Record(str(path), "translocation"))
    ingest_records(records, name, source="test", origin="synthetic", append=True)
    train_classifier(name, "r", epochs=1, subset=80, size=16, progress=False, num_threads=1)
    compute_embeddings(name, "r", progress=False, num_threads=1)
    return name


def test_confidence_filter_uses_the_embed_runs_classifier(trained_dataset):
    from curation.runs.train.predictions import predict_proba

    report = run_filter(trained_dataset, "confidence", "conf", level=Fixed(0.5), visualize=False)
    dataset = fo.load_dataset(trained_dataset)
    ids, proba = predict_proba(trained_dataset, "r", "synthetic")
    scores = dict(zip(*_synthetic(dataset).values(["id", "conf_score"]), strict=True))
    np.testing.assert_allclose([scores[i] for i in ids], proba, rtol=1e-6)
    assert report.n_pass == int((proba >= 0.5).sum())
    config, _ = load_run(dataset, "filter", "conf")
    assert config["classifier_run"] == "r" and config["embed_run"] == "r"


def test_calibration_sweeps_levels_without_the_test_split(trained_dataset, monkeypatch):
    import curation.runs.filter.calibrate
    from brain.settings import TrainSettings

    seen_splits = set()
    original = curation.runs.filter.calibrate.decode_view

    def spy(view, **kwargs):
        decoded = original(view, **kwargs)
        seen_splits.update(decoded.splits)
        return decoded

    monkeypatch.setattr(curation.runs.filter.calibrate, "decode_view", spy)
    train = TrainSettings(epochs=1, size=16)
    settings = CalibrationSettings(levels=(0.2, 0.95), train=train, num_threads=1)
    report = run_filter(
        trained_dataset,
        "gmm_full",
        "cal",
        level=Retrain(settings),
        params={"pca_components": 4},
        visualize=False,
        plots=False,
    )
    assert "test" not in seen_splits and "val" in seen_splits
    sweep = report.calibration.sweep
    assert [entry["level"] for entry in sweep] == [0.2, 0.95]
    assert sweep[0]["n_pass"] <= sweep[1]["n_pass"]
    best = max(sweep, key=lambda e: e["val_f1_mean"])
    assert report.level == best["level"]
    assert report.calibration.real_only["n_pass"] == 0
    _, results = load_run(fo.load_dataset(trained_dataset), "filter", "cal")
    assert results["calibration"]["sweep"] == sweep


def test_combined_run_stores_reasons_parts_scorecard_and_grid(blobs_dataset, capsys):
    report = run_filter(blobs_dataset, "combined", "comb", level=PassRate(), visualize=False)
    dataset = fo.load_dataset(blobs_dataset)
    synthetic = _synthetic(dataset)
    near = _near_mask(synthetic)
    reasons = np.array(synthetic.values("comb_reason"))
    assert set(reasons) <= {"pass", "unrealistic", "other-class", "near-copy", "duplicate"}
    # near: rare embeddings, and images from the same simulator as the real ones; at the level
    # where 95% of the real rare val samples pass, a few fail the image realism by chance
    assert (reasons[near] == "pass").mean() >= 0.75
    assert set(reasons[near]) <= {"pass", "unrealistic"}
    assert set(reasons[~near]) <= {"other-class", "unrealistic"}
    assert (reasons[~near] == "other-class").mean() >= 0.75
    assert report.reasons == dict(zip(*np.unique(reasons, return_counts=True), strict=True))
    for part in ("realism", "rare_prob", "copy_ratio"):
        assert f"comb_{part}" in report.fields
        assert None not in synthetic.values(f"comb_{part}")
    assert np.array(synthetic.values("comb_rare_prob"))[~near].max() < 0.5
    calibration = report.calibration
    assert calibration.method == "val" and calibration.val_rare_pass >= 0.95
    assert calibration.target == 0.95 and report.level == calibration.level
    card = report.scorecard["test"]  # the synthetic samples' lineage run
    assert set(card) == {"all", "pass"} and card["pass"]["n_synthetic"] == report.n_pass
    assert card["pass"]["precision"] >= card["all"]["precision"]
    assert {Path(p).name for p in report.plots} == {"umap.png", "density.png", "grid.png"}
    assert main(["info", blobs_dataset]) == 0
    out = capsys.readouterr().out
    assert f"filter comb (combined, level {report.level:.4g}, calibrated: val)" in out
    assert f"{report.n_pass} pass" in out and "scorecard test:" in out
    # per generator (lineage run "test": every synthetic sample here), from the reason field
    assert dataset_info(blobs_dataset)["filters"]["comb"]["reasons_by_generator"] == {
        "test": report.reasons
    }
    assert "  reasons by generator:" in out


def test_duplicates_are_tagged_rejected_and_exported_once(blobs_dataset, session_dir, tmp_path):
    name = "filter-blobs-dup"
    dataset = fo.load_dataset(blobs_dataset).clone(name, persistent=True)
    original = _synthetic(dataset).match(fo.ViewField("filepath").contains_str("near_0")).first()
    copy = tmp_path / "copy_of_near_0.png"
    copy.write_bytes(Path(original.filepath).read_bytes())
    ingest_records(
        [Record(str(copy), "translocation")], name, source="test", origin="synthetic", append=True
    )
    dataset.reload()
    twin = dataset.match(fo.ViewField("filepath") == str(copy)).first()
    twin[FIELD] = original[FIELD]
    twin.save()
    report = run_filter(name, "combined", "dd", plots=False, visualize=False)
    dataset.reload()
    twin, original = dataset[twin.id], dataset[original.id]
    assert report.n_duplicates == 1 and twin["duplicate_of"] == original.id
    assert (
        "duplicate" in twin.tags and "dd:reject" in twin.tags and twin["dd_reason"] == "duplicate"
    )
    assert original["duplicate_of"] is None and "duplicate" not in original.tags
    assert (
        main(["export", name, "--filter", "dd", "--out", str(tmp_path / "out"), "--format", "csv"])
        == 0
    )
    exported = (tmp_path / "out" / "manifest.csv").read_text()
    assert "copy_of_near_0" not in exported  # the duplicate is never exported
    assert ("images/near_0.png" in exported) == ("dd:pass" in original.tags)


def test_filter_embeds_samples_added_after_the_embed_run_with_its_network(
    trained_dataset, session_dir, capsys
):
    """Two synthetic samples added since `curate embed` (one a pixel copy of an embedded one)
    and three whose embedding was removed are embedded by the filter with the embed run's
    network: the removed ones get their old vectors back, the copy its original's, all join
    the similarity index, and the output says so in one line."""
    from curation.runs.embed import EMBED
    from curation.runs.neighbours import find_similar

    name = "filter-trained-more"
    dataset = fo.load_dataset(trained_dataset).clone(name, persistent=True)
    original = _synthetic(dataset).first()
    copy = session_dir / name / "copy.png"
    copy.parent.mkdir(parents=True, exist_ok=True)
    copy.write_bytes(Path(original.filepath).read_bytes())
    added = session_dir / name / "new.png"
    write_png(make_crop(777, size=64, translocation=True), added)
    records = [Record(str(copy), "translocation"), Record(str(added), "translocation")]
    ingest_records(records, name, source="test", origin="synthetic", append=True)
    dataset.reload()
    real_train = dataset.match({"origin": "real", "split": "train"})
    removed = [*_synthetic(dataset).skip(1).limit(2).values("id"), real_train.first().id]
    kept = {i: np.asarray(dataset[i]["emb_r"]) for i in removed}
    dataset.set_values("emb_r", dict.fromkeys(removed), key_field="id")
    args = ["filter", name, "--method", "gmm_full", "--key", "more", "-p", "pca_components=4"]
    assert main([*args, "--no-plots", "--no-visualization", "--threads", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert (
        "warning: embedded 1 real train samples and 4 synthetic samples that had no 'emb_r' "
        "with the network of embed run 'r' (train run 'r', seed index 0)"
    ) in lines
    dataset.reload()
    for sample_id, vector in kept.items():
        np.testing.assert_allclose(dataset[sample_id]["emb_r"], vector, rtol=1e-5, atol=1e-6)
    twin = dataset.match(fo.ViewField("filepath") == str(copy)).first()
    np.testing.assert_allclose(twin["emb_r"], original["emb_r"], rtol=1e-5, atol=1e-6)
    assert dataset.match(fo.ViewField("filepath") == str(added)).first()["emb_r"] is not None
    assert find_similar(name, original.id, k=1, real_only=False)[0].id == twin.id
    _, results = EMBED.load(dataset, "r")
    assert results.n == len(dataset.exists("emb_r")) == len(dataset)
    assert "more_score" in dataset.get_field_schema()
