"""Hostile and corrupt inputs: each ends in a clear error (or a correct load), within bounds.

One test (or more) per failure of issue 14, section 5, then property tests that throw
random, truncated and corrupted files at the IDX, .npz and image-folder readers. Memory
and time are measured with conftest's ``Bounds`` (peak extra RSS of the block).
"""

import gzip
import io
import os
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
import numpy.lib.format as npformat
import pytest
import torch
from conftest import Bounds
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import ganaug.data
from ganaug import ConditionalDCGAN
from ganaug.data import (
    as_image_data,
    load_idx,
    load_image_folder,
    load_source,
    read_idx,
)
from ganaug.datasets import SyntheticDataset

needs_proc = pytest.mark.skipif(
    not Path("/proc/self/clear_refs").exists(), reason="memory bounds need Linux's /proc/self/clear_refs"
)
MB = 2**20


def _png(path, array):
    Image.fromarray(array).save(path)


def _two_classes(root, shape=(10, 12), dtype=np.uint8, high=256):
    """root/a and root/b with two random images each; returns them in load order."""
    rng = np.random.default_rng(0)
    images = []
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(2):
            arr = rng.integers(0, high, shape).astype(dtype)
            _png(root / cls / f"{i}.png", arr)
            images.append(arr)
    return images


def _idx_bytes(array, code=0x08):
    return bytes([0, 0, code, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape) + array.tobytes()


def _gzip_stream(path, header, n_zero_bytes):
    """A gzip file of ``header`` then ``n_zero_bytes`` zeros, written without holding them in memory."""
    chunk = bytes(4 * MB)
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(header)
        for start in range(0, n_zero_bytes, len(chunk)):
            f.write(chunk[: min(len(chunk), n_zero_bytes - start)])


# --------------------------------------------------------------------------- 1. symlinks


def test_symlink_loop_to_the_root_is_refused(tmp_path):
    _two_classes(tmp_path)
    os.symlink("..", tmp_path / "a" / "loop")  # once filed b's images under a, 41 times over
    with pytest.raises(ValueError, match=r"Symlink .*a/loop points to .*holds the image folder .*loop"):
        load_image_folder(tmp_path)


def test_folder_links_into_another_class_are_refused(tmp_path):
    root = tmp_path / "data"
    _two_classes(root)
    (root / "a" / "other-class").symlink_to(root / "b", target_is_directory=True)
    with pytest.raises(ValueError, match=r"Symlink .*other-class points to .*data/b, inside the image folder"):
        load_image_folder(root)
    (root / "a" / "other-class").unlink()
    (root / "c").symlink_to(root, target_is_directory=True)  # a class folder that is the root
    with pytest.raises(ValueError, match=r"Symlink .*data/c points to .*holds the image folder"):
        load_image_folder(root)


def test_links_out_of_the_root_are_followed(tmp_path):
    """A split made of links into one pool, and a class folder on another disk, load as before."""
    pool = tmp_path / "pool"
    pool.mkdir()
    _png(pool / "x.png", np.full((10, 12), 5, np.uint8))
    _png(pool / "y.png", np.full((10, 12), 9, np.uint8))
    other_disk = tmp_path / "big" / "c"
    other_disk.mkdir(parents=True)
    _png(other_disk / "z.png", np.full((10, 12), 3, np.uint8))
    root = tmp_path / "train"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    (root / "a" / "0.png").symlink_to(pool / "x.png")
    (root / "b" / "0.png").symlink_to(pool / "y.png")
    (root / "c").symlink_to(other_disk, target_is_directory=True)
    X, y = load_image_folder(root)
    assert y.tolist() == ["a", "b", "c"] and [int(x[0, 0]) for x in X] == [5, 9, 3]


def test_symlinks_inside_the_class_folder_are_followed_once(tmp_path):
    images = _two_classes(tmp_path)
    sub = tmp_path / "a" / "sub"
    sub.mkdir()
    _png(sub / "s.png", np.full((10, 12), 7, np.uint8))
    (tmp_path / "a" / "alias").symlink_to(sub, target_is_directory=True)  # second way into sub
    (sub / "up").symlink_to("..", target_is_directory=True)  # a loop inside class a
    (tmp_path / "a" / "same.png").symlink_to(tmp_path / "a" / "0.png")  # a file link is an image
    with pytest.warns(UserWarning, match="leads back to a folder already read"):
        X, y = load_image_folder(tmp_path)
    assert y.tolist() == ["a"] * 4 + ["b"] * 2
    assert sum(bool(np.all(x == 7)) for x in X[:4]) == 1  # sub/s.png read exactly once
    np.testing.assert_array_equal(X[4:], np.stack(images[2:]))
    (tmp_path / "c").symlink_to(tmp_path / "b", target_is_directory=True)
    with pytest.raises(ValueError, match=r"c points to .*/b, inside the image folder .* under two classes"):
        load_image_folder(tmp_path)


# --------------------------------------------------------------------------- 2. 16-bit and deeper images


def test_16_bit_pngs_keep_their_values(tmp_path):
    images = _two_classes(tmp_path, dtype=np.uint16, high=63001)
    assert Image.open(tmp_path / "a" / "0.png").mode == "I;16"
    X, y = load_image_folder(tmp_path)
    assert X.dtype == np.uint16 and X.max() > 255  # was only 0 and 255
    np.testing.assert_array_equal(X, np.stack(images))
    data = as_image_data(tmp_path)
    assert data.spec.dtype == "uint16" and data.spec.value_range == (0.0, 65535.0)
    torch.testing.assert_close(data.images.max(), torch.tensor(X.max() / 65535 * 2 - 1, dtype=torch.float32))
    np.testing.assert_array_equal(data.spec.restore(data.images), X)
    resized, _ = load_image_folder(tmp_path, image_size=8)
    assert resized.dtype == np.uint16 and resized.shape == (4, 8, 8) and resized.max() > 255
    rgb, _ = load_image_folder(tmp_path, channels=3)
    assert rgb.shape == (4, 10, 12, 3) and np.array_equal(rgb[..., 1], X)


def test_8_and_16_bit_images_in_one_folder_share_the_16_bit_range(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _png(tmp_path / "a" / "8.png", np.array([[0, 128, 255] * 4] * 10, np.uint8))
    _png(tmp_path / "b" / "16.png", np.full((10, 12), 40000, np.uint16))
    X, _ = load_image_folder(tmp_path)
    assert X.dtype == np.uint16
    assert X[0, 0, :3].tolist() == [0, 128 * 257, 65535] and X[1].max() == 40000


def test_float_and_32_bit_tiffs_are_not_clipped(tmp_path):
    for cls, value in (("a", 0.25), ("b", 2.5)):
        (tmp_path / "f" / cls).mkdir(parents=True)
        Image.fromarray(np.full((10, 12), value, np.float32)).save(tmp_path / "f" / cls / "x.tiff")
    X, _ = load_image_folder(tmp_path / "f")
    assert X.dtype == np.float32 and X[:, 0, 0].tolist() == [0.25, 2.5]
    with pytest.raises(ValueError, match=r"outside the expected range \[0, 1\].*value_range"):
        as_image_data(X, ["a", "b"])  # float values beyond [0, 1] need value_range, as for arrays
    for cls, value in (("a", 60000), ("b", 3)):
        (tmp_path / "i" / cls).mkdir(parents=True)
        Image.fromarray(np.full((10, 12), value, np.int32)).save(tmp_path / "i" / cls / "x.tiff")
    assert Image.open(tmp_path / "i" / "a" / "x.tiff").mode == "I"
    X, _ = load_image_folder(tmp_path / "i")
    assert X.dtype == np.uint16 and X[:, 0, 0].tolist() == [60000, 3]
    Image.fromarray(np.full((10, 12), 100000, np.int32)).save(tmp_path / "i" / "b" / "y.tiff")
    with pytest.raises(ValueError, match=r"y\.tiff holds 32-bit integer pixels spanning \[100000, 100000\]"):
        load_image_folder(tmp_path / "i")
    Image.fromarray(np.full((10, 12), 0.5, np.float32)).save(tmp_path / "i" / "b" / "y.tiff")
    with pytest.raises(ValueError, match=r"mixes float images \(mode F\).*with 16-bit ones"):
        load_image_folder(tmp_path / "i")


def test_integer_dtypes_map_to_their_own_range():
    y = np.arange(6) % 2
    assert as_image_data(np.full((6, 8, 8), 65535, np.uint16), y).spec.value_range == (0.0, 65535.0)
    assert as_image_data(np.full((6, 8, 8), 200, np.int64), y).spec.value_range == (0.0, 255.0)
    with pytest.raises(ValueError, match=r"X is int32 with values spanning \[0, 1000\].*value_range"):
        as_image_data(np.linspace(0, 1000, 6 * 64).astype(np.int32).reshape(6, 8, 8), y)
    data = as_image_data(np.linspace(0, 1000, 6 * 64).astype(np.int32).reshape(6, 8, 8), y, value_range=(0, 1000))
    assert data.images.min() == -1 and data.images.max() == 1


def test_int8_and_low_uint16_data_ask_for_their_range():
    y = np.arange(6) % 2
    with pytest.raises(ValueError, match=r"X is int8 .*value_range"):  # int8 cannot hold 255
        as_image_data(np.full((6, 8, 8), 100, np.int8), y)
    assert as_image_data(np.full((6, 8, 8), 100, np.int8), y, value_range=(-128, 127)).spec.dtype == "int8"
    with pytest.warns(UserWarning, match=r"uint16 but its values only reach 200.*value_range=\(0, 255\)"):
        as_image_data(np.full((6, 8, 8), 200, np.uint16), y)


def test_resume_refuses_data_read_in_another_range():
    from ganaug import load_digits

    X, y = load_digits()
    gan = ConditionalDCGAN(width=8, latent_dim=16, max_epochs=1, verbose=False, device="cpu", random_state=0)
    gan.fit(X[:100], y[:100])
    gan.set_params(max_epochs=2)
    with pytest.raises(ValueError, match=r"Cannot resume: the data's values are read in \(0.0, 2.0\)"):
        gan.fit(X[:100], y[:100], value_range=(0, 2), resume=True)


def test_16_bit_pil_dataset_items_keep_their_values():
    items = [(Image.fromarray(np.full((8, 8), 1000 * (i + 1), np.uint16)), i % 2) for i in range(4)]

    class _Items(torch.utils.data.Dataset):
        def __len__(self):
            return len(items)

        def __getitem__(self, i):
            return items[i]

    data = as_image_data(_Items())
    assert data.spec.dtype == "uint16" and data.spec.value_range == (0.0, 65535.0)
    np.testing.assert_array_equal(data.spec.restore(data.images)[:, 0, 0], [1000, 2000, 3000, 4000])


# --------------------------------------------------------------------------- 3. IDX told by structure


def test_a_png_named_like_idx_is_read_as_an_image(tmp_path):
    _two_classes(tmp_path)
    _png(tmp_path / "a" / "my-idx3-scan.png", np.zeros((10, 12), np.uint8))
    X, y = load_source(tmp_path)  # was: the IDX reader, "Expected one ... idx3"
    assert X.shape == (5, 10, 12) and y.tolist() == ["a"] * 3 + ["b"] * 2


def test_idx_folder_is_told_by_magic_numbers_not_names(tmp_path):
    X = np.random.default_rng(0).integers(0, 256, (6, 9, 9), dtype=np.uint8)
    y = (np.arange(6) % 3).astype(np.uint8)
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "pixels.bin").write_bytes(_idx_bytes(X))
    (tmp_path / "raw" / "pixels.bin.gz").write_bytes(gzip.compress(_idx_bytes(X)))  # a copy, as torchvision keeps
    (tmp_path / "raw" / "classes").write_bytes(gzip.compress(_idx_bytes(y)))  # gzip by its bytes, not its name
    (tmp_path / "raw" / "notes-idx3.txt").write_text("not an IDX file")
    Xr, yr = load_source(tmp_path)
    np.testing.assert_array_equal(Xr, X)
    np.testing.assert_array_equal(yr, y)


def test_real_mnist_folder_is_an_idx_source(mnist_dir):
    X, y = load_source(mnist_dir)
    assert X.shape == (10000, 28, 28) and X.dtype == np.uint8 and len(y) == 10000


# --------------------------------------------------------------------------- 4. decompression bombs


def _huge_png(path, width, height):
    """A valid PNG header declaring width x height over a tiny 8x8 image's data."""
    buf = io.BytesIO()
    Image.new("L", (8, 8)).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    data[16:24] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    path.write_bytes(bytes(data))


@needs_proc
@pytest.mark.parametrize("side, size_text", [(20000, r"400000000 pixels"), (10000, r"10000x10000 = 100000000 pixels")])
def test_huge_images_are_refused_before_decoding(tmp_path, side, size_text):
    _two_classes(tmp_path)
    _huge_png(tmp_path / "b" / "huge.png", side, side)
    message = rf"huge\.png is too large to decode safely \(.*{size_text}.*Resize it first"
    with Bounds() as b, pytest.raises(ValueError, match=message):
        load_image_folder(tmp_path)
    assert b.extra_mb < 20 and b.seconds < 1


# --------------------------------------------------------------------------- 5. IDX headers before data


@needs_proc
def test_overlong_gzip_idx_stops_at_the_declared_size(tmp_path):
    header = bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in (10, 28, 28))
    _gzip_stream(tmp_path / "bomb.gz", header, 10 * 784 + 150 * MB)  # ~150 KB on disk
    with Bounds() as b, pytest.raises(ValueError, match=r"bomb\.gz is truncated or corrupt: .*found more than 7840"):
        read_idx(tmp_path / "bomb.gz")
    assert b.extra_mb < 20 and b.seconds < 0.5


