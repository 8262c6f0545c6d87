"""The 12 CMP facade classes and their label-map colours; cleaning label maps to exact class ids.

Label maps in the facades data are JPEGs, so every edge blends between two class colours, and a
user's painting may hold anti-aliased pixels. Snapping each pixel to its nearest colour is not enough:
the 12 colours lie along one colour ramp, so the blend of two classes is often nearest a third one
(facade + door ~ window, balcony + deco ~ blind), and naive snapping draws a thin ring of that third
class along every such edge. `clean_label_ids` is the one cleaning used everywhere (training data,
`translate`, the app's canvas, evaluation, the segmenter's data), so the network trains on exactly
what users give it: edge pixels go to a neighbouring class, never to a third one.

A label map may also come as a class-id map: one channel whose values are class ids (the CMP database's
own indexed PNGs hold 1..12; segmentation tools write 0..11 or 1..12 as gray PNGs). `class_id_map` tells
it from a picture and every label-map entry turns it into its class colours before the cleaning, instead
of reading ids 0..12 as near-black gray colours.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
from PIL import Image

from .errors import ImageError
from .images import ImageSource, MAX_PIXELS, open_image, to_rgb, wrong_picture_type


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


# A label map's transparent pixels are background, not the white that photos are laid on (white is nearest
# to "sill": a map drawn on a transparent layer came out as a building of sills)
LABEL_MATTE = (0, 0, 222)  # facade_classes()[0].rgb, checked in the tests


def palette_array() -> np.ndarray:
    """(12, 3) uint8 array of class colours."""
    return np.array([c.rgb for c in facade_classes()], dtype=np.uint8)


# Within this RGB distance of its class colour a pixel is sure of its class (unless a blend): JPEG noise
# inside flat regions stays below it; the closest two class colours are 58 apart.
CLOSE = 20.0
ROWS_PER_CHUNK = 512  # rows per step of the colour look-up: bounds memory on 12 MP uploads
MAX_REACH = 8  # an unsure pixel looks this far (in pixels) for a sure neighbour, then falls back to nearest
BLEND_MARGIN = 12.0  # a mix of neighbours may be this much worse than the own class and still win
SEEN_REACH = 5  # a colour between two classes seen (close) within this many pixels counts as their blend


@lru_cache(maxsize=1)
def _nearest_table() -> np.ndarray:
    """Nearest class of every colour at 6 bits per channel (262144 entries, built once)."""
    centres = np.arange(2, 256, 4, dtype=np.float32)  # the middle of each 4-wide bin (off by <= 2)
    grid = np.stack(np.meshgrid(centres, centres, centres, indexing="ij"), -1).reshape(-1, 3)
    palette = palette_array().astype(np.float32)
    return ((grid[:, None, :] - palette[None]) ** 2).sum(-1).argmin(-1).astype(np.uint8)


def _nearest(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) uint8 -> nearest class index (uint8) and exact squared distance to it (int32).

    The class comes from a 6-bit lookup table (a bin may straddle two classes only where a colour is
    about equally far from both, i.e. far from each: such pixels are never sure anyway). Row chunks
    bound the temporary arrays on 12 MP uploads.
    """
    table, palette = _nearest_table(), palette_array().astype(np.int32)
    height, width = pixels.shape[:2]
    ids = np.empty((height, width), np.uint8)
    dist = np.empty((height, width), np.int32)
    for start in range(0, height, ROWS_PER_CHUNK):
        chunk = pixels[start:start + ROWS_PER_CHUNK]
        quarter = (chunk >> 2).astype(np.int32)
        best = table[(quarter[..., 0] << 12) | (quarter[..., 1] << 6) | quarter[..., 2]]
        ids[start:start + len(chunk)] = best
        dist[start:start + len(chunk)] = _squared(chunk.astype(np.int32) - palette[best])
    return ids, dist


def nearest_class_ids(image: Image.Image) -> np.ndarray:
    """Each pixel's nearest class colour, with no edge cleaning: for reading a label map a network
    generated (photo -> labels), where a blend is the network's own answer rather than JPEG damage."""
    return _nearest(np.asarray(image.convert("RGB"), np.uint8))[0]


