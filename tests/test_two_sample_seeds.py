"""scripts/two_sample_seeds.py: the colour two-sample accuracy of saved reports over many classifier seeds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scripts import two_sample_seeds

ROOT = Path(__file__).resolve().parents[1]


def _report(folder: Path, count: int, gray_outputs: bool) -> Path:
    """A fake colorization report: random colour photos as ground truth, outputs equal to them or gray."""
    images = folder / "images"
    images.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for index in range(count):
        photo = Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
        photo.save(images / f"{index:04d}_ground_truth.png")
        (photo.convert("L").convert("RGB") if gray_outputs else photo).save(images / f"{index:04d}_output.png")
    return folder


def test_gray_outputs_are_always_told_apart(tmp_path):
    spread = two_sample_seeds.seed_spread(_report(tmp_path / "gray", 12, gray_outputs=True), seeds=3)
    assert spread.photos == 12 and spread.accuracies == [1.0, 1.0, 1.0]


def test_outputs_equal_to_the_photos_are_not(tmp_path):
    spread = two_sample_seeds.seed_spread(_report(tmp_path / "same", 12, gray_outputs=False), seeds=3)
    assert len(spread.accuracies) == 3 and max(spread.accuracies) <= 0.6


def test_a_folder_without_pairs_is_refused(tmp_path):
    (tmp_path / "empty" / "images").mkdir(parents=True)
    with pytest.raises(SystemExit, match="run `python -m pix2pix_core test`"):
        two_sample_seeds.seed_spread(tmp_path / "empty", seeds=2)


def test_the_command_prints_one_row_per_report(tmp_path):
    report = _report(tmp_path / "gray", 8, gray_outputs=True)
    done = subprocess.run([sys.executable, "-m", "scripts.two_sample_seeds", str(report), "--seeds", "2"],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"| {report} | 8 | 1.000 | 0.000 | 1.000 - 1.000 |" in done.stdout
