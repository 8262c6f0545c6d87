"""Conversions between PIL images, network tensors in [-1, 1], and normalised Lab.

Colorization works in Lab as the official colorization mode does: the network sees the lightness L
and predicts the two colour channels ab, so the output can never change the photo's structure.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from kornia.color import lab_to_rgb, rgb_to_lab
from PIL import Image

L_SCALE = 50.0  # L in [0, 100] -> L / 50 - 1 in [-1, 1]
AB_SCALE = 110.0  # ab in about [-110, 110] -> ab / 110 in [-1, 1]


def pil_to_unit(image: Image.Image) -> torch.Tensor:
    """RGB PIL image -> float tensor (3, H, W) in [0, 1]."""
    array = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(255.0)


def unit_to_pil(tensor: torch.Tensor) -> Image.Image:
    """Float tensor (3, H, W) in [0, 1] -> RGB PIL image."""
    array = tensor.detach().float().clamp(0, 1).mul(255.0).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array, "RGB")


def to_signed(unit: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> [-1, 1], the range of the generator's tanh."""
    return unit * 2.0 - 1.0


def to_unit(signed: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1]."""
    return (signed.float() + 1.0) / 2.0


def rgb_to_lab_normalized(rgb_unit: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """RGB in [0, 1], shape (..., 3, H, W) -> (L, ab) normalised to about [-1, 1]."""
    lab = rgb_to_lab(rgb_unit.float())
    lightness = lab[..., :1, :, :] / L_SCALE - 1.0
    ab = lab[..., 1:, :, :] / AB_SCALE
    return lightness, ab


def lab_normalized_to_rgb(lightness: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """Inverse of rgb_to_lab_normalized: (L, ab) in [-1, 1] -> RGB in [0, 1]."""
    lab = torch.cat([(lightness.float() + 1.0) * L_SCALE, ab.float() * AB_SCALE], dim=-3)
    return lab_to_rgb(lab.clamp(min=torch.tensor([0.0, -128.0, -128.0], device=lab.device).view(3, 1, 1),
                                max=torch.tensor([100.0, 127.0, 127.0], device=lab.device).view(3, 1, 1)),
                      clip=True)


def gray_of(rgb_unit: torch.Tensor) -> torch.Tensor:
    """The colorizer's input as an RGB picture: the photo with its colour removed (ab = 0)."""
    lightness, ab = rgb_to_lab_normalized(rgb_unit)
    return lab_normalized_to_rgb(lightness, torch.zeros_like(ab))


def network_to_rgb(task: str, tensor: torch.Tensor, lightness: torch.Tensor | None = None) -> torch.Tensor:
    """A network input/output/target batch -> RGB in [0, 1] for display.

    For colorization a 1-channel tensor is the lightness (shown gray) and a 2-channel tensor is ab,
    recombined with `lightness`.
    """
    tensor = tensor.float()
    if task != "colorize":
        return to_unit(tensor).clamp(0, 1)
    if tensor.shape[-3] == 1:
        return lab_normalized_to_rgb(tensor, torch.zeros_like(tensor).repeat_interleave(2, dim=-3))
    return lab_normalized_to_rgb(lightness.float(), tensor)


# --- Full-resolution fast path -------------------------------------------------------------------
# The same D65 Lab as kornia's rgb_to_lab / lab_to_rgb above, for uint8 photos of many megapixels:
# sRGB -> linear and linear -> sRGB are lookup tables, the rest is float32 numpy in place, one strip of
# rows at a time (a strip's buffers stay in the CPU cache), and ab is upsampled (bilinear, as
# F.interpolate with align_corners=False) strip by strip, so no full-size float copy is ever made.
# recolor_uint8 works on blocks of at most _BLOCK_COLUMNS columns, so nothing grows with the width alone.

