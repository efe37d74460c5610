"""Autoencoder pretraining of the two networks before adversarial training (BAGAN-style).

BAGAN (Mariani et al. 2018) starts its GAN from an autoencoder trained on every class, so
that a class seen a few times starts from features learned on the frequent ones. Here the
discriminator's convolutional layers are the encoder (with a linear head to the latent
size) and the generator, given the true class, is the decoder; after pretraining the
discriminator keeps the encoder's layers and the generator the decoder's weights, and the
head is dropped. The codes are batch-normalised without a learned scale, so the decoder
learns from codes shaped like the N(0, I) latents it will be sampled with.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .fastpath import fork_rng_devices
from .models import Discriminator, Generator


def pretrain_autoencoder(
    generator: Generator,
    discriminator: Discriminator,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    seed: int,
    lr: float = 1e-3,
) -> list[float]:
    """Train ``discriminator.features`` (encoder) and ``generator`` (decoder) to reconstruct
    ``images`` (N, C, H, W) in [-1, 1] of classes ``labels`` (N,) with a mean squared error,
    for ``epochs`` passes of full batches. Returns each step's loss.

    The randomness (permutations, head initialisation) comes from ``seed`` inside a forked
    RNG; the discriminator's logit layers (``linear``, ``embed``) are not touched.

    Example
    -------
    >>> pretrain_autoencoder(g, d, x, y, epochs=5, batch_size=32, seed=0)  # doctest: +SKIP
    """
    device = images.device
    batch_size = min(batch_size, len(images))
    losses: list[torch.Tensor] = []
    with torch.random.fork_rng(**fork_rng_devices(device)):
        torch.manual_seed(seed)
        head = nn.Sequential(nn.Linear(discriminator.linear.in_features, generator.config.latent_dim),
                             nn.BatchNorm1d(generator.config.latent_dim, affine=False)).to(device)
        parameters = [*discriminator.features.parameters(), *head.parameters(), *generator.parameters()]
        optimizer = torch.optim.Adam(parameters, lr=lr, betas=(0.5, 0.999))
        was_training = generator.training, discriminator.training
        generator.train()
        discriminator.train()
        rng = torch.Generator().manual_seed(seed)
        for _ in range(epochs):
            perm = torch.randperm(len(images), generator=rng).to(device)
            for i in range(len(images) // batch_size):
                idx = perm[i * batch_size : (i + 1) * batch_size]
                codes = head(discriminator.features(images[idx]))
                loss = F.mse_loss(generator(codes, labels[idx]), images[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                losses.append(loss.detach())  # read once at the end: no device sync per step
        generator.train(was_training[0])
        discriminator.train(was_training[1])
    history = torch.stack(losses).cpu() if losses else torch.empty(0)
    if not torch.isfinite(history).all():
        raise FloatingPointError("Autoencoder pretraining diverged (a NaN or inf loss); lower pretrain_epochs "
                                 "or turn it off.")
    return history.tolist()
