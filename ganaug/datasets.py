"""torch Datasets that serve synthetic, or real plus synthetic, class-balanced samples.

``SyntheticDataset(gan, counts)`` holds only generated images; ``AugmentedDataset(real,
gan, sampling_strategy)`` puts generated images after the real ones so that training code
sees balanced classes with no other change. Both follow torchvision's conventions:
``transform``, ``target_transform``, ``classes``, ``targets``, ``(image, label)`` items.

What a transform receives
-------------------------
* an albumentations transform or ``Compose``: ``image=`` a numpy array, (H, W) for grey
  or (H, W, C), in the dtype and range of the items (uint8 0..255 for PIL datasets); the
  wrapper returns ``result["image"]``;
* anything else (torchvision v1/v2 transforms, any callable): the item's image as the
  real dataset gives it: a PIL image for torchvision's image datasets, a tensor for a
  ``TensorDataset``, and so on. Synthetic images are handed over in exactly that form.

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
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import sys
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, Subset, TensorDataset

from ._io import NpyStream, disk_errors
from .data import ArraySpec, item_spec
from .gan import ConditionalDCGAN
from .sampling import MAX_SEED, base_seed, iter_generate, resolve_counts, synthetic_counts

__all__ = ["AugmentedDataset", "SyntheticDataset", "dataset_targets"]

STORAGES = ("memory", "disk", "lazy")


# --------------------------------------------------------------------------- helpers


def dataset_targets(dataset: Any) -> np.ndarray | None:
    """The labels of a dataset without loading its images, when it exposes them.

    Understands ``targets`` (torchvision datasets, ImageFolder), ``TensorDataset`` and
    ``Subset`` of any of these. Returns None when the labels can only be read item by item.
    """
    if isinstance(dataset, Subset):
        parent = dataset_targets(dataset.dataset)
        return None if parent is None else parent[np.asarray(dataset.indices, dtype=np.int64)]
    if isinstance(dataset, TensorDataset):
        return dataset.tensors[1].cpu().numpy() if len(dataset.tensors) >= 2 else None
    targets = getattr(dataset, "targets", None)
    if targets is None:
        return None
    if isinstance(targets, torch.Tensor):
        return targets.cpu().numpy()
    return np.asarray(targets)


def _dataset_classes(dataset: Any) -> list[Any] | None:
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    classes = getattr(dataset, "classes", None)
    return list(classes) if classes is not None else None


def _is_albumentations(transform: Any) -> bool:
    album = sys.modules.get("albumentations")  # never import it just to check
    return album is not None and isinstance(transform, (album.BasicTransform, album.BaseCompose))


def _to_numpy_hwc(image: Any) -> np.ndarray:
    if isinstance(image, Image.Image):
        return np.asarray(image)
    if isinstance(image, torch.Tensor):
        t = image.detach().cpu()
        return (t.permute(1, 2, 0) if t.ndim == 3 else t).numpy()
    return np.asarray(image)


def apply_transform(transform: Callable | None, image: Any) -> Any:
    """Apply an albumentations, torchvision or plain-callable transform to one image."""
    if transform is None:
        return image
    if _is_albumentations(transform):
        return transform(image=_to_numpy_hwc(image))["image"]
    return transform(image)


class _ItemFormat:
    """Turns generated (C, H, W) images in [-1, 1] into dataset items of a given form."""

    def __init__(self, spec: ArraySpec, pil: bool) -> None:
        self.spec, self.pil = spec, pil

    def __call__(self, image: torch.Tensor) -> Any:
        out = self.spec.restore(image[None])[0]
        if self.pil:
            return Image.fromarray(np.ascontiguousarray(out))
        return out


def _format_for(kind: str, gan: ConditionalDCGAN) -> _ItemFormat:
    spec = gan.input_spec_
    if kind == "auto":
        return _ItemFormat(spec, pil=False)
    c = gan.image_shape_[0]
    if kind == "pil":
        if c not in (1, 3):
            raise ValueError(f"image_format='pil' needs 1 or 3 channels; this model makes {c}.")
        layout = "NHW" if c == 1 else "NHWC"
        return _ItemFormat(ArraySpec("numpy", layout, "uint8", (0.0, 255.0), ()), pil=True)
    if kind == "tensor":
        return _ItemFormat(ArraySpec("torch", "NCHW", "float32", (0.0, 1.0), ()), pil=False)
    if kind == "numpy":
        layout = "NHW" if c == 1 else "NHWC"
        return _ItemFormat(ArraySpec("numpy", layout, "uint8", (0.0, 255.0), ()), pil=False)
    raise ValueError(f"image_format must be 'auto', 'pil', 'tensor' or 'numpy', got {kind!r}.")


class _SyntheticStore:
    """Per-index seeded synthetic images, generated in fixed chunks, stored as asked."""

    def __init__(
        self,
        gan: ConditionalDCGAN,
        counts: Mapping[int, int],
        *,
        seed: int,
        storage: str,
        chunk_size: int,
        cache_dir: str | os.PathLike | None,
        cache_chunks: int,
        device: str | torch.device | None,
    ) -> None:
        if storage not in STORAGES:
            raise ValueError(f"storage must be one of {STORAGES}, got {storage!r}.")
        if storage == "disk" and cache_dir is None:
            raise ValueError("storage='disk' needs cache_dir: the folder where generated images are kept.")
        if not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}.")
        self.labels = np.concatenate(
            [np.full(k, i, dtype=np.int64) for i, k in counts.items()] or [np.empty(0, np.int64)]
        )
        self.n = len(self.labels)
        self.seed, self.storage, self.chunk_size = seed, storage, int(chunk_size)
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.cache_chunks = max(1, int(cache_chunks))
        self.image_shape = gan.image_shape_
        if storage == "lazy":
            # A CPU copy: DataLoader workers may fork, and CUDA state must not cross a fork.
            self.device = torch.device(device or "cpu")
            self.generator = copy.deepcopy(gan.generator_).to(self.device).eval()
        else:
            self.device = torch.device(device) if device is not None else gan.device_
            self.generator = gan.generator_
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
        base = self.seed + self.epoch * self.n
        if base + self.n > MAX_SEED:
            raise ValueError("Seed range exhausted; use a smaller random_state or epoch.")
        return base + np.arange(start, stop, dtype=np.int64)

    def set_epoch(self, epoch: int) -> None:
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise ValueError(f"epoch must be an integer >= 0, got {epoch!r}.")
        if int(epoch) != self.epoch:
            self.epoch = int(epoch)
            self._prepare()

    def _generate(self, start: int, stop: int) -> Any:
        return iter_generate(
            self.generator, self.labels[start:stop], self.seeds(start, stop),
            device=self.device, batch_size=self.chunk_size,
        )

    def _prepare(self) -> None:
        self._chunks: OrderedDict[int, torch.Tensor] = OrderedDict()
        if self.storage == "memory":
            chunks = list(self._generate(0, self.n))
            self._images = torch.cat(chunks) if chunks else torch.empty(0, *self.image_shape)
        elif self.storage == "disk":
            path = self._cache_path()
            if not path.exists():
                self._write_disk_cache(path)
            else:
                problem = self._disk_cache_problem(path)
                if problem is not None:
                    # stacklevel 4: the caller's dataset construction, set_epoch or resample.
                    warnings.warn(f"Disk cache {path} {problem}; generating it again.", UserWarning, stacklevel=4)
                    self._write_disk_cache(path)
            self._images = np.load(path, mmap_mode="r")

    def _cache_key(self) -> str:
        if self._model_hash is None:
            h = hashlib.sha256()
            for key, value in sorted(self.generator.state_dict().items()):
                h.update(key.encode())
                h.update(value.detach().cpu().contiguous().numpy().tobytes())
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
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        record_path = path.with_suffix(".json")
        record_tmp = record_path.with_name(f".{record_path.name}.{os.getpid()}.tmp")
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

    def __getitem__(self, j: int) -> torch.Tensor:
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


def _check_fitted(gan: Any) -> ConditionalDCGAN:
    if not isinstance(gan, ConditionalDCGAN):
        raise TypeError(f"gan must be a ConditionalDCGAN (fitted or loaded), got {type(gan).__name__}.")
    gan._check_is_fitted()
    return gan


# --------------------------------------------------------------------------- datasets


class _Epochs:
    """Epoch control shared by the two datasets: which synthetic images are served."""

    _store: _SyntheticStore

    @property
    def epoch(self) -> int:
        return self._store.epoch

    def set_epoch(self, epoch: int) -> None:
        """Serve the synthetic images of ``epoch`` (fresh seeds, same class counts)."""
        self._store.set_epoch(epoch)

    def resample(self) -> None:
        """Move on to fresh synthetic images (the next epoch's)."""
        self._store.set_epoch(self._store.epoch + 1)


class SyntheticDataset(_Epochs, Dataset):
    """Only generated images, with their labels.

    Parameters
    ----------
    gan : ConditionalDCGAN
        A fitted or loaded model.
    counts : int or mapping
        ``{class: count}`` or a total spread evenly over the classes.
    transform, target_transform : callable, optional
        Applied to each image / label (see the module docstring for what they receive).
    image_format : {"auto", "pil", "tensor", "numpy"}, default="auto"
        ``"auto"``: one image in the form ``gan.fit`` was given (e.g. a uint8 (H, W) array).
    random_state : int, optional
        Base seed; item ``j`` uses seed ``random_state + epoch * len(self) + j``.
    storage, chunk_size, cache_dir, cache_chunks, device
        See the module docstring.

    Example
    -------
    >>> ds = SyntheticDataset(gan, {3: 1000, 7: 1000}, image_format="pil",
    ...                       transform=torchvision.transforms.ToTensor())  # doctest: +SKIP
    """

    def __init__(
        self,
        gan: ConditionalDCGAN,
        counts: int | Mapping[Any, int],
        *,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        image_format: str = "auto",
        random_state: int | None = None,
        storage: str = "memory",
        chunk_size: int = 256,
        cache_dir: str | os.PathLike | None = None,
        cache_chunks: int = 4,
        device: str | None = None,
    ) -> None:
        gan = _check_fitted(gan)
        self.transform = transform
        self.target_transform = target_transform
        self.classes = gan.classes_.tolist()
        self._format = _format_for(image_format, gan)
        self._class_values = gan.classes_
        self._store = _SyntheticStore(
            gan, resolve_counts(counts, gan.classes_), seed=base_seed(random_state, limit=2**62 - 1), storage=storage,
            chunk_size=chunk_size, cache_dir=cache_dir, cache_chunks=cache_chunks, device=device,
        )
        self.targets = self._class_values[self._store.labels]

    def __len__(self) -> int:
        return self._store.n

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} synthetic items")
        index %= len(self)
        image = apply_transform(self.transform, self._format(self._store[index]))
        target = self.targets[index].item() if isinstance(self.targets[index], np.generic) else self.targets[index]
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target


    def is_synthetic(self, index: int) -> bool:
        return True

    @property
    def synthetic_mask(self) -> np.ndarray:
        return np.ones(len(self), dtype=bool)


