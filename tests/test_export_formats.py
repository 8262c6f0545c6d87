"""`export --format onnx|torchscript` and the onnxruntime backend of Translator.

The exported files must give the PyTorch Translator's output (fp32, dropout off) on the same input, for
models whose batch norm uses each image's own statistics (trained at batch 1) and running statistics
(trained at batch 2). Measured max abs difference: about 1e-6; the tests allow MAX_ABS_DIFF.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import random_label_map, tiny_config
from pix2pix_core.checkpoint import load_generator, shareable
from pix2pix_core.cli import main
from pix2pix_core.errors import Pix2PixError
from pix2pix_core.export_formats import OPSET, OnnxGenerator, example_input, export_model
from pix2pix_core.inference import OnnxTranslator, Translator

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

MAX_ABS_DIFF = 1e-4  # fp32 export vs the fp32 PyTorch path, outputs in [-1, 1]; observed ~1e-6


@pytest.fixture(scope="session")
def running_stats_checkpoint(tmp_path_factory, facades_dir):
    """A tiny facades model trained at batch 2: the Translator normalises with its running statistics."""
    from pix2pix_core.train import Trainer

    out = tmp_path_factory.mktemp("facades_batch2")
    config = tiny_config(task="facades", data=str(facades_dir), out=str(out), direction="BtoA", epochs=1, batch_size=2)
    return Trainer(config).run().checkpoint


@pytest.fixture(params=["facades", "colorize", "running_stats"])
def checkpoint(request):
    name = {"facades": "facades_checkpoint", "colorize": "colorize_checkpoint",
            "running_stats": "running_stats_checkpoint"}[request.param]
    return request.getfixturevalue(name)


def _torch_translator(path) -> Translator:
    generator, config, _ = load_generator(path)
    assert config.precision == "fp32"
    return Translator(generator, config, "cpu", dropout=False)


def test_export_model_writes_the_format_its_file_name_says(checkpoint, tmp_path):
    """export_model(x, "g.pt") wrote ONNX into g.pt (the format defaulted to onnx whatever the name), which
    torch.jit.load then failed on; the command line read the suffix, the library did not."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load is marked deprecated
        for name in ("g.pt", "g.ts"):
            torch.jit.load(str(export_model(checkpoint, tmp_path / name)))
    assert OnnxGenerator(export_model(checkpoint, tmp_path / "g.onnx")) is not None
    with pytest.raises(Pix2PixError, match="names a torchscript file, but the format asked is 'onnx'"):
        export_model(checkpoint, tmp_path / "h.pt", "onnx")
    with pytest.raises(Pix2PixError, match="or name the file .onnx"):
        export_model(checkpoint, tmp_path / "g.bin")
    assert not (tmp_path / "h.pt").exists() and not (tmp_path / "g.bin").exists()


def test_onnx_and_torchscript_match_pytorch(checkpoint, tmp_path):
    translator = _torch_translator(checkpoint)
    onnx_path = export_model(checkpoint, tmp_path / "g.onnx", "onnx")
    ts_path = export_model(checkpoint, tmp_path / "g.pt", "torchscript")
    session = OnnxGenerator(onnx_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load is marked deprecated
        scripted = torch.jit.load(str(ts_path))

    one = example_input(translator.config, 1)
    expected = translator.run_network(one)
    assert (session(one) - expected).abs().max().item() < MAX_ABS_DIFF
    with torch.no_grad():
        assert (scripted(one) - expected).abs().max().item() < MAX_ABS_DIFF

    # dynamic batch: a batch of 2 gives what two one-image calls give (per-image statistics are per image)
    two = torch.cat([one, -one.flip(-1)])
    expected_two = torch.cat([translator.run_network(two[i:i + 1]) for i in range(2)])
    assert (session(two) - expected_two).abs().max().item() < MAX_ABS_DIFF
    assert torch.equal(translator.run_network(two), expected_two)  # the PyTorch path batched, too
    with torch.no_grad():
        assert (scripted(two) - expected_two).abs().max().item() < MAX_ABS_DIFF


def test_onnx_file_is_opset_17_with_dynamic_axes_and_config(facades_checkpoint, tmp_path):
    path = export_model(facades_checkpoint, tmp_path / "g.onnx", "onnx")
    model = onnx.load(str(path))
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= OPSET >= 17
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in dims] == ["batch", "", "height", "width"] and dims[1].dim_value == 3
    props = {p.key: p.value for p in model.metadata_props}
    _, config, _ = load_generator(facades_checkpoint)
    assert json.loads(props["pix2pix_config"]) == json.loads(shareable(config.to_json())[0])  # no trainer's paths
    assert props["batch_norm"] == "per-image statistics" and props["dropout"] == "off"
    assert props["format"] == "pix2pix-studio-onnx/1"
    assert not any(node.op_type in ("Dropout", "BatchNormalization") for node in model.graph.node)
    # a 2x larger input (a multiple of 128 for unet_128) runs too
    big = OnnxGenerator(path)(torch.zeros(1, 3, 256, 256))
    assert big.shape == (1, 3, 256, 256)


