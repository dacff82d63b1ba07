"""The demo pipeline behind ``curate demo``: built-in simulated data through every stage."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from curation.demo import make_demo_data
from curation.info import dataset_info
from curation.ingest import ingest_csv, ingest_pool

DEMO_RARE = "translocation"


def prepare_demo_dataset(name: str, root: Path, *, echo: Callable[[str], None] = print) -> str:
    """Make the simulated data under ``root/data`` (kept between runs) and ingest it as ``name``
    (replacing an older demo dataset)."""
    data = root / "data"
    labels_csv = data / "labels.csv"
    if not labels_csv.is_file():
        echo(f"making simulated FISH crops in {data} ...")
        make_demo_data(data)
    report = ingest_csv(labels_csv, name, rare=DEMO_RARE, overwrite=True)
    pool = ingest_pool(data / "pool", name, append=True)
    echo(f"ingested {report.added} labelled crops and {pool.added} pool crops into {name!r}")
    return name


def run_demo(name: str, root: Path, *, echo: Callable[[str], None] = print) -> dict:
    """Run the demo and return the dataset summary."""
    root.mkdir(parents=True, exist_ok=True)
    prepare_demo_dataset(name, root, echo=echo)
    summary = dataset_info(name)
    echo(f"rare class: {summary['rare_class']}")
    for origin, splits in summary["counts"].items():
        for split, labels in splits.items():
            parts = ", ".join(f"{label}: {count}" for label, count in labels.items())
            echo(f"  {origin:<9} {split:<5} {parts}")
    echo(f"browse it: curate app {name}")
    return summary
