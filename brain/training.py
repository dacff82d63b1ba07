"""The training loop of one seed: Adam, cross-entropy (optionally class-weighted), the weights
of the epoch with the best validation F1 of the rare class kept.

Images live in memory as one ``uint8`` tensor; batches are index slices drawn from a seeded
generator, so no DataLoader worker processes are needed and a seed fixes everything: weight
initialisation (``torch.manual_seed``), batch order and augmentation draws (one
``torch.Generator``), with deterministic kernels switched on for the duration of the run.

Data-parallel (``settings.devices`` > 1): :func:`fit` launches one process per device
(:mod:`brain.distributed`); the network is wrapped in ``DistributedDataParallel``, every process
draws the same batch order and trains on its share of the batches (``batch_size`` per device),
with its own augmentation draws; batch-norm statistics are taken from rank 0 before each
validation, so every process validates the same network and keeps the same epoch. The result
(rank 0's) loads in one process like any other.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from brain import distributed
from brain.augment import augment_batch
from brain.data import ImageSet, normalise
from brain.devices import resolve_device
from brain.errors import InputError
from brain.metrics import rare_class_metrics
from brain.models import build_model, forward_features
from brain.progress import progress_bar
from brain.settings import SCHEDULES, SELECTION, TrainSettings

INFERENCE_BATCH = 256


@dataclass
class FitResult:
    """A trained network (best epoch's weights, eval mode) and its training history."""

    model: nn.Module
    best_epoch: int
    best_val: dict
    history: list[dict] = field(default_factory=list)


@contextlib.contextmanager
def deterministic() -> Iterator[None]:
    """Deterministic kernels while the block runs (the previous setting is restored)."""
    previous = torch.are_deterministic_algorithms_enabled()
    previous_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous, warn_only=previous_warn)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn


