"""Input loading: every kind of labelled image input becomes one in-memory form.

The form is :class:`ImageData`: float32 images in [-1, 1], NCHW, integer class indices,
the sorted class values, and an :class:`ArraySpec` that maps generated images back to
the caller's container, layout, dtype and value range (uint8 in, uint8 out).

Inputs understood by :func:`as_image_data`:

* numpy arrays or torch tensors shaped (N, H, W), (N, H, W, C), (N, C, H, W), or
  flattened (N, D) together with ``image_shape``;
* a ``torch.utils.data.Dataset`` yielding ``(image, label)`` (PIL, tensor or array);
* a folder in torchvision's ImageFolder layout (``root/<class>/<image>.png``);
* MNIST-format IDX files (a folder holding one images / labels pair, told apart from an
  image folder by the files' IDX magic numbers, not by their names);
* an ``.npz`` archive holding arrays ``X`` and ``y``;
* ``"digits"``: scikit-learn's bundled 8x8 digits.

Files are untrusted input: every reader checks what a header declares (image size, IDX
dimensions, ``.npy`` shape and dtype) against the file and against :data:`MAX_ARRAY_BYTES`
before it allocates or decodes, and turns a corrupt file into a ``ValueError`` that names it.
"""

from __future__ import annotations

import gzip
import math
import numbers
import os
import warnings
import zipfile
import zlib
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Sequence

import numpy as np
import numpy.lib.format as npformat
import torch
from PIL import Image

from ._io import readinto_all

MIN_IMAGE_SIZE = 8
IMG_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm")

#: The most bytes one array read from a file may declare (an IDX payload, one ``.npz``
#: member). Headers are checked against it before anything is allocated, so a corrupt or
#: hostile header cannot exhaust memory. 4 GiB holds 5 million 28x28 images; for a bigger
#: genuine file raise it (``ganaug.data.MAX_ARRAY_BYTES = 16 * 2**30``).
MAX_ARRAY_BYTES = 4 * 2**30

# Pillow modes of greyscale images deeper than 8 bits: 16-bit PNG/TIFF ("I;16*"; older
# Pillow opened 16-bit PNGs as "I"), 32-bit integer ("I") and 32-bit float ("F") TIFF.
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
_HIGH_DEPTH_MODES = _SIXTEEN_BIT_MODES + ("I", "F")
_GREY_MODES = ("1", "L", "LA") + _HIGH_DEPTH_MODES

