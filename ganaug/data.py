"""The in-memory form every kind of labelled image input becomes, and the way back.

The form is :class:`ImageData`: float32 images in [-1, 1], NCHW, integer class indices,
the sorted class values, and an :class:`ArraySpec` that maps generated images back to
the caller's container, layout, dtype and value range (uint8 in, uint8 out).

Inputs understood by :func:`as_image_data`:

* numpy arrays or torch tensors shaped (N, H, W), (N, H, W, C), (N, C, H, W), or
  flattened (N, D) together with ``image_shape``;
* a ``torch.utils.data.Dataset`` yielding ``(image, label)`` (PIL, tensor or array);
* a path or ``"digits"``, read by :mod:`ganaug.readers` (image folder, MNIST-format IDX
  folder, ``.npz`` with ``X`` and ``y``, scikit-learn's bundled 8x8 digits), whose readers
  are importable from here too. Those reads are bounded and checked; see that module.
"""

from __future__ import annotations

import math
import numbers
import os
import sys
import types
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Subset, TensorDataset

from . import readers
from .readers import (
    IMG_EXTENSIONS,
    load_digits,
    load_idx,
    load_image_folder,
    load_npz,
    load_source,
    pil_pixels,
    read_idx,
)

MIN_IMAGE_SIZE = 8

__all__ = [
    "IMG_EXTENSIONS",
    "MAX_ARRAY_BYTES",  # noqa: F822 (a property of _DataModule, below)
    "MIN_IMAGE_SIZE",
    "ArraySpec",
    "ImageData",
    "as_image_data",
    "check_class_counts",
    "dataset_targets",
    "item_spec",
    "load_digits",
    "load_idx",
    "load_image_folder",
    "load_npz",
    "load_source",
    "read_idx",
    "to_uint8",
    "to_unit",
]


# --------------------------------------------------------------------------- [-1, 1] -> the caller's values


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """Model output (any shape, dtype, device) in [-1, 1] -> float32 on the CPU in [0, 1], clamped first."""
    return (images.detach().float().cpu().clamp(-1, 1) + 1) / 2


def _cast(arr: np.ndarray, dtype: np.dtype, lo: float, hi: float) -> np.ndarray:
    """Float values in [lo, hi] -> ``dtype``; integer and bool types are rounded half to even (np.rint) first."""
    if np.issubdtype(dtype, np.integer) or dtype == np.bool_:
        arr = np.clip(np.rint(arr), lo, hi)
    return arr.astype(dtype)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) images in [-1, 1] -> uint8 numpy (N, C, H, W), rounded as a uint8 model's output is."""
    return _cast((to_unit(images) * 255.0).numpy(), np.dtype(np.uint8), 0, 255)


# --------------------------------------------------------------------------- the in-memory form


