"""The lightness-guided filter for the colorizer's ab (color.guided_coefficients, recolor_uint8 guided)."""

from __future__ import annotations

import numpy as np

from pix2pix_core.color import box_mean, guided_coefficients, lightness_to_f, recolor_uint8


def test_box_mean_matches_a_direct_window_mean():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(2, 9, 13))
    radius = 2
    expected = np.empty_like(values)
    for y in range(9):
        for x in range(13):
            window = values[:, max(0, y - radius): y + radius + 1, max(0, x - radius): x + radius + 1]
            expected[:, y, x] = window.mean(axis=(1, 2))
    np.testing.assert_allclose(box_mean(values, radius), expected, atol=1e-12)


def step_scene(size: int = 32):
    """A dark left half and a bright right half: L and a colour change together at the step."""
    lightness = np.full((size, size), -0.6, np.float32)
    lightness[:, size // 2:] = 0.6
    ab = np.zeros((2, size, size), np.float32)
    ab[0, :, size // 2:] = 0.3  # a: red on the bright side only
    return lightness, ab


def test_guided_filter_keeps_a_colour_edge_that_follows_the_lightness():
    lightness, ab = step_scene()
    coefficients = guided_coefficients(lightness, ab, radius=2, eps=1e-4)
    fitted = coefficients[:2] * lightness_to_f(lightness) + coefficients[2:]
    np.testing.assert_allclose(fitted, ab, atol=0.01)  # the step stays a step, not a ramp
    blurred = box_mean(ab, 2)
    assert np.abs(blurred - ab).max() > 0.1  # what a plain smoothing of the same radius would do


def test_guided_filter_removes_speckle_the_lightness_does_not_have():
    rng = np.random.default_rng(1)
    lightness = np.zeros((32, 32), np.float32)
    ab = (0.1 + rng.normal(0, 0.05, (2, 32, 32))).astype(np.float32)
    coefficients = guided_coefficients(lightness, ab, radius=2, eps=1e-3)
    fitted = coefficients[:2] * lightness_to_f(lightness) + coefficients[2:]
    assert fitted.std() < 0.3 * ab.std()
    assert abs(fitted.mean() - ab.mean()) < 0.01


def test_constant_colour_in_constant_colour_out():
    rng = np.random.default_rng(2)
    lightness = rng.uniform(-1, 1, (24, 24)).astype(np.float32)
    ab = np.stack([np.full((24, 24), 0.2), np.full((24, 24), -0.1)]).astype(np.float32)
    coefficients = guided_coefficients(lightness, ab, radius=2, eps=1e-3)
    np.testing.assert_allclose(coefficients[:2], 0.0, atol=1e-6)
    np.testing.assert_allclose(coefficients[2:], ab, atol=1e-6)
    rgb = rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)
    guided = recolor_uint8(rgb, ab, lightness_small=lightness)
    np.testing.assert_array_equal(guided, recolor_uint8(rgb, ab))


def test_gray_stays_exactly_gray_and_the_step_is_sharper_at_full_resolution():
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    gray = recolor_uint8(rgb, np.zeros((2, 16, 16), np.float32), lightness_small=rng.uniform(-1, 1, (16, 16)))
    assert (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()

    # full-res photo: gray step at column 58 of 128 (inside the 8-pixel block 7);
    # the network's ab at 16 px: red on the bright side
    photo = np.full((64, 128, 3), 60, np.uint8)
    photo[:, 58:] = 190
    small_l = np.where(np.arange(16) * 8 + 4 >= 58, 0.5, -0.5).astype(np.float32)[None].repeat(16, 0)
    small_ab = np.zeros((2, 16, 16), np.float32)
    small_ab[0][small_l > 0] = 0.3
    redness = lambda out: out[..., 0].astype(int) - out[..., 1].astype(int)  # noqa: E731
    plain = redness(recolor_uint8(photo, small_ab))
    guided = redness(recolor_uint8(photo, small_ab, lightness_small=small_l, radius=1, eps=1e-4))
    dark = slice(50, 58)  # dark pixels next to the edge: bilinear bleeds red into them, guided far less
    assert np.abs(plain[:, dark]).max() > 10
    assert np.abs(guided[:, dark]).sum() < 0.6 * np.abs(plain[:, dark]).sum()
    assert guided[:, 58:75].min() >= plain[:, 58:75].min()


def test_translator_guides_by_default_and_can_turn_it_off(colorize_checkpoint):
    from PIL import Image

    from pix2pix_core.inference import CHROMA_GUIDE, Translator

    guided = Translator.load(colorize_checkpoint, device="cpu")
    plain = Translator.load(colorize_checkpoint, device="cpu", chroma_guide=None)
    assert guided.chroma_guide == CHROMA_GUIDE and plain.chroma_guide is None
    rng = np.random.default_rng(4)
    picture = Image.fromarray(rng.integers(0, 256, (150, 200, 3), dtype=np.uint8), "RGB")
    a, b = guided.colorize(picture, seed=0), plain.colorize(picture, seed=0)
    assert a.size == b.size == picture.size
    difference = np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16))
    assert 0 < difference.mean() < 10  # the same colours, edges placed differently
    gray = picture.convert("L").convert("RGB")
    out = np.asarray(guided.colorize(gray, seed=0))
    assert out.shape == (150, 200, 3)


