import gzip

import numpy as np
import pytest
import torch
from conftest import make_images
from PIL import Image

from ganaug.data import (
    as_image_data,
    load_idx,
    load_image_folder,
    load_source,
    read_idx,
)


@pytest.mark.parametrize(
    "shape, layout, chw",
    [
        ((12, 10), "NHW", (1, 12, 10)),
        ((12, 10, 3), "NHWC", (3, 12, 10)),
        ((3, 12, 10), "NCHW", (3, 12, 10)),
        ((12, 10, 1), "NHWC", (1, 12, 10)),
        ((16, 16, 16), "NHWC", (16, 16, 16)),  # ambiguous: numpy convention is channels-last
    ],
)
def test_array_layouts_round_trip(shape, layout, chw):
    X, y = make_images(shape=shape)
    data = as_image_data(X, y)
    assert data.spec.layout == layout
    assert tuple(data.images.shape) == (len(X), *chw)
    assert data.images.dtype == torch.float32
    assert data.images.min() >= -1 and data.images.max() <= 1
    back = data.spec.restore(data.images)
    assert isinstance(back, np.ndarray) and back.dtype == np.uint8 and back.shape == X.shape
    np.testing.assert_array_equal(back, X)


def test_torch_tensor_is_nchw_and_comes_back_as_tensor():
    X = torch.rand(20, 16, 16, 16)  # ambiguous: torch convention is channels-first
    data = as_image_data(X, torch.arange(20) % 4)
    assert data.spec.layout == "NCHW" and data.spec.container == "torch"
    back = data.spec.restore(data.images)
    assert isinstance(back, torch.Tensor) and back.dtype == torch.float32
    torch.testing.assert_close(back, X, atol=1e-6, rtol=0)
    assert data.classes.tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_images_keep_dtype_and_range(dtype):
    X, y = make_images(shape=(9, 9), dtype=dtype)
    data = as_image_data(X, y)
    back = data.spec.restore(data.images)
    assert back.dtype == dtype
    np.testing.assert_allclose(back, X, atol=1e-6)


def test_custom_value_range():
    X = np.random.default_rng(0).uniform(0, 16, size=(10, 8, 8))
    data = as_image_data(X, np.arange(10) % 2, value_range=(0, 16))
    assert data.images.min() >= -1 and data.images.max() <= 1
    np.testing.assert_allclose(data.spec.restore(data.images), X, atol=1e-5)


def test_flattened_rows_with_and_without_image_shape():
    X, y = make_images(shape=(8, 8))
    flat = X.reshape(len(X), -1)
    data = as_image_data(flat, y)  # square grey images are inferred
    assert data.image_shape == (1, 8, 8)
    np.testing.assert_array_equal(data.spec.restore(data.images), flat)
    Xc, yc = make_images(shape=(10, 12, 3))
    data = as_image_data(Xc.reshape(len(Xc), -1), yc, image_shape=(10, 12, 3))
    assert data.image_shape == (3, 10, 12)
    np.testing.assert_array_equal(data.spec.restore(data.images), Xc.reshape(len(Xc), -1))


def test_string_labels_are_sorted_classes():
    X, _ = make_images(n=6)
    data = as_image_data(X, ["dog", "cat", "dog", "ant", "cat", "ant"])
    assert data.classes.tolist() == ["ant", "cat", "dog"]
    assert data.labels.tolist() == [2, 1, 2, 0, 1, 0]
    assert data.class_counts.tolist() == [2, 2, 2]


