"""Figures of a study report: ROC and PR curves, SSIM densities, sample grids (matplotlib, Agg)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from sklearn.metrics import auc, precision_recall_curve, roc_curve

from brain.images import read_image

_LINE_HEIGHT = 11
"""Pixels per line of a tile's label in :func:`sample_grid`."""


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_roc_pr(curves: dict[str, tuple[np.ndarray, np.ndarray]], out: Path) -> Path:
    """ROC and precision-recall curves of the rare class; ``curves`` maps a label to
    ``(is_rare, rare_probability)`` on the test split."""
    plt = _pyplot()
    fig, (ax_roc, ax_pr) = plt.subplots(1, 2, figsize=(11, 4.8))
    for label, (truth, score) in curves.items():
        fpr, tpr, _ = roc_curve(truth, score)
        precision, recall, _ = precision_recall_curve(truth, score)
        ax_roc.plot(fpr, tpr, label=f"{label} (AUC {auc(fpr, tpr):.2f})")
        ax_pr.plot(recall, precision, label=label)
    ax_roc.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    ax_roc.set(
        xlabel="false positive rate", ylabel="true positive rate", title="ROC (test, seed 0)"
    )
    ax_pr.set(xlabel="recall", ylabel="precision", title="Precision-recall (test)")
    ax_roc.legend(fontsize=7)
    ax_pr.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_ssim_densities(values: dict[str, Sequence[float]], threshold: float, out: Path) -> Path:
    """Density of the maximum SSIM against real training images, one curve per generator (as
    the study's Figure 5), with the near-copy threshold."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    bins = np.linspace(-0.1, 1.0, 45)
    for label, series in values.items():
        if len(series):
            ax.hist(series, bins=bins, density=True, histtype="step", lw=1.6, label=label)
    ax.axvline(threshold, color="black", ls="--", lw=0.8, label=f"near-copy >= {threshold}")
    ax.set(xlabel="max SSIM against real training images", ylabel="density")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def sample_grid(
    paths: Sequence[str],
    out: Path,
    *,
    columns: int = 8,
    tile: int = 64,
    labels: Sequence[str] | None = None,
) -> Path:
    """A grid of images (each fitted into ``tile x tile``, grayscale shown as grey), with
    ``labels`` (one per image, lines split at ``\\n``, e.g. its generator and filter reason)
    written under each tile, cut to the tile's width."""
    font = ImageFont.load_default(size=10)
    lines = max((len(label.split("\n")) for label in labels or []), default=0)
    cell = tile + lines * _LINE_HEIGHT + (2 if lines else 0)
    rows = max(1, -(-len(paths) // columns))
    canvas = Image.new("RGB", (columns * tile, rows * cell), (40, 40, 40))
    draw = ImageDraw.Draw(canvas)
    for index, path in enumerate(paths):
        array = read_image(path)
        if array.shape[2] == 1:
            array = np.repeat(array, 3, axis=2)
        image = Image.fromarray(array[:, :, :3])
        image.thumbnail((tile, tile))
        x, y = (index % columns) * tile, (index // columns) * cell
        canvas.paste(image, (x + (tile - image.width) // 2, y + (tile - image.height) // 2))
        for line, text in enumerate(labels[index].split("\n") if labels else []):
            shown = _cut_to_width(text, font, tile - 2)
            draw.text((x + 1, y + tile + 1 + line * _LINE_HEIGHT), shown, fill="white", font=font)
    canvas.save(out)
    return out


def _cut_to_width(text: str, font, width: int) -> str:
    """``text``, shortened with a trailing ``~`` until it fits ``width`` pixels in ``font``."""
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "~") > width:
        text = text[:-1]
    return text + "~"
