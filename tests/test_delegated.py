"""Long App operators as FiftyOne delegated operations: queued the way the App queues them, run by
a real ``fiftyone delegated launch`` worker process on the test database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import fiftyone as fo
import numpy as np
import pytest
import yaml
from fiftyone.operators.delegated import DelegatedOperationService
from fiftyone.operators.executor import ExecutionContext, ExecutionError, ExecutionRunState

from brain.errors import InputError
from brain.images import write_png
from curation.ingest import ingest_dir
from curation.media import media_root
from curation.plugins import enable_plugins, operator_uri
from curation.runs.records import list_keys, list_runs
from curation.runs.train import field_names, run_folder, train_classifier

GOOD, BAD = "deleg-good", "deleg-bad"  # BAD has no rare-class sample in its val split
LONG = ("train_classifier", "compute_embeddings", "generate_samples")
TERMINAL = (ExecutionRunState.COMPLETED, ExecutionRunState.FAILED)


def _split_tree(root: Path, counts: dict[str, dict[str, int]]) -> Path:
    """Random 12x12 images ``root/<split>/<label>/i.png``, ``counts[split][label]`` of each."""
    rng = np.random.default_rng(0)
    for split, labels in counts.items():
        for label, n in labels.items():
            for i in range(n):
                write_png(
                    rng.integers(0, 255, (12, 12, 3), dtype=np.uint8),
                    root / split / label / f"{i}.png",
                )
    return root


@pytest.fixture(scope="module")
def projects(tmp_path_factory) -> tuple[str, str]:
    root = tmp_path_factory.mktemp("delegated")
    good = {"train": {"a": 12, "r": 12}, "val": {"a": 3, "r": 3}, "test": {"a": 3, "r": 3}}
    bad = {"train": {"a": 4, "r": 4}, "val": {"a": 3}, "test": {"a": 2, "r": 2}}
    ingest_dir(_split_tree(root / "good", good), GOOD, rare="r")
    ingest_dir(_split_tree(root / "bad", bad), BAD, rare="r")
    enable_plugins()
    return GOOD, BAD


def _form(operator: str, dataset: str, **params):
    """The input form ``operator`` resolves for ``params`` (as the App asks for it)."""
    import fiftyone.operators as foo

    ctx = ExecutionContext(request_params={"dataset_name": dataset, "params": params})
    return foo.get_operator(operator_uri(operator)).resolve_input(ctx).type


def _errors(form) -> dict[str, str]:
    return {n: p.error_message for n, p in form.properties.items() if getattr(p, "invalid", False)}


def _queue(operator: str, dataset: str, **params) -> str:
    """Queue ``operator`` as the App does when its user picks "Schedule"; the operation's ID."""
    import fiftyone.operators as foo

    result = foo.execute_operator(
        operator_uri(operator), {"dataset": dataset, "params": params}, request_delegation=True
    )
    assert result.delegated and result.error is None
    return result.result["id"]


def test_long_operators_are_delegated(projects):
    import fiftyone.operators as foo

    from curation.plugins import PLUGINS_DIR
    from curation.plugins.synthcurate import OPERATORS

    manifest = yaml.safe_load((PLUGINS_DIR / "synthcurate" / "fiftyone.yml").read_text())
    assert manifest["operators"] == [op.operator_name for op in OPERATORS]
    names = {op.operator_name for op in OPERATORS}
    assert set(LONG) | {"run_filter"} <= names
    assert {operator_uri(n) for n in names} <= {op.uri for op in foo.list_operators()}

    for name in LONG:
        config = foo.get_operator(operator_uri(name)).config
        assert (config.allow_delegated_execution, config.allow_immediate_execution) == (True, False)
    run_filter = foo.get_operator(operator_uri("run_filter"))
    assert run_filter.config.allow_immediate_execution
    assert run_filter.config.default_choice_to_delegated
    ctx = ExecutionContext(
        request_params={"dataset_name": GOOD, "params": {"calibrate": "retrain"}}
    )
    assert run_filter.resolve_delegation(ctx) is True  # retraining per level: always delegated


def test_forms_show_bad_inputs_and_refuse_to_queue(projects):
    errors = _errors(_form("train_classifier", GOOD, run="bad name!", epochs=0, seeds=0, size=4))
    assert errors == {
        "run": "invalid run name 'bad name!' for run: use letters, digits, '_' or '-' "
        "(not first), at most 100 characters",
        "epochs": "epochs must be at least 1, got 0",
        "seeds": "seeds must be at least 1, got 0",
    }
    assert _errors(_form("train_classifier", GOOD, run="r", epochs=1, seeds=1, size=4)) == {
        "size": "size must lie between 8 and 1024 pixels, got 4"
    }
    assert _errors(_form("train_classifier", GOOD, run="r", epochs=1, seeds=2, size=16)) == {}

    embed = _form("compute_embeddings", GOOD)
    assert "run" not in embed.properties
    assert _errors(embed) == {"error": "No train run on this dataset: train a classifier first."}

    assert "train_steps" not in _form("generate_samples", GOOD, method="smote").properties
    errors = _errors(_form("generate_samples", GOOD, method="bbdm", run="g", n=0, train_steps=0))
    assert errors == {
        "n": "n must be at least 1, got 0",
        "train_steps": "train_steps must be at least 1, got 0",
    }

    service = DelegatedOperationService()
    before = service.count(filters={})
    with pytest.raises(ExecutionError, match=r"Path: epochs\. Reason: epochs must be at least 1"):
        _queue("train_classifier", GOOD, run="r", epochs=0, seeds=1)
    with pytest.raises(ExecutionError, match="Reason: No train run on this dataset"):
        _queue("compute_embeddings", GOOD, run="r")
    assert service.count(filters={}) == before


