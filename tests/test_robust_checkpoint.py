"""Untrusted checkpoints: each malformed one ends in a CheckpointError, within bounds.

One test (or more) per failure of issue 14, section 3, then property tests that flip
bytes of, truncate and rewrite the two files of a real checkpoint. Every hostile case
must fail with a ``CheckpointError`` naming the file (and the field, for ganaug.json) in
under a second and 200 MB of extra memory (conftest's ``Bounds``: peak extra RSS).
"""

import copy
import dataclasses
import gc
import hashlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from conftest import TINY, Bounds
from ganaug import CheckpointError, ConditionalDCGAN

CONFIG = "ganaug.json"
MB = 2**20
needs_proc = pytest.mark.skipif(
    not Path("/proc/self/clear_refs").exists(), reason="memory bounds need Linux's /proc/self/clear_refs"
)


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def saved(tiny_gan, tmp_path_factory):
    """A real checkpoint of conftest's tiny model, saved once; tests damage copies of it."""
    path = tiny_gan.save(tmp_path_factory.mktemp("robust") / "ckpt")
    ConditionalDCGAN.load(path, device="cpu")  # warm up lazy imports, so that bounds measure the load only
    return path


@pytest.fixture(scope="module", autouse=True)
def _frozen_heap(saved):
    """Bounds() starts with gc.collect(), 0.2 s over the heap of torch and the fitted model:
    move what is alive now out of the collector's sight (gc.freeze) for this module."""
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


@pytest.fixture
def ckpt(saved, tmp_path):
    return Path(shutil.copytree(saved, tmp_path / "c"))


def _weights(path):
    (w,) = Path(path).glob("weights-*.safetensors")
    return w


def _meta(path):
    return json.loads((Path(path) / CONFIG).read_text())


def _write_meta(path, meta):
    (Path(path) / CONFIG).write_text(json.dumps(meta))  # NaN and inf come out as NaN, Infinity


def _set(meta, dotted, value):
    *head, last = dotted.split(".")
    node = meta
    for key in head:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


def _rehash(path, blob):
    """Replace the weights by ``blob`` and make ganaug.json vouch for it (a consistent forger)."""
    path = Path(path)
    _weights(path).unlink()
    digest = hashlib.sha256(blob).hexdigest()
    name = f"weights-{digest[:16]}.safetensors"
    (path / name).write_bytes(blob)
    meta = _meta(path)
    meta["weights"] = {"file": name, "sha256": digest}
    _write_meta(path, meta)
    return path / name


def _rewrite_tensors(path, change):
    tensors = st_load(_weights(path).read_bytes())
    change(tensors)
    return _rehash(path, st_save(tensors))


def _refused(path, match, *, seconds=1.0, megabytes=200):
    """Load ``path``: it must raise CheckpointError matching ``match`` within the bounds."""
    with Bounds() as b:
        with pytest.raises(CheckpointError, match=match) as info:
            ConditionalDCGAN.load(path, device="cpu")
    assert b.seconds < seconds, f"took {b.seconds:.2f} s"
    assert b.extra_mb < megabytes, f"took {b.extra_mb:.0f} MB"
    assert str(Path(path)) in str(info.value)  # names the file
    return info.value


def _refused_with(ckpt, field, value, match):
    """Set one field of ganaug.json and expect the load to be refused."""
    meta = _meta(ckpt)
    _set(meta, field, value)
    _write_meta(ckpt, meta)
    return _refused(ckpt, match)


# --------------------------------------------------------------------------- legitimate checkpoints


@needs_proc
def test_a_real_checkpoint_loads_and_samples_alike(saved, tiny_gan):
    with Bounds() as b:
        loaded = ConditionalDCGAN.load(saved, device="cpu")
    assert b.seconds < 1 and b.extra_mb < 200
    a, ya = tiny_gan.sample({0: 2, 9: 3}, random_state=1)
    c, yc = loaded.sample({0: 2, 9: 3}, random_state=1)
    assert a.tobytes() == c.tobytes() and ya.tolist() == yc.tolist()


def test_loading_leaves_the_global_rng_alone(saved):
    state = torch.get_rng_state()
    ConditionalDCGAN.load(saved, device="cpu")
    assert torch.equal(torch.get_rng_state(), state)