__all__ = [
    "MAX_ARRAY_BYTES",
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


def _infer_value_range(
    dtype: np.dtype, xmin: float, xmax: float, value_range: tuple[float, float] | None
) -> tuple[float, float]:
    """The range the values of X are read in: ``value_range`` when given, else by dtype.

    bool is 0..1 (False -> low, True -> high), uint8 0..255, uint16 0..65535 (16-bit
    images), floats [0, 1]. Other integer dtypes (int64 from ``np.array([...])``, int16, ...)
    say nothing about their range: they are read as 0..255 when their values lie in 0..255
    (and the type can hold 255), the common case of 8-bit pixels in a wider type, and
    otherwise need ``value_range``. uint16 values that stay under 4096 are read as 16-bit
    with a warning: 8- or 12-bit data in uint16 needs ``value_range``.
    """
    if value_range is not None:
        lo, hi = float(value_range[0]), float(value_range[1])
        if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
            raise ValueError(f"value_range must be finite (low, high) with high > low, got {value_range!r}.")
        return lo, hi
    if dtype == np.bool_:
        return (0.0, 1.0)
    if dtype == np.uint16:
        if xmax < 4096:
            warnings.warn(
                f"X is uint16 but its values only reach {xmax:g}: they are read as 16-bit (0..65535), so the "
                "images look dark to the model. Pass value_range=(0, 255) for 8-bit or (0, 4095) for 12-bit "
                "data (--value-range on the command line).",
                UserWarning,
                stacklevel=4,
            )
        return (0.0, 65535.0)
    if dtype == np.uint8:
        return (0.0, 255.0)
    if np.issubdtype(dtype, np.integer):
        if 0 <= xmin and xmax <= 255 and np.iinfo(dtype).max >= 255:  # int8 cannot hold 255
            return (0.0, 255.0)
        raise ValueError(
            f"X is {dtype} with values spanning [{xmin:g}, {xmax:g}]: uint8 is read as 0..255 and uint16 as "
            "0..65535, other integer types as 0..255 only when their values lie in 0..255. Pass "
            "value_range=(low, high) to say what range the values use, or cast X to uint8 or uint16."
        )
    return (0.0, 1.0)


def _check_label_types(types: set[type]) -> None:
    """Refuse labels that mix numbers and strings, which numpy would turn all into strings."""
    numeric = sorted(t.__name__ for t in types if issubclass(t, numbers.Number))
    text = sorted(t.__name__ for t in types if issubclass(t, (str, bytes)))
    if numeric and text:
        raise TypeError(
            f"y mixes {numeric[0]} and {text[0]} labels; numpy would turn every label into a string "
            "(1 into '1'). Give all labels one type: all integers or all strings."
        )


def _labels_to_indices(y: Any, n: int) -> tuple[torch.Tensor, np.ndarray]:
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    if isinstance(y, (list, tuple)):
        _check_label_types(set(map(type, y)))  # before np.asarray hides the mix in a '<U' array
    y = np.asarray(y)
    if y.dtype == object:
        _check_label_types(set(map(type, y.ravel())))
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
    if arr.dtype.kind == "c":
        raise TypeError(
            f"X is complex ({arr.dtype}); images must be real-valued. Pass the part you mean to model, "
            "e.g. np.abs(X) (magnitude) or X.real."
        )
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
    xmin, xmax = float(arr.min()), float(arr.max())
    lo, hi = _infer_value_range(arr.dtype, xmin, xmax, value_range)
    if xmin < lo or xmax > hi:
        # Integer dtypes without value_range are in range by construction of _infer_value_range.
        hint = (
            "pass the value_range the values really span"
            if value_range is not None
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
        if image.mode in _HIGH_DEPTH_MODES:
            return _high_depth_pixels(image, f"Dataset item {index}", None), "numpy"
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
        return _from_array(torch.from_numpy(X), labels, None, value_range)
    return _from_array(X, labels, None, value_range)


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


# --------------------------------------------------------------------------- image folders


def _bomb_error(path: Path, detail: str) -> ValueError:
    return ValueError(
        f"Image file {path} is too large to decode safely ({detail}). Resize it first (ganaug trains on "
        "small images: e.g. PIL's Image.thumbnail, or ImageMagick's `mogrify -resize`), or, if you trust "
        "the file, raise PIL.Image.MAX_IMAGE_PIXELS."
    )


def _open_image(path: Path) -> Image.Image:
    """``path`` opened lazily (its header read, no pixel decoded), refusing images too large to decode."""
    try:
        with warnings.catch_warnings():
            # Pillow warns between 1x and 2x MAX_IMAGE_PIXELS and raises above: the size
            # check below refuses the warned band too, and names the image's size.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path)
    except Image.DecompressionBombError as exc:
        raise _bomb_error(path, str(exc)) from exc
    except MemoryError:
        raise
    except Exception as exc:
        # Pillow's format plugins raise many types on corrupt bytes (OSError, SyntaxError,
        # ValueError, struct.error, EOFError, ...): each means this file cannot be read.
        raise ValueError(f"Cannot read image file {path}: {exc}. Remove or replace the file.") from exc
    width, height = img.size
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and width * height > limit:
        img.close()
        raise _bomb_error(path, f"{width}x{height} = {width * height} pixels, above PIL's limit of {limit}")
    return img


def _check_folder_link(link: Path, target: Path, real_root: Path, tree: Path) -> None:
    """Refuse a folder link that would loop or file another class's images under this one."""
    # A link back to the class folder itself is a loop inside the class: read once (see below).
    if real_root.is_relative_to(target) or (tree.is_relative_to(target) and target != tree):
        raise ValueError(
            f"Symlink {link} points to {target}, which holds the image folder (or this class folder): "
            "following it would loop and file every class under this one. Remove the link."
        )
    if target.is_relative_to(real_root) and not target.is_relative_to(tree):
        raise ValueError(
            f"Symlink {link} points to {target}, inside the image folder {real_root} but outside the class "
            f"folder {tree}: its images would be filed under two classes. Remove the link, or link the images "
            "one by one if they really belong to both."
        )


def _class_files(root: Path, class_dirs: list[Path]) -> list[tuple[Path, str]]:
    """(image file, class name) for every image below each class folder, sorted as ``os.walk`` would.

    Links to image files are followed wherever they point: splitting a data set by linking
    images from one pool is common, and a file link cannot loop. Links to folders (and class
    folders that are links, e.g. to another disk) are followed unless they lead to the
    image folder, the class folder or one of their parents (``ln -s .. root/a/loop`` once
    filed every class under ``a``, again and again), or into another class's folder; those
    are refused with an error naming the link, as tar refuses members that escape their
    folder, rather than skipped: a class balance that changes without a word is worse than
    an error the user can act on. Folders are tracked by (st_dev, st_ino), so a folder
    reached twice within a class is read once, with a warning, and one reached from two
    classes is refused.
    """
    real_root = root.resolve()
    owner: dict[tuple[int, int], str] = {}  # real folder -> the class that read it
    files: list[tuple[Path, str]] = []
    for class_dir in class_dirs:
        tree = class_dir.resolve()
        if class_dir.is_symlink():
            _check_folder_link(class_dir, tree, real_root, real_root / class_dir.name)
        found: list[Path] = []
        stack = [class_dir]
        while stack:
            folder = stack.pop()
            st = folder.stat()
            key = (st.st_dev, st.st_ino)
            if key in owner:
                if owner[key] != class_dir.name:
                    raise ValueError(
                        f"{folder} is the same folder as one read for class {owner[key]!r}, so its images "
                        "would belong to two classes. Remove the symlink that leads to it."
                    )
                warnings.warn(
                    f"{folder} leads back to a folder already read (a symlink loop, or a second link to it); "
                    "its images are read once.",
                    UserWarning,
                    stacklevel=3,
                )
                continue
            owner[key] = class_dir.name
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
            subfolders = []
            for entry in entries:
                path = Path(entry.path)
                is_image = entry.name.lower().endswith(IMG_EXTENSIONS)
                if entry.is_symlink():
                    target = path.resolve()
                    if not target.exists():
                        if is_image:
                            raise ValueError(
                                f"{path} is a broken symlink (to {target}); remove it or restore its target."
                            )
                        continue
                    if target.is_dir():
                        _check_folder_link(path, target, real_root, tree)
                if entry.is_dir():
                    subfolders.append(path)
                elif is_image and entry.is_file():
                    found.append(path)
            stack.extend(reversed(subfolders))  # visit in name order, as os.walk does
        files += [(p, class_dir.name) for p in sorted(found, key=lambda p: (str(p.parent), p.name))]
    return files


def _folder_dtype(files: list[tuple[Path, str]], modes: list[str]) -> np.dtype:
    """uint8 for 8-bit images, uint16 when any is 16-bit, float32 for float ("F") images."""
    first: dict[str, Path] = {}
    for (path, _), mode in zip(files, modes):
        depth = "float" if mode == "F" else "16-bit" if mode in _HIGH_DEPTH_MODES else "8-bit"
        first.setdefault(depth, path)
    if "float" in first and len(first) > 1:
        other = next(d for d in first if d != "float")
        raise ValueError(
            f"The image folder mixes float images (mode F), e.g. {first['float']}, with {other} ones, e.g. "
            f"{first[other]}: they share no value range. Convert them to one format first."
        )
    return np.dtype(np.float32 if "float" in first else np.uint16 if "16-bit" in first else np.uint8)


def _high_depth_pixels(img: Image.Image, where: str, size: tuple[int, int] | None) -> np.ndarray:
    """A greyscale image deeper than 8 bits, values as stored: uint16 (integer modes) or float32 ("F")."""
    if img.mode != "F":
        img = img.convert("I")  # "I;16*" resizes reliably across Pillow versions only as "I"
        lo, hi = img.getextrema()
        if lo < 0 or hi > 65535:
            raise ValueError(
                f"{where} holds 32-bit integer pixels spanning [{lo}, {hi}], outside 0..65535: ganaug reads "
                "integer images of up to 16 bits. Rescale it to 0..65535 and save it as a 16-bit PNG or TIFF, "
                "or load the pixels yourself and pass them with value_range."
            )
    if size is not None:
        img = img.resize((size[1], size[0]), Image.BILINEAR)
    arr = np.asarray(img)
    return arr if img.mode == "F" else arr.astype(np.uint16)


def _read_pixels(path: Path, dtype: np.dtype, channels: int, size: tuple[int, int] | None) -> np.ndarray:
    """One image file as (H, W) or (H, W, 3) of ``dtype`` (see :func:`load_image_folder`)."""
    with _open_image(path) as img:
        try:
            img.load()
        except MemoryError:
            raise
        except Exception as exc:  # any decoder failure: see _open_image
            raise ValueError(f"Cannot read image file {path}: {exc}. Remove or replace the file.") from exc
        if img.mode in _HIGH_DEPTH_MODES:
            arr = _high_depth_pixels(img, f"Image file {path}", size)
            return np.repeat(arr[..., None], 3, axis=-1) if channels == 3 else arr
        img = img.convert("L" if channels == 1 else "RGB")
        if size is not None:
            img = img.resize((size[1], size[0]), Image.BILINEAR)
        arr = np.asarray(img, dtype=np.uint8)
    # An 8-bit image among 16-bit ones: 257 maps 0..255 exactly onto 0..65535.
    return arr.astype(np.uint16) * 257 if dtype == np.uint16 else arr


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
        (N, H, W) for grey or (N, H, W, 3) for RGB, values as stored: uint8 for 8-bit
        images; uint16 when any image is 16-bit (8-bit images among them are scaled by 257,
        so that white stays white), which :func:`as_image_data` reads as 0..65535; float32
        for a folder of float (mode "F") TIFFs. 32-bit integer images are read as uint16
        when their values fit in 0..65535 and refused otherwise, never clipped.
    y : np.ndarray
        The class folder name of each image.

    Symlinks are followed only when they resolve inside their own class folder; one that
    leaves it (to another class, to a parent folder, which would loop, or out of ``root``)
    is refused with an error that names it. Images over ``PIL.Image.MAX_IMAGE_PIXELS`` are
    refused before they are decoded.

    Example
    -------
    >>> X, y = load_image_folder("data/train", image_size=32)  # doctest: +SKIP
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"Image folder {root} does not exist or is not a directory.")
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels!r}.")
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not class_dirs:
        raise FileNotFoundError(
            f"Couldn't find any class folder in {root}. Put the images of each class in a sub-folder "
            "named after the class: root/<class>/<image>.png."
        )
    files = _class_files(root, class_dirs)
    if not files:
        raise FileNotFoundError(
            f"Found no image files in the class folders of {root}. Supported extensions: "
            f"{', '.join(IMG_EXTENSIONS)}."
        )
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    # First pass, headers only: modes and sizes fix the output, and mixed sizes are refused
    # before a single image is decoded. The second pass decodes one image at a time into
    # the preallocated output, so peak memory is the output and one image.
    modes: list[str] = []
    sizes: list[tuple[int, int]] = []  # (width, height), as PIL gives them
    for path, _ in files:
        with _open_image(path) as img:
            modes.append(img.mode)
            sizes.append(img.size)
        if image_size is None and sizes[-1] != sizes[0]:
            raise ValueError(
                f"Images have mixed sizes: {path} is {sizes[-1][0]}x{sizes[-1][1]} but {files[0][0]} is "
                f"{sizes[0][0]}x{sizes[0][1]} (width x height). Resize them, or pass image_size "
                "(--image-size on the command line) to resize on load."
            )
    dtype = _folder_dtype(files, modes)
    if channels is None:
        channels = 1 if all(m in _GREY_MODES for m in modes) else 3
    height, width = image_size if image_size is not None else (sizes[0][1], sizes[0][0])
    X = np.empty((len(files), height, width) + ((3,) if channels == 3 else ()), dtype=dtype)
    for i, (path, _) in enumerate(files):
        X[i] = _read_pixels(path, dtype, channels, image_size)
    return X, np.asarray([label for _, label in files])


