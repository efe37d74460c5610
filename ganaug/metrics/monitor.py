"""Quality measured while training: :class:`TrainingMonitor`, a ``fit(monitor=...)`` callback."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ..data import as_image_data
from ..gan import ConditionalDCGAN
from ..trainer import TrainState
from .inputs import _gan_labels, prepare_inputs, stratified_subsample
from .scores import (
    class_fidelity,
    density_coverage_scores,
    frechet_scores,
    precision_recall_scores,
)

__all__ = ["TrainingMonitor"]


class TrainingMonitor:
    """Measure the same fixed sample every few steps: ``ConditionalDCGAN.fit(monitor=...)``.

    Each call generates ``n_per_class`` images per class from fixed seeds (so successive
    records follow the same latents) and compares them, in the domain classifier's
    features, with up to ``n_per_class`` real images per class of ``X``: class fidelity,
    Fréchet distance, precision/recall (k=3) and density/coverage (k=5). On a few hundred
    images the Fréchet distance is biased upwards: compare records with each other, and
    use :func:`evaluate_generator` for the final numbers. Falling recall or coverage while
    fidelity holds is mode collapse; falling fidelity is divergence.

    Parameters
    ----------
    X, y : the training images and labels, in any form ``ConditionalDCGAN.fit`` accepts.
    n_per_class : int, default=50
    on_record : callable, optional
        Called with each record (a dict), e.g. to append it to a log file.

    Example
    -------
    >>> from ganaug import ConditionalDCGAN, load_digits
    >>> X, y = load_digits()
    >>> monitor = TrainingMonitor(X, y, n_per_class=20)
    >>> gan = ConditionalDCGAN(max_epochs=2, random_state=0, verbose=False)
    >>> gan = gan.fit(X, y, monitor=monitor, monitor_every=10)
    >>> [r["step"] for r in monitor.records], sorted(monitor.records[0])[:3]
    ([10, 20], ['class_fidelity', 'coverage', 'density'])
    """

    def __init__(
        self,
        X: Any,
        y: Any = None,
        *,
        n_per_class: int = 50,
        image_shape: tuple[int, ...] | None = None,
        value_range: tuple[float, float] | None = None,
        random_state: int = 0,
        on_record: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        if n_per_class < 6:
            raise ValueError(f"n_per_class must be at least 6 (the k=5 neighbourhoods need them), got {n_per_class}.")
        data = as_image_data(X, y, image_shape=image_shape, value_range=value_range)
        keep = stratified_subsample(data.labels.numpy(), n_per_class, random_state)
        self._images, self._classes, self._labels = data.images[keep], data.classes, data.labels.numpy()[keep]
        self.n_per_class = n_per_class
        self.random_state = random_state
        self.on_record = on_record
        self.records: list[dict[str, Any]] = []
        self._real: tuple[np.ndarray, torch.Tensor] | None = None  # GAN class indices and features, once known

    def __call__(self, gan: ConditionalDCGAN, state: TrainState) -> dict[str, Any]:
        if gan.classifier_ is None:
            raise ValueError("TrainingMonitor measures with the domain classifier: fit with train_classifier=True.")
        labels, features = self._real or (_gan_labels(gan, self._classes, self._labels), None)
        m = prepare_inputs(gan, self._images, labels, dict.fromkeys(range(gan.n_classes_), self.n_per_class),
                           judge=gan.classifier_, real_features=features, random_state=self.random_state)
        self._real = (m.real_labels, m.real_features)
        record: dict[str, Any] = {"step": state.step, "epoch": state.epoch + 1}  # the epoch in progress
        record["class_fidelity"] = class_fidelity(m)["class_fidelity_mean"]
        # On a tiny data set the k-NN metrics are None.
        for metric in (frechet_scores, precision_recall_scores, density_coverage_scores):
            record.update(metric(m))
        record = {k: round(v, 5) if isinstance(v, float) else v for k, v in record.items()}
        self.records.append(record)
        if self.on_record is not None:
            self.on_record(record)
        return record