@needs_proc
def test_mismatched_idx_pair_is_refused_before_the_images_are_read(tmp_path):
    n = 100_000  # 78 MB of images, gzipped to ~80 KB
    header = bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in (n, 28, 28))
    _gzip_stream(tmp_path / "images.gz", header, n * 784)
    (tmp_path / "labels").write_bytes(_idx_bytes(np.zeros(10, np.uint8)))
    message = r"labels holds \(10,\) labels for 100000 images in .*images\.gz"
    with Bounds() as b, pytest.raises(ValueError, match=message):
        load_idx(tmp_path / "images.gz", tmp_path / "labels")
    assert b.extra_mb < 20 and b.seconds < 0.5


@pytest.mark.parametrize("dims", [(2**31, 2**31, 2**31), (2**31, 28, 28)])
def test_huge_idx_dims_are_refused_naming_the_file(tmp_path, dims):
    header = bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in dims)
    (tmp_path / "huge-images").write_bytes(header + bytes(100))
    message = r"huge-images declares an array of shape .* more than ganaug\.data\.MAX_ARRAY_BYTES"
    with pytest.raises(ValueError, match=message):
        read_idx(tmp_path / "huge-images")


def test_max_array_bytes_bounds_genuine_files_too(tmp_path, monkeypatch):
    (tmp_path / "x").write_bytes(_idx_bytes(np.zeros((10, 28, 28), np.uint8)))
    assert read_idx(tmp_path / "x").shape == (10, 28, 28)
    monkeypatch.setattr(ganaug.data, "MAX_ARRAY_BYTES", 1000)
    with pytest.raises(ValueError, match=r"7,840 bytes.*raise ganaug\.data\.MAX_ARRAY_BYTES"):
        read_idx(tmp_path / "x")


