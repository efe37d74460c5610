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

Synthetic item ``j`` is always generated from the same seed, whatever the order of access
or the number of DataLoader workers; ``set_epoch(e)`` (or ``resample()``) switches to
fresh images. ``storage`` keeps them in memory, in a verified ``.npy`` cache on disk, or
generates them lazily: see :mod:`ganaug.synthetic` for both rules.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, Sampler, Subset, WeightedRandomSampler

from .anchors import LatentAnchors
from .data import ArraySpec, dataset_targets, item_spec
from .distributed import Context, broadcast, context
from .gan import ConditionalDCGAN
from .sampling import (
    check_share,
    class_index,
    real_duplicates,
    resolve_counts,
    shared_random_state,
    split_synthetic,
    synthetic_counts,
)
from .synthetic import SyntheticStore

__all__ = ["AugmentedDataset", "SyntheticDataset", "dataset_targets"]  # dataset_targets: from ganaug.data


# --------------------------------------------------------------------------- helpers


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


def _check_fitted(gan: Any) -> ConditionalDCGAN:
    if not isinstance(gan, ConditionalDCGAN):
        raise TypeError(f"gan must be a ConditionalDCGAN (fitted or loaded), got {type(gan).__name__}.")
    gan._check_is_fitted()
    return gan


def _check_index(index: int, n: int, what: str) -> int:
    """``index`` as a position in 0 .. n - 1 (negative ones count from the end), or IndexError."""
    if not -n <= index < n:
        raise IndexError(f"index {index} out of range for {n} {what}")
    return index % n


def _label(label: Any) -> Any:
    return label.item() if isinstance(label, torch.Tensor) else label


def _python_scalar(value: Any) -> Any:
    # A numpy label becomes a Python one, as torchvision's datasets give them.
    return value.item() if isinstance(value, np.generic) else value


def _first_pair(real: Any) -> tuple[int, Any]:
    """The length of a labelled map-style dataset and its first item, or an error saying what to change."""
    try:
        n = len(real)
    except TypeError as exc:
        raise TypeError("real must be a map-style torch Dataset with a length.") from exc
    if n == 0:
        raise ValueError("The real dataset is empty.")
    first = real[0]
    if not isinstance(first, (tuple, list)) or len(first) < 2:
        raise ValueError(
            "The real dataset's items are not (image, label) pairs; AugmentedDataset needs labels "
            "to balance classes. Wrap the dataset so that it returns (image, label)."
        )
    return n, first


# --------------------------------------------------------------------------- datasets


