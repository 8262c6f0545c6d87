"""Shared test fixtures: tiny synthetic datasets and tiny trained checkpoints, made on the fly, and the small
helpers several test modules use (the app's own are in app_helpers.py).

Nothing here needs ../shared or the network; every model is a few thousand parameters so the whole
suite runs on a 2-core CPU.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pix2pix_core.config import TrainConfig
from pix2pix_core.palette import ids_to_image
from pix2pix_core.segment import SegmenterConfig

# Tiny models run fastest on one thread (and the machine's cores may be busy with real trainings).
torch.set_num_threads(1)


@pytest.fixture(scope="session", autouse=True)
def _temp_files_under_basetemp(tmp_path_factory):
    """The test process's temp files go under pytest's basetemp (pytest keeps the last three): gradio_client
    leaves an empty random folder in the temp folder for every file it downloads (3,700 had piled up in /tmp)."""
    before = tempfile.tempdir
    tempfile.tempdir = str(tmp_path_factory.mktemp("tempdir"))
    yield
    tempfile.tempdir = before


def random_label_map(rng: np.random.Generator, size: int = 64) -> Image.Image:
    """A facade-like label map: background, a facade block, a grid of windows and a door."""
    ids = np.zeros((size, size), dtype=np.int64)
    ids[size // 8:, size // 8: size - size // 8] = 1
    step = max(4, size // int(rng.integers(3, 6)))
    for y in range(size // 4, size - size // 4, step):
        for x in range(size // 4, size - size // 4, step):
            ids[y: y + step // 2, x: x + step // 2] = 2
    ids[size - size // 5:, size // 2 - size // 10: size // 2 + size // 10] = 3
    return ids_to_image(ids)


def photo_from_labels(label_map: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A deterministic 'photo' for a label map: each class gets a fixed colour plus mild noise."""
    labels = np.asarray(label_map, dtype=np.float32)
    photo = 255 - labels * 0.8 + rng.normal(0, 4, labels.shape)
    return Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8), "RGB")


def write_aligned(folder: Path, count: int, size: int = 64, seed: int = 0) -> Path:
    """count A|B images (A = photo, B = label), as the pix2pix facades layout."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        labels = random_label_map(rng, size)
        pair = Image.new("RGB", (2 * size, size))
        pair.paste(photo_from_labels(labels, rng), (0, 0))
        pair.paste(labels, (size, 0))
        pair.save(folder / f"{i + 1}.jpg", quality=95)
    return folder


def write_colour_photos(folder: Path, count: int, size: int = 64, seed: int = 0) -> Path:
    """Smooth colourful gradients with a coloured disc: easy, colourful colorization targets."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(count):
        base = rng.uniform(0, 255, 3)
        image = np.stack([base[0] * xx + 40, base[1] * yy + 40, base[2] * (1 - xx) + 40], -1)
        cy, cx = rng.uniform(0.3, 0.7, 2)
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 < 0.04
        image[disc] = rng.uniform(0, 255, 3)
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8), "RGB").save(folder / f"photo_{i}.jpg", quality=95)
    return folder


