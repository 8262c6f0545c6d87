"""Loading a checkpoint someone downloaded must never run code and must say clearly what is wrong.

Each bad file is built here from the tiny fixture checkpoint and goes through every loader a user
reaches: `load_generator`, `Translator.load`, the CLI (`translate`, `export`) and `--resume`.
"""

from __future__ import annotations

import ast
import json
import pickle
import struct
from pathlib import Path
from typing import Callable

import pytest
import torch
from safetensors.torch import load_file, save_file

from pix2pix_core.checkpoint import load_generator, read_checkpoint, read_header
from pix2pix_core.cli import main
from pix2pix_core.errors import CheckpointError, Pix2PixError
from pix2pix_core.inference import Translator
from pix2pix_core.train import Trainer

from conftest import tiny_config

REPO = Path(__file__).resolve().parents[1]


def _with_metadata(source: Path, target: Path, change: Callable[[dict], dict], tensors=None) -> None:
    """Rewrite a real checkpoint with edited header metadata (and optionally other tensors)."""
    _, metadata = read_checkpoint(source)
    save_file(tensors if tensors is not None else load_file(str(source)), str(target), metadata=change(dict(metadata)))


def _with_config(source: Path, target: Path, **changes) -> None:
    def edit(metadata: dict) -> dict:
        config = json.loads(metadata["config"])
        config.update(changes)
        return {**metadata, "config": json.dumps(config)}
    _with_metadata(source, target, edit)


def _truncated(fraction: float) -> Callable[[Path, Path], None]:
    def make(source: Path, target: Path) -> None:
        data = source.read_bytes()
        target.write_bytes(data[:int(len(data) * fraction)])
    return make


def _pth_zip(source: Path, target: Path) -> None:
    torch.save(load_file(str(source)), target)  # the usual PyTorch .pth: a zip holding a pickle


def _pth_legacy(source: Path, target: Path) -> None:
    torch.save(load_file(str(source)), target, _use_new_zipfile_serialization=False)


def _torchscript(source: Path, target: Path) -> None:
    from pix2pix_core.export_formats import export_model

    export_model(source, target, "torchscript")


def _raw_header(header: dict) -> bytes:
    """The first bytes of a safetensors file with this JSON header (length-prefixed)."""
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text


class _Exploit:
    """What a malicious pickle does: call a function while being loaded."""

    def __reduce__(self):
        return (print, ("this code ran while loading a checkpoint",))


BAD_FILES: dict[str, tuple[str, Callable[[Path, Path], None], str]] = {
    # id: (file name, builder(good_checkpoint, target), fragment the message must contain)
    "pth_zip_pickle": ("model.pth", _pth_zip, "pickle"),
    "pth_legacy_pickle": ("model.pth", _pth_legacy, "pickle"),
    "raw_pickle_exploit": ("model.ckpt", lambda s, t: t.write_bytes(pickle.dumps(_Exploit(), protocol=4)), "pickle"),
    "torchscript_export": ("model.pt", lambda s, t: _torchscript(s, t), "TorchScript export"),
    "pickle_protocol_0": ("model.pkl", lambda s, t: t.write_bytes(pickle.dumps({"G.w": [1.0]}, protocol=0)),
                          "not a safetensors file"),
    "truncated_half": ("latest.safetensors", _truncated(0.5), "truncated"),
    "truncated_in_header": ("latest.safetensors", _truncated(0.002), "truncated"),
    "empty_file": ("latest.safetensors", lambda s, t: t.write_bytes(b""), "empty file"),
    "text_file": ("latest.safetensors", lambda s, t: t.write_text("not a checkpoint at all\n" * 10),
                  "not a safetensors file"),
    "huge_header_length": ("latest.safetensors", lambda s, t: t.write_bytes(struct.pack("<Q", 2**60) + b"{}"),
                           "not a safetensors file"),
    "corrupt_header": ("latest.safetensors", lambda s, t: t.write_bytes(struct.pack("<Q", 10) + b"{not json}"),
                       "corrupt safetensors header"),
    "no_config": ("plain.safetensors", lambda s, t: save_file(load_file(str(s)), str(t)), "without a pix2pix config"),
    "config_not_json": ("bad.safetensors", lambda s, t: _with_metadata(s, t, lambda m: {**m, "config": "{oops"}),
                        "config is unreadable"),
    "config_is_a_list": ("bad.safetensors", lambda s, t: _with_metadata(s, t, lambda m: {**m, "config": "[1, 2]"}),
                         "config is unreadable"),
    "config_unknown_network": ("bad.safetensors", lambda s, t: _with_config(s, t, netG="evil_net"),
                               "config is unreadable"),
    "config_wrong_type": ("bad.safetensors", lambda s, t: _with_config(s, t, ngf="eight"), "config is unreadable"),
    "config_crafted_list": ("bad.safetensors", lambda s, t: _with_config(s, t, diff_augment=["x"]),
                            "config is unreadable"),  # was an AttributeError traceback
    "offsets_not_numbers": ("latest.safetensors", lambda s, t: t.write_bytes(_raw_header(
        {"G.w": {"dtype": "F32", "shape": [1], "data_offsets": [0, "x"]}}) + b"\0" * 4),
        "corrupt safetensors header"),  # was a TypeError traceback
    "wrong_shapes": ("wide.safetensors", lambda s, t: _with_config(s, t, ngf=16), "do not match its config"),
    "wrong_architecture": ("resnet.safetensors", lambda s, t: _with_config(s, t, netG="resnet_6blocks"),
                           "do not match its config"),
    "no_generator_weights": ("d_only.safetensors", lambda s, t: _with_metadata(
        s, t, lambda m: m, {k: v for k, v in load_file(str(s)).items() if not k.startswith("G.")}),
        "holds no generator weights"),
    "folder_without_checkpoint": ("some_folder", lambda s, t: t.mkdir(), "folder without"),
    "missing_path": ("nothing_here.safetensors", lambda s, t: None, "not found"),
}


