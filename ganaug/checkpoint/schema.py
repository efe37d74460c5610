"""What ``ganaug.json`` may hold: bounds on every size, the :data:`SCHEMA`, cross-field checks."""

from __future__ import annotations

import math
import re
import warnings
from typing import Any

import numpy as np

from ..augment import check_policy
from ..data import MIN_IMAGE_SIZE
from ..losses import LOSSES
from ..models import ARCHITECTURES, ModelConfig
from ..params import PARAMETERS
from .fields import (
    FLAG,
    Field,
    Invalid,
    choice,
    integer,
    list_of,
    mapping,
    nullable,
    number,
    optional,
    section,
    text,
    validate,
)

CONFIG_NAME = "ganaug.json"
FORMAT_NAME = "ganaug-checkpoint"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt or does not match what it is loaded into."""

# Generous but finite: far above any model ganaug trains on one machine, far below what
# would exhaust memory before the weights file contradicts the description.

#: Largest ganaug.json read (100,000 classes with long names need a few MB).
MAX_CONFIG_BYTES = 8 * 2**20
#: Most JSON objects and lists in ganaug.json (a real one has about 50): bounds the memory
#: that parsing a hostile file may take.
MAX_JSON_CONTAINERS = 200_000
#: Deepest nesting of a free-form JSON value (``params``).
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
    "unconditional_blocks": optional(integer(0, MAX_BLOCKS)),
    "extra": optional(mapping(JSON, 0)),  # checkpoints of ganaug 0.1.0 hold it, always empty
}
#: ClassifierConfig (ganaug.classifier).
CLASSIFIER_FIELDS = {
    **_IMAGE_FIELDS,
    "feature_dim": optional(integer(1, MAX_FEATURE_DIM)),
}
#: TrainConfig (ganaug.trainer) plus the progress of the run.
TRAINING_FIELDS = {
    "max_epochs": integer(1, MAX_EPOCHS),
    "batch_size": integer(1, MAX_BATCH_SIZE),
    "lr_g": number(0, 100),
    "lr_d": number(0, 100),
    "betas": _BETAS,
    "loss": choice(*LOSSES),
    "augment": optional(nullable(text(200))),
    "ema": optional(nullable(number(0, 1, open="both"))),
    "max_time": optional(nullable(number(0, 1e12, open="low"))),
    "lecam": optional(nullable(number(0, 1e6))),
    "group_spectral": optional(nullable(number(0, 1e6))),
    "pretrain_epochs": optional(integer(0, MAX_EPOCHS)),
    "sync_batchnorm": optional(FLAG),
    **{name: optional(choice(*PARAMETERS[name].choices)) for name in ("precision", "compile", "fake_labels")},
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



# --------------------------------------------------------------------------- consistency


def _simple_dtype(name: str, kinds: str, where: str, max_itemsize: int) -> np.dtype:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dtype = np.dtype(name)
    except (TypeError, ValueError, SyntaxError) as exc:
        raise Invalid(where, f"{name!r} is not a numpy dtype ({exc})") from None
    if dtype.fields is not None or dtype.subdtype is not None or dtype.kind not in kinds:
        raise Invalid(where, f"{name!r} is not a plain dtype of kind {', '.join(repr(k) for k in kinds)}")
    if dtype.itemsize > max_itemsize:
        raise Invalid(where, f"{name!r} takes {dtype.itemsize} bytes a value, more than {max_itemsize}")
    return dtype


def decode_classes(data: dict[str, Any]) -> np.ndarray:
    """The class values of a checkpoint's ``data`` section as the array ``fit`` made.

    ``classes_dtype`` must be a plain numpy dtype (bool, integer, float or string of at
    most :data:`MAX_CLASS_NAME` characters). ``'|O'`` (labels ``fit`` got as Python
    objects, e.g. a pandas column of strings) is rebuilt element by element from the JSON
    strings and numbers, never from anything else. Raises ``Invalid``.
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
        raise Invalid("data.classes", f"do not fit classes_dtype {data['classes_dtype']!r} ({exc})") from None
    if classes.ndim != 1 or classes.tolist() != values:
        raise Invalid("data.classes", f"change when stored as classes_dtype {data['classes_dtype']!r}")
    if len(set(values)) != len(values):
        raise Invalid("data.classes", "must be distinct values")
    return classes


