"""Datasets in the standard pix2pix formats, decoded once into memory, with paired jitter.

Formats:
- aligned (and `facades`): each file is A|B side by side; `direction` picks which half is the input.
- paired: a folder with `A/` and `B/` sub-folders holding files of the same names.
- colorize: any folder of colour photos; input = Lab lightness L, target = colour channels ab.

Every image is decoded and resized once (to `load_size` for training, `crop_size` for testing) and
kept as uint8: a few thousand 286x286 images fit in memory, and a 2-core CPU should not re-decode
JPEGs every epoch. A split whose decoded size is above `config.memory_budget_mb` is streamed instead
into an on-disk uint8 cache (`cache.py`), built once and reused while its files are unchanged, and
items are read from it lazily: the same bytes, so the same batches as in memory. Training jitter
(random crop + mirror) is applied per item, identically to both images of a pair, from a generator
seeded by (seed, epoch, index) so runs and resumes are exact. Which folders a task reads, and the hints when a
folder holds another task's data, are dataset_layout.py's.
"""

from __future__ import annotations

import inspect
import threading
import warnings
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence, TypeVar, Union

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from . import cache as disk_cache
from .color import rgb_to_lab_normalized, to_signed
from .config import TrainConfig
from .dataset_layout import (pair_shaped, paired_folders, split_folder, unpaired_folders, warn_if_another_task,
                             where_collection_images_are, where_images_are)
from .errors import ImageError, LoadingStopped, Pix2PixError
from .images import load_folder_images, open_image, resize_photo
from .palette import label_map_for_network


def _resize_square(image: Image.Image, size: int) -> Image.Image:
    return image.resize((size, size), Image.BICUBIC)


def _resize_center_crop(image: Image.Image, size: int) -> Image.Image:
    """Shorter side to `size` (`images.resize_photo`), then centre crop: photos keep their aspect ratio."""
    width, height = image.size
    scale = size / min(width, height)
    new = (max(size, round(width * scale)), max(size, round(height * scale)))
    image = resize_photo(image, new)
    left, top = (new[0] - size) // 2, (new[1] - size) // 2
    return image.crop((left, top, left + size, top + size))


def _to_uint8(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1).contiguous()


def is_grayscale(image: Image.Image, tolerance: int = 6) -> bool:
    """True when a photo carries no colour (useless as a colorization target)."""
    small = np.asarray(image.convert("RGB").resize((64, 64)), dtype=np.int16)
    return int((small.max(-1) - small.min(-1)).max()) <= tolerance


@dataclass
class Item:
    """One decoded example: input and target pictures as uint8 (3, S, S), and its file name."""

    name: str
    source: torch.Tensor
    target: Optional[torch.Tensor]  # None for colorization: the target is the source's colour


ProgressFn = Callable[[int, int], None]  # progress(done, total) while decoding
StopFlag = Union[threading.Event, Callable[[], bool], None]  # set (or returning True) stops the loading


class CachedItems(Sequence[Item]):
    """Items read lazily from an on-disk cache: a fresh uint8 tensor per access, nothing kept in memory."""

    def __init__(self, cache: disk_cache.DiskCache, indices: Optional[range] = None):
        self.cache = cache
        self.indices = range(len(cache)) if indices is None else indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return CachedItems(self.cache, self.indices[index])
        position = self.indices[index]
        pictures = [torch.from_numpy(p) for p in self.cache.read(position)]
        return Item(self.cache.names[position], pictures[0], pictures[1] if len(pictures) > 1 else None)


B_CHOICE_SALT = 0x5DEECE66D  # UnpairedDataset.b_index's seeds: apart from every crop's (jitter_seed)


def jitter_seed(seed: int, epoch: int, index: int) -> int:
    """The seed of one item's jitter in one epoch. Reduced mod 2**63, torch's seed range: unreduced, a
    date-like --seed such as 20240101 overflowed it (every seed below about 1.8 million is unchanged)."""
    return ((seed * 1_000_003 + epoch) * 10_000_019 + index) % 2**63