def test_without_classifier_and_average_the_optional_tensors_may_be_absent(digits, tmp_path):
    X, y = digits
    gan = ConditionalDCGAN(random_state=0, **dict(TINY, train_classifier=False, ema=None)).fit(X[:100], y[:100])
    path = gan.save(tmp_path / "c")
    loaded = ConditionalDCGAN.load(path, device="cpu")
    assert loaded.classifier_ is None and loaded.generator_ema_ is None and loaded.sampling_generator_ is loaded.generator_
    assert loaded.sample(3, random_state=0)[0].tobytes() == gan.sample(3, random_state=0)[0].tobytes()
    # ... but tensors of a network the description does not have are refused.
    _rewrite_tensors(path, lambda t: t.update({"classifier.head.bias": torch.zeros(10)}))
    _refused(path, r"do not match the classifier described in ganaug\.json: unexpected tensor 'classifier\.head\.bias'")


def test_descriptions_without_the_optional_fields_still_load(ckpt, tiny_gan):
    """Fields with defaults may be absent (checkpoints saved before they existed)."""
    meta = _meta(ckpt)
    for key in ("base_block", "minibatch_std"):
        del meta["model"][key]
    meta["model"]["extra"] = {}  # ganaug 0.1.0 wrote this unused field
    del meta["data"]["spec"]["flat_layout"]
    del meta["classifier"]["feature_dim"]
    del meta["training"]["max_time"]
    del meta["optimizers"]["opt_g"]["scalars"]
    _write_meta(ckpt, meta)
    loaded = ConditionalDCGAN.load(ckpt, device="cpu")
    assert loaded.sample(2, random_state=0)[0].tobytes() == tiny_gan.sample(2, random_state=0)[0].tobytes()


def test_object_labels_round_trip(tmp_path):
    X = np.random.default_rng(0).random((24, 8, 8)).astype(np.float32)
    y = np.array(["b", "a"] * 12, dtype=object)  # as a pandas column of strings gives them
    gan = ConditionalDCGAN(random_state=0, **dict(TINY, train_classifier=False, ema=None)).fit(X, y)
    loaded = ConditionalDCGAN.load(gan.save(tmp_path / "c"), device="cpu")
    assert loaded.classes_.dtype == object and loaded.classes_.tolist() == ["a", "b"]


def test_schema_covers_every_config_field():
    """The schema names each field of the configs it guards, optional exactly where the
    dataclass has a default (a field added to a config must be added to the schema)."""
    from ganaug.checkpoint import CLASSIFIER_FIELDS, MODEL_FIELDS, SPEC_FIELDS, TRAINING_FIELDS
    from ganaug.classifier import ClassifierConfig
    from ganaug.data import ArraySpec
    from ganaug.models import ModelConfig
    from ganaug.trainer import TrainConfig

    def required(cls):
        return {f.name for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}

    for fields, cls in ((MODEL_FIELDS, ModelConfig), (CLASSIFIER_FIELDS, ClassifierConfig), (SPEC_FIELDS, ArraySpec)):
        legacy = {"extra"} if cls is ModelConfig else set()  # read from old files, never written
        assert set(fields) - legacy == {f.name for f in dataclasses.fields(cls)}, cls.__name__
        assert {k for k, f in fields.items() if f.required} == required(cls) | (
            {"value_range", "shape", "dtype", "layout", "container"} if cls is ArraySpec else set()), cls.__name__
    assert set(TRAINING_FIELDS) == {f.name for f in dataclasses.fields(TrainConfig)} | {"epoch", "step"}
    assert {k for k, f in TRAINING_FIELDS.items() if f.required} == required(TrainConfig) | {"epoch", "step"}


# --------------------------------------------------------------------------- 1. network sizes


@needs_proc
@pytest.mark.parametrize(
    "field, value, match",
    [
        ("model.g_widths", [200000, 64], r"'model\.g_widths\[0\]' must be an integer from 1 to 8192, got 200000"),
        ("model.g_widths", [1000000, 1000000], r"'model\.g_widths\[0\]' must be an integer from 1 to 8192"),
        ("model.d_widths", [10**12], r"'model\.d_widths\[0\]' must be an integer"),
        ("model.base_size", [10**6, 10**6], r"'model\.base_size\[0\]' must be an integer from 1 to 4096"),
        ("model.latent_dim", 10**9, r"'model\.latent_dim' must be an integer from 1 to 4096"),
        ("model.embed_dim", 10**9, r"'model\.embed_dim' must be an integer"),
        ("model.n_classes", 10**9, r"'model\.n_classes' must be an integer from 1 to 100000"),
        ("classifier.n_classes", 10**9, r"'classifier\.n_classes' must be an integer from 1 to 100000"),
        ("classifier.feature_dim", 10**7, r"'classifier\.feature_dim' must be an integer from 1 to 4096"),
        ("model.height", 10**6, r"'model\.height' must be an integer from 8 to 4096"),
        ("model.channels", 10**4, r"'model\.channels' must be an integer from 1 to 64"),
        ("model.g_widths", [8] * 100, r"'model\.g_widths' must be a list of 1 to 12 items"),
    ],
)
def test_huge_network_sizes_are_refused_before_allocating(ckpt, field, value, match):
    _refused_with(ckpt, field, value, match)