@pytest.fixture
def bad_file(request, facades_checkpoint, tmp_path) -> tuple[Path, str]:
    name, build, fragment = BAD_FILES[request.param]
    target = tmp_path / name
    build(Path(facades_checkpoint), target)
    return target, fragment


def _clear(error: CheckpointError, fragment: str, path: Path) -> None:
    message = str(error)
    assert fragment in message, message
    assert path.name in message, message  # says which file
    assert "\n" not in message and len(message) < 500, message


@pytest.mark.parametrize("bad_file", BAD_FILES, indirect=True)
def test_load_generator_refuses(bad_file, capsys) -> None:
    path, fragment = bad_file
    with pytest.raises(CheckpointError) as caught:
        load_generator(path)
    _clear(caught.value, fragment, path)
    assert "this code ran" not in capsys.readouterr().out  # the exploit's payload never executed


@pytest.mark.parametrize("bad_file", BAD_FILES, indirect=True)
def test_translator_load_refuses(bad_file) -> None:
    path, fragment = bad_file
    with pytest.raises(CheckpointError) as caught:
        Translator.load(path, device="cpu")
    _clear(caught.value, fragment, path)


@pytest.mark.parametrize("command", ["translate", "export"])
@pytest.mark.parametrize("bad_file", ["pth_zip_pickle", "truncated_half", "wrong_shapes", "empty_file"],
                         indirect=True)
def test_cli_prints_one_line(bad_file, command, tmp_path, capsys) -> None:
    path, fragment = bad_file
    image = tmp_path / "x.png"
    image.write_bytes(b"")  # never reached: the checkpoint is checked first
    args = {"translate": ["translate", "--checkpoint", str(path), str(image), "--out", str(tmp_path / "o")],
            "export": ["export", "--checkpoint", str(path), "--out", str(tmp_path / "g.safetensors")]}[command]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and fragment in err[0], err


@pytest.mark.parametrize("bad_file", ["pth_zip_pickle", "truncated_half", "wrong_shapes"], indirect=True)
def test_resume_and_init_from_refuse(bad_file, facades_dir, tmp_path) -> None:
    """A run folder whose latest checkpoint was replaced, and `--init-from` with a bad file."""
    path, fragment = bad_file
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "latest.safetensors").write_bytes(path.read_bytes())
    config = tiny_config(data=str(facades_dir), out=str(run), max_steps=1)
    if fragment != "do not match its config":
        with pytest.raises(CheckpointError, match=fragment):
            Trainer(config, resume=True).run()
    else:  # its config says ngf 16: resume refuses the architecture change before reading any weights
        with pytest.raises(Pix2PixError, match=r"the checkpoint has ngf 16 \(given: 8\)"):
            Trainer(config, resume=True).run()
    shape = fragment == "do not match its config"  # a fine-tune too is refused by its config, weights unread
    with pytest.raises(Pix2PixError if shape else CheckpointError,
                       match=r"its generator has ngf 16 \(this run: 8\)" if shape else fragment):
        Trainer(tiny_config(data=str(facades_dir), out=str(tmp_path / "fresh"), max_steps=1),
                init_generator=path).run()