@lru_cache(maxsize=1)
def _segments() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every pair of classes (a <= b, a == b included): a's colour, b - a, |b - a|^2 (floored at 1), a and b."""
    palette = palette_array().astype(np.float32)
    first, second = np.triu_indices(len(palette))
    step = palette[second] - palette[first]
    return palette[first], step, np.maximum((step ** 2).sum(-1), 1.0), np.stack([first, second])


def _squared(diff: np.ndarray) -> np.ndarray:
    """Sum of squares over the last axis (RGB), written out: numpy's sum over a length-3 axis is slow."""
    return diff[..., 0] * diff[..., 0] + diff[..., 1] * diff[..., 1] + diff[..., 2] * diff[..., 2]


def _blend_of_others(colours: np.ndarray, own: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """(N,) squared distance from each colour to the nearest mix of two seen classes other than its own.

    Pixels are grouped by their set of seen classes, and each group is measured against only the pairs
    it can use (a few of the 78): the whole cleaning runs 2-4x faster on real maps (README, "Label-map
    cleaning") than with every pixel against every pair."""
    start, step, length, pair = _segments()
    result = np.full(len(colours), np.inf, np.float32)
    masks, group = np.unique(seen, return_inverse=True)
    order = np.argsort(group, kind="stable")
    bounds = np.searchsorted(group[order], np.arange(len(masks) + 1))
    for index, mask in enumerate(masks.tolist()):
        usable = np.nonzero((mask >> pair[0]) & (mask >> pair[1]) & 1)[0]
        if not usable.size:
            continue
        members = order[bounds[index]:bounds[index + 1]]
        offset = colours[members, None, :] - start[usable]  # (members, usable pairs, 3)
        t = np.clip(np.einsum("npc,pc->np", offset, step[usable]) / length[usable], 0.0, 1.0)
        dist = _squared(offset - t[..., None] * step[usable])
        mine = own[members, None]
        others = (pair[0][usable] != mine) & (pair[1][usable] != mine)
        result[members] = np.where(others, dist, np.inf).min(-1)
    return result


_BIT_COUNT = np.array([bin(mask).count("1") for mask in range(1 << 12)], np.uint8)
_LOWEST_BIT = np.array([(mask & -mask).bit_length() - 1 if mask else 0 for mask in range(1 << 12)], np.int64)


def clean_label_ids(image: Image.Image) -> np.ndarray:
    """RGB label map (or a class-id map, `class_id_map`) -> (H, W) int64 class indices 0..11, with blended
    edges given to a neighbour class.

    1. Every pixel gets its nearest class colour.
    2. A pixel is a blend when a mix of two classes seen (close to their colour, `CLOSE`) within
       `SEEN_REACH` px, other than its own, explains its colour about as well as its own class does
       (`BLEND_MARGIN`): the colours run along one ramp, so a facade|door edge blends through window and
       balcony|deco through blind, and a JPEG's half-resolution colour widens such bands to 1-3 px.
    3. A blend takes, among the classes of the sure pixels (close, not blends) in its 3x3 window, the one
       whose colour is nearest its own; the window grows (5x5, ...) up to `MAX_REACH` where it holds none.
       Every other pixel keeps its nearest class, even when far from it: thin features (a 2 px molding)
       lose most of their colour in the dataset's JPEGs but still are what they are.
    A region thinner than ~4 px squeezed between two classes that blend into it cannot be told from an
    edge and goes to its neighbours. A map made only of exact class colours (a cleaned map, the app's
    canvas) is returned as is, so cleaning twice changes nothing.
    """
    if not isinstance(image, Image.Image):  # a numpy array failed as "'numpy.ndarray' object has no attribute 'mode'"
        raise wrong_picture_type(image, "a label map is a PIL image here")
    given = class_id_map(image)
    if given is not None:  # ids are exact: nothing to clean
        return given
    pixels = np.asarray(image.convert("RGB"), dtype=np.uint8)
    ids, dist = _nearest(pixels)
    if not dist.size or int(dist.max()) == 0:  # exact class colours only: nothing to clean
        return ids.astype(np.int64)
    close = dist <= CLOSE ** 2
    one = np.uint16(1)
    seen = np.where(close, np.left_shift(one, ids.astype(np.uint16)), np.uint16(0)).astype(np.uint16)
    for _ in range(SEEN_REACH):  # classes seen (close) within SEEN_REACH px
        seen = _grow(seen)
    # a pixel is a blend when a mix of two classes seen around it (not its own) explains its colour about
    # as well as its own class does; only pixels that see another class than their own can be one
    own_bit = np.left_shift(one, ids.astype(np.uint16))
    blend = np.zeros_like(close)
    others = seen & ~own_bit
    count = _BIT_COUNT[others]
    # one other class o: a blend when o's colour fits about as well as its own
    ys, xs = np.nonzero(count == 1)
    other = _LOWEST_BIT[others[ys, xs]]
    to_other = _squared(pixels[ys, xs].astype(np.int32) - palette_array().astype(np.int32)[other])
    blend[ys, xs] = np.sqrt(to_other) <= np.sqrt(dist[ys, xs]) + BLEND_MARGIN
    # two or more (junctions, thin features): the best mix of any two of them
    ys, xs = np.nonzero(count >= 2)
    for start in range(0, ys.size, 1 << 15):  # bounded temporaries: (chunk, 78 pairs)
        y, x = ys[start:start + (1 << 15)], xs[start:start + (1 << 15)]
        mix = _blend_of_others(pixels[y, x].astype(np.float32), ids[y, x].astype(np.int64), seen[y, x])
        blend[y, x] = np.sqrt(mix) <= np.sqrt(dist[y, x]) + BLEND_MARGIN
    sure = close & ~blend
    # step 2: blend pixels pick among the classes of the sure pixels around them (bit k = class k);
    # every other pixel keeps its nearest class (far colours too: thin features lose most of their colour)
    present = np.where(sure, np.left_shift(one, ids.astype(np.uint16)), np.uint16(0)).astype(np.uint16)
    unsure = blend.copy()
    palette = palette_array().astype(np.float32)
    out = ids.astype(np.int64)
    for _ in range(MAX_REACH):
        if not unsure.any():
            break
        present = _grow(present)
        ys, xs = np.nonzero(unsure & (present != 0))
        if ys.size:
            colours = pixels[ys, xs].astype(np.float32)
            d = _squared(colours[:, None, :] - palette[None])
            allowed = (present[ys, xs, None] >> np.arange(len(palette), dtype=np.uint16)) & 1
            out[ys, xs] = np.where(allowed.astype(bool), d, np.inf).argmin(-1)
            unsure[ys, xs] = False
    return out


def _grow(bits: np.ndarray) -> np.ndarray:
    """Bitwise OR over each pixel's 3x3 window (every class mask dilated at once), done as rows then columns."""
    rows = bits.copy()
    rows[1:] |= bits[:-1]
    rows[:-1] |= bits[1:]
    grown = rows.copy()
    grown[:, 1:] |= rows[:, :-1]
    grown[:, :-1] |= rows[:, 1:]
    return grown


def clean_label_map(image: Image.Image) -> Image.Image:
    """The label map cleaned by `clean_label_ids`, as RGB with exact class colours."""
    return ids_to_image(clean_label_ids(image))


def label_map_for_network(image: Image.Image, size: int | tuple[int, int]) -> Image.Image:
    """A label map as every network input is made: cleaned at its own resolution, then resized with hard
    class edges (bicubic resizing would blend the classes again). `size` is an int (square) or (width, height).

    Enlarging (the training data: 256 -> 286 px) is NEAREST. Shrinking (a 1024 px upload to the 256 px
    canvas) is a vote per output pixel over the area it covers (`shrink_ids`): NEAREST keeps one pixel in
    four there, and dropped a quarter of the 3 px sills of a 1024 px map, depending on where they sat. Each
    axis on its own: a wide, short map (1024 x 200 to 256 x 256) is voted across and enlarged down.
    """
    size = (size, size) if isinstance(size, int) else tuple(size)
    ids = clean_label_ids(image)
    height, width = ids.shape
    shrunk = (min(width, size[0]), min(height, size[1]))
    if shrunk != (width, height):
        ids = shrink_ids(ids, shrunk)
    if shrunk == size:
        return ids_to_image(ids)
    return ids_to_image(ids).resize(size, Image.NEAREST)


def shrink_ids(ids: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W) class ids -> (height, width) of `size` (width, height), each the class covering most of its
    area; a tie goes to the class rarer in the whole map (the thin detail, a sill or a molding, over the wall
    around it). One area-averaged mask per class present, so memory stays a few bytes per input pixel."""
    present, counts = np.unique(ids, return_counts=True)
    best = np.full((size[1], size[0]), -1.0, np.float32)
    chosen = np.zeros((size[1], size[0]), np.int64)
    for index in np.argsort(-counts, kind="stable"):  # commonest first: ties go to later ones
        mask = Image.fromarray((ids == present[index]).astype(np.float32), "F")
        share = np.asarray(mask.resize(size, Image.BOX), np.float32)
        wins = share >= best - 1e-6
        best = np.where(wins, share, best)
        chosen = np.where(wins, present[index], chosen)
    return chosen


PHOTO_LIKE = 0.8  # share of pixels far from every class colour above which a picture is a photo (maps: < 0.5)


def looks_like_photo(image: Image.Image) -> bool:
    """True for a picture whose colours are mostly far from the 12 class colours: a photo given where a label
    map belongs (a JPEG-saved map's blended edges are far too, but a quarter to a half of its pixels at most)."""
    _, squared = _nearest(np.asarray(label_colours(image).convert("RGB").resize((64, 64), Image.NEAREST), np.uint8))
    return bool((squared > CLOSE ** 2).mean() > PHOTO_LIKE)


def ids_to_image(ids: np.ndarray) -> Image.Image:
    """(H, W) class indices 0..11 -> RGB label map with exact class colours. Any other id is refused: -1 was the
    last class (numpy's negative index), 12 an IndexError, 2.7 class 2 (`_class_ids`). np.take more than pays for
    the check: a 1024 x 1024 map in 5-8 ms with both, 15-27 ms by fancy indexing without (best of 40, the shared
    2-core machine)."""
    palette = palette_array()
    return Image.fromarray(np.take(palette, _class_ids(ids, len(palette)), axis=0), "RGB")


def _class_ids(ids: np.ndarray, classes: int) -> np.ndarray:
    """`ids` as int64 class indices 0..classes-1, or ImageError. Integer (and boolean) arrays are taken as they
    are, at the cost of a min and a max. A float array is taken when every value is whole (2.0 is class 2: the
    ids were computed in floats, nothing is lost) and refused otherwise, as is any other dtype: casting made
    2.7 class 2 and NaN some class. Only float arrays pay for that look at every value: 1024 x 1024 ids_to_image,
    best of 40 interleaved with the unchecked cast, int64 4.0-4.3 ms both, float32 4.7-5.0 ms -> 5.2-5.6 ms."""
    array = np.asarray(ids)
    kind, wanted = array.dtype.kind, f"0..{classes - 1} (the {classes} facade classes)"
    if kind == "f":
        whole = np.isfinite(array) & (np.floor(array) == array)
        if not whole.all():
            raise ImageError(f"class ids must be whole numbers {wanted}, got {array[~whole][0]:g} in a "
                             f"{array.dtype} array")
    elif kind not in "biu":
        raise ImageError(f"class ids must be whole numbers {wanted}, got an array of {str(array.dtype)[:40]}")
    if array.size and (array.min() < 0 or array.max() >= classes):
        low, high = (f"{v:g}" if kind == "f" else int(v) for v in (array.min(), array.max()))
        raise ImageError(f"class ids must be {wanted}, got ids from {low} to {high}")
    return array.astype(np.int64, copy=False)


# ------------------------------------------------------------------------------------------ class-id maps
ID_MAP_MODES = ("L", "P", "I", "I;16", "I;16L", "I;16B", "I;16N")  # one value per pixel: may hold class ids


def class_id_map(image: Image.Image) -> np.ndarray | None:
    """(H, W) int64 class indices 0..11 of a class-id map, or None for a picture to read by its colours.

    A class-id map is a gray ("L", "I", "I;16", "LA", or RGB with three equal channels) or indexed ("P",
    "PA": its raw indices) image whose values all lie in 0..11 or 1..12: ids in `facade_classes()` order,
    i.e. CMP's 1..12 = background, facade, window, door, cornice, sill, balcony, blind, deco, molding,
    pillar, shop, or the same 0-based.
    With 0 present the ids are 0-based, otherwise CMP's 1-based (a map without 0 and 12 is read as CMP's:
    its shop is more often absent than a 0-based map's background). A gray photo holds values above 12; an
    indexed map whose pixels mostly show class colours is read by those colours.
    A one-value map is a one-class map by the same rule: a blank map, all 0 (0-based) or all 1 (CMP's), is all
    background. Read by its colour, near-black, every pixel became the nearest class colour, "shop", and the
    map was taken for a photo; no picture a label map stands for is one flat near-black.
    Ids 0 and 12 both present fit neither range: ImageError rather than a map shifted by one class. An id
    map's transparency is ignored: its ids are the classes.
    """
    values = _id_values(image)
    if values is None:
        return None
    low, high = int(values.min()), int(values.max())
    if low < 0 or high > 12 or (image.mode in ("P", "PA") and _palette_shows_classes(image, values)):
        return None
    saved_as_jpeg = image.info.get("decoded_from") == "JPEG"
    if low == 0 and high == 12:  # a JPEG's noise takes a CMP map's 1s near edges down to 0
        raise ImageError("class-id map with ids 0 to 12: 13 values for 12 classes; "
                         + ("a JPEG's compression noise moves ids near edges: save the map as PNG" if saved_as_jpeg
                            else "save ids as 0..11 or as CMP's 1..12"))
    if saved_as_jpeg and low != high:  # one class has no edges to blur
        warnings.warn("a class-id map saved as JPEG: its compression noise moves ids near edges to their "
                      "neighbours' values; save id maps as PNG")
    return values.astype(np.int64) - (0 if low == 0 else 1)


def _id_values(image: Image.Image) -> np.ndarray | None:
    """The one value per pixel an image may hold class ids in, or None: a gray or indexed image's own; of
    LA / PA (GIMP's gray with transparency) the first channel; of an RGB(A) image whose three channels are
    equal and at most 12 (what OpenCV writes for a gray array saved as colour) the red one."""
    if image.mode in ID_MAP_MODES:
        return np.asarray(image)
    if image.mode in ("LA", "PA"):
        return np.asarray(image)[..., 0]
    if image.mode in ("RGB", "RGBA"):
        pixels = np.asarray(image)
        red = pixels[..., 0]
        if red.size and int(red.max()) <= 12 and (pixels[..., 1] == red).all() and (pixels[..., 2] == red).all():
            return red
    return None


def _palette_shows_classes(image: Image.Image, values: np.ndarray) -> bool:
    """True when most pixels of the indexed image show a class colour (within `CLOSE`): a colour label map
    saved as an indexed PNG, read right by its colours whatever its index order. Counted by pixels, not
    by palette entries: a JPEG-saved map reduced to 8 colours has a few blend colours on its edges, and a map
    may hold an unlabelled black strip; one such colour made the whole map read as ids (and misread)."""
    palette = image.getpalette("RGB")
    counts = np.bincount(values.ravel())  # values are 0..12 here: a count, not a sort of 12 MP
    if palette is None or 3 * len(counts) > len(palette):
        return False
    colours = np.asarray(palette, np.int32).reshape(-1, 3)[: len(counts)]
    distance = _squared(colours[:, None, :] - palette_array().astype(np.int32)[None]).min(-1)
    return bool(counts[distance <= CLOSE ** 2].sum() >= counts.sum() / 2)


def label_colours(image: Image.Image) -> Image.Image:
    """A class-id map as its exact class colours; any other image unchanged."""
    ids = class_id_map(image)
    return image if ids is None else ids_to_image(ids)


def label_map_rgb(image: Image.Image) -> Image.Image:
    """A decoded label map (any mode) -> RGB: class ids become their colours, transparent pixels background
    (`LABEL_MATTE`). The `convert` of `open_label_map`, before anything makes the raw ids gray."""
    return to_rgb(label_colours(image), LABEL_MATTE)


def open_label_map(source: ImageSource, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """`images.open_image` for a label map: a class-id map (gray or indexed) becomes its class colours, and
    transparency is laid on the background class colour. Raises ImageError as open_image does."""
    return open_image(source, max_pixels, convert=label_map_rgb)


def plain_facade(size: tuple[int, int] = (256, 256)) -> Image.Image:
    """A blank canvas: background border around one big facade region."""
    width, height = size
    ids = np.zeros((height, width), dtype=np.int64)
    ids[height // 16: height, width // 16: width - width // 16] = 1
    return ids_to_image(ids)
