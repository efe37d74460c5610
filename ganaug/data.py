"""Input loading: every kind of labelled image input becomes one in-memory form.

The form is :class:`ImageData`: float32 images in [-1, 1], NCHW, integer class indices,
the sorted class values, and an :class:`ArraySpec` that maps generated images back to
the caller's container, layout, dtype and value range (uint8 in, uint8 out).

Inputs understood by :func:`as_image_data`:

* numpy arrays or torch tensors shaped (N, H, W), (N, H, W, C), (N, C, H, W), or
  flattened (N, D) together with ``image_shape``;
* a ``torch.utils.data.Dataset`` yielding ``(image, label)`` (PIL, tensor or array);
* a folder in torchvision's ImageFolder layout (``root/<class>/<image>.png``);
* MNIST-format IDX files (a folder holding one ``*images-idx3*`` / ``*labels-idx1*`` pair);
* ``"digits"``: scikit-learn's bundled 8x8 digits.
"""

from __future__ import annotations

import gzip
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

MIN_IMAGE_SIZE = 8
IMG_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm")

__all__ = [
    "ArraySpec",
    "ImageData",
    "as_image_data",
    "load_digits",
    "load_idx",
    "load_image_folder",
    "item_spec",
    "read_idx",
]


@dataclass(frozen=True)
class ArraySpec:
    """How the caller's images were laid out, so generated images can be returned alike.

    ``shape`` is the shape of one image as the caller gave it (e.g. ``(8, 8)``,
    ``(28, 28, 1)``, ``(3, 32, 32)`` or ``(64,)`` for flattened rows).
    """

    container: str  # "numpy" or "torch"
    layout: str  # "NHW", "NHWC", "NCHW" or "flat"
    dtype: str  # numpy dtype name, e.g. "uint8", "float32"
    value_range: tuple[float, float]
    shape: tuple[int, ...]
    flat_layout: str | None = None  # layout of the unflattened rows when layout == "flat"

    def to_dict(self) -> dict[str, Any]:
        return {
            "container": self.container,
            "layout": self.layout,
            "dtype": self.dtype,
            "value_range": list(self.value_range),
            "shape": list(self.shape),
            "flat_layout": self.flat_layout,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ArraySpec":
        return cls(
            container=str(d["container"]),
            layout=str(d["layout"]),
            dtype=str(d["dtype"]),
            value_range=(float(d["value_range"][0]), float(d["value_range"][1])),
            shape=tuple(int(s) for s in d["shape"]),
            flat_layout=d.get("flat_layout"),
        )

    def restore(self, images: torch.Tensor) -> np.ndarray | torch.Tensor:
        """Map model output (N, C, H, W) in [-1, 1] back to the caller's form."""
        lo, hi = self.value_range
        x = (images.detach().float().cpu().clamp(-1, 1) + 1) / 2 * (hi - lo) + lo
        layout = self.flat_layout if self.layout == "flat" else self.layout
        if layout == "NHW":
            x = x[:, 0]
        elif layout == "NHWC":
            x = x.permute(0, 2, 3, 1)
        if self.layout == "flat":
            x = x.reshape(x.shape[0], -1)
        arr = x.contiguous().numpy()
        dtype = np.dtype(self.dtype)
        if np.issubdtype(dtype, np.integer) or dtype == np.bool_:
            arr = np.clip(np.rint(arr), lo, hi)
        arr = arr.astype(dtype)
        if self.container == "torch":
            return torch.from_numpy(arr)
        return arr


@dataclass
class ImageData:
    """Labelled images in the one form the model and trainer use.

    Attributes
    ----------
    images : torch.Tensor
        float32, (N, C, H, W), values in [-1, 1].
    labels : torch.Tensor
        int64 class indices into ``classes``, shape (N,).
    classes : np.ndarray
        The sorted class values (any hashable type numpy can hold).
    spec : ArraySpec
        How to return generated images in the caller's form.
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: np.ndarray
    spec: ArraySpec
    class_counts: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.class_counts = np.bincount(self.labels.numpy(), minlength=len(self.classes))

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def __len__(self) -> int:
        return self.images.shape[0]


# --------------------------------------------------------------------------- arrays


def _detect_layout(shape: tuple[int, ...], container: str) -> str:
    if len(shape) == 3:
        return "NHW"
    _, d1, _, d3 = shape
    if d1 < MIN_IMAGE_SIZE <= d3:
        return "NCHW"
    if d3 < MIN_IMAGE_SIZE <= d1:
        return "NHWC"
    # Both could be channels (or neither): follow each ecosystem's own convention.
    return "NCHW" if container == "torch" else "NHWC"


def _infer_value_range(x: np.ndarray, value_range: tuple[float, float] | None) -> tuple[float, float]:
    if value_range is not None:
        lo, hi = float(value_range[0]), float(value_range[1])
        if not hi > lo:
            raise ValueError(f"value_range must be (low, high) with high > low, got {value_range!r}.")
        return lo, hi
    if x.dtype == np.uint8 or np.issubdtype(x.dtype, np.integer):
        return (0.0, 255.0)
    return (0.0, 1.0)


def _labels_to_indices(y: Any, n: int) -> tuple[torch.Tensor, np.ndarray]:
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"y must be one label per image, shape (N,); got shape {y.shape}.")
    if y.shape[0] != n:
        raise ValueError(
            f"X and y have different lengths: {n} images but {y.shape[0]} labels. "
            "Pass one label per image."
        )
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise ValueError("y contains NaN or inf; labels must be finite class values.")
    try:
        classes, indices = np.unique(y, return_inverse=True)
    except TypeError as exc:
        raise TypeError(f"labels must be mutually comparable (all ints or all strings): {exc}") from exc
    return torch.from_numpy(indices.reshape(-1).astype(np.int64)), classes


def check_class_counts(classes: np.ndarray, counts: np.ndarray) -> None:
    """Refuse one class; warn about classes with a single image (documented behaviour)."""
    if len(classes) < 2:
        raise ValueError(
            f"Need at least 2 classes to learn a class-conditional model, got only {classes.tolist()!r}. "
            "Check the labels (y) or the class folders."
        )
    singles = [c for c, k in zip(classes.tolist(), counts.tolist()) if k == 1]
    if singles:
        warnings.warn(
            f"Classes {singles!r} have a single image: the generator can only copy it. "
            "Add more images of these classes or drop them.",
            UserWarning,
            stacklevel=3,
        )


def _from_array(
    X: np.ndarray | torch.Tensor,
    y: Any,
    image_shape: Sequence[int] | None,
    value_range: tuple[float, float] | None,
) -> ImageData:
    container = "torch" if isinstance(X, torch.Tensor) else "numpy"
    arr = X.detach().cpu().numpy() if isinstance(X, torch.Tensor) else np.asarray(X)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise TypeError(f"X must be a numeric array of images, got dtype {arr.dtype}.")
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    original_shape = tuple(arr.shape[1:])
    layout: str
    flat_layout = None
    if arr.ndim == 2:
        if image_shape is None:
            side = int(round(np.sqrt(arr.shape[1])))
            if side * side != arr.shape[1]:
                raise ValueError(
                    f"X is 2-D (flattened) with {arr.shape[1]} features, which is not a square grey "
                    "image; pass image_shape=(H, W) or (H, W, C) to say how each row reshapes."
                )
            image_shape = (side, side)
        image_shape = tuple(int(s) for s in image_shape)
        if int(np.prod(image_shape)) != arr.shape[1]:
            raise ValueError(
                f"image_shape {image_shape} holds {int(np.prod(image_shape))} values but each row of X "
                f"has {arr.shape[1]}; pass the shape the rows were flattened from."
            )
        if len(image_shape) not in (2, 3):
            raise ValueError(f"image_shape must be (H, W), (H, W, C) or (C, H, W), got {image_shape}.")
        arr = arr.reshape((arr.shape[0],) + image_shape)
        layout = "flat"
        flat_layout = _detect_layout(arr.shape, container)
    elif arr.ndim in (3, 4):
        if image_shape is not None and tuple(image_shape) != original_shape:
            raise ValueError(f"image_shape {tuple(image_shape)} does not match the images' shape {original_shape}.")
        layout = _detect_layout(arr.shape, container)
    else:
        raise ValueError(
            f"X must have 2 (flattened), 3 (N, H, W) or 4 (N, H, W, C / N, C, H, W) dimensions, "
            f"got {arr.ndim} with shape {arr.shape}."
        )
    if arr.shape[0] == 0:
        raise ValueError("X holds no images.")
    unflat = flat_layout or layout
    if unflat == "NHW":
        chw = arr[:, None]
    elif unflat == "NHWC":
        chw = arr.transpose(0, 3, 1, 2)
    else:
        chw = arr
    h, w = chw.shape[2], chw.shape[3]
    if h < MIN_IMAGE_SIZE or w < MIN_IMAGE_SIZE:
        raise ValueError(
            f"Images are {h}x{w}; ganaug needs at least {MIN_IMAGE_SIZE}x{MIN_IMAGE_SIZE}. "
            "Resize or pad the images first (for a 4-D array also check the channel axis)."
        )
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError("X contains NaN or inf values; clean or impute them before fitting.")
    lo, hi = _infer_value_range(arr, value_range)
    xmin, xmax = float(arr.min()), float(arr.max())
    if xmin < lo or xmax > hi:
        hint = (
            "uint8/integer images must lie in 0..255"
            if np.issubdtype(arr.dtype, np.integer) and value_range is None
            else "float images must lie in [0, 1]; scale them or pass value_range=(low, high)"
        )
        raise ValueError(f"X values span [{xmin:g}, {xmax:g}], outside the expected range [{lo:g}, {hi:g}]: {hint}.")
    images = torch.from_numpy(np.ascontiguousarray(chw, dtype=np.float32))
    images = (images - lo) / (hi - lo) * 2 - 1
    if y is None:
        raise ValueError("y is required with array input: pass one class label per image.")
    labels, classes = _labels_to_indices(y, arr.shape[0])
    spec = ArraySpec(
        container=container,
        layout=layout,
        dtype=str(arr.dtype),
        value_range=(lo, hi),
        shape=original_shape,
        flat_layout=flat_layout,
    )
    return ImageData(images=images, labels=labels, classes=classes, spec=spec)


# --------------------------------------------------------------------------- datasets


def _item_to_array(image: Any, index: int) -> tuple[np.ndarray, str]:
    """One dataset image -> (array, container); arrays keep their own layout."""
    if isinstance(image, Image.Image):
        if image.mode not in ("L", "RGB"):
            image = image.convert("RGB" if image.mode in ("RGBA", "P", "CMYK", "YCbCr") else "L")
        return np.asarray(image), "numpy"
    if isinstance(image, torch.Tensor):
        return image.detach().cpu().numpy(), "torch"
    if isinstance(image, np.ndarray):
        return image, "numpy"
    raise TypeError(
        f"Dataset item {index} holds an image of type {type(image).__name__}; expected a PIL image, "
        "a tensor or a numpy array. Set the dataset's transform to produce one."
    )


def _dataset_targets(dataset: Any) -> Any:
    return getattr(dataset, "targets", None)


def _from_dataset(dataset: torch.utils.data.Dataset, value_range: tuple[float, float] | None) -> ImageData:
    try:
        n = len(dataset)  # type: ignore[arg-type]
    except TypeError as exc:
        raise TypeError("The dataset must have a length (a map-style torch Dataset).") from exc
    if n == 0:
        raise ValueError("The dataset is empty.")
    images, labels = [], []
    container = None
    for i in range(n):
        item = dataset[i]
        if not isinstance(item, (tuple, list)) or len(item) < 2:
            raise ValueError(
                f"Dataset item {i} is not an (image, label) pair; ganaug needs labelled images. "
                "Wrap the dataset so that it returns (image, label)."
            )
        arr, kind = _item_to_array(item[0], i)
        container = container or kind
        if images and arr.shape != images[0].shape:
            raise ValueError(
                f"Dataset item {i} has shape {arr.shape} but item 0 has {images[0].shape}; all images must "
                "share one size. Add a Resize transform to the dataset."
            )
        images.append(arr)
        label = item[1]
        labels.append(label.item() if isinstance(label, torch.Tensor) else label)
    X = np.stack(images)
    if container == "torch":
        # Tensors from torchvision are (C, H, W) already; torch's convention is channels-first.
        return _from_array(torch.from_numpy(X), np.asarray(labels), None, value_range)
    return _from_array(X, np.asarray(labels), None, value_range)


def item_spec(image: Any) -> tuple[ArraySpec, bool]:
    """The form of one dataset image, as (spec of a batch of one, is_pil).

    Lets a wrapper hand out generated images exactly like a dataset's own items:
    ``spec.restore(batch)[i]`` gives an array/tensor like ``image`` (PIL images as uint8
    arrays, to be wrapped with ``Image.fromarray`` when ``is_pil``).
    """
    arr, container = _item_to_array(image, 0)
    batch = torch.from_numpy(arr[None]) if container == "torch" else arr[None]
    data = _from_array(batch, np.zeros(1, dtype=np.int64), None, None)
    return data.spec, isinstance(image, Image.Image)


# --------------------------------------------------------------------------- files


def _open_image(path: Path) -> Image.Image:
    try:
        with Image.open(path) as img:
            img.load()
            return img.copy()
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError(f"Cannot read image file {path}: {exc}. Remove or replace the file.") from exc


def load_image_folder(
    root: str | os.PathLike,
    image_size: int | tuple[int, int] | None = None,
    channels: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Read a folder of class sub-folders (torchvision's ImageFolder layout).

    Parameters
    ----------
    root : path
        ``root/<class name>/<image file>``; PNG, JPEG and the other formats PIL reads.
    image_size : int or (H, W), optional
        Resize every image to this size. Without it, all images must share one size.
    channels : {1, 3}, optional
        Force grey or RGB. By default grey if every image is grey, else RGB.

    Returns
    -------
    X : np.ndarray
        uint8, (N, H, W) for grey or (N, H, W, 3) for RGB.
    y : np.ndarray
        The class folder name of each image.

    Example
    -------
    >>> X, y = load_image_folder("data/train", image_size=32)  # doctest: +SKIP
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"Image folder {root} does not exist or is not a directory.")
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not class_dirs:
        raise FileNotFoundError(
            f"Couldn't find any class folder in {root}. Put the images of each class in a sub-folder "
            "named after the class: root/<class>/<image>.png."
        )
    files: list[tuple[Path, str]] = []
    for d in class_dirs:
        for dirpath, _, names in sorted(os.walk(d, followlinks=True)):
            for name in sorted(names):
                if name.lower().endswith(IMG_EXTENSIONS):
                    files.append((Path(dirpath) / name, d.name))
    if not files:
        raise FileNotFoundError(
            f"Found no image files in the class folders of {root}. Supported extensions: "
            f"{', '.join(IMG_EXTENSIONS)}."
        )
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels!r}.")
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    pil = [_open_image(p) for p, _ in files]
    if channels is None:
        channels = 1 if all(im.mode in ("1", "L", "LA", "I", "I;16", "F") for im in pil) else 3
    mode = "L" if channels == 1 else "RGB"
    arrays = []
    first_size = None
    for (path, _), im in zip(files, pil):
        im = im.convert(mode)
        if image_size is not None:
            im = im.resize((image_size[1], image_size[0]), Image.BILINEAR)
        elif first_size is None:
            first_size = im.size
        elif im.size != first_size:
            raise ValueError(
                f"Images have mixed sizes: {path} is {im.size[0]}x{im.size[1]} but {files[0][0]} is "
                f"{first_size[0]}x{first_size[1]} (width x height). Resize them, or pass image_size "
                "(--image-size on the command line) to resize on load."
            )
        arrays.append(np.asarray(im, dtype=np.uint8))
    return np.stack(arrays), np.asarray([label for _, label in files])


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one MNIST-format IDX file (optionally gzipped) into a numpy array."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ValueError(f"Cannot read IDX file {path}: {exc}.") from exc
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in dtypes:
        raise ValueError(f"{path} is not an IDX file (bad magic number).")
    ndim = data[3]
    header = 4 + 4 * ndim
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(dtypes[data[2]])
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(data) - header != expected:
        raise ValueError(
            f"IDX file {path} is truncated or corrupt: header says {dims} ({expected} bytes of data), "
            f"found {len(data) - header}."
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def load_idx(
    images: str | os.PathLike, labels: str | os.PathLike | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Load MNIST-format IDX images and labels.

    ``images`` is either the images file (then ``labels`` names the labels file) or a folder,
    searched recursively, that holds exactly one ``*images-idx3*`` / ``*labels-idx1*`` pair
    (e.g. ``../shared/data/mnist``).

    Returns ``X`` uint8 (N, H, W) and ``y`` int64 (N,).
    """
    images = Path(images)
    if images.is_dir():
        folder = images
        img_files = sorted(p for p in folder.rglob("*") if "idx3" in p.name and p.is_file())
        lbl_files = sorted(p for p in folder.rglob("*") if "idx1" in p.name and p.is_file())
        if len(img_files) != 1 or len(lbl_files) != 1:
            raise ValueError(
                f"Expected one *-images-idx3-ubyte[.gz] and one *-labels-idx1-ubyte[.gz] file under {folder}, "
                f"found {len(img_files)} and {len(lbl_files)}; pass the two files explicitly."
            )
        images, labels = img_files[0], lbl_files[0]
    elif labels is None:
        raise ValueError("Pass the labels file too: load_idx(images_file, labels_file).")
    X = read_idx(images)
    y = read_idx(labels).astype(np.int64)
    if X.ndim != 3:
        raise ValueError(f"{images} holds an array of shape {X.shape}; an IDX image file is (N, H, W).")
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(f"{labels} holds {y.shape} labels for {X.shape[0]} images in {images}.")
    return X, y


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits as float32 images in [0, 1], shape (1797, 8, 8)."""
    from sklearn.datasets import load_digits as _sk_load_digits

    bunch = _sk_load_digits()
    return (bunch.images / 16.0).astype(np.float32), bunch.target.astype(np.int64)


def _looks_like_idx_folder(path: Path) -> bool:
    return any("idx3" in p.name for p in path.rglob("*"))


def load_source(source: str | os.PathLike, **kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
    """Load ``"digits"``, an IDX folder, an ``.npz`` with ``X`` and ``y`` or an image folder."""
    if isinstance(source, str) and source == "digits":
        return load_digits()
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(
            f"Data {source!s} not found: give an image folder, an .npz file with X and y, "
            "an MNIST IDX folder, or 'digits'."
        )
    if path.is_file() and path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as f:
                if "X" not in f or "y" not in f:
                    raise ValueError(f"{path} must hold arrays named X and y, found {sorted(f.files)}.")
                return f["X"], f["y"]
        except (OSError, EOFError) as exc:
            raise ValueError(f"Cannot read {path}: {exc}.") from exc
    if path.is_dir() and _looks_like_idx_folder(path):
        return load_idx(path)
    if path.is_dir():
        return load_image_folder(path, **kwargs)
    raise ValueError(f"Don't know how to read {path}: expected a folder, an .npz file or 'digits'.")


def as_image_data(
    X: Any,
    y: Any = None,
    *,
    image_shape: Sequence[int] | None = None,
    value_range: tuple[float, float] | None = None,
) -> ImageData:
    """Turn any supported input into :class:`ImageData` (see the module docstring).

    Parameters
    ----------
    X : array, tensor, Dataset, path or ``"digits"``
        The images (and, for a Dataset, folder, IDX or ``"digits"``, the labels too).
    y : array-like, optional
        One label per image, for array input.
    image_shape : tuple, optional
        For flattened (N, D) input: the shape each row reshapes to, e.g. ``(8, 8)``.
    value_range : (low, high), optional
        Range of the input values. Default: 0..255 for integer images, [0, 1] for floats.
    """
    if isinstance(X, (str, os.PathLike)):
        if y is not None:
            raise ValueError("y must not be given with a path or 'digits': labels come from the data itself.")
        X, y = load_source(X)
    elif isinstance(X, torch.utils.data.Dataset) and not isinstance(X, torch.Tensor):
        if y is not None:
            raise ValueError("y must not be given with a Dataset: its items are (image, label) pairs.")
        data = _from_dataset(X, value_range)
        check_class_counts(data.classes, data.class_counts)
        return data
    data = _from_array(X, y, image_shape, value_range)
    check_class_counts(data.classes, data.class_counts)
    return data
