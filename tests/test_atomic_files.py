"""Files replaced whole or not at all (pix2pix_core.atomic_files): images, metrics.json, config.json, losses.csv
and the app's outputs are written through one helper."""
from __future__ import annotations

import os

import pytest

from pix2pix_core.atomic_files import ORDINARY, replaced_atomically


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
