"""Filter quality on real data: do the filters pass real rare-class crops and reject the rest?

For each data set, some real samples are held out of the project and ingested back as
``--origin synthetic`` candidates, all labelled as the rare class (as generated samples are):

- held-out real rare-class crops: should pass;
- held-out real crops of the other classes: should be rejected;
- corrupted copies of the held-out rare crops (8x8 patches shuffled, or strong noise): should be
  rejected.

A ResNet-18 is trained on the real train split (``train_classifier``), its penultimate-layer
embeddings are stored (``compute_embeddings``), and every filter runs at its default level with
its default parameters (``run_filter``). Reported per filter: AUROC of ``K_score`` for
should-pass vs should-reject, and precision / recall of the pass and reject decisions
(:func:`brain.filters.quality.filter_quality`).

Data (``../shared/data``): G-banded chromosomes (rare class: chromosome 1 against the 23
others; split by slide group, a quarter of the groups held out as candidates) and BreastMNIST
(rare class: malignant, label 0; official splits; half of the test split held out as
candidates).

    .venv/bin/python bench/bench_filter_quality.py                  # both, about 10 min
    .venv/bin/python bench/bench_filter_quality.py --data breastmnist --epochs 3
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
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


def corrupt(image: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """A corrupted copy of a ``uint8`` image: ``shuffle`` (8x8 patches) or ``noise``."""
    image = image.copy()
    if kind == "noise":
        noisy = image.astype(np.float64) + rng.normal(scale=80.0, size=image.shape)
        return np.clip(noisy, 0, 255).astype(np.uint8)
    height, width = image.shape[:2]
    tiles = [
        (y, x) for y in range(0, height - height % 8, 8) for x in range(0, width - width % 8, 8)
    ]
    patches = [image[y : y + 8, x : x + 8].copy() for y, x in tiles]
    for (y, x), index in zip(tiles, rng.permutation(len(tiles)), strict=True):
        image[y : y + 8, x : x + 8] = patches[index]
    return image


def _gbanded(rng: np.random.Generator, media: Path):
    from curation.images import read_image
    from curation.readers import Record

    root = SHARED / "gbanded_chromosomes"
    with open(root / "labels.csv") as handle:
        rows = list(csv.DictReader(handle))
    groups = sorted({row["group_id"] for row in rows})
    held_groups = set(rng.permutation(groups)[: len(groups) // 4])
    real, rare_held, other_held = [], [], []
    for row in rows:
        label = "chr1" if row["chrom_class"] == "1" else "other"
        record = Record(str(root / row["file"]), label, None, row["group_id"])
        if row["group_id"] in held_groups:
            (rare_held if label == "chr1" else other_held).append(record)
        else:
            real.append(record)
    other_held = [other_held[i] for i in rng.permutation(len(other_held))[: len(rare_held)]]
    return "chr1", real, rare_held, other_held, lambda r: read_image(r.filepath), 48


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


def _candidates(rare, rare_held, other_held, read, media: Path, rng):
    """Candidate records (all labelled rare) and whether each should pass."""
    from curation.images import write_png
    from curation.readers import Record

    records, should_pass, kinds = [], [], []
    for i, record in enumerate(rare_held + other_held):
        path = media / "candidates" / f"real_{i:05d}.png"
        write_png(read(record), path)
        records.append(Record(str(path), rare))
        should_pass.append(i < len(rare_held))
        kinds.append("real rare" if i < len(rare_held) else "real other")
    for i, record in enumerate(rare_held):
        kind = ("shuffle", "noise")[i % 2]
        path = media / "candidates" / f"corrupt_{i:05d}.png"
        write_png(corrupt(read(record), kind, rng), path)
        records.append(Record(str(path), rare))
        should_pass.append(False)
        kinds.append(f"corrupted ({kind})")
    return records, np.array(should_pass), kinds


def run_dataset(name: str, args: argparse.Namespace, workdir: Path) -> list[dict]:
    """Build the project, train, embed, run every filter; return one quality row per filter."""
    import fiftyone as fo

    from brain.classifier import train_classifier
    from brain.embeddings import compute_embeddings
    from brain.filtering import run_filter
    from brain.filters import FILTERS
    from brain.filters.quality import filter_quality
    from curation.ingest import ingest_records
    from curation.schema import ORIGIN_FIELD

    rng = np.random.default_rng(args.seed)
    media = workdir / name
    loader = {"gbanded": _gbanded, "breastmnist": _breastmnist}[name]
    rare, real, rare_held, other_held, read, size = loader(rng, media)
    candidates, should_pass, kinds = _candidates(rare, rare_held, other_held, read, media, rng)
    project = f"bench-quality-{name}"
    ingest_records(real, project, source=name, rare=rare, overwrite=True, seed=args.seed)
    ingest_records(candidates, project, source="candidates", origin="synthetic", append=True)
    train_classifier(
        project,
        "clf",
        epochs=args.epochs,
        size=args.size or size,
        num_threads=args.threads,
        progress=False,
    )
    compute_embeddings(project, "clf", num_threads=args.threads, progress=False)
    dataset = fo.load_dataset(project)
    synthetic = dataset.match(fo.ViewField(ORIGIN_FIELD) == "synthetic")
    paths = synthetic.values("filepath")
    order = {str(r.filepath): i for i, r in enumerate(candidates)}
    position = np.array([order[p] for p in paths])
    rows = []
    runs = [(method, method, {}) for method in FILTERS.names()]
    runs.append(("umap_gmm", "umap_gmm_placed", {"transform_epochs": 0}))
    for method, key, params in runs:
        report = run_filter(project, method, key, params=params, visualize=False, plots=False)
        scores, tags = synthetic.values([f"{key}_score", "tags"])
        passed = np.array([f"{key}:pass" in t for t in tags])
        truth = should_pass[position]
        quality = filter_quality(np.array(scores, dtype=float), truth, passed)
        by_kind = {
            kind: round(float(passed[np.array(kinds)[position] == kind].mean()), 3)
            for kind in sorted(set(kinds))
        }
        label = method + "".join(f" {k}={v}" for k, v in params.items())
        rows.append(
            {
                "data": name,
                "method": label,
                "level": report["level"],
                **quality,
                "pass_rate_by_kind": by_kind,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    dataset.delete()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=("gbanded", "breastmnist", "both"), default="both")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--size", type=int, default=None, help="image size for the classifier")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not SHARED.is_dir():
        sys.exit(f"shared data not found at {SHARED}")
    sys.path.insert(0, str(REPO))
    tmp = Path(tempfile.mkdtemp(prefix="bench-quality-"))
    # registered before FiftyOne starts its database, so it runs after the database stops
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    os.environ.update(
        FIFTYONE_DO_NOT_TRACK="true",
        FIFTYONE_DATABASE_DIR=str(tmp / "db"),
        FIFTYONE_DEFAULT_DATASET_DIR=str(tmp / "media"),
        FIFTYONE_DATABASE_VALIDATION="false",
    )
    os.environ.setdefault("NUMBA_CACHE_DIR", str(Path.home() / ".cache/synthcurate/numba"))
    names = ("gbanded", "breastmnist") if args.data == "both" else (args.data,)
    rows = [row for name in names for row in run_dataset(name, args, tmp)]
    print("| data | filter | level | AUROC | pass P | pass R | reject P | reject R |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['data']} | {row['method']} | {row['level']:.3g} | {row['auroc']:.3f} | "
            f"{row['pass_precision']:.3f} | {row['pass_recall']:.3f} | "
            f"{row['reject_precision']:.3f} | {row['reject_recall']:.3f} |"
        )


if __name__ == "__main__":
    main()
