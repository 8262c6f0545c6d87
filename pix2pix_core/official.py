"""Import the official pretrained pix2pix and CycleGAN generators (junyanz/pytorch-CycleGAN-and-pix2pix) safely.

The official repository publishes `latest_net_G.pth` files: pickled state dicts of its UnetGenerator (pix2pix)
or of its ResnetGenerator (CycleGAN: `NAME.pth`, one generator each, the A -> B of its name; two
of them, one per direction, make a pair).
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

CycleGAN. The published CycleGAN models are ResnetGenerator(3, 3, ngf 64, instance norm, no dropout,
9 blocks), run by `test.py --model test --no_dropout`. Our `ResnetGenerator` is the official one layer for
layer (reflection padding, convolutions with bias before instance norm without affine parameters, the same
final ReflectionPad / Conv(bias) / Tanh), so its keys are the official ones except inside a residual
block, whose Sequential the official code names `conv_block` where ours is `block`:
`model.10.conv_block.1.weight` is our `model.10.block.1.weight`. Checked against a rebuild of the official
classes for resnet_9blocks and resnet_6blocks at ngf 64 and 8: same keys and shapes (11,378,179 parameters
for a published model), bit-identical outputs. Files saved while the official instance norm kept running
statistics (PyTorch < 0.4, and its code of early 2018) hold `running_mean` / `running_var` /
`num_batches_tracked` for each instance norm; the official loader drops them (`__patch_instance_norm_
state_dict` in base_model.py) and normalises with each image's own statistics, and so do we. That is also why
its test script's train mode (`model.eval()` only with `--eval`) changes nothing: instance norm without
running statistics computes the same in both modes, and there is no dropout. A model trained without
`--no_dropout` has a Dropout inside each block (its second convolution moves from `conv_block.5` to `.6`);
our block has none, so it is refused with that hint.

A CycleGAN pair. The official repository publishes each direction as its own file (horse2zebra.pth and
zebra2horse.pth, apple2orange and orange2apple, ...). Given with `reverse`, the file named the other way round
is the B -> A generator F: both are checked with the same rules and settings, must be the same architecture
(netG, ngf, channels) and two different files, and are written as G. and F., the file `export --direction both`
writes of a trained CycleGAN, which translates and tests either way. `imported_from` records the first file as
for one, and the reverse's name, sha256 and parameter count under `reverse`.
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
from torch import nn

from .checkpoint import FORMAT, PICKLE_MAGICS, atomic_save, check_export_dtype, refuse_overwriting, shareable
from .color import AB_SCALE, L_SCALE
from .config import TrainConfig, cyclegan_config
from .errors import CheckpointError
from .networks import build_generator

OFFICIAL_REPO = "junyanz/pytorch-CycleGAN-and-pix2pix"
IMPORT_MODELS = ("pix2pix", "cyclegan")
IMPORTABLE_GENERATORS = ("unet_256", "unet_128")  # pix2pix
CYCLEGAN_GENERATORS = ("resnet_9blocks", "resnet_6blocks")
RESNET_BLOCKS = {"resnet_9blocks": 9, "resnet_6blocks": 6}
IMPORT_TASKS = ("facades", "aligned", "colorize")  # pix2pix; a CycleGAN's task is unpaired
# a residual block's Sequential: `conv_block` in the official ResnetBlock, `block` in ours
OFFICIAL_BLOCK, OUR_BLOCK = re.compile(r"^model\.(\d+)\.conv_block\."), re.compile(r"^model\.(\d+)\.block\.")
STALE_NORM_STATS = ("running_mean", "running_var", "num_batches_tracked")  # an old instance norm's, unused
# The official colorization scaling (data/colorization_dataset.py, models/colorization_model.py)
OFFICIAL_L_SCALE, OFFICIAL_AB_SCALE = 50.0, 110.0
UNET_LEVELS = {"unet_256": 8, "unet_128": 7}  # halvings of each U-Net
DEFAULT_DIRECTION = {"facades": "BtoA", "aligned": "AtoB", "colorize": "AtoB"}  # facades: label (B) -> photo (A)
MAX_NAMES = 4  # key names shown in an error before "... and N more"


def official_key(key: str) -> str:
    """Our generator key -> the official one. The U-Net layouts coincide; a residual block's layers sit in
    `conv_block` there, `block` here (see the module docstring)."""
    return OUR_BLOCK.sub(r"model.\1.conv_block.", key)


def our_key(key: str) -> str:
    """An official generator key -> ours: drop DataParallel's `module.` prefix, rename a residual block's
    `conv_block` to our `block`; the rest is the same."""
    key = key[len("module."):] if key.startswith("module.") else key
    return OFFICIAL_BLOCK.sub(r"model.\1.block.", key)


def _names(keys: list[str]) -> str:
    """Up to MAX_NAMES keys, as the file names them (official names: what the user can look up in it)."""
    keys = [official_key(k) for k in keys]
    shown = ", ".join(keys[:MAX_NAMES])
    return shown + (f" ... and {len(keys) - MAX_NAMES} more" if len(keys) > MAX_NAMES else "")


def _in_order(key: str) -> list:
    """Sort key: layer numbers as numbers, so model.9 comes before model.10 (a message names the first few)."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in key.split(".")]


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
    if any(OUR_BLOCK.match(k) for k in state):
        return " (this looks like a CycleGAN ResNet generator: import it with --model cyclegan)"
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


