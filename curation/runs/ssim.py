"""SSIM runs: how close each synthetic sample comes to a real training image.

For every synthetic sample: the maximum SSIM (:mod:`brain.ssim`, exact over all real training
images) and which real sample reaches it, stored as fields; samples at or above a threshold are
tagged ``near-copy`` and linked to their nearest real neighbour in the embedding similarity
index; the view ``near-copies`` collects them for the App. The run record is ``ssim_<run>``
(:class:`SSIMConfig`, :class:`SSIMResults`). The fields, tag and view are shared by every SSIM
run (a rerun replaces them); deleting the last SSIM run removes them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import fiftyone as fo
import numpy as np

from brain.size_policy import DEFAULT_PAD
from brain.ssim import max_ssim
from curation.datasets import as_dataset, builtin_views, decode_view, resolve_view, save_view
from curation.errors import CurateError
from curation.names import REAL_TRAIN
from curation.runs.base import Record, RunKind, register
from curation.runs.footprint import Footprint
from curation.runs.neighbours import nearest_neighbours
from curation.runs.records import list_runs
from curation.schema import run_size_policy

SSIM_FIELD = "max_ssim"
SSIM_SOURCE_FIELD = "max_ssim_real_id"
NEAREST_FIELD = "nearest_real_id"
NEAR_COPY_TAG = "near-copy"
NEAR_COPY_VIEW = "near-copies"


@dataclass(frozen=True)
class SSIMConfig(Record):
    """What an SSIM run is asked (stored as ``config``, with the size policy it compared under:
    its ``size``, else the dataset's). Checked when built.

    Attributes:
        view: the samples scored; threshold: the SSIM at or above which a sample is a
            near-copy, in (0, 1]; size, pad: the comparison size (``None``: the dataset's
            policy) and padding; embed_run: the embed run whose index links each near-copy to
            its nearest real sample (``None``: the latest, if any).
    """

    view: str = "synthetic"
    size: int | None = None
    threshold: float = 0.9
    pad: str = DEFAULT_PAD
    embed_run: str | None = None

    def __post_init__(self) -> None:
        if not 0 < self.threshold <= 1:
            raise CurateError(
                f"SSIM threshold must lie in (0, 1], got {self.threshold}", params=("threshold",)
            )


@dataclass
class SSIMResults(Record):
    """What an SSIM run gave: samples scored, near-copies, the threshold and quantiles of the
    maximum SSIM (``"0.05"``, ``"0.5"``, ``"0.95"``)."""

    n_scored: int = 0
    n_near_copies: int = 0
    threshold: float = 0.9
    quantiles: dict[str, float] = field(default_factory=dict)


@register
class SSIMKind(RunKind):
    """SSIM runs: the shared fields, tag and view, removed with the last SSIM run."""

    kind = "ssim"
    config_type = SSIMConfig
    results_type = SSIMResults

    def footprint(self, dataset: fo.Dataset, name: str) -> Footprint:
        if list_runs(dataset, "ssim") != [name]:
            return Footprint()  # another SSIM run's values are in the shared fields
        return Footprint(
            fields=[SSIM_FIELD, SSIM_SOURCE_FIELD, NEAREST_FIELD],
            tags=[NEAR_COPY_TAG],
            views=[NEAR_COPY_VIEW],
        )

    def execute(
        self, dataset: fo.Dataset, name: str, config: SSIMConfig, *, overwrite: bool, **options
    ) -> SSIMResults:
        return _score(dataset, name, config, overwrite=overwrite, **options)


SSIM = SSIMKind()


def compute_max_ssim(
    dataset: fo.Dataset | str,
    *,
    threshold: float = 0.9,
    view: str = "synthetic",
    size: int | None = None,
    embed_name: str | None = None,
    run: str = "ssim",
    overwrite: bool = False,
    progress: bool = True,
) -> SSIMResults:
    """Score every sample of ``view`` (synthetic by default) against all real training images.

    Args:
        dataset: the project dataset (or its name).
        threshold: SSIM at or above which a sample is a near-copy.
        view: the samples to score.
        size: pad-and-resize every image to ``size x size`` (needed when sizes differ; default:
            the dataset's size policy, padded as it says).
        embed_name: the embed run whose similarity index finds each near-copy's nearest real
            neighbour (default: the latest; skipped when there is none).
        run: the name the analysis is stored under (run kind ``ssim``).
        overwrite: replace a stored analysis of this name that was asked another view, size
            or threshold (without it such a rerun is refused).
        progress: progress bars while decoding.

    Returns:
        The :class:`SSIMResults` (also stored under ``ssim_<run>``).
    """
    config = SSIMConfig(view, size, threshold, embed_run=embed_name)
    return SSIM.run(as_dataset(dataset), run, config, overwrite=overwrite, progress=progress)


def _score(dataset: fo.Dataset, name: str, config: SSIMConfig, *, overwrite: bool, progress: bool):
    """What :meth:`SSIMKind.execute` does: score, tag, link, store."""
    policy = run_size_policy(dataset, config.size)
    config = dataclasses.replace(config, size=policy.size, pad=policy.pad)
    SSIM.check_reuse(dataset, name, config, overwrite=overwrite)
    candidates = decode_view(
        resolve_view(dataset, config.view), progress=progress, desc="ssim: samples"
    )
    references = decode_view(
        builtin_views(dataset)[REAL_TRAIN], progress=progress, desc="ssim: real"
    )
    shapes = {a.shape for a in candidates.arrays + references.arrays}
    if policy.size is None and len(shapes) > 1:
        raise CurateError(
            "images differ in size: give `size` to compare them by SSIM (or set the dataset's "
            "size policy)",
            params=("size",),
        )
    best, where = max_ssim(policy.fit(candidates.arrays), policy.fit(references.arrays))
    source_ids = [references.ids[i] for i in where]
    scored = dataset.select(candidates.ids, ordered=True)
    scored.set_values(SSIM_FIELD, best.tolist())
    scored.set_values(SSIM_SOURCE_FIELD, source_ids)
    dataset.untag_samples(NEAR_COPY_TAG)
    threshold = config.threshold
    near = [i for i, value in zip(candidates.ids, best, strict=True) if value >= threshold]
    if near:
        dataset.select(near).tag_samples(NEAR_COPY_TAG)
        _link_nearest(dataset, near, config.embed_run)
    save_view(
        dataset,
        NEAR_COPY_VIEW,
        dataset.match_tags(NEAR_COPY_TAG).sort_by(SSIM_FIELD, reverse=True),
        description=f"synthetic samples with max SSIM >= {threshold} against real train",
    )
    results = SSIMResults(
        n_scored=len(candidates.ids),
        n_near_copies=len(near),
        threshold=threshold,
        quantiles={str(q): float(np.quantile(best, q)) for q in (0.05, 0.5, 0.95)},
    )
    SSIM.store(dataset, name, config, results)
    return results


def _link_nearest(dataset: fo.Dataset, ids: list[str], embed_name: str | None) -> None:
    """Each near-copy's nearest real sample, by the embed run's index (any backend)."""
    if embed_name is None and not list_runs(dataset, "embed"):
        return
    try:
        nearest = nearest_neighbours(dataset, ids, name=embed_name)
    except CurateError:  # e.g. no index: the links stay empty
        nearest = {}
    links = [nearest[i].id if i in nearest else None for i in ids]
    if not dataset.has_sample_field(NEAREST_FIELD):  # declared: the links may all be empty
        dataset.add_sample_field(NEAREST_FIELD, fo.StringField)
    dataset.select(ids, ordered=True).set_values(NEAREST_FIELD, links)
