"""How many interpolations, copies and image-to-image samples each filter passes, with the
near-copy gate, on real data (issue 22, part 5).

Per data set (``nine``: the nine-chr21-crop set of ``bench/small_real_data.py``; ``breastmnist``;
``gbanded``: every chr21 crop and a share of the others, as ``bench/real_experiments.py``):
ingest into a private database, train a ResNet-18 on the real train split (one seed, cosine
schedule, augmented, class-weighted), embed, generate interpolations at weight 0.9, exact copies
of real rare train images, and BBDM samples (``cpu`` preset, ``blur:2`` from other-class train
images), embed them, then run every filter that reads embeddings (``combined`` with its level
calibrated on val, the others at their default level). For each filter and generator it prints
how many samples pass with the gate and how many the filter's score alone would pass (same run:
``K_score >= threshold`` and not a duplicate), and the gate's rejections by reason.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_copy_gate.py --data nine breastmnist gbanded
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from curation.private_db import use_private_database  # noqa: E402

FILTERS = ("combined", "umap_gmm", "gmm_full", "knn_precision", "class_posterior", "realism")
GENERATORS = {
    "interp": {"method": "interpolation", "n": 60},
    "copies": {"method": "copies", "n": 30},
    "bbdm": {
        "method": "bbdm",
        "n": 60,
        "condition": "blur:2",
        "source_view": "common-train",
        "train_steps": 300,
        "steps": 20,
        "params": {"preset": "cpu"},
    },
}


def ingest(data: str, name: str, workdir: Path, seed: int) -> str:
    """Ingest data set ``data`` as ``name``; returns a description."""
    import real_experiments
    import small_real_data

    from brain.size_policy import SizePolicy
    from curation.datasets import open_dataset
    from curation.ingest import ingest_csv
    from curation.schema import set_size_policy

    if data == "nine":
        manifest = small_real_data.make_manifest(workdir, seed=seed)
        ingest_csv(manifest, name, rare="21", binary=True, seed=seed)
        set_size_policy(open_dataset(name), SizePolicy(32))
        return "240 G-banded crops of 5 slides, 9 of chr21, 32 px"
    options = argparse.Namespace(other_fraction=0.25, seed=seed, size=32)
    return real_experiments.ingest(data, name, workdir, options)


def gated_counts(dataset, key: str, threshold: float) -> dict[str, dict]:
    """Per generator run: samples, passing, passing by the score alone, the gate's reasons."""
    from curation.names import reason_field, score_field
    from curation.schema import LINEAGE_FIELD

    view = dataset.match({"origin": "synthetic"})
    runs, scores, reasons, duplicates = view.values(
        [f"{LINEAGE_FIELD}.run", score_field(key), reason_field(key), "duplicate_of"]
    )
    runs, reasons = np.array(runs, dtype=object), np.array(reasons, dtype=object)
    by_score = (np.array(scores, dtype=float) >= threshold) & np.array(
        [d is None for d in duplicates]
    )
    counts = {}
    for run in sorted(set(runs)):
        mine = runs == run
        counts[run] = {
            "n": int(mine.sum()),
            "pass": int((reasons[mine] == "pass").sum()),
            "pass_by_score_alone": int(by_score[mine].sum()),
            "reasons": dict(Counter(str(r) for r in reasons[mine])),
        }
    return counts


def run_one(data: str, args: argparse.Namespace) -> dict:
    """Every step on one data set; returns what it measured."""
    from brain.level_choice import Fixed, PassRate
    from brain.settings import TrainSettings
    from curation.datasets import open_dataset
    from curation.runs.embed import compute_embeddings
    from curation.runs.filter import run_filter
    from curation.runs.generate import generate
    from curation.runs.train import train_classifier

    workdir = Path(tempfile.mkdtemp(prefix=f"bench-copy-gate-{data}-"))
    name = f"gate-{data}"
    started = time.perf_counter()
    result: dict = {"data": data, "description": ingest(data, name, workdir, args.seed)}
    settings = TrainSettings(
        epochs=args.epochs, augment=True, schedule="cosine", class_weighted=True, size=32
    )
    train_classifier(name, "emb", settings, num_threads=args.threads, progress=False)
    for run, spec in GENERATORS.items():
        spec = dict(spec)
        method = spec.pop("method")
        report = generate(name, method, run, seed=args.seed, progress=False, **spec)
        result.setdefault("generated", {})[run] = report.as_dict().get("added")
    compute_embeddings(name, "emb", name="emb", progress=False)
    dataset = open_dataset(name)
    result["filters"] = {}
    for method in FILTERS:
        level = PassRate() if method == "combined" else Fixed()
        filtered = run_filter(
            name, method, f"f_{method}", level=level, plots=False, visualize=False
        )
        result["filters"][method] = {
            "level": filtered.level,
            "threshold": filtered.threshold,
            "calibration_fallback": getattr(filtered.calibration, "fallback", None),
            "copies": filtered.copies,
            "by_generator": gated_counts(dataset, f"f_{method}", filtered.threshold),
            "authenticity": {g: s["authenticity"] for g, s in filtered.by_generator.items()},
        }
    result["minutes"] = (time.perf_counter() - started) / 60
    return result


def print_table(result: dict) -> None:
    print(f"\n## {result['data']}: {result['description']} ({result['minutes']:.1f} min)")
    first = next(iter(result["filters"].values()))["copies"]
    print(
        f"gate: SSIM >= {first['ssim']:.3f} or distance <= {first['distance']:.3f} "
        f"({first['chosen']}, {first['n_reference']} real rare train images; their nearest "
        f"neighbours: SSIM p95 {first['real_ssim']:.3f}, distance p5 {first['real_distance']:.3f})"
    )
    print("| filter | generator | n | pass (gate) | pass by score alone | gate rejections |")
    print("|---|---|---|---|---|---|")
    gate_reasons = ("near-copy", "copy-of-source", "copy-of-other-class")
    for method, entry in result["filters"].items():
        for run, c in entry["by_generator"].items():
            gated = ", ".join(f"{r} {c['reasons'][r]}" for r in gate_reasons if r in c["reasons"])
            print(
                f"| {method} | {run} | {c['n']} | {c['pass']} | {c['pass_by_score_alone']} | "
                f"{gated or '-'} |"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["nine", "breastmnist", "gbanded"])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench_copy_gate.json"))
    args = parser.parse_args()
    use_private_database(Path(tempfile.mkdtemp(prefix="bench-copy-gate-db-")))
    results = []
    for data in args.data:
        results.append(run_one(data, args))
        print_table(results[-1])
        args.out.write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