# --------------------------------------------------------------------------- IDX files


_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_IDX_MAX_NDIM = 4  # images are (N, H, W) or (N, H, W, C), labels (N,)
_IDX_ERRORS = (OSError, EOFError, zlib.error)  # what gzip and the OS raise on a damaged file


@dataclass(frozen=True)
class _IdxHeader:
    path: Path
    gzipped: bool
    dtype: np.dtype
    dims: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        return math.prod(self.dims) * self.dtype.itemsize

    @property
    def offset(self) -> int:
        return 4 + 4 * len(self.dims)


def _open_idx(path: Path) -> tuple[IO[bytes], bool]:
    """The file, decompressed when it is gzip (told by its magic bytes, not its name)."""
    with open(path, "rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    return (gzip.open(path, "rb") if gzipped else open(path, "rb")), gzipped


def _is_idx_magic(head: bytes) -> bool:
    return len(head) == 4 and head[0] == 0 and head[1] == 0 and head[2] in _IDX_DTYPES and head[3] > 0


def _idx_ndim(path: Path) -> int | None:
    """The number of dimensions the IDX file ``path`` declares, or None when it is not one."""
    try:
        f, _ = _open_idx(path)
        with f:
            head = f.read(4)
    except _IDX_ERRORS:
        return None
    return head[3] if _is_idx_magic(head) else None


def _idx_error(path: Path, exc: BaseException) -> ValueError:
    return ValueError(f"Cannot read IDX file {path}: {exc}. The file is damaged; download it again.")


def _read_idx_header(path: Path, stack: ExitStack) -> tuple[_IdxHeader, IO[bytes]]:
    """Open ``path`` (closed with ``stack``) and check its header against the file and MAX_ARRAY_BYTES."""
    try:
        f, gzipped = _open_idx(path)
        stack.enter_context(f)
        head = f.read(4)
        if not _is_idx_magic(head):
            raise ValueError(
                f"{path} is not an IDX file (bad magic number 0x{head.hex()}): an IDX file starts with two zero "
                "bytes, a type code (0x08 for uint8) and its number of dimensions."
            )
        ndim = head[3]
        if ndim > _IDX_MAX_NDIM:
            raise ValueError(
                f"IDX file {path} declares {ndim} dimensions; ganaug reads at most {_IDX_MAX_NDIM} (images are "
                "3-D, labels 1-D). The file is corrupt or not an image or label file."
            )
        raw = f.read(4 * ndim)
        if len(raw) < 4 * ndim:
            raise ValueError(f"IDX file {path} is truncated or corrupt: its header stops after {4 + len(raw)} bytes.")
        dims = tuple(int.from_bytes(raw[4 * i : 4 * i + 4], "big") for i in range(ndim))
        header = _IdxHeader(path, gzipped, np.dtype(_IDX_DTYPES[head[2]]), dims)
        if header.nbytes > MAX_ARRAY_BYTES:
            raise ValueError(
                f"IDX file {path} declares an array of shape {dims} ({header.nbytes:,} bytes), more than "
                f"ganaug.data.MAX_ARRAY_BYTES ({MAX_ARRAY_BYTES:,}): its header is corrupt, or, for a genuine "
                "file this large, raise ganaug.data.MAX_ARRAY_BYTES."
            )
        if not gzipped:
            found = os.fstat(f.fileno()).st_size - header.offset
            if found != header.nbytes:
                raise ValueError(
                    f"IDX file {path} is truncated or corrupt: header says {dims} ({header.nbytes} bytes of "
                    f"data), found {found}. Download it again."
                )
    except _IDX_ERRORS as exc:
        raise _idx_error(path, exc) from exc
    return header, f


def _read_idx_data(header: _IdxHeader, f: IO[bytes]) -> np.ndarray:
    """The array after ``header`` in ``f``, read in place: peak memory is the array itself."""
    raw = np.empty(header.nbytes, dtype=np.uint8)
    try:
        got = readinto_all(f, raw)
        # gzip: one byte past the declared size tells an overlong stream, and nothing more
        # is decompressed; at the end of the stream this read also checks the CRC.
        extra = header.gzipped and got == header.nbytes and len(f.read(1)) > 0
    except _IDX_ERRORS as exc:
        raise _idx_error(header.path, exc) from exc
    if got != header.nbytes or extra:
        found = f"more than {header.nbytes}" if extra else str(got)
        raise ValueError(
            f"IDX file {header.path} is truncated or corrupt: header says {header.dims} ({header.nbytes} bytes "
            f"of data), found {found}. Download it again."
        )
    arr = raw.view(header.dtype).reshape(header.dims)
    if not header.dtype.isnative:
        arr = arr.byteswap(inplace=True).view(header.dtype.newbyteorder("="))
    return arr


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one MNIST-format IDX file (gzipped or not) into a numpy array.

    The header is checked before any data is read: the declared array must stay under
    :data:`MAX_ARRAY_BYTES` and match the file's size (for gzip, the stream is decompressed
    no further than one byte past the declared size).
    """
    path = Path(path)
    with ExitStack() as stack:
        header, f = _read_idx_header(path, stack)
        return _read_idx_data(header, f)


def _idx_files(folder: Path) -> dict[int, list[Path]]:
    """The IDX files below ``folder`` by their number of dimensions, told by magic number, not name."""
    found: dict[int, list[Path]] = {}
    for dirpath, dirnames, names in os.walk(folder):  # symlinked folders are not entered: no loops
        dirnames.sort()
        for name in sorted(names):
            path = Path(dirpath) / name
            ndim = _idx_ndim(path) if path.is_file() else None  # is_file: never open a FIFO or device
            if ndim is not None:
                found.setdefault(ndim, []).append(path)
    # "x" beside "x.gz" (torchvision's download keeps both) is one file, read uncompressed.
    for paths in found.values():
        paths[:] = [p for p in paths if not (p.suffix == ".gz" and p.with_suffix("") in paths)]
    return found


def _has_class_folders(path: Path) -> bool:
    """Whether a sub-folder of ``path`` holds image files: the ImageFolder layout."""
    for sub in sorted(path.iterdir()):
        if sub.is_dir() and not sub.name.startswith("."):
            for _, _, names in os.walk(sub):
                if any(n.lower().endswith(IMG_EXTENSIONS) for n in names):
                    return True
    return False


def _is_idx_folder(path: Path) -> bool:
    """An IDX folder holds IDX image files (by magic number) and no class folders of images."""
    return not _has_class_folders(path) and 3 in _idx_files(path)


def load_idx(
    images: str | os.PathLike, labels: str | os.PathLike | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Load MNIST-format IDX images and labels.

    ``images`` is either the images file (then ``labels`` names the labels file) or a folder,
    searched recursively, that holds exactly one IDX images file (3-D) and one IDX labels
    file (1-D), told apart by their headers, gzipped or not (e.g. ``../shared/data/mnist``).

    Both headers are read and checked against each other (one integer label per image)
    before any data; then the labels are read, then the images, each in place.

    Returns ``X`` (N, H, W) in the file's dtype (uint8 for MNIST) and ``y`` int64 (N,).
    """
    images = Path(images)
    if images.is_dir():
        folder = images
        found = _idx_files(folder)
        img_files, lbl_files = found.get(3, []), found.get(1, [])
        if len(img_files) != 1 or len(lbl_files) != 1:
            raise ValueError(
                f"Expected one IDX images file (3-D, e.g. train-images-idx3-ubyte[.gz]) and one IDX labels file "
                f"(1-D, e.g. train-labels-idx1-ubyte[.gz]) under {folder}, found {len(img_files)} and "
                f"{len(lbl_files)}; pass the two files explicitly."
            )
        images, labels = img_files[0], lbl_files[0]
    elif labels is None:
        raise ValueError("Pass the labels file too: load_idx(images_file, labels_file).")
    labels = Path(labels)
    with ExitStack() as stack:
        hx, fx = _read_idx_header(images, stack)
        hy, fy = _read_idx_header(labels, stack)
        if len(hx.dims) != 3:
            raise ValueError(f"{images} holds an array of shape {hx.dims}; an IDX image file is (N, H, W).")
        if len(hy.dims) != 1 or hy.dims[0] != hx.dims[0]:
            raise ValueError(
                f"{labels} holds {hy.dims} labels for {hx.dims[0]} images in {images}. Pass the labels file "
                "that belongs to these images."
            )
        if hy.dtype.kind == "f":
            raise ValueError(f"{labels} holds {hy.dtype} values; IDX labels must be integers.")
        y = _read_idx_data(hy, fy).astype(np.int64)
        X = _read_idx_data(hx, fx)
    return X, y


