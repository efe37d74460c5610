"""ConditionalDCGAN: the estimator users hold (fit / sample / save / load)."""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.utils import check_random_state

from .checkpoint import (
    CheckpointError,
    optimizer_from_tensors,
    optimizer_to_tensors,
    read_checkpoint,
    write_checkpoint,
)
from .augment import check_policy
from .classifier import ClassifierConfig, DomainClassifier, train_classifier
from .data import ArraySpec, ImageData, as_image_data
from .grid import grid_image, save_png
from .losses import LOSSES
from .models import ARCHITECTURES, Discriminator, Generator, ModelConfig, build_models, model_config
from .sampling import MAX_SEED, base_seed, check_in_memory, generate, generate_filtered, resolve_counts, seeds_for
from .trainer import HISTORY_KEYS, TrainConfig, TrainState, make_optimizers, train

__all__ = ["ConditionalDCGAN", "resolve_device"]

# Per-architecture optimiser defaults: "classic" is the TensorFlow tutorial's; "dcgan"
# uses three times Radford et al.'s lr 2e-4 for G and twice that for D (two time-scales),
# SNGAN's betas (0, 0.9) and batch 32, chosen by benchmarks/ablation.py and
# benchmarks/mnist_quality.py.
_ARCH_DEFAULTS: dict[str, dict[str, Any]] = {
    "classic": {"lr_g": 1e-4, "lr_d": 1e-4, "betas": (0.9, 0.999), "batch_size": 256},
    "dcgan": {"lr_g": 6e-4, "lr_d": 1.2e-3, "betas": (0.0, 0.9), "batch_size": 32},
}


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` -> CUDA, then MPS, then CPU; anything else must be available."""
    if isinstance(device, str) and device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"Unknown device {device!r}; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'.") from exc
    if dev.type == "cuda" and (not torch.cuda.is_available() or (dev.index or 0) >= torch.cuda.device_count()):
        raise ValueError(f"Device {device!r} is not available on this machine; use device='cpu' or 'auto'.")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(f"Device {device!r} is not available on this machine; use device='cpu' or 'auto'.")
    return dev


class ConditionalDCGAN(BaseEstimator):
    """A class-conditional DCGAN that learns p(image | class) and samples any class on demand.

    Parameters
    ----------
    arch : {"dcgan", "classic"}, default="dcgan"
        ``"dcgan"`` sizes the networks from the data (any H, W >= 8, any channel count);
        ``"classic"`` reproduces the 28x28 TensorFlow DCGAN tutorial (with conditioning).
    latent_dim : int, default=100
        Size of the noise vector z.
    embed_dim : int, default=10
        Size of the generator's learned class code, concatenated to z. Larger codes let
        the class drown out z and the generator collapse within each class (measured by
        benchmarks/ablation.py: recall 0.00 at 50 vs 0.2 at 10 on digits).
    width : int, optional
        Channels of the outermost generator/discriminator block (``"dcgan"`` only); each
        block nearer the base resolution doubles it. Default: 32 for images of 16 pixels a
        side or more (64 is better per step but 2.2x slower on a CPU, and lost to 32 in 5
        minutes of MNIST training), 64 below, where it costs seconds (rare 8x8 digits were
        recognised far better with it in examples/sklearn_imbalanced_digits.py). See the
        README's "Measured quality".
    kernel_size : int, optional
        Convolution kernel of ``"dcgan"`` (2 to 7). Even kernels give Radford et al.'s
        stride-2-only networks; odd ones add the tutorial's stride-1 generator block at
        the base resolution. Default: 4 for images of 16 pixels a side or more, 5 below
        (on 8x8 digits, 5 gave higher class fidelity, 4 higher recall; see the README's
        ablation table).
    max_epochs : int, default=50
        Passes over the training data.
    batch_size : int, optional
        Default: 256 for ``"classic"``; 32 for ``"dcgan"``, whose small networks make
        a CPU step nearly as fast at 32 as at 64: twice the steps per epoch for 1.2-1.4x the
        time, which raised CAS and class fidelity in 5-minute MNIST runs (README's
        "Measured quality").
    lr_g, lr_d : float, optional
        Adam learning rates of the generator and discriminator. Default: 1e-4 for
        ``"classic"`` (the tutorial's); for ``"dcgan"`` 6e-4 (G) and 1.2e-3 (D): against
        2e-4 / 4e-4 they lowered the Fréchet distance and raised CAS of 5-minute MNIST
        runs in all three seeds measured and on the MNIST rows of benchmarks/ablation.py
        (README's "Measured quality").
    betas : (float, float), optional
        Adam betas. Default: (0.9, 0.999) for ``"classic"``; (0.0, 0.9) for ``"dcgan"``
        (Miyato et al. 2018's, with hinge loss and spectral norm): against Radford et al.'s
        (0.5, 0.999) it raised recall and CAS on every dataset of benchmarks/ablation.py and
        lowered the Fréchet distance of 5-minute MNIST runs, at the cost of class fidelity
        in short runs (README's "Measured quality").
    loss : {"hinge", "bce"}, default="hinge"
        ``"hinge"`` (Lim & Ye 2017; with spectral norm, Miyato et al. 2018) or ``"bce"``,
        the classic non-saturating binary cross-entropy from logits.
    spectral_norm : bool, default=True
        Spectral normalisation of the discriminator's layers. Hinge + spectral norm is the
        default because it beat BCE on fidelity, Fréchet distance and CAS in
        benchmarks/ablation.py.
    dropout : float, optional
        Dropout rate after each discriminator block. Default: 0.3 for ``"classic"`` (the
        tutorial's), 0 for ``"dcgan"``: with spectral norm and DiffAugment, dropping it
        made training 1.4x faster on a CPU with equal or better class fidelity and a lower
        Fréchet distance (README's "Measured quality").
    minibatch_std : bool, default=False
        Minibatch standard-deviation layer in the discriminator (Karras et al. 2018), which
        lets it see a generator that makes the same image for every z.
    augment : str or None, default="translation"
        DiffAugment policy applied to real and fake images before the discriminator,
        e.g. ``"translation,cutout"``; policies: ``color``, ``translation``, ``cutout``.
    ema : float or None, default=0.999
        Decay of an exponential moving average of the generator weights, ramped up over
        the first steps (``min(ema, (1 + step) / (10 + step))``); sampling uses the
        averaged generator, with BatchNorm statistics re-measured on its own weights.
        None samples from the trained generator itself. The default because it gave the
        best 5-minute MNIST runs (benchmarks/mnist_quality.py) and the best digits row of
        benchmarks/ablation.py; see the README's tables.
    max_time : float or None, default=None
        Training time budget in seconds; training stops after the epoch that exceeds it.
    train_classifier : bool, default=True
        Before training the GAN, fit a small domain classifier on the training images: it
        powers ``sample(filter=...)``, the quality metrics and the training monitor, and is
        saved in checkpoints.
    device : str, default="auto"
        ``"auto"`` picks CUDA, then MPS, then CPU.
    random_state : int, RandomState instance or None
        Seeds weights, batches, noise and sampling. On the CPU one seed gives
        bit-identical samples. Global RNGs are never reseeded.
    verbose : bool, default=True
        Show a progress bar with the current losses.

    Attributes
    ----------
    classes_ : np.ndarray
        The class values, sorted.
    class_counts_ : np.ndarray
        Training images per class.
    image_shape_ : tuple
        (C, H, W) of the model's images.
    generator_, discriminator_ : torch.nn.Module
        ``generator_`` is the network used for sampling (the moving average if ``ema``).
    classifier_ : DomainClassifier or None
        The domain classifier (``train_classifier=True``).
    acceptance_rate_ : dict
        Per class, the share of candidates the last filtered ``sample`` call accepted.
    history_ : dict of lists
        Per-step ``d_loss``, ``g_loss``, ``d_real``, ``d_fake`` (mean logits).
    n_epochs_, n_steps_ : int
        Epochs and optimisation steps done.

    Example
    -------
    >>> from ganaug import ConditionalDCGAN, load_digits
    >>> X, y = load_digits()
    >>> gan = ConditionalDCGAN(max_epochs=2, random_state=0, verbose=False).fit(X, y)
    >>> images, labels = gan.sample({3: 5, 7: 2})
    >>> images.shape, labels.tolist()
    ((7, 8, 8), [3, 3, 3, 3, 3, 7, 7])
    """

    def __init__(
        self,
        *,
        arch: str = "dcgan",
        latent_dim: int = 100,
        embed_dim: int = 10,
        width: int | None = None,
        kernel_size: int | None = None,
        max_epochs: int = 50,
        batch_size: int | None = None,
        lr_g: float | None = None,
        lr_d: float | None = None,
        betas: tuple[float, float] | None = None,
        loss: str = "hinge",
        spectral_norm: bool = True,
        dropout: float | None = None,
        minibatch_std: bool = False,
        augment: str | None = "translation",
        ema: float | None = 0.999,
        max_time: float | None = None,
        train_classifier: bool = True,
        device: str = "auto",
        random_state: int | np.random.RandomState | None = None,
        verbose: bool = True,
    ) -> None:
        self.arch = arch
        self.latent_dim = latent_dim
        self.embed_dim = embed_dim
        self.width = width
        self.kernel_size = kernel_size
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr_g = lr_g
        self.lr_d = lr_d
        self.betas = betas
        self.loss = loss
        self.spectral_norm = spectral_norm
        self.dropout = dropout
        self.minibatch_std = minibatch_std
        self.augment = augment
        self.ema = ema
        self.max_time = max_time
        self.train_classifier = train_classifier
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ validation

    def _validate_params(self) -> None:
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"arch must be one of {ARCHITECTURES}, got {self.arch!r}.")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {sorted(LOSSES)}, got {self.loss!r}.")
        if self.kernel_size is not None and (isinstance(self.kernel_size, bool) or not isinstance(
                self.kernel_size, (int, np.integer)) or not 2 <= self.kernel_size <= 7):
            raise ValueError(f"kernel_size must be an integer from 2 to 7 or None, got {self.kernel_size!r}.")
        for name in ("latent_dim", "embed_dim", "width", "max_epochs"):
            value = getattr(self, name)
            if name == "width" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        if self.batch_size is not None and (not isinstance(self.batch_size, (int, np.integer)) or self.batch_size < 2):
            raise ValueError(f"batch_size must be an integer >= 2 (BatchNorm needs 2), got {self.batch_size!r}.")
        for name in ("lr_g", "lr_d"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}.")
        if self.betas is not None and (len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas)):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas!r}.")
        if self.dropout is not None and (isinstance(self.dropout, bool) or not isinstance(
                self.dropout, (int, float, np.floating)) or not 0 <= self.dropout < 1):
            raise ValueError(f"dropout must be a rate in [0, 1) or None, got {self.dropout!r}.")
        check_policy(self.augment)
        if self.ema is not None and not (isinstance(self.ema, float) and 0 < self.ema < 1):
            raise ValueError(f"ema must be a decay in (0, 1) such as 0.999, or None; got {self.ema!r}.")
        if self.max_time is not None and not (isinstance(self.max_time, (int, float)) and self.max_time > 0):
            raise ValueError(f"max_time must be a positive number of seconds or None, got {self.max_time!r}.")

    def _train_config(self) -> TrainConfig:
        defaults = _ARCH_DEFAULTS[self.arch]
        pick = lambda name: defaults[name] if getattr(self, name) is None else getattr(self, name)  # noqa: E731
        return TrainConfig(
            max_epochs=int(self.max_epochs),
            batch_size=int(pick("batch_size")),
            lr_g=float(pick("lr_g")),
            lr_d=float(pick("lr_d")),
            betas=tuple(float(b) for b in pick("betas")),  # type: ignore[arg-type]
            loss=self.loss,
            augment=self.augment or None,
            ema=self.ema,
            max_time=None if self.max_time is None else float(self.max_time),
        )

    # ------------------------------------------------------------------ pickling

    def __getstate__(self) -> dict[str, Any]:
        # torch cannot pickle a spectral-normalised module (a parametrisation), only its
        # state_dict: store the discriminator and its optimiser as state dicts.
        state = dict(super().__getstate__())  # a copy: object.__getstate__ returns __dict__ itself
        if "discriminator_" in state:
            state["discriminator_"] = state["discriminator_"].state_dict()
            opt_g, opt_d = state["_optimizers"]
            state["_optimizers"] = (opt_g, opt_d.state_dict())
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        if isinstance(self.__dict__.get("discriminator_"), dict):
            weights = self.__dict__["discriminator_"]
            device = next(iter(weights.values())).device
            discriminator = Discriminator(self.model_config_).to(device)
            discriminator.load_state_dict(weights)
            discriminator.train(False)
            opt_g, opt_d_state = self._optimizers
            opt_d = make_optimizers(self._train_generator, discriminator, self.train_config_)[1]
            opt_d.load_state_dict(opt_d_state)
            self.discriminator_, self._optimizers = discriminator, (opt_g, opt_d)

    def _check_is_fitted(self) -> None:
        if not hasattr(self, "generator_"):
            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet; call fit(X, y) or ConditionalDCGAN.load(path) first."
            )

    # ------------------------------------------------------------------ training

    def fit(
        self,
        X: Any,
        y: Any = None,
        *,
        image_shape: Sequence[int] | None = None,
        value_range: tuple[float, float] | None = None,
        resume: bool = False,
        callback: Callable[["ConditionalDCGAN", TrainState], bool | None] | None = None,
        monitor: Callable[["ConditionalDCGAN", TrainState], None] | None = None,
        monitor_every: int = 500,
    ) -> "ConditionalDCGAN":
        """Learn the class-conditional image distribution of ``(X, y)``.

        Parameters
        ----------
        X : array, tensor, Dataset, path or ``"digits"``
            Images as (N, H, W), (N, H, W, C), (N, C, H, W) or flattened (N, D) arrays or
            tensors (uint8 in 0..255, uint16 in 0..65535, bool, float in [0, 1]); a torch
            Dataset of (image, label);
            an ImageFolder-style directory; an MNIST IDX folder; or ``"digits"``.
        y : array-like, optional
            Labels (any sortable values) for array input.
        image_shape : tuple, optional
            Shape of one image for flattened X, e.g. ``(8, 8)`` or ``(32, 32, 3)``.
        value_range : (low, high), optional
            Range of X's values when the dtype does not say it (e.g. (0, 4095) for 12-bit
            data in uint16, (0, 16) for scikit-learn's digits.data).
        resume : bool, default=False
            Continue a fitted (or loaded) model up to ``max_epochs`` instead of starting
            afresh; the data must have the same classes and image shape.
        callback : callable, optional
            ``callback(gan, state)`` after every epoch (e.g. to save a checkpoint);
            returning True stops training.
        monitor : callable, optional
            ``monitor(gan, state)`` every ``monitor_every`` optimisation steps, mid-epoch,
            e.g. a :class:`ganaug.metrics.TrainingMonitor` that measures the samples so that
            collapse shows while training. The domain classifier is trained first, so the
            monitor can use ``gan.classifier_``.
        monitor_every : int, default=500
            Steps between two ``monitor`` calls.

        Returns
        -------
        self
        """
        self._validate_params()
        if monitor is not None and (isinstance(monitor_every, bool) or not isinstance(monitor_every, (int, np.integer))
                                    or monitor_every < 1):
            raise ValueError(f"monitor_every must be a positive number of steps, got {monitor_every!r}.")
        data = as_image_data(X, y, image_shape=image_shape, value_range=value_range)
        device = resolve_device(self.device)
        config = self._train_config()
        if resume and hasattr(self, "generator_"):
            self._check_resumable(data)
            if (config.ema is None) != (self.train_config_.ema is None):
                raise ValueError("Cannot resume with ema switched on or off; keep the setting of the first run.")
            self.train_config_ = config
            self.generator_, self.discriminator_ = self.generator_.to(device), self.discriminator_.to(device)
            self._train_generator = self._train_generator.to(device)
            _move_optimizer(self._optimizers[0], device)
            _move_optimizer(self._optimizers[1], device)
        else:
            seed = int(check_random_state(self.random_state).randint(0, 2**31 - 1))
            self.seed_ = seed
            cfg = model_config(
                self.arch, data.image_shape, len(data.classes), latent_dim=int(self.latent_dim),
                width=None if self.width is None else int(self.width), spectral_norm=bool(self.spectral_norm),
                kernel_size=None if self.kernel_size is None else int(self.kernel_size),
                minibatch_std=bool(self.minibatch_std), embed_dim=int(self.embed_dim),
                dropout=None if self.dropout is None else float(self.dropout),
            )
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)  # weight initialisation, inside the forked RNG
                generator, discriminator = build_models(cfg)
            generator, discriminator = generator.to(device), discriminator.to(device)
            ema_generator = copy.deepcopy(generator) if config.ema is not None else None
            self._set_fitted(cfg, config, data.classes, data.class_counts, data.spec, generator, discriminator,
                             ema_generator=ema_generator)
            self._optimizers = make_optimizers(generator, discriminator, config)
            self._state = TrainState()
            self.classifier_ = None
        self.device_ = device
        if self.train_classifier and self.classifier_ is None:
            # Before the GAN, so that a monitor can measure samples with it while training.
            self.classifier_ = train_classifier(
                data.images, data.labels, len(data.classes), seed=self.seed_, device=device
            )
        self._state = train(
            self._train_generator,
            self.discriminator_,
            data,
            config,
            seed=self.seed_,
            device=device,
            optimizers=self._optimizers,
            state=self._state,
            ema_generator=self.generator_ if config.ema is not None else None,
            callback=None if callback is None else (lambda state: callback(self, state)),
            monitor=None if monitor is None else (lambda state: monitor(self, state)),
            monitor_every=int(monitor_every),
            verbose=self.verbose,
        )
        return self

    def _set_fitted(
        self,
        cfg: ModelConfig,
        config: TrainConfig,
        classes: np.ndarray,
        class_counts: np.ndarray,
        spec: ArraySpec,
        generator: Generator,
        discriminator: Discriminator,
        *,
        ema_generator: Generator | None = None,
    ) -> None:
        self.model_config_ = cfg
        self.train_config_ = config
        self.classes_ = classes
        self.n_classes_ = len(classes)
        self.class_counts_ = np.asarray(class_counts, dtype=np.int64)
        self.image_shape_ = (cfg.channels, cfg.height, cfg.width)
        self.input_spec_ = spec
        # generator_ samples; _train_generator is the one the optimiser updates.
        self.generator_ = ema_generator if ema_generator is not None else generator
        self._train_generator = generator
        self.discriminator_ = discriminator
        self._sample_rng = np.random.default_rng(self.seed_)

    def _check_resumable(self, data: ImageData) -> None:
        if data.image_shape != self.image_shape_:
            raise ValueError(
                f"Cannot resume: the data's images are {data.image_shape} (C, H, W) but the model makes "
                f"{self.image_shape_}."
            )
        if data.spec.value_range != self.input_spec_.value_range:
            raise ValueError(
                f"Cannot resume: the data's values are read in {data.spec.value_range} but the model was trained "
                f"on values in {self.input_spec_.value_range}. Pass value_range={self.input_spec_.value_range} "
                "(--value-range on the command line)."
            )
        if len(data.classes) != len(self.classes_) or not np.array_equal(data.classes, self.classes_):
            raise ValueError(
                f"Cannot resume: the data's classes {data.classes.tolist()!r} differ from the model's "
                f"{self.classes_.tolist()!r}."
            )

    @property
    def history_(self) -> dict[str, list[float]]:
        self._check_is_fitted()
        return self._state.history

    @property
    def n_epochs_(self) -> int:
        self._check_is_fitted()
        return self._state.epoch

    @property
    def n_steps_(self) -> int:
        self._check_is_fitted()
        return self._state.step

    # ------------------------------------------------------------------ sampling

    def _base_seed(self, random_state: Any, n: int) -> int:
        # Unseeded calls draw from the model's own stream: reproducible, yet fresh per call.
        return base_seed(random_state, limit=MAX_SEED - n, default=self._sample_rng)

    def _generate(
        self, n_or_counts: int | Mapping[Any, int], random_state: Any, batch_size: int
    ) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
        """(images in [-1, 1] NCHW, class indices, seeds)."""
        self._check_is_fitted()
        counts = resolve_counts(n_or_counts, self.classes_)
        check_in_memory(sum(counts.values()), self.image_shape_)
        indices = np.concatenate([np.full(k, i, dtype=np.int64) for i, k in counts.items()] or [np.empty(0, np.int64)])
        seeds = seeds_for(self._base_seed(random_state, len(indices)), len(indices))
        images = generate(self.generator_, indices, seeds, device=self.device_, batch_size=batch_size)
        return images, indices, seeds

    def sample(
        self,
        n_or_counts: int | Mapping[Any, int],
        *,
        random_state: int | np.random.RandomState | np.random.Generator | None = None,
        batch_size: int = 512,
        return_seeds: bool = False,
        output: str = "native",
        filter: float | None = None,  # noqa: A002  (the word users expect)
    ) -> tuple[Any, np.ndarray] | tuple[Any, np.ndarray, np.ndarray]:
        """Generate images of the requested classes.

        Parameters
        ----------
        n_or_counts : int or mapping
            ``{class: count}`` for exactly these counts (in this order), or a total that is
            spread evenly over all classes.
        random_state : int, optional
            Base seed: image ``i`` uses seed ``random_state + i``, so the same value gives the
            same images (also after save/load). By default a fresh seed from the model's
            own stream, so repeated calls differ but a seeded script is reproducible.
        batch_size : int, default=512
            Images per forward pass.
        return_seeds : bool, default=False
            Also return each image's seed (see :meth:`sample_from_seeds`).
        output : {"native", "tensor"}, default="native"
            ``"native"``: like the data ``fit`` was given. ``"tensor"``: the model's own
            form, a float32 (N, C, H, W) CPU tensor in [-1, 1].
        filter : float, optional
            Keep only samples that the domain classifier (``classifier_``) assigns to
            their requested class with at least this probability, generating more until
            every count is met exactly. The share accepted per class is stored in
            ``acceptance_rate_``.

        Returns
        -------
        X : array or tensor
            In the layout, dtype, value range and container ``fit`` was given (or see
            ``output``).
        y : np.ndarray
            The class value of each image.
        seeds : np.ndarray, only with ``return_seeds=True``

        Example
        -------
        >>> images, labels = gan.sample({"cat": 10, "dog": 5}, random_state=0)  # doctest: +SKIP
        """
        if output not in ("native", "tensor"):
            raise ValueError(f"output must be 'native' or 'tensor', got {output!r}.")
        if filter is None:
            images, indices, seeds = self._generate(n_or_counts, random_state, batch_size)
        else:
            images, indices, seeds = self._generate_filtered(n_or_counts, random_state, batch_size, filter)
        X = self.input_spec_.restore(images) if output == "native" else images
        y = self.classes_[indices]
        return (X, y, seeds) if return_seeds else (X, y)

    def _generate_filtered(
        self, n_or_counts: int | Mapping[Any, int], random_state: Any, batch_size: int, threshold: float
    ) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
        self._check_is_fitted()
        if self.classifier_ is None:
            raise ValueError("sample(filter=...) needs the domain classifier: fit with train_classifier=True.")
        counts = resolve_counts(n_or_counts, self.classes_)
        check_in_memory(sum(counts.values()), self.image_shape_)
        base = self._base_seed(random_state, sum(counts.values()))
        images, indices, seeds, acceptance = generate_filtered(
            self.generator_, self.classifier_, counts, base, float(threshold), device=self.device_,
            batch_size=batch_size,
        )
        self.acceptance_rate_ = {self.classes_[i].item(): rate for i, rate in acceptance.items()}
        return images, indices, seeds

    def sample_from_seeds(self, classes: Sequence[Any], seeds: Sequence[int], *, batch_size: int = 512) -> Any:
        """Regenerate the images of given (class, seed) pairs, e.g. from a generation manifest."""
        self._check_is_fitted()
        classes = list(classes)
        if len(classes) != len(seeds):
            raise ValueError(f"Got {len(classes)} classes but {len(seeds)} seeds.")
        unique = list(dict.fromkeys(classes))
        # resolve_counts validates the classes and keeps request order: value -> class index.
        index = dict(zip(unique, resolve_counts(dict.fromkeys(unique, 0), self.classes_)))
        indices = np.asarray([index[c] for c in classes], dtype=np.int64)
        check_in_memory(len(seeds), self.image_shape_)  # iter_generate checks the seeds themselves
        images = generate(self.generator_, indices, seeds, device=self.device_, batch_size=batch_size)
        return self.input_spec_.restore(images)

    def save_grid(
        self, path: str | os.PathLike, *, n_per_class: int = 10, random_state: int | None = 0, scale: int = 1
    ) -> Path:
        """Write a PNG with one row of ``n_per_class`` samples per class (classes in order)."""
        images, _, _ = self._generate({c: n_per_class for c in self.classes_.tolist()}, random_state, 512)
        save_png(grid_image(images, n_per_class, scale=scale), path)
        return Path(path)

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write a checkpoint directory (safetensors weights + ``ganaug.json``), atomically.

        Holds everything :meth:`load` and a resumed :meth:`fit` need: both networks, the
        optimisers, the loss history, the data's classes and format, and the settings.
        """
        self._check_is_fitted()
        tensors: dict[str, torch.Tensor] = {}
        tensors.update({f"generator.{k}": v for k, v in self.generator_.state_dict().items()})
        if self._train_generator is not self.generator_:
            tensors.update({f"train_generator.{k}": v for k, v in self._train_generator.state_dict().items()})
        if self.classifier_ is not None:
            tensors.update({f"classifier.{k}": v for k, v in self.classifier_.state_dict().items()})
        tensors.update({f"discriminator.{k}": v for k, v in self.discriminator_.state_dict().items()})
        opt_meta = {}
        for name, opt in zip(("opt_g", "opt_d"), self._optimizers):
            t, meta = optimizer_to_tensors(name, opt)
            tensors.update(t)
            opt_meta[name] = meta
        for key in HISTORY_KEYS:
            tensors[f"history.{key}"] = torch.tensor(self._state.history[key], dtype=torch.float64)
        params = self.get_params()
        if not isinstance(params["random_state"], (int, type(None))):
            params["random_state"] = None  # an RNG object is not data; seed_ below reproduces the run
        params["betas"] = list(params["betas"]) if params["betas"] is not None else None
        metadata = {
            "params": params,
            "seed": self.seed_,
            "model": self.model_config_.to_dict(),
            "training": {**self.train_config_.to_dict(), "epoch": self._state.epoch, "step": self._state.step},
            "optimizers": opt_meta,
            "classifier": None if self.classifier_ is None else self.classifier_.cfg.to_dict(),
            "data": {
                "classes": self.classes_.tolist(),
                "classes_dtype": self.classes_.dtype.str,
                "class_counts": self.class_counts_.tolist(),
                "spec": self.input_spec_.to_dict(),
            },
        }
        return write_checkpoint(path, metadata, tensors, overwrite=overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike, *, device: str = "auto") -> "ConditionalDCGAN":
        """Rebuild a fitted model from a checkpoint directory; never executes code from it.

        Works on a CPU-only machine for a model trained on a GPU. ``device`` is where the
        loaded model runs ("auto" by default).

        The checkpoint may come from anyone: ``ganaug.json`` is checked against a schema
        (types, ranges, bounded sizes, consistency) and the weights file against the
        networks it describes before anything is allocated (see :mod:`ganaug.checkpoint`).
        A malformed checkpoint raises :class:`~ganaug.CheckpointError` naming the file
        and the field; a missing one ``FileNotFoundError``.
        """
        from .checkpoint import CONFIG_NAME, decode_classes

        dev = resolve_device(device)
        # read_checkpoint checks every field against the schema, and the weights' names, shapes,
        # dtypes and hash, before anything is allocated; the excepts below are a backstop.
        document, tensors = read_checkpoint(path)
        where = Path(path) / CONFIG_NAME

        def corrupt(exc: BaseException, what: str = "description") -> CheckpointError:
            return CheckpointError(f"Checkpoint {what} in {where} is corrupt or mismatched: {exc!r}")

        try:
            params = dict(document["params"])
            unknown = sorted(set(params) - set(cls._get_param_names()))
            if unknown:
                raise CheckpointError(
                    f"Checkpoint file {where} is corrupt: field 'params' holds {unknown}, which are not "
                    f"parameters of {cls.__name__}."
                )
            random_state = params.get("random_state")
            if random_state is not None and not (
                    isinstance(random_state, int) and not isinstance(random_state, bool) and 0 <= random_state < 2**32):
                raise CheckpointError(
                    f"Checkpoint file {where} is corrupt: field 'params.random_state' must be null or an integer "
                    f"from 0 to {2**32 - 1}, got {random_state!r}."
                )
            params["device"] = device
            if isinstance(params.get("betas"), list):
                params["betas"] = tuple(params["betas"])
            gan = cls(**params)
            try:
                gan._validate_params()
            except (TypeError, ValueError) as exc:
                raise CheckpointError(f"Checkpoint file {where} is corrupt: field 'params': {exc}") from exc
            cfg = ModelConfig.from_dict(document["model"])
            training = dict(document["training"])
            state = TrainState(epoch=int(training.pop("epoch")), step=int(training.pop("step")))
            config = TrainConfig.from_dict(training)
            data = document["data"]
            classes = decode_classes(data)
            class_counts = np.asarray(data["class_counts"], dtype=np.int64)
            spec = ArraySpec.from_dict(data["spec"])
            gan.seed_ = int(document["seed"])
            classifier_cfg = ClassifierConfig.from_dict(document["classifier"]) if document.get("classifier") else None
        except CheckpointError:
            raise
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError) as exc:
            raise corrupt(exc) from exc
        try:
            # Every parameter and buffer is overwritten by the checkpoint's: build without
            # drawing from (or advancing) the caller's global RNG.
            with torch.random.fork_rng(devices=[]):
                generator, discriminator = Generator(cfg), Discriminator(cfg)
                classifier = None if classifier_cfg is None else DomainClassifier(classifier_cfg)
        except (RuntimeError, ValueError, TypeError, IndexError) as exc:
            raise corrupt(exc, "model description") from exc
        modules: list[tuple[str, torch.nn.Module]] = [("generator.", generator), ("discriminator.", discriminator)]
        train_generator = None
        if config.ema is not None:
            train_generator = copy.deepcopy(generator)
            modules.append(("train_generator.", train_generator))
        if classifier is not None:
            modules.append(("classifier.", classifier))
        for prefix, module in modules:
            sd = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            try:
                module.load_state_dict(sd, strict=True)
            except RuntimeError as exc:
                raise CheckpointError(
                    f"Checkpoint weights in {where.parent} do not match the {prefix[:-1]} described in ganaug.json: {exc}"
                ) from exc
        generator, discriminator = generator.to(dev).eval(), discriminator.to(dev).eval()
        ema_generator = None
        if train_generator is not None:
            # generator.* holds the moving average (what samples); train_generator.* the raw weights.
            ema_generator, generator = generator, train_generator.to(dev).eval()
        gan._set_fitted(cfg, config, classes, class_counts, spec, generator, discriminator,
                        ema_generator=ema_generator)
        gan.classifier_ = None if classifier is None else classifier.to(dev).eval()
        try:
            gan._optimizers = make_optimizers(gan._train_generator, discriminator, config)
            for name, opt in zip(("opt_g", "opt_d"), gan._optimizers):
                optimizer_from_tensors(name, opt, tensors, document["optimizers"][name])
        except (KeyError, ValueError, RuntimeError, TypeError, IndexError) as exc:
            raise corrupt(exc, "optimizer state") from exc
        state.history = {k: tensors[f"history.{k}"].tolist() if f"history.{k}" in tensors else [] for k in HISTORY_KEYS}
        gan._state = state
        gan.device_ = dev
        return gan


def _move_optimizer(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    for state in optimizer.state.values():
        for key, value in state.items():
            if isinstance(value, torch.Tensor) and key != "step":
                state[key] = value.to(device)
