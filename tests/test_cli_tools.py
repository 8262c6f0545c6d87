"""CLI end to end on tiny data: translate, test, train-segmenter, --help, and one-line errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pix2pix_core.cli import command_parsers, main


def write_odd_images(folder):
    """Images of odd sizes and modes, one corrupt file, and a non-image file that must be ignored."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (30, 50, 4), dtype=np.uint8), "RGBA").save(folder / "rgba.png")
    Image.fromarray(rng.integers(0, 255, (91, 17), dtype=np.uint8), "L").save(folder / "gray.jpg")
    Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8), "RGB").convert("P").save(folder / "palette.gif")
    Image.fromarray(rng.integers(0, 65535, (20, 33), dtype=np.uint16)).save(folder / "deep16.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png")
    (folder / "notes.txt").write_text("not an image")
    return {"rgba.png": (50, 30), "gray.jpg": (17, 91), "palette.gif": (40, 40), "deep16.png": (33, 20)}


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def error_lines(err):
    return [line for line in err.splitlines() if line.startswith("error:")]


# ---------------------------------------------------------------------------------------------- translate
@pytest.mark.parametrize("checkpoint", ["facades_checkpoint", "colorize_checkpoint"])
def test_translate_folder_of_odd_images(request, checkpoint, tmp_path, capsys):
    sizes = write_odd_images(tmp_path / "in")
    code, out, err = run(capsys, "translate", "--checkpoint", request.getfixturevalue(checkpoint),
                         tmp_path / "in", "--out", tmp_path / "out")
    assert code == 1  # broken.png failed, the others were still translated
    assert len(error_lines(err)) == 1 and "broken.png" in error_lines(err)[0]
    for name, size in sizes.items():
        with Image.open(tmp_path / "out" / f"{name.rsplit('.', 1)[0]}.png") as result:
            assert result.size == size and result.mode == "RGB"
    assert "wrote 4 image(s)" in out and "1 failed" in out


def test_translate_files_from_two_folders_with_the_same_name(facades_checkpoint, facades_dir, tmp_path, capsys):
    code, out, err = run(capsys, "translate", "--checkpoint", facades_checkpoint, facades_dir / "train" / "1.jpg",
                         facades_dir / "val" / "1.jpg", "--out", tmp_path, "--seed", 3)
    assert code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1.png", "1_2.png"]
    assert "is written as 1_2.png" in out + err  # said, not silent


def test_translate_names_differing_only_in_case_are_both_kept(facades_checkpoint, facades_dir, tmp_path, capsys):
    """Case.jpg and case.jpg became Case.png and case.png: one file on the case-insensitive disks of macOS and
    Windows, where the second translation replaced the first without a word."""
    import shutil

    for name in ("Case.jpg", "case.jpg"):
        shutil.copy(facades_dir / "val" / "1.jpg", tmp_path / name)
    code, out, err = run(capsys, "translate", "--checkpoint", facades_checkpoint, tmp_path / "Case.jpg",
                         tmp_path / "case.jpg", "--out", tmp_path / "out")
    assert code == 0 and sorted(p.name.lower() for p in (tmp_path / "out").iterdir()) == ["case.png", "case_2.png"]
    assert "is written as case_2.png" in out + err


def test_translate_direction_on_a_pix2pix_model_says_it_is_for_cyclegan(facades_checkpoint, facades_dir, tmp_path,
                                                                         capsys):
    """A facades model runs B -> A (label -> photo); asked for --direction BtoA it said it held "the A -> B
    generator only", the opposite of what its user knows: its own direction is accepted now, and a pix2pix
    model trained A -> B is refused for B -> A as a one-generator model."""
    from pix2pix_core.checkpoint import refuse_direction_of_pix2pix
    from pix2pix_core.config import TrainConfig
    from pix2pix_core.errors import Pix2PixError

    code, _, err = run(capsys, "translate", "--checkpoint", facades_checkpoint, facades_dir / "val",
                       "--out", tmp_path / "out", "--direction", "BtoA")
    assert code == 0 and not error_lines(err) and len(list((tmp_path / "out").glob("*.png"))) == 3
    with pytest.raises(Pix2PixError, match=r"a pix2pix model has one generator, for the direction it was trained "
                                           r"in \(AtoB\)"):
        refuse_direction_of_pix2pix(TrainConfig(task="aligned"), "BtoA", "m.safetensors")