_XYZ_WHITE = (0.95047, 1.0, 1.08883)
_Y_FROM_RGB = (0.212671, 0.715160, 0.072169)  # kornia's rgb_to_xyz middle row
_RGB_FROM_XYZ = np.array([[3.2404813432005266, -1.5371515162713185, -0.4985363261688878],
                          [-0.9692549499965682, 1.8759900014898907, 0.0415559265582928],
                          [0.0556466391351772, -0.2040413383665112, 1.0573110696453443]])
# Linear RGB = Yr + cx * (X/Xn - Yr) + cz * (Z/Zn - Yr): the xyz_to_rgb rows times the white point,
# written so that a zero ab (X/Xn = Y = Z/Zn) gives exactly R = G = B = Yr.
_CX = (_RGB_FROM_XYZ[:, 0] * _XYZ_WHITE[0]).astype(np.float32)
_CZ = (_RGB_FROM_XYZ[:, 2] * _XYZ_WHITE[2]).astype(np.float32)
_EPSILON = 0.008856  # kornia's Lab thresholds
_F_EDGE = 0.2068966
_LINEAR_STEPS = 65535  # linear -> sRGB table: 65536 entries, 1/65535 apart (under 0.03 of a uint8 level)
_STRIP_PIXELS = 1 << 16
# recolor_uint8's columns at a time: its (4, 256, columns) float32 arrays stay at 4 MB. Whole-width, a 16384 x 732
# photo peaked at +335 MB against +139 MB for a 4000 x 3000 one (a 65535 x 183 one +1.1 GB); now +129 MB for
# both, the same output to the bit and as fast (`benchmarks/image_memory`)
_BLOCK_COLUMNS = 1024


def _srgb_to_linear(values: np.ndarray) -> np.ndarray:
    return np.where(values > 0.04045, ((values + 0.055) / 1.055) ** 2.4, values / 12.92)


def _linear_to_srgb(values: np.ndarray) -> np.ndarray:
    return np.where(values > 0.0031308, 1.055 * np.maximum(values, 0.0031308) ** (1 / 2.4) - 0.055, 12.92 * values)


_LINEAR_LUT = _srgb_to_linear(np.arange(256) / 255.0).astype(np.float32)
_Y_STEPS = (np.array(_Y_FROM_RGB) * _LINEAR_STEPS).astype(np.float32)
_SRGB_LUT = np.clip(np.round(_linear_to_srgb(np.arange(_LINEAR_STEPS + 1) / _LINEAR_STEPS) * 255), 0, 255).astype(np.uint8)


_F_LUT = None  # Y quantised to 1/65535 -> (f(Y), the f^-1(f(Y)) the inverse path gives back), built lazily


def _y_tables() -> tuple[np.ndarray, np.ndarray]:
    """f(Y) and f^-1(f(Y)) for Y = i / 65535, in float32 as the rest of the fast path."""
    global _F_LUT
    if _F_LUT is None:
        y = np.arange(_LINEAR_STEPS + 1, dtype=np.float64) / _LINEAR_STEPS
        f = np.where(y > _EPSILON, np.cbrt(np.maximum(y, _EPSILON)), 7.787 * y + 4.0 / 29.0).astype(np.float32)
        back = _f_inverse(f.copy(), np.empty_like(f), np.empty_like(f))
        _F_LUT = (f, back)
    return _F_LUT


