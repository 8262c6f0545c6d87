"""The training loop: schedule, events, samples, checkpoints. It knows nothing of GANs.

The method (networks, optimizers, the step, its checkpoint state) is a model object, `Pix2Pix` in
pix2pix_model.py; the files a run leaves are written by `RunFolder` (run_folder.py). Consumers (the
CLI's tqdm bar, the app's live plot) subscribe to the events with callbacks.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional, Union

import torch
from PIL import Image

from . import distributed
from .checkpoint import (config_of, generator_config, generator_states, load_generator, read_checkpoint,
                         read_header, resolve_checkpoint)
from .collapse import CollapseWatch
from .config import SETTING_TYPES, TrainConfig
from .cyclegan_model import CycleGAN, check_cyclegan_fine_tune
from .data import CachedItems, PairDataset, build_dataset, collate
from .errors import LoadingStopped, Pix2PixError, check_all
from .pix2pix_model import Pix2Pix, check_fine_tune_shape, generator_shape
from .run_folder import RunFolder, diverged_message

LOSS_NAMES = Pix2Pix.LOSS_NAMES
# What a resumed run may change: how long it runs (a longer schedule extends it), how often it reports and
# saves, on what hardware and number format it computes, where its data is (a moved folder) and kept decoded,
# and how the finished model translates. None of these changes what the networks learn from which examples.
# (--threads is no setting of a run at all: any count resumes.) Every other field (task, direction, data
# jitter, batch size, learning rate, losses, architecture, seed, ...) would make the resumed run another
# experiment under the same name: refused (resume_settings), with the way to train with it.
RESUME_MAY_CHANGE = ("epochs", "epochs_decay", "max_steps", "log_every", "sample_every", "save_every",
                     "checkpoint_every_steps", "collapse_steps", "device", "precision", "channels_last", "data",
                     "out", "cache_dir", "memory_budget_mb", "test_dropout")
# ... and what a collapsed run's message advises resuming with, from a checkpoint kept before D won
# (collapse.py: DiffAugment for pix2pix, a slower D for CycleGAN): a deliberate change, said as one.
RESUME_REMEDIES = ("diff_augment", "d_lr_factor")
PATH_FIELDS = ("data", "out", "cache_dir")  # compared as paths: runs/x/ is runs/x


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
    reason: str  # finished | stopped | max_steps | diverged | collapsed (message says why)
    checkpoint: Optional[Path]
    message: str = ""


Event = Union[LoadingEvent, LossEvent, SampleEvent, CheckpointEvent, EpochEvent, FinishedEvent]
Callback = Callable[[Event], None]
Model = Union[Pix2Pix, CycleGAN]
MODELS = {"pix2pix": Pix2Pix, "cyclegan": CycleGAN}  # config.model -> the method's model object
# Called on every rank (events go to rank 0's callbacks only) when run() completes, with the rank and the
# model: e.g. to compare the ranks' weights after a torchrun job.
RankCallback = Callable[[int, Model], None]


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


def resume_config(out: str | Path, overrides: Optional[dict] = None) -> TrainConfig:
    """The config stored in a run's latest checkpoint, with `overrides` applied on top: those in
    RESUME_MAY_CHANGE or RESUME_REMEDIES; one that would change anything else is refused (resume_settings)."""
    return resume_settings(out, overrides)[0]


def resume_settings(out: str | Path, overrides: Optional[dict] = None) -> tuple[TrainConfig, list[str]]:
    """resume_config, and what the overrides changed, in words ("epochs 100 -> 150"). A given value equal to
    the stored one changes nothing; `out` is the folder read (a copied or moved run writes there, not to the
    folder it was trained in). Raises Pix2PixError naming every refused field, both values and what to do."""
    latest = Path(out) / "checkpoints" / "latest.safetensors"
    if not latest.exists():
        raise Pix2PixError(f"nothing to resume: {latest} does not exist")
    _, metadata = read_checkpoint(latest)
    config = config_of(metadata, latest)
    given = {"out": str(out), **(overrides or {})}
    unknown = sorted(set(given) - set(SETTING_TYPES))
    if unknown:
        raise Pix2PixError(f"cannot resume {latest}: {', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} "
                           "no setting of a run")
    # as TrainConfig takes them: data=Path(...) was refused ("data must be a string, got PosixPath(...)")
    given = {name: TrainConfig.as_declared(name, value) for name, value in given.items()}
    refuse_other_settings(config, given, latest)
    changed = [f"{name} {getattr(config, name)} -> {given[name]}" for name in _differing(config, given)]
    for key, value in given.items():
        setattr(config, key, value)
    return config.validate(), changed


def _same(name: str, stored, given) -> bool:
    """Paths are the same folder however spelled from here (runs/x/, ./runs/x and its absolute path), so a
    resume that spells --data or --out another way is not told it changed them."""
    if name in PATH_FIELDS and stored and given:
        return os.path.abspath(stored) == os.path.abspath(given)
    return stored == given


def _differing(stored: TrainConfig, given: dict) -> list[str]:
    """The settings in `given` whose value is not `stored`'s, in the config's order."""
    return [name for name in SETTING_TYPES if name in given and not _same(name, getattr(stored, name), given[name])]


def refuse_other_settings(stored: TrainConfig, given: dict, path: Path) -> None:
    """One error naming each given setting that differs from the checkpoint's and may not change on resume."""
    allowed = RESUME_MAY_CHANGE + RESUME_REMEDIES
    refused = [name for name in _differing(stored, given) if name not in allowed]
    if not refused:
        return
    one = len(refused) == 1
    differences = ", ".join(f"{name} {getattr(stored, name)} (given: {given[name]})" for name in refused)
    wanted = dataclasses.replace(stored, **{name: given[name] for name in refused})
    fine_tune = (f", or --init-from {path} to fine-tune its generator"
                 if generator_shape(wanted) == generator_shape(stored) else "")  # else its weights would not fit
    raise Pix2PixError(f"cannot resume {path}: the checkpoint has {differences}; a resumed run keeps "
                       f"{'this setting' if one else 'these settings'} (resume without {'it' if one else 'them'}), "
                       f"or train with the new value{'' if one else 's'} as a new run: another --out{fine_tune}")


