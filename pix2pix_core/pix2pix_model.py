"""The pix2pix method as one object: its networks, optimizers, the training step and its checkpoint state.

The training loop (train.py) drives it and knows nothing of GANs; benchmarks build it directly:

    model = Pix2Pix(config)                      # networks and Adam on config.device's CPU default
    losses = model.train_step(batch)             # batch as data.collate makes it: {"input", "target"}
    tensors, state = model.state_dict()          # G., D., E., optG., optD. keys + JSON-able state

With the GAN term off (--no-gan, use_gan False) there is no D and no D optimizer: L1 alone needs neither,
and its checkpoints hold no D., optD. tensors.
"""

from __future__ import annotations

import contextlib
import copy
from typing import Optional

import torch
from PIL import Image
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from . import colour_bins, distributed
from .augment import diff_augment, warp_label_map
from .checkpoint import flatten_optimizer, load_into, sub_state, training_checkpoint_bytes, unflatten_optimizer
from .color import network_to_rgb, unit_to_pil
from .config import TrainConfig
from .errors import Pix2PixError
from .losses import GANLoss, feature_matching_loss, logits_of
from .networks import build_discriminator, build_generator


def set_requires_grad(net: nn.Module, flag: bool) -> None:
    for p in net.parameters():
        p.requires_grad_(flag)


def autocast_dtype(config: TrainConfig, device: torch.device) -> Optional[torch.dtype]:
    """bf16 autocast on CPU and CUDA by default (measured faster on this CPU, see README); None = fp32."""
    if config.precision == "fp32" or (config.precision == "auto" and device.type not in ("cpu", "cuda")):
        return None
    if config.precision == "fp16":
        return torch.float16
    return torch.bfloat16


def adam(parameters, config: TrainConfig, device: torch.device) -> torch.optim.Adam:
    """Adam with the config's learning rate and betas (set_learning_rates gives D its own); fused (one
    kernel) on CPU and CUDA, where the unfused optimizer was a quarter of a CPU step."""
    return torch.optim.Adam(parameters, lr=config.lr, betas=(config.beta1, config.beta2),
                            fused=device.type in ("cpu", "cuda"))


def set_learning_rates(opt_g: torch.optim.Optimizer, opt_d: Optional[torch.optim.Optimizer], lr: float,
                       config: TrainConfig) -> None:
    """G's optimizer at the scheduled `lr`, D's (None: no D, --no-gan) at `lr * config.d_lr_factor`."""
    for optimizer, rate in ((opt_g, lr), (opt_d, lr * config.d_lr_factor)):
        for group in optimizer.param_groups if optimizer is not None else ():
            group["lr"] = rate


def grad_scalers(amp_dtype: Optional[torch.dtype], device: torch.device) -> tuple[torch.amp.GradScaler, ...]:
    """Loss scalers for the G and D steps: active for fp16 on CUDA and the CPU, where small fp16 gradients
    would underflow to 0 unscaled (bf16 and fp32 need none; on MPS torch has no scaler)."""
    kind = device.type if device.type in ("cuda", "cpu") else "cuda"
    enabled = amp_dtype == torch.float16 and device.type == kind
    return torch.amp.GradScaler(kind, enabled=enabled), torch.amp.GradScaler(kind, enabled=enabled)


def autocast(device: torch.device, amp_dtype: Optional[torch.dtype]):
    """The step's mixed-precision context (none for fp32)."""
    return contextlib.nullcontext() if amp_dtype is None else torch.autocast(device.type, dtype=amp_dtype)


def data_parallel(net: nn.Module, context: distributed.Context) -> nn.Module:
    """`net` wrapped in DistributedDataParallel under torchrun, else `net` itself."""
    if not context.distributed:
        return net
    return DistributedDataParallel(net, device_ids=[context.device.index] if context.device.type == "cuda" else None)


def generator_shape(config: TrainConfig) -> dict:
    """What G's weights depend on: an L1 and a rebalanced-L1 colorizer share them; a classifier has a head."""
    return {"task": config.task, "netG": config.netG, "ngf": config.ngf, "norm": config.norm,
            "colour_loss": config.colour_loss == "classification"}


def check_fine_tune_shape(config: TrainConfig, its_config: TrainConfig, path, generators: str = "generator") -> None:
    """A fine-tune (--init-from) needs generators of this run's shape: one error naming both values of each
    setting that differs."""
    mine, its = generator_shape(config), generator_shape(its_config)
    mismatch = [name for name in mine if mine[name] != its[name]]
    if mismatch:
        differences = ", ".join(f"{name} {its[name]} (this run: {mine[name]})" for name in mismatch)
        verb = "has" if generators == "generator" else "have"
        raise Pix2PixError(f"cannot fine-tune {path}: its {generators} {verb} {differences}; train with the same "
                           "settings (the model card's command names them)")


