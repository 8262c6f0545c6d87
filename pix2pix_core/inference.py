"""Translate images of any size and mode with a trained generator.

Dropout stays on at test time, as in the official test script: it is the paper's only noise source,
so a seed makes each call reproducible and a new seed gives a new variation. Batch norm follows what
the network saw in training: a model trained at batch size 1 (the paper) normalises each image with its
own statistics, like the official test script (and so do the official models brought in by
`import-official`, whose config says batch size 1); a model trained on larger batches uses the running
statistics of training (on the shipped batch-4/8 models this gave cleaner colours: less colour noise
on food val, and FCN-scores as good or better on facades val).
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from PIL import ExifTags, Image

from .checkpoint import direction_to_load, load_generator, official_cyclegan_note, refuse_direction_of_pix2pix
import numpy as np

from .color import (gray_uint8, lab_normalized_to_rgb, pil_to_unit, recolor_uint8,
                    rgb_to_lab_normalized, to_signed, to_unit, unit_to_pil)
from .config import TrainConfig
from .distributed import pick_device
from .errors import CheckpointError, Pix2PixError
from .images import ImageSource, open_image, resize_photo
from .limits import bounded_int
from .networks import seeded_dropouts, set_dropout, use_batch_statistics
from .palette import label_map_for_network, open_label_map

BACKENDS = ("auto", "torch", "onnx")
# Colorize: ab joined to the full-resolution lightness by a lightness-guided filter (radius, eps of
# color.guided_coefficients) instead of plain bilinear upsampling; measured in benchmarks/colorize_guided.py.
CHROMA_GUIDE = (1, 1e-4)


class Translator:
    """A loaded generator plus the pre- and post-processing its task needs. Thread-safe.

    `chroma_guide` (colorize only): (radius, eps) of the lightness-guided upsampling of ab
    (`color.guided_coefficients`), or None for plain bilinear upsampling.
    """

    chroma_guide: Optional[tuple[int, float]] = CHROMA_GUIDE

    def __init__(self, generator: torch.nn.Module, config: TrainConfig, device: str | torch.device = "cpu",
                 name: str = "model", dropout: bool = True, batch_statistics: Optional[bool] = None,
                 chroma_guide: Optional[tuple[int, float]] = CHROMA_GUIDE):
        self.config, self.name = config, name
        self.chroma_guide = chroma_guide
        self.backend = "torch"
        self.device = pick_device(device)  # as load checks it: torch said "Expected one of cpu, cuda, ipu, ..."
        self.generator = generator.to(self.device).eval()
        self.per_image = batch_statistics if batch_statistics is not None else config.per_image_statistics
        if self.per_image:
            use_batch_statistics(self.generator)
        self._dropouts = seeded_dropouts(self.generator)  # each call draws from its own seeded generator
        set_dropout(self.generator, dropout and config.dropout and config.test_dropout)
        self.generator.requires_grad_(False)
        # On CPU the weights are converted to bf16 once, instead of autocast re-casting 54M weights on
        # every call: 57 ms instead of 89 ms per 256 px image at ngf 64 (benchmarks/train_speed.py),
        # outputs within 0.002 on average of fp32. channels_last: 65 ms instead of 114 ms with autocast.
        self.dtype = torch.float32
        if self.device.type == "cpu":
            if config.precision != "fp32":
                self.dtype = torch.bfloat16
                self.generator.to(self.dtype)
            self.generator.to(memory_format=torch.channels_last)
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: str | Path, device: str = "auto", backend: str = "auto", direction: Optional[str] = None,
             **options) -> "Translator":
        """Load a training or exported checkpoint; its stored config rebuilds the network.

        backend: "torch" (a .safetensors checkpoint or run folder), "onnx" (a file written by
        `export --format onnx`, run by onnxruntime on the CPU in fp32, dropout off: device auto or cpu, another
        is refused), or "auto" (onnx for a path ending in .onnx, else torch). direction: BtoA picks a CycleGAN's
        second generator; None (the default) its first, or the one generator a CycleGAN export holds
        (checkpoint.direction_to_load).
        """
        if backend not in BACKENDS:
            raise Pix2PixError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if direction not in (None, "AtoB", "BtoA"):  # any other word loaded G: B pictures came back as A -> B
            raise Pix2PixError(f"direction must be 'AtoB' or 'BtoA' (or None), got {direction!r}")
        is_onnx = str(path).lower().endswith(".onnx")
        if backend == "onnx" or (backend == "auto" and is_onnx):
            if not is_onnx:
                raise Pix2PixError(f"--backend onnx needs an exported .onnx file, got {path}; write one with "
                                   f"`python -m pix2pix_core export --format onnx --checkpoint {path} --out MODEL.onnx`")
            return OnnxTranslator.load_onnx(path, direction=direction, device=device, **options)
        if is_onnx:
            raise Pix2PixError(f"{path} is an ONNX file: load it with backend onnx (--backend onnx)")
        device = pick_device(device)
        generator, config, _ = load_generator(path, device, direction_to_load(path, direction))
        return cls(generator, config, device, name=Path(path).stem, **options)

    @property
    def task(self) -> str:
        return self.config.task

    @property
    def takes_label_maps(self) -> bool:
        """A facades label map -> photo model: its inputs are cleaned label maps, read by
        `palette.open_label_map` (class-id maps as their class colours, transparency as background)."""
        return self.task == "facades" and self.config.direction == "BtoA"

    @property
    def size(self) -> int:
        """The square size the network works at (its training crop)."""
        return self.config.crop_size

    def _autocast(self):
        if self.device.type == "cuda" and self.config.precision != "fp32":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def run_network(self, batch: torch.Tensor, seed: Optional[int] = 0) -> torch.Tensor:
        """Generator forward on a network-ready batch in [-1, 1]; returns float32 on the CPU. A model that
        normalises with each picture's own statistics (trained at batch 1) runs its pictures one at a time:
        batched, each would be normalised with the others' (as its ONNX export never does)."""
        if seed is not None:  # torch's own words were "Overflow when unpacking long long" or "expected a long"
            seed = bounded_int("seed", seed, -2 ** 63, 2 ** 64 - 1)  # the range torch's manual_seed takes
        with self._lock, torch.inference_mode():
            noise = torch.Generator(self.device)
            if seed is not None:
                noise.manual_seed(seed)
            else:
                noise.seed()
            for dropout in self._dropouts:
                dropout.generator = noise
            batch = batch.to(self.device, self.dtype)
            if self.device.type == "cpu":
                batch = batch.contiguous(memory_format=torch.channels_last)
            with self._autocast():
                output = torch.cat([self.generator(one) for one in batch.split(1)]) if self.per_image \
                    else self.generator(batch)
            return output.float().cpu()

    def translate(self, image: ImageSource, seed: Optional[int] = 0) -> Image.Image:
        """Translate one image of any size/mode; the result has the input's size."""
        picture = open_label_map(image) if self.takes_label_maps else open_image(image)
        if self.task == "colorize":
            return self.colorize(picture, seed)
        output = self.run_network(self.network_input(picture)[None], seed)
        result = unit_to_pil(to_unit(output[0]))
        return result if result.size == picture.size else result.resize(picture.size, Image.BICUBIC)

    def network_input(self, picture: Image.Image) -> torch.Tensor:
        """The (3, S, S) tensor in [-1, 1] the generator sees for an RGB picture (not for colorize).

        A facade label map is cleaned at its own resolution and NEAREST-resized
        (`palette.label_map_for_network`), the same path as the training data: the network never meets
        the third-class edge rings of plain colour snapping, nor bicubic-blended edges. A photo -> labels
        model (facades AtoB) gets its photo resized like any picture.
        """
        if self.takes_label_maps:
            small = label_map_for_network(picture, self.size)
        else:
            small = picture.resize((self.size, self.size), Image.BICUBIC)
        return to_signed(pil_to_unit(small))

    def colorize(self, picture: ImageSource, seed: Optional[int] = 0,
                 progress: Optional[Callable[[float, str], None]] = None) -> Image.Image:
        """Predict ab at the network's size, upsample it once, and join it to the full-resolution L.

        The full-resolution work is uint8 lookup tables and float32 in place, strip by strip
        (`color.recolor_uint8`): a 12 MP photo in well under a second, within
        1/255 on average of `colorize_reference` (kornia in float32 on whole images, 4-5x slower) with
        `chroma_guide=None`. By default ab is joined by the lightness-guided filter (`chroma_guide`,
        `color.guided_coefficients`): colour edges follow the photo's lightness edges, speckle smoothed.
        The network sees every photo squashed to its square training size: keeping the aspect ratio
        (a padded, larger input) measured worse, with more speckle (`checkpoints/food_colorize.md`).
        `progress(fraction, what)` is told before each step.
        """
        tell = progress or (lambda fraction, what: None)
        tell(0.0, "reading the photo")
        # read as translate reads it: a 16-bit gray photo came out white (PIL clips it to 8 bits), a transparent
        # one was coloured as its hidden pixels, a phone's RGB JPEG stayed on its side (EXIF rotation); a path or
        # bytes failed with AttributeError. An RGB picture translate has read already is taken as it is
        read = isinstance(picture, Image.Image) and picture.mode == "RGB" and \
            picture.getexif().get(ExifTags.Base.Orientation, 1) == 1
        picture = picture if read else open_image(picture)
        rgb = _rgb_array(picture)
        lightness_small = self.colorize_input(picture)
        tell(0.1, "predicting colour")
        ab = self.run_network(lightness_small, seed)
        tell(0.4, "joining colour to the full-resolution lightness")
        guide = {}
        if self.chroma_guide is not None:
            radius, eps = self.chroma_guide
            guide = {"lightness_small": lightness_small[0, 0].numpy(), "radius": radius, "eps": eps}
        result = recolor_uint8(rgb, ab[0].numpy(), **guide)  # threads=2 measured no faster on the shared 2-core machine
        tell(1.0, "done")
        return _rgb_image(result)

    def colorize_input(self, picture: Image.Image) -> torch.Tensor:
        """The network's input for colorizing `picture`: its normalised L at the network's size, (1, 1, S, S).

        Shrunk with Lanczos (`images.resize_photo`): the colorizer trained on crops never resampled, and a
        softer input gets warmer, more uniform colours. On food photos at 286 px (200 val photos at two
        dropout seeds, 200 train photos; colour two-sample over 20 classifier seeds): bilinear 0.573-0.603,
        hamming 0.567-0.575, bicubic 0.560-0.565, Lanczos 0.546-0.558 (`checkpoints/food_colorize.md`)."""
        small = pil_to_unit(resize_photo(picture, (self.size, self.size)))[None]
        return rgb_to_lab_normalized(small)[0]

    def colorize_reference(self, picture: Image.Image, seed: Optional[int] = 0) -> Image.Image:
        """The original colorize path (kornia on full-size float tensors): the fast path's reference."""
        full = pil_to_unit(picture)[None]
        lightness_full, _ = rgb_to_lab_normalized(full)
        lightness_small = self.colorize_input(picture)
        ab = self.run_network(lightness_small, seed)
        ab = F.interpolate(ab, size=full.shape[-2:], mode="bilinear", align_corners=False)
        return unit_to_pil(lab_normalized_to_rgb(lightness_full, ab)[0])


