"""Hostile and odd images through every entry point: `open_image`, `Translator.translate`, CLI `translate`.

Every case is generated here (no files are committed). Each one either works, with the right size
and orientation, or raises `ImageError` whose one-line message names the problem; nothing else
(no traceback from deep inside PIL, no hang, no gigabytes of memory for a 20000x20000 bomb).
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pytest
from PIL import Image

from pix2pix_core.errors import ImageError
from pix2pix_core.images import MAX_PIXELS, open_image
from pix2pix_core.inference import Translator
from pix2pix_core.palette import ids_to_image, palette_array

WHITE, RED, BLUE = (255, 255, 255), (255, 0, 0), (0, 0, 255)


# ------------------------------------------------------------------------------------ builders
def png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def raw_png(width: int, height: int, bit_depth: int, color_type: int, rows: Optional[bytes] = None,
            extra: tuple[bytes, ...] = ()) -> bytes:
    """A PNG written by hand, so a test can make any header PIL itself would refuse to write
    (16-bit RGB, a size claim that does not match the data)."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    idat = zlib.compress(rows if rows is not None else b"\x00" * 64, 9)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + b"".join(extra) + png_chunk(b"IDAT", idat)
            + png_chunk(b"IEND", b""))


def rows_of(pixels: np.ndarray) -> bytes:
    """Scanlines with filter byte 0, big-endian samples (PNG's byte order)."""
    pixels = pixels.astype(">u2") if pixels.dtype == np.uint16 else pixels.astype(np.uint8)
    return b"".join(b"\x00" + row.tobytes() for row in pixels.reshape(pixels.shape[0], -1))


def noise(width: int, height: int, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")


def saved(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def exif_rotated_jpeg(orientation: int) -> bytes:
    """40x20 stored pixels with a red top-left corner; the EXIF tag says how to display them."""
    image = Image.new("RGB", (40, 20), BLUE)
    image.paste(RED, (0, 0, 8, 8))
    exif = Image.Exif()
    exif[0x0112] = orientation
    return saved(image, "JPEG", quality=95, exif=exif.tobytes())


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (30, 20), RED), Image.new("RGB", (30, 20), BLUE)]
    return saved(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def multipage_tiff() -> bytes:
    frames = [Image.new("RGB", (24, 16), RED), Image.new("RGB", (48, 32), BLUE)]
    return saved(frames[0], "TIFF", save_all=True, append_images=frames[1:])


def palette_png_with_transparency() -> bytes:
    """Index 0 (red) is transparent, index 1 (blue) opaque: left half transparent."""
    image = Image.new("P", (20, 10), 1)
    image.putpalette([*RED, *BLUE] + [0] * 762)
    image.paste(0, (0, 0, 10, 10))
    return saved(image, "PNG", transparency=0)


def corrupt_png() -> bytes:
    """A valid PNG with bytes flipped inside IDAT: the CRC no longer matches."""
    data = bytearray(saved(noise(32, 32), "PNG"))
    start = data.index(b"IDAT") + 20
    data[start:start + 16] = bytes(b ^ 0xFF for b in data[start:start + 16])
    return bytes(data)


def gif_bomb_header() -> bytes:
    """A GIF whose logical screen claims 65535x65535 (4.3 gigapixels) around a 1x1 image."""
    screen = b"GIF89a" + struct.pack("<HHBBB", 65535, 65535, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    image = b"\x2c" + struct.pack("<HHHHB", 0, 0, 65535, 65535, 0) + b"\x02\x02\x44\x01\x00"
    return screen + image + b"\x3b"


def ztxt_bomb_png() -> bytes:
    """A 4x4 PNG carrying a zTXt chunk that inflates to 64 MB of text (a metadata bomb)."""
    text = png_chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"A" * 64_000_000, 9))
    return raw_png(4, 4, 8, 2, rows_of(np.zeros((4, 4, 3), np.uint8)), extra=(text,))


