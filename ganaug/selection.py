"""Choosing how many synthetic images to add, on a validation split of the training rows.

A generator's own quality figures (class fidelity, FID, CAS) do not predict whether its
samples make a classifier better, so the amount is chosen the way a careful user would
check it: hold out a stratified share of the training rows, train the GAN on the rest,
fit a probe classifier on the rest resampled with each candidate cap, and keep the cap
whose probe scores best on the held-out rows (balanced accuracy, the metric that weighs a
rare class like a frequent one). The cap ``0`` is plain random oversampling and is always
a candidate; candidates are tried from the fewest synthetic images up and a later one must
score strictly higher to win, so ganaug only adds synthetic images where they measurably
helped on rows the GAN never saw.

With :class:`GeneratorSnapshots` the generator checkpoint is chosen the same way: copies
of the sampling network taken during training are scored like the final one, and an
earlier one must score strictly higher to win.

Used by :class:`ganaug.sklearn.GANOverSampler` (``max_synthetic_per_real="auto"``,
``generator_snapshots``).
"""

from __future__ import annotations

import copy
import numbers
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .checkpoint import is_checkpoint
from .gan import ConditionalDCGAN
from .sampling import real_duplicates, split_synthetic
from .trainer import TrainState

__all__ = ["AUTO_CAPS", "GeneratorSnapshots", "candidate_caps", "default_probe", "select_cap", "validation_split"]

# Synthetic images per real image of a class, for max_synthetic_per_real="auto". 0 is random
# oversampling; 2 is about where the issue-18 probes saw extra synthetic images start to
# cost accuracy, so larger caps are left to an explicit list.
AUTO_CAPS = (0.0, 0.5, 1.0, 2.0)


def candidate_caps(value: Any) -> tuple[float, ...] | None:
    """The caps ``max_synthetic_per_real`` asks to choose among, or None for a fixed setting.

    ``"auto"`` means :data:`AUTO_CAPS`; a list or tuple of numbers >= 0 means those, with 0
    added (random oversampling is always the fallback).

    >>> candidate_caps("auto"), candidate_caps([1, 0.5]), candidate_caps(1.0)
    ((0.0, 0.5, 1.0, 2.0), (0.0, 0.5, 1.0), None)
    """
    if isinstance(value, str):
        if value != "auto":
            raise ValueError(
                f"max_synthetic_per_real must be a number, None, 'auto' or a list of numbers; got {value!r}.")
        return AUTO_CAPS
    if not isinstance(value, (list, tuple)):
        return None
    bad = [v for v in value if isinstance(v, bool) or not isinstance(v, numbers.Real) or not 0 <= v < float("inf")]
    if not value or bad:
        raise ValueError(f"max_synthetic_per_real as a list needs finite numbers >= 0 to choose among; got {value!r}.")
    return tuple(sorted({0.0, *(float(v) for v in value)}))


