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

The modules: :mod:`~ganaug.data.spec` (the form and the way back),
:mod:`~ganaug.data.arrays` (array input), :mod:`~ganaug.data.torch_datasets` (Dataset
input). Everything public is importable from here.
"""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Sequence
from typing import Any

import torch

from .. import readers
from ..readers import (
    IMG_EXTENSIONS,
    load_digits,
    load_idx,
    load_image_folder,
    load_npz,
    load_source,
    read_idx,
)
from .arrays import MIN_IMAGE_SIZE, _from_array, check_class_counts
from .spec import ArraySpec, ImageData, to_uint8, to_unit
from .torch_datasets import _from_dataset, dataset_targets, item_spec

__all__ = [
    "IMG_EXTENSIONS",
    "MAX_ARRAY_BYTES",  # a property of _DataModule, below
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


def as_image_data(
    X: Any,
    y: Any = None,
    *,
    image_shape: Sequence[int] | None = None,
    value_range: tuple[float, float] | None = None,
    check_classes: bool = True,
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
    check_classes : bool, default=True
        Refuse a single class and warn about classes with a single image, as training
        needs; False for images that are not training data (e.g. anchors of one class).
    """
    if isinstance(X, ImageData):  # already converted and checked, e.g. by a front end that validated X first
        if y is not None or image_shape is not None or value_range is not None:
            raise ValueError("y, image_shape and value_range must not be given with ImageData: it holds them already.")
        return X
    if isinstance(X, (str, os.PathLike)):
        if y is not None:
            raise ValueError("y must not be given with a path or 'digits': labels come from the data itself.")
        X, y = load_source(X)
    if isinstance(X, torch.utils.data.Dataset) and not isinstance(X, torch.Tensor):
        if y is not None:
            raise ValueError("y must not be given with a Dataset: its items are (image, label) pairs.")
        data = _from_dataset(X, value_range)
    else:
        data = _from_array(X, y, image_shape, value_range)
    if check_classes:
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
