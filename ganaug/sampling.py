"""From "how many of which class" to generated images.

* :func:`resolve_counts` turns an ``int`` or a ``{class: count}`` mapping into exact
  per-class counts, and :func:`synthetic_counts` turns imbalanced-learn's
  ``sampling_strategy`` (or a synthetic-to-real ratio) into the number of images to add
  per class. These rules live here once; every front end calls them.
* One seed per image (as in StyleGAN2-ADA): image ``i`` of a request is drawn from the
  latent of seed ``seeds[i]``, so any image can be regenerated alone, in any order and any
  batch size, and a request is reproducible from its base seed.
* :func:`iter_generate` runs the generator in batches so that memory stays flat.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from ._io import memory_budget
from .classifier import DomainClassifier, classifier_outputs
from .distributed import broadcast, context
from .fastpath import FastPath

MAX_SEED = 2**63 - 1

__all__ = [
    "base_seed",
    "check_batch_size",
    "check_in_memory",
    "check_seeds",
    "class_index",
    "generate",
    "generate_filtered",
    "iter_generate",
    "labels_from_counts",
    "real_duplicates",
    "latents_from_seeds",
    "resolve_counts",
    "shared_random_state",
    "split_synthetic",
    "synthetic_counts",
]


def class_index(classes: np.ndarray) -> dict[Any, int]:
    """``{class value: its index}`` for a model's sorted ``classes_``."""
    return {c: i for i, c in enumerate(classes.tolist())}


def resolve_counts(request: int | Mapping[Any, int], classes: np.ndarray) -> dict[int, int]:
    """Per-class counts as ``{class index: count}``, in request order.

    ``request`` is either a total (spread evenly over the classes; the first
    ``total % n_classes`` classes get one more) or a mapping ``{class value: count}``.
    """
    n_classes = len(classes)
    if isinstance(request, Mapping):
        index = class_index(classes)
        counts: dict[int, int] = {}
        unknown = [c for c in request if _lookup(index, c) is None]
        if unknown:
            raise ValueError(
                f"Unknown classes {unknown!r}; the model knows {classes.tolist()!r}. "
                "Ask only for classes the model was trained on."
            )
        for c, k in request.items():
            counts[_lookup(index, c)] = _check_count(k, f"count for class {c!r}")  # type: ignore[index]
        return counts
    total = _check_count(request, "the number of samples")
    base, extra = divmod(total, n_classes)
    return {i: base + (1 if i < extra else 0) for i in range(n_classes)}


def synthetic_counts(
    class_counts: Mapping[Any, int],
    sampling_strategy: Any = "auto",
    *,
    ratio: float | None = None,
) -> dict[Any, int]:
    """How many synthetic images to add to each class, for every class in ``class_counts``.

    Parameters
    ----------
    class_counts : mapping
        ``{class: number of real images}``.
    sampling_strategy : str, float, dict or callable, default="auto"
        imbalanced-learn's over-sampling semantics, computed by imbalanced-learn itself:
        ``"auto"``/``"not majority"`` (fill every class but the largest up to it),
        ``"minority"``, ``"not minority"``, ``"all"``, a float (binary problems only:
        desired minority/majority ratio), a dict of target *totals* per class, or a callable
        ``f(y) -> dict``.
    ratio : float, optional
        Instead of a strategy: ``round(ratio * real count)`` synthetic images per class
        (``ratio=1`` doubles every class, keeping its proportions).

    Example
    -------
    >>> synthetic_counts({"a": 100, "b": 10, "c": 40})
    {'a': 0, 'b': 90, 'c': 60}
    >>> synthetic_counts({"a": 100, "b": 10}, ratio=0.5)
    {'a': 50, 'b': 5}
    """
    counts = {c: _check_count(k, f"real count of class {c!r}") for c, k in class_counts.items()}
    if ratio is not None:
        ratio = check_share(ratio, "ratio must be a number >= 0")
        return {c: int(round(ratio * k)) for c, k in counts.items()}
    from imblearn.utils import check_sampling_strategy

    y = labels_from_counts(counts)
    if len(np.unique(y)) < 2:
        raise ValueError(f"Need at least 2 classes with images to balance, got {counts!r}.")
    wanted = check_sampling_strategy(sampling_strategy, y, "over-sampling")
    return {c: int(wanted.get(c, 0)) for c in counts}


