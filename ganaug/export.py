"""Write a generated set to disk: an image folder or an ``.npz``, with a manifest.

:func:`export_samples` streams images from a fitted :class:`ganaug.ConditionalDCGAN` in
batches into one of two layouts:

* ``"imagefolder"``: ``OUT/<class>/<index>.png``, torchvision's ``ImageFolder`` layout
  (8-bit PNGs; class values must be valid folder names);
* ``"npz"``: ``OUT/samples.npz`` with ``X`` (in the dtype, layout and range ``fit`` was
  given) and ``y``, written member by member without holding the set in memory.

Either way ``OUT/manifest.csv`` lists ``file, class, seed, model_sha256``, so every image
can be regenerated with :meth:`ConditionalDCGAN.sample_from_seeds` and traced to its
model. The set is built in a temporary sibling folder and moved into place when complete;
an existing ``OUT`` is replaced (``force=True``) only if ganaug wrote it as a generated set.

Under torchrun the work is shared by rank (ganaug.distributed): the set's batches are
those one process would make, and rank r makes a contiguous block of them, so every
image is computed exactly as in one process and the files are the same, byte for byte,
for any number of processes. Rank 0 makes the temporary folder, writes its own block
into the manifest and the ``.npz``, appends the other ranks' parts in rank order once
all have finished, and moves the set into place once.
"""

from __future__ import annotations

import contextlib
import csv
import os
import shutil
import time
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ._io import (
    MANIFEST_HEADER,
    NpyStream,
    check_output_dir,
    clean_stale_partials,
    disk_errors,
    make_partial_dir,
    publish_dir,
)
from .data import to_uint8
from .distributed import Context, all_ranks_succeed, barrier, broadcast, context, shard
from .gan import ConditionalDCGAN
from .sampling import MAX_SEED, resolve_counts

__all__ = ["FORMATS", "MANIFEST", "SAMPLES_NPZ", "SET_MARKERS", "export_samples"]

FORMATS = ("imagefolder", "npz")
MANIFEST = "manifest.csv"
SAMPLES_NPZ = "samples.npz"
# The marker of a generated set: force=True replaces only a folder that holds one of ganaug's.
SET_MARKERS = (MANIFEST,)


def export_samples(
    gan: ConditionalDCGAN,
    out: str | os.PathLike,
    counts: Mapping[Any, int],
    *,
    format: str = "imagefolder",
    seed: int = 0,
    batch_size: int = 512,
    model_sha256: str = "",
    force: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """Generate ``counts`` images with ``gan`` and write them, with a manifest, to ``out``.

    Parameters
    ----------
    gan : ConditionalDCGAN
        A fitted (or loaded) model.
    out : path
        The folder to write; it must be missing or empty, or (with ``force``) a set ganaug wrote.
    counts : mapping
        ``{class value: number of images}``; classes are written in the model's class order.
    format : {"imagefolder", "npz"}, default="imagefolder"
        ``"imagefolder"``: ``out/<class>/<index>.png``; ``"npz"``: ``out/samples.npz`` with X and y.
    seed : int, default=0
        Image ``i`` of the set (counted over all classes, in order) gets seed ``seed + i``.
    batch_size : int, default=512
        Images generated and written per batch; memory stays flat for any set size.
    model_sha256 : str, default=""
        The SHA-256 of the model's weights, written into every manifest row (``ganaug generate``
        passes the checkpoint's, from :func:`ganaug.checkpoint.read_metadata`).
    force : bool, default=False
        Replace an existing ``out`` that ganaug wrote as a generated set (never another folder).
    progress : bool, default=False
        Show a progress bar on stderr.

    Returns
    -------
    dict
        ``out``, ``format``, ``total``, ``counts`` (by class name), ``seed``, ``seconds``,
        ``images_per_s``, ``manifest`` (its path) and ``model_sha256``.

    Example
    -------
    >>> gan = ConditionalDCGAN.load("runs/pets/checkpoint")  # doctest: +SKIP
    >>> export_samples(gan, "data/synthetic", {c: 100 for c in gan.classes_})  # doctest: +SKIP
    """
    out, job = Path(out), context()
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}.")
    check_output_dir(out, force=force, markers=SET_MARKERS)
    plan = _plan(gan, counts, format, int(seed))
    total = sum(plan.values())
    barrier("checking the output folder")  # every rank has checked before rank 0 makes anything
    with all_ranks_succeed("making the temporary folder"):
        partial = _make_partial(out, plan, format) if job.is_main else None
    partial = Path(broadcast(str(partial), "sharing the temporary folder"))
    started = time.perf_counter()
    try:
        with disk_errors(out):
            _write_set(gan, partial, plan, format=format, seed=int(seed), batch_size=int(batch_size),
                       model_sha256=model_sha256, progress=progress and job.is_main, job=job, force=force,
                       target=_target(out))
    except BaseException:
        if job.is_main:
            shutil.rmtree(partial, ignore_errors=True)
        raise
    seconds = time.perf_counter() - started
    return {
        "out": str(out),
        "format": format,
        "total": int(total),
        "counts": {str(c): int(k) for c, k in plan.items()},
        "seed": int(seed),
        "seconds": round(seconds, 3),
        "images_per_s": round(total / seconds, 1) if seconds > 0 else None,
        "manifest": str(out / MANIFEST),
        "model_sha256": model_sha256,
        "processes": job.world_size,
    }


