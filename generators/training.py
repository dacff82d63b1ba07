"""The training loop shared by the generators that train networks (BBDM, CycleGAN, masked DDPM).

It owns what makes training resumable and reproducible:

- all randomness comes from two generators seeded by the generator's ``seed``: a numpy one
  (batch indices, flips, boxes, image pools) and a torch one (noise, timesteps); networks are
  initialised under ``torch.manual_seed(seed)`` inside ``fork_rng`` (the global RNG is untouched);
- a checkpoint is one file, ``training_state.pt`` (networks, optimizers, learning-rate schedulers,
  method extras such as EMA weights, both RNG states, the step, the loss history, the parameters
  and a digest of the training images), replaced atomically; loaded with ``weights_only=True``;
  a saved generator (card + weights) is written beside it after each checkpoint;
- ``resume=True`` restores all of it, so training ``N`` steps in two interrupted halves gives the
  same weights as training ``N`` steps at once (same thread count, same machine).

Data-parallel (inside :func:`brain.distributed.launch`, see :mod:`generators.parallel`): every
process builds the same networks (same seed), draws its own batches and noise (its generators
are seeded by ``seed`` and its rank), and each optimizer step applies the gradient averaged over
processes (:meth:`TorchGenerator._step`), so the networks stay identical; the loss history is
the mean over processes. Rank 0 writes the checkpoint, which holds every rank's random state: a
run resumes with the same number of processes.

Small rare classes: a method trains on as few as ``min_train_images`` rare-class images (a
parameter, default and floor :data:`MIN_TRAIN_IMAGES` = 2); :mod:`generators.batches` draws the
batches (heavier augmentation below 8 images).

Shared hyperparameters: every network generator takes the :class:`TrainingSettings` keywords,
the diffusion ones the :class:`DiffusionSettings` keywords too; a method declares only its own
parameters and overrides the shared defaults it changes with ``training_defaults``.

:class:`DiffusionGenerator` adds what BBDM and the masked DDPM share: a UNet trained with Adam
whose exponential moving average generates.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from brain import distributed
from brain.devices import resolve_device
from brain.errors import InputError
from generators.base import Capabilities, Generator
from generators.batches import TrainingData, few_images_warning
from generators.cards import CARD_FILE, read_card
from generators.tensors import load_module_weights, module_weights

if TYPE_CHECKING:
    import torch

TRAIN_STATE_FILE = "training_state.pt"
#: The fewest rare-class images a network is trained on (the floor of ``min_train_images``).
MIN_TRAIN_IMAGES = 2


@dataclass(frozen=True)
class TrainingSettings:
    """The training hyperparameters every network generator takes as constructor keywords,
    with their defaults (a method's ``training_defaults`` may change them).

    Attributes:
        batch_size: training batch size.
        lr: Adam learning rate.
        flip: random horizontal and vertical flips during training (``False``: no augmentation).
        min_train_images: the fewest rare-class images to train on (at least
            :data:`MIN_TRAIN_IMAGES`).
    """

    batch_size: int = 8
    lr: float = 1e-4
    flip: bool = True
    min_train_images: int = MIN_TRAIN_IMAGES


@dataclass(frozen=True)
class DiffusionSettings(TrainingSettings):
    """:class:`TrainingSettings` plus what the diffusion generators share.

    Attributes:
        preset: UNet size (``tiny``, ``cpu``, ``gpu``, ``gpu-large``; see ``bbdm.model``).
        num_timesteps: diffusion training steps ``T``.
        sampling_steps: default number of sampling steps (``generate(steps=...)`` overrides).
        ema_decay: EMA decay per update.
    """

    preset: str = "cpu"
    num_timesteps: int = 1000
    sampling_steps: int = 200
    ema_decay: float = 0.995


def _normalised(params: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(params, sort_keys=True))


class TorchGenerator(Generator):
    """A generator trained by steps, with checkpoints and exact resume.

    Subclasses implement:

    - ``_build(total_steps)``: create ``self.nets_`` (name -> module, all trained or averaged
      state), ``self.optimizers_`` and ``self.lr_schedulers_`` (name -> object);
    - ``_train_step(data, total_steps) -> float``: one optimisation step, drawing randomness
      only from ``self.rng_`` (numpy) and ``self.torch_rng_`` (torch);
    - ``_after_step(total_steps)``: optional (e.g. an EMA update); ``_extra_state`` /
      ``_load_extra_state``: optional state outside networks (e.g. an image pool);
    - ``_weights`` / ``_set_weights`` for the networks generation uses, and ``_generate``.

    Subclasses declare only their own parameters in ``__init__`` and hand the shared training
    keywords (the fields of ``training_defaults``) on to this ``__init__`` as ``**training``,
    which stores each under its own name; ``get_params`` and ``default_params`` include them.
    """

    trains = True
    default_train_steps: ClassVar[int] = 2000
    #: The shared training keywords with this method's defaults.
    training_defaults: ClassVar[TrainingSettings] = TrainingSettings()
    #: Where networks run: ``"auto"`` (CUDA if available), ``"cpu"`` or ``"cuda[:i]"``. Not a
    #: parameter (it does not change what is computed, only where); set it on the instance.
    #: Random numbers are always drawn on the CPU, so seeds give the same noise on any device.
    device: str = "auto"

    nets_: dict[str, torch.nn.Module]
    optimizers_: dict[str, Any]
    lr_schedulers_: dict[str, Any]

    def __init__(
        self, image_size: int, channels: int, *, condition: str, seed: int, **training: Any
    ) -> None:
        """``training``: shared keywords to set (fields of ``training_defaults``; a
        ``TypeError`` on any other name)."""
        super().__init__(image_size, channels, condition=condition, seed=seed)
        settings = dataclasses.replace(self.training_defaults, **training)
        for field in dataclasses.fields(settings):
            setattr(self, field.name, getattr(settings, field.name))

    @classmethod
    def _get_param_names(cls) -> list[str]:
        """The ``__init__`` signature's parameters and the shared training keywords, sorted."""
        shared = {field.name for field in dataclasses.fields(cls.training_defaults)}
        return sorted(shared.union(super()._get_param_names()))

    @classmethod
    def default_params(cls) -> dict[str, Any]:
        """The signature's defaults and those of ``training_defaults``."""
        return {**super().default_params(), **dataclasses.asdict(cls.training_defaults)}

    def check_params(self) -> None:
        super().check_params()
        if int(self.min_train_images) < MIN_TRAIN_IMAGES:
            raise InputError(
                f"min_train_images must be at least {MIN_TRAIN_IMAGES}, got {self.min_train_images}"
            )
        if int(self.batch_size) < 1:
            raise InputError(f"batch_size must be at least 1, got {self.batch_size}")

    def capabilities(self) -> Capabilities:
        """The base capabilities with the default number of training steps."""
        return super().capabilities().replace(train_steps=self.default_train_steps)

    def training_warnings(self, n_images: int) -> list[str]:
        """A warning when the network trains on fewer than 8 rare-class images."""
        warning = few_images_warning(self.method, n_images, bool(self.flip))
        return [] if warning is None else [warning]

    def _build(self, total_steps: int) -> None:
        raise NotImplementedError

    def _train_step(self, data: TrainingData, total_steps: int) -> float:
        raise NotImplementedError

    def _step(self, optimizer: Any) -> None:
        """``optimizer.step()`` with the gradients averaged over data-parallel processes (what
        a subclass's ``_train_step`` calls instead of stepping the optimizer itself)."""
        distributed.average_gradients(
            p for group in optimizer.param_groups for p in group["params"]
        )
        optimizer.step()

    def _after_step(self, total_steps: int) -> None:
        """Called after each step, once ``self.step_`` counts it."""

    def _extra_state(self) -> dict[str, Any]:
        """Method state outside networks and optimizers (tensors, numbers, strings)."""
        return {}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what ``_extra_state`` returned."""

    def _device(self) -> torch.device:
        import torch

        return torch.device(resolve_device(self.device))

    def set_device(self, device: str) -> TorchGenerator:
        """Run on ``device`` from now on (moves the networks already built); returns self."""
        import torch

        self.device = device
        target = self._device()
        for value in vars(self).values():
            if isinstance(value, torch.nn.Module):
                value.to(target)
        return self

    def _init_networks(self, total_steps: int) -> None:
        import torch

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self._build(total_steps)
        for net in self.nets_.values():
            net.to(self._device())  # parameters keep their identity: optimizers stay valid

    def _check_checkpoint_dir(self, directory: Path) -> None:
        if (directory / CARD_FILE).is_file():
            card = read_card(directory)
            if card["method"] != self.method:
                raise InputError(
                    f"{directory} holds a {card['method']!r} checkpoint, not {self.method!r}"
                )
            shape = (card.get("image_size"), card.get("channels"))
            if shape != (self.image_size, self.channels):
                raise InputError(
                    f"{directory} holds a checkpoint for {shape[0]}px {shape[1]}-channel "
                    f"images, not {self.image_size}px {self.channels}-channel"
                )

    def _fit(
        self,
        targets,
        sources,
        *,
        masks,
        steps,
        checkpoint_dir,
        checkpoint_every,
        resume,
        progress,
        callback,
    ) -> None:
        import torch

        from brain.progress import every_nth, progress_bar

        total = steps or self.default_train_steps
        self.total_steps_ = total
        data = TrainingData(targets, sources, masks)
        data_digest = self.data_digest_  # set by ``fit``
        if checkpoint_dir is not None:
            self._check_checkpoint_dir(checkpoint_dir)
        self._init_networks(total)
        for net in self.nets_.values():
            distributed.broadcast_state(net)
        rank = distributed.rank()  # rank 0 (and a single process) draws as it always has
        self.rng_ = np.random.default_rng(self.seed if rank == 0 else [self.seed, rank])
        self.torch_rng_ = torch.Generator().manual_seed(self.seed + 7919 * rank)
        self.step_ = 0
        self.loss_history_: list[float] = []
        state_path = None if checkpoint_dir is None else checkpoint_dir / TRAIN_STATE_FILE
        if resume and state_path is not None and state_path.is_file():
            self._restore(state_path, data_digest)
        for net in self.nets_.values():
            net.train()
        with progress_bar(
            total=total,
            initial=min(self.step_, total),
            unit="step",
            desc=f"train {self.method}",
            enabled=progress and distributed.is_main(),
            every=every_nth(total),
        ) as bar:
            while self.step_ < total:
                loss = distributed.mean_value(float(self._train_step(data, total)))
                self.step_ += 1
                self.loss_history_.append(loss)
                self._after_step(total)
                bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
                bar.update(1)
                if (
                    checkpoint_dir is not None
                    and checkpoint_every
                    and self.step_ % checkpoint_every == 0
                    and self.step_ < total
                ):
                    self.write_checkpoint(checkpoint_dir, data_digest)
                if callback is not None:
                    callback(self.step_, loss)
        for net in self.nets_.values():
            net.eval()
        if checkpoint_dir is not None:
            self.write_checkpoint(checkpoint_dir, data_digest)

    # -- checkpoints ------------------------------------------------------------------------
    def card(self) -> dict[str, Any]:
        """The base card plus ``steps_target``: the total steps of the training that wrote it."""
        card = super().card()
        card["steps_target"] = getattr(self, "total_steps_", None)
        return card

    def training_state(self, data_digest: str) -> dict[str, Any]:
        """Everything needed to continue training exactly (tensors, numbers and strings only)."""
        import torch

        return {
            "method": self.method,
            "params": json.dumps(_normalised(self.get_params()), sort_keys=True),
            "data_digest": data_digest,
            "step": self.step_,
            "loss_history": torch.tensor(self.loss_history_, dtype=torch.float64),
            "nets": {name: net.state_dict() for name, net in self.nets_.items()},
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers_.items()},
            "lr_schedulers": {name: s.state_dict() for name, s in self.lr_schedulers_.items()},
            "numpy_rng": json.dumps(self.rng_.bit_generator.state),
            "torch_rng": self.torch_rng_.get_state(),
            "extra": self._extra_state(),
        }

    def write_checkpoint(self, directory: Path, data_digest: str) -> None:
        """Write ``training_state.pt`` (atomically), then the saved generator beside it (in a
        process group: every rank calls it, rank 0 writes every rank's random state)."""
        import torch

        ranks = distributed.gather(self._rank_state())
        if not distributed.is_main():
            return
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / f".{TRAIN_STATE_FILE}.tmp"
        state = self.training_state(data_digest)
        if len(ranks) > 1:
            state["ranks"] = ranks
        torch.save(state, tmp)
        os.replace(tmp, directory / TRAIN_STATE_FILE)
        self.save(directory)

    def _rank_state(self) -> dict[str, Any]:
        """This process's random state and method extras (differ between ranks)."""
        return {
            "numpy_rng": json.dumps(self.rng_.bit_generator.state),
            "torch_rng": self.torch_rng_.get_state(),
            "extra": self._extra_state(),
        }

    def _restore(self, state_path: Path, data_digest: str) -> None:
        import torch

        try:
            state = torch.load(state_path, map_location="cpu", weights_only=True)
        except Exception as error:  # a corrupt or foreign file
            raise InputError(f"cannot read training state {state_path}: {error}") from None
        if state.get("method") != self.method:
            raise InputError(f"{state_path} is from method {state.get('method')!r}")
        saved = _normalised({**self.default_params(), **json.loads(state["params"])})
        current = _normalised(self.get_params())
        if saved != current:
            changed = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
            raise InputError(
                f"cannot resume from {state_path.parent}: parameters differ ({', '.join(changed)})"
            )
        if state["data_digest"] != data_digest:
            raise InputError(
                f"cannot resume from {state_path.parent}: it was trained on other images"
            )
        for name, net in self.nets_.items():
            net.load_state_dict(state["nets"][name])
        for name, optimizer in self.optimizers_.items():
            optimizer.load_state_dict(state["optimizers"][name])
        for name, scheduler in self.lr_schedulers_.items():
            scheduler.load_state_dict(state["lr_schedulers"][name])
        ranks = state.get("ranks") or [state]
        if len(ranks) != distributed.world_size():
            raise InputError(
                f"cannot resume from {state_path.parent}: it was trained by {len(ranks)} "
                f"process(es), this run has {distributed.world_size()}; resume with `devices` "
                f"{len(ranks)}",
                params=("devices",),
            )
        own = ranks[distributed.rank()]
        self.rng_.bit_generator.state = json.loads(own["numpy_rng"])
        self.torch_rng_.set_state(own["torch_rng"])
        self.step_ = int(state["step"])
        self.loss_history_ = [float(v) for v in state["loss_history"].tolist()]
        self._load_extra_state(own.get("extra", {}))


class DiffusionGenerator(TorchGenerator):
    """A diffusion generator: one UNet (``unet_``) trained with Adam (``optimizer_``); generation
    uses its exponential moving average ``ema_unet_``, which is what ``save`` writes.

    Subclasses take the :class:`DiffusionSettings` keywords, implement ``_make_unet`` and start
    ``_build`` with :meth:`_build_unet` (then add their noise schedule and any learning-rate
    scheduler).
    """

    samples_in_steps = True
    training_defaults: ClassVar[DiffusionSettings] = DiffusionSettings()

    def check_params(self) -> None:
        from generators.bbdm.model import check_preset

        super().check_params()
        check_preset(self.preset, int(self.image_size))

    def capabilities(self) -> Capabilities:
        """With the default number of sampling steps."""
        return super().capabilities().replace(sampling_steps=int(self.sampling_steps))

    def _make_unet(self) -> torch.nn.Module:
        raise NotImplementedError

    def _build_unet(self) -> None:
        """Create ``unet_``, its frozen copy ``ema_unet_`` and the Adam ``optimizer_``."""
        import copy

        import torch

        self.unet_ = self._make_unet()
        self.ema_unet_ = copy.deepcopy(self.unet_).requires_grad_(False)
        self.optimizer_ = torch.optim.Adam(self.unet_.parameters(), lr=self.lr)
        self.nets_ = {"unet": self.unet_, "ema": self.ema_unet_}
        self.optimizers_ = {"adam": self.optimizer_}
        self.lr_schedulers_ = {}

    def _weights(self) -> dict[str, np.ndarray]:
        return module_weights(self.ema_unet_)

    def _set_weights(self, weights) -> None:
        self.ema_unet_ = self._make_unet().requires_grad_(False)
        load_module_weights(self.ema_unet_, dict(weights))
        self.ema_unet_.to(self._device()).eval()

    def _default_batch_size(self) -> int:
        return 16
