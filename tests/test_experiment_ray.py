"""A study's cells as Ray tasks on a local Ray of 2 workers: the same tables as in this process,
a worker killed mid-cell retried, a rerun that submits nothing, and an address that does not
answer refused at once with nothing written."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import fiftyone as fo
import pytest
import yaml
from test_experiment import ingest_study_data
from test_ingest import assert_one_line_error
from test_runs import snapshot

from curation.cli import main
from curation.experiment.cluster import EXIT_ONCE
from curation.experiment.report import markdown_table

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]

DATASET = "ray-study"
# the train runs, after the study's name: the oversampled arm (one run per seed) is added to
# every study with a synthetic arm
RUNS = ("real", "copies-all", "copies-pass", "copies-over-s0", "copies-over-s1")
N_CELLS = 4


def _config(root: Path, name: str, **changes) -> Path:
    config = {
        "dataset": DATASET,
        "name": name,
        "seeds": 2,
        "augment": [False],
        "arms": ["real", "all", "filtered"],
        "classifier": {"epochs": 1, "batch_size": 64},
        "generators": [{"method": "copies", "n": 8}],
        "filter": {"method": "umap_gmm"},
        "ssim": {"enabled": False},
        "leakage": {"enabled": False},
        **changes,
    }
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _study(capsys, config: Path, out: Path, *flags: str) -> tuple[dict, str]:
    """Run ``curate experiment``; returns the report's data and the log."""
    capsys.readouterr()
    code = main(["experiment", str(config), "--out", str(out), "--json", *flags])
    log = capsys.readouterr().err
    assert code == 0, log
    return json.loads((out / "report.json").read_text()), log


def _named_apart(rows: list[dict]) -> list[dict]:
    """The table rows without the run names (each study names its runs after itself)."""
    return [
        {k: v for k, v in r.items() if k not in ("run", "runs", "predictions_field")} for r in rows
    ]


@pytest.fixture(scope="module")
def studies(tmp_path_factory) -> Path:
    """A folder for the studies' configs and reports, and the small dataset they run on."""
    root = tmp_path_factory.mktemp("ray-study")
    ingest_study_data(root, DATASET)
    return root


def test_ray_cells_match_in_process_and_a_killed_worker_is_retried(studies, capsys, monkeypatch):
    """The same study in this process and on a local Ray of 2 workers, one of which dies
    after training a cell, before its result is back."""
    here, _ = _study(capsys, _config(studies, "here"), studies / "here")
    marker = studies / "killed-once"
    monkeypatch.setenv(EXIT_ONCE, str(marker))
    started = time.monotonic()
    on_ray, log = _study(
        capsys, _config(studies, "onray"), studies / "onray", "--ray", "--workers", "2"
    )
    print(f"ray study: {time.monotonic() - started:.1f} s")
    assert marker.exists()  # a worker did die mid-cell
    assert "[ray] trainings run on a local Ray of 2 CPU(s), one CPU each" in log
    for run in RUNS:  # each cell submitted once, stored once (its retry is Ray's)
        assert log.count(f"[train] onray-{run}: ") == 2, log
        assert f"[train] onray-{run}: stored" in log
    assert len(on_ray["tables"]) == len(here["tables"]) == N_CELLS
    assert _named_apart(on_ray["tables"]) == _named_apart(here["tables"])
    assert markdown_table(on_ray["tables"], on_ray["seeds"]) == markdown_table(
        here["tables"], here["seeds"]
    )
    dataset = fo.load_dataset(DATASET)
    for run in RUNS:  # the driver stored every run with its predictions field
        assert dataset.has_sample_field(f"pred_onray_{run.replace('-', '_')}"), run


def test_a_rerun_submits_nothing(studies, capsys):
    before = _stored_train_runs("onray")
    assert len(before) == len(RUNS)
    _, log = _study(capsys, _config(studies, "onray"), studies / "onray", "--ray", "--workers", "2")
    assert "(Ray task)" not in log and "stored" not in log
    assert log.count("done earlier, skipped") == len(RUNS) + 1, log  # and the embedding
    assert _stored_train_runs("onray") == before


def _stored_train_runs(study: str) -> list[tuple[str, object]]:
    """``(key, when stored)`` of the study's train runs."""
    dataset = fo.load_dataset(DATASET)
    dataset.reload()
    keys = [key for key in dataset.list_runs() if key.startswith(f"train_{study}")]
    return sorted((key, dataset.get_run_info(key).timestamp) for key in keys)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--address", "ray://127.0.0.1:{port}"], "does not answer (127.0.0.1:{port}"),
        (["--address", "ray://10.255.255.1:10001"], "'ray://10.255.255.1:10001' does not answer"),
        (["--address", "ray:/nowhere"], "use local, auto, ray://HOST:PORT or HOST:PORT"),
        (["--address", "ray://h:1", "--workers", "2"], "a cluster has its own"),
    ],
)
def test_a_ray_address_that_does_not_answer_exits_2_at_once(
    studies, tmp_path, capsys, flags, message
):
    port = _closed_port()
    flags = [f.format(port=port) for f in flags]
    before = snapshot(DATASET)
    capsys.readouterr()
    started = time.monotonic()
    code = main(["experiment", str(_config(tmp_path, "bad")), "--out", str(tmp_path / "r"), *flags])
    elapsed = time.monotonic() - started
    err = capsys.readouterr().err
    assert code == 2, err
    assert_one_line_error(err)
    assert message.format(port=port) in err
    assert elapsed < 8, elapsed
    assert snapshot(DATASET) == before
    assert not (tmp_path / "r").exists()


def test_a_bad_ray_section_exits_2(studies, tmp_path, capsys):
    path = _config(tmp_path, "bad", ray={"workers": 0})
    capsys.readouterr()
    assert main(["experiment", str(path)]) == 2
    assert "ray workers must be an integer >= 1" in capsys.readouterr().err
