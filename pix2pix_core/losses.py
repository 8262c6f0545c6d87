"""The adversarial loss of the paper (eq. 1) in its two common forms."""

from __future__ import annotations

import torch
from torch import nn


class GANLoss(nn.Module):
    """vanilla: BCE with logits (the paper); lsgan: least squares. Hides the real/fake target tensors."""

    def __init__(self, mode: str = "vanilla"):
        super().__init__()
        if mode not in ("vanilla", "lsgan"):
            raise ValueError(f"unknown gan mode {mode!r}")
        self.loss = nn.BCEWithLogitsLoss() if mode == "vanilla" else nn.MSELoss()

    def forward(self, prediction: torch.Tensor, target_is_real: bool) -> torch.Tensor:
        prediction = prediction.float()
        target = torch.ones_like(prediction) if target_is_real else torch.zeros_like(prediction)
        return self.loss(prediction, target)