def test_good_checkpoint_and_run_folder_load(facades_checkpoint) -> None:
    """The control: the untouched file and its run folder both load."""
    generator, config, _ = load_generator(facades_checkpoint)
    assert config.ngf == 8 and sum(p.numel() for p in generator.parameters()) > 0
    load_generator(Path(facades_checkpoint).parent.parent)


@pytest.mark.parametrize("device, words", [("gpu", "unknown device 'gpu': use auto, cpu, cuda, cuda:N or mps"),
                                           ("cuda:99", "device cuda:99: ")])
def test_load_generator_checks_its_device_as_translator_load_does(facades_checkpoint, tmp_path, device, words):
    """load_generator(path, device) read the whole file, then gave `device` to torch as it was: "Expected one of
    cpu, cuda, ipu, xpu, ..." for a word torch does not know, "Found no NVIDIA driver" for a GPU the machine lacks."""
    with pytest.raises(Pix2PixError, match=words):
        load_generator(facades_checkpoint, device)
    with pytest.raises(Pix2PixError, match=words):  # before the file is read
        load_generator(tmp_path / "absent.safetensors", device)
    generator, _, _ = load_generator(facades_checkpoint, torch.device("cpu"))
    assert {p.device.type for p in generator.parameters()} == {"cpu"}


# ------------------------------------------------------------------------------------ no unpickling
def _first_party_sources() -> list[Path]:
    """Every Python file we ship: the package, the app, demos and benchmarks (not tests, not .venv)."""
    skip = {".venv", ".git", "tests", "__pycache__", "runs", ".pytest_cache"}
    return [p for p in REPO.rglob("*.py") if not skip.intersection(p.relative_to(REPO).parts)]


def _unsafe_loads(path: Path) -> list[str]:
    """`torch.load` without `weights_only=True`, and any pickle/dill/joblib load, found in the syntax tree
    (so a multi-line call or an alias such as `loader = torch.load` is seen too)."""
    label = str(path.relative_to(REPO)) if path.is_relative_to(REPO) else path.name
    tree = ast.parse(path.read_text(), filename=str(path))
    safe_calls = set()
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load":
            safe = any(k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
                       for k in node.keywords)
            if safe:
                safe_calls.add(id(node.func))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            owner, attr = node.value.id, node.attr
            if owner == "torch" and attr == "load" and id(node) not in safe_calls:
                problems.append(f"{label}:{node.lineno}: torch.load without weights_only=True")
            if owner in ("pickle", "dill", "joblib", "cloudpickle") and attr in ("load", "loads", "Unpickler"):
                problems.append(f"{label}:{node.lineno}: {owner}.{attr}")
        if isinstance(node, ast.ImportFrom) and node.module in ("torch", "pickle", "dill", "joblib"):
            names = {a.name for a in node.names}
            if names & {"load", "loads", "Unpickler"}:
                problems.append(f"{label}:{node.lineno}: from {node.module} import load")
    return problems


def test_nothing_is_ever_unpickled() -> None:
    sources = _first_party_sources()
    assert any(p.parent.name == "pix2pix_core" for p in sources)
    problems = [line for path in sources for line in _unsafe_loads(path)]
    assert not problems, "\n".join(problems)


def test_the_scanner_catches_unsafe_loads(tmp_path) -> None:
    """The scanner itself must fail on the patterns it exists to find."""
    sample = tmp_path / "sample.py"
    unsafe = "torch" + ".load"  # spelled in two pieces so repository-wide greps don't flag this test
    sample.write_text("import torch, pickle\n"
                      f"a = {unsafe}('x.pth')\n"
                      f"b = {unsafe}('x.pth',\n    weights_only=False)\n"
                      f"c = {unsafe}('x.pth', weights_only=True)\n"
                      f"loader = {unsafe}\n"
                      "d = pickle.loads(b'')\n")
    found = _unsafe_loads(sample)
    assert sorted(int(line.split(":")[1]) for line in found) == [2, 3, 6, 7], found


def test_read_header_reads_the_config_and_refuses_garbage(facades_checkpoint, tmp_path) -> None:
    header = read_header(facades_checkpoint)
    assert header["kind"] == "training" and json.loads(header["config"])["task"] == "facades"
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json")
    with pytest.raises(CheckpointError) as caught:
        read_header(garbage)
    _clear(caught.value, "not a readable safetensors file", garbage)


