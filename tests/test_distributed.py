"""Data-parallel training and sharded generation on 2 real CPU processes (gloo): the classifier
and BBDM train with a falling loss, their checkpoints load in one process, sharded generation
writes the same images as one process, and ``curate generate --devices 2`` adds each planned
sample exactly once, also after a ``kill -9`` mid-generation."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import fiftyone as fo
import numpy as np
import psutil
import pytest
import torch
from conftest import curate_process, kill_when
from fiftyone import ViewField as F

from brain import distributed
from brain.data import ImageSet
from brain.errors import InputError
from brain.images import write_png
from brain.metrics import rare_class_metrics
from brain.settings import TrainSettings
from brain.training import fit, run_network
from curation.cli import main as cli_main
from curation.runs.records import load_run
from generators import Generator
from generators.bbdm import BBDMGenerator
from generators.parallel import Batch, fit_on_devices, generate_on_devices, write_batch
from generators.training import TRAIN_STATE_FILE

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]
TWO = ["cpu", "cpu"]


def _needs_two_cores() -> None:
    if distributed.cpu_slots() < 2:
        pytest.skip("needs 2 CPU cores for 2 processes")


def _blobs(n: int, seed: int) -> ImageSet:
    """Grey noise; every fourth image (the rare class) has a bright square."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) % 4 == 0).astype(np.int64)
    images = rng.integers(0, 100, (n, 1, 16, 16)).astype(np.uint8)
    images[labels == 1, :, 4:12, 4:12] += 120
    return ImageSet(
        [str(i) for i in range(n)], torch.from_numpy(images), labels, [None] * n, [None] * n
    )


def _fish(n: int, size: int = 16) -> np.ndarray:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    images = np.zeros((n, size, size, 3), np.uint8)
    for i in range(n):
        cy, cx = rng.uniform(size * 0.3, size * 0.7, 2)
        blob = ((yy - cy) ** 2 + (xx - cx) ** 2 < rng.uniform(3, 5) ** 2) * 200
        images[i, ..., 2], images[i, ..., 0] = blob, blob * (xx < cx)
    return images


def _tiny_bbdm() -> BBDMGenerator:
    return BBDMGenerator(
        16, 3, preset="tiny", num_timesteps=50, sampling_steps=3, batch_size=4, lr=1e-3
    )


def test_more_devices_than_present_is_refused():
    with pytest.raises(InputError, match="CPU core"):
        distributed.plan_devices(distributed.cpu_slots() + 1, "cpu")
    with pytest.raises(InputError, match="at least 1"):
        distributed.plan_devices(0, "cpu")
    assert distributed.plan_devices(1, "cpu") == ["cpu"]


def test_classifier_trains_on_two_processes_and_loads_in_one():
    _needs_two_cores()
    train, val = _blobs(128, 0), _blobs(64, 1)
    settings = TrainSettings(epochs=3, batch_size=16, device="cpu", devices=2)
    result = fit(
        train,
        val,
        num_classes=2,
        rare_index=1,
        mean=[50.0],
        std=[40.0],
        settings=settings,
        seed=0,
        progress=False,
    )
    losses = [entry["loss"] for entry in result.history]
    assert len(losses) == 3 and losses[-1] < losses[0] / 2
    # the kept network runs here, in this process, and separates the classes
    proba = run_network(
        result.model,
        val.images,
        mean=torch.full((1, 1, 1, 1), 50.0),
        std=torch.full((1, 1, 1, 1), 40.0),
        device="cpu",
    )
    metrics = rare_class_metrics(val.labels, proba, 1)
    assert metrics["auc"] == pytest.approx(result.best_val["auc"]) and metrics["auc"] > 0.95
    assert metrics["f1"] == pytest.approx(result.best_val["f1"])
    with pytest.raises(InputError, match=r"make 1 batch.*fewer than .*devices.* 2"):
        fit(
            _blobs(8, 0),
            val,
            num_classes=2,
            rare_index=1,
            mean=[50.0],
            std=[40.0],
            settings=settings.replace(batch_size=16),
            seed=0,
            progress=False,
        )


