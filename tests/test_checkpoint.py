import json
import os

import numpy as np
import pytest
import torch

from ganaug import CheckpointError, ConditionalDCGAN
from ganaug.checkpoint import CONFIG_NAME, read_metadata


def _weights(path):
    (w,) = path.glob("weights-*.safetensors")
    return w


def test_round_trip_gives_same_samples(tiny_gan, tmp_path):
    path = tiny_gan.save(tmp_path / "ckpt")
    assert sorted(p.name for p in path.iterdir()) == [CONFIG_NAME, _weights(path).name]
    loaded = ConditionalDCGAN.load(path, device="cpu")
    a, ya = tiny_gan.sample({0: 3, 9: 4}, random_state=5)
    b, yb = loaded.sample({0: 3, 9: 4}, random_state=5)
    assert a.tobytes() == b.tobytes() and ya.tolist() == yb.tolist()
    assert loaded.get_params() == {**tiny_gan.get_params(), "device": "cpu"}
    assert loaded.classes_.dtype == tiny_gan.classes_.dtype
    assert loaded.input_spec_ == tiny_gan.input_spec_
    assert loaded.history_.keys() == tiny_gan.history_.keys()
    for key, values in tiny_gan.history_.items():  # pytest >= 9's approx refuses nested dicts
        assert loaded.history_[key] == pytest.approx(values), key
    meta = read_metadata(path)
    assert meta["model"]["height"] == 8 and meta["data"]["spec"]["dtype"] == "float32"
    assert meta["torch_version"] == torch.__version__ and "ganaug_version" in meta


def test_string_classes_and_uint8_survive(tmp_path):
    X = np.random.default_rng(0).integers(0, 256, (24, 8, 8, 3), dtype=np.uint8)
    y = np.array(["b", "a"] * 12)
    from conftest import TINY

    gan = ConditionalDCGAN(random_state=0, **TINY).fit(X, y)
    gan.save(tmp_path / "c")
    loaded = ConditionalDCGAN.load(tmp_path / "c")
    Xs, ys = loaded.sample({"b": 2})
    assert Xs.dtype == np.uint8 and Xs.shape == (2, 8, 8, 3) and ys.tolist() == ["b", "b"]


def test_refuses_to_overwrite_without_permission(tiny_gan, tmp_path):
    tiny_gan.save(tmp_path / "c")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        tiny_gan.save(tmp_path / "c")
    tiny_gan.save(tmp_path / "c", overwrite=True)
    assert len(list((tmp_path / "c").glob("weights-*"))) == 1


def test_killed_save_leaves_old_checkpoint_intact(tiny_gan, tmp_path, monkeypatch, digits):
    from conftest import TINY

    path = tiny_gan.save(tmp_path / "c")
    before = tiny_gan.sample(4, random_state=0)[0]
    other = ConditionalDCGAN(random_state=1, **TINY).fit(digits[0][:100], digits[1][:100])
    real_replace = os.replace

    def dying_replace(src, dst):
        if str(dst).endswith(CONFIG_NAME):
            raise KeyboardInterrupt  # killed between writing the weights and switching over
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", dying_replace)
    with pytest.raises(KeyboardInterrupt):
        other.save(path, overwrite=True)
    monkeypatch.undo()
    loaded = ConditionalDCGAN.load(path, device="cpu")
    np.testing.assert_array_equal(loaded.sample(4, random_state=0)[0], before)
    assert not list(path.glob(".*.tmp"))


def test_checkpoint_holds_no_pickles(tiny_gan, tmp_path):
    path = tiny_gan.save(tmp_path / "c")
    for f in path.iterdir():
        assert b"\x80\x04" not in f.read_bytes()[:2]  # pickle protocol header
    json.loads((path / CONFIG_NAME).read_text())


def _corrupt_json(path):
    (path / CONFIG_NAME).write_text("{not json")


def _flip_weight_byte(path):
    w = _weights(path)
    data = bytearray(w.read_bytes())
    data[-10] ^= 0xFF
    w.write_bytes(bytes(data))


def _delete_weights(path):
    _weights(path).unlink()


def _future_format(path):
    meta = json.loads((path / CONFIG_NAME).read_text())
    meta["format_version"] = 99
    (path / CONFIG_NAME).write_text(json.dumps(meta))


def _mismatched_architecture(path):
    meta = json.loads((path / CONFIG_NAME).read_text())
    meta["model"]["g_widths"] = [w * 2 for w in meta["model"]["g_widths"]]
    (path / CONFIG_NAME).write_text(json.dumps(meta))


def _missing_section(path):
    meta = json.loads((path / CONFIG_NAME).read_text())
    del meta["data"]
    (path / CONFIG_NAME).write_text(json.dumps(meta))


def _not_ours(path):
    (path / CONFIG_NAME).write_text(json.dumps({"hello": 1}))


@pytest.mark.parametrize(
    "damage, match",
    [
        (_corrupt_json, r"ganaug\.json is corrupt \(not valid JSON"),
        (_flip_weight_byte, r"weights-.*\.safetensors is corrupt: its SHA-256 does not match"),
        (_delete_weights, r"weights file .* is missing"),
        (_future_format, "format version 99"),
        (_mismatched_architecture, "do not match the generator described in ganaug.json"),
        (_missing_section, "'data' section is missing"),
        (_not_ours, "not a ganaug checkpoint"),
    ],
)
def test_damaged_checkpoints_give_clear_errors(tiny_gan, tmp_path, damage, match):
    path = tiny_gan.save(tmp_path / "c")
    damage(path)
    with pytest.raises(CheckpointError, match=match):
        ConditionalDCGAN.load(path)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ConditionalDCGAN.load(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="ganaug.json is missing"):
        ConditionalDCGAN.load(tmp_path)


def test_gpu_checkpoint_loads_on_cpu(tiny_gan, tmp_path):
    """Weights are stored device-free; loading maps them to the requested device."""
    path = tiny_gan.save(tmp_path / "c")
    loaded = ConditionalDCGAN.load(path, device="cpu")
    assert all(p.device.type == "cpu" for p in loaded.generator_.parameters())
