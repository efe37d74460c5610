"""Image folders (torchvision's ImageFolder layout) and PIL images, read with bounded decoding."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

IMG_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm")

# Pillow modes of greyscale images deeper than 8 bits: 16-bit PNG/TIFF ("I;16*"; older
# Pillow opened 16-bit PNGs as "I"), 32-bit integer ("I") and 32-bit float ("F") TIFF.
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
_HIGH_DEPTH_MODES = _SIXTEEN_BIT_MODES + ("I", "F")
_GREY_MODES = ("1", "L", "LA") + _HIGH_DEPTH_MODES

__all__ = ["IMG_EXTENSIONS", "load_image_folder", "pil_pixels"]


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


def pil_pixels(image: Image.Image, where: str) -> np.ndarray:
    """A PIL image's pixels: greyscale deeper than 8 bits as stored (uint16 or float32), any other as 8-bit L or RGB.

    ``where`` names the image in error messages, e.g. ``"Dataset item 3"``.
    """
    if image.mode in _HIGH_DEPTH_MODES:
        return _high_depth_pixels(image, where, None)
    if image.mode not in ("L", "RGB"):
        image = image.convert("RGB" if image.mode in ("RGBA", "P", "CMYK", "YCbCr") else "L")
    return np.asarray(image)


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


def _scan_headers(files: list[tuple[Path, str]], same_size: bool) -> tuple[list[str], list[tuple[int, int]]]:
    """The mode and (width, height) of every image, from headers only; ``same_size``: refuse mixed sizes."""
    modes: list[str] = []
    sizes: list[tuple[int, int]] = []  # (width, height), as PIL gives them
    for path, _ in files:
        with _open_image(path) as img:
            modes.append(img.mode)
            sizes.append(img.size)
        if same_size and sizes[-1] != sizes[0]:
            raise ValueError(
                f"Images have mixed sizes: {path} is {sizes[-1][0]}x{sizes[-1][1]} but {files[0][0]} is "
                f"{sizes[0][0]}x{sizes[0][1]} (width x height). Resize them, or pass image_size "
                "(--image-size on the command line) to resize on load."
            )
    return modes, sizes


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
        so that white stays white), which :func:`ganaug.data.as_image_data` reads as 0..65535; float32
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
    modes, sizes = _scan_headers(files, same_size=image_size is None)
    dtype = _folder_dtype(files, modes)
    if channels is None:
        channels = 1 if all(m in _GREY_MODES for m in modes) else 3
    height, width = image_size if image_size is not None else (sizes[0][1], sizes[0][0])
    X = np.empty((len(files), height, width) + ((3,) if channels == 3 else ()), dtype=dtype)
    for i, (path, _) in enumerate(files):
        X[i] = _read_pixels(path, dtype, channels, image_size)
    return X, np.asarray([label for _, label in files])