def class_weights(labels: np.ndarray, num_classes: int) -> torch.Tensor:
    """Inverse-frequency weights ``n / (k * n_c)`` (0 for a class with no samples)."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(num_classes)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return torch.tensor(weights, dtype=torch.float32)


def batch_indices(
    n: int, batch_size: int, generator: torch.Generator | None = None
) -> list[torch.Tensor]:
    """Index batches over ``n`` samples, shuffled when a ``generator`` is given. A trailing
    batch of one sample is merged into the previous one (batch norm needs two)."""
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    chunks = list(order.split(batch_size))
    if len(chunks) > 1 and len(chunks[-1]) == 1:
        chunks[-2:] = [torch.cat(chunks[-2:])]
    return chunks


def channel_tensor(values: list[float], device: str) -> torch.Tensor:
    """Per-channel values as a ``(1, C, 1, 1)`` ``float32`` tensor on ``device``."""
    return torch.tensor(values, dtype=torch.float32, device=device).view(1, -1, 1, 1)


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: nn.Module,
    data: ImageSet,
    *,
    mean: torch.Tensor,
    std: torch.Tensor,
    settings: TrainSettings,
    generator: torch.Generator,
    augment_generator: torch.Generator | None = None,
    progress: bool = True,
) -> float:
    """One pass over ``data`` in shuffled batches; returns the mean training loss.

    ``generator`` draws the batch order (and, without ``augment_generator``, the augmentation);
    in a process group each process takes its :func:`~brain.distributed.shard` of the batches.
    """
    model.train()
    labels = torch.from_numpy(data.labels)
    total, seen = 0.0, 0
    chunks = distributed.shard(batch_indices(len(data), settings.batch_size, generator))
    augment_with = augment_generator or generator
    batches = progress_bar(chunks, desc="batches", unit="batch", leave=False, enabled=progress)
    for index in batches:
        batch = data.images[index]
        if settings.augment:
            batch = augment_batch(batch, augment_with)
        inputs = normalise(batch, mean, std, device=settings.device)
        targets = labels[index].to(settings.device)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        optimizer.step()
        total += float(loss.detach()) * len(index)
        seen += len(index)
    total, seen = distributed.sum_values(total, seen)
    return total / max(seen, 1)


def run_network(
    model: nn.Module,
    images: torch.Tensor,
    *,
    mean: torch.Tensor,
    std: torch.Tensor,
    device: str,
    batch_size: int = INFERENCE_BATCH,
    features: bool = False,
    progress: bool = False,
) -> np.ndarray:
    """Class probabilities ``(N, K)`` or, with ``features``, penultimate vectors ``(N, D)`` of
    ``uint8`` ``(N, C, H, W)`` images, in eval and inference mode."""
    model.eval()
    outputs = []
    with torch.inference_mode():
        for start in progress_bar(
            range(0, len(images), batch_size),
            desc="embedding" if features else "predicting",
            unit="batch",
            leave=False,
            enabled=progress,
        ):
            inputs = normalise(images[start : start + batch_size], mean, std, device=device)
            if features:
                out = forward_features(model, inputs)
            else:
                out = torch.softmax(model(inputs), dim=1)
            outputs.append(out.float().cpu())
    return torch.cat(outputs).numpy() if outputs else np.zeros((0, 0), np.float32)


def validate(
    model: nn.Module,
    val: ImageSet,
    rare_index: int,
    *,
    mean: torch.Tensor,
    std: torch.Tensor,
    device: str,
    weight: torch.Tensor | None = None,
) -> tuple[dict, float]:
    """Rare-class metrics and the (weighted) cross-entropy of ``model`` on ``val``."""
    proba = run_network(model, val.images, mean=mean, std=std, device=device)
    log_proba = torch.log(torch.from_numpy(proba).clamp_min(1e-12))
    labels = torch.from_numpy(val.labels)
    loss = float(nn.functional.nll_loss(log_proba, labels, weight=weight))
    return rare_class_metrics(val.labels, proba, rare_index), loss


def make_scheduler(optimizer: torch.optim.Optimizer, settings: TrainSettings):
    """``None`` for a constant learning rate; ``cosine`` decays it to 0 over ``epochs`` (stepped
    once per epoch)."""
    if settings.schedule == "constant":
        return None
    if settings.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=settings.epochs)
    raise ValueError(f"unknown schedule {settings.schedule!r}; known: {', '.join(SCHEDULES)}")


def selection_key(metrics: dict, loss: float, select: str = "f1") -> tuple[float, ...]:
    """Higher is better. ``f1``: validation F1 of the rare class, then its AUC, then lower loss
    (the protocol); ``auc``: AUC, then F1, then loss (as MedMNIST selects); ``loss``: lower
    validation loss."""
    auc = metrics["auc"] if metrics["auc"] is not None else 0.0
    if select == "f1":
        return metrics["f1"], auc, -loss
    if select == "auc":
        return auc, metrics["f1"], -loss
    if select == "loss":
        return (-loss,)
    raise ValueError(f"unknown selection {select!r}; known: {', '.join(SELECTION)}")


def fit(
    train: ImageSet,
    val: ImageSet,
    *,
    num_classes: int,
    rare_index: int,
    mean: list[float],
    std: list[float],
    settings: TrainSettings,
    seed: int,
    progress: bool = True,
) -> FitResult:
    """Train one network on ``train`` and keep the epoch best on ``val`` (by
    ``settings.select``, see :func:`selection_key`).

    Args:
        train: training images with labels in ``0..num_classes-1``.
        val: validation images (selects the epoch; never trained on).
        num_classes: outputs of the network.
        rare_index: index of the rare class.
        mean: per-channel normalisation mean.
        std: per-channel normalisation standard deviation.
        settings: the training settings.
        seed: seeds weights, batch order and augmentation.
        progress: show progress bars on epochs and batches.

    With ``settings.devices`` > 1 it trains data-parallel in that many processes (see the
    module docstring).
    """
    if settings.devices > 1 and distributed.current() is None:
        return _fit_on_devices(
            train,
            val,
            num_classes=num_classes,
            rare_index=rare_index,
            mean=mean,
            std=std,
            settings=settings,
            seed=seed,
            progress=progress,
        )
    here = distributed.current()
    device = here.device if here is not None else resolve_device(settings.device)
    settings = dataclasses.replace(settings, device=device)
    progress = progress and distributed.is_main()
    with deterministic():
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        augment_generator = None
        if distributed.world_size() > 1:  # the same batch order, each rank its own draws
            augment_generator = torch.Generator().manual_seed(seed + 7919 * distributed.rank())
        model = _build(train, num_classes, settings).to(device)
        trained = _data_parallel(model)
        weight = class_weights(train.labels, num_classes) if settings.class_weighted else None
        loss_fn = nn.CrossEntropyLoss(weight=weight.to(device) if weight is not None else None)
        optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
        scheduler = make_scheduler(optimizer, settings)
        mean_t, std_t = channel_tensor(mean, device), channel_tensor(std, device)

        best_key, best_state, best_epoch, best_val = None, None, 0, {}
        history, stale = [], 0
        epochs = progress_bar(
            total=settings.epochs, desc=f"seed {seed}", unit="epoch", enabled=progress, every=1
        )
        for epoch in range(1, settings.epochs + 1):
            loss = train_epoch(
                trained,
                optimizer,
                loss_fn,
                train,
                mean=mean_t,
                std=std_t,
                settings=settings,
                generator=generator,
                augment_generator=augment_generator,
                progress=progress,
            )
            if scheduler is not None:
                scheduler.step()
            distributed.broadcast_state(model)  # every rank validates rank 0's network
            val_metrics, val_loss = validate(
                model, val, rare_index, mean=mean_t, std=std_t, device=device, weight=weight
            )
            history.append({"epoch": epoch, "loss": loss, "val_loss": val_loss, **val_metrics})
            epochs.set_postfix(loss=f"{loss:.3f}", val_f1=f"{val_metrics['f1']:.3f}")
            epochs.update()
            key = selection_key(val_metrics, val_loss, settings.select)
            if best_key is None or key > best_key:
                best_key, best_epoch, best_val, stale = key, epoch, val_metrics, 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                stale += 1
                if settings.patience is not None and stale >= settings.patience:
                    break
        epochs.close()
        model.load_state_dict(best_state)
    return FitResult(model.eval(), best_epoch, best_val, history)


def _build(train: ImageSet, num_classes: int, settings: TrainSettings) -> nn.Module:
    height, width = train.images.shape[2:]
    return build_model(
        settings.arch,
        num_classes,
        in_channels=train.images.shape[1],
        input_size=(height, width),
        pretrained=settings.pretrained,
    )


def _data_parallel(model: nn.Module) -> nn.Module:
    """``model`` wrapped in ``DistributedDataParallel`` in a process group, else itself."""
    here = distributed.current()
    if here is None or here.world_size == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [torch.device(here.device).index] if here.device.startswith("cuda") else None
    return DistributedDataParallel(model, device_ids=device_ids)


def _fit_worker(train: ImageSet, val: ImageSet, kwargs: dict) -> dict:
    """One rank of :func:`_fit_on_devices`: rank 0 returns the kept weights and history."""
    result = fit(train, val, **kwargs)
    if not distributed.is_main():
        return {}
    # numpy, not tensors: a tensor sent between processes lives in the sender's shared memory
    state = {k: v.detach().cpu().numpy() for k, v in result.model.state_dict().items()}
    return {
        "state": state,
        "best_epoch": result.best_epoch,
        "best_val": result.best_val,
        "history": result.history,
    }


def _fit_on_devices(train: ImageSet, val: ImageSet, **kwargs) -> FitResult:
    """:func:`fit` in ``settings.devices`` processes; the kept network, in this process."""
    settings: TrainSettings = kwargs["settings"]
    devices = distributed.plan_devices(settings.devices, settings.device)
    batches = len(batch_indices(len(train), settings.batch_size))
    if batches < len(devices):
        raise InputError(
            f"{len(train)} training samples make {batches} batch(es) of {settings.batch_size}, "
            f"fewer than `devices` {len(devices)}; lower batch_size or devices",
            params=("devices", "batch_size"),
        )
    out = distributed.launch(_fit_worker, (train, val, kwargs), devices)
    model = _build(train, kwargs["num_classes"], settings)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in out["state"].items()})
    model.to(resolve_device(settings.device))
    return FitResult(model.eval(), out["best_epoch"], out["best_val"], out["history"])
