"""Installed as a package, not run from the checkout: where the bundled models are looked for, what the app and
`test` say when they are not there, and what the sdist and the wheel built from it hold."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch

import pix2pix_core
from demo import server
from pix2pix_core import bundled, evaluate
from pix2pix_core.cli import main

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("pix2pix_core", "demo")
NOT_SHIPPED = ("__pycache__", "*.pyc", "*.pyi")  # bytecode, and the typing stubs gradio writes beside demo/


@pytest.fixture
def installed(monkeypatch, tmp_path):
    """As a wheel in site-packages sees it: no source checkout around the package, the user's folder current."""
    monkeypatch.setattr(bundled, "source_checkout", lambda: None)
    monkeypatch.chdir(tmp_path)
    return tmp_path


# ---------------------------------------------------------------------------------------------- where the models are
def test_the_checkout_finds_its_own_models_from_any_folder(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert bundled.source_checkout() == ROOT
    assert server.parse_args([]).checkpoints == ROOT / "checkpoints"
    assert evaluate.default_segmenter() == ROOT / "checkpoints" / "facades_segmenter.safetensors"


def test_an_installed_package_looks_in_the_current_folder(installed):
    args = server.parse_args([])
    assert (args.checkpoints, args.data_root) == (installed / "checkpoints", installed / "data")
    assert evaluate.default_segmenter() == installed / "checkpoints" / "facades_segmenter.safetensors"


def test_a_checkpoints_folder_that_does_not_exist_is_one_line(tmp_path, capsys):
    """A typo in --checkpoints started the app with empty pickers and no word why."""
    with pytest.raises(SystemExit) as stop:
        server.parse_args(["--checkpoints", str(tmp_path / "checkpoint")])
    assert stop.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(f"--checkpoints {tmp_path / 'checkpoint'}: no such folder")


def test_no_models_at_start_up_says_which_folder_and_where_they_are(tmp_path):
    """An installed wheel has no models: the console said only "no facades model found; put one in the
    checkpoints folder", naming neither the folder searched nor where the bundled ones are."""
    note = server.models_note(tmp_path)
    assert str(tmp_path) in note and "checkpoints/ of the source repository" in note and "--checkpoints" in note
    assert server.models_note(tmp_path / "missing").startswith(f"note: no models in {tmp_path / 'missing'};")
    assert server.models_note(ROOT / "checkpoints") == ""


def test_a_checkpoints_folder_of_no_generators_is_noted_too(tmp_path):
    """A folder holding only the facade segmenter (or files that are no checkpoint) started with empty pickers and
    no note: the note looked for any .safetensors file, not for what the app's model registry lists."""
    shutil.copy(ROOT / "checkpoints" / "facades_segmenter.safetensors", tmp_path)
    (tmp_path / "broken.safetensors").write_bytes(b"not a checkpoint")
    assert server.models_note(tmp_path).startswith(f"note: no models in {tmp_path} (broken.safetensors, "
                                                   "facades_segmenter.safetensors: not pix2pix generators); ")
    shutil.copy(ROOT / "checkpoints" / "food_colorize.safetensors", tmp_path)
    assert server.models_note(tmp_path) == ""


def test_cli_test_without_the_segmenter_says_where_it_looked(installed, facades_checkpoint, facades_dir, capsys):
    """Installed, `test` looked for the segmenter inside site-packages and said only "no facade segmenter found"."""
    code = main(["test", "--checkpoint", str(facades_checkpoint), "--data", str(facades_dir), "--out",
                 str(installed / "report"), "--limit", "1", "--no-realism"])
    out = capsys.readouterr().out
    assert code == 0
    assert f"no facade segmenter at {installed / 'checkpoints' / 'facades_segmenter.safetensors'}" in out
    assert "--segmenter FILE" in out


# ---------------------------------------------------------------------------------------------- sdist and wheel
def _package_files(root: Path) -> set[str]:
    """Every file of the two packages under root, as relative paths, less what is never shipped."""
    return {str(path.relative_to(root)) for package in PACKAGES for path in (root / package).rglob("*")
            if path.is_file() and not any(path.match(skip) or skip in path.parts for skip in NOT_SHIPPED)}


def _run(*command, cwd: Path, env=None) -> str:
    done = subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _copy_sources(out: Path) -> Path:
    """What a clone holds for packaging, without build/ or egg-info leftovers of the checkout and without
    writing any into it."""
    out.mkdir()
    ignore = shutil.ignore_patterns(*NOT_SHIPPED)
    for name in ("pyproject.toml", "MANIFEST.in", "README.md", *(p.name for p in ROOT.glob("requirements*.txt"))):
        if (ROOT / name).is_file():
            shutil.copy2(ROOT / name, out / name)
    for folder in (*PACKAGES, "tests"):
        shutil.copytree(ROOT / folder, out / folder, ignore=ignore)
    return out


def test_the_sdist_builds_a_wheel_that_runs_outside_the_checkout(tmp_path):
    """pip's path from an sdist: sdist -> wheel -> site-packages, then the commands run from another folder.
    The wheel must hold every file of the packages (a data file missing from package-data breaks the app only
    once installed), and the sdist no half test suite."""
    pytest.importorskip("setuptools", minversion="69")  # pyproject's build requirement; built offline here
    source = _copy_sources(tmp_path / "src")
    build = [sys.executable, "-c", "import sys; from setuptools import build_meta as b; "
                                   "print(getattr(b, sys.argv[1])(sys.argv[2]))"]
    sdist = tmp_path / "dist" / _run(*build, "build_sdist", tmp_path / "dist", cwd=source).split()[-1]
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp_path / "unpacked", filter="data")
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert not [name for name in names if name.startswith("tests")]
    (unpacked,) = (tmp_path / "unpacked").iterdir()
    wheel = tmp_path / "dist" / _run(*build, "build_wheel", tmp_path / "dist", cwd=unpacked).split()[-1]

    site = tmp_path / "site"
    _run(sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--target", site, wheel,
         cwd=tmp_path)
    assert sorted(_package_files(site) ^ _package_files(ROOT)) == []  # each file one side has and the other lacks
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    assert _run(site / "bin" / "pix2pix", "--version", cwd=elsewhere, env=env).split() == [
        "pix2pix-studio", pix2pix_core.__version__]
    assert (site / "bin" / "pix2pix-studio").is_file()
    probe = ("import json, pix2pix_core; from pix2pix_core import bundled, palette; print(json.dumps(["
             "pix2pix_core.__file__, bundled.source_checkout(), str(bundled.bundled_checkpoints()), "
             "len(palette.facade_classes())]))")
    where, checkout, checkpoints, classes = json.loads(_run(sys.executable, "-c", probe, cwd=elsewhere, env=env))
    assert Path(where).is_relative_to(site) and checkout is None
    assert (Path(checkpoints), classes) == (elsewhere.resolve() / "checkpoints", 12)


