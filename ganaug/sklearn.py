"""scikit-learn front end: an imbalanced-learn over-sampler and a meta-classifier.

* :class:`GANOverSampler` is an imbalanced-learn over-sampler (``BaseOverSampler``): it
  drops into ``imblearn.pipeline.Pipeline``, where the GAN is fitted on the training rows
  only, so cross-validation and grid search never leak test rows into it.
* :class:`GANAugmentedClassifier` wraps a classifier for plain scikit-learn pipelines,
  which do not accept resamplers: ``fit`` resamples, then fits the classifier.
"""

from __future__ import annotations

import hashlib
import json
import numbers
import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from imblearn.over_sampling.base import BaseOverSampler
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, column_or_1d

from ._version import __version__
from .anchors import LatentAnchors
from .checkpoint import is_checkpoint
from .data import as_image_data
from .gan import ConditionalDCGAN, resolve_device
from .params import PARAMETERS, check_values, parameter_constraints, resolve
from .sampling import real_duplicates, split_synthetic, synthetic_counts
from .selection import GeneratorSnapshots, candidate_caps, default_probe, select_cap, validation_split
from .trainer import steps_per_epoch

__all__ = ["GANAugmentedClassifier", "GANOverSampler"]

# Parameters passed through to ConditionalDCGAN unchanged (random_state seeds both the GAN
# and the sampling; train_classifier has its own default here).
_GAN_PARAMS = tuple(name for name in PARAMETERS if name not in ("random_state", "train_classifier"))


