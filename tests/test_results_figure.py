"""scripts/results_figure.py: one report or several compared on the same inputs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import write_report
from scripts import results_figure

ROOT = Path(__file__).resolve().parents[1]
TILE = 16


def _report(folder: Path, stems: list[str], shade: int) -> Path:
    """A fake `test` report: flat tiles, the output tile of every stem at `shade`."""
    images = folder / "images"
    images.mkdir(parents=True)
    for stem in stems:
        Image.new("RGB", (32, 32), (10, 10, 10)).save(images / f"{stem}_input.png")
        Image.new("RGB", (32, 32), (shade, shade, shade)).save(images / f"{stem}_output.png")
        Image.new("RGB", (32, 32), (250, 250, 250)).save(images / f"{stem}_ground_truth.png")
    return folder


def _tile(figure: Image.Image, row: int, column: int, top: int = 0) -> int:
    return int(np.asarray(figure)[top + row * TILE + TILE // 2, column * TILE + TILE // 2, 0])


def test_one_report_is_input_output_truth(tmp_path):
    report = _report(tmp_path / "a", [f"{i:04d}" for i in range(9)], 100)
    figure = results_figure.compose([report], rows=3, tile=TILE)
    assert figure.size == (3 * TILE, 3 * TILE)
    assert [_tile(figure, 0, c) for c in range(3)] == [10, 100, 250]


def test_several_reports_put_each_output_in_its_own_column(tmp_path):
    stems = [f"{i:04d}" for i in range(5)]
    reports = [_report(tmp_path / "a", stems, 100), _report(tmp_path / "b", stems, 180)]
    figure = results_figure.compose(reports, rows=2, tile=TILE, labels=["old", "new"])
    top = results_figure.CAPTION_HEIGHT
    assert figure.size == (4 * TILE, top + 2 * TILE)
    assert [_tile(figure, 1, c, top) for c in range(4)] == [10, 100, 180, 250]


def test_rows_are_picked_evenly_not_first():
    assert results_figure.pick_evenly(list("abcdefghi"), 3) == ["a", "e", "i"]
    assert results_figure.pick_evenly(list("ab"), 5) == ["a", "b"]


def test_reports_of_different_splits_are_refused(tmp_path):
    a = _report(tmp_path / "a", ["0000", "0001"], 100)
    b = _report(tmp_path / "b", ["0005", "0006"], 100)
    with pytest.raises(SystemExit, match="same split"):
        results_figure.compose([a, b], rows=2, tile=TILE)
    with pytest.raises(SystemExit, match="one label per report"):
        results_figure.compose([a, a], rows=2, tile=TILE, labels=["only one"])
    with pytest.raises(SystemExit, match="run `python -m pix2pix_core test`"):
        results_figure.compose([tmp_path], rows=2, tile=TILE)


def test_command_line_writes_the_figure(tmp_path):
    stems = ["0000", "0001", "0002"]
    a, b = _report(tmp_path / "a", stems, 60), _report(tmp_path / "b", stems, 90)
    out = tmp_path / "figure.jpg"
    subprocess.run([sys.executable, "scripts/results_figure.py", str(a), str(b), str(out), "--rows", "2",
                    "--tile", "24", "--labels", "a", "b"], cwd=ROOT, check=True, capture_output=True)
    assert Image.open(out).size == (4 * 24, results_figure.CAPTION_HEIGHT + 2 * 24)


@pytest.mark.parametrize("mistake, said", [(["--rows", "0"], "--rows must be at least 1"),
                                           (["--tile", "0"], "--tile must be at least 1"),
                                           (["--rows", "-2"], "--rows must be at least 1")])
def test_command_line_mistakes_are_one_line(tmp_path, mistake, said):
    """--rows 0 or --tile 0 (or an output name without a picture suffix) ended in a PIL traceback
    ("cannot write empty image", "unknown file extension"), after the work."""
    report = _report(tmp_path / "a", ["0000", "0001"], 60)
    for out, args, expected in ((tmp_path / "f.jpg", mistake, said),
                                (tmp_path / "figure", [], "figure: not a picture file name (give .jpg or .png)")):
        done = subprocess.run([sys.executable, "scripts/results_figure.py", str(report), str(out), *args], cwd=ROOT,
                              capture_output=True, text=True)
        assert done.returncode == 2 and "Traceback" not in done.stderr and expected in done.stderr
        assert not out.exists()


def _written_report(folder: Path, names: list[str], shade: int) -> Path:
    """A report as `test` writes it (index.html and images/)."""
    rows = [(name, {"input": Image.new("RGB", (32, 32), (10, 10, 10)),
                       "output": Image.new("RGB", (32, 32), (shade, shade, shade)),
                       "ground truth": Image.new("RGB", (32, 32), (250, 250, 250))}) for name in names]
    write_report(folder, "report", {"checkpoint": "g.safetensors", "task": "facades"}, rows)
    return folder


def test_the_pictures_are_those_the_report_shows_not_leftovers_in_images(tmp_path):
    """A `test` cut short in a reused report folder leaves its pictures in images/ beside the earlier report: the
    figure listed images/ and showed them as that report's."""
    report = _written_report(tmp_path / "a", ["a.png", "b.png", "c.png"], 100)
    for index in range(3, 9):  # the cut-short run's, of a longer split
        for kind, shade in (("input", 10), ("output", 200), ("ground_truth", 250)):
            Image.new("RGB", (32, 32), (shade,) * 3).save(report / "images" / f"{index:04d}_x{index}_{kind}.png")
    assert results_figure.report_stems(report) == ["0000_a", "0001_b", "0002_c"]
    figure = results_figure.compose([report], rows=5, tile=TILE)
    assert figure.size == (3 * TILE, 3 * TILE) and [_tile(figure, row, 1) for row in range(3)] == [100] * 3
