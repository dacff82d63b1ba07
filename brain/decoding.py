"""Decoding images from disk, torch-free: a cache of decoded arrays and the decoded images of
a view with their fields (:mod:`brain.data` turns them into network-ready tensors)."""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from brain.errors import InputError
from brain.images import read_image
from brain.progress import progress_bar
from brain.size_policy import DEFAULT_PAD

if TYPE_CHECKING:
    from brain.data import ImageSet

NO_LABEL = -1
CACHE_BYTES = int(os.environ.get("SYNTHCURATE_IMAGE_CACHE_MB", "2048")) * 2**20


class ImageCache:
    """A least-recently-used cache of decoded images keyed by path, checked against the file's
    modification time and size, holding at most ``max_bytes`` of pixels."""

    def __init__(self, max_bytes: int = CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, tuple[tuple[int, int], np.ndarray]] = OrderedDict()
        self._bytes = 0

    def read(self, path: str) -> np.ndarray:
        """The decoded image at ``path`` (a read-only ``uint8`` ``(H, W, C)`` array)."""
        try:
            stat = os.stat(path)
        except OSError:
            raise InputError(f"image not found: {path}") from None
        stamp = (stat.st_mtime_ns, stat.st_size)
        entry = self._entries.get(path)
        if entry is not None and entry[0] == stamp:
            self._entries.move_to_end(path)
            return entry[1]
        array = read_image(path)
        array.setflags(write=False)
        self._put(path, stamp, array)
        return array

    def _put(self, path: str, stamp: tuple[int, int], array: np.ndarray) -> None:
        old = self._entries.pop(path, None)
        if old is not None:
            self._bytes -= old[1].nbytes
        if array.nbytes > self.max_bytes:
            return
        self._entries[path] = (stamp, array)
        self._bytes += array.nbytes
        while self._bytes > self.max_bytes:
            _, (_, evicted) = self._entries.popitem(last=False)
            self._bytes -= evicted.nbytes

    def clear(self) -> None:
        """Forget every cached image."""
        self._entries.clear()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)


IMAGE_CACHE = ImageCache()


@dataclass
class DecodedView:
    """The decoded images of a view and their fields, before the resize policy is applied."""

    ids: list[str]
    labels: list[str | None]
    splits: list[str | None]
    origins: list[str | None]
    arrays: list[np.ndarray]

    @property
    def shapes(self) -> list[tuple[int, int, int]]:
        """``(H, W, C)`` of every image."""
        return [a.shape for a in self.arrays]

    def to_set(self, classes: Sequence[str], size: int | None, pad: str = DEFAULT_PAD) -> ImageSet:
        """An :class:`ImageSet` with labels as indices into ``classes`` (``-1`` otherwise),
        images fitted to ``size`` with padding ``pad``."""
        from brain.data import ImageSet, stack_images  # torch loads only for network input

        index = {name: i for i, name in enumerate(classes)}
        codes = np.array([index.get(label, NO_LABEL) for label in self.labels], dtype=np.int64)
        images = stack_images(self.arrays, size, pad)
        return ImageSet(list(self.ids), images, codes, list(self.splits), list(self.origins))


def decode_paths(
    ids: Sequence[str],
    paths: Sequence[str],
    labels: Sequence[str | None],
    splits: Sequence[str | None],
    origins: Sequence[str | None],
    *,
    progress: bool = True,
    desc: str = "images",
) -> DecodedView:
    """Decode the images at ``paths`` (through the cache) with their sample fields; ``desc``
    names them in the progress bar and in errors.

    Raises:
        InputError: if there is no image or an image is unreadable.
    """
    if not ids:
        raise InputError(f"no samples in {desc!r}")
    arrays = [
        IMAGE_CACHE.read(p)
        for p in progress_bar(paths, desc=desc, unit="img", leave=False, enabled=progress)
    ]
    return DecodedView(list(ids), list(labels), list(splits), list(origins), arrays)