def test_translate_missing_input_is_reported_and_others_still_run(facades_checkpoint, facades_dir, tmp_path, capsys):
    code, out, err = run(capsys, "translate", "--checkpoint", facades_checkpoint, tmp_path / "ghost.png",
                         facades_dir / "val", "--out", tmp_path / "out")
    assert code == 1 and error_lines(err) == [f"error: {tmp_path / 'ghost.png'}: file not found"]
    assert len(list((tmp_path / "out").glob("*.png"))) == 3


def test_translate_never_writes_into_its_input_folder(facades_checkpoint, tmp_path, capsys):
    write_odd_images(tmp_path / "in")
    before = {p.name: p.read_bytes() for p in (tmp_path / "in").iterdir()}
    code, _, err = run(capsys, "translate", "--checkpoint", facades_checkpoint, tmp_path / "in",
                       "--out", tmp_path / "in")
    assert code == 2 and error_lines(err) == [f"error: --out {tmp_path / 'in'} holds input images: the translations "
                                               "would replace or mix with them; write to another folder"]
    assert {p.name: p.read_bytes() for p in (tmp_path / "in").iterdir()} == before


def test_translate_a_failed_write_is_one_line_and_the_others_are_written(facades_checkpoint, facades_dir, tmp_path,
                                                                         capsys):
    (tmp_path / "out" / "1.png").mkdir(parents=True)  # a folder where the first result goes
    code, out, err = run(capsys, "translate", "--checkpoint", facades_checkpoint, facades_dir / "val",
                         "--out", tmp_path / "out")
    assert code == 1 and len(error_lines(err)) == 1 and "cannot write" in error_lines(err)[0]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["1.png", "2.png", "3.png"]  # no temp files
    assert "wrote 2 image(s)" in out


@pytest.mark.parametrize("argv, message", [
    (["--threads", "0"], "argument --threads: must be a whole number of at least 1"),
    (["--threads", "two"], "argument --threads: must be a whole number of at least 1"),
    (["--seed", str(2 ** 70)], "argument --seed: seed must be between 0 and 4,294,967,295"),
    (["--seed", "1.5"], "argument --seed: must be a whole number"),
])
def test_bad_inference_numbers_are_usage_errors(facades_checkpoint, facades_dir, tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["translate", "--checkpoint", str(facades_checkpoint), str(facades_dir / "val"),
              "--out", str(tmp_path / "out"), *argv])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("device, message", [("bogus", "unknown device 'bogus'"),
                                             ("cuda:7", "device cuda:7: "), ("mps", "device mps: ")])
def test_an_unknown_or_absent_device_is_one_line(facades_checkpoint, facades_dir, tmp_path, capsys, device, message):
    if device == "cuda:7" and torch.cuda.device_count() > 7:
        pytest.skip("this machine has 8 GPUs")
    if device == "mps" and getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        pytest.skip("this machine has MPS")
    code, _, err = run(capsys, "translate", "--checkpoint", facades_checkpoint, facades_dir / "val",
                       "--out", tmp_path / "out", "--device", device)
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err


def test_export_takes_its_format_from_the_suffix_and_refuses_a_mismatch(facades_checkpoint, tmp_path, capsys):
    code, out, _ = run(capsys, "export", "--checkpoint", facades_checkpoint, "--out", tmp_path / "g.pt")
    assert code == 0 and "torchscript" in out
    assert (tmp_path / "g.pt").read_bytes()[:2] == b"PK"  # a TorchScript zip, not a safetensors file
    code, _, err = run(capsys, "export", "--checkpoint", facades_checkpoint, "--format", "torchscript",
                       "--out", tmp_path / "g.safetensors")
    assert code == 2 and "names a file of format safetensors, but --format is torchscript" in err
    assert not (tmp_path / "g.safetensors").exists()