def split_synthetic(
    added: Mapping[Any, int], class_counts: Mapping[Any, int], max_synthetic_per_real: float | None
) -> tuple[dict[Any, int], dict[Any, int]]:
    """Split the images each class gets added into ``(synthetic, real copies)``.

    At most ``round(max_synthetic_per_real * real count)`` of a class's added images are
    generated; the rest are random copies of its real images (random oversampling). None
    generates all of them. The totals per class stay what ``added`` asks for, so
    imbalanced-learn's ``sampling_strategy`` semantics hold either way.

    >>> split_synthetic({"a": 0, "b": 90}, {"a": 100, "b": 10}, 2.0)
    ({'a': 0, 'b': 20}, {'a': 0, 'b': 70})
    """
    if max_synthetic_per_real is None:
        return dict(added), dict.fromkeys(added, 0)
    cap = check_share(max_synthetic_per_real, "max_synthetic_per_real must be a number >= 0 or None")
    synthetic = {c: min(int(k), int(round(cap * class_counts[c]))) for c, k in added.items()}
    return synthetic, {c: int(k) - synthetic[c] for c, k in added.items()}


def real_duplicates(labels: np.ndarray, copies: Mapping[Any, int], random_state: int | None) -> np.ndarray:
    """Indices into ``labels`` of the real items to repeat: ``copies[c]`` drawn with
    replacement among class ``c``'s items, class by class in ``copies`` order."""
    rng = np.random.default_rng(random_state)
    labels = np.asarray(labels)
    picks = [rng.choice(np.flatnonzero(labels == c), size=k) for c, k in copies.items() if k > 0]
    return np.concatenate(picks).astype(np.int64) if picks else np.empty(0, np.int64)


def labels_from_counts(counts: Mapping[Any, int]) -> np.ndarray:
    """``{"a": 2, "b": 1}`` -> ``["a", "a", "b"]``: each key repeated its count times, in order.

    >>> labels_from_counts({3: 2, 1: 1}).tolist()
    [3, 3, 1]
    """
    keys = list(counts)
    return np.repeat(np.asarray(keys) if keys else np.empty(0, np.int64), [int(k) for k in counts.values()])


def _lookup(index: dict[Any, int], value: Any) -> int | None:
    if isinstance(value, np.generic):
        value = value.item()
    try:
        return index.get(value)
    except TypeError:  # unhashable
        return None