def validation_split(y: np.ndarray, validation_size: float, random_state: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Stratified ``(train, validation)`` row indices, both sorted.

    Each class holds out ``round(validation_size * n)`` of its ``n`` rows, at least one and
    never all: a class with a single row stays in training only, so the GAN knows it.
    """
    rng = np.random.default_rng(random_state)
    y = np.asarray(y)
    train, val = [], []
    for c in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == c))
        k = min(len(rows) - 1, max(1, int(round(validation_size * len(rows)))))
        val.append(rows[:k])
        train.append(rows[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def _scale_rows(X: np.ndarray, low: float, high: float) -> np.ndarray:
    return (np.asarray(X, dtype=np.float64) - low) / (high - low)


def default_probe(value_range: tuple[float, float]) -> Any:
    """The probe used when none is given: rows scaled to [0, 1], then a logistic regression."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    low, high = (float(v) for v in value_range)
    return make_pipeline(FunctionTransformer(_scale_rows, kw_args={"low": low, "high": high}),
                         LogisticRegression(max_iter=1000))


def select_cap(
    X: np.ndarray,
    y: np.ndarray,
    split: tuple[np.ndarray, np.ndarray],
    added: Mapping[Any, int],
    caps: tuple[float, ...],
    make_synthetic: Callable[[dict[Any, int]], tuple[np.ndarray, np.ndarray]],
    probe: Any,
    random_state: int,
) -> dict[str, Any]:
    """Score every cap on the validation rows and return the selection record.

    Parameters
    ----------
    X, y : arrays
        All training rows and labels; ``split`` = ``(train, validation)`` indices into them.
    added : mapping
        ``{class: rows to add}`` for the training part (the sampling strategy applied to it).
    caps : tuple of float
        Candidates, ascending; the first is the fallback.
    make_synthetic : callable
        ``{class: count} -> (rows, labels)`` from a GAN trained on the training part only.
    probe : classifier
        Cloned and fitted once per cap.
    random_state : int
        Seeds the copies of real rows.

    The synthetic rows of a smaller cap are the first ones of the largest cap's, so the
    candidates differ only in how many synthetic rows they add.
    """
    from sklearn.base import clone
    from sklearn.metrics import balanced_accuracy_score

    start = time.perf_counter()
    train, val = split
    X_train, y_train = X[train], y[train]
    classes, counts = np.unique(y_train, return_counts=True)
    real = dict(zip(classes.tolist(), counts.tolist()))
    most = {c: n for c, n in split_synthetic(added, real, caps[-1])[0].items() if n > 0}
    rows, labels = make_synthetic(most) if most else (X_train[:0], y_train[:0])
    scores = []
    for cap in caps:
        synthetic, copies = split_synthetic(added, real, cap)
        picked = [np.flatnonzero(labels == c)[:n] for c, n in synthetic.items() if n > 0]
        picked_rows = np.concatenate(picked) if picked else np.empty(0, np.int64)
        copied = real_duplicates(y_train, copies, random_state)
        X_fit = np.vstack([X_train, X_train[copied], rows[picked_rows]])
        y_fit = np.concatenate([y_train, y_train[copied], labels[picked_rows]])
        model = clone(probe).fit(X_fit, y_fit)
        scores.append(float(balanced_accuracy_score(y[val], model.predict(X[val]))))
    best = int(np.argmax(scores))  # the first maximum: ties go to fewer synthetic images
    return {"max_synthetic_per_real": caps[best], "candidates": list(caps), "scores": scores,
            "metric": "balanced_accuracy", "n_train": int(len(train)), "n_validation": int(len(val)),
            "fallback": caps[best] == caps[0], "seconds": round(time.perf_counter() - start, 2)}


class GeneratorSnapshots:
    """A ``ConditionalDCGAN.fit`` monitor that keeps the sampling network at ``n`` points.

    Snapshots are taken after ``k * every`` optimisation steps, ``every = total_steps // n``,
    for ``k = 1 .. n - 1``; the trained model itself is the n-th. Pass it as ``monitor``
    with ``monitor_every=snapshots.every``: the trainer re-measures the moving average's
    BatchNorm statistics before each call (as a per-epoch ``callback`` would, at every
    epoch). :meth:`models` returns the snapshots as models that sample like any fitted one
    (``n_steps_`` says where each was taken). They are for sampling: only the sampling
    network is the snapshot's, so do not resume training from one. A model stopped early
    (``max_time``) has fewer, and then the cache (:meth:`load`) never has them all.

    >>> snapshots = GeneratorSnapshots(3, total_steps=900)  # doctest: +SKIP
    >>> gan.fit(X, y, monitor=snapshots, monitor_every=snapshots.every)  # doctest: +SKIP
    >>> [steps for steps, _ in snapshots.models(gan)]  # doctest: +SKIP
    [300, 600, 900]
    """

    def __init__(self, n: int, total_steps: int) -> None:
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise ValueError(f"The number of generator snapshots must be an integer >= 1, got {n!r}.")
        self.every = max(1, int(total_steps) // int(n))
        self.steps = [k * self.every for k in range(1, int(n)) if k * self.every < total_steps]
        self._weights: dict[int, dict[str, Any]] = {}
        self._loaded: list[tuple[int, ConditionalDCGAN]] | None = None

    def __call__(self, gan: ConditionalDCGAN, state: Any) -> None:
        if state.step in self.steps:
            self._weights[state.step] = copy.deepcopy(gan.sampling_generator_.state_dict())

    def models(self, gan: ConditionalDCGAN) -> list[tuple[int, ConditionalDCGAN]]:
        """``(steps trained, model)`` for every snapshot, oldest first; ``gan`` is the last."""
        if self._loaded is not None:
            return [*self._loaded, (gan.n_steps_, gan)]
        out = []
        per_epoch = max(1, gan.n_steps_ // max(1, gan.n_epochs_))
        for step, weights in sorted(self._weights.items()):
            if step < gan.n_steps_:
                model = copy.deepcopy(gan)
                model.sampling_generator_.load_state_dict(weights)
                epoch = step // per_epoch  # so that n_steps_ / n_epochs_ / history_ say where it was taken
                model._state = TrainState(epoch=epoch, step=step,
                                          history={k: v[:step] for k, v in gan._state.history.items()})
                out.append((step, model))
        return [*out, (gan.n_steps_, gan)]

    def save(self, gan: ConditionalDCGAN, path: str | os.PathLike) -> None:
        """Write each snapshot as a checkpoint beside ``path`` (``<path>-step<s>``)."""
        for step, model in self.models(gan)[:-1]:
            model.save(f"{os.fspath(path)}-step{step}", overwrite=True)

    def load(self, path: str | os.PathLike, device: str) -> bool:
        """Read the snapshots :meth:`save` wrote beside ``path``; False when one is missing."""
        paths = [(step, f"{os.fspath(path)}-step{step}") for step in self.steps]
        if not all(is_checkpoint(p) for _, p in paths):
            return False
        self._loaded = [(step, ConditionalDCGAN.load(p, device=device)) for step, p in paths]
        return True