@needs_proc
def test_sizes_within_the_caps_are_checked_against_the_weights_on_the_meta_device(ckpt):
    """The widest networks the caps allow (10^11 parameters) cost nothing: they are built
    on torch's meta device and then refused for their parameter count or their shapes."""
    meta = _meta(ckpt)
    meta["model"].update(embed_dim=4096)
    _write_meta(ckpt, meta)
    _refused(ckpt, r"do not match the generator described in ganaug\.json: generator\.embed\.weight has shape "
                   r"\[10, 10\] but the model needs \[10, 4096\]")
    meta["model"].update(g_widths=[8192, 8192], latent_dim=4096, d_widths=[8192])
    _write_meta(ckpt, meta)
    _refused(ckpt, r"field 'model' describes networks of [\d,]+ parameters, more than the 2,000,000,000")


# --------------------------------------------------------------------------- 2. reading the weights


def _sparse_tail(weights, size):
    with open(weights, "r+b") as f:
        f.truncate(size)  # a hole: no disk blocks, but read_bytes() would allocate all of it


@needs_proc
@pytest.mark.parametrize("size", [1_500_000_000, 30_000_000_000])
def test_a_huge_weights_file_is_not_read_whole(ckpt, size):
    _sparse_tail(_weights(ckpt), size)
    _refused(ckpt, r"is corrupt: its tensors end at byte [\d,]+ of the data but the file holds [\d,]+ bytes")


@needs_proc
def test_a_huge_weights_file_with_a_matching_header_is_refused_from_the_header(ckpt):
    """A forged header that covers a 1.5 GB file exactly: its shapes are not the model's."""
    n = 1_500_000_000 // 8
    header = json.dumps({"history.d_loss": {"dtype": "F64", "shape": [n], "data_offsets": [0, 8 * n]}}).encode()
    w = _weights(ckpt)
    with open(w, "wb") as f:
        f.write(len(header).to_bytes(8, "little") + header)
        f.truncate(8 + len(header) + 8 * n)
    _refused(ckpt, r"do not match the generator described in ganaug\.json: tensor generator\.\S+ is missing")


@needs_proc
@pytest.mark.parametrize(
    "length, match",
    [(2**62, r"header claims [\d,]+ bytes but the file holds"),
     (3 * MB, r"header claims 3,145,728 bytes, more than the [\d,]+ the model described can need")],
)
def test_a_huge_header_length_is_refused_before_reading(ckpt, length, match):
    w = _weights(ckpt)
    data = bytearray(w.read_bytes())
    data[:8] = length.to_bytes(8, "little")
    w.write_bytes(bytes(data))
    _sparse_tail(w, 4 * MB + 100)
    _refused(ckpt, match)


@needs_proc
def test_the_hash_is_computed_streaming(ckpt):
    """A 300 MB weights file whose header fits the description (a long loss history) is
    hashed in chunks: refused for its hash without ever holding the file in memory."""
    n = 300 * MB // 8
    tensors = st_load(_weights(ckpt).read_bytes())
    del tensors["history.d_loss"]
    blob = st_save(tensors)
    size = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + size])
    end = max(v["data_offsets"][1] for v in header.values())
    header["history.d_loss"] = {"dtype": "F64", "shape": [n], "data_offsets": [end, end + 8 * n]}
    raw = json.dumps(header).encode()
    with open(_weights(ckpt), "wb") as f:
        f.write(len(raw).to_bytes(8, "little") + raw + blob[8 + size :])
        f.truncate(8 + len(raw) + end + 8 * n)  # the history: a hole of zeros
    meta = _meta(ckpt)
    meta["training"]["step"] = n
    _write_meta(ckpt, meta)
    _refused(ckpt, r"weights-\w+\.safetensors is corrupt: its SHA-256 does not match", seconds=5)