@pytest.mark.parametrize(
    "X, y, kwargs, error, match",
    [
        (np.zeros((4, 2, 8, 8, 1)), [0, 1, 0, 1], {}, ValueError, "2 .flattened., 3 .* or 4"),
        (np.zeros((4, 8, 8)), [0, 1, 0], {}, ValueError, "different lengths: 4 images but 3 labels"),
        (np.full((4, 8, 8), np.nan), [0, 1, 0, 1], {}, ValueError, "NaN or inf"),
        (np.full((4, 8, 8), np.inf), [0, 1, 0, 1], {}, ValueError, "NaN or inf"),
        (np.full((4, 8, 8), 2.0), [0, 1, 0, 1], {}, ValueError, r"outside the expected range \[0, 1\]"),
        (np.full((4, 8, 8), -0.5), [0, 1, 0, 1], {}, ValueError, "outside the expected range"),
        (np.full((4, 8, 8), 300, dtype=np.int64), [0, 1, 0, 1], {}, ValueError, "0..255"),
        (np.zeros((4, 4, 4)), [0, 1, 0, 1], {}, ValueError, "at least 8x8"),
        (np.zeros((4, 3, 4, 4)), [0, 1, 0, 1], {}, ValueError, "at least 8x8"),
        (np.zeros((4, 8, 8)), [1, 1, 1, 1], {}, ValueError, "at least 2 classes"),
        (np.zeros((4, 60)), [0, 1, 0, 1], {}, ValueError, "not a square grey image; pass image_shape"),
        (np.zeros((4, 64)), [0, 1, 0, 1], {"image_shape": (8, 9)}, ValueError, "holds 72 values"),
        (np.zeros((4, 8, 8)), None, {}, ValueError, "y is required"),
        (np.zeros((4, 8, 8)), [0, 1, 0, 1], {"value_range": (1, 0)}, ValueError, "high > low"),
        (np.array([["a"] * 64] * 4), [0, 1, 0, 1], {}, TypeError, "numeric array"),
        (np.zeros((4, 8, 8)), [0.0, np.nan, 0.0, 1.0], {}, ValueError, "y contains NaN"),
    ],
)
def test_bad_arrays_raise_clear_errors(X, y, kwargs, error, match):
    with pytest.raises(error, match=match):
        as_image_data(X, y, **kwargs)


def test_single_image_class_warns():
    X, _ = make_images(n=5)
    with pytest.warns(UserWarning, match=r"Classes \[7\] have a single image"):
        as_image_data(X, [0, 0, 0, 0, 7])


class _PairDataset(torch.utils.data.Dataset):
    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def test_torchvision_dataset_of_pil_images():
    from torchvision.datasets import FakeData

    ds = FakeData(size=12, image_size=(3, 10, 9), num_classes=3)
    data = as_image_data(ds)
    assert data.image_shape == (3, 10, 9)
    assert data.spec.dtype == "uint8" and data.spec.layout == "NHWC" and data.spec.container == "numpy"
    first = np.asarray(ds[0][0])
    np.testing.assert_array_equal(data.spec.restore(data.images[:1])[0], first)
    assert data.labels.shape == (12,)


def test_tensor_dataset_keeps_tensor_form():
    X = torch.rand(10, 1, 8, 8)
    ds = torch.utils.data.TensorDataset(X, torch.arange(10) % 2)
    data = as_image_data(ds)
    assert data.spec.container == "torch" and data.spec.layout == "NCHW"
    torch.testing.assert_close(data.spec.restore(data.images), X, atol=1e-6, rtol=0)


def test_dataset_errors():
    with pytest.raises(ValueError, match="not an .image, label. pair"):
        as_image_data(_PairDataset([torch.zeros(1, 8, 8)] * 3))
    with pytest.raises(TypeError, match="expected a PIL image"):
        as_image_data(_PairDataset([("nope", 0)] * 3))
    with pytest.raises(ValueError, match="share one size"):
        as_image_data(_PairDataset([(torch.zeros(1, 8, 8), 0), (torch.zeros(1, 9, 9), 1)]))
    with pytest.raises(ValueError, match="empty"):
        as_image_data(_PairDataset([]))


def _write_folder(root, sizes=None, mode="L"):
    rng = np.random.default_rng(0)
    for cls, n in (("cat", 3), ("dog", 2)):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            size = (sizes or {}).get((cls, i), (10, 12))
            shape = (size[1], size[0]) + ((3,) if mode == "RGB" else ())
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(root / cls / f"{i}.png")


def test_image_folder_grey_and_rgb(tmp_path):
    _write_folder(tmp_path / "grey")
    X, y = load_image_folder(tmp_path / "grey")
    assert X.shape == (5, 12, 10) and X.dtype == np.uint8
    assert y.tolist() == ["cat", "cat", "cat", "dog", "dog"]
    _write_folder(tmp_path / "rgb", mode="RGB")
    X, _ = load_image_folder(tmp_path / "rgb")
    assert X.shape == (5, 12, 10, 3)
    data = as_image_data(tmp_path / "rgb")
    assert data.classes.tolist() == ["cat", "dog"] and data.image_shape == (3, 12, 10)


