"""Dataset commands: ingest, info, list, delete, cleanup, demo-data."""

from __future__ import annotations

import click

from curation.cli.options import dataset_option, echo_json, json_option


def _common_ingest_options(command):
    options = [
        dataset_option,
        click.option("--rare", default=None, help="The rare (positive) label."),
        click.option(
            "--origin", type=click.Choice(["real", "synthetic"]), default="real", show_default=True
        ),
        click.option("--binary", is_flag=True, help="Map every label but --rare to 'other'."),
        click.option("--overwrite", is_flag=True, help="Replace an existing dataset."),
        click.option("--append", is_flag=True, help="Add to an existing dataset."),
        click.option("--skip-bad", is_flag=True, help="Skip unreadable images (listed)."),
        click.option(
            "--max-pixels",
            type=int,
            default=None,
            help="Refuse images of more pixels (default: none refused; above 89,478,485 a "
            "warning).",
        ),
        click.option("--seed", type=int, default=0, show_default=True, help="Split seed."),
        click.option(
            "--fractions",
            default="0.7,0.15,0.15",
            show_default=True,
            help="train,val,test fractions when the input has no split.",
        ),
        json_option,
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _run_ingest(function, path, *, name, fractions, as_json, **options) -> None:
    try:
        parsed = [float(x) for x in fractions.split(",")]
    except ValueError:
        raise click.BadParameter(f"--fractions must be numbers, got {fractions!r}") from None
    report = function(path, name, fractions=parsed, **options)
    for warning in report.warnings:
        click.echo(f"curate: warning: {warning}", err=True)
    if as_json:
        echo_json(report.__dict__)
        return
    for line in report.cleaned:
        click.echo(f"cleanup: {line}")
    click.echo(f"added {report.added} samples to {report.dataset!r}")
    for path in report.skipped:
        click.echo(f"skipped unreadable image: {path}")


@click.group()
def ingest() -> None:
    """Add images to a project dataset (a new one, --overwrite or --append)."""


@ingest.command("dir")
@click.argument("path", type=click.Path())
@_common_ingest_options
def ingest_dir_command(path, **options) -> None:
    """A class-per-folder tree (PATH/<label>/*, optionally PATH/<split>/<label>/*)."""
    from curation.ingest import ingest_dir

    _run_ingest(ingest_dir, path, **options)


@ingest.command("csv")
@click.argument("path", type=click.Path())
@click.option("--path-column", default="filepath", show_default=True)
@click.option("--label-column", default="label", show_default=True)
@click.option("--split-column", default="split", show_default=True, help="Used when present.")
@click.option("--group-column", default="group", show_default=True, help="Used when present.")
@click.option(
    "--fine-column",
    default=None,
    help="Finer labels (stored as fine_label; --binary keeps the original labels there).",
)
@_common_ingest_options
def ingest_csv_command(path, **options) -> None:
    """A CSV manifest (filepath,label[,split,group]); relative paths are resolved against it."""
    from curation.ingest import ingest_csv

    _run_ingest(ingest_csv, path, **options)


@ingest.command("npz")
@click.argument("path", type=click.Path())
@click.option("--class-names", default=None, help="Comma-separated names of labels 0, 1, ...")
@_common_ingest_options
def ingest_npz_command(path, class_names, **options) -> None:
    """A MedMNIST-style .npz (train/val/test images and labels), written once as PNG."""
    from curation.ingest import ingest_npz

    names = [n.strip() for n in class_names.split(",")] if class_names else None
    _run_ingest(ingest_npz, path, class_names=names, **options)


@ingest.command("pool")
@click.argument("path", type=click.Path())
@_common_ingest_options
def ingest_pool_command(path, **options) -> None:
    """Unlabelled images as the pool split (usually with --append)."""
    from curation.ingest import ingest_pool

    _run_ingest(ingest_pool, path, **options)


@click.command()
@click.argument("name")
@json_option
def info(name: str, as_json: bool) -> None:
    """Counts by origin, split and label, the rare class and the runs stored."""
    from curation.info import dataset_info

    summary = dataset_info(name)
    if as_json:
        echo_json(summary)
        return
    click.echo(f"dataset {summary['name']}: {summary['n_samples']} samples")
    click.echo(f"rare class: {summary['rare_class']}   classes: {', '.join(summary['classes'])}")
    if summary["split"]:
        click.echo(f"split: {summary['split']}")
    click.echo(f"{'origin':<10} {'split':<6} {'label':<20} {'count':>7}")
    for origin, splits in summary["counts"].items():
        for split, labels in splits.items():
            for label, count in labels.items():
                click.echo(f"{origin:<10} {split:<6} {label:<20} {count:>7}")
    for kind in ("runs", "brain_runs", "evaluations", "saved_views"):
        if summary[kind]:
            click.echo(f"{kind.replace('_', ' ')}: {', '.join(summary[kind])}")
    for key, run in summary["filters"].items():
        _echo_filter_run(key, run)


def _echo_filter_run(key: str, run: dict) -> None:
    from brain.filters.scorecard import format_scorecard
    from brain.level_choice import Fixed

    choice = run["level_choice"]["choice"]
    calibrated = "" if choice == Fixed.name else f", calibrated: {choice}"
    level = "n/a" if run["level"] is None else f"{run['level']:.4g}"
    click.echo(
        f"filter {key} ({run['method']}, level {level}{calibrated}): {run['n_pass']} pass, "
        f"{run['n_reject']} reject, {run['n_manual']} manual decisions"
    )
    if run["reasons"]:
        click.echo("  reasons: " + ", ".join(f"{r} {n}" for r, n in run["reasons"].items()))
    if run.get("reasons_by_generator"):
        _echo_reasons_by_generator(run["reasons_by_generator"])
    for generator, card in run["scorecard"].items():
        click.echo(f"  scorecard {generator}: {format_scorecard(card)}")
    for warning in run["warnings"]:
        click.echo(f"  warning: {warning}")


def _echo_reasons_by_generator(counts: dict[str, dict[str, int]]) -> None:
    """A generator x reason table of sample counts."""
    reasons = sorted({reason for by_reason in counts.values() for reason in by_reason})
    width = max(len("generator"), *(len(g) for g in counts))
    columns = [max(len(r), 5) for r in reasons]
    click.echo("  reasons by generator:")
    header = " ".join(f"{r:>{w}}" for r, w in zip(reasons, columns, strict=True))
    click.echo(f"    {'generator':<{width}} {header}")
    for generator, by_reason in counts.items():
        cells = (f"{by_reason.get(r, 0):>{w}}" for r, w in zip(reasons, columns, strict=True))
        click.echo(f"    {generator:<{width}} {' '.join(cells)}")


@click.command()
@click.argument("name")
@click.option(
    "--size",
    default=None,
    help="Pad every image to a centred square and resize it to SIZE x SIZE (8-1024) wherever it "
    "is fed to a network, generator, SSIM or export; 'none' removes the policy.",
)
@click.option(
    "--pad",
    default=None,
    help="Padding: border (the default: the image border's colour, keeps the background), edge, "
    "reflect or constant:VALUE.",
)
@json_option
def config(name: str, size: str | None, pad: str | None, as_json: bool) -> None:
    """Show or set the dataset's size policy (the images themselves are never changed)."""
    from brain.size_policy import SizePolicy
    from curation.datasets import open_dataset
    from curation.errors import CurateError
    from curation.schema import set_size_policy, size_policy

    dataset = open_dataset(name)
    if size is not None:
        if size.lower() == "none":
            set_size_policy(dataset, SizePolicy())
        else:
            try:
                value = int(size)
            except ValueError:
                message = f"--size takes a number of pixels or 'none', got {size!r}"
                raise CurateError(message) from None
            set_size_policy(dataset, SizePolicy.resolve(SizePolicy(), value, pad))
    policy = size_policy(dataset)
    if as_json:
        echo_json({"size": policy.size, "pad": policy.pad if policy.size else None})
    elif policy.size is None:
        click.echo(f"{name}: no size policy (images must share one size, or pass --size)")
    else:
        click.echo(
            f"{name}: images padded ({policy.pad}) and resized to {policy.size} x {policy.size}"
        )


@click.command("list")
@click.option("--all", "show_all", is_flag=True, help="Also what killed or running commands left.")
def list_command(show_all: bool) -> None:
    """List the project datasets (--all: and temporary datasets, checkpoint folders and appends
    of running commands, or left by killed ones)."""
    from curation.datasets import list_projects
    from curation.leftovers import describe, find_leftovers

    for name in list_projects():
        click.echo(name)
    if show_all:
        for leftover in find_leftovers():
            click.echo(describe(leftover))


@click.command()
@click.argument("name", required=False)
def cleanup(name: str | None) -> None:
    """Remove what killed commands left (of NAME, or of every dataset); what running commands
    are building is kept."""
    from curation.datasets import check_name
    from curation.leftovers import clean_leftovers

    done = clean_leftovers(check_name(name) if name is not None else None)
    for line in done:
        click.echo(line)
    click.echo(f"cleaned up {len(done)} leftover(s)")


@click.command()
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def delete(name: str, yes: bool) -> None:
    """Delete a project dataset and the images synthcurate wrote for it (sources are kept)."""
    from curation.datasets import open_dataset
    from curation.runs import delete_project

    open_dataset(name)
    if not yes:
        click.confirm(f"delete dataset {name!r}?", abort=True)
    delete_project(name)
    click.echo(f"deleted {name!r}")


@click.command("demo-data")
@click.argument("out_dir", type=click.Path())
@click.option("--n-labelled", type=int, default=2000, show_default=True)
@click.option("--n-pool", type=int, default=2000, show_default=True)
@click.option("--prevalence", type=float, default=0.08, show_default=True)
@click.option("--size", type=int, default=64, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def demo_data(out_dir, **options) -> None:
    """Write the built-in SIMULATED FISH chromosome crop set to OUT_DIR."""
    from curation.demo import make_demo_data

    layout = make_demo_data(out_dir, **options)
    click.echo(
        f"wrote {layout.n_labelled} labelled crops ({layout.n_translocations} translocations) "
        f"and {layout.n_pool} pool crops to {layout.root}; manifest: {layout.labels_csv}"
    )
