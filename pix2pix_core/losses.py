"""The adversarial losses (paper eq. 1 and two common alternatives) and pix2pixHD feature matching.

Discriminators may return one logit map or, with several scales, a list of them: each loss averages
over scales, so adding scales does not change the balance between the GAN term and lambda * L1.
"""

from __future__ import annotations

from typing import Sequence, Union

import torch
from torch import nn
from torch.nn import functional as F

Prediction = Union[torch.Tensor, Sequence[torch.Tensor]]


def _scales(prediction: Prediction) -> list[torch.Tensor]:
    return [prediction] if torch.is_tensor(prediction) else list(prediction)


class GANLoss(nn.Module):
    """vanilla: BCE with logits (the paper); lsgan: least squares; hinge: the SNGAN / pix2pixHD-era hinge.

    Hides the real/fake target plumbing. Hinge is asymmetric: D is trained with max(0, 1 -+ logit), and G
    with -logit, so `for_discriminator` says which of the two is meant (the other modes ignore it).
    """

    def __init__(self, mode: str = "vanilla"):
        super().__init__()
        if mode not in ("vanilla", "lsgan", "hinge"):
            raise ValueError(f"unknown gan mode {mode!r}")
        self.mode = mode

    def _one(self, logits: torch.Tensor, target_is_real: bool, for_discriminator: bool) -> torch.Tensor:
        logits = logits.float()
        if self.mode == "hinge":
            if for_discriminator:
                return F.relu(1.0 - logits).mean() if target_is_real else F.relu(1.0 + logits).mean()
            return -logits.mean()
        target = torch.ones_like(logits) if target_is_real else torch.zeros_like(logits)
        if self.mode == "lsgan":
            return F.mse_loss(logits, target)
        return F.binary_cross_entropy_with_logits(logits, target)

    def forward(self, prediction: Prediction, target_is_real: bool, for_discriminator: bool = True) -> torch.Tensor:
        losses = [self._one(p, target_is_real, for_discriminator) for p in _scales(prediction)]
        return torch.stack(losses).mean()


def feature_matching_loss(fake_features: Sequence, real_features: Sequence) -> torch.Tensor:
    """pix2pixHD eq. 4: L1 between D's hidden activations on generated and real pairs, layer by layer.

    Each argument is, per scale, the list a PatchGAN returns with `features=True` (hidden activations,
    then logits; the logits are left out). Weighted as in pix2pixHD (each of the L hidden layers 4 / L,
    each scale 1 / num_D), so lambda_feat = 10 means what it means there; real activations are targets.
    """
    fake_scales = [fake_features] if torch.is_tensor(fake_features[0]) else fake_features
    real_scales = [real_features] if torch.is_tensor(real_features[0]) else real_features
    terms = [F.l1_loss(fake.float(), real.detach().float())
             for fake_layers, real_layers in zip(fake_scales, real_scales)
             for fake, real in zip(fake_layers[:-1], real_layers[:-1])]
    return 4.0 * torch.stack(terms).mean()


def logits_of(features: Sequence) -> list[torch.Tensor]:
    """The logit maps out of `features=True` outputs (one list per scale, or one list for a single D)."""
    scales = [features] if torch.is_tensor(features[0]) else features
    return [layers[-1] for layers in scales]
