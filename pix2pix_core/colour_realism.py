"""How believable colorized photos are in colour alone: a colour two-sample test and colour detail.

- `colour_features`: one vector per photo of Lab colour statistics: the a and b histograms, the
  chroma-weighted hue histogram, the chroma histogram, and the mean and spread of a, b and chroma.
  `realism.two_sample_accuracy` on these vectors tells real from colorized photos (0.5 = their colours
  are indistinguishable; gray photos score 1.0); the same test between real photos of two splits is the
  floor this few photos can reach.
- `colour_detail`: the mean magnitude of the a/b gradient. Colorized over real above 1 means colour
  speckle (the "rainbow" failure on textured food); well below 1, colour washed over edges.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np

from .color import pil_to_unit, rgb_to_lab_normalized, AB_SCALE
from .images import ImageSource, open_image

AB_RANGE = 80.0  # histogram range of a and b, Lab units (food photos stay well inside)
AB_BINS, HUE_BINS, CHROMA_BINS = 16, 12, 8


def _lab_ab(photo: ImageSource) -> np.ndarray:
    """(2, H, W) float64 Lab a and b of a photo, read as everything else reads photos (`images.open_image`:
    transparency on white, 16-bit scaled), whether it comes as a file or as a PIL image."""
    _, ab = rgb_to_lab_normalized(pil_to_unit(open_image(photo))[None])
    return ab[0].double().numpy() * AB_SCALE


def colour_features(photos: Sequence[ImageSource]) -> np.ndarray:
    """(N, D) colour statistics, one row per photo (see the module doc)."""
    return np.asarray([_features_of(_lab_ab(photo)) for photo in photos], np.float64)


def _features_of(ab: np.ndarray) -> np.ndarray:
    """One photo's colour_features row from its (2, H, W) Lab a and b."""
    a, b = ab
    chroma = np.hypot(a, b)
    hue = np.arctan2(b, a)
    hist_a = np.histogram(a, AB_BINS, (-AB_RANGE, AB_RANGE))[0] / a.size
    hist_b = np.histogram(b, AB_BINS, (-AB_RANGE, AB_RANGE))[0] / b.size
    hist_hue = np.histogram(hue, HUE_BINS, (-np.pi, np.pi), weights=chroma)[0] / max(chroma.sum(), 1e-6)
    hist_chroma = np.histogram(chroma, CHROMA_BINS, (0.0, AB_RANGE))[0] / chroma.size
    moments = [a.mean(), b.mean(), a.std(), b.std(), chroma.mean(), chroma.std()]
    return np.concatenate([hist_a, hist_b, hist_hue, hist_chroma, moments])


# Rough colour names of the 30-degree Lab hue bins of `colour_features`, from -180 degrees (a < 0, b = 0);
# e.g. sRGB red is at 40 degrees, orange 73, yellow 103, green 136, cyan -164, cornflower blue -79, blue -54.
HUE_NAMES = ("cyan/teal", "sky blue/cyan", "steel blue", "blue", "blue/purple", "magenta", "pink", "red",
             "orange", "yellow", "green", "green/teal")


def colour_feature_names() -> list[str]:
    """What each column of `colour_features` measures, in words, in its order."""
    def ranges(bins: int, low: float, high: float) -> list[tuple[float, float]]:
        edges = np.linspace(low, high, bins + 1)
        return list(zip(edges[:-1], edges[1:]))

    names = [f"share of pixels with a in [{lo:g}, {hi:g})" for lo, hi in ranges(AB_BINS, -AB_RANGE, AB_RANGE)]
    names += [f"share of pixels with b in [{lo:g}, {hi:g})" for lo, hi in ranges(AB_BINS, -AB_RANGE, AB_RANGE)]
    names += [f"share of chroma at hue [{lo:g}, {hi:g}) degrees ({HUE_NAMES[i]})"
              for i, (lo, hi) in enumerate(ranges(HUE_BINS, -180, 180))]
    names += [f"share of pixels with chroma in [{lo:g}, {hi:g})" for lo, hi in ranges(CHROMA_BINS, 0, AB_RANGE)]
    return names + ["mean a", "mean b", "spread of a", "spread of b", "mean chroma", "spread of chroma"]


