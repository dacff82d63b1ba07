"""Ingest against a real mongod and real files: formats, splits, bad input, overwrite/append."""

from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path

import fiftyone as fo
import numpy as np
import pytest
from conftest import shared_data

from brain.errors import InputError
from brain.images import read_image, write_png
from curation.cli import main
from curation.info import count_samples, dataset_info
from curation.ingest import ingest_csv, ingest_dir, ingest_npz, ingest_pool


def _snapshot(name: str) -> tuple[int, dict]:
    dataset = fo.load_dataset(name)
    return len(dataset), count_samples(dataset)


def _write_tree(root: Path, counts: dict[str, int], seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for label, n in counts.items():
        for i in range(n):
            write_png(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8), root / label / f"{i}.png")
    return root


def test_breastmnist_npz_keeps_official_splits(name):
    path = shared_data("medmnist", "breastmnist.npz")
    report = ingest_npz(path, name)
    counts = count_samples(fo.load_dataset(name))["real"]
    assert counts["train"] == {"0": 147, "1": 399}
    assert counts["val"] == {"0": 21, "1": 57}
    assert counts["test"] == {"0": 42, "1": 114}
    assert report.added == 780
    dataset = fo.load_dataset(name)
    assert dataset.info["synthcurate"]["rare_class"] == "0"  # least frequent by default
    sample = dataset.first()
    assert Path(sample.filepath).is_file() and not str(sample.filepath).startswith(str(path.parent))
    assert read_image(sample.filepath).shape == (28, 28, 1)


def test_gbanded_csv_grouped_split(name):
    csv_path = shared_data("gbanded_chromosomes", "labels.csv")
    ingest_csv(
        csv_path,
        name,
        path_column="file",
        label_column="chrom_name",
        group_column="group_id",
        rare="21",
        binary=True,
        seed=3,
    )
    dataset = fo.load_dataset(name)
    groups, splits, labels = dataset.values(["group", "split", "ground_truth.label"])
    split_of: dict[str, set] = {}
    for group, split in zip(groups, splits, strict=True):
        split_of.setdefault(group, set()).add(split)
    assert all(len(s) == 1 for s in split_of.values()), "a group spans two splits"
    assert set(labels) == {"21", "other"}
    assert set(splits) == {"train", "val", "test"}
    info = dataset.info["synthcurate"]
    assert info["split"] == {"seed": 3, "fractions": [0.7, 0.15, 0.15], "by_group": True}
    n_train = splits.count("train")
    assert 0.55 < n_train / len(splits) < 0.85
    rare_splits = {s for s, lab in zip(splits, labels, strict=True) if lab == "21"}
    assert rare_splits == {"train", "val", "test"}


def test_directory_tree_pool_and_synthetic_append(tmp_path, name):
    tree = _write_tree(tmp_path / "tree", {"normal": 30, "rare": 9})
    ingest_dir(tree, name, rare="rare")
    _write_tree(tmp_path / "pool" / "any", {"x": 5}, seed=1)
    ingest_pool(tmp_path / "pool", name, append=True)
    _write_tree(tmp_path / "synth", {"rare": 4}, seed=2)
    ingest_dir(tmp_path / "synth", name, append=True, origin="synthetic")
    counts = count_samples(fo.load_dataset(name))
    assert counts["real"]["pool"] == {"(unlabelled)": 5}
    assert counts["synthetic"] == {"train": {"rare": 4}}
    assert sum(sum(c.values()) for s, c in counts["real"].items() if s != "pool") == 39
    lineage = fo.load_dataset(name).match({"origin": "synthetic"}).first().lineage
    assert lineage.generator == "external"


def test_split_folders_are_kept(tmp_path, name):
    for split in ("train", "val", "test"):
        _write_tree(tmp_path / "tree" / split, {"a": 3, "b": 2})
    ingest_dir(tmp_path / "tree", name)
    assert count_samples(fo.load_dataset(name))["real"]["val"] == {"a": 3, "b": 2}
    assert "split" not in fo.load_dataset(name).info["synthcurate"]


