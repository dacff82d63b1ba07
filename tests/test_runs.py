"""The runs layer: ``curate runs list|show|delete`` and, for each kind of run, a delete that
leaves no field, tag, saved view, brain run, evaluation, sample or file behind."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import fiftyone as fo
import pytest

from brain.filter_calibration import CalibrationSettings
from brain.level_choice import Fixed, parse_level_choice
from brain.settings import TrainSettings
from curation.cli import main
from curation.demo import make_demo_data
from curation.errors import CurateError
from curation.experiment import parse_config
from curation.experiment.jobs import TrainJob
from curation.ingest import ingest_csv, ingest_pool
from curation.media import media_root, run_area_folder
from curation.runs import delete_run, list_run_keys, show_run
from curation.runs.embed import compute_embeddings
from curation.runs.filter import run_filter
from curation.runs.generate import generate
from curation.runs.ssim import compute_max_ssim
from curation.runs.train import TrainConfig, fit_classifier, train_classifier

pytestmark = pytest.mark.usefixtures("one_torch_thread")
FAST = {"epochs": 1, "size": 16, "progress": False, "num_threads": 1}


def snapshot(name: str) -> dict:
    """Everything a run can write on dataset ``name`` and under its media folder."""
    dataset = fo.load_dataset(name)
    dataset.reload()
    root = media_root(name)
    return {
        "fields": sorted(dataset.get_field_schema(flat=True)),
        "tags": sorted(dataset.distinct("tags")),
        "views": sorted(dataset.list_saved_views()),
        "brain_runs": sorted(dataset.list_brain_runs()),
        "evaluations": sorted(dataset.list_evaluations()),
        "runs": sorted(dataset.list_runs()),
        "samples": len(dataset),
        "files": sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()),
    }


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> str:
    """A 16 px simulated dataset with a pool."""
    root = tmp_path_factory.mktemp("runs")
    data = make_demo_data(root / "data", n_labelled=120, n_pool=12, size=16, prevalence=0.2, seed=5)
    name = "runs-tiny"
    ingest_csv(data.labels_csv, name, rare="translocation")
    ingest_pool(data.pool_dir, name, append=True)
    return name


def _deleted_cleanly(name: str, key: str, before: dict) -> None:
    """Delete run ``key`` and check the dataset and its folder are as ``before``."""
    assert key in [k for k, _, _ in list_run_keys(name)]
    removed = delete_run(name, key)
    assert removed.fields or removed.samples or removed.files or removed.views or removed.runs
    assert snapshot(name) == before


def test_train_delete_leaves_nothing(tiny):
    before = snapshot(tiny)
    train_classifier(tiny, "t", **FAST)
    after = snapshot(tiny)
    assert "pred_t" in after["fields"] and "eval_t" in after["evaluations"]
    assert any(f.startswith("runs/t") for f in after["files"])
    _deleted_cleanly(tiny, "train_t", before)


def test_generate_and_embed_delete_leave_nothing(tiny, capsys):
    """And the train run behind an embed run is deleted only with its dependents."""
    base = snapshot(tiny)
    generate(tiny, "copies", "g", n=6, progress=False)
    assert snapshot(tiny)["samples"] == base["samples"] + 6
    before_train = snapshot(tiny)
    train_classifier(tiny, "net", **FAST)
    before_embed = snapshot(tiny)
    compute_embeddings(tiny, "net", name="e", progress=False, num_threads=1)
    after = snapshot(tiny)
    assert "emb_e" in after["fields"] and "sim_e" in after["brain_runs"]
    with pytest.raises(CurateError, match="train_net is an input of embed_e: delete it first"):
        delete_run(tiny, "train_net")
    assert snapshot(tiny) == after
    _deleted_cleanly(tiny, "embed_e", before_embed)
    compute_embeddings(tiny, "net", name="e2", progress=False, num_threads=1)
    capsys.readouterr()
    assert main(["runs", "delete", tiny, "train_net", "--with-dependents"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("deleted train_net; removed: fields ") and "runs embed_e2" in out
    assert snapshot(tiny) == before_train
    _deleted_cleanly(tiny, "generate_g", base)


def test_generate_rerun_refuses_when_images_of_its_samples_are_gone(tiny, capsys):
    base = snapshot(tiny)
    generate(tiny, "copies", "gone", n=4, progress=False)
    paths = fo.load_dataset(tiny).match({"lineage.run": "gone"}).values("filepath")
    Path(paths[0]).unlink()
    before = snapshot(tiny)
    capsys.readouterr()
    assert main(["generate", tiny, "--method", "copies", "--run", "gone", "--n", "4"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(
        f"curate: error: 1 of the 4 images of generate run 'gone' are missing (e.g. {paths[0]}); "
        f"delete the run (`curate runs delete {tiny} generate_gone`) and generate it again"
    )
    assert snapshot(tiny) == before
    _deleted_cleanly(tiny, "generate_gone", base)


def test_no_run_folder_lies_outside_its_area_and_an_old_empty_name_deletes_only_its_own(tiny):
    """The guard where run folders are derived; and a train run that an older version stored
    under the empty name (its folder was the whole ``runs/``) is deleted without touching the
    folder of any other run."""
    for folder in ("", ".", "..", "a/b", "/tmp"):
        with pytest.raises(CurateError, match="would not lie inside"):
            run_area_folder(tiny, "runs", folder)
    assert run_area_folder(tiny, "generate", "g") == media_root(tiny) / "generate" / "g"
    other = media_root(tiny) / "runs" / "other" / "seed_0.pt"
    other.parent.mkdir(parents=True)
    other.write_bytes(b"another run's checkpoint")
    dataset = fo.load_dataset(tiny)
    dataset.register_run("train_", dataset.init_run(synthcurate_kind="train", synthcurate_name=""))
    assert show_run(tiny, "train_").footprint.files == []
    delete_run(tiny, "train_")
    assert "train_" not in fo.load_dataset(tiny).list_runs()
    assert other.read_bytes() == b"another run's checkpoint"
    shutil.rmtree(other.parent)


@pytest.mark.parametrize("calibrate", [None, "val", "retrain"])
def test_filter_delete_leaves_nothing(tiny, calibrate):
    base = snapshot(tiny)
    generate(tiny, "copies", "fg", n=8, progress=False)
    train_classifier(tiny, "fnet", **FAST)
    compute_embeddings(tiny, "fnet", name="fe", progress=False, num_threads=1)
    before = snapshot(tiny)
    train = TrainSettings(epochs=1, size=16)
    calibration = CalibrationSettings(levels=(0.5,), train=train, num_threads=1)
    report = run_filter(
        tiny,
        "knn_precision",
        "k",
        embed="fe",
        level=parse_level_choice(None, calibrate, 0.5, settings=calibration),
    )
    after = snapshot(tiny)
    assert {"k_score", "k_reason"} <= set(after["fields"]) and "k_umap" in after["brain_runs"]
    assert {"k:pass", "k:reject"} & set(after["tags"]) and "k-pass" in after["views"]
    assert report.plots and any(f.startswith("filters/k/") for f in after["files"])
    with pytest.raises(CurateError, match="train_fnet is an input of embed_fe, filter_k"):
        delete_run(tiny, "train_fnet")
    _deleted_cleanly(tiny, "filter_k", before)
    for key in ("embed_fe", "train_fnet", "generate_fg"):
        delete_run(tiny, key)
    assert snapshot(tiny) == base


def test_ssim_delete_leaves_nothing(tiny):
    base = snapshot(tiny)
    generate(tiny, "copies", "sg", n=4, progress=False)
    before = snapshot(tiny)
    compute_max_ssim(tiny, threshold=0.5, size=16, run="s", progress=False)
    after = snapshot(tiny)
    assert "max_ssim" in after["fields"] and "near-copies" in after["views"]
    _deleted_cleanly(tiny, "ssim_s", before)
    delete_run(tiny, "generate_sg")
    assert snapshot(tiny) == base


def test_runs_cli_lists_shows_and_deletes(tiny, capsys):
    base = snapshot(tiny)
    train_classifier(tiny, "c", **FAST)
    capsys.readouterr()
    assert main(["runs", "list", tiny, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"key": "train_c", "kind": "train", "name": "c"} in listed
    assert main(["runs", "show", tiny, "train_c", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert shown["kind"] == "train" and shown["config"]["epochs"] == 1
    assert shown["writes"]["fields"] == ["pred_c"] and shown["writes"]["evaluations"] == ["eval_c"]
    assert main(["runs", "show", tiny, "train_c"]) == 0
    assert "train_c: train run 'c'" in capsys.readouterr().out
    assert main(["runs", "delete", tiny, "train_c"]) == 0
    assert "deleted train_c; removed: fields pred_c" in capsys.readouterr().out
    assert snapshot(tiny) == base
    assert main(["runs", "delete", tiny, "train_c"]) == 2
    assert "no synthcurate run 'train_c'" in capsys.readouterr().err
    with pytest.raises(CurateError, match="no synthcurate run 'nope'"):
        show_run(tiny, "nope")


def test_a_run_name_reused_with_other_settings_is_refused_unless_overwrite(tiny):
    """Every kind compares a rerun's settings with the stored run's before it reads or writes
    anything else; the same settings replace the run, others need ``overwrite``."""
    train_classifier(tiny, "reuse", **FAST)
    before = snapshot(tiny)
    with pytest.raises(CurateError, match=r"train run 'reuse' exists with another epochs \(1, "):
        train_classifier(tiny, "reuse", **{**FAST, "epochs": 2})
    assert snapshot(tiny) == before
    assert main(["train", tiny, "--run", "reuse", "--epochs", "2", "--size", "16"]) == 2
    assert snapshot(tiny) == before
    train_classifier(tiny, "reuse", **FAST)  # the same settings: replaced
    replaced = train_classifier(tiny, "reuse", overwrite=True, **{**FAST, "epochs": 2})
    assert show_run(tiny, "train_reuse").config["epochs"] == 2 and replaced.run == "reuse"

    compute_embeddings(tiny, "reuse", name="reuse", progress=False)
    with pytest.raises(CurateError, match="embed run 'reuse' exists with another metric"):
        compute_embeddings(tiny, "reuse", name="reuse", metric="cosine", progress=False)
    compute_embeddings(tiny, "reuse", name="reuse", metric="cosine", overwrite=True)
    assert show_run(tiny, "embed_reuse").config["metric"] == "cosine"

    generate(tiny, "copies", "reuse", n=2, progress=False)
    compute_max_ssim(tiny, run="reuse", progress=False)
    with pytest.raises(CurateError, match="ssim run 'reuse' exists with another threshold"):
        compute_max_ssim(tiny, run="reuse", threshold=0.5, progress=False)
    with pytest.raises(CurateError, match="generate run 'reuse' exists with another seed"):
        generate(tiny, "copies", "reuse", n=2, seed=1, progress=False)
    generate(tiny, "copies", "reuse", n=2, seed=1, overwrite=True, progress=False)
    assert show_run(tiny, "generate_reuse").config["seed"] == 1

    quick = {"embed": "reuse", "visualize": False, "plots": False}
    run_filter(tiny, "knn_precision", "reuse", **quick)
    stored = show_run(tiny, "filter_reuse").config
    assert stored["embed_run"] == "reuse" and stored["size"] is None and stored["dedupe"]
    with pytest.raises(CurateError, match="filter run 'reuse' exists with another level_choice"):
        run_filter(tiny, "knn_precision", "reuse", level=Fixed(0.5), **quick)
    with pytest.raises(CurateError, match="filter run 'reuse' exists with another size"):
        run_filter(tiny, "knn_precision", "reuse", size=16, **quick)
    run_filter(tiny, "knn_precision", "reuse", size=16, overwrite=True, **quick)
    assert show_run(tiny, "filter_reuse").config["size"] == 16
    for key in ("filter_reuse", "ssim_reuse", "generate_reuse", "embed_reuse", "train_reuse"):
        delete_run(tiny, key)


def test_python_cli_and_study_build_the_same_train_config(tiny):
    """The three front ends build one TrainConfig: each rerun below passes the key-reuse check
    without ``overwrite``, which it would refuse for any setting that differed."""
    settings = TrainSettings(epochs=1, size=16, augment=True, schedule="cosine")
    train_classifier(tiny, "same", settings, seeds=2, progress=False, num_threads=1)
    stored = show_run(tiny, "train_same").config
    cli = ["train", tiny, "--run", "same", "--epochs", "1", "--size", "16", "--augment"]
    cli += ["--schedule", "cosine", "--seeds", "2", "--threads", "1"]
    assert main(cli) == 0
    assert TrainConfig.from_record(show_run(tiny, "train_same").config).asked() == (
        TrainConfig.from_record(stored).asked()
    )
    study = parse_config(
        {"dataset": tiny, "classifier": {"epochs": 1, "size": 16, "schedule": "cosine"}}
    )
    job = TrainJob("same", study.classifier.replace(augment=True), 2)
    assert job.config == TrainConfig.build(settings, seeds=2)
    fit_classifier(tiny, "same", job.config, progress=False, num_threads=1)  # no overwrite
    with pytest.raises(CurateError, match="exists with another augment"):
        fit_classifier(tiny, "same", TrainConfig.build(settings.replace(augment=False), seeds=2))
    delete_run(tiny, "train_same")
