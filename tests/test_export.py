"""Export of curated views: three formats, atomic, refuses to overwrite, round-trips."""

from __future__ import annotations

import csv
import json
from collections import Counter
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


def _manifest(out: Path) -> list[dict[str, str]]:
    """The rows of ``out``'s manifest, checked to list every exported image once, each with
    its origin and (synthetic samples) its lineage."""
    with (out / "manifest.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    images = {p.relative_to(out).as_posix() for p in out.rglob("*.png")}
    assert sorted(row["filepath"] for row in rows) == sorted(images)
    for row in rows:
        synthetic = row["origin"] == "synthetic"
        assert row["origin"] in ("real", "synthetic") and row["label"]
        assert (row["lineage_generator"] == "external") == synthetic, row
        assert (out / row["filepath"]).is_file()
    return rows


def _origins(rows: list[dict[str, str]]) -> dict[str, int]:
    return dict(Counter(row["origin"] for row in rows))


def test_csv_export_round_trips(curated, tmp_path, capsys):
    out = tmp_path / "export-csv"
    assert main(["export", curated, "--out", str(out), "--format", "csv", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["counts"] == _expected(curated)
    again = f"{curated}-again"
    ingest_csv(out / "manifest.csv", again)
    assert fo.load_dataset(again).count_values("ground_truth.label") == _expected(curated)
    n_real = sum(_expected(curated).values()) - 5
    assert _origins(_manifest(out)) == {"real": n_real, "synthetic": 5}


def test_imagefolder_export_round_trips(curated, tmp_path):
    out = tmp_path / "export-tree"
    assert main(["export", curated, "--out", str(out), "--filter", "f1"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["manifest.csv", "normal", "rare"]
    rows = _manifest(out)
    assert all(row["filepath"].startswith(f"{row['label']}/") for row in rows)
    n_real = sum(_expected(curated).values()) - 5
    assert _origins(rows) == {"real": n_real, "synthetic": 5}
    again = f"{curated}-tree"
    ingest_dir(out, again)
    assert fo.load_dataset(again).count_values("ground_truth.label") == _expected(curated)


def test_fiftyone_export_keeps_tags(curated, tmp_path):
    out = tmp_path / "export-fo"
    assert main(["export", curated, "--out", str(out), "--format", "fiftyone"]) == 0
    copy = fo.Dataset.from_dir(str(out), dataset_type=fo.types.FiftyOneDataset)
    assert copy.count_sample_tags() == {"f1:pass": 5}
    assert len(copy.exists("lineage")) == 5
    rows = _manifest(out)
    assert _origins(rows) == {"real": len(copy) - 5, "synthetic": 5}
    paths, origins = copy.values(["filepath", "origin"])
    by_file = {Path(p).name: o for p, o in zip(paths, origins, strict=True)}
    assert {Path(row["filepath"]).name: row["origin"] for row in rows} == by_file


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
