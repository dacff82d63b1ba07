"""Filter quality on real data: do the filters pass real rare-class crops and reject the rest?

For each data set, some real samples are held out of the project and ingested back as
``--origin synthetic`` candidates, all labelled as the rare class (as generated samples are),
one candidate "generator" per kind:

- ``real-rare``: held-out real rare-class crops (should pass);
- ``real-other``: as many held-out real crops of the other classes (should be rejected);
- ``noise``, ``blur``, ``invert``, ``shuffle``: corrupted copies of the held-out rare crops
  (Gaussian noise of sd 80, Gaussian blur of sd 2 px, inverted grey levels, 8x8 patches
  shuffled; all should be rejected).

A ResNet-18 is trained on the real train split only (``train_classifier``), its penultimate
embeddings of every sample are stored (``compute_embeddings``) and every filter runs twice:
at its default level, and at the level calibrated on the real val split (``PassRate()``:
95% of the real rare val samples pass). Test samples are never used. Reported per filter and
level: AUROC of ``K_score`` (should-pass against should-reject) and the pass rate of every
candidate kind, plus the fidelity scorecard of the real rare candidates and of the noise.

Embeddings compared (``--embeddings``):

- ``binary``: the task's labels, 10 epochs, constant learning rate (the study's recipe at the
  earlier bench's budget);
- ``fine``: the finest labels the data has (all 24 chromosome classes in ``fine_label``),
  cosine learning rate, augmentation (G-banded only);
- ``cosine``: the task's labels, class-weighted, cosine learning rate, augmentation (for data
  without finer labels, e.g. BreastMNIST).

Data (``../shared/data``): G-banded chromosomes (rare class: chromosome 21, or 1, against the
other 23; a quarter of the slide groups held out as candidates; grayscale crops of mixed sizes,
padded with their border colour and resized to ``--size``) and BreastMNIST (rare class:
malignant, label 0; official splits; half of the test split held out as candidates).

    .venv/bin/python bench/bench_filter_quality.py --data gbanded21 --embeddings binary,fine
    .venv/bin/python bench/bench_filter_quality.py --data breastmnist --embeddings binary,cosine
"""

from __future__ import annotations

import argparse
import atexit
import csv
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
KINDS = ("real-rare", "real-other", "noise", "blur", "invert", "shuffle")
CORRUPTIONS = KINDS[2:]
EMBEDDINGS = {
    "binary": {"epochs": 10, "schedule": "constant"},
    "fine": {"schedule": "cosine", "augment": True, "label_field": "fine_label"},
    "cosine": {"schedule": "cosine", "augment": True, "class_weighted": True},
}


