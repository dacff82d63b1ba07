"""Classifier commands: train, embed, similar."""

from __future__ import annotations

import click

from brain.settings import TrainSettings
from curation.cli.options import (
    devices_option,
    echo_json,
    json_option,
    overwrite_option,
    settings_options,
    show_progress,
)


def _backend_names() -> list[str]:
    from curation.runs.similarity import BACKENDS

    return BACKENDS.names()


@click.command()
@click.argument("name")
@click.option(
    "--run", "run", required=True, help="Run name (a rerun with the same settings replaces it)."
)
@click.option("--seeds", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="First seed.")
@click.option("--with", "with_view", default=None, help="A view added to the real train split.")
@settings_options(TrainSettings, skip=("devices",))
@click.option(
    "--labels",
    "label_field",
    default=None,
    help="Learn this field's labels (e.g. fine_label: all chromosome classes) for a richer "
    "embedding; metrics stay on the task [default: ground_truth].",
)
@click.option(
    "--cv",
    type=int,
    default=None,
    help="Grouped K-fold cross-validation over all real labelled samples: every rare sample is "
    "tested once (for small rare classes).",
)
@devices_option
@overwrite_option
@click.option("--threads", type=click.IntRange(min=1), default=None, help="Torch CPU threads.")
@json_option
def train(name: str, run: str, as_json: bool, threads: int | None, **options) -> None:
    """Train a ResNet on the real train split (plus --with VIEW) and report the rare class on
    the test split, mean +- std over seeds."""
    from brain.metrics import format_summary
    from curation.runs.train.fit import train_classifier

    inputs = {k: options.pop(k) for k in ("seeds", "seed", "with_view", "label_field", "cv")}
    report = train_classifier(
        name, run, num_threads=threads, progress=show_progress(as_json), **inputs, **options
    )
    if as_json:
        echo_json(report.summary)
        return
    for entry in report.per_seed:
        auc = "n/a" if entry["auc"] is None else f"{entry['auc']:.3f}"
        click.echo(
            f"seed {entry['seed']}: precision {entry['precision']:.3f} recall "
            f"{entry['recall']:.3f} f1 {entry['f1']:.3f} auc {auc} "
            + (f"(best epoch {entry['best_epoch']})" if "best_epoch" in entry else "(pooled)")
        )
    click.echo(f"run {run!r}: {format_summary(report.summary)}")
    click.echo(_format_at_specificity(report.per_seed))
    if report.cv:
        click.echo(
            f"{report.cv}-fold cross-validation: metrics above pooled over the folds; "
            f"spread over folds: {format_summary(report.fold_summary)}"
        )
    click.echo(f"test predictions: {report.predictions_field}, evaluation: {report.eval_key}")
    for warning in report.warnings:
        click.echo(f"warning: {warning}")


def _format_at_specificity(per_seed: list[dict]) -> str:
    """``"recall at val specificity 0.9: 0.550+-0.050 (test specificity 0.912+-0.010)"``."""
    from brain.stats import format_mean_std

    points = [entry["at_specificity"] for entry in per_seed]
    recall = format_mean_std([p["recall"] for p in points], digits=3)
    specificity = format_mean_std([p["test_specificity"] for p in points], digits=3)
    return (
        f"recall at val specificity {points[0]['target']:g}: {recall} "
        f"(test specificity {specificity})"
    )


@click.command()
@click.argument("name")
@click.option("--run", "run", required=True, help="The train run whose network embeds.")
@click.option("--view", default="all", show_default=True, help="Saved or built-in view.")
@click.option("--name", "embed_name", default=None, help="Embed run name [default: --run].")
@click.option("--field", default=None, help="Embedding field [default: emb_<name>].")
@click.option("--backend", type=click.Choice(_backend_names()), default="sklearn")
@click.option(
    "--url",
    default=None,
    help="Milvus or Qdrant server URL, Milvus Lite .db path or LanceDB folder [default: under "
    "the media folder].",
)
@click.option("--metric", type=click.Choice(["euclidean", "cosine"]), default="euclidean")
@click.option("--seed-index", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@overwrite_option
@click.option("--threads", type=click.IntRange(min=1), default=None, help="Torch CPU threads.")
@json_option
def embed(name: str, run: str, embed_name, threads, as_json: bool, **options) -> None:
    """Store penultimate-layer embeddings of a view and build a similarity index over them."""
    from curation.runs.embed.compute import compute_embeddings

    report = compute_embeddings(
        name, run, name=embed_name, num_threads=threads, progress=show_progress(as_json), **options
    )
    if as_json:
        keys = ("name", "field", "brain_key", "backend", "n", "dim")
        echo_json({key: getattr(report, key) for key in keys})
        return
    click.echo(
        f"embedded {report.n} samples ({report.dim}-d) into {report.field!r}; "
        f"{report.backend} index {report.brain_key!r}"
    )


@click.command()
@click.argument("name")
@click.argument("sample_id")
@click.option("-k", "k", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--run", "embed_name", default=None, help="Embed run [default: the latest].")
@click.option("--all-origins", is_flag=True, help="Synthetic samples as neighbours too.")
@json_option
def similar(name: str, sample_id: str, k: int, embed_name, all_origins: bool, as_json) -> None:
    """List the real samples nearest to SAMPLE_ID in the embedding space, with distances."""
    from dataclasses import asdict

    from curation.runs.neighbours import find_similar

    neighbours = find_similar(name, sample_id, k=k, name=embed_name, real_only=not all_origins)
    if as_json:
        echo_json([asdict(entry) for entry in neighbours])
        return
    for entry in neighbours:
        click.echo(
            f"{entry.distance:10.4f}  {entry.id}  {entry.origin}/{entry.split}/"
            f"{entry.label}  {entry.filepath}"
        )