# --------------------------------------------------------------------------- other sources


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits as float32 images in [0, 1], shape (1797, 8, 8)."""
    from sklearn.datasets import load_digits as _sk_load_digits

    bunch = _sk_load_digits()
    return (bunch.images / 16.0).astype(np.float32), bunch.target.astype(np.int64)


def _read_npz_member(path: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    """One ``.npy`` member, its header checked against the member's size and MAX_ARRAY_BYTES first."""
    where = f"{path} (array {info.filename})"
    with zf.open(info) as f:
        try:
            version = npformat.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = npformat.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, _, dtype = npformat.read_array_header_2_0(f)
            else:
                raise ValueError(f"unsupported .npy format version {version[0]}.{version[1]}")
        except MemoryError:
            raise
        except Exception as exc:
            # numpy parses the header with ast.literal_eval and its own dtype decoding, which
            # raise ValueError, TypeError, IndexError, SyntaxError, ... on corrupt bytes.
            raise ValueError(
                f"{where} has a corrupt .npy header ({exc}); save the archive again with np.savez."
            ) from exc
        header_size = f.tell()
    if dtype.hasobject or dtype.itemsize == 0:
        raise ValueError(
            f"{where} holds dtype {dtype}, which is no array of numbers or strings (ganaug never unpickles "
            "Python objects). Save X as a numeric array and y as integers or strings."
        )
    nbytes = math.prod(shape) * dtype.itemsize
    stored = info.file_size - header_size
    if min(shape, default=0) < 0 or nbytes != stored:
        raise ValueError(
            f"{where} is corrupt: its header declares shape {shape} of {dtype} ({nbytes:,} bytes) but it holds "
            f"{stored:,} bytes of data. Save the archive again with np.savez."
        )
    if nbytes > MAX_ARRAY_BYTES:
        raise ValueError(
            f"{where} declares {nbytes:,} bytes (shape {shape} of {dtype}), more than "
            f"ganaug.data.MAX_ARRAY_BYTES ({MAX_ARRAY_BYTES:,}); for a genuine array this large raise "
            "ganaug.data.MAX_ARRAY_BYTES."
        )
    with zf.open(info) as f:
        try:
            return npformat.read_array(f, allow_pickle=False)
        except ValueError as exc:
            raise ValueError(f"{where} is truncated or corrupt ({exc}); save the archive again with np.savez.") from exc


