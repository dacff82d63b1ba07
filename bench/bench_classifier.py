"""Classifier throughput against bare torch loops in the same process.

1. Embedding: the path ``curate embed`` takes (decoded-image cache -> ``uint8`` stack ->
   per-batch normalisation -> penultimate features in inference mode) against a bare loop of
   ``forward_features`` over the same images already normalised in memory, same batch size.
   Target ratio (bare time / our time) >= 0.9.
2. Training: one epoch of :func:`brain.training.train_epoch` (shuffled index batches, per-batch
   normalisation, optional augmentation) against a bare forward/backward/step loop over
   pre-normalised batches of the same size. Target ratio >= 0.8 (augmentation off; with it on is
   reported for information).

Both loops run in back-to-back pairs (which one goes first alternates); a ratio is the median
over pairs of bare time / our time, for wall time and for CPU (process) time. On a shared runner
the CPU-time ratio is the steadier one: with one torch thread it measures the work each loop
does, whatever else the machine is running. A simulated
demo dataset is ingested into a throw-away FiftyOne database.

    .venv/bin/python bench/bench_classifier.py --threads 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from curation.private_db import use_private_database  # noqa: E402


def _race(bare, ours, repeats: int) -> dict:
    """Run both loops in ``repeats`` back-to-back pairs (which runs first alternates); the
    ratio bare / ours is the median over pairs, for wall time and for CPU (process) time."""
    pairs = []
    for index in range(repeats):
        order = (("bare", bare), ("ours", ours))
        timed = {}
        for label, function in order if index % 2 == 0 else order[::-1]:
            wall, cpu = time.perf_counter(), time.process_time()
            function()
            timed[label] = (time.perf_counter() - wall, time.process_time() - cpu)
        pairs.append(timed)

    median = statistics.median
    return {
        "bare_wall_s": median([p["bare"][0] for p in pairs]),
        "ours_wall_s": median([p["ours"][0] for p in pairs]),
        "ratio_wall": median([p["bare"][0] / p["ours"][0] for p in pairs]),
        "ratio_cpu": median([p["bare"][1] / p["ours"][1] for p in pairs]),
        "pairs": len(pairs),
    }


def bench_embedding(name: str, run: str, batch_size: int, repeats: int) -> dict:
    import torch

    from brain.classifier import card_stats
    from brain.data import normalise
    from brain.models import forward_features
    from brain.training import run_network
    from curation.datasets import open_dataset, resolve_view
    from curation.runs.train.predictions import load_classifier, read_for_card

    model, card = load_classifier(name, run)
    dataset = open_dataset(name)
    view = resolve_view(dataset, "all")
    mean, std = card_stats(card, "cpu")
    warm = read_for_card(dataset, view, card)  # fills the decoded-image cache
    inputs = normalise(warm.images, mean, std, device="cpu")
    batches = list(inputs.split(batch_size))

    def ours() -> None:
        images = read_for_card(dataset, view, card)
        run_network(
            model,
            images.images,
            mean=mean,
            std=std,
            device="cpu",
            features=True,
            batch_size=batch_size,
        )

    def bare() -> None:
        model.eval()
        with torch.inference_mode():
            for batch in batches:
                forward_features(model, batch)

    bare()  # warm-up
    ours()
    race = _race(bare, ours, repeats)
    n = len(warm)
    return {
        "images": n,
        "batch_size": batch_size,
        "bare_img_per_s": n / race["bare_wall_s"],
        "ours_img_per_s": n / race["ours_wall_s"],
        **race,
    }


def bench_training(name: str, size: int, batch_size: int, repeats: int, augment: bool) -> dict:
    import torch
    from torch import nn

    from brain.data import channel_stats, normalise
    from brain.models import build_model
    from brain.training import TrainSettings, train_epoch
    from curation.datasets import decode_view, open_dataset, resolve_view

    dataset = open_dataset(name)
    classes = ["normal", "translocation"]
    data = decode_view(resolve_view(dataset, "real-train"), progress=False).to_set(classes, size)
    mean_l, std_l = channel_stats(data.images)
    mean = torch.tensor(mean_l).view(1, -1, 1, 1)
    std = torch.tensor(std_l).view(1, -1, 1, 1)
    settings = TrainSettings(batch_size=batch_size, augment=augment, device="cpu")
    inputs = normalise(data.images, mean, std, device="cpu")
    labels = torch.from_numpy(data.labels)
    batches = list(zip(inputs.split(batch_size), labels.split(batch_size), strict=True))

    def fresh():
        torch.manual_seed(0)
        model = build_model("resnet18", 2, in_channels=3, input_size=(size, size))
        return model, torch.optim.Adam(model.parameters(), lr=1e-3), nn.CrossEntropyLoss()

    def ours() -> None:
        model, optimizer, loss_fn = fresh()
        train_epoch(
            model,
            optimizer,
            loss_fn,
            data,
            mean=mean,
            std=std,
            settings=settings,
            generator=torch.Generator().manual_seed(0),
            progress=False,
        )

    def bare() -> None:
        model, optimizer, loss_fn = fresh()
        model.train()
        for x, y in batches:
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(x), y).backward()
            optimizer.step()

    bare()  # warm-up
    return {
        "images": len(data),
        "batch_size": batch_size,
        "augment": augment,
        **_race(bare, ours, repeats),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--n-labelled", type=int, default=400)
    parser.add_argument("--size", type=int, default=32, help="Network input size (px).")
    parser.add_argument("--embed-batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-classifier-"))
    use_private_database(workdir)

    import torch

    from curation.demo import make_demo_data
    from curation.ingest import ingest_csv, ingest_pool
    from curation.runs.train import train_classifier

    torch.set_num_threads(args.threads)
    layout = make_demo_data(
        workdir / "demo",
        n_labelled=args.n_labelled,
        n_pool=args.n_labelled // 2,
        seed=0,
        prevalence=0.2,
    )
    ingest_csv(layout.labels_csv, "bench", rare="translocation")
    ingest_pool(layout.pool_dir, "bench", append=True)
    train_classifier("bench", "r", epochs=1, subset=64, size=args.size, progress=False)

    results = {
        "threads": args.threads,
        "input_px": args.size,
        "embedding": bench_embedding("bench", "r", args.embed_batch, args.repeats),
        "training": bench_training("bench", args.size, 32, args.repeats, augment=False),
        "training_augmented": bench_training("bench", args.size, 32, args.repeats, augment=True),
    }
    emb, train, aug = results["embedding"], results["training"], results["training_augmented"]
    print(
        f"embedding ({emb['images']} images): {emb['ours_img_per_s']:.1f} img/s vs bare "
        f"{emb['bare_img_per_s']:.1f} img/s -> ratio wall {emb['ratio_wall']:.3f}, "
        f"cpu {emb['ratio_cpu']:.3f} (target >= 0.9)"
    )
    print(
        f"training epoch ({train['images']} images): {train['ours_wall_s']:.2f} s vs bare "
        f"{train['bare_wall_s']:.2f} s -> ratio wall {train['ratio_wall']:.3f}, "
        f"cpu {train['ratio_cpu']:.3f} (target >= 0.8); augmented: wall "
        f"{aug['ratio_wall']:.3f}, cpu {aug['ratio_cpu']:.3f}"
    )
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