def off_palette_label_map() -> Image.Image:
    """A painted label map in colours near, but not on, the facade palette (anti-aliasing, JPEG)."""
    ids = np.zeros((48, 64), dtype=np.int64)
    ids[8:, 8:56] = 1
    ids[16:28, 16:28] = 2
    colours = palette_array()[ids].astype(np.int16) + np.random.default_rng(0).integers(-20, 21, (48, 64, 3))
    return Image.fromarray(np.clip(colours, 0, 255).astype(np.uint8), "RGB")


# ------------------------------------------------------------------------------------ cases
@dataclass
class Case:
    """One input: `make` returns the file's bytes (or None: the case builds the path itself)."""

    id: str
    suffix: str
    make: Callable[[], Optional[bytes]]
    size: Optional[tuple[int, int]] = None  # expected output (width, height) when it works
    error: Optional[str] = None  # a fragment the ImageError message must contain
    check: Optional[Callable[[Image.Image], None]] = None  # extra check of open_image's RGB result

    def data(self) -> Optional[bytes]:
        """The file's bytes, built once (the bombs take a moment to make)."""
        if not hasattr(self, "_data"):
            self._data = self.make()
        return self._data


def pixel_is(xy: tuple[int, int], rgb: tuple[int, int, int], tolerance: int = 12) -> Callable[[Image.Image], None]:
    def check(image: Image.Image) -> None:
        got = image.getpixel(xy)
        assert all(abs(a - b) <= tolerance for a, b in zip(got, rgb)), f"pixel {xy} is {got}, expected {rgb}"
    return check


def gray_levels(expected: dict[tuple[int, int], int]) -> Callable[[Image.Image], None]:
    def check(image: Image.Image) -> None:
        for xy, level in expected.items():
            got = image.getpixel(xy)
            assert got[0] == got[1] == got[2] and abs(got[0] - level) <= 1, f"pixel {xy} is {got}, expected {level}"
    return check


RGB16 = np.zeros((10, 12, 3), np.uint16)
RGB16[:, :6] = (65535, 32896, 0)
GRAY16 = np.array([[0, 65535, 32896, 257]] * 4, np.uint16)
DARK16 = np.full((4, 4), 200, np.uint16)  # a very dark 16-bit image: must stay dark, not become 200/255
FLOAT_ODD = np.full((6, 8), 0.5, np.float32)  # a 0..1 float image with no data (NaN), +inf and -inf pixels
FLOAT_ODD[0, :3] = (np.nan, np.inf, -np.inf)