def test_colorize_input_is_a_sharp_resize_of_the_lightness(colorize_checkpoint):
    """The colorizer trained on crops never resampled, and a softer input got warmer, more uniform colours
    (bicubic 0.560-0.565 against Lanczos 0.546-0.558 on the colour two-sample test): its input is Lanczos."""
    import numpy as np
    from PIL import Image

    from pix2pix_core.color import pil_to_unit, rgb_to_lab_normalized
    from pix2pix_core.images import resize_photo
    from pix2pix_core.inference import Translator

    translator = Translator.load(colorize_checkpoint)
    stripes = np.zeros((3 * translator.size, 3 * translator.size, 3), np.uint8)
    stripes[:, ::6] = 255  # fine detail, blurred differently by each filter
    picture = Image.fromarray(stripes)
    sharp = rgb_to_lab_normalized(pil_to_unit(picture.resize((translator.size,) * 2, Image.LANCZOS))[None])[0]
    soft = rgb_to_lab_normalized(pil_to_unit(picture.resize((translator.size,) * 2, Image.BICUBIC))[None])[0]
    got = translator.colorize_input(picture)
    assert got.shape == (1, 1, translator.size, translator.size)
    assert (got - sharp).abs().max() < 1e-6 < (got - soft).abs().max()
    # the colorizer's training and test data shrink photos the same way (data._resize_center_crop)
    from pix2pix_core.data import _resize_center_crop

    assert np.array_equal(np.asarray(_resize_center_crop(picture, translator.size)),
                          np.asarray(picture.resize((translator.size,) * 2, Image.LANCZOS)))
    # a large photo is box-reduced first: within a fraction of a level of the full Lanczos, far from bicubic
    big = picture.resize((12 * translator.size, 12 * translator.size), Image.NEAREST)
    full = np.asarray(big.resize((translator.size,) * 2, Image.LANCZOS), np.float32)
    quick = np.asarray(resize_photo(big, (translator.size,) * 2), np.float32)
    assert np.abs(quick - full).mean() < 1.0
    # a tall, narrow photo: its long side is shrunk with Lanczos too, its short side enlarged with bicubic
    narrow = Image.fromarray(np.ascontiguousarray(stripes.transpose(1, 0, 2)[:, :translator.size // 4]))
    size = (translator.size,) * 2
    both = narrow.resize((narrow.width, translator.size), Image.LANCZOS).resize(size, Image.BICUBIC)
    assert np.array_equal(np.asarray(resize_photo(narrow, size)), np.asarray(both))
