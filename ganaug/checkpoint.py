"""Checkpoints: a directory with safetensors weights and a JSON description.

Layout of a checkpoint directory::

    ganaug.json                   # format version, model config, data spec, classes, training
    weights-<sha256[:16]>.safetensors

Loading never executes code from the files: JSON and safetensors hold data only.

Saving is atomic. The weights go to a new file named after their hash, then
``ganaug.json`` (which names that file and its SHA-256) is replaced in one
``os.replace``. A save killed at any point leaves either the old checkpoint or the new
one, both complete; stale weight files are removed only after the switch.

Reading treats both files as untrusted: a checkpoint may come from anyone. Nothing a
file declares is allocated before it has been checked, and every malformed checkpoint
ends in a :class:`CheckpointError` that names the file and the field:

1. ``ganaug.json`` is refused above :data:`MAX_CONFIG_BYTES` before it is parsed (and
   above :data:`MAX_JSON_CONTAINERS` objects and lists, or nested too deep), then checked
   against :data:`SCHEMA`: the type and range of every field, a bound on every size (the
   ``MAX_*`` constants below), and consistency between the fields (class list against
   ``n_classes`` and the class counts, image spec against the model's channels and size,
   network sizes against each other).
2. The networks it describes are built on torch's ``meta`` device (no memory) to learn
   the exact tensor names, shapes and dtypes the weights file must hold.
3. The weights file must be a regular file inside the checkpoint folder named
   ``weights-<16 hex digits>.safetensors`` (no symlink, no path). Only its safetensors
   header is read at first: its length is bounded by the tensors the model needs, its
   tensors must tile the data exactly up to the end of the file, and their names, shapes
   and dtypes must be the ones of step 2.
4. The SHA-256 recorded in ``ganaug.json`` is checked by streaming over the file.
5. Only then are the tensors read, one at a time; floating-point weights must be finite.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import re
import stat
import sys
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from safetensors.torch import save as _st_save

from ._io import atomic_write_bytes, fsync_dir, readinto_all
from ._version import __version__
from .augment import check_policy
from .classifier import ClassifierConfig, DomainClassifier
from .data import MIN_IMAGE_SIZE
from .losses import LOSSES
from .models import ARCHITECTURES, Discriminator, Generator, ModelConfig, meta_device
from .trainer import HISTORY_KEYS

CONFIG_NAME = "ganaug.json"
FORMAT_NAME = "ganaug-checkpoint"
FORMAT_VERSION = 1

__all__ = [
    "CONFIG_NAME",
    "CheckpointError",
    "SCHEMA",
    "decode_classes",
    "is_checkpoint",
    "read_checkpoint",
    "read_metadata",
    "write_checkpoint",
]

# --------------------------------------------------------------------------- bounds
# Generous but finite: far above any model ganaug trains on one machine, far below what
# would exhaust memory before the weights file contradicts the description.

#: Largest ganaug.json read (100,000 classes with long names need a few MB).
MAX_CONFIG_BYTES = 8 * 2**20
#: Most JSON objects and lists in ganaug.json (a real one has about 50): bounds the memory
#: that parsing a hostile file may take.
MAX_JSON_CONTAINERS = 200_000
#: Deepest nesting of a free-form JSON value (``model.extra``, ``params``).
MAX_JSON_DEPTH = 16
#: Absolute cap on a safetensors header; the cap applied is usually far lower:
#: :data:`HEADER_BYTES_PER_TENSOR` for each tensor the described model may hold.
MAX_HEADER_BYTES = 100 * 2**20
HEADER_BYTES_PER_TENSOR = 1024
#: Model and data sizes.
MAX_CLASSES = 100_000
MAX_CLASS_NAME = 1024  # characters of one class value
MAX_CHANNELS = 64
MAX_IMAGE_SIZE = 4096  # pixels a side (the smallest is ganaug.data.MIN_IMAGE_SIZE)
MAX_LATENT_DIM = 4096
MAX_EMBED_DIM = 4096
MAX_FEATURE_DIM = 4096  # the domain classifier's feature layer
MAX_WIDTH = 8192  # channels of one network block
MAX_BLOCKS = 12  # entries of g_widths and of d_widths
KERNEL_SIZES = (1, 15)  # smallest and largest convolution kernel
MAX_PARAMETERS = 2_000_000_000  # of all networks together (8 GB of float32)
MAX_DTYPE_ITEMSIZE = 4 * MAX_CLASS_NAME  # bytes of one class value (numpy's '<U1024')
MAX_EPOCHS = 10**9
MAX_STEPS = 2**40
MAX_BATCH_SIZE = 2**24

_WEIGHTS_NAME = re.compile(r"weights-[0-9a-f]{16}\.safetensors")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_INDEX = re.compile(r"0|[1-9][0-9]{0,6}")
_READ_CHUNK = 2**20


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt or does not match what it is loaded into."""


