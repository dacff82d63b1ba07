"""Speed and agreement of the ``umap_gmm`` filter against plain umap-learn, at the study's scale.

Simulated embeddings shaped like a ResNet's pooled features (non-negative, 512-d): a seeded
Gaussian mixture on an 8-d latent manifold lifted by a random ReLU layer. 18,000 real samples
(8.6% rare class in two sub-clusters weighted 0.7 / 0.3, as in the study's splits) and 31,507
synthetic ones: 78% near the rare class, 12% collapsed onto one normal-class mode, 10% scattered.
The near-rare part comes in two scenarios, both scored by every run:

- ``faithful``: drawn like the real rare class (same spread, same sub-cluster weights);
- ``under``: an under-dispersed generator (spread 0.25 instead of 0.5, 90% on the main mode).

Timed runs, each in a fresh Python process (the way ``curate filter`` runs; numba's disk cache is
warmed first by a small untimed run, imports stay outside the timings):

- baseline: plain umap-learn (defaults, ``random_state`` set) ``fit`` on the real embeddings +
  ``transform`` of the synthetic ones, then the same mixture procedure (2 components, heaviest,
  level = its weight, < 0.1 s), giving the reference decisions;
- filter: ``UmapGmmFilter()`` with its defaults, ``fit`` + ``score_samples`` + ``decide``;
- noise floor (``--noise-floor``): the baseline again with the next seed. UMAP layouts depend on
  the seed, so this says how reproducible the reference decisions are in the first place.

Printed: times, their ratio (on the ``faithful`` set), and for each scenario the fraction of
synthetic samples with the same pass/reject decision. Targets: ratio >= 4, agreement >= 95%.

    .venv/bin/python bench/bench_umap_filter.py --noise-floor      # the recorded run
    .venv/bin/python bench/bench_umap_filter.py --scale 0.2         # quick run
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
N_REAL, N_SYNTHETIC, DIM, LATENT = 18000, 31507, 512, 8
RARE_FRACTION = 0.086
SCENARIOS = {"faithful": (0.5, (0.7, 0.3)), "under": (0.25, (0.9, 0.1))}


def simulate_embeddings(
    n_real: int, n_synthetic: int, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Real embeddings, their rare-class mask, and synthetic embeddings per scenario."""
    rng = np.random.default_rng(seed)
    lift = rng.normal(size=(LATENT, DIM)) / np.sqrt(LATENT)
    bias = rng.normal(scale=0.3, size=DIM)

    def embed(latent: np.ndarray) -> np.ndarray:
        noise = rng.normal(scale=0.15, size=(len(latent), DIM))
        return np.maximum(latent @ lift + bias + noise, 0.0).astype(np.float32)

    def draw(means: np.ndarray, weights, n: int, spread: float) -> np.ndarray:
        component = rng.choice(len(means), size=n, p=list(weights))
        return means[component] + rng.normal(scale=spread, size=(n, LATENT))

    normal_means = rng.normal(scale=2.0, size=(3, LATENT))
    rare_means = rng.normal(scale=2.0, size=(2, LATENT))
    rare_means[1] = rare_means[0] + rng.normal(scale=0.8, size=LATENT)
    n_rare = round(n_real * RARE_FRACTION)
    latent = np.concatenate(
        [
            draw(normal_means, (0.4, 0.35, 0.25), n_real - n_rare, 0.6),
            draw(rare_means, (0.7, 0.3), n_rare, 0.5),
        ]
    )
    rare = np.r_[np.zeros(n_real - n_rare, bool), np.ones(n_rare, bool)]
    order = rng.permutation(n_real)
    real = embed(latent)[order]
    n_near, n_collapsed = int(0.78 * n_synthetic), int(0.12 * n_synthetic)
    n_scattered = n_synthetic - n_near - n_collapsed
    synthetic = {}
    for name, (spread, weights) in SCENARIOS.items():
        synthetic[name] = embed(
            np.concatenate(
                [
                    draw(rare_means, weights, n_near, spread),
                    draw(normal_means[1:2], (1.0,), n_collapsed, 0.4),
                    draw(np.vstack([rare_means, normal_means]), (0.2,) * 5, n_scattered, 1.5),
                ]
            )
        )
    return real, rare[order], synthetic


