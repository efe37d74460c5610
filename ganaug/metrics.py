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
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .classifier import DomainClassifier, classifier_outputs, train_classifier
from .data import as_image_data
from .gan import ConditionalDCGAN
from .sampling import class_index
from .trainer import TrainState

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

FeatureFn = Callable[[torch.Tensor], torch.Tensor]


# --------------------------------------------------------------------------- statistics


def frechet_distance(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to feature sets ``a`` (N, D) and ``b`` (M, D).

    ``|mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^(1/2))``, in float64. The trace
    of the matrix square root is taken from the eigenvalues of ``S_a^(1/2) S_b S_a^(1/2)``
    (symmetric, so no complex round-off).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"Feature sets must be (N, D) and (M, D), got {a.shape} and {b.shape}.")
    if len(a) < 2 or len(b) < 2:
        raise ValueError("Each feature set needs at least 2 samples for a covariance.")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    vals, vecs = np.linalg.eigh(cov_a)
    sqrt_a = (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T
    middle = sqrt_a @ cov_b @ sqrt_a
    tr_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * tr_sqrt)


def _pairwise(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.cdist(a.double(), b.double())


def _kth_neighbour_radius(x: torch.Tensor, k: int) -> torch.Tensor:
    """Distance of each row of x to its k-th nearest other row."""
    d = _pairwise(x, x)
    return d.kthvalue(k + 1, dim=1).values  # +1: the row itself is at distance 0


def precision_recall(real: np.ndarray | torch.Tensor, fake: np.ndarray | torch.Tensor, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) with k-NN manifolds.

    Precision: share of fakes inside the real manifold (within the k-NN radius of some real
    sample). Recall: share of reals inside the fake manifold.
    """
    real, fake = torch.as_tensor(np.asarray(real)), torch.as_tensor(np.asarray(fake))
    r_real, r_fake = _kth_neighbour_radius(real, k), _kth_neighbour_radius(fake, k)
    d = _pairwise(fake, real)  # (M, N)
    precision = (d <= r_real[None, :]).any(dim=1).double().mean().item()
    recall = (d.T <= r_fake[None, :]).any(dim=1).double().mean().item()
    return precision, recall


def density_coverage(real: np.ndarray | torch.Tensor, fake: np.ndarray | torch.Tensor, k: int = 5) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020).

    Density: how many real k-NN balls contain each fake, divided by k (about 1 when fakes
    are distributed like reals). Coverage: share of real samples whose k-NN ball contains
    at least one fake.
    """
    real, fake = torch.as_tensor(np.asarray(real)), torch.as_tensor(np.asarray(fake))
    radius = _kth_neighbour_radius(real, k)
    inside = _pairwise(fake, real) <= radius[None, :]  # (M, N)
    density = inside.double().sum().item() / (k * len(fake))
    coverage = inside.any(dim=0).double().mean().item()
    return density, coverage


def nearest_neighbour_distances(query: torch.Tensor, reference: torch.Tensor, *, exclude_self: bool = False) -> torch.Tensor:
    """Euclidean distance from each query row to its nearest reference row, in chunks."""
    out = []
    for start in range(0, len(query), 1024):
        d = _pairwise(query[start : start + 1024], reference)
        if exclude_self:
            idx = torch.arange(start, start + len(d))
            d[torch.arange(len(d)), idx] = math.inf
        out.append(d.min(dim=1).values)
    return torch.cat(out) if out else torch.empty(0, dtype=torch.float64)


# --------------------------------------------------------------------------- the prepared inputs


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


# --------------------------------------------------------------------------- one function per metric


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


# --------------------------------------------------------------------------- front ends


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
