"""The pix2pix networks: U-Net / ResNet / encoder-decoder generators and PatchGAN discriminators.

Definitions follow the official PyTorch code (junyanz/pytorch-CycleGAN-and-pix2pix,
models/networks.py) so that widths, kernel sizes and receptive fields match the paper.
"""

from __future__ import annotations

import functools
from typing import Optional

import torch
from torch import nn

from . import colour_bins
from .color import AB_SCALE
from .config import TrainConfig


def norm_layer(kind: str):
    """Batch norm (the paper's choice) or instance norm (no affine, no running stats)."""
    if kind == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if kind == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    raise ValueError(f"unknown norm {kind!r}")


def conv_bias(norm) -> bool:
    """Convolutions before batch norm need no bias (BN's shift replaces it); before instance norm
    without affine parameters they do, as in the official code."""
    return isinstance(norm, functools.partial) and norm.func is nn.InstanceNorm2d


def init_weights(net: nn.Module, gain: float = 0.02) -> nn.Module:
    """Paper sec. 6.2: weights from N(0, 0.02); batch-norm scales from N(1, 0.02)."""

    def init(m: nn.Module) -> None:
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)

    return net.apply(init)


class UnetSkipBlock(nn.Module):
    """One level of the U-Net (paper sec. 3.2.1, fig. 3): down, the inner levels, up, then concat.

    With `skip=False` the concatenation is dropped, which gives the paper's encoder-decoder ablation.
    """

    def __init__(self, outer_nc, inner_nc, input_nc=None, submodule=None, outermost=False,
                 innermost=False, norm=nn.BatchNorm2d, dropout=False, skip=True, output_nc=None, tanh=True):
        super().__init__()
        self.outermost = outermost
        self.skip = skip
        use_bias = conv_bias(norm)
        input_nc = outer_nc if input_nc is None else input_nc
        down_conv = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
        up_in = inner_nc if (innermost or not skip) else inner_nc * 2
        if outermost:
            up_conv = nn.ConvTranspose2d(up_in, output_nc or outer_nc, kernel_size=4, stride=2, padding=1)
            # tanh maps to the image range [-1, 1]; a segmenter wants raw logits instead (tanh=False)
            layers = [down_conv, submodule, nn.ReLU(), up_conv, nn.Tanh() if tanh else nn.Identity()]
        elif innermost:
            # no norm on the 1x1 bottleneck: batch statistics of one pixel are undefined
            up_conv = nn.ConvTranspose2d(up_in, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
            layers = [nn.LeakyReLU(0.2), down_conv, nn.ReLU(), up_conv, norm(outer_nc)]
        else:
            up_conv = nn.ConvTranspose2d(up_in, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
            layers = [nn.LeakyReLU(0.2), down_conv, norm(inner_nc), submodule, nn.ReLU(), up_conv, norm(outer_nc)]
            if dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost or not self.skip:
            return self.model(x)
        return torch.cat([x, self.model(x)], dim=1)


class UnetGenerator(nn.Module):
    """U-Net built from the innermost block outwards; `num_downs` halvings (8 for 256x256 input)."""

    def __init__(self, input_nc, output_nc, num_downs=8, ngf=64, norm=nn.BatchNorm2d, dropout=True,
                 skip=True, tanh=True):
        super().__init__()
        block = UnetSkipBlock(ngf * 8, ngf * 8, innermost=True, norm=norm, skip=skip)
        for _ in range(num_downs - 5):  # the dropout blocks: the paper's noise z
            block = UnetSkipBlock(ngf * 8, ngf * 8, submodule=block, norm=norm, dropout=dropout, skip=skip)
        for outer in (4, 2, 1):
            block = UnetSkipBlock(ngf * outer, ngf * outer * 2, submodule=block, norm=norm, skip=skip)
        self.model = UnetSkipBlock(ngf, ngf, input_nc=input_nc, output_nc=output_nc, submodule=block,
                                   outermost=True, norm=norm, skip=skip, tanh=tanh)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class ResnetBlock(nn.Module):
    """Residual block with reflection padding (Johnson et al.), used by the ResNet generator."""

    def __init__(self, dim, norm, use_bias):
        super().__init__()
        self.block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=use_bias), norm(dim), nn.ReLU(),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=use_bias), norm(dim),
        )

    def forward(self, x):
        return x + self.block(x)


