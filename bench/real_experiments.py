"""The experiment on real data: G-banded chromosomes (chr21 made the rare class) and BreastMNIST.

Starts a private, throw-away FiftyOne database, ingests the data from ``../shared/data``, runs
:func:`curation.experiment.runner.run_experiment` with ``bench/experiments/<data>.yaml`` and
prints the report up to its figures: verdicts, tables, the paired comparisons of every arm.

G-banded crops have many sizes (16-56 x 18-147 px) and generators need one square size, so
32 x 32 copies are written to a temporary folder first (:func:`square_copy`: each crop centred
on a white ``canvas`` square at its own scale, crops larger than the canvas shrunk to fit, then
the canvas resized to ``size``; relative sizes of the small chromosomes are kept). To fit the
CPU budget a seeded share of the other-class crops is kept (``--other-fraction``); every chr21
crop is kept. Labels are binary (``21`` / ``other``), split 70/15/15 by slide group.

    OMP_NUM_THREADS=1 .venv/bin/python bench/real_experiments.py --data breastmnist
    OMP_NUM_THREADS=1 .venv/bin/python bench/real_experiments.py --data gbanded --quick
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from curation.private_db import use_private_database  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
GBANDED = SHARED / "gbanded_chromosomes"
BREASTMNIST = SHARED / "medmnist" / "breastmnist.npz"
CONFIGS = {
    name: REPO / "bench" / "experiments" / f"{name}.yaml" for name in ("gbanded", "breastmnist")
}
GBANDED_RARE = "21"
WHITE = 255


def square_copy(image: np.ndarray, canvas: int, size: int) -> np.ndarray:
    """A ``(H, W, C)`` ``uint8`` crop centred on a white ``canvas`` square (shrunk to fit when
    larger, aspect kept), resized to ``size x size``."""
    from PIL import Image

    height, width, channels = image.shape
    scale = min(1.0, canvas / max(height, width))
    if scale < 1.0:
        new = (max(1, round(width * scale)), max(1, round(height * scale)))
        planes = [
            np.asarray(Image.fromarray(image[..., c]).resize(new, Image.Resampling.LANCZOS))
            for c in range(channels)
        ]
        image = np.stack(planes, axis=-1)
        height, width = image.shape[:2]
    square = np.full((canvas, canvas, channels), WHITE, dtype=np.uint8)
    top, left = (canvas - height) // 2, (canvas - width) // 2
    square[top : top + height, left : left + width] = image
    planes = [
        np.asarray(Image.fromarray(square[..., c]).resize((size, size), Image.Resampling.LANCZOS))
        for c in range(channels)
    ]
    return np.stack(planes, axis=-1)


def prepare_gbanded(
    out: Path, *, canvas: int, size: int, other_fraction: float, seed: int
) -> tuple[Path, dict[str, int]]:
    """Write square copies of the chr21 crops and a seeded share of the others, and a
    ``labels.csv`` beside them; returns its path and the counts by label."""
    from curation.images import read_image, write_png

    with open(GBANDED / "labels.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    others = [i for i, row in enumerate(rows) if row["chrom_name"] != GBANDED_RARE]
    n_keep = round(other_fraction * len(others))
    keep = {i for i, row in enumerate(rows) if row["chrom_name"] == GBANDED_RARE}
    keep |= {others[i] for i in np.random.default_rng(seed).permutation(len(others))[:n_keep]}
    kept = []
    for i in sorted(keep):
        row = rows[i]
        copy = square_copy(read_image(GBANDED / row["file"]), canvas, size)
        write_png(copy, out / row["file"])
        kept.append({k: row[k] for k in ("file", "chrom_name", "group_id")})
    manifest = out / "labels.csv"
    with open(manifest, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["file", "chrom_name", "group_id"])
        writer.writeheader()
        writer.writerows(kept)
    rare = sum(row["chrom_name"] == GBANDED_RARE for row in kept)
    return manifest, {GBANDED_RARE: rare, "other": len(kept) - rare}


def ingest(data: str, dataset: str, workdir: Path, args: argparse.Namespace) -> str:
    """Ingest the real data into project ``dataset``; returns a one-line description."""
    from curation.ingest import ingest_csv, ingest_npz

    if data == "breastmnist":
        ingest_npz(
            BREASTMNIST, dataset, class_names=["malignant", "normal_benign"], rare="malignant"
        )
        return f"{BREASTMNIST.name}, official splits, rare = malignant"
    manifest, counts = prepare_gbanded(
        workdir / "gbanded_copies",
        canvas=args.canvas,
        size=args.size,
        other_fraction=args.other_fraction,
        seed=args.seed,
    )
    ingest_csv(
        manifest,
        dataset,
        path_column="file",
        label_column="chrom_name",
        group_column="group_id",
        rare=GBANDED_RARE,
        binary=True,
        seed=args.seed,
    )
    return (
        f"G-banded copies {args.size}px (canvas {args.canvas}), {counts} "
        f"(other fraction {args.other_fraction}), grouped 70/15/15 split seed {args.seed}"
    )


def scale_down(config) -> None:
    """The ``--quick`` smoke-test scale: 2 seeds, 1 epoch, a few tiny generator runs."""
    config.seeds = 2
    config.classifier.epochs = 1
    for generator in config.generators:
        generator.n = 16
        if generator.train_steps is not None:
            generator.train_steps = 10
        if generator.steps is not None:
            generator.steps = 3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=sorted(CONFIGS), required=True)
    parser.add_argument("--config", type=Path, help="another experiment YAML")
    parser.add_argument("--quick", action="store_true", help="smoke-test scale")
    parser.add_argument("--out", type=Path, help="report folder (default: a temporary folder)")
    parser.add_argument("--size", type=int, default=32, help="G-banded copy size")
    parser.add_argument("--canvas", type=int, default=48, help="G-banded canvas before resizing")
    parser.add_argument("--other-fraction", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=0, help="subsampling and split seed")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    source = BREASTMNIST if args.data == "breastmnist" else GBANDED
    if not source.exists():
        print(f"skipped: {source} not found", file=sys.stderr)
        return 0

    workdir = Path(tempfile.mkdtemp(prefix=f"real-{args.data}-"))
    use_private_database(workdir)
    import torch

    torch.set_num_threads(args.threads)
    from curation.experiment.config import load_config
    from curation.experiment.runner import run_experiment

    config = load_config(args.config or CONFIGS[args.data])
    if args.quick:
        scale_down(config)
    out = args.out or Path(tempfile.mkdtemp(prefix=f"report-{args.data}-"))
    started = time.perf_counter()

    def echo(message: str) -> None:
        print(f"[{time.perf_counter() - started:7.1f}s] {message}", flush=True)

    echo(f"ingest: {ingest(args.data, config.dataset, workdir, args)}")
    results = run_experiment(config, out=out, echo=echo, progress=False)
    minutes = (time.perf_counter() - started) / 60
    print(Path(results["report"]).read_text().split("\n## Figures")[0])
    print(f"\n{minutes:.1f} min in all; report and figures in {out}")
    print(json.dumps({"generation": results["generation"], "filter": results["filter"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