def test_export_says_which_generator_weights_it_wrote(facades_checkpoint, tmp_path, capsys):
    """`--weights` picks the trained G or its moving average; on a run without an average it changes nothing,
    which the export says instead of accepting `--weights trained` silently."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    code, out, _ = run(capsys, "export", "--checkpoint", facades_checkpoint, "--weights", "trained",
                       "--out", tmp_path / "plain.safetensors")
    assert code == 0 and "the run kept no moving average" in out
    tensors = load_file(str(facades_checkpoint))
    with safe_open(str(facades_checkpoint), framework="pt") as handle:
        metadata = handle.metadata()
    tensors.update({"E." + key[2:]: value.clone() for key, value in tensors.items() if key.startswith("G.")})
    averaged = tmp_path / "averaged.safetensors"
    save_file(tensors, str(averaged), metadata)
    code, out, _ = run(capsys, "export", "--checkpoint", averaged, "--out", tmp_path / "e.safetensors")
    assert code == 0 and "G's moving average" in out
    code, out, _ = run(capsys, "export", "--checkpoint", averaged, "--weights", "trained", "--out", tmp_path / "t.onnx")
    assert code == 0 and "the trained G, not its moving average" in out and "onnx" in out
    # an export exported again (the bundled models are exports): it says which G it holds, and keeps saying it
    code, out, _ = run(capsys, "export", "--checkpoint", tmp_path / "e.safetensors", "--dtype", "fp32",
                       "--out", tmp_path / "e32.safetensors")
    assert code == 0 and "G's moving average, as the export read holds it" in out
    from pix2pix_core.checkpoint import read_header

    assert read_header(tmp_path / "e32.safetensors")["generator_weights"] == "averaged"


def dtype_option(command):
    """The --dtype option of one subcommand of the real parser."""
    return next(a for a in command_parsers()[command]._actions if a.dest == "dtype")


@pytest.mark.parametrize("name", ["fp16", "bf16", "fp32"])
def test_export_and_import_dtype_names_are_one_table(facades_checkpoint, tmp_path, capsys, name):
    """export and import-official each spelled {"fp16": torch.float16, ...}; both now read
    checkpoint.EXPORT_DTYPE_OF_NAME, whose dtypes are those export_generator and import_official accept."""
    from official_files import NGF, official_state, our_generator
    from pix2pix_core.checkpoint import EXPORT_DTYPE_OF_NAME, EXPORT_DTYPES, read_checkpoint

    assert tuple(EXPORT_DTYPE_OF_NAME.values()) == EXPORT_DTYPES
    assert dtype_option("export").choices == dtype_option("import-official").choices == tuple(EXPORT_DTYPE_OF_NAME)
    code, _, err = run(capsys, "export", "--checkpoint", facades_checkpoint, "--dtype", name,
                       "--out", tmp_path / "e.safetensors")
    assert code == 0, err
    torch.save(official_state(our_generator()), tmp_path / "latest_net_G.pth")
    code, _, err = run(capsys, "import-official", tmp_path / "latest_net_G.pth", "--netG", "unet_256", "--task",
                       "facades", "--ngf", NGF, "--dtype", name, "--out", tmp_path / "i.safetensors")
    assert code == 0, err
    for written in ("e.safetensors", "i.safetensors"):
        tensors, _ = read_checkpoint(tmp_path / written)
        assert {v.dtype for v in tensors.values() if v.is_floating_point()} == {EXPORT_DTYPE_OF_NAME[name]}


def test_the_tools_module_and_every_commands_help_load_no_torch():
    """cli_tools imports torch (and the modules that do) inside its handlers, so the module itself stays light;
    and `--help` of the command and of each subcommand answers without torch: building the parser imported
    checkpoint (for the --dtype and --weights names) and segment (for SegmenterConfig's defaults), and with
    them torch, 3 to 6 s before any help showed. Nor PIL and numpy: download.py imported archive (and images)
    for `data`'s arguments, 0.2 s of every --help."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent("""
        import contextlib, io, json, sys
        import pix2pix_core.cli_tools
        def torch_modules():  # torch, and PIL and numpy as well
            return sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "PIL", "numpy"))
        found = {"module": torch_modules()}
        from pix2pix_core.cli import command_parsers, main
        commands = command_parsers()
        found["parser"] = torch_modules()
        for argv in [["--help"]] + [[name, "--help"] for name in commands]:
            with contextlib.redirect_stdout(io.StringIO()) as shown, contextlib.suppress(SystemExit):
                main(argv)
            assert shown.getvalue().startswith("usage:"), (argv, shown.getvalue()[:300])
            found[" ".join(argv)] = torch_modules()
        print(json.dumps(found))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    found = json.loads(done.stdout)
    commands = {"train", "test", "translate", "export", "import-official", "train-segmenter", "data"}
    assert {"module", "parser", "--help"} | {f"{name} --help" for name in commands} <= set(found)
    assert {step: modules for step, modules in found.items() if modules} == {}


# ---------------------------------------------------------------------------------------------- test
def test_cli_test_end_to_end(facades_checkpoint, facades_dir, tmp_path, capsys):
    code, out, _ = run(capsys, "test", "--checkpoint", facades_checkpoint, "--data", facades_dir,
                       "--out", tmp_path / "report", "--limit", 2, "--no-segmenter")
    assert code == 0
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert metrics["count"] == 2 and "psnr" in out and "index.html" in out
    assert (tmp_path / "report" / "index.html").read_text().count('<tr class="example">') == 2
    code, out, _ = run(capsys, "test", "--checkpoint", facades_checkpoint, "--data", facades_dir,
                       "--out", tmp_path / "at64", "--limit", 1, "--no-segmenter", "--size", 64)
    assert code == 0 and json.loads((tmp_path / "at64" / "metrics.json").read_text())["size"] == 64
    code, _, err = run(capsys, "test", "--checkpoint", facades_checkpoint, "--data", facades_dir,
                       "--out", tmp_path / "at4", "--size", 4)
    assert code == 2 and err.startswith("error: --size must be between 16 and 2,048, got 4")


