"""Colour as classification (Zhang, Isola, Efros, "Colorful Image Colorization", ECCV 2016, sec. 2).

A regression loss (L1) on ab averages the plausible colours of an ambiguous object (a red or a green
pepper) into a desaturated one: the sepia look. Predicting a distribution over quantised ab bins and
reading it out with the annealed mean keeps the mode's saturation instead; the class-rebalanced
cross-entropy stops the frequent low-saturation bins (sky, walls, table tops) from drowning the rare
vivid ones.

ab is quantised into 10 x 10 cells centred on multiples of 10 (in real Lab units); only the cells that
some 8-bit sRGB colour falls in (at any lightness) are kept: 261 bins with this project's Lab (kornia's,
D65). The paper keeps 313 from its own, looser gamut test; the extra bins are colours no training target
can have. Everything here is pure functions of tensors; the only cached values are the bin set and its
cell lookup table, both immutable tuples.
"""

from __future__ import annotations

import functools
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .color import AB_SCALE

GRID = 10.0  # bin width in Lab units (paper: 10)
SIGMA = 5.0  # Gaussian width of the soft encoding and of the prior's smoothing, in Lab units (paper: 5)
NEIGHBOURS = 5  # a target pixel is encoded on its 5 nearest bins (paper: 5)
PRIOR_MIX = 0.5  # weight of the uniform distribution mixed into the prior before inverting it (paper: lambda 0.5)
PRIOR_IMAGES = 2000  # at most this many training images make the empirical prior
_CELLS = 12  # the grid of candidate cells spans -120 .. 120 on both axes (sRGB stays within about +-110)

# kornia's rgb_to_xyz rows divided by the D65 white point (X/Xn, Y/Yn, Z/Zn), as rgb_to_lab uses them
_XYZ_OVER_WHITE = (np.array([[0.412453, 0.357580, 0.180423],
                             [0.212671, 0.715160, 0.072169],
                             [0.019334, 0.119193, 0.950227]]) / np.array([[0.95047], [1.0], [1.08883]]))


@functools.lru_cache(maxsize=1)
def _gamut_cells() -> tuple[tuple[int, int], ...]:
    """(a, b) / 10 of every cell some 8-bit sRGB colour falls in, sorted; computed once (0.4 s).

    All 16.7 M colours are converted (kornia's Lab formulas in numpy, one red level at a time), so the set
    is exactly the cells training targets can reach, with no sampling gaps at the gamut's thin edges.
    numpy, not torch: this may first run inside a `torch.device("meta")` block (memory estimates)."""
    levels = np.arange(256) / 255.0
    linear = np.where(levels > 0.04045, ((levels + 0.055) / 1.055) ** 2.4, levels / 12.92)
    green_blue = linear[:, None, None] * _XYZ_OVER_WHITE[:, 1] + linear[None, :, None] * _XYZ_OVER_WHITE[:, 2]
    occupied = np.zeros((2 * _CELLS + 1, 2 * _CELLS + 1), dtype=bool)
    for red in linear:
        xyz = green_blue + red * _XYZ_OVER_WHITE[:, 0]
        f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 4.0 / 29.0)
        a = np.rint(500.0 / GRID * (f[..., 0] - f[..., 1])).astype(np.int64)
        b = np.rint(200.0 / GRID * (f[..., 1] - f[..., 2])).astype(np.int64)
        occupied[a + _CELLS, b + _CELLS] = True
    return tuple((int(i) - _CELLS, int(j) - _CELLS) for i, j in zip(*np.nonzero(occupied)))


def bin_centres() -> torch.Tensor:
    """The in-gamut bin centres, (Q, 2) float32 (a, b) in Lab units; a new tensor on each call."""
    return torch.tensor(_gamut_cells(), dtype=torch.float32) * GRID


def bin_count() -> int:
    """Q, the number of in-gamut bins: the classifier's number of logits."""
    return len(_gamut_cells())


@functools.lru_cache(maxsize=1)
def _cell_to_bin() -> tuple[int, ...]:
    """For every cell of the grid, the index of the in-gamut bin whose centre is nearest its centre.

    For an in-gamut cell that is the cell's own bin, which is also the nearest bin of every point in the
    cell (the cells are the grid's Voronoi cells): a table lookup instead of distances to all Q bins."""
    side = np.arange(-_CELLS, _CELLS + 1) * GRID
    cells = np.stack(np.meshgrid(side, side, indexing="ij"), -1).reshape(-1, 2)
    centres = np.asarray(_gamut_cells(), dtype=np.float64) * GRID
    return tuple(int(i) for i in ((cells[:, None] - centres[None]) ** 2).sum(-1).argmin(1))


def nearest_bin(ab: torch.Tensor) -> torch.Tensor:
    """Index of the nearest in-gamut bin of each pixel: ab (N, 2, H, W) in Lab units -> (N, H, W) int64."""
    cell = torch.round(ab / GRID).long().clamp(-_CELLS, _CELLS) + _CELLS
    table = torch.tensor(_cell_to_bin(), dtype=torch.long, device=ab.device)
    return table[cell[:, 0] * (2 * _CELLS + 1) + cell[:, 1]]


