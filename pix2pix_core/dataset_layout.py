"""What a data folder holds, and which task's layout fits it: the split folder a task reads, the paired
(A/, B/) and unpaired (trainA/, trainB/) sub-folders, and one-line hints and warnings when the folder given
looks laid out for another task, or its images are one level down.

Kept apart from data.py, which decodes what these folders hold: recognising a layout reads a directory listing
and at most a few images, needs no torch, and is what the app asks about a folder before any training starts.
"""

from __future__ import annotations

import itertools
import os
import warnings
from pathlib import Path
from typing import Optional, Sequence

from PIL import Image

from .errors import Pix2PixError
from .images import has_images, open_image
from .palette import looks_like_photo


SPLITS = ("train", "val", "test")  # the pix2pix datasets' split folders


def split_folder(data: str | Path, split: str) -> Path:
    """`data/split` when it exists (the pix2pix layout), else `data` itself when it has no split folders at
    all (a flat folder of images). A folder with other splits but not this one is an error: `test` on a
    dataset without val/ scored its training images, and reported them as val. A caller that reports which
    split it read names the flat folder as itself, not as `split` (evaluate: "(the folder itself)")."""
    root = Path(data)
    if not root.exists():
        raise Pix2PixError(f"data folder not found: {root}")
    if not root.is_dir():
        raise Pix2PixError(f"data path is not a folder: {root}")
    candidate = root / split
    if candidate.is_dir():
        return candidate
    others = [name for name in SPLITS if (root / name).is_dir()]
    if others:
        has = f"no {split}/ in {root} (it has {', '.join(f'{name}/' for name in others)})"
        if split == "train":  # training has no --split to choose with
            raise Pix2PixError(f"{has}: training reads train/; put the training images there")
        raise Pix2PixError(f"{has}; choose one of those (test: --split)")
    return root


# width / height of an A|B pair: two near-square halves (between 4:5 and 6:5; the pix2pix datasets are exactly
# 2:1). Each half is resized to a square, so a file outside this band is a photo cut in two, or halves distorted
PAIR_RATIOS = (1.6, 2.4)


def pair_shaped(width: int, height: int) -> bool:
    """Whether a picture of this size can be an A|B pair (PAIR_RATIOS); data.py notes the files that are not."""
    return PAIR_RATIOS[0] <= width / max(height, 1) <= PAIR_RATIOS[1]


def _ask(task: str, model: Optional[str], choices: str) -> str:
    """The end of a warning about data of another task: training chose the task (--task); `test` took it from
    the model `model`, so there the data or the model is the mistake."""
    if model:
        return f", but the model {model} is a {task} one: is --data (or --checkpoint) the one you meant?"
    return f": is --task {task} right? ({choices})"


def warn_if_another_task(paths: Sequence[Path], task: str, folder: Path, look_at: int = 16,
                          model: Optional[str] = None) -> bool:
    """From a few headers: A|B pairs are twice as wide as tall, photos are not. Food photos trained as
    facades were cut in half and one half snapped to label colours, without a word. Then, for facades pairs,
    from a few label halves: own A|B pairs (edges | photo) trained with the default --task facades had their
    photos snapped to label colours. `model`: the model the task came from (`test`). True when it warned."""
    ratios = []
    for path in paths[:look_at]:
        try:
            with Image.open(path) as image:
                ratios.append(pair_shaped(image.width, image.height))
        except Exception:  # noqa: BLE001 - unreadable files are reported when decoded
            continue
    if not ratios:
        return False
    pairs = sum(ratios) / len(ratios)
    if task in ("facades", "aligned") and pairs < 0.5:
        warnings.warn(f"most images in {folder} are not two pictures side by side (an A|B pair is twice as wide "
                      f"as tall){_ask(task, model, 'photos to colorize: --task colorize')}", stacklevel=3)
        return True
    if task == "colorize" and pairs > 0.5:
        warnings.warn(f"most photos in {folder} are twice as wide as tall, like A|B pairs"
                      f"{_ask(task, model, 'pairs: --task facades or aligned')}", stacklevel=3)
        return True
    if task == "facades" and _label_halves_look_like_photos(paths):
        tail = _ask(task, model, "") if model else (": --task facades snaps them to the 12 class colours; for your "
                                                    "own A|B pairs use --task aligned")
        warnings.warn(f"the label maps (right halves) of {folder} look like photos, not facade label maps{tail}",
                      stacklevel=3)
        return True
    return False