def colour_gaps(generated: np.ndarray, real: np.ndarray, top: int = 5) -> list[tuple[str, float, float, float]]:
    """The `top` colour statistics furthest apart between two sets of `colour_features` rows: (what,
    difference of the means in pooled standard deviations, real mean, generated mean), largest first.
    What a two-sample classifier can tell them apart by: e.g. a colorizer's missing blues."""
    spread = np.sqrt((generated.var(axis=0) + real.var(axis=0)) / 2)
    effect = (generated.mean(axis=0) - real.mean(axis=0)) / np.where(spread > 0, spread, np.inf)
    order = np.argsort(-np.abs(effect))[:top]
    names = colour_feature_names()
    return [(names[i], float(effect[i]), float(real[:, i].mean()), float(generated[:, i].mean())) for i in order]


def colour_detail(photos: Sequence[ImageSource]) -> float:
    """Mean over photos of the mean a/b gradient magnitude (forward differences, Lab units per pixel).
    A photo one pixel wide or high has no such gradient and is left out (its empty mean was NaN, and made
    the whole mean NaN); NaN only when no photo has one."""
    return _mean_detail([_detail_of(_lab_ab(photo)) for photo in photos])


def _detail_of(ab: np.ndarray) -> float:
    """One photo's mean a/b gradient magnitude; NaN for a photo one pixel wide or high (it has none)."""
    if min(ab.shape[1:]) < 2:
        return float("nan")
    dx, dy = np.diff(ab, axis=2)[:, :-1, :], np.diff(ab, axis=1)[:, :, :-1]
    return float(np.sqrt((dx ** 2 + dy ** 2).sum(axis=0)).mean())


def _mean_detail(values: Sequence[float]) -> float:
    kept = [value for value in values if not math.isnan(value)]
    return float(np.mean(kept)) if kept else float("nan")


@dataclasses.dataclass(frozen=True)
class ColourStats:
    """What the colour realism metrics read of one photo: its colour_features row and its colour detail. A
    `test` keeps these (a few hundred numbers) instead of each full-size output and photo until the end."""

    features: np.ndarray
    detail: float


def colour_stats(photo: ImageSource) -> ColourStats:
    """One photo's ColourStats, from one Lab conversion."""
    ab = _lab_ab(photo)
    return ColourStats(_features_of(ab), _detail_of(ab))


def colour_realism_metrics(generated: Sequence[ImageSource], real: Sequence[ImageSource],
                           other_real: Sequence[ImageSource] | None = None, seed: int = 0,
                           paired: bool = True) -> dict:
    """The colorize `test` keys: colour_two_sample_acc (mean over classifier seeds `seed`, `seed + 1`;
    real vs colorized), its floor colour_two_sample_acc_floor (other_real vs real, when given), and
    colour_detail_ratio = colour_detail(generated) / colour_detail(real) with both parts.
    paired: generated[i] is real[i] colorized (as in `test`): the two-sample test keeps pairs together
    (`realism.two_sample_accuracy`); the floor's photos are unrelated, never paired."""
    def stats(photos: Sequence[ImageSource]) -> list[ColourStats]:
        return [colour_stats(photo) for photo in photos]

    return colour_realism_of_stats(stats(generated), stats(real), None if other_real is None else stats(other_real),
                                   seed, paired)


def colour_realism_of_stats(generated: Sequence[ColourStats], real: Sequence[ColourStats],
                            other_real: Sequence[ColourStats] | None = None, seed: int = 0,
                            paired: bool = True) -> dict:
    """colour_realism_metrics from each photo's ColourStats (`colour_stats`), taken as the photos were scored."""
    from .realism import two_sample_accuracy

    def features(stats: Sequence[ColourStats]) -> np.ndarray:
        return np.asarray([item.features for item in stats], np.float64)

    reference = features(real)
    pairs = {"": features(generated)}
    if other_real is not None:
        pairs["_floor"] = features(other_real)
    metrics: dict = {}
    for suffix, rows in pairs.items():
        accuracies = [two_sample_accuracy(rows, reference, seed=s, paired=paired and not suffix)
                      for s in (seed, seed + 1)]
        metrics[f"colour_two_sample_acc{suffix}"] = float(np.mean(accuracies))
        metrics[f"colour_two_sample_acc_seeds{suffix}"] = accuracies
    detail_output = _mean_detail([item.detail for item in generated])
    detail_real = _mean_detail([item.detail for item in real])
    metrics.update({"colour_detail_output": detail_output, "colour_detail_target": detail_real,
                    "colour_detail_ratio": detail_output / detail_real if detail_real > 0 else float("nan")})
    return metrics
