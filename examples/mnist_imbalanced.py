"""Train a small CNN on an imbalanced MNIST subset, with and without GAN augmentation.

    python examples/mnist_imbalanced.py                 # ~4 min on a 2-core CPU
    python examples/mnist_imbalanced.py --gan-epochs 1 --steps 20   # smoke run
    python examples/mnist_imbalanced.py --set width=64 --set ema=None  # other GAN settings

Data: the 10,000 MNIST images in ../shared/data/mnist, split in half (stratified, fixed
seed) into a training pool and a real held-out test set. The training set keeps
--majority images of most digits but only --minority of digits 2, 5 and 8. The same CNN
is trained for the same number of steps on:

* real: the imbalanced real images as they are;
* oversampled: the real images, minority classes repeated (a WeightedRandomSampler);
* gan: ganaug's AugmentedDataset with its defaults: every class filled to the majority
  count, at most max_synthetic_per_real synthetic images per real image of a class from a
  ConditionalDCGAN trained on the same imbalanced set, the rest copies of real images;
* gan, all synthetic: the same, every added image synthetic (max_synthetic_per_real=None,
  the default before).

Prints balanced accuracy and mean recall of the minority digits on the real test half.
"""

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np
import torch
from sklearn.metrics import balanced_accuracy_score, recall_score
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset, WeightedRandomSampler

from ganaug import AugmentedDataset, ConditionalDCGAN, load_idx
from ganaug.params import parse_settings

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
MINORITY = (2, 5, 8)


def small_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 64), nn.ReLU(), nn.Linear(64, 10),
    )


def to_tensor(image) -> torch.Tensor:
    """uint8 (H, W) array or tensor -> float (1, H, W) in [0, 1]."""
    return torch.as_tensor(np.asarray(image), dtype=torch.float32)[None] / 255.0


def train_cnn(dataset, steps: int, seed: int, sampler=None) -> nn.Module:
    torch.manual_seed(seed)
    model = small_cnn()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(dataset, batch_size=64, shuffle=sampler is None, sampler=sampler, drop_last=True,
                        generator=torch.Generator().manual_seed(seed))
    step = 0
    while step < steps:
        for xb, yb in loader:
            loss = nn.functional.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if step == steps:
                break
    return model.eval()


@torch.no_grad()
def evaluate(model: nn.Module, X: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    pred = model(torch.from_numpy(X).float()[:, None] / 255.0).argmax(1).numpy()
    minority = recall_score(y, pred, labels=list(MINORITY), average="macro")
    return balanced_accuracy_score(y, pred), minority


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=MNIST)
    p.add_argument("--majority", type=int, default=200)
    p.add_argument("--minority", type=int, default=10)
    p.add_argument("--gan-epochs", type=int, default=30)
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--set", action="append", default=[], metavar="PARAM=VALUE",
                   help="a ConditionalDCGAN parameter for the GAN row, e.g. width=64 or ema=None")
    args = p.parse_args()

    X, y = load_idx(args.data)
    X_pool, X_test, y_pool, y_test = train_test_split(X, y, test_size=0.5, stratify=y, random_state=0)
    rng = np.random.default_rng(0)
    keep = np.concatenate([
        rng.choice(np.where(y_pool == c)[0], args.minority if c in MINORITY else args.majority, replace=False)
        for c in range(10)
    ])
    X_train, y_train = X_pool[keep], y_pool[keep]
    print(f"training images per class: {np.bincount(y_train).tolist()}; test: {len(y_test)} real images")

    start = time.perf_counter()
    gan = ConditionalDCGAN(max_epochs=args.gan_epochs, random_state=0, **parse_settings(args.set))
    gan.fit(X_train, y_train)
    print(f"GAN trained in {time.perf_counter() - start:.0f} s")

    real = TensorDataset(torch.from_numpy(X_train), torch.from_numpy(y_train))
    real_t = TensorDataset(torch.from_numpy(X_train).float()[:, None] / 255.0, torch.from_numpy(y_train))
    weights = 1.0 / np.bincount(y_train)[y_train]

    rows = {"real": [], "oversampled": [], "gan": [], "gan, all synthetic": []}
    for seed in range(args.seeds):
        rows["real"].append(evaluate(train_cnn(real_t, args.steps, seed), X_test, y_test))
        sampler = WeightedRandomSampler(weights, len(y_train), generator=torch.Generator().manual_seed(seed))
        rows["oversampled"].append(evaluate(train_cnn(real_t, args.steps, seed, sampler), X_test, y_test))
        augmented = AugmentedDataset(real, gan, sampling_strategy="auto", transform=to_tensor, random_state=seed)
        rows["gan"].append(evaluate(train_cnn(augmented, args.steps, seed), X_test, y_test))
        every = AugmentedDataset(real, gan, sampling_strategy="auto", max_synthetic_per_real=None, transform=to_tensor,
                                 random_state=seed)
        rows["gan, all synthetic"].append(evaluate(train_cnn(every, args.steps, seed), X_test, y_test))
    print(f"\n{'training data':<20}{'balanced accuracy':>20}{'minority recall':>18}   ({args.seeds} seeds, mean ± sd)")
    for name, results in rows.items():
        r = np.asarray(results) * 100
        print(f"{name:<20}{r[:, 0].mean():>13.1f} ± {r[:, 0].std():.1f}{r[:, 1].mean():>11.1f} ± {r[:, 1].std():.1f}")


if __name__ == "__main__":
    main()