def test_running_statistics_export_keeps_eval_batch_norm(running_stats_checkpoint, tmp_path):
    model = onnx.load(str(export_model(running_stats_checkpoint, tmp_path / "g.onnx", "onnx")))
    props = {p.key: p.value for p in model.metadata_props}
    assert props["batch_norm"] == "running statistics"
    assert not any(node.op_type == "Dropout" for node in model.graph.node)


@pytest.mark.parametrize("task", ["facades", "colorize"])
def test_translator_onnx_backend_end_to_end(task, facades_checkpoint, colorize_checkpoint, tmp_path):
    checkpoint = facades_checkpoint if task == "facades" else colorize_checkpoint
    path = export_model(checkpoint, tmp_path / "g.onnx", "onnx")
    onnx_translator = Translator.load(path, backend="onnx")
    assert isinstance(onnx_translator, OnnxTranslator) and onnx_translator.task == task
    assert isinstance(Translator.load(path), OnnxTranslator)  # auto: by the .onnx suffix
    assert Translator.load(path, direction="BtoA").task == task  # its own direction (both were trained BtoA)
    rng = np.random.default_rng(5)
    image = random_label_map(rng, 100).resize((150, 100)) if task == "facades" else \
        Image.fromarray(rng.integers(0, 255, (90, 120, 3), dtype=np.uint8))
    ours = np.asarray(onnx_translator.translate(image), dtype=np.int16)
    reference = np.asarray(_torch_translator(checkpoint).translate(image), dtype=np.int16)
    assert ours.shape == reference.shape
    assert np.abs(ours - reference).max() <= 1  # uint8 rounding of outputs equal to ~1e-6


def test_cli_export_translate_and_test_with_onnx(facades_checkpoint, facades_dir, tmp_path, capsys):
    model = tmp_path / "facades.onnx"
    assert main(["export", "--checkpoint", str(facades_checkpoint), "--out", str(model), "--format", "onnx"]) == 0
    assert "onnx" in capsys.readouterr().out and model.is_file()
    inputs = tmp_path / "in"
    inputs.mkdir()
    random_label_map(np.random.default_rng(1), 64).save(inputs / "a.png")
    assert main(["translate", "--checkpoint", str(model), "--backend", "onnx", str(inputs),
                 "--out", str(tmp_path / "out")]) == 0
    written = np.asarray(Image.open(tmp_path / "out" / "a.png"), dtype=np.int16)
    reference = np.asarray(_torch_translator(facades_checkpoint).translate(inputs / "a.png"), dtype=np.int16)
    assert np.abs(written - reference).max() <= 1
    assert main(["test", "--checkpoint", str(model), "--data", str(facades_dir), "--out", str(tmp_path / "report"),
                 "--no-segmenter", "--limit", "2"]) == 0
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert metrics["backend"] == "onnx" and metrics["dropout"] is False and metrics["count"] == 2