def test_test_refreshes_an_earlier_report_but_replaces_no_other_page(facades_checkpoint, facades_dir, tmp_path,
                                                                     capsys):
    """`test --out .` in a folder with a website's index.html (or another tool's metrics.json) replaced it with
    the report, as export's --out replaced any file. An earlier report in the folder is refreshed, as before."""
    report = ["test", "--checkpoint", facades_checkpoint, "--data", facades_dir, "--limit", 1, "--no-segmenter",
              "--no-realism", "--size", 64, "--out"]
    for _ in range(2):  # the second run refreshes the first one's report
        assert run(capsys, *report, tmp_path / "report")[0] == 0
    site, tool = tmp_path / "site", tmp_path / "tool"
    site.mkdir(), tool.mkdir()
    (site / "index.html").write_text("<html><body>my home page</body></html>")
    (tool / "metrics.json").write_text('{"accuracy": 0.9}')
    for folder, name in ((site, "index.html"), (tool, "metrics.json")):
        code, _, err = run(capsys, *report, folder)
        assert code == 2 and err.count("\n") == 1 and f"would replace {folder / name}, which no earlier" in err, err
        assert sorted(p.name for p in folder.iterdir()) == [name]  # nothing written, nothing replaced


def test_cli_train_segmenter_then_test_with_it(facades_checkpoint, facades_dir, tmp_path, capsys):
    seg = tmp_path / "seg.safetensors"
    code, out, _ = run(capsys, "train-segmenter", "--data", facades_dir, "--out", seg, "--epochs", 2,
                       "--ngf", 4, "--num-downs", 5, "--crop-size", 32, "--load-size", 36, "--batch-size", 3,
                       "--precision", "fp32")
    assert code == 0 and seg.is_file() and "val (real photos): pixel_acc" in out
    trained = seg.read_bytes()
    code, _, err = run(capsys, "train-segmenter", "--data", facades_dir, "--out", seg, "--epochs", 1, "--ngf", 4)
    assert code == 2 and err.startswith(f"error: {seg} exists") and "--overwrite" in err  # before any training
    assert seg.read_bytes() == trained
    assert run(capsys, "train-segmenter", "--data", facades_dir, "--out", seg, "--epochs", 1, "--ngf", 4,
               "--num-downs", 5, "--crop-size", 32, "--load-size", 32, "--max-images", 3, "--overwrite")[0] == 0
    assert seg.read_bytes() != trained
    code, out, _ = run(capsys, "test", "--checkpoint", facades_checkpoint, "--data", facades_dir,
                       "--out", tmp_path / "report", "--segmenter", seg)
    assert code == 0 and "fcn_miou_real" in out and "two_sample_acc_floor" in out and "kid_x1000" in out
    code, out, _ = run(capsys, "test", "--checkpoint", facades_checkpoint, "--data", facades_dir,
                       "--out", tmp_path / "report", "--segmenter", seg, "--no-realism")
    assert code == 0 and "fcn_miou_real" in out and "kid_x1000" not in out


# ---------------------------------------------------------------------------------------------- errors
def test_missing_data_folder_is_one_line(facades_checkpoint, tmp_path, capsys):
    code, out, err = run(capsys, "test", "--checkpoint", facades_checkpoint, "--data", tmp_path / "nope",
                         "--out", tmp_path / "report")
    assert code == 2 and err.strip().count("\n") == 0 and err.startswith("error: data folder not found")


