import hashlib
import io
import json
import os
import pickle

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


class _Trap:
    """Unpickling this creates the file ``marker``: proof that a reader unpickled it."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _torch_save(trap, **kwargs):
    buf = io.BytesIO()
    torch.save({"generator.main.0.weight": trap}, buf, **kwargs)
    return buf.getvalue()


def _with_length(header):
    return len(header).to_bytes(8, "little") + header


def _tensor_of(blob):
    header = json.dumps({"generator.main.0.weight": {"dtype": "U8", "shape": [len(blob)],
                                                     "data_offsets": [0, len(blob)]}}).encode()
    return _with_length(header) + blob


def _torch_load(blob):
    return torch.load(io.BytesIO(blob), weights_only=False)


def _data_section(blob):
    """What follows a safetensors file's header: its tensors' bytes (and anything after them)."""
    return blob[8 + int.from_bytes(blob[:8], "little") :]


def _after_tensors(blob):
    header = json.loads(blob[8 : 8 + int.from_bytes(blob[:8], "little")])
    end = max(v["data_offsets"][1] for k, v in header.items() if k != "__metadata__")
    return _data_section(blob)[end:]


# variant: (the file replaced, its bytes from (trap, real weights), how a careless reader would unpickle them)
PICKLE_PAYLOADS = {
    **{f"pickle protocol {p}": ("weights", lambda t, w, p=p: pickle.dumps({"w": t}, protocol=p), pickle.loads)
       for p in range(pickle.HIGHEST_PROTOCOL + 1)},
    "torch.save zip": ("weights", lambda t, w: _torch_save(t), _torch_load),
    "torch.save legacy": ("weights", lambda t, w: _torch_save(t, _use_new_zipfile_serialization=False), _torch_load),
    "pickle as safetensors header": ("weights", lambda t, w: _with_length(pickle.dumps(t)),
                                     lambda b: pickle.loads(b[8:])),
    "pickle as tensor data": ("weights", lambda t, w: _tensor_of(pickle.dumps(t)),
                              lambda b: pickle.loads(_data_section(b))),
    "pickle after the tensors": ("weights", lambda t, w: w + pickle.dumps(t), lambda b: pickle.loads(_after_tensors(b))),
    "pickle as ganaug.json": ("config", lambda t, w: pickle.dumps(t, protocol=0), pickle.loads),
}


@pytest.mark.parametrize("variant", list(PICKLE_PAYLOADS))
def test_loading_never_unpickles(tiny_gan, tmp_path, monkeypatch, variant):
    target, build, unsafe_load = PICKLE_PAYLOADS[variant]
    path = tiny_gan.save(tmp_path / "c")
    weights, marker = _weights(path), tmp_path / "unpickled"
    blob = build(_Trap(marker), weights.read_bytes())
    unsafe_load(blob)  # the trap is live: a reader that unpickles it creates the marker
    assert marker.exists()
    marker.unlink()
    if target == "weights":  # named and hashed as the writer would, so that only the format can refuse it
        digest = hashlib.sha256(blob).hexdigest()
        weights.unlink()
        (path / f"weights-{digest[:16]}.safetensors").write_bytes(blob)
        meta = json.loads((path / CONFIG_NAME).read_text())
        meta["weights"] = {"file": f"weights-{digest[:16]}.safetensors", "sha256": digest}
        (path / CONFIG_NAME).write_text(json.dumps(meta))
    else:
        (path / CONFIG_NAME).write_bytes(blob)

    calls = []  # unpicklers called, recorded and then run: a loader that swallows errors is caught too

    def spy(module, name):
        original = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, **k: calls.append(name) or original(*a, **k))

    for module, name in ((torch, "load"), (pickle, "load"), (pickle, "loads"), (pickle, "Unpickler")):
        spy(module, name)
    with pytest.raises(CheckpointError, match="corrupt|do not match"):
        ConditionalDCGAN.load(path, device="cpu")
    assert not marker.exists() and calls == []


def test_saved_checkpoint_is_json_and_safetensors(tiny_gan, tmp_path):
    from safetensors.torch import load_file

    path = tiny_gan.save(tmp_path / "c")
    assert json.loads((path / CONFIG_NAME).read_text())["format_version"] >= 1
    tensors = load_file(_weights(path))  # a safetensors file holds raw tensors and a JSON header, no code
    assert any(k.startswith("generator.") for k in tensors) and any(k.startswith("opt_g.") for k in tensors)


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


def test_gpu_checkpoint_loads_on_cpu(tiny_gan, tmp_path, monkeypatch, digits):
    """What a GPU run writes differently is only its device parameter (safetensors holds no
    device, and the writer copies every tensor to the CPU): a checkpoint of a model fit with
    device="cuda:1" loads on a machine without CUDA, runs there and trains on."""
    import copy

    gpu_run = copy.deepcopy(tiny_gan).set_params(device="cuda:1")  # as ConditionalDCGAN(device="cuda:1").fit writes it
    path = gpu_run.save(tmp_path / "c")
    assert read_metadata(path)["params"]["device"] == "cuda:1"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(ValueError, match="Device 'cuda:1' is not available on this machine; use device='cpu' or 'auto'"):
        ConditionalDCGAN.load(path, device="cuda:1")
    loaded = ConditionalDCGAN.load(path)  # device="auto": the CPU here, not the device the file names
    assert loaded.device_ == torch.device("cpu") and loaded.get_params()["device"] == "auto"
    modules = [m for m in vars(loaded).values() if isinstance(m, torch.nn.Module)]  # both generators, D, classifier
    assert len(modules) >= 3
    assert {t.device.type for m in modules for t in [*m.parameters(), *m.buffers()]} == {"cpu"}
    assert {v.device.type for opt in loaded._optimizers for s in opt.state.values() for v in s.values()
            if isinstance(v, torch.Tensor)} == {"cpu"}
    np.testing.assert_array_equal(loaded.sample(6, random_state=0)[0], tiny_gan.sample(6, random_state=0)[0])
    X, y = digits[0][:400], digits[1][:400]  # tiny_gan's data
    loaded.set_params(max_epochs=2).fit(X, y, resume=True)  # trains on, on the CPU, as the run itself would
    continued = copy.deepcopy(tiny_gan).set_params(max_epochs=2).fit(X, y, resume=True)
    assert loaded.n_epochs_ == 2 and loaded.device_ == torch.device("cpu") and loaded.history_ == continued.history_
    np.testing.assert_array_equal(loaded.sample(6, random_state=0)[0], continued.sample(6, random_state=0)[0])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="trains on a CUDA GPU; the test above covers its checkpoint")
def test_cuda_checkpoint_loads_in_a_process_without_cuda(digits, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from conftest import TINY
    from safetensors.torch import load_file

    X, y = digits
    gan = ConditionalDCGAN(random_state=0, **{**TINY, "device": "cuda"}).fit(X[:200], y[:200])
    assert next(gan.generator_.parameters()).is_cuda
    path = gan.save(tmp_path / "c")
    code = (
        "import sys, torch; from ganaug import ConditionalDCGAN; from safetensors.torch import save_file\n"
        "assert not torch.cuda.is_available()\n"
        "gan = ConditionalDCGAN.load(sys.argv[1])\n"
        "assert gan.device_.type == 'cpu' and gan.get_params()['device'] == 'auto'\n"
        "save_file({k: v.clone() for k, v in gan.generator_.state_dict().items()}, sys.argv[2])\n"
    )
    out = tmp_path / "loaded.safetensors"
    subprocess.run([sys.executable, "-c", code, str(path), str(out)], env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
                   cwd=Path(__file__).resolve().parents[1], check=True, timeout=300)
    loaded, trained = load_file(out), gan.generator_.state_dict()
    assert loaded.keys() == trained.keys()
    assert all(torch.equal(loaded[k], trained[k].cpu()) for k in trained)
