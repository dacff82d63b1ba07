"""``curation.runs.generate.generate`` and ``curate generate`` on a real dataset (demo data)."""

from __future__ import annotations

import os
import subprocess

import fiftyone as fo
import numpy as np
import pytest
from conftest import curate_process, kill_when
from fiftyone import ViewField as F

from brain.errors import InputError
from brain.images import read_image, write_png
from curation.cli import main as cli_main
from curation.media import media_root
from curation.runs.generate import describe_sources, generate
from curation.runs.generate.data import existing_pairs
from curation.runs.records import load_run
from generators.planning import plan_pairs

TINY = {"preset": "tiny", "num_timesteps": 50, "batch_size": 4}
FAST = {"params": TINY, "train_steps": 4, "steps": 3, "progress": False}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def synthetic(name: str, run: str | None = None):
    view = fo.load_dataset(name).match(F("origin") == "synthetic")
    return view if run is None else view.match(F("lineage.run") == run)


def test_plan_pairs_is_deterministic_and_weighted():
    plan = plan_pairs(4, 10, seed=3)
    assert plan == plan_pairs(4, 10, seed=3) and plan[:6] == plan_pairs(4, 6, seed=3)
    assert sorted(i for i, _ in plan[:4]) == [0, 1, 2, 3] and {s for _, s in plan} == {3, 4, 5}
    weighted = plan_pairs(3, 10, seed=0, weights=np.array([0.7, 0.2, 0.1]))
    assert [sum(i == k for i, _ in weighted) for k in range(3)] == [7, 2, 1]


def test_bbdm_adds_samples_with_lineage_and_reruns_add_nothing(project):
    dataset = fo.load_dataset(project)
    pool_ids = set(dataset.match(F("split") == "pool").values("id"))
    before = len(dataset)
    report = generate(project, "bbdm", "r1", n=10, **FAST)
    assert report.added == 10 and report.total == 10 and report.trained_steps == 4
    view = synthetic(project, "r1")
    assert len(view) == 10 and len(dataset) == before + 10
    assert set(view.values("ground_truth.label")) == {"translocation"}
    assert set(view.values("split")) == {"train"}
    sample = view.first()
    lineage = sample.lineage
    assert lineage.source_id in pool_ids and lineage.generator == "bbdm" and lineage.run == "r1"
    assert lineage.checkpoint_digest == report.checkpoint_digest
    assert lineage.params["preset"] == "tiny" and lineage.params["condition"] == "channel:2"
    source = dataset[lineage.source_id]
    assert sample.group == source.group
    root = media_root(project)
    assert sample.filepath.startswith(str(root / "generate" / "r1" / "images"))
    assert read_image(sample.filepath).shape == (64, 64, 3)
    config, results = load_run(dataset, "generate", "r1")
    assert config["generator"] == "bbdm" and results["trained_steps"] == 4
    assert len(results["loss_history"]) == 4 and os.path.isfile(results["loss_curve"])

    # a rerun loads the finished checkpoint (no --train-steps needed) and adds nothing
    again = generate(project, "bbdm", "r1", n=10, params=TINY, steps=3, progress=False)
    assert again.added == 0 and again.total == 10 and len(synthetic(project, "r1")) == 10
    assert again.checkpoint_digest == report.checkpoint_digest
    more = generate(project, "bbdm", "r1", n=13, **FAST)
    assert more.added == 3 and len(synthetic(project, "r1")) == 13
    assert len(existing_pairs(dataset, "r1")) == 13

    # same settings under another run name: same training, same image per (source, seed)
    twin = generate(project, "bbdm", "r2", n=2, **FAST)
    assert twin.checkpoint_digest == report.checkpoint_digest
    for s in synthetic(project, "r2"):
        match = view.match(F("lineage.source_id") == s.lineage.source_id)
        match = match.match(F("lineage.seed") == s.lineage.seed).first()
        assert np.array_equal(read_image(s.filepath), read_image(match.filepath))


def test_classic_methods_use_rare_train_sources(project, capsys):
    dataset = fo.load_dataset(project)
    rare_train = dataset.match(
        (F("split") == "train") & (F("ground_truth.label") == "translocation")
    )
    ids = set(rare_train.values("id"))
    report = generate(project, "copies", "copies", n=5, progress=False)
    assert report.added == 5 and report.trained_steps == 0
    line = f"sources: view 'rare-train', {len(ids)} samples (train {len(ids)}); condition "
    assert describe_sources(report) == line + (report.config["condition"] or "none")
    assert cli_main(["generate", project, "-m", "copies", "-r", "copies", "--n", "5"]) == 0
    assert describe_sources(report) in capsys.readouterr().out.splitlines()  # adds nothing
    for sample in synthetic(project, "copies"):
        assert sample.lineage.source_id in ids
        source = dataset[sample.lineage.source_id]
        assert np.array_equal(read_image(sample.filepath), read_image(source.filepath))
    adasyn = generate(project, "adasyn", "ada", n=6, progress=False)
    assert (
        adasyn.added == 6
        and {s for s in synthetic(project, "ada").values("lineage.source_id")} <= ids
    )


