"""Reading any image a user may hand us, safely, into plain 8-bit RGB.

Refuses decompression bombs and overlong sides before decoding, respects EXIF orientation, takes the first frame of
animations, flattens transparency onto white (and a float image's NaN pixels: no data) and scales 16-bit and
float images down to 8 bits.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from .atomic_files import replaced_atomically
from .errors import ImageError

MAX_PIXELS = 50_000_000  # refuse images above 50 megapixels (a 12 MP photo is far below)
# ... and images whose longer side is above 16,384 px: some work grows with a side, not with the pixel count.
# Resizing a 256 px result back to W x H makes a W x 256 intermediate (facades: 12,000,000 x 1 took 14 GB), and
# colorizing a 1,000,000 x 1 PNG (1 MP) took 17.5 GB before `color.recolor_uint8` worked in column blocks. At
# this bound the most elongated 12 MP image the app takes, 16384 x 732, costs about what a 4000 x 3000 photo
# does (peak RSS added by one translation, `benchmarks/image_memory`: colorize +129 MB for both, facades +365 MB
# against +322 MB), and every side stays far below JPEG's limit of 65,535 px (the app's large results are JPEG).
MAX_SIDE = 16_384
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif")

ImageSource = Union[str, os.PathLike, bytes, Image.Image]


def is_image_file(path: Union[str, os.PathLike]) -> bool:
    return str(path).lower().endswith(IMAGE_EXTENSIONS)


WHITE = (255, 255, 255)

# PIL warns from 89 MP on, before our own size check refuses such an image in one line. A filter for that one
# warning, set once: warnings.catch_warnings() around each open is not thread-safe (decoding runs on threads,
# and overlapping uses restore each other's filters)
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def wrong_picture_type(source: object, taken: str) -> TypeError:
    """The error for a picture of a type not `taken` (what is, in words): its type, and for a numpy array how to
    make a PIL image of it."""
    hint = " (PIL.Image.fromarray makes one of a uint8 array)" if hasattr(source, "__array__") else ""
    return TypeError(f"{taken}, not {type(source).__name__}{hint}")


def open_image(source: ImageSource, max_pixels: int = MAX_PIXELS, matte: tuple[int, int, int] = WHITE,
               convert: Optional[Callable[[Image.Image], Image.Image]] = None) -> Image.Image:
    """Open, check and decode an image from a path, bytes or a PIL image; return it as RGB (transparent
    pixels on `matte`: white for photos). `convert`, when given, turns the decoded image (in its own mode)
    into RGB instead: a label map is read by `palette.label_map_rgb`, since a class-id map's raw pixel
    values are lost once it is RGB.

    Raises ImageError with a one-line reason for anything that is not a usable image.
    """
    convert = convert or (lambda image: to_rgb(image, matte))
    if isinstance(source, Image.Image):  # the caller's image, at the frame it chose; not copied unless turned
        with _reading("image", max_pixels):
            image = _checked_size(source, max_pixels, "image")
            image.load()  # a lazily opened one decodes here, inside the size check and the error lines
            if image.getexif().get(ExifTags.Base.Orientation, 1) != 1:  # Image.open leaves it to us, as below
                image = ImageOps.exif_transpose(image)
            return _named(convert, image, "image")
    if not isinstance(source, (str, os.PathLike, bytes, bytearray)):  # a numpy array, a file object, None:
        # Path() said "expected str, bytes or os.PathLike object", naming neither the PIL image nor fromarray
        raise wrong_picture_type(source, "an image is a file path, bytes or a PIL image")
    name = "image bytes" if isinstance(source, (bytes, bytearray)) else str(source)
    if isinstance(source, (bytes, bytearray)) and not source:
        raise ImageError(f"{name}: empty file (0 bytes)")
    if not isinstance(source, (bytes, bytearray)):
        path = Path(source)
        if not path.exists():
            raise ImageError(f"{name}: file not found")
        if path.is_dir():
            raise ImageError(f"{name}: is a folder, not an image")
        if path.stat().st_size == 0:
            raise ImageError(f"{name}: empty file (0 bytes)")
    with _reading(name, max_pixels):
        # Decoding is lazy: open() reads the header only, so the size check runs before any pixels.
        image = Image.open(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source)
        with image:
            _checked_size(image, max_pixels, name)
            image.seek(0)  # first frame of animated GIF/WebP/TIFF
            image.load()
            decoded_from = image.format
            image = ImageOps.exif_transpose(image)  # phones store rotation in EXIF; a copy, kept after close
            image.info["decoded_from"] = decoded_from  # the file format, for `convert` (a copy has no .format)
            return _named(convert, image, name)


@contextlib.contextmanager
def _reading(name: str, max_pixels: int):
    """Every way decoding can fail, as one ImageError line naming the image."""
    try:
        yield
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image file (unknown format or damaged header)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):  # PIL's own header check (the
        # warning only where warnings are errors)
        raise ImageError(f"{name}: far too many pixels, above the limit of {max_pixels:,}; resize it first") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"{name}: corrupt or truncated image ({exc})") from None


def _named(convert: Callable[[Image.Image], Image.Image], image: Image.Image, name: str) -> Image.Image:
    """`convert(image)`, its ImageError (a class-id map out of range) given the file's name like every other."""
    try:
        return convert(image)
    except ImageError as exc:
        raise ImageError(f"{name}: {exc}") from None


