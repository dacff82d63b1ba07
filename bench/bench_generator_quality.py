"""Sanity of generator quality on the simulated FISH demo data.

The share of synthetic samples that a classifier trained on the real train split calls
translocations (rare-class probability >= 0.5): BBDM from the DAPI pool, CycleGAN from the DAPI
pool, and copies of the pool images labelled as translocations (the floor: DAPI alone carries no
paint). The share of real test translocations it recognises (its recall) is the ceiling.
Everything runs in a temporary FiftyOne database and folder (printed at the end).

    .venv/bin/python bench/bench_generator_quality.py [--threads 1] [--bbdm-steps 600] ...
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

TMP = Path(tempfile.mkdtemp(prefix="synthcurate-bench-quality-"))
os.environ.update(
    FIFTYONE_DO_NOT_TRACK="true",
    FIFTYONE_DATABASE_DIR=str(TMP / "db"),
    FIFTYONE_DEFAULT_DATASET_DIR=str(TMP / "media"),
    FIFTYONE_DATABASE_VALIDATION="false",
    HF_HUB_OFFLINE="1",
    MPLBACKEND="Agg",
)

import fiftyone as fo  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from fiftyone import ViewField as F  # noqa: E402

from curation.datasets import save_view  # noqa: E402
from curation.demo import make_demo_data  # noqa: E402
from curation.ingest import ingest_records  # noqa: E402
from curation.readers import read_csv, read_pool  # noqa: E402
from curation.runs.generate import generate  # noqa: E402
from curation.runs.train import train_classifier  # noqa: E402
from curation.runs.train.predictions import predict_proba  # noqa: E402

NAME = "bench-generators"


def share_called_rare(view_name: str, threads: int) -> tuple[float, int]:
    _, proba = predict_proba(NAME, "real", view_name, num_threads=threads)
    return float((np.asarray(proba) >= 0.5).mean()), len(proba)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--labelled", type=int, default=1000)
    parser.add_argument("--pool", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--bbdm-steps", type=int, default=600)
    parser.add_argument("--bbdm-lr", type=float, default=2e-4)
    parser.add_argument("--sample-steps", type=int, default=50)
    parser.add_argument("--cyclegan-steps", type=int, default=600)
    parser.add_argument("--cyclegan-ngf", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s); {vars(args)}")

    demo = make_demo_data(TMP / "demo", n_labelled=args.labelled, n_pool=args.pool, seed=0)
    ingest_records(read_csv(demo.labels_csv), NAME, source="bench", rare="translocation")
    ingest_records(read_pool(demo.pool_dir), NAME, source="bench", append=True)
    dataset = fo.load_dataset(NAME)
    rare_train = dataset.match(
        (F("split") == "train") & (F("ground_truth.label") == "translocation")
    )
    print(f"{len(dataset)} samples, {len(rare_train)} rare train, {args.pool} pool")

    started = time.perf_counter()
    train_classifier(NAME, "real", epochs=args.epochs, num_threads=args.threads, progress=False)
    print(f"classifier: {time.perf_counter() - started:.0f} s")
    save_view(
        dataset,
        "rare_test",
        dataset.match((F("split") == "test") & (F("ground_truth.label") == "translocation")),
    )
    rows = [
        (
            "real test translocations (recall, ceiling)",
            *share_called_rare("rare_test", args.threads),
            "-",
        )
    ]

    runs = {
        "bbdm": {
            "train_steps": args.bbdm_steps,
            "steps": args.sample_steps,
            "params": {"preset": "cpu", "lr": args.bbdm_lr},
        },
        "cyclegan": {
            "train_steps": args.cyclegan_steps,
            "params": {"ngf": args.cyclegan_ngf, "ndf": args.cyclegan_ngf},
        },
        "copies": {"source_view": "pool"},
    }
    for method, options in runs.items():
        started = time.perf_counter()
        report = generate(NAME, method, method, n=args.pool, progress=False, **options)
        seconds = time.perf_counter() - started
        view = dataset.match((F("origin") == "synthetic") & (F("lineage.run") == method))
        save_view(dataset, f"syn_{method}", view)
        share, count = share_called_rare(f"syn_{method}", args.threads)
        label = {"copies": "copies of DAPI pool images (floor)"}.get(
            method, f"{method} from DAPI pool"
        )
        rows.append((label, share, count, f"{seconds:.0f} s ({report.trained_steps} steps)"))

    print("\n| samples | called translocation | n | time (train + generate) |")
    print("|---|---|---|---|")
    for label, share, count, seconds in rows:
        print(f"| {label} | {share:.1%} | {count} | {seconds} |")
    print(f"\nfiles: {TMP}")


if __name__ == "__main__":
    main()