@pytest.mark.parametrize("command,kind", [
    (["export", "--checkpoint", "{ckpt}"], "file"), (["export", "--checkpoint", "{ckpt}", "--format", "onnx"], "file"),
    (["import-official", "{ckpt}", "--netG", "unet_256", "--task", "facades"], "file"),
    (["train-segmenter", "--data", "{data}", "--overwrite", "--epochs", "1"], "file"),
    (["test", "--checkpoint", "{ckpt}", "--data", "{data}", "--no-segmenter"], "folder"),
    (["translate", "--checkpoint", "{ckpt}", "{data}/val"], "folder"),
])
def test_an_out_of_the_wrong_kind_is_one_line_before_the_work(facades_checkpoint, facades_dir, tmp_path, capsys,
                                                              command, kind):
    """An --out folder given for a file failed after the work (train-segmenter after its whole training) with
    "could not write X (Is a directory); the previous checkpoint, if any, is intact"; a path below a file with
    "File exists"; `test --out FILE` ended in a FileExistsError traceback. Each is one line, before the work, that
    says what to give instead; the file in the way is left as it was."""
    argv = [part.format(ckpt=facades_checkpoint, data=facades_dir) for part in command]
    a_file, a_folder = tmp_path / "a_file", tmp_path / "a_folder"
    a_file.write_text("mine")
    a_folder.mkdir()
    wrong = a_file if kind == "folder" else a_folder
    wanted = "is a file, not a folder: give a folder" if kind == "folder" else "is a folder: give a file name, e.g."
    for out, words in ((wrong, wanted), (a_file / "below" / "x", "a_file is a file, not a folder")):
        code, stdout, err = run(capsys, *argv, "--out", out)
        assert code == 2 and err.count("\n") == 1 and err.startswith("error: --out: ") and words in err, err
        assert "%" not in err + stdout  # refused before any progress bar
    assert a_file.read_text() == "mine" and not any(a_folder.iterdir())


def test_an_out_below_another_users_folder_is_one_line(facades_checkpoint, facades_dir, tmp_path, capsys,
                                                       monkeypatch):
    """--out below a folder this user may not read: the new --out checks' exists()/is_dir() raised EACCES, a
    PermissionError traceback where `translate` said "cannot create --out" in one line (and the write of a file
    says why in its own words)."""
    from pix2pix_core.cli_tools import refuse_bad_output
    from test_crash_safety import lock_like_another_users_folder

    locked = tmp_path / "someone_else"
    locked.mkdir()
    lock_like_another_users_folder(monkeypatch, locked)
    code, _, err = run(capsys, "translate", "--checkpoint", facades_checkpoint, facades_dir / "val",
                       "--out", locked / "out")
    assert code == 2 and len(error_lines(err)) == 1 and "cannot create --out" in err and "Permission denied" in err
    for folder, name in ((False, "g.safetensors"), (True, "report")):  # export, import, train-segmenter; test
        refuse_bad_output(locked / name, folder=folder)  # nothing it can see: the write then says why


def test_export_replaces_an_earlier_model_but_no_other_file(facades_checkpoint, tmp_path, capsys):
    """`export --out` replaced whatever file it named: a typo'd --out notes.txt (written as safetensors), a
    photo, or another program's safetensors model. An earlier export of the same name is replaced, as before."""
    from safetensors.torch import save_file

    shipped = tmp_path / "model.safetensors"
    for _ in range(2):  # the second run refreshes the first one's file
        assert run(capsys, "export", "--checkpoint", facades_checkpoint, "--out", shipped)[0] == 0
    notes, photo, foreign = tmp_path / "notes.txt", tmp_path / "photo.jpg", tmp_path / "sd.safetensors"
    notes.write_text("mine")
    photo.write_bytes(b"\xff\xd8 a photo")
    save_file({"w": torch.zeros(2)}, str(foreign), metadata={"format": "pt"})
    for out, words in ((notes, "is not a model file"), (photo, "is not a model file"),
                       (foreign, "is not a Pix2Pix Studio model")):
        before = out.read_bytes()
        for command in (["export", "--checkpoint", facades_checkpoint],
                        ["import-official", facades_checkpoint, "--netG", "unet_256", "--task", "facades"]):
            code, _, err = run(capsys, *command, "--out", out)
            assert code == 2 and err.count("\n") == 1 and words in err, err
        assert out.read_bytes() == before
    run_copy = tmp_path / "run_latest.safetensors"  # another run's training checkpoint, say
    run_copy.write_bytes(Path(facades_checkpoint).read_bytes())
    for command in (["export", "--checkpoint", shipped],
                    ["import-official", facades_checkpoint, "--netG", "unet_256", "--task", "facades"]):
        code, _, err = run(capsys, *command, "--out", run_copy)
        assert code == 2 and err.count("\n") == 1 and "is a training checkpoint" in err, err
    assert run_copy.read_bytes() == Path(facades_checkpoint).read_bytes()


