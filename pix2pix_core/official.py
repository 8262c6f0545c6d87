"""Import the official pretrained pix2pix generators (junyanz/pytorch-CycleGAN-and-pix2pix) safely.

The official repository publishes `latest_net_G.pth` files: pickled state dicts of its UnetGenerator.
They are read with `torch.load(..., weights_only=True)` only, which never runs code from the file; a
pickle that needs anything beyond tensors and plain containers is refused with one line.

Key layout. Our `UnetSkipBlock` / `UnetGenerator` follow the official `UnetSkipConnectionBlock` /
`UnetGenerator` layer for layer: the outermost block is `model.model` = [down conv, inner block, ReLU,
up conv, Tanh], each inner block `...model.1.model` = [LeakyReLU, down conv, norm, inner block, ReLU,
up conv, norm, (Dropout)], the innermost [LeakyReLU, down conv, ReLU, up conv, norm]. So the official
key names (`model.model.1.model.3.model.1.weight`, ...) are already ours; checked against a rebuild of
the official classes for unet_256/unet_128 at ngf 32 and 64, 1 and 3 input channels: same keys, same
shapes, same parameter counts (54,413,955 for the official facades model), bit-identical outputs in
eval and train mode. What differs is only the wrapping: a `module.` prefix when the network was saved
inside DataParallel, and no `num_batches_tracked` buffers in files saved by PyTorch < 0.4.

Test-time behaviour. The official test script runs the generator in train mode at batch size 1
(`model.eval()` only with `--eval`): batch norm with each image's own statistics, dropout on. The
imported config says so (batch_size 1, dropout and test_dropout on), and Translator does the same for
any batch-size-1 config.

Colorization. The official `colorization_dataset` feeds L / 50 - 1 (1 channel) and predicts ab / 110
(2 channels), and its `lab2rgb` undoes exactly that: the scaling of `color.py` (L_SCALE, AB_SCALE).
It converts with skimage's rgb2lab (sRGB, D65) where we use kornia's, the same formulas.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import re
import warnings
import zipfile
from pathlib import Path
from typing import Optional

import torch

from .checkpoint import FORMAT, PICKLE_MAGICS, atomic_save, refuse_overwriting
from .color import AB_SCALE, L_SCALE
from .config import TrainConfig
from .errors import CheckpointError
from .networks import build_generator

OFFICIAL_REPO = "junyanz/pytorch-CycleGAN-and-pix2pix"
IMPORTABLE_GENERATORS = ("unet_256", "unet_128")
IMPORT_TASKS = ("facades", "aligned", "colorize")
# The official colorization scaling (data/colorization_dataset.py, models/colorization_model.py)
OFFICIAL_L_SCALE, OFFICIAL_AB_SCALE = 50.0, 110.0
UNET_LEVELS = {"unet_256": 8, "unet_128": 7}  # halvings of each U-Net
DEFAULT_DIRECTION = {"facades": "BtoA", "aligned": "AtoB", "colorize": "AtoB"}  # facades: label (B) -> photo (A)
MAX_NAMES = 4  # key names shown in an error before "... and N more"


def official_key(key: str) -> str:
    """Our generator key -> the official one. The U-Net layouts coincide (see the module docstring)."""
    return key


def our_key(key: str) -> str:
    """An official generator key -> ours: drop DataParallel's `module.` prefix; the rest is the same."""
    return key[len("module."):] if key.startswith("module.") else key


def _names(keys: list[str]) -> str:
    shown = ", ".join(keys[:MAX_NAMES])
    return shown + (f" ... and {len(keys) - MAX_NAMES} more" if len(keys) > MAX_NAMES else "")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_official_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The state dict inside an official `.pth`, loaded with weights_only=True (never arbitrary objects)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found" if not path.exists() else f"{path}: not a file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: empty file (0 bytes); the download did not finish")
    with open(path, "rb") as handle:
        head = handle.read(9)
    if not head.startswith(PICKLE_MAGICS):
        kind = "a safetensors file: use it directly" if head[8:9] == b"{" else "not a pickle or zip archive"
        raise CheckpointError(f"{path}: not a PyTorch .pth file ({kind})")
    try:
        # torch's "Detected pickle protocol 4 ..." is noise before a refusal (one thread here: the CLI's)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        if found:
            raise CheckpointError(f"{path}: refused: the pickle holds more than tensors (it names {found.group(1)}); "
                                  "only plain state dicts of tensors are imported (loading it would run code from "
                                  "the file)") from None
        detail = re.search(r"WeightsUnpickler error:\s*(.+)", str(exc))
        raise CheckpointError(f"{path}: refused: not a plain pickle of tensors"
                              f"{f' ({detail.group(1).strip()[:120]})' if detail else ''}; corrupt, or it holds "
                              "objects that only loading with code execution could rebuild") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile,
            AssertionError, KeyError, TypeError, AttributeError) as exc:  # a damaged old-format (< 1.6) file
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: not a readable PyTorch .pth file ({detail})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: holds a {type(state).__name__}, not a state dict of tensors")
    odd = [str(k) for k, v in state.items() if not (isinstance(k, str) and torch.is_tensor(v))]
    if odd:
        raise CheckpointError(f"{path}: not a generator state dict (entries that are not named tensors: "
                              f"{_names(odd)})")
    return {our_key(k): v for k, v in state.items()}


def netG_of(levels: int) -> str:
    return next((name for name, n in UNET_LEVELS.items() if n == levels), f"{levels}-level U-Net")


