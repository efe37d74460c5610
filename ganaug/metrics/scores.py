"""One function per metric: each reads a :class:`~ganaug.metrics.inputs.MetricInputs` and
returns its report keys."""

from __future__ import annotations

import math
from typing import Any

import torch

from ..classifier import classifier_outputs, train_classifier
from .inputs import MetricInputs, _features
from .statistics import (
    density_coverage,
    frechet_distance,
    nearest_neighbour_distances,
    precision_recall,
)

__all__ = [
    "class_fidelity",
    "classification_accuracy_score",
    "density_coverage_scores",
    "frechet_scores",
    "judge_accuracy",
    "memorisation",
    "precision_recall_scores",
]


def frechet_scores(m: MetricInputs) -> dict[str, Any]:
    """``fid`` (fakes vs real); with a floor set also ``fid_floor`` (floor vs real), ``fid_ratio``
    and both per class (classes with at least 2 images in each set)."""
    scores: dict[str, Any] = {"fid": frechet_distance(m.fake_features, m.real_features)}
    if m.floor_features is None or m.floor_labels is None:
        return scores
    scores["fid_floor"] = frechet_distance(m.floor_features, m.real_features)
    scores["fid_ratio"] = scores["fid"] / scores["fid_floor"] if scores["fid_floor"] > 0 else math.inf
    per_class, floor_per_class = {}, {}
    for c in m.measured:
        fk = m.fake_features[m.fake_labels == c]
        s1, s2 = m.floor_features[m.floor_labels == c], m.real_features[m.real_labels == c]
        if min(len(fk), len(s1), len(s2)) >= 2:
            per_class[m.name(c)] = frechet_distance(fk, s2)
            floor_per_class[m.name(c)] = frechet_distance(s1, s2)
    scores["fid_per_class"], scores["fid_floor_per_class"] = per_class, floor_per_class
    return scores


def precision_recall_scores(m: MetricInputs, k: int = 3) -> dict[str, float | None]:
    """:func:`precision_recall` of the fakes against the real set; None for k or fewer real images."""
    precision, recall = precision_recall(m.real_features, m.fake_features, k=k) if len(m.real) > k else (None, None)
    return {"precision": precision, "recall": recall}


def density_coverage_scores(m: MetricInputs, k: int = 5) -> dict[str, float | None]:
    """:func:`density_coverage` of the fakes against the real set; None for k or fewer real images."""
    density, coverage = density_coverage(m.real_features, m.fake_features, k=k) if len(m.real) > k else (None, None)
    return {"density": density, "coverage": coverage}


def class_fidelity(m: MetricInputs) -> dict[str, Any]:
    """The judge's accuracy on the fakes for their class: per class and overall (``class_fidelity_mean``)."""
    pred = m.fake_probs.argmax(1).numpy()
    return {
        "class_fidelity": {m.name(c): float((pred[m.fake_labels == c] == c).mean()) for c in m.measured},
        "class_fidelity_mean": float((pred == m.fake_labels).mean()),
    }


def judge_accuracy(m: MetricInputs) -> dict[str, Any]:
    """The judge's accuracy on the real set, overall and per class.

    Low fidelity next to low real accuracy is a weak judge (a rare class it barely
    learned), not necessarily a weak generator.
    """
    correct = classifier_outputs(m.judge, m.real)[1].argmax(1).numpy() == m.real_labels
    return {
        "real_accuracy": float(correct.mean()),
        "real_accuracy_per_class": {m.name(c): float(correct[m.real_labels == c].mean())
                                    for c in m.measured if (m.real_labels == c).any()},
    }


def classification_accuracy_score(m: MetricInputs, epochs: int = 8) -> dict[str, float]:
    """CAS: one classifier recipe trained on the fakes only (``cas``) and on the floor set
    (``cas_real_baseline``), both tested on the real set."""
    if m.floor is None or m.floor_labels is None:
        raise ValueError("CAS needs a floor set (real images disjoint from the test set) for its baseline.")
    scores = {}
    for key, images, labels in (("cas", m.fake, m.fake_labels), ("cas_real_baseline", m.floor, m.floor_labels)):
        model = train_classifier(images, torch.from_numpy(labels), len(m.classes), epochs=epochs, seed=m.seed)
        scores[key] = float((classifier_outputs(model, m.real)[1].argmax(1).numpy() == m.real_labels).mean())
    return scores


def memorisation(m: MetricInputs, reference: torch.Tensor, source: str) -> dict[str, Any]:
    """Each fake's distance to its nearest ``reference`` image (the training images, described
    by ``source``), in pixels and in features; a near-copy is closer to a reference image than
    99% of reference images are to their own nearest other one."""
    flat_ref, flat_fake = reference.flatten(1), m.fake.flatten(1)
    pixel = nearest_neighbour_distances(flat_fake, flat_ref)
    real_pixel = nearest_neighbour_distances(flat_ref, flat_ref, exclude_self=True)
    threshold = float(torch.quantile(real_pixel, 0.01))
    feat = nearest_neighbour_distances(m.fake_features, _features(m.features_of, reference))
    return {
        "reference": source,
        "pixel_nn_median": float(pixel.median()),
        "real_pixel_nn_median": float(real_pixel.median()),
        "feature_nn_median": float(feat.median()),
        "near_copy_threshold": threshold,
        "near_copy_fraction": float((pixel < threshold).double().mean()),
    }