@dataclass(frozen=True)
class ArraySpec:
    """How the caller's images were laid out, so generated images can be returned alike.

    ``shape`` is the shape of one image as the caller gave it (e.g. ``(8, 8)``,
    ``(28, 28, 1)``, ``(3, 32, 32)`` or ``(64,)`` for flattened rows).
    """

    container: str  # "numpy" or "torch"
    layout: str  # "NHW", "NHWC", "NCHW" or "flat"
    dtype: str  # numpy dtype name, e.g. "uint8", "float32"
    value_range: tuple[float, float]
    shape: tuple[int, ...]
    flat_layout: str | None = None  # layout of the unflattened rows when layout == "flat"

    def to_dict(self) -> dict[str, Any]:
        return {
            "container": self.container,
            "layout": self.layout,
            "dtype": self.dtype,
            "value_range": list(self.value_range),
            "shape": list(self.shape),
            "flat_layout": self.flat_layout,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ArraySpec:
        return cls(
            container=str(d["container"]),
            layout=str(d["layout"]),
            dtype=str(d["dtype"]),
            value_range=(float(d["value_range"][0]), float(d["value_range"][1])),
            shape=tuple(int(s) for s in d["shape"]),
            flat_layout=d.get("flat_layout"),
        )

    def restore(self, images: torch.Tensor) -> np.ndarray | torch.Tensor:
        """Map model output (N, C, H, W) in [-1, 1] back to the caller's form."""
        lo, hi = self.value_range
        x = to_unit(images) * (hi - lo) + lo
        layout = self.flat_layout if self.layout == "flat" else self.layout
        if layout == "NHW":
            x = x[:, 0]
        elif layout == "NHWC":
            x = x.permute(0, 2, 3, 1)
        if self.layout == "flat":
            x = x.reshape(x.shape[0], -1)
        arr = _cast(x.contiguous().numpy(), np.dtype(self.dtype), lo, hi)
        if self.container == "torch":
            return torch.from_numpy(arr)
        return arr


@dataclass
class ImageData:
    """Labelled images in the one form the model and trainer use.

    Attributes
    ----------
    images : torch.Tensor
        float32, (N, C, H, W), values in [-1, 1].
    labels : torch.Tensor
        int64 class indices into ``classes``, shape (N,).
    classes : np.ndarray
        The sorted class values (any hashable type numpy can hold).
    spec : ArraySpec
        How to return generated images in the caller's form.
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: np.ndarray
    spec: ArraySpec
    class_counts: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.class_counts = np.bincount(self.labels.numpy(), minlength=len(self.classes))

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def __len__(self) -> int:
        return self.images.shape[0]


# --------------------------------------------------------------------------- arrays


def _detect_layout(shape: tuple[int, ...], container: str) -> str:
    if len(shape) == 3:
        return "NHW"
    _, d1, _, d3 = shape
    if d1 < MIN_IMAGE_SIZE <= d3:
        return "NCHW"
    if d3 < MIN_IMAGE_SIZE <= d1:
        return "NHWC"
    # Both could be channels (or neither): follow each ecosystem's own convention.
    return "NCHW" if container == "torch" else "NHWC"


def _infer_value_range(
    dtype: np.dtype, xmin: float, xmax: float, value_range: tuple[float, float] | None
) -> tuple[float, float]:
    """The range the values of X are read in: ``value_range`` when given, else by dtype.

    bool is 0..1 (False -> low, True -> high), uint8 0..255, uint16 0..65535 (16-bit
    images), floats [0, 1]. Other integer dtypes (int64 from ``np.array([...])``, int16, ...)
    say nothing about their range: they are read as 0..255 when their values lie in 0..255
    (and the type can hold 255), the common case of 8-bit pixels in a wider type, and
    otherwise need ``value_range``. uint16 values that stay under 4096 are read as 16-bit
    with a warning: 8- or 12-bit data in uint16 needs ``value_range``.
    """
    if value_range is not None:
        lo, hi = float(value_range[0]), float(value_range[1])
        if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
            raise ValueError(f"value_range must be finite (low, high) with high > low, got {value_range!r}.")
        return lo, hi
    if dtype == np.bool_:
        return (0.0, 1.0)
    if dtype == np.uint16:
        if xmax < 4096:
            warnings.warn(
                f"X is uint16 but its values only reach {xmax:g}: they are read as 16-bit (0..65535), so the "
                "images look dark to the model. Pass value_range=(0, 255) for 8-bit or (0, 4095) for 12-bit "
                "data (--value-range on the command line).",
                UserWarning,
                stacklevel=4,
            )
        return (0.0, 65535.0)
    if dtype == np.uint8:
        return (0.0, 255.0)
    if np.issubdtype(dtype, np.integer):
        if 0 <= xmin and xmax <= 255 and np.iinfo(dtype).max >= 255:  # int8 cannot hold 255
            return (0.0, 255.0)
        raise ValueError(
            f"X is {dtype} with values spanning [{xmin:g}, {xmax:g}]: uint8 is read as 0..255 and uint16 as "
            "0..65535, other integer types as 0..255 only when their values lie in 0..255. Pass "
            "value_range=(low, high) to say what range the values use, or cast X to uint8 or uint16."
        )
    return (0.0, 1.0)


def _check_label_types(types: set[type]) -> None:
    """Refuse labels that mix numbers and strings, which numpy would turn all into strings."""
    numeric = sorted(t.__name__ for t in types if issubclass(t, numbers.Number))
    text = sorted(t.__name__ for t in types if issubclass(t, (str, bytes)))
    if numeric and text:
        raise TypeError(
            f"y mixes {numeric[0]} and {text[0]} labels; numpy would turn every label into a string "
            "(1 into '1'). Give all labels one type: all integers or all strings."
        )


def _labels_to_indices(y: Any, n: int) -> tuple[torch.Tensor, np.ndarray]:
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    if isinstance(y, (list, tuple)):
        _check_label_types(set(map(type, y)))  # before np.asarray hides the mix in a '<U' array
    y = np.asarray(y)
    if y.dtype == object:
        _check_label_types(set(map(type, y.ravel())))
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"y must be one label per image, shape (N,); got shape {y.shape}.")
    if y.shape[0] != n:
        raise ValueError(
            f"X and y have different lengths: {n} images but {y.shape[0]} labels. "
            "Pass one label per image."
        )
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise ValueError("y contains NaN or inf; labels must be finite class values.")
    try:
        classes, indices = np.unique(y, return_inverse=True)
    except TypeError as exc:
        raise TypeError(f"labels must be mutually comparable (all ints or all strings): {exc}") from exc
    return torch.from_numpy(indices.reshape(-1).astype(np.int64)), classes


def check_class_counts(classes: np.ndarray, counts: np.ndarray) -> None:
    """Refuse one class; warn about classes with a single image (documented behaviour)."""
    if len(classes) < 2:
        raise ValueError(
            f"Need at least 2 classes to learn a class-conditional model, got only {classes.tolist()!r}. "
            "Check the labels (y) or the class folders."
        )
    singles = [c for c, k in zip(classes.tolist(), counts.tolist()) if k == 1]
    if singles:
        warnings.warn(
            f"Classes {singles!r} have a single image: the generator can only copy it. "
            "Add more images of these classes or drop them.",
            UserWarning,
            stacklevel=3,
        )


def _numeric_array(X: np.ndarray | torch.Tensor) -> tuple[np.ndarray, str]:
    """X as a real numeric numpy array, with the container it came in ("numpy" or "torch")."""
    container = "torch" if isinstance(X, torch.Tensor) else "numpy"
    arr = X.detach().cpu().numpy() if isinstance(X, torch.Tensor) else np.asarray(X)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise TypeError(f"X must be a numeric array of images, got dtype {arr.dtype}.")
    if arr.dtype.kind == "c":
        raise TypeError(
            f"X is complex ({arr.dtype}); images must be real-valued. Pass the part you mean to model, "
            "e.g. np.abs(X) (magnitude) or X.real."
        )
    return arr, container


def _unflatten(
    arr: np.ndarray, image_shape: Sequence[int] | None, container: str
) -> tuple[np.ndarray, str, str | None]:
    """(images with one axis per image dimension, layout, flat_layout); 2-D rows are reshaped by ``image_shape``."""
    if arr.ndim == 2:
        if image_shape is None:
            side = math.isqrt(arr.shape[1])
            if side * side != arr.shape[1]:
                raise ValueError(
                    f"X is 2-D (flattened) with {arr.shape[1]} features, which is not a square grey "
                    "image; pass image_shape=(H, W) or (H, W, C) to say how each row reshapes."
                )
            image_shape = (side, side)
        image_shape = tuple(int(s) for s in image_shape)
        if int(np.prod(image_shape)) != arr.shape[1]:
            raise ValueError(
                f"image_shape {image_shape} holds {int(np.prod(image_shape))} values but each row of X "
                f"has {arr.shape[1]}; pass the shape the rows were flattened from."
            )
        if len(image_shape) not in (2, 3):
            raise ValueError(f"image_shape must be (H, W), (H, W, C) or (C, H, W), got {image_shape}.")
        arr = arr.reshape((arr.shape[0],) + image_shape)
        return arr, "flat", _detect_layout(arr.shape, container)
    if arr.ndim in (3, 4):
        original_shape = tuple(arr.shape[1:])
        if image_shape is not None and tuple(image_shape) != original_shape:
            raise ValueError(f"image_shape {tuple(image_shape)} does not match the images' shape {original_shape}.")
        return arr, _detect_layout(arr.shape, container), None
    raise ValueError(
        f"X must have 2 (flattened), 3 (N, H, W) or 4 (N, H, W, C / N, C, H, W) dimensions, "
        f"got {arr.ndim} with shape {arr.shape}."
    )


def _to_nchw(arr: np.ndarray, layout: str) -> np.ndarray:
    """A view of ``arr`` (in ``layout``, not "flat") as (N, C, H, W), refusing images under MIN_IMAGE_SIZE."""
    if layout == "NHW":
        chw = arr[:, None]
    elif layout == "NHWC":
        chw = arr.transpose(0, 3, 1, 2)
    else:
        chw = arr
    h, w = chw.shape[2], chw.shape[3]
    if h < MIN_IMAGE_SIZE or w < MIN_IMAGE_SIZE:
        raise ValueError(
            f"Images are {h}x{w}; ganaug needs at least {MIN_IMAGE_SIZE}x{MIN_IMAGE_SIZE}. "
            "Resize or pad the images first (for a 4-D array also check the channel axis)."
        )
    return chw


def _checked_range(arr: np.ndarray, value_range: tuple[float, float] | None) -> tuple[float, float]:
    """The (low, high) the values of ``arr`` are read in, refusing NaN, inf and values outside it."""
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError("X contains NaN or inf values; clean or impute them before fitting.")
    xmin, xmax = float(arr.min()), float(arr.max())
    lo, hi = _infer_value_range(arr.dtype, xmin, xmax, value_range)
    if xmin < lo or xmax > hi:
        # Integer dtypes without value_range are in range by construction of _infer_value_range.
        hint = (
            "pass the value_range the values really span"
            if value_range is not None
            else "float images must lie in [0, 1]; scale them or pass value_range=(low, high)"
        )
        raise ValueError(f"X values span [{xmin:g}, {xmax:g}], outside the expected range [{lo:g}, {hi:g}]: {hint}.")
    return lo, hi


def _from_array(
    X: np.ndarray | torch.Tensor,
    y: Any,
    image_shape: Sequence[int] | None,
    value_range: tuple[float, float] | None,
) -> ImageData:
    arr, container = _numeric_array(X)
    original_shape = tuple(arr.shape[1:])
    arr, layout, flat_layout = _unflatten(arr, image_shape, container)
    if arr.shape[0] == 0:
        raise ValueError("X holds no images.")
    chw = _to_nchw(arr, flat_layout or layout)
    lo, hi = _checked_range(arr, value_range)
    images = torch.from_numpy(np.ascontiguousarray(chw, dtype=np.float32))
    images = (images - lo) / (hi - lo) * 2 - 1
    if y is None:
        raise ValueError("y is required with array input: pass one class label per image.")
    labels, classes = _labels_to_indices(y, arr.shape[0])
    spec = ArraySpec(
        container=container,
        layout=layout,
        dtype=str(arr.dtype),
        value_range=(lo, hi),
        shape=original_shape,
        flat_layout=flat_layout,
    )
    return ImageData(images=images, labels=labels, classes=classes, spec=spec)


# --------------------------------------------------------------------------- datasets


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


# --------------------------------------------------------------------------- any input


def as_image_data(
    X: Any,
    y: Any = None,
    *,
    image_shape: Sequence[int] | None = None,
    value_range: tuple[float, float] | None = None,
) -> ImageData:
    """Turn any supported input into :class:`ImageData` (see the module docstring).

    Parameters
    ----------
    X : array, tensor, Dataset, path, ``"digits"`` or ImageData
        The images (and, for a Dataset, folder, IDX or ``"digits"``, the labels too); an
        :class:`ImageData` is returned as it is.
    y : array-like, optional
        One label per image, for array input.
    image_shape : tuple, optional
        For flattened (N, D) input: the shape each row reshapes to, e.g. ``(8, 8)``.
    value_range : (low, high), optional
        Range of the input values. Default: by dtype, 0..255 for uint8, 0..65535 for uint16,
        0..1 for bool (False -> low, True -> high), [0, 1] for floats; other integer dtypes
        0..255 when their values lie there, else value_range is required.
    """
    if isinstance(X, ImageData):  # already converted and checked, e.g. by a front end that validated X first
        if y is not None or image_shape is not None or value_range is not None:
            raise ValueError("y, image_shape and value_range must not be given with ImageData: it holds them already.")
        return X
    if isinstance(X, (str, os.PathLike)):
        if y is not None:
            raise ValueError("y must not be given with a path or 'digits': labels come from the data itself.")
        X, y = load_source(X)
    elif isinstance(X, torch.utils.data.Dataset) and not isinstance(X, torch.Tensor):
        if y is not None:
            raise ValueError("y must not be given with a Dataset: its items are (image, label) pairs.")
        data = _from_dataset(X, value_range)
        check_class_counts(data.classes, data.class_counts)
        return data
    data = _from_array(X, y, image_shape, value_range)
    check_class_counts(data.classes, data.class_counts)
    return data


class _DataModule(types.ModuleType):
    """This module, with ``MAX_ARRAY_BYTES`` kept where the readers look it up.

    ``ganaug.data.MAX_ARRAY_BYTES = n`` is the documented way to raise the bound; the
    readers moved to :mod:`ganaug.readers`, so reading and setting it here go there.
    """

    @property
    def MAX_ARRAY_BYTES(self) -> int:
        return readers.MAX_ARRAY_BYTES

    @MAX_ARRAY_BYTES.setter
    def MAX_ARRAY_BYTES(self, value: int) -> None:
        readers.MAX_ARRAY_BYTES = value


sys.modules[__name__].__class__ = _DataModule
