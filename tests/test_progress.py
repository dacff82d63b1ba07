"""Progress off a terminal: one plain line per epoch, seed, step group or study cell, with the
time elapsed and left (``brain.progress``); the real ``curate train`` with stderr piped, as a
command in the background prints it, and ``curate generate`` with stderr captured."""

from __future__ import annotations

import io
import re

import fiftyone as fo
import numpy as np
import pytest
from conftest import curate_process

from brain.images import write_png
from brain.progress import LineProgress, every_nth, format_duration, progress_bar

DURATION = r"(\d+ s|\d+ min \d\d s|\d+ h \d\d min)"
TIMES = rf", {DURATION} elapsed, ~{DURATION} left"


class _Clock:
    """Seconds that advance only when told."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_durations_read_as_seconds_minutes_or_hours():
    assert format_duration(0.4) == "0 s"
    assert format_duration(42) == "42 s"
    assert format_duration(184) == "3 min 04 s"
    assert format_duration(7500) == "2 h 05 min"


def test_a_line_every_n_steps_and_at_the_end_with_elapsed_and_left():
    clock, stream = _Clock(), io.StringIO()
    bar = LineProgress(total=5, desc="train x", unit="step", every=2, stream=stream, clock=clock)
    for _ in range(5):
        clock.now += 10
        bar.set_postfix(loss="0.5")
        bar.update()
    assert stream.getvalue().splitlines() == [
        "train x: 2/5 steps (loss 0.5), 20 s elapsed, ~30 s left",
        "train x: 4/5 steps (loss 0.5), 40 s elapsed, ~10 s left",
        "train x: 5/5 steps (loss 0.5), 50 s elapsed, ~0 s left",
    ]


def test_a_resumed_loop_estimates_from_its_own_rate():
    clock, stream = _Clock(), io.StringIO()
    bar = LineProgress(
        total=100, desc="t", unit="step", every=10, initial=50, stream=stream, clock=clock
    )
    clock.now += 30
    bar.update(10)  # 10 steps in 30 s, 40 to go
    assert stream.getvalue() == "t: 60/100 steps, 30 s elapsed, ~2 min 00 s left\n"


def test_iterating_prints_after_each_item_and_big_updates_print_once():
    stream = io.StringIO()
    items = list(LineProgress(["a", "b"], desc="cells", unit="run", stream=stream))
    assert items == ["a", "b"]
    assert [line.split(",")[0] for line in stream.getvalue().splitlines()] == [
        "cells: 1/2 runs",
        "cells: 2/2 runs",
    ]
    stream = io.StringIO()
    bar = LineProgress(total=40, desc="g", unit="image", every=every_nth(40), stream=stream)
    bar.update(32)  # one batch crossing many multiples of `every`: one line
    bar.update(8)
    assert len(stream.getvalue().splitlines()) == 2
    assert every_nth(2000) == 100 and every_nth(3) == 1


def test_off_a_terminal_only_loops_that_ask_for_lines_print(capsys):
    assert isinstance(progress_bar(total=3, desc="e", unit="epoch", every=1), LineProgress)
    inner = progress_bar(range(3), desc="batches", unit="batch", leave=False)
    assert list(inner) == [0, 1, 2]
    off = progress_bar(total=3, desc="e", unit="epoch", every=1, enabled=False)
    off.update(3)
    assert capsys.readouterr().err == ""


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> str:
    """A small project: 34 labelled 16-px images (10 rare) and a pool of 8."""
    from curation.ingest import ingest_dir, ingest_pool

    root = tmp_path_factory.mktemp("progress")
    rng = np.random.default_rng(0)
    for folder, n in {"labelled/normal": 24, "labelled/rare": 10, "pool": 8}.items():
        for i in range(n):
            write_png(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8), root / folder / f"{i}.png")
    ingest_dir(root / "labelled", "progress-small", rare="rare")
    ingest_pool(root / "pool", "progress-small", append=True)
    yield "progress-small"
    if fo.dataset_exists("progress-small"):
        fo.load_dataset("progress-small").delete()


def _lines(err: str, pattern: str) -> list[str]:
    return [line for line in err.splitlines() if re.fullmatch(pattern, line)]


@pytest.mark.slow
def test_curate_train_in_the_background_prints_a_line_per_epoch_and_seed(small):
    process = curate_process(
        "train", small, "--run", "p", "--epochs", "2", "--seeds", "2", "--size", "16",
        "--threads", "1",
    )  # fmt: skip
    _, err = process.communicate(timeout=300)
    err = err.decode()
    assert process.returncode == 0, err
    assert "\r" not in err and "it/s" not in err  # no bar drawn into the pipe
    for seed in (0, 1):
        epochs = _lines(err, rf"seed {seed}: [12]/2 epochs \(loss \S+, val_f1 \S+\){TIMES}")
        assert [line.split(":")[1][:4] for line in epochs] == [" 1/2", " 2/2"], err
    seeds = _lines(err, rf"seeds: [12]/2 seeds \(seed [01], test_f1 \S+\){TIMES}")
    assert len(seeds) == 2, err


def test_curate_generate_off_a_terminal_prints_training_and_sampling_lines(small, capsys):
    """In this process (stderr captured, not a terminal): a tiny BBDM, 4 steps, 4 images."""
    from curation.cli import main

    args = [
        "generate", small, "--method", "bbdm", "--run", "pb", "--n", "4", "--batch-size", "2",
        "--train-steps", "4", "--steps", "3", "-p", "preset=tiny", "-p", "num_timesteps=20",
        "-p", "batch_size=2", "--threads", "1",
    ]  # fmt: skip
    capsys.readouterr()
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "\r" not in err
    training = _lines(err, rf"train bbdm: [1-4]/4 steps \(loss \S+\){TIMES}")
    assert len(training) == 4, err
    sampling = _lines(err, rf"generate bbdm: [24]/4 images{TIMES}")
    assert len(sampling) == 2, err
