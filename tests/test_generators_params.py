"""Generator parameters through scikit-learn (get_params, set_params, clone), the shared training
settings of the network generators, and the not-fitted error. No training: no torch needed."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from brain.errors import InputError
from generators import GENERATORS
from generators.bbdm import BBDMGenerator
from generators.classic import CopyGenerator
from generators.cyclegan import CycleGANGenerator
from generators.masked_ddpm import MaskedDDPMGenerator
from generators.sessions import make_generator, with_defaults
from generators.training import DiffusionSettings, TrainingSettings

SHARED = {"batch_size", "lr", "flip", "min_train_images"}
DIFFUSION = SHARED | {"preset", "num_timesteps", "sampling_steps", "ema_decay"}

#: Every network generator's parameters at their defaults: the public keywords and their values.
DEFAULTS = {
    BBDMGenerator: {
        "image_size": 64,
        "channels": 3,
        "condition": "channel:2",
        "preset": "cpu",
        "num_timesteps": 1000,
        "sampling_steps": 200,
        "batch_size": 8,
        "lr": 1e-4,
        "ema_decay": 0.995,
        "eta": 1.0,
        "flip": True,
        "min_train_images": 2,
        "seed": 0,
    },
    MaskedDDPMGenerator: {
        "image_size": 64,
        "channels": 3,
        "condition": "masked",
        "preset": "cpu",
        "num_timesteps": 1000,
        "sampling_steps": 100,
        "jump_length": 10,
        "jump_n_sample": 3,
        "batch_size": 8,
        "lr": 1e-4,
        "ema_decay": 0.995,
        "flip": True,
        "min_train_images": 2,
        "seed": 0,
    },
    CycleGANGenerator: {
        "image_size": 64,
        "channels": 3,
        "condition": "channel:2",
        "ngf": 64,
        "ndf": 64,
        "n_blocks": None,
        "n_layers_d": None,
        "batch_size": 1,
        "lr": 2e-4,
        "lambda_cycle": 10.0,
        "lambda_identity": 0.5,
        "pool_size": 50,
        "flip": True,
        "min_train_images": 2,
        "seed": 0,
    },
}
NETWORKS = list(DEFAULTS)


@pytest.mark.parametrize("cls", NETWORKS, ids=lambda cls: cls.method)
def test_network_defaults_are_the_public_keywords(cls):
    assert cls().get_params() == DEFAULTS[cls]
    assert cls.default_params() == DEFAULTS[cls]
    assert cls.param_names() == sorted(DEFAULTS[cls])
    assert with_defaults(cls.method, {}) == DEFAULTS[cls]  # a card that lacks them


def test_shared_settings_are_declared_once():
    assert {f.name for f in dataclasses.fields(TrainingSettings)} == SHARED
    assert {f.name for f in dataclasses.fields(DiffusionSettings)} == DIFFUSION
    assert set(CycleGANGenerator.training_defaults.__dataclass_fields__) == SHARED
    for cls in (BBDMGenerator, MaskedDDPMGenerator):
        assert set(cls.training_defaults.__dataclass_fields__) == DIFFUSION
    with pytest.raises(dataclasses.FrozenInstanceError):
        TrainingSettings().lr = 1.0  # type: ignore[misc]


@pytest.mark.parametrize("cls", NETWORKS, ids=lambda cls: cls.method)
def test_shared_keywords_are_stored_unchanged(cls):
    generator = cls(32, 1, batch_size=3, lr=5e-4, flip=False, min_train_images=4, seed=7)
    params = generator.get_params()
    assert (params["image_size"], params["channels"], params["seed"]) == (32, 1, 7)
    assert {k: params[k] for k in SHARED} == {
        "batch_size": 3,
        "lr": 5e-4,
        "flip": False,
        "min_train_images": 4,
    }
    assert (generator.batch_size, generator.lr, generator.flip) == (3, 5e-4, False)
    assert clone(generator).get_params() == params
    with pytest.raises(TypeError, match="nope"):
        cls(nope=1)


def test_set_params_and_repr():
    generator = BBDMGenerator(preset="tiny")
    assert generator.set_params(lr=3e-4, eta=0.5, sampling_steps=10) is generator
    assert (generator.lr, generator.eta, generator.sampling_steps) == (3e-4, 0.5, 10)
    assert generator.get_params()["lr"] == 3e-4
    with pytest.raises(ValueError, match="Invalid parameter 'nope'"):
        generator.set_params(nope=1)
    assert repr(CycleGANGenerator(ngf=8)).startswith("CycleGANGenerator(")
    assert "ngf=8" in repr(CycleGANGenerator(ngf=8))
    assert repr(CopyGenerator()) == "CopyGenerator()"


def test_run_parameters_reach_the_shared_settings():
    generator = make_generator("cyclegan", (16, 16, 3), None, 3, {"lr": 1e-3, "flip": False})
    assert (generator.lr, generator.flip, generator.batch_size, generator.seed) == (
        1e-3,
        False,
        1,
        3,
    )
    with pytest.raises(InputError, match="batch_size must be at least 1"):
        make_generator("masked_ddpm", (16, 16, 3), None, 0, {"preset": "tiny", "batch_size": 0})
    with pytest.raises(InputError, match="unknown model preset"):
        make_generator("masked_ddpm", (16, 16, 3), None, 0, {"preset": "huge"})


@pytest.mark.parametrize("method", GENERATORS.names())
def test_an_unfitted_generator_raises_not_fitted(method, tmp_path):
    generator = GENERATORS.get(method)(16, 3)
    sources = np.zeros((1, 16, 16, 3), np.uint8)
    with pytest.raises(NotFittedError, match="is not fitted; call fit or load first"):
        generator.generate(sources, [0])
    with pytest.raises(NotFittedError):
        generator.save(tmp_path / "g")
    with pytest.raises(NotFittedError):
        _ = generator.checkpoint_digest
    assert not (tmp_path / "g").exists()


def test_a_fitted_generator_passes_the_check():
    images = np.random.default_rng(0).integers(0, 255, (3, 16, 16, 3), dtype=np.uint8)
    generator = CopyGenerator(16, 3).fit(images, progress=False)
    assert generator.__sklearn_is_fitted__()
    assert generator.generate(images[:1], [0]).shape == (1, 16, 16, 3)