def test_idx_big_endian_and_truncated_gzip(tmp_path):
    X = (np.arange(2 * 9 * 9) * 100).astype(">i2").reshape(2, 9, 9)  # IDX stores big-endian
    (tmp_path / "x.gz").write_bytes(gzip.compress(_idx_bytes(X, code=0x0B)))
    out = read_idx(tmp_path / "x.gz")
    assert out.dtype == np.int16 and out.dtype.isnative and np.array_equal(out, X)
    (tmp_path / "cut.gz").write_bytes(gzip.compress(_idx_bytes(X, code=0x0B))[:-12])
    with pytest.raises(ValueError, match=r"cut\.gz"):
        read_idx(tmp_path / "cut.gz")


@needs_proc
@pytest.mark.parametrize("compress", [False, True])
def test_idx_is_read_in_place(tmp_path, compress):
    X = np.tile((np.arange(784) % 251).astype(np.uint8), 50_000).reshape(50_000, 28, 28)  # 39 MB
    blob = _idx_bytes(X)
    path = tmp_path / ("x.gz" if compress else "x")
    path.write_bytes(gzip.compress(blob, compresslevel=1) if compress else blob)
    del blob
    with Bounds() as b:
        out = read_idx(path)
    assert np.array_equal(out, X)
    assert b.extra_mb < 1.25 * X.nbytes / MB  # was 2x: bytes, then an astype copy