def test_cli_torchscript_export_carries_the_config(colorize_checkpoint, tmp_path):
    path = tmp_path / "g.pt"
    assert main(["export", "--checkpoint", str(colorize_checkpoint), "--out", str(path), "--format", "torchscript"]) == 0
    files = {"pix2pix_metadata.json": ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        scripted = torch.jit.load(str(path), _extra_files=files)
    metadata = json.loads(files["pix2pix_metadata.json"])
    assert json.loads(metadata["pix2pix_config"])["task"] == "colorize"
    assert metadata["format"] == "pix2pix-studio-torchscript/1"  # it said pix2pix-studio-onnx/1
    with torch.no_grad():  # traced at 1 x 1 x 128 x 128; other batch sizes and multiples of 128 run too
        assert scripted(torch.zeros(3, 1, 256, 384)).shape == (3, 2, 256, 384)


def test_clear_errors(facades_checkpoint, tmp_path, capsys, monkeypatch):
    with pytest.raises(Pix2PixError, match="needs an exported .onnx file"):
        Translator.load(facades_checkpoint, backend="onnx")
    assert main(["export", "--checkpoint", str(facades_checkpoint), "--out", str(tmp_path / "g.onnx"),
                 "--format", "onnx", "--dtype", "fp16"]) == 2
    assert "fp32" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if the optional extra were not installed
    assert main(["export", "--checkpoint", str(facades_checkpoint), "--out", str(tmp_path / "g.onnx"),
                 "--format", "onnx"]) == 2
    assert "requirements-onnx.txt" in capsys.readouterr().err


def test_an_onnx_model_takes_device_cpu_or_auto_only(facades_checkpoint, tmp_path, monkeypatch):
    """Translator.load("x.onnx", device=...) took any device, even 'gpu', and ran on the CPU all the same: the
    device is checked as for torch (pick_device), before the file is read, and one other than the CPU refused."""
    missing = tmp_path / "missing.onnx"
    with pytest.raises(Pix2PixError, match=r"^unknown device 'gpu': use auto, cpu, cuda"):
        Translator.load(missing, device="gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a machine with a GPU, as far as the check sees
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(Pix2PixError, match=r"^device cuda: .*missing.onnx is an ONNX model, which runs on the CPU "
                                           r"only .*; use device cpu or auto, or its .safetensors checkpoint$"):
        Translator.load(missing, device="cuda")
    with pytest.raises(Pix2PixError, match="device cuda:0: .* runs on the CPU only"):
        OnnxTranslator.load_onnx(missing, device="cuda:0")
    path = export_model(facades_checkpoint, tmp_path / "g.onnx", "onnx")
    assert {Translator.load(path, device=device).device.type for device in ("cpu", "auto")} == {"cpu"}


def test_the_readme_names_every_metadata_key_an_onnx_export_writes(facades_checkpoint, tmp_path):
    """The README's list of the ONNX metadata_props lacked `trained`, which every export writes."""
    from pix2pix_core.export_formats import config_metadata

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Take a model elsewhere: ONNX and TorchScript")[1].split("\n### ")[0]
    written = OnnxGenerator(export_model(facades_checkpoint, tmp_path / "g.onnx", "onnx")).metadata
    imported = config_metadata(load_generator(facades_checkpoint)[1], {"imported_from": "latest_net_G.pth"})
    assert "trained" in written
    assert [key for key in {*written, *imported} if f"`{key}`" not in section] == []

def test_an_imported_official_model_exports_with_per_image_statistics(tmp_path):
    """The official repo's ONNX complaint (#1276): its models need per-image batch norm; ours exports that."""
    from official_files import NGF, official_state, our_generator

    pth = tmp_path / "latest_net_G.pth"
    torch.save(official_state(our_generator()), pth)  # random weights, non-trivial running statistics
    imported = tmp_path / "facades_official.safetensors"
    assert main(["import-official", str(pth), "--netG", "unet_256", "--task", "facades", "--ngf", str(NGF),
                 "--out", str(imported), "--dtype", "fp32"]) == 0
    session = OnnxGenerator(export_model(imported, tmp_path / "official.onnx", "onnx"))
    assert session.metadata["batch_norm"] == "per-image statistics"
    generator, config, _ = load_generator(imported)
    translator = Translator(generator, dataclasses.replace(config, precision="fp32"), "cpu", dropout=False)
    x = example_input(config, 1)
    assert (session(x) - translator.run_network(x)).abs().max().item() < MAX_ABS_DIFF
