"""Pass/reject tags of filter runs, and manual decisions that every filter run respects.

A filter run under key ``K`` tags each synthetic sample ``K:pass`` or ``K:reject`` (a rerun
replaces them). A person can overrule the filter for a sample by setting its manual decision
(``manual_decision`` = ``pass`` / ``reject``, from the App or the API); from then on every filter
run tags that sample as the person decided and counts it as an override.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import fiftyone as fo
from fiftyone import ViewField as F

from curation.errors import CurateError
from curation.names import pass_tag, reject_tag
from curation.schema import ORIGIN_FIELD, SYNTHETIC

MANUAL_FIELD = "manual_decision"
DECISIONS = ("pass", "reject")
# ids per `select` when tagging: MongoDB refuses commands over 16 MB (about 800k ids)
SELECT_CHUNK = 100_000


def filter_keys_in_tags(dataset: fo.Dataset) -> list[str]:
    """Filter keys that have tagged samples on ``dataset``."""
    tags = dataset.distinct("tags")
    return sorted({t.rsplit(":", 1)[0] for t in tags if t.endswith((":pass", ":reject"))})


def set_manual_decision(dataset: fo.Dataset, sample_ids: Iterable[str], decision: str | None):
    """Record a person's decision (``pass``, ``reject`` or ``None`` to clear) on synthetic samples,
    and re-tag them under every filter key already on the dataset. Returns the number changed.

    Raises:
        CurateError: for an unknown decision, unknown ids or real samples (nothing changed).
    """
    if decision is not None and decision not in DECISIONS:
        raise CurateError(f"unknown decision {decision!r}; use pass or reject")
    ids = list(dict.fromkeys(sample_ids))
    if not ids:
        raise CurateError("no samples selected")
    view = dataset.select(ids)
    if len(view) != len(ids):
        raise CurateError(f"{len(ids) - len(view)} selected sample id(s) are not in the dataset")
    if len(view.match(F(ORIGIN_FIELD) != SYNTHETIC)):
        raise CurateError("only synthetic samples take pass/reject decisions")
    if MANUAL_FIELD not in dataset.get_field_schema():
        dataset.add_sample_field(MANUAL_FIELD, fo.StringField)
    view.set_values(MANUAL_FIELD, [decision] * len(view))
    if decision is not None:
        for key in filter_keys_in_tags(dataset):
            _retag(view, key, {sample_id: decision == "pass" for sample_id in ids})
    return len(ids)


def _retag(view: fo.DatasetView, key: str, passed: Mapping[str, bool]) -> None:
    view.untag_samples([pass_tag(key), reject_tag(key)])
    winners = [i for i, ok in passed.items() if ok]
    losers = [i for i, ok in passed.items() if not ok]
    if winners:
        view.select(winners).tag_samples(pass_tag(key))
    if losers:
        view.select(losers).tag_samples(reject_tag(key))


def apply_filter_decisions(
    dataset: fo.Dataset, key: str, passed: Mapping[str, bool]
) -> dict[str, int]:
    """Tag the synthetic samples in ``passed`` (id -> filter decision) under ``key``, replacing
    older tags of that key on every sample, with manual decisions taking precedence.

    Returns:
        ``{"n_pass", "n_reject", "n_overridden"}`` after overrides.
    """
    synthetic = dataset.match(F(ORIGIN_FIELD) == SYNTHETIC)
    dataset.untag_samples([pass_tag(key), reject_tag(key)])
    final = dict(passed)
    overridden = 0
    if MANUAL_FIELD in dataset.get_field_schema():
        ids, manual = synthetic.values(["id", MANUAL_FIELD])
        for sample_id, decision in zip(ids, manual, strict=True):
            if decision in DECISIONS and sample_id in final:
                wanted = decision == "pass"
                overridden += final[sample_id] != wanted
                final[sample_id] = wanted
    ids = list(final)
    for start in range(0, len(ids), SELECT_CHUNK):  # a select's ids must fit in one command
        chunk = ids[start : start + SELECT_CHUNK]
        _retag(synthetic.select(chunk), key, {i: final[i] for i in chunk})
    n_pass = sum(final.values())
    return {"n_pass": n_pass, "n_reject": len(final) - n_pass, "n_overridden": overridden}