class GANOverSampler(BaseOverSampler):
    """Over-sample image classes with a conditional DCGAN (imbalanced-learn sampler).

    ``fit_resample(X, y)`` fits a :class:`ganaug.ConditionalDCGAN` on ``(X, y)`` and returns
    the original rows first, then the synthetic rows, in X's own dtype and value range,
    with as many synthetic rows per class as ``sampling_strategy`` asks
    (imbalanced-learn's own semantics, computed by imbalanced-learn).

    Parameters
    ----------
    sampling_strategy : float, str, dict or callable, default="auto"
        As for every imbalanced-learn over-sampler: ``"auto"``/``"not majority"``,
        ``"minority"``, ``"not minority"``, ``"all"``, a float (binary only), a dict of
        target counts per class, or a callable ``f(y) -> dict``.
    random_state : int, RandomState instance or None, default=None
        Seeds the GAN and the sampling; an int makes ``fit_resample`` reproducible.
    image_shape : tuple, default=None
        Shape each row of X reshapes to, e.g. ``(8, 8)``, ``(28, 28)`` or ``(32, 32, 3)``.
        None: square grey images (``n_features`` must be a perfect square, at least 64).
    value_range : (low, high), default=None
        Range of X's values. None: 0..255 for integer X, [0, 1] for float X. For
        scikit-learn's ``load_digits().data`` pass ``(0, 16)``.
    generator : ConditionalDCGAN, path or None, default=None
        An already trained model (or its checkpoint directory): no training, only
        sampling. scikit-learn's ``clone`` (used by cross-validation) copies an estimator
        parameter unfitted, so pass a checkpoint path or
        ``sklearn.frozen.FrozenEstimator(gan)`` when the sampler will be cloned. A model
        trained outside the folds sees their test rows: only use one trained elsewhere.
    arch, latent_dim, embed_dim, width, kernel_size, max_epochs, batch_size, lr_g, lr_d, betas, loss, \
spectral_norm, dropout, minibatch_std, fake_labels, lecam, group_spectral, unconditional_blocks, pretrain_epochs, \
augment, ema, max_time, precision, compile, sync_batchnorm, device, verbose
        Passed to :class:`ganaug.ConditionalDCGAN`, with its defaults (``verbose`` is
        False here: a sampler runs inside pipelines and cross-validation loops).
    train_classifier : bool or None, default=None
        Fit the GAN's domain classifier. None: only when ``filter`` is set, the one use a
        sampler has for it.
    filter : float, default=None
        Keep only synthetic images that the GAN's domain classifier assigns to their class
        with at least this probability (see ``ConditionalDCGAN.sample``).
    latent_anchors : float, default=None
        Draw the latents of synthetic rows near and between the generator codes of the
        class's real rows (``ganaug.anchors.LatentAnchors.from_real``: each real row of a class
        that gets synthetic rows is inverted into the latent space, 300 optimisation steps),
        with prior noise of this scale on top; 0 stays between real rows. None: latents
        from the prior, as ``ConditionalDCGAN.sample`` draws them. Not with ``filter``.
        Under ``max_synthetic_per_real="auto"`` the anchors of the validation probes are
        the GAN's training rows only.
    max_synthetic_per_real : float, "auto", list of float or None, default="auto"
        At most this many synthetic rows per real row of a class; the rest of what
        ``sampling_strategy`` asks for are random copies of the class's real rows (random
        oversampling). None: every added row is synthetic (the default until issue 18; on the
        downstream benchmark it was significantly worse than random oversampling in 10 of
        16 imbalanced cells). A class with 10 real rows and ``max_synthetic_per_real=1``
        gets at most 10 synthetic ones.

        ``"auto"`` (or a list of caps) chooses the cap on a validation split: a stratified
        ``validation_size`` share of the rows is held out, the GAN is trained on the rest,
        and ``selection_estimator`` is fitted on the rest resampled with each cap of
        ``ganaug.selection.AUTO_CAPS`` (0, 0.5, 1, 2; 0 is plain random oversampling, the
        fallback, which wins ties). The cap with the best balanced accuracy on the held-out
        rows is used for the output, with that same GAN (it never saw the held-out rows;
        they are in the output as real rows). Cost: the GAN trains on fewer rows, and the
        probe is fitted once per cap. ``selection_`` records the evidence.
    selection_estimator : classifier, default=None
        The probe that ``max_synthetic_per_real="auto"`` scores caps with, fitted on rows
        as this sampler outputs them. None: the rows scaled to [0, 1] by ``value_range``,
        then ``LogisticRegression(max_iter=1000)``. ``GANAugmentedClassifier`` passes its
        own estimator.
    validation_size : float, default=0.2
        Share of each class held out for ``max_synthetic_per_real="auto"`` (at least one
        row, never a class's only row).
    generator_snapshots : int, default=1
        With ``max_synthetic_per_real="auto"``, also choose the generator checkpoint: keep
        this many copies of the sampling network, after equal shares of the training steps
        (the last is the trained model; :class:`ganaug.selection.GeneratorSnapshots`), score
        every cap with each, and use the best pair. Ties keep the later snapshot. Costs one
        set of probe fits per snapshot; ``selection_["snapshots"]`` has their scores and
        ``selection_["steps"]`` the one chosen. 1: the trained model only.
    cache_dir : path, default=None
        Opt-in cache of trained GANs, keyed on a SHA-256 of X, y and every parameter that
        affects training. Refitting on the same rows (e.g. a grid search over the
        classifier's parameters, where each fold recurs) loads the GAN instead of training
        it again. Entries are ordinary checkpoints; delete the folder to clear it.

    Attributes
    ----------
    sampling_strategy_ : dict
        Synthetic rows to add per class.
    generator_ : ConditionalDCGAN
        The model that made the synthetic rows.
    classes_ : np.ndarray
        Class labels seen in ``fit_resample``.
    n_features_in_ : int
    n_original_samples_ : int
        Rows of X, which come first in the output; then the copies of real rows
        (``max_synthetic_per_real``), then the synthetic rows.
    synthetic_mask_ : np.ndarray of bool
        True for the synthetic rows of the last ``fit_resample`` output.
    n_copies_ : int
        Copies of real rows in the last output.
    cache_hit_ : bool
        Whether the GAN came from ``cache_dir`` instead of being trained.
    selection_ : dict or None
        With ``max_synthetic_per_real="auto"``: the chosen ``max_synthetic_per_real``, the
        ``candidates`` and their validation ``scores``, ``fallback`` (random oversampling
        won), the split's sizes and the seconds spent (``gan_seconds``, ``seconds`` for the
        probes). None otherwise.

    Examples
    --------
    >>> from imblearn.pipeline import make_pipeline
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.linear_model import LogisticRegression
    >>> from ganaug.sklearn import GANOverSampler
    >>> X, y = load_digits(return_X_y=True)
    >>> sampler = GANOverSampler(image_shape=(8, 8), value_range=(0, 16), max_epochs=1,
    ...                          random_state=0)
    >>> X_res, y_res = sampler.fit_resample(X[:300], y[:300])
    >>> X_res.shape[1], (X_res[:300] == X[:300]).all(), sampler.synthetic_mask_.sum() > 0
    (64, np.True_, np.True_)
    >>> pipe = make_pipeline(sampler, LogisticRegression(max_iter=2000)).fit(X[:300], y[:300])
    """

    _parameter_constraints: dict = {
        **BaseOverSampler._parameter_constraints,
        **parameter_constraints(_GAN_PARAMS),
        "image_shape": [tuple, list, None],
        "value_range": [tuple, list, None],
        "generator": [HasMethods(["sample"]), str, os.PathLike, None],
        "train_classifier": ["boolean", None],
        "filter": [Interval(numbers.Real, 0, 1, closed="both"), None],
        "latent_anchors": [Interval(numbers.Real, 0, None, closed="left"), None],
        "max_synthetic_per_real": [Interval(numbers.Real, 0, None, closed="left"), StrOptions({"auto"}), list, tuple,
                                   None],
        "selection_estimator": [HasMethods(["fit", "predict"]), None],
        "validation_size": [Interval(numbers.Real, 0, 1, closed="neither")],
        "generator_snapshots": [Interval(numbers.Integral, 1, None, closed="left")],
        "cache_dir": [str, os.PathLike, None],
    }

    def __init__(
        self,
        *,
        sampling_strategy: Any = "auto",
        random_state: Any = None,
        image_shape: tuple[int, ...] | None = None, value_range: tuple[float, float] | None = None,
        generator: Any = None,
        arch: str = "dcgan", latent_dim: int = 100, embed_dim: int = 10, width: int | None = None,
        kernel_size: int | None = None, max_epochs: int = 50, batch_size: int | None = None,
        lr_g: float | None = None, lr_d: float | None = None, betas: tuple[float, float] | None = None,
        loss: str = "hinge", spectral_norm: bool = True, dropout: float | None = None,
        minibatch_std: bool = False, fake_labels: str = "batch", lecam: float | None = None,
        group_spectral: float | None = None, unconditional_blocks: int = 0, pretrain_epochs: int = 0,
        augment: str | None = "translation", ema: float | None = 0.999, max_time: float | None = None,
        train_classifier: bool | None = None, latent_anchors: float | None = None,
        filter: float | None = None, max_synthetic_per_real: float | str | list | None = "auto",  # noqa: A002
        selection_estimator: Any = None, validation_size: float = 0.2, generator_snapshots: int = 1,
        precision: str = "auto", compile: str = "off", sync_batchnorm: bool = False, device: str = "auto",  # noqa: A002
        cache_dir: str | os.PathLike | None = None, verbose: bool = False,
    ) -> None:
        super().__init__(sampling_strategy=sampling_strategy)
        self.random_state = random_state
        self.image_shape = image_shape
        self.value_range = value_range
        self.generator = generator
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
        self.filter = filter
        self.latent_anchors = latent_anchors
        self.max_synthetic_per_real = max_synthetic_per_real
        self.selection_estimator = selection_estimator
        self.validation_size = validation_size
        self.generator_snapshots = generator_snapshots
        self.precision = precision
        self.compile = compile
        self.sync_batchnorm = sync_batchnorm
        self.device = device
        self.cache_dir = cache_dir
        self.verbose = verbose

    def _validate_params(self) -> None:
        super()._validate_params()
        check_values({name: getattr(self, name) for name in _GAN_PARAMS})
        if candidate_caps(self.max_synthetic_per_real) is None and self.generator_snapshots != 1:  # checks a list
            raise ValueError("generator_snapshots chooses among snapshots on the validation split: it needs "
                             "max_synthetic_per_real='auto' or a list of caps.")
        if self.latent_anchors is not None and self.filter is not None:  # before training, not after
            raise ValueError("Pass latent_anchors or filter, not both: anchored samples stay near real rows.")

    def _check_X_y(self, X: Any, y: Any, accept_sparse: Any = None) -> tuple[Any, Any, bool]:
        # Images are dense: refuse sparse matrices with sklearn's own message.
        return super()._check_X_y(X, y, accept_sparse=False)

    def _pretrained(self) -> ConditionalDCGAN:
        generator = self.generator
        generator = getattr(generator, "estimator", generator)  # sklearn.frozen.FrozenEstimator
        if isinstance(generator, (str, os.PathLike)):
            return ConditionalDCGAN.load(generator, device=self.device)
        if not isinstance(generator, ConditionalDCGAN):
            raise TypeError(f"generator must be a ConditionalDCGAN or a checkpoint path, got {type(generator).__name__}.")
        if not hasattr(generator, "generator_"):
            raise ValueError(
                "generator is not fitted. scikit-learn's clone() (cross-validation, pipelines) copies an "
                "estimator parameter unfitted: pass the checkpoint path or sklearn.frozen.FrozenEstimator(gan)."
            )
        return generator

    def _gan_params(self, seed: int) -> dict[str, Any]:
        train_classifier = self.filter is not None if self.train_classifier is None else self.train_classifier
        return {"random_state": seed, "train_classifier": train_classifier,
                **{name: getattr(self, name) for name in _GAN_PARAMS}}

    def _cache_key(self, X: np.ndarray, y: np.ndarray, seed: int) -> str:
        h = hashlib.sha256()
        h.update(np.ascontiguousarray(X).tobytes())
        h.update(json.dumps([str(X.dtype), list(X.shape), [str(v) for v in y.tolist()]]).encode())
        settings = {name: value for name, value in self._gan_params(seed).items() if name not in ("verbose", "device")}
        settings.update(image_shape=self.image_shape, value_range=self.value_range,
                        device=resolve_device(self.device).type, ganaug=__version__)
        h.update(json.dumps(settings, sort_keys=True, default=str).encode())
        return h.hexdigest()[:24]

    def _fit_generator(self, X: np.ndarray, y: np.ndarray, data: Any, seed: int,
                       snapshots: GeneratorSnapshots | None = None) -> ConditionalDCGAN:
        self.cache_hit_ = False
        path = None
        if self.cache_dir is not None:
            path = Path(self.cache_dir) / f"gan-{self._cache_key(X, y, seed)}"
            if is_checkpoint(path) and (snapshots is None or snapshots.load(path, self.device)):
                self.cache_hit_ = True
                return ConditionalDCGAN.load(path, device=self.device)
        gan = ConditionalDCGAN(**self._gan_params(seed))
        if snapshots is None:
            gan.fit(data)  # data: X already checked as images
        else:
            gan.fit(data, monitor=snapshots, monitor_every=snapshots.every)
        if path is not None:
            gan.save(path, overwrite=True)
            if snapshots is not None:
                snapshots.save(gan, path)
        return gan

    def _generators_for(self, X: np.ndarray, y: np.ndarray, data: Any, seed: int) -> list[tuple[Any, Any]]:
        """``(steps, model)`` candidates: the trained GAN and its ``generator_snapshots``."""
        if self.generator_snapshots == 1:
            return [(None, self._generator_for(X, y, data, seed))]
        if self.generator is not None:
            raise ValueError("generator_snapshots needs a GAN trained here: it cannot take snapshots of a pretrained "
                             "generator. Use generator_snapshots=1.")
        per_epoch = steps_per_epoch(len(data), int(resolve(self._gan_params(seed), "batch_size")))
        snapshots = GeneratorSnapshots(int(self.generator_snapshots), int(self.max_epochs) * per_epoch)
        return snapshots.models(self._fit_generator(X, y, data, seed, snapshots))

    def _generator_for(self, X: np.ndarray, y: np.ndarray, data: Any, seed: int) -> ConditionalDCGAN:
        if self.generator is None:
            return self._fit_generator(X, y, data, seed)
        gan = self._pretrained()
        self.cache_hit_ = False
        unknown = sorted(set(np.unique(y).tolist()) - set(gan.classes_.tolist()))
        if unknown:
            raise ValueError(
                f"The generator does not know classes {unknown}; it was trained on {gan.classes_.tolist()}.")
        if tuple(gan.image_shape_) != data.image_shape:
            raise ValueError(
                f"The generator makes images of shape {gan.image_shape_} (C, H, W) but the rows of X are "
                f"{data.image_shape}; check image_shape."
            )
        return gan

    def _synthetic_rows(self, gan: ConditionalDCGAN, data: Any, wanted: dict, seed: int, like: np.ndarray,
                        y: np.ndarray, real: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``wanted`` synthetic rows; ``real``: the rows that anchored latents may start from."""
        anchors = None
        if self.latent_anchors is not None and wanted:
            rows = real[np.isin(y[real], list(wanted))]  # only the classes that get synthetic rows
            anchors = LatentAnchors.from_real(gan, data.take(rows), spread=float(self.latent_anchors),
                                              random_state=seed)
        images, labels = gan.sample(wanted, random_state=seed, output="tensor", filter=self.filter, anchors=anchors)
        rows = data.spec.restore(images).reshape(len(labels), like.shape[1]).astype(like.dtype, copy=False)
        return rows, np.asarray(labels, dtype=y.dtype)

    def _selected_generator(self, X: np.ndarray, y: np.ndarray, data: Any, caps: tuple[float, ...], gan_seed: int,
                            sample_seed: int, split_seed: int) -> tuple[ConditionalDCGAN, float]:
        """Train the GAN on all but a validation split and choose the cap there (``selection_``)."""
        split = validation_split(y, float(self.validation_size), split_seed)
        train = split[0]
        classes, counts = np.unique(y[train], return_counts=True)
        left_single = [c for c, k in zip(classes.tolist(), counts.tolist()) if k == 1 and (y == c).sum() > 1]
        if left_single:
            warnings.warn(f"max_synthetic_per_real='auto' holds out validation rows, which leaves classes "
                          f"{left_single} with a single image for the GAN: its samples of them can only copy it. "
                          "Pass a fixed max_synthetic_per_real to train on every row.", UserWarning, stacklevel=5)
        start = time.perf_counter()
        models = self._generators_for(X[train], y[train], data.take(train), gan_seed)  # every class keeps a row
        gan_seconds = time.perf_counter() - start
        added = synthetic_counts(dict(zip(classes.tolist(), counts.tolist())), self.sampling_strategy)
        probe = self.selection_estimator if self.selection_estimator is not None else default_probe(
            data.spec.value_range)
        records = []
        models = models[::-1]  # the trained model first: an earlier snapshot must score higher to win
        for steps, gan in models:
            records.append(select_cap(
                X, y, split, added, caps, lambda wanted, gan=gan: self._synthetic_rows(
                    gan, data, wanted, sample_seed, X, y, train), probe, sample_seed))
        best = max(range(len(records)), key=lambda i: max(records[i]["scores"]))  # the first maximum
        self.selection_ = {**records[best], "gan_seconds": round(gan_seconds, 2),
                           "seconds": round(sum(r["seconds"] for r in records), 2)}
        if len(records) > 1:
            self.selection_["steps"] = models[best][0]
            self.selection_["snapshots"] = [{"steps": steps, "scores": r["scores"]}
                                            for (steps, _), r in zip(models, records)]
        return models[best][1], self.selection_["max_synthetic_per_real"]

    def _fit_resample(self, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # Validates X as images (shape, range, NaN, classes) and gives the row format back.
        data = as_image_data(X, y, image_shape=self.image_shape, value_range=self.value_range)
        rng = check_random_state(self.random_state)
        gan_seed, sample_seed = (int(s) for s in rng.randint(0, 2**31 - 1, size=2))
        caps = candidate_caps(self.max_synthetic_per_real)
        self.selection_ = None
        if caps is None:
            gan, cap = self._generator_for(X, y, data, gan_seed), self.max_synthetic_per_real
        else:
            gan, cap = self._selected_generator(X, y, data, caps, gan_seed, sample_seed,
                                                int(rng.randint(0, 2**31 - 1)))
        classes, counts = np.unique(y, return_counts=True)
        synthetic, copies = split_synthetic(self.sampling_strategy_, dict(zip(classes.tolist(), counts.tolist())), cap)
        wanted = {c: n for c, n in synthetic.items() if n > 0}
        X_new, y_new = self._synthetic_rows(gan, data, wanted, sample_seed, X, y, np.arange(len(y)))
        copied = real_duplicates(y, copies, sample_seed)
        self.generator_ = gan
        self.classes_ = classes
        self.n_original_samples_ = X.shape[0]
        self.n_copies_ = len(copied)
        self.synthetic_mask_ = np.r_[np.zeros(X.shape[0] + len(copied), bool), np.ones(len(y_new), bool)]
        return np.vstack([X, X[copied], X_new]), np.hstack([y, y[copied], y_new])

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        tags.input_tags.dataframe = False
        tags.non_deterministic = False
        return tags


def _estimator_has(attr: str):  # type: ignore[no-untyped-def]
    """available_if check: the (fitted or configured) inner estimator has ``attr``."""

    def check(self) -> bool:  # type: ignore[no-untyped-def]
        if hasattr(self, "estimator_"):
            return hasattr(self.estimator_, attr)
        from sklearn.linear_model import LogisticRegression

        return hasattr(self.estimator if self.estimator is not None else LogisticRegression(), attr)

    return check


class GANAugmentedClassifier(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """A classifier trained on GAN-augmented data, for plain scikit-learn pipelines.

    ``fit(X, y)`` clones ``oversampler``, resamples ``(X, y)`` with it, then fits a clone
    of ``estimator`` on the result. ``predict``, ``predict_proba``,
    ``predict_log_proba``, ``decision_function`` and ``score`` delegate to the fitted
    estimator. Resampling only happens in ``fit``: prediction sees real rows only.

    Parameters
    ----------
    estimator : classifier, default=None
        The classifier to train; None means ``LogisticRegression(max_iter=1000)``.
    oversampler : GANOverSampler or any imbalanced-learn sampler, default=None
        None means ``GANOverSampler()``. Its parameters are reachable for grid search as
        ``oversampler__max_epochs`` and so on. A GANOverSampler without a
        ``selection_estimator`` chooses ``max_synthetic_per_real="auto"`` with ``estimator``
        (without ``fit_params``).
    synthetic_weight : float, default=1.0
        ``sample_weight`` of the synthetic rows in the estimator's fit (real rows and their
        copies weigh 1), so that synthetic rows can count less than real ones. Needs an
        oversampler that marks its synthetic rows (``synthetic_mask_``, as GANOverSampler
        does) and an estimator whose ``fit`` takes ``sample_weight``. The cap chosen by
        ``max_synthetic_per_real="auto"`` is scored without it.

    Attributes
    ----------
    estimator_, oversampler_ : fitted clones.
    classes_ : np.ndarray
    n_features_in_ : int

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.model_selection import cross_val_score
    >>> from ganaug.sklearn import GANAugmentedClassifier, GANOverSampler
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = GANAugmentedClassifier(LogisticRegression(max_iter=2000),
    ...     GANOverSampler(image_shape=(8, 8), value_range=(0, 16), max_epochs=1, random_state=0))
    >>> scores = cross_val_score(clf, X[:300], y[:300], cv=2)
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "predict"]), None],
        "oversampler": [HasMethods(["fit_resample"]), None],
        "synthetic_weight": [Interval(numbers.Real, 0, None, closed="neither")],
    }

    def __init__(self, estimator: Any = None, oversampler: Any = None, synthetic_weight: float = 1.0) -> None:
        self.estimator = estimator
        self.oversampler = oversampler
        self.synthetic_weight = synthetic_weight

    def fit(self, X: Any, y: Any, **fit_params: Any) -> "GANAugmentedClassifier":
        """Resample ``(X, y)``, then fit the estimator on the result. Returns self."""
        self._validate_params()
        from sklearn.linear_model import LogisticRegression

        self.oversampler_ = clone(self.oversampler if self.oversampler is not None else GANOverSampler())
        y_array = np.asarray(y)
        if y_array.ndim == 2 and y_array.shape[1] == 1:
            y = column_or_1d(y_array, warn=True)  # DataConversionWarning, as every sklearn classifier
        estimator = self.estimator if self.estimator is not None else LogisticRegression(max_iter=1000)
        if isinstance(self.oversampler_, GANOverSampler) and self.oversampler_.selection_estimator is None:
            self.oversampler_.set_params(selection_estimator=estimator)  # choose the cap with the real classifier
        if self.synthetic_weight != 1:
            self._check_synthetic_weight(estimator, fit_params)  # before the GAN trains
        X_res, y_res = self.oversampler_.fit_resample(X, y)
        if self.synthetic_weight != 1:
            fit_params = {**fit_params, "sample_weight": self._synthetic_weights()}
        self.estimator_ = clone(estimator).fit(X_res, y_res, **fit_params)
        self.classes_ = self.estimator_.classes_
        self.n_features_in_ = self.oversampler_.n_features_in_
        return self

    def _check_synthetic_weight(self, estimator: Any, fit_params: dict[str, Any]) -> None:
        from sklearn.utils.validation import has_fit_parameter

        if not has_fit_parameter(estimator, "sample_weight"):
            raise ValueError(f"synthetic_weight={self.synthetic_weight} needs an estimator whose fit takes "
                             f"sample_weight; {type(estimator).__name__}.fit does not. Use synthetic_weight=1.")
        if "sample_weight" in fit_params:
            raise ValueError("Pass sample_weight or synthetic_weight, not both: the weights of the original rows do "
                             "not carry over to resampled ones.")

    def _synthetic_weights(self) -> np.ndarray:
        """``sample_weight`` for the resampled rows: ``synthetic_weight`` on synthetic ones, else 1."""
        mask = getattr(self.oversampler_, "synthetic_mask_", None)
        if mask is None:
            raise ValueError(f"synthetic_weight={self.synthetic_weight} needs an oversampler that marks its synthetic "
                             f"rows (synthetic_mask_, as GANOverSampler does); {type(self.oversampler_).__name__} "
                             "does not. Use synthetic_weight=1.")
        return np.where(mask, float(self.synthetic_weight), 1.0)

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        return self.estimator_.predict(X)

    @available_if(_estimator_has("predict_proba"))
    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        return self.estimator_.predict_proba(X)

    @available_if(_estimator_has("predict_log_proba"))
    def predict_log_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        return self.estimator_.predict_log_proba(X)

    @available_if(_estimator_has("decision_function"))
    def decision_function(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        return self.estimator_.decision_function(X)

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        from sklearn.linear_model import LogisticRegression
        from sklearn.utils import get_tags

        tags = super().__sklearn_tags__()
        sampler = self.oversampler if self.oversampler is not None else GANOverSampler()
        estimator = self.estimator if self.estimator is not None else LogisticRegression()
        tags.input_tags.sparse = get_tags(sampler).input_tags.sparse and get_tags(estimator).input_tags.sparse
        return tags