def test_sixteen_bit_and_multichannel_tiff(tmp_path):
    import tifffile

    ramp = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)
    tifffile.imwrite(tmp_path / "g16.tif", ramp)
    image = read_image(tmp_path / "g16.tif")
    assert image.dtype == np.uint8 and image.shape == (64, 64, 1)
    assert image.max() == round(ramp.max() / 257) and image.min() == 0  # scaled, not clipped
    stack = np.stack([ramp, ramp // 2, ramp // 4, ramp // 8])
    tifffile.imwrite(tmp_path / "c4.tif", stack)
    assert read_image(tmp_path / "c4.tif").shape == (64, 64, 4)
    from PIL import Image

    Image.fromarray(ramp).save(tmp_path / "g16.png")
    assert np.array_equal(read_image(tmp_path / "g16.png"), image)


def test_overwrite_is_idempotent(tmp_path, name):
    tree = _write_tree(tmp_path / "tree", {"normal": 20, "rare": 6})
    ingest_dir(tree, name, rare="rare")
    first = _snapshot(name)
    ingest_dir(tree, name, rare="rare", overwrite=True)
    assert _snapshot(name) == first
    assert fo.load_dataset(name).persistent


def assert_one_line_error(err: str) -> None:
    """The CLI's error is one line, the last thing printed (progress bars may come before)."""
    lines = [line for line in re.split(r"[\r\n]", err) if line.strip()]
    assert lines and lines[-1].startswith("curate: error:"), err
    assert sum("error" in line for line in lines) == 1, err


def _cli(*args: str) -> int:
    return main(list(args))


@pytest.fixture
def existing(tmp_path, name):
    tree = _write_tree(tmp_path / "tree", {"normal": 12, "rare": 6})
    ingest_dir(tree, name, rare="rare")
    return name, tree, _snapshot(name)


def _bad_inputs(tmp_path: Path, tree: Path) -> dict[str, list[str]]:
    corrupt = tmp_path / "corrupt"
    shutil.copytree(tree, corrupt)
    (corrupt / "rare" / "0.png").write_bytes(b"not a png")
    empty_class = tmp_path / "empty"
    shutil.copytree(tree, empty_class)
    (empty_class / "ghost").mkdir()
    dup_csv = tmp_path / "dup.csv"
    rows = [("tree/normal/0.png", "normal"), ("tree/normal/0.png", "normal")]
    with dup_csv.open("w", newline="") as handle:
        csv.writer(handle).writerows([("filepath", "label"), *rows])
    return {
        "missing path": ["dir", str(tmp_path / "nope")],
        "corrupt image": ["dir", str(corrupt)],
        "unknown label column": ["csv", str(dup_csv), "--label-column", "diagnosis"],
        "duplicate file paths": ["csv", str(dup_csv)],
        "class with no samples": ["dir", str(empty_class)],
        "rare class absent": ["dir", str(tree), "--rare", "unicorn"],
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing path",
        "corrupt image",
        "unknown label column",
        "duplicate file paths",
        "class with no samples",
        "rare class absent",
    ],
)
def test_bad_input_exits_2_and_changes_nothing(case, tmp_path, existing, capsys):
    name, tree, before = existing
    args = _bad_inputs(tmp_path, tree)[case]
    for mode in ("--append", "--overwrite"):
        assert _cli("ingest", *args, "--dataset", name, mode) == 2
        assert_one_line_error(capsys.readouterr().err)
        assert _snapshot(name) == before
    assert _cli("ingest", *args, "--dataset", f"{name}-new") == 2
    assert not fo.dataset_exists(f"{name}-new")


def test_existing_name_is_refused(existing, capsys):
    name, tree, before = existing
    assert _cli("ingest", "dir", str(tree), "--dataset", name) == 2
    assert "exists" in capsys.readouterr().err
    assert _snapshot(name) == before


def test_skip_bad_lists_corrupt_images(tmp_path, name, capsys):
    tree = _write_tree(tmp_path / "tree", {"normal": 10, "rare": 4})
    (tree / "normal" / "3.png").write_bytes(b"\x89PNG broken")
    assert _cli("ingest", "dir", str(tree), "--dataset", name, "--skip-bad") == 0
    out = capsys.readouterr().out
    assert "skipped unreadable image" in out and "3.png" in out
    assert len(fo.load_dataset(name)) == 13


def test_source_images_are_never_written(tmp_path, name):
    tree = _write_tree(tmp_path / "tree", {"normal": 10, "rare": 4})
    stamp = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in tree.rglob("*.png")}
    ingest_dir(tree, name)
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in tree.rglob("*.png")} == stamp
    assert {p for p in tree.rglob("*") if p.is_file()} == set(stamp)


def test_info_json_counts(existing, capsys):
    name, _, _ = existing
    assert _cli("info", name, "--json") == 0
    import json

    payload = json.loads(capsys.readouterr().out)
    assert payload["rare_class"] == "rare"
    assert sum(sum(v.values()) for v in payload["counts"]["real"].values()) == 18
    assert dataset_info(name)["counts"] == payload["counts"]


def test_list_and_delete(existing, capsys):
    name, _, _ = existing
    assert _cli("list") == 0
    assert name in capsys.readouterr().out.split()
    assert _cli("delete", name, "--yes") == 0
    assert not fo.dataset_exists(name)
    assert _cli("delete", name, "--yes") == 2


