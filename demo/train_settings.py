"""What the app lets a user (or an API client) ask of the trainer: every number capped, and the run's
memory estimated before it starts.

The command line trusts its user; a shared app must not: `epochs=1e300` would run forever, `ngf=512`
or `batch_size=10**9` would eat the machine's memory within seconds. The caps are far above what the
presets use; the memory budget decides what fits on this machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

from pix2pix_core.cache import cache_root
from pix2pix_core.collapse import REMEDY_AUGMENTS
from pix2pix_core.config import TASK_DIRECTIONS, TrainConfig
from pix2pix_core.errors import Pix2PixError
from pix2pix_core.limits import bounded_float, bounded_int
from pix2pix_core.resources import (check_training_memory, count_training_images, dataset_cache_bytes, gb,
                                    largest_training_image_pixels, memory_budget)

from .disk import free_bytes

# The form's choices: its tasks (label, task) and presets
TASKS = [("Facades: labels → photo", "facades"), ("Colorize: gray → colour", "colorize"),
         ("Custom: A|B images", "aligned"), ("Custom: A/ and B/ folders", "paired"),
         ("Unpaired (CycleGAN)", "unpaired")]
TASK_LABELS = {task: label for label, task in TASKS}
# Settings a preset fixes; the key ones (epochs, batch, lambda L1, lr, ngf) stay editable in the form. A preset's
# diff_augment is for pix2pix runs (a CycleGAN has none); the form's DiffAugment box adds it to a preset without.
PRESETS = {
    # small enough to show a sample within a minute on a 2-core CPU. In its 2,000 facades steps, the LR decayed
    # over the second half and DiffAugment on D (pix2pix tasks) gave val KID x1000 77 and 74 (two seeds) against
    # 119 and 109 for 20 epochs at a constant LR without it (docs/quick_demo.md)
    "Quick demo": dict(netG="unet_128", crop_size=128, load_size=143, ngf=16, ndf=16, batch_size=1, epochs=10,
                       epochs_decay=10, diff_augment=REMEDY_AUGMENTS, sample_every=5, save_every=0, max_images=100),
    # the paper's facades settings (sec. 6.2): 256 px, 286 px jitter, batch 1, 100 + 100 epochs
    # no epoch checkpoints: the app exports the model at the end and never resumes (each is 0.69 GB)
    "Standard (paper)": dict(netG="unet_256", crop_size=256, load_size=286, ngf=64, ndf=64, batch_size=1,
                             epochs=100, epochs_decay=100, sample_every=100, save_every=0),
}
DEFAULT_PRESET = "Quick demo"  # the form's

MAX_EPOCHS = 1000  # each of epochs and decay epochs (the paper's facades run: 100 + 100)
MAX_BATCH = 64
MAX_WIDTH = 128  # ngf and ndf (the paper: 64)
MAX_IMAGES = 20_000  # training images per run (as many files as a zip upload may hold)
MAX_STEPS = 2_000_000  # steps per run (facades, 400 images x 200 epochs at batch 1: 80,000)
MAX_LR = 1.0
MAX_LAMBDA_L1 = 10_000.0
MEMORY_FRACTION = 0.5  # of the available memory, when the app is not given a budget: inference needs room too
DATASET_FRACTION = 0.25  # of a run's memory budget, for the decoded dataset; a larger one reads the disk cache
MAX_DATASET_MB = 1024  # ...and at most this (TrainConfig's default memory_budget_mb)
FREE_DISK_MARGIN = 256 * 2**20  # left free after a run's dataset cache and checkpoints (as cache.py's build)


def checked_numbers(epochs, epochs_decay, batch_size, lambda_l1, lr, ngf) -> dict:
    """The form's numbers as a dict of TrainConfig fields, or a one-line Pix2PixError naming the bad one."""
    values = dict(epochs=bounded_int("epochs", epochs, 0, MAX_EPOCHS),
                  epochs_decay=bounded_int("decay epochs", epochs_decay, 0, MAX_EPOCHS),
                  batch_size=bounded_int("batch size", batch_size, 1, MAX_BATCH),
                  lambda_l1=bounded_float("lambda L1", lambda_l1, 0.0, MAX_LAMBDA_L1),
                  lr=bounded_float("learning rate", lr, 0.0, MAX_LR, low_open=True),
                  ngf=bounded_int("ngf", ngf, 1, MAX_WIDTH))
    if values["epochs"] + values["epochs_decay"] < 1:
        raise Pix2PixError("need at least one epoch (epochs + decay epochs >= 1)")
    return values


def _layout_hint(config: TrainConfig) -> str:
    """Where a dataset's images are when the task finds none (its folder's names, never its path); for unpaired
    data, which collection is empty: "no training images" was all a trainA/ of pictures beside an empty trainB/
    was told."""
    from pix2pix_core.dataset_layout import unpaired_folders, where_images_are
    from pix2pix_core.images import has_images

    if config.task != "unpaired":
        return where_images_are(Path(config.data), config.task)
    empty = [f"{folder.name}/" for folder in unpaired_folders(config.data, "train") if not has_images(folder)]
    verb = "holds" if len(empty) == 1 else "hold"
    return f": {' and '.join(empty)} {verb} none (an unpaired run needs pictures in both trainA/ and trainB/)"