# --------------------------------------------------------------------------- schema


class Field(NamedTuple):
    """One field of :data:`SCHEMA`: a kind of JSON value and its bounds.

    ``low``/``high`` bound the value of an ``int`` or ``number`` and the length of a
    ``text``, ``list`` or ``mapping``. ``of`` is the item's field (``list``, ``mapping``),
    the fields (``section``), the allowed values (``choice``) or a regex (``text``).
    """

    kind: str  # int, number, bool, text, choice, scalar, list, section, mapping, json
    low: Any = None
    high: Any = None
    of: Any = None
    null: bool = False  # JSON null is allowed too
    required: bool = True  # in a section: the key must be present
    open: str = ""  # number: "low", "high" or "both" ends excluded from the range
    extra: Any = None  # section: the field any unknown key must satisfy (None: unknown keys refused)


def integer(low: int, high: int) -> Field:
    return Field("int", low, high)


def number(low: float, high: float, open: str = "") -> Field:  # noqa: A002
    return Field("number", low, high, open=open)


def text(high: int, pattern: re.Pattern | None = None) -> Field:
    return Field("text", 0, high, of=pattern)


def choice(*values: Any) -> Field:
    return Field("choice", of=values)


def list_of(item: Field, low: int, high: int) -> Field:
    return Field("list", low, high, of=item)


def section(fields: dict[str, Field], extra: Field | None = None) -> Field:
    return Field("section", of=fields, extra=extra)


def mapping(value: Field, high: int) -> Field:
    return Field("mapping", 0, high, of=value)


def nullable(f: Field) -> Field:
    return f._replace(null=True)


def optional(f: Field) -> Field:
    return f._replace(required=False)


FLAG = Field("bool")
SCALAR = Field("scalar", high=MAX_CLASS_NAME)  # a string (of at most `high` characters), number or boolean
JSON = Field("json", high=MAX_JSON_DEPTH)  # any JSON value nested at most MAX_JSON_DEPTH deep
_SIDE = integer(MIN_IMAGE_SIZE, MAX_IMAGE_SIZE)
_RATE = number(0, 1, open="high")  # [0, 1)
_BETAS = list_of(_RATE, 2, 2)
_SIZE = integer(1, MAX_CHANNELS * MAX_IMAGE_SIZE**2)  # one axis of an image as the caller gave it
_LAYOUTS = ("NHW", "NHWC", "NCHW")