class ResnetGenerator(nn.Module):
    """ResNet generator: 2 stride-2 downsamplings, `n_blocks` residual blocks, 2 upsamplings."""

    def __init__(self, input_nc, output_nc, ngf=64, norm=nn.BatchNorm2d, n_blocks=9, tanh=True):
        super().__init__()
        use_bias = conv_bias(norm)
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, bias=use_bias), norm(ngf), nn.ReLU()]
        for i in range(2):
            mult = 2 ** i
            layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=use_bias),
                       norm(ngf * mult * 2), nn.ReLU()]
        layers += [ResnetBlock(ngf * 4, norm, use_bias) for _ in range(n_blocks)]
        for i in range(2):
            mult = 2 ** (2 - i)
            layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1,
                                          bias=use_bias), norm(ngf * mult // 2), nn.ReLU()]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh() if tanh else nn.Identity()]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


class NLayerDiscriminator(nn.Module):
    """PatchGAN (paper sec. 3.2.2): classifies each overlapping patch as real or fake.

    n_layers=3 gives the 70x70 receptive field the paper uses by default; n_layers=1 gives 16x16.
    `forward(x, features=True)` also returns every hidden activation (for pix2pixHD feature matching).
    """

    def __init__(self, input_nc, ndf=64, n_layers=3, norm=nn.BatchNorm2d):
        super().__init__()
        use_bias = conv_bias(norm) or norm is None
        layers = [nn.Conv2d(input_nc, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2 ** n, 8)
            stride = 2 if n < n_layers else 1
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=stride, padding=1, bias=use_bias),
                       norm(ndf * mult) if norm else nn.Identity(), nn.LeakyReLU(0.2)]
        layers += [nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1)]  # one logit per patch
        self.model = nn.Sequential(*layers)

    def forward(self, x, features: bool = False):
        if not features:
            return self.model(x)
        hidden = []
        for layer in self.model:
            x = layer(x)
            if isinstance(layer, nn.LeakyReLU):
                hidden.append(x)
        return hidden + [x]  # activations after each block, then the patch logits


class MultiscaleDiscriminator(nn.Module):
    """pix2pixHD's multi-scale D: the same PatchGAN at full, 1/2, 1/4 ... resolution (Wang et al. 2018).

    The coarse scales see global structure (a whole floor, the roof line) with the receptive field of a
    70x70 PatchGAN; the full-resolution one keeps judging texture. Returns one output per scale.
    """

    def __init__(self, input_nc, ndf=64, n_layers=3, norm=nn.BatchNorm2d, num_D=2):
        super().__init__()
        self.scales = nn.ModuleList(NLayerDiscriminator(input_nc, ndf, n_layers, norm) for _ in range(num_D))
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    def forward(self, x, features: bool = False):
        outputs = []
        for index, net in enumerate(self.scales):
            if index:
                x = self.downsample(x)
            outputs.append(net(x, features))
        return outputs