class PairDataset(torch.utils.data.Dataset):
    """Pairs (in memory, or read from the disk cache) with paired jitter; network-ready tensors in [-1, 1]."""

    def __init__(self, items: Sequence[Item], task: str, crop_size: int, train: bool, flip: bool = True, seed: int = 0):
        if not items:
            raise Pix2PixError("the dataset is empty: no usable images found")
        self.items, self.task, self.crop_size = items, task, crop_size
        self.train, self.flip, self.seed, self.epoch = train, flip, seed, 0

    def __len__(self) -> int:
        return len(self.items)

    def set_epoch(self, epoch: int) -> None:
        """Jitter depends on (seed, epoch, index), so an interrupted epoch replays identically."""
        self.epoch = epoch

    def jitter_params(self, index: int, size: int) -> tuple[int, int, bool]:
        """Random crop corner and mirror flag for one item, the same for both images of the pair."""
        if not self.train:
            return (size - self.crop_size) // 2, (size - self.crop_size) // 2, False
        generator = torch.Generator().manual_seed(jitter_seed(self.seed, self.epoch, index))
        top, left = torch.randint(0, size - self.crop_size + 1, (2,), generator=generator).tolist()
        flip = self.flip and bool(torch.randint(0, 2, (1,), generator=generator))
        return top, left, flip

    def jittered(self, index: int, draw: Optional[int] = None) -> list[torch.Tensor]:
        """Item `index`'s pictures (source, and target when it has one) cropped and mirrored alike, in [0, 1].
        `draw` (default `index`) seeds the jitter: an item seen several times in an epoch gets a crop each time."""
        item = self.items[index]
        top, left, flip = self.jitter_params(index if draw is None else draw, item.source.shape[-1])
        pictures = [item.source] + ([item.target] if item.target is not None else [])
        pictures = [p[:, top:top + self.crop_size, left:left + self.crop_size] for p in pictures]
        if flip:
            pictures = [p.flip(-1) for p in pictures]
        return [p.float().div(255.0) for p in pictures]

    def __getitem__(self, index: int) -> dict:
        item = self.items[index]
        pictures = self.jittered(index)
        if self.task == "colorize":
            lightness, ab = rgb_to_lab_normalized(pictures[0])
            return {"input": lightness, "target": ab, "name": item.name}
        return {"input": to_signed(pictures[0]), "target": to_signed(pictures[1]), "name": item.name}


def _raise_if_stopped(stop: StopFlag) -> None:
    """Raise LoadingStopped when `stop` (a threading.Event or a callable) says so."""
    if stop is None:
        return
    is_set = getattr(stop, "is_set", None)
    if is_set() if is_set is not None else stop():
        raise LoadingStopped("stopped while loading")


def _decode_stream(paths: list[Path], decode: Callable[[Path], Optional[Item]], desc: str, skipped: list[str],
                   progress: Optional[ProgressFn] = None, stop: StopFlag = None) -> Iterator[Item]:
    """Decode files in order with two threads (PIL releases the GIL), at most a few images ahead of the
    consumer (bounded memory); unreadable files are skipped (their messages appended to `skipped`).
    `stop` is checked between images and raises LoadingStopped("stopped while loading")."""

    def safe(path: Path) -> Optional[Item]:
        try:
            return decode(path)
        except ImageError as exc:
            skipped.append(str(exc))
            return None

    total, ahead = len(paths), 4
    remaining = iter(paths)
    pool = ThreadPoolExecutor(max_workers=2)
    pending: deque = deque()
    bar = tqdm(total=total, desc=desc, unit="img", leave=False, disable=total < 50)
    try:
        for path in remaining:
            pending.append(pool.submit(safe, path))
            if len(pending) >= ahead:
                break
        done = 0
        while pending:
            _raise_if_stopped(stop)
            result = pending.popleft().result()
            next_path = next(remaining, None)
            if next_path is not None:
                pending.append(pool.submit(safe, next_path))
            done += 1
            bar.update(1)
            if progress is not None:
                progress(done, total)
            if result is not None:
                yield result
    finally:
        bar.close()
        pool.shutdown(wait=True, cancel_futures=True)