def check_share(value: Any, message: str, at_most: float | None = None) -> float:
    """``value`` as a float when it is a number >= 0 (not a bool, not NaN) and, with ``at_most``,
    not above it; else ValueError(message)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not value >= 0 \
            or (at_most is not None and value > at_most):
        raise ValueError(f"{message}, got {value!r}.")
    return float(value)


def _check_count(value: Any, what: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{what} must be an integer, got {value!r}.")
    if value < 0:
        raise ValueError(f"{what} must be >= 0, got {value}.")
    return int(value)


def check_batch_size(batch_size: Any) -> int:
    """``batch_size`` as a positive int, or a ValueError that says so."""
    if isinstance(batch_size, (bool, np.bool_)) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer (images per forward pass), got {batch_size!r}.")
    return int(batch_size)


def check_seeds(seeds: Any) -> np.ndarray:
    """Seeds as int64, each an integer in [0, 2**63 - 1], or a clear error."""
    arr = np.asarray(seeds)
    if arr.ndim != 1:
        raise ValueError(f"seeds must be a flat sequence of integers, got shape {arr.shape}.")
    if arr.size and arr.dtype.kind not in "iu":
        if arr.dtype.kind == "O" and all(isinstance(s, (int, np.integer)) and not isinstance(s, bool)
                                         for s in arr.tolist()):
            bad = next((s for s in arr.tolist() if not 0 <= s <= MAX_SEED), None)
            if bad is not None:
                raise ValueError(f"Seed {bad} is out of range: seeds are integers in [0, {MAX_SEED}].")
            return np.asarray(arr.tolist(), dtype=np.int64)  # e.g. a pandas object column of ints
        raise TypeError(f"seeds must be integers in [0, {MAX_SEED}], got dtype {arr.dtype}.")
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) > MAX_SEED):
        bad = int(arr.min()) if int(arr.min()) < 0 else int(arr.max())
        raise ValueError(f"Seed {bad} is out of range: seeds are integers in [0, {MAX_SEED}].")
    return arr.astype(np.int64)


def check_in_memory(n_images: int, image_shape: tuple[int, ...]) -> None:
    """Refuse a request whose images would not fit in memory at once, before allocating.

    ``sample`` returns every image at once (float32 in the model's form, then the caller's
    form): about 8 bytes per pixel value.
    """
    needed = int(n_images) * int(np.prod(image_shape, dtype=np.int64)) * 8
    if needed > memory_budget():
        raise ValueError(
            f"{n_images:,} images of shape {tuple(image_shape)} need about {needed / 2**30:,.1f} GiB at once, more "
            f"than half this machine's memory ({2 * memory_budget() / 2**30:.1f} GiB). Stream them instead: "
            "`ganaug generate RUN --out DIR` writes them to disk in batches, SyntheticDataset generates them "
            "lazily, or call sample() in chunks (random_state=base + offset gives the same images)."
        )


def latents_from_seeds(seeds: np.ndarray | list[int], latent_dim: int) -> torch.Tensor:
    """Latent vectors, one per seed: (len(seeds), latent_dim), float32, on the CPU."""
    seeds = np.asarray(seeds, dtype=np.int64)
    out = torch.empty(len(seeds), latent_dim)
    rng = torch.Generator()
    for i, seed in enumerate(seeds.tolist()):
        rng.manual_seed(seed)
        out[i] = torch.randn(latent_dim, generator=rng)
    return out


def base_seed(
    random_state: int | np.random.RandomState | np.random.Generator | None,
    *,
    limit: int = MAX_SEED,
    default: np.random.Generator | None = None,
) -> int:
    """The base seed of a request: an int is used as given (it must lie in [0, limit]);
    a RandomState or Generator draws one; None draws from ``default`` when given, else as
    scikit-learn's ``check_random_state(None)`` does."""
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        if not 0 <= random_state <= limit:
            raise ValueError(f"random_state must be in [0, {limit}], got {random_state}.")
        return int(random_state)
    if random_state is None and default is not None:
        random_state = default
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**31 - 1))
    from sklearn.utils import check_random_state

    return int(check_random_state(random_state).randint(0, 2**31 - 1))


def shared_random_state(random_state: Any, what: str, *, limit: int = 2**62 - 1) -> Any:
    """``random_state`` as every rank of a distributed job must use it: as given in one
    process or when it is an int; otherwise a seed drawn from it (:func:`base_seed`, at most
    ``limit``) on rank 0 and shared with the other ranks, so that they build the same set."""
    if isinstance(random_state, (int, np.integer)) or not context().active:
        return random_state
    return broadcast(base_seed(random_state, limit=limit), what)


def seeds_for(base_seed: int, n: int) -> np.ndarray:
    """The per-image seeds of a request with base seed ``base_seed``."""
    if not 0 <= base_seed <= MAX_SEED - n:
        raise ValueError(f"Seed {base_seed} out of range [0, {MAX_SEED - n}].")
    return base_seed + np.arange(n, dtype=np.int64)


@torch.no_grad()
def iter_generate(
    generator: nn.Module,
    labels: np.ndarray | torch.Tensor,
    seeds: np.ndarray,
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 512,
    precision: str = "fp32",
    latents: Callable[[np.ndarray, torch.Tensor], torch.Tensor] | None = None,
) -> Iterator[torch.Tensor]:
    """Yield generated images in batches: (B, C, H, W) float32 in [-1, 1] on the CPU.

    ``labels`` are class indices, ``seeds`` one seed per image; both of length N.
    ``precision`` ``"bf16"`` runs the generator under bf16 autocast (resolve ``"auto"``
    with :func:`ganaug.fastpath.resolve_precision` first). ``latents(seeds, labels)``
    replaces the prior latents of :func:`latents_from_seeds`, e.g. a
    :class:`ganaug.anchors.LatentAnchors`.
    """
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    seeds = check_seeds(seeds)
    if labels.shape[0] != seeds.shape[0]:
        raise ValueError(f"Got {labels.shape[0]} labels but {seeds.shape[0]} seeds.")
    batch_size = check_batch_size(batch_size)
    was_training = generator.training
    generator.eval()
    latent_dim = generator.config.latent_dim  # type: ignore[union-attr]
    path = FastPath(torch.device(device), precision=precision)
    try:
        for start in range(0, labels.shape[0], batch_size):
            y = labels[start : start + batch_size]
            z = (latents_from_seeds(seeds[start : start + batch_size], latent_dim) if latents is None
                 else latents(seeds[start : start + batch_size], y)).to(device)
            y = y.to(device)
            with path.autocast():
                images = generator(z, y)
            yield images.float().cpu()
    finally:
        generator.train(was_training)


