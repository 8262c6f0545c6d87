"""Network shapes, the U-Net's skip structure and the PatchGAN's receptive field."""

import pytest
import torch
from torch import nn

from pix2pix_core.config import GENERATORS, TrainConfig
from pix2pix_core.networks import (NLayerDiscriminator, UnetGenerator, UnetSkipBlock, build_discriminator,
                                   build_generator, use_batch_statistics)


# Every generator at 256 and 128 px, except the 8-halving ones at 128 (their innermost map would be 0x0).
SHAPE_CASES = [(net_g, size) for net_g in GENERATORS for size in (256, 128)
               if not (net_g.endswith("_256") and size == 128)]


@pytest.mark.parametrize("net_g,size", SHAPE_CASES)
def test_generator_shapes(net_g, size):
    config = TrainConfig(netG=net_g, ngf=4)
    out = build_generator(config).eval()(torch.randn(1, 3, size, size))
    assert out.shape == (1, 3, size, size)
    assert out.abs().max() <= 1.0  # tanh output


def test_colorize_generator_maps_lightness_to_ab():
    config = TrainConfig(task="colorize", netG="unet_128", ngf=4)
    assert build_generator(config)(torch.randn(2, 1, 128, 128)).shape == (2, 2, 128, 128)


@pytest.mark.parametrize("net_d,expected", [("basic", (1, 1, 30, 30)), ("pixel", (1, 1, 256, 256)),
                                            ("image", (1, 1, 1, 1))])
def test_discriminator_shapes(net_d, expected):
    config = TrainConfig(netD=net_d, ndf=4)
    d = build_discriminator(config)
    assert d(torch.randn(1, 6, 256, 256)).shape == expected


def test_discriminator_shapes_at_128():
    d = build_discriminator(TrainConfig(ndf=4))
    assert d(torch.randn(1, 6, 128, 128)).shape == (1, 1, 14, 14)


def test_conditional_and_unconditional_input_channels():
    cond = build_discriminator(TrainConfig(ndf=4))
    uncond = build_discriminator(TrainConfig(ndf=4, conditional_D=False))
    assert cond.model[0].in_channels == 6  # sees (input, output)
    assert uncond.model[0].in_channels == 3  # sees the output only


def test_unet_skip_structure():
    """8 levels; each non-outermost level concatenates its input with its output (skip)."""
    g = UnetGenerator(3, 3, num_downs=8, ngf=4)
    blocks = [m for m in g.modules() if isinstance(m, UnetSkipBlock)]
    assert len(blocks) == 8
    x = torch.randn(1, 4, 128, 128)
    inner = blocks[1]  # the level just inside the outermost: input has ngf channels
    assert inner(x).shape == (1, 8, 128, 128)  # ngf (skip) + ngf (decoder) channels
    dropouts = [b for b in blocks if any(isinstance(m, nn.Dropout) for m in b.model.children())]
    assert len(dropouts) == 3  # the paper's noise: dropout in the 3 innermost decoder blocks after the bottleneck


def test_encoder_decoder_has_no_skips():
    g = build_generator(TrainConfig(netG="encoder_decoder_256", ngf=4))
    blocks = [m for m in g.modules() if isinstance(m, UnetSkipBlock)]
    assert not any(b.skip for b in blocks)
    assert g(torch.randn(1, 3, 256, 256)).shape == (1, 3, 256, 256)


def receptive_field(net: nn.Module, size: int = 256) -> int:
    """Measured: the side of the input region that influences one output logit (via gradients)."""
    net = net.eval()
    x = torch.randn(1, net.model[0].in_channels, size, size, requires_grad=True)
    out = net(x)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    rows = torch.nonzero(x.grad.abs().sum(dim=(0, 1, 3)))
    return int(rows.max() - rows.min() + 1)


@pytest.mark.parametrize("n_layers,expected", [(3, 70), (1, 16), (2, 34)])
def test_patchgan_receptive_field(n_layers, expected):
    torch.manual_seed(0)
    net = NLayerDiscriminator(6, ndf=4, n_layers=n_layers, norm=nn.Identity)
    assert receptive_field(net) == expected


def test_weight_init_is_normal_002():
    g = build_generator(TrainConfig(ngf=16))
    weights = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, nn.Conv2d)])
    assert abs(weights.std().item() - 0.02) < 0.002
    assert abs(weights.mean().item()) < 0.002


def test_batch_statistics_mode_leaves_running_stats_alone():
    """Per-image statistics (the official test script's train-mode batch norm) without touching the running ones."""
    g = build_generator(TrainConfig(netG="unet_128", ngf=4))
    torch.manual_seed(0)
    for m in g.modules():  # running statistics far from any one image's, so the two modes differ
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(2, 3)
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        running = g.eval()(x)
        use_batch_statistics(g.eval())
        norms = [m for m in g.modules() if isinstance(m, nn.BatchNorm2d)]
        assert norms and all(m.training and not m.track_running_stats for m in norms)
        before = [b.clone() for name, b in g.named_buffers() if "running_mean" in name]
        per_image = g(x)
    after = [b for name, b in g.named_buffers() if "running_mean" in name]
    assert before and all(torch.equal(a, b) for a, b in zip(before, after))
    assert not torch.allclose(per_image, running, atol=1e-3)


def test_seeded_dropouts_are_found_again_by_a_second_translator():
    """Two Translators on one network (the speed benchmark's variants): the second must still set the seed."""
    from pix2pix_core.networks import SeededDropout, seeded_dropouts

    g = build_generator(TrainConfig(netG="unet_128", ngf=4))
    plain = [m for m in g.modules() if type(m) is nn.Dropout]
    first, second = seeded_dropouts(g), seeded_dropouts(g)
    assert len(plain) == len(first) == 2 and all(isinstance(m, SeededDropout) for m in first)
    assert all(a is b for a, b in zip(first, second)) and not any(type(m) is nn.Dropout for m in g.modules())
