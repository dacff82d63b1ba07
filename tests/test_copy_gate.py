"""The near-copy gate: copies of real images are rejected on their pixels by every filter."""

from __future__ import annotations

from pathlib import Path

import fiftyone as fo
import numpy as np
import pytest

from brain.copies import (
    COPY_OF_OTHER_CLASS,
    COPY_OF_SOURCE,
    NEAR_COPY,
    CopyThresholds,
    Match,
    check_copy_threshold,
    copy_reasons,
    copy_thresholds,
    nearest_real,
)
from brain.errors import InputError
from brain.filters import FILTERS
from brain.images import write_png
from curation.demo import make_crop
from curation.ingest import ingest_records
from curation.readers import Record
from curation.runs.filter import run_filter
from curation.runs.records import store_run
from curation.schema import LABEL_FIELD, ORIGIN_FIELD, SPLIT_FIELD

RARE = "translocation"
FIELD = "emb_copies"
DIM = 8


def _crops(seeds: range, *, rare: bool = True, size: int = 32) -> np.ndarray:
    return np.stack([make_crop(seed, size=size, translocation=rare) for seed in seeds])


def _blend(first: np.ndarray, second: np.ndarray, weight: float = 0.9) -> np.ndarray:
    mixed = weight * first.astype(np.float64) + (1 - weight) * second.astype(np.float64)
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


def test_thresholds_from_real_data_reject_copies_and_pass_held_out_real_images():
    rare = _crops(range(60))
    thresholds = copy_thresholds(rare)
    assert thresholds.chosen == "data" and thresholds.n_reference == 60
    # halfway from how close real rare images come to their nearest neighbour to a copy
    assert thresholds.ssim == pytest.approx((1 + thresholds.real_ssim) / 2)
    assert thresholds.distance == pytest.approx(thresholds.real_distance / 2)
    rng = np.random.default_rng(0)
    first, second = rng.choice(60, size=(2, 40), replace=True)
    second = np.where(second == first, (second + 1) % 60, second)
    blends = _blend(rare[first], rare[second])
    held_out = _crops(range(100, 140))
    for images, share in ((blends, 1.0), (rare[:20], 1.0), (held_out, 0.0)):
        match = nearest_real(images, rare)
        assert thresholds.is_copy(match.ssim, match.distance).mean() == share
    exact = nearest_real(rare[:5], rare)
    assert list(exact.index) == [0, 1, 2, 3, 4] and np.allclose(exact.ssim, 1.0)


def test_thresholds_with_too_few_or_given():
    assert copy_thresholds(_crops(range(2))).chosen == "fallback"
    given = copy_thresholds(_crops(range(10)), ssim=0.97)
    assert given.chosen == "given" and given.ssim == 0.97
    for bad in (0, -0.1, 1.01, float("nan"), "high", True):
        with pytest.raises(InputError, match=r"near-copy SSIM threshold must lie in \(0, 1\]"):
            check_copy_threshold(bad)
    check_copy_threshold(1.0)


def test_reasons_name_the_source_first_then_rare_then_other():
    thresholds = CopyThresholds(ssim=0.9, distance=0.01, chosen="given")

    def match(*ssim):
        return Match(np.array(ssim), np.full(len(ssim), 0.5), np.zeros(len(ssim), int))

    reasons = copy_reasons(
        rare=match(0.95, 0.2, 0.2, 0.95, 0.2),
        other=match(0.95, 0.95, 0.2, 0.2, 0.2),
        source=match(0.2, 0.2, 0.95, 0.95, 0.2),
        source_is_rare=np.array([False, False, False, True, False]),
        thresholds=thresholds,
    )
    assert list(reasons) == [NEAR_COPY, COPY_OF_OTHER_CLASS, COPY_OF_SOURCE, NEAR_COPY, ""]