def _target(out: Path) -> Path:
    """Where ``out`` is published: its resolved parent, and its own name (``out`` is not a link: checked)."""
    return out.parent.resolve() / out.name


def _make_partial(out: Path, plan: dict[Any, int], fmt: str) -> Path:
    """The temporary folder the set is built in, with its class folders (rank 0 makes it for every rank)."""
    with disk_errors(out):
        out.parent.mkdir(parents=True, exist_ok=True)
        clean_stale_partials(_target(out))  # what a killed earlier run left
        partial = make_partial_dir(_target(out))
        if fmt == "imagefolder":
            for c, k in plan.items():
                if k:
                    (partial / _folder_name(c)).mkdir()
    return partial


def _plan(gan: ConditionalDCGAN, counts: Mapping[Any, int], fmt: str, seed: int) -> dict[Any, int]:
    """``{class value: count}`` in the model's class order, checked against what ``fmt`` can hold."""
    by_index = resolve_counts(counts, gan.classes_)
    values = gan.classes_.tolist()
    plan = {values[i]: by_index[i] for i in sorted(by_index)}
    if fmt == "imagefolder":
        _png_mode(int(gan.image_shape_[0]))
        names = [_folder_name(c) for c in plan]
        if len(set(names)) != len(names):
            raise ValueError("Two classes map to the same folder name; use format 'npz' (--format npz).")
    elif np.asarray(values).dtype == object:
        # Object labels (e.g. from a pandas column) would need pickles in an .npz.
        raise ValueError("These class labels cannot be stored in an .npz without pickling; use "
                         "format 'imagefolder' (--format imagefolder).")
    total = sum(plan.values())
    if seed + total > MAX_SEED:
        raise ValueError(f"seed {seed} is too large for {total} images (the largest seed is {MAX_SEED}).")
    return plan


def _png_mode(channels: int) -> str:
    modes = {1: "L", 3: "RGB", 4: "RGBA"}
    if channels not in modes:
        raise ValueError(
            f"The model makes {channels}-channel images, which PNG cannot hold; use format 'npz' (--format npz)."
        )
    return modes[channels]


