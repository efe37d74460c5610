"""Anchored latents: sample near and between the generator codes of a class's real images.

A conditional generator that saw a class a few times draws it from the prior poorly:
broken strokes and other classes' shapes (issue 18). Its real images are better anchors.
:func:`invert` finds, for each real image, the latent code whose generated image is
closest to it (gradient descent on the code, the generator frozen; an L2 pull toward the
prior keeps codes where the generator was trained). :class:`LatentAnchors` then draws
each new image's latent between two codes of its class with Gaussian noise on top, the
way DeepSMOTE interpolates between encoded minority images and BAGAN samples around
class codes, but in the GAN's own latent space, with no encoder to train.

Like prior sampling, every image depends on its seed only: the pair of anchors, the
mixing weight and the noise all come from it, so the same seeds give the same images.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from .data import ImageData, as_image_data
from .gan import ConditionalDCGAN
from .sampling import check_batch_size, latents_from_seeds

__all__ = ["LatentAnchors", "invert"]


def invert(
    generator: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor | np.ndarray,
    *,
    steps: int = 300,
    lr: float = 0.05,
    prior_weight: float = 1e-3,
    batch_size: int = 512,
    random_state: int = 0,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, np.ndarray]:
    """Latent codes that make ``generator`` reproduce ``images``.

    Parameters
    ----------
    generator : nn.Module
        A conditional generator ``G(z, labels)``; its weights are not changed.
    images : tensor (N, C, H, W) in [-1, 1]
    labels : (N,) class indices
    steps, lr : int, float
        Adam steps and learning rate on the codes.
    prior_weight : float
        Weight of ``|z|^2`` against the per-image squared error: keeps codes in the region
        the generator was trained on.
    random_state : int
        Seeds the starting codes (drawn from the prior).

    Returns
    -------
    codes : float32 tensor (N, latent_dim) on the CPU
    mse : np.ndarray (N,)
        Each image's mean squared reconstruction error, in [-1, 1] units.
    """
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    if images.ndim != 4 or images.shape[0] != labels.shape[0]:
        raise ValueError(f"invert needs (N, C, H, W) images and N labels, got {tuple(images.shape)} and "
                         f"{tuple(labels.shape)}.")
    batch_size = check_batch_size(batch_size)
    latent_dim = generator.config.latent_dim  # type: ignore[union-attr]
    was_training = generator.training
    generator.eval()
    codes, errors = [], []
    try:
        for start in range(0, len(labels), batch_size):
            x = images[start:start + batch_size].to(device, torch.float32)  # (B, C, H, W)
            c = labels[start:start + batch_size].to(device)
            seeds = np.arange(start, start + len(c)) + int(random_state)
            z = latents_from_seeds(seeds, latent_dim).to(device).requires_grad_()
            opt = torch.optim.Adam([z], lr=lr)
            for _ in range(steps):
                per_image = (generator(z, c) - x).pow(2).flatten(1).mean(1)
                loss = per_image.sum() + prior_weight * z.pow(2).sum()
                (z.grad,) = torch.autograd.grad(loss, [z])  # the codes only: no weight gradients
                opt.step()
            with torch.no_grad():
                errors.append((generator(z, c) - x).pow(2).flatten(1).mean(1).cpu())
            codes.append(z.detach().cpu())
    finally:
        generator.train(was_training)
    if not codes:
        return torch.empty(0, latent_dim), np.empty(0, np.float32)
    return torch.cat(codes), torch.cat(errors).numpy()


@dataclass(frozen=True)
class LatentAnchors:
    """Codes of real images, by class, and how far from them new latents may stray.

    Image ``k`` of class ``c`` with seed ``s`` gets ``(1 - t) * a + t * b + spread * e``:
    ``a`` and ``b`` two codes of class ``c`` (drawn with replacement, so a class with one
    code still works) and ``t`` uniform in [0, 1], all drawn from
    ``s``, and ``e`` the prior latent of seed ``s`` (the one plain sampling would use).
    ``spread=0`` stays on the segments between real images; larger values move toward
    prior sampling.
    """

    codes: torch.Tensor  # (N, latent_dim), float32, CPU
    labels: np.ndarray  # (N,) class indices
    spread: float
    mse: np.ndarray  # (N,) reconstruction error of each code's image

    def __post_init__(self) -> None:
        if not np.isfinite(self.spread) or self.spread < 0:
            raise ValueError(f"spread must be a finite number >= 0, got {self.spread!r}.")
        if len(self.codes) != len(self.labels):
            raise ValueError(f"Got {len(self.codes)} codes but {len(self.labels)} labels.")

    @classmethod
    def from_real(cls, gan: ConditionalDCGAN, X: Any, y: Any = None, *, spread: float = 0.3, steps: int = 300,
                  random_state: int = 0, image_shape: Sequence[int] | None = None) -> LatentAnchors:
        """Invert real images into ``gan``'s latent space, for ``gan.sample(anchors=...)``.

        Parameters
        ----------
        gan : ConditionalDCGAN
            Fitted; its sampling network (the moving average when there is one) is inverted.
        X, y : images and labels in any form ``fit`` accepts (``image_shape`` as for
            ``fit``; the value range is the one ``fit`` saw), of classes ``gan`` knows.
            Only the classes you will sample need anchors.
        spread : float, default=0.3
            Scale of the prior noise added to each latent drawn between two codes; 0 stays
            between real images.
        steps : int, default=300
            Optimisation steps per batch of codes (:func:`invert`).

        Example
        -------
        >>> anchors = LatentAnchors.from_real(gan, X_rare, y_rare)  # doctest: +SKIP
        >>> images, labels = gan.sample({"rare": 100}, anchors=anchors)  # doctest: +SKIP
        """
        gan._check_is_fitted()
        data = X if isinstance(X, ImageData) else as_image_data(
            X, y, image_shape=image_shape, value_range=gan.input_spec_.value_range, check_classes=False)
        if tuple(data.image_shape) != tuple(gan.image_shape_):
            raise ValueError(f"The GAN makes images of shape {gan.image_shape_} (C, H, W) but X has "
                             f"{data.image_shape}; pass image_shape as for fit.")
        unknown = sorted(set(data.classes.tolist()) - set(gan.classes_.tolist()))
        if unknown:
            raise ValueError(f"The GAN does not know classes {unknown}; it was trained on {gan.classes_.tolist()}.")
        indices = np.searchsorted(gan.classes_, data.classes)[data.labels.numpy()]
        codes, mse = invert(gan.sampling_generator_, data.images, indices, steps=steps, random_state=random_state,
                            device=gan.device_)
        return cls(codes, indices, float(spread), mse)

    @property
    def classes(self) -> set[int]:
        """Class indices that have codes."""
        return set(np.unique(self.labels).tolist())

    def __call__(self, seeds: np.ndarray, labels: torch.Tensor) -> torch.Tensor:
        """Latents (B, latent_dim) for images of class indices ``labels`` and ``seeds``."""
        noise = latents_from_seeds(seeds, self.codes.shape[1])
        by_class = {c: np.flatnonzero(self.labels == c) for c in np.unique(labels.numpy()).tolist()}
        missing = [c for c, rows in by_class.items() if len(rows) == 0]
        if missing:
            raise ValueError(f"No anchor codes for class indices {missing}: invert real images of every class "
                             "you sample.")
        out = torch.empty_like(noise)
        for k, (seed, c) in enumerate(zip(np.asarray(seeds).tolist(), labels.tolist())):
            rng = np.random.default_rng([seed, 0xA7C4])  # independent of the noise's stream
            a, b = rng.choice(by_class[c], 2)
            t = float(rng.random())
            out[k] = (1 - t) * self.codes[a] + t * self.codes[b] + self.spread * noise[k]
        return out
