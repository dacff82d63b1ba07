"""``curate generate`` on the data users have: grayscale crops of mixed sizes on a light
background, three (or fewer) rare images in train. Real database, no reshaping by hand."""

from __future__ import annotations

import hashlib
from pathlib import Path

import fiftyone as fo
import numpy as np
import pytest
from fiftyone import ViewField as F

from brain.errors import InputError
from brain.images import read_image, write_png
from curation.cli import main as cli_main
from curation.ingest import ingest_dir
from curation.media import media_root
from curation.runs.generate import generate
from curation.runs.records import load_run

pytestmark = pytest.mark.usefixtures("one_torch_thread")

BACKGROUND = 220
#: (height, width) of the crops, cycled: no two neighbours share a size.
SIZES = [(20, 14), (16, 24), (28, 28), (18, 22), (24, 16)]
COUNTS = {"train": {"rare": 3, "common": 6}, "val": {"rare": 1, "common": 2}}
COUNTS["test"] = COUNTS["val"]
BBDM = ["-p", "preset=tiny", "-p", "num_timesteps=20", "-p", "batch_size=2"]


def _crop(index: int, rare: bool) -> np.ndarray:
    """A dark chromosome-like bar on a light background (two bars for the rare class)."""
    height, width = SIZES[index % len(SIZES)]
    image = np.full((height, width, 1), BACKGROUND, np.uint8)
    rng = np.random.default_rng(index)
    left = width // 2 - 2 + int(rng.integers(-1, 2))
    image[3 : height - 3, left : left + 3] = 40 + 10 * (index % 5)
    if rare:
        image[3 : height // 2, left + 4 : left + 6] = 60
    return image


@pytest.fixture(scope="module")
def mixed_dataset(tmp_path_factory) -> tuple[str, Path]:
    """A dataset ingested from a split tree of mixed-size grayscale PNGs (treat as read-only)."""
    root = tmp_path_factory.mktemp("mixed")
    index = 0
    for split, labels in COUNTS.items():
        for label, count in labels.items():
            for _ in range(count):
                write_png(_crop(index, label == "rare"), root / split / label / f"{index}.png")
                index += 1
    ingest_dir(root, "mixed-session", rare="rare")
    return "mixed-session", root


@pytest.fixture
def project(mixed_dataset, name) -> str:
    """A private copy of the mixed-size dataset."""
    fo.load_dataset(mixed_dataset[0]).clone(name, persistent=True)
    yield name
    if fo.dataset_exists(name):
        fo.load_dataset(name).delete()


def _digests(root: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*.png")}


def _synthetic(project: str, run: str):
    return fo.load_dataset(project).match((F("origin") == "synthetic") & (F("lineage.run") == run))


def _run(capsys, *args: str) -> tuple[int, str]:
    code = cli_main(list(args))
    return code, capsys.readouterr().err


def _keep_rare_train(project: str, keep: int) -> None:
    dataset = fo.load_dataset(project)
    rare = dataset.match((F("split") == "train") & (F("ground_truth.label") == "rare"))
    dataset.delete_samples(rare.sort_by("id").skip(keep))


def test_mixed_sizes_through_config_and_generate(project, mixed_dataset, capsys):
    sources = _digests(mixed_dataset[1])
    before = len(fo.load_dataset(project))
    bbdm = ["generate", project, "--method", "bbdm", "--run", "b", "--n", "3"]
    bbdm += ["--train-steps", "2", "--steps", "3", *BBDM, "--threads", "1"]

    # no size policy: one line saying how to set one, nothing written
    code, err = _run(capsys, *bbdm)
    assert code == 2 and err.count("\n") == 1 and err.startswith("curate: error:")
    assert f"curate config {project} --size N" in err and "different shapes" in err
    for bad, message in [
        (["--size", "4"], "size must lie between 8 and 1024 pixels, got 4"),
        (["--size", "16", "--pad", "sideways"], "unknown padding 'sideways'"),
        (["--pad", "edge"], "--pad edge needs a size: pass --size N or set a size policy"),
    ]:
        code, err = _run(capsys, *bbdm, *bad)
        assert code == 2 and err.count("\n") == 1 and message in err
    assert len(fo.load_dataset(project)) == before
    assert not (media_root(project) / "generate").exists()

    # with a policy: trainable and classic generators take the mixed sizes as they are
    assert _run(capsys, "config", project, "--size", "16")[0] == 0
    code, err = _run(capsys, *bbdm)
    assert code == 0, err
    assert "curate: warning: bbdm trains on only 3 rare-class images" in err
    made = _synthetic(project, "b")
    assert len(made) == 3
    assert {read_image(p).shape for p in made.values("filepath")} == {(16, 16, 1)}
    assert set(made.values("metadata.width")) == {16}
    lineage = made.first().lineage
    assert lineage.params["size"] == 16 and lineage.params["pad"] == "border"
    assert lineage.params["condition"] == "blur:3"  # the 1-channel default, not channel:2
    config, results = load_run(fo.load_dataset(project), "generate", "b")
    assert (config["size"], config["pad"], config["condition"]) == (16, "border", "blur:3.0")
    assert results["warnings"] and "only 3 rare-class images" in results["warnings"][0]

    # a classic method; --size/--pad on the command line override the policy
    code, err = _run(capsys, "generate", project, "--method", "copies", "--run", "c", "--n", "3",
                      "--size", "24", "--pad", "edge")  # fmt: skip
    assert code == 0 and all(line.startswith("generate copies: ") for line in err.splitlines())
    copies = _synthetic(project, "c")
    config, _ = load_run(fo.load_dataset(project), "generate", "c")
    assert (config["size"], config["pad"]) == (24, "edge")
    assert set(copies.values("lineage.params.pad")) == {"edge"}
    for path in copies.values("filepath"):
        image = read_image(path)
        assert image.shape == (24, 24, 1)
        corners = image[[0, 0, -1, -1], [0, -1, 0, -1], 0]
        assert (np.abs(corners.astype(int) - BACKGROUND) <= 2).all()  # padded with background
    assert _digests(mixed_dataset[1]) == sources  # source images are never written


def test_interpolation_adds_no_duplicates(project, capsys):
    assert _run(capsys, "config", project, "--size", "16")[0] == 0
    # 3 rare train images: each mixes with 2 others, so 6 different images at most
    code, err = _run(capsys, "generate", project, "--method", "interpolation", "--run", "i",
                      "--n", "10", "--json")  # fmt: skip
    assert code == 0, err
    assert "interpolation can make only 6 different images" in err
    made = _synthetic(project, "i")
    images = [read_image(p) for p in made.values("filepath")]
    assert len(images) == 6 and len({i.tobytes() for i in images}) == 6
    seeds = sorted(zip(*made.values(["lineage.source_id", "lineage.seed"]), strict=True))
    assert len({s for s, _ in seeds}) == 3  # two seeds per source, two different images each
    _, results = load_run(fo.load_dataset(project), "generate", "i")
    assert results["total"] == 6 and "holds 6 of the 10 asked" in results["warnings"][0]
    # a rerun adds nothing and repeats nothing
    again = generate(project, "interpolation", "i", n=10, progress=False)
    assert again.added == 0 and again.total == 6


def test_one_rare_image_is_refused(project, capsys):
    _keep_rare_train(project, 1)
    assert _run(capsys, "config", project, "--size", "16")[0] == 0
    before = len(fo.load_dataset(project))
    for method in ("bbdm", "cyclegan", "masked_ddpm"):
        code, err = _run(capsys, "generate", project, "--method", method, "--run", method)
        assert code == 2 and err.count("\n") == 1, err
        assert f"{method} needs at least 2 rare-class images to train; the train split has 1" in err
    assert len(fo.load_dataset(project)) == before
    assert not (media_root(project) / "generate").exists()


def test_two_rare_images_train_with_a_stored_warning(project):
    _keep_rare_train(project, 2)
    report = generate(
        project,
        "bbdm",
        "two",
        n=2,
        size=16,
        train_steps=2,
        steps=3,
        params={"preset": "tiny", "num_timesteps": 20, "batch_size": 2},
        num_threads=1,
        progress=False,
    )
    assert report.added == 2 and report.trained_steps == 2
    assert len(report.warnings) == 1 and "only 2 rare-class images" in report.warnings[0]
    assert "heavier augmentation" in report.warnings[0]
    _, results = load_run(fo.load_dataset(project), "generate", "two")
    assert results["warnings"] == report.warnings
    # a condition that does not fit one channel: the error lists those that do
    with pytest.raises(InputError, match="valid for bbdm on 1-channel images: blur:SIGMA, masked"):
        generate(project, "bbdm", "bad", condition="channel:2", size=16, progress=False)
    with pytest.raises(InputError, match="leaves 1-channel images unchanged"):
        generate(project, "bbdm", "bad", condition="grayscale", size=16, progress=False)
