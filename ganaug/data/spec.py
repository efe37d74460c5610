"""The in-memory form (:class:`ImageData`) and the way back to the caller's (:class:`ArraySpec`).

Also the two conversions of model output in [-1, 1]: :func:`to_unit` (float [0, 1]) and
:func:`to_uint8`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

__all__ = ["ArraySpec", "ImageData", "to_uint8", "to_unit"]


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
            x = x.reshape(x.shape[0], math.prod(x.shape[1:]))  # also for no images
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

    def take(self, rows: np.ndarray) -> ImageData:
        """The images and labels at ``rows``, with the same classes and spec (a class may end
        up with none); for a split of data that was already checked."""
        index = torch.as_tensor(np.asarray(rows), dtype=torch.long)
        return ImageData(images=self.images[index], labels=self.labels[index], classes=self.classes, spec=self.spec)
