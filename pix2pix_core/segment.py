"""A small facade segmenter (photo -> 12 CMP classes per pixel) and the FCN-score metrics.

The paper judges label->photo models with the "FCN-score" (Isola et al. 2017, sec. 4.2): an
off-the-shelf segmenter runs on the generated photos, and the better it recovers the input labels,
the more the photos look like real facades to a recogniser. No pretrained facade segmenter ships
with torch, so this module trains one on the facades TRAIN photos only (never val: the score on val
must not be inflated by memorised buildings).

The network is the project's own U-Net with 12 logit channels (no tanh), trained with cross-entropy
on random crops and mirrors of photo / cleaned label-map pairs. The same checkpoint also powers the
app's "Start from a photo": `Segmenter.load(path).label_map(photo)`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from tqdm import tqdm

from .checkpoint import FORMAT, atomic_save, load_into, read_checkpoint, shareable, sub_state
from .color import pil_to_unit, to_signed
from .config import TrainConfig
from .data import load_items
from .distributed import pick_device
from .errors import CheckpointError, Pix2PixError
from .images import ImageSource, open_image
from .networks import UnetGenerator, init_weights, norm_layer
from .palette import clean_label_ids, facade_classes, ids_to_image
from .segmenter_config import SegmenterConfig

N_CLASSES = len(facade_classes())  # 12 CMP classes, index 0 = background


def build_segmenter(config: SegmenterConfig) -> nn.Module:
    """The pix2pix U-Net with 12 logit channels: no tanh, no dropout (no noise wanted here)."""
    net = UnetGenerator(3, N_CLASSES, config.num_downs, config.ngf, norm_layer("batch"), dropout=False, tanh=False)
    return init_weights(net)


def _autocast(precision: str, device: torch.device):
    if precision != "fp32" and device.type in ("cpu", "cuda"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


# ---------------------------------------------------------------------------------------------- metrics
def confusion_matrix(pred_ids: np.ndarray, true_ids: np.ndarray, n_classes: int = N_CLASSES) -> np.ndarray:
    """(n, n) int64 counts: row = true class, column = predicted class."""
    pred, true = np.asarray(pred_ids).ravel(), np.asarray(true_ids).ravel()
    if pred.shape != true.shape:
        raise ValueError(f"prediction and truth differ in size: {np.shape(pred_ids)} vs {np.shape(true_ids)}")
    return np.bincount(true * n_classes + pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def scores_from_confusion(confusion: np.ndarray) -> dict[str, float]:
    """Per-pixel accuracy, per-class accuracy and mean IoU, as the FCN paper (Long et al. 2015) defines them.

    Classes absent from both truth and prediction are left out of the means instead of counting as 0
    or 1: a facade without a balcony says nothing about how well balconies are recognised.
    """
    confusion = np.asarray(confusion, dtype=np.float64)
    hits, truth, predicted = np.diag(confusion), confusion.sum(1), confusion.sum(0)
    union = truth + predicted - hits
    total = confusion.sum()
    return {
        "pixel_acc": float(hits.sum() / total) if total else float("nan"),
        "class_acc": float(np.mean(hits[truth > 0] / truth[truth > 0])) if (truth > 0).any() else float("nan"),
        "miou": float(np.mean(hits[union > 0] / union[union > 0])) if (union > 0).any() else float("nan"),
    }


def segmentation_scores(pred_ids: np.ndarray, true_ids: np.ndarray, n_classes: int = N_CLASSES) -> dict[str, float]:
    """pixel_acc, class_acc and miou of one prediction (or a stack of them) against the truth."""
    return scores_from_confusion(confusion_matrix(pred_ids, true_ids, n_classes))


# ---------------------------------------------------------------------------------------------- data
@dataclass
class SegmentationData:
    """Photos (N, 3, S, S) uint8 and class ids (N, S, S) int64, decoded once, at load_size (or crop_size)."""

    photos: torch.Tensor
    ids: torch.Tensor
    names: list[str]

    @classmethod
    def load(cls, config: SegmenterConfig, split: str, train: bool) -> "SegmentationData":
        """Decode an aligned facades split; label maps are JPEGs, cleaned to class ids like the pix2pix data."""
        # the pix2pix loader already decodes, splits A|B and resizes; task "facades" cleans the label half B
        # at full size and NEAREST-resizes it (photo A -> label B is direction AtoB); a label in A (BtoA) is
        # cleaned after its bicubic resize, the best that layout allows
        loader = TrainConfig(task="facades" if config.direction == "AtoB" else "aligned", data=config.data, direction=config.direction, load_size=config.load_size,
                             crop_size=config.crop_size, max_images=config.max_images)
        items = load_items(loader, split, train)
        if not items:
            raise Pix2PixError(f"no facade images found in {config.data} ({split})")
        ids = [torch.from_numpy(clean_label_ids(Image.fromarray(item.target.permute(1, 2, 0).numpy()))) for item in items]
        return cls(torch.stack([item.source for item in items]), torch.stack(ids), [item.name for item in items])

    def __len__(self) -> int:
        return len(self.names)

    def batch(self, indices: list[int], crop: int, generator: Optional[torch.Generator],
              mirror: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Network-ready photos in [-1, 1] and target ids; a random crop (+ mirror, with `mirror`) per item when a
        generator is given."""
        photos, targets = [], []
        size = self.photos.shape[-1]
        for index in indices:
            top = left = (size - crop) // 2
            flip = False
            if generator is not None:
                top, left = torch.randint(0, size - crop + 1, (2,), generator=generator).tolist()
                flip = bool(torch.randint(0, 2, (1,), generator=generator)) and mirror  # same draws either way
            photo = self.photos[index, :, top:top + crop, left:left + crop]
            target = self.ids[index, top:top + crop, left:left + crop]
            if flip:
                photo, target = photo.flip(-1), target.flip(-1)
            photos.append(photo)
            targets.append(target)
        return to_signed(torch.stack(photos).float() / 255.0), torch.stack(targets)