def check_run_size(config: TrainConfig, memory_limit: Optional[int] = None, disk_limit: Optional[int] = None) -> int:
    """Refuse a run with too many images, steps or too much memory, whose checkpoints and dataset disk cache
    would not fit in `disk_limit` bytes (the app's cap on its runs folder), or whose cache would not fit on
    its disk; returns its image count."""
    config.validate()
    for name in ("ndf", "ngf"):  # a fine-tuned model brings its own width, presets their ndf
        bounded_int(name, getattr(config, name), 1, MAX_WIDTH)
    images = count_training_images(config, at_most=MAX_IMAGES + 1)  # a huge folder is not listed whole
    if images == 0:
        raise Pix2PixError("the dataset holds no training images" + _layout_hint(config))
    if images > MAX_IMAGES:
        raise Pix2PixError(f"the dataset holds more than {MAX_IMAGES:,} training images; the app trains on at most "
                           f"{MAX_IMAGES:,} (use the command line for more)")
    steps = math.ceil(images / config.batch_size) * config.total_epochs
    if config.max_steps:
        steps = min(steps, config.max_steps)
    if steps > MAX_STEPS:
        raise Pix2PixError(f"this run would take {steps:,} steps; the app allows at most {MAX_STEPS:,} "
                           f"(fewer epochs or a larger batch)")
    estimate = check_training_memory(config, images, memory_budget(MEMORY_FRACTION, memory_limit),
                                     largest_training_image_pixels(config))
    # latest.safetensors and, while it is replaced, its new copy; and every kept epoch checkpoint
    kept = 2 + (config.total_epochs // config.save_every if config.save_every else 0)
    checkpoints = kept * estimate.checkpoint
    # a training set above the dataset budget is decoded into the disk cache: images x sides x 3 x load_size^2
    cache = dataset_cache_bytes(config, images)
    both = (f"this run's dataset cache ({gb(cache)}: {images:,} images decoded at {config.load_size} px) and "
            f"checkpoints ({gb(checkpoints)})")
    if disk_limit and checkpoints + cache > disk_limit:
        if not cache:
            raise Pix2PixError(f"this run's checkpoints would take about {gb(checkpoints)} of disk, above the "
                               f"app's {gb(disk_limit)} for training runs (a smaller ngf, or the command line)")
        raise Pix2PixError(f"{both} would take about {gb(cache + checkpoints)} of disk, above the app's "
                           f"{gb(disk_limit)} for training runs (fewer images, the Quick demo preset, or the command "
                           "line)")
    if cache:
        free = free_bytes(cache_root(config.cache_dir))
        if cache + checkpoints + FREE_DISK_MARGIN > free:
            raise Pix2PixError(f"{both} need about {gb(cache + checkpoints)} of disk, and the server has {gb(free)} "
                               f"free (it keeps {gb(FREE_DISK_MARGIN)} free); try again later, or with fewer images")
    return images


def dataset_budget_mb(memory_limit: Optional[int] = None) -> int:
    """TrainConfig.memory_budget_mb for the app: a quarter of the run's memory budget, at most 1024 MB.

    A dataset above it trains from the disk cache instead of being refused by the run's memory estimate
    (a run's budget of 0.5 GB would otherwise hold a 0.8 GB dataset in memory, and refuse it)."""
    budget = memory_budget(MEMORY_FRACTION, memory_limit)
    if budget <= 0:  # available memory unknown and no limit given: the trainer's default
        return MAX_DATASET_MB
    return min(MAX_DATASET_MB, int(budget * DATASET_FRACTION) // 2**20)


def form_direction(task: str) -> str:
    """The input side the form picks when `task` is chosen: the core's TASK_DIRECTIONS (facades' label map is B),
    except colorize, whose app runs have always stored AtoB (the command line's store BtoA). A colorizer reads
    photos, not halves, but the direction is part of its dataset cache's key: keeping AtoB keeps those caches."""
    return "AtoB" if task == "colorize" else TASK_DIRECTIONS[task]


def with_settings(config: TrainConfig, numbers: dict, direction: str,
                  memory_limit: Optional[int] = None) -> TrainConfig:
    """`config` with the form's numbers, its direction and a dataset budget taken from the app's memory budget."""
    # facades' label is B; a colorizer reads photos, not halves: one direction, so one dataset cache per folder
    # (an API client's direction, "BtoA" when left out, gave a second ~1 GB cache of the food photos); unpaired
    # data has no input side (a CycleGAN learns both ways)
    fixed = {"facades": TASK_DIRECTIONS["facades"], "colorize": form_direction("colorize"),
             "unpaired": config.direction}
    return replace(config, direction=fixed.get(config.task, direction),
                   memory_budget_mb=dataset_budget_mb(memory_limit), **numbers)


@dataclass(frozen=True)
class FormSettings:
    """The Train form's fields for a run that started: the job keeps them, so a page opened (or reloaded) while
    the run goes shows the settings that are training, not the form's defaults."""

    task: str
    data_folder: str  # relative to the data root; "" for the task's default dataset or an uploaded zip
    uploaded: bool  # the run trains on an uploaded zip (a file field cannot be filled again)
    direction: str
    preset: str
    epochs: int
    epochs_decay: int
    batch_size: int
    lambda_l1: float
    lr: float
    ngf: int
    start_from: str
    diff_augment: bool

    @classmethod
    def of(cls, config: TrainConfig, preset: str, data_folder: str, uploaded: bool, start_from: str) -> "FormSettings":
        """The settings of a run about to start: its numbers and direction as `config` trains them (a fine-tune's
        ngf is its model's, facades' direction BtoA), the rest as the Start asked."""
        return cls(task=config.task, data_folder=data_folder, uploaded=uploaded, direction=config.direction,
                   preset=preset, epochs=config.epochs, epochs_decay=config.epochs_decay,
                   batch_size=config.batch_size, lambda_l1=config.lambda_l1, lr=config.lr, ngf=config.ngf,
                   start_from=start_from, diff_augment=bool(config.augments))