@needs_proc
@pytest.mark.parametrize(
    "offsets, match",
    [((0, 4), r"spans 4 bytes but a F32 tensor of shape \[.*\] takes"),
     ("overlap", r"starts at byte [\d,]+ of the data but the one before ends at"),
     ("past", r"data_offsets \[.*\] outside the [\d,]+ bytes of data")],
)
def test_header_offsets_must_tile_the_data(ckpt, offsets, match):
    blob = _weights(ckpt).read_bytes()
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + n])
    name = "generator.embed.weight"
    begin, end = header[name]["data_offsets"]
    if offsets == "overlap":
        other = next(k for k in header if k != name and header[k]["data_offsets"][0] > 0)
        header[name]["data_offsets"] = header[other]["data_offsets"]
        header[name]["shape"] = header[other]["shape"]
        header[name]["dtype"] = header[other]["dtype"]
    elif offsets == "past":
        header[name]["data_offsets"] = [begin + 10**9, end + 10**9]
    else:
        header[name]["data_offsets"] = list(offsets)
    raw = json.dumps(header).encode()
    _rehash(ckpt, len(raw).to_bytes(8, "little") + raw + blob[8 + n :])
    _refused(ckpt, match)


# --------------------------------------------------------------------------- 3. malformed fields


def _deep(n):
    return "[" * n + "]" * n


@needs_proc
@pytest.mark.parametrize(
    "field, value, match",
    [
        ("model.n_classes", -1, r"'model\.n_classes' must be an integer from 1 to 100000, got -1"),
        ("model.g_widths", [], r"'model\.g_widths' must be a list of 1 to 12 items, got \[\]"),
        ("model.kernel_size", 0, r"'model\.kernel_size' must be an integer from 1 to 15, got 0"),
        ("model.kernel_size", 4.5, r"'model\.kernel_size' must be an integer"),
        ("model.spectral_norm", "yes", r"'model\.spectral_norm' must be true or false"),
        ("model.arch", "resnet", r"'model\.arch' must be one of 'dcgan', 'classic'"),
        ("model.unknown", 1, r"'model\.unknown' is not a known field"),
        ("model", {}, r"'model\.n_classes' is missing"),
        ("model", [], r"'model' must be an object"),
        ("notes", {"a": json.loads(_deep(100))}, r"'notes' is nested deeper than 16 levels"),
        ("model.extra", {"a": 1}, r"'model\.extra' must be an object of at most 0"),
        ("weights", 7, r"'weights' must be an object, got 7"),
        ("weights.file", 7, r"'weights\.file' must be a string"),
        ("weights.sha256", None, r"'weights\.sha256' must be a string .*, got null"),
        ("data", {"classes": 3}, r"'data\.classes' must be a list of 1 to 100000 items, got 3"),
        ("data.classes_dtype", "O,O", r"'data\.classes_dtype' 'O,O' is not a plain dtype"),
        ("data.classes_dtype", "U100000", r"'data\.classes_dtype' 'U100000' takes 400000 bytes a value"),
        ("data.classes_dtype", "M8[ns]", r"'data\.classes_dtype' 'M8\[ns\]' is not a plain dtype"),
        ("data.classes_dtype", "nonsense", r"'data\.classes_dtype' 'nonsense' is not a numpy dtype"),
        ("data.classes", [[1, 2]] * 10, r"'data\.classes\[0\]' must be a string .* or a boolean, got \[1, 2\]"),
        ("data.classes", [0] * 10, r"'data\.classes' must be distinct values"),
        ("data.classes", [2**70] + list(range(1, 10)), r"'data\.classes' do not fit classes_dtype '<i8'"),
        ("data.spec.dtype", "complex64", r"'data\.spec\.dtype' 'complex64' is not a plain dtype"),
        ("data.spec.dtype", "object", r"'data\.spec\.dtype' 'object' is not a plain dtype"),
        ("data.spec.layout", "NWH", r"'data\.spec\.layout' must be one of"),
        ("data.spec.shape", [8, 8, 8, 8], r"'data\.spec\.shape' must be a list of 1 to 3 items"),
        ("data.spec.shape", [8, 9], r"'data\.spec\.shape' is \[8, 9\] but the model makes NHW images of shape "
                                    r"\[8, 8\]"),
        ("seed", -5, r"'seed' must be an integer from 0 to"),
        ("seed", 2**64, r"'seed' must be an integer from 0 to"),
        ("training.lr_g", "fast", r"'training\.lr_g' must be a number in \[0, 100\], got 'fast'"),
        ("training.betas", [2, 0], r"'training\.betas\[0\]' must be a number in \[0, 1\)"),
        ("training.betas", 0.5, r"'training\.betas' must be a list of 2 items"),
        ("training.ema", 1.0, r"'training\.ema' must be a number in \(0, 1\)"),
        ("training.loss", "wgan", r"'training\.loss' must be one of"),
        ("training.augment", "rotate", r"'training\.augment' Unknown augmentation policies \['rotate'\]"),
        ("training.step", -1, r"'training\.step' must be an integer"),
        ("training.batch_size", True, r"'training\.batch_size' must be an integer"),
        ("training.epoch", None, r"'training\.epoch' must be an integer .*, got null"),
        ("optimizers.opt_g.param_groups", [], r"'optimizers\.opt_g\.param_groups' must be a list of 1 items"),
        ("optimizers.opt_g.param_groups.0.lr", -1, r"'optimizers\.opt_g\.param_groups\[0\]\.lr' must be a number"),
        ("optimizers.opt_g.param_groups.0.params", [0], r"'optimizers\.opt_g\.param_groups\[0\]\.params' must list the "
                                                        r"8 parameters"),
        ("optimizers.opt_d.scalars", {"99": {"step": 1}}, r"'optimizers\.opt_d\.scalars\.99' is not a parameter index"),
        ("optimizers.opt_d.scalars", {"0": {"exp_avg": 1}}, r"'optimizers\.opt_d\.scalars\.0\.exp_avg' is not a known"),
        ("optimizers.opt_d", None, r"'optimizers\.opt_d' must be an object, got null"),
        ("params", [], r"'params' must be an object of at most 256 entries"),
        ("params.no_such_param", 1, r"field 'params' holds \['no_such_param'\], which are not parameters"),
        ("params.lr_g", -1, r"field 'params': The 'lr_g' parameter of ConditionalDCGAN must be a float"),
        ("params.betas", 5, r"field 'params'"),
        ("params.random_state", "x", r"field 'params\.random_state' must be null or an integer"),
        ("format_version", 0, r"'format_version' must be an integer from 1 to 1"),
        ("format_version", "1", r"format version '1'"),
    ],
)
def test_malformed_fields_name_the_field(ckpt, field, value, match):
    error = _refused_with(ckpt, field, value, match)
    assert str(ckpt / CONFIG) in str(error)