def test_translate_that_writes_nothing_leaves_no_out_folder(facades_checkpoint, tmp_path, capsys):
    """No input readable (a typo, a non-image): `translate` exited 1 and left the empty --out it had created."""
    (tmp_path / "notes.txt").write_text("not an image")
    for inputs in ([tmp_path / "ghost.png"], [tmp_path / "notes.txt"]):
        code, out, err = run(capsys, "translate", "--checkpoint", facades_checkpoint, *inputs,
                             "--out", tmp_path / "results" / "today")
        assert code == 1 and len(error_lines(err)) == 1 and out.strip() == "wrote nothing; 1 failed"
        assert not (tmp_path / "results").exists()
    (tmp_path / "mine").mkdir()
    assert run(capsys, "translate", "--checkpoint", facades_checkpoint, tmp_path / "ghost.png",
               "--out", tmp_path / "mine")[0] == 1
    assert (tmp_path / "mine").is_dir()  # it was there before
    assert run(capsys, "translate", "--checkpoint", facades_checkpoint, tmp_path / "ghost.png",
               "--out", tmp_path / "new" / ".." / "mine")[0] == 1
    assert (tmp_path / "mine").is_dir()  # the same folder, spelled through one that did not exist


def test_a_report_that_cannot_be_written_is_one_line(facades_checkpoint, facades_dir, tmp_path, capsys, monkeypatch):
    """A full disk when `test` writes its report, after the whole evaluation, was an OSError traceback."""
    import errno
    import os

    from pix2pix_core import evaluate

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(evaluate, "save_metrics", full_disk)
    code, _, err = run(capsys, "test", "--checkpoint", facades_checkpoint, "--data", facades_dir,
                       "--out", tmp_path / "report", "--no-segmenter", "--no-realism")
    assert code == 2 and len(error_lines(err)) == 1 and "Traceback" not in err, err
    assert error_lines(err)[0].startswith(f"error: cannot write the report in {tmp_path / 'report'}: No space left")


def test_ctrl_c_outside_train_is_one_line_and_status_130(facades_checkpoint, facades_dir, tmp_path, capsys,
                                                         monkeypatch):
    """A Ctrl-C in translate, test, export or data was a KeyboardInterrupt traceback; `train` has its own."""
    from pix2pix_core import inference

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(inference.Translator, "translate", interrupted)
    code, _, err = run(capsys, "translate", "--checkpoint", facades_checkpoint, facades_dir / "val",
                       "--out", tmp_path / "out")
    assert code == 130 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == "interrupted: run the same command again to finish"
    assert not (tmp_path / "out").exists()


def test_wrong_checkpoint_is_one_line(facades_dir, tmp_path, capsys):
    fake = tmp_path / "model.safetensors"
    fake.write_bytes(b"definitely not a safetensors file")
    for command in (["test", "--data", facades_dir, "--out", tmp_path / "r"], ["translate", facades_dir, "--out", tmp_path]):
        code, _, err = run(capsys, *command, "--checkpoint", fake)
        assert code == 2 and err.strip().count("\n") == 0 and "safetensors" in err


def test_pickle_checkpoint_is_refused_in_one_line(facades_dir, tmp_path, capsys):
    pth = tmp_path / "latest_net_G.pth"
    torch.save({"model.0.weight": torch.zeros(3)}, pth)
    code, _, err = run(capsys, "translate", "--checkpoint", pth, facades_dir, "--out", tmp_path / "out")
    assert code == 2 and err.strip().count("\n") == 0 and "pickle" in err


def test_segmenter_as_generator_is_one_line(facades_dir, tmp_path, capsys):
    seg = tmp_path / "seg.safetensors"
    assert run(capsys, "train-segmenter", "--data", facades_dir, "--out", seg, "--epochs", 1, "--ngf", 4,
               "--num-downs", 5, "--crop-size", 32, "--load-size", 32, "--max-images", 3)[0] == 0
    code, _, err = run(capsys, "translate", "--checkpoint", seg, facades_dir, "--out", tmp_path / "out")
    assert code == 2 and "segmenter, not a pix2pix generator" in err