class _Epochs:
    """Epoch control shared by the two datasets: which synthetic images are served."""

    _store: SyntheticStore

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
        Where the images are kept and generated: see :mod:`ganaug.synthetic`.
    anchors : LatentAnchors, optional
        Draw latents near and between inverted real images of each class
        (:class:`ganaug.anchors.LatentAnchors`) instead of from the prior; it needs codes
        of every class that gets images. Still one seed per item.

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
        anchors: LatentAnchors | None = None,
    ) -> None:
        gan = _check_fitted(gan)
        self.transform = transform
        self.target_transform = target_transform
        self.classes = gan.classes_.tolist()
        self._format = _format_for(image_format, gan)
        self._store = SyntheticStore(
            gan, resolve_counts(counts, gan.classes_), random_state=random_state, storage=storage,
            chunk_size=chunk_size, cache_dir=cache_dir, cache_chunks=cache_chunks, device=device, anchors=anchors,
        )
        self.targets = gan.classes_[self._store.labels]

    def __len__(self) -> int:
        return self._store.n

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        index = _check_index(index, len(self), "synthetic items")
        image = apply_transform(self.transform, self._format(self._store[index]))
        target = _python_scalar(self.targets[index])
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def is_synthetic(self, index: int) -> bool:
        """True for every item of the dataset (all are generated); IndexError outside it."""
        _check_index(index, len(self), "synthetic items")
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
        Instead of ``sampling_strategy``: ``round(ratio * n_real(c))`` added items per
        class, synthetic up to ``max_synthetic_per_real``.
    max_synthetic_per_real : float or None, default=1.0
        At most this many synthetic items per real item of a class; the rest of what the
        class is to get are random copies of its real items (random oversampling), placed
        between the real and the synthetic items. None: all of it is synthetic (the default
        until issue 18). The default 1 was chosen on validation splits of the downstream
        benchmark (``benchmarks/downstream.py --tune-cap``: a small CNN, the imbalanced
        regimes of the 8x8 digits and MNIST, 3 seeds), where it beat random oversampling
        by +0.4 ± 0.9 points of balanced accuracy on average and filling with synthetic
        items only lost 5.4 ± 2.6. ``GANOverSampler(max_synthetic_per_real="auto")``
        chooses a cap for your data: pass its ``selection_["max_synthetic_per_real"]``
        and ``generator_`` here.
    transform, target_transform : callable, optional
        Applied to real and synthetic items alike (see the module docstring).
    random_state, storage, chunk_size, cache_dir, cache_chunks, device, anchors
        As for :class:`SyntheticDataset`. For ``anchors``, invert the real images of the
        classes that get synthetic ones, labelled with the GAN's class values:
        ``LatentAnchors.from_real(gan, X_rare, y_rare)``.

    Attributes
    ----------
    classes : list
        The real dataset's ``classes`` when it has them, else the sorted label values.
    targets : np.ndarray
        Every item's label, real then synthetic.
    class_counts, synthetic_counts, copy_counts : dict
        Real images, synthetic images and copies of real images per label.
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
        max_synthetic_per_real: float | None = 1.0,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        random_state: int | None = None,
        storage: str = "memory",
        chunk_size: int = 256,
        cache_dir: str | os.PathLike | None = None,
        cache_chunks: int = 4,
        device: str | None = None,
        anchors: LatentAnchors | None = None,
    ) -> None:
        gan = _check_fitted(gan)
        if ratio is not None and not (isinstance(sampling_strategy, str) and sampling_strategy == "auto"):
            raise ValueError("Give either sampling_strategy or ratio, not both.")
        self.real = real
        self.transform = transform
        self.target_transform = target_transform
        self.n_real, first = _first_pair(real)
        spec, is_pil = item_spec(first[0])
        # Synthetic labels take the real labels' type, so that default_collate can batch them.
        self._label_dtype = first[1].dtype if isinstance(first[1], torch.Tensor) else None
        self._check_shape(spec, gan)
        self._format = _ItemFormat(spec, is_pil)

        real_targets = self._real_targets()
        values, counts = np.unique(real_targets, return_counts=True)
        self.class_counts = {v: int(k) for v, k in zip(values.tolist(), counts.tolist())}
        class_names = _dataset_classes(real)
        self.classes = class_names if class_names is not None else values.tolist()
        to_gan = self._match_classes(values.tolist(), gan, class_names)

        self.synthetic_counts, self.copy_counts = split_synthetic(
            synthetic_counts(self.class_counts, sampling_strategy, ratio=ratio), self.class_counts,
            max_synthetic_per_real)
        # One seed for the copies and the synthetic images, rank 0's, on every rank.
        random_state = shared_random_state(random_state, "sharing the dataset's seed")
        self._copies = real_duplicates(real_targets, self.copy_counts, random_state)
        self._store = SyntheticStore(
            gan, {to_gan[v]: k for v, k in self.synthetic_counts.items() if k > 0}, random_state=random_state,
            storage=storage, chunk_size=chunk_size, cache_dir=cache_dir, cache_chunks=cache_chunks, device=device,
            anchors=anchors,
        )
        from_gan = {i: v for v, i in to_gan.items()}
        synthetic_targets = np.asarray([from_gan[i] for i in self._store.labels.tolist()], dtype=real_targets.dtype)
        self.targets = np.concatenate([real_targets, real_targets[self._copies], synthetic_targets])

    def _real_targets(self) -> np.ndarray:
        """The real items' labels: from ``targets`` when the dataset has them, else item by item."""
        targets = dataset_targets(self.real)
        if targets is None:
            targets = np.asarray([_label(self.real[i][1]) for i in range(self.n_real)])
        if len(targets) != self.n_real:
            raise ValueError(f"The dataset has {self.n_real} items but {len(targets)} targets.")
        return targets

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
        gan_index = class_index(gan.classes_)
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
        return self._first_synthetic + self._store.n

    @property
    def n_synthetic(self) -> int:
        return self._store.n

    @property
    def n_copies(self) -> int:
        return len(self._copies)

    @property
    def _first_synthetic(self) -> int:
        return self.n_real + len(self._copies)

    def is_synthetic(self, index: int) -> bool:
        """True when item ``index`` is generated, False for a real image or a copy of one."""
        return _check_index(index, len(self), "items") >= self._first_synthetic

    @property
    def synthetic_mask(self) -> np.ndarray:
        return np.arange(len(self)) >= self._first_synthetic

    def sampler(self, synthetic_share: float, *, num_samples: int | None = None,
                generator: torch.Generator | None = None) -> Sampler[int]:
        """A DataLoader sampler that draws synthetic items as a fixed share of each class.

        Each class keeps its number of items in the draws (the balance this dataset
        was built for), and ``synthetic_share`` of them are synthetic, the rest real items
        and their copies; a class without synthetic items draws only real ones. So
        synthetic images count less (or more) than their number, the torch counterpart of
        ``GANAugmentedClassifier(synthetic_weight=...)``. Draws are with replacement, as
        torch's ``WeightedRandomSampler`` makes them.

        Under torchrun the job's ``num_samples`` draws are made once, from a seed shared by
        the ranks, and rank r takes draws r, r + world_size, ... (DistributedSampler's
        rule): ``num_samples // world_size`` per rank, seeded by ``generator``'s initial
        seed. Call ``set_epoch(epoch)`` on it every epoch, as with DistributedSampler, for
        fresh draws (in one process it draws afresh every pass, and ``set_epoch`` is there
        so that the same script runs either way). Build it on every rank: without a
        ``generator`` the seed is shared by a collective.

        Parameters
        ----------
        synthetic_share : float in [0, 1]
        num_samples : int, default=len(self)
            Draws per epoch.
        generator : torch.Generator, optional
            Seeds the draws.

        Example
        -------
        >>> loader = DataLoader(train, batch_size=64, sampler=train.sampler(0.25))  # doctest: +SKIP
        """
        share = check_share(synthetic_share, "synthetic_share must be a number in [0, 1]", at_most=1.0)
        synthetic = self.synthetic_mask
        weights = np.ones(len(self))
        for value in self.class_counts:
            rows = self.targets == value
            n, n_synthetic = int(rows.sum()), int((rows & synthetic).sum())
            if n_synthetic:  # the class's total weight stays n: share * n on its synthetic items
                weights[rows & synthetic] = share * n / n_synthetic
                weights[rows & ~synthetic] = (1 - share) * n / (n - n_synthetic)
        n, job = len(self) if num_samples is None else int(num_samples), context()
        weights = torch.as_tensor(weights, dtype=torch.double)
        if job.active:
            seed = generator.initial_seed() if generator is not None else int(torch.randint(2**62, ()).item())
            return _ShardedWeightedSampler(weights, n, job, broadcast(seed, "sharing the sampler's seed"))
        return _WeightedSampler(weights, n, replacement=True, generator=generator)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        index = _check_index(index, len(self), "items")
        if index < self._first_synthetic:
            real = index if index < self.n_real else int(self._copies[index - self.n_real])
            image, target = self.real[real][:2]
        else:
            image = self._format(self._store[index - self._first_synthetic])
            target = _python_scalar(self.targets[index])
            if self._label_dtype is not None:
                target = torch.tensor(target, dtype=self._label_dtype)
        image = apply_transform(self.transform, image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target


class _ShardedWeightedSampler(Sampler[int]):
    """A job's weighted draws with replacement, of which this rank takes every
    ``world_size``-th; ``set_epoch`` draws afresh (see :meth:`AugmentedDataset.sampler`)."""

    def __init__(self, weights: torch.Tensor, num_samples: int, job: Context, seed: int) -> None:
        self.weights, self.job, self.seed, self.epoch = weights, job, seed, 0
        self.num_samples = num_samples // job.world_size

    def __iter__(self):
        rng = torch.Generator().manual_seed(self.seed + self.epoch)
        draws = torch.multinomial(self.weights, self.num_samples * self.job.world_size, replacement=True,
                                  generator=rng)
        return iter(draws[self.job.rank :: self.job.world_size].tolist())

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)


class _WeightedSampler(WeightedRandomSampler):
    """torch's WeightedRandomSampler, with DistributedSampler's ``set_epoch`` (a no-op: it draws afresh every pass)."""

    def set_epoch(self, epoch: int) -> None:
        pass
