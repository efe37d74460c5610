"""GAN losses as pure functions of discriminator logits.

Each loss is a pair ``(d_loss(real_logits, fake_logits), g_loss(fake_logits))`` in
``LOSSES``; the trainer looks the pair up by name, so adding a loss is adding an entry.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F


def bce_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy from logits: real -> 1, fake -> 0 (the classic DCGAN)."""
    return F.binary_cross_entropy_with_logits(
        real_logits, torch.ones_like(real_logits)
    ) + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))


def bce_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss: -log D(G(z))."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def hinge_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Hinge loss (Lim & Ye 2017; used by SNGAN, BigGAN)."""
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def hinge_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    return -fake_logits.mean()


class GANLoss(NamedTuple):
    d_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    g_loss: Callable[[torch.Tensor], torch.Tensor]


LOSSES: dict[str, GANLoss] = {
    "bce": GANLoss(bce_d_loss, bce_g_loss),
    "hinge": GANLoss(hinge_d_loss, hinge_g_loss),
}


def get_loss(name: str) -> GANLoss:
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"Unknown loss {name!r}; choose one of {sorted(LOSSES)}.") from None


def group_spectral_penalty(conditioning: torch.Tensor) -> torch.Tensor:
    """Group spectral regularisation (gSR, Rangwani et al. 2022): the mean over classes of
    the squared largest singular value of each class's conditioning matrix.

    ``conditioning`` is (n_classes, groups, group_size), one matrix per class
    (:meth:`ganaug.models.Generator.class_conditioning`). Rangwani et al. found that a
    conditional GAN's collapse on a tail class comes with one direction of that class's
    conditioning growing far above the others; penalising the top singular value spreads it.
    """
    # eigvalsh of the smaller Gram matrix: the same value as svdvals, with a stable gradient.
    m = conditioning.float()
    gram = m @ m.transpose(1, 2) if m.shape[1] <= m.shape[2] else m.transpose(1, 2) @ m
    return torch.linalg.eigvalsh(gram)[:, -1].mean()
