"""What a generator is worth: fidelity, diversity, class correctness, usefulness, copying.

All feature-space metrics use the penultimate layer of the domain classifier trained on
the real training images (``gan.classifier_``), or any ``feature_extractor`` you pass
(a callable from (N, C, H, W) images in [-1, 1] to (N, D) features), because Inception
weights cannot be downloaded here and fit photos, not digits.

* :func:`frechet_distance` (float64), overall and per class, always beside its
  real-vs-real floor: the same statistic between two disjoint halves of the real data.
* :func:`precision_recall` (Kynkäänniemi et al. 2019, k=3) and
  :func:`density_coverage` (Naeem et al. 2020, k=5).
* class fidelity: the classifier's accuracy on generated images for their class.
* CAS (Ravuri & Vinyals 2019): a fresh classifier trained on synthetic images only,
  tested on held-out real images, beside the same classifier trained on real images.
* memorisation: each synthetic image's distance to its nearest real training image, in
  pixels and in features, and the share of near-copies.

:func:`prepare_inputs` samples the fakes and computes the features once into
:class:`MetricInputs`; each metric is one function of it returning its report keys.
:func:`evaluate_generator` computes them all into one JSON-serialisable dict;
:class:`TrainingMonitor` measures a small fixed sample while training, so collapse shows
as it happens.

The modules: :mod:`~ganaug.metrics.statistics` (pure functions of feature arrays),
:mod:`~ganaug.metrics.inputs` (the prepared bundle), :mod:`~ganaug.metrics.scores` (one
function per metric), :mod:`~ganaug.metrics.evaluate` and :mod:`~ganaug.metrics.monitor`
(the front ends). Everything public is importable from here.
"""

from __future__ import annotations

from .evaluate import evaluate_generator, format_report

# FeatureFn (the type of a feature_extractor) stays importable from here, outside __all__ as before.
from .inputs import FeatureFn as FeatureFn
from .inputs import MetricInputs, prepare_inputs, stratified_subsample
from .monitor import TrainingMonitor
from .scores import (
    class_fidelity,
    classification_accuracy_score,
    density_coverage_scores,
    frechet_scores,
    judge_accuracy,
    memorisation,
    precision_recall_scores,
)
from .statistics import (
    density_coverage,
    frechet_distance,
    nearest_neighbour_distances,
    precision_recall,
)

__all__ = [
    "MetricInputs",
    "TrainingMonitor",
    "class_fidelity",
    "classification_accuracy_score",
    "density_coverage",
    "density_coverage_scores",
    "evaluate_generator",
    "format_report",
    "frechet_distance",
    "frechet_scores",
    "judge_accuracy",
    "memorisation",
    "nearest_neighbour_distances",
    "precision_recall",
    "precision_recall_scores",
    "prepare_inputs",
    "stratified_subsample",
]
