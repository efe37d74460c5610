"""``.npz`` archives holding ``X`` and ``y``, read without unpickling, each member's header checked first."""

from __future__ import annotations

import math
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np
import numpy.lib.format as npformat

from .idx import _max_array_bytes

__all__ = ["load_npz"]


def _read_npz_member(path: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    """One ``.npy`` member, its header checked against the member's size and MAX_ARRAY_BYTES first."""
    where = f"{path} (array {info.filename})"
    with zf.open(info) as f:
        try:
            version = npformat.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = npformat.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, _, dtype = npformat.read_array_header_2_0(f)
            else:
                raise ValueError(f"unsupported .npy format version {version[0]}.{version[1]}")
        except MemoryError:
            raise
        except Exception as exc:
            # numpy parses the header with ast.literal_eval and its own dtype decoding, which
            # raise ValueError, TypeError, IndexError, SyntaxError, ... on corrupt bytes.
            raise ValueError(
                f"{where} has a corrupt .npy header ({exc}); save the archive again with np.savez."
            ) from exc
        header_size = f.tell()
    if dtype.hasobject or dtype.itemsize == 0:
        raise ValueError(
            f"{where} holds dtype {dtype}, which is no array of numbers or strings (ganaug never unpickles "
            "Python objects). Save X as a numeric array and y as integers or strings."
        )
    nbytes = math.prod(shape) * dtype.itemsize
    stored = info.file_size - header_size
    if min(shape, default=0) < 0 or nbytes != stored:
        raise ValueError(
            f"{where} is corrupt: its header declares shape {shape} of {dtype} ({nbytes:,} bytes) but it holds "
            f"{stored:,} bytes of data. Save the archive again with np.savez."
        )
    limit = _max_array_bytes()
    if nbytes > limit:
        raise ValueError(
            f"{where} declares {nbytes:,} bytes (shape {shape} of {dtype}), more than "
            f"ganaug.data.MAX_ARRAY_BYTES ({limit:,}); for a genuine array this large raise "
            "ganaug.data.MAX_ARRAY_BYTES."
        )
    with zf.open(info) as f:
        try:
            return npformat.read_array(f, allow_pickle=False)
        except ValueError as exc:
            raise ValueError(f"{where} is truncated or corrupt ({exc}); save the archive again with np.savez.") from exc


def load_npz(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """``X`` and ``y`` of an ``.npz`` archive, read without unpickling and within MAX_ARRAY_BYTES."""
    path = Path(path)
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path} is not an .npz (zip) archive. A .npy file holds one array: save X and y together with "
            f"np.savez('{path.name}', X=X, y=y)."
        )
    try:
        with zipfile.ZipFile(path) as zf:
            members = {i.filename[: -len(".npy")]: i for i in zf.infolist() if i.filename.endswith(".npy")}
            if "X" not in members or "y" not in members:
                raise ValueError(f"{path} must hold arrays named X and y, found {sorted(members)}.")
            return _read_npz_member(path, zf, members["X"]), _read_npz_member(path, zf, members["y"])
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, zlib.error, NotImplementedError,
            RuntimeError) as exc:
        # zipfile on a damaged archive: bad CRC, truncated data, unknown compression, encryption.
        raise ValueError(f"Cannot read {path}: {exc}. The archive is damaged; save it again with np.savez.") from exc