#: What both networks' configs say about the images and classes.
_IMAGE_FIELDS = {
    "n_classes": integer(1, MAX_CLASSES),
    "channels": integer(1, MAX_CHANNELS),
    "height": _SIDE,
    "width": _SIDE,
}
#: ModelConfig (ganaug.models). Optional fields have defaults in the dataclass.
MODEL_FIELDS = {
    **_IMAGE_FIELDS,
    "latent_dim": optional(integer(1, MAX_LATENT_DIM)),
    "embed_dim": optional(integer(1, MAX_EMBED_DIM)),
    "g_widths": optional(list_of(integer(1, MAX_WIDTH), 1, MAX_BLOCKS)),
    "d_widths": optional(list_of(integer(1, MAX_WIDTH), 1, MAX_BLOCKS)),
    "base_size": optional(list_of(integer(1, MAX_IMAGE_SIZE), 2, 2)),
    "kernel_size": optional(integer(*KERNEL_SIZES)),
    "base_block": optional(FLAG),
    "leak": optional(number(0, 1)),
    "dropout": optional(_RATE),
    "spectral_norm": optional(FLAG),
    "minibatch_std": optional(FLAG),
    "init": optional(choice("xavier", "normal")),
    "arch": optional(choice(*ARCHITECTURES)),
    "extra": optional(mapping(JSON, 64)),
}
#: ClassifierConfig (ganaug.classifier).
CLASSIFIER_FIELDS = {
    **_IMAGE_FIELDS,
    "feature_dim": optional(integer(1, MAX_FEATURE_DIM)),
}
#: TrainConfig (ganaug.trainer) plus the progress of the run.
TRAINING_FIELDS = {
    "max_epochs": optional(integer(1, MAX_EPOCHS)),
    "batch_size": optional(integer(1, MAX_BATCH_SIZE)),
    "lr_g": optional(number(0, 100)),
    "lr_d": optional(number(0, 100)),
    "betas": _BETAS,  # TrainConfig.from_dict requires it
    "loss": optional(choice(*LOSSES)),
    "augment": optional(nullable(text(200))),
    "ema": optional(nullable(number(0, 1, open="both"))),
    "max_time": optional(nullable(number(0, 1e12, open="low"))),
    "epoch": integer(0, MAX_EPOCHS),
    "step": integer(0, MAX_STEPS),
}
#: One Adam parameter group; keys of other torch versions are accepted when they are plain values.
PARAM_GROUP_FIELDS = {
    "params": list_of(integer(0, 10**6), 0, 10**6),
    "lr": optional(number(0, 100)),
    "betas": optional(_BETAS),
    "eps": optional(number(0, 1)),
    "weight_decay": optional(number(0, 100)),
    "amsgrad": optional(FLAG),
    "maximize": optional(FLAG),
    "capturable": optional(FLAG),
    "differentiable": optional(FLAG),
    "decoupled_weight_decay": optional(FLAG),
    "foreach": optional(nullable(FLAG)),
    "fused": optional(nullable(FLAG)),
}
OPTIMIZER_FIELDS = {
    "param_groups": list_of(section(PARAM_GROUP_FIELDS, extra=nullable(SCALAR)), 1, 1),
    # Non-tensor state per parameter index: only Adam's step counter of older torch versions.
    "scalars": optional(mapping(section({"step": optional(number(0, MAX_STEPS))}), 10**6)),
}
#: ArraySpec (ganaug.data).
SPEC_FIELDS = {
    "container": choice("numpy", "torch"),
    "layout": choice(*_LAYOUTS, "flat"),
    "dtype": text(32),
    "value_range": list_of(number(-math.inf, math.inf), 2, 2),
    "shape": list_of(_SIZE, 1, 3),
    "flat_layout": optional(nullable(choice(*_LAYOUTS))),
}
DATA_FIELDS = {
    "classes": list_of(SCALAR, 1, MAX_CLASSES),
    "classes_dtype": text(32),
    "class_counts": list_of(integer(0, 2**53), 1, MAX_CLASSES),
    "spec": section(SPEC_FIELDS),
}
#: The whole of ganaug.json. Unknown top-level keys are ignored (they describe, never steer).
SCHEMA = section(
    {
        "format": choice(FORMAT_NAME),
        "format_version": integer(1, FORMAT_VERSION),
        "ganaug_version": optional(text(200)),
        "torch_version": optional(text(200)),
        "created": optional(text(200)),
        # The estimator's constructor arguments: ConditionalDCGAN.load checks them with its own rules.
        "params": mapping(Field("json", high=2), 256),
        "seed": integer(0, 2**63 - 1),
        "model": section(MODEL_FIELDS),
        "training": section(TRAINING_FIELDS),
        "optimizers": section({"opt_g": section(OPTIMIZER_FIELDS), "opt_d": section(OPTIMIZER_FIELDS)}),
        "classifier": optional(nullable(section(CLASSIFIER_FIELDS))),
        "data": section(DATA_FIELDS),
        "weights": section({"file": text(64, _WEIGHTS_NAME), "sha256": text(64, _SHA256)}),
    },
    extra=JSON,
)


