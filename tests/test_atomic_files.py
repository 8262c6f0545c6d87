"""Files replaced whole or not at all (pix2pix_core.atomic_files): images, metrics.json, config.json, losses.csv
and the app's outputs are written through one helper."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from pix2pix_core.atomic_files import ORDINARY, replaced_atomically

ROOT = str(Path(__file__).resolve().parents[1])  # the repository: its pix2pix_core for a child process


def test_new_content_replaces_the_file_in_one_rename(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text("old")
    with replaced_atomically(path) as handle:
        handle.write(b"new")
        assert path.read_text() == "old"  # a reader meanwhile sees the whole previous file
    assert path.read_text() == "new" and os.stat(path).st_mode & 0o777 == ORDINARY
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_a_failure_mid_write_keeps_the_previous_file_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "losses.csv"
    path.write_text("step,G_L1\n1,2.0\n")
    with pytest.raises(OSError, match="disk full"):
        with replaced_atomically(path) as handle:
            handle.write(b"step,G_L1\n")
            raise OSError("disk full")
    assert path.read_text() == "step,G_L1\n1,2.0\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["losses.csv"]


def test_mode_none_keeps_a_private_file(tmp_path):
    with replaced_atomically(tmp_path / "out.png", mode=None) as handle:
        handle.write(b"x")
    assert os.stat(tmp_path / "out.png").st_mode & 0o777 == 0o600


def test_a_killed_write_leaves_a_partial_file_that_the_next_run_clears(tmp_path):
    """SIGKILL between the write and the rename: nothing under the final name changes, a hidden .partial file
    stays. A run started again in that folder (RunFolder.check) removes it; other files stay."""
    import signal
    import subprocess
    import sys

    from pix2pix_core.run_folder import RunFolder

    run = tmp_path / "run"
    (run / "samples").mkdir(parents=True)
    (run / "config.json").write_text("{}")
    kill = ("import os, signal, sys\nfrom pix2pix_core.atomic_files import replaced_atomically\n"
            "with replaced_atomically(sys.argv[1]) as handle:\n    handle.write(b'half')\n"
            "    handle.flush()\n    os.kill(os.getpid(), signal.SIGKILL)\n")
    for target in (run / "config.json", run / "samples" / "step_0000100.png"):
        done = subprocess.run([sys.executable, "-c", kill, str(target)], env={**os.environ, "PYTHONPATH": ROOT})
        assert done.returncode == -signal.SIGKILL
    leftovers = sorted(run.glob(".*.partial")) + sorted((run / "samples").glob(".*.partial"))
    assert [p.name.split(".")[1] for p in leftovers] == ["config", "step_0000100"]
    assert (run / "config.json").read_text() == "{}" and not (run / "samples" / "step_0000100.png").exists()
    (run / "notes.partial").write_text("a user's file")  # not a temp file's name: kept

    folder = RunFolder(run)
    folder.check(1000)
    folder.unlock()  # taken by check: the run's own lock file
    assert not any(p.exists() for p in leftovers)
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "notes.partial", "samples"]


def test_a_sample_cut_short_by_a_full_disk_leaves_no_broken_picture(tmp_path, monkeypatch):
    """Sample grids were saved straight to their final name: a full disk (or a kill) mid-write left a cut PNG that
    the app's Train tab and a user's viewer then failed on."""
    from PIL import Image

    from pix2pix_core.run_folder import RunFolder

    def cut_short(image, fp, format=None, **params):
        handle = open(fp, "wb") if isinstance(fp, (str, os.PathLike)) else fp
        handle.write(b"\x89PNG\r\n\x1a\n cut")
        handle.flush()
        raise OSError(28, "No space left on device")

    folder = RunFolder(tmp_path / "run")
    (folder.out / "samples").mkdir(parents=True)
    monkeypatch.setattr(Image.Image, "save", cut_short)
    with pytest.raises(OSError, match="No space"):
        folder.save_sample(Image.new("RGB", (8, 8)), "step_0000100")
    assert list((folder.out / "samples").iterdir()) == []