@pytest.fixture(scope="module")
def copies_dataset(demo_dataset: str, session_dir: Path) -> str:
    """The demo dataset (64 px) plus synthetic samples with lineage: 12 blends at weight 0.9
    of a real rare train image with another, 6 exact copies of real rare train images, 6 blends
    at weight 0.95 of a real common-class train image (their source) with noise, and 12 new
    rare crops; hand-made embeddings (rare around x0 = 0, the rest around x0 = 20, each copy
    beside its source)."""
    name = "copy-gate"
    dataset = fo.load_dataset(demo_dataset).clone(name, persistent=True)
    train = dataset.match({SPLIT_FIELD: "train", ORIGIN_FIELD: "real"})
    rare_train = train.match({f"{LABEL_FIELD}.label": RARE})
    other_train = train.match({f"{LABEL_FIELD}.label": {"$ne": RARE}})
    rare_ids, rare_paths = rare_train.values(["id", "filepath"])
    other_ids, other_paths = other_train.values(["id", "filepath"])
    from brain.decoding import decode_paths

    def load(paths):
        return decode_paths(
            paths,
            paths,
            [None] * len(paths),
            [None] * len(paths),
            [None] * len(paths),
            progress=False,
            desc="t",
        ).arrays

    rng = np.random.default_rng(3)
    folder = session_dir / "copy-gate"
    made = []  # (kind, image, source id)
    rare_images = load(rare_paths)
    for i in range(12):
        j = (i + 1) % len(rare_images)
        made.append(("blend", _blend(rare_images[i], rare_images[j]), rare_ids[i]))
    for i in range(6):
        made.append(("copy", rare_images[i], rare_ids[i]))
    for i, image in enumerate(load(other_paths[:6])):
        noise = rng.integers(0, 256, size=image.shape).astype(np.uint8)
        made.append(("source", _blend(image, noise, 0.95), other_ids[i]))
    for i in range(12):
        made.append(("new", make_crop(5000 + i, size=64, translocation=True), None))
    records = []
    for index, (kind, image, _) in enumerate(made):
        path = folder / f"{kind}_{index}.png"
        write_png(image, path)
        records.append(Record(str(path), RARE))
    ingest_records(records, name, source="test", origin="synthetic", append=True)
    dataset.reload()
    by_path = {
        str(folder / f"{kind}_{i}.png"): (kind, src) for i, (kind, _, src) in enumerate(made)
    }
    synthetic = dataset.match({ORIGIN_FIELD: "synthetic"})
    for sample in synthetic.iter_samples(autosave=True):
        kind, source = by_path[sample.filepath]
        sample["lineage"] = fo.DynamicEmbeddedDocument(source_id=source, run=kind, generator="test")
    vectors = {}
    ids, labels = dataset.values(["id", f"{LABEL_FIELD}.label"])
    for sample_id, label in zip(ids, labels, strict=True):
        centre = 0.0 if label == RARE else 20.0
        vectors[sample_id] = np.r_[centre, np.zeros(DIM - 1)] + rng.normal(size=DIM)
    for sample in synthetic:
        kind, source = by_path[sample.filepath]
        if source is not None:  # a copy sits beside its source in the embedding space
            vectors[sample.id] = vectors[source] + 0.01 * rng.normal(size=DIM)
    dataset.set_values(FIELD, vectors, key_field="id")
    store_run(dataset, "embed", "copies", {"field": FIELD, "train_run": None}, {"dim": DIM})
    return name


@pytest.mark.parametrize("method", sorted(set(FILTERS.names()) - {"confidence"}))
def test_every_filter_rejects_copies_on_their_pixels(copies_dataset, method):
    """``confidence`` reads a classifier's probabilities (a train run) instead of embeddings;
    the gate sits in the filter run, after whichever filter decided."""
    report = run_filter(copies_dataset, method, f"g_{method}", plots=False, visualize=False)
    dataset = fo.load_dataset(copies_dataset)
    synthetic = dataset.match({ORIGIN_FIELD: "synthetic"})
    kinds = np.array(synthetic.values("lineage.run"))
    reasons = np.array(synthetic.values(f"g_{method}_reason"))
    assert set(reasons[kinds == "blend"]) == {NEAR_COPY}
    assert set(reasons[kinds == "copy"]) == {NEAR_COPY}
    assert set(reasons[kinds == "source"]) == {COPY_OF_SOURCE}
    assert not set(reasons[kinds == "new"]) & {NEAR_COPY, COPY_OF_SOURCE, COPY_OF_OTHER_CLASS}
    copy_of = np.array(synthetic.values(f"g_{method}_copy_of"), dtype=object)
    sources = np.array(synthetic.values("lineage.source_id"), dtype=object)
    assert (copy_of[kinds == "copy"] == sources[kinds == "copy"]).all()
    assert (copy_of[kinds == "source"] == sources[kinds == "source"]).all()
    assert report.copies["chosen"] == "data" and report.copies["rejected"] == {
        NEAR_COPY: 18,
        COPY_OF_SOURCE: 6,
    }
    assert report.by_generator["blend"]["n_pass"] == 0
    tags = synthetic.values("tags")
    assert not any(f"g_{method}:pass" in t for t, k in zip(tags, kinds, strict=True) if k != "new")


def test_copy_threshold_is_stored_and_bad_values_change_nothing(copies_dataset, capsys):
    from curation.cli import main
    from curation.runs.records import load_run

    dataset = fo.load_dataset(copies_dataset)
    args = ["filter", copies_dataset, "--method", "gmm_full", "--no-plots", "--no-visualization"]
    capsys.readouterr()
    assert main([*args, "--key", "given", "--copy-ssim", "0.99"]) == 0
    out = capsys.readouterr().out
    assert "near-copy gate: SSIM >= 0.990 or pixel distance <= " in out
    assert "rejected: copy-of-source 6, near-copy 18" in out and "blend: 0 of 12 pass" in out
    config, results = load_run(dataset, "filter", "given")
    assert config["copy_threshold"] == 0.99 and results["copies"]["chosen"] == "given"
    assert results["copies"]["ssim"] == 0.99
    before = dataset.get_field_schema().keys()
    for bad in ("0", "1.5", "-1"):
        assert main([*args, "--key", "bad", "--copy-ssim", bad]) == 2
        assert "near-copy SSIM threshold must lie in (0, 1]" in capsys.readouterr().err
    dataset.reload()
    assert dataset.get_field_schema().keys() == before