# ---------------------------------------------------------------------------------------------- training
@dataclass
class SegmenterResult:
    path: Path
    steps: int
    seconds: float
    train_loss: float  # mean cross-entropy of the last epoch
    val: Optional[dict[str, float]]  # pixel_acc / class_acc / miou on the val photos, when a val split exists


def train_segmenter(config: SegmenterConfig, progress: bool = True) -> SegmenterResult:
    """Train on the train split with crop/mirror jitter, Adam + cosine decay, then score val and save atomically."""
    config.validate()
    device = pick_device(config.device)
    torch.manual_seed(config.seed)
    data = SegmentationData.load(config, "train", train=True)
    net = build_segmenter(config).to(device)
    memory = torch.channels_last if config.channels_last else torch.contiguous_format
    net.to(memory_format=memory)
    steps_per_epoch = math.ceil(len(data) / config.batch_size)
    total = steps_per_epoch * config.epochs
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr, weight_decay=config.weight_decay,
                                 fused=device.type in ("cpu", "cuda"))
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    generator = torch.Generator().manual_seed(config.seed)
    started, epoch_loss = time.perf_counter(), float("nan")
    net.train()
    with tqdm(total=total, unit="step", desc="segmenter", dynamic_ncols=True, disable=not progress) as bar:
        for epoch in range(config.epochs):
            order = torch.randperm(len(data), generator=generator).tolist()
            losses = []
            for start in range(0, len(order), config.batch_size):
                photos, targets = data.batch(order[start:start + config.batch_size], config.crop_size, generator,
                                             config.flip)
                photos = photos.to(device, memory_format=memory)
                with _autocast(config.precision, device):
                    logits = net(photos)
                loss = F.cross_entropy(logits.float(), targets.to(device))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                losses.append(loss.detach())
                bar.update()
            epoch_loss = float(torch.stack(losses).mean())  # one host sync per epoch
            bar.set_postfix_str(f"epoch {epoch + 1} loss={epoch_loss:.3f}")
    seconds = time.perf_counter() - started

    segmenter = Segmenter(net, config, device)
    val = segmenter.evaluate_split(config.data, "val") if _has_split(config.data, "val") else None
    state = {"epochs": config.epochs, "steps": total, "seconds": round(seconds, 1), "train_loss": epoch_loss,
             "train_images": len(data), "val": val}
    path = segmenter.save(config.out, state)
    return SegmenterResult(path, total, seconds, epoch_loss, val)