def _check_model(config: ModelConfig) -> None:
    if config.base_block and len(config.g_widths) < 2:
        raise Invalid("model.g_widths", "needs at least 2 widths when model.base_block is true")
    if config.unconditional_blocks > len(config.g_widths):
        raise Invalid("model.unconditional_blocks", f"is {config.unconditional_blocks}, but the generator has "
                       f"{len(config.g_widths)} blocks before the one that makes the image")
    stages = len(config.g_widths) - int(config.base_block)  # stride-2 blocks: each doubles the size
    for i, side in enumerate((config.height, config.width)):
        need = -(-side // 2**stages)
        if config.base_size[i] != need:
            raise Invalid(f"model.base_size[{i}]", f"is {config.base_size[i]}, but {stages} stride-2 generator blocks "
                           f"make a side of {side} pixels from {need}")
    k, pad = config.kernel_size, (config.kernel_size - 1) // 2
    h, w = config.height, config.width
    for _ in config.d_widths:
        h, w = (h + 2 * pad - k) // 2 + 1, (w + 2 * pad - k) // 2 + 1
        if h < 1 or w < 1:
            raise Invalid("model.d_widths", f"{len(config.d_widths)} stride-2 convolutions of kernel {k} shrink "
                           f"{config.height}x{config.width} images to nothing")


def _check_spec(spec: dict[str, Any], config: ModelConfig) -> None:
    dtype = _simple_dtype(spec["dtype"], "biuf", "data.spec.dtype", 16)
    lo, hi = spec["value_range"]
    if not hi > lo:
        raise Invalid("data.spec.value_range", f"must be [low, high] with high > low, got {[lo, hi]}")
    if dtype.kind == "b":
        fits = 0 <= lo and hi <= 1
    elif dtype.kind in "iu":
        info = np.iinfo(dtype)
        fits = int(info.min) <= lo and hi <= int(info.max)
    else:
        big = float(np.finfo(dtype).max)
        fits = -big <= lo and hi <= big
    if not fits:
        raise Invalid("data.spec.value_range", f"{[lo, hi]} does not fit the images' dtype {spec['dtype']}")
    c, h, w = config.channels, config.height, config.width
    layout, flat = spec["layout"], spec.get("flat_layout")
    if layout == "flat":
        if flat is None:
            raise Invalid("data.spec.flat_layout", "is needed when the layout is 'flat'")
        expected = [c * h * w]
    else:
        if flat is not None:
            raise Invalid("data.spec.flat_layout", f"must be null when the layout is {layout!r}")
        expected = {"NHW": [h, w], "NHWC": [h, w, c], "NCHW": [c, h, w]}[layout]
    if (flat or layout) == "NHW" and c != 1:
        raise Invalid("data.spec.layout", f"'NHW' images have one channel but model.channels is {c}")
    if spec["shape"] != expected:
        raise Invalid("data.spec.shape", f"is {spec['shape']} but the model makes {layout} images of shape {expected}")


def check_consistency(doc: dict[str, Any]) -> None:
    """Cross-field checks of a document that passed :func:`validate`; raises ``Invalid``."""
    config = ModelConfig.from_dict(doc["model"])
    _check_model(config)
    classifier = doc.get("classifier")
    if classifier:
        for key in ("n_classes", "channels", "height", "width"):
            if classifier[key] != getattr(config, key):
                raise Invalid(f"classifier.{key}", f"is {classifier[key]} but model.{key} is {getattr(config, key)}")
    data = doc["data"]
    for key in ("classes", "class_counts"):
        if len(data[key]) != config.n_classes:
            raise Invalid(f"data.{key}", f"has {len(data[key])} entries but model.n_classes is {config.n_classes}")
    decode_classes(data)
    _check_spec(data["spec"], config)
    training = doc["training"]
    try:
        check_policy(training.get("augment"))
    except ValueError as exc:
        raise Invalid("training.augment", str(exc)) from None
    if doc["weights"]["file"][len("weights-") : len("weights-") + 16] != doc["weights"]["sha256"][:16]:
        raise Invalid("weights.file", "must be named after the first 16 digits of weights.sha256")


# --------------------------------------------------------------------------- files



def validate_document(document: dict[str, Any]) -> None:
    """Check a parsed ``ganaug.json`` against :data:`SCHEMA` and across fields; raises :class:`Invalid`."""
    validate(document, SCHEMA)
    check_consistency(document)


def saved_params(saved: dict[str, Any], names: list[str], owner: str, where: Any) -> dict[str, Any]:
    """The estimator parameters stored in a checkpoint's ``params``, ready for ``owner(**params)``:
    refuses names ``owner`` does not have and a ``random_state`` that is not a plain seed, and
    turns ``betas`` back into a tuple. The caller validates the values by building the estimator."""
    params = dict(saved)
    unknown = sorted(set(params) - set(names))
    if unknown:
        raise CheckpointError(
            f"Checkpoint file {where} is corrupt: field 'params' holds {unknown}, which are not parameters of {owner}."
        )
    random_state = params.get("random_state")
    if random_state is not None and not (
            isinstance(random_state, int) and not isinstance(random_state, bool) and 0 <= random_state < 2**32):
        raise CheckpointError(
            f"Checkpoint file {where} is corrupt: field 'params.random_state' must be null or an integer "
            f"from 0 to {2**32 - 1}, got {random_state!r}."
        )
    if isinstance(params.get("betas"), list):
        params["betas"] = tuple(params["betas"])
    return params