def _folder_name(value: Any) -> str:
    """The class value as a folder name, refused where it is not one."""
    name = str(value)
    if name in ("", ".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise ValueError(f"Class {value!r} cannot be a folder name; use format 'npz' (--format npz).")
    return name


def _batch_plan(plan: dict[Any, int], batch_size: int) -> list[tuple[Any, int, int]]:
    """The set's batches as one process makes them: (class, index of the first image in the set, size)."""
    batches, index = [], 0
    for c, k in plan.items():
        for start in range(0, k, batch_size):
            batches.append((c, index, min(batch_size, k - start)))
            index += batches[-1][2]
    return batches


def _batches(gan: ConditionalDCGAN, batches: list[tuple[Any, int, int]], *, seed: int, batch_size: int,
             output: str) -> Iterator[tuple[Any, int, Any, np.ndarray]]:
    """(class, index of the batch's first image in the set, images, seeds), batch by batch."""
    for c, index, m in batches:
        # One seed per image, contiguous over the set: image i has seed (seed + i).
        images, _, seeds = gan.sample({c: m}, random_state=seed + index, return_seeds=True,
                                      batch_size=batch_size, output=output)
        yield c, index, images, seeds


def _write_set(gan: ConditionalDCGAN, partial: Path, plan: dict[Any, int], *, format: str, seed: int,
               batch_size: int, model_sha256: str, progress: bool, job: Context, force: bool, target: Path) -> None:
    """Write this rank's block of the images and the manifest into ``partial``; once every
    rank has finished, rank 0 appends the other ranks' parts and publishes the set at
    ``target``. A failure on one rank fails all; every rank returns once the set is in place."""
    from tqdm.auto import tqdm

    all_batches = _batch_plan(plan, batch_size)
    mine = [all_batches[i] for i in shard(len(all_batches), job)]
    stack = contextlib.ExitStack()  # this rank's open files; rank 0 keeps its own open until it publishes
    try:
        with all_ranks_succeed("generating the set"):
            manifest_file = stack.enter_context(open(partial / (MANIFEST if job.is_main else
                                                                _part("manifest", job.rank)),
                                                     "w", newline="", encoding="utf-8"))
            bar = stack.enter_context(tqdm(total=sum(m for *_, m in mine), unit="img", disable=not progress,
                                           dynamic_ncols=True, desc="generate"))
            manifest = csv.writer(manifest_file)
            if job.is_main:
                manifest.writerow(MANIFEST_HEADER.split(","))
            npz = None if format == "imagefolder" else _NpzShare(stack, gan, partial, plan, seed=seed, job=job)
            rows = _write_pngs(gan, partial, plan, mine, seed=seed, batch_size=batch_size) if npz is None \
                else npz.write(gan, mine, seed=seed, batch_size=batch_size)
            for batch in rows:
                manifest.writerows((file, c, s, model_sha256) for file, c, s in batch)
                bar.update(len(batch))
            if not job.is_main:
                stack.close()  # the parts are complete on disk before rank 0 reads them
        with all_ranks_succeed("publishing the set"):
            if job.is_main:
                with stack:
                    if npz is not None:
                        npz.finish(plan, job.world_size)
                with open(partial / MANIFEST, "ab") as f:
                    for chunk in _read_parts(partial, "manifest", job.world_size, 1 << 20):
                        f.write(chunk)
                publish_dir(partial, target, force=force, markers=SET_MARKERS)
    finally:
        stack.close()


def _part(stem: str, rank: int) -> str:
    return f".{stem}.part-{rank}"


def _read_parts(partial: Path, stem: str, world_size: int, chunk_size: int) -> Iterator[bytes]:
    """Rank 0: the bytes of ranks 1.. parts ``partial/.STEM.part-R``, in rank order; each part is deleted once read."""
    for rank in range(1, world_size):
        path = partial / _part(stem, rank)
        with open(path, "rb") as f:
            while chunk := f.read(chunk_size):
                yield chunk
        path.unlink()


def _write_pngs(gan: ConditionalDCGAN, partial: Path, plan: dict[Any, int], batches: list[tuple[Any, int, int]], *,
                seed: int, batch_size: int) -> Iterator[list[tuple[Any, str, int]]]:
    """Write ``partial/<class>/<index>.png`` for ``batches``; yields each batch's manifest rows (file, class, seed)."""
    from PIL import Image

    digits = max(6, len(str(max(sum(plan.values()) - 1, 0))))
    folders = {c: _folder_name(c) for c in plan}
    for c, index, images, seeds in _batches(gan, batches, seed=seed, batch_size=batch_size, output="tensor"):
        arr = to_uint8(images)  # (m, C, H, W)
        arr = arr[:, 0] if arr.shape[1] == 1 else arr.transpose(0, 2, 3, 1)
        rows = []
        for j in range(len(arr)):
            rel = f"{folders[c]}/{index + j:0{digits}d}.png"
            Image.fromarray(arr[j]).save(partial / rel, format="PNG")
            rows.append((rel, str(c), int(seeds[j])))
        yield rows


class _NpzShare:
    """This rank's share of ``samples.npz``: rank 0 streams its X into the .npz, the other
    ranks into part files that :meth:`finish` appends, then y is added."""

    def __init__(self, stack: contextlib.ExitStack, gan: ConditionalDCGAN, partial: Path, plan: dict[Any, int], *,
                 seed: int, job: Context) -> None:
        probe = gan.sample({gan.classes_.tolist()[0]: 0}, random_state=seed)[0]
        probe = probe.numpy() if hasattr(probe, "numpy") else np.asarray(probe)
        self.dtype, self.partial, self.is_main = probe.dtype, partial, job.is_main
        self.y_dtype = np.asarray(gan.classes_.tolist()).dtype
        if job.is_main:
            self.npz = stack.enter_context(_NpzWriter(partial / SAMPLES_NPZ))
            self.X: Any = self.npz.array("X", (sum(plan.values()),) + probe.shape[1:], probe.dtype)
        else:
            self.X = stack.enter_context(open(partial / _part("X", job.rank), "wb"))

    def write(self, gan: ConditionalDCGAN, batches: list[tuple[Any, int, int]], *, seed: int,
              batch_size: int) -> Iterator[list[tuple[Any, str, int]]]:
        """Write X for ``batches``; yields each batch's manifest rows (row, class, seed)."""
        for c, index, images, seeds in _batches(gan, batches, seed=seed, batch_size=batch_size, output="native"):
            images = np.ascontiguousarray(images.numpy() if hasattr(images, "numpy") else images, dtype=self.dtype)
            self.X.write(images if self.is_main else images.tobytes())
            yield [(index + j, str(c), int(seeds[j])) for j in range(len(seeds))]

    def finish(self, plan: dict[Any, int], world_size: int) -> None:
        """Rank 0: append the other ranks' X, then y (from the plan: class by class, in order)."""
        for chunk in _read_parts(self.partial, "X", world_size, self.dtype.itemsize << 20):
            self.X.write(np.frombuffer(chunk, dtype=self.dtype))
        self.X.close()
        self.npz.save("y", np.repeat(np.asarray(list(plan), dtype=self.y_dtype), list(plan.values())))


# A fixed member time (zip's earliest), so that the same set is the same file, byte for byte.
_MEMBER_TIME = (1980, 1, 1, 0, 0, 0)


class _NpzArray(NpyStream):
    """One .npy member of an .npz being written, filled batch by batch in order."""

    def close(self) -> None:
        self.finish()
        self.file.close()


class _NpzWriter:
    """An .npz written as a stream of .npy members (:class:`ganaug._io.NpyStream`)."""

    def __init__(self, path: Path) -> None:
        self._file = open(path, "wb")  # noqa: SIM115  (closed in __exit__)
        self._zip = zipfile.ZipFile(self._file, "w", compression=zipfile.ZIP_STORED, allowZip64=True)
        self._arrays: list[_NpzArray] = []

    def __enter__(self) -> _NpzWriter:  # noqa: PYI034  (Self needs Python 3.11)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None:
            self._zip.close()
            self._file.close()
            return
        # After an error (a full disk) the half-written file is deleted with its folder:
        # close every handle now, quietly, so none tries to write again when collected.
        for handle in [a.file for a in self._arrays] + [self._zip, self._file]:
            with contextlib.suppress(Exception):
                handle.close()

    def array(self, name: str, shape: tuple[int, ...], dtype: Any) -> _NpzArray:
        member = zipfile.ZipInfo(f"{name}.npy", date_time=_MEMBER_TIME)
        array = _NpzArray(self._zip.open(member, "w", force_zip64=True), shape, dtype)
        self._arrays.append(array)
        return array

    def save(self, name: str, values: Any) -> None:
        member = self.array(name, tuple(values.shape), values.dtype)
        member.write(values)
        member.close()
