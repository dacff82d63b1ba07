"""Whole images -> instance crops in a project dataset, and scoring against ground truth.

:func:`segment_images` segments every image first (nothing is written if any image is
unreadable, has no channel ``channel`` or holds no instance), then

- adds the whole images to the dataset ``<NAME>-parents``, each with its instances as
  ``fo.Detections`` (box and mask per instance) in the field ``instances``, so the App shows
  where every crop came from;
- adds one crop per instance to the project dataset ``NAME`` (created if missing), as a real
  sample of split ``split`` (default ``pool``) whose ``group`` is its parent image, with
  ``parent`` (source file, parent sample id, parents dataset, instance label, detection id),
  ``bbox`` (``[x, y, w, h]`` relative to the parent) and ``instance_mask`` (the instance in the
  crop, an ``fo.Segmentation``). Each parent detection records its crop's sample id.

Crops are PNG files under the dataset's media folder. Whole images that a browser cannot show
(TIFF, 16-bit) get a display PNG there too; ``source_filepath`` keeps the original path.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import fiftyone as fo
import numpy as np

from brain.errors import InputError
from brain.images import read_array, write_png
from brain.progress import progress_bar
from brain.segment import make_segmenter
from brain.segment.crops import InstanceCrop, check_crop_params, display_uint8, extract_crops
from brain.segment.scoring import SegmentationScores, score_instances
from curation.datasets import check_name, dataset_exists, open_dataset
from curation.errors import CurateError
from curation.ingest import ingest_records
from curation.media import media_dir
from curation.readers import Record
from curation.schema import SPLITS

PARENTS_SUFFIX = "-parents"
PARENT_FIELD = "parent"
BBOX_FIELD = "bbox"
CROP_MASK_FIELD = "instance_mask"
INSTANCES_FIELD = "instances"
INSTANCE_LABEL = "instance"
_BROWSER_SAFE = frozenset({".png", ".jpg", ".jpeg"})


@dataclass
class SegmentReport:
    """What :func:`segment_images` did."""

    dataset: str
    parents_dataset: str
    model: str
    images: int
    added: int
    instances: dict[str, int] = field(default_factory=dict)


@dataclass
class _Segmented:
    path: Path
    image: np.ndarray
    labels: np.ndarray
    crops: list[InstanceCrop]

    @property
    def key(self) -> str:
        digest = hashlib.sha1(os.fsencode(self.path)).hexdigest()[:8]
        return f"{self.path.stem}-{digest}"


def parents_name(dataset_name: str) -> str:
    """Name of the dataset holding the whole images of project ``dataset_name``."""
    return f"{dataset_name}{PARENTS_SUFFIX}"


def _check_paths(paths: Sequence[str | os.PathLike]) -> list[Path]:
    if not paths:
        raise CurateError("no images to segment")
    resolved = [Path(p).expanduser().resolve() for p in paths]
    seen: set[Path] = set()
    for path in resolved:
        if path in seen:
            raise CurateError(f"image given twice: {path}")
        if path.is_dir():
            raise CurateError(f"{path} is a folder: pass image files")
        seen.add(path)
    return resolved


def _model_label(segmenter) -> str:
    """``classical``, or ``cellpose:<weights file>``."""
    weights = getattr(segmenter, "weights_", None)
    return f"{segmenter.name}:{weights}" if weights else segmenter.name


def _segment_all(paths, segmenter, channel, size, pad, mask_background) -> list[_Segmented]:
    done = []
    with progress_bar(total=len(paths), desc="segmenting", unit="img", leave=False) as progress:
        for path in paths:
            image = read_array(path)
            if image.shape[2] not in (1, 3):
                raise CurateError(
                    f"{path} has {image.shape[2]} channels; crops are written with 1 or 3"
                )
            try:
                labels = segmenter.segment(image, channel)
            except InputError as error:
                raise CurateError(f"{path}: {error}") from None
            crops = extract_crops(
                image, labels, size=size, pad=pad, mask_background=mask_background
            )
            done.append(_Segmented(path, image, labels, crops))
            progress.update()
    return done


def _parent_filepath(item: _Segmented, dataset_name: str) -> str:
    """The path the App shows for a whole image: the source, or a display PNG of it."""
    if item.path.suffix.lower() in _BROWSER_SAFE and item.image.dtype == np.uint8:
        return str(item.path)

    target = media_dir(dataset_name, "parents") / f"{item.key}.png"
    write_png(display_uint8(item.image), target)
    return str(target)


def _detections(item: _Segmented):
    return fo.Detections(
        detections=[
            fo.Detection(
                label=INSTANCE_LABEL,
                bounding_box=list(crop.bbox),
                mask=crop.mask,
                index=crop.label,
                area=crop.area,
            )
            for crop in item.crops
        ]
    )


def _add_parents(items: list[_Segmented], dataset_name: str, settings: dict) -> list:
    name = parents_name(dataset_name)
    dataset = fo.load_dataset(name) if fo.dataset_exists(name) else fo.Dataset(name)
    dataset.persistent = True
    samples = []
    for item in items:
        height, width, channels = item.image.shape
        sample = fo.Sample(
            filepath=_parent_filepath(item, dataset_name),
            metadata=fo.ImageMetadata(width=width, height=height, num_channels=channels),
        )
        sample["source_filepath"] = str(item.path)
        sample[INSTANCES_FIELD] = _detections(item)
        sample["segmentation"] = dict(settings)
        samples.append(sample)
    dataset.add_samples(samples, progress=False)
    return samples


def _crop_records(items: list[_Segmented], dataset_name: str, split: str):
    records = []
    for item in items:
        folder = media_dir(dataset_name, "crops", item.key)
        for crop in item.crops:
            records.append(
                Record(
                    filepath=str(folder / f"{item.key}_{crop.label:04d}.png"),
                    split=split,
                    group=item.key,
                    array=crop.image,
                )
            )
    return records


def _link(items, parents, records, dataset_name: str) -> None:
    """Store ``parent``, ``bbox`` and ``instance_mask`` on the crops, crop ids on the parents."""
    dataset = open_dataset(dataset_name)
    by_path = dict(zip(*dataset.values(["filepath", "id"]), strict=True))
    parent_docs, boxes, masks, crop_ids = [], [], [], []
    index = 0
    for item, parent in zip(items, parents, strict=True):
        detections = parent[INSTANCES_FIELD].detections
        for crop, detection in zip(item.crops, detections, strict=True):
            record = records[index]
            index += 1
            parent_docs.append(
                fo.DynamicEmbeddedDocument(
                    filepath=str(item.path),
                    sample_id=parent.id,
                    dataset=parents_name(dataset_name),
                    instance_label=crop.label,
                    detection_id=detection.id,
                )
            )
            boxes.append(list(crop.bbox))
            masks.append(fo.Segmentation(mask=crop.crop_mask.astype(np.uint8)))
            crop_ids.append(by_path[record.filepath])
            detection["crop_id"] = crop_ids[-1]
        parent.save()
    view = dataset.select(crop_ids, ordered=True)
    view.set_values(PARENT_FIELD, parent_docs)
    view.set_values(BBOX_FIELD, boxes)
    view.set_values(CROP_MASK_FIELD, masks)


def segment_images(
    paths: Sequence[str | os.PathLike],
    dataset_name: str,
    *,
    model: str | None = None,
    channel: int | None = None,
    diameter: float | None = None,
    split: str = "pool",
    pad: int = 4,
    size: int = 64,
    mask_background: bool = False,
    gpu: bool | None = None,
    save_labels: str | os.PathLike | None = None,
) -> SegmentReport:
    """Segment whole images into instances and add one crop sample per instance.

    Args:
        paths: whole images (any format :func:`brain.images.read_array` reads).
        dataset_name: the project dataset for the crops (created if it does not exist); the
            whole images go to ``<dataset_name>-parents``.
        model: ``"cpsam"``, ``"classical"``, a Cellpose model file, or ``None`` (Cellpose when
            its weights are cached, else classical).
        channel: the channel to segment (e.g. 2 for DAPI in blue); ``None``: all channels.
        diameter: typical object diameter in pixels; ``None``: estimated per image.
        split: split of the crops (``pool`` unless they are labelled elsewhere).
        pad: minimum margin around an instance in its crop, pixels.
        size: side of the square crops, pixels.
        mask_background: set the pixels outside the instance to 0 in the crops.
        gpu: Cellpose only: use the GPU (``None``: when available).
        save_labels: also write each image's label image to this folder as
            ``<image stem>_labels.tif`` (for :func:`score_files`).

    Returns:
        Counts and names; see the module docstring for the fields written.

    Raises:
        InputError: on any bad input (unreadable image, channel out of range, no instance
            found, bad parameters, image already segmented into this dataset); nothing is
            written then.
    """
    check_name(dataset_name)
    check_name(parents_name(dataset_name))
    if split not in SPLITS:
        raise CurateError(f"unknown split {split!r}; splits: {', '.join(SPLITS)}")
    check_crop_params(size, pad)
    resolved = _check_paths(paths)
    if save_labels is not None:
        stems = [p.stem for p in resolved]
        clash = next((s for s in stems if stems.count(s) > 1), None)
        if clash is not None:
            raise CurateError(f"two images are named {clash!r}: their label files would clash")
    segmenter = make_segmenter(model, diameter=diameter, gpu=gpu)
    parents = parents_name(dataset_name)
    if fo.dataset_exists(parents):
        done = set(fo.load_dataset(parents).values("source_filepath"))
        for path in resolved:
            if str(path) in done:
                raise CurateError(f"{path} is already segmented into {dataset_name!r}")
    items = _segment_all(resolved, segmenter, channel, size, pad, mask_background)

    settings = {
        "model": str(_model_label(segmenter)),
        "channel": channel,
        "diameter": diameter,
        "size": size,
        "pad": pad,
        "mask_background": mask_background,
    }
    new_parents = not fo.dataset_exists(parents)
    parent_samples = _add_parents(items, dataset_name, settings)
    records = _crop_records(items, dataset_name, split)
    try:
        ingest_records(
            records,
            dataset_name,
            source=f"segment:{settings['model']}",
            append=dataset_exists(dataset_name),
        )
    except Exception:  # undo the parents so a failed call adds nothing
        if new_parents:
            fo.load_dataset(parents).delete()
        else:
            fo.load_dataset(parents).delete_samples([s.id for s in parent_samples])
        raise
    _link(items, parent_samples, records, dataset_name)
    if save_labels is not None:
        for item in items:
            write_labels(item.labels, Path(save_labels) / f"{item.path.stem}_labels.tif")
    return SegmentReport(
        dataset=dataset_name,
        parents_dataset=parents,
        model=settings["model"],
        images=len(items),
        added=len(records),
        instances={str(item.path): len(item.crops) for item in items},
    )


def read_labels(path: str | os.PathLike) -> np.ndarray:
    """An instance label image from disk (one channel, integer values as stored).

    Raises:
        CurateError: if it is unreadable, has several channels or is not integer-valued.
    """
    array = read_array(path)
    if array.shape[2] != 1:
        raise CurateError(f"{path} has {array.shape[2]} channels; a label image has one")
    if not np.issubdtype(array.dtype, np.integer):
        raise CurateError(f"{path} holds {array.dtype} values; a label image holds integers")
    return array[:, :, 0]


def score_files(
    pred: str | os.PathLike, truth: str | os.PathLike, *, thresholds: Sequence[float] | None = None
) -> SegmentationScores:
    """Score a predicted label image file against a ground-truth label image file.

    See :func:`brain.segment.scoring.score_instances` (Hungarian matching on IoU).

    Raises:
        InputError: on unreadable files, non-label images or a size mismatch.
    """
    kwargs = {} if thresholds is None else {"thresholds": tuple(thresholds)}
    return score_instances(read_labels(pred), read_labels(truth), **kwargs)


def write_labels(labels: np.ndarray, path: str | os.PathLike) -> Path:
    """Write an instance label image as a 16-bit (or 32-bit, if needed) zlib TIFF."""
    import tifffile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    dtype = np.uint16 if labels.max(initial=0) < 65536 else np.uint32
    tifffile.imwrite(path, labels.astype(dtype), compression="zlib")
    return path