def write_collection(folder: Path, count: int, colour: tuple[int, int, int], seed: int, size: int = 40) -> None:
    """Smooth pictures of one colour family with a disc: a style per collection, no pairing."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(count):
        image = np.stack([c * (0.5 + 0.5 * g) for c, g in zip(colour, (xx, yy, 1 - xx))], -1)
        cy, cx = rng.uniform(0.3, 0.7, 2)
        image[(yy - cy) ** 2 + (xx - cx) ** 2 < 0.03] = 255 - np.asarray(colour)
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8), "RGB").save(folder / f"{i}.png")


def tiny_config(**overrides) -> TrainConfig:
    """A model small enough to train in seconds: 128 px crops from 136 px, 7-level U-Net of width 8."""
    values = dict(netG="unet_128", crop_size=128, load_size=136, ngf=8, ndf=8, batch_size=2, epochs=2,
                  epochs_decay=0, sample_every=0, log_every=1, save_every=0, precision="fp32", seed=0)
    values.update(overrides)
    return TrainConfig(**values)


@pytest.fixture(scope="session")
def facades_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("facades")
    write_aligned(root / "train", 6, seed=1)
    write_aligned(root / "val", 3, seed=2)
    return root


@pytest.fixture(scope="session")
def food_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("food")
    write_colour_photos(root / "train", 6, seed=3)
    write_colour_photos(root / "val", 3, seed=4)
    return root


def _trained(tmp_path_factory, data: Path, task: str, name: str) -> Path:
    from pix2pix_core.train import Trainer

    out = tmp_path_factory.mktemp(name)
    # batch 1, as the paper: the Translator then normalises with per-image statistics, which suits
    # a model trained for a few steps only (its running statistics are still near their initial values)
    config = tiny_config(task=task, data=str(data), out=str(out), direction="BtoA", epochs=1, batch_size=1)
    result = Trainer(config).run()
    assert result.checkpoint is not None
    return result.checkpoint


@pytest.fixture(scope="session")
def facades_checkpoint(tmp_path_factory, facades_dir) -> Path:
    """A tiny facades (label -> photo) training checkpoint."""
    return _trained(tmp_path_factory, facades_dir, "facades", "facades_run")


@pytest.fixture(scope="session")
def colorize_checkpoint(tmp_path_factory, food_dir) -> Path:
    """A tiny colorization training checkpoint."""
    return _trained(tmp_path_factory, food_dir, "colorize", "food_run")


# ------------------------------------------------------------------------- helpers several test modules use
def train_args(data: Path, out: Path, *extra: str) -> list[str]:
    """CLI arguments for a tiny run: 6 images, batch 2 -> 3 steps per epoch, a checkpoint every step."""
    return ["train", "--task", "facades", "--data", str(data), "--out", str(out), "--netG", "unet_128",
            "--crop-size", "128", "--load-size", "136", "--ngf", "8", "--ndf", "8", "--batch-size", "2",
            "--epochs", "10", "--epochs-decay", "0", "--sample-every", "0", "--save-every", "0",
            "--precision", "fp32", "--checkpoint-every-steps", "1", "--threads", "1", *extra]


def tiny_segmenter_config(data, out, **overrides) -> SegmenterConfig:
    """A 64 px, width-8 U-Net that overfits the conftest facades in about a second."""
    values = dict(data=str(data), out=str(out), ngf=8, num_downs=6, crop_size=64, load_size=64, epochs=60,
                  batch_size=3, lr=1e-2, max_images=3, precision="fp32")
    values.update(overrides)
    return SegmenterConfig(**values)


def write_report(out: Path, title: str, metrics: dict, rows: list[tuple[str, dict]]) -> Path:
    """A report as `test` writes it: each row's (name, pictures) staged (report_stage), then the page
    (evaluate.write_page) shows them in images/report-XXXX/."""
    from pix2pix_core.evaluate import write_page
    from pix2pix_core.report_stage import staged_report

    with staged_report(out) as stage:
        return write_page(stage, title, metrics, [stage.add(name, pictures, {}) for name, pictures in rows])


def hold_build_lock(path: Path) -> subprocess.Popen:
    """Another process (a builder on another host, say) holding `path`'s build lock until killed."""
    script = ("import fcntl, os, sys\n"
              f"handle = open({str(path) + '.lock'!r}, 'w')\n"
              "fcntl.flock(handle, fcntl.LOCK_EX)\n"
              "handle.write(f'pid {os.getpid()} on elsewhere since 12:00:00')\n"
              "handle.flush()\n"
              "print('held', flush=True)\n"
              "sys.stdin.read()\n")
    holder = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert holder.stdout.readline() == b"held\n"
    return holder