# ------------------------------------------------------------------------------- --init-from on --resume
def started_from(init_generator: Optional[str | Path]) -> Optional[str]:
    """What a run's generator started from, as its checkpoints record it (state "init_from"): the model file's
    absolute path (a run folder stands for its latest checkpoint), None for a run trained from scratch."""
    return str(resolve_checkpoint(init_generator).resolve()) if init_generator else None


def resume_start_note(out: str | Path, init_generator: Optional[str | Path]) -> str:
    """`check_resume_start` for the run in `out`, read from its latest checkpoint's header (no weights)."""
    latest = RunFolder(out).latest
    if not init_generator or not latest.exists():  # nothing to compare; resume_settings says what is missing
        return ""
    return check_resume_start(json.loads(read_header(latest).get("state", "{}")), init_generator, latest)


def check_resume_start(state: dict, init_generator: Optional[str | Path], path: Path) -> str:
    """--init-from X with --resume. A resumed run keeps its weights, so X is never loaded: right for the same
    fine-tune command plus --resume (the run started from X: nothing to say), refused for a run that started
    from another model or from scratch (its user expects X's weights). A checkpoint from before the start was
    recorded cannot tell: resumed, with a note (returned) that its generator is the checkpoint's, not X."""
    if not init_generator:
        return ""
    given = started_from(init_generator)
    folder_gone = not Path(init_generator).exists()  # a run folder deleted since: it stood for its latest checkpoint
    if folder_gone and state.get("init_from") == str(RunFolder(Path(init_generator).resolve()).latest):
        return ""
    if "init_from" not in state:
        return (f"its generator is the checkpoint's, not {Path(init_generator).name}: the checkpoint does not "
                "record what the run started from")
    if state["init_from"] == given:
        return ""
    origin = f"started from {state['init_from']}" if state["init_from"] else "was trained from scratch"
    raise Pix2PixError(f"cannot resume {path} with --init-from {init_generator}: the run {origin}, and a resumed "
                       f"run keeps its weights (resume without --init-from), or fine-tune from {init_generator} as "
                       "a new run: another --out")


