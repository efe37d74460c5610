"""Differentiable augmentation (DiffAugment, Zhao et al. 2020) for GAN training.

The same random transformations are applied to real and generated images before the
discriminator, and gradients flow through them to the generator, so the discriminator
cannot memorise a small training set while the generator still learns the un-augmented
distribution. Each function takes (N, C, H, W) images in [-1, 1] and draws its
randomness from the default torch RNG on the images' device (the trainer seeds it).
"""

from __future__ import annotations

from typing import Callable

import torch


def brightness(x: torch.Tensor) -> torch.Tensor:
    return x + (torch.rand(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device) - 0.5)


def saturation(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] == 1:  # grey images have no saturation
        return x
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (torch.rand(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device) * 2) + mean


def contrast(x: torch.Tensor) -> torch.Tensor:
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device) + 0.5) + mean


def translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to ``ratio`` of its size, filling with zeros."""
    n, _, h, w = x.shape
    sh, sw = max(1, int(h * ratio + 0.5)), max(1, int(w * ratio + 0.5))
    dy = torch.randint(-sh, sh + 1, (n, 1, 1), device=x.device)
    dx = torch.randint(-sw, sw + 1, (n, 1, 1), device=x.device)
    rows = (torch.arange(h, device=x.device)[None, :, None] + dy + sh).expand(n, h, w)
    cols = (torch.arange(w, device=x.device)[None, None, :] + dx + sw).expand(n, h, w)
    padded = torch.nn.functional.pad(x, (sw, sw, sh, sh))  # (N, C, H + 2sh, W + 2sw)
    batch = torch.arange(n, device=x.device)[:, None, None].expand(n, h, w)
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero one square of ``ratio`` of the image size at a random place per image."""
    n, _, h, w = x.shape
    ch, cw = max(1, int(h * ratio + 0.5)), max(1, int(w * ratio + 0.5))
    cy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device)
    ys = torch.arange(h, device=x.device)[None, :, None]
    xs = torch.arange(w, device=x.device)[None, None, :]
    dy, dx = ys - cy, xs - cx
    inside = (dy >= -(ch // 2)) & (dy < ch - ch // 2) & (dx >= -(cw // 2)) & (dx < cw - cw // 2)  # (N, H, W)
    return x * (~inside).unsqueeze(1).to(x.dtype)


POLICIES: dict[str, list[Callable[[torch.Tensor], torch.Tensor]]] = {
    "color": [brightness, saturation, contrast],
    "translation": [translation],
    "cutout": [cutout],
}


def check_policy(policy: str | None) -> list[str]:
    """Split ``"translation,cutout"`` into known policy names, or raise ValueError."""
    if not policy:
        return []
    names = [p.strip() for p in policy.split(",") if p.strip()]
    unknown = [p for p in names if p not in POLICIES]
    if unknown:
        raise ValueError(f"Unknown augmentation policies {unknown}; choose from {sorted(POLICIES)}, comma-separated.")
    return names


def diff_augment(x: torch.Tensor, policy: str | None) -> torch.Tensor:
    """Apply the comma-separated ``policy`` (e.g. ``"color,translation,cutout"``) to ``x``."""
    for name in check_policy(policy):
        for fn in POLICIES[name]:
            x = fn(x)
    return x
