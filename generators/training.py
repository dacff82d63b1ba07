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

Small rare classes: a method trains on as few as ``min_train_images`` rare-class images (a
parameter, default and floor :data:`MIN_TRAIN_IMAGES` = 2). Below :data:`FEW_TRAIN_IMAGES` (8)
images, augmentation is heavier (flips, right-angle rotations and shifts of up to a sixteenth of
the side, see :func:`draw_batch`) and :func:`few_images_warning` says so.

Generation runs networks on chunks of a fixed number of images (:func:`in_fixed_chunks`), so
the image made for a ``(source, seed)`` pair does not depend on what is generated with it.

:class:`DiffusionGenerator` adds what BBDM and the masked DDPM share: a UNet trained with Adam
whose exponential moving average generates.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from curation.errors import CurateError
from generators.base import CARD_FILE, Generator, read_card, to_float

if TYPE_CHECKING:
    import torch

TRAIN_STATE_FILE = "training_state.pt"
#: The fewest rare-class images a network is trained on (the floor of ``min_train_images``).
MIN_TRAIN_IMAGES = 2
#: Below this many training images, augmentation is heavier and a warning is given.
FEW_TRAIN_IMAGES = 8
#: Networks generate on chunks of exactly this many images (see :func:`in_fixed_chunks`).
GENERATION_CHUNK = 8


@dataclass
class TrainingData:
    """The arrays a training run draws batches from (validated by ``Generator.fit``)."""

    targets: np.ndarray
    sources: np.ndarray | None
    masks: np.ndarray | None


def random_flips(batch: np.ndarray, rng: np.random.Generator, masks: np.ndarray | None = None):
    """Flip each image (and its mask) horizontally and vertically with probability 1/2 each."""
    flips = rng.random((len(batch), 2)) < 0.5
    batch = batch.copy()
    masks = None if masks is None else masks.copy()
    for i, (horizontal, vertical) in enumerate(flips):
        for flip, axis in ((horizontal, 1), (vertical, 0)):
            if flip:
                batch[i] = np.flip(batch[i], axis=axis)
                if masks is not None:
                    masks[i] = np.flip(masks[i], axis=axis)
    return batch, masks