class _Invalid(ValueError):
    """A field of ganaug.json breaks the schema: (dotted path, what is wrong)."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(where, problem)
        self.where, self.problem = where, problem


def _short(value: Any) -> str:
    r = repr(value)
    return r if len(r) <= 60 else r[:57] + "..."


def _describe(f: Field) -> str:
    if f.kind == "int":
        return f"an integer from {f.low} to {f.high}"
    if f.kind == "number":
        lo = "(" if f.open in ("low", "both") else "["
        hi = ")" if f.open in ("high", "both") else "]"
        return "a finite number" if math.isinf(f.low) else f"a number in {lo}{f.low:g}, {f.high:g}{hi}"
    if f.kind == "bool":
        return "true or false"
    if f.kind == "text":
        return f"a string of at most {f.high} characters" + (f" matching {f.of.pattern}" if f.of else "")
    if f.kind == "choice":
        return "one of " + ", ".join(repr(v) for v in f.of)
    if f.kind == "scalar":
        return f"a string (at most {f.high} characters), a finite number or a boolean"
    if f.kind == "list":
        return f"a list of {f.low} items" if f.low == f.high else f"a list of {f.low} to {f.high} items"
    if f.kind in ("section", "mapping"):
        return "an object"
    return "a JSON value"


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _json_depth_ok(value: Any, limit: int) -> bool:
    stack = [(value, 0)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, (dict, list)):
            if depth >= limit:
                return False
            stack.extend((x, depth + 1) for x in (v.values() if isinstance(v, dict) else v))
    return True


def validate(value: Any, f: Field = SCHEMA, where: str = "") -> None:
    """Check ``value`` (parsed JSON) against field ``f``; raises ``_Invalid(where, problem)``."""
    if value is None:
        if f.null or f.kind == "json":
            return
        raise _Invalid(where, f"must be {_describe(f)}, got null")
    kind = f.kind
    bad = _Invalid(where, f"must be {_describe(f)}, got {_short(value)}")
    if kind == "int":
        if not _is_int(value) or not f.low <= value <= f.high:
            raise bad
    elif kind == "number":
        if not _is_number(value) or not math.isfinite(value):
            raise bad
        if (value < f.low or value > f.high or (value == f.low and f.open in ("low", "both"))
                or (value == f.high and f.open in ("high", "both"))):
            raise bad
    elif kind == "bool":
        if not isinstance(value, bool):
            raise bad
    elif kind == "text":
        if not isinstance(value, str) or len(value) > f.high or (f.of is not None and not f.of.fullmatch(value)):
            raise bad
    elif kind == "choice":
        if not isinstance(value, str) or value not in f.of:
            raise bad
    elif kind == "scalar":
        ok = (isinstance(value, str) and len(value) <= f.high) or isinstance(value, bool) or _is_int(value) or (
            isinstance(value, float) and math.isfinite(value))
        if not ok:
            raise bad
    elif kind == "list":
        if not isinstance(value, list) or not f.low <= len(value) <= f.high:
            raise bad
        for i, item in enumerate(value):
            validate(item, f.of, f"{where}[{i}]")
    elif kind == "mapping":
        if not isinstance(value, dict) or len(value) > f.high:
            raise _Invalid(where, f"must be an object of at most {f.high} entries, got {_short(value)}")
        for key, item in value.items():
            validate(item, f.of, f"{where}.{key}" if where else key)
    elif kind == "section":
        if not isinstance(value, dict):
            raise bad
        for key, sub in f.of.items():
            if key in value:
                validate(value[key], sub, f"{where}.{key}" if where else key)
            elif sub.required:
                raise _Invalid(f"{where}.{key}" if where else key, "is missing")
        for key in value:
            if key not in f.of:
                if f.extra is None:
                    raise _Invalid(f"{where}.{key}" if where else key, "is not a known field")
                validate(value[key], f.extra, f"{where}.{key}" if where else key)
    elif kind == "json":
        if not _json_depth_ok(value, f.high):
            raise _Invalid(where, f"is nested deeper than {f.high} levels")
    else:  # pragma: no cover - a typo in the schema
        raise AssertionError(f"unknown schema kind {kind!r}")


# --------------------------------------------------------------------------- consistency


def _simple_dtype(name: str, kinds: str, where: str, max_itemsize: int) -> np.dtype:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dtype = np.dtype(name)
    except (TypeError, ValueError, SyntaxError) as exc:
        raise _Invalid(where, f"{name!r} is not a numpy dtype ({exc})") from None
    if dtype.fields is not None or dtype.subdtype is not None or dtype.kind not in kinds:
        raise _Invalid(where, f"{name!r} is not a plain dtype of kind {', '.join(repr(k) for k in kinds)}")
    if dtype.itemsize > max_itemsize:
        raise _Invalid(where, f"{name!r} takes {dtype.itemsize} bytes a value, more than {max_itemsize}")
    return dtype


def decode_classes(data: dict[str, Any]) -> np.ndarray:
    """The class values of a checkpoint's ``data`` section as the array ``fit`` made.

    ``classes_dtype`` must be a plain numpy dtype (bool, integer, float or string of at
    most :data:`MAX_CLASS_NAME` characters). ``'|O'`` (labels ``fit`` got as Python
    objects, e.g. a pandas column of strings) is rebuilt element by element from the JSON
    strings and numbers, never from anything else. Raises ``_Invalid``.
    """
    values = data["classes"]
    dtype = _simple_dtype(data["classes_dtype"], "biufUO", "data.classes_dtype", MAX_DTYPE_ITEMSIZE)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            if dtype.kind == "O":
                classes = np.empty(len(values), dtype=object)
                classes[:] = values
            else:
                classes = np.asarray(values, dtype=dtype)
    except (TypeError, ValueError, OverflowError, Warning) as exc:
        raise _Invalid("data.classes", f"do not fit classes_dtype {data['classes_dtype']!r} ({exc})") from None
    if classes.ndim != 1 or classes.tolist() != values:
        raise _Invalid("data.classes", f"change when stored as classes_dtype {data['classes_dtype']!r}")
    if len(set(values)) != len(values):
        raise _Invalid("data.classes", "must be distinct values")
    return classes


def _check_model(cfg: ModelConfig) -> None:
    if cfg.base_block and len(cfg.g_widths) < 2:
        raise _Invalid("model.g_widths", "needs at least 2 widths when model.base_block is true")
    stages = len(cfg.g_widths) - int(cfg.base_block)  # stride-2 blocks: each doubles the size
    for i, side in enumerate((cfg.height, cfg.width)):
        need = -(-side // 2**stages)
        if cfg.base_size[i] != need:
            raise _Invalid(f"model.base_size[{i}]", f"is {cfg.base_size[i]}, but {stages} stride-2 generator blocks "
                           f"make a side of {side} pixels from {need}")
    k, pad = cfg.kernel_size, (cfg.kernel_size - 1) // 2
    h, w = cfg.height, cfg.width
    for _ in cfg.d_widths:
        h, w = (h + 2 * pad - k) // 2 + 1, (w + 2 * pad - k) // 2 + 1
        if h < 1 or w < 1:
            raise _Invalid("model.d_widths", f"{len(cfg.d_widths)} stride-2 convolutions of kernel {k} shrink "
                           f"{cfg.height}x{cfg.width} images to nothing")


def _check_spec(spec: dict[str, Any], cfg: ModelConfig) -> None:
    dtype = _simple_dtype(spec["dtype"], "biuf", "data.spec.dtype", 16)
    lo, hi = spec["value_range"]
    if not hi > lo:
        raise _Invalid("data.spec.value_range", f"must be [low, high] with high > low, got {[lo, hi]}")
    if dtype.kind == "b":
        fits = 0 <= lo and hi <= 1
    elif dtype.kind in "iu":
        info = np.iinfo(dtype)
        fits = int(info.min) <= lo and hi <= int(info.max)
    else:
        big = float(np.finfo(dtype).max)
        fits = -big <= lo and hi <= big
    if not fits:
        raise _Invalid("data.spec.value_range", f"{[lo, hi]} does not fit the images' dtype {spec['dtype']}")
    c, h, w = cfg.channels, cfg.height, cfg.width
    layout, flat = spec["layout"], spec.get("flat_layout")
    if layout == "flat":
        if flat is None:
            raise _Invalid("data.spec.flat_layout", "is needed when the layout is 'flat'")
        expected = [c * h * w]
    else:
        if flat is not None:
            raise _Invalid("data.spec.flat_layout", f"must be null when the layout is {layout!r}")
        expected = {"NHW": [h, w], "NHWC": [h, w, c], "NCHW": [c, h, w]}[layout]
    if (flat or layout) == "NHW" and c != 1:
        raise _Invalid("data.spec.layout", f"'NHW' images have one channel but model.channels is {c}")
    if spec["shape"] != expected:
        raise _Invalid("data.spec.shape", f"is {spec['shape']} but the model makes {layout} images of shape {expected}")


def _check_consistency(doc: dict[str, Any]) -> None:
    """Cross-field checks of a document that passed :func:`validate`; raises ``_Invalid``."""
    cfg = ModelConfig.from_dict(doc["model"])
    _check_model(cfg)
    classifier = doc.get("classifier")
    if classifier:
        for key in ("n_classes", "channels", "height", "width"):
            if classifier[key] != getattr(cfg, key):
                raise _Invalid(f"classifier.{key}", f"is {classifier[key]} but model.{key} is {getattr(cfg, key)}")
    data = doc["data"]
    for key in ("classes", "class_counts"):
        if len(data[key]) != cfg.n_classes:
            raise _Invalid(f"data.{key}", f"has {len(data[key])} entries but model.n_classes is {cfg.n_classes}")
    decode_classes(data)
    _check_spec(data["spec"], cfg)
    training = doc["training"]
    try:
        check_policy(training.get("augment"))
    except ValueError as exc:
        raise _Invalid("training.augment", str(exc)) from None
    if doc["weights"]["file"][len("weights-") : len("weights-") + 16] != doc["weights"]["sha256"][:16]:
        raise _Invalid("weights.file", "must be named after the first 16 digits of weights.sha256")


# --------------------------------------------------------------------------- files


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
    if not _is_int(version) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{config} has checkpoint format version {_short(version)}; this ganaug ({__version__}) reads up to "
            f"{FORMAT_VERSION}. Upgrade ganaug to load it."
        )
    for key in ("model", "data", "training", "weights"):
        if key not in document:
            raise CheckpointError(f"Checkpoint file {config} is corrupt: the {key!r} section is missing.")
    try:
        validate(document)
        _check_consistency(document)
    except _Invalid as exc:
        raise CheckpointError(f"Checkpoint file {config} is corrupt: field {exc.where!r} {exc.problem}.") from None
    return document


# --------------------------------------------------------------------------- weights

# safetensors dtype names -> bytes per element.
_ITEMSIZE = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
             "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}
# The ones ganaug's networks use, as torch and (little-endian) numpy dtypes.
_TORCH_TO_ST = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64"}
_NUMPY = {"F32": np.dtype("<f4"), "F64": np.dtype("<f8"), "I64": np.dtype("<i8")}
_STEP_DTYPES = frozenset({"F32", "F64", "I64"})


class _Expected(NamedTuple):
    """A tensor the weights file may hold."""

    shape: tuple[int, ...] | None  # None: 1-D of at most `longest` elements
    dtypes: frozenset[str]
    required: bool
    owner: str  # what it belongs to, for messages
    finite: bool  # floating-point values must be finite
    longest: int = 0


def expected_tensors(document: dict[str, Any]) -> tuple[dict[str, _Expected], dict[str, int], int]:
    """What the weights of a validated document must hold.

    Returns (name -> expected tensor, optimizer name -> parameter count, parameters of
    all networks). The networks are built on the meta device: nothing is allocated.
    """
    cfg = ModelConfig.from_dict(document["model"])
    classifier_doc = document.get("classifier")
    with meta_device():
        generator, discriminator = Generator(cfg), Discriminator(cfg)
        classifier = DomainClassifier(ClassifierConfig.from_dict(classifier_doc)) if classifier_doc else None
    nets: list[tuple[str, torch.nn.Module]] = [("generator", generator), ("discriminator", discriminator)]
    if document["training"].get("ema") is not None:
        nets.append(("train_generator", generator))  # the raw weights next to the moving average
    if classifier is not None:
        nets.append(("classifier", classifier))
    expected: dict[str, _Expected] = {}
    for owner, net in nets:
        for key, t in net.state_dict().items():
            expected[f"{owner}.{key}"] = _Expected(tuple(t.shape), frozenset({_TORCH_TO_ST[t.dtype]}), True, owner,
                                                   t.is_floating_point())
    # The raw generator counts twice: loading allocates it next to the moving average.
    n_parameters = sum(p.numel() for _, net in nets for p in net.parameters())
    counts = {}
    for opt, net in (("opt_g", generator), ("opt_d", discriminator)):
        params = list(net.parameters())
        counts[opt] = len(params)
        for i, p in enumerate(params):
            for moment in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
                expected[f"{opt}.state.{i}.{moment}"] = _Expected(
                    tuple(p.shape), frozenset({_TORCH_TO_ST[p.dtype]}), False, f"optimizer {opt}", True)
            expected[f"{opt}.state.{i}.step"] = _Expected((), _STEP_DTYPES, False, f"optimizer {opt}", True)
    for key in HISTORY_KEYS:
        expected[f"history.{key}"] = _Expected(None, frozenset({"F64"}), False, "training history", False,
                                               longest=document["training"]["step"])
    return expected, counts, n_parameters


def _check_optimizers(document: dict[str, Any], counts: dict[str, int], names: set[str], config: Path) -> None:
    for opt, n in counts.items():
        meta = document["optimizers"][opt]
        group = meta["param_groups"][0]
        if group["params"] != list(range(n)):
            raise CheckpointError(
                f"Checkpoint file {config} is corrupt: field 'optimizers.{opt}.param_groups[0].params' must list "
                f"the {n} parameters of the network as 0 to {n - 1}."
            )
        scalars = meta.get("scalars", {})
        for idx in scalars:
            if not _INDEX.fullmatch(idx) or int(idx) >= n:
                raise CheckpointError(
                    f"Checkpoint file {config} is corrupt: field 'optimizers.{opt}.scalars.{idx}' is not a parameter "
                    f"index from 0 to {n - 1}."
                )
        needed = ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if group.get("amsgrad") else [])
        for i in range(n):
            have = {m for m in needed + ["step"] if f"{opt}.state.{i}.{m}" in names}
            if not have and str(i) not in scalars:
                continue  # a parameter without state: Adam starts it afresh
            missing = [m for m in needed if m not in have]
            if "step" not in have and "step" not in scalars.get(str(i), {}):
                missing.append("step")
            if missing:
                raise CheckpointError(
                    f"Checkpoint weights in {config.parent} do not match the optimizer {opt} described in "
                    f"{CONFIG_NAME}: the state of parameter {i} lacks {', '.join(missing)}."
                )


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
            raise corrupt(f"header entry {_short(name)} is not {{dtype, shape, data_offsets}}")
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if not isinstance(dtype, str) or dtype not in _ITEMSIZE:
            raise corrupt(f"tensor {_short(name)} has an unknown dtype {_short(dtype)}")
        if not isinstance(shape, list) or len(shape) > 8 or not all(_is_int(s) and s >= 0 for s in shape):
            raise corrupt(f"tensor {_short(name)} has an invalid shape {_short(shape)}")
        if (not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_int(o) for o in offsets)
                or not 0 <= offsets[0] <= offsets[1] <= data_len):
            raise corrupt(f"tensor {_short(name)} has data_offsets {_short(offsets)} outside the "
                          f"{data_len:,} bytes of data")
        nbytes = math.prod(shape) * _ITEMSIZE[dtype]
        if offsets[1] - offsets[0] != nbytes:
            raise corrupt(f"tensor {_short(name)} spans {offsets[1] - offsets[0]:,} bytes but a {dtype} tensor of "
                          f"shape {_short(shape)} takes {nbytes:,}")
        entries[name] = (dtype, shape, offsets[0], offsets[1])
    pos = 0
    for name, (_, _, begin, end) in sorted(entries.items(), key=lambda kv: (kv[1][2], kv[1][3])):
        if begin != pos:
            raise corrupt(f"tensor {_short(name)} starts at byte {begin:,} of the data but the one before ends at "
                          f"{pos:,} (tensors overlap or leave a gap)")
        pos = end
    if pos != data_len:
        raise corrupt(f"its tensors end at byte {pos:,} of the data but the file holds {data_len:,} bytes of data")
    return entries, 8 + n


def _compare(header: dict[str, tuple[str, list[int], int, int]], expected: dict[str, _Expected], weights: Path) -> None:
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
        raise mismatch(owner if owner in ("generator", "discriminator", "train_generator", "classifier") else "model",
                       f"unexpected tensor {_short(unexpected[0])}{more}")


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Read a checkpoint: (metadata, tensors on the CPU), after every check of the module docstring."""
    path = Path(path)
    document = read_metadata(path)
    config = path / CONFIG_NAME
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
    weights = path / document["weights"]["file"]  # validated: a plain file name, no separator or '..'

    def corrupt(detail: str) -> CheckpointError:
        return CheckpointError(f"Checkpoint weights file {weights} is corrupt: {detail}.")

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
    with f:
        if (st.st_dev, st.st_ino) != (link.st_dev, link.st_ino):
            raise CheckpointError(f"Checkpoint weights file {weights} changed while it was opened.")
        limit = min(MAX_HEADER_BYTES, 4096 + HEADER_BYTES_PER_TENSOR * len(expected))
        try:
            header, data_start = _read_header(f, st.st_size, limit, corrupt)
        except EOFError:
            raise corrupt("it ends inside its header") from None
        _compare(header, expected, weights)
        _check_optimizers(document, counts, set(header), config)
        # The hash, streamed: the file is never held whole in memory.
        f.seek(0)
        digest, buf = hashlib.sha256(), bytearray(_READ_CHUNK)
        view, seen = memoryview(buf), 0
        while True:
            k = f.readinto(view)
            if not k:
                break
            digest.update(view[:k])
            seen += k
        if seen != st.st_size or digest.hexdigest() != document["weights"]["sha256"]:
            raise CheckpointError(
                f"Checkpoint weights file {weights} is corrupt: its SHA-256 does not match {CONFIG_NAME}."
            )
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
    return document, tensors


def optimizer_to_tensors(
    prefix: str, optimizer: torch.optim.Optimizer
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
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
