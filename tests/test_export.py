"""Export of curated views: three formats, atomic, refuses to overwrite, round-trips."""

from __future__ import annotations

import json
from pathlib import Path

import fiftyone as fo
import pytest
from test_ingest import _write_tree, assert_one_line_error

from curation.cli import main
from curation.info import count_samples
from curation.ingest import ingest_csv, ingest_dir


@pytest.fixture
def curated(tmp_path, name):
    ingest_dir(_write_tree(tmp_path / "real", {"normal": 30, "rare": 10}), name, rare="rare")
    ingest_dir(
        _write_tree(tmp_path / "synth", {"rare": 8}, seed=5), name, append=True, origin="synthetic"
    )
    dataset = fo.load_dataset(name)
    synthetic = dataset.match({"origin": "synthetic"})
    for i, sample in enumerate(synthetic):
        sample.tags.append("f1:pass" if i < 5 else "f1:reject")
        sample.save()
    return name


def _expected(name: str) -> dict:
    counts = count_samples(fo.load_dataset(name))["real"]["train"]
    return {**counts, "rare": counts["rare"] + 5}


def test_csv_export_round_trips(curated, tmp_path, capsys):
    out = tmp_path / "export-csv"
    assert main(["export", curated, "--out", str(out), "--format", "csv", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["counts"] == _expected(curated)
    again = f"{curated}-again"
    ingest_csv(out / "manifest.csv", again)
    assert fo.load_dataset(again).count_values("ground_truth.label") == _expected(curated)
    lineage = [
        line for line in (out / "manifest.csv").read_text().splitlines() if "external" in line
    ]
    assert len(lineage) == 5


def test_imagefolder_export_round_trips(curated, tmp_path):
    out = tmp_path / "export-tree"
    assert main(["export", curated, "--out", str(out), "--filter", "f1"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["normal", "rare"]
    again = f"{curated}-tree"
    ingest_dir(out, again)
    assert fo.load_dataset(again).count_values("ground_truth.label") == _expected(curated)


def test_fiftyone_export_keeps_tags(curated, tmp_path):
    out = tmp_path / "export-fo"
    assert main(["export", curated, "--out", str(out), "--format", "fiftyone"]) == 0
    copy = fo.Dataset.from_dir(str(out), dataset_type=fo.types.FiftyOneDataset)
    assert copy.count_sample_tags() == {"f1:pass": 5}
    assert len(copy.exists("lineage")) == 5


def test_export_refuses_existing_folder_and_bad_view(curated, tmp_path, capsys):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["export", curated, "--out", str(out)]) == 2
    assert_one_line_error(capsys.readouterr().err)
    assert (out / "keep.txt").read_text() == "mine"
    assert main(["export", curated, "--out", str(tmp_path / "x"), "--view", "nope"]) == 2
    assert "no view 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_sources_are_not_moved(curated, tmp_path):
    before = sorted(fo.load_dataset(curated).values("filepath"))
    main(["export", curated, "--out", str(tmp_path / "e"), "--overwrite"])
    assert all(Path(p).is_file() for p in before)
