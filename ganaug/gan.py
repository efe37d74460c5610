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

from .checkpoint import CONFIG_NAME, CheckpointError, read_checkpoint, saved_params, write_checkpoint
from .checkpoint.layout import Snapshot, from_checkpoint, to_checkpoint
from .classifier import train_classifier
from .data import ImageData, as_image_data
from .distributed import broadcast, rank_device, sync_state
from .fastpath import fused_adam, resolve_precision, sampling_batch_size
from .grid import grid_image, save_png
from .models import build_models, model_config
from .params import check_values, parameter_constraints, resolve
from .sampling import (
    MAX_SEED,
    base_seed,
    check_in_memory,
    generate,
    generate_filtered,
    labels_from_counts,
    resolve_counts,
    seeds_for,
)
from .trainer import TrainConfig, TrainState, make_optimizers, train

__all__ = ["ConditionalDCGAN", "DeviceError", "resolve_device"]


class DeviceError(ValueError):
    """A device torch cannot name (``unknown``), or one this machine does not have."""

    def __init__(self, message: str, *, unknown: bool) -> None:
        super().__init__(message)
        self.unknown = unknown


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` -> CUDA, then MPS, then CPU; anything else must be available (else :class:`DeviceError`)."""
    if isinstance(device, str) and device == "auto":
        if torch.cuda.is_available():
            return rank_device(torch.device("cuda"))  # cuda:LOCAL_RANK under torchrun
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise DeviceError(f"Unknown device {device!r}; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'.",
                          unknown=True) from exc
    if dev.type == "cuda":
        available = torch.cuda.is_available() and (dev.index or 0) < torch.cuda.device_count()
    else:
        available = dev.type != "mps" or bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if not available:
        raise DeviceError(f"Device {device!r} is not available on this machine; use device='cpu' or 'auto'.",
                          unknown=False)
    return rank_device(dev)


class ConditionalDCGAN(BaseEstimator):
    """A class-conditional DCGAN that learns p(image | class) and samples any class on demand.

    Every parameter is declared once in :data:`ganaug.params.PARAMETERS` (default, allowed
    values); why each default was chosen, with the measurements, is in docs/measurements.md.

    Parameters
    ----------
    arch : {"dcgan", "classic"}, default="dcgan"
        ``"dcgan"`` sizes the networks from the data (any H, W >= 8, any channel count);
        ``"classic"`` reproduces the 28x28 TensorFlow DCGAN tutorial (with conditioning).
    latent_dim : int, default=100
        Size of the noise vector z.
    embed_dim : int, default=10
        Size of the generator's learned class code, concatenated to z. Larger codes let
        the class drown out z, and the generator collapses within each class.
    width : int, optional
        Channels of the outermost generator/discriminator block (``"dcgan"`` only); each
        block nearer the base resolution doubles it. Default: 32 for images of 16 pixels a
        side or more, 64 below.
    kernel_size : int, optional
        Convolution kernel of ``"dcgan"`` (2 to 7). Even kernels give Radford et al.'s
        stride-2-only networks; odd ones add the tutorial's stride-1 generator block at
        the base resolution. Default: 4 for images of 16 pixels a side or more, 5 below.
    max_epochs : int, default=50
        Passes over the training data.
    batch_size : int, optional
        Images per optimisation step. Default: 32 for ``"dcgan"``, 256 for ``"classic"``
        (:data:`ganaug.params.ARCH_DEFAULTS`).
    lr_g, lr_d : float, optional
        Adam learning rates of the generator and discriminator. Default: 6e-4 and 1.2e-3
        for ``"dcgan"`` (two time-scales), 1e-4 for ``"classic"`` (the tutorial's).
    betas : (float, float), optional
        Adam betas. Default: (0.0, 0.9) for ``"dcgan"`` (Miyato et al. 2018's, with hinge
        loss and spectral norm), (0.9, 0.999) for ``"classic"``.
    loss : {"hinge", "bce"}, default="hinge"
        ``"hinge"`` (Lim & Ye 2017) or ``"bce"``, the classic non-saturating binary
        cross-entropy from logits.
    spectral_norm : bool, default=True
        Spectral normalisation of the discriminator's layers.
    dropout : float, optional
        Dropout rate after each discriminator block. Default: 0 for ``"dcgan"``, whose
        spectral norm and DiffAugment already regularise it; 0.3 for ``"classic"``.
    minibatch_std : bool, default=False
        Minibatch standard-deviation layer in the discriminator (Karras et al. 2018), which
        lets it see a generator that makes the same image for every z.
    fake_labels : {"batch", "balanced"}, default="batch"
        Class labels of the generator's fake batches. ``"batch"``: the real batch's, so
        each class is practised as often as it occurs in the data (a class with 10 of
        1,430 images 0.7% of the time). ``"balanced"``: drawn uniformly over the classes.
    lecam : float or None, default=None
        Weight of the LeCam regulariser (Tseng et al. 2021): the discriminator also pays
        ``mean(relu(D(real) - a_fake)^2) + mean(relu(a_real - D(fake))^2)``, where
        ``a_real`` / ``a_fake`` are moving averages (decay 0.99) of its mean outputs. It
        keeps the discriminator from growing overconfident on few images. None: off.
    group_spectral : float or None, default=None
        Weight of group spectral regularisation (gSR, Rangwani et al. 2022): the generator
        also pays the mean over classes of the squared largest singular value of each
        class's conditioning, grouped into a matrix
        (:meth:`ganaug.models.Generator.class_conditioning`). Against the class-specific
        mode collapse of classes seen a few times. None: off.
    unconditional_blocks : int, default=0
        Generator blocks computed without the class (UTLO-style, Khorram et al. 2024):
        the class enters after them as a per-channel scale and shift, so the coarse,
        low-resolution structure is learned from every class. 0: the class code is
        concatenated to z. At most the number of blocks before the image-making one (2
        for the 8x8 digits and for MNIST). The discriminator is unchanged.
    pretrain_epochs : int, default=0
        Epochs of autoencoder pretraining on all classes before adversarial training
        (BAGAN-style, :mod:`ganaug.pretrain`): the discriminator's convolutions encode,
        the generator decodes given the class, so classes seen a few times start from
        features learned on the others. Not counted in ``max_time``. 0: off.
    augment : str or None, default="translation"
        DiffAugment policy applied to real and fake images before the discriminator,
        e.g. ``"translation,cutout"``; policies: ``color``, ``translation``, ``cutout``.
    ema : float or None, default=0.999
        Decay of an exponential moving average of the generator weights, ramped up over
        the first steps (``min(ema, (1 + step) / (10 + step))``); sampling uses the
        average, with BatchNorm statistics re-measured on its own weights. None samples
        from the trained generator itself.
    max_time : float or None, default=None
        Training time budget in seconds; training stops after the epoch that exceeds it.
    train_classifier : bool, default=True
        Before training the GAN, fit a small domain classifier on the training images: it
        powers ``sample(filter=...)``, the quality metrics and the training monitor, and is
        saved in checkpoints.
    precision : {"auto", "fp32", "bf16"}, default="auto"
        Arithmetic of the forward passes in training and sampling. ``"auto"`` is bf16
        autocast where the device computes in bf16 natively (CUDA with bf16 support, CPUs
        with AVX-512 BF16 or AMX) and fp32 elsewhere (on an AVX2 CPU bf16 is emulated and
        trained 10x slower). fp32 on the CPU is bit-reproducible for a fixed seed; bf16
        gives different, equally seeded images (see :mod:`ganaug.fastpath`).
    compile : {"off", "default", "reduce-overhead", "max-autotune"}, default="off"
        ``torch.compile`` mode for the training networks (``"reduce-overhead"`` uses CUDA
        graphs on CUDA). It compiles for 20-25 s first, then trained at 0.83x of eager on
        the 2-core CPU measured; try it on a GPU. Checkpoints are the same either way.
    sync_batchnorm : bool, default=False
        In a torchrun job on GPUs (docs/distributed.md), normalise with the statistics of
        the global batch (``torch.nn.SyncBatchNorm``) instead of each process's share of
        it. PyTorch's SyncBatchNorm runs on GPUs only: on the CPU it is refused.
    device : str, default="auto"
        ``"auto"`` picks CUDA, then MPS, then CPU; under torchrun, CUDA means this process's
        GPU, ``cuda:LOCAL_RANK``.
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
        The trained networks.
    generator_ema_ : torch.nn.Module or None
        The moving average of ``generator_`` (``ema``); None without one.
    sampling_generator_ : torch.nn.Module
        The network :meth:`sample` uses: ``generator_ema_`` if there is one, else
        ``generator_``.
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
        lr_g: float | None = None, lr_d: float | None = None, betas: tuple[float, float] | None = None,
        loss: str = "hinge",
        spectral_norm: bool = True,
        dropout: float | None = None,
        minibatch_std: bool = False,
        fake_labels: str = "batch",
        lecam: float | None = None,
        group_spectral: float | None = None,
        unconditional_blocks: int = 0,
        pretrain_epochs: int = 0,
        augment: str | None = "translation",
        ema: float | None = 0.999,
        max_time: float | None = None,
        train_classifier: bool = True,
        precision: str = "auto",
        compile: str = "off",  # noqa: A002  (torch.compile's word)
        sync_batchnorm: bool = False,
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
        self.fake_labels = fake_labels
        self.lecam = lecam
        self.group_spectral = group_spectral
        self.unconditional_blocks = unconditional_blocks
        self.pretrain_epochs = pretrain_epochs
        self.augment = augment
        self.ema = ema
        self.max_time = max_time
        self.train_classifier = train_classifier
        self.precision = precision
        self.compile = compile
        self.sync_batchnorm = sync_batchnorm
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    _parameter_constraints: dict = parameter_constraints()

    # ------------------------------------------------------------------ validation

    def _validate_params(self) -> None:
        super()._validate_params()  # scikit-learn's, against _parameter_constraints
        check_values(self.get_params())

    def _train_config(self) -> TrainConfig:
        params = self.get_params()
        return TrainConfig(
            max_epochs=int(self.max_epochs),
            batch_size=int(resolve(params, "batch_size")),
            lr_g=float(resolve(params, "lr_g")),
            lr_d=float(resolve(params, "lr_d")),
            betas=tuple(float(b) for b in resolve(params, "betas")),  # type: ignore[arg-type]
            loss=self.loss,
            augment=self.augment or None,
            ema=None if self.ema is None else float(self.ema),
            max_time=None if self.max_time is None else float(self.max_time),
            precision=self.precision,
            compile=self.compile,
            fake_labels=self.fake_labels,
            lecam=None if self.lecam is None else float(self.lecam),
            group_spectral=None if self.group_spectral is None else float(self.group_spectral),
            pretrain_epochs=int(self.pretrain_epochs),
            sync_batchnorm=bool(self.sync_batchnorm),
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
            from .models import Discriminator

            weights = self.__dict__["discriminator_"]
            device = next(iter(weights.values())).device
            discriminator = Discriminator(self.model_config_).to(device)
            discriminator.load_state_dict(weights)
            discriminator.train(False)
            opt_g, opt_d_state = self._optimizers
            opt_d = make_optimizers(self.generator_, discriminator, self.train_config_)[1]
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
        X : array, tensor, Dataset, ImageData, path or ``"digits"``
            Images as (N, H, W), (N, H, W, C), (N, C, H, W) or flattened (N, D) arrays or
            tensors (uint8 in 0..255, uint16 in 0..65535, bool, float in [0, 1]); a torch
            Dataset of (image, label); an ImageFolder-style directory; an MNIST IDX
            folder; ``"digits"``; or a :class:`ganaug.data.ImageData` already prepared.
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
            self._prepare_resume(data, config, device)
        else:
            self._build(data, config, device)
        self.device_ = device
        if self.train_classifier and self.classifier_ is None:
            # Before the GAN, so that a monitor can measure samples with it while training.
            self.classifier_ = train_classifier(
                data.images, data.labels, len(data.classes), seed=self.seed_, device=device
            )
            sync_state(self.classifier_, parameters=True)  # rank 0's on every rank (GPU kernels may differ in bits)
        self._state = train(
            self.generator_,
            self.discriminator_,
            data,
            config,
            seed=self.seed_,
            device=device,
            optimizers=self._optimizers,
            state=self._state,
            ema_generator=self.generator_ema_,
            callback=None if callback is None else (lambda state: callback(self, state)),
            monitor=None if monitor is None else (lambda state: monitor(self, state)),
            monitor_every=int(monitor_every),
            verbose=self.verbose,
        )
        return self

    def _build(self, data: ImageData, config: TrainConfig, device: torch.device) -> None:
        """Fresh networks and optimisers for ``data``."""
        # Rank 0's seed on every rank of a distributed job (random_state=None draws one per process).
        self.seed_ = broadcast(int(check_random_state(self.random_state).randint(0, 2**31 - 1)), "sharing the seed")
        model = model_config(
            self.arch, data.image_shape, len(data.classes), latent_dim=int(self.latent_dim),
            width=None if self.width is None else int(self.width), spectral_norm=bool(self.spectral_norm),
            kernel_size=None if self.kernel_size is None else int(self.kernel_size),
            minibatch_std=bool(self.minibatch_std), embed_dim=int(self.embed_dim),
            dropout=None if self.dropout is None else float(self.dropout),
            unconditional_blocks=int(self.unconditional_blocks),
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed_)  # weight initialisation, inside the forked RNG
            generator, discriminator = build_models(model)
        generator, discriminator = generator.to(device), discriminator.to(device)
        self._set_fitted(Snapshot(
            params={}, seed=self.seed_, model=model, training=config, state=TrainState(), classes=data.classes,
            class_counts=data.class_counts, spec=data.spec, generator=generator,
            generator_ema=copy.deepcopy(generator) if config.ema is not None else None,
            discriminator=discriminator, classifier=None,
            optimizers=make_optimizers(generator, discriminator, config, fused=fused_adam(device)),
        ))

    def _prepare_resume(self, data: ImageData, config: TrainConfig, device: torch.device) -> None:
        self._check_resumable(data)
        if (config.ema is None) != (self.train_config_.ema is None):
            raise ValueError("Cannot resume with ema switched on or off; keep the setting of the first run.")
        self.train_config_ = config
        self.generator_, self.discriminator_ = self.generator_.to(device), self.discriminator_.to(device)
        if self.generator_ema_ is not None:
            self.generator_ema_ = self.generator_ema_.to(device)
        for optimizer in self._optimizers:
            _move_optimizer(optimizer, device)

    def _set_fitted(self, snap: Snapshot) -> None:
        self.seed_ = snap.seed
        self.model_config_ = snap.model
        self.train_config_ = snap.training
        self.classes_ = snap.classes
        self.n_classes_ = len(snap.classes)
        self.class_counts_ = np.asarray(snap.class_counts, dtype=np.int64)
        self.image_shape_ = (snap.model.channels, snap.model.height, snap.model.width)
        self.input_spec_ = snap.spec
        self.generator_ = snap.generator
        self.generator_ema_ = snap.generator_ema
        self.discriminator_ = snap.discriminator
        self.classifier_ = snap.classifier
        self._optimizers = snap.optimizers
        self._state = snap.state
        self._sample_rng = np.random.default_rng(self.seed_)

    @property
    def sampling_generator_(self) -> torch.nn.Module:
        self._check_is_fitted()
        return self.generator_ if self.generator_ema_ is None else self.generator_ema_

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

    def _sampling(self, batch_size: int | None) -> dict[str, Any]:
        """The device, batch size and precision of a sampling call."""
        return {"device": self.device_, "precision": resolve_precision(self.precision, self.device_),
                "batch_size": sampling_batch_size(self.device_) if batch_size is None else batch_size}

    def _generate(
        self, n_or_counts: int | Mapping[Any, int], random_state: Any, batch_size: int | None, anchors: Any = None
    ) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
        """(images in [-1, 1] NCHW, class indices, seeds)."""
        self._check_is_fitted()
        counts = resolve_counts(n_or_counts, self.classes_)
        check_in_memory(sum(counts.values()), self.image_shape_)
        indices = labels_from_counts(counts).astype(np.int64)
        seeds = seeds_for(self._base_seed(random_state, len(indices)), len(indices))
        images = generate(self.sampling_generator_, indices, seeds, **self._sampling(batch_size), latents=anchors)
        return images, indices, seeds

    def sample(
        self,
        n_or_counts: int | Mapping[Any, int],
        *,
        random_state: int | np.random.RandomState | np.random.Generator | None = None,
        batch_size: int | None = None,
        return_seeds: bool = False,
        output: str = "native",
        filter: float | None = None,  # noqa: A002  (the word users expect)
        anchors: Callable[[np.ndarray, torch.Tensor], torch.Tensor] | None = None,
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
        batch_size : int, optional
            Images per forward pass. Default: 512 on the CPU (it fits the caches), 8192 on
            CUDA. The images do not depend on it.
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
        anchors : LatentAnchors, optional
            From :meth:`ganaug.anchors.LatentAnchors.from_real`: draw each latent near and
            between the codes of real images of its class instead of from the prior (any
            ``latents(seeds, class_indices) -> (N, latent_dim)`` callable works). Not with
            ``filter``.

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
            images, indices, seeds = self._generate(n_or_counts, random_state, batch_size, anchors)
        elif anchors is not None:
            raise ValueError("sample() takes anchors or filter, not both: anchored samples stay near real images.")
        else:
            images, indices, seeds = self._generate_filtered(n_or_counts, random_state, batch_size, filter)
        X = self.input_spec_.restore(images) if output == "native" else images
        y = self.classes_[indices]
        return (X, y, seeds) if return_seeds else (X, y)

    def _generate_filtered(
        self, n_or_counts: int | Mapping[Any, int], random_state: Any, batch_size: int | None, threshold: float
    ) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
        self._check_is_fitted()
        if self.classifier_ is None:
            raise ValueError("sample(filter=...) needs the domain classifier: fit with train_classifier=True.")
        counts = resolve_counts(n_or_counts, self.classes_)
        check_in_memory(sum(counts.values()), self.image_shape_)
        base = self._base_seed(random_state, sum(counts.values()))
        images, indices, seeds, acceptance = generate_filtered(
            self.sampling_generator_, self.classifier_, counts, base, float(threshold), **self._sampling(batch_size),
        )
        self.acceptance_rate_ = {self.classes_[i].item(): rate for i, rate in acceptance.items()}
        return images, indices, seeds

    def sample_from_seeds(self, classes: Sequence[Any], seeds: Sequence[int], *, batch_size: int | None = None) -> Any:
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
        images = generate(self.sampling_generator_, indices, seeds, **self._sampling(batch_size))
        return self.input_spec_.restore(images)

    def save_grid(
        self, path: str | os.PathLike, *, n_per_class: int = 10, random_state: int | None = 0, scale: int = 1
    ) -> Path:
        """Write a PNG with one row of ``n_per_class`` samples per class (classes in order)."""
        images, _, _ = self._generate({c: n_per_class for c in self.classes_.tolist()}, random_state, None)
        save_png(grid_image(images, n_per_class, scale=scale), path)
        return Path(path)

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write a checkpoint directory (safetensors weights + ``ganaug.json``), atomically.

        Holds everything :meth:`load` and a resumed :meth:`fit` need: the networks, the
        optimisers, the loss history, the data's classes and format, and the settings
        (the layout: :mod:`ganaug.checkpoint.layout`).
        """
        self._check_is_fitted()
        params = self.get_params()
        if not isinstance(params["random_state"], (int, type(None))):
            params["random_state"] = None  # an RNG object is not data; the seed reproduces the run
        params["betas"] = list(params["betas"]) if params["betas"] is not None else None
        snap = Snapshot(
            params=params, seed=self.seed_, model=self.model_config_, training=self.train_config_, state=self._state,
            classes=self.classes_, class_counts=self.class_counts_, spec=self.input_spec_, generator=self.generator_,
            generator_ema=self.generator_ema_, discriminator=self.discriminator_, classifier=self.classifier_,
            optimizers=self._optimizers,
        )
        return write_checkpoint(path, *to_checkpoint(snap), overwrite=overwrite)

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
        dev = resolve_device(device)
        document, tensors = read_checkpoint(path)
        where = Path(path) / CONFIG_NAME
        gan = cls._from_saved_params(document["params"], device, where)
        gan._set_fitted(from_checkpoint(document, tensors, device=dev, where=where))
        gan.device_ = dev
        return gan

    @classmethod
    def _from_saved_params(cls, saved: dict[str, Any], device: str, where: Path) -> "ConditionalDCGAN":
        gan = cls(**dict(saved_params(saved, cls._get_param_names(), cls.__name__, where), device=device))
        try:
            gan._validate_params()
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"Checkpoint file {where} is corrupt: field 'params': {exc}") from exc
        return gan


def _move_optimizer(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    for state in optimizer.state.values():
        for key, value in state.items():
            if isinstance(value, torch.Tensor) and key != "step":
                state[key] = value.to(device)