def test_image_folder_mixed_sizes(tmp_path):
    _write_folder(tmp_path, sizes={("dog", 1): (16, 16)})
    with pytest.raises(ValueError, match="mixed sizes.*image_size"):
        load_image_folder(tmp_path)
    X, _ = load_image_folder(tmp_path, image_size=8)
    assert X.shape == (5, 8, 8)


def test_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_image_folder(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="Couldn't find any class folder"):
        load_image_folder(tmp_path)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "notes.txt").write_text("hi")
    with pytest.raises(FileNotFoundError, match="no image files"):
        load_image_folder(tmp_path)
    (tmp_path / "a" / "broken.png").write_bytes(b"not a png at all")
    with pytest.raises(ValueError, match=r"Cannot read image file .*broken\.png"):
        load_image_folder(tmp_path)


def _write_idx(path, array, compress):
    codes = {np.dtype(np.uint8): 0x08}
    header = bytes([0, 0, codes[array.dtype], array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    opener = gzip.open if compress else open
    with opener(path, "wb") as f:
        f.write(header + array.tobytes())


@pytest.mark.parametrize("compress", [False, True])
def test_idx_round_trip(tmp_path, compress):
    X, y = make_images(n=7, shape=(9, 11))
    suffix = ".gz" if compress else ""
    _write_idx(tmp_path / f"train-images-idx3-ubyte{suffix}", X, compress)
    _write_idx(tmp_path / f"train-labels-idx1-ubyte{suffix}", y.astype(np.uint8), compress)
    Xr, yr = load_idx(tmp_path)
    np.testing.assert_array_equal(Xr, X)
    np.testing.assert_array_equal(yr, y)
    Xs, ys = load_source(tmp_path)
    np.testing.assert_array_equal(Xs, X)


def test_idx_errors(tmp_path):
    (tmp_path / "bad-images-idx3-ubyte").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="bad magic number"):
        read_idx(tmp_path / "bad-images-idx3-ubyte")
    X, _ = make_images(n=3)
    _write_idx(tmp_path / "t-images-idx3-ubyte", X, False)
    data = (tmp_path / "t-images-idx3-ubyte").read_bytes()
    (tmp_path / "t-images-idx3-ubyte").write_bytes(data[:-5])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        read_idx(tmp_path / "t-images-idx3-ubyte")
    with pytest.raises(ValueError, match="Expected one"):
        load_idx(tmp_path)


def test_real_mnist_idx(mnist_dir):
    X, y = load_idx(mnist_dir)
    assert X.shape == (10000, 28, 28) and X.dtype == np.uint8
    assert np.bincount(y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_digits_and_npz_sources(tmp_path, digits):
    X, y = digits
    assert X.shape == (1797, 8, 8) and X.dtype == np.float32 and 0 <= X.min() and X.max() <= 1
    data = as_image_data("digits")
    assert data.classes.tolist() == list(range(10))
    np.savez(tmp_path / "d.npz", X=X[:50], y=y[:50])
    Xn, yn = load_source(tmp_path / "d.npz")
    np.testing.assert_array_equal(Xn, X[:50])
    np.savez(tmp_path / "bad.npz", images=X[:5])
    with pytest.raises(ValueError, match="must hold arrays named X and y"):
        load_source(tmp_path / "bad.npz")
    with pytest.raises(FileNotFoundError, match="not found"):
        load_source(tmp_path / "nothing")


def test_take_keeps_classes_and_spec():
    from ganaug.data import as_image_data

    X = np.arange(6 * 64, dtype=np.uint8).reshape(6, 8, 8)
    data = as_image_data(X, np.array(["a", "b", "a", "c", "b", "a"]))
    part = data.take(np.array([0, 1, 2]))
    assert part.classes.tolist() == ["a", "b", "c"] and part.spec == data.spec
    assert part.class_counts.tolist() == [2, 1, 0]
    assert torch.equal(part.images, data.images[:3]) and torch.equal(part.labels, data.labels[:3])
