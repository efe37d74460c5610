"""ganaug: GAN-based data augmentation with a conditional DCGAN.

>>> from ganaug import ConditionalDCGAN, load_digits
>>> X, y = load_digits()                                   # doctest: +SKIP
>>> gan = ConditionalDCGAN(max_epochs=30, random_state=0).fit(X, y)   # doctest: +SKIP
>>> images, labels = gan.sample({3: 500, 7: 200})          # doctest: +SKIP
"""

from ._version import __version__
from .checkpoint import CheckpointError
from .data import load_digits, load_idx, load_image_folder
from .datasets import AugmentedDataset, SyntheticDataset
from .gan import ConditionalDCGAN

__all__ = [
    "AugmentedDataset",
    "CheckpointError",
    "ConditionalDCGAN",
    "__version__",
    "load_digits",
    "load_idx",
    "load_image_folder",
    "SyntheticDataset",
]
