"""The facade segmenter's settings (SegmenterConfig), apart from segment.py's torch: the command line builds
`train-segmenter --help` from its defaults without loading torch."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Optional

from .errors import check_all


@dataclass
class SegmenterConfig:
    """Everything that defines a segmenter and its training; stored inside the checkpoint."""

    data: str = ""  # facades folder (its train/ split is used); A|B images, A = photo, B = label map
    out: str = "checkpoints/facades_segmenter.safetensors"
    direction: str = "AtoB"  # which half is the photo: A in the CMP facades from pix2pix
    ngf: int = 16  # U-Net width: 16 gives 3.4M parameters, 6.8 MB in fp16, ~1 GFLOP per 256px image
    num_downs: int = 8  # 8 halvings take 256 px down to 1x1: every pixel sees the whole facade
    crop_size: int = 256  # the network's input size (the generated photos are 256x256)
    load_size: int = 286  # resize to this, then random-crop crop_size (the pix2pix jitter)
    flip: bool = True  # random mirror: facades are left-right symmetric
    epochs: int = 40  # 2,000 steps at batch 8: about a quarter of an hour with 1 CPU thread
    batch_size: int = 8  # batch norm needs a few images per batch for stable statistics
    lr: float = 2e-3  # Adam, cosine-decayed to zero: a short schedule that converges in minutes
    weight_decay: float = 1e-4
    max_images: Optional[int] = None  # at most this many training images, spread evenly (tests, quick runs)
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"  # auto = bf16 autocast on CPU/CUDA (as the trainer); fp32 to disable
    channels_last: bool = True
    save_dtype: str = "fp16"  # weights are stored in half precision: half the file, same predictions

    def validate(self) -> "SegmenterConfig":
        checks = [
            (self.direction in ("AtoB", "BtoA"), f"direction must be AtoB or BtoA, got {self.direction!r}"),
            (self.crop_size <= self.load_size, f"crop_size {self.crop_size} is larger than load_size {self.load_size}"),
            (self.num_downs >= 5, "num_downs must be at least 5 (the U-Net has 5 fixed levels)"),
            (self.crop_size % 2 ** self.num_downs == 0,
             f"crop_size {self.crop_size} must be a multiple of {2 ** self.num_downs} for num_downs {self.num_downs}"),
            (self.epochs >= 1 and self.batch_size >= 1 and self.ngf >= 1, "epochs, batch_size and ngf must be >= 1"),
            (self.lr > 0, "lr must be positive"),
            (self.precision in ("auto", "fp32", "bf16"),
             f"precision must be auto, fp32 or bf16, got {self.precision!r}"),
            (self.save_dtype in ("fp16", "fp32"), f"save_dtype must be fp16 or fp32, got {self.save_dtype!r}"),
        ]
        check_all(checks)
        return self

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "SegmenterConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in json.loads(text).items() if k in known})
