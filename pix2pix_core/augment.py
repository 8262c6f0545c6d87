"""Augmentations applied inside the training step, on batches already on the training device.

- `diff_augment`: DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN
  Training"): the same random translation / cutout is applied to everything D sees, real and generated,
  in the D step and the G step alike, and it is differentiable, so G still gets gradients. With 400
  facades D otherwise memorises the training photos; this keeps its judgement about realism. D sees the
  (label map, photo) pair as one tensor, so both images of a pair move together.
- `warp_label_map`: a smooth random displacement of the input label map (nearest sampling: colours stay
  exact palette colours). Users draw rough, wobbly edges; the dataset's edges are ruler-straight.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to `ratio` of its size, filling with zeros (mid-gray), as in DiffAugment."""
    n, _, h, w = x.shape
    shift_y, shift_x = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = torch.randint(-shift_y, shift_y + 1, (n, 1, 1), device=x.device)
    tx = torch.randint(-shift_x, shift_x + 1, (n, 1, 1), device=x.device)
    rows = (torch.arange(h, device=x.device).view(1, h, 1) + ty).clamp(-1, h)  # -1 / h hit the zero padding
    cols = (torch.arange(w, device=x.device).view(1, 1, w) + tx).clamp(-1, w)
    padded = F.pad(x, (1, 1, 1, 1))
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    return padded.permute(0, 2, 3, 1)[batch, rows + 1, cols + 1].permute(0, 3, 1, 2).contiguous(
        memory_format=torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format)


def cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero one random rectangle of `ratio` x the image size per image, as in DiffAugment."""
    n, _, h, w = x.shape
    cut_h, cut_w = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - cut_h % 2), (n, 1, 1), device=x.device)
    cx = torch.randint(0, w + (1 - cut_w % 2), (n, 1, 1), device=x.device)
    rows = torch.arange(h, device=x.device).view(1, h, 1) - cy + cut_h // 2  # position inside the hole
    cols = torch.arange(w, device=x.device).view(1, 1, w) - cx + cut_w // 2
    inside = (rows >= 0) & (rows < cut_h) & (cols >= 0) & (cols < cut_w)
    return x * (~inside).unsqueeze(1).to(x.dtype)


AUGMENTATIONS = {"translation": translation, "cutout": cutout}


def diff_augment(x: torch.Tensor, names: tuple[str, ...]) -> torch.Tensor:
    """Apply the named augmentations in order (no-op for an empty tuple)."""
    for name in names:
        x = AUGMENTATIONS[name](x)
    return x


def warp_label_map(labels: torch.Tensor, pixels: float, grid: int = 6) -> torch.Tensor:
    """Displace a batch of label maps by a smooth random field of at most about `pixels` pixels.

    Offsets are drawn on a coarse `grid` x `grid` lattice and upsampled bicubically, so edges bend
    gently instead of fraying; nearest sampling keeps every colour an exact class colour.
    """
    if pixels <= 0:
        return labels
    n, _, h, w = labels.shape
    coarse = (torch.rand(n, 2, grid, grid, device=labels.device) * 2 - 1) * pixels
    offsets = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True).clamp(-pixels, pixels)
    offsets = offsets * torch.tensor([2.0 / w, 2.0 / h], device=labels.device).view(1, 2, 1, 1)  # pixels -> [-1, 1]
    ys = torch.linspace(-1, 1, h, device=labels.device)
    xs = torch.linspace(-1, 1, w, device=labels.device)
    base = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1).unsqueeze(0)  # (1, H, W, 2) as x, y
    sample_at = base + offsets.permute(0, 2, 3, 1)
    warped = F.grid_sample(labels.float(), sample_at, mode="nearest", padding_mode="border", align_corners=True)
    return warped.to(labels.dtype)
