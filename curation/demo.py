"""Built-in demo data: a SIMULATED FISH chromosome crop set (no real patient data).

Each crop is RGB, 64 x 64: blue is a DAPI-stained chromosome (an elongated, banded shape with a
centromere constriction, randomly rotated), red and green are chromosome paints (yellow = both).
A normal crop carries one paint colour along the whole chromosome; a translocation carries two
colours split along the chromosome's axis. Crops come in groups ("metaphases") for leak-free
splits. The unannotated pool holds DAPI-only crops, the input of the generators.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brain.images import write_png
from brain.progress import progress_bar
from curation.errors import CurateError

NORMAL, TRANSLOCATION = "normal", "translocation"
PAINTS = {"red": (1.0, 0.0), "green": (0.0, 1.0), "yellow": (1.0, 1.0)}  # (red, green) weights
CROPS_PER_GROUP = 40


@dataclass(frozen=True)
class DemoLayout:
    """Where :func:`make_demo_data` put things."""

    root: Path
    labels_csv: Path
    pool_dir: Path
    n_labelled: int
    n_pool: int
    n_translocations: int


def _chromosome(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A banded chromosome: DAPI intensity in [0, 1], its mask and the position along its axis."""
    length = rng.uniform(0.35, 0.8) * size
    half_width = rng.uniform(3.0, 5.0)
    angle = rng.uniform(0, np.pi)
    centre = size / 2 + rng.uniform(-3, 3, size=2)
    centromere = rng.uniform(0.25, 0.6)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    dx, dy = xx - centre[0], yy - centre[1]
    along = dx * np.cos(angle) + dy * np.sin(angle)  # coordinate along the axis
    across = -dx * np.sin(angle) + dy * np.cos(angle)
    t = along / length + 0.5  # 0..1 from one end to the other
    constriction = 1.0 - 0.35 * np.exp(-(((t - centromere) / 0.05) ** 2))
    width = half_width * constriction * np.sqrt(np.clip(1 - (2 * t - 1) ** 8, 0, 1))
    edge = np.clip((width - np.abs(across)) / 1.2 + 0.5, 0, 1) * ((t >= 0) & (t <= 1))
    n_bands = rng.integers(4, 9)
    band_pos = np.sort(rng.uniform(0, 1, n_bands))
    bands = np.ones_like(t)
    for pos in band_pos:
        bands -= 0.45 * np.exp(-(((t - pos) / rng.uniform(0.015, 0.04)) ** 2))
    dapi = edge * np.clip(bands, 0.2, 1.0)
    return dapi, edge > 0.5, np.clip(t, 0, 1)


def _crop(rng: np.random.Generator, size: int, translocation: bool, paint: bool) -> np.ndarray:
    dapi, _, t = _chromosome(rng, size)
    rgb = np.zeros((size, size, 3))
    rgb[..., 2] = dapi * rng.uniform(0.7, 1.0)
    if paint:
        names = list(PAINTS)
        first = names[rng.integers(len(names))]
        weights = np.zeros((size, size, 2))
        weights[:] = PAINTS[first]
        if translocation:
            second = [n for n in names if n != first][rng.integers(len(names) - 1)]
            split = rng.uniform(0.3, 0.7)
            side = t > split if rng.random() < 0.5 else t < split
            weights[side] = PAINTS[second]
        level = rng.uniform(0.6, 1.0)
        coverage = np.clip(dapi * 1.6, 0, 1) * level
        rgb[..., 0] = coverage * weights[..., 0]
        rgb[..., 1] = coverage * weights[..., 1]
    rgb += rng.normal(0, 0.03, rgb.shape) + rng.uniform(0.0, 0.05)
    return np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)


def make_crop(seed: int, *, size: int = 64, translocation: bool = False, paint: bool = True):
    """One simulated crop (``uint8`` ``(size, size, 3)``), deterministic for ``seed``."""
    return _crop(np.random.default_rng(seed), size, translocation, paint)


def make_demo_data(
    out_dir: str | Path,
    *,
    n_labelled: int = 2000,
    n_pool: int = 2000,
    prevalence: float = 0.08,
    size: int = 64,
    seed: int = 0,
) -> DemoLayout:
    """Write the simulated crop set to ``out_dir`` (refuses a non-empty folder).

    Layout: ``labelled/<label>/*.png``, ``labels.csv`` (``filepath,label,group``, paths relative
    to the CSV) and ``pool/*.png``.
    """
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise CurateError(f"{out} exists and is not empty")
    if not 0 < prevalence < 1:
        raise CurateError(f"prevalence must be in (0, 1), got {prevalence}")
    if n_labelled < 3 * CROPS_PER_GROUP or n_pool < 0 or size < 16:
        raise CurateError(f"need n_labelled >= {3 * CROPS_PER_GROUP}, n_pool >= 0, size >= 16")
    rng = np.random.default_rng(seed)
    is_rare = rng.random(n_labelled) < prevalence
    crop_seeds = rng.integers(0, 2**31, size=n_labelled + n_pool)
    rows = []
    for index in progress_bar(range(n_labelled), desc="demo crops", unit="img", leave=False):
        label = TRANSLOCATION if is_rare[index] else NORMAL
        image = make_crop(int(crop_seeds[index]), size=size, translocation=bool(is_rare[index]))
        relative = Path("labelled") / label / f"crop_{index:05d}.png"
        write_png(image, out / relative)
        rows.append((relative.as_posix(), label, f"metaphase_{index // CROPS_PER_GROUP:03d}"))
    for index in progress_bar(range(n_pool), desc="demo pool", unit="img", leave=False):
        image = make_crop(int(crop_seeds[n_labelled + index]), size=size, paint=False)
        write_png(image, out / "pool" / f"pool_{index:05d}.png")
    labels_csv = out / "labels.csv"
    with labels_csv.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["filepath", "label", "group"])
        writer.writerows(rows)
    return DemoLayout(out, labels_csv, out / "pool", n_labelled, n_pool, int(is_rare.sum()))