class AugmentedDataset(_Epochs, Dataset):
    """A real labelled dataset followed by class-balancing synthetic images.

    Items ``0 .. n_real - 1`` are the real dataset's, in order; items from ``n_real`` on
    are synthetic, grouped by class. How many synthetic images each class gets follows
    imbalanced-learn's ``sampling_strategy`` (computed by ``ganaug.sampling.synthetic_counts``,
    the helper every front end uses) or, instead, ``ratio`` synthetic per real image.

    Labels come back in the real dataset's own form: if it labels with class indices
    (torchvision's ImageFolder, MNIST) synthetic items carry indices too, even when the GAN
    was trained on class names (matched through the dataset's ``classes``).

    Parameters
    ----------
    real : torch Dataset
        Map-style, items ``(image, label)``; a torchvision dataset, an ImageFolder, a
        TensorDataset or a Subset of one. Labels are read from ``targets`` when the dataset
        has them, without loading images.
    gan : ConditionalDCGAN
        Fitted or loaded, on the same classes and image shape as ``real``.
    sampling_strategy : str, float, dict or callable, default="auto"
        imbalanced-learn's over-sampling semantics; "auto" fills every class up to the
        largest.
    ratio : float, optional
        Instead of ``sampling_strategy``: ``round(ratio * n_real(c))`` synthetic per class.
    transform, target_transform : callable, optional
        Applied to real and synthetic items alike (see the module docstring).
    random_state, storage, chunk_size, cache_dir, cache_chunks, device
        As for :class:`SyntheticDataset`.

    Attributes
    ----------
    classes : list
        The real dataset's ``classes`` when it has them, else the sorted label values.
    targets : np.ndarray
        Every item's label, real then synthetic.
    class_counts, synthetic_counts : dict
        Real images and synthetic images per label.
    synthetic_mask : np.ndarray of bool
        True for synthetic items: evaluate on real items only.

    Example
    -------
    >>> train = AugmentedDataset(mnist_train, gan, sampling_strategy="auto",
    ...     transform=A.Compose([A.Affine(rotate=(-10, 10)), A.Normalize(), ToTensorV2()]))  # doctest: +SKIP
    >>> loader = DataLoader(train, batch_size=128, shuffle=True, num_workers=2)  # doctest: +SKIP
    """

    def __init__(
        self,
        real: Dataset,
        gan: ConditionalDCGAN,
        sampling_strategy: Any = "auto",
        *,
        ratio: float | None = None,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        random_state: int | None = None,
        storage: str = "memory",
        chunk_size: int = 256,
        cache_dir: str | os.PathLike | None = None,
        cache_chunks: int = 4,
        device: str | None = None,
    ) -> None:
        gan = _check_fitted(gan)
        if ratio is not None and not (isinstance(sampling_strategy, str) and sampling_strategy == "auto"):
            raise ValueError("Give either sampling_strategy or ratio, not both.")
        self.real = real
        self.transform = transform
        self.target_transform = target_transform
        try:
            self.n_real = len(real)  # type: ignore[arg-type]
        except TypeError as exc:
            raise TypeError("real must be a map-style torch Dataset with a length.") from exc
        if self.n_real == 0:
            raise ValueError("The real dataset is empty.")
        first = real[0]
        if not isinstance(first, (tuple, list)) or len(first) < 2:
            raise ValueError(
                "The real dataset's items are not (image, label) pairs; AugmentedDataset needs labels "
                "to balance classes. Wrap the dataset so that it returns (image, label)."
            )
        spec, is_pil = item_spec(first[0])
        # Synthetic labels take the real labels' type, so that default_collate can batch them.
        self._label_dtype = first[1].dtype if isinstance(first[1], torch.Tensor) else None
        self._check_shape(spec, gan)
        self._format = _ItemFormat(spec, is_pil)

        real_targets = dataset_targets(real)
        if real_targets is None:
            real_targets = np.asarray([self._label(real[i][1]) for i in range(self.n_real)])
        if len(real_targets) != self.n_real:
            raise ValueError(f"The dataset has {self.n_real} items but {len(real_targets)} targets.")
        values, counts = np.unique(real_targets, return_counts=True)
        self.class_counts = {v: int(k) for v, k in zip(values.tolist(), counts.tolist())}
        class_names = _dataset_classes(real)
        self.classes = class_names if class_names is not None else values.tolist()
        to_gan = self._match_classes(values.tolist(), gan, class_names)

        self.synthetic_counts = synthetic_counts(self.class_counts, sampling_strategy, ratio=ratio)
        self._store = _SyntheticStore(
            gan, {to_gan[v]: k for v, k in self.synthetic_counts.items() if k > 0},
            seed=base_seed(random_state, limit=2**62 - 1), storage=storage, chunk_size=chunk_size, cache_dir=cache_dir,
            cache_chunks=cache_chunks, device=device,
        )
        from_gan = {i: v for v, i in to_gan.items()}
        synthetic_targets = np.asarray([from_gan[i] for i in self._store.labels.tolist()], dtype=real_targets.dtype)
        self.targets = np.concatenate([real_targets, synthetic_targets])

    @staticmethod
    def _label(label: Any) -> Any:
        return label.item() if isinstance(label, torch.Tensor) else label

    @staticmethod
    def _check_shape(spec: ArraySpec, gan: ConditionalDCGAN) -> None:
        shape = spec.shape
        layout = spec.layout
        chw = (1, *shape) if layout == "NHW" else ((shape[2], shape[0], shape[1]) if layout == "NHWC" else shape)
        if tuple(chw) != tuple(gan.image_shape_):
            raise ValueError(
                f"The GAN makes images of shape {gan.image_shape_} (C, H, W) but the real dataset's are {tuple(chw)}; "
                "train the GAN on this dataset (or resize the dataset to the GAN's size)."
            )

    @staticmethod
    def _match_classes(values: list[Any], gan: ConditionalDCGAN, class_names: list[Any] | None) -> dict[Any, int]:
        """Map each real label value to the GAN's class index."""
        gan_index = {c: i for i, c in enumerate(gan.classes_.tolist())}
        if all(v in gan_index for v in values):
            return {v: gan_index[v] for v in values}
        if class_names is not None and all(isinstance(v, (int, np.integer)) and 0 <= v < len(class_names) for v in values):
            names = {v: class_names[v] for v in values}
            if all(n in gan_index for n in names.values()):
                return {v: gan_index[n] for v, n in names.items()}
        missing = [v for v in values if v not in gan_index]
        raise ValueError(
            f"The GAN was trained on classes {gan.classes_.tolist()!r} but the real dataset has labels {missing!r} "
            "that it does not know. Train the GAN on this dataset's labels."
        )

    def __len__(self) -> int:
        return self.n_real + self._store.n

    @property
    def n_synthetic(self) -> int:
        return self._store.n

    def is_synthetic(self, index: int) -> bool:
        """True when item ``index`` is generated, False when it is one of the real images."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        return index % len(self) >= self.n_real

    @property
    def synthetic_mask(self) -> np.ndarray:
        mask = np.zeros(len(self), dtype=bool)
        mask[self.n_real :] = True
        return mask

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        index %= len(self)
        if index < self.n_real:
            image, target = self.real[index][:2]
        else:
            image = self._format(self._store[index - self.n_real])
            target = self.targets[index]
            target = target.item() if isinstance(target, np.generic) else target
            if self._label_dtype is not None:
                target = torch.tensor(target, dtype=self._label_dtype)
        image = apply_transform(self.transform, image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

