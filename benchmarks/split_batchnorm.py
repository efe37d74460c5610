"""Separate BatchNorm statistics for synthetic images (issue 18, item 2): does a CNN with
BatchNorm use GAN images better when they get their own BatchNorm layers?

    python benchmarks/split_batchnorm.py                 # 5 draws, ~15 min on a 2-core CPU
    python benchmarks/split_batchnorm.py --draws 2 --steps 200

The MNIST example's protocol (../shared/data/mnist split in half, stratified, seed 0; the
first half is the pool, the second the test set; digits 2, 5, 8 at 10 training images and
the others at 200, drawn per draw; the GAN at its defaults, trained once per draw on the
training images). The classifier is a small CNN with BatchNorm after each convolution
and after the hidden layer, trained for --steps steps of batch 64 with Adam; every row
balances the classes with a WeightedRandomSampler (each class drawn equally often, each
of its items equally likely) and puts the same small random affine on every image.

Rows: random oversampling (the real images only); each rare digit filled with GAN images
to 3x and to 10x its real count (2 and 9 synthetic images per real one), with one set of
BatchNorm layers for all images and with ``ganaug.split_batchnorm`` (synthetic items
through their own layers; the test images, real, through the real ones).

Writes benchmarks/results/split-batchnorm.json (every draw's balanced accuracy) and
split-batchnorm.md (means and paired 95% t-intervals against random oversampling and
of the split against the shared layers). Needs ../shared/data/mnist.
"""

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np
import torch
from downstream import machine, small_cnn, t_interval  # benchmarks/ is on sys.path when this script runs
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset, WeightedRandomSampler
from torchvision.transforms import v2

from ganaug import AugmentedDataset, ConditionalDCGAN, load_idx
from ganaug.split_batchnorm import WithSource, split_batchnorm, split_forward

HERE = Path(__file__).resolve().parent
MNIST = HERE.parent.parent / "shared" / "data" / "mnist"
RARE = (2, 5, 8)
N_RARE, N_COMMON = 10, 200
AFFINE = v2.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1))


def to_tensor(image) -> torch.Tensor:
    return AFFINE(torch.as_tensor(np.asarray(image), dtype=torch.float32)[None] / 255.0)


class RealOnly(Dataset):
    """The real images with the affine, flagged real (the ROS row)."""

    def __init__(self, real: Dataset) -> None:
        self.real = real

    def __len__(self) -> int:
        return len(self.real)

    def __getitem__(self, i: int):
        x, y = self.real[i]
        return to_tensor(x), y, False


def balanced_weights(labels: np.ndarray) -> torch.Tensor:
    counts = {c: int((labels == c).sum()) for c in np.unique(labels)}
    return torch.as_tensor([1.0 / counts[c] for c in labels], dtype=torch.double)


def fit_score(dataset: Dataset, labels: np.ndarray, split: bool, seed: int, steps: int, test) -> float:
    torch.manual_seed(seed)
    model = small_cnn(1, 28, 28, 10, batchnorm=True)  # the downstream benchmark's cnn_bn classifier
    if split:
        split_batchnorm(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    sampler = WeightedRandomSampler(balanced_weights(labels), len(labels),
                                    generator=torch.Generator().manual_seed(seed))
    loader = DataLoader(dataset, batch_size=64, sampler=sampler, drop_last=True)
    step = 0
    while step < steps:
        for x, y, synthetic in loader:
            logits = split_forward(model, x, synthetic) if split else model(x)
            loss = nn.functional.cross_entropy(logits, torch.as_tensor(y).long())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            if step == steps:
                break
    X_test, y_test = test
    with torch.no_grad():
        predicted = model.eval()(torch.from_numpy(X_test).float()[:, None] / 255.0).argmax(1).numpy()
    return float(balanced_accuracy_score(y_test, predicted))


def describe(info: dict | str) -> str:
    """downstream.machine()'s record in words (results written before it was used hold a string)."""
    if isinstance(info, str):
        return info
    return f"{info['cpu']}, {info['cores']} cores, torch {info['torch']} ({info['torch_threads']} threads)"


def report(result: dict) -> str:
    rows = result["rows"]
    lines = ["# Separate BatchNorm statistics for synthetic images (benchmarks/split_batchnorm.py)", "",
             f"MNIST, digits 2, 5, 8 at {N_RARE} training images and the others at {N_COMMON}; a CNN with "
             f"BatchNorm, {result['steps']} steps; balanced accuracy on the other half of the MNIST test set "
             f"(5,000 images), {len(rows['ros'])} draws. Machine: {describe(result['machine'])}.", "",
             "| row | balanced accuracy | vs ROS (paired) | split vs shared (paired) |", "| --- | --- | --- | --- |"]
    def paired(values: list[float], base: str) -> str:  # points, mean ± half-width of the differences
        return "{:+.1f} ± {:.1f}".format(*(100 * x for x in t_interval(np.asarray(values) - np.asarray(rows[base]))))

    for name, values in rows.items():
        mean, half = t_interval(values)
        vs = "" if name == "ros" else paired(values, "ros")
        own = paired(values, name.replace("-split", "-shared")) if name.endswith("-split") else ""
        lines.append(f"| {name} | {100 * mean:.1f} ± {100 * half:.1f} | {vs} | {own} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--draws", type=int, default=5)
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--out", type=Path, default=HERE / "results" / "split-batchnorm.json")
    args = p.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    X, y = load_idx(MNIST)
    X_pool, X_test, y_pool, y_test = train_test_split(X, y, test_size=0.5, stratify=y, random_state=0)
    rows: dict[str, list[float]] = {}
    gan_seconds = []
    for draw in range(args.draws):
        rng = np.random.default_rng(draw)
        keep = np.concatenate([rng.choice(np.where(y_pool == c)[0], N_RARE if c in RARE else N_COMMON, replace=False)
                               for c in range(10)])
        X_train, y_train = X_pool[keep], y_pool[keep].astype(np.int64)
        real = TensorDataset(torch.from_numpy(X_train), torch.from_numpy(y_train))
        started = time.perf_counter()
        gan = ConditionalDCGAN(random_state=draw, verbose=False).fit(X_train, y_train)
        gan_seconds.append(time.perf_counter() - started)
        rows.setdefault("ros", []).append(fit_score(RealOnly(real), y_train, False, draw, args.steps, (X_test, y_test)))
        for fill in (3, 10):
            augmented = AugmentedDataset(real, gan, sampling_strategy={c: fill * N_RARE for c in RARE},
                                         max_synthetic_per_real=None, transform=to_tensor, random_state=draw)
            for split in (False, True):
                name = f"gan-{fill}x-{'split' if split else 'shared'}"
                rows.setdefault(name, []).append(fit_score(WithSource(augmented), augmented.targets, split, draw,
                                                           args.steps, (X_test, y_test)))
        print(f"draw {draw}: " + ", ".join(f"{k} {v[-1]:.3f}" for k, v in rows.items()), flush=True)
    result = {"steps": args.steps, "rows": rows, "gan_seconds": gan_seconds,
              "machine": machine("cpu")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    text = report(result)
    args.out.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