class OnnxTranslator(Translator):
    """The same pre- and post-processing as Translator, with the generator run by onnxruntime (CPU, fp32).

    The exported network is deterministic (dropout off, batch norm frozen in the Translator's mode for the
    model, see `export_formats`): `seed` changes nothing and a `dropout` option is ignored (always off).
    """

    def __init__(self, session, name: str = "model"):
        self.config, self.name = session.config, name
        self.device = torch.device("cpu")
        self.dtype = torch.float32
        self.generator = session
        self.backend = "onnx"
        self._lock = threading.Lock()

    @classmethod
    def load_onnx(cls, path: str | Path, dropout: bool = False, threads: Optional[int] = None,
                  chroma_guide: Optional[tuple[int, float]] = CHROMA_GUIDE, direction: Optional[str] = None,
                  device: str = "cpu", **ignored) -> "OnnxTranslator":
        """An exported ONNX file; for a CycleGAN, `direction` must be the generator the file holds (one of two),
        and None takes that one. `device` is checked (check_onnx_device) before the file is read."""
        from .export_formats import OnnxGenerator

        check_onnx_device(device, path)
        generator = OnnxGenerator(path, threads)
        held = generator.metadata.get("generator", "AtoB")  # files exported before it was recorded: the default
        if direction is None:
            direction = held if generator.config.model == "cyclegan" else "AtoB"
        refuse_direction_of_pix2pix(generator.config, direction, path)
        if generator.config.model == "cyclegan" and held != direction:
            raise CheckpointError(f"{path} holds the CycleGAN's {held} generator only; " + (
                official_cyclegan_note(generator.metadata) or f"export the {direction} one with "
                f"`python -m pix2pix_core export --format onnx --direction {direction}`"))
        translator = cls(generator, name=Path(path).stem)
        translator.chroma_guide = chroma_guide
        return translator

    def run_network(self, batch: torch.Tensor, seed: Optional[int] = 0) -> torch.Tensor:
        with self._lock:
            return self.generator(batch.float())


