"""Checkpoints: a directory with safetensors weights and a JSON description.

Layout of a checkpoint directory (the estimator's tensors inside the weights file are laid out
by :mod:`ganaug.checkpoint.layout`)::

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

from .files import is_checkpoint, read_checkpoint, read_metadata, write_checkpoint
from .layout import expected_tensors, optimizer_from_tensors, optimizer_to_tensors
from .schema import (
    CLASSIFIER_FIELDS,
    CONFIG_NAME,
    DATA_FIELDS,
    FORMAT_NAME,
    FORMAT_VERSION,
    HEADER_BYTES_PER_TENSOR,
    KERNEL_SIZES,
    MAX_BATCH_SIZE,
    MAX_BLOCKS,
    MAX_CHANNELS,
    MAX_CLASS_NAME,
    MAX_CLASSES,
    MAX_CONFIG_BYTES,
    MAX_DTYPE_ITEMSIZE,
    MAX_EMBED_DIM,
    MAX_EPOCHS,
    MAX_FEATURE_DIM,
    MAX_HEADER_BYTES,
    MAX_IMAGE_SIZE,
    MAX_JSON_CONTAINERS,
    MAX_JSON_DEPTH,
    MAX_LATENT_DIM,
    MAX_PARAMETERS,
    MAX_STEPS,
    MAX_WIDTH,
    MODEL_FIELDS,
    OPTIMIZER_FIELDS,
    PARAM_GROUP_FIELDS,
    SCHEMA,
    SPEC_FIELDS,
    TRAINING_FIELDS,
    CheckpointError,
    decode_classes,
    saved_params,
)

__all__ = [
    "CLASSIFIER_FIELDS", "CONFIG_NAME", "DATA_FIELDS", "FORMAT_NAME", "FORMAT_VERSION", "HEADER_BYTES_PER_TENSOR",
    "KERNEL_SIZES", "MAX_BATCH_SIZE", "MAX_BLOCKS", "MAX_CHANNELS", "MAX_CLASSES", "MAX_CLASS_NAME",
    "MAX_CONFIG_BYTES", "MAX_DTYPE_ITEMSIZE", "MAX_EMBED_DIM", "MAX_EPOCHS", "MAX_FEATURE_DIM", "MAX_HEADER_BYTES",
    "MAX_IMAGE_SIZE", "MAX_JSON_CONTAINERS", "MAX_JSON_DEPTH", "MAX_LATENT_DIM", "MAX_PARAMETERS", "MAX_STEPS",
    "MAX_WIDTH", "MODEL_FIELDS", "OPTIMIZER_FIELDS", "PARAM_GROUP_FIELDS", "SCHEMA", "SPEC_FIELDS", "TRAINING_FIELDS",
    "CheckpointError", "decode_classes", "expected_tensors", "is_checkpoint", "optimizer_from_tensors",
    "optimizer_to_tensors", "read_checkpoint", "read_metadata", "saved_params", "write_checkpoint",
]
