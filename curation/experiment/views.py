"""The saved views of a study: each generator's samples (all, passing, random subsets per seed)
and its size-matched sources; training views never hold a real or val/test sample."""

from __future__ import annotations

import fiftyone as fo
import numpy as np
from fiftyone import ViewField as F

from brain.copies import COPY_REASONS
from curation.datasets import builtin_views, resolve_view, save_view
from curation.errors import CurateError
from curation.experiment.cells import (
    filter_key,
    random_view_name,
    sources_view_name,
    synthetic_view_name,
)
from curation.experiment.config import ExperimentConfig
from curation.experiment.leakage import LEAK_TAG
from curation.names import RARE_TRAIN, pass_tag, reason_field
from curation.runs.ssim import NEAR_COPY_TAG
from curation.schema import LINEAGE_FIELD, ORIGIN_FIELD, REAL, SPLIT_FIELD, SYNTHETIC


def generator_samples(dataset, generator_name: str):
    """Synthetic samples made by generator run ``generator_name`` (or, for samples made
    elsewhere, whose lineage names that generator)."""
    made_by = (F(f"{LINEAGE_FIELD}.run") == generator_name) | (
        F(f"{LINEAGE_FIELD}.generator") == generator_name
    )
    return dataset.match((F(ORIGIN_FIELD) == SYNTHETIC) & made_by)


def check_training_view(view, what: str) -> None:
    """Synthetic training views must never carry a real val/test sample (or any test sample)."""
    leaks = view.match((F(ORIGIN_FIELD) == REAL) | (F(SPLIT_FIELD).is_in(["val", "test"])))
    if len(leaks):
        raise CurateError(f"{what} holds {len(leaks)} real or val/test sample(s)")


def size_matched_sources(dataset: fo.Dataset, config: ExperimentConfig, gen) -> str:
    """Save and name the view of ``gen``'s sources whose width and height lie within the range
    of the real rare train images, so that a generator that keeps its source's outline makes
    objects of the rare class's size (e.g. a small chromosome from small chromosomes).

    Raises:
        CurateError: no real rare train image, or no source within the range.
    """
    rare = builtin_views(dataset)[RARE_TRAIN]
    if not len(rare):
        raise CurateError("source_match size: no real rare train image to take the sizes from")
    widths, heights = rare.values(["metadata.width", "metadata.height"])
    view = resolve_view(dataset, gen.source or "pool").match(
        (F("metadata.width") >= min(widths))
        & (F("metadata.width") <= max(widths))
        & (F("metadata.height") >= min(heights))
        & (F("metadata.height") <= max(heights))
    )
    if not len(view):
        raise CurateError(
            f"generator {gen.name!r}: no source in {gen.source or 'pool'!r} lies within the rare "
            f"class's sizes ({min(widths)}-{max(widths)} x {min(heights)}-{max(heights)} px)"
        )
    name = sources_view_name(config.name, gen.name)
    save_view(dataset, name, view)
    return name


def copy_shares(dataset: fo.Dataset, config: ExperimentConfig) -> dict[str, dict[str, float]]:
    """Per generator, the share of the samples each synthetic arm draws from that are copies:
    tagged ``near-copy`` (the SSIM step) or ``leak``, or rejected by the filter's near-copy
    gate (:data:`brain.copies.COPY_REASONS`). ``all`` and ``random-matched`` draw from every
    sample of the generator, ``filtered`` from those that passed."""
    key = filter_key(config.name)
    reasons = reason_field(key)
    copy = F("tags").contains([NEAR_COPY_TAG, LEAK_TAG]) | F(reasons).is_in(list(COPY_REASONS))
    shares = {}
    for gen in config.generators:
        samples = generator_samples(dataset, gen.name)
        passing = samples.match_tags(pass_tag(key))
        every, passed = _share(samples, copy), _share(passing, copy)
        shares[gen.name] = {"all": every, "random-matched": every, "filtered": passed}
    return shares


def _share(view, condition) -> float:
    """The share of ``view``'s samples matching ``condition`` (0 for an empty view)."""
    return len(view.match(condition)) / len(view) if len(view) else 0.0


def save_generator_views(
    dataset: fo.Dataset, config: ExperimentConfig
) -> dict[str, dict[str, int]]:
    """Per generator: its samples (all), those that passed, and per seed a random subset as
    large as the passing one; leaks are left out of all of them."""
    counts = {}
    for gen in config.generators:
        samples = generator_samples(dataset, gen.name)
        if len(samples) == 0:
            raise CurateError(
                f"dataset {config.dataset!r} has no synthetic samples of generator {gen.name!r}"
            )
        usable = samples.match(~F("tags").contains(LEAK_TAG))
        passing = usable.match_tags(pass_tag(filter_key(config.name)))
        for filtered, view in ((False, usable), (True, passing)):
            check_training_view(view, f"generator {gen.name!r}")
            save_view(dataset, synthetic_view_name(config.name, gen.name, filtered), view)
        ids = sorted(usable.values("id"))
        for seed in range(config.seeds):
            rng = np.random.default_rng([seed, *gen.name.encode()])
            drawn = list(rng.choice(ids, size=len(passing), replace=False)) if ids else []
            save_view(dataset, random_view_name(config.name, gen.name, seed), dataset.select(drawn))
        counts[gen.name] = {
            "before": len(samples),
            "after": len(passing),
            "leaks": len(samples) - len(usable),
        }
    return counts
