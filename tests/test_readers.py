"""ganaug.readers: the file readers on their own, and the bound they share with ganaug.data."""

import subprocess
import sys

import numpy as np
import pytest

import ganaug.data
import ganaug.readers
from ganaug.readers import load_npz, load_source, read_idx


def _idx_bytes(array):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def test_readers_import_neither_data_nor_torch():
    # Reading files needs numpy and PIL only; the layering test checks the import statements,
    # this checks what importing really loads.
    code = "import sys, ganaug.readers; print('ganaug.data' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_the_public_readers_are_the_ones_data_exports():
    for name in ("load_digits", "load_idx", "load_image_folder", "load_npz", "load_source", "read_idx"):
        assert getattr(ganaug.data, name) is getattr(ganaug.readers, name)
        assert name in ganaug.data.__all__


def test_max_array_bytes_set_through_data_bounds_the_readers(tmp_path, monkeypatch):
    (tmp_path / "x").write_bytes(_idx_bytes(np.zeros((10, 28, 28), np.uint8)))
    monkeypatch.setattr(ganaug.data, "MAX_ARRAY_BYTES", 1000)
    assert ganaug.readers.MAX_ARRAY_BYTES == 1000
    with pytest.raises(ValueError, match=r"7,840 bytes.*more than ganaug\.data\.MAX_ARRAY_BYTES \(1,000\)"):
        read_idx(tmp_path / "x")
    monkeypatch.setattr(ganaug.readers, "MAX_ARRAY_BYTES", 10_000)
    assert ganaug.data.MAX_ARRAY_BYTES == 10_000
    assert read_idx(tmp_path / "x").shape == (10, 28, 28)


def test_npz_member_over_the_bound_is_refused(tmp_path, monkeypatch):
    np.savez(tmp_path / "ok.npz", X=np.zeros((4, 8, 8), np.uint8), y=np.arange(4))
    assert load_npz(str(tmp_path / "ok.npz"))[0].shape == (4, 8, 8)
    monkeypatch.setattr(ganaug.readers, "MAX_ARRAY_BYTES", 100)
    with pytest.raises(ValueError, match=r"ok\.npz \(array X\.npy\) declares 256 bytes"):
        load_source(tmp_path / "ok.npz")
