"""The data model: field names, values and the project record kept on each dataset.

One persistent FiftyOne dataset per project. Every sample has:

=================  ==========================  ===============================================
field              type                        meaning
=================  ==========================  ===============================================
``ground_truth``   ``fo.Classification``       the label (``None`` for pool samples)
``split``          ``str``                     ``train`` / ``val`` / ``test`` / ``pool``
``origin``         ``str``                     ``real`` / ``synthetic``
``group``          ``str``                     patient, slide or karyotype (leak-free splits)
``fine_label``     ``fo.Classification``       optional finer label (e.g. the chromosome class
                                               when the task is one class against the rest)
``lineage``        embedded document           synthetic samples only: ``source_id``,
                                               ``generator``, ``run``, ``checkpoint_digest``,
                                               ``seed``, ``params`` (dict)
=================  ==========================  ===============================================

``dataset.info["synthcurate"]`` holds the project record: the rare (positive) class, the class
list, and how the split was made (seed, fractions, by group or not).
"""

from __future__ import annotations

from typing import Any

import fiftyone as fo

from brain.size_policy import SizePolicy
from brain.splits import LABELLED_SPLITS

LABEL_FIELD = "ground_truth"
SPLIT_FIELD = "split"
ORIGIN_FIELD = "origin"
GROUP_FIELD = "group"
LINEAGE_FIELD = "lineage"
FINE_LABEL_FIELD = "fine_label"

SPLITS = (*LABELLED_SPLITS, "pool")
ORIGINS = ("real", "synthetic")
REAL, SYNTHETIC = ORIGINS
OTHER_LABEL = "other"

INFO_KEY = "synthcurate"
SCHEMA_VERSION = 1

LINEAGE_SUBFIELDS: dict[str, type] = {
    "source_id": fo.StringField,
    "source_filepath": fo.StringField,
    "generator": fo.StringField,
    "run": fo.StringField,
    "checkpoint_digest": fo.StringField,
    "seed": fo.IntField,
    "params": fo.DictField,
}


def ensure_schema(dataset: fo.Dataset) -> None:
    """Declare the project's fields on ``dataset`` (idempotent)."""
    schema = dataset.get_field_schema()
    if LABEL_FIELD not in schema:
        dataset.add_sample_field(
            LABEL_FIELD, fo.EmbeddedDocumentField, embedded_doc_type=fo.Classification
        )
    for name in (SPLIT_FIELD, ORIGIN_FIELD, GROUP_FIELD):
        if name not in schema:
            dataset.add_sample_field(name, fo.StringField)
    if LINEAGE_FIELD not in schema:
        dataset.add_sample_field(
            LINEAGE_FIELD, fo.EmbeddedDocumentField, embedded_doc_type=fo.DynamicEmbeddedDocument
        )
        for sub, ftype in LINEAGE_SUBFIELDS.items():
            dataset.add_sample_field(f"{LINEAGE_FIELD}.{sub}", ftype)


def make_lineage(
    *,
    source_id: str | None,
    source_filepath: str | None,
    generator: str,
    run: str,
    checkpoint_digest: str | None,
    seed: int,
    params: dict[str, Any],
) -> fo.DynamicEmbeddedDocument:
    """A ``lineage`` document for one synthetic sample."""
    return fo.DynamicEmbeddedDocument(
        source_id=source_id,
        source_filepath=source_filepath,
        generator=generator,
        run=run,
        checkpoint_digest=checkpoint_digest,
        seed=int(seed),
        params=dict(params),
    )


def project_info(dataset: fo.Dataset) -> dict[str, Any]:
    """The project record stored on ``dataset`` (empty if synthcurate did not make it)."""
    return dict(dataset.info.get(INFO_KEY, {}))


def set_project_info(dataset: fo.Dataset, **values: Any) -> None:
    """Update the project record on ``dataset`` and save it."""
    record = project_info(dataset)
    record.update(values)
    record["schema_version"] = SCHEMA_VERSION
    dataset.info[INFO_KEY] = record
    dataset.save()


def rare_class(dataset: fo.Dataset) -> str | None:
    """The label of the rare (positive) class, if recorded."""
    return project_info(dataset).get("rare_class")


def size_policy(dataset: fo.Dataset) -> SizePolicy:
    """The dataset's :class:`~brain.size_policy.SizePolicy` (``SizePolicy()``, images as they
    are, when none is set). The images themselves are never changed."""
    return SizePolicy.from_record(project_info(dataset).get("size_policy"))


def set_size_policy(dataset: fo.Dataset, policy: SizePolicy) -> None:
    """Record the dataset's size policy (``SizePolicy()`` removes it)."""
    set_project_info(dataset, size_policy=policy.as_record())


def run_size_policy(
    dataset: fo.Dataset, size: int | None = None, pad: str | None = None
) -> SizePolicy:
    """The size policy a run uses: the dataset's, with the ``size`` and ``pad`` the run asks
    for instead (the one place a policy is resolved; see :meth:`SizePolicy.resolve`).

    Raises:
        InputError: a bad size or padding, or a padding where no size applies.
    """
    return SizePolicy.resolve(size_policy(dataset), size, pad)