def check_onnx_device(device: str, path: str | Path) -> None:
    """The session runs on onnxruntime's CPU provider only (export_formats.OnnxGenerator): device auto or cpu.
    A device torch does not know or lacks here gets pick_device's error; any other, such as cuda, was taken
    and the model ran on the CPU all the same."""
    if device == "auto" or pick_device(device).type == "cpu":
        return
    raise Pix2PixError(f"device {str(device)[:40]}: {path} is an ONNX model, which runs on the CPU only "
                       f"(onnxruntime's CPU provider); use device cpu or auto, or its .safetensors checkpoint")


def _rgb_array(picture: Image.Image) -> np.ndarray:
    """The picture's uint8 RGB pixels (H, W, 3), converting only when it is not RGB already."""
    return np.asarray(picture if picture.mode == "RGB" else picture.convert("RGB"), dtype=np.uint8)


def _rgb_image(array: np.ndarray) -> Image.Image:
    """A uint8 (H, W, 3) array as an RGB image sharing its memory (no copy)."""
    height, width = array.shape[:2]
    return Image.frombuffer("RGB", (width, height), np.ascontiguousarray(array), "raw", "RGB", 0, 1)


def grayscale(image: ImageSource) -> Image.Image:
    """The photo as a colorizer sees it: Lab lightness only, shown as RGB gray."""
    return _rgb_image(gray_uint8(_rgb_array(open_image(image))))


def grayscale_reference(image: ImageSource) -> Image.Image:
    """The original kornia path of `grayscale` (the fast path's reference)."""
    picture = open_image(image)
    lightness, ab = rgb_to_lab_normalized(pil_to_unit(picture)[None])
    return unit_to_pil(lab_normalized_to_rgb(lightness, torch.zeros_like(ab))[0])
