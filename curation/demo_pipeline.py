"""The demo behind ``curate demo``: the whole product on built-in SIMULATED data.

Simulated FISH crops -> ingest -> ResNet on real train -> BBDM from the DAPI pool -> embeddings
-> UMAP + Gaussian-mixture filter -> SSIM and leakage -> every arm of the study (real,
class-weighted, all, filtered, random-matched, oversampled) -> verdicts -> report. The study is
``demo_experiment.yaml`` beside this module. A rerun continues the finished steps (``fresh=True``
starts over).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from curation.datasets import dataset_exists, open_dataset
from curation.demo import make_demo_data
from curation.experiment import parse_config, run_experiment
from curation.ingest import ingest_csv, ingest_pool
from curation.runs import delete_project
from curation.schema import project_info

DEMO_RARE = "translocation"
DEMO_LABELLED = 800
DEMO_POOL = 400
DEMO_CONFIG = Path(__file__).with_name("demo_experiment.yaml")


def prepare_demo_dataset(
    name: str, root: Path, *, fresh: bool = False, echo: Callable[[str], None] = print
) -> str:
    """Make the simulated data under ``root/data`` (kept between runs) and ingest it as ``name``;
    an existing demo dataset is kept (so the study resumes) unless ``fresh``, which deletes it
    with everything made for it (runs, checkpoints, synthetic images)."""
    data = root / "data"
    labels_csv = data / "labels.csv"
    if not labels_csv.is_file():
        echo(f"[data] making simulated FISH crops in {data}")
        make_demo_data(data, n_labelled=DEMO_LABELLED, n_pool=DEMO_POOL)
    if dataset_exists(name) and fresh:
        delete_project(name)  # and the checkpoints and images made for it
    if dataset_exists(name):
        sources = [s["kind"] for s in project_info(open_dataset(name)).get("sources", [])]
        if {f"csv:{labels_csv}", f"pool:{data / 'pool'}"} <= set(sources):  # both ingests done
            echo(f"[data] dataset {name!r} exists: continuing (use --fresh to start over)")
            return name
    report = ingest_csv(labels_csv, name, rare=DEMO_RARE, overwrite=True)
    pool = ingest_pool(data / "pool", name, append=True)
    echo(f"[data] ingested {report.added} labelled crops and {pool.added} pool crops as {name!r}")
    return name


def demo_config(name: str) -> dict[str, Any]:
    """The demo study as a config mapping, on dataset ``name``."""
    return {**yaml.safe_load(DEMO_CONFIG.read_text()), "dataset": name}


def run_demo(
    name: str,
    root: Path,
    *,
    fresh: bool = False,
    echo: Callable[[str], None] = print,
    progress: bool = True,
    study: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run the demo study (``study``: another config mapping than ``demo_experiment.yaml``, e.g.
    with smaller budgets; its ``dataset`` is set to ``name``); returns the experiment's results
    (``report`` is the report path)."""
    root.mkdir(parents=True, exist_ok=True)
    prepare_demo_dataset(name, root, fresh=fresh, echo=echo)
    config = parse_config({**study, "dataset": name} if study else demo_config(name))
    return run_experiment(config, out=root / "report", echo=echo, progress=progress)
