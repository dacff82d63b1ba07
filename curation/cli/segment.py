"""Segmentation commands: segment (whole images -> crops) and segment-score."""

from __future__ import annotations

import click

from curation.cli.options import dataset_option, echo_json, json_option


@click.command()
@click.argument("images", nargs=-1, required=True, type=click.Path())
@dataset_option
@click.option(
    "--model",
    default=None,
    help="cpsam, classical or a Cellpose model file [default: cpsam if its weights are cached, "
    "else classical].",
)
@click.option("--channel", type=int, default=None, help="Channel to segment [default: all].")
@click.option("--diameter", type=float, default=None, help="Object diameter, px [default: auto].")
@click.option(
    "--split",
    type=click.Choice(["train", "val", "test", "pool"]),
    default="pool",
    show_default=True,
    help="Split of the crops.",
)
@click.option("--pad", type=int, default=4, show_default=True, help="Margin around instances.")
@click.option("--size", type=int, default=64, show_default=True, help="Crop side, px.")
@click.option("--mask-background", is_flag=True, help="Zero the pixels outside the instance.")
@click.option("--gpu/--cpu", default=None, help="Cellpose device [default: GPU when available].")
@click.option(
    "--save-labels",
    type=click.Path(file_okay=False),
    default=None,
    help="Also write each label image to this folder (<stem>_labels.tif).",
)
@json_option
def segment(images, name, as_json, **options) -> None:
    """Segment whole IMAGES into instances; add one crop per instance to the dataset.

    The whole images go to the dataset NAME-parents with their instances as detections, and
    each crop records its parent image, box and mask.
    """
    from curation.segment.api import segment_images

    report = segment_images(list(images), name, **options)
    if as_json:
        echo_json(report.__dict__)
        return
    click.echo(
        f"added {report.added} crops from {report.images} images to {report.dataset!r} "
        f"(whole images in {report.parents_dataset!r}; model {report.model})"
    )


@click.command("segment-score")
@click.argument("pred", type=click.Path())
@click.argument("truth", type=click.Path())
@json_option
def segment_score(pred, truth, as_json) -> None:
    """Score the instance label image PRED against the ground truth TRUTH.

    Instances are matched one-to-one (Hungarian, on IoU); F1 and AP (TP / (TP + FP + FN)) at
    IoU 0.5, and the AP averaged over IoU 0.5:0.95.
    """
    from curation.segment.api import score_files

    scores = score_files(pred, truth)
    if as_json:
        echo_json(scores.as_dict())
        return
    at50 = scores.at(0.5)
    click.echo(
        f"IoU 0.5: precision {at50.precision:.3f} recall {at50.recall:.3f} F1 {at50.f1:.3f} "
        f"AP {at50.average_precision:.3f} ({at50.tp} matched, {scores.n_pred} predicted, "
        f"{scores.n_true} true); AP@0.5:0.95 {scores.mean_ap:.3f}"
    )
