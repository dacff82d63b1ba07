"""Real-data sanity check of the classifier protocol on BreastMNIST (28 px, official splits).

Ingests ``../shared/data/medmnist/breastmnist.npz`` into a throw-away FiftyOne database, trains
ResNet-18 (small stem) with the project protocol (Adam 1e-3, batch 32, up to 50 epochs, best
epoch by validation F1 of the rare class) over several seeds and prints test AUC and accuracy
as mean +- std next to the published MedMNIST v2 numbers (AUC 0.901, accuracy 0.863).

    .venv/bin/python bench/breastmnist.py --seeds 3 --epochs 50 --threads 1
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from curation.private_db import use_private_database  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "medmnist" / "breastmnist.npz"
PUBLISHED = {"auc": 0.901, "accuracy": 0.863}
TARGET_AUC = 0.88


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--augment", action="store_true")
    parser.add_argument("--select", choices=["f1", "auc", "loss"], default="f1")
    parser.add_argument("--schedule", choices=["constant", "cosine"], default="constant")
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args()
    if not DATA.is_file():
        print(f"skipped: {DATA} not found", file=sys.stderr)
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="bench-breastmnist-"))
    use_private_database(workdir)

    from brain.metrics import format_summary
    from curation.ingest import ingest_npz
    from curation.runs.train import train_classifier

    ingest_npz(DATA, "breastmnist", class_names=["malignant", "normal_benign"], rare="malignant")
    start = time.perf_counter()
    report = train_classifier(
        "breastmnist",
        "resnet18",
        seeds=args.seeds,
        epochs=args.epochs,
        augment=args.augment,
        select=args.select,
        schedule=args.schedule,
        num_threads=args.threads,
        progress=args.progress,
    )
    minutes = (time.perf_counter() - start) / 60
    for entry in report.per_seed:
        print(
            f"seed {entry['seed']}: auc {entry['auc']:.3f} accuracy {entry['accuracy']:.3f} "
            f"f1(malignant) {entry['f1']:.3f} best epoch {entry['best_epoch']}"
        )
    summary = report.summary
    print(f"summary: {format_summary(summary)}")
    auc, acc = summary["auc"], summary["accuracy"]
    print(
        f"AUC {auc['mean']:.3f} +- {auc['std']:.3f} (published {PUBLISHED['auc']}), "
        f"accuracy {acc['mean']:.3f} +- {acc['std']:.3f} (published {PUBLISHED['accuracy']}); "
        f"target AUC >= {TARGET_AUC}: {'met' if auc['mean'] >= TARGET_AUC else 'NOT met'}; "
        f"{args.seeds} seeds x {args.epochs} epochs in {minutes:.1f} min, {args.threads} thread(s)"
    )
    print(json.dumps({"summary": summary, "minutes": minutes, "args": vars(args)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
