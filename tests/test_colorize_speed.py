"""The full-resolution colorize fast path: same results as the kornia path, gray stays gray, progress."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from pix2pix_core import color
from pix2pix_core.color import gray_uint8, lab_normalized_to_rgb, recolor_uint8, rgb_to_lab_normalized
from pix2pix_core.images import open_image
from pix2pix_core.inference import Translator, grayscale, grayscale_reference

ROOT = Path(__file__).resolve().parents[1]


def photo(width: int, height: int, seed: int = 0) -> Image.Image:
    """Colourful gradients, a saturated block, deep shadows and highlights, with noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.stack([255 * xx / width, 255 * yy / height, 255 * (1 - xx / width) * (yy / height)], -1)
    image[: height // 4, : width // 3] = rng.uniform(0, 255, 3)
    image[-height // 5:, -width // 4:] = (2, 1, 0)
    image += rng.normal(0, 8, image.shape)
    return Image.fromarray(np.clip(image, 0, 255).astype(np.uint8), "RGB")


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    assert a.size == b.size and a.mode == b.mode == "RGB"
    return float(np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)).mean())


@pytest.fixture(scope="module")
def translator(colorize_checkpoint) -> Translator:
    return Translator.load(colorize_checkpoint, device="cpu")


@pytest.mark.parametrize("size", [(97, 61), (128, 128), (301, 203), (40, 333)])
def test_colorize_matches_the_kornia_path_within_a_level(translator, size):
    picture = photo(*size, seed=size[0])
    fast, reference = translator.colorize(picture, seed=3), translator.colorize_reference(picture, seed=3)
    assert fast.size == picture.size
    assert mean_difference(fast, reference) < 0.1  # uint8 levels: well within 1/255 on average
    assert np.abs(np.asarray(fast, np.int16) - np.asarray(reference, np.int16)).max() <= 2


def test_colorize_of_a_gray_photo_matches_the_kornia_path(translator):
    gray = photo(150, 110).convert("L").convert("RGB")
    assert mean_difference(translator.colorize(gray, seed=1), translator.colorize_reference(gray, seed=1)) < 0.1


@pytest.mark.parametrize("scale", [0.3, 1.0])
def test_recolor_matches_kornia_for_strong_colours_too(scale):
    """Random ab up to the network's full range: the clip to [0, 1] and the fz >= 0 clamp are hit."""
    rgb = np.asarray(photo(123, 77, seed=5))
    ab = torch.from_numpy(np.random.default_rng(1).uniform(-scale, scale, (1, 2, 16, 9)).astype(np.float32))
    lightness, _ = rgb_to_lab_normalized(torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255)
    upsampled = F.interpolate(ab, size=rgb.shape[:2], mode="bilinear", align_corners=False)
    reference = (lab_normalized_to_rgb(lightness, upsampled)[0].permute(1, 2, 0) * 255).round().byte().numpy()
    fast = recolor_uint8(rgb, ab[0].numpy())
    difference = np.abs(fast.astype(np.int16) - reference.astype(np.int16))
    assert difference.mean() < 0.05 and difference.max() <= 1


def test_an_exactly_gray_photo_stays_gray():
    """ab = 0 gives R = G = B exactly, and the gray view of a gray photo is that photo."""
    levels = np.arange(256, dtype=np.uint8)
    gray = np.repeat(np.tile(levels, (7, 1))[..., None], 3, axis=2)
    recolored = recolor_uint8(gray, np.zeros((2, 4, 4), np.float32))
    assert (recolored[..., 0] == recolored[..., 1]).all() and (recolored[..., 1] == recolored[..., 2]).all()
    assert np.array_equal(recolored, gray)
    assert np.array_equal(gray_uint8(gray), gray)
    picture = Image.fromarray(gray, "RGB")
    assert np.array_equal(np.asarray(grayscale(picture)), gray)


def test_grayscale_matches_the_kornia_path():
    for size in [(64, 48), (255, 31)]:
        picture = photo(*size, seed=2)
        view = np.asarray(grayscale(picture))
        assert (view[..., 0] == view[..., 1]).all() and (view[..., 1] == view[..., 2]).all()
        assert mean_difference(grayscale(picture), grayscale_reference(picture)) < 0.05


def test_threads_and_strips_do_not_change_the_result(monkeypatch):
    rgb = np.asarray(photo(90, 200, seed=7))
    ab = np.random.default_rng(2).uniform(-0.5, 0.5, (2, 8, 8)).astype(np.float32)
    one = recolor_uint8(rgb, ab)
    monkeypatch.setattr(color, "_STRIP_PIXELS", 900)  # 10 rows a strip: many strips, a short last one
    assert np.array_equal(recolor_uint8(rgb, ab, threads=1), one)
    assert np.array_equal(recolor_uint8(rgb, ab, threads=3), one)


def test_colorize_reports_progress_in_order(translator):
    seen = []
    translator.colorize(photo(64, 64), progress=lambda fraction, what: seen.append((fraction, what)))
    fractions = [fraction for fraction, _ in seen]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    assert all(isinstance(what, str) and what for _, what in seen)


def test_odd_modes_are_colorized_at_full_size(translator):
    for mode in ["L", "RGBA", "P", "I;16"]:
        picture = photo(70, 50).convert(mode) if mode != "I;16" else photo(70, 50).convert("L").convert("I;16")
        result = translator.translate(open_image(picture))
        assert result.size == (70, 50) and result.mode == "RGB"


def test_benchmark_prints_a_table():
    out = subprocess.run([sys.executable, "-m", "benchmarks.colorize_speed", "--megapixels", "0.05", "--repeats", "1"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300, check=True).stdout
    assert "new/codec" in out and "x" in out.splitlines()[-1]
