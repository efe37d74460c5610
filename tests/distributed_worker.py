"""One rank of the Python-API checks in test_distributed.py; run by torchrun, writes one JSON file per rank.

Each rank writes its own file: two processes printing to one pipe can run their lines
together (a CI run read rank 1's line with rank 0's appended).

Not a test module (pytest collects test_*.py only): torchrun starts it in each process.
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from ganaug import AugmentedDataset, ConditionalDCGAN, SyntheticDataset, load_digits
from ganaug.distributed import context, data_fingerprint


def state_hash(*modules: torch.nn.Module) -> str:
    return data_fingerprint(*[t for m in modules for t in m.state_dict().values()])


def images_hash(dataset) -> str:
    return data_fingerprint(torch.as_tensor(np.stack([np.asarray(dataset[i][0]) for i in range(len(dataset))])))


def main(cache_dir: str, out_dir: str) -> None:
    X, y = load_digits()
    job = context()
    # random_state=None: rank 0's seed is shared, so every rank trains the same model.
    gan = ConditionalDCGAN(max_epochs=1, batch_size=64, width=8, latent_dim=16, verbose=False, device="cpu",
                           train_classifier=False)
    gan.fit(X, y)
    memory = SyntheticDataset(gan, 30)  # random_state=None here too
    disk = SyntheticDataset(gan, 30, random_state=5, storage="disk", cache_dir=cache_dir)
    # Class 3 cut to 5 images: it gets copies of real images besides synthetic ones (random_state=None).
    keep = np.flatnonzero((y[:300] != 3) | (np.cumsum(y[:300] == 3) <= 5))
    augmented = AugmentedDataset(TensorDataset(torch.as_tensor(X[keep]), torch.as_tensor(y[keep])), gan)
    sampler = augmented.sampler(0.5, num_samples=1000)
    draws = [list(sampler)]
    sampler.set_epoch(1)
    draws.append(list(sampler))
    try:
        ConditionalDCGAN(max_epochs=1, batch_size=64, width=8, latent_dim=16, verbose=False, device="cpu",
                         train_classifier=False, sync_batchnorm=True).fit(X[:256], y[:256])
        sync_error = None
    except ValueError as exc:
        sync_error = str(exc)
    try:
        ConditionalDCGAN(max_epochs=1, batch_size=63, width=8, latent_dim=16, verbose=False, device="cpu",
                         train_classifier=False).fit(X[:256], y[:256])
        split_error = None
    except ValueError as exc:
        split_error = str(exc)
    report = json.dumps({
        "rank": job.rank, "world_size": job.world_size,
        "weights": state_hash(gan.generator_, gan.generator_ema_, gan.discriminator_),
        "seed": gan.seed_, "steps": gan.n_steps_, "d_loss": gan.history_["d_loss"],
        "memory": images_hash(memory), "disk": images_hash(disk), "augmented": images_hash(augmented),
        "draws": draws, "copies": int(len(augmented._copies)),
        "sync_batchnorm_error": sync_error, "batch_split_error": split_error,
    })
    Path(out_dir, f"rank{job.rank}.json").write_text(report)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