def test_errors_are_curate_errors(tmp_path, name):
    with pytest.raises(InputError, match="fractions"):  # brain.splits' own error type
        ingest_dir(_write_tree(tmp_path / "t", {"a": 5, "b": 5}), name, fractions=[0.5, 0.5, 0.5])


def test_split_reaches_every_split_where_the_groups_allow():
    """A class in three groups or more gets a sample in each of train, val and test."""
    from collections import Counter

    from brain.splits import stratified_group_split

    labels = ["normal"] * 30 + ["rare"] * 9 + ["once"]  # seed 0 used to leave rare out of val
    for seed in range(10):
        splits = stratified_group_split(labels, seed=seed)
        per_label = Counter(zip(labels, splits, strict=True))
        for split in ("train", "val", "test"):
            assert per_label["normal", split] and per_label["rare", split], (seed, split)


def test_degenerate_rare_class_is_said_at_ingest(tmp_path, name, capsys):
    """Refused where synthcurate makes the split; warned where the input gives the splits or
    when appending (the dataset is kept as given)."""
    tree = tmp_path / "tree"
    for split, counts in {
        "train": {"a": 4, "r": 2},
        "val": {"a": 2},
        "test": {"a": 2, "r": 1},
    }.items():
        _write_tree(tree / split, counts)
    assert _cli("ingest", "dir", str(tree), "--dataset", name, "--rare", "r") == 0
    err = capsys.readouterr().err
    assert "curate: warning: rare class 'r' has train 2, val 0, test 1 real samples" in err
    assert fo.dataset_exists(name)
    extra = _write_tree(tmp_path / "extra" / "train", {"c": 1})
    assert _cli("ingest", "dir", str(extra.parent), "--dataset", name, "--append") == 0
    err = capsys.readouterr().err
    assert "curate: warning: label 'c' has train 1, val 0, test 0 real samples" in err
    assert "rare class 'r' has train 2, val 0, test 1" in err  # still said


def test_alpha_channels_are_dropped_and_said(tmp_path, name, capsys):
    rng = np.random.default_rng(0)
    for label, n in {"a": 10, "b": 5}.items():
        for i in range(n):
            image = rng.integers(0, 255, (16, 16, 4), dtype=np.uint8)
            write_png(image, tmp_path / "rgba" / label / f"{i}.png")
    assert _cli("ingest", "dir", str(tmp_path / "rgba"), "--dataset", name) == 0
    assert "curate: warning: 15 image(s) have an alpha channel, dropped" in capsys.readouterr().err
    dataset = fo.load_dataset(name)
    assert set(dataset.values("metadata.num_channels")) == {3}
    assert read_image(dataset.first().filepath).shape == (16, 16, 3)


def test_many_mixed_sizes_are_described_in_one_short_line():
    from brain.images import describe_shapes

    assert describe_shapes([(8, 8, 1)] * 2 + [(9, 7, 1)]) == "8x8x1: 2, 9x7x1: 1"
    shapes = [(20 + i % 40, 10 + i % 7, 1) for i in range(300)]
    described = describe_shapes(shapes)
    assert described.startswith("280 shapes, heights 20-59, widths 10-16; most common ")
    assert described.count(":") == 4 and len(described) < 160


def test_an_image_above_the_pixel_limit_is_said_once_in_one_warning(tmp_path, name, capsys):
    """A 9500 x 9500 1-bit PNG (90 million pixels, 11 KB on disk): PIL would warn with its raw
    DecompressionBombWarning; ingest reads it and says so in one ``curate: warning:`` line."""
    import warnings

    from PIL import Image

    from brain.images import LARGE_PIXELS

    tree = tmp_path / "large"
    rng = np.random.default_rng(0)
    for label, n in {"a": 10, "b": 5}.items():
        for i in range(n):
            write_png(rng.integers(0, 255, (16, 16), dtype=np.uint8), tree / label / f"{i}.png")
    big = tree / "a" / "big.png"
    Image.new("1", (9500, 9500)).save(big)
    assert LARGE_PIXELS < 9500 * 9500
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert _cli("ingest", "dir", str(tree), "--dataset", name) == 0
    assert not [w for w in caught if "DecompressionBomb" in type(w.message).__name__]
    lines = [line for line in capsys.readouterr().err.splitlines() if str(big) in line]
    assert lines == [
        f"curate: warning: image {big} is 9500x9500 pixels (90,250,000), above the limit of "
        "89,478,485; read as is (slowly, with much memory); --max-pixels N refuses images above N"
    ]
    widths = fo.load_dataset(name).values("metadata.width")
    assert sorted(widths)[-1] == 9500 and len(widths) == 16