CASES = [
    # broken or not-an-image files
    Case("truncated_jpeg", ".jpg", lambda: saved(noise(64, 48), "JPEG", quality=95)[:2500], error="truncated"),
    Case("corrupt_png_crc", ".png", corrupt_png, error="corrupt"),
    Case("zero_byte_file", ".png", lambda: b"", error="empty file"),
    Case("text_with_png_extension", ".png", lambda: b"just some notes, not a picture\n" * 20, error="not an image"),
    Case("html_with_jpg_extension", ".jpg", lambda: b"<html><body>hello</body></html>", error="not an image"),
    Case("svg_text", ".svg", lambda: b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>',
         error="not an image"),
    Case("png_header_only", ".png", lambda: saved(noise(16, 16), "PNG")[:33], error="not an image"),
    Case("png_zero_width", ".png", lambda: raw_png(0, 10, 8, 2), error=""),
    # sizes
    Case("one_by_one", ".png", lambda: saved(Image.new("RGB", (1, 1), RED), "PNG"), size=(1, 1),
         check=pixel_is((0, 0), RED, 0)),
    Case("tall_3x5000", ".png", lambda: saved(noise(3, 5000), "PNG"), size=(3, 5000)),
    Case("wide_5000x3", ".jpg", lambda: saved(noise(5000, 3), "JPEG"), size=(5000, 3)),
    # decompression bombs: refused from the header, before any pixel is decoded
    Case("bomb_png_header_20000x20000", ".png", lambda: raw_png(20000, 20000, 8, 2), error="above the limit"),
    Case("bomb_png_compressible_8000x8000", ".png",
         lambda: saved(Image.new("1", (8000, 8000)), "PNG", optimize=True), error="above the limit"),
    Case("bomb_gif_header_65535", ".gif", gif_bomb_header, error="above the limit"),
    Case("bomb_ztxt_metadata", ".png", ztxt_bomb_png, error="corrupt"),
    # bit depths and modes
    Case("png_16bit_rgb", ".png", lambda: raw_png(12, 10, 16, 2, rows_of(RGB16)), size=(12, 10),
         check=pixel_is((0, 0), (255, 128, 0), 1)),
    Case("png_16bit_gray", ".png", lambda: saved(Image.fromarray(GRAY16), "PNG"), size=(4, 4),
         check=gray_levels({(0, 0): 0, (1, 0): 255, (2, 0): 128, (3, 0): 1})),
    Case("png_16bit_gray_dark", ".png", lambda: saved(Image.fromarray(DARK16), "PNG"), size=(4, 4),
         check=gray_levels({(0, 0): 1})),
    Case("tiff_16bit_gray", ".tif", lambda: saved(Image.fromarray(GRAY16), "TIFF"), size=(4, 4),
         check=gray_levels({(0, 0): 0, (1, 0): 255, (2, 0): 128})),
    Case("tiff_float32", ".tif", lambda: saved(Image.fromarray(np.full((6, 8), 0.5, np.float32)), "TIFF"),
         size=(8, 6), check=gray_levels({(0, 0): 128})),
    Case("tiff_float32_nan_inf", ".tif", lambda: saved(Image.fromarray(FLOAT_ODD), "TIFF"), size=(8, 6),
         check=lambda im: (pixel_is((0, 0), WHITE, 0)(im), gray_levels({(1, 0): 255, (2, 0): 0, (3, 0): 128})(im))),
    Case("cmyk_jpeg", ".jpg", lambda: saved(Image.new("CMYK", (20, 16), (0, 0, 0, 0)), "JPEG", quality=95),
         size=(20, 16), check=pixel_is((5, 5), WHITE)),
    Case("palette_png_transparency", ".png", palette_png_with_transparency, size=(20, 10),
         check=lambda im: (pixel_is((2, 2), WHITE, 0)(im), pixel_is((15, 2), BLUE, 0)(im))),
    Case("rgba_alpha_zero", ".png", lambda: saved(Image.new("RGBA", (16, 12), (*RED, 0)), "PNG"), size=(16, 12),
         check=pixel_is((3, 3), WHITE, 0)),
    Case("la_half_transparent", ".png", lambda: saved(Image.new("LA", (10, 10), (0, 128)), "PNG"), size=(10, 10),
         check=gray_levels({(0, 0): 127})),
    Case("mode_1_binary", ".png", lambda: saved(Image.new("1", (9, 7), 1), "PNG"), size=(9, 7),
         check=pixel_is((0, 0), WHITE, 0)),
    Case("grayscale_jpeg", ".jpg", lambda: saved(Image.new("L", (20, 10), 90), "JPEG"), size=(20, 10)),
    # orientation, frames and formats
    Case("exif_rotate_90_cw", ".jpg", lambda: exif_rotated_jpeg(6), size=(20, 40),
         check=pixel_is((16, 3), RED, 40)),  # stored top-left -> displayed top-right
    Case("exif_rotate_90_ccw", ".jpg", lambda: exif_rotated_jpeg(8), size=(20, 40),
         check=pixel_is((3, 36), RED, 40)),  # stored top-left -> displayed bottom-left
    Case("exif_rotate_180", ".jpg", lambda: exif_rotated_jpeg(3), size=(40, 20), check=pixel_is((36, 16), RED, 40)),
    Case("animated_gif_first_frame", ".gif", animated_gif, size=(30, 20), check=pixel_is((5, 5), RED, 0)),
    Case("multipage_tiff_first_page", ".tiff", multipage_tiff, size=(24, 16), check=pixel_is((5, 5), RED, 0)),
    Case("webp", ".webp", lambda: saved(Image.new("RGB", (30, 18), RED), "WEBP", quality=90), size=(30, 18),
         check=pixel_is((5, 5), RED, 20)),
    Case("webp_with_alpha", ".webp", lambda: saved(Image.new("RGBA", (12, 12), (*BLUE, 0)), "WEBP", lossless=True),
         size=(12, 12), check=pixel_is((5, 5), WHITE, 0)),
    Case("tiff_rgb", ".tiff", lambda: saved(noise(33, 17), "TIFF"), size=(33, 17)),
    Case("bmp", ".bmp", lambda: saved(noise(15, 9), "BMP"), size=(15, 9)),
    Case("png_named_jpg", ".jpg", lambda: saved(Image.new("RGB", (11, 13), RED), "PNG"), size=(11, 13)),
    Case("jpeg_with_trailing_garbage", ".jpg", lambda: saved(noise(21, 14), "JPEG") + b"\x00garbage" * 100,
         size=(21, 14)),
    # label maps for the facades model
    Case("label_map_off_palette", ".png", lambda: saved(off_palette_label_map(), "PNG"), size=(64, 48)),
    Case("label_map_all_one_class", ".png", lambda: saved(ids_to_image(np.full((40, 50), 1)), "PNG"),
         size=(50, 40)),
    # paths that are not files
    Case("missing_path", ".png", lambda: None, error="not found"),
    Case("folder_path", ".png", lambda: None, error="folder"),
]
assert len(CASES) >= 25


