"""`curate demo`'s pipeline end to end: the shipped study with its budgets cut down."""

from __future__ import annotations

import copy

import fiftyone as fo

from curation.demo_pipeline import demo_config, run_demo
from curation.experiment import parse_config

NAME = "demo-test"


def _small_study() -> dict:
    """The shipped demo study (same generators, conditions, filter), with tiny budgets."""
    study = copy.deepcopy(demo_config(NAME))
    study["classifier"]["epochs"] = 1
    for generator in study["generators"]:
        generator.update(n=12, train_steps=4)
        generator.setdefault("params", {})
        if generator["method"] == "bbdm":
            generator["steps"] = 4
            generator["params"]["preset"] = "tiny"
    return study


def test_shipped_demo_study_is_valid():
    config = parse_config(demo_config(NAME))
    assert [g.method for g in config.generators] == ["bbdm"]
    assert config.seeds >= 2 and config.augment == [True]


def test_demo_runs_end_to_end_and_resumes(tmp_path):
    messages: list[str] = []
    results = run_demo(NAME, tmp_path, echo=messages.append, progress=False, study=_small_study())
    report = tmp_path / "report" / "report.md"
    assert results["report"] == str(report) and report.is_file()
    # real, class-weighted, and per generator all / filtered / random-matched / oversampled
    assert len(results["tables"]) == 2 + 4
    assert any(v["headline"] for v in results["verdicts"])
    assert {g: c["before"] for g, c in results["filter_counts"].items()} == {
        "bbdm": 12,
    }
    dataset = fo.load_dataset(NAME)
    assert dataset.match({"origin": "real"}).count() == 1200  # 800 labelled + 400 pool
    assert dataset.match({"origin": "synthetic"}).count() == 12
    assert (tmp_path / "data" / "labels.csv").is_file()

    messages.clear()
    again = run_demo(NAME, tmp_path, echo=messages.append, progress=False, study=_small_study())
    assert any("continuing" in m for m in messages)
    # 2 real cells, the generator's 2 one-run cells + 2 per-seed arms x 2 seeds; the embedding
    assert sum("done earlier, skipped" in m for m in messages) == 2 + (2 + 4) + 1
    assert dataset.match({"origin": "synthetic"}).count() == 12
    assert again["tables"] == results["tables"]
