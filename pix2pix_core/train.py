"""The pix2pix training loop: a `Trainer` whose step reads like the paper, emitting events.

Consumers (the CLI's tqdm bar, the app's live plot) subscribe with callbacks; the trainer itself
writes what every run needs: `losses.csv`, sample grids and atomic checkpoints in the run folder.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import json
import math
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional, Union

import torch
import torch.distributed as dist
from PIL import Image
from safetensors.torch import save_file
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from . import distributed
from .checkpoint import (FORMAT, atomic_save, config_of, flatten_optimizer, load_generator, load_into,
                         read_checkpoint, remove_stale_temp_files, sub_state, unflatten_optimizer)
from .color import network_to_rgb, unit_to_pil
from .config import TrainConfig
from .data import PairDataset, build_dataset, collate
from .augment import diff_augment, warp_label_map
from .errors import LoadingStopped, Pix2PixError
from .losses import GANLoss, feature_matching_loss, logits_of
from .networks import build_discriminator, build_generator

LOSS_NAMES = ("G_GAN", "G_L1", "D_real", "D_fake", "G_feat")
# Debugging DDP: when set to a folder, every rank writes rank{N}_generator.safetensors there at the end,
# so ranks can be compared byte for byte (tests/test_distributed.py does).
RANK_DUMP_ENV = "PIX2PIX_RANK_DUMP_DIR"
# Fields that define the networks: a resumed or fine-tuned run must keep them.
ARCHITECTURE_FIELDS = ("task", "netG", "ngf", "norm", "dropout", "netD", "n_layers_D", "ndf", "conditional_D",
                       "num_D", "spectral_norm")


# ---------------------------------------------------------------------------------------------- events
@dataclass
class LoadingEvent:
    done: int  # training images decoded (or found in the disk cache) so far
    total: int


@dataclass
class LossEvent:
    step: int
    epoch: int
    losses: dict[str, float]
    images_per_second: float
    progress: float  # 0..1 of the whole run
    eta_seconds: float
    lr: float


@dataclass
class SampleEvent:
    step: int
    epoch: int
    image: Image.Image  # input | output | target
    path: Optional[Path]


@dataclass
class CheckpointEvent:
    step: int
    epoch: int
    path: Path


@dataclass
class EpochEvent:
    epoch: int  # epochs completed
    step: int
    seconds: float
    lr: float


@dataclass
class FinishedEvent:
    step: int
    epoch: int
    reason: str  # finished | stopped | max_steps | diverged
    checkpoint: Optional[Path]
    message: str = ""


Event = Union[LoadingEvent, LossEvent, SampleEvent, CheckpointEvent, EpochEvent, FinishedEvent]
Callback = Callable[[Event], None]


@dataclass
class Position:
    """Where a run is: epochs are 0-based; `batch` batches of `epoch` are already done."""

    epoch: int = 0
    batch: int = 0
    step: int = 0
    extra: dict = field(default_factory=dict)


def lr_factor(config: TrainConfig, epoch: int) -> float:
    """Constant for `epochs`, then linear decay to 0 over `epochs_decay` (as the official code)."""
    return 1.0 - max(0, epoch + 1 - config.epochs) / float(config.epochs_decay + 1)


def set_requires_grad(net: nn.Module, flag: bool) -> None:
    for p in net.parameters():
        p.requires_grad_(flag)


def autocast_dtype(config: TrainConfig, device: torch.device) -> Optional[torch.dtype]:
    """bf16 autocast on CPU and CUDA by default (measured faster on this CPU); None = fp32."""
    if config.precision == "fp32" or (config.precision == "auto" and device.type not in ("cpu", "cuda")):
        return None
    if config.precision == "fp16":
        return torch.float16
    return torch.bfloat16


def check_writable(folder: Path, needed_bytes: int) -> None:
    """Fail before training, not after an hour, when the run folder cannot take checkpoints."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write_test"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        raise Pix2PixError(f"cannot write to the run folder {folder}: {exc.strerror or exc}") from None
    free = shutil.disk_usage(folder).free
    if free < needed_bytes:
        raise Pix2PixError(f"not enough disk space in {folder}: {free / 1e6:.0f} MB free, "
                           f"about {needed_bytes / 1e6:.0f} MB needed for checkpoints")


