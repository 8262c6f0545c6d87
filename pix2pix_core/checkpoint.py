"""Safe checkpoints: safetensors for tensors, JSON (in the safetensors header) for config and state.

Nothing is ever unpickled. Every file is written to a temporary name, flushed to disk and renamed,
so a killed process leaves either the previous checkpoint or the new one, never half a file.
A checkpoint carries its TrainConfig, so loading one needs no flags.
"""

from __future__ import annotations

import json
import os
import re
import struct
import tempfile
import warnings
from pathlib import Path
from typing import Any, Iterable, Optional

import torch
from safetensors import SafetensorError
from safetensors.torch import save_file
from safetensors import safe_open
from torch import nn

from .atomic_files import ORDINARY, fsync_folder, output_problem, remove_partial_files
from .config import TrainConfig
from .distributed import pick_device
from .errors import CheckpointError, Pix2PixError
from .export_choices import GENERATOR_WEIGHTS, TORCH_DTYPE_OF_EXPORT_DTYPE
from .networks import build_generator

FORMAT = "pix2pix-studio/1"
PICKLE_MAGICS = (b"PK\x03\x04", b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")  # zip .pth, pickle 2-5
TEMP_SUFFIX = ".tmp"  # atomic_save's partial files (.NAME.safetensors.XXXX.tmp): never a checkpoint
MAX_HEADER_BYTES = 100_000_000  # the safetensors library's own limit for the JSON header


def atomic_save(tensors: dict[str, torch.Tensor], metadata: dict[str, str], path: str | Path) -> Path:
    """Write a safetensors file atomically: temp file in the same folder, fsync, rename, fsync the folder.

    A crash at any point leaves the previous file untouched (at worst a `.NAME.*.tmp` next to it, which
    `remove_stale_temp_files` clears); a full disk is a CheckpointError saying so, not a traceback.
    """
    path = Path(path)
    problem = output_problem(path, folder=False, suffix=".safetensors")  # said before a temp file is written
    if problem:
        raise CheckpointError(f"cannot write {path}: {problem}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    except OSError as exc:
        raise CheckpointError(f"cannot write {path}: {exc.strerror or exc}") from None
    os.close(fd)
    try:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, tmp, metadata=metadata)
        os.chmod(tmp, ORDINARY)  # mkstemp makes 0600 files; a checkpoint is an ordinary file
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        fsync_folder(path.parent)  # make the rename itself survive a power cut
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, (OSError, SafetensorError)):  # safetensors reports a full disk as its own error
            reason = getattr(exc, "strerror", None) or exc  # SafetensorError has no strerror
            raise CheckpointError(f"could not write {path} ({reason}); the previous checkpoint, if any, "
                                  "is intact") from None
        raise
    return path


def remove_stale_temp_files(folder: str | Path) -> list[Path]:
    """Delete the temp files a killed `atomic_save` left behind (they are never valid checkpoints)."""
    return remove_partial_files(folder, f".*.safetensors.*{TEMP_SUFFIX}")


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Load tensors and metadata, with one clear error for every way a file can be wrong."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.is_dir():
        candidate = path / "checkpoints" / "latest.safetensors"
        if candidate.exists():
            return read_checkpoint(candidate)
        raise CheckpointError(f"{path} is a folder without checkpoints/latest.safetensors")
    _check_safetensors_layout(path)
    try:  # header and tensors from one open file: a checkpoint replaced meanwhile (atomic saves) cannot mix two
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: not a valid safetensors file (truncated or corrupt: {exc})") from None
    if "config" not in metadata:
        raise CheckpointError(f"{path}: safetensors file without a pix2pix config; not a Pix2Pix Studio checkpoint")
    return _as_held(tensors, metadata), metadata


def _as_held(tensors: dict, metadata: dict[str, str]) -> dict:
    """An export made with --direction BtoA stores the CycleGAN's F under G. (its on-disk format, kept for the
    files already out there); renamed F. as it is read, every reader sees what the file holds: F alone."""
    if metadata.get("direction") != "BtoA" or any(key.startswith("F.") for key in tensors):
        return tensors
    return {f"F.{key[2:]}" if key.startswith("G.") else key: value for key, value in tensors.items()}


