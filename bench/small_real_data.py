"""The data users really have, through the CLI: nine rare examples, mixed sizes, grayscale.

A stand-in built from ../shared/data/gbanded_chromosomes: the crops of five slides (groups),
chromosome 21 made rare by keeping only nine of its crops, the other chromosomes as the common
class (240 crops in all, as in the user's set), mixed sizes, one channel, a white background.
Every step is a `curate` command, nothing is reshaped by hand:

1. ``curate ingest csv --binary`` (the chromosome number is kept as ``fine_label``);
2. ``curate config --size 32`` (pad with the border colour, resize);
3. ``curate train --cv 5`` (every rare crop tested once) and ``curate train --labels fine_label``;
4. ``curate embed``, ``curate generate`` (BBDM ``cpu`` preset, ``blur:3``; interpolation);
5. ``curate filter`` (``combined``, level calibrated on val) and ``curate info``;
6. ``curate export``;
7. ``curate experiment`` with ``cv: 5``: the whole study per fold, pooled.

    .venv/bin/python bench/small_real_data.py --out /tmp/small-real   # about an hour, 1 thread
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "gbanded_chromosomes"
NAME = "small-real"


def make_manifest(out: Path, seed: int = 0) -> Path:
    """The 240-crop, 9-rare, 5-slide CSV (paths into ../shared, never copied)."""
    with open(SHARED / "labels.csv") as handle:
        rows = list(csv.DictReader(handle))
    rng = np.random.default_rng(seed)
    by_group: dict[str, list[dict]] = {}
    for row in rows:
        by_group.setdefault(row["group_id"], []).append(row)
    eligible = sorted(g for g, rs in by_group.items() if any(r["chrom_class"] == "21" for r in rs))
    groups = list(rng.choice(eligible, size=5, replace=False))
    rare = [r for g in groups for r in by_group[g] if r["chrom_class"] == "21"]
    # nine rare crops spread over the five slides: at least one per slide
    rare_by_group = {g: [r for r in rare if r["group_id"] == g] for g in groups}
    kept = [rare_by_group[g][0] for g in groups]
    rest = [r for r in rare if r not in kept]
    kept += [rest[i] for i in rng.permutation(len(rest))[: 9 - len(kept)]]
    others = [r for g in groups for r in by_group[g] if r["chrom_class"] != "21"]
    others = [others[i] for i in rng.permutation(len(others))[: 240 - 9]]
    manifest = out / "crops.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["filepath", "label", "group"])
        for row in kept + others:
            writer.writerow([str(SHARED / row["file"]), row["chrom_class"], row["group_id"]])
    return manifest


def curate(*args: str, log) -> str:
    """Run one `curate` command, echo it and its output, and return the output."""
    started = time.perf_counter()
    command = [str(REPO / ".venv" / "bin" / "curate"), *args]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    text = done.stdout + done.stderr
    print(f"$ curate {' '.join(args)}   # exit {done.returncode}, {seconds:.0f} s", file=log)
    print(text.rstrip(), file=log, flush=True)
    if done.returncode != 0:
        raise SystemExit(f"curate {args[0]} failed: {text.strip().splitlines()[-1]}")
    return text


def study_config(out: Path) -> Path:
    config = {
        "dataset": NAME,
        "name": "small",
        "seeds": 2,  # 5 folds x 2 seeds x 10 cells = 100 trainings: about 40 min on one core
        "cv": 5,
        "augment": [True],
        "classifier": {"epochs": 6, "batch_size": 16, "schedule": "cosine", "class_weighted": True},
        "generators": [
            {
                "method": "bbdm",
                "condition": "blur:3",
                "source": "common-train",
                "source_match": "size",
                "n": 40,
                "train_steps": 300,
                "steps": 20,
                "params": {"preset": "cpu"},
            },
            {"method": "interpolation", "n": 40},
        ],
        "filter": {"method": "combined", "calibrate": "val"},
        "ssim": {"threshold": 0.9},
    }
    path = out / "study.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/small-real"))
    args = parser.parse_args()
    if not SHARED.is_dir():
        sys.exit(f"shared data not found at {SHARED}")
    args.out.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(REPO))
    from curation.private_db import use_private_database

    # a mongod of its own (stopped at exit); the `curate` subprocesses inherit its URI
    use_private_database(Path(tempfile.mkdtemp(prefix="small-real-")))
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    manifest = make_manifest(args.out)
    with (args.out / "log.txt").open("w") as log:
        curate("ingest", "csv", str(manifest), "-d", NAME, "--rare", "21", "--binary", log=log)
        curate("config", NAME, "--size", "32", log=log)
        curate(
            "train",
            NAME,
            "--run",
            "cv",
            "--cv",
            "5",
            "--epochs",
            "8",
            "--augment",
            "--schedule",
            "cosine",
            "--class-weighted",
            "--threads",
            "1",
            log=log,
        )
        curate(
            "train",
            NAME,
            "--run",
            "fine",
            "--labels",
            "fine_label",
            "--epochs",
            "8",
            "--augment",
            "--schedule",
            "cosine",
            "--threads",
            "1",
            log=log,
        )
        curate("embed", NAME, "--run", "fine", "--threads", "1", log=log)
        curate(
            "generate",
            NAME,
            "--method",
            "bbdm",
            "--run",
            "bbdm",
            "--condition",
            "blur:3",
            "--source",
            "common-train",
            "--n",
            "40",
            "--train-steps",
            "300",
            "--steps",
            "20",
            "-p",
            "preset=cpu",
            "--threads",
            "1",
            log=log,
        )
        curate(
            "generate", NAME, "--method", "interpolation", "--run", "interp", "--n", "40", log=log
        )
        curate("embed", NAME, "--run", "fine", "--threads", "1", log=log)
        curate("filter", NAME, "--key", "f", "--calibrate", log=log)
        curate("info", NAME, log=log)
        curate(
            "export",
            NAME,
            "--filter",
            "f",
            "--out",
            str(args.out / "export"),
            "--overwrite",
            log=log,
        )
        curate("experiment", str(study_config(args.out)), "--out", str(args.out / "study"), log=log)
    print((args.out / "log.txt").read_text())


if __name__ == "__main__":
    main()
