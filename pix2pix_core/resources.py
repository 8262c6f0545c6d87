"""How much memory a training run will take, estimated before it starts, and how much there is.

A run that does not fit is far better refused with numbers than started: it grows until the kernel kills
the process (and, in the app, every other user with it). The estimate needs no weights and no data: the
networks are built on PyTorch's "meta" device, where a forward pass computes shapes only.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

import torch
from PIL import Image

from .config import TrainConfig
from .data import cache_location, decoded_size, held_in_memory, matched_pairs, spread_evenly
from .dataset_layout import paired_folders, split_folder, unpaired_folders
from .errors import Pix2PixError
from .images import MAX_PIXELS, MAX_SIDE, image_names, load_folder_images

# Bytes per parameter during training: fp32 weights + gradients + two Adam moments (16), a bf16 copy
# under autocast (2), and the checkpoint's copies of weights and moments while it is written (12).
BYTES_PER_PARAMETER = 30
# The averaged copy of G (ema_decay > 0): fp32 weights and buffers, and their copy in a checkpoint being written.
BYTES_PER_AVERAGED_VALUE = 8
# Activations are kept for the backward pass and matched by their gradients during it.
ACTIVATION_FACTOR = 2
FIXED_OVERHEAD = 200_000_000  # thread pools, oneDNN caches, the sample grid: measured ~200 MB at ngf 16
# Decoding: data._decode_stream decodes two files at once, each at full size before it is resized. Peak
# bytes per pixel of the file, measured on a 49 MP JPEG: a colour photo 8.1, a facades A|B pair 23.7 (its
# label half is cleaned at full size); rounded up. A paired item opens two files (A and B).
DECODE_THREADS = 2
DECODE_BYTES_PER_PIXEL = {"facades": 26, "paired": 20}
OTHER_DECODE_BYTES_PER_PIXEL = 10


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a training run needs, by cause; `total` is what is compared with the budget."""

    parameters: int  # G and D weights, gradients, Adam moments, checkpoint copies (+ the averaged G)
    activations: int  # one step's feature maps (G once, D three times) and their gradients
    dataset: int  # the decoded training images at load size (uint8); 0 when read from the disk cache
    overhead: int = FIXED_OVERHEAD
    disk_cache: bool = False  # the dataset is above config.memory_budget_mb: read from the disk cache
    checkpoint: int = 0  # one training checkpoint on disk (training_checkpoint_size: the facades paper settings,
    #                      ngf 64: about 0.69 GB)
    decoding: int = 0  # the largest source images at full size while they are decoded (DECODE_THREADS at once)

    @property
    def total(self) -> int:
        return self.parameters + self.activations + self.dataset + self.decoding + self.overhead

    def describe(self) -> str:
        decoding = f", decoding the largest images {gb(self.decoding)}" if self.decoding >= 50_000_000 else ""
        return (f"{gb(self.total)} (networks {gb(self.parameters)}, activations {gb(self.activations)}, "
                f"dataset {'read from the disk cache' if self.disk_cache else gb(self.dataset)}{decoding}, "
                f"overhead {gb(self.overhead)})")


def gb(n_bytes: float) -> str:
    return f"{n_bytes / 1e9:.2f} GB"


