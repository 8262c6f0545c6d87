"""scripts/two_sample_seeds.py: the colour two-sample accuracy of saved reports over many classifier seeds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import write_report
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


def test_explain_names_what_gives_a_yellow_cast_away(tmp_path):
    """Outputs are the photos pushed towards yellow (blue channel down): the top gaps are about b and hue."""
    images = tmp_path / "yellow" / "images"
    images.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for index in range(16):
        photo = rng.integers(40, 216, (16, 16, 3), dtype=np.uint8)
        Image.fromarray(photo).save(images / f"{index:04d}_ground_truth.png")
        warmer = photo.copy()
        warmer[..., 2] = (warmer[..., 2] * 0.6).astype(np.uint8)
        Image.fromarray(warmer).save(images / f"{index:04d}_output.png")
    gaps = two_sample_seeds.seed_spread(tmp_path / "yellow", seeds=1, explain=4).gaps
    assert len(gaps) == 4 and abs(gaps[0][1]) >= abs(gaps[-1][1])
    mean_b = [g for g in gaps if g[0] == "mean b"]
    assert mean_b and mean_b[0][1] > 0 and mean_b[0][3] > mean_b[0][2]  # more yellow than the photos
    done = subprocess.run([sys.executable, "-m", "scripts.two_sample_seeds", str(tmp_path / "yellow"), "--seeds", "1",
                           "--explain", "3"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "largest gaps first" in done.stdout and done.stdout.count("\n| ") >= 2 + 3


def test_feature_names_match_the_features():
    from pix2pix_core.colour_realism import colour_feature_names, colour_features

    names = colour_feature_names()
    assert len(names) == colour_features([Image.new("RGB", (4, 4))]).shape[1] == len(set(names))
    assert "share of chroma at hue [-90, -60) degrees (blue)" in names and names[-5] == "mean b"


def test_only_the_pictures_the_report_shows_are_read(tmp_path):
    """A `test` cut short in a reused report folder leaves its pictures in images/: they were read as the report's
    (here 6 colour outputs beside the report's 4 gray ones)."""
    rng = np.random.default_rng(0)
    photos = [Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)) for _ in range(10)]
    report = tmp_path / "report"
    write_report(report, "report", {"checkpoint": "g.safetensors", "task": "colorize"},
                 [(f"{i}.png", {"output": p.convert("L").convert("RGB"), "ground truth": p})
                  for i, p in enumerate(photos[:4])])
    for index, photo in enumerate(photos[4:], start=4):
        photo.save(report / "images" / f"{index:04d}_{index}_ground_truth.png")
        photo.save(report / "images" / f"{index:04d}_{index}_output.png")
    outputs, truths = two_sample_seeds.report_pictures(report)
    assert [p.name for p in truths] == [f"{i:04d}_{i}_ground_truth.png" for i in range(4)]
    assert two_sample_seeds.seed_spread(report, seeds=2).photos == 4