def test_the_apps_help_loads_neither_gradio_nor_torch():
    """`pix2pix-studio --help` imports demo.server, and the demo package imported demo.app with gradio and torch
    first: 6 to 15 s on a loaded machine before the help showed; now the package loads the app when it is asked
    for (demo.build_app, as the server does after parsing its flags)."""
    probe = ("import contextlib, io, json, sys\n"
             "from demo.server import main\n"
             "with contextlib.redirect_stdout(io.StringIO()) as shown, contextlib.suppress(SystemExit):\n"
             "    main(['--help'])\n"
             "print(json.dumps([shown.getvalue(), sorted(m for m in sys.modules if m.split('.')[0] in "
             "('torch', 'gradio'))]))")
    shown, heavy = json.loads(_run(sys.executable, "-c", probe, cwd=ROOT))
    assert shown.startswith("usage: pix2pix-studio") and "--checkpoints" in shown
    assert heavy == []
    import demo

    assert demo.build_app is demo.app.build_app  # the package's names still lead to the app


@pytest.mark.parametrize("argv, words", [
    (["--device", "cuda"], "device cuda: no CUDA GPU is available here (use auto or cpu)"),
    (["--device", "gpu0"], "unknown device 'gpu0': use auto, cpu, cuda, cuda:N or mps"),
    (["--torch-threads", "-2"], "--torch-threads -2: give a number of threads, or 0 for torch's default"),
])
def test_a_device_or_thread_count_the_machine_cannot_use_is_one_line_at_start(argv, words, capsys):
    """--device cuda on a machine without a GPU started the app, and then every request failed ("no CUDA GPU is
    available here"); a negative --torch-threads was torch's traceback."""
    if "cuda" in argv and torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    with pytest.raises(SystemExit) as stop:
        server.parse_args(argv)
    assert stop.value.code == 2 and capsys.readouterr().err.splitlines()[-1].endswith(words)
