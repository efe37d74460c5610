"""Arrays and tensors -> :class:`~ganaug.data.spec.ImageData`: layout, value range and labels.

The layout of a 4-D array is read from which axis is too small to be a side
(:data:`MIN_IMAGE_SIZE`); the value range from the dtype unless given; labels become
indices into their sorted unique values.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .spec import ArraySpec, ImageData

__all__ = ["MIN_IMAGE_SIZE", "check_class_counts"]

MIN_IMAGE_SIZE = 8


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