def materialize(case: Case, folder: Path) -> Path:
    """Write the case to a file (or make the missing path / folder it stands for)."""
    path = folder / f"{case.id}{case.suffix}"
    if case.id == "folder_path":
        path.mkdir()
    elif case.id != "missing_path":
        path.write_bytes(case.data())
    return path


def expect(case: Case, call: Callable[[], Image.Image]) -> Optional[Image.Image]:
    """Run `call`; it must either give an image of the expected size or a clear ImageError."""
    if case.error is not None:
        with pytest.raises(ImageError) as caught:
            call()
        message = str(caught.value)
        assert case.error in message, message
        assert "\n" not in message and len(message) < 400, message
        return None
    result = call()
    assert isinstance(result, Image.Image) and result.mode == "RGB"
    assert result.size == case.size
    return result


# ------------------------------------------------------------------------------------ tests
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_open_image(case: Case, tmp_path: Path) -> None:
    path = materialize(case, tmp_path)
    result = expect(case, lambda: open_image(path))
    if result is not None and case.check:
        case.check(result)


@pytest.mark.parametrize("case", [c for c in CASES if c.data() is not None], ids=lambda c: c.id)
def test_open_image_from_bytes(case: Case) -> None:
    """Uploads arrive as bytes: the same answers as from a file (zero bytes included)."""
    if case.id == "zero_byte_file":
        with pytest.raises(ImageError, match="empty"):
            open_image(b"")
        return
    result = expect(case, lambda: open_image(case.data()))
    if result is not None and case.check:
        case.check(result)


@pytest.mark.parametrize("case", [c for c in CASES if c.data()], ids=lambda c: c.id)
def test_open_image_from_a_pil_image(case: Case) -> None:
    """A library user's `Image.open(path)`: the same picture as from the file (EXIF rotation applied: PIL
    leaves it to us), and an image that fails to decode is one ImageError line, not PIL's exception."""
    try:
        picture = Image.open(io.BytesIO(case.data()))
    except Exception:  # not even a header: the caller's own Image.open fails before us
        return
    if case.error is not None:
        with pytest.raises(ImageError):
            open_image(case.data())
        with pytest.raises(ImageError):
            open_image(picture)
        return
    assert np.array_equal(np.asarray(open_image(picture)), np.asarray(open_image(case.data()))), case.id