def _hint(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> str:
    """Why the keys differ, when it can be told from their names: another generator or norm."""
    if any(".conv_block." in k for k in state):
        return " (this looks like a ResNet generator; only U-Nets (unet_256, unet_128) can be imported)"
    depth = max((k.split(".").count("model") for k in state), default=0)
    ours = max((k.split(".").count("model") for k in expected), default=0)
    if depth and depth != ours:
        other = next((name for name, levels in UNET_LEVELS.items() if levels == depth - 1), None)
        return (f" (the file's U-Net is {depth - 1} levels deep, --netG {netG_of(ours - 1)} has {ours - 1}"
                + (f": try --netG {other})" if other else ")"))
    if not any("running_mean" in k for k in state):
        return " (the file has no batch-norm statistics: trained with --norm instance? only batch norm is imported)"
    return ""


def _shape_hint(key: str, got: torch.Size, want: torch.Size, config: TrainConfig) -> str:
    if key == "model.model.0.weight" and len(got) == 4:
        hints = []
        if got[0] != want[0]:
            hints.append(f"the file has ngf {got[0]}: try --ngf {got[0]}")
        if got[1] != want[1]:
            hints.append(f"the file's network takes {got[1]} input channel(s), --task {config.task} needs "
                         f"{want[1]}" + ("; a colorization model is 1 -> 2 channels" if 1 in (got[1], want[1]) else ""))
        return f" ({'; '.join(hints)})" if hints else ""
    return ""


def import_official(path: str | Path, out: str | Path, netG: str = "unet_256", task: str = "facades",
                    direction: Optional[str] = None, ngf: int = 64, dtype: torch.dtype = torch.float16,
                    dropout: bool = True) -> Path:
    """Check an official `latest_net_G.pth` against our network and write it as an exported generator."""
    path = Path(path)
    refuse_overwriting(path, out)
    if netG not in IMPORTABLE_GENERATORS:
        raise CheckpointError(f"--netG {netG}: only {', '.join(IMPORTABLE_GENERATORS)} generators can be imported")
    if task not in IMPORT_TASKS:
        raise CheckpointError(f"--task {task}: must be one of {', '.join(IMPORT_TASKS)}")
    if task == "colorize" and (L_SCALE, AB_SCALE) != (OFFICIAL_L_SCALE, OFFICIAL_AB_SCALE):
        raise CheckpointError(f"colorize: this version scales Lab as L/{L_SCALE}-1, ab/{AB_SCALE}, the official "
                              f"model L/{OFFICIAL_L_SCALE}-1, ab/{OFFICIAL_AB_SCALE}; its output would be wrong")
    crop = 256 if netG.endswith("_256") else 128
    # the official test script's mode: per-image batch-norm statistics (batch size 1), dropout on (unless the
    # model was trained without it: `dropout`, which the file cannot tell)
    config = TrainConfig(task=task, netG=netG, ngf=ngf, norm="batch", dropout=dropout, test_dropout=dropout,
                         batch_size=1, direction=direction or DEFAULT_DIRECTION[task], crop_size=crop,
                         load_size=max(286, crop)).validate()
    state = read_official_state(path)
    generator = build_generator(config)
    expected = generator.state_dict()
    as_saved = dict(state)  # the hint reads the file's own depth, before the placeholders below
    for key, value in expected.items():  # PyTorch < 0.4 saved batch norm without this counter (unused here)
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros_like(value)
    unknown = sorted(set(state) - set(expected))
    missing = sorted(set(expected) - set(state))
    if unknown or missing:
        parts = ([f"unknown keys: {_names(unknown)}"] if unknown else []) + \
                ([f"missing keys: {_names(missing)}"] if missing else [])
        raise CheckpointError(f"{path}: not an official {netG} generator ({'; '.join(parts)})"
                              f"{_hint(as_saved, expected)}")
    for key, want in expected.items():
        got = state[key]
        if got.shape != want.shape:
            raise CheckpointError(f"{path}: {key} has shape {tuple(got.shape)}, {netG} with --ngf {ngf} --task {task} "
                                  f"expects {tuple(want.shape)}{_shape_hint(key, got.shape, want.shape, config)}")
        if got.is_floating_point() != want.is_floating_point():
            raise CheckpointError(f"{path}: {key} holds {got.dtype}, expected {want.dtype}")
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(f"{path}: non-finite weights in {_names(bad)}")
    generator.load_state_dict(state, strict=True)
    weights = {f"G.{k}": (v.to(dtype) if v.is_floating_point() else v) for k, v in generator.state_dict().items()}
    overflow = [k for k, v in weights.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if overflow:  # finite in the file, beyond the range of the dtype asked for (fp16: 65,504)
        raise CheckpointError(f"{path}: {_names(overflow)} do not fit in {str(dtype).replace('torch.', '')}; "
                              "import with --dtype bf16 or fp32")
    origin = {"repository": OFFICIAL_REPO, "file": path.name, "sha256": _sha256(path), "netG": netG, "ngf": ngf,
              "parameters": sum(p.numel() for p in generator.parameters()),
              "test_mode": "per-image batch-norm statistics, " + ("dropout on (the official test script's default)"
                                                                  if dropout else "no dropout (trained without)")}
    metadata = {"format": FORMAT, "kind": "generator", "config": config.to_json(), "trained": "{}",
                "imported_from": json.dumps(origin, sort_keys=True)}
    return atomic_save(weights, metadata, out)
