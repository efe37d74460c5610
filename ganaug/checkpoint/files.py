"""Checkpoint files: atomic writes, and reads that check before they allocate."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import stat
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save as _st_save

from .._io import atomic_write_bytes, fsync_dir, readinto_all
from .._version import __version__
from .fields import Invalid, is_int, short
from .layout import NETWORKS, Expected, check_optimizers, expected_tensors
from .schema import (
    CONFIG_NAME,
    FORMAT_NAME,
    FORMAT_VERSION,
    HEADER_BYTES_PER_TENSOR,
    MAX_CONFIG_BYTES,
    MAX_HEADER_BYTES,
    MAX_JSON_CONTAINERS,
    MAX_PARAMETERS,
    CheckpointError,
    validate_document,
)

_READ_CHUNK = 2**20

def is_checkpoint(path: str | os.PathLike) -> bool:
    return (Path(path) / CONFIG_NAME).is_file()


def write_checkpoint(
    path: str | os.PathLike,
    metadata: dict[str, Any],
    tensors: dict[str, torch.Tensor],
    *,
    overwrite: bool = False,
) -> Path:
    """Write ``tensors`` and ``metadata`` (JSON-serialisable) as a checkpoint at ``path``."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path} exists and is not a directory; choose another checkpoint path.")
    if is_checkpoint(path) and not overwrite:
        raise FileExistsError(
            f"A checkpoint already exists at {path}; pass overwrite=True (--force on the command line) "
            "to replace it, or choose another path."
        )
    path.mkdir(parents=True, exist_ok=True)
    blob = _st_save({k: v.detach().cpu().contiguous() for k, v in tensors.items()})
    digest = hashlib.sha256(blob).hexdigest()
    weights_name = f"weights-{digest[:16]}.safetensors"
    atomic_write_bytes(path / weights_name, blob)
    document = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "ganaug_version": __version__,
        "torch_version": torch.__version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **metadata,
        "weights": {"file": weights_name, "sha256": digest},
    }
    try:
        text = json.dumps(document, indent=2, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"Checkpoint metadata is not JSON-serialisable: {exc}") from exc
    atomic_write_bytes(path / CONFIG_NAME, text.encode("utf-8"))
    fsync_dir(path)
    for stale in path.glob("weights-*.safetensors"):
        if stale.name != weights_name:
            stale.unlink(missing_ok=True)
    # Temporary files of a save that was killed (atomic_write_bytes names them .NAME.*.tmp).
    for stale in [*path.glob(f".{CONFIG_NAME}.*.tmp"), *path.glob(".weights-*.safetensors.*.tmp")]:
        stale.unlink(missing_ok=True)
    return path


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    d = dict(pairs)
    if len(d) != len(pairs):
        seen: set[str] = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise ValueError(f"the key {dup!r} appears twice")
    return d


def _open_regular(path: Path, *, follow_symlinks: bool) -> tuple[Any, os.stat_result]:
    """Open a regular file for reading without blocking on a FIFO; (file, its stat)."""
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise CheckpointError(f"{path} is not a regular file.")
        return os.fdopen(fd, "rb"), st
    except BaseException:
        os.close(fd)
        raise


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """Read ``ganaug.json`` and check it against :data:`SCHEMA`, without touching the weights."""
    path = Path(path)
    config = path / CONFIG_NAME
    if not path.exists():
        raise FileNotFoundError(f"No checkpoint at {path}: the directory does not exist.")
    if not config.is_file():
        raise FileNotFoundError(
            f"No ganaug checkpoint in {path}: {CONFIG_NAME} is missing. Point to the directory that "
            "ConditionalDCGAN.save() or `ganaug train` wrote."
        )
    f, _ = _open_regular(config, follow_symlinks=True)
    with f:
        raw = f.read(MAX_CONFIG_BYTES + 1)
    if len(raw) > MAX_CONFIG_BYTES:
        raise CheckpointError(
            f"Checkpoint file {config} is corrupt: it is larger than {MAX_CONFIG_BYTES:,} bytes "
            "(ganaug.checkpoint.MAX_CONFIG_BYTES); a real one takes a few kB."
        )
    if raw.count(b"{") + raw.count(b"[") > MAX_JSON_CONTAINERS:
        raise CheckpointError(
            f"Checkpoint file {config} is corrupt: it holds more than {MAX_JSON_CONTAINERS:,} JSON objects and lists."
        )
    try:
        document = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicate_keys)
    except (UnicodeDecodeError, ValueError) as exc:  # json.JSONDecodeError is a ValueError
        raise CheckpointError(f"Checkpoint file {config} is corrupt (not valid JSON: {exc}).") from exc
    except RecursionError:
        raise CheckpointError(f"Checkpoint file {config} is corrupt (not valid JSON: nested too deep).") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{config} is not a ganaug checkpoint description (missing format tag).")
    version = document.get("format_version")
    if not is_int(version) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{config} has checkpoint format version {short(version)}; this ganaug ({__version__}) reads up to "
            f"{FORMAT_VERSION}. Upgrade ganaug to load it."
        )
    for key in ("model", "data", "training", "weights"):
        if key not in document:
            raise CheckpointError(f"Checkpoint file {config} is corrupt: the {key!r} section is missing.")
    try:
        validate_document(document)
    except Invalid as exc:
        raise CheckpointError(f"Checkpoint file {config} is corrupt: field {exc.where!r} {exc.problem}.") from None
    return document


