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

:func:`evaluate_generator` computes them all into one JSON-serialisable dict;
:class:`TrainingMonitor` measures a small fixed sample while training, so collapse shows
as it happens.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import torch

from .classifier import DomainClassifier, classifier_outputs, train_classifier
from .data import as_image_data
from .gan import ConditionalDCGAN
from .trainer import TrainState

__all__ = [
    "TrainingMonitor",
    "density_coverage",
    "evaluate_generator",
    "format_report",
    "frechet_distance",
    "nearest_neighbour_distances",
    "precision_recall",
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


# --------------------------------------------------------------------------- evaluation


def _split_halves(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split of indices into two disjoint halves."""
    rng = np.random.default_rng(seed)
    first, second = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        half = len(idx) // 2
        first.append(idx[:half])
        second.append(idx[half:])
    return np.concatenate(first), np.concatenate(second)


def _features(fn: FeatureFn | DomainClassifier, images: torch.Tensor) -> torch.Tensor:
    if isinstance(fn, DomainClassifier):
        return classifier_outputs(fn, images)[0]
    with torch.no_grad():
        return torch.cat([torch.as_tensor(fn(images[s : s + 1024])).float().cpu() for s in range(0, len(images), 1024)])


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
    filter: float | None = None,  # noqa: A002
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
    gan._check_is_fitted()
    data = as_image_data(X, y, image_shape=image_shape, value_range=value_range)
    if tuple(data.image_shape) != tuple(gan.image_shape_):
        raise ValueError(f"Real images are {data.image_shape} (C, H, W); the GAN makes {gan.image_shape_}.")
    gan_index = {c: i for i, c in enumerate(gan.classes_.tolist())}
    unknown = [c for c in data.classes.tolist() if c not in gan_index]
    if unknown:
        raise ValueError(f"The real data has classes {unknown} that the GAN does not know ({gan.classes_.tolist()}).")
    labels = np.asarray([gan_index[c] for c in data.classes[data.labels.numpy()].tolist()], dtype=np.int64)
    images = data.images
    if n_per_class is not None:
        rng = np.random.default_rng(random_state)
        keep = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:n_per_class] for c in np.unique(labels)])
        images, labels = images[np.sort(keep)], labels[np.sort(keep)]
    first, second = _split_halves(labels, random_state)
    if min(len(first), len(second)) < 2:
        raise ValueError("Need at least 4 real images (2 per half) to evaluate.")

    classifier = gan.classifier_
    if classifier is None:
        classifier = train_classifier(images[first], torch.from_numpy(labels[first]), gan.n_classes_, seed=random_state)
    features_of: FeatureFn | DomainClassifier = feature_extractor if feature_extractor is not None else classifier

    # Fakes with the class counts of the first real half: same sizes, same proportions.
    counts = {int(c): int(k) for c, k in zip(*np.unique(labels[first], return_counts=True))}
    fake, fake_labels = gan.sample({gan.classes_[c].item(): k for c, k in counts.items()},
                                   random_state=random_state, output="tensor", filter=filter)
    fake_labels = np.asarray([gan_index[c] for c in fake_labels.tolist()], dtype=np.int64)

    f_first, f_second, f_fake = (_features(features_of, t) for t in (images[first], images[second], fake))
    report: dict[str, Any] = {
        "n_real_reference": int(len(second)),
        "n_real_floor": int(len(first)),
        "n_fake": int(len(fake)),
        "feature_space": "custom" if feature_extractor is not None else "domain classifier (penultimate layer)",
    }
    report["fid"] = frechet_distance(f_fake, f_second)
    report["fid_floor"] = frechet_distance(f_first, f_second)
    report["fid_ratio"] = report["fid"] / report["fid_floor"] if report["fid_floor"] > 0 else math.inf
    per_class, floor_per_class = {}, {}
    for c in counts:
        name = str(gan.classes_[c].item())
        fk, s1, s2 = f_fake[fake_labels == c], f_first[labels[first] == c], f_second[labels[second] == c]
        if min(len(fk), len(s1), len(s2)) >= 2:
            per_class[name] = frechet_distance(fk, s2)
            floor_per_class[name] = frechet_distance(s1, s2)
    report["fid_per_class"], report["fid_floor_per_class"] = per_class, floor_per_class
    report["precision"], report["recall"] = precision_recall(f_second, f_fake, k=3)
    report["density"], report["coverage"] = density_coverage(f_second, f_fake, k=5)

    # Class fidelity: the real-data classifier's verdict on each generated class.
    _, fake_probs = classifier_outputs(classifier, fake)
    fake_pred = fake_probs.argmax(1).numpy()
    _, real_probs = classifier_outputs(classifier, images[second])
    report["class_fidelity"] = {
        str(gan.classes_[c].item()): float((fake_pred[fake_labels == c] == c).mean()) for c in counts
    }
    report["class_fidelity_mean"] = float((fake_pred == fake_labels).mean())
    real_correct = real_probs.argmax(1).numpy() == labels[second]
    report["real_accuracy"] = float(real_correct.mean())
    # The same judge on real images of each class: low fidelity next to low real accuracy
    # is a weak judge (a rare class it barely learned), not necessarily a weak generator.
    report["real_accuracy_per_class"] = {
        str(gan.classes_[c].item()): float(real_correct[labels[second] == c].mean())
        for c in counts if (labels[second] == c).any()
    }

    # CAS: same classifier recipe trained on fakes only vs on the first real half; tested on the second.
    test_x, test_y = images[second], labels[second]
    on_fake = train_classifier(fake, torch.from_numpy(fake_labels), gan.n_classes_, epochs=cas_epochs, seed=random_state)
    on_real = train_classifier(images[first], torch.from_numpy(labels[first]), gan.n_classes_, epochs=cas_epochs,
                               seed=random_state)
    report["cas"] = float((classifier_outputs(on_fake, test_x)[1].argmax(1).numpy() == test_y).mean())
    report["cas_real_baseline"] = float((classifier_outputs(on_real, test_x)[1].argmax(1).numpy() == test_y).mean())

    if filter is not None:
        report["filter"] = filter
        report["acceptance_rate"] = {str(c): r for c, r in gan.acceptance_rate_.items()}
    report["memorisation"] = _memorisation(gan, fake, f_fake, features_of, train_X, train_y, images, image_shape, value_range)
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
        rng = np.random.default_rng(random_state)
        labels = data.labels.numpy()
        keep = np.sort(np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:n_per_class]
                                       for c in np.unique(labels)]))
        self._images = data.images[keep]
        self.n_per_class = n_per_class
        self.random_state = random_state
        self.on_record = on_record
        self.records: list[dict[str, Any]] = []
        self._real_features: torch.Tensor | None = None

    def __call__(self, gan: ConditionalDCGAN, state: TrainState) -> dict[str, Any]:
        if gan.classifier_ is None:
            raise ValueError("TrainingMonitor measures with the domain classifier: fit with train_classifier=True.")
        if self._real_features is None:
            self._real_features = classifier_outputs(gan.classifier_, self._images)[0]
        counts = {c: self.n_per_class for c in gan.classes_.tolist()}
        fake, fake_classes = gan.sample(counts, random_state=self.random_state, output="tensor")
        f_fake, probs = classifier_outputs(gan.classifier_, fake)
        index = {c: i for i, c in enumerate(gan.classes_.tolist())}
        target = torch.as_tensor([index[c] for c in fake_classes.tolist()])
        record: dict[str, Any] = {"step": state.step, "epoch": state.epoch + 1}  # the epoch in progress
        record["class_fidelity"] = float((probs.argmax(1) == target).double().mean())
        real = self._real_features
        record["fid"] = frechet_distance(f_fake, real)
        # The k-NN metrics need more than k real images; a tiny data set gets None.
        record["precision"], record["recall"] = precision_recall(real, f_fake, k=3) if len(real) > 3 else (None, None)
        record["density"], record["coverage"] = density_coverage(real, f_fake, k=5) if len(real) > 5 else (None, None)
        record = {k: round(v, 5) if isinstance(v, float) else v for k, v in record.items()}
        self.records.append(record)
        if self.on_record is not None:
            self.on_record(record)
        return record


def _memorisation(
    gan: ConditionalDCGAN,
    fake: torch.Tensor,
    f_fake: torch.Tensor,
    features_of: FeatureFn | DomainClassifier,
    train_X: Any,
    train_y: Any,
    fallback: torch.Tensor,
    image_shape: Any,
    value_range: Any,
) -> dict[str, Any]:
    """Nearest-training-image distances; a near-copy is closer to a training image than 99%
    of training images are to their own nearest other training image."""
    if train_X is not None:
        reference = as_image_data(train_X, train_y, image_shape=image_shape, value_range=value_range).images
        source = "training images"
    else:
        reference, source = fallback, "evaluation images (pass train_X for the training set)"
    flat_ref, flat_fake = reference.flatten(1), fake.flatten(1)
    pixel = nearest_neighbour_distances(flat_fake, flat_ref)
    real_pixel = nearest_neighbour_distances(flat_ref, flat_ref, exclude_self=True)
    threshold = float(torch.quantile(real_pixel, 0.01))
    feat = nearest_neighbour_distances(f_fake, _features(features_of, reference))
    return {
        "reference": source,
        "pixel_nn_median": float(pixel.median()),
        "real_pixel_nn_median": float(real_pixel.median()),
        "feature_nn_median": float(feat.median()),
        "near_copy_threshold": threshold,
        "near_copy_fraction": float((pixel < threshold).double().mean()),
    }


def format_report(report: dict[str, Any]) -> str:
    """The report as a short human-readable text."""
    lines = [
        f"Fréchet distance     {report['fid']:.2f}  (real-vs-real floor {report['fid_floor']:.2f}, "
        f"ratio {report['fid_ratio']:.1f}x)",
        f"precision / recall   {report['precision']:.3f} / {report['recall']:.3f}   (k=3)",
        f"density / coverage   {report['density']:.3f} / {report['coverage']:.3f}   (k=5)",
        f"class fidelity       {report['class_fidelity_mean']:.1%}  (classifier on real images: "
        f"{report['real_accuracy']:.1%})",
        f"CAS                  {report['cas']:.1%}  (same classifier trained on real: {report['cas_real_baseline']:.1%})",
        f"memorisation         {report['memorisation']['near_copy_fraction']:.1%} near-copies; median pixel distance "
        f"to nearest {report['memorisation']['reference'].split(' (')[0]} "
        f"{report['memorisation']['pixel_nn_median']:.2f} (real-to-real {report['memorisation']['real_pixel_nn_median']:.2f})",
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