def _strips(height: int, width: int):
    rows = max(1, _STRIP_PIXELS // max(width, 1))
    for top in range(0, height, rows):
        yield top, min(height, top + rows)


def _f_inverse(f: np.ndarray, scratch: np.ndarray, cube: np.ndarray) -> np.ndarray:
    """Inverse of Lab's f in place, as kornia: f^3 above 0.2068966, (f - 4/29) / 7.787 below.

    Written without masks: max(f, e)^3 + (min(f, e) - e) / 7.787, equal since e^3 = (e - 4/29) / 7.787.
    """
    np.minimum(f, np.float32(_F_EDGE), out=scratch)
    scratch -= np.float32(_F_EDGE)
    scratch *= np.float32(1 / 7.787)
    np.maximum(f, np.float32(_F_EDGE), out=f)
    np.multiply(f, f, out=cube)
    f *= cube
    f += scratch
    return f


def _y_index(rgb_strip: np.ndarray, y: np.ndarray, index: np.ndarray, linear: np.ndarray) -> np.ndarray:
    """uint8 RGB rows -> Y (linear luminance) quantised to 1/65535, as int32 table indices."""
    np.take(_LINEAR_LUT, rgb_strip, out=linear, mode="clip")
    np.matmul(linear, _Y_STEPS, out=y)  # Y * 65535 (at most 65535 + rounding: the cast stays <= 65535)
    y += np.float32(0.5)
    np.copyto(index, y, casting="unsafe")
    return index


def gray_uint8(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB -> uint8 RGB with the colour removed (Lab ab = 0): the fast form of `gray_of`."""
    height, width = rgb.shape[:2]
    _, back = _y_tables()
    gray_table = _encode_table(back)
    result = np.empty((height, width, 3), np.uint8)
    for top, bottom in _strips(height, width):
        n = bottom - top
        index = _y_index(rgb[top:bottom], np.empty((n, width), np.float32), np.empty((n, width), np.int32),
                         np.empty((n, width, 3), np.float32))
        result[top:bottom] = np.take(gray_table, index, mode="clip")[..., None]
    return result


def _encode_table(linear: np.ndarray) -> np.ndarray:
    """sRGB uint8 of float32 linear values (clipped to [0, 1]), through the 65536-entry table."""
    index = np.clip(linear * np.float32(_LINEAR_STEPS), 0, _LINEAR_STEPS) + np.float32(0.5)
    return _SRGB_LUT[index.astype(np.int32)]


def _bilinear_taps(size_in: int, size_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weights of F.interpolate(mode="bilinear", align_corners=False) on one axis."""
    source = np.maximum((np.arange(size_out, dtype=np.float64) + 0.5) * (size_in / size_out) - 0.5, 0.0)
    first = np.minimum(source.astype(np.int64), size_in - 1)
    second = np.minimum(first + 1, size_in - 1)
    return first, second, (source - first).astype(np.float32)


def box_mean(values: np.ndarray, radius: int) -> np.ndarray:
    """Mean over the (2 radius + 1)^2 window around each pixel of the last two axes, the window clipped
    at the borders (He et al.'s box filter: O(N) by cumulative sums, whatever the radius)."""
    values = np.asarray(values, np.float64)
    if radius <= 0:
        return values.copy()
    out = values
    for axis in (-2, -1):
        size = out.shape[axis]
        total = np.cumsum(out, axis=axis)
        total = np.concatenate([np.zeros_like(np.take(total, [0], axis=axis)), total], axis=axis)
        upper = np.minimum(np.arange(size) + radius + 1, size)
        lower = np.maximum(np.arange(size) - radius, 0)
        shape = [1] * out.ndim
        shape[axis] = size
        out = (np.take(total, upper, axis=axis) - np.take(total, lower, axis=axis)) / (upper - lower).reshape(shape)
    return out


def lightness_to_f(lightness: np.ndarray) -> np.ndarray:
    """Normalised L (L / 50 - 1) -> Lab's f(Y) = (L + 16) / 116, the guide's units in the fast path."""
    return ((np.asarray(lightness, np.float64) + 1.0) * L_SCALE + 16.0) / 116.0


def guided_coefficients(lightness_small: np.ndarray, ab_small: np.ndarray, radius: int = 2,
                        eps: float = 1e-3) -> np.ndarray:
    """The guided filter (He, Sun, Tang 2010) of ab with the lightness as guide, as per-pixel linear
    coefficients: ab ~= A * f + B, f = Lab's f(Y) (`lightness_to_f`), returned as (4, h, w) float32
    [A_a, A_b, B_a, B_b] already box-averaged.

    Within each (2 radius + 1)^2 window of the network's output, ab is fitted as a linear function of the
    lightness; colour changes that the lightness does not share (speckle) are smoothed out, those at
    lightness edges kept. `eps` (in f units squared; f spans 0.14-1 over L 0-100, so eps 1e-3 is a
    lightness contrast of about 3.7 L units) sets how strong an edge must be to be kept. Evaluating
    A * f + B with the full-resolution f afterwards (the fast guided filter, He & Sun 2015) snaps the
    upsampled colour to the photo's own edges. A constant ab gives A = 0, B = ab (gray stays exactly gray).
    """
    guide = lightness_to_f(lightness_small).reshape(ab_small.shape[-2:])
    ab = np.asarray(ab_small, np.float64)
    mean_i = box_mean(guide, radius)
    var_i = box_mean(guide * guide, radius) - mean_i * mean_i
    mean_p = box_mean(ab, radius)
    cov_ip = box_mean(ab * guide, radius) - mean_i * mean_p
    a = cov_ip / (np.maximum(var_i, 0.0) + eps)
    b = mean_p - a * mean_i
    return np.concatenate([box_mean(a, radius), box_mean(b, radius)]).astype(np.float32)


def recolor_uint8(rgb: np.ndarray, ab_small: np.ndarray, threads: int = 1,
                  lightness_small: np.ndarray | None = None, radius: int = 2, eps: float = 1e-3) -> np.ndarray:
    """uint8 RGB (H, W, 3) + normalised ab at any size (2, h, w) -> uint8 RGB (H, W, 3): the photo's own
    Lab lightness with that colour.

    ab is upsampled to (H, W) bilinearly (F.interpolate, align_corners=False) strip by strip, and joined
    to the lightness as kornia's rgb_to_lab / lab_to_rgb(clip=True) do, within float32 rounding. A zero
    ab gives exactly R = G = B. `threads` > 1 shares the strips among that many threads (numpy releases
    the GIL in this work).

    With `lightness_small` (the normalised L the network saw, (h, w) or (1, h, w)) the colour is
    guided by the lightness instead (`guided_coefficients` with `radius` and `eps`): the coefficients
    A and B are upsampled bilinearly and ab = A * f + B is evaluated with the full-resolution f(Y).
    """
    height, width = rgb.shape[:2]
    ab_small = np.asarray(ab_small, np.float32)
    if lightness_small is not None:
        ab_small = guided_coefficients(lightness_small, ab_small, radius, eps)
    columns = _bilinear_taps(ab_small.shape[2], width)
    rows = _bilinear_taps(ab_small.shape[1], height)
    result = np.empty((height, width, 3), np.uint8)
    # A block of columns at a time: the upsampled-across array is (planes, h, columns) float32 with as
    # many again in temporaries, 16 KB a column at h = 256 (a 1,000,000 x 1 image took 17.5 GB whole)
    with contextlib.ExitStack() as stack:  # one pool for every block (its threads start at the first submit)
        pool = stack.enter_context(ThreadPoolExecutor(threads)) if threads > 1 else None
        for left in range(0, width, _BLOCK_COLUMNS):
            right = min(width, left + _BLOCK_COLUMNS)
            across = _across(ab_small, *(taps[left:right] for taps in columns))
            next_row = np.minimum(np.arange(1, len(across[0]) + 1), len(across[0]) - 1)
            delta = across[:, next_row] - across
            block_rgb, block_result = rgb[:, left:right], result[:, left:right]
            strips = list(_strips(height, right - left))
            if pool is None or len(strips) < 2 * threads:
                _recolor_strips(block_rgb, across, delta, rows, block_result, strips)
                continue
            parts = [pool.submit(_recolor_strips, block_rgb, across, delta, rows, block_result, strips[i::threads])
                     for i in range(threads)]
            for part in parts:
                part.result()
    return result


def _across(ab_small: np.ndarray, first: np.ndarray, second: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """ab (or the guided coefficients) upsampled across to the given columns, in f units: (planes, h, columns)
    float32, a / 500 and -b / 200 (guided: 1 + A and B)."""
    # C order matters: indexing the last axis leaves it outermost in memory (a row's pixels h * 4 * planes
    # bytes apart, a page at h = 256), and reading rows of that in the strip loop cost 20x its arithmetic
    across = np.ascontiguousarray(ab_small[:, :, first] + (ab_small[:, :, second] - ab_small[:, :, first]) * weight)
    for channel in range(0, len(across), 2):
        across[channel] *= np.float32(AB_SCALE / 500.0)
        across[channel + 1] *= np.float32(-AB_SCALE / 200.0)
    if len(across) == 4:
        across[:2] += np.float32(1.0)  # guided: fx = f + A f + B = (1 + A) f + B, one multiply-add per pixel
    return across


def _recolor_strips(rgb: np.ndarray, across: np.ndarray, delta: np.ndarray, rows: tuple, result: np.ndarray,
                    strips: list) -> None:
    """recolor_uint8 on some strips of rows of a block of columns, with buffers of its own."""
    width = rgb.shape[1]
    row_first, row_second, row_weight = rows
    f_table, back_table = _y_tables()
    most = max(bottom - top for top, bottom in strips)
    fy_, fx_, fz_, scratch_, y_, cube_ = (np.empty((most, width), np.float32) for _ in range(6))
    index_ = np.empty((most, width), np.int32)
    stacked_, linear_ = np.empty((most, width, 3), np.float32), np.empty((most, width, 3), np.float32)
    index3_ = np.empty((most, width, 3), np.int32)
    upper_ = np.empty((len(across), most, width), np.float32)
    steps = np.float32(_LINEAR_STEPS)
    # (X/Xn - Y, Z/Zn - Y, Y + 0.5/steps) x mix -> linear RGB in table steps, rounded by the + 0.5
    mix = np.stack([_CX * steps, _CZ * steps, np.full(3, steps, np.float32)]).astype(np.float32)
    for top, bottom in strips:
        n = bottom - top
        fy, fx, fz, scratch, y, cube, index = (b[:n] for b in (fy_, fx_, fz_, scratch_, y_, cube_, index_))
        stacked, linear, index3 = stacked_[:n], linear_[:n], index3_[:n]
        _y_index(rgb[top:bottom], y, index, linear)
        np.take(f_table, index, out=fy, mode="clip")
        np.take(back_table, index, out=y, mode="clip")
        # down: rows between the same two source rows are one broadcast (no gathers), the same
        # float32 arithmetic as upper + (lower - upper) * weight
        upper = upper_[:, :n]
        first_rows = row_first[top:bottom]
        bounds = [0, *(np.flatnonzero(np.diff(first_rows)) + 1), n]
        for start, end in zip(bounds[:-1], bounds[1:]):
            source = first_rows[start]
            np.multiply(delta[:, source, None, :], row_weight[top + start:top + end, None], out=upper[:, start:end])
            upper[:, start:end] += across[:, source, None, :]
        # upper (2, n, W): a / 500 and -b / 200 at full resolution, or guided (4, n, W): 1 + A and B
        if len(upper) == 4:
            np.multiply(fy, upper[0], out=fx)
            fx += upper[2]
            np.multiply(fy, upper[1], out=fz)
            fz += upper[3]
        else:
            np.add(fy, upper[0], out=fx)
            np.add(fy, upper[1], out=fz)
        np.maximum(fz, 0.0, out=fz)  # kornia: fz.clamp(min=0)
        _f_inverse(fx, scratch, cube)
        _f_inverse(fz, scratch, cube)
        np.subtract(fx, y, out=stacked[..., 0])  # X / Xn - Y
        np.subtract(fz, y, out=stacked[..., 1])  # Z / Zn - Y
        np.add(y, np.float32(0.5) / steps, out=stacked[..., 2])  # + 0.5: rounding to the nearest entry
        np.matmul(stacked, mix, out=linear)
        # below 0 the cast gives 0 or a negative index, above 1 an index past the end: mode="clip"
        # turns both into the table's ends, which is lab_to_rgb's clip to [0, 1]
        np.copyto(index3, linear, casting="unsafe")
        np.take(_SRGB_LUT, index3, out=result[top:bottom], mode="clip")