# --------------------------------------------------------------------------- 6. .npz archives


def _npz_with_member(path, name, header, data):
    """An .npz whose member ``name`` is a hand-made .npy header dict and data, beside a normal y."""
    buf = io.BytesIO()
    npformat.write_array_header_1_0(buf, header)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(name, buf.getvalue() + data)
        if name != "y.npy":
            ybuf = io.BytesIO()
            np.save(ybuf, np.arange(4) % 2)
            zf.writestr("y.npy", ybuf.getvalue())


def test_npy_renamed_npz_is_refused_clearly(tmp_path):
    np.save(tmp_path / "d.npy", np.zeros((4, 8, 8)))
    os.replace(tmp_path / "d.npy", tmp_path / "d.npz")
    with pytest.raises(ValueError, match=r"d\.npz is not an \.npz \(zip\) archive.*np\.savez\('d\.npz', X=X, y=y\)"):
        load_source(tmp_path / "d.npz")


@needs_proc
def test_npz_header_declaring_a_terabyte_is_refused(tmp_path):
    _npz_with_member(tmp_path / "d.npz", "X.npy", {"descr": "<f4", "fortran_order": False, "shape": (250_000_000_000,)},
                     bytes(64))
    message = r"d\.npz \(array X\.npy\) is corrupt: .*1,000,000,000,000 bytes.*holds 64"
    with Bounds() as b, pytest.raises(ValueError, match=message):
        load_source(tmp_path / "d.npz")
    assert b.extra_mb < 20 and b.seconds < 0.5