def test_a_float_image_with_nan_is_read_without_a_warning() -> None:
    """A float TIFF holding NaN logged numpy's "invalid value encountered in cast" and gave NaN pixels whatever
    byte the cast made; one +inf pixel turned a 0..1 image black. NaN is no data: laid on the matte like a
    transparent pixel (white for a photo, the background class for a facade label map), with no warning."""
    import warnings

    from pix2pix_core.palette import LABEL_MATTE, open_label_map

    data = saved(Image.fromarray(FLOAT_ODD), "TIFF")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        photo, label_map = open_image(data), open_label_map(data)
        blank = open_image(saved(Image.fromarray(np.full((4, 4), np.nan, np.float32)), "TIFF"))
    assert photo.getpixel((0, 0)) == WHITE and label_map.getpixel((0, 0)) == LABEL_MATTE
    assert photo.getpixel((3, 3)) == label_map.getpixel((3, 3)) == (127, 127, 127)
    assert np.all(np.asarray(blank) == 255)


def test_bomb_is_refused_before_decoding(tmp_path: Path, monkeypatch) -> None:
    """The pixel limit is checked on the header: no decoder ever runs for the bomb."""
    path = tmp_path / "bomb.png"
    path.write_bytes(raw_png(20000, 20000, 8, 2))
    monkeypatch.setattr(Image.Image, "load", lambda self: pytest.fail("decoded a decompression bomb"))
    with pytest.raises(ImageError, match=f"above the limit of {MAX_PIXELS:,}"):
        open_image(path)


@pytest.mark.parametrize("width, height", [(1_000_000, 1), (1, 1_000_000), (16_385, 700)])
def test_an_overlong_side_is_refused_before_decoding(tmp_path: Path, monkeypatch, width, height) -> None:
    """Inside the pixel limit but longer than MAX_SIDE a side: a 1,000,000 x 1 PNG (1 MP, 3 KB) took 64 s and
    17.5 GB to colorize, as some work grows with a side (resizing the result back makes a W x 256 image).
    Refused from the header, in one line, on files and PIL images alike."""
    from pix2pix_core.images import MAX_SIDE

    assert MAX_SIDE == 16_384 < 65_535  # every side the app and the library take is one JPEG can store
    path = tmp_path / "line.png"
    path.write_bytes(raw_png(width, height, 8, 2))
    monkeypatch.setattr(Image.Image, "load", lambda self: pytest.fail("decoded an overlong image"))
    expected = f"line.png is {width}x{height}: its longest side is above 16,384 px; crop or resize it first$"
    with pytest.raises(ImageError, match=expected):
        open_image(path)
    monkeypatch.undo()
    with pytest.raises(ImageError, match="its longest side is above 16,384 px"):
        open_image(Image.new("L", (width, height)))


def test_the_longest_allowed_side_is_read() -> None:
    assert open_image(Image.new("L", (16_384, 2), 200)).size == (16_384, 2)


def test_a_wide_photo_costs_memory_by_its_pixels_not_its_width() -> None:
    """recolor_uint8 upsampled the colour across the whole width at once: (4, 256, W) float32 and as much
    again in temporaries, 16 KB a column whatever the height (a 16384 x 1 photo: over 200 MB). In column
    blocks it stays a few MB."""
    import tracemalloc

    from pix2pix_core.color import recolor_uint8

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (1, 16_384, 3), dtype=np.uint8)
    ab = rng.uniform(-0.3, 0.3, (2, 256, 256)).astype(np.float32)
    lightness = rng.uniform(-1, 1, (256, 256)).astype(np.float32)
    tracemalloc.start()
    try:
        recolor_uint8(rgb, ab, lightness_small=lightness)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 40 * 2 ** 20, f"{peak / 2 ** 20:.0f} MB for a 16384 x 1 photo"


def test_pixel_limit_is_configurable_and_applies_to_pil_images() -> None:
    picture = Image.new("RGB", (100, 100))
    assert open_image(picture, max_pixels=10_000).size == (100, 100)
    with pytest.raises(ImageError, match="above the limit"):
        open_image(picture, max_pixels=9_999)