SHOWN = 3  # files named in one warning line


def some_names(names: Sequence[str], sep: str = "; ") -> str:
    """The first SHOWN of `names` joined by `sep`, with how many more there are."""
    more = len(names) - SHOWN
    return sep.join(names[:SHOWN]) + (f"{sep}and {more} more" if more > 0 else "")


def warn_skipped(skipped: list[str], stacklevel: int = 4) -> None:
    """One warning naming the unusable files that were left out (a split's read, a CycleGAN test's pictures)."""
    if skipped:
        # sorted: the decoding threads append in the order they finish
        warnings.warn(f"skipped {len(skipped)} unusable image(s): {some_names(sorted(skipped))}",
                      stacklevel=stacklevel)


def refuse_if_none_usable(folder: Path, usable: int, skipped: list[str]) -> None:
    """Every file skipped: the reasons are the error (as warnings before an "empty dataset" error, the app
    showed only that error, and its dataset line had counted the files as training images)."""
    if not usable and skipped:
        raise Pix2PixError(f"none of the {len(skipped)} image(s) in {folder} is usable: {some_names(sorted(skipped))}")


def pictures_per_item(config: TrainConfig) -> int:
    """Colorization keeps the photo only (the target is its colour), unpaired data one picture per
    collection item; pairs keep both pictures."""
    return 1 if config.task in ("colorize", "unpaired") else 2


def decoded_size(config: TrainConfig, n_images: int, size: int) -> int:
    """Bytes of `n_images` decoded as uint8 at `size` x `size`."""
    return n_images * pictures_per_item(config) * 3 * size * size


def held_in_memory(config: TrainConfig, n_images: int, size: int) -> bool:
    """Whether a split of `n_images` is decoded into memory; above `config.memory_budget_mb` it is read
    from the disk cache instead (resources.py's estimate follows this decision)."""
    return decoded_size(config, n_images, size) <= config.memory_budget_mb * 2**20


def cache_location(config: TrainConfig, folder: Path, size: int) -> tuple[Path, dict]:
    """The disk-cache folder of `folder` decoded at `size` for `config`, and the parameters its key holds: the
    loader builds it there, the app keeps, counts and prunes it (resources.training_cache_folders)."""
    params = {"task": config.task, "direction": config.direction, "size": size}
    return disk_cache.cache_dir_for(disk_cache.cache_root(config.cache_dir), folder, params), params


@dataclass
class _Loader:
    """Decodes a file list into memory, or through the disk cache when it is above the memory budget."""

    config: TrainConfig
    folder: Path
    size: int
    progress: Optional[ProgressFn] = None
    stop: StopFlag = None

    def __call__(self, paths: list[Path], decode: Callable[[Path], Optional[Item]], desc: str,
                 files: Optional[list[Path]] = None, notes: Optional[list[str]] = None) -> Sequence[Item]:
        """`notes`: the list `decode` appends its findings to; from a reused disk cache, the ones kept when it
        was built (nothing is decoded then)."""
        sides = pictures_per_item(self.config)
        if held_in_memory(self.config, len(paths), self.size):
            skipped: list[str] = []
            items = list(_decode_stream(paths, decode, desc, skipped, self.progress, self.stop))
            refuse_if_none_usable(self.folder, len(items), skipped)
            warn_skipped(skipped)
            return items
        return self._cached(paths, decode, desc, files or paths, sides, notes)

    def _cached(self, paths: list[Path], decode: Callable[[Path], Optional[Item]], desc: str, files: list[Path],
                sides: int, notes: Optional[list[str]]) -> CachedItems:
        path, params = cache_location(self.config, self.folder, self.size)
        root = path.parent
        key = disk_cache.cache_key(disk_cache.files_digest(self.folder, files), params)
        cache = disk_cache.open_cache(path, key)
        if cache is None:
            _raise_if_stopped(self.stop)
            skipped: list[str] = []
            records = ((item.name, [p.numpy() for p in (item.source, item.target) if p is not None])
                       for item in _decode_stream(paths, decode, desc + " into the disk cache", skipped,
                                                  self.progress, self.stop))
            try:
                cache = disk_cache.build_cache(path, key, records, len(paths), sides, self.size, skipped,
                                               while_waiting=lambda: _raise_if_stopped(self.stop), notes=notes)
            except OSError as exc:
                raise Pix2PixError(f"could not write the dataset cache in {root}: {exc.strerror or exc}; "
                                   f"set PIX2PIX_CACHE (or cache_dir) to a writable folder") from exc
            if self.progress is not None and inspect.getgeneratorstate(records) == inspect.GEN_CREATED:
                self.progress(len(paths), len(paths))  # another process built it while this one waited
        elif self.progress is not None:
            self.progress(len(paths), len(paths))
        refuse_if_none_usable(self.folder, len(cache.names), cache.skipped)
        warn_skipped(cache.skipped)
        if notes is not None:
            notes[:] = cache.notes
        return CachedItems(cache)