def test_npz_members_are_checked_before_reading(tmp_path, monkeypatch):
    np.savez(tmp_path / "obj.npz", X=np.array([1, "a"], dtype=object), y=np.arange(2))
    with pytest.raises(ValueError, match=r"obj\.npz \(array X\.npy\) holds dtype object.*never unpickles"):
        load_source(tmp_path / "obj.npz")
    _npz_with_member(tmp_path / "neg.npz", "X.npy", {"descr": "<f4", "fortran_order": False, "shape": (-2, -2)},
                     bytes(16))
    with pytest.raises(ValueError, match=r"neg\.npz \(array X\.npy\) is corrupt"):
        load_source(tmp_path / "neg.npz")
    np.savez(tmp_path / "ok.npz", X=np.zeros((4, 8, 8), np.uint8), y=np.arange(4) % 2)
    monkeypatch.setattr(ganaug.data, "MAX_ARRAY_BYTES", 100)
    with pytest.raises(ValueError, match=r"ok\.npz \(array X\.npy\) declares 256 bytes .*MAX_ARRAY_BYTES"):
        load_source(tmp_path / "ok.npz")


def test_npz_round_trip_and_fortran_order(tmp_path):
    X = np.asfortranarray(np.random.default_rng(0).random((5, 8, 8), dtype=np.float32))
    np.savez_compressed(tmp_path / "d.npz", X=X, y=np.array(["u", "v"] * 2 + ["u"]))
    Xr, yr = load_source(tmp_path / "d.npz")
    np.testing.assert_array_equal(Xr, X)
    assert yr.tolist() == ["u", "v", "u", "v", "u"]


