"""The experiment on real data: G-banded chromosomes (chr21 made the rare class) and BreastMNIST.

Starts a private, throw-away FiftyOne database, ingests the data from ``../shared/data``, runs
:func:`curation.experiment.runner.run_experiment` with ``bench/experiments/<data>.yaml`` and
prints the report up to its figures: verdicts, tables, the paired comparisons of every arm.

G-banded crops have many sizes (16-56 x 18-147 px): they are ingested as they are and the
dataset's size policy (``--size``, border padding) brings them to one square size, as a user's
``curate config --size`` does. To fit the CPU budget a seeded share of the other-class crops is
kept (``--other-fraction``); every chr21 crop is kept. Labels are binary (``21`` / ``other``,
the chromosome number kept as ``fine_label``), split 70/15/15 by slide group.

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


def prepare_gbanded(out: Path, *, other_fraction: float, seed: int) -> tuple[Path, dict[str, int]]:
    """Write a ``labels.csv`` of every chr21 crop and a seeded share of the others (paths into
    ../shared, nothing copied); returns its path and the counts by label."""
    with open(GBANDED / "labels.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    others = [i for i, row in enumerate(rows) if row["chrom_name"] != GBANDED_RARE]
    n_keep = round(other_fraction * len(others))
    keep = {i for i, row in enumerate(rows) if row["chrom_name"] == GBANDED_RARE}
    keep |= {others[i] for i in np.random.default_rng(seed).permutation(len(others))[:n_keep]}
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / "labels.csv"
    with open(manifest, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["file", "chrom_name", "group_id"])
        writer.writeheader()
        for i in sorted(keep):
            row = rows[i]
            writer.writerow(
                {
                    **{k: row[k] for k in ("chrom_name", "group_id")},
                    "file": str(GBANDED / row["file"]),
                }
            )
    rare = sum(rows[i]["chrom_name"] == GBANDED_RARE for i in keep)
    return manifest, {GBANDED_RARE: rare, "other": len(keep) - rare}


def ingest(data: str, dataset: str, workdir: Path, args: argparse.Namespace) -> str:
    """Ingest the real data into project ``dataset``; returns a one-line description."""
    from brain.size_policy import SizePolicy
    from curation.datasets import open_dataset
    from curation.ingest import ingest_csv, ingest_npz
    from curation.schema import set_size_policy

    if data == "breastmnist":
        ingest_npz(
            BREASTMNIST, dataset, class_names=["malignant", "normal_benign"], rare="malignant"
        )
        return f"{BREASTMNIST.name}, official splits, rare = malignant"
    manifest, counts = prepare_gbanded(
        workdir / "gbanded", other_fraction=args.other_fraction, seed=args.seed
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
    # the crops as they are (mixed sizes, grayscale): padded with their border colour and
    # resized by the dataset's size policy, as `curate config --size` does
    set_size_policy(open_dataset(dataset), SizePolicy(args.size))
    return (
        f"G-banded crops, size policy {args.size}px (border padding), {counts} "
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
    parser.add_argument("--size", type=int, default=32, help="G-banded size policy")
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
