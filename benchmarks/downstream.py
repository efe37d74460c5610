"""Downstream benchmark: does a classifier get better with GAN samples, and against what?

    python benchmarks/downstream.py --quick             # a subset, said so; < 15 min on a 2-core CPU
    python benchmarks/downstream.py                     # the full protocol (hours on a CPU; resumable)
    python benchmarks/downstream.py --data images/ --profile full   # your data, same protocol
    python benchmarks/downstream.py --device cuda       # the same protocol on a GPU
    python benchmarks/downstream.py --tune              # choose the classifiers' settings on validation splits
    python benchmarks/downstream.py --tune-cap          # choose AugmentedDataset's default cap the same way
    python benchmarks/downstream.py --report-only       # tables and plots from the results on disk

Every setting lives in benchmarks/downstream.json (a profile overrides the values it names).

Protocol. Each dataset is split once (stratified, fixed seed) into a training pool and a
held-out test split. For each regime and seed, the seed draws which classes are rare, the
training subset from the pool, the GAN and the classifier; the rest of the pool is the
run's validation split (GAN quality figures; --tune). Every method is trained on the same
subset with the same classifier, steps and seed, and is scored on the whole test split:
accuracy, balanced accuracy, macro-F1 and minority recall: the mean recall of the classes
with fewer training images than the median class (the rare half; none when balanced). Two classifiers: a small CNN fed
through ganaug's AugmentedDataset (the torch path) and a logistic regression on pixels fed
through GANOverSampler (the sklearn path).

Report: mean and 95% Student-t interval over seeds, and for every GAN row the paired
difference (same seeds) against the non-GAN row of its regime with the best mean balanced
accuracy on the test split. Choosing the best baseline after seeing the test split favours
the baseline, never the GAN.

Results: one JSON file per (dataset, regime, seed) in --results (raw runs with the machine,
torch version, device and git commit), read back on the next start so an interrupted run
resumes where it stopped; a Markdown table and one PNG per dataset and classifier.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import math
import os
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np
import torch
from torch import nn
from torch.utils.data import ConcatDataset, DataLoader, Dataset, TensorDataset

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "downstream.json"
RESULTS = HERE / "results"
# GAN rows whose GANOverSampler(max_synthetic_per_real="auto") trains its own GAN without a
# validation split of the run's training subset and chooses the cap there (config gan_auto);
# the auto_variants rows use that GAN with a fixed setting of their own instead of the choice.
AUTO_METHODS = ("gan-auto", "gan-auto+classical", "gan-auto-cap1+classical", "gan-auto-share0.25+classical",
                "gan-auto-w0.3+classical", "gan-auto-anchored-cap1+classical", "gan-auto-two-stage+classical",
                "gan-auto-mixup-cap1+classical", "gan-auto-snap3", "gan-auto-snap3+classical", "gan-auto-pretrain",
                "gan-auto-pretrain+classical", "gan-auto-fill+classical", "gan-auto-cap1-splitbn+classical",
                "gan-auto-fill-splitbn+classical")
GAN_METHODS = ("gan", "gan+classical", "gan-filter", "gan-classic", "gan-hybrid", "gan-hybrid+classical",
               "gan-hybrid-half+classical", "gan-balanced-labels+classical", "gan-balanced-labels-hybrid+classical",
               *AUTO_METHODS)
# Which GAN of a run each GAN row uses: its config section in downstream.json.
GAN_CONFIGS = {"classic": "gan_classic", "balanced-labels": "gan_balanced_labels", "gan": "gan"}
METRICS = ("accuracy", "balanced_accuracy", "macro_f1", "minority_recall")


def gan_of(method: str) -> str:
    """The key of GAN_CONFIGS whose GAN ``method`` samples from."""
    return "classic" if method == "gan-classic" else "balanced-labels" if "balanced-labels" in method else "gan"


# --------------------------------------------------------------------------- configuration


def merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def load_config(path: Path, profile: str) -> dict:
    raw = json.loads(Path(path).read_text())
    profiles = raw.pop("profiles", {})
    if profile not in profiles:
        raise SystemExit(f"error: profile {profile!r} is not in {path}; profiles: {sorted(profiles)}.")
    cfg = merge({k: v for k, v in raw.items() if not k.startswith("_")}, profiles[profile])
    cfg["profile"] = profile
    return cfg


def run_key(cfg: dict, dataset: str, regime: str) -> str:
    """A hash of every setting that shapes one run (not the list of methods: a new method is
    added to existing results)."""
    shaping = {k: cfg[k] for k in ("split_seed", "min_per_class", "gan", "gan_classic", "quality", "augment",
                                   "cnn", "sklearn")}
    shaping["dataset"] = cfg["datasets"][dataset]
    shaping["regime"] = cfg["regimes"][regime]
    return hashlib.sha256(json.dumps(shaping, sort_keys=True).encode()).hexdigest()[:16]


def machine(device: str) -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=HERE, capture_output=True, text=True,
                                timeout=10).stdout.strip() or None
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--", "ganaug", "benchmarks/downstream.py"],
                                    cwd=HERE.parent, capture_output=True, text=True, timeout=10).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        commit, dirty = None, None
    info = {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version(), "device": device, "git_commit": commit, "git_dirty": dirty}
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


# --------------------------------------------------------------------------- data


def load_dataset(spec: dict) -> tuple[np.ndarray, np.ndarray]:
    """-> uint8 images (N, H, W) or (N, H, W, C) and class indices 0..C-1."""
    from ganaug.data import load_source

    source = spec["source"]
    if source == "sklearn-digits":
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        X = np.rint(X.reshape(-1, 8, 8) * (255 / 16)).astype(np.uint8)  # 17 grey levels, kept exactly
    else:
        path = Path(source)
        if not path.is_absolute() and not path.exists():
            path = HERE.parent / source
        if not path.exists():
            raise FileNotFoundError(f"Dataset {source} not found (looked in {path}).")
        X, y = load_source(path)
        X = np.asarray(X)
        if X.dtype != np.uint8:
            low, high = float(X.min()), float(X.max())
            if X.dtype.kind == "f" and low >= 0 and high <= 1:
                low, high = 0.0, 1.0
            X = np.rint((X.astype(np.float64) - low) / max(high - low, 1e-12) * 255).astype(np.uint8)
    _, y = np.unique(np.asarray(y), return_inverse=True)
    return X, y.astype(np.int64)


def split_pool_test(y: np.ndarray, test_size: float | int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    pool, test = train_test_split(idx, test_size=test_size, stratify=y, random_state=seed)
    return np.sort(pool), np.sort(test)


def regime_counts(regime: dict, n_classes: int, majority: int, min_per_class: int, order: np.ndarray) -> np.ndarray:
    """Training images per class; ``order`` (a seeded permutation) says which classes are rare."""
    kind = regime["kind"]
    if kind == "balanced":
        counts = np.full(n_classes, regime["per_class"])
    elif kind == "step":
        counts = np.full(n_classes, majority)
        counts[order[n_classes - n_classes // 2:]] = round(majority / regime["ratio"])
    elif kind == "exponential":
        counts = np.empty(n_classes, dtype=np.int64)
        counts[order] = np.rint(majority * regime["ratio"] ** (-np.arange(n_classes) / (n_classes - 1)))
    else:
        raise ValueError(f"Unknown regime kind {kind!r}: balanced, step or exponential.")
    return np.maximum(counts, min_per_class).astype(np.int64)


def draw_subset(pool_y: np.ndarray, counts: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """-> positions in the pool of the training subset and of the rest (the validation split)."""
    train = []
    for c, k in enumerate(counts):
        members = np.flatnonzero(pool_y == c)
        if k > len(members):
            raise ValueError(f"class {c} needs {k} images but the pool has {len(members)}")
        train.append(rng.choice(members, k, replace=False))
    train = np.sort(np.concatenate(train))
    return train, np.setdiff1d(np.arange(len(pool_y)), train)


# --------------------------------------------------------------------------- classical augmentation


class Classical:
    """The issue's classical augmentation with albumentations, on uint8 (H, W[, C]) arrays."""

    def __init__(self, cfg: dict, side: int, seed: int) -> None:
        import albumentations as A

        size = side / cfg["reference_size"]
        shift = cfg["translate_px"] / cfg["reference_size"]  # the same share of the side at every size
        steps = [
            A.Affine(rotate=(-cfg["rotate"], cfg["rotate"]), translate_percent=(-shift, shift),
                     scale=tuple(cfg["scale"]), keep_ratio=True, p=1.0),
            # The displacement field is noise blurred by sigma, times alpha: about alpha / sigma
            # pixels. alpha * size**2 and sigma * size keep it the same share of the side.
            A.ElasticTransform(alpha=cfg["elastic_alpha"] * size**2, sigma=cfg["elastic_sigma"] * size,
                               p=cfg["elastic_p"]),
        ]
        try:
            self.compose = A.Compose(steps, seed=seed)
        except TypeError:  # albumentations < 1.4.18 has no per-pipeline seed: seed its global RNGs
            import random

            random.seed(seed)
            np.random.seed(seed % 2**32)
            self.compose = A.Compose(steps)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return self.compose(image=image)["image"]

    def copies(self, X: np.ndarray) -> np.ndarray:
        """One augmented copy of every image of X."""
        return np.stack([self(x) for x in X])


