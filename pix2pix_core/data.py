"""Datasets in the standard pix2pix formats, decoded once into memory, with paired jitter.

Formats:
- aligned (and `facades`): each file is A|B side by side; `direction` picks which half is the input.
- paired: a folder with `A/` and `B/` sub-folders holding files of the same names.
- colorize: any folder of colour photos; input = Lab lightness L, target = colour channels ab.

Every image is decoded and resized once (to `load_size` for training, `crop_size` for testing) and
kept as uint8: a few thousand 286x286 images fit in memory, and a 2-core CPU should not re-decode
JPEGs every epoch. Training jitter (random crop + mirror) is applied per item, identically to both
images of a pair, from a generator seeded by (seed, epoch, index) so runs and resumes are exact.
"""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from .color import rgb_to_lab_normalized, to_signed
from .config import TrainConfig
from .errors import ImageError, LoadingStopped, Pix2PixError
from .images import load_folder_images, open_image
from .palette import label_map_for_network


def split_folder(data: str | Path, split: str) -> Path:
    """`data/split` when it exists (the pix2pix layout), else `data` itself."""
    root = Path(data)
    if not root.exists():
        raise Pix2PixError(f"data folder not found: {root}")
    if not root.is_dir():
        raise Pix2PixError(f"data path is not a folder: {root}")
    candidate = root / split
    return candidate if candidate.is_dir() else root


def _resize_square(image: Image.Image, size: int) -> Image.Image:
    return image.resize((size, size), Image.BICUBIC)


def _resize_center_crop(image: Image.Image, size: int) -> Image.Image:
    """Shorter side to `size`, then centre crop: photos keep their aspect ratio."""
    width, height = image.size
    scale = size / min(width, height)
    new = (max(size, round(width * scale)), max(size, round(height * scale)))
    image = image.resize(new, Image.BICUBIC)
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


class PairDataset(torch.utils.data.Dataset):
    """In-memory pairs with paired jitter; returns network-ready tensors in [-1, 1]."""

    def __init__(self, items: list[Item], task: str, crop_size: int, train: bool, flip: bool = True, seed: int = 0):
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
        generator = torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) * 10_000_019 + index)
        top, left = torch.randint(0, size - self.crop_size + 1, (2,), generator=generator).tolist()
        flip = self.flip and bool(torch.randint(0, 2, (1,), generator=generator))
        return top, left, flip

    def __getitem__(self, index: int) -> dict:
        item = self.items[index]
        top, left, flip = self.jitter_params(index, item.source.shape[-1])
        pictures = [item.source] + ([item.target] if item.target is not None else [])
        pictures = [p[:, top:top + self.crop_size, left:left + self.crop_size] for p in pictures]
        if flip:
            pictures = [p.flip(-1) for p in pictures]
        pictures = [p.float().div(255.0) for p in pictures]
        if self.task == "colorize":
            lightness, ab = rgb_to_lab_normalized(pictures[0])
            return {"input": lightness, "target": ab, "name": item.name}
        return {"input": to_signed(pictures[0]), "target": to_signed(pictures[1]), "name": item.name}


def _decode_all(paths: list[Path], decode: Callable[[Path], Optional[Item]], desc: str,
                stop: Optional[threading.Event] = None) -> list[Item]:
    """Decode files with two threads (PIL releases the GIL); unreadable files are skipped with a warning.

    `stop` (set from another thread, e.g. the app's Stop button) ends loading with LoadingStopped.
    """
    skipped: list[str] = []

    def safe(path: Path) -> Optional[Item]:
        try:
            return decode(path)
        except ImageError as exc:
            skipped.append(str(exc))
            return None

    results: list[Optional[Item]] = []
    with ThreadPoolExecutor(max_workers=2) as pool:
        decoded = pool.map(safe, paths)
        for result in tqdm(decoded, total=len(paths), desc=desc, unit="img", leave=False, disable=len(paths) < 50):
            if stop is not None and stop.is_set():
                decoded.close()  # cancels the files not started yet
                raise LoadingStopped("stopped while loading the dataset")
            results.append(result)
    if skipped:
        warnings.warn(f"skipped {len(skipped)} unusable image(s), e.g. {skipped[0]}", stacklevel=3)
    return [r for r in results if r is not None]