def _residual_blocks(state: dict[str, torch.Tensor]) -> set[int]:
    """The indices of a ResNet generator's residual blocks, from the keys of its state (our names)."""
    return {int(m.group(1)) for m in map(OUR_BLOCK.match, state) if m}


def _resnet_hint(state: dict[str, torch.Tensor], netG: str, modules: dict[str, nn.Module]) -> str:
    """Why a CycleGAN file's keys differ from ours, when its names tell: a U-Net, another number of residual
    blocks, dropout inside the blocks, or a norm with weights (batch norm)."""
    if any(k.startswith("model.model.") for k in state):
        return " (this looks like a pix2pix U-Net generator: import it with --model pix2pix, its --netG and --task)"
    blocks = _residual_blocks(state)
    if blocks and len(blocks) != RESNET_BLOCKS[netG]:
        other = f"resnet_{len(blocks)}blocks"
        return (f" (the file has {len(blocks)} residual blocks, --netG {netG} has {RESNET_BLOCKS[netG]}"
                + (f": try --netG {other})" if other in RESNET_BLOCKS else
                   f"; only {' and '.join(CYCLEGAN_GENERATORS)} are imported)"))
    if any(re.match(r"model\.\d+\.block\.6\.weight$", k) and v.dim() == 4 for k, v in state.items()):
        return (" (its residual blocks hold a dropout layer (their second convolution is conv_block.6, not .5): "
                "trained without --no_dropout; only models trained with it, as every published CycleGAN model, "
                "are imported)")
    normed = [k for k in state if k.endswith((".weight", ".bias"))
              and isinstance(modules.get(k.rpartition(".")[0]), nn.InstanceNorm2d)]
    if normed:
        return (f" (the file has norm-layer weights ({official_key(normed[0])}): trained with --norm batch? only "
                "instance norm without affine parameters, the official CycleGAN default, is imported)")
    return ""


