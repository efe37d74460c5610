"""The synthetic images behind :mod:`ganaug.datasets`: seeded per index, stored as asked.

Determinism
-----------
Synthetic item ``j`` of epoch ``e`` is generated from seed
``random_state + e * n_synthetic + j`` (one seed per image), in fixed chunks of
``chunk_size`` items, so it is the same image whatever the order of access, the number of
DataLoader workers or the process. ``set_epoch(e)`` (or ``resample()``) switches to fresh
images; with ``persistent_workers=True`` call it before the workers start.

Storage
-------
``"memory"`` (default) generates all synthetic images once, in batches, when the dataset
is made or resampled, in the main process (workers share them). ``"disk"`` streams them
into a ``.npy`` file under ``cache_dir`` and reads it memory-mapped: RAM stays flat for
millions of items. Beside it a ``.json`` record holds the cache key, shape, dtype and the
SHA-256 of the images; a cache is reused only when the record and the file agree (the
hash is checked once per construction, about a second per GB), and is otherwise
generated again, with a warning. ``"lazy"`` generates chunk by chunk on first access,
on the CPU (also inside DataLoader workers, which never touch CUDA), keeping the
``cache_chunks`` most recent chunks; it suits sequential access with ``chunk_size`` equal
to the DataLoader's batch size (each worker then generates exactly its own batches).
Random access over a lazy dataset regenerates a chunk per miss, so prefer ``"disk"`` for
shuffled huge sets.

Under torchrun
--------------
Every rank holds the same synthetic set: the seeds depend on the index alone, and a
``random_state`` that is not an int (None, a RandomState) is drawn on rank 0 and shared
with a collective, so build the datasets on every rank. ``"memory"`` and ``"lazy"``
generate on every rank (generation costs a fraction of an epoch of training). ``"disk"``
generates once per node: local rank 0 writes (or checks) the cache while the other ranks
wait, then they check and read it. A ``cache_dir`` on a file system that several nodes
share is written by each node's rank 0 under its own temporary name, and the identical
results replace each other atomically. Give each rank its part of the items with
``torch.utils.data.DistributedSampler``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import warnings
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ._io import NpyStream, disk_errors
from .anchors import LatentAnchors
from .distributed import context, node_leader_first
from .gan import ConditionalDCGAN
from .sampling import MAX_SEED, base_seed, iter_generate, labels_from_counts, shared_random_state

__all__ = ["STORAGES", "SyntheticStore"]

STORAGES = ("memory", "disk", "lazy")


class SyntheticStore:
    """Per-index seeded synthetic images of a fitted GAN, generated in fixed chunks.

    ``counts`` is ``{class index: count}``; the store's items are grouped by class in that
    order (``labels`` holds each item's class index). ``random_state`` is the base seed;
    the other parameters are the datasets' (see the module docstring).
    """

    def __init__(
        self,
        gan: ConditionalDCGAN,
        counts: Mapping[int, int],
        *,
        random_state: int | None,
        storage: str,
        chunk_size: int,
        cache_dir: str | os.PathLike | None,
        cache_chunks: int,
        device: str | torch.device | None,
        anchors: LatentAnchors | None = None,
    ) -> None:
        self.seed = base_seed(shared_random_state(random_state, "sharing the synthetic set's seed"), limit=2**62 - 1)
        if storage not in STORAGES:
            raise ValueError(f"storage must be one of {STORAGES}, got {storage!r}.")
        if storage == "disk" and cache_dir is None:
            raise ValueError("storage='disk' needs cache_dir: the folder where generated images are kept.")
        if not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}.")
        self.labels = labels_from_counts(counts).astype(np.int64, copy=False)  # int64: part of the cache key
        missing = [] if anchors is None else sorted({c for c, k in counts.items() if k > 0} - anchors.classes)
        if missing:
            raise ValueError(f"anchors has no codes of class indices {missing}, which get synthetic images: build "
                             "it from real images of every class that does (LatentAnchors.from_real).")
        self.anchors = anchors
        self.n = len(self.labels)
        self.storage, self.chunk_size = storage, int(chunk_size)
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.cache_chunks = max(1, int(cache_chunks))
        self.image_shape = gan.image_shape_
        if storage == "lazy":
            # A CPU copy: DataLoader workers may fork, and CUDA state must not cross a fork.
            self.device = torch.device(device or "cpu")
            self.generator = copy.deepcopy(gan.sampling_generator_).to(self.device).eval()
        else:
            self.device = torch.device(device) if device is not None else gan.device_
            self.generator = gan.sampling_generator_
        self._model_hash: str | None = None
        self.epoch = 0
        self._prepare()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_images", None)  # memory maps and chunk caches are rebuilt in the worker
        state.pop("_chunks", None)
        if self.storage != "lazy":
            state["generator"] = None  # workers read stored images; they never generate
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._chunks = OrderedDict()
        if self.storage == "disk":  # verified by the main process when it made the dataset
            self._images = np.load(self._cache_path(), mmap_mode="r")

    def seeds(self, start: int, stop: int) -> np.ndarray:
        """The seeds of items ``start .. stop - 1`` in the current epoch."""
        base = self.seed + self.epoch * self.n
        if base + self.n > MAX_SEED:
            raise ValueError("Seed range exhausted; use a smaller random_state or epoch.")
        return base + np.arange(start, stop, dtype=np.int64)

    def set_epoch(self, epoch: int) -> None:
        """Serve the images of ``epoch`` (an integer >= 0), generating them if the storage keeps them."""
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise ValueError(f"epoch must be an integer >= 0, got {epoch!r}.")
        if int(epoch) != self.epoch:
            self.epoch = int(epoch)
            self._prepare()

    def _generate(self, start: int, stop: int) -> Iterator[torch.Tensor]:
        return iter_generate(
            self.generator, self.labels[start:stop], self.seeds(start, stop),
            device=self.device, batch_size=self.chunk_size, latents=self.anchors,
        )

    def _prepare(self) -> None:
        self._chunks: OrderedDict[int, torch.Tensor] = OrderedDict()
        if self.storage == "memory":
            chunks = list(self._generate(0, self.n))
            self._images = torch.cat(chunks) if chunks else torch.empty(0, *self.image_shape)
        elif self.storage == "disk":
            path = self._cache_path()
            with node_leader_first("writing the synthetic-image cache"):
                if not path.exists():
                    self._write_disk_cache(path)
                else:
                    problem = self._disk_cache_problem(path)
                    if problem is not None:
                        # stacklevel 4: the caller's dataset construction, set_epoch or resample.
                        warnings.warn(f"Disk cache {path} {problem}; generating it again.", UserWarning, stacklevel=4)
                        self._write_disk_cache(path)
            self._images = np.load(path, mmap_mode="r")

    # ------------------------------------------------------------------ disk cache

    def _cache_key(self) -> str:
        if self._model_hash is None:
            h = hashlib.sha256()
            for key, value in sorted(self.generator.state_dict().items()):
                h.update(key.encode())
                h.update(value.detach().cpu().contiguous().numpy().tobytes())
            if self.anchors is not None:  # anchored latents make other images from the same seeds
                h.update(self.anchors.codes.contiguous().numpy().tobytes())
                h.update(self.anchors.labels.astype(np.int64).tobytes() + f"|{self.anchors.spread!r}".encode())
            self._model_hash = h.hexdigest()
        return hashlib.sha256(
            f"{self._model_hash}|{self.seed}|{self.epoch}|{self.chunk_size}".encode() + self.labels.tobytes()
        ).hexdigest()

    def _cache_path(self) -> Path:
        assert self.cache_dir is not None
        return self.cache_dir / f"ganaug-synthetic-{self._cache_key()[:24]}.npy"

    def _cache_record(self) -> dict[str, Any]:
        """What the ``.json`` beside a disk cache must say, less the images' SHA-256."""
        return {"key": self._cache_key(), "shape": [self.n, *self.image_shape], "dtype": "float32"}

    def _disk_cache_problem(self, path: Path) -> str | None:
        """Why the cache at ``path`` must not be reused, or None when its record vouches for it."""
        try:
            record = json.loads(path.with_suffix(".json").read_text())
        except (OSError, ValueError):
            return "has no readable record (.json) beside it"
        expected = self._cache_record()
        if not isinstance(record, dict) or any(record.get(k) != v for k, v in expected.items()):
            return "has a record (.json) for other images"
        try:
            images = np.load(path, mmap_mode="r")
        except (OSError, ValueError) as exc:
            return f"cannot be read ({exc})"
        if list(images.shape) != expected["shape"] or images.dtype != np.float32 or not images.flags.c_contiguous:
            return f"holds a {images.dtype} array of shape {images.shape}, not the {expected['shape']} its record says"
        if _sha256(images) != record.get("sha256"):
            return "holds other images than its record's SHA-256 (the file was changed or replaced)"
        return None

    def _write_disk_cache(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        owner = f"{os.getpid()}-r{context().rank}"  # unique in a job whose nodes share the folder
        tmp = path.with_name(f".{path.name}.{owner}.tmp")
        record_path = path.with_suffix(".json")
        record_tmp = record_path.with_name(f".{record_path.name}.{owner}.tmp")
        try:
            h = hashlib.sha256()  # of the bytes as stored, hashed while they are written
            with disk_errors(path, "writing the synthetic-image cache"), open(tmp, "wb") as f:
                stream = NpyStream(f, (self.n, *self.image_shape), np.float32)  # a full disk: ENOSPC, not SIGBUS
                for batch in self._generate(0, self.n):
                    h.update(stream.write(batch.numpy()))
                stream.finish()
            os.replace(tmp, path)  # a half-written cache never looks complete
            # The record goes last: an array without its record is never trusted.
            record_tmp.write_text(json.dumps({**self._cache_record(), "sha256": h.hexdigest()}))
            os.replace(record_tmp, record_path)
        finally:
            tmp.unlink(missing_ok=True)
            record_tmp.unlink(missing_ok=True)

    # ------------------------------------------------------------------ items

    def __getitem__(self, j: int) -> torch.Tensor:
        """Image ``j`` (0 <= j < n): (C, H, W) float32 in [-1, 1] on the CPU."""
        if self.storage == "memory":
            return self._images[j]
        if self.storage == "disk":
            return torch.from_numpy(np.array(self._images[j]))
        chunk = j // self.chunk_size
        images = self._chunks.get(chunk)
        if images is None:
            start = chunk * self.chunk_size
            images = torch.cat(list(self._generate(start, min(start + self.chunk_size, self.n))))
            self._chunks[chunk] = images
            if len(self._chunks) > self.cache_chunks:
                self._chunks.popitem(last=False)
        else:
            self._chunks.move_to_end(chunk)
        return images[j - chunk * self.chunk_size]


def _sha256(images: np.ndarray) -> str:
    """SHA-256 of a C-contiguous array's bytes, read in 64 MiB slices (a memory map stays unloaded)."""
    h = hashlib.sha256()
    flat = images.reshape(-1)
    step = max(1, 2**26 // images.dtype.itemsize)
    for start in range(0, flat.size, step):
        h.update(flat[start : start + step])
    return h.hexdigest()
