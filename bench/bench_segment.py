"""Segmentation benchmark: naive Otsu + watershed vs the classical method (and Cellpose if cached).

Scores matched F1 / AP at IoU 0.5 and the mean AP over IoU 0.5:0.95 on
- the real nuclei image with 125 ground-truth instances (../shared/data/nuclei), and
- simulated metaphase spreads (curation.demo_spreads, blue = DAPI channel).
Also times each method per image and prints the ratio against the naive baseline.

Run:  .venv/bin/python bench/bench_segment.py [--spreads 12] [--seed 7]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from brain.images import read_array, read_image
from brain.segment import CLASSICAL, make_segmenter
from brain.segment.base import select_plane
from brain.segment.cellpose_backend import CPSAM, weights_available
from brain.segment.classical import naive_watershed
from brain.segment.scoring import score_instances

NUCLEI = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "nuclei"


def _cases(spreads_dir: Path) -> dict[str, list[tuple[np.ndarray, np.ndarray, int]]]:
    cases: dict[str, list[tuple[np.ndarray, np.ndarray, int]]] = {}
    if (NUCLEI / "img2d.tif").is_file():
        image = read_array(NUCLEI / "img2d.tif")
        cases["nuclei (real, 125 instances)"] = [
            (image, read_array(NUCLEI / "mask2d.tif")[..., 0], 0)
        ]
    else:
        print(f"skipping nuclei: {NUCLEI} not found")
    spreads = []
    for path in sorted(spreads_dir.glob("spread_*[0-9].png")):
        mask = read_array(path.with_name(path.stem + "_mask.tif"))[..., 0]
        spreads.append((read_image(path), mask, 2))
    cases[f"simulated spreads ({len(spreads)} images)"] = spreads
    return cases


def _run(method: Callable[[np.ndarray, int], np.ndarray], images) -> dict[str, float]:
    f1, ap, mean_ap, seconds, n_true = [], [], [], 0.0, 0
    tp = fp = fn = 0
    for image, truth, channel in images:
        start = time.perf_counter()
        labels = method(image, channel)
        seconds += time.perf_counter() - start
        scores = score_instances(labels, truth)
        at50 = scores.at(0.5)
        tp, fp, fn = tp + at50.tp, fp + at50.fp, fn + at50.fn
        f1.append(at50.f1)
        ap.append(at50.average_precision)
        mean_ap.append(scores.mean_ap)
        n_true += scores.n_true
    return {
        "f1": 2 * tp / max(2 * tp + fp + fn, 1),  # pooled over images
        "ap": tp / max(tp + fp + fn, 1),
        "mean_f1": float(np.mean(f1)),
        "map": float(np.mean(mean_ap)),
        "seconds": seconds / len(images),
        "n_true": n_true,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spreads", type=int, default=12, help="number of simulated spreads")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    from curation.demo_spreads import make_spreads

    methods: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
        "naive (Otsu + distance watershed)": lambda im, ch: naive_watershed(select_plane(im, ch)),
        CLASSICAL: lambda im, ch: make_segmenter(CLASSICAL).segment(im, ch),
    }
    if weights_available(CPSAM):
        cellpose = make_segmenter(CPSAM)
        methods["cellpose (cpsam)"] = lambda im, ch: cellpose.segment(im, ch)
    else:
        print("Cellpose weights not cached: Cellpose row skipped")

    with tempfile.TemporaryDirectory() as tmp:
        make_spreads(Path(tmp) / "spreads", n=args.spreads, seed=args.seed)
        cases = _cases(Path(tmp) / "spreads")
        print("| data | method | F1@0.5 | AP@0.5 | mAP@0.5:0.95 | s / image | time vs naive |")
        print("|---|---|---|---|---|---|---|")
        for data, images in cases.items():
            baseline = None
            for name, method in methods.items():
                result = _run(method, images)
                baseline = baseline or result["seconds"]
                print(
                    f"| {data} | {name} | {result['f1']:.3f} | {result['ap']:.3f} | "
                    f"{result['map']:.3f} | {result['seconds']:.2f} | "
                    f"{result['seconds'] / baseline:.1f}x |"
                )


if __name__ == "__main__":
    main()