@needs_proc
@pytest.mark.parametrize("text", [_deep(200_000), '{"format": ' + '{"a": ' * 100_000 + "1" + "}" * 100_001])
def test_deeply_nested_json_is_refused(ckpt, text):
    (ckpt / CONFIG).write_text(text)
    _refused(ckpt, r"ganaug\.json is corrupt \(not valid JSON: nested too deep\)")


@needs_proc
def test_a_huge_description_is_refused_before_parsing(ckpt):
    meta = _meta(ckpt)
    meta["padding"] = "x" * (9 * MB)
    _write_meta(ckpt, meta)
    _refused(ckpt, r"ganaug\.json is corrupt: it is larger than 8,388,608 bytes")
    (ckpt / CONFIG).write_text(json.dumps([[]] * 1_000_000))  # 6 MB of lists: 60 MB parsed
    _refused(ckpt, r"ganaug\.json is corrupt: it holds more than 200,000 JSON objects and lists")


@needs_proc
def test_numbers_beyond_json_are_refused(ckpt):
    _write_meta(ckpt, _meta(ckpt))
    text = (ckpt / CONFIG).read_text().replace('"seed": ', '"seed": ' + "9" * 5000 + ', "old_seed": ', 1)
    (ckpt / CONFIG).write_text(text)
    _refused(ckpt, r"ganaug\.json is corrupt \(not valid JSON: Exceeds the limit")


# --------------------------------------------------------------------------- 4. self-contradicting checkpoints


