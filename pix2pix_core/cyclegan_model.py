"""CycleGAN (Zhu, Park, Isola, Efros, ICCV 2017): unpaired translation between two image collections.

Two generators, G: A -> B and F: B -> A, each against its own PatchGAN (D_B judges B pictures, D_A
judges A pictures), tied by cycle consistency: F(G(a)) ~ a and G(F(b)) ~ b. The same interface as
`Pix2Pix`, so the one training loop (train.py) drives both:

    model = CycleGAN(config)
    losses = model.train_step({"input": a_batch, "target": b_batch})   # unpaired: any a with any b
    tensors, state = model.state_dict()   # G. (A->B), F. (B->A), DA., DB., optG., optD., pool tensors
"""

from __future__ import annotations

import itertools
from typing import Optional

import torch
from PIL import Image
from torch import nn

from . import distributed
from .checkpoint import flatten_optimizer, load_into, sub_state, training_checkpoint_bytes, unflatten_optimizer
from .color import network_to_rgb, unit_to_pil
from .config import TrainConfig
from .losses import GANLoss
from .networks import build_discriminator, build_generator
from .errors import Pix2PixError
from .pix2pix_model import (adam, check_fine_tune_shape, autocast, autocast_dtype, data_parallel, grad_scalers,
                            set_learning_rates, set_requires_grad)


class ImagePool:
    """A history of generated images for the discriminator (Shrivastava et al. 2017; CycleGAN sec. 4).

    D is updated on a mix of the newest fakes and older ones, so it does not chase G's latest mode:
    until the pool holds `size` images every fake is stored and returned; after that each fake is, with
    probability 1/2, swapped for a random stored one (which it replaces), else returned as is.
    Draws come from torch's global RNG, saved with the checkpoint, so a resumed run replays them.
    """

    def __init__(self, size: int = 50):
        self.size = size
        self.images: list[torch.Tensor] = []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:  # no history: the fakes as they are, cut from G's graph as the pooled ones are
            return images.detach()
        chosen = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image.clone())
                chosen.append(image)
            elif torch.rand(()) < 0.5:
                slot = int(torch.randint(0, self.size, ()))
                chosen.append(self.images[slot].clone())
                self.images[slot] = image.clone()
            else:
                chosen.append(image)
        return torch.cat(chosen, 0)

    def state(self) -> Optional[torch.Tensor]:
        return torch.cat(self.images, 0).contiguous() if self.images else None

    def load(self, stacked: Optional[torch.Tensor]) -> None:
        self.images = [] if stacked is None else [image.unsqueeze(0).clone() for image in stacked]


def check_cyclegan_fine_tune(config: TrainConfig, its_config: TrainConfig, path) -> None:
    """A CycleGAN fine-tune starts from a CycleGAN of the same generator shape; a pix2pix generator is refused:
    it was trained on paired data of another task, and would seed one direction only."""
    if its_config.model != "cyclegan":
        raise Pix2PixError(f"cannot fine-tune {path}: it is a {its_config.model} model; a cyclegan run starts "
                           "from a CycleGAN checkpoint or export (or from scratch)")
    check_fine_tune_shape(config, its_config, path, "generators")


