"""Safe file output: atomic writes, and folders that ganaug replaces only when it wrote them.

* :func:`atomic_write_bytes`: a reader never sees a half-written file, and the file gets
  the permissions the umask asks for (``tempfile.mkstemp`` alone would give 0600).
* :func:`check_output_dir` and :func:`publish_dir`: the rule of git, which refuses to
  touch what it did not write. An existing non-empty output is replaced only with
  ``force`` and only when it carries one of ganaug's own markers (a ``run.json``,
  ``manifest.csv``, ``ganaug.json`` or ``report.json`` that ganaug wrote); a symbolic link
  is never followed out of the output.
* :func:`refuse_overlap`: an output is never an input, nor inside one, nor around one.
* :func:`clean_stale_partials`: the ``OUT.partial-PID`` / ``OUT.old-PID`` folders of a
  killed run are removed by the next one.
* :func:`disk_errors`: a full or read-only disk becomes one error naming the path.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any


# Exceptions a user can cause with bad input or settings; anything else is a bug. (FileNotFoundError
# and FileExistsError are OSErrors; ganaug.CheckpointError is a ValueError.)
class RankFailure(RuntimeError):
    """Another process of a distributed job stopped or lost contact, so this one stops too
    (raised by :mod:`ganaug.distributed`; here so the command line knows it without torch)."""


USER_ERRORS = (ValueError, TypeError, OSError, FloatingPointError, RankFailure)
# Data sources known by name, never read from a path (a folder named "digits" is not them).
BUILTIN_SOURCES = ("digits",)
# Marker file -> how to recognise ganaug's own copy of it (its first bytes).
_MARKER_READ_LIMIT = 1 << 20
MANIFEST_HEADER = "file,class,seed,model_sha256"
OUTPUT_MARKERS = ("run.json", "manifest.csv", "ganaug.json", "report.json")
_DISK_ERRNOS = {errno.ENOSPC, errno.EROFS, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG}


def current_umask() -> int:
    """The process umask, read without changing it where the kernel says it (Linux >= 4.7)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: the only portable way, briefly not thread-safe
    os.umask(mask)
    return mask


# Bytes read (or decompressed) per call when filling a buffer from a file: bounds the
# temporary copies that gzip and zip readers make to this size, not the buffer's.
_READ_CHUNK = 4 * 2**20