def _fit_bbdm(folder: Path, steps: int, resume: bool = False) -> Generator:
    return fit_on_devices(
        _tiny_bbdm(),
        TWO,
        targets=_fish(16),
        sources=None,
        masks=None,
        steps=steps,
        checkpoint_dir=folder,
        checkpoint_every=10,
        resume=resume,
        progress=False,
    )


def _fit_bbdm_until(folder: Path, steps: int, fail_at: int) -> None:
    """Worker: train like :func:`_fit_bbdm` and fail at step ``fail_at`` (an interruption)."""

    def interrupt(step: int, loss: float) -> None:
        if step == fail_at:
            raise RuntimeError(f"interrupted at step {step}")

    _tiny_bbdm().fit(
        _fish(16),
        steps=steps,
        checkpoint_dir=folder,
        checkpoint_every=10,
        progress=False,
        callback=interrupt,
    )


def test_bbdm_trains_on_two_processes_resumes_exactly_and_loads_in_one(tmp_path):
    _needs_two_cores()
    data = _fish(16)
    fitted = _fit_bbdm(tmp_path / "straight", 40)
    history = fitted.loss_history_
    assert len(history) == 40 and np.mean(history[-5:]) < 0.7 * np.mean(history[:5])
    state = torch.load(tmp_path / "straight" / TRAIN_STATE_FILE, weights_only=True)
    assert state["step"] == 40 and len(state["ranks"]) == 2
    assert state["ranks"][0]["numpy_rng"] != state["ranks"][1]["numpy_rng"]
    # interrupted after 20 of 40 steps, resumed on 2 processes: the same weights as straight
    with pytest.raises(distributed.WorkerError, match="interrupted at step 21"):
        distributed.launch(_fit_bbdm_until, (tmp_path / "halves", 40, 21), TWO)
    assert torch.load(tmp_path / "halves" / TRAIN_STATE_FILE, weights_only=True)["step"] == 20
    resumed = _fit_bbdm(tmp_path / "halves", 40, resume=True)
    assert resumed.checkpoint_digest == fitted.checkpoint_digest
    assert resumed.loss_history_ == pytest.approx(history)
    # the checkpoint is an ordinary saved generator: one process loads it and generates
    loaded = Generator.load(tmp_path / "straight")
    assert loaded.checkpoint_digest == fitted.checkpoint_digest
    assert loaded.generate(data[:2], [0, 1]).shape == (2, 16, 16, 3)
    # a training of 2 processes resumes only with 2
    with pytest.raises(InputError, match="trained by 2 process"):
        _tiny_bbdm().fit(
            data, steps=50, checkpoint_dir=tmp_path / "straight", resume=True, progress=False
        )


def _networks_of_every_rank() -> list[list[str]]:
    """Worker: train each network generator a few steps; every rank's digest of every network
    (all parameters and buffers, trained and averaged), gathered to rank 0."""
    import hashlib

    from generators.cyclegan import CycleGANGenerator
    from generators.masked_ddpm import MaskedDDPMGenerator

    digests = []
    for generator in (
        _tiny_bbdm(),
        CycleGANGenerator(16, 3, ngf=4, ndf=4, batch_size=2),
        MaskedDDPMGenerator(16, 3, preset="tiny", num_timesteps=50, batch_size=4),
    ):
        generator.fit(_fish(8), _fish(8)[::-1].copy(), steps=5, progress=False)
        for name, net in sorted(generator.nets_.items()):
            sha = hashlib.sha256()
            for value in net.state_dict().values():
                sha.update(value.detach().cpu().numpy().tobytes())
            digests.append(f"{generator.method}/{name}/{sha.hexdigest()}")
    return distributed.gather(digests)


def test_every_network_generator_keeps_one_network_on_all_ranks():
    _needs_two_cores()
    rank0, rank1 = distributed.launch(_networks_of_every_rank, (), TWO)
    methods = {digest.split("/")[0] for digest in rank0}
    assert methods == {"bbdm", "cyclegan", "masked_ddpm"} and len(rank0) >= 6
    assert rank0 == rank1  # gradients averaged: the ranks' networks never drift apart