def to_chw_float(image: Any) -> torch.Tensor:
    """uint8 (H, W) or (H, W, C), array or tensor -> float (C, H, W) in [0, 1]."""
    t = torch.as_tensor(np.asarray(image), dtype=torch.float32) / 255.0
    return t[None] if t.ndim == 2 else t.permute(2, 0, 1)


class ImageTransform:
    """What the CNN path's datasets apply to every item: optional classical augmentation,
    then float CHW. Works on real and synthetic items alike (AugmentedDataset's transform)."""

    def __init__(self, classical: Classical | None = None) -> None:
        self.classical = classical

    def __call__(self, image: Any) -> torch.Tensor:
        image = np.asarray(image)
        if self.classical is not None:
            image = self.classical(image)
        return to_chw_float(image)


class ArrayDataset(Dataset):
    def __init__(self, X: np.ndarray, y: np.ndarray, transform: ImageTransform) -> None:
        self.X, self.y, self.transform = X, torch.as_tensor(y), transform

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transform(self.X[i]), self.y[i]


# --------------------------------------------------------------------------- classifiers


def small_cnn(channels: int, height: int, width: int, n_classes: int, batchnorm: bool = False) -> nn.Module:
    """conv16-pool-conv32-pool-fc64; ``batchnorm`` (the cnn_bn classifier) adds BatchNorm after
    each convolution and after the hidden layer."""
    def norm(kind: type, n: int) -> list[nn.Module]:
        return [kind(n)] if batchnorm else []

    return nn.Sequential(
        nn.Conv2d(channels, 16, 3, padding=1), *norm(nn.BatchNorm2d, 16), nn.ReLU(), nn.MaxPool2d(2),  # 16, H/2, W/2
        nn.Conv2d(16, 32, 3, padding=1), *norm(nn.BatchNorm2d, 32), nn.ReLU(), nn.MaxPool2d(2),        # 32, H/4, W/4
        nn.Flatten(), nn.Linear(32 * (height // 4) * (width // 4), 64), *norm(nn.BatchNorm1d, 64), nn.ReLU(),
        nn.Linear(64, n_classes),
    )


class WithSyntheticFlag(Dataset):
    """A dataset's items with a third field: whether the item is synthetic (``synthetic_mask``)."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self.mask = torch.as_tensor(getattr(dataset, "synthetic_mask", np.zeros(len(dataset), bool)))

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> tuple[Any, Any, torch.Tensor]:
        x, y = self.dataset[i]
        return x, y, self.mask[i]


def mixup_loss(model: nn.Module, xb: torch.Tensor, yb: torch.Tensor, synthetic: torch.Tensor, alpha: float,
               generator: torch.Generator) -> torch.Tensor:
    """Cross-entropy where each synthetic image is mixed with a random real image of the batch,
    weight lam ~ Beta(alpha, alpha) on the synthetic one, and its target mixed alike; real
    images are left as they are (mixup between real and synthetic images)."""
    s, r = torch.nonzero(synthetic).flatten(), torch.nonzero(~synthetic).flatten()
    if len(s) == 0 or len(r) == 0:
        return nn.functional.cross_entropy(model(xb), yb)
    partner = r[torch.randint(len(r), (len(s),), generator=generator)]
    lam = torch.distributions.Beta(alpha, alpha).sample((len(s),)).to(xb.device)  # torch's stream, seeded
    xb = xb.clone()
    xb[s] = lam.view(-1, *[1] * (xb.ndim - 1)) * xb[s] + (1 - lam.view(-1, *[1] * (xb.ndim - 1))) * xb[partner]
    per_item = nn.functional.cross_entropy(out := model(xb), yb, reduction="none")
    per_item[s] = lam * per_item[s] + (1 - lam) * nn.functional.cross_entropy(out[s], yb[partner], reduction="none")
    return per_item.mean()


def train_cnn(dataset: Dataset, n_classes: int, shape: tuple[int, int, int], cfg: dict, seed: int, device: str,
              class_weight: np.ndarray | None = None, share: float | None = None,
              warmup: Dataset | None = None, mixup: float | None = None, batchnorm: bool = False,
              split_bn: bool = False) -> nn.Module:
    """The small CNN after cfg["steps"] Adam steps. share: draw batches with the dataset's
    sampler(share) (a fixed synthetic share per class). warmup: spend the first half of the
    steps on this dataset instead (a two-stage schedule), the same optimiser throughout.
    mixup: mix synthetic images with real ones (mixup_loss with this alpha). batchnorm: the
    CNN with BatchNorm; split_bn: synthetic items through their own BatchNorm layers
    (ganaug.split_batchnorm)."""
    from ganaug.split_batchnorm import split_batchnorm, split_forward

    torch.manual_seed(seed)
    model = small_cnn(*shape, n_classes, batchnorm=batchnorm or split_bn).to(device)
    if split_bn:
        split_batchnorm(model)
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    weight = None if class_weight is None else torch.as_tensor(class_weight, dtype=torch.float32, device=device)
    stages = [(warmup, cfg["steps"] // 2), (dataset, cfg["steps"] - cfg["steps"] // 2)] if warmup is not None \
        else [(dataset, cfg["steps"])]
    for stage, (data, steps) in enumerate(stages):
        generator = torch.Generator().manual_seed(seed + stage)
        batch = min(cfg["batch_size"], len(data))
        weighted = share is not None and data is dataset
        loader = DataLoader(WithSyntheticFlag(data) if mixup or split_bn else data, batch_size=batch, drop_last=True,
                            generator=generator, shuffle=not weighted,
                            sampler=data.sampler(share, generator=generator) if weighted else None)
        step = 0
        while step < steps:
            for xb, yb, *flag in loader:
                if mixup:
                    loss = mixup_loss(model, xb.to(device), yb.to(device), flag[0].to(device), mixup, generator)
                elif split_bn:
                    loss = nn.functional.cross_entropy(split_forward(model, xb.to(device), flag[0]), yb.to(device))
                else:
                    loss = nn.functional.cross_entropy(model(xb.to(device)), yb.to(device), weight=weight)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
                if step == steps:
                    break
    return model.eval()


@torch.no_grad()
def cnn_predict(model: nn.Module, X: np.ndarray, device: str) -> np.ndarray:
    out = []
    for start in range(0, len(X), 1024):
        xb = torch.stack([to_chw_float(x) for x in X[start:start + 1024]]).to(device)
        out.append(model(xb).argmax(1).cpu().numpy())
    return np.concatenate(out)


def fit_sklearn(X: np.ndarray, y: np.ndarray, cfg: dict, seed: int, class_weight: str | None = None,
                sample_weight: np.ndarray | None = None):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=cfg["C"], max_iter=cfg["max_iter"], class_weight=class_weight, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X.reshape(len(X), -1) / 255.0, y, sample_weight=sample_weight)


def scores(y_true: np.ndarray, y_pred: np.ndarray, counts: np.ndarray) -> dict[str, float | None]:
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, recall_score

    rare = np.flatnonzero(counts < np.median(counts)).tolist()  # the rare half of a step; the tail of a long tail
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "minority_recall": float(recall_score(y_true, y_pred, labels=rare, average="macro", zero_division=0))
        if rare else None,
    }


# --------------------------------------------------------------------------- GANs


def epochs_for(params: dict, n_images: int, steps: int) -> int:
    """max_epochs that give about ``steps`` optimisation steps on ``n_images`` with the batch
    size ``params`` resolve to, whatever the regime's size."""
    from ganaug import ConditionalDCGAN
    from ganaug.params import resolve
    from ganaug.trainer import steps_per_epoch

    batch = int(resolve(ConditionalDCGAN(**params).get_params(), "batch_size"))
    return math.ceil(steps / steps_per_epoch(n_images, batch))


def train_gan(X: np.ndarray, y: np.ndarray, gan_cfg: dict, seed: int, device: str, X_val: np.ndarray,
              y_val: np.ndarray, quality_cfg: dict, judge: nn.Module | None = None) -> tuple[Any, dict]:
    """Train a ConditionalDCGAN for a fixed number of steps; measure it on the validation split.

    ``judge_fidelity``: the share of samples that ``judge`` (a CNN trained on the whole
    training pool) assigns to their class. ganaug's own figures use the GAN's domain
    classifier, trained on the run's few images: where those are ten per class its
    probabilities stay near chance, so it cannot tell a good generator from a bad one."""
    from ganaug import ConditionalDCGAN
    from ganaug.metrics import evaluate_generator

    if gan_cfg["params"].get("arch") == "classic" and X.shape[1:3] != (28, 28):
        return None, {"skipped": f"the classic preset makes 28x28 images; these are {X.shape[1]}x{X.shape[2]}"}
    gan = ConditionalDCGAN(**gan_cfg["params"], random_state=seed, device=device, verbose=False,
                           max_epochs=epochs_for(gan_cfg["params"], len(y), gan_cfg["steps"]))
    start = time.perf_counter()
    gan.fit(X, y)
    record = {"steps": gan.n_steps_, "epochs": gan.n_epochs_, "seconds": round(time.perf_counter() - start, 2)}
    report = evaluate_generator(gan, X_val, y_val, train_X=X, train_y=y, n_per_class=quality_cfg["n_per_class"],
                                cas_epochs=quality_cfg["cas_epochs"], random_state=seed)
    record["quality"] = {k: report[k] for k in ("class_fidelity_mean", "fid_ratio", "precision", "recall", "cas",
                                                "cas_real_baseline", "real_accuracy")}
    record["quality"]["class_fidelity"] = report["class_fidelity"]
    if judge is not None:
        n = quality_cfg["n_per_class"]
        images, labels = gan.sample({c: n for c in gan.classes_.tolist()}, random_state=seed)
        record["quality"]["judge_fidelity"] = float((cnn_predict(judge, np.asarray(images), device)
                                                     == np.asarray(labels)).mean())
    return gan, record


# --------------------------------------------------------------------------- one run


class Run:
    """One (dataset, regime, seed): the training subset, its GANs, and every method on it."""

    def __init__(self, cfg: dict, data: dict, dataset: str, regime: str, seed: int, device: str,
                 gan_cache: Path | None = None) -> None:
        self.cfg, self.device, self.seed = cfg, device, seed
        self.gan_cache = gan_cache  # GANOverSampler's cache_dir for the auto rows' GAN: later rows reuse it
        X, y, pool, test = data["X"], data["y"], data["pool"], data["test"]
        n_classes = int(y.max()) + 1
        spec = cfg["datasets"][dataset]
        rng = np.random.default_rng([seed, int(hashlib.sha256(regime.encode()).hexdigest()[:8], 16)])
        order = rng.permutation(n_classes)
        majority = data["majority"]
        self.counts = regime_counts(cfg["regimes"][regime], n_classes, majority, cfg["min_per_class"], order)
        train, val = draw_subset(y[pool], self.counts, rng)
        self.X, self.y = X[pool[train]], y[pool[train]]
        self.X_val, self.y_val = X[pool[val]], y[pool[val]]
        self.X_test, self.y_test = X[test], y[test]
        self.n_classes = n_classes
        self.shape = to_chw_float(X[0]).shape
        self.cnn_cfg = spec.get("cnn", cfg["cnn"])
        self.sk_cfg = spec.get("sklearn", cfg["sklearn"])
        self.fill = {c: int(round(cfg["gan"]["fill"] * self.counts.max())) for c in range(n_classes)}
        self._gans: dict[str, tuple[Any, dict]] = {}
        self._auto: dict[tuple, tuple[Any, dict, tuple[np.ndarray, np.ndarray]]] = {}  # by snapshots, pretraining
        self._variant_rows: dict[str, tuple[tuple[np.ndarray, np.ndarray], np.ndarray]] = {}
        self._data = data
        self._filter_failed: str | None = None

    def gan(self, which: str) -> tuple[Any, dict]:
        if which not in self._gans:
            gan_cfg = self.cfg[GAN_CONFIGS[which]]
            self._gans[which] = train_gan(self.X, self.y, gan_cfg, self.seed, self.device, self.X_val, self.y_val,
                                          self.cfg["quality"], pool_judge(self._data, self.cnn_cfg,
                                                                          self.cfg["split_seed"], self.device))
        return self._gans[which]

    def auto_sampler(self, method: str = "gan-auto") -> tuple[Any, dict, tuple[np.ndarray, np.ndarray]]:
        """The run's GANOverSampler(max_synthetic_per_real="auto") fitted on the training subset
        as a user would (the default probe), its record and its output rows; shared by every
        auto row with the same generator_snapshots (config auto_snapshots) and autoencoder
        pretraining (config auto_pretrain: pretrain_epochs as a share of the GAN's epochs)."""
        snapshots = self.cfg["auto_snapshots"].get(method, 1)
        pretrain = self.cfg.get("auto_pretrain", {}).get(method, 0)
        if (snapshots, pretrain) not in self._auto:
            from ganaug.selection import validation_split
            from ganaug.sklearn import GANOverSampler

            gan_cfg = self.cfg["gan_auto"]
            n_train = len(validation_split(self.y, gan_cfg["validation_size"], 0)[0])  # sizes do not depend on the seed
            epochs = epochs_for(gan_cfg["params"], n_train, gan_cfg["steps"])
            sampler = GANOverSampler(**gan_cfg["params"], max_synthetic_per_real="auto", cache_dir=self.gan_cache,
                                     validation_size=gan_cfg["validation_size"], image_shape=self.X.shape[1:],
                                     value_range=(0, 255), random_state=self.seed, device=self.device,
                                     max_epochs=epochs, generator_snapshots=snapshots,
                                     pretrain_epochs=int(round(pretrain * epochs)))
            start = time.perf_counter()
            rows = sampler.fit_resample(self.X.reshape(len(self.X), -1), self.y)
            self._auto[snapshots, pretrain] = sampler, {"steps": sampler.generator_.n_steps_,
                                                        "epochs": sampler.generator_.n_epochs_,
                                                        "pretrain_epochs": sampler.pretrain_epochs,
                                                        "seconds": round(time.perf_counter() - start, 2),
                                                        "selection": sampler.selection_}, rows
        return self._auto[snapshots, pretrain]

    def variant_rows(self, method: str) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
        """An auto_variants row's GANOverSampler output on the training subset (the auto rows'
        GAN, the row's fixed cap and latent_anchors) and its synthetic_mask_; shared by both paths."""
        if method not in self._variant_rows:
            from ganaug.sklearn import GANOverSampler

            how = self.cfg["auto_variants"][method]
            sampler = GANOverSampler(generator=self.auto_sampler()[0].generator_, image_shape=self.X.shape[1:],
                                     value_range=(0, 255), random_state=self.seed, max_synthetic_per_real=how["cap"],
                                     latent_anchors=how.get("latent_anchors"))
            rows = sampler.fit_resample(self.X.reshape(len(self.X), -1), self.y)
            self._variant_rows[method] = (rows, sampler.synthetic_mask_)
        return self._variant_rows[method]

    def augmented(self, gan: Any, transform: ImageTransform, **how: Any) -> Dataset:
        """The run's training subset through ganaug's AugmentedDataset; ``how``: the counts
        (sampling_strategy, max_synthetic_per_real)."""
        from ganaug import AugmentedDataset

        real = TensorDataset(torch.from_numpy(self.X), torch.from_numpy(self.y))
        return AugmentedDataset(real, gan, transform=transform, target_transform=lambda t: torch.as_tensor(t),
                                random_state=self.seed, **how)

    def classical(self, salt: int) -> Classical:
        return Classical(self.cfg["augment"], self.X.shape[1], self.seed * 1000 + salt)

    def ros_index(self) -> np.ndarray:
        from imblearn.over_sampling import RandomOverSampler

        ros = RandomOverSampler(random_state=self.seed).fit_resample(np.arange(len(self.y))[:, None], self.y)
        return ros[0][:, 0]

    def balanced_weights(self) -> np.ndarray:
        return len(self.y) / (self.n_classes * self.counts)

    # ---- the torch path: a CNN fed through torch Datasets (AugmentedDataset for GAN rows)

    def cnn_bn(self, method: str) -> dict:
        """The cnn path with BatchNorm in the CNN (config methods.cnn_bn): every method as on
        the cnn path; an auto_variants row with split_bn gives synthetic items their own layers."""
        return self.cnn(method, batchnorm=True)

    def cnn(self, method: str, batchnorm: bool = False) -> dict:
        classical = self.classical(1) if "classical" in method else None
        transform = ImageTransform(classical)
        weights, n_synthetic, gan_record, train_with = None, 0, None, {}
        if method in ("none", "class-weights", "classical"):
            dataset: Dataset = ArrayDataset(self.X, self.y, transform)
            weights = self.balanced_weights() if method == "class-weights" else None
        elif method in ("ros", "classical+ros"):
            idx = self.ros_index()
            dataset = ArrayDataset(self.X[idx], self.y[idx], transform)
        elif method in self.cfg["auto_variants"]:
            how = self.cfg["auto_variants"][method]
            sampler, gan_record, _ = self.auto_sampler()
            if how.get("latent_anchors") is not None:  # the sampler's anchored rows, as images
                sampled, synthetic = self.variant_rows(method)
                n_synthetic = int(synthetic.sum())
                images = sampled[0].reshape((-1, *self.X.shape[1:])).astype(self.X.dtype)
                dataset = ArrayDataset(images, sampled[1], transform)
            else:
                dataset = self.augmented(sampler.generator_, transform, sampling_strategy="auto",
                                         max_synthetic_per_real=how["cap"])
                n_synthetic = dataset.n_synthetic
            if how.get("two_stage"):  # first half of the steps on ROS (with the row's transform)
                idx = self.ros_index()
                train_with = {"warmup": ArrayDataset(self.X[idx], self.y[idx], transform)}
            else:
                train_with = {"share": how.get("share"), "mixup": how.get("mixup"),
                              "split_bn": how.get("split_bn", False)}
        elif method in AUTO_METHODS:
            sampler, gan_record, _ = self.auto_sampler(method)
            dataset = self.augmented(sampler.generator_, transform, sampling_strategy="auto",
                                     max_synthetic_per_real=sampler.selection_["max_synthetic_per_real"])
            n_synthetic = dataset.n_synthetic
        elif method in GAN_METHODS:
            gan, gan_record = self.gan(gan_of(method))
            if gan is None:
                return {"skipped": gan_record["skipped"]}
            if method in self.cfg["hybrid_caps"]:  # balanced like ROS, a bounded share of it synthetic
                dataset = self.augmented(gan, transform, sampling_strategy="auto",
                                         max_synthetic_per_real=self.cfg["hybrid_caps"][method])
                n_synthetic = dataset.n_synthetic
            elif method == "gan-filter":
                wanted = {c: self.fill[c] - int(k) for c, k in enumerate(self.counts) if self.fill[c] > k}
                try:
                    images, labels = gan.sample(wanted, random_state=self.seed, filter=self.cfg["gan"]["filter"])
                except ValueError as exc:  # too few candidates passed the filter
                    self._filter_failed = str(exc)
                    return {"failed": str(exc)}
                dataset = ConcatDataset([ArrayDataset(self.X, self.y, transform),
                                         ArrayDataset(np.asarray(images), np.asarray(labels), transform)])
                n_synthetic = len(labels)
            else:  # every added image synthetic, as these rows always were (not AugmentedDataset's default cap)
                dataset = self.augmented(gan, transform, sampling_strategy=self.fill, max_synthetic_per_real=None)
                n_synthetic = dataset.n_synthetic
        else:
            raise ValueError(f"Unknown cnn method {method!r}.")
        start = time.perf_counter()
        model = train_cnn(dataset, self.n_classes, self.shape, self.cnn_cfg, self.seed, self.device, weights,
                          batchnorm=batchnorm, **train_with)
        pred = cnn_predict(model, self.X_test, self.device)
        return self._record(pred, time.perf_counter() - start, len(dataset), n_synthetic, gan_record)

    # ---- the sklearn path: a logistic regression on pixels fed through imbalanced-learn samplers

    def sklearn(self, method: str) -> dict:
        from imblearn.over_sampling import SMOTE, RandomOverSampler

        from ganaug.sklearn import GANOverSampler

        flat = self.X.reshape(len(self.X), -1)
        X, y, class_weight, gan_record, n_synthetic, sample_weight = flat, self.y, None, None, 0, None
        if method == "class-weights":
            class_weight = "balanced"
        elif method in ("ros", "classical+ros"):
            X, y = RandomOverSampler(random_state=self.seed).fit_resample(flat, self.y)
        elif method == "smote":
            k = min(5, int(self.counts.min()) - 1)
            # on floats: on uint8 rows imbalanced-learn would truncate the interpolated pixels
            X, y = SMOTE(k_neighbors=k, random_state=self.seed).fit_resample(flat.astype(np.float32), self.y)
        elif method in self.cfg["auto_variants"]:
            _, gan_record, _ = self.auto_sampler()
            (X, y), synthetic = self.variant_rows(method)
            n_synthetic = int(synthetic.sum())
            weight = self.cfg["auto_variants"][method].get("synthetic_weight")
            if weight is not None:  # GANAugmentedClassifier(synthetic_weight)'s weights
                sample_weight = np.where(synthetic, weight, 1.0)
        elif method in AUTO_METHODS:
            sampler, gan_record, (X, y) = self.auto_sampler(method)
            n_synthetic = int(sampler.synthetic_mask_.sum())
        elif method in GAN_METHODS:
            gan, gan_record = self.gan(gan_of(method))
            if gan is None:
                return {"skipped": gan_record["skipped"]}
            if method == "gan-filter" and self._filter_failed:  # same GAN, same threshold: do not redraw
                return {"failed": self._filter_failed}
            cap = self.cfg["hybrid_caps"].get(method)
            sampler = GANOverSampler(generator=gan, sampling_strategy="auto" if cap is not None else self.fill,
                                     image_shape=self.X.shape[1:], value_range=(0, 255), random_state=self.seed,
                                     filter=self.cfg["gan"]["filter"] if method == "gan-filter" else None,
                                     max_synthetic_per_real=cap)
            try:
                X, y = sampler.fit_resample(flat, self.y)
                n_synthetic = int(sampler.synthetic_mask_.sum())
            except ValueError as exc:  # too few candidates passed the filter; anything else is a bug
                if method != "gan-filter":
                    raise
                return {"failed": str(exc)}
        elif method not in ("none", "classical"):
            raise ValueError(f"Unknown sklearn method {method!r}.")
        if "classical" in method:
            images = X.reshape((-1, *self.X.shape[1:])).astype(np.uint8)
            X = np.concatenate([X, self.classical(2).copies(images).reshape(len(X), -1)])
            y = np.concatenate([y, y])
            sample_weight = None if sample_weight is None else np.concatenate([sample_weight, sample_weight])
        start = time.perf_counter()
        model = fit_sklearn(X, y, self.sk_cfg, self.seed, class_weight, sample_weight)
        pred = model.predict(self.X_test.reshape(len(self.X_test), -1) / 255.0)
        return self._record(pred, time.perf_counter() - start, len(y), n_synthetic, gan_record)

    def _record(self, pred: np.ndarray, seconds: float, n_train: int, n_synthetic: int, gan: dict | None) -> dict:
        record = {"metrics": scores(self.y_test, pred, self.counts), "train_seconds": round(seconds, 2),
                  "n_train": int(n_train), "n_synthetic": int(n_synthetic)}
        if gan is not None:
            record["gan"] = gan
        return record


# --------------------------------------------------------------------------- the loop


def prepare(cfg: dict, dataset: str, device: str = "cpu") -> dict | str:
    """The dataset's arrays and split, or why it cannot run."""
    spec = cfg["datasets"][dataset]
    try:
        X, y = load_dataset(spec)
    except (FileNotFoundError, ValueError) as exc:
        return str(exc)
    pool, test = split_pool_test(y, spec["test_size"], cfg["split_seed"])
    smallest = int(np.bincount(y[pool]).min())
    majority = min(spec.get("majority", 200), smallest)
    return {"X": X, "y": y, "pool": pool, "test": test, "majority": majority, "pool_smallest": smallest}


def pool_judge(data: dict, cnn_cfg: dict, split_seed: int, device: str) -> nn.Module:
    """The judge of GAN samples: the benchmark's CNN on the whole pool (never the test split),
    trained once per dataset, on the first GAN that needs it (--tune and skipped regimes never do)."""
    if "judge" not in data:
        X, y, pool = data["X"], data["y"], data["pool"]
        data["judge"] = train_cnn(ArrayDataset(X[pool], y[pool], ImageTransform()), int(y.max()) + 1,
                                  to_chw_float(X[0]).shape, cnn_cfg, split_seed, device)
    return data["judge"]


def cell_path(results: Path, cfg: dict, dataset: str, regime: str, seed: int) -> Path:
    """One file per (dataset, regime, seed, settings): profiles that share settings share runs
    (the quick profile is a subset of the full one), and other settings never overwrite them."""
    safe = regime.replace(":", "_")
    return results / f"downstream-{dataset}-{safe}-s{seed}-{run_key(cfg, dataset, regime)}.json"


def _finite(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None  # JSON has no NaN
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(_finite(obj), indent=1, sort_keys=True, allow_nan=False) + "\n")
    os.replace(tmp, path)


def plan(cfg: dict) -> list[tuple[str, str, int]]:
    """Every (dataset, regime, seed) of the profile; ``regimes_only`` is a list for every
    dataset or a dict of lists per dataset."""
    datasets = cfg.get("datasets_only") or list(cfg["datasets"])
    only = cfg.get("regimes_only") or list(cfg["regimes"])
    if isinstance(only, dict):  # a dataset it does not name (--data) gets the shortest list
        regimes = {d: only.get(d, min(only.values(), key=len)) for d in datasets}
    else:
        regimes = {d: only for d in datasets}
    return [(d, r, s) for d in datasets for r in regimes[d] for s in range(cfg["seeds"])]


def skip_reason(cfg: dict, data: dict, regime: str) -> str | None:
    n_classes = int(data["y"].max()) + 1
    worst = regime_counts(cfg["regimes"][regime], n_classes, data["majority"], cfg["min_per_class"],
                          np.arange(n_classes)).max()
    if worst > data["pool_smallest"]:
        return f"needs {worst} images of a class; the training pool has {data['pool_smallest']} of its smallest class"
    return None


def run_all(cfg: dict, results: Path, device: str, log=print, shard: tuple[int, int] = (0, 1)) -> None:
    """Run every (dataset, regime, seed) of the plan that has no result yet; ``shard=(k, n)``
    runs every n-th, from the k-th, so that n processes can share the plan."""
    from tqdm import tqdm

    results.mkdir(parents=True, exist_ok=True)
    cells = plan(cfg)[shard[0]::shard[1]]
    prepared: dict[str, dict | str] = {}
    todo = []
    for dataset, regime, seed in cells:
        path = cell_path(results, cfg, dataset, regime, seed)
        key = run_key(cfg, dataset, regime)
        existing = json.loads(path.read_text()) if path.exists() else None
        missing = [(c, m) for c, ms in cfg["methods"].items() for m in ms
                   if existing is None or m not in existing.get("runs", {}).get(c, {})]
        if missing:
            todo.append((dataset, regime, seed, path, key, existing, missing))
    log(f"{len(cells)} runs in profile {cfg['profile']!r}; {len(cells) - len(todo)} found in {results}, "
        f"{len(todo)} to do.")
    info = machine(device)
    bar = tqdm(todo, desc="runs", unit="run", dynamic_ncols=True, file=sys.stderr)
    for dataset, regime, seed, path, key, existing, missing in bar:
        bar.set_postfix_str(f"{dataset} {regime} seed {seed}")
        start = time.perf_counter()
        if dataset not in prepared:
            prepared[dataset] = prepare(cfg, dataset, device)
        data = prepared[dataset]
        if isinstance(data, str):  # not a result: the next start tries again
            bar.write(f"{dataset}: cannot run ({data})")
            continue
        record = existing or {"dataset": dataset, "regime": regime, "seed": seed, "key": key, "runs": {},
                              "config": {"dataset": cfg["datasets"][dataset], "regime": cfg["regimes"][regime]}}
        reason = skip_reason(cfg, data, regime)
        if reason is not None:
            record["skipped"] = reason
            record["runs"] = {c: {m: {"skipped": reason} for m in ms} for c, ms in cfg["methods"].items()}
        else:
            run = Run(cfg, data, dataset, regime, seed, device, results / ".gan-cache")
            record["counts"] = run.counts.tolist()
            record["n_test"] = int(len(run.y_test))
            for classifier, method in missing:
                record["runs"].setdefault(classifier, {})[method] = getattr(run, classifier)(method)
        record["machine"] = info
        record["seconds"] = round(time.perf_counter() - start, 1) + (existing or {}).get("seconds", 0)
        record["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        write_json(path, record)
    bar.close()


# --------------------------------------------------------------------------- statistics and report


def t_interval(values: list[float]) -> tuple[float, float]:
    """Mean and half-width of the 95% Student-t interval (nan half-width below 2 values)."""
    from scipy import stats

    v = np.asarray(values, dtype=np.float64)
    if len(v) < 2:
        return float(v.mean()) if len(v) else math.nan, math.nan
    return float(v.mean()), float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))


def summarise(cfg: dict, results: Path) -> tuple[dict, dict]:
    """Every (dataset, classifier, regime, method): per-seed metrics, mean and interval; every
    GAN row's paired difference against the best non-GAN row of its regime. Also returns the
    images per class (sorted) each dataset's regimes had."""
    table: dict = {}
    regime_counts: dict[str, dict[str, list[int]]] = {}
    for dataset, regime, seed in plan(cfg):
        path = cell_path(results, cfg, dataset, regime, seed)
        if not path.exists():
            continue
        cell = json.loads(path.read_text())
        if cell.get("key") != run_key(cfg, dataset, regime):
            continue
        if "counts" in cell:
            # the same sorted counts for every seed: the seed only picks which classes are rare
            regime_counts.setdefault(dataset, {})[regime] = sorted(cell["counts"])
        for classifier, methods in cfg["methods"].items():
            for method in methods:
                run = cell["runs"].get(classifier, {}).get(method)
                if run is None:
                    continue
                entry = table.setdefault(dataset, {}).setdefault(classifier, {}).setdefault(regime, {}).setdefault(
                    method, {"seeds": [], "values": {m: [] for m in METRICS}, "notes": []})
                if "metrics" not in run:
                    entry["notes"].append(f"seed {seed}: " + run.get("skipped", run.get("failed", "?")))
                    continue
                entry["seeds"].append(seed)
                for m in METRICS:
                    entry["values"][m].append(run["metrics"][m])
                if "gan" in run:
                    entry.setdefault("gan_seconds", []).append(run["gan"]["seconds"])
                    entry.setdefault("gan_steps", []).append(run["gan"]["steps"])
                if "selection" in run.get("gan", {}):
                    entry.setdefault("chosen_cap", []).append(run["gan"]["selection"]["max_synthetic_per_real"])
                if "quality" in run.get("gan", {}):
                    entry.setdefault("class_fidelity", []).append(run["gan"]["quality"]["class_fidelity_mean"])
                    if "judge_fidelity" in run["gan"]["quality"]:
                        entry.setdefault("judge_fidelity", []).append(run["gan"]["quality"]["judge_fidelity"])
                    entry.setdefault("fid_ratio", []).append(run["gan"]["quality"]["fid_ratio"])
                    entry.setdefault("recall", []).append(run["gan"]["quality"]["recall"])
                entry.setdefault("n_synthetic", []).append(run["n_synthetic"])
    for dataset in table.values():
        for classifier in dataset.values():
            for regime in classifier.values():
                for entry in regime.values():
                    entry["mean"], entry["ci95"] = {}, {}
                    for m, vals in entry["values"].items():
                        vals = [v for v in vals if v is not None]
                        entry["mean"][m], entry["ci95"][m] = t_interval(vals) if vals else (None, None)
                baselines = {m: e for m, e in regime.items() if m not in GAN_METHODS and e["seeds"]}
                if not baselines:
                    continue
                best = max(baselines, key=lambda m: baselines[m]["mean"]["balanced_accuracy"])
                for method, entry in regime.items():
                    if method not in GAN_METHODS or not entry["seeds"]:
                        continue
                    entry["paired"] = {m: paired_difference(entry, baselines[best], best, m) for m in METRICS}
    return table, regime_counts


def paired_difference(entry: dict, base: dict, base_name: str, metric: str) -> dict:
    """``entry`` minus ``base`` on ``metric``, seed by seed: mean, 95% half-width, n, the differences."""
    by_seed = dict(zip(base["seeds"], base["values"][metric]))
    diffs = [v - by_seed[s] for s, v in zip(entry["seeds"], entry["values"][metric])
             if s in by_seed and v is not None and by_seed[s] is not None]
    mean, hw = t_interval(diffs) if diffs else (None, None)
    return {"baseline": base_name, "mean": mean, "ci95": hw, "n": len(diffs), "diffs": diffs}


def versus_table(cfg: dict, table: dict, baseline: str = "ros") -> list[str]:
    """Every GAN row without classical augmentation against one named baseline (ROS: what a
    user would pick instead), paired balanced accuracy, for the "never worse than ROS" check."""
    rows = [m for m in GAN_METHODS if "classical" not in m and any(m in ms for ms in cfg["methods"].values())]
    lines = [f"GAN rows without classical augmentation against `{baseline}`: paired difference in balanced accuracy "
             "(percentage points, mean ± 95% t-interval; **bold**: the interval excludes 0).", "",
             f"| dataset | classifier | regime | {baseline} | " + " | ".join(f"Δ {m}" for m in rows) + " |",
             "| --- | --- | --- | --- |" + " --- |" * len(rows)]
    for dataset, classifiers in table.items():
        for classifier, regimes in classifiers.items():
            if not set(rows) & set(cfg["methods"].get(classifier, ())):
                continue  # a classifier with none of these rows (cnn_bn: every GAN row with classical)
            for regime, entries in regimes.items():
                base = entries.get(baseline)
                if not base or not base["seeds"]:
                    continue
                cells = []
                for m in rows:
                    if not entries.get(m, {}).get("seeds"):
                        cells.append("n/a")
                        continue
                    cells.append(delta_cell(paired_difference(entries[m], base, baseline, "balanced_accuracy")))
                lines.append(f"| {dataset} | {classifier} | {regime} | "
                             f"{pct(base['mean']['balanced_accuracy'], base['ci95']['balanced_accuracy'])} | "
                             + " | ".join(cells) + " |")
    return lines


def pct(x: float | None, hw: float | None = None, signed: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    s = f"{100 * x:+.1f}" if signed else f"{100 * x:.1f}"
    return s if hw is None or math.isnan(hw) else f"{s} ± {100 * hw:.1f}"


def delta_cell(p: dict, seeds: int | None = None) -> str:
    """A paired difference as a table cell: signed points ± interval, the seed count when
    fewer than ``seeds`` were paired, **bold** when the interval excludes 0."""
    text = pct(p["mean"], p["ci95"], signed=True)
    if seeds is not None and p["n"] < seeds:
        text += f" (n={p['n']})"
    return f"**{text}**" if not math.isnan(p["ci95"]) and abs(p["mean"]) > p["ci95"] else text


def summary_table(cfg: dict, table: dict) -> list[str]:
    """One row per dataset, classifier and regime: the best baseline and every GAN row's paired
    difference in balanced accuracy (the README's table)."""
    gan_rows = [m for m in GAN_METHODS if any(m in ms for ms in cfg["methods"].values())]
    lines = ["Summary: balanced accuracy of the best non-GAN row, and each GAN row's paired difference from it "
             "(percentage points, mean ± 95% t-interval over seeds; **bold**: the interval excludes 0).", "",
             "| dataset | classifier | regime | best baseline | " + " | ".join(f"Δ {m}" for m in gan_rows) + " |",
             "| --- | --- | --- | --- |" + " --- |" * len(gan_rows)]
    for dataset, classifiers in table.items():
        for classifier, regimes in classifiers.items():
            for regime, entries in regimes.items():
                paired = {m: entries.get(m, {}).get("paired", {}).get("balanced_accuracy") for m in gan_rows}
                best = next((p["baseline"] for p in paired.values() if p), None)
                if best is None:
                    continue
                cells = []
                for m in gan_rows:
                    p = paired[m]
                    if not p or p["mean"] is None:
                        cells.append("n/a")
                        continue
                    cells.append(delta_cell(p, cfg["seeds"]))
                e = entries[best]
                lines.append(f"| {dataset} | {classifier} | {regime} | {best} "
                             f"{pct(e['mean']['balanced_accuracy'], e['ci95']['balanced_accuracy'])} | "
                             + " | ".join(cells) + " |")
    return lines


def best_gan_table(cfg: dict, table: dict) -> list[str]:
    """One row per dataset, classifier and regime: the best baseline beside the GAN row with
    the best paired difference. Both are picked on the test split, as the targets of issue 18
    are stated ("the best ganaug configuration beats the best non-GAN row"); picking the GAN
    row this way favours the GAN, as picking the baseline favours the baseline."""
    lines = ["Best GAN row per regime (chosen on the test split, like the best baseline): paired difference in "
             "balanced accuracy, percentage points, mean ± 95% t-interval; **bold**: the interval excludes 0.", "",
             "| dataset | classifier | regime | best baseline | best GAN row | Δ |", "| --- | --- | --- | --- | --- | --- |"]
    for dataset, classifiers in table.items():
        for classifier, regimes in classifiers.items():
            for regime, entries in regimes.items():
                paired = {m: e["paired"]["balanced_accuracy"] for m, e in entries.items()
                          if m in GAN_METHODS and e.get("paired", {}).get("balanced_accuracy")
                          and e["paired"]["balanced_accuracy"]["mean"] is not None}
                if not paired:
                    continue
                method, p = max(paired.items(), key=lambda item: item[1]["mean"])
                e = entries[p["baseline"]]
                lines.append(f"| {dataset} | {classifier} | {regime} | {p['baseline']} "
                             f"{pct(e['mean']['balanced_accuracy'], e['ci95']['balanced_accuracy'])} | {method} | "
                             f"{delta_cell(p)} |")
    return lines


def variants_table(cfg: dict, table: dict, reference: str = "gan-auto-cap1+classical") -> list[str]:
    """The auto_variants rows (issue 18's items 2, 4, 6): the reference (the gan-auto GAN with
    cap 1 and classical augmentation) against the best baseline, and every other variant
    against the reference, seed by seed: what the one technique it adds changes."""
    variants = [m for m in cfg.get("auto_variants", {}) if m != reference]
    if reference not in cfg.get("auto_variants", {}):
        return []
    rows = []
    for dataset, classifiers in table.items():
        for classifier, regimes in classifiers.items():
            for regime, entries in regimes.items():
                ref = entries.get(reference)
                if not ref or not ref.get("seeds") or "paired" not in ref:
                    continue
                versus = ref["paired"]["balanced_accuracy"]
                cells = [f"{delta_cell(versus)} ({versus['baseline']})"]
                for m in variants:
                    e = entries.get(m)
                    cells.append(delta_cell(paired_difference(e, ref, reference, "balanced_accuracy"))
                                 if e and e["seeds"] else "n/a")
                rows.append(f"| {dataset} | {classifier} | {regime} | " + " | ".join(cells) + " |")
    if not rows:
        return []
    return [f"Issue 18's weighting, anchoring and schedule rows, on the gan-auto rows' GAN: `{reference}` against "
            "the best baseline (named), and each other row against it (paired, points, mean ± 95% t-interval; "
            "**bold**: the interval excludes 0; n/a: not on this path).", "",
            f"| dataset | classifier | regime | Δ {reference} | " + " | ".join(f"Δ {m} vs it" for m in variants) + " |",
            "| --- " * (4 + len(variants)) + "|", *rows, ""]


def split_bn_table(cfg: dict, table: dict) -> list[str]:
    """Each auto_variants row with split_bn against the same row with one set of BatchNorm
    layers (its name without "-splitbn"), seed by seed: what the separate layers change."""
    pairs = [(m, m.replace("-splitbn", "")) for m, how in cfg.get("auto_variants", {}).items()
             if how.get("split_bn") and m.replace("-splitbn", "") in cfg["auto_variants"]]
    rows = []
    for dataset, classifiers in table.items():
        for classifier, regimes in classifiers.items():
            for regime, entries in regimes.items():
                cells = [delta_cell(paired_difference(entries[m], entries[shared], shared, "balanced_accuracy"))
                         if entries.get(m, {}).get("seeds") and entries.get(shared, {}).get("seeds") else "n/a"
                         for m, shared in pairs]
                if any(c != "n/a" for c in cells):
                    rows.append(f"| {dataset} | {classifier} | {regime} | " + " | ".join(cells) + " |")
    if not rows:
        return []
    return ["Separate BatchNorm layers for synthetic images: each -splitbn row against the same row with shared "
            "layers (paired, points, mean ± 95% t-interval; **bold**: the interval excludes 0).", "",
            "| dataset | classifier | regime | " + " | ".join(f"Δ {m} vs {shared}" for m, shared in pairs) + " |",
            "| --- " * (3 + len(pairs)) + "|", *rows, ""]


def selection_table(table: dict) -> list[str]:
    """The caps that GANOverSampler(max_synthetic_per_real="auto") chose on each run's own
    validation split (one per seed; the cnn and sklearn rows of a run share them), and what
    its GAN plus the choice cost."""
    rows = []
    for dataset, classifiers in table.items():
        regimes = classifiers.get("sklearn", classifiers.get("cnn", {}))
        for regime, entries in regimes.items():
            e = entries.get("gan-auto", {})
            if e.get("chosen_cap"):
                caps = ", ".join(f"{c:g}" for c in e["chosen_cap"])
                rows.append(f"| {dataset} | {regime} | {caps} | {np.mean(e['gan_seconds']):.0f} |")
    if not rows:
        return []
    return ["max_synthetic_per_real chosen by the gan-auto rows on validation splits of the training subset "
            "(0 = random oversampling), by seed; seconds for the GAN and the choice:", "",
            "| dataset | regime | chosen caps | s |", "| --- | --- | --- | --- |", *rows, ""]


def markdown(cfg: dict, table: dict, info: dict | None, regime_counts: dict) -> str:
    lines = [f"# Downstream benchmark, profile `{cfg['profile']}`", ""]
    if cfg["profile"] != "full":
        runs = sorted({f"{d} {r}" for d, r, _ in plan(cfg)})
        lines += [f"**A subset of the protocol** (profile `{cfg['profile']}`: {cfg['seeds']} seeds of "
                  f"{'; '.join(runs)}): not the full benchmark.", ""]
    if info:
        lines += [f"Machine: {info.get('gpu') or info['cpu']}, {info['cores']} cores, torch {info['torch']} "
                  f"({info['torch_threads']} threads), device {info['device']}, commit "
                  f"{(info.get('git_commit') or '?')[:10]}.", ""]
    lines += summary_table(cfg, table) + [""] + best_gan_table(cfg, table) + [""] + versus_table(cfg, table) + [""]
    lines += selection_table(table) + variants_table(cfg, table) + split_bn_table(cfg, table)
    lines += ["Balanced accuracy on the real test split, % (mean ± 95% t-interval over seeds). "
              "GAN rows: paired difference (percentage points, same seeds) against the best non-GAN row of the "
              "regime, named under it.", ""]
    for dataset, regimes in regime_counts.items():
        parts = []
        for regime, counts in regimes.items():
            parts.append(f"{regime} {counts[-1]}" + (f" to {counts[0]} (1:{counts[-1] / counts[0]:.0f})"
                                                      if counts[0] != counts[-1] else ""))
        lines += [f"Training images per class, {dataset}: " + "; ".join(parts) + ".", ""]
    for dataset, classifiers in table.items():
        for classifier, regimes in classifiers.items():
            names = list(regimes)
            lines += [f"## {dataset}, {classifier}", "", "| method | " + " | ".join(names) + " |",
                      "| --- |" + " --- |" * len(names)]
            methods = [m for m in cfg["methods"][classifier]]
            for method in methods:
                row = [method]
                for r in names:
                    e = regimes[r].get(method)
                    text = pct(e["mean"]["balanced_accuracy"], e["ci95"]["balanced_accuracy"]) if e and e["seeds"] \
                        else "n/a"
                    if e and 0 < len(e["seeds"]) < cfg["seeds"]:
                        text += f" (n={len(e['seeds'])})"
                    row.append(text)
                lines.append("| " + " | ".join(row) + " |")
            for method in methods:
                if method not in GAN_METHODS:
                    continue
                row = [f"Δ {method}"]
                for r in names:
                    p = regimes[r].get(method, {}).get("paired", {}).get("balanced_accuracy")
                    row.append(f"{pct(p['mean'], p['ci95'], signed=True)} vs {p['baseline']}" if p else "n/a")
                lines.append("| " + " | ".join(row) + " |")
            lines += ["", "Minority recall (classes rarer than the largest), macro-F1 and GAN quality, means:", "",
                      "| regime | method | seeds | accuracy | macro-F1 | minority recall | Δ minority recall | "
                      "synthetic | GAN steps | GAN s | judge fidelity | fidelity | Fréchet ratio | recall |",
                      "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
            for r in names:
                for method in methods:
                    e = regimes[r].get(method)
                    if e is None:
                        continue
                    if not e["seeds"]:
                        lines.append(f"| {r} | {method} | 0 | n/a: {e['notes'][0] if e['notes'] else ''} "
                                     "| | | | | | | | | | |")
                        continue
                    p = e.get("paired", {}).get("minority_recall")
                    gm = (lambda k, e=e: f"{np.mean(e[k]):.3g}" if k in e else "")
                    lines.append(
                        f"| {r} | {method} | {len(e['seeds'])} | {pct(e['mean']['accuracy'])} | "
                        f"{pct(e['mean']['macro_f1'])} | {pct(e['mean']['minority_recall'])} | "
                        f"{pct(p['mean'], p['ci95'], signed=True) if p and p['mean'] is not None else ''} | "
                        f"{round(float(np.mean(e['n_synthetic'])))} | {gm('gan_steps')} | {gm('gan_seconds')} | "
                        f"{gm('judge_fidelity')} | "
                        f"{gm('class_fidelity')} | {gm('fid_ratio')} | {gm('recall')} |")
            notes = sorted({n for r in names for e in regimes[r].values() for n in e["notes"]})
            if notes:
                lines += ["", "Not run or failed: " + "; ".join(notes[:12]) + (" …" if len(notes) > 12 else "")]
            lines.append("")
    return "\n".join(lines)


def plot(cfg: dict, table: dict, results: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for dataset, classifiers in table.items():
        for classifier, regimes in classifiers.items():
            balanced = [r for r in regimes if cfg["regimes"][r]["kind"] == "balanced"]
            skewed = [r for r in regimes if cfg["regimes"][r]["kind"] != "balanced"]
            fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
            per_class = [cfg["regimes"][r].get("per_class") for r in balanced]
            gan_methods = [m for m in cfg["methods"][classifier] if m in GAN_METHODS]
            for i, method in enumerate(gan_methods):
                # categories on the right: markers side by side, no line joining unrelated profiles
                offset = (i - (len(gan_methods) - 1) / 2) * 0.08
                for ax, names, xs, style in ((axes[0], balanced, per_class, "-o"),
                                             (axes[1], skewed, [k + offset for k in range(len(skewed))], "o")):
                    pts = [(x, regimes[r][method]["paired"]["balanced_accuracy"]) for x, r in zip(xs, names)
                           if "paired" in regimes[r].get(method, {})]
                    if pts:
                        ax.errorbar([x for x, _ in pts], [100 * p["mean"] for _, p in pts],
                                    yerr=[0 if math.isnan(p["ci95"]) else 100 * p["ci95"] for _, p in pts],
                                    fmt=style, capsize=3, label=method, color=f"C{i}")
            axes[0].set_xscale("log")
            axes[0].set_xticks(per_class, [str(n) for n in per_class])
            axes[0].minorticks_off()
            axes[0].set_xlabel("labelled images per class (balanced)")
            axes[1].set_xticks(range(len(skewed)), skewed)
            axes[1].set_xlabel("imbalance profile")
            axes[0].set_ylabel("balanced accuracy gain over the best baseline (pp)")
            for ax in axes:
                ax.axhline(0, color="grey", lw=0.8)
                ax.grid(alpha=0.3)
            (axes[1] if skewed else axes[0]).legend(fontsize=8)
            fig.suptitle(f"{dataset}, {classifier} ({cfg['profile']}; 95% paired t-intervals)")
            fig.tight_layout()
            path = results / f"downstream-{cfg['profile']}-{dataset}-{classifier}.png"
            fig.savefig(path, dpi=110)
            plt.close(fig)
            paths.append(path)
    return paths


def report(cfg: dict, results: Path, log=print) -> dict:
    table, regime_counts = summarise(cfg, results)
    info = None
    for dataset, regime, seed in plan(cfg):
        path = cell_path(results, cfg, dataset, regime, seed)
        if path.exists():
            info = json.loads(path.read_text()).get("machine")
            break
    text = markdown(cfg, table, info, regime_counts)
    (results / f"downstream-{cfg['profile']}.md").write_text(text)
    write_json(results / f"downstream-{cfg['profile']}-summary.json", {"machine": info, "table": table})
    pngs = plot(cfg, table, results)
    log(text)
    log(f"wrote {results / ('downstream-' + cfg['profile'] + '.md')} and {len(pngs)} plots")
    return table


# --------------------------------------------------------------------------- tuning


def tune(cfg: dict, results: Path, device: str, log=print) -> dict:
    """Pick the CNN's learning rate and the logistic regression's C on validation splits of
    the pools (method 'none', the tune regime), never on the test split."""
    out: dict = {"regime": cfg["tune"]["regime"], "seeds": cfg["tune"]["seeds"], "datasets": {}}
    for dataset in cfg.get("datasets_only") or cfg["datasets"]:
        data = prepare(cfg, dataset, device)
        if isinstance(data, str):
            log(f"{dataset}: skipped ({data})")
            continue
        found: dict = {"cnn_lr": {}, "sklearn_C": {}}
        for k in range(cfg["tune"]["seeds"]):
            run = Run(cfg, data, dataset, cfg["tune"]["regime"], 1000 + k, device)
            X_val, y_val = run.X_val, run.y_val
            for lr in cfg["tune"]["cnn_lr"]:
                model = train_cnn(ArrayDataset(run.X, run.y, ImageTransform()), run.n_classes, run.shape,
                                  {**run.cnn_cfg, "lr": lr}, run.seed, device)
                found["cnn_lr"].setdefault(str(lr), []).append(
                    scores(y_val, cnn_predict(model, X_val, device), run.counts)["balanced_accuracy"])
            for C in cfg["tune"]["sklearn_C"]:
                model = fit_sklearn(run.X, run.y, {**run.sk_cfg, "C": C}, run.seed)
                found["sklearn_C"].setdefault(str(C), []).append(
                    scores(y_val, model.predict(X_val.reshape(len(X_val), -1) / 255.0), run.counts)["balanced_accuracy"])
        best = {name: max(vals, key=lambda v: np.mean(vals[v])) for name, vals in found.items()}
        out["datasets"][dataset] = {"validation_balanced_accuracy": found, "best": best}
        log(f"{dataset}: best cnn lr {best['cnn_lr']}, best C {best['sklearn_C']} "
            f"({json.dumps({n: {v: round(float(np.mean(s)), 4) for v, s in vals.items()} for n, vals in found.items()})})")
    out["machine"] = machine(device)
    results.mkdir(parents=True, exist_ok=True)
    write_json(results / "downstream-tuning.json", out)
    return out


def tune_cap(cfg: dict, results: Path, device: str, log=print) -> dict:
    """Choose AugmentedDataset's default max_synthetic_per_real on validation splits (the rest
    of each run's pool), never on the test split: for each imbalanced regime and seed, the
    CNN is trained on the run's subset balanced with each cap, from the gan-auto rows' GAN
    (cached; it saw neither split), and scored on the validation split. Every cap is paired
    with cap 0 (random oversampling) of the same run."""
    spec = cfg["tune_cap"]
    caps = spec["caps"]
    out: dict = {"caps": caps, "seeds": spec["seeds"], "runs": [], "machine": machine(device)}
    for dataset in cfg.get("datasets_only") or cfg["datasets"]:
        data = prepare(cfg, dataset, device)
        if isinstance(data, str):
            log(f"{dataset}: skipped ({data})")
            continue
        for regime in spec["regimes"]:
            for seed in range(spec["seeds"]):
                run = Run(cfg, data, dataset, regime, seed, device, results / ".gan-cache")
                sampler, _, _ = run.auto_sampler()
                found = {}
                for cap in caps:
                    augmented = run.augmented(sampler.generator_, ImageTransform(), sampling_strategy="auto",
                                              max_synthetic_per_real=cap)
                    model = train_cnn(augmented, run.n_classes, run.shape, run.cnn_cfg, seed, device)
                    found[str(cap)] = scores(run.y_val, cnn_predict(model, run.X_val, device),
                                             run.counts)["balanced_accuracy"]
                out["runs"].append({"dataset": dataset, "regime": regime, "seed": seed,
                                    "validation_balanced_accuracy": found})
                log(f"{dataset} {regime} seed {seed}: " + ", ".join(f"{c} {v:.4f}" for c, v in found.items()))
    out["paired_vs_0"] = {}
    for cap in caps[1:]:
        diffs = [r["validation_balanced_accuracy"][str(cap)] - r["validation_balanced_accuracy"][str(caps[0])]
                 for r in out["runs"]]
        by_regime = {}
        for r, d in zip(out["runs"], diffs):
            by_regime.setdefault(f"{r['dataset']} {r['regime']}", []).append(d)
        out["paired_vs_0"][str(cap)] = {"all": t_interval(diffs),
                                        **{k: t_interval(v) for k, v in by_regime.items()}}
    out["best"] = max(caps, key=lambda c: np.mean([r["validation_balanced_accuracy"][str(c)] for r in out["runs"]]))
    log(f"best cap on validation splits: {out['best']}; paired vs {caps[0]}: "
        + json.dumps({c: [round(x, 4) for x in v["all"]] for c, v in out["paired_vs_0"].items()}))
    results.mkdir(parents=True, exist_ok=True)
    write_json(results / "downstream-tuning-cap.json", out)
    return out


# --------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, default=CONFIG, help="settings file (default: benchmarks/downstream.json)")
    p.add_argument("--profile", default=None, help="a profile of the config (default: full; --quick: quick)")
    p.add_argument("--quick", action="store_true", help="the quick profile: a subset that says so in its output")
    p.add_argument("--data", action="append", default=[], metavar="DIR|FILE.npz",
                   help="run this dataset (any format ganaug reads) instead of the config's datasets")
    p.add_argument("--results", type=Path, default=RESULTS, help="folder of raw runs and reports")
    p.add_argument("--device", default="cpu", help="cpu, cuda, ... (GAN and CNN)")
    p.add_argument("--seeds", type=int, default=None, help="override the number of seeds")
    p.add_argument("--source", action="append", default=[], metavar="NAME=PATH",
                   help="read the config's dataset NAME from PATH (e.g. mnist=/data/mnist on another machine)")
    p.add_argument("--tune", action="store_true", help="choose classifier settings on validation splits, then stop")
    p.add_argument("--tune-cap", action="store_true",
                   help="choose AugmentedDataset's default max_synthetic_per_real on validation splits, then stop")
    p.add_argument("--report-only", action="store_true", help="write tables and plots from the results on disk")
    p.add_argument("--shard", default="0/1", metavar="K/N",
                   help="run every N-th run from the K-th (0-based), for N processes sharing one plan")
    args = p.parse_args(argv)
    cfg = load_config(args.config, args.profile or ("quick" if args.quick else "full"))
    if args.seeds is not None:
        cfg["seeds"] = args.seeds
    for item in args.source:
        name, _, path = item.partition("=")
        if name not in cfg["datasets"] or not path:
            raise SystemExit(f"error: --source wants NAME=PATH with NAME one of {sorted(cfg['datasets'])}, got {item!r}.")
        cfg["datasets"][name]["source"] = path
    if args.data:
        cfg["datasets"] = {Path(d).stem: {"source": str(Path(d).resolve()), "test_size": 0.4} for d in args.data}
        cfg.pop("datasets_only", None)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda but torch sees no CUDA device.")
    if args.tune or args.tune_cap:
        (tune if args.tune else tune_cap)(cfg, args.results, args.device)
        return 0
    try:
        shard = tuple(int(v) for v in args.shard.split("/"))
        if len(shard) != 2 or not 0 <= shard[0] < shard[1]:
            raise ValueError
    except ValueError:
        raise SystemExit(f"error: --shard must be K/N with 0 <= K < N, got {args.shard!r}.") from None
    if not args.report_only:
        run_all(cfg, args.results, args.device, shard=shard)
        if shard[1] > 1:
            return 0  # the report waits for every shard: run --report-only when all are done
    report(cfg, args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
