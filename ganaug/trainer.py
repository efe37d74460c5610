"""The training loop: data, models, config, callback in; updated models and history out.

No file I/O happens here: checkpoints and logs are the caller's business (via ``callback``).
All randomness comes from ``seed`` and the epoch number, inside a forked RNG, so a run is
reproducible, a resumed run continues the same stream, and the caller's global torch RNG
is left untouched.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import time

import torch
from torch import nn

from .augment import diff_augment
from .data import ImageData
from .losses import get_loss
from .models import Discriminator, Generator

HISTORY_KEYS = ("d_loss", "g_loss", "d_real", "d_fake")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings; stored in checkpoints."""

    max_epochs: int = 50
    batch_size: int = 64
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    loss: str = "bce"
    augment: str | None = None  # DiffAugment policy, e.g. "color,translation,cutout"
    ema: float | None = None  # decay of the generator's exponential moving average
    max_time: float | None = None  # seconds; training stops after the epoch that passes it

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        d = dict(d)
        d["betas"] = tuple(d["betas"])
        return cls(**d)


@dataclass
class TrainState:
    """Progress of a run: what a resumed run needs besides the weights."""

    epoch: int = 0
    step: int = 0
    history: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in HISTORY_KEYS})


def make_optimizers(
    generator: nn.Module, discriminator: nn.Module, config: TrainConfig
) -> tuple[torch.optim.Adam, torch.optim.Adam]:
    opt_g = torch.optim.Adam(generator.parameters(), lr=config.lr_g, betas=config.betas)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=config.lr_d, betas=config.betas)
    return opt_g, opt_d


def _epoch_seed(seed: int, epoch: int) -> int:
    # A fixed odd multiplier spreads consecutive epochs over the 63-bit seed space.
    return (seed * 1_000_003 + epoch * 0x9E3779B97F4A7C15) % (2**63 - 1)


def _fork_devices(device: torch.device) -> dict[str, Any]:
    if device.type == "cuda":
        return {"devices": [device.index or 0], "device_type": "cuda"}
    if device.type == "mps":
        return {"devices": [], "device_type": "mps"}
    return {"devices": []}