def _has_split(data: str, split: str) -> bool:
    return (Path(data) / split).is_dir()


# ---------------------------------------------------------------------------------------------- inference
class Segmenter:
    """A trained facade segmenter: photo of any size -> class ids or an RGB label map of the same size."""

    def __init__(self, net: nn.Module, config: SegmenterConfig, device: str | torch.device = "cpu"):
        self.config = config
        self.device = pick_device(device)  # as load checks it: torch said "Expected one of cpu, cuda, ipu, ..."
        self.net = net.to(self.device).eval()  # running batch-norm statistics: one photo is not a batch
        self.net.requires_grad_(False)
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: str | Path, device: str = "auto") -> "Segmenter":
        tensors, metadata = read_checkpoint(path)
        if metadata.get("kind") != "segmenter":
            raise CheckpointError(f"{path}: not a segmenter checkpoint (kind {metadata.get('kind', 'unknown')!r})")
        try:
            config = SegmenterConfig.from_json(metadata["config"]).validate()
        except (json.JSONDecodeError, TypeError, Pix2PixError) as exc:
            raise CheckpointError(f"{path}: its config is unreadable ({exc})") from None
        net = build_segmenter(config)
        load_into(net, {k: v.float() if v.is_floating_point() else v for k, v in sub_state(tensors, "S.").items()},
                  "segmenter", path)
        return cls(net, config, device)  # __init__ checks it (pick_device)

    def save(self, path: str | Path, state: Optional[dict] = None) -> Path:
        dtype = torch.float16 if self.config.save_dtype == "fp16" else torch.float32
        tensors = {f"S.{k}": (v.to(dtype) if v.is_floating_point() else v) for k, v in self.net.state_dict().items()}
        config, trained = shareable(self.config.to_json(), json.dumps(state or {}))  # the file is shared as it is
        metadata = {"format": FORMAT, "kind": "segmenter", "config": config, "trained": trained}
        return atomic_save(tensors, metadata, path)

    def logits(self, batch: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) photos in [-1, 1] -> (N, 12, S, S) float32 logits on the CPU."""
        with self._lock, torch.inference_mode():
            batch = batch.to(self.device)
            if self.device.type == "cpu" and self.config.channels_last:
                batch = batch.contiguous(memory_format=torch.channels_last)
            with _autocast(self.config.precision, self.device):
                return self.net(batch).float().cpu()

    def predict_ids(self, image: ImageSource) -> np.ndarray:
        """(H, W) int64 class ids for a photo of any size and mode (logits upsampled before the argmax)."""
        picture = open_image(image)
        size = self.config.crop_size
        small = picture.resize((size, size), Image.BICUBIC)
        logits = self.logits(to_signed(pil_to_unit(small))[None])
        if picture.size != (size, size):
            logits = F.interpolate(logits, size=(picture.height, picture.width), mode="bilinear", align_corners=False)
        return logits[0].argmax(0).numpy()

    def label_map(self, image: ImageSource) -> Image.Image:
        """The photo as an RGB facade label map of the input's size (exact palette colours)."""
        return ids_to_image(self.predict_ids(image))

    def evaluate_split(self, data: str | Path, split: str = "val") -> dict[str, float]:
        """Scores on the real photos of a split (un-jittered), accumulated over all pixels."""
        config = dataclasses.replace(self.config, data=str(data), max_images=None)
        items = SegmentationData.load(config, split, train=False)
        confusion = np.zeros((N_CLASSES, N_CLASSES), dtype=np.int64)
        for index in range(len(items)):
            photos, targets = items.batch([index], config.crop_size, None)
            confusion += confusion_matrix(self.logits(photos)[0].argmax(0).numpy(), targets[0].numpy())
        return scores_from_confusion(confusion)
