"""torch Datasets yielding ``(image, label)`` -> :class:`~ganaug.data.spec.ImageData`, and
what a dataset's items look like (:func:`item_spec`, :func:`dataset_targets`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Subset, TensorDataset

from ..readers import pil_pixels
from .arrays import _from_array
from .spec import ArraySpec, ImageData

__all__ = ["dataset_targets", "item_spec"]


def _item_to_array(image: Any, index: int) -> tuple[np.ndarray, str]:
    """One dataset image -> (array, container); arrays keep their own layout."""
    if isinstance(image, Image.Image):
        return pil_pixels(image, f"Dataset item {index}"), "numpy"
    if isinstance(image, torch.Tensor):
        return image.detach().cpu().numpy(), "torch"
    if isinstance(image, np.ndarray):
        return image, "numpy"
    raise TypeError(
        f"Dataset item {index} holds an image of type {type(image).__name__}; expected a PIL image, "
        "a tensor or a numpy array. Set the dataset's transform to produce one."
    )


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


def _from_dataset(dataset: torch.utils.data.Dataset, value_range: tuple[float, float] | None) -> ImageData:
    try:
        n = len(dataset)  # type: ignore[arg-type]
    except TypeError as exc:
        raise TypeError("The dataset must have a length (a map-style torch Dataset).") from exc
    if n == 0:
        raise ValueError("The dataset is empty.")
    images, labels = [], []
    container = None
    for i in range(n):
        item = dataset[i]
        if not isinstance(item, (tuple, list)) or len(item) < 2:
            raise ValueError(
                f"Dataset item {i} is not an (image, label) pair; ganaug needs labelled images. "
                "Wrap the dataset so that it returns (image, label)."
            )
        arr, kind = _item_to_array(item[0], i)
        container = container or kind
        if images and arr.shape != images[0].shape:
            raise ValueError(
                f"Dataset item {i} has shape {arr.shape} but item 0 has {images[0].shape}; all images must "
                "share one size. Add a Resize transform to the dataset."
            )
        images.append(arr)
        label = item[1]
        labels.append(label.item() if isinstance(label, torch.Tensor) else label)
    X = np.stack(images)
    if container == "torch":
        # Tensors from torchvision are (C, H, W) already; torch's convention is channels-first.
        return _from_array(torch.from_numpy(X), labels, None, value_range)
    return _from_array(X, labels, None, value_range)


def item_spec(image: Any) -> tuple[ArraySpec, bool]:
    """The form of one dataset image, as (spec of a batch of one, is_pil).

    Lets a wrapper hand out generated images exactly like a dataset's own items:
    ``spec.restore(batch)[i]`` gives an array/tensor like ``image`` (PIL images as uint8
    arrays, to be wrapped with ``Image.fromarray`` when ``is_pil``).
    """
    arr, container = _item_to_array(image, 0)
    batch = torch.from_numpy(arr[None]) if container == "torch" else arr[None]
    data = _from_array(batch, np.zeros(1, dtype=np.int64), None, None)
    return data.spec, isinstance(image, Image.Image)