def _resnet_shape_hint(key: str, state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> str:
    """A width or channel count to try, read from the file's first and last convolutions (7x7, ngf wide)."""
    convs = [k for k, v in expected.items() if k.endswith(".weight") and v.dim() == 4]
    first, last = convs[0], convs[-1]  # (ngf, input_nc, 7, 7) and (output_nc, ngf, 7, 7)
    hints = []
    if key in (first, last) and state[first].dim() == 4 and state[last].dim() == 4:
        got, want = state[first].shape, expected[first].shape
        if got[0] != want[0]:
            hints.append(f"the file has ngf {got[0]}: try --ngf {got[0]}")
        elif got[1] != want[1]:
            hints.append(f"the file's network takes {got[1]} input channel(s); CycleGAN models are imported "
                         f"RGB -> RGB ({want[1]})")
        elif state[last].shape[0] != expected[last].shape[0]:
            hints.append(f"the file's network gives {state[last].shape[0]} output channel(s); CycleGAN models "
                         f"are imported RGB -> RGB ({expected[last].shape[0]})")
    return f" ({'; '.join(hints)})" if hints else ""


def _drop_stale_instance_norm_stats(state: dict[str, torch.Tensor], modules: dict[str, nn.Module]) -> list[str]:
    """Remove the running statistics an old instance norm saved (PyTorch < 0.4, or while the official code had
    its instance norm track them), as the official loader does: its instance norm, like ours, keeps none and
    normalises each image with its own. Returns the official names of the keys removed."""
    stale = [k for k in state if k.rpartition(".")[2] in STALE_NORM_STATS
             and isinstance(modules.get(k.rpartition(".")[0]), nn.InstanceNorm2d)]
    for key in stale:
        del state[key]
    return [official_key(k) for k in stale]


def _settings(model: Optional[str], task: Optional[str], netG: Optional[str]) -> tuple[str, str, str]:
    """(model, task, netG) with the defaults filled in, as `train` pairs them: task unpaired is a CycleGAN's and
    a CycleGAN's task is unpaired; a pix2pix import defaults to facades and unet_256, a CycleGAN to
    resnet_9blocks (every published one)."""
    if model is not None and model not in IMPORT_MODELS:
        raise CheckpointError(f"--model {model}: must be one of {', '.join(IMPORT_MODELS)}")
    model = model or ("cyclegan" if task == "unpaired" else "pix2pix")
    if model == "cyclegan":
        if task not in (None, "unpaired"):
            raise CheckpointError(f"--task {task} is a pix2pix task; an official CycleGAN model translates unpaired "
                                  "collections (task unpaired): leave --task out, or import a pix2pix model with "
                                  "--model pix2pix")
        netG = netG or CYCLEGAN_GENERATORS[0]
        if netG not in CYCLEGAN_GENERATORS:
            raise CheckpointError(f"--netG {netG}: a CycleGAN import takes {' or '.join(CYCLEGAN_GENERATORS)}"
                                  + ("; a U-Net is a pix2pix model's: --model pix2pix" if netG.startswith("unet") else
                                     ""))
        return model, "unpaired", netG
    if task == "unpaired":
        raise CheckpointError("--task unpaired is a CycleGAN's: import an official CycleGAN model with --model "
                              "cyclegan")
    netG = netG or IMPORTABLE_GENERATORS[0]
    if netG not in IMPORTABLE_GENERATORS:
        raise CheckpointError(f"--netG {netG}: only {', '.join(IMPORTABLE_GENERATORS)} generators can be imported"
                              + ("; a ResNet generator is a CycleGAN's: add --model cyclegan"
                                 if netG in CYCLEGAN_GENERATORS else ""))
    task = task or "facades"
    if task not in IMPORT_TASKS:
        raise CheckpointError(f"--task {task}: must be one of {', '.join(IMPORT_TASKS)}")
    return model, task, netG


REVERSE_NEEDS_CYCLEGAN = ("--reverse takes the other direction of an official CycleGAN model (zebra2horse.pth "
                          "beside horse2zebra.pth): add --model cyclegan")


def _resnet_layout(state: dict[str, torch.Tensor]) -> Optional[dict[str, object]]:
    """A ResNet file's netG, width and channels, read from its residual blocks and its first and last
    convolutions; None for a file that is no ResNet (its conversion then says what it is)."""
    blocks = _residual_blocks(state)
    convs = sorted((k for k, v in state.items() if re.fullmatch(r"model\.\d+\.weight", k) and v.dim() == 4),
                   key=_in_order)
    if not blocks or not convs:
        return None
    first, last = state[convs[0]].shape, state[convs[-1]].shape  # (ngf, input_nc, 7, 7), (output_nc, ngf, 7, 7)
    return {"netG": f"resnet_{len(blocks)}blocks", "ngf": first[0], "channels": f"{first[1]} -> {last[0]}"}


def _refuse_an_unlike_pair(path: Path, reverse: Path, config: TrainConfig, state: dict[str, torch.Tensor]) -> None:
    """The two files of a pair are the two generators of one CycleGAN. The first has been checked against
    --netG / --ngf; a reverse of another architecture is named as such, not with a hint to change the options
    the first file needs."""
    found = _resnet_layout(state)
    want = {"netG": config.netG, "ngf": config.ngf, "channels": f"{config.input_nc} -> {config.output_nc}"}
    differs = [name for name in want if found is not None and found[name] != want[name]]
    if differs:
        theirs = ", ".join(f"{name} {found[name]}" for name in differs)
        ours = ", ".join(f"{name} {want[name]}" for name in differs)
        raise CheckpointError(f"--reverse {reverse}: not the other direction of {path.name} (it has {theirs}, "
                              f"{path.name} {ours}); the two files of a pair are the two generators of one "
                              "CycleGAN, with the same netG, ngf and channels")


def _refuse_the_same_file(path: Path, reverse: Path, same_bytes: bool = False) -> None:
    """The reverse is the official model named the other way round; the same file twice would translate B -> A
    with the A -> B generator."""
    if same_bytes or path.resolve() == reverse.resolve():
        what = "hold the same bytes" if same_bytes and path.resolve() != reverse.resolve() else "are the same file"
        raise CheckpointError(f"{path} and --reverse {reverse} {what}: --reverse takes the official model named the "
                              f"other way round (zebra2horse.pth for horse2zebra.pth)")


def _converted(path: Path, state: dict[str, torch.Tensor], model: str, config: TrainConfig,
               dtype: torch.dtype) -> tuple[dict[str, torch.Tensor], dict]:
    """One official file's `state` (read_official_state) checked key by key and shape by shape against
    `config`'s generator, as `dtype` weights, with what the header records of the file itself (name, sha256,
    parameter count, stale keys ignored). The import's rules for every file it reads, a pair's two alike."""
    netG, ngf, task = config.netG, config.ngf, config.task
    generator = build_generator(config)
    expected = generator.state_dict()
    modules = dict(generator.named_modules())
    as_saved = dict(state)  # the hint reads the file's own depth, before the placeholders below
    ignored: list[str] = []
    if model == "cyclegan":
        ignored = _drop_stale_instance_norm_stats(state, modules)
    else:
        for key, value in expected.items():  # PyTorch < 0.4 saved batch norm without this counter (unused here)
            if key.endswith("num_batches_tracked") and key not in state:
                state[key] = torch.zeros_like(value)
    unknown = sorted(set(state) - set(expected), key=_in_order)
    missing = sorted(set(expected) - set(state), key=_in_order)
    if unknown or missing:
        parts = ([f"unknown keys: {_names(unknown)}"] if unknown else []) + \
                ([f"missing keys: {_names(missing)}"] if missing else [])
        hint = _resnet_hint(as_saved, netG, modules) if model == "cyclegan" else _hint(as_saved, expected)
        raise CheckpointError(f"{path}: not an official {netG} generator ({'; '.join(parts)}){hint}")
    for key, want in expected.items():
        got = state[key]
        if got.shape != want.shape:
            if model == "cyclegan":
                raise CheckpointError(f"{path}: {official_key(key)} has shape {tuple(got.shape)}, {netG} with --ngf "
                                      f"{ngf} expects {tuple(want.shape)}{_resnet_shape_hint(key, state, expected)}")
            raise CheckpointError(f"{path}: {key} has shape {tuple(got.shape)}, {netG} with --ngf {ngf} --task {task} "
                                  f"expects {tuple(want.shape)}{_shape_hint(key, got.shape, want.shape, config)}")
        if got.is_floating_point() != want.is_floating_point():
            raise CheckpointError(f"{path}: {official_key(key)} holds {got.dtype}, expected {want.dtype}")
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(f"{path}: non-finite weights in {_names(bad)}")
    generator.load_state_dict(state, strict=True)
    weights = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in generator.state_dict().items()}
    overflow = [k for k, v in weights.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if overflow:  # finite in the file, beyond the range of the dtype asked for (fp16: 65,504)
        raise CheckpointError(f"{path}: {_names(overflow)} do not fit in {str(dtype).replace('torch.', '')}; "
                              "import with --dtype bf16 or fp32")
    source = {"file": path.name, "sha256": _sha256(path),
              "parameters": sum(p.numel() for p in generator.parameters())}
    if ignored:
        source["ignored_keys"] = len(ignored)  # stale instance-norm statistics, dropped as the official loader does
    return weights, source


def _check_pair_settings(path: Path, reverse: Path, out: str | Path, model: str, direction: Optional[str]) -> None:
    """What can be told of a pair before reading it: a CycleGAN's, the first file A -> B, two files, neither
    the output."""
    if model != "cyclegan":
        raise CheckpointError(REVERSE_NEEDS_CYCLEGAN)
    if direction == "BtoA":
        raise CheckpointError("--direction BtoA with --reverse: the first file is the pair's A -> B generator, "
                              "--reverse its B -> A one; to swap the directions, swap the two files")
    refuse_overwriting(reverse, out)
    _refuse_the_same_file(path, reverse)


def _converted_reverse(path: Path, reverse: Path, config: TrainConfig, dtype: torch.dtype,
                       forward: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """The B -> A file of a pair, converted with the first file's rules and settings once it is seen to be the
    same architecture and another file (`forward`: what the header records of the first)."""
    state = read_official_state(reverse)
    _refuse_an_unlike_pair(path, reverse, config, state)
    weights, source = _converted(reverse, state, "cyclegan", config, dtype)
    _refuse_the_same_file(path, reverse, same_bytes=source["sha256"] == forward["sha256"])
    return weights, source


def import_official(path: str | Path, out: str | Path, netG: Optional[str] = None, task: Optional[str] = None,
                    direction: Optional[str] = None, ngf: int = 64, dtype: torch.dtype = torch.float16,
                    dropout: Optional[bool] = None, model: Optional[str] = None,
                    reverse: Optional[str | Path] = None) -> Path:
    """Check an official `latest_net_G.pth` (pix2pix) or `NAME.pth` (CycleGAN, `model="cyclegan"`) against our
    network and write it as an exported generator: the file `export` writes, so everything that reads those
    reads it. A CycleGAN file is one generator: exported as `export --direction AtoB` writes one (or, with
    `direction="BtoA"`, as the B -> A generator F of a CycleGAN, as `export --direction BtoA` does). With
    `reverse`, the official file named the other way round (zebra2horse.pth for horse2zebra.pth), both are
    checked alike and written as one CycleGAN's G and F, as `export --direction both` writes them: the file
    then translates and tests either way. `dtype`: torch.float16, bfloat16 or float32, as `export_generator`'s."""
    check_export_dtype(dtype)  # "fp16" failed once the file was read and checked; an int dtype truncated weights
    path = Path(path)
    refuse_overwriting(path, out)
    model, task, netG = _settings(model, task, netG)
    if reverse is not None:
        reverse = Path(reverse)
        _check_pair_settings(path, reverse, out, model, direction)
    if model == "cyclegan":
        if direction not in (None, "AtoB", "BtoA"):
            raise CheckpointError(f"--direction {direction}: must be AtoB or BtoA")
        if dropout:
            raise CheckpointError("a CycleGAN generator is imported without dropout (every published one was "
                                  "trained and is tested with --no_dropout; our ResNet blocks have no dropout)")
        # task unpaired, instance norm without running statistics, no dropout (CYCLEGAN_DEFAULTS); a CycleGAN
        # config reads A -> B, the header says when the generator is the B -> A one (as export writes it)
        config = cyclegan_config(netG=netG, ngf=ngf)
    else:
        if task == "colorize" and (L_SCALE, AB_SCALE) != (OFFICIAL_L_SCALE, OFFICIAL_AB_SCALE):
            raise CheckpointError(f"colorize: this version scales Lab as L/{L_SCALE}-1, ab/{AB_SCALE}, the official "
                                  f"model L/{OFFICIAL_L_SCALE}-1, ab/{OFFICIAL_AB_SCALE}; its output would be wrong")
        dropout = True if dropout is None else dropout
        crop = 256 if netG.endswith("_256") else 128
        # the official test script's mode: per-image batch-norm statistics (batch size 1), dropout on (unless the
        # model was trained without it: `dropout`, which the file cannot tell)
        config = TrainConfig(task=task, netG=netG, ngf=ngf, norm="batch", dropout=dropout, test_dropout=dropout,
                             batch_size=1, direction=direction or DEFAULT_DIRECTION[task], crop_size=crop,
                             load_size=max(286, crop)).validate()
    weights, source = _converted(path, read_official_state(path), model, config, dtype)
    shipped = {f"G.{k}": v for k, v in weights.items()}
    origin = {"repository": OFFICIAL_REPO, **source, "netG": netG, "ngf": ngf}
    if reverse is not None:  # G and F, as `export --direction both` writes them; each file's provenance kept
        backward, origin["reverse"] = _converted_reverse(path, reverse, config, dtype, source)
        shipped.update({f"F.{k}": v for k, v in backward.items()})
    if model == "cyclegan":
        origin["model"] = "cyclegan"
        origin["test_mode"] = ("instance norm with each image's own statistics (the same in eval and train mode), "
                               "no dropout: the official test.py --model test --no_dropout")
    else:
        origin["test_mode"] = "per-image batch-norm statistics, " + (
            "dropout on (the official test script's default)" if dropout else "no dropout (trained without)")
    shared_config, trained = shareable(config.to_json())  # as `export` writes it
    metadata = {"format": FORMAT, "kind": "generator", "config": shared_config, "trained": trained,
                "imported_from": json.dumps(origin, sort_keys=True)}
    if model == "cyclegan" and direction == "BtoA":
        metadata["direction"] = "BtoA"  # the file's G. is a CycleGAN's F, as `export --direction BtoA` writes it
    return atomic_save(shipped, metadata, out)
