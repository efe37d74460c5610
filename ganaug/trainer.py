"""The training loop: data, models, config, callback in; updated models and history out.

No file I/O happens here: checkpoints and logs are the caller's business (via ``callback``).
All randomness comes from ``seed`` and the epoch number, inside a forked RNG, so a run is
reproducible, a resumed run continues the same stream, and the caller's global torch RNG
is left untouched.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from ._io import check_dataclass_fields
from .augment import diff_augment
from .data import ImageData
from .distributed import (
    Context,
    any_rank,
    check_same,
    context,
    data_fingerprint,
    failures_of_peers,
    local_gradients,
    mean_over_ranks,
    parallel,
    shard,
    sync_state,
    training_scope,
)
from .ema import MovingAverage
from .fastpath import FastPath, fast_path, fork_rng_devices
from .losses import GANLoss, get_loss, group_spectral_penalty
from .models import Discriminator, Generator
from .pretrain import pretrain_autoencoder

HISTORY_KEYS = ("d_loss", "g_loss", "d_real", "d_fake")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings; stored in checkpoints. The estimator fills in every field."""

    max_epochs: int
    batch_size: int
    lr_g: float
    lr_d: float
    betas: tuple[float, float]  # Adam's, for both networks
    loss: str  # a name in ganaug.losses.LOSSES
    # Off by default: checkpoints saved before these existed were trained without them.
    augment: str | None = None  # DiffAugment policy, e.g. "color,translation,cutout"
    ema: float | None = None  # decay of the generator's exponential moving average
    max_time: float | None = None  # seconds; training stops after the epoch that passes it
    precision: str = "auto"  # ganaug.fastpath.PRECISIONS, resolved per device when training starts
    compile: str = "off"  # ganaug.fastpath.COMPILE_MODES
    fake_labels: str = "batch"  # "batch": the real batch's labels; "balanced": uniform over the classes
    lecam: float | None = None  # weight of the LeCam regulariser of D
    group_spectral: float | None = None  # weight of group spectral regularisation of G's class conditioning
    pretrain_epochs: int = 0  # epochs of autoencoder pretraining (ganaug.pretrain) before the first epoch
    sync_batchnorm: bool = False  # in a job of several GPUs, BatchNorm statistics over the global batch

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`. Raises ValueError for unknown or missing required
        fields and TypeError for a document that is not a dict."""
        check_dataclass_fields(cls, d, "training config")
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
    generator: nn.Module, discriminator: nn.Module, config: TrainConfig, *, fused: bool = False
) -> tuple[torch.optim.Adam, torch.optim.Adam]:
    """Adam for each network; ``fused`` takes the one-kernel implementation (``FastPath.fused``)."""
    opt_g = torch.optim.Adam(generator.parameters(), lr=config.lr_g, betas=config.betas, fused=fused or None)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=config.lr_d, betas=config.betas, fused=fused or None)
    return opt_g, opt_d


def _epoch_seed(seed: int, epoch: int) -> int:
    # A fixed odd multiplier spreads consecutive epochs over the 63-bit seed space.
    return (seed * 1_000_003 + epoch * 0x9E3779B97F4A7C15) % (2**63 - 1)


def steps_per_epoch(n_images: int, batch_size: int) -> int:
    """Optimisation steps in one epoch: full batches only, the batch at most the data."""
    return n_images // min(batch_size, n_images)


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
    path: FastPath | None = None,
) -> TrainState:
    """Train ``generator`` and ``discriminator`` on ``data`` until ``config.max_epochs``.

    ``state`` and ``optimizers`` continue an earlier run. ``ema_generator`` (a copy of
    ``generator``) tracks its exponential moving average with decay ``config.ema``.
    ``callback(state)`` runs after every epoch; returning ``True`` stops training, as does
    ``config.max_time``. ``monitor(state)`` runs every ``monitor_every`` steps, mid-epoch
    (e.g. to measure samples); it must not draw from the global torch RNG. Raises
    ``FloatingPointError`` when a loss becomes NaN or inf (the models are then unusable;
    keep the last checkpoint). ``path`` overrides the fast paths chosen for ``device`` and
    ``config.precision`` / ``config.compile`` (:func:`ganaug.fastpath.fast_path`).
    """
    state = state or TrainState()
    path = path or fast_path(device, config.precision, config.compile)
    opt_g, opt_d = optimizers or make_optimizers(generator, discriminator, config, fused=path.fused)
    loss = get_loss(config.loss)
    images, labels = path.batch(data.images.to(device)), data.labels.to(device)  # (N, C, H, W), (N,)
    batch_size = min(config.batch_size, len(images))
    job = _join(images, labels, batch_size, seed, config, state)
    average = MovingAverage(ema_generator, config.ema, seed, device)
    lecam, penalty_g = _regularisers(config, state, generator, device)
    _pretrain(generator, discriminator, images, labels, config, state, seed, ema_generator)
    started = time.perf_counter()
    generator.train()
    discriminator.train()
    bar = _progress_bar(config, steps_per_epoch(len(images), config.batch_size), state, verbose and job.is_main)
    with training_scope((generator, discriminator), sync_batchnorm=config.sync_batchnorm), \
            torch.random.fork_rng(**fork_rng_devices(device)), failures_of_peers("training", RESUME_HINT):
        generator_step, discriminator_step = (path.compiled(parallel(m, device)) for m in (generator, discriminator))
        for epoch in range(state.epoch, config.max_epochs):
            records = []
            for real, y, z, y_fake in _epoch_batches(images, labels, batch_size, generator.config, seed, epoch,
                                                     path.device_rng, config.fake_labels == "balanced", job):
                records.append(_adversarial_step(generator_step, discriminator_step, (opt_g, opt_d), loss, real,
                                                 (y, y_fake), z, config.augment, path, lecam, penalty_g))
                average.update(generator, state.step)
                state.step += 1
                bar.update(1)
                if monitor is not None and monitor_every > 0 and state.step % monitor_every == 0:
                    average.refresh(state.step)
                    monitor(state)
                    generator.train()  # in case the monitor left it in eval mode
            sync_state(generator, discriminator)  # BatchNorm statistics of the epoch's last step: rank 0's
            _end_epoch(state, epoch, records, bar)
            stop = False
            if callback is not None:
                average.refresh(state.step)  # the callback may save or sample (the CLI checkpoints every epoch)
                stop = bool(callback(state))
            if any_rank(stop or (config.max_time is not None and time.perf_counter() - started >= config.max_time)):
                break  # every rank stops after the same epoch, whichever asked
    bar.close()
    _finish(average, state.step, generator, discriminator, ema_generator)
    return state


def _finish(average: MovingAverage, step: int, *models: nn.Module | None) -> None:
    """The networks in eval mode, the moving average's BatchNorm statistics measured for its weights."""
    average.refresh(step)
    sync_state(average.model)  # standing statistics measured on each rank: rank 0's, everywhere
    for model in models:
        if model is not None:
            model.eval()


RESUME_HINT = ("Start the same job again with --resume (or fit(..., resume=True)) to continue from the last "
               "checkpoint saved, if any.")


def _join(images: torch.Tensor, labels: torch.Tensor, batch_size: int, seed: int, config: TrainConfig,
          state: TrainState) -> Context:
    """This process's place in a distributed job, checked: every rank has the same data,
    seed, settings and progress, and the global batch splits evenly over the ranks."""
    job = context()
    if job.active:
        check_same(f"{data_fingerprint(images, labels)} seed={seed} {config.to_dict()} epoch={state.epoch} "
                   f"step={state.step}", "training data, seed, settings or progress (epoch and step)")
        if batch_size % job.world_size:
            raise ValueError(f"The batch of {batch_size} images does not split evenly over {job.world_size} "
                             f"processes; choose a batch_size that is a multiple of {job.world_size} (batch_size is "
                             "the global batch: each process takes batch_size / world_size of it).")
    return job


def _regularisers(
    config: TrainConfig, state: TrainState, generator: Generator, device: torch.device
) -> tuple[LeCamAnchors | None, Callable[[], torch.Tensor] | None]:
    """The LeCam regulariser of D and the group spectral penalty of G that ``config`` asks for."""
    lecam = LeCamAnchors.from_history(state.history, device, config.lecam) if config.lecam else None
    weight = config.group_spectral
    penalty_g = (lambda: weight * group_spectral_penalty(generator.class_conditioning())) if weight else None
    return lecam, penalty_g


def _pretrain(
    generator: Generator, discriminator: Discriminator, images: torch.Tensor, labels: torch.Tensor,
    config: TrainConfig, state: TrainState, seed: int, ema_generator: Generator | None,
) -> None:
    """Autoencoder pretraining, once, before a fresh run's first step; the moving average starts from its result."""
    if config.pretrain_epochs and state.step == 0:
        pretrain_autoencoder(generator, discriminator, images, labels, epochs=config.pretrain_epochs,
                             batch_size=config.batch_size, seed=seed + 2)
        if ema_generator is not None:
            ema_generator.load_state_dict(generator.state_dict())
            sync_state(ema_generator, parameters=True)  # DDP syncs G and D when it wraps them; not the average


def _progress_bar(config: TrainConfig, steps_per_epoch: int, state: TrainState, verbose: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(
        # With a time budget the epoch limit is only a ceiling: show a count, not a bar.
        total=config.max_epochs * steps_per_epoch if config.max_time is None else None,
        initial=state.epoch * steps_per_epoch,
        disable=not verbose,
        unit="step",
        dynamic_ncols=True,
    )


def _epoch_batches(
    images: torch.Tensor, labels: torch.Tensor, batch_size: int, model: Any, seed: int, epoch: int,
    on_device: bool = False, balanced: bool = False, job: Context | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """One epoch of (real (B, C, H, W), labels (B,), z (B, latent_dim), fake labels (B,)),
    shuffled and drawn from the epoch's own RNG; also seeds the global RNG (dropout) for the
    epoch. The last incomplete batch is dropped (BatchNorm dislikes tiny batches).

    ``on_device`` draws the permutation and the noise with a generator on the images'
    device (no host-to-device copy per step; a different, equally seeded stream). The fake
    labels are the real batch's, or, ``balanced``, uniform over the ``model``'s classes.

    In a distributed ``job`` every rank draws the same global batches and takes its
    contiguous share of each (rank r: items r*b..(r+1)*b-1, b = batch_size / world_size), so
    the ranks see disjoint parts of the epoch's permutation and together the very batches,
    noise and labels that one process would. Dropout and augmentation draw from a stream of
    the rank's own."""
    device = images.device
    draw_on = device if on_device else torch.device("cpu")
    rng = torch.Generator(device=draw_on).manual_seed(_epoch_seed(seed, epoch))
    # Dropout and DiffAugment, inside the caller's forked RNG; each rank its own stream, or
    # every rank would draw the same masks and shifts for its share as rank 0 does.
    torch.manual_seed(_epoch_seed(seed + 1, epoch) + (job.rank if job else 0))
    perm = torch.randperm(len(images), generator=rng, device=draw_on).to(device)
    share = shard(batch_size, job or Context())  # the whole batch in one process
    part = slice(share.start, share.stop)
    for i in range(len(images) // batch_size):
        idx = perm[i * batch_size : (i + 1) * batch_size][part]
        z = torch.randn(batch_size, model.latent_dim, generator=rng, device=draw_on)[part].to(device)
        y = labels[idx]
        y_fake = torch.randint(0, model.n_classes, (batch_size,), generator=rng, device=draw_on)[part].to(device) \
            if balanced else y
        yield images[idx], y, z, y_fake


def _adversarial_step(
    generator: Any, discriminator: Any, optimizers: tuple[torch.optim.Optimizer, torch.optim.Optimizer],
    loss: GANLoss, real: torch.Tensor, y: tuple[torch.Tensor, torch.Tensor], z: torch.Tensor, augment: str | None,
    path: FastPath, lecam: LeCamAnchors | None = None, penalty_g: Callable[[], torch.Tensor] | None = None,
) -> torch.Tensor:
    """One D step and one G step (either network may be its compiled view); ``y`` holds the
    real and the fake labels, ``lecam`` the LeCam regulariser and ``penalty_g`` a term added
    to G's loss (None: off). Returns the step's record (d_loss, g_loss without the penalty,
    mean real logit, mean fake logit), still on the device."""
    opt_g, opt_d = optimizers
    _, y_fake = y
    with path.autocast():
        fake = generator(z, y_fake)  # (B, C, H, W)
    # Update D: real -> 1, fake -> 0 (both through the same augmentation).
    loss_d, d_real, d_fake = _update_discriminator(discriminator, opt_d, loss, real, fake.detach(), y, augment, path,
                                                   lecam)
    # Update G: make D call the same fakes real. (D's gradients from this pass are thrown
    # away at D's next step: in a distributed job they are not averaged over the ranks.)
    with local_gradients(discriminator):
        with path.autocast():
            logits = discriminator(diff_augment(fake, augment), y_fake)
        loss_g = loss.g_loss(logits.float())
        _step(opt_g, loss_g if penalty_g is None else loss_g + penalty_g())
    return torch.stack([loss_d.detach(), loss_g.detach(), d_real.detach().mean(), d_fake.detach().mean()])


def _step(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def _update_discriminator(
    discriminator: Discriminator, opt_d: torch.optim.Optimizer, loss: GANLoss, real: torch.Tensor,
    fake: torch.Tensor, y: tuple[torch.Tensor, torch.Tensor], augment: str | None, path: FastPath,
    lecam: LeCamAnchors | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One step of D on real and (detached) fake images; returns its loss and both logits (fp32).
    ``discriminator`` may be its compiled view (``FastPath.compiled``)."""
    # Real and fake batches go through D in one pass (one spectral-norm power iteration and
    # fewer kernel launches: benchmarks/train_throughput.py); the minibatch-std layer must
    # see them apart, or its statistic would mix the two.
    y_real, y_fake = y
    with path.autocast():
        if not discriminator.config.minibatch_std:  # a compiled view passes .config through
            logits = discriminator(diff_augment(torch.cat([real, fake]), augment), torch.cat([y_real, y_fake]))  # (2B,)
            d_real, d_fake = logits[: len(real)], logits[len(real) :]
        else:
            d_real = discriminator(diff_augment(real, augment), y_real)
            d_fake = discriminator(diff_augment(fake, augment), y_fake)
    d_real, d_fake = d_real.float(), d_fake.float()
    loss_d = loss.d_loss(d_real, d_fake)
    if lecam is not None:
        # This batch first, as in the authors' code; the global batch's means in a distributed
        # job, which the history holds too, so a resumed run rebuilds the same anchors.
        lecam.update(mean_over_ranks(d_real.detach().mean()), mean_over_ranks(d_fake.detach().mean()))
        loss_d = loss_d + lecam.weight * lecam.penalty(d_real, d_fake)
    _step(opt_d, loss_d)
    return loss_d, d_real, d_fake


def _end_epoch(state: TrainState, epoch: int, records: list[torch.Tensor], bar: Any) -> None:
    """Append the epoch's per-step records (averaged over the ranks of a distributed job) to
    the history; FloatingPointError if one is not finite."""
    epoch_history = mean_over_ranks(torch.stack(records)).cpu() if records else torch.empty(0, len(HISTORY_KEYS))
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


class LeCamAnchors:
    """The LeCam regulariser (Tseng et al. 2021): its ``weight`` and anchors, moving averages
    (decay 0.99, from zero) of D's mean output on real and on fake batches. Those means are
    the history's ``d_real`` / ``d_fake`` columns, so a resumed run rebuilds the anchors exactly."""

    decay = 0.99

    def __init__(self, device: torch.device, weight: float = 1.0) -> None:
        self.weight = weight
        self.real = torch.zeros((), device=device)
        self.fake = torch.zeros((), device=device)

    @classmethod
    def from_history(cls, history: dict[str, list[float]], device: torch.device, weight: float = 1.0) -> LeCamAnchors:
        anchors = cls(device, weight)
        for d_real, d_fake in zip(history["d_real"], history["d_fake"]):
            anchors.update(torch.tensor(d_real, device=device), torch.tensor(d_fake, device=device))
        return anchors

    @torch.no_grad()
    def update(self, d_real: torch.Tensor, d_fake: torch.Tensor) -> None:
        self.real = self.decay * self.real + (1 - self.decay) * d_real.mean()
        self.fake = self.decay * self.fake + (1 - self.decay) * d_fake.mean()

    def penalty(self, d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
        """``mean(relu(D(real) - a_fake)^2) + mean(relu(a_real - D(fake))^2)``."""
        return torch.relu(d_real - self.fake).pow(2).mean() + torch.relu(self.real - d_fake).pow(2).mean()