def read_header(path: str | Path) -> dict[str, str]:
    """A safetensors file's header metadata (config, state, kind), without reading its weights: cheap
    enough to look through a folder of checkpoints."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            return handle.metadata() or {}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None


def resolve_checkpoint(path: str | Path) -> Path:
    """A run folder stands for its latest checkpoint (as `read_checkpoint` reads it)."""
    path = Path(path)
    return path / "checkpoints" / "latest.safetensors" if path.is_dir() else path


def checkpoint_outline(path: str | Path) -> tuple[set[str], dict[str, str]]:
    """The tensor-name prefixes (G, F, E, D, ...) and header metadata of a checkpoint, export or run folder,
    without reading its weights: which generators it holds, and whether it kept a moving average of G (E)."""
    path = resolve_checkpoint(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    _check_safetensors_layout(path)  # an ONNX or pickle file named as such, as read_checkpoint does
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            names = _as_held(dict.fromkeys(handle.keys()), metadata)
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None
    return {key.split(".", 1)[0] for key in names}, metadata


def _is_torchscript(path: Path) -> bool:
    """A TorchScript file is a zip like a torch.save .pth, with its compiled code in a code/ folder (the member
    names are read, nothing is unpickled)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            return any("/code/" in f"/{name}" for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _check_safetensors_layout(path: Path) -> None:
    """Name the problem from the first bytes, before the safetensors parser gives a cryptic one.

    A safetensors file is an 8-byte little-endian header length, a JSON header starting with `{`,
    then the tensor bytes; anything else is another format (a pickle-based .pth above all) or damaged.
    """
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"{path}: empty file (0 bytes); the download or the save did not finish")
    with open(path, "rb") as handle:
        head = handle.read(9)
    if head.startswith(PICKLE_MAGICS):
        if _is_torchscript(path):
            raise CheckpointError(f"{path}: this is a TorchScript export (for torch.jit.load elsewhere); give the "
                                  "model's .safetensors file (or, to translate, its ONNX export with --backend onnx)")
        raise CheckpointError(f"{path}: this is a pickle/PyTorch .pth file; only safetensors checkpoints are "
                              "loaded (pickle can run arbitrary code)")
    if len(head) < 9:
        raise CheckpointError(f"{path}: truncated ({size} bytes, shorter than a safetensors header)")
    header_length = struct.unpack("<Q", head[:8])[0]
    if (head[8:9] != b"{" or header_length > MAX_HEADER_BYTES) and path.suffix.lower() == ".onnx":
        raise CheckpointError(f"{path}: an ONNX export runs translate and test (--backend onnx); training, "
                              "export and fine-tuning read the model's .safetensors file")
    if head[8:9] != b"{" or header_length > MAX_HEADER_BYTES:
        raise CheckpointError(f"{path}: not a safetensors file; only .safetensors checkpoints are loaded")
    if 8 + header_length > size:
        raise CheckpointError(f"{path}: truncated ({size} bytes, but its header alone claims {header_length})")
    with open(path, "rb") as handle:
        handle.seek(8)
        try:
            header = json.loads(handle.read(header_length))
            ends = [entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"]
            if not all(isinstance(end, int) and not isinstance(end, bool) for end in ends):
                raise TypeError("data offsets must be whole numbers")
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            raise CheckpointError(f"{path}: corrupt safetensors header") from None
    expected = 8 + header_length + max(ends, default=0)
    if expected > size:
        raise CheckpointError(f"{path}: truncated ({size:,} of {expected:,} bytes); the download or the save "
                              "did not finish")


def config_of(metadata: dict[str, str], path: str | Path = "checkpoint") -> TrainConfig:
    try:
        values = json.loads(metadata["config"])
        if not isinstance(values, dict):
            raise TypeError(f"expected a JSON object, got {type(values).__name__}")
        return TrainConfig.from_dict(values).validate()
    except (json.JSONDecodeError, TypeError, ValueError, AttributeError, Pix2PixError) as exc:  # a crafted config
        raise CheckpointError(f"{path}: its config is unreadable ({exc})") from None


def training_record(metadata: dict[str, str]) -> str:
    """How far a file's model trained (JSON): a training checkpoint's "state", or the "trained" an export
    keeps from its source (a file holds one of the two)."""
    return metadata.get("state", metadata.get("trained", "{}"))


MACHINE_LOCAL = ("out", "cache_dir")  # the trainer's run and cache folders: of no use anywhere else


def shareable(config: str, trained: str = "{}") -> tuple[str, str]:
    """The config and training record (both JSON) that a file made to be shared carries: an export (safetensors,
    ONNX, TorchScript), an official import, the segmenter. Its recipient needs the architecture, the task and
    how long it trained, not the trainer's machine: an absolute dataset path is reduced to its folder's name
    ("data": "/home/alice/data/food" -> "food"; a relative one inside the project, "data/food", says nothing
    private and lets `test` warn about scoring the folder the model trained on), and so is the model a
    fine-tune started from ("init_from"); the run and cache folders are left out (a loader reads the config
    class's defaults), and so are the optimizers' param groups (resume state). A training checkpoint keeps it
    all (--resume compares init_from paths). Cleaning an already clean file changes nothing."""
    def name(path: str) -> str:  # a Windows path's too, on any machine
        return re.split(r"[\\/]", path.rstrip("\\/"))[-1]

    def inside_project(path: str) -> bool:  # relative, going nowhere above the folder it was run from
        parts = re.split(r"[\\/]", path)
        return not re.match(r"^([\\/~]|[A-Za-z]:)", path) and ".." not in parts

    values = {key: value for key, value in json.loads(config).items() if key not in MACHINE_LOCAL}
    if isinstance(values.get("data"), str) and not inside_project(values["data"]):
        values["data"] = name(values["data"])
    try:
        record = json.loads(trained)
    except ValueError:  # a crafted file's: none of it is kept
        record = {}
    record = {key: value for key, value in (record if isinstance(record, dict) else {}).items()
              if not key.endswith("_groups")}
    if isinstance(record.get("init_from"), str):
        record["init_from"] = name(record["init_from"])
    return json.dumps(values, sort_keys=True), json.dumps(record)


def sub_state(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def load_into(net: nn.Module, state: dict[str, torch.Tensor], what: str, path: str | Path) -> None:
    """load_state_dict with a readable error instead of a wall of mismatched keys."""
    if not state:
        raise CheckpointError(f"{path}: holds no {what} weights")
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        detail = " ".join(line.strip() for line in first[1:3]) if len(first) > 1 else first[0]
        raise CheckpointError(f"{path}: {what} weights do not match its config ({detail[:300]})") from None


def inference_weights(tensors: dict[str, torch.Tensor], direction: str = "AtoB",
                      weights: str = "averaged") -> dict[str, torch.Tensor]:
    """The generator weights to translate with: the moving average (E.) when training kept one, else G;
    `weights="trained"` picks G itself even when an average exists, so one run (with `--ema-decay`)
    yields both models to compare. For a CycleGAN's B -> A direction, its second generator F."""
    if weights not in GENERATOR_WEIGHTS:
        raise CheckpointError(f"weights must be one of {', '.join(GENERATOR_WEIGHTS)}, not {weights!r}")
    if direction == "BtoA":
        return sub_state(tensors, "F.")
    if weights == "trained":
        return sub_state(tensors, "G.")
    return sub_state(tensors, "E.") or sub_state(tensors, "G.")


def refuse_direction_of_pix2pix(config: TrainConfig, direction: str, path) -> None:
    """BtoA asks for a CycleGAN's second generator. A pix2pix model has one, for the direction it was trained
    in: a facades model's BtoA (label -> photo) is that one (so accepted), and "holds A -> B only" told its user
    the opposite; a model trained A -> B has no B -> A generator."""
    if direction == "BtoA" and config.model != "cyclegan" and config.direction != "BtoA":
        raise CheckpointError(f"{path}: a pix2pix model has one generator, for the direction it was trained in "
                              f"({config.direction}); a direction is chosen only for a CycleGAN's two: leave it out")


def official_cyclegan_note(metadata: dict[str, str]) -> str:
    """For a generator imported from one official CycleGAN file (`import-official --model cyclegan`), where the
    other direction comes from: the official model named the other way round, imported with it as a pair
    (`--reverse`) or as a model of its own. The training checkpoint or `export --direction both` that the
    refusals advise otherwise does not exist for it. "" for any other file, and for an export of one generator
    of an imported pair (whose other one the pair file holds: the ordinary advice, export it, is right)."""
    try:
        origin = json.loads(metadata.get("imported_from") or "{}")
    except ValueError:
        return ""
    if not isinstance(origin, dict) or origin.get("model") != "cyclegan" or "reverse" in origin:
        return ""
    return (f"it is one official CycleGAN generator (imported from {str(origin.get('file', '?'))[:100]}); for the "
            "other way import the official model named the other way round with it "
            "(import-official horse2zebra.pth --model cyclegan --reverse zebra2horse.pth) or as a model of its own")


def refuse_segmenter(metadata: dict[str, str], path: str | Path) -> None:
    """A facade segmenter's file is a safetensors checkpoint too: readers of generators name it in one line."""
    if metadata.get("kind") == "segmenter":
        raise CheckpointError(f"{path}: this is a facade segmenter, not a pix2pix generator checkpoint")


def generator_config(path: str | Path) -> TrainConfig:
    """The config of the generator(s) a checkpoint, export or run folder holds, from its header alone: enough
    to refuse a fine-tune before any weights (or the data) are read."""
    _, metadata = checkpoint_outline(path)
    refuse_segmenter(metadata, path)
    return config_of(metadata, path)


def load_generator(path: str | Path, device: str | torch.device = "cpu", direction: str = "AtoB",
                   weights: str = "averaged") -> tuple[nn.Module, TrainConfig, dict]:
    """Rebuild the generator from the config inside a training or exported checkpoint. A CycleGAN
    checkpoint holds two: `direction` AtoB (G) or BtoA (F); `weights` as in `inference_weights`. `device` as
    Translator.load checks it (pick_device), before the file is read."""
    device = pick_device(device)  # torch said "Expected one of cpu, cuda, ipu, ..." once the weights were read
    tensors, metadata = read_checkpoint(path)
    refuse_segmenter(metadata, path)
    config = config_of(metadata, path)
    if direction == "AtoB" and not sub_state(tensors, "G.") and sub_state(tensors, "F."):  # a BtoA export
        warnings.warn(f"{Path(path).name} holds the CycleGAN's B -> A generator only: it translates B -> A")
        direction = "BtoA"
    refuse_direction_of_pix2pix(config, direction, path)
    if config.model != "cyclegan":
        direction = "AtoB"  # its one generator, G, whichever way it was trained
    if direction == "BtoA" and not sub_state(tensors, "F."):
        raise CheckpointError(f"{path}: holds the A -> B generator only; " + (
            official_cyclegan_note(metadata) or "B -> A needs a CycleGAN training checkpoint or an export made with "
                                                "--direction BtoA or both"))
    generator = build_generator(config)
    state = inference_weights(tensors, direction, weights)
    load_into(generator, {k: v.float() if v.is_floating_point() else v for k, v in state.items()},
              "generator", path)
    return generator.to(device), config, metadata


def direction_to_load(path: str | Path, direction: Optional[str] = None) -> str:
    """The generator to translate with. None: G (A -> B), or the one a CycleGAN export holds (an ONNX or
    safetensors export of F alone was read as the A -> B nobody asked for). A direction asked of an export that
    holds the other generator only is refused, both ways: `translate --direction AtoB` wrote B -> A pictures."""
    try:
        prefixes, header = checkpoint_outline(path)
        model = json.loads(header["config"]).get("model")
    except (CheckpointError, KeyError, ValueError, TypeError, AttributeError):
        return direction or "AtoB"  # load_generator names what is wrong with the file
    if model != "cyclegan":
        return direction or "AtoB"
    held = _held(prefixes)
    if direction is None:
        return "BtoA" if held == ["BtoA"] else "AtoB"
    if held == ["BtoA"] and direction == "AtoB":  # the other way round, load_generator refuses
        raise CheckpointError(f"{path}: holds the CycleGAN's B -> A generator only; " + (
            official_cyclegan_note(header) or "A -> B needs a CycleGAN training checkpoint or an export made with "
                                              "--direction AtoB or both"))
    return direction


def held_generators(path: str | Path) -> list[str]:
    """The directions whose generators a checkpoint or export holds (AtoB: G, BtoA: F), from its header and
    tensor names alone: what a fine-tune from it will load, said before the run starts."""
    prefixes, _ = checkpoint_outline(path)
    return _held(prefixes)


def _held(prefixes: set[str]) -> list[str]:
    """The directions whose generators tensor-name prefixes hold (AtoB: G, BtoA: F)."""
    return [direction for direction, prefix in (("AtoB", "G"), ("BtoA", "F")) if prefix in prefixes]


def fine_tune_plan(path: str | Path, model: str, shown: Optional[str] = None) -> str:
    """What a fine-tune (--init-from) of a `model` run from `path` loads and what starts fresh, in words: the
    command line and the app say it before the run starts (a CycleGAN export or an official import may hold one
    of the two generators). `shown` names the file (default: its name)."""
    shown = shown or Path(path).name
    if model != "cyclegan":
        return f"G from {shown}, D fresh"
    held = held_generators(path)
    parts = [f"{name} {'from ' + shown if direction in held else 'fresh'}"
             for direction, name in (("AtoB", "G (A -> B)"), ("BtoA", "F (B -> A)"))]
    return f"{', '.join(parts)}, D_A and D_B fresh"


def generator_states(path: str | Path) -> tuple[dict[str, dict[str, torch.Tensor]], TrainConfig]:
    """The generator weights a checkpoint or export holds, by direction (AtoB: G, BtoA: F; float32), with
    its config: what a CycleGAN fine-tune starts from. A training checkpoint and an export with `--direction
    both` hold both; an AtoB export G only, a BtoA export F only."""
    tensors, metadata = read_checkpoint(path)
    refuse_segmenter(metadata, path)
    config = config_of(metadata, path)
    forward, backward = sub_state(tensors, "G."), sub_state(tensors, "F.")
    states = {direction: {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
              for direction, state in (("AtoB", forward), ("BtoA", backward)) if state}
    if not states:
        raise CheckpointError(f"{path}: holds no generator weights")
    return states, config


# A training checkpoint's header: each tensor's name, dtype, shape and offsets (~100 bytes in JSON); and a few kB
# each for the config and the state (in the header), torch's RNG state and a colourizer's colour prior (tensors)
HEADER_BYTES_PER_TENSOR = 128
CHECKPOINT_EXTRA_BYTES = 16_000


def training_checkpoint_bytes(saved: Iterable[nn.Module], stepped: Iterable[nn.Module], other: int = 0) -> int:
    """The size of the training checkpoint `state_dict` + `flatten_optimizer` write once training has stepped:
    the weights and buffers of the `saved` networks, Adam's two moments and step of each parameter of the
    `stepped` ones (--no-gan builds no D: neither is counted), `other` bytes (CycleGAN's
    history pools) and the header. Works on networks built on the meta device (resources.py)."""
    tensors = [t for net in saved for t in net.state_dict().values()]
    moments = [p for net in stepped for p in net.parameters()]
    return (sum(t.numel() * t.element_size() for t in tensors)
            + sum(2 * p.numel() * p.element_size() + 4 for p in moments)  # exp_avg, exp_avg_sq, an fp32 step
            + HEADER_BYTES_PER_TENSOR * (len(tensors) + 3 * len(moments)) + other + CHECKPOINT_EXTRA_BYTES)


def flatten_optimizer(optimizer: torch.optim.Optimizer, prefix: str) -> tuple[dict[str, torch.Tensor], Any]:
    """Optimizer state -> flat tensors for safetensors + JSON-able param groups."""
    state = optimizer.state_dict()
    tensors = {}
    for index, values in state["state"].items():
        for key, value in values.items():
            tensors[f"{prefix}{index}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
    return tensors, state["param_groups"]


def unflatten_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], prefix: str,
                        param_groups: Any) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in sub_state(tensors, prefix).items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": param_groups})
    # Moments were saved contiguous; give them their parameter's layout again (channels_last). The
    # fused Adam kernel walks param, grad and moments as flat memory, so a layout mismatch silently
    # pairs each weight with another weight's moments.
    for param, values in optimizer.state.items():
        for name, value in values.items():
            if torch.is_tensor(value) and value.shape == param.shape and value.stride() != param.stride():
                values[name] = torch.empty_like(param, dtype=value.dtype).copy_(value)


def refuse_overwriting(source: str | Path, out: str | Path) -> None:
    """An export or import never replaces the file it reads: a run's latest checkpoint would lose D, the
    optimizers and its resume; a downloaded .pth would become a safetensors file under its old name."""
    if Path(out).resolve() == resolve_checkpoint(source).resolve():
        raise CheckpointError(f"{out} is the file being read; write to another file")


# the weight precisions export_generator and import_official write, by the command line's --dtype name
EXPORT_DTYPE_OF_NAME = {name: getattr(torch, dtype) for name, dtype in TORCH_DTYPE_OF_EXPORT_DTYPE.items()}
EXPORT_DTYPES = tuple(EXPORT_DTYPE_OF_NAME.values())


def check_export_dtype(dtype: torch.dtype) -> None:
    """Refuse a weight dtype other than EXPORT_DTYPES before any file is read: "fp16" failed as torch's
    "Invalid device string: 'fp16'" once the weights were converted, an integer dtype wrote truncated weights."""
    if dtype not in EXPORT_DTYPES:
        names = [str(known) for known in EXPORT_DTYPES]  # "torch.float16, torch.bfloat16 or torch.float32"
        listed = " or ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)
        raise Pix2PixError(f"dtype must be {listed}, got {repr(dtype)[:40]}")


def export_generator(checkpoint: str | Path, out: str | Path, dtype: torch.dtype = torch.float16,
                     extra: Optional[dict[str, str]] = None, direction: Optional[str] = None,
                     weights: str = "averaged") -> Path:
    """Write the generator alone (fp16 by default) with its config and training record, without the trainer's
    paths or optimizer settings (`shareable`): the file to ship. For a CycleGAN,
    `direction` BtoA ships its second generator F (saved as the file's only generator, G.), `both` ships G
    and F (G. and F.), which `load_generator` loads either way; None: G, or the one generator an export holds
    (as `translate` reads it). `weights` as in `inference_weights`; the file records which it holds
    (`generator_weights`) when the checkpoint kept a moving average. A model brought in by `import-official`
    keeps its `imported_from`: converting its dtype, or exporting one direction of a pair, loses no provenance."""
    check_export_dtype(dtype)
    refuse_overwriting(checkpoint, out)
    tensors, metadata = read_checkpoint(checkpoint)
    refuse_segmenter(metadata, checkpoint)  # its config was read as a generator's: "its config is unreadable"
    config = config_of(metadata, checkpoint)
    if config.model != "cyclegan" and direction != "both":
        refuse_direction_of_pix2pix(config, direction or "AtoB", checkpoint)
        direction = "AtoB"  # its one generator, G (a facades model's own BtoA included)
    if not sub_state(tensors, "G.") and sub_state(tensors, "F."):  # a B -> A export exported again: still B -> A
        if direction in ("both", "AtoB"):  # AtoB was exported as B -> A with a warning: as translate, refused
            note = official_cyclegan_note(metadata)
            raise CheckpointError(f"{checkpoint} holds the CycleGAN's B -> A generator only"
                                  + (", not both" if direction == "both" else
                                     "; leave --direction out (or give BtoA) to export it again")
                                  + (f"; {note}" if note else ""))
        direction = "BtoA"
    direction = direction or "AtoB"
    parts = {"G.": inference_weights(tensors, "AtoB" if direction == "both" else direction, weights)}
    if direction == "both":  # a CycleGAN's G and F in one file: it translates either way (load_generator)
        parts["F."] = inference_weights(tensors, "BtoA")
    shipped = {}
    for prefix, generator in parts.items():
        if not generator:
            missing = "B -> A generator" if prefix == "F." or direction == "BtoA" else "generator"
            note = official_cyclegan_note(metadata)  # one official CycleGAN file imported alone: where the other is
            raise CheckpointError(f"{checkpoint}: holds no {missing} weights" + (f"; {note}" if note else ""))
        load_into(build_generator(config), generator, "generator", checkpoint)  # never ship a file that cannot load
        shipped.update({f"{prefix}{k}": (v.to(dtype) if v.is_floating_point() else v) for k, v in generator.items()})
    # the source's record (a training checkpoint's state, an export's own), without the trainer's machine
    shared_config, trained = shareable(config.to_json(), training_record(metadata))
    meta = {"format": FORMAT, "kind": "generator", "config": shared_config, "trained": trained}
    if direction == "BtoA":
        meta["direction"] = "BtoA"  # the shipped G. is the CycleGAN's F
    if "imported_from" in metadata:  # an official import's provenance, as ONNX exports keep it; a pair's (its
        meta["imported_from"] = metadata["imported_from"]  # `reverse`) with the direction above says whose G. it is
    if sub_state(tensors, "E."):
        meta["generator_weights"] = weights  # the file alone no longer says whether G. was the average
    elif "generator_weights" in metadata and direction != "BtoA":
        meta["generator_weights"] = metadata["generator_weights"]  # an export exported again: still the same G.
    meta.update(extra or {})
    return atomic_save(shipped, meta, out)