@pytest.mark.parametrize("command,options", [
    ("test", ["--checkpoint", "--data", "--out", "--limit", "--segmenter", "--split", "--no-realism"]),
    ("translate", ["--checkpoint", "INPUT", "--out", "--seed"]),
    ("train-segmenter", ["--data", "--out", "--overwrite", "--epochs", "--batch-size", "--ngf", "--threads"]),
])
def test_help_is_complete(command, options, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert all(option in text for option in options)



def test_every_option_has_a_help_text():
    """The README promises a complete --help: train's --no-flip and --no-channels-last showed no text at all."""
    silent = [(name, action.option_strings or action.dest) for name, p in command_parsers().items()
              for action in p._actions if not action.help]
    assert not silent


def test_train_help_says_facades_defaults_to_the_studio_recipe():
    """The description said "defaults follow the paper", but the default task, facades, trains --recipe studio
    (README: an unconditional PatchGAN)."""
    description = " ".join(command_parsers()["train"].description.split())
    assert "for --task facades: --recipe studio" in description


def test_no_help_text_shows_a_python_none_or_false():
    """`data --help` printed "(default: None)" and "(default: False)" (argparse's own formatter), `train --help`
    "(default None)" for --max-steps, --max-images and --checkpoint-every-steps."""
    for name, parser in command_parsers().items():
        text = " ".join(parser.format_help().split())
        assert not re.search(r"\(default:? (None|False)\)", text), name


def test_export_help_names_every_suffix_it_reads(capsys):
    """`.ts` is a TorchScript suffix as much as `.pt` (FORMAT_OF_SUFFIX, README); --help named only .pt."""
    from pix2pix_core.cli_tools import FORMAT_OF_SUFFIX

    with pytest.raises(SystemExit):
        main(["export", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert all(suffix in text for suffix in FORMAT_OF_SUFFIX)


ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "checkpoints").glob("*.md")), *sorted((ROOT / "docs").glob("*.md"))]
# `python -m pix2pix_core train ...` or `pix2pix data ...`, up to the line's end, a comment, a backtick or a cell
DOCUMENTED_COMMAND = re.compile(r"(?:python -m pix2pix_core|(?<![\w/.-])pix2pix) "
                                r"(train-segmenter|import-official|train|test|translate|export|data)\b([^#`|\n]*)")


def documented_commands():
    """(file:line, command, options) of every CLI command written in the README, the cards and docs/."""
    for path in DOCS:
        lines = path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, 1):
            if number > 1 and lines[number - 2].endswith("\\"):
                continue  # read with the line it continues
            following = iter(lines[number:])
            while line.endswith("\\"):  # a shell line continuation
                line = line[:-1] + " " + next(following, "")
            for match in DOCUMENTED_COMMAND.finditer(line):
                options = re.findall(r"(?<![\w-])(--[A-Za-z][\w-]*)", match.group(2))
                yield f"{path.relative_to(ROOT)}:{number}", match.group(1), options


def test_documented_commands_use_options_that_exist():
    """An option renamed or removed in the CLI must not live on in a command of the README or a card."""
    known = {name: {o for a in p._actions for o in a.option_strings} for name, p in command_parsers().items()}
    commands = list(documented_commands())
    assert len(commands) > 50 and {command for _, command, _ in commands} == set(known)
    unknown = [(where, command, option) for where, command, options in commands
               for option in options if option not in known[command]]
    assert not unknown


def test_translate_notes_a_photo_given_as_a_label_map(facades_checkpoint, facades_dir, tmp_path, capsys):
    from conftest import random_label_map

    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "holiday.jpg")
    random_label_map(rng, 64).save(tmp_path / "drawn.png")
    code, _, err = run(capsys, "translate", "--checkpoint", facades_checkpoint, tmp_path / "holiday.jpg",
                       tmp_path / "drawn.png", "--out", tmp_path / "out")
    assert code == 0 and "note: holiday.jpg looks like a photo, not a label map" in err
    assert "drawn.png looks like" not in err


def test_translate_reads_class_id_maps_as_their_colours(facades_checkpoint, tmp_path, capsys):
    """Gray ids 0..11 and CMP's indexed ids 1..12 translate as the colour map of the same classes; ids 0..12
    (13 values) fail in one line and the others still run."""
    from conftest import random_label_map
    from pix2pix_core.palette import clean_label_ids

    colour = random_label_map(np.random.default_rng(4), 64)
    ids = clean_label_ids(colour)
    (tmp_path / "in").mkdir()
    colour.save(tmp_path / "in" / "colour.png")
    Image.fromarray(ids.astype(np.uint8), "L").save(tmp_path / "in" / "gray.png")
    indexed = Image.fromarray((ids + 1).astype(np.uint8), "P")
    indexed.putpalette([0, 0, 0] + [value for k in range(12) for value in (k, k, k)])  # a gray palette of its own
    indexed.save(tmp_path / "in" / "cmp.png")
    Image.fromarray(np.arange(13, dtype=np.uint8)[None].repeat(4, 0), "L").save(tmp_path / "in" / "thirteen.png")
    code, _, err = run(capsys, "translate", "--checkpoint", facades_checkpoint, tmp_path / "in",
                       "--out", tmp_path / "out", "--seed", 2)
    assert code == 1 and error_lines(err) == [
        f"error: {tmp_path / 'in' / 'thirteen.png'}: class-id map with ids 0 to 12: 13 values for 12 classes; "
        "save ids as 0..11 or as CMP's 1..12"]
    assert "looks like a photo" not in err
    expected = np.asarray(Image.open(tmp_path / "out" / "colour.png"))
    for name in ("gray.png", "cmp.png"):
        assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / name)), expected), name