def _worker(kind: str, data: Path, out: Path, seed: int, params: dict) -> None:
    """Fit and decide in this process; write decisions and seconds to ``out``."""
    arrays = np.load(data)
    sys.path.insert(0, str(REPO))
    from brain.filters import (
        UmapGmmFilter,
        fastumap,  # noqa: F401  (import outside the timing)
    )

    if kind == "baseline":
        import umap  # noqa: F401

        params = {"backend": "umap-learn", "pca_components": None, "n_epochs": None}
    start = time.perf_counter()
    flt = UmapGmmFilter(random_state=seed, **params).fit(arrays["real"], arrays["rare"])
    fitted = time.perf_counter()
    decisions = {"faithful": flt.decide(arrays["faithful"])}
    seconds = time.perf_counter() - start
    decisions["under"] = flt.decide(arrays["under"])
    np.savez(
        out,
        seconds=seconds,
        fit_seconds=fitted - start,
        level=flt.resolve_level(),
        **{f"decisions_{name}": value for name, value in decisions.items()},
    )


def _run_worker(
    kind: str, data: Path, out: Path, seed: int, params: list[str]
) -> dict[str, np.ndarray]:
    command = [sys.executable, __file__, "--worker", kind, "--data", str(data), "--out", str(out)]
    extra = [arg for pair in params for arg in ("--param", pair)]
    subprocess.run([*command, "--seed", str(seed), *extra], check=True)
    result = np.load(out)
    return {key: result[key] for key in result.files}


def _save_data(path: Path, n_real: int, n_synthetic: int, seed: int) -> np.ndarray:
    real, rare, synthetic = simulate_embeddings(n_real, n_synthetic, seed=seed)
    np.savez(path, real=real, rare=rare, **synthetic)
    return rare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the study's size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise-floor", action="store_true", help="also run plain UMAP, seed+1")
    parser.add_argument("--no-warmup", action="store_true", help="skip the numba cache warm-up")
    parser.add_argument(
        "--param", action="append", default=[], help="filter parameter NAME=VALUE (JSON value)"
    )
    parser.add_argument("--worker", choices=("baseline", "filter"), help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        params = {k: json.loads(v) for k, _, v in (p.partition("=") for p in args.param)}
        _worker(args.worker, args.data, args.out, args.seed, params)
        return
    os.environ.setdefault("NUMBA_CACHE_DIR", str(Path.home() / ".cache/synthcurate/numba"))
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    n_real, n_synthetic = round(N_REAL * args.scale), round(N_SYNTHETIC * args.scale)
    with tempfile.TemporaryDirectory(prefix="bench-umap-") as tmp:
        folder = Path(tmp)
        if not args.no_warmup:
            _save_data(folder / "warm.npz", 5000, 2000, args.seed + 1)
            for kind in ("baseline", "filter"):
                _run_worker(
                    kind, folder / "warm.npz", folder / "warm_out.npz", args.seed, args.param
                )
        data = folder / "data.npz"
        rare = _save_data(data, n_real, n_synthetic, args.seed)
        runs = {
            "baseline": _run_worker("baseline", data, folder / "b.npz", args.seed, []),
            "filter": _run_worker("filter", data, folder / "f.npz", args.seed, args.param),
        }
        if args.noise_floor:
            runs["baseline_next_seed"] = _run_worker(
                "baseline", data, folder / "n.npz", args.seed + 1, []
            )
    base, fast = runs["baseline"], runs["filter"]
    report: dict[str, object] = {
        "n_real": n_real,
        "n_rare": int(rare.sum()),
        "n_synthetic": n_synthetic,
        "filter_params": args.param,
        "seconds": {name: round(float(run["seconds"]), 2) for name, run in runs.items()},
        "fit_seconds": {name: round(float(run["fit_seconds"]), 2) for name, run in runs.items()},
        "ratio": round(float(base["seconds"] / fast["seconds"]), 2),
        "level": {name: round(float(run["level"]), 4) for name, run in runs.items()},
    }
    for scenario in SCENARIOS:
        key = f"decisions_{scenario}"
        report[scenario] = {
            "pass_rate": {name: round(float(run[key].mean()), 4) for name, run in runs.items()},
            "agreement_with_baseline": {
                name: round(float((run[key] == base[key]).mean()), 4)
                for name, run in runs.items()
                if name != "baseline"
            },
        }
    print(json.dumps(report))
    print(
        f"plain umap-learn + GMM {base['seconds']:.1f} s, umap_gmm filter {fast['seconds']:.1f} s:"
        f" {report['ratio']}x faster (target 4x)"
    )
    for scenario in SCENARIOS:
        agreement = report[scenario]["agreement_with_baseline"]  # type: ignore[index]
        floor = agreement.get("baseline_next_seed")
        floor_text = f"; plain UMAP with the next seed: {100 * floor:.2f}%" if floor else ""
        print(
            f"{scenario}: filter and baseline decide alike on {100 * agreement['filter']:.2f}%"
            f" of {n_synthetic} synthetic samples (target 95%){floor_text}"
        )


if __name__ == "__main__":
    main()