def shift_image(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``image`` (``(H, W, ...)``) moved down ``dy`` and right ``dx`` pixels (negative: up, left),
    the uncovered border filled by repeating the edge pixels (no black frame)."""
    height, width = image.shape[:2]
    ay, ax = abs(dy), abs(dx)
    widths = ((ay, ay), (ax, ax)) + ((0, 0),) * (image.ndim - 2)
    padded = np.pad(image, widths, mode="edge")
    return padded[ay - dy : ay - dy + height, ax - dx : ax - dx + width]


def random_turns_and_shifts(
    batch: np.ndarray, rng: np.random.Generator, masks: np.ndarray | None = None
):
    """Rotate each square image (and its mask) by a random multiple of 90 degrees and shift it
    by up to ``max(1, S // 16)`` pixels each way (see :func:`shift_image`)."""
    count, size = len(batch), batch.shape[1]
    turns = rng.integers(0, 4, size=count)
    limit = max(1, size // 16)
    shifts = rng.integers(-limit, limit + 1, size=(count, 2))
    batch = batch.copy()
    masks = None if masks is None else masks.copy()
    for i, (k, (dy, dx)) in enumerate(zip(turns, shifts, strict=True)):
        batch[i] = shift_image(np.rot90(batch[i], k), dy, dx)
        if masks is not None:
            masks[i] = shift_image(np.rot90(masks[i], k), dy, dx)
    return batch, masks


def draw_batch(
    images: np.ndarray,
    rng: np.random.Generator,
    batch_size: int,
    *,
    flip: bool,
    masks: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """``batch_size`` images drawn with replacement (with their masks), as floats in ``[-1, 1]``.

    With ``flip``, each image is flipped at random (:func:`random_flips`); when ``images`` holds
    fewer than :data:`FEW_TRAIN_IMAGES`, each is also turned and shifted at random
    (:func:`random_turns_and_shifts`). ``flip=False`` leaves the images as they are.
    """
    index = rng.integers(0, len(images), size=batch_size)
    batch = to_float(images[index])
    masks = None if masks is None else masks[index]
    if flip:
        batch, masks = random_flips(batch, rng, masks)
        if len(images) < FEW_TRAIN_IMAGES:
            batch, masks = random_turns_and_shifts(batch, rng, masks)
    return batch, masks


def few_images_warning(method: str, count: int, flip: bool) -> str | None:
    """The warning for a network trained on ``count`` rare-class images (``None`` from
    :data:`FEW_TRAIN_IMAGES` on)."""
    if count >= FEW_TRAIN_IMAGES:
        return None
    augmented = (
        "heavier augmentation is used (flips, right-angle rotations, small shifts)"
        if flip
        else "augmentation is off (flip=false)"
    )
    return (
        f"{method} trains on only {count} rare-class images (fewer than {FEW_TRAIN_IMAGES}): "
        f"{augmented}; expect outputs close to those images"
    )


def in_fixed_chunks(
    network: Callable[..., torch.Tensor], *inputs: torch.Tensor, chunk: int = GENERATION_CHUNK
) -> torch.Tensor:
    """``network(*inputs)`` evaluated on chunks of exactly ``chunk`` rows (the last one padded
    with zeros), concatenated.

    Matrix products give slightly different floats for different batch shapes (BLAS picks its
    kernels by size), enough to change a rounded pixel: with one fixed shape, each output row
    depends on its own input rows only, whatever else is generated with it.
    """
    import torch

    count = len(inputs[0])
    pad = -count % chunk
    if pad:
        inputs = tuple(torch.cat([x, x.new_zeros((pad, *x.shape[1:]))]) for x in inputs)
    outputs = [
        network(*(x[start : start + chunk] for x in inputs))
        for start in range(0, count + pad, chunk)
    ]
    return torch.cat(outputs)[:count]


def seeded_generators(seeds: list[int]) -> list[torch.Generator]:
    """One CPU torch generator per seed: per-sample noise, the same on any device."""
    import torch

    return [torch.Generator().manual_seed(seed) for seed in seeds]


def resolve_device(spec: str) -> torch.device:
    """``"auto"`` (CUDA when available, else CPU), ``"cpu"`` or ``"cuda[:i]"``."""
    import torch

    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise CurateError("device 'cuda' was asked for but torch sees no CUDA device")
    return torch.device(spec)


def nhwc_to_tensor(images: np.ndarray, device: torch.device | None = None) -> torch.Tensor:
    """Float ``(N, H, W, C)`` array to a float32 ``(N, C, H, W)`` tensor (on ``device``)."""
    import torch

    tensor = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32))
    return tensor if device is None else tensor.to(device)


def tensor_to_nhwc(tensor: torch.Tensor) -> np.ndarray:
    """``(N, C, H, W)`` tensor to a float32 ``(N, H, W, C)`` array."""
    return tensor.detach().cpu().float().numpy().transpose(0, 2, 3, 1)


def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """``ema = decay * ema + (1 - decay) * model`` for parameters; ``decay = 0`` copies exactly."""
    import torch

    with torch.no_grad():
        for averaged, current in zip(ema.parameters(), model.parameters(), strict=True):
            if decay == 0.0:
                averaged.copy_(current)
            else:
                averaged.lerp_(current, 1.0 - decay)
        for averaged, current in zip(ema.buffers(), model.buffers(), strict=True):
            averaged.copy_(current)


def module_weights(module: torch.nn.Module, prefix: str = "") -> dict[str, np.ndarray]:
    """A module's state dict as numpy arrays (names prefixed)."""
    return {
        f"{prefix}{name}": value.detach().cpu().numpy().copy()
        for name, value in module.state_dict().items()
    }


def load_module_weights(module: torch.nn.Module, weights: dict[str, np.ndarray], prefix: str = ""):
    """Load numpy weights (names prefixed) into a module; a mismatch raises CurateError."""
    import torch

    state = {
        name[len(prefix) :]: torch.from_numpy(np.array(value))
        for name, value in weights.items()
        if name.startswith(prefix)
    }
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as error:
        first = str(error).splitlines()[0]
        raise CurateError(f"the saved weights do not fit this network: {first}") from None


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

    Subclasses take the parameter ``min_train_images`` (the fewest rare-class images ``fit``
    accepts, at least :data:`MIN_TRAIN_IMAGES`) and hand it to this ``__init__``.
    """

    trains = True
    default_train_steps: ClassVar[int] = 2000
    #: Where networks run: ``"auto"`` (CUDA if available), ``"cpu"`` or ``"cuda[:i]"``. Not a
    #: parameter (it does not change what is computed, only where); set it on the instance.
    #: Random numbers are always drawn on the CPU, so seeds give the same noise on any device.
    device: str = "auto"

    nets_: dict[str, torch.nn.Module]
    optimizers_: dict[str, Any]
    lr_schedulers_: dict[str, Any]

    def __init__(
        self,
        image_size: int,
        channels: int,
        *,
        condition: str,
        seed: int,
        min_train_images: int = MIN_TRAIN_IMAGES,
    ) -> None:
        super().__init__(image_size, channels, condition=condition, seed=seed)
        self.min_train_images = min_train_images

    def _validate_params(self) -> None:
        super()._validate_params()
        if int(self.min_train_images) < MIN_TRAIN_IMAGES:
            raise CurateError(
                f"min_train_images must be at least {MIN_TRAIN_IMAGES}, got {self.min_train_images}"
            )

    def _build(self, total_steps: int) -> None:
        raise NotImplementedError

    def _train_step(self, data: TrainingData, total_steps: int) -> float:
        raise NotImplementedError

    def _after_step(self, total_steps: int) -> None:
        """Called after each step, once ``self.step_`` counts it."""

    def _extra_state(self) -> dict[str, Any]:
        """Method state outside networks and optimizers (tensors, numbers, strings)."""
        return {}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what ``_extra_state`` returned."""

    def _device(self) -> torch.device:
        return resolve_device(self.device)

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
                raise CurateError(
                    f"{directory} holds a {card['method']!r} checkpoint, not {self.method!r}"
                )
            shape = (card.get("image_size"), card.get("channels"))
            if shape != (self.image_size, self.channels):
                raise CurateError(
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
        from tqdm.auto import tqdm

        total = steps or self.default_train_steps
        self.total_steps_ = total
        data = TrainingData(targets, sources, masks)
        data_digest = self.data_digest_  # set by ``fit``
        if checkpoint_dir is not None:
            self._check_checkpoint_dir(checkpoint_dir)
        self._init_networks(total)
        self.rng_ = np.random.default_rng(self.seed)
        self.torch_rng_ = torch.Generator().manual_seed(self.seed)
        self.step_ = 0
        self.loss_history_: list[float] = []
        state_path = None if checkpoint_dir is None else checkpoint_dir / TRAIN_STATE_FILE
        if resume and state_path is not None and state_path.is_file():
            self._restore(state_path, data_digest)
        for net in self.nets_.values():
            net.train()
        with tqdm(
            total=total,
            initial=min(self.step_, total),
            unit="step",
            desc=f"train {self.method}",
            disable=not progress,
        ) as bar:
            while self.step_ < total:
                loss = float(self._train_step(data, total))
                self.step_ += 1
                self.loss_history_.append(loss)
                self._after_step(total)
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
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
        """Write ``training_state.pt`` (atomically), then the saved generator beside it."""
        import torch

        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / f".{TRAIN_STATE_FILE}.tmp"
        torch.save(self.training_state(data_digest), tmp)
        os.replace(tmp, directory / TRAIN_STATE_FILE)
        self.save(directory)

    def _restore(self, state_path: Path, data_digest: str) -> None:
        import torch

        try:
            state = torch.load(state_path, map_location="cpu", weights_only=True)
        except Exception as error:  # a corrupt or foreign file
            raise CurateError(f"cannot read training state {state_path}: {error}") from None
        if state.get("method") != self.method:
            raise CurateError(f"{state_path} is from method {state.get('method')!r}")
        saved = _normalised({**self.default_params(), **json.loads(state["params"])})
        current = _normalised(self.get_params())
        if saved != current:
            changed = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
            raise CurateError(
                f"cannot resume from {state_path.parent}: parameters differ ({', '.join(changed)})"
            )
        if state["data_digest"] != data_digest:
            raise CurateError(
                f"cannot resume from {state_path.parent}: it was trained on other images"
            )
        for name, net in self.nets_.items():
            net.load_state_dict(state["nets"][name])
        for name, optimizer in self.optimizers_.items():
            optimizer.load_state_dict(state["optimizers"][name])
        for name, scheduler in self.lr_schedulers_.items():
            scheduler.load_state_dict(state["lr_schedulers"][name])
        self.rng_.bit_generator.state = json.loads(state["numpy_rng"])
        self.torch_rng_.set_state(state["torch_rng"])
        self.step_ = int(state["step"])
        self.loss_history_ = [float(v) for v in state["loss_history"].tolist()]
        self._load_extra_state(state.get("extra", {}))


class DiffusionGenerator(TorchGenerator):
    """A diffusion generator: one UNet (``unet_``) trained with Adam (``optimizer_``); generation
    uses its exponential moving average ``ema_unet_``, which is what ``save`` writes.

    Subclasses hold the parameter ``lr``, implement ``_make_unet`` and start ``_build`` with
    :meth:`_build_unet` (then add their noise schedule and any learning-rate scheduler).
    """

    samples_in_steps = True
    lr: float

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