@needs_proc
@pytest.mark.parametrize(
    "field, value, match",
    [
        ("data.classes", list(range(11)), r"'data\.classes' has 11 entries but model\.n_classes is 10"),
        ("data.classes", list(range(9)), r"'data\.classes' has 9 entries but model\.n_classes is 10"),
        ("data.class_counts", [1] * 9, r"'data\.class_counts' has 9 entries but model\.n_classes is 10"),
        ("model.height", -8, r"'model\.height' must be an integer from 8 to 4096, got -8"),
        ("model.height", 16, r"'model\.base_size\[0\]' is 4, but 1 stride-2 generator blocks make a side of 16 pixels "
                             r"from 8"),
        ("data.spec.value_range", [float("nan"), 1.0], r"'data\.spec\.value_range\[0\]' must be a finite number, "
                                                       r"got nan"),
        ("data.spec.value_range", [0, float("inf")], r"'data\.spec\.value_range\[1\]' must be a finite number, "
                                                     r"got inf"),
        ("data.spec.value_range", [1, 0], r"'data\.spec\.value_range' must be \[low, high\] with high > low"),
        ("classifier.height", 16, r"'classifier\.height' is 16 but model\.height is 8"),
        ("model.channels", 3, r"'classifier\.channels' is 1 but model\.channels is 3"),
        ("model.base_block", False, r"'model\.base_size\[0\]' is 4, but 2 stride-2 generator blocks"),
        ("weights.file", "weights-0000000000000000.safetensors", r"'weights\.file' must be named after the first 16"),
    ],
)
def test_contradictions_within_the_description_are_refused(ckpt, field, value, match):
    _refused_with(ckpt, field, value, match)


@needs_proc
def test_spec_must_match_the_channels(ckpt):
    meta = _meta(ckpt)
    meta["model"]["channels"] = meta["classifier"]["channels"] = 3
    _write_meta(ckpt, meta)
    _refused(ckpt, r"'data\.spec\.layout' 'NHW' images have one channel but model\.channels is 3")
    meta["data"]["spec"].update(layout="NHWC", shape=[8, 8, 1])
    _write_meta(ckpt, meta)
    _refused(ckpt, r"'data\.spec\.shape' is \[8, 8, 1\] but the model makes NHWC images of shape \[8, 8, 3\]")
    meta["data"]["spec"].update(layout="flat", shape=[192], flat_layout=None)
    _write_meta(ckpt, meta)
    _refused(ckpt, r"'data\.spec\.flat_layout' is needed when the layout is 'flat'")


@needs_proc
def test_kernel_that_shrinks_images_to_nothing_is_refused(ckpt):
    meta = _meta(ckpt)
    meta["model"].update(kernel_size=2, d_widths=[8, 8, 8, 8])
    _write_meta(ckpt, meta)
    _refused(ckpt, r"'model\.d_widths' 4 stride-2 convolutions of kernel 2 shrink 8x8 images to nothing")


@needs_proc
@pytest.mark.parametrize(
    "dtype, value_range, ok",
    [("int8", [0, 255], False), ("int8", [-128, 127], True), ("uint8", [-1, 255], False),
     ("float16", [0, 1e6], False), ("bool", [0, 1], True), ("bool", [0, 2], False), ("uint16", [0, 65535], True)],
)
def test_value_range_must_fit_the_dtype(ckpt, dtype, value_range, ok):
    meta = _meta(ckpt)
    meta["data"]["spec"].update(dtype=dtype, value_range=value_range)
    _write_meta(ckpt, meta)
    if ok:
        X, _ = ConditionalDCGAN.load(ckpt, device="cpu").sample(2, random_state=0)
        assert X.dtype == np.dtype(dtype) and value_range[0] <= X.min() and X.max() <= value_range[1]
    else:
        _refused(ckpt, rf"'data\.spec\.value_range' \[.*\] does not fit the images' dtype {dtype}")


@needs_proc
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_weights_must_be_finite(ckpt, bad):
    def poison(tensors):
        tensors["generator.embed.weight"][3, 4] = bad

    _rewrite_tensors(ckpt, poison)
    _refused(ckpt, r"is corrupt: tensor generator\.embed\.weight holds NaN or infinite values")


