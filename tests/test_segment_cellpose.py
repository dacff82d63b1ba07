"""The Cellpose backend: a real run on a model file built here, and the missing-weights errors.

Cellpose-SAM weights cannot be downloaded offline, so the test writes a Cellpose 4 model file
itself: the ViT encoder keeps its random initialisation (Cellpose loads partial state dicts), the
read-out layer is zero and its bias paints the same 8 x 8 pattern into every 8 x 8 token: flows
pointing at the token's centre and a positive cell probability. Cellpose's own dynamics then turn
that into one instance per token, a grid the test knows exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

from brain.errors import InputError
from brain.segment import default_model, make_segmenter
from brain.segment.cellpose_backend import (
    CellposeSegmenter,
    cellpose_installed,
    find_weights,
)
from brain.segment.scoring import score_instances

needs_cellpose = pytest.mark.skipif(not cellpose_installed(), reason="cellpose not installed")


def _grid_model(path, patch: int = 8, nout: int = 3, feat: int = 256):
    import torch

    yy, xx = np.mgrid[0:patch, 0:patch].astype(np.float32) - (patch - 1) / 2
    norm = np.hypot(yy, xx) + 1e-6
    pattern = np.stack([-yy / norm * 5, -xx / norm * 5, np.full_like(yy, 5.0)])
    state = {
        "W2": torch.eye(nout * patch**2).reshape(nout * patch**2, nout, patch, patch),
        "out.weight": torch.zeros(nout * patch**2, feat, 1, 1),
        "out.bias": torch.from_numpy(pattern.reshape(-1).copy()),
    }
    torch.save(state, path)
    return path


@pytest.fixture
def no_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CELLPOSE_LOCAL_MODELS_PATH", str(tmp_path / "empty-cache"))
    return tmp_path / "empty-cache"


@needs_cellpose
@pytest.mark.slow
def test_cellpose_runs_on_a_model_file(tmp_path, no_cache):
    import torch

    torch.set_num_threads(1)
    weights = _grid_model(tmp_path / "grid_model.pth")
    segmenter = make_segmenter(str(weights), gpu=False)
    assert isinstance(segmenter, CellposeSegmenter)
    image = np.random.default_rng(0).integers(0, 255, (64, 64, 1)).astype(np.uint8)
    labels = segmenter.segment(image)
    truth = (np.arange(64)[:, None] // 8) * 8 + np.arange(64)[None, :] // 8 + 1
    assert labels.dtype == np.int32 and labels.max() == 64
    assert score_instances(labels, truth.astype(np.int32)).at(0.9).f1 == 1.0
    assert segmenter.weights_ == weights


def test_missing_weights_one_line(no_cache):
    assert find_weights("cpsam") is None
    assert default_model() == "classical"
    with pytest.raises(InputError) as error:
        make_segmenter("cpsam")
    message = str(error.value)
    assert "\n" not in message
    assert "cannot be downloaded" in message and "cannot train from scratch" in message
    assert str(no_cache) in message
    with pytest.raises(InputError, match="model file not found"):
        make_segmenter(str(no_cache / "mine.pth"))
    with pytest.raises(InputError, match="unknown model"):
        make_segmenter("cyto3")


@needs_cellpose
def test_cached_weights_make_cellpose_the_default(no_cache):
    no_cache.mkdir()
    (no_cache / "cpsam").write_bytes(b"not really weights")
    assert find_weights("cpsam") == no_cache / "cpsam"
    assert default_model() == "cpsam"
    assert isinstance(make_segmenter(), CellposeSegmenter)


@needs_cellpose
def test_not_a_cellpose_file_is_a_user_error(tmp_path, no_cache):
    import torch

    path = tmp_path / "other.pth"
    torch.save({"weight": torch.zeros(2)}, path)
    with pytest.raises(InputError, match="cannot load Cellpose model"):
        make_segmenter(str(path)).segment(np.zeros((32, 32, 1), np.uint8))


def test_channel_checked_before_loading(tmp_path, no_cache):
    path = tmp_path / "any.pth"
    path.write_bytes(b"x")
    segmenter = CellposeSegmenter(str(path))
    with pytest.raises(InputError, match="channel 3 out of range"):
        segmenter.segment(np.zeros((16, 16, 3), np.uint8), channel=3)
    assert getattr(segmenter, "model_", None) is None
