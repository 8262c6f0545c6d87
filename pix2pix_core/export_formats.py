"""Export a generator to ONNX or TorchScript, and run an exported ONNX file with onnxruntime.

The exported network is the generator in *inference form*, fixed at export time:

* Dropout is off (removed). The paper samples with dropout on, but an exported model should give the
  same picture for the same input; `translate --no-dropout` gives that picture with PyTorch.
* Batch norm is frozen in the mode the Translator uses for the model (`inference.Translator`):
  a model trained with running statistics (batch size > 1) gets eval-mode batch norm, which ONNX and
  TorchScript handle natively. A model trained at batch size 1 (the paper) normalises every image with its
  own statistics; those layers are replaced by `PerImageBatchNorm`, which computes the mean and variance
  of each image over its H x W (plain ReduceMean/Sub/Mul/Sqrt in ONNX). At batch 1 that is exactly
  PyTorch's train-mode batch norm; at batch N it equals N separate one-image calls, so the dynamic batch
  axis does not mix images. (Exporting the train-mode layer itself is the trap behind the official repo's
  "wrong ONNX output" reports: the exporter falls back to the running statistics, or to a
  BatchNormalization with training_mode=1 that inference runtimes do not implement.)

The ONNX file carries the training config (JSON, without the trainer's paths: `checkpoint.shareable`) in its
metadata_props under `pix2pix_config`, so `Translator.load(path, backend="onnx")` needs no flags. onnx and
onnxruntime are an optional extra (`pip install -r requirements-onnx.txt`); they are imported only when used.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn

from .atomic_files import output_problem
from .checkpoint import direction_to_load, load_generator, refuse_overwriting, shareable, training_record
from .config import TrainConfig, min_downsamplings
from .errors import CheckpointError, Pix2PixError

FORMATS = ("safetensors", "onnx", "torchscript")
OPSET = 17
# what an exported file's metadata says it is ("format"); nothing reads it back, so a TorchScript file of an earlier
# version, tagged as ONNX, loads as before
METADATA_FORMATS = {"onnx": "pix2pix-studio-onnx/1", "torchscript": "pix2pix-studio-torchscript/1"}
INPUT_NAME, OUTPUT_NAME = "input", "output"


class PerImageBatchNorm(nn.Module):
    """Train-mode batch norm of a batch of one image, applied to each image of the batch separately."""

    def __init__(self, bn: nn.modules.batchnorm._BatchNorm):
        super().__init__()
        self.eps = float(bn.eps)
        channels = bn.num_features
        weight = bn.weight.detach().clone() if bn.weight is not None else torch.ones(channels)
        bias = bn.bias.detach().clone() if bn.bias is not None else torch.zeros(channels)
        self.register_buffer("weight", weight.float().reshape(1, -1, 1, 1))
        self.register_buffer("bias", bias.float().reshape(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(2, 3), keepdim=True)
        centred = x - mean
        variance = (centred * centred).mean(dim=(2, 3), keepdim=True)  # biased, as batch norm normalises
        return centred * torch.rsqrt(variance + self.eps) * self.weight + self.bias


def _replace_batch_norms(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(module, name, PerImageBatchNorm(child))
        else:
            _replace_batch_norms(child)


def _remove_dropout(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.Dropout):
            setattr(module, name, nn.Identity())
        else:
            _remove_dropout(child)


def inference_network(generator: nn.Module, config: TrainConfig) -> nn.Module:
    """An fp32 eval-mode copy of `generator` with dropout removed and batch norm in the Translator's mode."""
    import copy

    net = copy.deepcopy(generator).float().cpu().eval()
    _remove_dropout(net)
    if config.per_image_statistics:
        _replace_batch_norms(net)
    net.requires_grad_(False)
    return net.eval()