def _launch_worker(log: Path) -> subprocess.Popen:
    """``fiftyone delegated launch`` on the test database and the plugins folder of ``curate
    app`` (both in this process's environment), one torch thread."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    assert env["FIFTYONE_PLUGINS_DIR"] and env["FIFTYONE_DATABASE_URI"]
    command = [str(Path(sys.executable).with_name("fiftyone")), "delegated", "launch"]
    with log.open("wb") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)


def _stop(worker: subprocess.Popen) -> None:
    """Ctrl+C, as the worker's own message says; a kill if it does not exit."""
    if worker.poll() is None:
        worker.send_signal(signal.SIGINT)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def _wait_until_done(service, ids: list[str], worker, log: Path, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while True:
        docs = [service.get(i) for i in ids]
        if all(doc.run_state in TERMINAL for doc in docs):
            return docs
        assert worker.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, ([d.run_state for d in docs], log.read_text()[-3000:])
        time.sleep(0.25)


@pytest.mark.slow
def test_a_worker_runs_queued_operations(projects, tmp_path):
    with pytest.raises(InputError) as refused:  # what the API (and the CLI) says to BAD
        train_classifier(BAD, "r", epochs=1, progress=False, num_threads=1)
    assert str(refused.value) == "no rare-class sample in the val split"
    service = DelegatedOperationService()
    ids = [
        _queue("train_classifier", GOOD, run="r", epochs=1, seeds=1),
        _queue("train_classifier", BAD, run="r", epochs=1, seeds=1),
        _queue("generate_samples", GOOD, method="copies", run="g", n=3),
    ]
    try:
        good, bad, generated = (service.get(i) for i in ids)
        assert {op.run_state for op in (good, bad, generated)} == {ExecutionRunState.QUEUED}
        assert good.label == "synthcurate: train classifier r"
        nothing_ran = fo.load_dataset(GOOD)
        assert list_runs(nothing_ran) == [] and not run_folder(GOOD, "r").exists()
        assert len(nothing_ran) == 36 and not nothing_ran.has_sample_field("emb_r")

        log = tmp_path / "worker.log"
        worker = _launch_worker(log)
        try:
            good, bad, generated = _wait_until_done(service, ids, worker, log)
            ids.append(_queue("compute_embeddings", GOOD, run="r"))  # needs the train run
            (embedded,) = _wait_until_done(service, ids[-1:], worker, log)
            ids.append(_queue("run_filter", GOOD, key="f", method="confidence", calibrate="off"))
            (filtered,) = _wait_until_done(service, ids[-1:], worker, log)
        finally:
            _stop(worker)

        assert good.run_state == ExecutionRunState.COMPLETED, good.result.error
        output = good.result.result
        assert output["run"] == "r" and output["n_train"] == 24 and "f1" in output["summary"]
        assert (good.status.progress, good.status.label) == (1.0, output["summary"])
        dataset = fo.load_dataset(GOOD)
        dataset.reload()  # the worker changed it
        assert list_runs(dataset, "train") == ["r"]
        pred_field, eval_key = field_names("r")
        assert len(dataset.exists(pred_field)) == 6  # the test split
        assert eval_key in dataset.list_evaluations()
        assert (run_folder(GOOD, "r") / "seed_0").is_dir()

        assert generated.run_state == ExecutionRunState.COMPLETED, generated.result.error
        assert generated.result.result["added"] == 3
        assert embedded.run_state == ExecutionRunState.COMPLETED, embedded.result.error
        assert embedded.result.result == {"n": 36 + 3, "dim": 512, "field": "emb_r"}
        dataset.reload()
        keys = {key for key, _, _ in list_keys(dataset)}
        assert keys == {"train_r", "generate_g", "embed_r", "filter_f"}
        assert len(dataset.match({"origin": "synthetic"})) == 3
        assert len(dataset.exists("emb_r")) == len(dataset) == 36 + 3

        assert filtered.run_state == ExecutionRunState.COMPLETED, filtered.result.error
        assert filtered.result.result["n_synthetic"] == 3
        dataset.reload()
        assert len(dataset.match_tags(["f:pass", "f:reject"])) == 3

        assert bad.run_state == ExecutionRunState.FAILED
        last_line = bad.result.error.strip().splitlines()[-1]
        assert last_line == f"brain.errors.InputError: {refused.value}"
        assert list_runs(fo.load_dataset(BAD)) == [] and not (media_root(BAD) / "runs").exists()
    finally:
        for op_id in ids:
            service.delete_operation(op_id)