def save_image_atomically(image: Image.Image, path: Union[str, os.PathLike]) -> Path:
    """Save `image` (format from the suffix) through a temp file in the same folder, then rename: a killed
    run leaves no half-written image under the final name. OSError (full disk, a folder in the way) as is."""
    path = Path(path)
    with replaced_atomically(path) as handle:
        image.save(handle, format=Image.registered_extensions().get(path.suffix.lower(), "PNG"))
    return path


def _checked_size(image: Image.Image, max_pixels: int, name: str) -> Image.Image:
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageError(f"{name}: image has no pixels")
    if width * height > max_pixels:
        raise ImageError(f"{name}: {width}x{height} is {width * height:,} pixels, above the limit of "
                         f"{max_pixels:,}; resize it first")
    if max(width, height) > MAX_SIDE:
        raise ImageError(side_refusal(name, width, height))
    return image


def side_refusal(name: str, width: int, height: int) -> str:
    """The one line refusing an image whose longer side is above MAX_SIDE (the app's header checks say it too)."""
    return f"{name} is {width}x{height}: its longest side is above {MAX_SIDE:,} px; crop or resize it first"


def to_rgb(image: Image.Image, matte: tuple[int, int, int] = WHITE) -> Image.Image:
    """Any PIL mode -> 8-bit RGB. Transparent pixels are laid on `matte`, 16-bit values are rescaled."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        values = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if values.max() > 255 or image.mode.startswith("I;16") else 255.0
        gray = np.clip(values / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(gray, "L").convert("RGB")
    if image.mode == "F":
        return _float_to_rgb(image, matte)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        under = Image.new("RGBA", rgba.size, (*matte, 255))
        return Image.alpha_composite(under, rgba).convert("RGB")
    if image.mode in ("RGB;16", "BGR;16") or image.mode.startswith("RGB"):
        return image.convert("RGB")
    return image.convert("RGB")  # L, 1, P, CMYK, YCbCr, LAB, HSV


def _float_to_rgb(image: Image.Image, matte: tuple[int, int, int]) -> Image.Image:
    """A float ("F") image -> RGB gray: values up to 1 are taken as 0..1, larger ones as 0..255 (judged by the
    finite values: one +inf pixel turned a 0..1 image black), clipped, so +inf is white and -inf black. NaN is no
    value ("no data" in a scientific or GIS float TIFF): laid on `matte` like a transparent pixel, not cast to an
    undefined byte with numpy's "invalid value encountered in cast" warning."""
    values = np.asarray(image, dtype=np.float64)
    missing = np.isnan(values)
    finite = values[np.isfinite(values)]
    scale = 255.0 if finite.size == 0 or finite.max() <= 1.0 else 1.0
    gray = np.clip(np.where(missing, 0.0, values) * scale, 0, 255).astype(np.uint8)
    rgb = np.repeat(gray[..., None], 3, axis=-1)
    rgb[missing] = matte
    return Image.fromarray(rgb, "RGB")


def resize_photo(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """A photo at `size` for a colorizer: shrunk with Lanczos, the sharpest of PIL's filters (box-reduced
    first to within 3x of the size: a 12 MP photo in 20 ms, not 90), enlarged with bicubic. The colorizer
    paints a softer input warmer and more uniformly (bicubic shrinking: colour two-sample 0.560-0.565
    against 0.546-0.558, `checkpoints/food_colorize.md`), so its training data, `test` and the app shrink
    photos alike. Each axis on its own: a tall, narrow photo (50 x 2000 to 256 x 256) is shrunk down, then
    enlarged across."""
    shrunk = (min(image.width, size[0]), min(image.height, size[1]))
    if shrunk != image.size:
        image = image.resize(shrunk, Image.LANCZOS, reducing_gap=3.0)
    return image if shrunk == size else image.resize(size, Image.BICUBIC)


def load_folder_images(folder: Union[str, os.PathLike]) -> list[Path]:
    """Sorted image files directly inside `folder` (not recursive). Names are sorted, not paths (the same order,
    several times faster on a folder of 100,000 files)."""
    folder = Path(folder)
    return [folder / name for name in sorted(image_names(folder))]


def image_names(folder: Union[str, os.PathLike], at_most: Optional[int] = None) -> list[str]:
    """Names of the image files directly inside `folder`, in directory order, the first `at_most` of them when
    given: a count that stops early and never stats a file whose type the directory listing gives."""
    names = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if at_most is not None and len(names) >= at_most:
                break
            if is_image_file(entry.name) and _is_file(entry):
                names.append(entry.name)
    return names


def _is_file(entry: os.DirEntry) -> bool:
    """A file, or a link to one; False for a link loop or a dangling link, as Path.is_file says."""
    try:
        return entry.is_file()
    except OSError:
        return False


def has_images(folder: Union[str, os.PathLike]) -> bool:
    """Whether `folder` holds an image file directly inside it (stops at the first)."""
    return bool(image_names(folder, at_most=1))
