"""MNIST-format IDX files, gzipped or not: headers checked against the file and a memory bound before any data."""

from __future__ import annotations

import gzip
import math
import os
import zlib
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from .._io import readinto_all
from .images import IMG_EXTENSIONS

__all__ = ["is_idx_folder", "load_idx", "read_idx"]

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_IDX_MAX_NDIM = 4  # images are (N, H, W) or (N, H, W, C), labels (N,)
_IDX_ERRORS = (OSError, EOFError, zlib.error)  # what gzip and the OS raise on a damaged file


def _max_array_bytes() -> int:
    """The bound :data:`ganaug.readers.MAX_ARRAY_BYTES` holds now (read at each call: users raise it)."""
    # Imported at call time: the package is initialised by then, and users may have raised it.
    from . import MAX_ARRAY_BYTES

    return MAX_ARRAY_BYTES


@dataclass(frozen=True)
class _IdxHeader:
    path: Path
    gzipped: bool
    dtype: np.dtype
    dims: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        return math.prod(self.dims) * self.dtype.itemsize

    @property
    def offset(self) -> int:
        return 4 + 4 * len(self.dims)


def _open_idx(path: Path) -> tuple[IO[bytes], bool]:
    """The file, decompressed when it is gzip (told by its magic bytes, not its name)."""
    with open(path, "rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    return (gzip.open(path, "rb") if gzipped else open(path, "rb")), gzipped


def _is_idx_magic(head: bytes) -> bool:
    return len(head) == 4 and head[0] == 0 and head[1] == 0 and head[2] in _IDX_DTYPES and head[3] > 0


def _idx_ndim(path: Path) -> int | None:
    """The number of dimensions the IDX file ``path`` declares, or None when it is not one."""
    try:
        f, _ = _open_idx(path)
        with f:
            head = f.read(4)
    except _IDX_ERRORS:
        return None
    return head[3] if _is_idx_magic(head) else None


def _idx_error(path: Path, exc: BaseException) -> ValueError:
    return ValueError(f"Cannot read IDX file {path}: {exc}. The file is damaged; download it again.")


def _read_idx_header(path: Path, stack: ExitStack) -> tuple[_IdxHeader, IO[bytes]]:
    """Open ``path`` (closed with ``stack``) and check its header against the file and MAX_ARRAY_BYTES."""
    try:
        f, gzipped = _open_idx(path)
        stack.enter_context(f)
        head = f.read(4)
        if not _is_idx_magic(head):
            raise ValueError(
                f"{path} is not an IDX file (bad magic number 0x{head.hex()}): an IDX file starts with two zero "
                "bytes, a type code (0x08 for uint8) and its number of dimensions."
            )
        ndim = head[3]
        if ndim > _IDX_MAX_NDIM:
            raise ValueError(
                f"IDX file {path} declares {ndim} dimensions; ganaug reads at most {_IDX_MAX_NDIM} (images are "
                "3-D, labels 1-D). The file is corrupt or not an image or label file."
            )
        raw = f.read(4 * ndim)
        if len(raw) < 4 * ndim:
            raise ValueError(f"IDX file {path} is truncated or corrupt: its header stops after {4 + len(raw)} bytes.")
        dims = tuple(int.from_bytes(raw[4 * i : 4 * i + 4], "big") for i in range(ndim))
        header = _IdxHeader(path, gzipped, np.dtype(_IDX_DTYPES[head[2]]), dims)
        limit = _max_array_bytes()
        if header.nbytes > limit:
            raise ValueError(
                f"IDX file {path} declares an array of shape {dims} ({header.nbytes:,} bytes), more than "
                f"ganaug.data.MAX_ARRAY_BYTES ({limit:,}): its header is corrupt, or, for a genuine "
                "file this large, raise ganaug.data.MAX_ARRAY_BYTES."
            )
        if not gzipped:
            found = os.fstat(f.fileno()).st_size - header.offset
            if found != header.nbytes:
                raise ValueError(
                    f"IDX file {path} is truncated or corrupt: header says {dims} ({header.nbytes} bytes of "
                    f"data), found {found}. Download it again."
                )
    except _IDX_ERRORS as exc:
        raise _idx_error(path, exc) from exc
    return header, f


def _read_idx_data(header: _IdxHeader, f: IO[bytes]) -> np.ndarray:
    """The array after ``header`` in ``f``, read in place: peak memory is the array itself."""
    raw = np.empty(header.nbytes, dtype=np.uint8)
    try:
        got = readinto_all(f, raw)
        # gzip: one byte past the declared size tells an overlong stream, and nothing more
        # is decompressed; at the end of the stream this read also checks the CRC.
        extra = header.gzipped and got == header.nbytes and len(f.read(1)) > 0
    except _IDX_ERRORS as exc:
        raise _idx_error(header.path, exc) from exc
    if got != header.nbytes or extra:
        found = f"more than {header.nbytes}" if extra else str(got)
        raise ValueError(
            f"IDX file {header.path} is truncated or corrupt: header says {header.dims} ({header.nbytes} bytes "
            f"of data), found {found}. Download it again."
        )
    arr = raw.view(header.dtype).reshape(header.dims)
    if not header.dtype.isnative:
        arr = arr.byteswap(inplace=True).view(header.dtype.newbyteorder("="))
    return arr


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one MNIST-format IDX file (gzipped or not) into a numpy array.

    The header is checked before any data is read: the declared array must stay under
    :data:`ganaug.readers.MAX_ARRAY_BYTES` and match the file's size (for gzip, the stream
    is decompressed no further than one byte past the declared size).
    """
    path = Path(path)
    with ExitStack() as stack:
        header, f = _read_idx_header(path, stack)
        return _read_idx_data(header, f)


def _idx_files(folder: Path) -> dict[int, list[Path]]:
    """The IDX files below ``folder`` by their number of dimensions, told by magic number, not name."""
    found: dict[int, list[Path]] = {}
    for dirpath, dirnames, names in os.walk(folder):  # symlinked folders are not entered: no loops
        dirnames.sort()
        for name in sorted(names):
            path = Path(dirpath) / name
            ndim = _idx_ndim(path) if path.is_file() else None  # is_file: never open a FIFO or device
            if ndim is not None:
                found.setdefault(ndim, []).append(path)
    # "x" beside "x.gz" (torchvision's download keeps both) is one file, read uncompressed.
    for paths in found.values():
        paths[:] = [p for p in paths if not (p.suffix == ".gz" and p.with_suffix("") in paths)]
    return found


def _has_class_folders(path: Path) -> bool:
    """Whether a sub-folder of ``path`` holds image files: the ImageFolder layout."""
    for sub in sorted(path.iterdir()):
        if sub.is_dir() and not sub.name.startswith("."):
            for _, _, names in os.walk(sub):
                if any(n.lower().endswith(IMG_EXTENSIONS) for n in names):
                    return True
    return False


def is_idx_folder(path: Path) -> bool:
    """An IDX folder holds IDX image files (by magic number) and no class folders of images."""
    return not _has_class_folders(path) and 3 in _idx_files(path)


def load_idx(
    images: str | os.PathLike, labels: str | os.PathLike | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Load MNIST-format IDX images and labels.

    ``images`` is either the images file (then ``labels`` names the labels file) or a folder,
    searched recursively, that holds exactly one IDX images file (3-D) and one IDX labels
    file (1-D), told apart by their headers, gzipped or not (e.g. ``../shared/data/mnist``).

    Both headers are read and checked against each other (one integer label per image)
    before any data; then the labels are read, then the images, each in place.

    Returns ``X`` (N, H, W) in the file's dtype (uint8 for MNIST) and ``y`` int64 (N,).
    """
    images = Path(images)
    if images.is_dir():
        folder = images
        found = _idx_files(folder)
        img_files, lbl_files = found.get(3, []), found.get(1, [])
        if len(img_files) != 1 or len(lbl_files) != 1:
            raise ValueError(
                f"Expected one IDX images file (3-D, e.g. train-images-idx3-ubyte[.gz]) and one IDX labels file "
                f"(1-D, e.g. train-labels-idx1-ubyte[.gz]) under {folder}, found {len(img_files)} and "
                f"{len(lbl_files)}; pass the two files explicitly."
            )
        images, labels = img_files[0], lbl_files[0]
    elif labels is None:
        raise ValueError("Pass the labels file too: load_idx(images_file, labels_file).")
    labels = Path(labels)
    with ExitStack() as stack:
        hx, fx = _read_idx_header(images, stack)
        hy, fy = _read_idx_header(labels, stack)
        if len(hx.dims) != 3:
            raise ValueError(f"{images} holds an array of shape {hx.dims}; an IDX image file is (N, H, W).")
        if len(hy.dims) != 1 or hy.dims[0] != hx.dims[0]:
            raise ValueError(
                f"{labels} holds {hy.dims} labels for {hx.dims[0]} images in {images}. Pass the labels file "
                "that belongs to these images."
            )
        if hy.dtype.kind == "f":
            raise ValueError(f"{labels} holds {hy.dtype} values; IDX labels must be integers.")
        y = _read_idx_data(hy, fy).astype(np.int64)
        X = _read_idx_data(hx, fx)
    return X, y