class _Speedometer:
    """Images per second since the last log, and the time left at the run's average pace so far."""

    def __init__(self, first_step: int):
        self.first_step, self.started = first_step, time.perf_counter()
        self.window_start, self.window_images = self.started, 0

    def add(self, images: int) -> None:
        self.window_images += images

    def read(self, step: int, total_steps: int) -> tuple[float, float]:
        now = time.perf_counter()
        speed = self.window_images / max(now - self.window_start, 1e-9)
        self.window_start, self.window_images = now, 0
        eta = (now - self.started) / max(step - self.first_step, 1) * (total_steps - step)
        return speed, eta


def _close_disk_caches(dataset) -> None:
    """Close the disk-cache files a dataset reads (data.CachedItems; an unpaired one's two sides), however its
    run ended: their disk space is freed only once they are closed (the app deletes an uploaded dataset's
    cache when its run ends), and not whenever the garbage collector gets to them."""
    for part in (dataset, getattr(dataset, "a", None), getattr(dataset, "b", None)):
        items = getattr(part, "items", None)
        if isinstance(items, CachedItems):
            items.cache.close()


def refuse_untrainable(config: TrainConfig) -> None:
    """One-line errors for training-only settings `validate()` lets through. `--log-every 0` crashed with a
    ZeroDivisionError at the first step (after the dataset loaded) and `--beta1 1.5` with torch's ValueError
    from Adam, both as tracebacks; a negative max_images or max_steps trained, without a sign of trouble, on
    the wrong thing: `--max-images -1` on all images but the last (a slice [:-1]), `--max-steps -1` wrote an
    untrained checkpoint; a negative interval (`--sample-every -5`, `--save-every`, `--checkpoint-every-steps`)
    acted as its absolute value (step % -5 == 0 every 5 steps). Checked here, not in validate(): they mean
    nothing to a model that is only loaded, and a stored config is validated on every load."""
    check_all([
        (config.max_images is None or config.max_images >= 0,
         f"max_images must be >= 0 (0 = all images), got {config.max_images}"),
        (config.max_steps is None or config.max_steps >= 0,
         f"max_steps must be >= 0 (0 = no limit), got {config.max_steps}"),
        (config.log_every >= 1, f"log_every must be at least 1 (steps between loss records), got {config.log_every}"),
        (config.sample_every >= 0, f"sample_every must be >= 0 (steps between sample grids; 0 = none), "
                                   f"got {config.sample_every}"),
        (config.save_every >= 0, f"save_every must be >= 0 (epochs between kept checkpoints; 0 = only the "
                                 f"latest), got {config.save_every}"),
        (config.checkpoint_every_steps is None or config.checkpoint_every_steps >= 0,
         f"checkpoint_every_steps must be >= 0 (0 = at epoch ends only), got {config.checkpoint_every_steps}"),
        (0 <= config.beta1 < 1 and 0 <= config.beta2 < 1,
         f"Adam's beta1 and beta2 must be in [0, 1), got {config.beta1} and {config.beta2}"),
    ])


def check_init_from(config: TrainConfig, path: str | Path) -> None:
    """The refusal a fine-tune from `path` meets once the networks are built, from the file's header: said
    before the command line's first line names what the fine-tune loads, and before the data is read."""
    its_config = generator_config(path)
    if config.model == "cyclegan":
        check_cyclegan_fine_tune(config, its_config, path)
    else:
        check_fine_tune_shape(config, its_config, path)


