"""The Translator as Python callers use it: the seed they pass and the pictures they hand to colorize."""

import numpy as np
import pytest
from PIL import Image

from pix2pix_core.errors import Pix2PixError
from pix2pix_core.inference import Translator


@pytest.fixture(scope="module")
def colorizer(colorize_checkpoint) -> Translator:
    return Translator.load(colorize_checkpoint, device="cpu")


def gray_photo() -> Image.Image:
    ramp = np.linspace(20, 230, 40 * 30).reshape(30, 40).astype(np.uint8)
    return Image.fromarray(ramp, "L")


@pytest.mark.parametrize("seed, words", [(2 ** 70, "seed must be between"), ("3", "seed must be a number, got str"),
                                         (1.5, "seed must be a whole number, got 1.5")])
def test_a_seed_torch_cannot_take_is_one_clear_error(colorizer, seed, words):
    """torch said "Overflow when unpacking long long" (ValueError) or "manual_seed expected a long" (RuntimeError)."""
    with pytest.raises(Pix2PixError, match=words):
        colorizer.translate(gray_photo(), seed=seed)


def test_seeds_torch_takes_still_translate(colorizer):
    for seed in (0, -1, 2 ** 64 - 1, 3.0, None):
        assert colorizer.translate(gray_photo(), seed=seed).size == (40, 30)


def test_colorize_reads_a_picture_as_translate_does(colorizer, tmp_path):
    """colorize (the one call with progress) took the picture's RGB as PIL gives it: a 16-bit gray photo came
    out white (clipped to 8 bits), a transparent one was coloured as its hidden pixels, a path failed."""
    gray = gray_photo()
    sixteen = Image.frombytes("I;16", gray.size, (np.asarray(gray).astype("<u2") * 257).tobytes())
    rgba = np.asarray(gray.convert("RGBA")).copy()
    rgba[:, :20, 3] = 0
    gray.save(tmp_path / "gray.png")
    for picture in (gray, sixteen, Image.fromarray(rgba, "RGBA"), str(tmp_path / "gray.png")):
        expected = np.asarray(colorizer.translate(picture))
        assert np.array_equal(np.asarray(colorizer.colorize(picture)), expected)
    assert np.asarray(colorizer.colorize(sixteen)).mean() < 200  # not the white picture it was


def test_colorize_turns_a_phone_photo_as_translate_does(colorizer, tmp_path):
    """A phone's JPEG opened with PIL is RGB with its rotation in EXIF: translate turned it upright, colorize (the
    call with progress) took any RGB picture as it was, so the two gave the photo on its side and upright."""
    photo = Image.merge("RGB", [gray_photo()] * 3)  # 40 x 30
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotated 90 degrees, as phones store a portrait photo
    photo.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    opened = Image.open(tmp_path / "phone.jpg")
    assert opened.mode == "RGB" and opened.size == (40, 30)
    expected = np.asarray(colorizer.translate(opened))
    assert expected.shape[:2] == (40, 30)  # upright: 30 wide, 40 tall
    assert np.array_equal(np.asarray(colorizer.colorize(Image.open(tmp_path / "phone.jpg"))), expected)


@pytest.mark.parametrize("device, words", [("gpu", "unknown device 'gpu': use auto, cpu, cuda, cuda:N or mps"),
                                           ("cuda:99", "device cuda:99: ")])
def test_a_translator_built_directly_checks_its_device_as_load_does(colorizer, colorize_checkpoint, device, words):
    """Translator(generator, config, device) took torch.device(device) as given: torch's own "Expected one of cpu,
    cuda, ipu, xpu, ..." for a word it does not know, "Found no NVIDIA driver" for a GPU the machine lacks."""
    from pix2pix_core.networks import build_generator

    with pytest.raises(Pix2PixError, match=words):
        Translator(build_generator(colorizer.config), colorizer.config, device=device)
    with pytest.raises(Pix2PixError, match=words):
        Translator.load(colorize_checkpoint, device=device)
