"""What a ``kill -9`` leaves, and how the next command settles it (README: "What happens when a
command is interrupted"). Each kill test runs ``curate`` in a subprocess, sends SIGKILL at a
chosen moment (see ``conftest.kill_when``), then checks the state and a rerun."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import fiftyone as fo
import numpy as np
import pytest
import yaml
from conftest import curate_process, kill_when

from brain.images import write_png
from curation.cli import main
from curation.ingest import ingest_dir
from curation.leftovers import temp_dataset_name, temp_folder
from curation.media import media_root
from curation.runs.records import has_run, list_runs, store_run

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _dead_pid() -> int:
    """The pid of a process that has ended (and was reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _owned_by(temp_name: str, pid: int) -> str:
    """``temp_name`` (made by this process) as if another process ``pid`` had made it."""
    return re.sub(rf"-{os.getpid()}-", f"-{pid}-", temp_name)


def _tree(root: Path, counts: dict[str, int], size: int = 16) -> Path:
    rng = np.random.default_rng(0)
    for label, n in counts.items():
        for i in range(n):
            write_png(
                rng.integers(0, 255, (size, size, 3), dtype=np.uint8), root / label / f"{i}.png"
            )
    return root


def _temp_datasets(name: str) -> list[str]:
    return fo.list_datasets(glob_patt=f"{name}.tmp-*")


def _building(name: str) -> bool:
    """Whether a temporary dataset of ``name`` is being built (not yet complete)."""
    found = fo.list_datasets(glob_patt=f"{name}.tmp-*", info=True)
    return any(not entry["persistent"] for entry in found)


def _hidden(folder: Path) -> list[str]:
    return (
        sorted(p.name for p in folder.iterdir() if p.name.startswith("."))
        if folder.exists()
        else []
    )


# -- liveness: dead runs' leftovers are settled, live ones kept ---------------------------------


def test_cleanup_settles_dead_leftovers_and_keeps_live_ones(tmp_path, name, capsys):
    ingest_dir(_tree(tmp_path / "tree", {"a": 12, "b": 6}), name, rare="b")
    dead = _dead_pid()
    live_dataset = temp_dataset_name(name)  # this test process: alive
    dead_dataset = _owned_by(temp_dataset_name(name), dead)
    fo.Dataset(live_dataset)
    fo.Dataset(dead_dataset)
    finished = f"{name}-finished"  # a complete build whose rename was interrupted
    fo.Dataset(_owned_by(temp_dataset_name(finished), dead), persistent=True)
    runs = media_root(name) / "runs"
    live_folder = temp_folder(runs / "r")
    dead_folder = Path(_owned_by(str(temp_folder(runs / "r")), dead))
    retired = Path(_owned_by(str(temp_folder(runs / "kept", "old")), dead))
    legacy_fresh, legacy_stale = runs / ".x.tmp-0123abcd", runs / ".y.tmp-4567abcd"
    for folder in (live_folder, dead_folder, retired, legacy_fresh, legacy_stale):
        (folder / "seed_0").mkdir(parents=True)
    os.utime(legacy_stale, (0, 0))  # unknown owner, untouched for long: dead

    assert main(["list"]) == 0
    listed = capsys.readouterr().out
    assert name in listed.split() and ".tmp-" not in listed
    assert main(["list", "--all"]) == 0
    listed = capsys.readouterr().out
    assert f"{live_dataset}  (temporary dataset for {name!r}, in use by pid {os.getpid()}" in listed
    assert f"{dead_dataset}  (temporary dataset for {name!r}, left by pid {dead}, gone" in listed
    assert f"{live_folder}  (temporary folder" in listed and "kept" in listed

    assert main(["cleanup"]) == 0
    out = capsys.readouterr().out
    for line in (
        f"removed dataset {dead_dataset!r}",
        f"finished replacing dataset {finished!r}",
        f"removed {dead_folder}",
        f"restored {runs / 'kept'}",
        f"removed {legacy_stale}",
    ):
        assert line in out, out
    assert _temp_datasets(name) == [live_dataset]
    assert fo.dataset_exists(finished) and fo.load_dataset(finished).persistent
    assert _hidden(runs) == sorted([live_folder.name, legacy_fresh.name])
    assert (runs / "kept" / "seed_0").is_dir()  # a retired folder whose target was gone
    fo.load_dataset(live_dataset).delete()
    fo.load_dataset(finished).delete()


# -- ingest --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def many(tmp_path_factory) -> dict[str, Path]:
    """1500 small labelled images with a CSV manifest, and 1500 pool images: enough that adding
    them to a dataset takes a while."""
    root = tmp_path_factory.mktemp("many")
    _tree(root / "labelled", {"normal": 1200, "rare": 300}, size=8)
    rows = [
        (f"labelled/{p.parent.name}/{p.name}", p.parent.name)
        for p in sorted((root / "labelled").rglob("*.png"))
    ]
    with (root / "labels.csv").open("w") as handle:
        handle.write("filepath,label\n" + "".join(f"{f},{label}\n" for f, label in rows))
    _tree(root / "pool", {"x": 1500}, size=8)
    return {
        "csv": root / "labels.csv",
        "pool": root / "pool",
        "small": _tree(root / "small", {"a": 12, "b": 6}),
    }


def test_ingest_killed_during_overwrite_or_append(many, name, capsys):
    ingest_dir(many["small"], name, rare="b")
    # 1. --overwrite killed while the new dataset is built: the old one is intact
    ingest = curate_process("ingest", "csv", str(many["csv"]), "--dataset", name, "--overwrite")
    kill_when(ingest, lambda: _building(name))
    assert len(fo.load_dataset(name)) == 18 and len(_temp_datasets(name)) == 1
    assert main(["list"]) == 0 and ".tmp-" not in capsys.readouterr().out
    assert main(["list", "--all"]) == 0 and "gone" in capsys.readouterr().out
    assert main(["ingest", "csv", str(many["csv"]), "--dataset", name, "--overwrite"]) == 0
    assert "cleanup: removed dataset" in capsys.readouterr().out
    assert _temp_datasets(name) == [] and len(fo.load_dataset(name)) == 1500
    # 2. --append killed while samples are added: the rerun rolls the partial append back first
    append = curate_process("ingest", "pool", str(many["pool"]), "--dataset", name, "--append")
    kill_when(append, lambda: len(fo.load_dataset(name)) > 1500)
    assert 1500 < len(fo.load_dataset(name)) <= 3000  # not marked done
    assert main(["ingest", "pool", str(many["pool"]), "--dataset", name, "--append"]) == 0
    assert "cleanup: rolled back" in capsys.readouterr().out
    dataset = fo.load_dataset(name)
    assert len(dataset) == 3000 and len(set(dataset.values("filepath"))) == 3000
    assert [s["kind"] for s in dataset.info["synthcurate"]["sources"]] == [
        f"csv:{many['csv']}",
        f"pool:{many['pool']}",
    ]
    assert _hidden(media_root(name)) == []


# -- train, filter, experiment -------------------------------------------------------------------


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> str:
    """A small 16 px project: 90 labelled images (rare 30) and 30 synthetic ones, with
    hand-made embeddings (rare and synthetic near 0, the others near 20) under embed run
    ``hand``."""
    name = "interrupted"
    root = tmp_path_factory.mktemp("interrupted")
    ingest_dir(_tree(root / "real", {"normal": 60, "rare": 30}), name, rare="rare")
    ingest_dir(_tree(root / "synthetic", {"rare": 30}), name, append=True, origin="synthetic")
    dataset = fo.load_dataset(name)
    rng = np.random.default_rng(0)
    ids, labels = dataset.values(["id", "ground_truth.label"])
    vectors = {
        i: rng.normal(size=6) + (0 if label == "rare" else 20)
        for i, label in zip(ids, labels, strict=True)
    }
    dataset.set_values("emb_hand", vectors, key_field="id")
    store_run(dataset, "embed", "hand", {"field": "emb_hand", "train_run": None}, {"dim": 6})
    return name


def test_train_killed_between_seeds(small, capsys):
    runs = media_root(small) / "runs"
    args = ["train", small, "--run", "k", "--seeds", "2", "--epochs", "1", "--threads", "1"]
    seed_0 = lambda: any((p / "seed_0").is_dir() for p in runs.glob(".k.tmp-*"))  # noqa: E731
    kill_when(curate_process(*args), seed_0)
    dataset = fo.load_dataset(small)
    dataset.reload()  # a run would have been stored by another process
    assert _hidden(runs) and not has_run(dataset, "train", "k")
    assert main(["list", "--all"]) == 0 and ".k.tmp-" in capsys.readouterr().out
    assert main(args) == 0
    assert _hidden(runs) == []
    assert sorted(p.name for p in (runs / "k").iterdir()) == ["seed_0", "seed_1"]
    assert has_run(fo.load_dataset(small), "train", "k")


def _filter(small: str, key: str) -> list[str]:
    return [
        "filter",
        small,
        "--method",
        "gmm_full",
        "--key",
        key,
        "--embed",
        "hand",
        "-p",
        "pca_components=2",
    ]


def test_filter_killed_while_writing_is_rerun_to_the_same_result(small):
    score = "k_score"

    def writing() -> bool:
        dataset = fo.load_dataset(small)
        dataset.reload()
        return dataset.has_sample_field(score)

    kill_when(curate_process(*_filter(small, "k")), writing)
    assert main(_filter(small, "k")) == 0
    assert main(_filter(small, "straight")) == 0
    dataset = fo.load_dataset(small)
    synthetic = dataset.match({"origin": "synthetic"})
    assert synthetic.values(score) == synthetic.values("straight_score")
    for decision in ("pass", "reject"):
        assert set(dataset.match_tags(f"k:{decision}").values("id")) == set(
            dataset.match_tags(f"straight:{decision}").values("id")
        )
    assert "k" in list_runs(dataset, "filter")


def test_experiment_killed_mid_cell_finishes_without_redoing_a_cell(small, tmp_path, capsys):
    config = {
        "dataset": small,
        "name": "cut",
        "seeds": 2,
        "augment": [False, True],
        "classifier": {"epochs": 1, "batch_size": 32},
        "ssim": {"enabled": False},
    }
    path = tmp_path / "cut.yaml"
    path.write_text(yaml.safe_dump(config))
    args = ["experiment", str(path), "--out", str(tmp_path / "report"), "--json"]
    runs = media_root(small) / "runs"
    mid_cell = lambda: any((p / "seed_0").is_dir() for p in runs.glob(".cut_real_aug.tmp-*"))  # noqa: E731
    kill_when(curate_process(*args), mid_cell)
    dataset = fo.load_dataset(small)
    dataset.reload()  # runs were stored by another process
    assert has_run(dataset, "train", "cut-real")  # the first cell was finished
    assert not has_run(dataset, "train", "cut-real-aug") and not has_run(
        dataset, "experiment", "cut"
    )
    finished_at = dataset.get_run_info("train_cut_real").timestamp
    capsys.readouterr()
    assert main(args) == 0
    log = capsys.readouterr().err
    assert log.count("[train] cut-real: done earlier, skipped") == 1, log
    assert log.count("[train] cut-real-aug: real, augmented, 2 seed(s)") == 1, log
    dataset.reload()
    assert dataset.get_run_info("train_cut_real").timestamp == finished_at
    assert has_run(dataset, "experiment", "cut") and _hidden(runs) == []
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert [len(row["f1"]["values"]) for row in report["tables"]] == [2, 2, 2, 2]  # + weighted