# --------------------------------------------------------------------------- weights

# safetensors dtype names -> bytes per element.
_ITEMSIZE = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
             "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}
# The ones ganaug's networks use, as torch and (little-endian) numpy dtypes.
_NUMPY = {"F32": np.dtype("<f4"), "F64": np.dtype("<f8"), "I64": np.dtype("<i8")}

def _read_exact(f: Any, n: int) -> bytearray:
    buf = bytearray(n)
    if readinto_all(f, buf) < n:
        raise EOFError
    return buf


def _read_header(f: Any, size: int, limit: int, corrupt: Any) -> tuple[dict[str, tuple[str, list[int], int, int]], int]:
    """Parse and check a safetensors header: (name -> (dtype, shape, begin, end), data start)."""
    if size < 8:
        raise corrupt(f"it is {size} bytes long, too short for a safetensors header")
    n = int.from_bytes(_read_exact(f, 8), "little")
    if n > size - 8:
        raise corrupt(f"its header claims {n:,} bytes but the file holds {size - 8:,} after the length")
    if n > limit:
        raise corrupt(f"its header claims {n:,} bytes, more than the {limit:,} the model described can need")
    raw = bytes(_read_exact(f, n))
    if not raw.startswith(b"{"):
        raise corrupt("its header is not a JSON object")
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicate_keys)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise corrupt(f"its header is not valid JSON ({type(exc).__name__}: {exc})") from None
    if not isinstance(header, dict):
        raise corrupt("its header is not a JSON object")
    data_len = size - 8 - n
    entries: dict[str, tuple[str, list[int], int, int]] = {}
    for name, info in header.items():
        if name == "__metadata__":
            if not isinstance(info, dict) or not all(isinstance(v, str) for v in info.values()):
                raise corrupt("its header's __metadata__ is not an object of strings")
            continue
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise corrupt(f"header entry {short(name)} is not {{dtype, shape, data_offsets}}")
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if not isinstance(dtype, str) or dtype not in _ITEMSIZE:
            raise corrupt(f"tensor {short(name)} has an unknown dtype {short(dtype)}")
        if not isinstance(shape, list) or len(shape) > 8 or not all(is_int(s) and s >= 0 for s in shape):
            raise corrupt(f"tensor {short(name)} has an invalid shape {short(shape)}")
        if (not isinstance(offsets, list) or len(offsets) != 2 or not all(is_int(o) for o in offsets)
                or not 0 <= offsets[0] <= offsets[1] <= data_len):
            raise corrupt(f"tensor {short(name)} has data_offsets {short(offsets)} outside the "
                          f"{data_len:,} bytes of data")
        nbytes = math.prod(shape) * _ITEMSIZE[dtype]
        if offsets[1] - offsets[0] != nbytes:
            raise corrupt(f"tensor {short(name)} spans {offsets[1] - offsets[0]:,} bytes but a {dtype} tensor of "
                          f"shape {short(shape)} takes {nbytes:,}")
        entries[name] = (dtype, shape, offsets[0], offsets[1])
    pos = 0
    for name, (_, _, begin, end) in sorted(entries.items(), key=lambda kv: (kv[1][2], kv[1][3])):
        if begin != pos:
            raise corrupt(f"tensor {short(name)} starts at byte {begin:,} of the data but the one before ends at "
                          f"{pos:,} (tensors overlap or leave a gap)")
        pos = end
    if pos != data_len:
        raise corrupt(f"its tensors end at byte {pos:,} of the data but the file holds {data_len:,} bytes of data")
    return entries, 8 + n


