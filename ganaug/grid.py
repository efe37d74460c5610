"""PNG grids of images: one row per class."""

from __future__ import annotations

import io
import os

import torch
from PIL import Image
from torchvision.utils import make_grid

from ._io import atomic_write_bytes


def grid_image(images: torch.Tensor, n_per_row: int, *, padding: int = 2, scale: int = 1) -> Image.Image:
    """Tile (N, C, H, W) images in [-1, 1] into a PIL image, ``n_per_row`` to a row."""
    grid = make_grid((images.float().clamp(-1, 1) + 1) / 2, nrow=n_per_row, padding=padding, pad_value=1.0)
    if images.shape[1] == 1:
        grid = grid[:1]
    elif images.shape[1] != 3:
        grid = grid[:3] if images.shape[1] > 3 else grid[:1]  # show the first channels of multispectral data
    array = (grid * 255).round().to(torch.uint8).permute(1, 2, 0).squeeze(-1).numpy()
    img = Image.fromarray(array)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    return img


def save_png(image: Image.Image, path: str | os.PathLike) -> None:
    """Save a PIL image as PNG atomically."""
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