# --------------------------------------------------------------------------- 7. array dtypes and labels


def test_bool_images_span_the_whole_range():
    X = (np.indices((8, 8)).sum(axis=0) % 2).astype(bool)[None].repeat(4, axis=0)
    data = as_image_data(X, [0, 1, 0, 1])
    assert data.spec.value_range == (0.0, 1.0) and data.spec.dtype == "bool"
    assert sorted(torch.unique(data.images).tolist()) == [-1.0, 1.0]  # was near-black: 0..255
    back = data.spec.restore(data.images)
    assert back.dtype == np.bool_ and np.array_equal(back, X)


def test_complex_images_are_refused():
    with pytest.raises(TypeError, match=r"X is complex \(complex64\).*np\.abs\(X\)"):
        as_image_data(np.zeros((4, 8, 8), np.complex64), [0, 1, 0, 1])


@pytest.mark.parametrize(
    "y", [[1, "even", 3, "even"], np.array([1, "even", 3, "even"], dtype=object), (1, "a", 1, "a")]
)
def test_mixed_label_types_are_refused(y):
    with pytest.raises(TypeError, match=r"y mixes int and str labels.*all integers or all strings"):
        as_image_data(np.zeros((4, 8, 8)), y)


# --------------------------------------------------------------------------- 8. disk cache


def _cache_file(cache_dir):
    (path,) = cache_dir.glob("ganaug-synthetic-*.npy")
    return path


def test_a_swapped_disk_cache_is_regenerated(tiny_gan, tmp_path):
    kwargs = dict(storage="disk", cache_dir=tmp_path, random_state=0)
    first = SyntheticDataset(tiny_gan, 20, **kwargs)
    expected = np.stack([first[i][0] for i in range(len(first))])
    path = _cache_file(tmp_path)
    record = path.with_suffix(".json")
    assert record.is_file()
    cases = [
        (lambda: np.save(path, np.zeros_like(np.load(path))), "holds other images than its record's SHA-256"),
        (lambda: np.save(path, np.zeros((3, 1, 8, 8), np.float32)), r"holds a float32 array of shape \(3, 1, 8, 8\)"),
        (lambda: path.write_bytes(b"garbage"), "cannot be read"),
        (lambda: record.unlink(), r"has no readable record \(\.json\)"),
        (lambda: record.write_text('{"key": "another", "shape": [20, 1, 8, 8], "dtype": "float32"}'),
         r"has a record \(\.json\) for other images"),
    ]
    for damage, message in cases:
        damage()
        with pytest.warns(UserWarning, match=rf"Disk cache .*{path.name} {message}.*generating it again"):
            again = SyntheticDataset(tiny_gan, 20, **kwargs)
        np.testing.assert_array_equal(np.stack([again[i][0] for i in range(len(again))]), expected)
    mtime = path.stat().st_mtime_ns
    SyntheticDataset(tiny_gan, 20, **kwargs)  # a verified cache is reused untouched
    assert path.stat().st_mtime_ns == mtime