@needs_proc
@pytest.mark.parametrize(
    "name, make, match",
    [
        ("generator.embed.weight", lambda t: t.bool(), r"generator\.embed\.weight is BOOL, not F32"),
        ("discriminator.linear.bias", lambda t: t.double(), r"discriminator\.linear\.bias is F64, not F32"),
        ("generator.embed.weight", lambda t: t[:5].clone(), r"generator\.embed\.weight has shape \[5, 10\] but the "
                                                            r"model needs \[10, 10\]"),
        ("opt_d.state.1.exp_avg", lambda t: t.flatten().clone(), r"optimizer opt_d described in ganaug\.json: "
                                                                 r"opt_d\.state\.1\.exp_avg has shape \[200\]"),
        ("history.d_loss", lambda t: torch.zeros(1000, dtype=torch.float64), r"history\.d_loss has shape \[1000\]; it "
                                                                             r"needs at most one value per step"),
    ],
)
def test_tensors_must_have_the_described_dtype_and_shape(ckpt, name, make, match):
    _rewrite_tensors(ckpt, lambda t: t.update({name: make(t[name])}))
    _refused(ckpt, match)


@needs_proc
def test_incomplete_optimizer_state_is_refused(ckpt):
    _rewrite_tensors(ckpt, lambda t: t.pop("opt_g.state.2.exp_avg_sq"))
    _refused(ckpt, r"do not match the optimizer opt_g described in ganaug\.json: the state of parameter 2 lacks "
                   r"exp_avg_sq")


@needs_proc
def test_garbage_weights_are_refused(ckpt):
    _weights(ckpt).write_bytes(b"\0" * 100)
    _refused(ckpt, r"weights-\w+\.safetensors is corrupt: its header is not a JSON object")
    _weights(ckpt).write_bytes(b"\x40\0\0\0\0\0\0\0" + b'{"a": [[[[[[[[[' + b"]" * 9 + b"}")
    _refused(ckpt, r"is corrupt: its header claims 64 bytes but the file holds 25 after")
    _weights(ckpt).write_bytes(b"\x19\0\0\0\0\0\0\0" + b'{"a": [[[[[[[[[' + b"]" * 9 + b"}")
    _refused(ckpt, r"is corrupt: header entry 'a' is not \{dtype, shape, data_offsets\}")
    _weights(ckpt).write_bytes(b"\5\0\0")
    _refused(ckpt, r"is corrupt: it is 3 bytes long, too short for a safetensors header")


# --------------------------------------------------------------------------- 5. where the weights may be


@needs_proc
@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "weights-../../x.safetensors",
                                  "sub/weights.safetensors", "weights-DB656D92D52E2CAD.safetensors",
                                  "weights-db656d92d52e2cad.safetensors\0"])
def test_the_weights_name_is_a_plain_file_name(ckpt, name):
    meta = _meta(ckpt)
    meta["weights"]["file"] = name
    _write_meta(ckpt, meta)
    _refused(ckpt, r"'weights\.file' must be a string of at most 64 characters matching")


@needs_proc
def test_a_symlink_out_of_the_folder_is_refused_even_to_valid_weights(ckpt, tmp_path):
    w = _weights(ckpt)
    outside = tmp_path / "elsewhere.safetensors"
    shutil.move(w, outside)
    os.symlink(outside, w)
    _refused(ckpt, r"weights-\w+\.safetensors is a symbolic link; ganaug reads weights only from a regular file")
    os.unlink(w)
    os.symlink(os.path.relpath(outside, ckpt), w)
    _refused(ckpt, r"is a symbolic link")


@needs_proc
def test_weights_that_are_not_a_regular_file_are_refused(ckpt):
    w = _weights(ckpt)
    w.unlink()
    os.mkfifo(w)  # opening a FIFO for reading would block until someone writes
    _refused(ckpt, r"weights-\w+\.safetensors is not a regular file")
    w.unlink()
    w.mkdir()
    _refused(ckpt, r"is not a regular file")


# --------------------------------------------------------------------------- 6. property tests

