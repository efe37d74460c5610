"""What the metrics read, prepared once: :class:`MetricInputs` and :func:`prepare_inputs`.

:func:`prepare_inputs` samples the fakes from the GAN and computes their features and
the judge's class probabilities, and the features of the real sets, once; every metric
of :mod:`ganaug.metrics.scores` is then a function of the bundle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..classifier import DomainClassifier, classifier_outputs
from ..gan import ConditionalDCGAN
from ..sampling import class_index

__all__ = ["FeatureFn", "MetricInputs", "prepare_inputs", "stratified_subsample"]

FeatureFn = Callable[[torch.Tensor], torch.Tensor]


def _shuffled_by_class(labels: np.ndarray, seed: int) -> list[np.ndarray]:
    """Each class's indices in a seeded random order, classes in sorted order."""
    rng = np.random.default_rng(seed)
    return [rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)]


def stratified_subsample(labels: np.ndarray, n_per_class: int, seed: int) -> np.ndarray:
    """Sorted indices of up to ``n_per_class`` items of each class of ``labels``, drawn at random."""
    return np.sort(np.concatenate([idx[:n_per_class] for idx in _shuffled_by_class(labels, seed)]))


def _split_halves(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split of indices into two disjoint halves."""
    shuffled = _shuffled_by_class(labels, seed)
    return (np.concatenate([idx[: len(idx) // 2] for idx in shuffled]),
            np.concatenate([idx[len(idx) // 2 :] for idx in shuffled]))


def _features(fn: FeatureFn | DomainClassifier, images: torch.Tensor) -> torch.Tensor:
    if isinstance(fn, DomainClassifier):
        return classifier_outputs(fn, images)[0]
    with torch.no_grad():
        return torch.cat([torch.as_tensor(fn(images[s : s + 1024])).float().cpu() for s in range(0, len(images), 1024)])


def _gan_labels(gan: ConditionalDCGAN, classes: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``labels`` (indices into ``classes``) as the GAN's class indices; ValueError for a class it does not know."""
    index = class_index(gan.classes_)
    unknown = [c for c in classes.tolist() if c not in index]
    if unknown:
        raise ValueError(f"The real data has classes {unknown} that the GAN does not know ({gan.classes_.tolist()}).")
    return np.asarray([index[c] for c in classes[labels].tolist()], dtype=np.int64)


@dataclass(frozen=True)
class MetricInputs:
    """What the metrics read, prepared once by :func:`prepare_inputs`. Labels are the GAN's class indices."""

    classes: list[Any]  # the GAN's class values: class index i is classes[i]
    judge: DomainClassifier  # the classifier whose verdict is class fidelity
    features_of: FeatureFn | DomainClassifier  # the feature space of the distances
    real: torch.Tensor  # (N, C, H, W) real images the fakes are measured against
    real_labels: np.ndarray  # (N,)
    real_features: torch.Tensor  # (N, D)
    fake: torch.Tensor  # (M, C, H, W)
    fake_labels: np.ndarray  # (M,)
    fake_features: torch.Tensor  # (M, D)
    fake_probs: torch.Tensor  # (M, n_classes): the judge's class probabilities
    seed: int
    # A second real set, disjoint from ``real``: the real-vs-real floor, and CAS's real baseline.
    floor: torch.Tensor | None = None  # (N', C, H, W)
    floor_labels: np.ndarray | None = None  # (N',)
    floor_features: torch.Tensor | None = None  # (N', D)

    @property
    def measured(self) -> list[int]:
        """The class indices that have fakes, in order."""
        return np.unique(self.fake_labels).tolist()

    def name(self, c: int) -> str:
        """Class index -> the report's key for it."""
        return str(self.classes[c])


def prepare_inputs(
    gan: ConditionalDCGAN,
    real: torch.Tensor,
    real_labels: np.ndarray,
    counts: dict[int, int],
    *,
    judge: DomainClassifier,
    feature_extractor: FeatureFn | None = None,
    floor: tuple[torch.Tensor, np.ndarray] | None = None,
    real_features: torch.Tensor | None = None,
    filter: float | None = None,
    random_state: int = 0,
) -> MetricInputs:
    """Sample ``counts`` (``{class index: n}``) fakes from ``gan`` and compute the features once.

    ``real``, ``real_labels``: real images in [-1, 1] and their GAN class indices; ``judge``:
    the classifier for class fidelity (and the feature space unless ``feature_extractor``);
    ``floor``: a disjoint real set (images, class indices); ``real_features``: the features
    of ``real`` if already known; ``filter``: passed to ``gan.sample``.
    """
    classes, index = gan.classes_.tolist(), class_index(gan.classes_)
    features_of: FeatureFn | DomainClassifier = feature_extractor if feature_extractor is not None else judge
    fake, fake_classes = gan.sample({classes[c]: k for c, k in counts.items()}, random_state=random_state,
                                    output="tensor", filter=filter)
    fake_features, fake_probs = classifier_outputs(judge, fake)
    if feature_extractor is not None:
        fake_features = _features(feature_extractor, fake)
    return MetricInputs(
        classes=classes, judge=judge, features_of=features_of,
        real=real, real_labels=real_labels,
        real_features=_features(features_of, real) if real_features is None else real_features,
        fake=fake, fake_labels=np.asarray([index[c] for c in fake_classes.tolist()], dtype=np.int64),
        fake_features=fake_features,
        fake_probs=fake_probs, seed=random_state,
        floor=None if floor is None else floor[0], floor_labels=None if floor is None else floor[1],
        floor_features=None if floor is None else _features(features_of, floor[0]),
    )