@pytest.mark.parametrize("source", [np.zeros((8, 8, 3), np.uint8), io.BytesIO(b"x"), None])
def test_a_source_of_another_type_is_a_type_error_naming_what_is_taken(source) -> None:
    """A numpy array failed as Path()'s "expected str, bytes or os.PathLike object, not ndarray"."""
    with pytest.raises(TypeError, match=r"^an image is a file path, bytes or a PIL image, not (ndarray|BytesIO|"
                                        r"NoneType)"):
        open_image(source)
    if isinstance(source, np.ndarray):
        with pytest.raises(TypeError, match=r"\(PIL.Image.fromarray makes one of a uint8 array\)$"):
            open_image(source)


@pytest.fixture(scope="module")
def translators(facades_checkpoint, colorize_checkpoint) -> dict[str, Translator]:
    return {"facades": Translator.load(facades_checkpoint, device="cpu"),
            "colorize": Translator.load(colorize_checkpoint, device="cpu")}


@pytest.mark.parametrize("task", ["facades", "colorize"])
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_translate(case: Case, task: str, translators, tmp_path: Path) -> None:
    """The output has the (orientation-corrected) size of the input, or the error is an ImageError."""
    path = materialize(case, tmp_path)
    expect(case, lambda: translators[task].translate(path))


@pytest.mark.parametrize("task", ["facades", "colorize"])
def test_translator_keeps_working_after_bad_inputs(task: str, translators, tmp_path: Path) -> None:
    """A failed request must not poison the shared translator (lock, RNG, memory format)."""
    translator = translators[task]
    for case in CASES:
        if case.error is not None:
            with pytest.raises(ImageError):
                translator.translate(materialize(case, tmp_path))
    first = translator.translate(noise(50, 30), seed=1)
    again = translator.translate(noise(50, 30), seed=1)
    assert first.size == (50, 30) and np.array_equal(np.asarray(first), np.asarray(again))


# ------------------------------------------------------------------------------------ the CLI
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_cli_translate(case: Case, facades_checkpoint, tmp_path: Path, capsys) -> None:
    """`translate` writes an image of the input's size, or prints one `error:` line (no traceback) and
    exits 1. A folder input means "every image in it", so the empty folder case is an error too."""
    from pix2pix_core.cli import main

    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    path = materialize(case, inputs)
    code = main(["translate", "--checkpoint", str(facades_checkpoint), str(path), "--out", str(out)])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    written = sorted(p for p in out.rglob("*") if p.is_file())
    if case.error is not None:
        assert code == 1, captured
        errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and case.error in errors[0], captured.err
        assert not written
        return
    assert code == 0, captured
    assert [p.name for p in written] == [f"{case.id}.png"]
    with Image.open(written[0]) as result:
        assert result.size == case.size


def test_cli_translate_one_bad_file_does_not_stop_the_others(colorize_checkpoint, tmp_path: Path, capsys) -> None:
    """All cases in one call: every good file is written, every bad one is reported on its own line."""
    from pix2pix_core.cli import main

    inputs = tmp_path / "in"
    inputs.mkdir()
    paths = [str(materialize(case, inputs)) for case in CASES if case.id != "folder_path"]
    code = main(["translate", "--checkpoint", str(colorize_checkpoint), *paths, "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    good = [c for c in CASES if c.error is None]
    bad = [c for c in CASES if c.error is not None and c.id != "folder_path"]
    assert code == 1
    assert len([line for line in captured.err.splitlines() if line.startswith("error:")]) == len(bad)
    assert sorted(p.stem for p in (tmp_path / "out").iterdir()) == sorted(c.id for c in good)


def test_an_image_above_pils_warning_size_is_refused_without_a_warning(facades_checkpoint, tmp_path, capsys):
    """From 89 MP PIL warns (DecompressionBombWarning) before our one-line refusal; the warning is not shown."""
    import warnings

    from pix2pix_core.cli import main

    path = tmp_path / "wide.png"
    Image.new("1", (10_000, 9_500)).save(path)  # 95 MP: between PIL's warning and its error
    assert main(["translate", "--checkpoint", str(facades_checkpoint), str(path), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "wide.png" in err[0], err  # no PIL warning first
    with warnings.catch_warnings():  # where warnings are errors, the same one line
        warnings.simplefilter("error")
        with pytest.raises(ImageError, match="wide.png: far too many pixels"):
            open_image(path)