def corrupt(image: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """A corrupted copy of a ``uint8`` ``(H, W, C)`` image (see the module docstring)."""
    from scipy.ndimage import gaussian_filter

    image = image.reshape(*image.shape[:2], -1).copy()
    if kind == "noise":
        noisy = image.astype(np.float64) + rng.normal(scale=80.0, size=image.shape)
        return np.clip(noisy, 0, 255).astype(np.uint8)
    if kind == "blur":
        return gaussian_filter(image.astype(np.float64), sigma=(2, 2, 0)).round().astype(np.uint8)
    if kind == "invert":
        return 255 - image
    height, width = image.shape[:2]
    tiles = [
        (y, x) for y in range(0, height - height % 8, 8) for x in range(0, width - width % 8, 8)
    ]
    patches = [image[y : y + 8, x : x + 8].copy() for y, x in tiles]
    for (y, x), index in zip(tiles, rng.permutation(len(tiles)), strict=True):
        image[y : y + 8, x : x + 8] = patches[index]
    return image


def _gbanded(rare_class: str, rng: np.random.Generator, media: Path):
    from brain.images import read_image
    from curation.readers import Record

    root = SHARED / "gbanded_chromosomes"
    with open(root / "labels.csv") as handle:
        rows = list(csv.DictReader(handle))
    groups = sorted({row["group_id"] for row in rows})
    held_groups = set(rng.permutation(groups)[: len(groups) // 4])
    real, rare_held, other_held = [], [], []
    for row in rows:
        fine = row["chrom_class"]
        label = f"chr{rare_class}" if fine == rare_class else "other"
        record = Record(str(root / row["file"]), label, None, row["group_id"], fine=fine)
        if row["group_id"] in held_groups:
            (rare_held if fine == rare_class else other_held).append(record)
        else:
            real.append(record)
    other_held = [other_held[i] for i in rng.permutation(len(other_held))[: len(rare_held)]]
    return f"chr{rare_class}", real, rare_held, other_held, lambda r: read_image(r.filepath), 32


def _breastmnist(rng: np.random.Generator, media: Path):
    from curation.readers import read_npz

    records = read_npz(SHARED / "medmnist" / "breastmnist.npz", media / "real")
    real = [r for r in records if r.split != "test"]
    test = [records[i] for i in rng.permutation(len(records)) if records[i].split == "test"]
    rare_test = [r for r in test if r.label == "0"]
    other_test = [r for r in test if r.label != "0"]
    # half of the test split stays the project's test split, the other half are candidates
    rare_held, other_held = rare_test[::2], other_test[::2][: len(rare_test[::2])]
    real += rare_test[1::2] + other_test[1::2]
    return "0", real, rare_held, other_held, lambda r: r.array, None


LOADERS = {
    "gbanded21": lambda rng, media: _gbanded("21", rng, media),
    "gbanded1": lambda rng, media: _gbanded("1", rng, media),
    "breastmnist": _breastmnist,
}


def _candidates(rare_held, other_held, read, media: Path, rng) -> dict[str, list]:
    """Candidate records per kind (written as PNG, labelled rare later)."""
    from brain.images import write_png
    from curation.readers import Record

    by_kind: dict[str, list] = {kind: [] for kind in KINDS}
    sources = {"real-rare": rare_held, "real-other": other_held}
    sources.update({kind: rare_held for kind in CORRUPTIONS})
    for kind, records in sources.items():
        for i, record in enumerate(records):
            image = read(record)
            if kind in CORRUPTIONS:
                image = corrupt(image, kind, rng)
            path = media / "candidates" / kind / f"{i:05d}.png"
            write_png(image, path)
            by_kind[kind].append(Record(str(path), None))
    return by_kind


def _quality(dataset, key: str) -> dict:
    """AUROC and pass rate per kind of filter run ``key`` (kinds from the lineage run)."""
    import fiftyone as fo

    from brain.filters.quality import filter_quality
    from curation.schema import ORIGIN_FIELD

    synthetic = dataset.match(fo.ViewField(ORIGIN_FIELD) == "synthetic")
    scores, tags, kinds = synthetic.values([f"{key}_score", "tags", "lineage.run"])
    kinds = np.array(kinds)
    passed = np.array([f"{key}:pass" in t for t in tags])
    truth = kinds == "real-rare"
    quality = filter_quality(np.array(scores, dtype=float), truth, passed)
    return {
        "auroc": quality["auroc"],
        "pass": {kind: round(float(passed[kinds == kind].mean()), 3) for kind in KINDS},
    }


def run_dataset(name: str, embeddings: list[str], args: argparse.Namespace, workdir: Path):
    """Build the project once, then per embedding: train, embed, run every filter twice."""
    from brain.filters import FILTERS
    from brain.level_choice import Fixed, PassRate
    from brain.size_policy import SizePolicy
    from curation.datasets import dataset_exists, open_dataset
    from curation.ingest import ingest_records
    from curation.runs.embed import compute_embeddings
    from curation.runs.filter import run_filter
    from curation.runs.records import has_run
    from curation.runs.train import TRAIN, train_classifier
    from curation.schema import set_size_policy

    rng = np.random.default_rng(args.seed)
    media = workdir / name
    rare, real, rare_held, other_held, read, size = LOADERS[name](rng, media)
    project = f"bench-quality-{name}"
    if not dataset_exists(project):  # a kept --workdir reuses the project and its trainings
        ingest_records(real, project, source=name, rare=rare, seed=args.seed)
        for kind, records in _candidates(rare_held, other_held, read, media, rng).items():
            for record in records:
                record.label = rare
            ingest_records(records, project, source=kind, origin="synthetic", append=True)
    if size:  # crops of mixed sizes: padded with their border colour and resized, as
        set_size_policy(open_dataset(project), SizePolicy(size))  # `curate config --size` does
    rows = []
    for embedding in embeddings:
        recipe = {"epochs": args.epochs, **EMBEDDINGS[embedding]}
        started = time.perf_counter()
        if not has_run(open_dataset(project), "embed", embedding):
            train_classifier(
                project,
                embedding,
                size=args.size or size,
                num_threads=args.threads,
                progress=False,
                **recipe,
            )
            compute_embeddings(project, embedding, num_threads=args.threads, progress=False)
        seconds = time.perf_counter() - started
        dataset = open_dataset(project)
        test_auc = TRAIN.load(dataset, embedding)[1].summary["auc"]["mean"]
        variants = [(method, method, {}) for method in FILTERS.names()]
        variants += [
            ("combined", "combined_emb", {"realism": "embedding"}),
            ("combined", "combined_both", {"realism": "both"}),
        ]
        for method, label, params in variants:
            for level in (Fixed(), PassRate()):
                calibrate = isinstance(level, PassRate)
                key = f"{label}_{'val' if calibrate else 'default'}"
                report = run_filter(
                    project,
                    method,
                    key,
                    embed=embedding,
                    level=level,
                    params=params,
                    visualize=False,
                    plots=False,
                    dedupe=False,
                )
                row = {
                    "data": name,
                    "embedding": embedding,
                    "recipe": recipe,
                    "train_seconds": round(seconds),
                    "test_auc": test_auc,
                    "method": label,
                    "params": params,
                    "calibrated": bool(calibrate),
                    "level": report.level,
                    **_quality(dataset, key),
                    "val": report.to_record()["calibration"],
                    "scorecard": {
                        kind: report.scorecard[kind]["all"]
                        for kind in ("real-rare", "noise")
                        if kind in report.scorecard
                    },
                    "reasons": report.reasons,
                }
                rows.append(row)
                print(json.dumps(row, default=str), flush=True)
    return rows


def print_table(rows: list[dict]) -> None:
    """The markdown table of RESULTS.md."""
    head = " | ".join(KINDS)
    print(f"| data | embedding | filter | level | AUROC | passed: {head} |")
    print("|---|---|---|---|---|" + "---|" * len(KINDS))
    for row in rows:
        level = f"{row['level']:.3g}" + (" (val)" if row["calibrated"] else "")
        rates = " | ".join(f"{row['pass'][kind]:.0%}" for kind in KINDS)
        print(
            f"| {row['data']} | {row['embedding']} | {row['method']} | {level} | "
            f"{row['auroc']:.3f} | {rates} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="gbanded21,gbanded1,breastmnist")
    parser.add_argument("--embeddings", default="binary,fine")
    parser.add_argument("--epochs", type=int, default=10, help="epochs of fine / cosine")
    parser.add_argument("--size", type=int, default=None, help="image size for the classifier")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="keep the database, images and trainings here and reuse them on the next run "
        "[default: a temporary folder, deleted]",
    )
    args = parser.parse_args()
    if not SHARED.is_dir():
        sys.exit(f"shared data not found at {SHARED}")
    sys.path.insert(0, str(REPO))
    tmp = args.workdir or Path(tempfile.mkdtemp(prefix="bench-quality-"))
    if args.workdir is None:
        # registered before FiftyOne starts its database, so it runs after the database stops
        atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    os.environ.update(
        FIFTYONE_DO_NOT_TRACK="true",
        FIFTYONE_DATABASE_DIR=str(tmp / "db"),
        FIFTYONE_DEFAULT_DATASET_DIR=str(tmp / "media"),
        FIFTYONE_DATABASE_VALIDATION="false",
    )
    os.environ.setdefault("NUMBA_CACHE_DIR", str(Path.home() / ".cache/synthcurate/numba"))
    rows = []
    for name in args.data.split(","):
        wanted = [e for e in args.embeddings.split(",") if e != "fine" or name != "breastmnist"]
        rows += run_dataset(name, wanted, args, tmp)
    print_table(rows)


if __name__ == "__main__":
    main()