def _limit(paths: list[Path], max_images: Optional[int]) -> list[Path]:
    return paths[:max_images] if max_images else paths


def load_items(config: TrainConfig, split: str, train: bool, stop: Optional[threading.Event] = None) -> list[Item]:
    """Decode the split named by `config` into memory (sized for training jitter or for testing)."""
    folder = split_folder(config.data, split)
    size = config.load_size if train else config.crop_size
    if config.task == "paired":
        return _paired_items(folder, config, size, train, stop)
    paths = _limit(load_folder_images(folder), config.max_images if train else None)
    if not paths:
        raise Pix2PixError(f"no images found in {folder}")
    if config.task == "colorize":
        def decode(path: Path) -> Optional[Item]:
            image = open_image(path)
            if is_grayscale(image):
                raise ImageError(f"{path.name}: grayscale photo, no colour to learn from")
            return Item(path.name, _to_uint8(_resize_center_crop(image, size)), None)
        return _decode_all(paths, decode, f"decoding {folder.name}", stop)

    def decode_aligned(path: Path) -> Item:
        image = open_image(path)
        width, height = image.size
        if width < 2 * 8 or width % 2:
            raise ImageError(f"{path.name}: {width}x{height} is not an A|B side-by-side pair (even width needed)")
        half_a = image.crop((0, 0, width // 2, height))
        half_b = image.crop((width // 2, 0, width, height))
        half_a = _resize_square(half_a, size)
        # facades: B is the label map, cleaned and NEAREST-resized exactly as `translate` does it
        half_b = label_map_for_network(half_b, size) if config.task == "facades" else _resize_square(half_b, size)
        source, target = (half_a, half_b) if config.direction == "AtoB" else (half_b, half_a)
        return Item(path.name, _to_uint8(source), _to_uint8(target))

    return _decode_all(paths, decode_aligned, f"decoding {folder.name}", stop)


def _paired_items(folder: Path, config: TrainConfig, size: int, train: bool,
                  stop: Optional[threading.Event] = None) -> list[Item]:
    a_dir, b_dir = folder / "A", folder / "B"
    if not a_dir.is_dir() or not b_dir.is_dir():
        raise Pix2PixError(f"paired data needs sub-folders A/ and B/ in {folder}")
    b_by_stem = {p.stem: p for p in load_folder_images(b_dir)}
    pairs = [(a, b_by_stem[a.stem]) for a in load_folder_images(a_dir) if a.stem in b_by_stem]
    if not pairs:
        raise Pix2PixError(f"no file names match between {a_dir} and {b_dir}")
    pairs = pairs[:config.max_images] if (train and config.max_images) else pairs
    by_path = dict(pairs)

    def decode(path_a: Path) -> Item:
        image_a, image_b = open_image(path_a), open_image(by_path[path_a])
        source, target = (image_a, image_b) if config.direction == "AtoB" else (image_b, image_a)
        return Item(path_a.name, _to_uint8(_resize_square(source, size)), _to_uint8(_resize_square(target, size)))

    return _decode_all([a for a, _ in pairs], decode, f"decoding {folder.name}", stop)


def build_dataset(config: TrainConfig, split: str = "train", train: bool = True,
                  stop: Optional[threading.Event] = None) -> PairDataset:
    """The dataset for a split: jittered for training, plain resized crops for testing.

    Setting `stop` from another thread ends loading early with LoadingStopped.
    """
    items = load_items(config, split, train, stop)
    return PairDataset(items, config.task, config.crop_size, train=train, flip=config.flip, seed=config.seed)


def collate(samples: list[dict]) -> dict:
    return {
        "input": torch.stack([s["input"] for s in samples]),
        "target": torch.stack([s["target"] for s in samples]),
        "name": [s["name"] for s in samples],
    }