class PixelDiscriminator(nn.Module):
    """PixelGAN (1x1 patches): judges colour statistics only, no structure (paper fig. 6)."""

    def __init__(self, input_nc, ndf=64, norm=nn.BatchNorm2d):
        super().__init__()
        use_bias = conv_bias(norm) or norm is nn.Identity
        self.model = nn.Sequential(
            nn.Conv2d(input_nc, ndf, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(ndf, ndf * 2, 1, bias=use_bias), norm(ndf * 2), nn.LeakyReLU(0.2),
            nn.Conv2d(ndf * 2, 1, 1),
        )

    def forward(self, x):
        return self.model(x)


class ImageDiscriminator(nn.Module):
    """ImageGAN: a deep PatchGAN whose patch logits are averaged into one logit per image."""

    def __init__(self, input_nc, ndf=64, norm=nn.BatchNorm2d):
        super().__init__()
        self.patches = NLayerDiscriminator(input_nc, ndf, n_layers=6, norm=norm)

    def forward(self, x):
        return self.patches(x).mean(dim=(2, 3), keepdim=True)


def guided_upsample(ab: torch.Tensor, guide: torch.Tensor, stride: int, radius: int = 1,
                    eps: float = 5e-3) -> torch.Tensor:
    """ab at 1/stride resolution (N, 2, H/stride, W/stride) to the guide's size (N, 1, H, W), following the
    guide's edges: the fast guided filter (He & Sun 2015) in torch, differentiable, so it can train inside a
    generator (`color.guided_coefficients` is the numpy one the Translator uses at full resolution). Within
    each (2 radius + 1)^2 window of the low-resolution grid, ab is fitted as A * guide + B; A and B are
    box-averaged, upsampled bilinearly and applied to the full-resolution guide. `eps` is in the guide's
    units squared (normalised L spans [-1, 1] over L 0-100: 5e-3 is about 3.5 L units of contrast).
    Computed in float32 whatever the autocast (variances in bf16 are noise). A constant ab comes back
    constant."""
    low = nn.functional.avg_pool2d(guide.float(), stride)
    ab = ab.float()

    def box(t):
        return nn.functional.avg_pool2d(t, 2 * radius + 1, stride=1, padding=radius, count_include_pad=False)

    mean_i, mean_p = box(low), box(ab)
    variance = (box(low * low) - mean_i * mean_i).clamp_min(0)
    a = (box(ab * low) - mean_i * mean_p) / (variance + eps)
    b = mean_p - a * mean_i
    size = guide.shape[-2:]
    a, b = (nn.functional.interpolate(box(t), size=size, mode="bilinear", align_corners=False) for t in (a, b))
    return a * guide.float() + b


class ColourClassifier(nn.Module):
    """A generator that classifies colour into the in-gamut ab bins (Zhang et al. 2016) and still returns ab.

    The U-Net (or ResNet) ends in `features` channels at full resolution; the head averages them over
    `stride` x `stride` cells and maps them to one logit per bin, so the bins are predicted at 1/stride of
    the resolution, as the paper does (1/4): writing 261 logits at every pixel made a 128 px step 13x
    slower than L1 (1.7 vs 0.125 s). `forward(L)` is the annealed-mean readout, upsampled to the input size
    (bilinearly, or with `upsample="guided"` by `guided_upsample` on the input lightness), in the project's
    normalised ab range, so D, L1, samples, the Translator, EMA and every export see an ordinary colorizer.
    `logits(L)` gives the (N, Q, H/stride, W/stride) bin logits; training takes both from one pass with
    `forward(L, with_logits=True)` (through DDP). The bin centres (Lab units) are a buffer, so they travel in
    checkpoints and exports."""

    def __init__(self, net: nn.Module, features: int, centres: torch.Tensor, temperature: float, stride: int = 4,
                 upsample: str = "bilinear"):
        super().__init__()
        self.net = net
        self.stride = stride
        self.guided = upsample == "guided"
        self.head = nn.Sequential(nn.AvgPool2d(stride), nn.ReLU(), nn.Conv2d(features, len(centres), 1))
        self.temperature = float(temperature)
        self.register_buffer("centres", centres.float())

    def logits(self, lightness: torch.Tensor) -> torch.Tensor:
        return self.head(self.net(lightness))

    def readout(self, logits: torch.Tensor) -> torch.Tensor:
        """Normalised ab (about [-1, 1]) from bin logits, at the logits' resolution: the annealed mean."""
        return colour_bins.annealed_mean(logits, self.centres, self.temperature) / AB_SCALE

    def forward(self, lightness: torch.Tensor, with_logits: bool = False):
        logits = self.logits(lightness)
        if self.guided:
            ab = guided_upsample(self.readout(logits), lightness, self.stride)
        else:
            ab = nn.functional.interpolate(self.readout(logits), size=lightness.shape[-2:], mode="bilinear",
                                           align_corners=False)
        return (ab, logits) if with_logits else ab


def build_generator(config: TrainConfig) -> nn.Module:
    """The generator named by `config.netG`, initialised as in the paper. With colour_loss classification
    the same network ends in ngf feature channels (no tanh) inside a ColourClassifier."""
    norm = norm_layer(config.norm)
    classify = config.colour_loss == "classification"
    name, inp, out = config.netG, config.input_nc, config.ngf if classify else config.output_nc
    if name.startswith(("unet_", "encoder_decoder_")):
        downs = 8 if name.endswith("_256") else 7
        net = UnetGenerator(inp, out, downs, config.ngf, norm, config.dropout, skip=name.startswith("unet_"),
                            tanh=not classify)
    elif name.startswith("resnet_"):
        net = ResnetGenerator(inp, out, config.ngf, norm, n_blocks=int(name.split("_")[1].replace("blocks", "")),
                              tanh=not classify)
    else:
        raise ValueError(f"unknown generator {name!r}")
    if classify:
        return init_weights(ColourClassifier(net, out, colour_bins.bin_centres(), config.colour_temperature,
                                                 upsample=config.colour_upsample))
    return init_weights(net)


def build_discriminator(config: TrainConfig) -> nn.Module:
    """The discriminator named by `config.netD`; conditional D sees input and output channels.

    With spectral norm every convolution is normalised by its largest singular value and the norm layers
    are dropped (as in SNGAN); with num_D > 1 the PatchGAN is repeated at coarser scales.
    """
    norm = None if config.spectral_norm else norm_layer(config.norm)
    channels = config.output_nc + (config.input_nc if config.conditional_D else 0)
    n_layers = 3 if config.netD == "basic" else config.n_layers_D
    if config.netD in ("basic", "n_layers") and config.num_D > 1:
        net = MultiscaleDiscriminator(channels, config.ndf, n_layers, norm, config.num_D)
    elif config.netD in ("basic", "n_layers"):
        net = NLayerDiscriminator(channels, config.ndf, n_layers, norm)
    elif config.netD == "pixel":
        net = PixelDiscriminator(channels, config.ndf, norm or nn.Identity)
    elif config.netD == "image":
        net = ImageDiscriminator(channels, config.ndf, norm)
    else:
        raise ValueError(f"unknown discriminator {config.netD!r}")
    net = init_weights(net)
    if config.spectral_norm:
        for module in net.modules():
            if isinstance(module, nn.Conv2d):
                nn.utils.parametrizations.spectral_norm(module)
    return net


def use_batch_statistics(net: nn.Module) -> nn.Module:
    """Make batch norm normalise with the statistics of the current batch without touching buffers.

    The official pix2pix test script runs the generator in train mode (batch statistics, dropout on),
    which is what the network saw while training; this does the same but leaves running stats alone,
    so concurrent inference calls never write to shared state.
    """
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.train()
            m.track_running_stats = False
    return net


class SeededDropout(nn.Dropout):
    """nn.Dropout that draws its mask from `generator` (None: torch's process-wide one), the same draws as
    ATen's CPU dropout. A translator sets its own generator per call (`Translator.run_network`): a seeded
    translation then stays the same while another thread of the process (the app's training run) uses
    torch's random numbers, and that thread's random stream is left alone."""

    generator: Optional[torch.Generator] = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        noise = torch.empty_like(x).bernoulli_(1 - self.p, generator=self.generator)
        return x * noise.div_(1 - self.p)


def seeded_dropouts(net: nn.Module) -> list[SeededDropout]:
    """Swap every nn.Dropout of `net` for a SeededDropout (same p and mode); returns all of them (those swapped
    by an earlier call on the same network too) to set generators on."""
    swapped = []
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Dropout:
                child = SeededDropout(child.p).train(child.training)
                setattr(parent, name, child)
            if isinstance(child, SeededDropout):
                swapped.append(child)
    return swapped


def set_dropout(net: nn.Module, active: bool) -> nn.Module:
    """Turn dropout (the sampling noise) on or off without changing the rest of the network's mode."""
    for m in net.modules():
        if isinstance(m, nn.Dropout):
            m.train(active)
    return net