def test_kept_checkpoint_before_skips_files_it_cannot_read(facades_checkpoint, tmp_path) -> None:
    from pix2pix_core.run_folder import RunFolder

    folder = RunFolder(tmp_path / "run")
    folder.checkpoint_dir.mkdir(parents=True)
    step = json.loads(read_header(facades_checkpoint)["state"])["step"]
    good = folder.checkpoint_dir / "epoch_0001.safetensors"
    good.write_bytes(Path(facades_checkpoint).read_bytes())
    (folder.checkpoint_dir / "epoch_0002.safetensors").write_bytes(b"truncated")
    assert folder.kept_checkpoint_before(step) == (good, step)
    assert folder.kept_checkpoint_before(step - 1) is None


def test_a_full_disk_while_saving_is_a_checkpoint_error(facades_checkpoint, tmp_path, monkeypatch) -> None:
    """safetensors reports a full disk as its own SafetensorError, which atomic_save let through as a traceback."""
    from safetensors import SafetensorError

    from pix2pix_core import checkpoint

    def disk_full(tensors, path, metadata=None):
        raise SafetensorError("Error while serializing: IoError(Os { code: 28, kind: StorageFull })")

    monkeypatch.setattr(checkpoint, "save_file", disk_full)
    with pytest.raises(CheckpointError, match="could not write .*out.safetensors"):
        checkpoint.export_generator(facades_checkpoint, tmp_path / "out.safetensors")
    assert list(tmp_path.iterdir()) == []  # no temp file, no half file


def test_export_and_import_never_replace_the_file_they_read(facades_checkpoint, tmp_path, capsys) -> None:
    import shutil

    run = tmp_path / "run"
    latest = run / "checkpoints" / "latest.safetensors"
    latest.parent.mkdir(parents=True)
    shutil.copy(facades_checkpoint, latest)
    before = latest.read_bytes()
    named_pt = tmp_path / "model.pt"  # a safetensors checkpoint under a TorchScript name: the export's own name
    shutil.copy(facades_checkpoint, named_pt)
    for argv in (["export", "--checkpoint", run, "--out", latest],
                 ["export", "--checkpoint", named_pt, "--out", named_pt, "--format", "torchscript"],
                 ["import-official", latest, "--netG", "unet_128", "--task", "facades", "--out", latest]):
        assert main([str(a) for a in argv]) == 2
        assert "is the file being read" in capsys.readouterr().err
    assert latest.read_bytes() == before and named_pt.read_bytes() == before


def test_an_onnx_file_is_named_as_such_by_every_reader(tmp_path) -> None:
    """`--init-from g.onnx` said "not a readable safetensors file (header too large)" for a CycleGAN (its
    generators are listed from the header first) and "not a safetensors file" for pix2pix."""
    from pix2pix_core.checkpoint import checkpoint_outline, held_generators

    path = tmp_path / "g.onnx"
    path.write_bytes(b"\x08\x08\x12\x07pytorch" + bytes(200))  # how a torch ONNX export begins (protobuf)
    for read in (read_checkpoint, checkpoint_outline, held_generators):
        with pytest.raises(CheckpointError, match="an ONNX export runs translate and test"):
            read(path)
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        held_generators(tmp_path / "ghost.safetensors")


def test_a_checkpoint_replaced_while_it_is_read_gives_one_files_header_and_tensors(facades_checkpoint, tmp_path,
                                                                                   monkeypatch) -> None:
    """Training replaces latest.safetensors atomically while `translate` or the app may be reading it: the header
    came from one open and the tensors from a second, so they could come from two different files."""
    import os

    import pix2pix_core.checkpoint as checkpoint

    path, newer = tmp_path / "latest.safetensors", tmp_path / "newer.safetensors"
    tensors = load_file(str(facades_checkpoint))
    _with_metadata(facades_checkpoint, path, lambda metadata: {**metadata, "step": "1"})
    _with_metadata(facades_checkpoint, newer, lambda metadata: {**metadata, "step": "2"},
                   tensors={key: value + 1 if value.is_floating_point() else value for key, value in tensors.items()})
    real_open = checkpoint.safe_open

    class ReplacedAfterItsHeader:
        """safe_open, with the file replaced by the newer save once its header has been read."""
        def __init__(self, *args, **kwargs):
            self.handle = real_open(*args, **kwargs)

        def __enter__(self):
            self.inner = self.handle.__enter__()
            return self

        def __exit__(self, *exc):
            return self.handle.__exit__(*exc)

        def metadata(self):
            metadata = self.inner.metadata()
            if newer.exists():
                os.replace(newer, path)
            return metadata

        def __getattr__(self, name):
            return getattr(self.inner, name)

    monkeypatch.setattr(checkpoint, "safe_open", ReplacedAfterItsHeader)
    read, metadata = read_checkpoint(path)
    assert metadata["step"] == "1"
    assert all(torch.equal(read[key], tensors[key]) for key in tensors)  # the same file's tensors