def test_sharded_generation_writes_what_one_process_writes(tmp_path):
    _needs_two_cores()
    data = _fish(7)
    saved = _tiny_bbdm().fit(data, steps=3, progress=False).save(tmp_path / "saved")
    sources = [str(tmp_path / "src" / f"{i}.png") for i in range(7)]
    for image, path in zip(data, sources, strict=True):
        write_png(image, Path(path))

    def batches(out: str) -> list[Batch]:
        return [
            Batch(
                sources[j : j + 3],
                list(range(j, min(j + 3, 7))),
                [str(tmp_path / out / f"{k}.png") for k in range(j, min(j + 3, 7))],
            )
            for j in range(0, 7, 3)
        ]

    reported: list[int] = []
    generate_on_devices(
        saved, batches("two"), TWO, size=None, pad=None, steps=None, on_batch=reported.append
    )
    assert sorted(reported) == [0, 1, 2]
    one = Generator.load(saved)
    for batch in batches("one"):
        write_batch(one, batch, size=None, pad=None, steps=None)
    for k in range(7):
        assert (tmp_path / "two" / f"{k}.png").read_bytes() == (
            tmp_path / "one" / f"{k}.png"
        ).read_bytes()


def _database_of_every_rank() -> list[tuple[str, str]]:
    """Worker: the database and media folder this process would use, gathered to rank 0."""
    env = os.environ
    return distributed.gather((env["FIFTYONE_DATABASE_URI"], env["FIFTYONE_DEFAULT_DATASET_DIR"]))


def test_workers_spawned_from_a_test_module_use_the_session_database():
    """A spawned worker imports its test module, and with it conftest: it must not start a
    mongod of its own (its exit skips atexit, so one would outlive the session)."""
    _needs_two_cores()
    sessions = lambda: set(Path(tempfile.gettempdir()).glob("synthcurate-tests-*"))  # noqa: E731
    before = sessions()
    ours = (os.environ["FIFTYONE_DATABASE_URI"], os.environ["FIFTYONE_DEFAULT_DATASET_DIR"])
    assert distributed.launch(_database_of_every_rank, (), TWO) == [ours, ours]
    assert sessions() == before


def _synthetic(name: str, run: str):
    return fo.load_dataset(name).match((F("origin") == "synthetic") & (F("lineage.run") == run))


def test_generate_on_two_devices_adds_each_sample_once_also_after_a_kill(project, capsys):
    _needs_two_cores()
    args = [
        *("generate", project, "-m", "bbdm", "-r", "dp", "--n", "24", "--batch-size", "3"),
        *("--devices", "2", "--train-steps", "4", "--steps", "3", "--size", "16"),
        *("-p", "preset=tiny", "-p", "num_timesteps=50", "-p", "batch_size=4"),
    ]
    process = curate_process(*args)
    children: list[psutil.Process] = []

    def mid_generation() -> bool:
        children[:] = psutil.Process(process.pid).children(recursive=True) or children
        return 3 <= len(_synthetic(project, "dp")) < 24

    kill_when(process, mid_generation, timeout=240)
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, "worker processes outlived their killed launcher"
    added_before = len(_synthetic(project, "dp"))

    assert cli_main(args) == 0
    assert "added" in capsys.readouterr().out
    view = _synthetic(project, "dp")
    pairs = list(zip(view.values("lineage.source_id"), view.values("lineage.seed"), strict=True))
    paths = view.values("filepath")
    assert len(view) == 24 and len(set(pairs)) == 24 and len(set(paths)) == 24
    assert all(Path(p).is_file() for p in paths) and added_before < 24
    config, results = load_run(fo.load_dataset(project), "generate", "dp")
    assert config["devices"] == 2 and results["total"] == 24 and results["status"] == "complete"


def test_train_on_two_devices_gives_a_run_that_embeds_in_one_process(project, capsys):
    _needs_two_cores()
    train = ["train", project, "--run", "dp", "--epochs", "2", "--size", "16", "--devices", "2"]
    assert cli_main(train) == 0
    config, results = load_run(fo.load_dataset(project), "train", "dp")
    assert config["devices"] == 2 and len(results["per_seed"]) == 1
    history_ok = results["per_seed"][0]["epochs_run"] == 2
    assert cli_main(["embed", project, "--run", "dp", "--device", "cpu"]) == 0
    dataset = fo.load_dataset(project)
    vectors = np.array(dataset.values("emb_dp"))
    assert history_ok and vectors.shape[0] == len(dataset) and np.isfinite(vectors).all()