def generate(
    generator: nn.Module,
    labels: np.ndarray | torch.Tensor,
    seeds: np.ndarray,
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 512,
    precision: str = "fp32",
    latents: Callable[[np.ndarray, torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """All images of :func:`iter_generate` in one (N, C, H, W) tensor."""
    config = generator.config  # type: ignore[union-attr]
    chunks = list(iter_generate(generator, labels, seeds, device=device, batch_size=batch_size, precision=precision,
                                latents=latents))
    if not chunks:
        return torch.empty(0, config.channels, config.height, config.width)
    return torch.cat(chunks)


def generate_filtered(
    generator: nn.Module,
    classifier: DomainClassifier,
    counts: Mapping[int, int],
    base_seed: int,
    threshold: float,
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 512,
    precision: str = "fp32",
    max_draws_per_sample: int = 50,
) -> tuple[torch.Tensor, np.ndarray, np.ndarray, dict[int, float]]:
    """Generate exactly ``counts[c]`` images per class index ``c`` that the domain
    classifier assigns to ``c`` with probability >= ``threshold``.

    Rejected candidates are replaced by new ones (the seed counter runs on from
    ``base_seed`` over the whole request, so the result is reproducible). Returns
    (images (N, C, H, W) in [-1, 1], class indices, seeds, acceptance rate per class).
    Raises ValueError when a class needs more than ``max_draws_per_sample`` candidates
    per accepted image.
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"filter must be a probability threshold in [0, 1], got {threshold!r}.")
    batch_size = check_batch_size(batch_size)  # also when no candidate is drawn (all counts 0)
    next_seed = base_seed
    images, labels, seeds = [], [], []
    acceptance: dict[int, float] = {}
    for c, need in counts.items():
        kept, drawn, accepted, rate = 0, 0, 0, 1.0
        while kept < need:
            if drawn >= max_draws_per_sample * need:
                raise ValueError(
                    f"Only {kept} of {need} samples of class index {c} passed filter={threshold} after {drawn} "
                    f"draws (acceptance {accepted / drawn:.1%}). Lower the threshold or train the GAN longer."
                )
            # Draw enough candidates for the expected acceptance, with some margin.
            m = min(max(16, int(np.ceil((need - kept) / max(rate, 0.02) * 1.2))), max_draws_per_sample * need - drawn)
            cand_seeds = seeds_for(next_seed, m)
            next_seed += m
            cand = generate(generator, np.full(m, c), cand_seeds, device=device, batch_size=batch_size,
                            precision=precision)
            _, probs = classifier_outputs(classifier, cand)
            ok = (probs[:, c] >= threshold).numpy()
            take = np.flatnonzero(ok)[: need - kept]
            images.append(cand[take])
            seeds.append(cand_seeds[take])
            labels.append(np.full(len(take), c, dtype=np.int64))
            drawn += m
            accepted += int(ok.sum())
            kept += len(take)
            rate = max(ok.mean(), 1e-3)
        acceptance[c] = accepted / drawn if drawn else 1.0
    config = generator.config  # type: ignore[union-attr]
    empty = torch.empty(0, config.channels, config.height, config.width)
    return (
        torch.cat(images) if images else empty,
        np.concatenate(labels) if labels else np.empty(0, np.int64),
        np.concatenate(seeds) if seeds else np.empty(0, np.int64),
        acceptance,
    )