def _load_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``X`` and ``y`` of an ``.npz`` archive, read without unpickling and within MAX_ARRAY_BYTES."""
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path} is not an .npz (zip) archive. A .npy file holds one array: save X and y together with "
            f"np.savez('{path.name}', X=X, y=y)."
        )
    try:
        with zipfile.ZipFile(path) as zf:
            members = {i.filename[: -len(".npy")]: i for i in zf.infolist() if i.filename.endswith(".npy")}
            if "X" not in members or "y" not in members:
                raise ValueError(f"{path} must hold arrays named X and y, found {sorted(members)}.")
            return _read_npz_member(path, zf, members["X"]), _read_npz_member(path, zf, members["y"])
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, zlib.error, NotImplementedError,
            RuntimeError) as exc:
        # zipfile on a damaged archive: bad CRC, truncated data, unknown compression, encryption.
        raise ValueError(f"Cannot read {path}: {exc}. The archive is damaged; save it again with np.savez.") from exc


def load_source(source: str | os.PathLike, **kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
    """Load ``"digits"``, an IDX folder, an ``.npz`` with ``X`` and ``y`` or an image folder.

    A folder is an IDX folder when it holds an IDX images file (told by its magic number)
    and no class sub-folders of images; any other folder is an image folder.
    """
    if isinstance(source, str) and source == "digits":
        return load_digits()
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(
            f"Data {source!s} not found: give an image folder, an .npz file with X and y, "
            "an MNIST IDX folder, or 'digits'."
        )
    if path.is_file() and path.suffix == ".npz":
        return _load_npz(path)
    if path.is_dir() and _is_idx_folder(path):
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
        Range of the input values. Default: by dtype, 0..255 for uint8, 0..65535 for uint16,
        0..1 for bool (False -> low, True -> high), [0, 1] for floats; other integer dtypes
        0..255 when their values lie there, else value_range is required.
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
