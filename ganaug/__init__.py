"""ganaug: GAN-based data augmentation with a conditional DCGAN.

>>> from ganaug import ConditionalDCGAN, load_digits
>>> X, y = load_digits()                                   # doctest: +SKIP
>>> gan = ConditionalDCGAN(max_epochs=30, random_state=0).fit(X, y)   # doctest: +SKIP
>>> images, labels = gan.sample({3: 500, 7: 200})          # doctest: +SKIP

The public names are imported on first use, so that ``import ganaug`` (and
``ganaug --help``) does not pay for importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._version import __version__

_PUBLIC = {
    "AugmentedDataset": ".datasets",
    "CheckpointError": ".checkpoint",
    "ConditionalDCGAN": ".gan",
    "SyntheticDataset": ".datasets",
    "load_digits": ".data",
    "load_idx": ".data",
    "load_image_folder": ".data",
}

__all__ = sorted([*_PUBLIC, "__version__"])


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ganaug' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
