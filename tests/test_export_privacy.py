"""A model file made to be shared (an export in any format, the segmenter, the bundled models) carries what its
recipient needs (architecture, task, training length, provenance) and none of the trainer's machine: no
absolute paths of the data, the run folder, the cache or the model a fine-tune started from, and no optimizer
param groups. A training checkpoint keeps them all (--resume reads them)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import random_label_map, tiny_segmenter_config
from pix2pix_core.checkpoint import (atomic_save, config_of, export_generator, load_generator, read_checkpoint,
                                     read_header)
from pix2pix_core.cli import main
from pix2pix_core.inference import Translator

@pytest.fixture(scope="module")
def fine_tuned_run(tmp_path_factory, facades_dir, facades_checkpoint):
    """A run trained with an absolute --data, --out and --cache-dir, fine-tuned from another model (--init-from):
    its checkpoint and the absolute paths it was given."""
    root = tmp_path_factory.mktemp("alice_private")
    out, cache = root / "runs" / "tuned", root / "cache"
    assert main(["train", "--task", "facades", "--data", str(facades_dir), "--out", str(out), "--cache-dir",
                 str(cache), "--init-from", str(facades_checkpoint), "--netG", "unet_128", "--crop-size", "128",
                 "--load-size", "136", "--ngf", "8", "--ndf", "8", "--batch-size", "1", "--max-steps", "2",
                 "--sample-every", "0", "--save-every", "0", "--precision", "fp32", "--threads", "1"]) == 0
    paths = [str(facades_dir), str(out), str(cache), str(facades_checkpoint), str(facades_checkpoint.parent)]
    return out / "checkpoints" / "latest.safetensors", paths


def _private(header: dict[str, str], paths: list[str]) -> list[str]:
    """What in a header is the trainer's own: an absolute path it was given, or the optimizers' param groups."""
    text = json.dumps(header)
    return [path for path in paths if path in text] + (["optimizer groups"] if "_groups" in text else [])


def test_a_training_checkpoint_keeps_everything_for_resume(fine_tuned_run):
    checkpoint, paths = fine_tuned_run
    header = read_header(checkpoint)
    state = json.loads(header["state"])
    assert "optG_groups" in state and "optD_groups" in state and state["init_from"] == paths[3]
    assert {json.loads(header["config"])[key] for key in ("data", "out", "cache_dir")} == set(paths[:3])


def test_a_safetensors_export_carries_no_machine_paths_and_still_works(fine_tuned_run, facades_dir, tmp_path):
    checkpoint, paths = fine_tuned_run
    shipped = export_generator(checkpoint, tmp_path / "shipped.safetensors", dtype=torch.float32)
    header = read_header(shipped)
    assert _private(header, paths) == []
    trained = json.loads(header["trained"])
    assert trained["step"] == 2 and trained["init_from"] == "latest.safetensors"  # the name of the model it tuned
    assert set(trained) == {"epoch", "batch", "step", "world_size", "init_from"}
    config = json.loads(header["config"])
    assert config["data"] == facades_dir.name and "out" not in config and "cache_dir" not in config
    assert config_of(header, shipped).netG == "unet_128"  # TrainConfig reads it (defaults for what is left out)

    image = random_label_map(np.random.default_rng(3), 64)
    expected = Translator(*load_generator(checkpoint)[:2], "cpu", dropout=False).translate(image)
    translated = Translator.load(shipped, "cpu", dropout=False).translate(image)
    assert np.array_equal(np.asarray(translated), np.asarray(expected))  # the same weights, the same picture
    assert main(["test", "--checkpoint", str(shipped), "--data", str(facades_dir), "--out", str(tmp_path / "report"),
                 "--no-segmenter", "--limit", "1"]) == 0

    again = export_generator(shipped, tmp_path / "again.safetensors", dtype=torch.float32)
    assert {key: read_header(again)[key] for key in ("config", "trained")} == \
        {key: header[key] for key in ("config", "trained")}  # exported again: nothing more to take out


def test_onnx_and_torchscript_exports_carry_no_machine_paths(fine_tuned_run, facades_dir, tmp_path):
    from pix2pix_core.export_formats import export_model

    checkpoint, paths = fine_tuned_run
    files = {"pix2pix_metadata.json": ""}
    scripted = export_model(checkpoint, tmp_path / "g.pt", "torchscript")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.load(str(scripted), _extra_files=files)
    metadata = json.loads(files["pix2pix_metadata.json"])
    assert _private(metadata, paths) == [] and json.loads(metadata["pix2pix_config"])["data"] == facades_dir.name
    assert json.loads(metadata["trained"])["step"] == 2

    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from pix2pix_core.export_formats import read_onnx_metadata

    model = export_model(checkpoint, tmp_path / "g.onnx", "onnx")
    assert _private(read_onnx_metadata(model), paths) == []
    assert Translator.load(model).translate(random_label_map(np.random.default_rng(4), 64)).size == (64, 64)


def test_an_export_written_before_keeps_working_and_is_cleaned_when_exported_again(fine_tuned_run, tmp_path):
    """Exports made before this change hold the whole config and training state: they load, translate and
    export as before, and what is exported from them leaves the machine details out."""
    checkpoint, paths = fine_tuned_run
    tensors, header = read_checkpoint(export_generator(checkpoint, tmp_path / "new.safetensors"))
    training = read_header(checkpoint)
    old = atomic_save(tensors, {**header, "config": training["config"], "trained": training["state"]},
                      tmp_path / "old.safetensors")
    assert _private(read_header(old), paths) == paths + ["optimizer groups"]  # what exports used to carry
    _, config, _ = load_generator(old)
    assert config.data == paths[0] and config.out == paths[1]
    assert Translator.load(old).translate(random_label_map(np.random.default_rng(5), 64)).size == (64, 64)
    cleaned = read_header(export_generator(old, tmp_path / "cleaned.safetensors"))
    assert _private(cleaned, paths) == [] and cleaned["trained"] == header["trained"]
    assert cleaned["config"] == header["config"]


def test_shareable_reduces_paths_to_names_and_drops_optimizer_groups():
    from pix2pix_core.checkpoint import shareable

    config = json.dumps({"data": "C:\\Users\\alice\\data\\food\\", "out": "/home/alice/runs/x", "cache_dir": "/c",
                         "task": "colorize"})
    trained = json.dumps({"epoch": 3, "step": 9, "optG_groups": [{"lr": 1}], "init_from": "/home/alice/m.safetensors"})
    config_json, trained_json = shareable(config, trained)
    assert json.loads(config_json) == {"data": "food", "task": "colorize"}
    assert json.loads(trained_json) == {"epoch": 3, "step": 9, "init_from": "m.safetensors"}
    assert shareable(config_json, trained_json) == (config_json, trained_json)
    assert json.loads(shareable(json.dumps({"data": ""}), "not json")[1]) == {}  # an imported model: no data
    for private in ("/home/alice/food", "~/food", "../../alice/food", "data/../../food"):
        assert json.loads(shareable(json.dumps({"data": private}))[0])["data"] == "food", private
    # a folder inside the project (README's data/facades) tells nothing private and keeps test's warning
    # about scoring the very folder the model trained on
    assert json.loads(shareable(json.dumps({"data": "data/facades"}))[0])["data"] == "data/facades"
    assert json.loads(shareable("{}", json.dumps({"init_from": None}))[1]) == {"init_from": None}  # from scratch


def test_the_segmenter_file_carries_no_machine_paths(facades_dir, tmp_path):
    from pix2pix_core.segment import Segmenter, train_segmenter

    out = tmp_path / "home" / "alice" / "seg.safetensors"
    result = train_segmenter(tiny_segmenter_config(facades_dir, out, epochs=1), progress=False)
    header = read_header(result.path)
    assert _private(header, [str(facades_dir), str(tmp_path)]) == []
    assert json.loads(header["config"])["data"] == facades_dir.name and json.loads(header["trained"])["steps"] == 1
    photo = Image.new("RGB", (64, 64), (120, 80, 40))
    assert Segmenter.load(result.path, "cpu").predict_ids(photo).shape == (64, 64)



def test_the_bundled_models_carry_no_machine_paths_nor_optimizer_state():
    """The shipped files are shared files: their headers are what export writes (checkpoint.shareable), not the
    trainer's run folder ('/tmp/runs/msd2_fm'), its dataset path or its optimizers' param groups."""
    from safetensors import safe_open

    from pix2pix_core.bundled import bundled_checkpoints
    from pix2pix_core.checkpoint import shareable

    files = sorted(bundled_checkpoints().glob("*.safetensors"))
    assert len(files) == 3
    for file in files:
        with safe_open(str(file), "pt") as f:
            meta = f.metadata()
        record = meta.get("trained", "{}")
        assert (meta["config"], record) == shareable(meta["config"], record), file
        assert not any(private in json.dumps(meta) for private in ("/tmp/", "/work/", "_groups")), file
