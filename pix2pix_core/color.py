"""Conversions between PIL images, network tensors in [-1, 1], and normalised Lab.

Colorization works in Lab as the official colorization mode does: the network sees the lightness L
and predicts the two colour channels ab, so the output can never change the photo's structure.
"""

from __future__ import annotations

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
