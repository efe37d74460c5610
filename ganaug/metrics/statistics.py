"""Statistics of feature sets: pure functions of (N, D) arrays, no model involved.

* :func:`frechet_distance` (float64);
* :func:`precision_recall` (Kynkäänniemi et al. 2019) and :func:`density_coverage`
  (Naeem et al. 2020), over k-nearest-neighbour manifolds;
* :func:`nearest_neighbour_distances`, for the memorisation check.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["density_coverage", "frechet_distance", "nearest_neighbour_distances", "precision_recall"]


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
