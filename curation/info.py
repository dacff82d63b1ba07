"""What a project dataset holds: counts by origin, split and label, the rare class, stored runs."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from curation.datasets import open_dataset
from curation.names import pass_tag, reason_field, reject_tag
from curation.reasons import count_reasons
from curation.runs.filter.run import FILTER
from curation.runs.records import list_runs
from curation.schema import LABEL_FIELD, LINEAGE_FIELD, ORIGIN_FIELD, SPLIT_FIELD, project_info
from curation.tags import MANUAL_FIELD

UNLABELLED = "(unlabelled)"


def count_samples(dataset) -> dict[str, dict[str, dict[str, int]]]:
    """Nested counts ``origin -> split -> label -> count`` (unlabelled samples under
    ``"(unlabelled)"``)."""
    origins, splits, labels = dataset.values([ORIGIN_FIELD, SPLIT_FIELD, f"{LABEL_FIELD}.label"])
    counts: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    for origin, split, label in zip(origins, splits, labels, strict=True):
        counts[str(origin)][str(split)][label if label is not None else UNLABELLED] += 1
    return {
        o: {s: dict(sorted(c.items())) for s, c in sorted(v.items())} for o, v in counts.items()
    }


def list_stored_runs(dataset) -> dict[str, list[str]]:
    """Keys of the runs stored on ``dataset``: synthcurate runs, brain runs and evaluations."""
    return {
        "runs": sorted(dataset.list_runs()),
        "brain_runs": sorted(dataset.list_brain_runs()),
        "evaluations": sorted(dataset.list_evaluations()),
    }


def reasons_by_generator(dataset, key: str) -> dict[str, dict[str, int]]:
    """Why filter run ``key`` passed or rejected each generator's samples: ``generator ->
    reason -> count``, from the run's reason field (``pass`` or the reject reason, as the run
    wrote it) and each sample's ``lineage.run``; empty without that field."""
    field = reason_field(key)
    if not dataset.has_sample_field(field):
        return {}
    decided = dataset.exists(field)
    return count_reasons(*decided.values([f"{LINEAGE_FIELD}.run", field]))


def filter_summaries(dataset) -> dict[str, dict[str, Any]]:
    """Per filter run: method, level, level choice (:meth:`~brain.level_choice.Fixed.as_dict`),
    live pass / reject / manual counts (from the tags, so re-tagging in the App shows), reasons
    (in all and per generator: :func:`reasons_by_generator`), scorecard and warnings."""
    tags = dataset.count_sample_tags()
    n_manual = 0
    if MANUAL_FIELD in dataset.get_field_schema():
        n_manual = len(dataset.exists(MANUAL_FIELD))
    summaries = {}
    for key in list_runs(dataset, "filter"):
        config, results = FILTER.load(dataset, key)
        summaries[key] = {
            "method": config.method,
            "level": results.level,
            "level_choice": config.level_choice.as_dict(),
            "n_pass": tags.get(pass_tag(key), 0),
            "n_reject": tags.get(reject_tag(key), 0),
            "n_manual": n_manual,
            "reasons": results.reasons,
            "reasons_by_generator": reasons_by_generator(dataset, key),
            "scorecard": results.scorecard,
            "warnings": results.warnings,
        }
    return summaries


def dataset_info(name: str) -> dict[str, Any]:
    """A summary of project dataset ``name`` (what ``curate info`` prints)."""
    dataset = open_dataset(name)
    record = project_info(dataset)
    return {
        "name": dataset.name,
        "n_samples": len(dataset),
        "rare_class": record.get("rare_class"),
        "classes": record.get("classes", []),
        "split": record.get("split"),
        "counts": count_samples(dataset),
        "saved_views": sorted(dataset.list_saved_views()),
        **list_stored_runs(dataset),
        "filters": filter_summaries(dataset),
    }
