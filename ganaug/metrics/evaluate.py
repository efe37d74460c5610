"""The whole evaluation of a generator against real images, and its text form.

:func:`evaluate_generator` prepares the inputs once and runs every metric of
:mod:`ganaug.metrics.scores` into one JSON-serialisable dict; :func:`format_report`
prints it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..classifier import train_classifier
from ..data import as_image_data
from ..gan import ConditionalDCGAN
from .inputs import (
    FeatureFn,
    _gan_labels,
    _split_halves,
    prepare_inputs,
    stratified_subsample,
)
from .scores import (
    class_fidelity,
    classification_accuracy_score,
    density_coverage_scores,
    frechet_scores,
    judge_accuracy,
    memorisation,
    precision_recall_scores,
)

__all__ = ["evaluate_generator", "format_report"]


def _evaluation_images(
    gan: ConditionalDCGAN, X: Any, y: Any, n_per_class: int | None, image_shape: Any, value_range: Any, seed: int
) -> tuple[torch.Tensor, np.ndarray]:
    """The real images in [-1, 1] and their GAN class indices, up to ``n_per_class`` of each class."""
    gan._check_is_fitted()
    data = as_image_data(X, y, image_shape=image_shape, value_range=value_range)
    if tuple(data.image_shape) != tuple(gan.image_shape_):
        raise ValueError(f"Real images are {data.image_shape} (C, H, W); the GAN makes {gan.image_shape_}.")
    labels = _gan_labels(gan, data.classes, data.labels.numpy())
    if n_per_class is None:
        return data.images, labels
    keep = stratified_subsample(labels, n_per_class, seed)
    return data.images[keep], labels[keep]


def evaluate_generator(
    gan: ConditionalDCGAN,
    X: Any,
    y: Any = None,
    *,
    train_X: Any = None,
    train_y: Any = None,
    n_per_class: int | None = None,
    feature_extractor: FeatureFn | None = None,
    image_shape: tuple[int, ...] | None = None,
    value_range: tuple[float, float] | None = None,
    cas_epochs: int = 8,
    filter: float | None = None,
    random_state: int = 0,
) -> dict[str, Any]:
    """Measure ``gan`` against real images ``(X, y)`` (ideally held out from its training).

    Parameters
    ----------
    gan : ConditionalDCGAN
        Fitted or loaded.
    X, y : real images and labels, in any form ``ConditionalDCGAN.fit`` accepts.
    train_X, train_y : optional
        The GAN's training images, for the memorisation check (default: ``X``, ``y``).
    n_per_class : int, optional
        Cap on real images used per class (the rest are ignored, for speed).
    feature_extractor : callable, optional
        (N, C, H, W) in [-1, 1] -> (N, D); default: the GAN's domain classifier (or one
        trained on the first half of ``X`` if the GAN has none).
    cas_epochs : int
        Epochs of the classifiers trained for CAS.
    filter : float, optional
        Evaluate ``gan.sample(..., filter=filter)`` output (see ``ConditionalDCGAN.sample``);
        the acceptance rates go into the report.

    Returns
    -------
    dict
        ``fid``, ``fid_floor``, ``fid_ratio``, per-class ``fid_per_class`` and
        ``fid_floor_per_class``, ``precision``, ``recall``, ``density``, ``coverage``,
        ``class_fidelity`` (per class), ``class_fidelity_mean``, ``real_accuracy`` and
        ``real_accuracy_per_class`` (the classifier on real images), ``cas`` and
        ``cas_real_baseline``, ``memorisation``, plus the sample sizes used. How each is
        computed: see the module docstring.
    """
    images, labels = _evaluation_images(gan, X, y, n_per_class, image_shape, value_range, random_state)
    first, second = _split_halves(labels, random_state)
    if min(len(first), len(second)) < 2:
        raise ValueError("Need at least 4 real images (2 per half) to evaluate.")
    judge = gan.classifier_
    if judge is None:
        judge = train_classifier(images[first], torch.from_numpy(labels[first]), gan.n_classes_, seed=random_state)
    # Fakes with the class counts of the first real half: same sizes, same proportions.
    counts = {int(c): int(k) for c, k in zip(*np.unique(labels[first], return_counts=True))}
    m = prepare_inputs(gan, images[second], labels[second], counts, judge=judge, feature_extractor=feature_extractor,
                       floor=(images[first], labels[first]), filter=filter, random_state=random_state)
    report: dict[str, Any] = {
        "n_real_reference": len(second),
        "n_real_floor": len(first),
        "n_fake": len(m.fake),
        "feature_space": "custom" if feature_extractor is not None else "domain classifier (penultimate layer)",
    }
    for metric in (frechet_scores, precision_recall_scores, density_coverage_scores, class_fidelity, judge_accuracy):
        report.update(metric(m))
    report.update(classification_accuracy_score(m, epochs=cas_epochs))
    if filter is not None:
        report["filter"] = filter
        report["acceptance_rate"] = {str(c): r for c, r in gan.acceptance_rate_.items()}
    if train_X is not None:
        reference = as_image_data(train_X, train_y, image_shape=image_shape, value_range=value_range).images
        report["memorisation"] = memorisation(m, reference, "training images")
    else:
        report["memorisation"] = memorisation(m, images, "evaluation images (pass train_X for the training set)")
    return report


def format_report(report: dict[str, Any]) -> str:
    """The report as a short human-readable text."""
    mem = report["memorisation"]
    lines = [
        (f"Fréchet distance     {report['fid']:.2f}  (real-vs-real floor {report['fid_floor']:.2f}, "
         f"ratio {report['fid_ratio']:.1f}x)"),
        f"precision / recall   {report['precision']:.3f} / {report['recall']:.3f}   (k=3)",
        f"density / coverage   {report['density']:.3f} / {report['coverage']:.3f}   (k=5)",
        (f"class fidelity       {report['class_fidelity_mean']:.1%}  (classifier on real images: "
         f"{report['real_accuracy']:.1%})"),
        f"CAS                  {report['cas']:.1%}  (same classifier trained on real: {report['cas_real_baseline']:.1%})",
        (f"memorisation         {mem['near_copy_fraction']:.1%} near-copies; median pixel distance to nearest "
         f"{mem['reference'].split(' (')[0]} {mem['pixel_nn_median']:.2f} "
         f"(real-to-real {mem['real_pixel_nn_median']:.2f})"),
        "",
        f"{'class':<12}{'fidelity':>10}{'judge on real':>15}{'FD':>10}{'FD floor':>10}",
    ]
    for name, fid in report["class_fidelity"].items():
        real = report["real_accuracy_per_class"].get(name, float("nan"))
        fd = report["fid_per_class"].get(name, float("nan"))
        floor = report["fid_floor_per_class"].get(name, float("nan"))
        lines.append(f"{name:<12}{fid:>10.1%}{real:>15.1%}{fd:>10.2f}{floor:>10.2f}")
    lines.append(
        f"\n{report['n_fake']} generated vs {report['n_real_reference']} real images; features: {report['feature_space']}"
    )
    return "\n".join(lines)
