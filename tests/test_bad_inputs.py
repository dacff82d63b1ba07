"""Every documented bad input through the CLI: exit code 2, exactly one line on stderr (no
progress bar, no warning, no traceback), and nothing changed: the project dataset (samples,
fields, tags, runs, saved views, record), the list of datasets and the files on disk."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import fiftyone as fo
import numpy as np
import pytest
import yaml
from conftest import curate_process

from brain.errors import InputError
from brain.images import write_png
from curation.cli import main
from curation.ingest import ingest_dir
from curation.media import media_root
from curation.runs.embed import compute_embeddings
from curation.runs.train import train_classifier

pytestmark = pytest.mark.usefixtures("one_torch_thread")

NAME = "bad-inputs"
NEW = "bad-inputs-new"  # a dataset that a refused ingest must not create
BAD_NAMES = {  # label -> (a refused name, why)
    "empty": ("", "it is empty"),
    "'.'": (".", "'.' names a folder"),
    "'..'": ("..", "'..' names a folder"),
    "of 300 characters": ("r" * 300, "it has 300 characters"),
    "path-like": ("../x", "it is a path"),
}
API_BAD_NAMES = {**BAD_NAMES, "with a backslash": ("a\\b", "it is a path")}


def _write(path: Path, shape: tuple[int, ...], seed: int = 0) -> Path:
    write_png(np.random.default_rng(seed).integers(0, 255, shape, dtype=np.uint8), path)
    return path


def _tree(root: Path, counts: dict[str, int], shape=(16, 16, 3)) -> Path:
    for label, n in counts.items():
        for i in range(n):
            _write(root / label / f"{i}.png", shape, seed=i)
    return root


def _csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows([("filepath", "label"), *rows])
    return path


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    """A project with samples, synthetic samples with filter tags, a train run, an embed run
    and a saved view; and a workspace with the bad inputs."""
    root = tmp_path_factory.mktemp("bad-inputs")
    ingest_dir(_tree(root / "real", {"normal": 24, "rare": 10}), NAME, rare="rare")
    synthetic = _tree(root / "synthetic", {"rare": 6})
    ingest_dir(synthetic, NAME, append=True, origin="synthetic")
    dataset = fo.load_dataset(NAME)
    for i, sample in enumerate(dataset.match({"origin": "synthetic"})):
        sample.tags.append("f1:pass" if i < 3 else "f1:reject")
        sample.save()
    dataset.save_view("mine", dataset.match({"split": "train"}))
    dataset.set_values("one_class", [fo.Classification(label="x") for _ in range(len(dataset))])
    train_classifier(NAME, "base", epochs=1, progress=False, num_threads=1)
    compute_embeddings(NAME, "base", progress=False, num_threads=1)

    images = _tree(root / "pool", {"x": 20})
    _csv(root / "singleton.csv", [(f"pool/x/{i}.png", "normal") for i in range(19)])
    with (root / "singleton.csv").open("a", newline="") as handle:
        csv.writer(handle).writerow(("pool/x/19.png", "Normal"))  # a typo: becomes the rare class
    _csv(
        root / "two-rare.csv",
        [(f"pool/x/{i}.png", "rare" if i < 2 else "normal") for i in range(20)],
    )
    assert images.is_dir()
    tiny = _tree(root / "tiny", {"a": 8, "b": 8})
    _write(tiny / "a" / "1x1.png", (1, 1, 3))
    mixed = _tree(root / "mixed", {"a": 8, "b": 8})
    _write(mixed / "b" / "gray.png", (16, 16))
    corrupt = _tree(root / "corrupt", {"normal": 3, "rare": 3})
    (corrupt / "rare" / "2.png").write_bytes(b"not a png")
    (root / "file.txt").write_text("a file, not a folder")
    (root / "taken").mkdir()
    (root / "taken" / "keep.txt").write_text("mine")
    (root / "unknown-key.yaml").write_text(
        yaml.safe_dump({"dataset": NAME, "name": "x", "colour": "blue"})
    )
    (root / "study.yaml").write_text(yaml.safe_dump({"dataset": NAME, "name": "x"}))
    for label, (value, _) in BAD_NAMES.items():  # a study named as a refused name
        (root / _study(label)).write_text(yaml.safe_dump({"dataset": NAME, "name": value}))
    card = {"method": "copies", "params": {"colour": "blue"}, "image_size": 16, "channels": 3}
    (root / "card").mkdir()
    (root / "card" / "generator.json").write_text(json.dumps(card))
    (root / "junk.db").write_text("not a Milvus Lite store")
    return root


def cases(ws: Path) -> dict[str, tuple[list[str], str]]:
    """Case name -> (arguments, part of the error message)."""
    new = ["--dataset", NEW]
    return {
        # ingest
        "ingest: missing path": (["ingest", "dir", str(ws / "nope"), *new], "path not found"),
        "ingest: corrupt image": (
            ["ingest", "dir", str(ws / "corrupt"), "--dataset", NAME, "--append"],
            "cannot read image",
        ),
        "ingest: a label that occurs once becomes the rare class": (
            ["ingest", "csv", str(ws / "singleton.csv"), *new],
            "rare class 'Normal' (the least frequent label; choose another with --rare) has "
            "train 1, val 0, test 0 real samples",
        ),
        "ingest: a rare class of 2 samples cannot reach train, val and test": (
            ["ingest", "csv", str(ws / "two-rare.csv"), "--rare", "rare", *new],
            "rare class 'rare' has train 1, val 0, test 1 real samples: none in val",
        ),
        "ingest: a 1x1 image among 16 px images": (
            ["ingest", "dir", str(ws / "tiny"), *new],
            "is 1x1 pixels; images need at least 8 a side",
        ),
        "ingest: mixed channel counts": (
            ["ingest", "dir", str(ws / "mixed"), *new],
            "mixed channel counts (16x16x3: 16, 16x16x1: 1)",
        ),
        "ingest: existing name": (["ingest", "dir", str(ws / "tiny"), "--dataset", NAME], "exists"),
        "ingest: --overwrite with --append": (
            ["ingest", "dir", str(ws / "tiny"), *new, "--overwrite", "--append"],
            "exclude each other",
        ),
        "ingest: bad fractions": (
            ["ingest", "dir", str(ws / "tiny"), *new, "--fractions", "0.5,0.5,0.5"],
            "fractions",
        ),
        "ingest: invalid name": (
            ["ingest", "dir", str(ws / "tiny"), "--dataset", "bad name!"],
            "invalid dataset name",
        ),
        # export
        "export: unknown filter key": (
            ["export", NAME, "--filter", "f2", "--out", str(ws / "out")],
            "no filter run 'f2' on dataset 'bad-inputs'; filter keys: f1",
        ),
        "export: unwritable --out": (["export", NAME, "--out", "/proc/1/x"], "cannot create"),
        "export: --out under a file": (
            ["export", NAME, "--out", str(ws / "file.txt" / "sub")],
            "file.txt is not a folder",
        ),
        "export: existing --out": (["export", NAME, "--out", str(ws / "taken")], "--overwrite"),
        "export: unknown view": (
            ["export", NAME, "--view", "nope", "--out", str(ws / "out")],
            "no view 'nope'",
        ),
        "export: --view and --filter": (
            ["export", NAME, "--view", "mine", "--filter", "f1", "--out", str(ws / "out")],
            "not both",
        ),
        # datasets
        "info: unknown dataset": (["info", "nosuch"], "does not exist"),
        "delete: unknown dataset": (["delete", "nosuch", "--yes"], "does not exist"),
        "cleanup: invalid name": (["cleanup", "bad name!"], "invalid dataset name"),
        # classifier, embeddings, similarity
        "train: unknown --with view": (
            ["train", NAME, "--run", "r2", "--epochs", "1", "--with", "nope"],
            "no view 'nope'",
        ),
        "train: --with a view holding val samples": (
            ["train", NAME, "--run", "r2", "--epochs", "1", "--with", "real-val"],
            "val/test samples",
        ),
        "train: invalid run name": (["train", NAME, "--run", "bad name!"], "invalid run name"),
        "embed: unknown train run": (["embed", NAME, "--run", "nope"], "no train run 'nope'"),
        "similar: unknown sample": (["similar", NAME, "nosuchid"], "nosuchid"),
        # filter, generate, experiment, segmentation
        "filter: invalid key": (
            ["filter", NAME, "--method", "umap_gmm", "--key", "9x"],
            "invalid filter key",
        ),
        "filter: unknown embed run": (
            ["filter", NAME, "--method", "umap_gmm", "--key", "f3", "--embed", "nope"],
            "no embed run 'nope'",
        ),
        "filter: level out of range for a probability filter": (
            ["filter", NAME, "--method", "confidence", "--key", "f3", "--level", "2"],
            "level (probability threshold) must lie in [0, 1], got 2.0",
        ),
        "filter: level out of range for an ellipse filter": (
            ["filter", NAME, "--method", "umap_gmm", "--key", "f3", "--level", "1.5"],
            "level must lie strictly between 0 and 1",
        ),
        "filter: calibration target outside (0, 1)": (
            ["filter", NAME, "--key", "f3", "--calibrate", "--target", "1.2"],
            "the calibration --target must lie strictly between 0 and 1, got 1.2",
        ),
        "filter: level and calibration": (
            ["filter", NAME, "--key", "f3", "--calibrate", "--level", "0.5"],
            "give either --level or --calibrate, not both",
        ),
        "filter: retraining and a level": (
            ["filter", NAME, "--key", "f3", "--calibrate", "retrain", "--level", "0.5"],
            "give either --level or --calibrate, not both",
        ),
        "filter: the level as a filter parameter": (
            ["filter", NAME, "--key", "f3", "-p", "level=0.5"],
            "unknown parameter(s) level for filter 'combined' (the level is chosen per run: "
            "--level or a calibration)",
        ),
        "filter: unknown filter parameter": (
            ["filter", NAME, "--key", "f3", "-p", "colour=red"],
            "unknown parameter(s) colour for filter 'combined'",
        ),
        "filter: --param without a value": (
            ["filter", NAME, "--key", "f3", "-p", "colour"],
            "--param takes NAME=VALUE, got 'colour'",
        ),
        "generate: --param without a name": (
            ["generate", NAME, "--method", "interpolation", "--run", "g9", "-p", "=3"],
            "--param takes NAME=VALUE, got '=3'",
        ),
        "train: unknown fine-label field": (
            ["train", NAME, "--run", "fine", "--labels", "nope", "--epochs", "1"],
            "label field 'nope' does not exist",
        ),
        "train: fine-label field with one class": (
            ["train", NAME, "--run", "fine", "--labels", "one_class", "--epochs", "1"],
            "label field 'one_class' holds a single class",
        ),
        "train: more folds than rare groups": (
            ["train", NAME, "--run", "cv", "--cv", "99", "--epochs", "1"],
            "--cv 99",
        ),
        "train: more devices than the machine has": (
            ["train", NAME, "--run", "dp", "--devices", "99", "--epochs", "1"],
            "99 asked for but",
        ),
        "generate: more devices than the machine has": (
            ["generate", NAME, "--method", "copies", "--run", "g", "--n", "2", "--devices", "99"],
            "99 asked for but",
        ),
        "config: size below 8": (["config", NAME, "--size", "4"], "size must lie between 8"),
        "config: size above 1024": (["config", NAME, "--size", "2048"], "size must lie between"),
        "config: unknown padding": (
            ["config", NAME, "--size", "32", "--pad", "black"],
            "unknown padding 'black'",
        ),
        "generate: unknown source view": (
            ["generate", NAME, "--method", "copies", "--run", "g", "--source", "nope", "--n", "2"],
            "no view 'nope'",
        ),
        "experiment: unknown config key": (
            ["experiment", str(ws / "unknown-key.yaml"), "--out", str(ws / "report")],
            "colour",
        ),
        "experiment: missing config": (["experiment", str(ws / "nope.yaml")], "nope.yaml"),
        "experiment: a Ray address that does not answer": (
            ["experiment", str(ws / "study.yaml"), "--address", "ray://127.0.0.1:1"],
            "Ray address 'ray://127.0.0.1:1' does not answer",
        ),
        "segment-score: missing masks": (
            ["segment-score", str(ws / "a.tif"), str(ws / "b.tif")],
            "a.tif",
        ),
        # issue 23: embedding fields, a Milvus Lite file nobody may write, a generator card
        "embed: --field a path": (
            ["embed", NAME, "--run", "base", "--field", "../x"],
            "invalid field name '../x' for --field: it is a path",
        ),
        "embed: --field with a dot": (
            ["embed", NAME, "--run", "base", "--field", "a.b"],
            "invalid field name 'a.b' for --field: use a letter",
        ),
        "embed: --field empty": (
            ["embed", NAME, "--run", "base", "--field", ""],
            "invalid field name '' for --field: it is empty",
        ),
        "embed: --field another run's or the project's field": (
            ["embed", NAME, "--run", "base", "--name", "e2", "--field", "one_class"],
            "--field 'one_class' exists and holds no embeddings of embed run 'e2'",
        ),
        "embed: Milvus Lite in a folder that cannot be written": (
            ["embed", NAME, "--run", "base", "--backend", "milvus", "--url", "/proc/1/m.db"],
            "'/proc/1' is not writable",
        ),
        "embed: a Milvus Lite path holding something else (no stale brain run left)": (
            ["embed", NAME, "--run", "base", "--backend", "milvus", "--url", f"{ws}/junk.db"],
            "similarity backend 'milvus' cannot open ",
        ),
        "generate: a checkpoint card with an unknown parameter": (
            ["generate", NAME, "-m", "copies", "-r", "g", "--n", "2", "--checkpoint", f"{ws}/card"],
            "unknown parameter(s) colour for method 'copies'",
        ),
        **name_cases(ws),
        **out_cases(ws),
        "ingest: an image above --max-pixels": (
            ["ingest", "dir", str(ws / "real"), "--dataset", NEW, "--max-pixels", "100"],
            "is 16x16 pixels (256), above --max-pixels 100",
        ),
    }


def name_cases(ws: Path) -> dict[str, tuple[list[str], str]]:
    """Every refused name (:data:`BAD_NAMES`) for each option that names a run, a filter key, a
    dataset or a study: one line naming the option and why."""
    rows = {}
    for label, (value, reason) in BAD_NAMES.items():
        rows |= {
            f"train: --run {label}": (
                ["train", NAME, "--run", value, "--epochs", "1"],
                f"invalid run name {_shown(value)} for --run: {reason}",
            ),
            f"generate: --run {label}": (
                ["generate", NAME, "--method", "copies", "--run", value, "--n", "2"],
                f"invalid run name {_shown(value)} for --run: {reason}",
            ),
            f"embed: --name {label}": (
                ["embed", NAME, "--run", "base", "--name", value],
                f"invalid run name {_shown(value)} for --name: {reason}",
            ),
            f"filter: --key {label}": (
                ["filter", NAME, "--method", "umap_gmm", "--key", value],
                f"invalid filter key {_shown(value)} for --key: {reason}",
            ),
            f"ingest: --dataset {label}": (
                ["ingest", "dir", str(ws / "tiny"), "--dataset", value],
                f"invalid dataset name {_shown(value)}: {reason}",
            ),
            f"experiment: study name {label}": (
                ["experiment", str(ws / _study(label)), "--out", str(ws / "report")],
                f"invalid experiment name {_shown(value)}: {reason}",
            ),
        }
    return rows


def out_cases(ws: Path) -> dict[str, tuple[list[str], str]]:
    """``--out`` folders that ``export`` and ``experiment`` refuse, ``--overwrite`` or not; and
    a run that another run was built on."""
    media = media_root(NAME)
    study = ["experiment", str(ws / "study.yaml"), "--out"]
    refused = {
        "empty": ("", "--out is empty: name the folder to write"),
        "the current directory": (".", "the current directory: choose another folder"),
        "above the current directory": ("..", "the current directory: choose another folder"),
        "a source folder": (str(ws / "real" / "rare"), "holds images of dataset 'bad-inputs'"),
        "above the source folders": (str(ws), "holds images of dataset 'bad-inputs'"),
        "the media folder": (str(media), f"is the media folder of dataset 'bad-inputs' ({media})"),
        "above the media folder": (str(media.parent), "holds the media folder of dataset"),
        "in the train runs' folder": (
            str(media / "runs" / "x"),
            f"lies in {media / 'runs'}, where the runs of 'bad-inputs' write",
        ),
    }
    replaced = ("empty", "the current directory", "a source folder", "the media folder")
    rows = {}
    for label, (value, message) in refused.items():
        rows[f"export: --out {label}"] = (["export", NAME, "--out", value], message)
        rows[f"experiment: --out {label}"] = ([*study, value], message)
    for label in replaced:  # what --overwrite would rename aside
        value, message = refused[label]
        rows[f"export: --out {label}, --overwrite"] = (
            ["export", NAME, "--out", value, "--overwrite"],
            message,
        )
    rows["runs delete: the train run behind an embed run"] = (
        ["runs", "delete", NAME, "train_base"],
        "train_base is an input of embed_base: delete it first, or pass --with-dependents to "
        "delete them too",
    )
    return rows


def _study(label: str) -> str:
    """The file name of the study config named as :data:`BAD_NAMES` ``label``."""
    return "study-" + "".join(c if c.isalnum() else "-" for c in label) + ".yaml"


def _shown(value: str) -> str:
    """How an error line shows a refused name (a long one cut short)."""
    text = repr(value)
    return text if len(text) <= 42 else f"{text[:30]}...'"


CASES = sorted(cases(Path("/x")))


def _file_tree(*roots: Path) -> dict[str, tuple[int, int]]:
    tree = {}
    for root in roots:
        for path in root.rglob("*"):
            stat = path.lstat()
            tree[str(path)] = (stat.st_size, stat.st_mtime_ns if path.is_file() else 0)
    return tree


def snapshot(name: str, *roots: Path) -> dict:
    """Everything a command could change: every sample with all its fields, the schema, tags,
    runs, brain runs, evaluations, saved views, the project record, the datasets, the files."""
    dataset = fo.load_dataset(name)
    dataset.reload()
    return {
        "samples": sorted(json.dumps(s.to_dict(), sort_keys=True, default=str) for s in dataset),
        "schema": sorted(dataset.get_field_schema(flat=True)),
        "tags": dataset.count_sample_tags(),
        "runs": sorted(dataset.list_runs()),
        "brain_runs": sorted(dataset.list_brain_runs()),
        "evaluations": sorted(dataset.list_evaluations()),
        "views": sorted(dataset.list_saved_views()),
        "info": json.dumps(dataset.info, sort_keys=True, default=str),
        "datasets": sorted(fo.list_datasets()),
        "files": _file_tree(*roots),
    }


def assert_one_error_line(err: str, message: str) -> None:
    """``err`` is exactly one line, the error, with ``message`` in it."""
    assert err.startswith("curate: error: ") and err.endswith("\n"), repr(err)
    assert err.count("\n") == 1 and "\r" not in err, repr(err)
    assert message in err, err


@pytest.mark.parametrize("case", CASES)
def test_bad_input_exits_2_with_one_line_and_changes_nothing(case, ws, capfd):
    args, message = cases(ws)[case]
    media = Path(fo.config.default_dataset_dir)
    before = snapshot(NAME, ws, media)
    capfd.readouterr()
    assert main(args) == 2
    out, err = capfd.readouterr()
    assert_one_error_line(err, message)
    assert out == ""
    assert snapshot(NAME, ws, media) == before


def test_a_real_process_prints_one_line(ws):
    """As a user sees it: no warning, log line or progress bar around the error."""
    args, message = cases(ws)["ingest: a label that occurs once becomes the rare class"]
    process = curate_process(*args)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 2
    assert_one_error_line(err.decode(), message)
    assert out == b""


@pytest.mark.parametrize("label", sorted(API_BAD_NAMES))
def test_every_run_kind_refuses_the_name_and_leaves_the_media_tree(label, ws):
    """Through the Python API: each kind of run refuses the name before it reads or writes
    anything (the media tree, with every run's folder, is as it was)."""
    from curation.experiment import parse_config
    from curation.runs.filter import run_filter
    from curation.runs.generate import generate
    from curation.runs.ssim import compute_max_ssim

    value, reason = API_BAD_NAMES[label]
    media = Path(fo.config.default_dataset_dir)
    before = snapshot(NAME, ws, media)
    kinds = {
        "train": lambda: train_classifier(NAME, value, epochs=1, progress=False),
        "generate": lambda: generate(NAME, "copies", value, n=2, progress=False),
        "embed": lambda: compute_embeddings(NAME, "base", name=value, progress=False),
        "filter": lambda: run_filter(NAME, "umap_gmm", value, plots=False),
        "ssim": lambda: compute_max_ssim(NAME, run=value, progress=False),
        "experiment": lambda: parse_config({"dataset": NAME, "name": value}),
    }
    for kind, make in kinds.items():
        with pytest.raises(InputError) as refused:
            make()
        assert reason in str(refused.value) and "\n" not in str(refused.value), kind
    assert snapshot(NAME, ws, media) == before


class _Terminal(io.StringIO):
    """A text stream that says it is a terminal, so progress bars are drawn into it."""

    def isatty(self) -> bool:
        return True


def _screen(text: str) -> list[str]:
    """The non-blank lines a terminal would show for ``text``: ``\n`` starts the next line,
    ``\r`` returns to its start, ``ESC[A`` moves up a line (what tqdm writes)."""
    rows, row, col, i = [""], 0, 0, 0
    while i < len(text):
        if text.startswith("\x1b[A", i):
            row, i = max(row - 1, 0), i + 3
            continue
        char = text[i]
        if char == "\n":
            row, col = row + 1, 0
            rows += [""] * (row + 1 - len(rows))
        elif char == "\r":
            col = 0
        else:
            line = rows[row].ljust(col)
            rows[row], col = line[:col] + char + line[col + 1 :], col + 1
        i += 1
    return [line.rstrip() for line in rows if line.strip()]


def test_progress_bars_are_erased_before_the_error_on_a_terminal(ws, monkeypatch):
    from tqdm import tqdm

    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    kept = tqdm(total=3, desc="kept bar", leave=True)  # as a bar a command leaves open
    kept.update()
    assert main(["ingest", "dir", str(ws / "corrupt"), "--dataset", NEW]) == 2
    drawn = terminal.getvalue()
    assert "checking images" in drawn and "kept bar" in drawn  # bars were drawn, then erased
    [line] = _screen(drawn)
    assert line.startswith("curate: error: cannot read image")


def test_a_model_card_with_an_unknown_key_is_one_line_and_changes_nothing(ws, capfd):
    from curation.runs.train import TRAIN

    _, results = TRAIN.load(fo.load_dataset(NAME), "base")
    card = Path(results.checkpoints[0]) / "model.json"
    original = card.read_text()
    card.write_text(json.dumps({**json.loads(original), "colour": "blue"}))
    try:
        media = Path(fo.config.default_dataset_dir)
        before = snapshot(NAME, ws, media)
        capfd.readouterr()
        assert main(["embed", NAME, "--run", "base", "--name", "card"]) == 2
        out, err = capfd.readouterr()
        assert_one_error_line(err, f"model card {card} has unknown key(s) colour")
        assert out == ""
        assert snapshot(NAME, ws, media) == before
    finally:
        card.write_text(original)