def estimate_training_memory(config: TrainConfig, n_images: int, largest_pixels: int = 0) -> MemoryEstimate:
    """Peak memory of training `config` on `n_images` images (conservative: measured ~1.2x too high).

    A training set above `config.memory_budget_mb` is read from the disk cache item by item (data.py):
    it then costs the process nothing beyond a batch, which the activations already count. `largest_pixels`
    (`largest_training_image_pixels`) adds the decoding of the largest source files at full size: six
    7000 x 7000 photos were estimated at 0.24 GB without it and took 0.80 GB."""
    batch = max(1, min(config.batch_size, n_images))
    config = replace(config, batch_size=batch)
    parameters, averaged, activations = _network_sizes(config)
    in_memory = held_in_memory(config, n_images, config.load_size)
    dataset = decoded_size(config, n_images, config.load_size) if in_memory else 0
    if config.task == "unpaired":  # n_images is the larger collection; both are held: at most twice that
        dataset *= 2
    per_pixel = DECODE_BYTES_PER_PIXEL.get(config.task, OTHER_DECODE_BYTES_PER_PIXEL)
    return MemoryEstimate(parameters * BYTES_PER_PARAMETER + averaged * BYTES_PER_AVERAGED_VALUE,
                          activations * 4 * ACTIVATION_FACTOR, dataset, disk_cache=not in_memory,
                          checkpoint=training_checkpoint_size(config),
                          decoding=DECODE_THREADS * largest_pixels * per_pixel)


def training_checkpoint_size(config: TrainConfig) -> int:
    """Bytes of one checkpoint of a run of `config`, as its model counts them (`checkpoint_bytes`, what the run
    folder checks for), the model built on the meta device: no weights. A CycleGAN's history pools are counted
    at fp32 unless --precision names another (autocast's precision depends on the device the run will take)."""
    from .distributed import Context
    from .train import MODELS  # torch-heavy: only when estimating

    with torch.device("meta"):
        return MODELS[config.model](config, Context(device=torch.device("meta"))).checkpoint_bytes()