def _label_halves_look_like_photos(paths: Sequence[Path], look_at: int = 5) -> bool:
    """Whether most of `look_at` label halves (B, the right half, whatever the direction), spread over the
    folder, look like photos (`palette.looks_like_photo`). JPEGs are decoded at reduced scale (a half of at
    least 128 px: the check looks at 64 x 64): milliseconds for a 12 MP file. The facades dataset's JPEG maps
    have at most 65% of pixels far from a class colour, photos nearly all."""
    step = max(1, len(paths) // look_at)
    verdicts = []
    for path in list(paths[::step])[:look_at]:
        try:
            with Image.open(path) as image:
                image.draft("RGB", (image.width * 128 // max(image.height, 1), 128))
                picture = open_image(image)
        except Exception:  # noqa: BLE001 - unreadable files are reported when decoded
            continue
        width, height = picture.size
        if width >= 2:
            verdicts.append(looks_like_photo(picture.crop((width // 2, 0, width, height))))
    return bool(verdicts) and sum(verdicts) > len(verdicts) / 2


UNPAIRED_HINT = "trainA/ and trainB/: unpaired collections, for the unpaired (CycleGAN) task"
PAIRED_HINT = "A/ and B/: paired data, for the paired task"
IMAGES_HINT = "A|B pairs or photos, for the facades, aligned or colorize task"


def holds_paired(folder: Path) -> bool:
    """Whether `folder` has the paired layout: A/ and B/ in it, or in its train/ (what --task paired reads)."""
    return any((side / "A").is_dir() and (side / "B").is_dir() for side in (folder, folder / "train"))


def holds_unpaired(folder: Path, split: str = "train") -> bool:
    """Whether `folder` has the unpaired layout: {split}A/ and {split}B/ in it (what --task unpaired reads)."""
    return all((folder / f"{split}{side}").is_dir() for side in "AB")


def _layout_of_another_task(folder: Path, task: Optional[str]) -> str:
    """What `folder` holds when it is laid out for a task other than `task` (None: not known, so the paired
    layout is not named: it may be the task's own), in a hint's words; "" otherwise."""
    if holds_unpaired(folder):
        return UNPAIRED_HINT
    if holds_paired(folder) and task not in (None, "paired"):
        return PAIRED_HINT
    return ""


def where_images_are(folder: Path, task: Optional[str] = None) -> str:
    """A hint for a folder without images, given as the data of `task`: unpaired collections (trainA/,
    trainB/) or paired data (A/, B/) there or one level down, split folders named in another case (Train/), or
    a dataset one level down (wrapped in a folder of its own: its images or its train/). Paired data's A/ and B/
    are never offered as the data: a task that reads images finds nothing useful in one side alone."""
    layout = _layout_of_another_task(folder, task)
    if layout:
        return f" (it holds {layout})"
    if holds_paired(folder):  # the task's own layout, or the task is not known: A/ alone is no dataset either way
        return ""
    try:
        subfolders = [folder / name for name in subfolder_names(folder)]
    except OSError:
        return ""
    misnamed = [p.name for p in subfolders if p.name.lower() in SPLITS and p.name not in SPLITS]
    if misnamed:
        return f" (it has {', '.join(f'{name}/' for name in misnamed)}: split folders are lower case, train/ and val/)"
    for sub in subfolders:
        layout = _layout_of_another_task(sub, task)
        if layout:
            return f" (its sub-folder {sub.name}/ holds {layout}; give that folder as the data)"
    # the first three only (the hint names three): a data root of many dataset folders is not listed whole
    holding = list(itertools.islice((p.name for p in subfolders
                                     if any((p / split).is_dir() for split in SPLITS) or has_images(p)), 3))
    if holding:
        return f" (images are in its {_subfolders(holding)}: give that folder as the data)"
    return ""


def paired_folders(folder: Path) -> tuple[Path, Path]:
    """`folder/A` and `folder/B` (`folder`: the split's folder), the paired layout; refused with a hint at what
    `folder` holds instead."""
    sides = folder / "A", folder / "B"
    if not all(side.is_dir() for side in sides):
        raise Pix2PixError(f"paired data needs sub-folders A/ and B/ in {folder}{what_paired_folder_holds(folder)}")
    return sides


def what_paired_folder_holds(folder: Path) -> str:
    """A hint for a folder given as paired data without A/ and B/: images (A|B pairs or photos), unpaired
    collections, paired data one folder down, or A/ and B/ named in another case."""
    if holds_unpaired(folder):
        return f" (it holds {UNPAIRED_HINT})"
    try:
        subfolders = [folder / name for name in subfolder_names(folder)]
    except OSError:
        return ""
    if {"a", "b"} <= {p.name.lower() for p in subfolders}:
        return " (folder names are case-sensitive: A/ and B/)"
    if has_images(folder):
        return f" (it holds images: {IMAGES_HINT})"
    down = [p.name for p in subfolders if holds_paired(p)]
    if down:
        return f" (its sub-folder {down[0]}/ holds A/ and B/: give that folder as the data)"
    return ""


def subfolder_names(folder: Path) -> list[str]:
    """Sorted names of the folders (or links to folders) inside `folder`, from one directory listing: no stat of
    each file where the file system gives entry types (a hint about a folder of 100,000 images took a second)."""
    with os.scandir(folder) as entries:
        return sorted(entry.name for entry in entries if _is_dir(entry))


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:  # a link loop
        return False


def _subfolders(names: Sequence[str]) -> str:
    """Sub-folders named in a hint: 'sub-folder x/' or 'sub-folders x/, y/, z/' (at most three)."""
    return f"sub-folder{'s' if len(names) > 1 else ''} {', '.join(f'{name}/' for name in names[:3])}"


def unpaired_folders(data: str | Path, split: str) -> tuple[Path, Path]:
    """`data/trainA` and `data/trainB` (or testA/testB), the CycleGAN layout."""
    root = Path(data)
    folders = root / f"{split}A", root / f"{split}B"
    missing = [str(f) for f in folders if not f.is_dir()]
    if missing:
        raise Pix2PixError(f"unpaired data needs the folders {split}A/ and {split}B/: missing {', '.join(missing)}"
                           f"{what_unpaired_root_holds(root, split)}")
    return folders


def what_unpaired_root_holds(root: Path, split: str) -> str:
    """A hint for a folder given as unpaired data without {split}A/ and {split}B/: paired (A/, B/) or aligned
    (train/) data, the collections one folder down (an unpacked horse2zebra.zip), or their names in another case."""
    try:
        subfolders = subfolder_names(root) if root.is_dir() else []
    except OSError:
        return ""
    wanted = {f"{split}a", f"{split}b"}
    if wanted <= {name.lower() for name in subfolders}:
        return f" (folder names are case-sensitive: {split}A/ and {split}B/)"
    if holds_paired(root):
        return f" (it holds {PAIRED_HINT})"
    down = [name for name in subfolders if holds_unpaired(root / name, split)]
    if down:  # before split folders: a train/ may hold them
        return f" (its sub-folder {down[0]}/ holds {split}A/ and {split}B/: give that folder as the data)"
    present = [name for name in SPLITS if name in subfolders]
    if present:
        return f" (it has {present[0]}/: A|B pairs or photos, for the facades, aligned or colorize task)"
    if root.name in (f"{split}A", f"{split}B"):
        return f" (it is one collection: give the folder that holds {split}A/ and {split}B/)"
    return ""


def where_collection_images_are(collection: Path) -> str:
    """A hint for an empty trainA/ (or trainB/) whose images are in sub-folders: where_images_are's advice, to
    give such a sub-folder as the data, would lose trainA/ and trainB/."""
    try:
        holding = [name for name in subfolder_names(collection) if has_images(collection / name)]
    except OSError:
        return ""
    if not holding:
        return ""
    verb = "holds" if len(holding) == 1 else "hold"
    return (f" (its {_subfolders(holding)} {verb} images: put them in {collection.name}/ itself, sub-folders are "
            "not read)")