def readinto_all(f: Any, buf: Any) -> int:
    """Fill the writable buffer ``buf`` (a bytearray, a uint8 array) from ``f`` in bounded
    chunks, until it is full or ``f`` ends; returns the bytes read."""
    view = memoryview(buf).cast("B")
    got = 0
    while got < len(view):
        n = f.readinto(view[got : got + _READ_CHUNK])
        if not n:
            break
        got += n
    return got


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # not supported on some platforms (Windows)
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and ``os.replace``.

    The file gets mode ``0o666 & ~umask``, as ``open(path, "w")`` would give it.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            if hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), 0o666 & ~current_umask())
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def memory_budget() -> int:
    """Bytes one allocation may take: half the machine's physical memory (8 GiB where unknown)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (AttributeError, ValueError, OSError):
        return 8 << 30


def check_dataclass_fields(cls: type, document: Any, what: str) -> None:
    """Refuse a stored document that cannot build dataclass ``cls``: not a JSON object,
    unknown fields, or missing fields that have no default (ValueError / TypeError)."""
    import dataclasses

    if not isinstance(document, dict):
        raise TypeError(f"A {what} must be a JSON object, got {type(document).__name__}.")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(str(k) for k in document if k not in known)
    if unknown:
        raise ValueError(f"Unknown {what} fields {unknown}.")
    missing = [n for n, f in known.items() if n not in document
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ValueError(f"The {what} lacks the fields {missing}.")


class NpyStream:
    """A ``.npy`` array written to an open binary file batch by batch, in order.

    Plain writes, not a memory map: memory stays flat, and on a full disk a write raises
    ENOSPC, while a store into a memory map kills the process with SIGBUS.
    """

    def __init__(self, file: Any, shape: tuple[int, ...], dtype: Any) -> None:
        import numpy as np

        self.file, self._dtype = file, np.dtype(dtype)
        self._left = int(np.prod(shape, dtype=np.int64))
        np.lib.format.write_array_header_2_0(
            file, {"descr": np.lib.format.dtype_to_descr(self._dtype), "fortran_order": False, "shape": shape})

    def write(self, batch: Any) -> Any:
        """Append ``batch``; returns it as written (contiguous, in the array's dtype)."""
        import numpy as np

        batch = np.ascontiguousarray(batch, dtype=self._dtype)
        self._left -= batch.size
        self.file.write(batch.tobytes())
        return batch

    def finish(self) -> None:
        if self._left != 0:
            raise RuntimeError(f".npy stream closed with {self._left} values missing")  # a bug, not user input


# --------------------------------------------------------------------------- disk faults


@contextlib.contextmanager
def disk_errors(path: str | os.PathLike, what: str = "writing") -> Iterator[None]:
    """Turn a full, over-quota or read-only disk into one ``OSError`` that names ``path``."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in _DISK_ERRNOS:
            raise
        reason = os.strerror(exc.errno)
        fix = ("free some space or choose another location" if exc.errno != errno.EROFS
               else "choose a writable location")
        raise OSError(exc.errno, f"{reason} while {what} {path}; {fix}.") from exc


# --------------------------------------------------------------------------- ownership


def _read_head(path: Path) -> str | None:
    """The start of ``path`` if it is a regular file (not a link), else None."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return None
        with open(path, "rb") as f:
            return f.read(_MARKER_READ_LIMIT).decode("utf-8", errors="replace")
    except OSError:
        return None


def _json_head(text: str | None) -> dict | None:
    try:
        document = json.loads(text) if text else None
    except (ValueError, RecursionError):
        return None
    return document if isinstance(document, dict) else None


def ganaug_marker(folder: str | os.PathLike, markers: tuple[str, ...] = OUTPUT_MARKERS) -> str | None:
    """The name of the ganaug marker file in ``folder`` (one of ``markers`` that ganaug wrote), or None."""
    folder = Path(folder)
    for name in markers:
        text = _read_head(folder / name)
        if text is None:
            continue
        if name == "manifest.csv":
            if text.splitlines()[:1] == [MANIFEST_HEADER]:
                return name
            continue
        document = _json_head(text)
        if document is None:
            continue
        if name == "run.json" and "ganaug_version" in document:
            return name
        if name == "ganaug.json" and document.get("format") == "ganaug-checkpoint":
            return name
        if name == "report.json" and "fid_floor" in document and "class_fidelity" in document:
            return name
    return None


def non_empty_dir(path: Path) -> bool:
    return path.is_dir() and any(path.iterdir())


def check_output_dir(out: str | os.PathLike, *, force: bool, what: str = "Output directory",
                     markers: tuple[str, ...] = OUTPUT_MARKERS) -> None:
    """Refuse an output that ganaug must not write or replace; see the module docstring.

    Passes for a missing or empty folder, and with ``force`` for a folder that ganaug wrote
    and that holds one of ``markers`` (a command replaces only its own kind of output:
    ``generate`` a generated set, not a trained run).
    """
    out = Path(out)
    if out.is_symlink():
        raise FileExistsError(
            f"{what} {out} is a symbolic link; ganaug does not write through links. Give the real path."
        )
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{what} {out} exists and is not a directory; choose another --out.")
    if not non_empty_dir(out):
        return
    if not force:
        raise FileExistsError(
            f"{what} {out} exists and is not empty; pass --force to replace it or choose another --out."
        )
    if ganaug_marker(out, markers) is None:
        kind = "" if markers == OUTPUT_MARKERS else " as this command's kind of output"
        raise FileExistsError(
            f"{what} {out} was not written by ganaug{kind} (no {', '.join(markers)} of ganaug's in it), "
            "so --force will not replace it; choose another --out or move it away yourself."
        )


def _within(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents


def is_builtin_source(source: Any) -> bool:
    """Whether ``source`` names a built-in data set (``"digits"``) rather than a path."""
    return isinstance(source, str) and source in BUILTIN_SOURCES


def refuse_overlap(out: str | os.PathLike, inputs: Mapping[str, str | os.PathLike | None]) -> None:
    """Refuse an output that is one of ``inputs`` (named by role), lies inside one, or holds one.

    Paths are compared after resolving links, so a link cannot hide an overlap. Inputs that
    are not paths on disk (``None``, ``"digits"``) are skipped.
    """
    out_path = Path(out).resolve()
    for role, value in inputs.items():
        if value is None or is_builtin_source(value):
            continue
        in_path = Path(value).resolve()
        if _within(out_path, in_path) or _within(in_path, out_path):
            raise ValueError(
                f"The output {out} and the {role} {value} overlap (one is, or lies inside, the other); "
                "writing there could destroy the input. Choose an --out outside it."
            )


# --------------------------------------------------------------------------- killed runs

_PARTIAL = re.compile(r"\.(partial|old)-(\d{1,10})")
# Written into every partial folder when it is made: only folders that carry it are ganaug's.
PARTIAL_SENTINEL = ".ganaug-partial"


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # PermissionError: someone else's live process
        return True
    return True


def make_partial_dir(target: Path) -> Path:
    """A new, empty sibling of ``target`` (same disk) in which this process builds it."""
    partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
    if partial.exists() and (partial / PARTIAL_SENTINEL).is_file():
        shutil.rmtree(partial)  # ours, from an earlier call in this process
    partial.mkdir()
    (partial / PARTIAL_SENTINEL).write_text(f"{os.getpid()}\n", encoding="ascii")
    return partial


def set_aside(path: Path) -> Path:
    """Rename ``path`` to ``PATH.old-PID`` (removable by :func:`clean_stale_partials` if this process dies)."""
    old = path.with_name(f"{path.name}.old-{os.getpid()}")
    os.replace(path, old)
    return old


def clean_stale_partials(target: str | os.PathLike) -> list[Path]:
    """Remove ``TARGET.partial-PID`` / ``TARGET.old-PID`` folders left by ganaug processes that are gone.

    Only folders that ganaug made are touched: a partial folder must carry ganaug's
    sentinel file, an old one a ganaug marker (a user's ``results.old-2023`` stays).
    """
    target = Path(target)
    removed: list[Path] = []
    if not target.parent.is_dir():
        return removed
    for sibling in target.parent.iterdir():
        if not sibling.name.startswith(target.name + "."):
            continue
        match = _PARTIAL.fullmatch(sibling.name[len(target.name):])
        if match is None or sibling.is_symlink() or not sibling.is_dir() or _pid_alive(int(match.group(2))):
            continue
        ours = (_read_head(sibling / PARTIAL_SENTINEL) is not None if match.group(1) == "partial"
                else ganaug_marker(sibling) is not None)
        if ours:
            shutil.rmtree(sibling, ignore_errors=True)
            removed.append(sibling)
    return removed


def publish_dir(partial: Path, out: Path, *, force: bool, markers: tuple[str, ...] = OUTPUT_MARKERS) -> None:
    """Move the finished ``partial`` folder to ``out``, replacing what is there.

    ``out`` is checked again (:func:`check_output_dir`), since something may have appeared
    there while the set was made. The old folder is moved aside first, so ``out`` is
    always either the old or the new set, never a mix.
    """
    check_output_dir(out, force=force, markers=markers)
    (partial / PARTIAL_SENTINEL).unlink(missing_ok=True)
    old = None
    if out.exists():
        if non_empty_dir(out):
            old = set_aside(out)
        else:
            out.rmdir()
    os.replace(partial, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