# --------------------------------------------------------------------------- property tests

# Each example costs ~0.1 s, mostly Bounds' gc.collect: 30 keep each property test near 5 s.
PROPERTY = settings(max_examples=30, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
IDX_CODES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _bounded(folder, *calls):
    """Each call's result, or None where it failed with a clean error naming a path in
    ``folder``; all within 50 MB and 1 s."""
    results = []
    with Bounds() as b:
        for call in calls:
            try:
                results.append(call())
            except (ValueError, TypeError, FileNotFoundError) as exc:
                assert str(folder) in str(exc), f"the error must name the file: {exc}"
                results.append(None)
    assert b.extra_mb < 50 and b.seconds < 1, (b.extra_mb, b.seconds)
    return results


@st.composite
def idx_blobs(draw):
    """(file bytes, the array when the file is intact else None): IDX files and damaged ones."""
    code = draw(st.sampled_from(sorted(IDX_CODES)))
    dtype = np.dtype(IDX_CODES[code])
    dims = draw(st.lists(st.integers(0, 5), min_size=1, max_size=3))
    size = int(np.prod(dims)) * dtype.itemsize
    data = draw(st.binary(min_size=size, max_size=size))
    header = bytearray([0, 0, code, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)
    kind = draw(st.sampled_from(["intact", "random", "truncate", "flip", "huge", "extra"]))
    blob = bytes(header) + data
    if kind == "random":
        blob = draw(st.binary(max_size=300))
    elif kind == "truncate":
        blob = blob[: draw(st.integers(0, len(blob) - 1))]
    elif kind == "flip":
        i = draw(st.integers(0, len(header) - 1))
        header[i] ^= draw(st.integers(1, 255))
        blob = bytes(header) + data
    elif kind == "huge":
        i = draw(st.integers(0, len(dims) - 1))
        header[4 + 4 * i : 8 + 4 * i] = draw(st.integers(2**20, 2**32 - 1)).to_bytes(4, "big")
        blob = bytes(header) + data
    elif kind == "extra":
        blob += draw(st.binary(min_size=1, max_size=50))
    if draw(st.booleans()):
        blob = gzip.compress(blob)
        if draw(st.booleans()):
            blob = blob[: draw(st.integers(0, len(blob) - 1))]  # a cut gzip stream
            kind = "cut"
    return blob, np.frombuffer(data, dtype=dtype).reshape(dims) if kind == "intact" else None


@needs_proc
@PROPERTY
@given(idx_blobs())
def test_property_idx_reader(case):
    blob, intact = case
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t-images"
        path.write_bytes(blob)
        # The source loader takes the same file, beside a valid labels file, without surprise.
        (Path(tmp) / "labels").write_bytes(_idx_bytes(np.zeros(4, np.uint8)))
        out, _ = _bounded(tmp, lambda: read_idx(path), lambda: load_source(tmp))
        if intact is not None:
            assert out is not None and out.dtype.isnative
            np.testing.assert_array_equal(out, intact)
        elif out is not None:  # e.g. a flipped type code of the same item size: the header rules
            raw = gzip.decompress(blob) if blob[:2] == b"\x1f\x8b" else blob
            assert out.dtype.isnative and out.nbytes == len(raw) - (4 + 4 * out.ndim)


@st.composite
def npz_blobs(draw):
    """(file bytes, kind): random bytes, truncated or corrupted .npz archives, hand-made .npy headers."""
    kind = draw(st.sampled_from(["random", "truncate", "flip", "header", "garbage-header"]))
    if kind == "random":
        return draw(st.binary(max_size=400)), kind
    buf = io.BytesIO()
    if kind in ("header", "garbage-header"):
        npy = io.BytesIO()
        if kind == "header":
            shape = tuple(draw(st.lists(st.integers(-3, 2**40), max_size=3)))
            descrs = ["<f4", "|u1", "|b1", "<c8", "|O", "|V0", "<U0", ">i8", "<U3", [("a", "<i4")]]
            descr = draw(st.sampled_from(descrs))
            npformat.write_array_header_1_0(npy, {"descr": descr, "fortran_order": draw(st.booleans()), "shape": shape})
        else:
            text = draw(st.binary(max_size=200))
            npy.write(b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text)
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("X.npy", npy.getvalue() + draw(st.binary(max_size=64)))
            zf.writestr("y.npy", npy.getvalue() + draw(st.binary(max_size=64)))
        return buf.getvalue(), kind
    save = np.savez_compressed if draw(st.booleans()) else np.savez
    save(buf, X=NPZ_X, y=np.arange(4) % 2)
    blob = bytearray(buf.getvalue())
    if kind == "truncate":
        return bytes(blob[: draw(st.integers(0, len(blob) - 1))]), kind
    for _ in range(draw(st.integers(1, 4))):
        blob[draw(st.integers(0, len(blob) - 1))] ^= draw(st.integers(1, 255))
    return bytes(blob), kind


NPZ_X = np.arange(4 * 64, dtype=np.uint8).reshape(4, 8, 8)


@needs_proc
@PROPERTY
@given(npz_blobs())
def test_property_npz_reader(case):
    blob, kind = case
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "d.npz"
        path.write_bytes(blob)
        (out,) = _bounded(tmp, lambda: load_source(path))
        if out is not None:
            X, y = out
            assert isinstance(X, np.ndarray) and isinstance(y, np.ndarray)
            assert not X.dtype.hasobject and not y.dtype.hasobject
            if kind in ("truncate", "flip"):  # zip's CRC lets no damaged byte of the arrays through
                np.testing.assert_array_equal(X, NPZ_X)


@st.composite
def image_blobs(draw):
    """(file bytes, the pixels it was made from, kind): PNGs, random bytes, truncated or corrupted PNGs."""
    mode = draw(st.sampled_from(["L", "RGB", "I;16"]))
    h, w = draw(st.integers(8, 16)), draw(st.integers(8, 16))
    dtype, shape = (np.uint16, (h, w)) if mode == "I;16" else (np.uint8, (h, w, 3) if mode == "RGB" else (h, w))
    pixels = np.random.default_rng(draw(st.integers(0, 2**16))).integers(0, np.iinfo(dtype).max + 1, shape)
    pixels = pixels.astype(dtype)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    blob = bytearray(buf.getvalue())
    kind = draw(st.sampled_from(["intact", "random", "truncate", "flip"]))
    if kind == "random":
        blob = bytearray(draw(st.binary(max_size=400)))
        if draw(st.booleans()):
            blob[:0] = b"\x89PNG\r\n\x1a\n"  # a PNG signature before random bytes
    elif kind == "truncate":
        blob = blob[: draw(st.integers(0, len(blob) - 1))]
    elif kind == "flip":
        for _ in range(draw(st.integers(1, 3))):
            blob[draw(st.integers(0, len(blob) - 1))] ^= draw(st.integers(1, 255))
    return bytes(blob), pixels, kind


@needs_proc
@PROPERTY
@given(image_blobs())
def test_property_image_folder_reader(case):
    blob, pixels, kind = case
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "a").mkdir()
        (root / "b").mkdir()
        (root / "a" / "x.png").write_bytes(blob)
        Image.fromarray(pixels).save(root / "b" / "good.png")
        (out,) = _bounded(tmp, lambda: load_source(root))
        if kind == "intact":
            assert out is not None
        if out is not None:
            X, y = out
            assert y.tolist() == ["a", "b"] and len(X) == 2
            # A truncated PNG loads only when no pixel was cut. A flipped byte may go unseen
            # (Pillow skips IDAT's CRC and may stop before zlib's checksum): shape only then.
            if kind in ("intact", "truncate"):
                np.testing.assert_array_equal(X, np.stack([pixels, pixels]))
