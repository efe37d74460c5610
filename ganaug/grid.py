"""PNG grids of images: one row per class."""

from __future__ import annotations

import io
import os

import torch
from PIL import Image
from torchvision.utils import make_grid

from ._io import atomic_write_bytes
from .data import to_uint8


def grid_scale(image_shape: tuple[int, int, int]) -> int:
    """The whole-number zoom that shows images of ``image_shape`` (C, H, W) at about 64 pixels a side, at least 1."""
    return max(1, 64 // max(image_shape[1:]))


def grid_image(images: torch.Tensor, n_per_row: int, *, padding: int = 2, scale: int = 1) -> Image.Image:
    """Tile (N, C, H, W) images in [-1, 1] into a PIL image, ``n_per_row`` to a row, ``scale`` times enlarged."""
    # Tiled in [-1, 1], where the white padding is 1, then converted once, as samples are.
    grid = make_grid(images.detach().float().cpu().clamp(-1, 1), nrow=n_per_row, padding=padding, pad_value=1.0)
    if images.shape[1] == 1:
        grid = grid[:1]
    elif images.shape[1] != 3:
        grid = grid[:3] if images.shape[1] > 3 else grid[:1]  # show the first channels of multispectral data
    array = to_uint8(grid[None])[0]  # (C, H, W)
    img = Image.fromarray(array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0))
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    return img


def save_png(image: Image.Image, path: str | os.PathLike) -> None:
    """Save a PIL image as PNG atomically."""
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