def test_the_run_line_says_what_trains():
    """The run's first line showed a colorizer's unused direction ("colorize (BtoA)") and "basic D" for a
    two-scale D with spectral norm."""
    from pix2pix_core.cli import _run_summary
    from pix2pix_core.config import TrainConfig

    line = _run_summary(TrainConfig(task="colorize", data="photos", num_D=2, spectral_norm=True), None)
    assert line.startswith("pix2pix colorize from photos: ") and "basic D x 2 scales with spectral norm ndf" in line
    assert _run_summary(TrainConfig(task="facades", data="f"), None).startswith("pix2pix facades (BtoA) from f: ")


def test_the_run_line_counts_one_step_and_one_epoch_in_the_singular():
    """It said 'at most 1 steps' and '1 + 0 epochs'."""
    from pix2pix_core.cli import _run_summary
    from pix2pix_core.config import TrainConfig

    line = _run_summary(TrainConfig(task="facades", data="f", epochs=1, epochs_decay=0, max_steps=1), None)
    assert ", 1 epoch, at most 1 step -> " in line, line
    line = _run_summary(TrainConfig(task="facades", data="f", epochs=0, epochs_decay=1, max_steps=2), None)
    assert ", 1 epoch of LR decay, at most 2 steps -> " in line, line
    assert ", 55 + 55 epochs -> " in _run_summary(TrainConfig(task="facades", data="f", epochs=55, epochs_decay=55),
                                                   None)


def test_the_run_line_names_no_d_without_a_gan():
    """It said 'basic D x 2 scales ndf 64' for a --no-gan run, whose D is never run nor updated."""
    from pix2pix_core.cli import _run_summary
    from pix2pix_core.config import TrainConfig

    line = _run_summary(TrainConfig(task="facades", data="f", use_gan=False, num_D=2), None)
    assert " ngf 64, no D (no GAN loss), 256 px crops" in line and "basic" not in line and "scales" not in line, line


def test_crop_size_errors_say_what_to_do():
    from pix2pix_core.config import TrainConfig
    from pix2pix_core.errors import Pix2PixError

    with pytest.raises(Pix2PixError, match="cut from the image resized to load_size"):
        TrainConfig(crop_size=300, load_size=286).validate()
    with pytest.raises(Pix2PixError, match=r"for 128 px crops: netG unet_128"):
        TrainConfig(crop_size=128, load_size=143).validate()


def test_the_progress_bar_leaves_out_losses_of_options_that_are_off():
    """G_feat=0.000 was shown on every run without feature matching."""
    from pix2pix_core.progress import TqdmReporter
    from pix2pix_core.train import LossEvent

    reporter = TqdmReporter()
    losses = {"G_GAN": 0.7, "G_L1": 12.0, "D_real": 0.6, "D_fake": 0.0, "G_feat": 0.0}
    reporter(LossEvent(1, 0, losses, 3.0, 0.5, 10.0, 2e-4))
    reporter(LossEvent(2, 0, {**losses, "D_fake": 0.5}, 3.0, 1.0, 0.0, 2e-4))  # a loss that was 0 once stays
    text = reporter.bar.postfix
    reporter.close()
    assert "G_GAN=0.700" in text and "D_fake=0.500" in text and "G_feat" not in text


def test_cli_test_on_data_of_another_task_warns_once_about_data_or_model(colorize_checkpoint, facades_dir, tmp_path,
                                                                          capsys):
    """`test` has no --task: the hint names the model, and the realism floor's read of train/ adds no second line."""
    code, _, err = run(capsys, "test", "--checkpoint", colorize_checkpoint, "--data", facades_dir,
                       "--out", tmp_path / "report")
    assert code == 0
    warned = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warned) == 1 and "is a colorize one: is --data (or --checkpoint)" in warned[0], err
    assert "--task" not in err


def test_export_with_a_pix2pix_models_own_direction_works(facades_checkpoint, tmp_path, capsys):
    """translate accepts a facades model's own BtoA; export said it held "no B -> A generator weights"."""
    code, out, err = run(capsys, "export", "--checkpoint", facades_checkpoint, "--out", tmp_path / "g.safetensors",
                         "--direction", "BtoA")
    assert code == 0 and (tmp_path / "g.safetensors").exists(), err
