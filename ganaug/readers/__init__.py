"""File readers: image folders, MNIST-format IDX files, ``.npz`` archives and the built-in digits.

Each reader returns ``(X, y)`` numpy arrays as stored (dtype and layout untouched);
:func:`ganaug.data.as_image_data` turns them into the model's in-memory form.

Files are untrusted input: every reader checks what a header declares (image size, IDX
dimensions, ``.npy`` shape and dtype) against the file and against :data:`MAX_ARRAY_BYTES`
before it allocates or decodes, and turns a corrupt file into a ``ValueError`` that names it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .._io import is_builtin_source
from .idx import is_idx_folder, load_idx, read_idx
from .images import IMG_EXTENSIONS, load_image_folder, pil_pixels
from .npz import load_npz

#: The most bytes one array read from a file may declare (an IDX payload, one ``.npz``
#: member). Headers are checked against it before anything is allocated, so a corrupt or
#: hostile header cannot exhaust memory. 4 GiB holds 5 million 28x28 images; for a bigger
#: genuine file raise it (``ganaug.data.MAX_ARRAY_BYTES = 16 * 2**30``, which sets this one).
#: The readers look it up here at each call.
MAX_ARRAY_BYTES = 4 * 2**30

__all__ = [
    "IMG_EXTENSIONS",
    "MAX_ARRAY_BYTES",
    "load_digits",
    "load_idx",
    "load_image_folder",
    "load_npz",
    "load_source",
    "pil_pixels",
    "read_idx",
]


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits as float32 images in [0, 1], shape (1797, 8, 8)."""
    from sklearn.datasets import load_digits as _sk_load_digits

    bunch = _sk_load_digits()
    return (bunch.images / 16.0).astype(np.float32), bunch.target.astype(np.int64)


def load_source(source: str | os.PathLike, **kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
    """Load ``"digits"``, an IDX folder, an ``.npz`` with ``X`` and ``y`` or an image folder.

    A folder is an IDX folder when it holds an IDX images file (told by its magic number)
    and no class sub-folders of images; any other folder is an image folder. ``kwargs`` go
    to :func:`load_image_folder` (``image_size``, ``channels``).
    """
    if is_builtin_source(source):
        return load_digits()
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(
            f"Data {source!s} not found: give an image folder, an .npz file with X and y, "
            "an MNIST IDX folder, or 'digits'."
        )
    if path.is_file() and path.suffix == ".npz":
        return load_npz(path)
    if path.is_dir() and is_idx_folder(path):
        return load_idx(path)
    if path.is_dir():
        return load_image_folder(path, **kwargs)
    raise ValueError(f"Don't know how to read {path}: expected a folder, an .npz file or 'digits'.")
