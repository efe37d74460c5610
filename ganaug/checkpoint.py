"""Checkpoints: a directory with safetensors weights and a JSON description.

Layout of a checkpoint directory::

    ganaug.json                   # format version, model config, data spec, classes, training
    weights-<sha256[:16]>.safetensors

Loading never executes code from the files: JSON and safetensors hold data only.

Saving is atomic. The weights go to a new file named after their hash, then
``ganaug.json`` (which names that file and its SHA-256) is replaced in one
``os.replace``. A save killed at any point leaves either the old checkpoint or the new
one, both complete; stale weight files are removed only after the switch.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as _st_load
from safetensors.torch import save as _st_save

from ._io import atomic_write_bytes, fsync_dir
from ._version import __version__

CONFIG_NAME = "ganaug.json"
FORMAT_NAME = "ganaug-checkpoint"
FORMAT_VERSION = 1

__all__ = [
    "CONFIG_NAME",
    "CheckpointError",
    "is_checkpoint",
    "read_checkpoint",
    "read_metadata",
    "write_checkpoint",
]


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt or does not match what it is loaded into."""


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
    return path


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check ``ganaug.json`` without touching the weights."""
    path = Path(path)
    config = path / CONFIG_NAME
    if not path.exists():
        raise FileNotFoundError(f"No checkpoint at {path}: the directory does not exist.")
    if not config.is_file():
        raise FileNotFoundError(
            f"No ganaug checkpoint in {path}: {CONFIG_NAME} is missing. Point to the directory that "
            "ConditionalDCGAN.save() or `ganaug train` wrote."
        )
    try:
        document = json.loads(config.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"Checkpoint file {config} is corrupt (not valid JSON: {exc}).") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{config} is not a ganaug checkpoint description (missing format tag).")
    version = document.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{config} has checkpoint format version {version!r}; this ganaug ({__version__}) reads up to "
            f"{FORMAT_VERSION}. Upgrade ganaug to load it."
        )
    for key in ("model", "data", "training", "weights"):
        if key not in document:
            raise CheckpointError(f"Checkpoint file {config} is corrupt: the {key!r} section is missing.")
    return document


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Read a checkpoint: (metadata, tensors on the CPU). Checks the weights' SHA-256."""
    path = Path(path)
    document = read_metadata(path)
    weights = path / str(document["weights"].get("file", ""))
    if not weights.is_file():
        raise CheckpointError(f"Checkpoint weights file {weights} is missing.")
    blob = weights.read_bytes()
    if hashlib.sha256(blob).hexdigest() != document["weights"].get("sha256"):
        raise CheckpointError(
            f"Checkpoint weights file {weights} is corrupt: its SHA-256 does not match {CONFIG_NAME}."
        )
    try:
        tensors = _st_load(blob)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"Checkpoint weights file {weights} is corrupt: {exc}") from exc
    return document, tensors


def optimizer_to_tensors(prefix: str, optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer's state dict into tensors (for safetensors) and JSON metadata."""
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, param_state in sd["state"].items():
        for name, value in param_state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{prefix}.state.{idx}.{name}"] = value
            else:
                scalars.setdefault(str(idx), {})[name] = value
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in sd["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def optimizer_from_tensors(
    prefix: str, optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict[str, Any]
) -> None:
    state: dict[int, dict[str, Any]] = {}
    head = f"{prefix}.state."
    for key, value in tensors.items():
        if key.startswith(head):
            idx, name = key[len(head) :].split(".", 1)
            state.setdefault(int(idx), {})[name] = value
    for idx, values in meta.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(values)
    groups = []
    for g in meta["param_groups"]:
        g = dict(g)
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
        groups.append(g)
    optimizer.load_state_dict({"state": state, "param_groups": groups})