class Pix2Pix:
    """pix2pix (Isola et al., CVPR 2017): a generator G trained with a conditional GAN loss + lambda * L1
    against a PatchGAN discriminator D, plus this project's options (multi-scale D and feature matching,
    hinge loss, DiffAugment, label warps, an averaged copy of G)."""

    LOSS_NAMES = ("G_GAN", "G_L1", "D_real", "D_fake", "G_feat")
    PRIOR_KEY = "colour.prior"  # the empirical ab-bin distribution of the training targets (colour_loss classification)

    def __init__(self, config: TrainConfig, context: distributed.Context = distributed.Context()):
        self.config = config
        self.context = context
        self.device = context.device
        self.generator = build_generator(config)
        # L1 only (use_gan off): no D to build, run, update or save
        self.discriminator: Optional[nn.Module] = build_discriminator(config) if config.use_gan else None
        if config.sync_bn and context.distributed:
            self.generator = distributed.convert_sync_batchnorm(self.generator, context.device)
            if self.discriminator is not None:
                self.discriminator = distributed.convert_sync_batchnorm(self.discriminator, context.device)
        self.memory = torch.channels_last if config.channels_last else torch.contiguous_format
        self.generator.to(context.device, memory_format=self.memory)
        self.opt_g = adam(self.generator.parameters(), config, context.device)
        self.opt_d: Optional[torch.optim.Optimizer] = None
        if self.discriminator is not None:
            self.discriminator.to(context.device, memory_format=self.memory)
            self.opt_d = adam(self.discriminator.parameters(), config, context.device)
        self.set_lr(config.lr)
        self.gan_loss = GANLoss(config.gan_mode)
        self.amp_dtype = autocast_dtype(config, context.device)
        self.scaler_g, self.scaler_d = grad_scalers(self.amp_dtype, context.device)
        # The averaged generator is what inference uses when ema_decay > 0; it is never trained directly.
        self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False) if config.ema_decay else None
        self.ema_updates = 0
        # What the step calls: the DDP wrappers after distribute(), else the plain modules (nanoGPT's
        # model / raw_model); the plain ones are what is saved.
        self.generator_model: nn.Module = self.generator
        self.discriminator_model: Optional[nn.Module] = self.discriminator
        self.last: Optional[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = None  # for sample_grid
        # colour_loss classification: the training targets' bin distribution p, set by prepare() or a checkpoint
        self.classify = config.colour_loss == "classification"
        self.rebalance_l1 = config.colour_loss == "l1_rebalanced"
        self.uses_prior = self.classify or self.rebalance_l1  # both weigh pixels by the rarity of their colour
        self.colour_prior: Optional[torch.Tensor] = None
        self.class_weights: Optional[torch.Tensor] = None

    @property
    def loss_names(self) -> tuple[str, ...]:
        return self.LOSS_NAMES + (("G_class",) if self.classify else ())

    # ------------------------------------------------------------------------------- setup
    def distribute(self) -> None:
        """Wrap G and D (when there is one) in DistributedDataParallel under torchrun. Called after weights
        are loaded."""
        self.generator_model = data_parallel(self.generator, self.context)
        if self.discriminator is not None:
            self.discriminator_model = data_parallel(self.discriminator, self.context)

    def prepare(self, dataset) -> None:
        """Before the first step: the class-rebalancing prior from the training set (colour_loss
        classification or l1_rebalanced), unless a resumed checkpoint brought it; nothing otherwise."""
        if self.uses_prior and self.colour_prior is None:
            cell = self.generator.stride if self.classify else 1  # the grid the loss compares colours on
            self.set_colour_prior(colour_bins.dataset_prior(dataset, cell=cell))

    def set_colour_prior(self, p: torch.Tensor) -> None:
        """p (Q,) and the per-bin loss weights derived from it (colour_bins.rebalancing_weights)."""
        self.colour_prior = p.double().cpu()
        centres = colour_bins.bin_centres()
        self.class_weights = colour_bins.rebalancing_weights(self.colour_prior, centres).to(self.device)

    def train(self) -> None:
        self.generator.train()
        if self.discriminator is not None:
            self.discriminator.train()

    def set_lr(self, lr: float) -> None:
        set_learning_rates(self.opt_g, self.opt_d, lr, self.config)

    def checkpoint_bytes(self) -> int:
        """The size of this run's checkpoints (`state_dict`): G, D (when use_gan) and the average E, and
        Adam's moments of G and D; what RunFolder.check and the app's disk estimate count."""
        stepped = [net for net in (self.generator, self.discriminator) if net is not None]
        return training_checkpoint_bytes(self.networks(), stepped)

    def networks(self) -> list[nn.Module]:
        """Every network whose weights are saved (and must stay finite): G, D when there is one, the average."""
        return [net for net in (self.generator, self.discriminator, self.generator_ema) if net is not None]

    def generator_for_export(self) -> nn.Module:
        """The generator to translate with: the moving average when training keeps one."""
        return self.generator_ema if self.generator_ema is not None else self.generator

    def init_generator_from(self, generator: nn.Module, its_config: TrainConfig, path) -> None:
        """Fine-tuning: start G (and its average) from another run's generator of the same shape."""
        check_fine_tune_shape(self.config, its_config, path)
        self.generator.load_state_dict(generator.state_dict())
        if self.generator_ema is not None:
            self.generator_ema.load_state_dict(generator.state_dict())

    # ------------------------------------------------------------------------------- checkpoint state
    def rank_state(self) -> dict[str, torch.Tensor]:
        """State of other ranks a checkpoint must keep (CycleGAN's history pools): none here, every rank
        holds the same weights and moments."""
        return {}

    def state_dict(self) -> tuple[dict[str, torch.Tensor], dict]:
        """Weights (G., D., E.) and Adam moments (optG., optD.) as flat tensors, and the JSON-able rest;
        no D., optD. nor optD_groups without a D (use_gan off)."""
        tensors = {f"G.{k}": v for k, v in self.generator.state_dict().items()}
        if self.discriminator is not None:
            tensors.update({f"D.{k}": v for k, v in self.discriminator.state_dict().items()})
        if self.generator_ema is not None:
            tensors.update({f"E.{k}": v for k, v in self.generator_ema.state_dict().items()})
        opt_g, groups_g = flatten_optimizer(self.opt_g, "optG.")
        tensors.update(opt_g)
        state = {"optG_groups": groups_g}
        if self.discriminator is not None:
            opt_d, state["optD_groups"] = flatten_optimizer(self.opt_d, "optD.")
            tensors.update(opt_d)
        if self.colour_prior is not None:
            tensors[self.PRIOR_KEY] = self.colour_prior
        return tensors, state

    def load_state_dict(self, tensors: dict[str, torch.Tensor], state: dict, path) -> None:
        """The inverse of state_dict(); `state["step"]` restarts the average's decay ramp where it was.
        A checkpoint without E. keys (trained without the average) starts the average from G. Without a D
        (use_gan off), the D. and optD. tensors of a checkpoint written before D was dropped are ignored."""
        load_into(self.generator, sub_state(tensors, "G."), "generator", path)
        if self.discriminator is not None:
            load_into(self.discriminator, sub_state(tensors, "D."), "discriminator", path)
            unflatten_optimizer(self.opt_d, tensors, "optD.", state["optD_groups"])
        if self.generator_ema is not None:
            averaged = sub_state(tensors, "E.") or sub_state(tensors, "G.")
            load_into(self.generator_ema, averaged, "averaged generator", path)
            self.ema_updates = state["step"]
        unflatten_optimizer(self.opt_g, tensors, "optG.", state["optG_groups"])
        if self.uses_prior and self.PRIOR_KEY in tensors:
            self.set_colour_prior(tensors[self.PRIOR_KEY])

    # ------------------------------------------------------------------------------- the step
    def _pair(self, source: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """What D judges: (input, image) stacked on channels, or the image alone for an unconditional D."""
        return torch.cat([source, image], 1) if self.config.conditional_D else image

    def _judge_with_features(self, source, fake, target):
        """D's features of the generated and the real pair under one shared augmentation, so feature
        matching compares the same picture regions (the pairs go through DiffAugment stacked on channels)."""
        fake_pair, real_pair = self._pair(source, fake), self._pair(source, target)
        both = diff_augment(torch.cat([fake_pair, real_pair.detach()], 1), self.config.augments)
        fake_pair, real_pair = both.split(fake_pair.shape[1], dim=1)
        fake_features = self.discriminator(fake_pair, features=True)
        with torch.no_grad():
            real_features = self.discriminator(real_pair, features=True)
        return fake_features, real_features

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One pix2pix iteration (paper sec. 3.3): a D step, then a G step on cGAN + lambda * L1
        (+ feature matching, the colour classification loss, and an update of the averaged generator, when
        those options are on). Returns the losses as 0-d tensors, not synced to the host."""
        config, device = self.config, self.device
        source = batch["input"].to(device, memory_format=self.memory, non_blocking=True)
        target = batch["target"].to(device, memory_format=self.memory, non_blocking=True)
        zero = torch.zeros((), device=device)
        if config.label_warp:
            source = warp_label_map(source, config.label_warp)
        if self.uses_prior and self.class_weights is None:
            raise Pix2PixError(f"colour_loss {self.config.colour_loss} needs the training set's colour prior: "
                               f"call prepare(dataset) before the first step")
        with autocast(self.device, self.amp_dtype):
            if self.classify:  # one pass: the bin logits for the cross-entropy, their annealed mean as `fake`
                fake, logits = self.generator_model(source, with_logits=True)
            else:
                fake = self.generator_model(source)

        # 1. Discriminator: real pairs -> real, generated pairs -> fake (loss halved, as in the paper)
        loss_d_real = loss_d_fake = zero
        if config.use_gan:
            set_requires_grad(self.discriminator, True)
            self.opt_d.zero_grad(set_to_none=True)
            with autocast(self.device, self.amp_dtype):
                augments = config.augments
                judge = self.discriminator_model
                loss_d_fake = self.gan_loss(judge(diff_augment(self._pair(source, fake.detach()), augments)), False)
                loss_d_real = self.gan_loss(judge(diff_augment(self._pair(source, target), augments)), True)
                loss_d = 0.5 * (loss_d_fake + loss_d_real)
            self.scaler_d.scale(loss_d).backward()
            self.scaler_d.step(self.opt_d)
            self.scaler_d.update()

        # 2. Generator: fool D (D frozen, no gradients for it) and stay close to the target in L1
        if config.use_gan:
            set_requires_grad(self.discriminator, False)
        self.opt_g.zero_grad(set_to_none=True)
        with autocast(self.device, self.amp_dtype):
            loss_g_gan = loss_g_feat = zero
            if config.use_gan and config.lambda_feat:
                fake_features, real_features = self._judge_with_features(source, fake, target)
                loss_g_feat = feature_matching_loss(fake_features, real_features) * config.lambda_feat
                loss_g_gan = self.gan_loss(logits_of(fake_features), True, for_discriminator=False)
            elif config.use_gan:  # plain module: no DDP sync for D
                judged = self.discriminator(diff_augment(self._pair(source, fake), config.augments))
                loss_g_gan = self.gan_loss(judged, True, for_discriminator=False)
            if self.rebalance_l1:  # rare true colours weigh more; the average pixel still weighs 1
                weights = colour_bins.pixel_weights(target, self.class_weights)
                loss_g_l1 = (weights[:, None] * (fake.float() - target.float()).abs()).mean() * config.lambda_l1
            else:
                loss_g_l1 = nn.functional.l1_loss(fake.float(), target.float()) * config.lambda_l1
            loss_g = loss_g_gan + loss_g_feat + loss_g_l1
            if self.classify:
                centres = self.generator.centres
                target_cells = nn.functional.avg_pool2d(target.float(), self.generator.stride)  # the logits' grid
                loss_g_class = colour_bins.rebalanced_cross_entropy(logits, target_cells, centres, self.class_weights)
                loss_g_class = loss_g_class * config.lambda_class
                loss_g = loss_g + loss_g_class
        self.scaler_g.scale(loss_g).backward()
        self.scaler_g.step(self.opt_g)
        self.scaler_g.update()
        self._update_ema()
        self.last = (source, fake, target)
        losses = {"G_GAN": loss_g_gan.detach(), "G_L1": loss_g_l1.detach(),
                  "D_real": loss_d_real.detach(), "D_fake": loss_d_fake.detach(), "G_feat": loss_g_feat.detach()}
        if self.classify:
            losses["G_class"] = loss_g_class.detach()
        return losses

    @torch.no_grad()
    def _update_ema(self) -> None:
        """averaged = decay * averaged + (1 - decay) * live, for weights and batch-norm statistics alike.
        The decay ramps up from 0.1 (as in TF's ExponentialMovingAverage with num_updates), so the average
        does not drag the random initial weights along for thousands of steps."""
        if self.generator_ema is None:
            return
        self.ema_updates += 1
        decay = min(self.config.ema_decay, (1 + self.ema_updates) / (10 + self.ema_updates))
        averaged = self.generator_ema.state_dict()
        live = self.generator.state_dict()
        floats = [k for k, v in averaged.items() if v.is_floating_point()]
        torch._foreach_lerp_([averaged[k] for k in floats], [live[k] for k in floats], 1.0 - decay)
        for key in averaged.keys() - set(floats):
            averaged[key].copy_(live[key])

    # ------------------------------------------------------------------------------- samples
    def sample_grid(self) -> Optional[Image.Image]:
        """input | output | target of the first example of the latest batch (None before the first step)."""
        if self.last is None:
            return None
        source, fake, target = (t[:1].detach().float().cpu() for t in self.last)
        lightness = source if self.config.task == "colorize" else None
        tiles = [network_to_rgb(self.config.task, t, lightness)[0] for t in (source, fake, target)]
        return unit_to_pil(torch.cat(tiles, dim=-1))