def _count(project: str) -> int:
    return len(fo.load_dataset(project))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"condition": "channel:7"}, "channel index 7 is out of range"),
        ({"source_view": "synthetic"}, "source view 'synthetic' is empty"),
        ({"source_view": "nope"}, "no view 'nope'"),
        ({"params": {"preset": "tiny", "depth": 3}}, "unknown parameter"),
        ({"steps": 2}, "at least 3 sampling steps"),
    ],
)
def test_bad_options_add_nothing(project, options, message):
    before = _count(project)
    kwargs = {**FAST, **options}
    with pytest.raises(InputError, match=message):
        generate(project, "bbdm", "bad", n=2, **kwargs)
    assert _count(project) == before and not (media_root(project) / "generate").exists()


def test_bad_data_adds_nothing(project, tmp_path):
    dataset = fo.load_dataset(project)
    before = len(dataset)
    # masks of the wrong size on the pool
    for sample in dataset.match(F("split") == "pool"):
        sample["region"] = fo.Segmentation(mask=np.ones((8, 8), np.uint8))
        sample.save()
    with pytest.raises(InputError, match="masks in 'region' are 8x8"):
        generate(project, "bbdm", "bad", condition="masked", mask_field="region", n=2, **FAST)
    # a source view with another image size
    small = tmp_path / "small.png"
    write_png(np.zeros((32, 32, 3), np.uint8), small)
    dataset.add_sample(fo.Sample(filepath=str(small), split="pool", origin="real"))
    with pytest.raises(InputError, match="different shapes"):
        generate(project, "bbdm", "bad", n=2, **FAST)
    # too few rare-class training images
    rare_train = dataset.match(
        (F("split") == "train") & (F("ground_truth.label") == "translocation")
    )
    dataset.delete_samples(rare_train.skip(1))
    before = len(dataset)
    with pytest.raises(InputError, match=r"at least 2 rare-class images to train; .* has 1"):
        generate(project, "bbdm", "bad", source_view="common-train", n=2, **FAST)
    assert len(dataset) == before and not (media_root(project) / "generate").exists()


def test_checkpoint_of_another_method_or_run_reuse(project, capsys):
    generate(project, "bbdm", "r1", n=1, **FAST)
    ckpt = media_root(project) / "generate" / "r1" / "checkpoint"
    before = _count(project)
    with pytest.raises(InputError, match="from method 'bbdm', not 'cyclegan'"):
        generate(project, "cyclegan", "c1", checkpoint=str(ckpt), n=1, progress=False)
    with pytest.raises(InputError, match="exists with another generator"):
        generate(project, "masked_ddpm", "r1", n=1, **FAST)
    code = cli_main(
        [
            "generate",
            project,
            "--method",
            "cyclegan",
            "--run",
            "c1",
            "--checkpoint",
            str(ckpt),
            "--n",
            "1",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("curate: error:") and err.count("\n") == 1
    assert _count(project) == before
    with pytest.raises(InputError, match=r"another params \(num_timesteps: 50\)"):
        generate(project, "bbdm", "r1", n=2, **{**FAST, "params": {**TINY, "num_timesteps": 40}})
    # the rare-class train images changed (here a label): the finished checkpoint is not reused
    dataset = fo.load_dataset(project)
    sample = dataset.match({"split": "train", "ground_truth.label": "translocation"}).first()
    sample.ground_truth.label = "normal"
    sample.save()
    with pytest.raises(InputError, match="trained on other images"):
        generate(project, "bbdm", "r1", n=2, **FAST)
    assert _count(project) == before


def _cli(project: str, *extra: str) -> subprocess.Popen:
    return curate_process(
        "generate",
        project,
        "--method",
        "bbdm",
        "--run",
        "k",
        "--train-steps",
        "40",
        "--checkpoint-every",
        "5",
        "--steps",
        "10",
        "--n",
        "40",
        "--batch-size",
        "4",
        "-p",
        "preset=tiny",
        "-p",
        "num_timesteps=50",
        "-p",
        "batch_size=4",
        "--json",
        *extra,
    )


def test_killed_runs_continue_without_duplicates_or_loss(project):
    state = media_root(project) / "generate" / "k" / "checkpoint" / "training_state.pt"
    # 1. killed during training, after a checkpoint
    kill_when(_cli(project), state.is_file)
    assert len(synthetic(project, "k")) == 0
    # 2. resumed, killed during generation, after a batch was added
    kill_when(_cli(project, "--resume"), lambda: len(synthetic(project, "k")) >= 4)
    partial = len(synthetic(project, "k"))
    assert 4 <= partial < 40
    # 3. finished
    done = _cli(project, "--resume")
    _, err = done.communicate(timeout=300)
    assert done.returncode == 0, err.decode()[-2000:]
    view = synthetic(project, "k")
    pairs = list(zip(*view.values(["lineage.source_id", "lineage.seed"]), strict=True))
    assert len(pairs) == 40 and len(set(pairs)) == 40
    assert len(set(view.values("filepath"))) == 40
    # the interrupted training equals an uninterrupted one with the same settings
    straight = generate(
        project,
        "bbdm",
        "straight",
        train_steps=40,
        steps=10,
        n=1,
        progress=False,
        params={"preset": "tiny", "num_timesteps": 50, "batch_size": 4},
    )
    assert set(view.values("lineage.checkpoint_digest")) == {straight.checkpoint_digest}
    dataset = fo.load_dataset(project)
    dataset.reload()  # the run record was written by another process
    _, results = load_run(dataset, "generate", "k")
    assert results["trained_steps"] == 40