# Every case: a CheckpointError naming the file, or a model that loads and samples.
# Deterministic (derandomize) so that CI runs are reproducible; no example database.
PROPERTY = settings(max_examples=100, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _outcome(path):
    """Load ``path`` within the bounds: None if it loaded (and sampled), else the CheckpointError."""
    with Bounds() as b:
        try:
            gan = ConditionalDCGAN.load(path, device="cpu")
        except CheckpointError as exc:
            assert str(Path(path)) in str(exc)
            error = exc
        else:
            X, y = gan.sample(3, random_state=0)
            assert X.shape == (3, 8, 8) and len(y) == 3
            error = None
    assert b.seconds < 1, f"took {b.seconds:.2f} s"
    assert b.extra_mb < 200, f"took {b.extra_mb:.0f} MB"
    return error


def _copy(saved):
    root = tempfile.mkdtemp(prefix="ganaug-prop-")
    return Path(shutil.copytree(saved, Path(root) / "c"))


def _flip(data, flips, truncate):
    data = bytearray(data)
    for pos, mask in flips:
        data[pos % len(data)] ^= mask
    if truncate is not None:
        del data[truncate % (len(data) + 1) :]
    return bytes(data)


_FLIPS = st.lists(st.tuples(st.integers(0, 2**31), st.integers(1, 255)), max_size=8)
_TRUNCATE = st.none() | st.integers(0, 2**31)


@needs_proc
@PROPERTY
@given(flips=_FLIPS, truncate=_TRUNCATE, rehash=st.booleans(), header_only=st.booleans())
def test_property_damaged_weights(saved, flips, truncate, rehash, header_only):
    assume(flips or truncate is not None)
    path = _copy(saved)
    try:
        w = _weights(path)
        data = w.read_bytes()
        if header_only:  # aim at the header, where the structure is
            n = int.from_bytes(data[:8], "little")
            flips = [(pos % (n + 8), mask) for pos, mask in flips]
        damaged = _flip(data, flips, truncate)
        if rehash:
            _rehash(path, damaged)
        else:
            w.write_bytes(damaged)
        error = _outcome(path)
        if not rehash and damaged != data:
            assert error is not None
    finally:
        shutil.rmtree(path.parent)


@needs_proc
@PROPERTY
@given(flips=_FLIPS, truncate=_TRUNCATE)
def test_property_damaged_description(saved, flips, truncate):
    assume(flips or truncate is not None)
    path = _copy(saved)
    try:
        raw = (path / CONFIG).read_bytes()
        (path / CONFIG).write_bytes(_flip(raw, flips, truncate))
        _outcome(path)
    finally:
        shutil.rmtree(path.parent)


def _leaves(node, prefix=""):
    """Dotted paths of every value in a JSON document (containers included)."""
    out = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, value in items:
        dotted = f"{prefix}.{key}" if prefix else str(key)
        out.append(dotted)
        out.extend(_leaves(value, dotted))
    return out


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.sampled_from([0, 1, -1, 2**31, 2**63, 10**18])
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20)
    | st.sampled_from(["float32", "int8", "O", "<U5", "|b1", "NHWC", "flat", "xavier", "hinge", "translation"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=8,
)


@needs_proc
@PROPERTY
@given(data=st.data())
def test_property_substituted_fields(saved, data):
    meta = _meta(saved)
    paths = _leaves(meta)
    changes = data.draw(st.lists(st.tuples(st.sampled_from(paths), _JSON_VALUES), min_size=1, max_size=3))
    meta = copy.deepcopy(meta)
    for dotted, value in changes:
        try:
            _set(meta, dotted, value)
        except (KeyError, IndexError, TypeError, ValueError):
            pass  # the path went away with an earlier change
    _outcome_with_meta(saved, meta)


def _outcome_with_meta(saved, meta):
    """A copy of the checkpoint ``saved`` with ``meta`` as its ganaug.json: a clean refusal or a load."""
    path = _copy(saved)
    try:
        _write_meta(path, meta)
        _outcome(path)
    finally:
        shutil.rmtree(path.parent)


_SIZE_FIELDS = ["model.n_classes", "model.channels", "model.height", "model.width", "model.latent_dim",
                "model.embed_dim", "model.g_widths.0", "model.g_widths.1", "model.d_widths.0", "model.base_size.0",
                "model.base_size.1", "model.kernel_size", "classifier.n_classes", "classifier.feature_dim",
                "classifier.height", "training.step", "data.spec.shape.0"]


@needs_proc
@PROPERTY
@given(changes=st.lists(st.tuples(st.sampled_from(_SIZE_FIELDS),
                                  st.integers(-10, 10**7) | st.sampled_from([0, 4096, 8192, 10**5, 10**12, 2**63])),
                        min_size=1, max_size=4))
def test_property_huge_declared_sizes(saved, changes):
    meta = _meta(saved)
    for dotted, value in changes:
        _set(meta, dotted, value)
    _outcome_with_meta(saved, meta)


def test_nan_survives_the_helpers():  # the substitutions above rely on json.dumps writing NaN
    assert math.isnan(json.loads(json.dumps(float("nan"))))
