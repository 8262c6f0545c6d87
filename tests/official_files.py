"""Official-layout pix2pix generator files made from our own networks, for the tests of import-official
(test_official) and of exporting an imported model (test_export_formats)."""

from __future__ import annotations

import torch

from pix2pix_core.config import TrainConfig
from pix2pix_core.networks import build_generator
from pix2pix_core.official import official_key

NGF = 4  # tiny but the full 8-level unet_256 (the published models' netG); 256 px input


def our_generator(task="facades", netG="unet_256", ngf=NGF, seed=0):
    """Our generator with random weights and non-trivial batch-norm statistics."""
    torch.manual_seed(seed)
    net = build_generator(TrainConfig(task=task, netG=netG, ngf=ngf))
    with torch.no_grad():
        for name, value in net.state_dict().items():
            if name.endswith("running_mean"):
                value.normal_(0, 0.1)
            elif name.endswith("running_var"):
                value.uniform_(0.5, 2.0)
            elif name.endswith("num_batches_tracked"):
                value.fill_(1234)
    return net


def official_state(net, prefix="", drop_counters=False):
    """Our weights under the official key names (the mapping in reverse), as the official code saves them."""
    return {prefix + official_key(k): v.clone() for k, v in net.state_dict().items()
            if not (drop_counters and k.endswith("num_batches_tracked"))}