def _network_sizes(config: TrainConfig) -> tuple[int, int, int]:
    """(parameters of G and D, values of the averaged G, activation elements of one step), from shapes only.

    D is the network training builds (num_D PatchGANs at 1, 1/2, 1/4 ... resolution, spectral norm or not),
    so its parameters and every scale's activations are counted as they are; an L1-only run (use_gan off)
    builds none."""
    from .networks import build_discriminator, build_generator  # torch-heavy: only when estimating

    with torch.device("meta"):
        generator = build_generator(config)
        discriminator = build_discriminator(config) if config.use_gan else None
    networks = [net for net in (generator, discriminator) if net is not None]
    counts = {"n": 0}

    def count(_module, _inputs, output):
        if isinstance(output, torch.Tensor):
            counts["n"] += output.numel()

    leaves = [m for net in networks for m in net.modules() if not list(m.children())]
    hooks = [m.register_forward_hook(count) for m in leaves]
    try:
        side = config.crop_size
        source = torch.empty(config.batch_size, config.input_nc, side, side, device="meta")
        with torch.no_grad():
            fake = generator(source)
            g_elements, counts["n"] = counts["n"], 0
            pair = torch.cat([source, fake], 1) if config.conditional_D else fake
            if discriminator is not None:
                discriminator(pair)
            d_elements = counts["n"]
    except (ValueError, RuntimeError) as exc:  # e.g. instance norm on D's 1 x 1 map of a 16 px crop
        networks_named = f"{config.netG} G" + (f" and {config.netD} D" if discriminator is not None else "")
        raise Pix2PixError(f"{networks_named} cannot run on {config.crop_size} px crops "
                           f"({str(exc).splitlines()[0][:120]}); use a larger --crop-size") from None
    finally:
        for hook in hooks:
            hook.remove()
    # D runs on the fake pair and the real pair in its step, then on the fake pair again for G's loss
    activations = g_elements + 3 * d_elements
    if config.model == "cyclegan":
        # two generators and two discriminators of these shapes; the step runs G and F twice each (translate,
        # cycle back), twice more for the identity loss, and each D three times (G's loss, real, pooled fake)
        g_passes = 6 if config.lambda_identity else 4
        activations = g_passes * g_elements + 6 * d_elements
    if config.colour_loss == "classification":  # outside G's layers: the readout's softmax, the loss's log-softmax
        cells = (fake.shape[-2] // generator.stride) * (fake.shape[-1] // generator.stride)
        activations += 2 * fake.shape[0] * generator.centres.shape[0] * cells  # (N, Q, H / stride, W / stride)
    if config.use_gan and config.lambda_feat:  # feature matching: G's step also keeps D's features of the real pair
        with torch.no_grad():
            activations += sum(t.numel() for t in _flatten(discriminator(pair, features=True)))
    parameters = sum(p.numel() for net in networks for p in net.parameters())
    if config.model == "cyclegan":
        parameters *= 2
    averaged = 0
    if config.ema_decay:  # the averaged copy of G: its weights and buffers (batch-norm statistics)
        averaged = sum(t.numel() for t in (*generator.parameters(), *generator.buffers()))
    return parameters, averaged, activations


def _flatten(outputs) -> list[torch.Tensor]:
    """The tensors of a (possibly nested, one list per scale) discriminator output."""
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    return [t for item in outputs for t in _flatten(item)]


def count_training_images(config: TrainConfig, at_most: Optional[int] = None) -> int:
    """How many training images `config` will load, from the file listing alone (nothing decoded). With
    `at_most`, the count stops there: a folder of 100,000 files is not listed whole to say it holds too many
    (paired data's A/ and B/ are: which A file has a partner is known once B/ is listed; names only, no stat)."""
    counts = collection_counts(config, at_most)
    return max(counts) if all(counts) else 0  # unpaired: an epoch walks the larger of trainA/ and trainB/


def collection_counts(config: TrainConfig, at_most: Optional[int] = None) -> list[int]:
    """The training images of each collection `config` loads: trainA/ and trainB/ of unpaired data, else the
    one set (pairs of paired data), each counted as `count_training_images` counts."""
    if config.task == "unpaired":
        return _unpaired_counts(config, at_most)
    folders, cap = _training_folders(config), _cap(config.max_images, at_most)
    if config.task == "paired":
        a_dir, b_dir = folders
        b_stems = {Path(name).stem for name in image_names(b_dir)}
        pairs = (name for name in image_names(a_dir) if Path(name).stem in b_stems)
        return [sum(1 for _ in itertools.islice(pairs, cap))]
    return [len(image_names(folders[0], cap))]


def _cap(max_images: Optional[int], at_most: Optional[int]) -> Optional[int]:
    """The lower of two counts, each None or 0 for no limit (max_images' convention); None for none."""
    limits = [limit for limit in (max_images, at_most) if limit]
    return min(limits) if limits else None


def _training_folders(config: TrainConfig) -> list[Path]:
    """The folders `config` trains from: trainA/ and trainB/ (unpaired), train/A and train/B (paired), or the
    train split's folder."""
    if config.task == "unpaired":
        return list(unpaired_folders(config.data, "train"))
    folder = split_folder(config.data, "train")
    if config.task != "paired":
        return [folder]
    return list(paired_folders(folder))


def training_cache_folders(config: TrainConfig) -> list[Path]:
    """The disk-cache folders training `config` reads, or builds when its training set is above
    `config.memory_budget_mb` (data.cache_location: one per training folder, at load size). Whether they exist
    is not checked."""
    folders = list(unpaired_folders(config.data, "train")) if config.task == "unpaired" \
        else [split_folder(config.data, "train")]
    return [cache_location(config, folder, config.load_size)[0] for folder in folders]


def _unpaired_counts(config: TrainConfig, at_most: Optional[int] = None) -> list[int]:
    """The images trainA/ and trainB/ each load (up to max_images, and up to `at_most`)."""
    cap = _cap(config.max_images, at_most)
    return [len(image_names(side, cap)) for side in _training_folders(config)]


def dataset_cache_bytes(config: TrainConfig, n_images: int) -> int:
    """Bytes of disk cache training `config` on `n_images` images writes (images x pictures x 3 x load_size^2),
    folder by folder as the loader decides: nothing for one held in memory, or whose cache is already there to
    be reused (not counted: a rebuild after the files changed, which replaces the old cache once complete).
    A CycleGAN's two collections are decided apart, each by its own count."""
    counts = _unpaired_counts(config) if config.task == "unpaired" else [n_images]
    return sum(decoded_size(config, count, config.load_size)
               for count, path in zip(counts, training_cache_folders(config))
               if not held_in_memory(config, count, config.load_size) and not path.is_dir())


def largest_training_image_pixels(config: TrainConfig) -> int:
    """Width x height of the largest image file among those training `config` decodes (its max_images
    only), from the file headers (nothing decoded; an unreadable file counts 0, as loading skips it)."""
    largest = 0
    for path in training_files(config):
        try:
            with Image.open(path) as image:
                pixels, side = image.width * image.height, max(image.size)
        except (OSError, ValueError, Image.DecompressionBombError):
            continue
        if pixels <= MAX_PIXELS and side <= MAX_SIDE:  # larger files are refused when loading, never decoded
            largest = max(largest, pixels)
    return largest


def training_files(config: TrainConfig) -> list[Path]:
    """The files training `config` decodes, as the loaders pick them: max_images spread evenly over each unpaired
    collection or the train split, or over paired data's matched pairs (both files of each)."""
    folders = _training_folders(config)
    if config.task == "paired":
        pairs = matched_pairs(*(load_folder_images(folder) for folder in folders))
        return [path for pair in spread_evenly(pairs, config.max_images) for path in pair]
    return [path for folder in folders for path in spread_evenly(load_folder_images(folder), config.max_images)]


def available_memory() -> int:
    """Bytes the system can still give this process without swapping (MemAvailable on Linux), and at most
    what its container's memory limit leaves (cgroup v2 or v1): in Docker or on a hosted Space the host's
    MemAvailable is far above the limit, and a run past the limit is killed, not refused."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    free = int(line.split()[1]) * 1024
                    limited = container_memory_left()
                    return free if limited is None else min(free, limited)
    except (OSError, ValueError, IndexError):
        pass
    try:  # other Unixes: free pages only, an underestimate
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 0  # unknown: callers treat 0 as "no check possible"


# (limit, usage, stat file, the stat's reclaimable page-cache key) for cgroup v2, then v1
CGROUP_FILES = (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current", "/sys/fs/cgroup/memory.stat",
                 "inactive_file"),
                ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes",
                 "/sys/fs/cgroup/memory/memory.stat", "total_inactive_file"))


def container_memory_left(files=CGROUP_FILES) -> Optional[int]:
    """Bytes this process's cgroup may still use: its limit minus its usage, where the usage leaves out the
    page cache the kernel would reclaim (inactive files, as `docker stats` counts it; a container that has
    read its dataset sits near its limit in cache alone). None without a limit."""
    for limit_file, usage_file, stat_file, inactive_key in files:
        try:
            limit_text = Path(limit_file).read_text().strip()
            usage = int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit_text == "max" or not limit_text.isdigit() or int(limit_text) >= 2**60:  # v1's "no limit"
            return None
        return max(0, int(limit_text) - usage + _stat_value(stat_file, inactive_key))
    return None


def _stat_value(stat_file: str, key: str) -> int:
    try:
        for line in Path(stat_file).read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


def memory_budget(fraction: float = 0.75, limit_bytes: Optional[int] = None) -> int:
    """The bytes a run may use: `fraction` of the available memory, and at most `limit_bytes` if given."""
    budget = int(available_memory() * fraction)
    if limit_bytes:
        budget = min(budget, limit_bytes) if budget else limit_bytes
    return budget


def check_training_memory(config: TrainConfig, n_images: int, budget: int, largest_pixels: int = 0) -> MemoryEstimate:
    """Raise Pix2PixError, with the numbers, when the run would need more than `budget` bytes."""
    estimate = estimate_training_memory(config, n_images, largest_pixels)
    if budget > 0 and estimate.total > budget:
        raise Pix2PixError(
            f"this run would need about {estimate.describe()}, above the memory budget of {gb(budget)}; "
            f"lower the batch size, ngf or the number of images")
    return estimate