def example_input(config: TrainConfig, batch: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.rand(batch, config.input_nc, config.crop_size, config.crop_size, generator=generator) * 2 - 1


def config_metadata(config: TrainConfig, metadata: Optional[dict] = None, fmt: str = "onnx") -> dict[str, str]:
    """What an exported file of format `fmt` (onnx, torchscript) says about itself: its format tag, the config and
    training record (as `checkpoint.shareable` leaves them), how it was frozen, and for a generator brought in by
    `import-official` where it came from (`imported_from`, as its safetensors header says)."""
    shared_config, trained = shareable(config.to_json(), training_record(metadata or {}))
    meta = {
        "format": METADATA_FORMATS[fmt],
        "pix2pix_config": shared_config,
        "batch_norm": ("none (instance norm: each image's own statistics)" if config.norm != "batch"
                       else "per-image statistics" if config.per_image_statistics else "running statistics"),
        "dropout": "off",
        "size_multiple": str(2 ** min_downsamplings(config.netG)),
        "trained": trained,
    }
    if (metadata or {}).get("imported_from"):
        meta["imported_from"] = metadata["imported_from"]
    return meta


def _require_onnx():
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        raise Pix2PixError(f"ONNX support needs the optional packages onnx and onnxruntime ({exc.name} is not "
                           "installed): pip install -r requirements-onnx.txt") from None
    return onnx, onnxruntime


# the file suffixes of the formats export_model writes (the command line's FORMAT_OF_SUFFIX adds .safetensors)
SUFFIX_FORMATS = {".onnx": "onnx", ".pt": "torchscript", ".ts": "torchscript"}


def export_model(checkpoint: str | Path, out: str | Path, fmt: Optional[str] = None, direction: Optional[str] = None,
                 weights: str = "averaged") -> Path:
    """Write the generator of `checkpoint` as an ONNX (opset 17, dynamic batch/H/W) or TorchScript file
    (`weights` as in `checkpoint.inference_weights`; `direction` as in `checkpoint.direction_to_load`). `fmt`
    None: the one `out`'s suffix names (.onnx; .pt or .ts), as the command line does."""
    named = SUFFIX_FORMATS.get(Path(out).suffix.lower())
    if fmt is not None and named is not None and fmt != named:  # export_model(x, "g.pt") wrote ONNX into g.pt
        raise Pix2PixError(f"{Path(out).name} names a {named} file, but the format asked is {fmt!r}: give the file "
                           "the suffix of its format")
    fmt = fmt or named
    if fmt not in ("onnx", "torchscript"):
        raise Pix2PixError(f"export format must be onnx or torchscript here, got {fmt!r} (or name the file .onnx, "
                           ".pt or .ts)")
    refuse_overwriting(checkpoint, out)
    direction = direction_to_load(checkpoint, direction)
    generator, config, metadata = load_generator(checkpoint, "cpu", direction, weights)
    net = inference_network(generator, config)
    out = Path(out)
    meta = config_metadata(config, metadata, fmt)
    if config.model == "cyclegan":  # one of its two generators: say which (a BtoA export holds F whatever was asked)
        meta["generator"] = "BtoA" if "BtoA" in (direction, metadata.get("direction")) else "AtoB"
    sample = example_input(config)
    problem = output_problem(out, folder=False, suffix=out.suffix)
    if problem:
        raise CheckpointError(f"cannot write {out}: {problem}")
    tmp = out.with_name(f".{out.name}.partial")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "torchscript":
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # torch marks TorchScript deprecated; it still works
                # instance norm's input checks (a CycleGAN's), read as constants: right for a network without
                # data-dependent branches, but each said "might cause the trace to be incorrect" to every user
                warnings.simplefilter("ignore", torch.jit.TracerWarning)
                traced = torch.jit.freeze(torch.jit.trace(net, sample, check_trace=False).eval())
                torch.jit.save(traced, str(tmp), _extra_files={"pix2pix_metadata.json": json.dumps(meta)})
        else:
            _export_onnx(net, sample, tmp, meta)
        tmp.replace(out)
    except OSError as exc:  # a full disk, a folder in the way: one line, and no half file under the name
        raise CheckpointError(f"could not write {out} ({exc.strerror or exc})") from None
    finally:
        tmp.unlink(missing_ok=True)
    return out


def _export_onnx(net: nn.Module, sample: torch.Tensor, path: Path, meta: dict[str, str]) -> None:
    onnx, _ = _require_onnx()
    axes = {0: "batch", 2: "height", 3: "width"}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter's deprecation notice
        # dynamo=False: the TorchScript-based exporter needs no onnxscript and handles this plain CNN fully
        torch.onnx.export(net, (sample,), str(path), dynamo=False, opset_version=OPSET,
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: axes}, do_constant_folding=True)
    model = onnx.load(str(path))
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.producer_name = "pix2pix-studio"
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def read_onnx_metadata(path: str | Path) -> dict[str, str]:
    """The metadata_props of an exported ONNX file (raises CheckpointError if it is not one of ours)."""
    _, ort = _require_onnx()
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"ONNX model not found: {path}")
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise CheckpointError(f"{path}: not a loadable ONNX model ({str(exc).splitlines()[0][:200]})") from None
    return dict(session.get_modelmeta().custom_metadata_map)


class OnnxGenerator:
    """An onnxruntime session with the generator's call signature: (N, C, H, W) float tensor -> tensor."""

    def __init__(self, path: str | Path, threads: Optional[int] = None):
        _, ort = _require_onnx()
        self.path = Path(path)
        if not self.path.is_file():
            raise CheckpointError(f"ONNX model not found: {self.path}")
        options = ort.SessionOptions()
        if threads or torch.get_num_threads():
            options.intra_op_num_threads = threads or torch.get_num_threads()
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise CheckpointError(f"{self.path}: not a loadable ONNX model "
                                  f"({str(exc).splitlines()[0][:200]})") from None
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        if "pix2pix_config" not in self.metadata:
            raise CheckpointError(f"{self.path}: ONNX file without a pix2pix config in its metadata; export it with "
                                  "`python -m pix2pix_core export --format onnx`")
        try:
            self.config = TrainConfig.from_json(self.metadata["pix2pix_config"]).validate()
        except (ValueError, TypeError, Pix2PixError) as exc:
            raise CheckpointError(f"{self.path}: its config is unreadable ({exc})") from None
        self.input_name = self.session.get_inputs()[0].name

    def run(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)})[0]

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.run(batch.detach().float().cpu().numpy()))
