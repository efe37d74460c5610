"""Items/s of iterating an AugmentedDataset through a DataLoader, with 0 and 2 workers.

    python benchmarks/dataset_throughput.py              # MNIST from ../shared/data/mnist

Real set: 2,220 MNIST images (270 per digit, digits 2, 5 and 8 cut to 20); the GAN
(trained one epoch: image quality does not matter for speed) fills every class to
--per-class images (a dict sampling_strategy), 20,000 items in all by default. Timed: one full pass, batch 128, after the dataset is built (so "memory" and
"disk" exclude their one-off generation, reported separately). "lazy" is read in order
(shuffle=False), the access it is meant for, with chunk_size equal to the batch size so
that each worker generates whole chunks of its own batches; the others are shuffled.
Prints one JSON line per configuration.
"""

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import albumentations as A
import numpy as np
import torch
from albumentations.pytorch import ToTensorV2
from torch.utils.data import DataLoader, TensorDataset

from ganaug import AugmentedDataset, ConditionalDCGAN, load_idx

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def to_tensor(image) -> torch.Tensor:
    return torch.as_tensor(np.asarray(image), dtype=torch.float32)[None] / 255.0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=MNIST)
    p.add_argument("--per-class", type=int, default=2000)
    args = p.parse_args()
    X, y = load_idx(args.data)
    keep = np.concatenate([np.where(y == c)[0][: (20 if c in (2, 5, 8) else 270)] for c in range(10)])
    X, y = X[keep], y[keep]
    gan = ConditionalDCGAN(max_epochs=1, random_state=0, verbose=False, device="cpu").fit(X, y)
    real = TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    album = A.Compose([A.Affine(rotate=(-10, 10), p=1.0), A.Normalize(mean=0.5, std=0.5), ToTensorV2()])
    with tempfile.TemporaryDirectory() as cache:
        for storage in ("memory", "disk", "lazy"):
            for transform_name, transform in (("to_tensor", to_tensor), ("albumentations", album)):
                start = time.perf_counter()
                # max_synthetic_per_real=None: measure synthetic items, not copies of real ones
                ds = AugmentedDataset(real, gan, {c: args.per_class for c in range(10)}, max_synthetic_per_real=None,
                                      transform=transform, storage=storage, random_state=0,
                                      cache_dir=Path(cache) / storage, chunk_size=128)
                build = time.perf_counter() - start
                for workers in (0, 2):
                    loader = DataLoader(ds, batch_size=128, shuffle=storage != "lazy", num_workers=workers)
                    start = time.perf_counter()
                    n = sum(len(xb) for xb, _ in loader)
                    seconds = time.perf_counter() - start
                    print(json.dumps({
                        "storage": storage, "transform": transform_name, "workers": workers,
                        "items": n, "synthetic": ds.n_synthetic, "build_s": round(build, 2),
                        "items_per_s": round(n / seconds),
                    }), flush=True)


if __name__ == "__main__":
    main()