def _compare(header: dict[str, tuple[str, list[int], int, int]], expected: dict[str, Expected], weights: Path) -> None:
    def mismatch(owner: str, detail: str) -> CheckpointError:
        return CheckpointError(
            f"Checkpoint weights in {weights} do not match the {owner} described in {CONFIG_NAME}: {detail}."
        )

    for name, want in expected.items():
        if name not in header:
            if want.required:
                raise mismatch(want.owner, f"tensor {name} is missing")
            continue
        dtype, shape = header[name][:2]
        if want.shape is None:
            if len(shape) != 1 or shape[0] > want.longest:
                raise mismatch(want.owner, f"{name} has shape {shape}; it needs at most one value per step "
                               f"({want.longest})")
        elif tuple(shape) != want.shape:
            raise mismatch(want.owner, f"{name} has shape {shape} but the model needs {list(want.shape)}")
        if dtype not in want.dtypes:
            raise mismatch(want.owner, f"{name} is {dtype}, not {' or '.join(sorted(want.dtypes))}")
    unexpected = [name for name in header if name not in expected]
    if unexpected:
        owner = unexpected[0].split(".", 1)[0]
        more = f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else ""
        raise mismatch(owner if owner in NETWORKS else "model",
                       f"unexpected tensor {short(unexpected[0])}{more}")


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Read a checkpoint: (metadata, tensors on the CPU), after every check of the module docstring."""
    path = Path(path)
    document = read_metadata(path)
    config = path / CONFIG_NAME
    expected, counts = _expected_for(document, config)
    weights = path / document["weights"]["file"]  # validated: a plain file name, no separator or '..'

    def corrupt(detail: str) -> CheckpointError:
        return CheckpointError(f"Checkpoint weights file {weights} is corrupt: {detail}.")

    f, st = _open_weights(weights)
    with f:
        limit = min(MAX_HEADER_BYTES, 4096 + HEADER_BYTES_PER_TENSOR * len(expected))
        try:
            header, data_start = _read_header(f, st.st_size, limit, corrupt)
        except EOFError:
            raise corrupt("it ends inside its header") from None
        _compare(header, expected, weights)
        check_optimizers(document, counts, set(header), config)
        if _sha256(f) != (st.st_size, document["weights"]["sha256"]):
            raise CheckpointError(
                f"Checkpoint weights file {weights} is corrupt: its SHA-256 does not match {CONFIG_NAME}."
            )
        return document, _read_tensors(f, header, data_start, expected, corrupt)


def _expected_for(document: dict[str, Any], config: Path) -> tuple[dict[str, Expected], dict[str, int]]:
    try:
        expected, counts, n_parameters = expected_tensors(document)
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:  # a backstop: the schema should prevent it
        raise CheckpointError(
            f"Checkpoint file {config} is corrupt: field 'model' describes networks that cannot be built ({exc})."
        ) from exc
    if n_parameters > MAX_PARAMETERS:
        raise CheckpointError(
            f"Checkpoint file {config} is corrupt: field 'model' describes networks of {n_parameters:,} parameters, "
            f"more than the {MAX_PARAMETERS:,} ganaug loads (ganaug.checkpoint.MAX_PARAMETERS)."
        )
    return expected, counts


def _open_weights(weights: Path) -> tuple[Any, os.stat_result]:
    """The weights file, opened only if it is a regular file (no link) that stays the same file."""
    try:
        link = os.lstat(weights)
    except FileNotFoundError:
        raise CheckpointError(f"Checkpoint weights file {weights} is missing.") from None
    if stat.S_ISLNK(link.st_mode):
        raise CheckpointError(
            f"Checkpoint weights file {weights} is a symbolic link; ganaug reads weights only from a regular "
            "file inside the checkpoint folder."
        )
    if not stat.S_ISREG(link.st_mode):
        raise CheckpointError(f"Checkpoint weights file {weights} is not a regular file.")
    try:
        f, st = _open_regular(weights, follow_symlinks=False)
    except OSError as exc:  # replaced by a link since lstat (ELOOP), or unreadable
        raise CheckpointError(f"Checkpoint weights file {weights} cannot be opened safely: {exc}.") from exc
    if (st.st_dev, st.st_ino) != (link.st_dev, link.st_ino):
        f.close()
        raise CheckpointError(f"Checkpoint weights file {weights} changed while it was opened.")
    return f, st


def _sha256(f: Any) -> tuple[int, str]:
    """(bytes read, SHA-256) of the whole file, streamed: it is never held whole in memory."""
    f.seek(0)
    digest, buf = hashlib.sha256(), bytearray(_READ_CHUNK)
    view, seen = memoryview(buf), 0
    while True:
        k = f.readinto(view)
        if not k:
            break
        digest.update(view[:k])
        seen += k
    return seen, digest.hexdigest()


def _read_tensors(f: Any, header: dict[str, tuple[str, list[int], int, int]], data_start: int,
                  expected: dict[str, Expected], corrupt: Any) -> dict[str, torch.Tensor]:
    tensors: dict[str, torch.Tensor] = {}
    for name, (dtype, shape, begin, end) in sorted(header.items(), key=lambda kv: kv[1][2]):
        f.seek(data_start + begin)
        try:
            array = np.frombuffer(_read_exact(f, end - begin), dtype=_NUMPY[dtype]) if end > begin else np.empty(
                0, dtype=_NUMPY[dtype])
        except EOFError:
            raise corrupt(f"it ends inside tensor {name}") from None
        if sys.byteorder != "little":
            array = array.astype(array.dtype.newbyteorder("="))
        if expected[name].finite and array.dtype.kind == "f" and not np.isfinite(array).all():
            raise corrupt(f"tensor {name} holds NaN or infinite values")
        tensors[name] = torch.from_numpy(array).reshape(shape)
    return tensors
