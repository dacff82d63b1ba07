"""Built-in demo data: SIMULATED whole metaphase spreads with known instance masks.

Each spread is an RGB image (default 256 x 256): blue is DAPI, which stains every chromosome
(elongated, banded shapes with a centromere constriction, 12-40 px long, randomly rotated, a few
touching), red and green are chromosome paints on some of them (yellow = both). As in the study,
chromosome 2 is painted red, 4 green and 12 yellow, two copies each; a spread with a
translocation swaps the ends of one red and one green copy, giving two chromosomes that carry
two colours split along their axis. The ground truth is an instance label image per spread, so
the whole path "whole image -> segmentation -> crops" can be scored offline.

The chromosome looks like those of :mod:`curation.demo` (same banding, constriction and paint
model) at a scale where a 64 x 64 crop holds one chromosome with margin.

Layout written by :func:`make_spreads`::

    out_dir/spread_000.png          RGB uint8 whole image
    out_dir/spread_000_mask.tif     uint16 instance labels (0 = background)
    out_dir/spreads.json            per spread: image, mask, instances (label, paint, class)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from brain.images import write_png
from curation.errors import CurateError

NORMAL, TRANSLOCATION = "normal", "translocation"
PAINTS = {"red": (1.0, 0.0), "green": (0.0, 1.0), "yellow": (1.0, 1.0)}  # (red, green) weights
PAINTED_PAIRS = (("red", "chr2"), ("green", "chr4"), ("yellow", "chr12"))
MANIFEST = "spreads.json"


@dataclass(frozen=True)
class SpreadsLayout:
    """Where :func:`make_spreads` put things."""

    root: Path
    images: tuple[Path, ...]
    masks: tuple[Path, ...]
    manifest: Path
    n_instances: int
    n_translocations: int


@dataclass(frozen=True)
class _Chromosome:
    """One rendered chromosome in a local patch: DAPI in [0, 1], coverage, axis position."""

    dapi: np.ndarray
    edge: np.ndarray
    t: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        return self.edge > 0.5


def _render(rng: np.random.Generator, length: float) -> _Chromosome:
    """A banded chromosome of ``length`` px at a random angle, centred in a square patch."""
    half_width = rng.uniform(2.6, 3.8) * (0.75 + 0.25 * length / 40)
    size = int(np.ceil(length + 4 * half_width + 4)) | 1
    angle = rng.uniform(0, np.pi)
    centromere = rng.uniform(0.25, 0.6)
    bend = rng.uniform(-0.12, 0.12) * length  # slight curvature, as chromosomes lie bent
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) - (size - 1) / 2
    along = xx * np.cos(angle) + yy * np.sin(angle)
    across = -xx * np.sin(angle) + yy * np.cos(angle)
    t = along / length + 0.5  # 0..1 from one end to the other
    across = across - bend * (4 * (t - 0.5) ** 2 - 1 / 3)
    constriction = 1.0 - 0.35 * np.exp(-(((t - centromere) / 0.05) ** 2))
    width = half_width * constriction * np.sqrt(np.clip(1 - (2 * t - 1) ** 8, 0, 1))
    edge = np.clip((width - np.abs(across)) / 1.0 + 0.5, 0, 1) * ((t >= 0) & (t <= 1))
    bands = np.ones_like(t)
    for pos in np.sort(rng.uniform(0, 1, rng.integers(3, 8))):
        bands -= 0.4 * np.exp(-(((t - pos) / rng.uniform(0.02, 0.05)) ** 2))
    dapi = edge * np.clip(bands, 0.3, 1.0)
    return _Chromosome(dapi=dapi, edge=edge, t=np.clip(t, 0, 1))


def _place(
    rng: np.random.Generator,
    occupied: np.ndarray,
    patch: np.ndarray,
    *,
    touch: bool,
    centre: np.ndarray,
    radius: float,
    tries: int = 400,
) -> tuple[int, int] | None:
    """Top-left corner for ``patch`` inside the spread disc, clear of ``occupied``.

    With ``touch`` the chromosome must lie against another one (no gap, no overlap); otherwise
    it keeps a gap of at least two pixels.
    """
    height, width = occupied.shape
    size = patch.shape[0]
    grown = ndi.binary_dilation(patch, iterations=1 if touch else 3)
    for _ in range(tries):
        r = radius * np.sqrt(rng.random())
        phi = rng.uniform(0, 2 * np.pi)
        y = int(np.rint(centre[0] + r * np.sin(phi))) - size // 2
        x = int(np.rint(centre[1] + r * np.cos(phi))) - size // 2
        if y < 1 or x < 1 or y + size > height - 1 or x + size > width - 1:
            continue
        window = occupied[y : y + size, x : x + size]
        if (window & patch).any():
            continue
        near = (window & grown).any()
        if near == touch:
            return y, x
    return None


def _paint_weights(rng: np.random.Generator, chrom: _Chromosome, colours: list[str]) -> np.ndarray:
    """(size, size, 2) red/green paint weights: one colour, or two split along the axis."""
    weights = np.zeros((*chrom.t.shape, 2))
    weights[:] = PAINTS[colours[0]]
    if len(colours) == 2:
        split = rng.uniform(0.3, 0.7)
        weights[chrom.t > split] = PAINTS[colours[1]]
    return weights


def _plan(rng: np.random.Generator, n_chromosomes: int, translocation: bool) -> list[list[str]]:
    """Paint colours of each chromosome: six painted (2 red, 2 green, 2 yellow), rest none."""
    plan: list[list[str]] = [[] for _ in range(n_chromosomes)]
    painted = [colour for colour, _ in PAINTED_PAIRS for _ in range(2)]
    for index, colour in enumerate(painted):
        plan[index] = [colour]
    if translocation:  # reciprocal exchange between one red and one green copy
        plan[0], plan[2] = ["red", "green"], ["green", "red"]
    order = rng.permutation(n_chromosomes)
    return [plan[i] for i in order]


def make_spread(
    seed: int,
    *,
    size: int = 256,
    n_chromosomes: int | None = None,
    translocation: bool = False,
    touching: float = 0.15,
) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """One simulated metaphase spread, deterministic for ``seed``.

    Args:
        seed: random seed.
        size: image side in pixels (>= 128).
        n_chromosomes: chromosomes to place (default: 24..46 at random, fewer if they do not fit).
        translocation: whether one red and one green chromosome exchange their ends.
        touching: probability that a chromosome is placed against another one.

    Returns:
        ``(image, labels, instances)``: ``uint8`` ``(size, size, 3)`` RGB image, ``int32``
        instance labels (``0`` = background), and one dict per instance with ``label``,
        ``paint`` (``""``, ``"red"``, ``"red+green"``, ...), ``class`` (normal / translocation),
        ``length`` and ``centroid`` (y, x).
    """
    if size < 128:
        raise CurateError(f"spread size must be >= 128, got {size}")
    rng = np.random.default_rng(seed)
    if n_chromosomes is None:
        n_chromosomes = int(rng.integers(24, 47))
    if n_chromosomes < 6:
        raise CurateError(f"a spread needs >= 6 chromosomes (six are painted), got {n_chromosomes}")
    plan = _plan(rng, n_chromosomes, translocation)
    dapi = np.zeros((size, size))
    paint = np.zeros((size, size, 2))
    labels = np.zeros((size, size), np.int32)
    occupied = np.zeros((size, size), bool)
    centre = np.array([size / 2, size / 2]) + rng.uniform(-0.05, 0.05, 2) * size
    radius = size * rng.uniform(0.36, 0.44)
    brightness = rng.uniform(0.55, 1.0)
    instances: list[dict] = []
    for colours in plan:
        length = rng.uniform(12, 40)
        chrom = _render(rng, length)
        touch = bool(instances) and rng.random() < touching
        corner = _place(rng, occupied, chrom.mask, touch=touch, centre=centre, radius=radius)
        if corner is None and touch:
            corner = _place(rng, occupied, chrom.mask, touch=False, centre=centre, radius=radius)
        if corner is None and colours:  # painted chromosomes must be there: try shorter
            chrom = _render(rng, 12.0)
            corner = _place(rng, occupied, chrom.mask, touch=False, centre=centre, radius=radius)
        if corner is None:
            continue
        y, x = corner
        window = (slice(y, y + chrom.dapi.shape[0]), slice(x, x + chrom.dapi.shape[1]))
        level = brightness * rng.uniform(0.7, 1.0)
        dapi[window] = np.maximum(dapi[window], chrom.dapi * level)
        if colours:
            coverage = np.clip(chrom.dapi * 1.6, 0, 1) * rng.uniform(0.6, 1.0)
            weights = _paint_weights(rng, chrom, colours)
            paint[window] = np.maximum(paint[window], coverage[..., None] * weights)
        index = len(instances) + 1
        labels[window][chrom.mask] = index
        occupied[window] |= chrom.mask
        ys, xs = np.nonzero(labels == index)
        instances.append(
            {
                "label": index,
                "paint": "+".join(colours),
                "class": TRANSLOCATION if len(colours) == 2 else NORMAL,
                "length": round(float(length), 2),
                "centroid": [round(float(ys.mean()), 2), round(float(xs.mean()), 2)],
            }
        )
    rgb = np.concatenate([paint, dapi[..., None]], axis=2)  # (red, green, blue)
    rgb = ndi.gaussian_filter(rgb, sigma=(0.7, 0.7, 0))  # optical blur
    yy, xx = np.mgrid[0:size, 0:size] / size
    shading = 0.04 + 0.04 * (yy * rng.uniform(-1, 1) + xx * rng.uniform(-1, 1))  # uneven light
    rgb += shading[..., None] + rng.normal(0, 0.03, rgb.shape)
    image = np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)
    return image, labels, instances


def make_spreads(
    out_dir: str | Path,
    *,
    n: int = 4,
    seed: int = 0,
    size: int = 256,
    translocation_rate: float = 0.5,
) -> SpreadsLayout:
    """Write ``n`` simulated spreads, their instance masks and a manifest to ``out_dir``.

    Deterministic for ``seed``; refuses a non-empty folder. See the module docstring for the
    layout.

    Args:
        out_dir: folder to create.
        n: number of spreads.
        seed: random seed.
        size: image side in pixels.
        translocation_rate: probability that a spread carries a translocation.

    Returns:
        The paths written and instance counts.
    """
    import tifffile

    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise CurateError(f"{out} exists and is not empty")
    if n < 1 or not 0 <= translocation_rate <= 1:
        raise CurateError("need n >= 1 spreads and a translocation_rate in [0, 1]")
    rng = np.random.default_rng(seed)
    seeds = rng.integers(0, 2**31, size=n)
    carries = rng.random(n) < translocation_rate
    out.mkdir(parents=True, exist_ok=True)
    records, images, masks = [], [], []
    for index in range(n):
        image, labels, instances = make_spread(
            int(seeds[index]), size=size, translocation=bool(carries[index])
        )
        image_path = out / f"spread_{index:03d}.png"
        mask_path = out / f"spread_{index:03d}_mask.tif"
        write_png(image, image_path)
        tifffile.imwrite(mask_path, labels.astype(np.uint16), compression="zlib")
        images.append(image_path)
        masks.append(mask_path)
        records.append(
            {
                "image": image_path.name,
                "mask": mask_path.name,
                "seed": int(seeds[index]),
                "translocation": bool(carries[index]),
                "instances": instances,
            }
        )
    manifest = out / MANIFEST
    manifest.write_text(json.dumps({"seed": seed, "spreads": records}, indent=1))
    n_instances = sum(len(r["instances"]) for r in records)
    n_trans = sum(i["class"] == TRANSLOCATION for r in records for i in r["instances"])
    return SpreadsLayout(out, tuple(images), tuple(masks), manifest, n_instances, n_trans)