def soft_encode(ab: torch.Tensor, centres: torch.Tensor, chunk: int = 1 << 16) -> tuple[torch.Tensor, torch.Tensor]:
    """The soft target of each pixel: its NEIGHBOURS nearest bins and their Gaussian weights (sigma SIGMA),
    normalised to sum 1 (paper sec. 2.1: a one-hot target would punish a near miss as much as a far one).

    ab (N, 2, H, W) in Lab units -> (indices, weights), each (N, NEIGHBOURS, H, W), nearest bin first.
    Distances to all Q bins are taken `chunk` pixels at a time, to bound memory at large batches."""
    n, _, height, width = ab.shape
    points = ab.detach().float().permute(0, 2, 3, 1).reshape(-1, 2)
    centres = centres.float().to(points.device)
    indices, weights = [], []
    for part in points.split(chunk):
        squared = torch.cdist(part, centres).square()
        nearest, index = squared.topk(NEIGHBOURS, dim=1, largest=False)  # sorted: nearest first
        indices.append(index)
        weights.append(torch.softmax(-nearest / (2 * SIGMA ** 2), dim=1))  # exp(-d^2 / 2 s^2), normalised
    indices, weights = (torch.cat(t).reshape(n, height, width, NEIGHBOURS).permute(0, 3, 1, 2)
                        for t in (indices, weights))
    return indices, weights


def annealed_mean(logits: torch.Tensor, centres: torch.Tensor, temperature: float) -> torch.Tensor:
    """ab in Lab units from bin logits (N, Q, H, W): the mean of softmax(logits / T) over the bin centres.

    T = 1 is the mean (desaturated, like L1), T -> 0 the mode (vivid but patchy); the paper's T = 0.38
    keeps the mode's saturation with the mean's spatial coherence (sec. 2.3)."""
    probabilities = torch.softmax(logits.float() / temperature, dim=1)
    weight = centres.float().t().reshape(2, -1, 1, 1)  # a 1x1 convolution: fine for ONNX and channels_last
    return F.conv2d(probabilities, weight)


def smooth(p: torch.Tensor, centres: torch.Tensor, sigma: float = SIGMA) -> torch.Tensor:
    """p spread over the ab plane by a Gaussian of width `sigma`, each bin's mass shared among the in-gamut
    bins, so the result still sums to 1 (the paper smooths its ImageNet histogram the same way)."""
    squared = torch.cdist(centres.double(), centres.double()).square()
    kernel = torch.exp(-squared / (2 * sigma ** 2))
    return p.double() @ (kernel / kernel.sum(dim=1, keepdim=True))


def rebalancing_weights(p: torch.Tensor, centres: torch.Tensor, mix: float = PRIOR_MIX) -> torch.Tensor:
    """Per-bin loss weights w proportional to 1 / ((1 - mix) smooth(p) + mix / Q), scaled so that
    E_p[w] = sum_q p_q w_q = 1 (paper eq. 3-4): rare vivid bins weigh more, and the average pixel still
    weighs 1, so lambda_class keeps the scale of a plain cross-entropy. (Q,) float32."""
    p = p.double() / p.double().sum()
    w = 1.0 / ((1 - mix) * smooth(p, centres) + mix / len(p))
    return (w / (p * w).sum()).float()


def pixel_weights(target_ab: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """The rebalancing weight of each pixel's nearest bin: (N, 2, H, W) normalised ab -> (N, H, W), for a
    rebalanced regression loss (colour_loss l1_rebalanced). No gradient flows through the weights."""
    with torch.no_grad():
        return weights.to(target_ab.device)[nearest_bin(target_ab.float() * AB_SCALE)]


def rebalanced_cross_entropy(logits: torch.Tensor, target_ab: torch.Tensor, centres: torch.Tensor,
                             weights: torch.Tensor) -> torch.Tensor:
    """The paper's loss (eq. 2): per-pixel cross-entropy between the bin logits (N, Q, H, W) and the soft
    encoding of the target ab (N, 2, H, W in the project's normalised range), weighted by the rebalancing
    weight of the target's nearest bin, averaged over pixels."""
    target = target_ab.float() * AB_SCALE
    indices, soft = soft_encode(target, centres)
    log_probabilities = torch.log_softmax(logits.float(), dim=1).gather(1, indices)
    cross_entropy = -(soft * log_probabilities).sum(dim=1)
    return (weights.to(logits.device)[indices[:, 0]] * cross_entropy).mean()


def colour_prior(targets: Sequence[torch.Tensor]) -> torch.Tensor:
    """The empirical distribution p of the nearest bins of the pixels of `targets` (each (2, H, W) or
    (N, 2, H, W), normalised ab), as (Q,) float64 summing to 1."""
    counts = torch.zeros(bin_count(), dtype=torch.float64)
    for ab in targets:
        ab = ab.float() * AB_SCALE
        counts += torch.bincount(nearest_bin(ab if ab.dim() == 4 else ab[None]).flatten(),
                                 minlength=len(counts)).double()
    if counts.sum() == 0:
        raise ValueError("no target pixels to estimate the colour prior from")
    return counts / counts.sum()


def dataset_prior(dataset, limit: int = PRIOR_IMAGES, cell: int = 1) -> torch.Tensor:
    """colour_prior of at most `limit` training examples, evenly spaced through `dataset` (its
    `dataset[i]["target"]`, at the training crop), each averaged over `cell` x `cell` cells first: the loss
    sees the target averaged over the logits' cells (averaging desaturates), so the prior that weighs it
    must count the same cells. A bounded, deterministic cost that draws no random numbers, so the training
    run that follows is unchanged by it."""
    count = len(dataset)
    picks = range(count) if count <= limit else (i * count // limit for i in range(limit))
    return colour_prior(torch.nn.functional.avg_pool2d(dataset[i]["target"].float()[None], cell) for i in picks)