def resume_config(out: str | Path, overrides: Optional[dict] = None) -> TrainConfig:
    """The config stored in a run's latest checkpoint, with explicitly given settings applied on top."""
    latest = Path(out) / "checkpoints" / "latest.safetensors"
    if not latest.exists():
        raise Pix2PixError(f"nothing to resume: {latest} does not exist")
    _, metadata = read_checkpoint(latest)
    config = config_of(metadata, latest)
    for key, value in (overrides or {}).items():
        setattr(config, key, value)
    return config.validate()


class Trainer:
    """Trains G and D on `config`; `run()` blocks, `stop()` (any thread) ends it after the current step."""

    def __init__(self, config: TrainConfig, callbacks: Iterable[Callback] = (), resume: bool = False,
                 init_generator: Optional[str | Path] = None, dataset: Optional[PairDataset] = None):
        self.config = config.validate()
        self.callbacks = list(callbacks)
        self.resume = resume
        self.init_generator = init_generator
        self.dataset = dataset
        self.out = Path(config.out)
        self._stop = threading.Event()

    # ---------------------------------------------------------------------------------- public
    def stop(self) -> None:
        """Thread-safe: the run ends after its current step and saves a checkpoint."""
        self._stop.set()

    @property
    def checkpoint_dir(self) -> Path:
        return self.out / "checkpoints"

    def run(self) -> FinishedEvent:
        """Train until the schedule ends, max_steps is reached, stop() is called or the loss diverges."""
        ctx = distributed.setup(self.config.device)
        completed = False
        try:
            result = self._run(ctx)
            self._dump_rank_weights(ctx)
            completed = True
            return result
        finally:
            # after an error the other ranks may be inside a collective: no final barrier then, or all hang
            distributed.teardown(ctx, synchronize=completed)

    # ---------------------------------------------------------------------------------- setup
    def _emit(self, event: Event) -> None:
        for callback in self.callbacks:
            callback(event)

    def _build(self, ctx: distributed.Context) -> None:
        config = self.config
        torch.manual_seed(config.seed)
        if ctx.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # crops have one fixed size: pick the fastest kernels once
        self.generator = build_generator(config)
        self.discriminator = build_discriminator(config)
        if config.sync_bn and ctx.distributed:
            self.generator = distributed.convert_sync_batchnorm(self.generator, ctx.device)
            self.discriminator = distributed.convert_sync_batchnorm(self.discriminator, ctx.device)
        memory = torch.channels_last if config.channels_last else torch.contiguous_format
        self.generator.to(ctx.device, memory_format=memory)
        self.discriminator.to(ctx.device, memory_format=memory)
        betas = (config.beta1, config.beta2)
        fused = ctx.device.type in ("cpu", "cuda")  # one fused kernel: Adam was 27% of a CPU step
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=config.lr, betas=betas, fused=fused)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=config.lr, betas=betas, fused=fused)
        self.gan_loss = GANLoss(config.gan_mode)
        self.amp_dtype = autocast_dtype(config, ctx.device)
        use_scaler = self.amp_dtype == torch.float16 and ctx.device.type == "cuda"
        self.scaler_g = torch.amp.GradScaler("cuda", enabled=use_scaler)
        self.scaler_d = torch.amp.GradScaler("cuda", enabled=use_scaler)
        self.memory = memory
        # The averaged generator is what inference uses when ema_decay > 0; it is never trained directly.
        self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False) if config.ema_decay else None
        self.ema_updates = 0

    def _wrap(self, ctx: distributed.Context) -> None:
        """DistributedDataParallel under torchrun; the plain modules stay reachable for saving."""
        self.g_train, self.d_train = self.generator, self.discriminator
        if ctx.distributed:
            ids = [ctx.device.index] if ctx.device.type == "cuda" else None
            self.g_train = DistributedDataParallel(self.generator, device_ids=ids)
            self.d_train = DistributedDataParallel(self.discriminator, device_ids=ids)

    def _load_init_generator(self) -> None:
        generator, init_config, _ = load_generator(self.init_generator)
        mismatch = [f for f in ("task", "netG", "ngf", "norm") if getattr(init_config, f) != getattr(self.config, f)]
        if mismatch:
            raise Pix2PixError(f"cannot fine-tune {self.init_generator}: its {', '.join(mismatch)} differ from this run")
        self.generator.load_state_dict(generator.state_dict())
        if self.generator_ema is not None:
            self.generator_ema.load_state_dict(generator.state_dict())

    def _restore(self, ctx: distributed.Context) -> Position:
        path = self.checkpoint_dir / "latest.safetensors"
        tensors, metadata = read_checkpoint(path)
        stored = config_of(metadata, path)
        changed = [f for f in ARCHITECTURE_FIELDS if getattr(stored, f) != getattr(self.config, f)]
        if changed:
            raise Pix2PixError(f"cannot resume {path}: {', '.join(changed)} differ from the checkpoint")
        state = json.loads(metadata.get("state", "{}"))
        load_into(self.generator, sub_state(tensors, "G."), "generator", path)
        load_into(self.discriminator, sub_state(tensors, "D."), "discriminator", path)
        if self.generator_ema is not None:
            averaged = sub_state(tensors, "E.") or sub_state(tensors, "G.")
            load_into(self.generator_ema, averaged, "averaged generator", path)
            self.ema_updates = state["step"]
        unflatten_optimizer(self.opt_g, tensors, "optG.", state["optG_groups"])
        unflatten_optimizer(self.opt_d, tensors, "optD.", state["optD_groups"])
        if "rng.torch" in tensors and ctx.world_size == state.get("world_size", 1):
            torch.set_rng_state(tensors["rng.torch"])
        return Position(state["epoch"], state["batch"], state["step"])

    # ---------------------------------------------------------------------------------- checkpoints
    def save(self, position: Position, name: str = "latest") -> Path:
        """Atomically write weights, optimizer moments, RNG and position; config in the header."""
        tensors = {f"G.{k}": v for k, v in self.generator.state_dict().items()}
        tensors.update({f"D.{k}": v for k, v in self.discriminator.state_dict().items()})
        if self.generator_ema is not None:
            tensors.update({f"E.{k}": v for k, v in self.generator_ema.state_dict().items()})
        opt_g, groups_g = flatten_optimizer(self.opt_g, "optG.")
        opt_d, groups_d = flatten_optimizer(self.opt_d, "optD.")
        tensors.update(opt_g)
        tensors.update(opt_d)
        tensors["rng.torch"] = torch.get_rng_state()
        state = {"epoch": position.epoch, "batch": position.batch, "step": position.step,
                 "optG_groups": groups_g, "optD_groups": groups_d,
                 "world_size": dist.get_world_size() if dist.is_initialized() else 1}
        metadata = {"format": FORMAT, "kind": "training", "config": self.config.to_json(), "state": json.dumps(state)}
        path = atomic_save(tensors, metadata, self.checkpoint_dir / f"{name}.safetensors")
        return path

    # ---------------------------------------------------------------------------------- health
    def _mean_losses(self, losses: dict[str, torch.Tensor], ctx: distributed.Context) -> dict[str, float]:
        """Losses averaged over all ranks (one all-reduce, one host sync), so rank 0 logs the global value
        and every rank sees the same NaN: a divergence on one rank stops all of them together."""
        stacked = torch.stack([losses[k].float() for k in LOSS_NAMES])
        if ctx.distributed:
            dist.all_reduce(stacked)
            stacked /= ctx.world_size
        return dict(zip(LOSS_NAMES, stacked.tolist()))

    def _weights_finite(self, ctx: distributed.Context) -> bool:
        """True when every weight and buffer of G and D is finite, on all ranks.

        Checked before each checkpoint: a step can turn weights to NaN while its loss (computed before
        the update) was still finite, and a NaN checkpoint must never replace the last good one.
        """
        nets = [self.generator, self.discriminator] + ([self.generator_ema] if self.generator_ema is not None else [])
        tensors = [t for net in nets for t in net.state_dict().values()]
        finite = torch.stack([torch.isfinite(t).all() for t in tensors if t.is_floating_point()]).all()
        return self._all_ranks_ok(ctx, finite)

    @staticmethod
    def _all_ranks_ok(ctx: distributed.Context, ok: Union[bool, torch.Tensor]) -> bool:
        """True only if `ok` holds on every rank: decisions that end a run must be taken by all ranks
        together, or the ones that carry on wait forever in their next collective."""
        flag = torch.as_tensor(ok, dtype=torch.float32, device=ctx.device).reshape(1)
        if ctx.distributed:
            dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        return bool(flag.item())

    def _diverged_message(self, step: int, detail: str) -> str:
        latest = self.checkpoint_dir / "latest.safetensors"
        kept = f"the last good checkpoint {latest} is kept" if latest.exists() else "no checkpoint was written"
        return f"training diverged at step {step} ({detail}); {kept}. Try a lower learning rate."

    def _dump_rank_weights(self, ctx: distributed.Context) -> None:
        folder = os.environ.get(RANK_DUMP_ENV)
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            state = {k: v.detach().cpu().contiguous() for k, v in self.generator.state_dict().items()}
            save_file(state, str(Path(folder) / f"rank{ctx.rank}_generator.safetensors"))

    # ---------------------------------------------------------------------------------- the step
    def _autocast(self, device: torch.device):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=self.amp_dtype)

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

    def train_step(self, source: torch.Tensor, target: torch.Tensor, device: torch.device) -> dict[str, torch.Tensor]:
        """One pix2pix iteration (paper sec. 3.3): a D step, then a G step on cGAN + lambda * L1
        (+ feature matching, and an update of the averaged generator, when those options are on)."""
        config = self.config
        zero = torch.zeros((), device=device)
        if config.label_warp:
            source = warp_label_map(source, config.label_warp)
        with self._autocast(device):
            fake = self.g_train(source)

        # 1. Discriminator: real pairs -> real, generated pairs -> fake (loss halved, as in the paper)
        loss_d_real = loss_d_fake = zero
        if config.use_gan:
            set_requires_grad(self.discriminator, True)
            self.opt_d.zero_grad(set_to_none=True)
            with self._autocast(device):
                augments = config.augments
                loss_d_fake = self.gan_loss(self.d_train(diff_augment(self._pair(source, fake.detach()), augments)), False)
                loss_d_real = self.gan_loss(self.d_train(diff_augment(self._pair(source, target), augments)), True)
                loss_d = 0.5 * (loss_d_fake + loss_d_real)
            self.scaler_d.scale(loss_d).backward()
            self.scaler_d.step(self.opt_d)
            self.scaler_d.update()

        # 2. Generator: fool D (D frozen, no gradients for it) and stay close to the target in L1
        set_requires_grad(self.discriminator, False)
        self.opt_g.zero_grad(set_to_none=True)
        with self._autocast(device):
            loss_g_gan = loss_g_feat = zero
            if config.use_gan and config.lambda_feat:
                fake_features, real_features = self._judge_with_features(source, fake, target)
                loss_g_feat = feature_matching_loss(fake_features, real_features) * config.lambda_feat
                loss_g_gan = self.gan_loss(logits_of(fake_features), True, for_discriminator=False)
            elif config.use_gan:  # plain module: no DDP sync for D
                judged = self.discriminator(diff_augment(self._pair(source, fake), config.augments))
                loss_g_gan = self.gan_loss(judged, True, for_discriminator=False)
            loss_g_l1 = nn.functional.l1_loss(fake.float(), target.float()) * config.lambda_l1
            loss_g = loss_g_gan + loss_g_feat + loss_g_l1
        self.scaler_g.scale(loss_g).backward()
        self.scaler_g.step(self.opt_g)
        self.scaler_g.update()
        self._update_ema()
        self._last = (source, fake, target)
        return {"G_GAN": loss_g_gan.detach(), "G_L1": loss_g_l1.detach(),
                "D_real": loss_d_real.detach(), "D_fake": loss_d_fake.detach(), "G_feat": loss_g_feat.detach()}

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

    # ---------------------------------------------------------------------------------- outputs
    def sample_grid(self) -> Image.Image:
        """input | output | target of the first example of the latest batch."""
        source, fake, target = (t[:1].detach().float().cpu() for t in self._last)
        lightness = source if self.config.task == "colorize" else None
        tiles = [network_to_rgb(self.config.task, t, lightness)[0] for t in (source, fake, target)]
        return unit_to_pil(torch.cat(tiles, dim=-1))

    def _csv_writer(self, resume: bool, resumed_step: int = 0):
        """losses.csv for appending. On resume, rows after the checkpoint's step are dropped: a killed run
        may have logged steps it never saved, and they are about to be trained again."""
        path = self.out / "losses.csv"
        new = not (resume and path.exists())
        if not new:
            with open(path, newline="") as handle:
                rows = list(csv.reader(handle))
            kept = rows[:1] + [r for r in rows[1:] if r and r[0].isdigit() and int(r[0]) <= resumed_step]
            partial = path.with_name(".losses.csv.tmp")
            with open(partial, "w", newline="") as handle:
                csv.writer(handle).writerows(kept)
            os.replace(partial, path)  # a kill right now must not cost the whole loss history
        handle = open(path, "w" if new else "a", newline="")
        writer = csv.writer(handle)
        if new:
            writer.writerow(["step", "epoch", *LOSS_NAMES, "lr", "images_per_second"])
        return handle, writer

    # ---------------------------------------------------------------------------------- the loop
    def _run(self, ctx: distributed.Context) -> FinishedEvent:
        config = self.config
        self._build(ctx)
        problem: Optional[Pix2PixError] = None
        if ctx.is_main:  # only rank 0 writes; the other ranks learn its verdict below
            params = sum(p.numel() for p in self.generator.parameters()) + sum(
                p.numel() for p in self.discriminator.parameters())
            try:
                check_writable(self.out, needed_bytes=params * 4 * 3 * 2 + 50_000_000)
                remove_stale_temp_files(self.checkpoint_dir)
            except Pix2PixError as exc:
                problem = exc
        if not self._all_ranks_ok(ctx, problem is None):
            raise problem or Pix2PixError(f"rank 0 cannot write the run folder {self.out}; see its error")
        position = Position()
        if self.resume:
            position = self._restore(ctx)
        elif self.init_generator:
            self._load_init_generator()
        self._wrap(ctx)
        try:
            progress = (lambda done, total: self._emit(LoadingEvent(done, total))) if ctx.is_main else None
            dataset = self.dataset or build_dataset(config, "train", train=True, progress=progress, stop=self._stop)
        except LoadingStopped as exc:  # stop() during loading: a stopped run with no step, not a failure
            return self._stopped_before_training(ctx, position, str(exc))
        sampler = torch.utils.data.DistributedSampler(dataset, num_replicas=ctx.world_size, rank=ctx.rank,
                                                      shuffle=True, seed=config.seed, drop_last=False)
        batches_per_epoch = math.ceil(len(sampler) / config.batch_size)
        total_steps = batches_per_epoch * config.total_epochs
        if config.max_steps:
            total_steps = min(total_steps, config.max_steps)
        if ctx.is_main:
            (self.out / "samples").mkdir(parents=True, exist_ok=True)
            (self.out / "config.json").write_text(json.dumps(json.loads(config.to_json()), indent=2))
            csv_handle, csv_writer = self._csv_writer(self.resume, position.step)
        self.generator.train()
        self.discriminator.train()
        reason, message, started = "finished", "", time.perf_counter()
        steps_at_start, window_start, window_images = position.step, time.perf_counter(), 0
        last_checkpoint: Optional[Path] = None
        try:
            while position.epoch < config.total_epochs:
                epoch_start = time.perf_counter()
                lr = config.lr * lr_factor(config, position.epoch)
                for group in self.opt_g.param_groups + self.opt_d.param_groups:
                    group["lr"] = lr
                sampler.set_epoch(position.epoch)
                dataset.set_epoch(position.epoch)
                order = list(sampler)
                for batch_index in range(position.batch, batches_per_epoch):
                    if self._stop.is_set() or (config.max_steps and position.step >= config.max_steps):
                        break
                    indices = order[batch_index * config.batch_size:(batch_index + 1) * config.batch_size]
                    batch = collate([dataset[i] for i in indices])
                    source = batch["input"].to(ctx.device, memory_format=self.memory, non_blocking=True)
                    target = batch["target"].to(ctx.device, memory_format=self.memory, non_blocking=True)
                    losses = self.train_step(source, target, ctx.device)
                    position.step += 1
                    position.batch = batch_index + 1
                    window_images += len(indices) * ctx.world_size
                    if position.step % config.log_every == 0 or position.step == total_steps:
                        values = self._mean_losses(losses, ctx)  # the one host sync per log
                        if not all(math.isfinite(v) for v in values.values()):
                            bad = ", ".join(f"{k}={v}" for k, v in values.items() if not math.isfinite(v))
                            message = self._diverged_message(position.step, bad)
                            return self._finish(ctx, position, "diverged", last_checkpoint, message, save=False)
                        now = time.perf_counter()
                        speed = window_images / max(now - window_start, 1e-9)
                        window_start, window_images = now, 0
                        done = position.step - steps_at_start
                        eta = (now - started) / max(done, 1) * (total_steps - position.step)
                        if ctx.is_main:
                            csv_writer.writerow([position.step, position.epoch, *(f"{values[k]:.5f}" for k in LOSS_NAMES),
                                                 f"{lr:.3e}", f"{speed:.2f}"])
                            self._emit(LossEvent(position.step, position.epoch, values, speed,
                                                 position.step / max(total_steps, 1), eta, lr))
                    if ctx.is_main and config.sample_every and position.step % config.sample_every == 0:
                        grid = self.sample_grid()
                        path = self.out / "samples" / f"step_{position.step:07d}.png"
                        grid.save(path)
                        self._emit(SampleEvent(position.step, position.epoch, grid, path))
                    if config.checkpoint_every_steps and position.step % config.checkpoint_every_steps == 0:
                        if not self._weights_finite(ctx):
                            message = self._diverged_message(position.step, "non-finite weights")
                            return self._finish(ctx, position, "diverged", last_checkpoint, message, save=False)
                        if ctx.is_main:
                            csv_handle.flush()  # losses.csv never runs behind the checkpoint
                            last_checkpoint = self.save(position)
                            self._emit(CheckpointEvent(position.step, position.epoch, last_checkpoint))
                if position.batch < batches_per_epoch:  # left the epoch early: stop or max_steps
                    reason = "stopped" if self._stop.is_set() else "max_steps"
                    break
                position.epoch += 1
                position.batch = 0
                if not self._weights_finite(ctx):
                    message = self._diverged_message(position.step, "non-finite weights")
                    return self._finish(ctx, position, "diverged", last_checkpoint, message, save=False)
                if ctx.is_main:
                    csv_handle.flush()
                    last_checkpoint = self.save(position)
                    self._emit(CheckpointEvent(position.step, position.epoch, last_checkpoint))
                    if config.save_every and position.epoch % config.save_every == 0:
                        kept = self.save(position, f"epoch_{position.epoch:04d}")
                        self._emit(CheckpointEvent(position.step, position.epoch, kept))
                    self._emit(EpochEvent(position.epoch, position.step, time.perf_counter() - epoch_start, lr))
            return self._finish(ctx, position, reason, last_checkpoint, message, save=reason != "finished")
        finally:
            if ctx.is_main:
                csv_handle.close()

    def _finish(self, ctx, position: Position, reason: str, checkpoint: Optional[Path], message: str,
                save: bool) -> FinishedEvent:
        if save and not self._weights_finite(ctx):
            reason, save = "diverged", False
            message = self._diverged_message(position.step, "non-finite weights")
        if ctx.is_main and save:
            checkpoint = self.save(position)
            self._emit(CheckpointEvent(position.step, position.epoch, checkpoint))
        if ctx.is_main and self._last_exists():
            grid = self.sample_grid()
            grid.save(self.out / "samples" / "last.png")
        event = FinishedEvent(position.step, position.epoch, reason, checkpoint, message)
        if ctx.is_main:
            self._emit(event)
        return event

    def _stopped_before_training(self, ctx, position: Position, message: str) -> FinishedEvent:
        event = FinishedEvent(position.step, position.epoch, "stopped", None, message)
        if ctx.is_main:
            self._emit(event)
        return event

    def _last_exists(self) -> bool:
        return hasattr(self, "_last")