class Trainer:
    """Trains a model on `config`; `run()` blocks, `stop()` (any thread) ends it after the current step."""

    def __init__(self, config: TrainConfig, callbacks: Iterable[Callback] = (), resume: bool = False,
                 init_generator: Optional[str | Path] = None, dataset: Optional[PairDataset] = None,
                 rank_callbacks: Iterable[RankCallback] = ()):
        self.config = config.validate()
        if config.model == "cyclegan" and not (config.use_gan and config.direction == "AtoB"):
            # checked here, not in validate(): a model trained before this check must still load
            raise Pix2PixError("cyclegan always trains its GAN losses and reads trainA/ as A (swap the folders "
                               "for the other way): no --no-gan, no --direction BtoA")
        refuse_untrainable(config)
        if dataset is None and not config.data.strip():  # "" is the current folder: a notebook's own images
            raise Pix2PixError("no dataset: set TrainConfig's data to the dataset folder (--data)")
        if init_generator and not resume:
            check_init_from(config, init_generator)
        self.callbacks = list(callbacks)
        self.rank_callbacks = list(rank_callbacks)
        self.resume = resume
        self.init_generator = init_generator
        # recorded in every checkpoint, so that --resume --init-from can tell the same fine-tune from another;
        # a resumed run keeps its checkpoint's record (_restore), or none when that predates it
        self._start: dict = {} if resume else {"init_from": started_from(init_generator)}
        self.dataset = dataset
        self.out = Path(config.out)
        self.folder = RunFolder(self.out)
        self.model: Optional[Model] = None  # built by run()
        self.last_checkpoint: Optional[Path] = None
        self._stop = threading.Event()
        # an L1-only run (use_gan off) logs D_real = D_fake = 0: nothing to watch, and no GAN to collapse
        self._collapse = CollapseWatch(self.config.collapse_steps if self.config.use_gan else 0)

    # ---------------------------------------------------------------------------------- public
    def stop(self) -> None:
        """Thread-safe: the run ends after its current step and saves a checkpoint."""
        self._stop.set()

    @property
    def checkpoint_dir(self) -> Path:
        return self.folder.checkpoint_dir

    @property
    def generator(self):
        return self.model.generator

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self.model.train_step(batch)

    def run(self) -> FinishedEvent:
        """Train until the schedule ends, max_steps is reached, stop() is called or the loss diverges."""
        self._refuse_a_fresh_run_over_a_run()  # at once; again once the folder is locked (_build)
        ctx = distributed.setup(self.config.device)
        completed = False
        try:
            result = self._run(ctx)
            for callback in self.rank_callbacks:
                callback(ctx.rank, self.model)
            completed = True
            if result.step == 0 and result.checkpoint is None:  # stopped while loading: nothing to keep
                self._remove_unused_folder(ctx)
            return result
        except BaseException:
            self._remove_unused_folder(ctx)
            raise
        finally:
            self.folder.unlock()  # taken by rank 0's folder check (_build)
            # after an error the other ranks may be inside a collective: no final barrier then, or all hang
            distributed.teardown(ctx, synchronize=completed)

    def _refuse_a_fresh_run_over_a_run(self) -> None:
        """A fresh run into a folder that holds a run would cut its losses.csv and mix samples."""
        if not self.resume and self.folder.holds_run():
            raise Pix2PixError(f"{self.out} already holds a run ({self.folder.latest.name}): --resume continues "
                               "it; to start over, delete that folder or choose another --out")

    def _remove_unused_folder(self, ctx: distributed.Context) -> None:
        """A run that ends before its first checkpoint and its first logged step (an empty dataset, a refused
        setting, an error, a Ctrl-C while loading) takes away the run folder it created and what it wrote there
        (RunFolder.remove_if_unused: never a folder that existed before, nor one holding anything else). Done
        here, not by the command line, so that the app's Train tab and Python callers leave no empty run folders
        either; on rank 0 only, the one that made it. A run that logged steps and then failed (diverged,
        collapsed, a second Ctrl-C) keeps its losses.csv and samples: they show how it went wrong."""
        if ctx.is_main:
            self.folder.remove_if_unused()

    def save(self, position: Position, name: str = "latest", extra: Optional[dict] = None) -> Path:
        """Atomically write weights, optimizer moments, RNG and position; config in the header. `extra`: the
        other ranks' own state (CycleGAN's history pools), gathered by `_checkpoint_or_diverge`."""
        tensors, model_state = self.model.state_dict()
        tensors.update(extra or {})
        tensors["rng.torch"] = torch.get_rng_state()
        device = self._context.device
        if device.type == "cuda":  # dropout masks and DiffAugment draws on a GPU come from its own generator
            tensors["rng.cuda"] = torch.cuda.get_rng_state(device)
        state = {"epoch": position.epoch, "batch": position.batch, "step": position.step, **model_state,
                 "world_size": self._world_size, **self._start}
        return self.folder.save_checkpoint(tensors, self.config, state, name)

    # ---------------------------------------------------------------------------------- the loop
    def _run(self, ctx: distributed.Context) -> FinishedEvent:
        config = self.config
        self._build(ctx)
        position = self._restore(ctx) if self.resume else Position()
        if not self.resume and self.init_generator:
            self._fine_tune(self.init_generator)
        self.model.distribute()
        dataset = self._load(ctx)
        if dataset is None:  # stop() during loading, on any rank: a stopped run with no step, not a failure
            return self._finish(ctx, position, "stopped", "stopped while loading")
        try:
            self.model.prepare(dataset)  # statistics of the training set the method needs (kept in checkpoints)
            sampler = torch.utils.data.DistributedSampler(dataset, num_replicas=ctx.world_size, rank=ctx.rank,
                                                          shuffle=True, seed=config.seed, drop_last=False)
            if ctx.is_main:
                self.folder.start(config, self.model.loss_names, self.resume, position.step)
            self.model.train()
            try:
                return self._epochs(ctx, dataset, sampler, position)
            finally:
                self.folder.close()
        finally:
            if dataset is not self.dataset:  # built here: nothing reads it once the run is over
                _close_disk_caches(dataset)

    def _epochs(self, ctx, dataset, sampler, position: Position) -> FinishedEvent:
        config = self.config
        batches_per_epoch = math.ceil(len(sampler) / config.batch_size)
        total_steps = batches_per_epoch * config.total_epochs
        if config.max_steps:
            total_steps = min(total_steps, config.max_steps)
        meter = _Speedometer(position.step)
        while position.epoch < config.total_epochs:
            epoch_start = time.perf_counter()
            lr = config.lr * lr_factor(config, position.epoch)
            self.model.set_lr(lr)
            sampler.set_epoch(position.epoch)
            dataset.set_epoch(position.epoch)
            order = list(sampler)
            for batch_index in range(position.batch, batches_per_epoch):
                if self._stop_agreed(ctx) or (config.max_steps and position.step >= config.max_steps):
                    break
                # forward, backward, update
                indices = order[batch_index * config.batch_size:(batch_index + 1) * config.batch_size]
                losses = self.train_step(collate([dataset[i] for i in indices]))
                position.step += 1
                position.batch = batch_index + 1
                meter.add(len(indices) * ctx.world_size)
                # logging, samples, checkpoints
                if position.step % config.log_every == 0 or position.step == total_steps:
                    ended = self._log(ctx, position, losses, lr, meter, total_steps)
                    if ended:
                        return self._finish(ctx, position, *ended)
                if ctx.is_main and config.sample_every and position.step % config.sample_every == 0:
                    self._sample(position)
                if config.checkpoint_every_steps and position.step % config.checkpoint_every_steps == 0:
                    problem = self._checkpoint_or_diverge(ctx, position)
                    if problem:
                        return self._finish(ctx, position, "diverged", problem)
            if position.batch < batches_per_epoch:  # left the epoch early: stop or max_steps
                problem = self._checkpoint_or_diverge(ctx, position)
                if problem:
                    return self._finish(ctx, position, "diverged", problem)
                return self._finish(ctx, position, "stopped" if self._stop.is_set() else "max_steps")
            # end of the epoch
            position.epoch += 1
            position.batch = 0
            problem = self._checkpoint_or_diverge(ctx, position)
            if problem:
                return self._finish(ctx, position, "diverged", problem)
            if ctx.is_main:
                if config.save_every and position.epoch % config.save_every == 0:
                    kept = self.save(position, f"epoch_{position.epoch:04d}")
                    self._emit(CheckpointEvent(position.step, position.epoch, kept))
                self._emit(EpochEvent(position.epoch, position.step, time.perf_counter() - epoch_start, lr))
        return self._finish(ctx, position, "finished")

    # ---------------------------------------------------------------------------------- phases
    def _emit(self, event: Event) -> None:
        for callback in self.callbacks:
            callback(event)

    @property
    def _world_size(self) -> int:
        return self._context.world_size

    def _build(self, ctx: distributed.Context) -> None:
        """The model (seeded), then a run folder that can take its checkpoints, as agreed by all ranks."""
        self._context = ctx
        torch.manual_seed(self.config.seed)
        if ctx.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # crops have one fixed size: pick the fastest kernels once
        self.model = MODELS[self.config.model](self.config, ctx)
        problem: Optional[Pix2PixError] = None
        if ctx.is_main:  # only rank 0 writes; the other ranks learn its verdict below
            try:
                config = self.config
                self.folder.check(self.model.checkpoint_bytes(),
                                  kept=config.total_epochs // config.save_every if config.save_every else 0)
                self._refuse_a_fresh_run_over_a_run()  # a run that ended there since run() looked
            except Pix2PixError as exc:
                problem = exc
        if not distributed.all_ranks_ok(ctx, problem is None):
            raise problem or Pix2PixError(f"rank 0 cannot write the run folder {self.out}; see its error")

    def _load(self, ctx: distributed.Context) -> Optional[PairDataset]:
        """The training set, or None when a rank was stopped while loading: under DDP every rank leaves loading
        the same way (distributed.LoadingOutcome), whichever rank stopped or failed and however long the others
        load. A stop reached only the stopped rank, and the others waited for ever in their first collective."""
        outcome = distributed.loading_outcome(ctx)
        progress = (lambda done, total: self._emit(LoadingEvent(done, total))) if ctx.is_main else None
        try:
            dataset = self.dataset or build_dataset(
                self.config, "train", train=True, progress=progress, world_size=ctx.world_size,
                stop=lambda: self._stop.is_set() or outcome.stop_seen())
        except LoadingStopped:
            dataset, decided = None, outcome.stop()
        except BaseException:
            outcome.fail()  # the other ranks end too, instead of waiting for this one for ever
            raise
        else:
            decided = outcome.loaded(self._stop.is_set)
        if decided == distributed.LOADED:
            return dataset
        if dataset is not None and dataset is not self.dataset:
            _close_disk_caches(dataset)
        if decided == distributed.FAILED:
            raise Pix2PixError("another rank failed while loading the training data (its error says why)")
        return None

    def _stop_agreed(self, ctx: distributed.Context) -> bool:
        """The stop flag, agreed by every rank under DDP: a Stop seen by one rank (events reach rank 0's
        callbacks only) sent it out of the loop while the others waited in their next all-reduce for ever.
        One scalar all-reduce per step there; a plain check in a single process."""
        if not ctx.distributed:
            return self._stop.is_set()
        if not distributed.all_ranks_ok(ctx, not self._stop.is_set()):
            self._stop.set()
        return self._stop.is_set()

    def _fine_tune(self, path: str | Path) -> None:
        """--init-from: the generator(s) start from another model's weights, D from scratch. A CycleGAN run
        takes G and F, whichever the file holds (CycleGAN.init_generators_from); pix2pix takes G."""
        if isinstance(self.model, CycleGAN):
            states, its_config = generator_states(path)
            self.model.init_generators_from(states, its_config, path)
            return
        generator, its_config, _ = load_generator(path)
        self.model.init_generator_from(generator, its_config, path)

    def _restore(self, ctx: distributed.Context) -> Position:
        path = self.folder.latest
        tensors, metadata = read_checkpoint(path)
        # resume_config checked the given settings; a config built by hand is held to the same rule
        refuse_other_settings(config_of(metadata, path), dataclasses.asdict(self.config), path)
        state = json.loads(metadata.get("state", "{}"))
        check_resume_start(state, self.init_generator, path)  # as the CLI did before the run (resume_start_note)
        self._start = {"init_from": state["init_from"]} if "init_from" in state else {}
        self.model.load_state_dict(tensors, state, path)
        if "rng.torch" in tensors and ctx.world_size == state.get("world_size", 1):
            torch.set_rng_state(tensors["rng.torch"])
            if "rng.cuda" in tensors and ctx.device.type == "cuda":
                torch.cuda.set_rng_state(tensors["rng.cuda"], ctx.device)
        return Position(state["epoch"], state["batch"], state["step"])

    def _log(self, ctx, position: Position, losses, lr: float, meter: _Speedometer,
             total_steps: int) -> Optional[tuple[str, str]]:
        """Losses averaged over the ranks to losses.csv and a LossEvent. ("diverged", message) if any is
        not finite, ("collapsed", message) once D has won (collapse.py); every rank sees the same means."""
        values = distributed.mean_losses(ctx, losses)  # the one host sync per log
        if not all(math.isfinite(v) for v in values.values()):
            bad = ", ".join(f"{k}={v}" for k, v in values.items() if not math.isfinite(v))
            return "diverged", diverged_message(self.folder, position.step, bad)
        speed, eta = meter.read(position.step, total_steps)
        if ctx.is_main:
            self.folder.log_losses(position.step, position.epoch, values, lr, speed)
            self._emit(LossEvent(position.step, position.epoch, values, speed,
                                 position.step / max(total_steps, 1), eta, lr))
        collapsed = self._collapse.update(position.step, values)
        return ("collapsed", collapsed + self._before_collapse()) if collapsed else None

    def _before_collapse(self) -> str:
        """Where to take a collapsed run up again: its newest kept checkpoint from before D won, if any."""
        kept = self.folder.kept_checkpoint_before(self._collapse.window_start)
        if kept is None:
            return ""
        path, step = kept
        return (f". The newest checkpoint from before those steps is {path} (step {step}): export it, or copy it "
                f"over {self.folder.latest.name} and --resume with {self._collapse.remedy}")

    def _sample(self, position: Position) -> None:
        grid = self.model.sample_grid()
        path = self.folder.save_sample(grid, f"step_{position.step:07d}")
        self._emit(SampleEvent(position.step, position.epoch, grid, path))

    def _checkpoint_or_diverge(self, ctx: distributed.Context, position: Position) -> Optional[str]:
        """Save latest.safetensors when every weight is finite on every rank; else a divergence message
        and nothing written, so a NaN checkpoint never replaces the last good one."""
        if not distributed.weights_finite(ctx, self.model.networks()):
            return diverged_message(self.folder, position.step, "non-finite weights")
        per_rank = self.model.rank_state()  # every rank: a collective under torchrun
        if ctx.is_main:
            self.last_checkpoint = self.save(position, extra=per_rank)
            self._emit(CheckpointEvent(position.step, position.epoch, self.last_checkpoint))
        return None

    def _finish(self, ctx: distributed.Context, position: Position, reason: str, message: str = "") -> FinishedEvent:
        event = FinishedEvent(position.step, position.epoch, reason, self.last_checkpoint, message)
        if ctx.is_main:
            grid = self.model.sample_grid()
            if grid is not None:
                self.folder.save_sample(grid, "last")
            self._emit(event)
        return event