class CycleGAN:
    """CycleGAN's networks, optimizers (one Adam for both generators, one for both discriminators, as in
    the official code) and training step (paper sec. 3 and 4)."""

    LOSS_NAMES = ("G_GAN_AB", "G_GAN_BA", "cycle_A", "cycle_B", "idt_A", "idt_B", "D_A", "D_B")

    def __init__(self, config: TrainConfig, context: distributed.Context = distributed.Context()):
        self.config = config
        self.context = context
        self.device = context.device
        # G: A -> B and F: B -> A; D_A judges A pictures (real a vs F(b)), D_B judges B pictures
        self.generator, self.generator_ba = build_generator(config), build_generator(config)
        self.discriminator_a, self.discriminator_b = build_discriminator(config), build_discriminator(config)
        if config.sync_bn and context.distributed:
            for name in ("generator", "generator_ba", "discriminator_a", "discriminator_b"):
                setattr(self, name, distributed.convert_sync_batchnorm(getattr(self, name), context.device))
        self.memory = torch.channels_last if config.channels_last else torch.contiguous_format
        for net in self._raw():
            net.to(context.device, memory_format=self.memory)
        self.opt_g = adam(itertools.chain(self.generator.parameters(), self.generator_ba.parameters()),
                          config, context.device)
        self.opt_d = adam(itertools.chain(self.discriminator_a.parameters(), self.discriminator_b.parameters()),
                          config, context.device)
        self.set_lr(config.lr)
        self.gan_loss = GANLoss(config.gan_mode)
        self.amp_dtype = autocast_dtype(config, context.device)
        self.scaler_g, self.scaler_d = grad_scalers(self.amp_dtype, context.device)
        self.pool_a, self.pool_b = ImagePool(config.pool_size), ImagePool(config.pool_size)
        # what the step calls: DDP wrappers after distribute(), else the plain modules (which are saved)
        self.g_ab, self.g_ba, self.d_a, self.d_b = self._raw()
        self.last: Optional[tuple[torch.Tensor, ...]] = None

    def _raw(self) -> list[nn.Module]:
        return [self.generator, self.generator_ba, self.discriminator_a, self.discriminator_b]

    @property
    def loss_names(self) -> tuple[str, ...]:
        return self.LOSS_NAMES

    # ------------------------------------------------------------------------------- setup
    def prepare(self, dataset) -> None:
        """Nothing to learn from the training set before the first step (Pix2Pix.prepare's counterpart)."""

    def distribute(self) -> None:
        self.g_ab, self.g_ba, self.d_a, self.d_b = (data_parallel(net, self.context) for net in self._raw())

    def train(self) -> None:
        for net in self._raw():
            net.train()

    def set_lr(self, lr: float) -> None:
        set_learning_rates(self.opt_g, self.opt_d, lr, self.config)

    def checkpoint_bytes(self) -> int:
        """The size of this run's checkpoints (`state_dict` and `rank_state`): the four networks, their Adam
        moments, and both history pools full (pool_size fakes each, in the step's precision) of every rank."""
        fake = (self.config.output_nc, self.config.crop_size, self.config.crop_size)
        itemsize = (self.amp_dtype or torch.float32).itemsize
        pools = 2 * self.config.pool_size * fake[0] * fake[1] * fake[2] * itemsize * self.context.world_size
        return training_checkpoint_bytes(self._raw(), self._raw(), other=pools)

    def networks(self) -> list[nn.Module]:
        return self._raw()

    def generator_for_export(self, direction: str = "AtoB") -> nn.Module:
        return self.generator if direction == "AtoB" else self.generator_ba

    def init_generators_from(self, states: dict[str, dict[str, torch.Tensor]], its_config: TrainConfig,
                             path) -> None:
        """Fine-tuning: start G (AtoB) and F (BtoA) from another CycleGAN's generators of the same shape,
        each one `states` holds (a one-direction export leaves the other as built); D_A and D_B start fresh."""
        check_cyclegan_fine_tune(self.config, its_config, path)
        for direction, state in states.items():
            net = self.generator if direction == "AtoB" else self.generator_ba
            load_into(net, state, f"{direction} generator", path)

    # ------------------------------------------------------------------------------- checkpoint state
    PREFIXES = (("G.", "generator"), ("F.", "generator_ba"), ("DA.", "discriminator_a"), ("DB.", "discriminator_b"))

    def state_dict(self) -> tuple[dict[str, torch.Tensor], dict]:
        """G. is A -> B (what `translate` and `export` load by default), F. is B -> A."""
        tensors = {}
        for prefix, name in self.PREFIXES:
            tensors.update({f"{prefix}{k}": v for k, v in getattr(self, name).state_dict().items()})
        opt_g, groups_g = flatten_optimizer(self.opt_g, "optG.")
        opt_d, groups_d = flatten_optimizer(self.opt_d, "optD.")
        tensors.update(opt_g)
        tensors.update(opt_d)
        for key, pool in (("pool.A", self.pool_a), ("pool.B", self.pool_b)):
            stacked = pool.state()  # a concatenation of up to 50 pictures: once
            if stacked is not None:
                tensors[key] = stacked
        return tensors, {"optG_groups": groups_g, "optD_groups": groups_d}

    def rank_state(self) -> dict[str, torch.Tensor]:
        """Every rank's history pools for rank 0's checkpoint (pool.A.rank1, ...): under torchrun each rank's
        D_A and D_B saw the fakes of its own share of the data, so an exact resume needs each rank's back
        (it continued with rank 0's on every rank). A collective: every rank calls it; {} in one process."""
        if not self.context.distributed:
            return {}
        states = {key: pool.state() for key, pool in (("pool.A", self.pool_a), ("pool.B", self.pool_b))}
        mine = {key: state.cpu() for key, state in states.items() if state is not None}
        gathered = distributed.gather_to_main(self.context, mine)
        return {f"{key}.rank{rank}": value for rank, pools in enumerate(gathered or []) if rank
                for key, value in pools.items()}

    def load_state_dict(self, tensors: dict[str, torch.Tensor], state: dict, path) -> None:
        for prefix, name in self.PREFIXES:
            load_into(getattr(self, name), sub_state(tensors, prefix), name.replace("_", " "), path)
        unflatten_optimizer(self.opt_g, tensors, "optG.", state["optG_groups"])
        unflatten_optimizer(self.opt_d, tensors, "optD.", state["optD_groups"])
        rank = self.context.rank  # its own pools when the run resumes on as many ranks; else rank 0's
        own = f".rank{rank}" if rank and state.get("world_size", 1) == self.context.world_size else ""
        for key, pool in (("pool.A", self.pool_a), ("pool.B", self.pool_b)):
            stored = tensors.get(key + own, tensors.get(key))
            pool.load(None if stored is None else stored.to(self.context.device))

    # ------------------------------------------------------------------------------- the step
    def generator_losses(self, photo_a, photo_b):
        """The generators' objective (paper eq. 3, plus the identity term of sec. 5.2) on one batch:
        fakes, reconstructions and the weighted losses."""
        config = self.config
        fake_b, fake_a = self.g_ab(photo_a), self.g_ba(photo_b)
        rec_a, rec_b = self.g_ba(fake_b), self.g_ab(fake_a)
        l1 = nn.functional.l1_loss
        losses = {
            "G_GAN_AB": self.gan_loss(self.discriminator_b(fake_b), True, for_discriminator=False),
            "G_GAN_BA": self.gan_loss(self.discriminator_a(fake_a), True, for_discriminator=False),
            "cycle_A": l1(rec_a.float(), photo_a.float()) * config.lambda_cycle,
            "cycle_B": l1(rec_b.float(), photo_b.float()) * config.lambda_cycle,
        }
        zero = torch.zeros((), device=photo_a.device)
        losses["idt_A"] = losses["idt_B"] = zero
        if config.lambda_identity:  # G(b) ~ b and F(a) ~ a: keeps colours when no change is needed
            weight = config.lambda_cycle * config.lambda_identity
            losses["idt_A"] = l1(self.g_ba(photo_a).float(), photo_a.float()) * weight
            losses["idt_B"] = l1(self.g_ab(photo_b).float(), photo_b.float()) * weight
        return (fake_a, fake_b, rec_a, rec_b), losses

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One CycleGAN iteration: the generators' step, then both discriminators on real pictures and
        on fakes drawn from the history pools. batch["input"] holds A pictures, batch["target"] B ones."""
        photo_a = batch["input"].to(self.device, memory_format=self.memory, non_blocking=True)
        photo_b = batch["target"].to(self.device, memory_format=self.memory, non_blocking=True)

        # 1. Generators: fool both discriminators (frozen), cycle back to the input, identity
        set_requires_grad(self.discriminator_a, False)
        set_requires_grad(self.discriminator_b, False)
        self.opt_g.zero_grad(set_to_none=True)
        with autocast(self.device, self.amp_dtype):
            (fake_a, fake_b, rec_a, rec_b), losses = self.generator_losses(photo_a, photo_b)
            loss_g = sum(losses.values())
        self.scaler_g.scale(loss_g).backward()
        self.scaler_g.step(self.opt_g)
        self.scaler_g.update()

        # 2. Discriminators: real -> real, a fake from the pool -> fake (each loss halved, as in the paper)
        set_requires_grad(self.discriminator_a, True)
        set_requires_grad(self.discriminator_b, True)
        self.opt_d.zero_grad(set_to_none=True)
        with autocast(self.device, self.amp_dtype):
            pooled_a, pooled_b = self.pool_a.query(fake_a), self.pool_b.query(fake_b)
            losses["D_A"] = 0.5 * (self.gan_loss(self.d_a(photo_a), True) + self.gan_loss(self.d_a(pooled_a), False))
            losses["D_B"] = 0.5 * (self.gan_loss(self.d_b(photo_b), True) + self.gan_loss(self.d_b(pooled_b), False))
        self.scaler_d.scale(losses["D_A"] + losses["D_B"]).backward()
        self.scaler_d.step(self.opt_d)
        self.scaler_d.update()
        self.last = (photo_a, fake_b, rec_a, photo_b, fake_a, rec_b)
        return {name: losses[name].detach() for name in self.LOSS_NAMES}

    # ------------------------------------------------------------------------------- samples
    def sample_grid(self) -> Optional[Image.Image]:
        """a | G(a) | F(G(a)) | b | F(b) | G(F(b)) for the first example of the latest batch."""
        if self.last is None:
            return None
        tiles = [network_to_rgb(self.config.task, t[:1].detach().float().cpu())[0] for t in self.last]
        return unit_to_pil(torch.cat(tiles, dim=-1))
