"""The 12 CMP facade classes and their label-map colours; snapping colours to class ids.

Label maps in the facades data are JPEGs, so edges blend between class colours, and a user's
painting may hold anti-aliased pixels: every colour is snapped to its nearest class before use.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class FacadeClass:
    id: int  # CMP label id, 1..12
    name: str
    rgb: tuple[int, int, int]

    @property
    def hex(self) -> str:
        return "#{:02x}{:02x}{:02x}".format(*self.rgb)


@lru_cache(maxsize=1)
def facade_classes() -> tuple[FacadeClass, ...]:
    """The 12 classes in CMP id order (index 0 = background)."""
    text = resources.files(__package__).joinpath("facade_palette.json").read_text()
    return tuple(FacadeClass(c["id"], c["name"], tuple(c["rgb"])) for c in json.loads(text)["classes"])


def palette_array() -> np.ndarray:
    """(12, 3) uint8 array of class colours."""
    return np.array([c.rgb for c in facade_classes()], dtype=np.uint8)


def label_ids(image: Image.Image) -> np.ndarray:
    """RGB label map -> (H, W) int64 class indices 0..11 (nearest colour)."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.int32)
    palette = palette_array().astype(np.int32)
    # squared distances to each of the 12 colours, chunked by rows to bound memory on large maps
    ids = np.empty(pixels.shape[:2], dtype=np.int64)
    for start in range(0, pixels.shape[0], 256):
        chunk = pixels[start:start + 256, :, None, :]
        ids[start:start + 256] = ((chunk - palette) ** 2).sum(-1).argmin(-1)
    return ids


def ids_to_image(ids: np.ndarray) -> Image.Image:
    """(H, W) class indices -> RGB label map with exact class colours."""
    return Image.fromarray(palette_array()[np.asarray(ids, dtype=np.int64)], "RGB")


def snap_to_palette(image: Image.Image) -> Image.Image:
    """Replace every colour by its nearest facade class colour."""
    return ids_to_image(label_ids(image))


def plain_facade(size: tuple[int, int] = (256, 256)) -> Image.Image:
    """A blank canvas: background border around one big facade region."""
    width, height = size
    ids = np.zeros((height, width), dtype=np.int64)
    ids[height // 16: height, width // 16: width - width // 16] = 1
    return ids_to_image(ids)
