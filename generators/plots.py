"""The loss curve of a training run, as a PNG (matplotlib, Agg backend, no global state)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def smooth(values: Sequence[float], window: int) -> np.ndarray:
    """Trailing moving average (the first points average what there is)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0 or window <= 1:
        return values
    cumulative = np.cumsum(np.r_[0.0, values])
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(0, ends - window)
    return (cumulative[ends] - cumulative[starts]) / (ends - starts)


def write_loss_curve(
    losses: Sequence[float], path: str | os.PathLike, *, title: str = "training loss"
) -> Path:
    """Plot per-step losses (raw and smoothed over 1/50 of the run) to the PNG ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure = Figure(figsize=(6, 3.5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    steps = np.arange(1, len(losses) + 1)
    axes.plot(steps, losses, color="0.75", linewidth=0.8, label="per step")
    if len(losses) >= 10:
        window = max(2, len(losses) // 50)
        axes.plot(steps, smooth(losses, window), color="C0", label=f"mean of {window}")
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.set_title(title)
    if len(losses):
        axes.legend(loc="upper right")
    figure.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp")
    figure.savefig(tmp, format="png")
    os.replace(tmp, path)
    return path