def train(
    generator: Generator,
    discriminator: Discriminator,
    data: ImageData,
    config: TrainConfig,
    *,
    seed: int,
    device: torch.device,
    optimizers: tuple[torch.optim.Optimizer, torch.optim.Optimizer] | None = None,
    state: TrainState | None = None,
    ema_generator: Generator | None = None,
    callback: Callable[[TrainState], bool | None] | None = None,
    monitor: Callable[[TrainState], None] | None = None,
    monitor_every: int = 0,
    verbose: bool = True,
) -> TrainState:
    """Train ``generator`` and ``discriminator`` on ``data`` until ``config.max_epochs``.

    ``state`` and ``optimizers`` continue an earlier run. ``ema_generator`` (a copy of
    ``generator``) tracks its exponential moving average with decay ``config.ema``.
    ``callback(state)`` runs after every epoch; returning ``True`` stops training, as does
    ``config.max_time``. ``monitor(state)`` runs every ``monitor_every`` steps, mid-epoch
    (e.g. to measure samples); it must not draw from the global torch RNG. Raises
    ``FloatingPointError`` when a loss becomes NaN or inf (the models are then unusable;
    keep the last checkpoint).
    """
    from tqdm.auto import tqdm

    state = state or TrainState()
    opt_g, opt_d = optimizers or make_optimizers(generator, discriminator, config)
    loss = get_loss(config.loss)
    images = data.images.to(device)
    labels = data.labels.to(device)
    n = images.shape[0]
    batch_size = min(config.batch_size, n)
    steps_per_epoch = n // batch_size  # the last incomplete batch is dropped (BatchNorm dislikes tiny batches)
    latent_dim = generator.cfg.latent_dim
    augment = config.augment
    # Real and fake batches go through D in one pass (one spectral-norm power iteration and
    # fewer kernel launches: benchmarks/train_throughput.py); the minibatch-std layer must
    # see them apart, or its statistic would mix the two.
    one_pass = not discriminator.cfg.minibatch_std
    started = time.perf_counter()
    generator.train()
    discriminator.train()
    measured_at = [-1]  # the step at which the average's BatchNorm statistics were last measured

    def refresh_average() -> None:
        # update_ema hands the average the trained generator's BatchNorm statistics at every
        # step: re-measure them for its own weights before anyone samples it.
        if ema_generator is not None and measured_at[0] != state.step:
            standing_batchnorm_stats(ema_generator, seed=seed, device=device)
            measured_at[0] = state.step

    bar = tqdm(
        # With a time budget the epoch limit is only a ceiling: show a count, not a bar.
        total=config.max_epochs * steps_per_epoch if config.max_time is None else None,
        initial=state.epoch * steps_per_epoch,
        disable=not verbose,
        unit="step",
        dynamic_ncols=True,
    )
    with torch.random.fork_rng(**_fork_devices(device)):
        for epoch in range(state.epoch, config.max_epochs):
            rng = torch.Generator().manual_seed(_epoch_seed(seed, epoch))
            torch.manual_seed(_epoch_seed(seed + 1, epoch))  # dropout, inside the forked RNG
            perm = torch.randperm(n, generator=rng).to(device)
            records = []
            for i in range(steps_per_epoch):
                idx = perm[i * batch_size : (i + 1) * batch_size]
                real, y = images[idx], labels[idx]  # (B, C, H, W), (B,)
                z = torch.randn(batch_size, latent_dim, generator=rng).to(device)
                fake = generator(z, y)

                # Update D: real -> 1, fake -> 0 (both through the same augmentation).
                if one_pass:
                    both = diff_augment(torch.cat([real, fake.detach()]), augment)
                    logits = discriminator(both, torch.cat([y, y]))
                    d_real, d_fake = logits[:batch_size], logits[batch_size:]
                else:
                    d_real = discriminator(diff_augment(real, augment), y)
                    d_fake = discriminator(diff_augment(fake.detach(), augment), y)
                loss_d = loss.d_loss(d_real, d_fake)
                opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                opt_d.step()

                # Update G: make D call the same fakes real.
                loss_g = loss.g_loss(discriminator(diff_augment(fake, augment), y))
                opt_g.zero_grad(set_to_none=True)
                loss_g.backward()
                opt_g.step()
                if ema_generator is not None:
                    update_ema(ema_generator, generator, ema_decay(config.ema or 0.999, state.step))

                records.append(torch.stack([loss_d.detach(), loss_g.detach(), d_real.detach().mean(), d_fake.detach().mean()]))
                state.step += 1
                bar.update(1)
                if monitor is not None and monitor_every > 0 and state.step % monitor_every == 0:
                    refresh_average()
                    monitor(state)
                    generator.train()  # in case the monitor left it in eval mode
            epoch_history = torch.stack(records).cpu() if records else torch.empty(0, len(HISTORY_KEYS))
            for key, column in zip(HISTORY_KEYS, epoch_history.T.tolist()):
                state.history[key].extend(column)
            if not torch.isfinite(epoch_history).all():
                bar.close()
                raise FloatingPointError(
                    f"Training diverged in epoch {epoch + 1}: a loss became NaN or inf. Lower the learning "
                    "rates or the batch size; keep the last checkpoint written before this epoch."
                )
            state.epoch = epoch + 1
            if len(epoch_history):
                d_mean, g_mean = epoch_history[:, 0].mean().item(), epoch_history[:, 1].mean().item()
                bar.set_postfix(epoch=state.epoch, d_loss=f"{d_mean:.3f}", g_loss=f"{g_mean:.3f}")
            if callback is not None:
                refresh_average()  # the callback may save or sample (the CLI checkpoints every epoch)
                if callback(state):
                    break
            if config.max_time is not None and time.perf_counter() - started >= config.max_time:
                break
    bar.close()
    generator.eval()
    discriminator.eval()
    refresh_average()
    if ema_generator is not None:
        ema_generator.eval()
    return state


def ema_decay(decay: float, step: int) -> float:
    """``decay``, ramped up over the first steps as in TensorFlow's ExponentialMovingAverage:
    ``min(decay, (1 + step) / (10 + step))``. Without the ramp a 0.999 average of a
    600-step run is half the untrained initial weights."""
    return min(decay, (1 + step) / (10 + step))


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model; buffers (BatchNorm statistics) are copied
    (and replaced by :func:`standing_batchnorm_stats` before the average is sampled)."""
    for p_ema, p in zip(ema.parameters(), model.parameters()):
        p_ema.lerp_(p, 1.0 - decay)
    for b_ema, b in zip(ema.buffers(), model.buffers()):
        b_ema.copy_(b)


@torch.no_grad()
def standing_batchnorm_stats(
    generator: Generator, *, seed: int, device: torch.device, n_batches: int = 16, batch_size: int = 256
) -> None:
    """Re-measure the generator's BatchNorm statistics on its own outputs ("standing
    statistics", Brock et al. 2019), classes drawn uniformly.

    A moving average of the weights needs this: the running statistics it inherits belong
    to the trained generator's weights, and sampling in eval mode with them gave collapsed,
    blurred samples (benchmarks/mnist_quality.py --budget 150 --set ema=0.999: recall 0.08
    before this, 0.32 with it).
    Uses its own RNG, so training and the global RNGs are untouched.
    """
    norms = [m for m in generator.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches below
    was_training = generator.training
    generator.train()
    rng = torch.Generator().manual_seed(seed)
    for _ in range(n_batches):
        z = torch.randn(batch_size, generator.cfg.latent_dim, generator=rng).to(device)
        labels = torch.randint(0, generator.cfg.n_classes, (batch_size,), generator=rng).to(device)
        generator(z, labels)
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    generator.train(was_training)