T = TypeVar("T")


def seeded_sample(items: Sequence[T], count: int, seed: int) -> list[T]:
    """`count` of the items chosen at random with `seed`, kept in their order (all when count >= len):
    the same seed picks the same photos for every model scored against them."""
    if count >= len(items):
        return list(items)
    chosen = np.random.default_rng(seed).choice(len(items), count, replace=False)
    return [items[int(i)] for i in sorted(chosen)]


def spread_evenly(items: Sequence[T], count: Optional[int]) -> list[T]:
    """`count` of the items spread evenly over them, kept in order (the nearest to indices i * len / count; all
    when count is None, 0 or >= len): training's max_images. Datasets are often sorted by class, and the first
    100 food photos are all chicken curry; no seed, so a resumed run picks the same images."""
    if not count or count >= len(items):
        return list(items)
    return [items[(2 * i * len(items) + count) // (2 * count)] for i in range(count)]


def _limit(paths: list, limit: Optional[int], sample_seed: Optional[int] = None) -> list:
    """The first `limit` paths (all when None or 0), or a seeded random sample of them kept in order."""
    if not limit:
        return paths
    return paths[:limit] if sample_seed is None else seeded_sample(paths, limit, sample_seed)


def _picker(config: TrainConfig, train: bool, limit: Optional[int],
            sample_seed: Optional[int]) -> Callable[[list], list]:
    """How load_items picks from the file-name-ordered list: `limit` (the first ones, or a seeded sample), else
    training's `config.max_images` spread evenly, else all."""
    if limit is not None:
        return lambda paths: _limit(paths, limit, sample_seed)
    return lambda paths: spread_evenly(paths, config.max_images if train else None)


def load_items(config: TrainConfig, split: str, train: bool, progress: Optional[ProgressFn] = None,
               stop: StopFlag = None, limit: Optional[int] = None,
               sample_seed: Optional[int] = None, model: Optional[str] = None,
               advise: bool = True) -> Sequence[Item]:
    """Decode the split named by `config` (sized for training jitter or for testing): a list in memory,
    or CachedItems read from the disk cache when the decoded split is above `config.memory_budget_mb`.

    Data that looks wrong for the task is warned about (images of another task, paired files without a
    partner, aligned files that are not twice as wide as tall); `model` names the model the task came from
    (`test`: the hint then asks about the data or the model, not --task); advise=False skips these warnings
    (a second read of the same dataset in one command). Unusable files are skipped with a warning.

    Only `limit` images are decoded when it is given: the first ones in file-name order, or with
    `sample_seed` a seeded random sample (in file-name order); otherwise all of them, or for training
    `config.max_images` spread evenly over the file-name order (spread_evenly).

    `progress(done, total)` is called after each image; `stop` (a threading.Event or a callable) is
    checked between images and raises LoadingStopped("stopped while loading")."""
    folder = split_folder(config.data, split)
    size = config.load_size if train else config.crop_size
    load = _Loader(config, folder, size, progress, stop)
    pick = _picker(config, train, limit, sample_seed)
    if config.task == "paired":
        return _paired_items(folder, size, pick, config.direction, load, advise)
    paths = pick(load_folder_images(folder))
    if not paths:
        raise Pix2PixError(f"no images found in {folder}{where_images_are(folder, config.task)}")
    if advise and warn_if_another_task(paths, config.task, folder, model=model):
        advise = False  # one warning about the folder: its files are not listed again as not shaped like pairs
    if config.task == "colorize":
        def decode(path: Path) -> Optional[Item]:
            image = open_image(path)
            if is_grayscale(image):
                raise ImageError(f"{path.name}: grayscale photo, no colour to learn from")
            return Item(path.name, _to_uint8(_resize_center_crop(image, size)), None)
        return load(paths, decode, f"decoding {folder.name}")

    not_pairs: list[str] = []  # used, but not shaped like a pair (from the decoding threads, or a reused cache)

    def decode_aligned(path: Path) -> Item:
        image = open_image(path)
        width, height = image.size
        if width < 2 * 8 or width % 2:
            raise ImageError(f"{path.name}: {width}x{height} is not an A|B side-by-side pair (even width needed)")
        if not pair_shaped(width, height):
            not_pairs.append(f"{path.name} ({width}x{height})")
        half_a = image.crop((0, 0, width // 2, height))
        half_b = image.crop((width // 2, 0, width, height))
        half_a = _resize_square(half_a, size)
        # facades: B is the label map, cleaned and NEAREST-resized exactly as `translate` does it
        half_b = label_map_for_network(half_b, size) if config.task == "facades" else _resize_square(half_b, size)
        source, target = (half_a, half_b) if config.direction == "AtoB" else (half_b, half_a)
        return Item(path.name, _to_uint8(source), _to_uint8(target))

    items = load(paths, decode_aligned, f"decoding {folder.name}", notes=not_pairs)  # filled from a reused cache
    if not_pairs and advise:
        # an even-width photo (square, 20x20, 3000x30) is cut in two like a pair: a picture and its other half
        warnings.warn(f"{len(not_pairs)} of {len(items)} images in {folder} are not about twice as wide as tall, "
                      f"so not A|B pairs, yet each is cut in half and used: {some_names(sorted(not_pairs), ', ')}; "
                      "move them out unless they are pairs", stacklevel=2)
    return items


def _paired_items(folder: Path, size: int, pick: Callable[[list], list], direction: str, load: _Loader,
                  advise: bool = True) -> Sequence[Item]:
    a_dir, b_dir = paired_folders(folder)
    a_files, b_files = load_folder_images(a_dir), load_folder_images(b_dir)
    a_stems, b_stems = _by_stem(a_files), _by_stem(b_files)
    _refuse_name_clashes(folder, a_stems, b_stems)
    pairs = matched_pairs(a_files, b_files)
    if not pairs:
        examples = ", ".join(f"{side}/{files[0].name}" for side, files in (("A", a_files), ("B", b_files)) if files)
        raise Pix2PixError(f"no file names match between {a_dir} and {b_dir} (pairs are matched by name without "
                           f"extension{': e.g. ' + examples if examples else ''}): rename one side's files")
    alone = [f"{some_names(names, ', ')} in {side}/" for side, names in
             (("A", [a.name for a in a_files if a.stem not in b_stems]),
              ("B", [b.name for b in b_files if b.stem not in a_stems])) if names]
    if alone and advise:
        warnings.warn(f"paired: {len(pairs)} of {len(a_files)} files in {a_dir} have a partner in {b_dir} (matched by "
                      f"name without extension); left out, with no partner: {'; '.join(alone)}", stacklevel=3)
    pairs = pick(pairs)
    by_path = dict(pairs)

    def decode(path_a: Path) -> Item:
        image_a, image_b = open_image(path_a), open_image(by_path[path_a])
        source, target = (image_a, image_b) if direction == "AtoB" else (image_b, image_a)
        return Item(path_a.name, _to_uint8(_resize_square(source, size)), _to_uint8(_resize_square(target, size)))

    return load([a for a, _ in pairs], decode, f"decoding {folder.name}", files=[p for pair in pairs for p in pair])


def matched_pairs(a_files: Sequence[Path], b_files: Sequence[Path]) -> list[tuple[Path, Path]]:
    """Each A file with its partner in B (the same name without extension), in A's order: what paired data
    trains on. A name held by two files of B takes the first (training refuses such clashes first)."""
    b_by_stem: dict[str, Path] = {}
    for path in b_files:
        b_by_stem.setdefault(path.stem, path)
    return [(a, b_by_stem[a.stem]) for a in a_files if a.stem in b_by_stem]


def _by_stem(files: Sequence[Path]) -> dict[str, list[Path]]:
    grouped: dict[str, list[Path]] = {}
    for path in files:
        grouped.setdefault(path.stem, []).append(path)
    return grouped


def _refuse_name_clashes(folder: Path, a_stems: dict[str, list[Path]], b_stems: dict[str, list[Path]]) -> None:
    """Pairs are matched by name without extension, so with a.png and a.jpg in B/ (or in A/) no rule knows
    which file was meant, and a wrong pair trains without a sign. Names without a partner are unused: they may clash.
    `a_stems`, `b_stems`: each side's files by name (_by_stem)."""
    shared = a_stems.keys() & b_stems.keys()
    clashes = [f"{', '.join(p.name for p in stems[stem])} in {side}/"
               for side, stems in (("A", a_stems), ("B", b_stems)) for stem in sorted(shared) if len(stems[stem]) > 1]
    if clashes:
        names = f"{len(clashes)} names in {folder} have" if len(clashes) > 1 else f"1 name in {folder} has"
        raise Pix2PixError(f"paired: {names} more than one file, so which one is paired is not clear "
                           f"(pairs are matched by name without extension): {some_names(clashes)}; keep one file of "
                           "each name in A/ and in B/")


def build_dataset(config: TrainConfig, split: str = "train", train: bool = True,
                  progress: Optional[ProgressFn] = None, stop: StopFlag = None, world_size: int = 1) -> PairDataset:
    """The dataset for a split: jittered for training, plain resized crops for testing.
    `progress` and `stop` as in `load_items`; `world_size`: the processes that share the training set
    (torchrun), for the batch-size warning. Unpaired data gives an UnpairedDataset."""
    if config.task == "unpaired":
        return build_unpaired_dataset(config, split, train, progress, stop, world_size)
    items = load_items(config, split, train, progress=progress, stop=stop)
    dataset = PairDataset(items, config.task, config.crop_size, train=train, flip=config.flip, seed=config.seed)
    if train:
        _warn_if_batch_too_large(config, len(dataset), world_size)
    return dataset


def rank_share(count: int, world_size: int) -> int:
    """The items each of `world_size` processes trains on per epoch: train.py's DistributedSampler (drop_last
    off) pads the dataset to equal shares, so `count / world_size` rounded up."""
    return -(-count // max(world_size, 1))


def _warn_if_batch_too_large(config: TrainConfig, count: int, world_size: int = 1) -> None:
    """A batch holds at most a process's share of the training set (all of it without torchrun): a larger
    batch size is not what the run trains with, though its header and config.json (and the Translator's
    batch-norm mode) say so. A warning, not an error: the run itself is sound, only smaller-batched (quick
    runs on a --max-images subset do this)."""
    share = rank_share(count, world_size)
    if config.batch_size > share:
        images = "image" if share == 1 else "images"
        whose = f" each of {world_size} processes gets ({count} shared out by torchrun)" if world_size > 1 else ""
        warnings.warn(f"batch size {config.batch_size} is larger than the {share} training {images}{whose}: every "
                      f"batch holds {share}, while the run records {config.batch_size}; use --batch-size {share} "
                      "or less", stacklevel=3)


def collate(samples: list[dict]) -> dict:
    return {
        "input": torch.stack([s["input"] for s in samples]),
        "target": torch.stack([s["target"] for s in samples]),
        "name": [s["name"] for s in samples],
    }


# ------------------------------------------------------------------------------------------- unpaired
class UnpairedDataset(torch.utils.data.Dataset):
    """Two collections of any sizes, A (`trainA/`) and B (`trainB/`), for CycleGAN: item i is A picture
    i (cycling when B is the larger) with a B picture drawn at random, afresh each epoch, as the official
    unaligned dataset does. Each picture gets its own crop and mirror. The draws are seeded by (seed,
    epoch, index), so resumes are exact. `input` holds the A picture, `target` the B one."""

    def __init__(self, items_a: Sequence[Item], items_b: Sequence[Item], crop_size: int, train: bool,
                 flip: bool = True, seed: int = 0):
        if not items_a or not items_b:
            raise Pix2PixError("unpaired data needs pictures in both A and B")
        self.a = PairDataset(items_a, "unpaired", crop_size, train, flip, seed)
        self.b = PairDataset(items_b, "unpaired", crop_size, train, flip, seed + 1)
        self.train, self.seed, self.epoch = train, seed, 0

    def __len__(self) -> int:
        return max(len(self.a), len(self.b))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.a.set_epoch(epoch)
        self.b.set_epoch(epoch)

    def b_index(self, index: int) -> int:
        """The B picture paired with position `index` this epoch: random when training (as the official code),
        from a stream of its own (a salted seed: not any crop's)."""
        if not self.train:
            return index % len(self.b)
        generator = torch.Generator().manual_seed(jitter_seed(self.seed, self.epoch, index) ^ B_CHOICE_SALT)
        return int(torch.randint(0, len(self.b), (1,), generator=generator))

    @staticmethod
    def _picture(side: PairDataset, index: int, draw: int) -> tuple[torch.Tensor, str]:
        return to_signed(side.jittered(index, draw)[0]), side.items[index].name

    def __getitem__(self, index: int) -> dict:
        # jitter seeded by the position, not the picture: the smaller collection's pictures come round
        # several times an epoch (monet2photo: each Monet about 6 times), each time with a crop of its own
        photo_a, name = self._picture(self.a, index % len(self.a), index)
        photo_b, _ = self._picture(self.b, self.b_index(index), index)
        return {"input": photo_a, "target": photo_b, "name": name}


def _counted_on(progress: Optional[ProgressFn], before: int, total: int) -> Optional[ProgressFn]:
    """`progress` for one part of a larger load: its (done, of) as (before + done, total), so the count never
    starts again from 1 (the app's "loading N/M images")."""
    if progress is None:
        return None
    return lambda done, _of: progress(before + done, total)


def build_unpaired_dataset(config: TrainConfig, split: str = "train", train: bool = True,
                           progress: Optional[ProgressFn] = None, stop: StopFlag = None,
                           world_size: int = 1) -> UnpairedDataset:
    """Both collections decoded once (each resized to a square, as the official code), then jittered;
    `world_size` as in `build_dataset`. Both are listed before either is decoded (an empty trainB/ is said at
    once), and `progress` counts their images as one total."""
    size = config.load_size if train else config.crop_size
    listed = []
    for folder in unpaired_folders(config.data, split):
        paths = spread_evenly(load_folder_images(folder), config.max_images if train else None)
        if not paths:
            raise Pix2PixError(f"no images found in {folder}{where_collection_images_are(folder)}")
        listed.append((folder, paths))

    def decode(path: Path) -> Item:
        return Item(path.name, _to_uint8(_resize_square(open_image(path), size)), None)

    sides, before, total = [], 0, sum(len(paths) for _, paths in listed)
    for folder, paths in listed:
        told = _counted_on(progress, before, total)
        # a collection whose every file is unusable is refused by the loader, with the reasons
        sides.append(_Loader(config, folder, size, told, stop)(paths, decode, f"decoding {folder.name}"))
        before += len(paths)
    dataset = UnpairedDataset(sides[0], sides[1], config.crop_size, train=train, flip=config.flip, seed=config.seed)
    if train:
        _warn_if_batch_too_large(config, len(dataset), world_size)
    return dataset
