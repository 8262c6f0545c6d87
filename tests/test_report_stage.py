"""The staging folder of a report being made: safe from another report's cleanup from the moment it exists."""

from __future__ import annotations

import errno
import os
import time

import pytest
from PIL import Image

from pix2pix_core import file_lock, report_stage
from pix2pix_core.errors import Pix2PixError
from pix2pix_core.report_stage import STAGE_LOCK, remove_abandoned_stages, staged_report

pytestmark = pytest.mark.skipif(file_lock.fcntl is None, reason="no file locks on this platform")


def picture():
    return {"output": Image.new("RGB", (8, 8))}


def test_another_reports_cleanup_while_the_stage_is_made_leaves_it_alone(tmp_path, monkeypatch):
    """Another `test` into the same folder cleaning up between the staging folder's mkdtemp and its lock took the
    lock itself and deleted the folder: the run failed at its first picture with 'free some space'."""
    out = tmp_path / "report"
    real_try_lock, removed = file_lock.try_lock, []

    def others_cleanup_first(lock_file):
        if not removed:  # the other report runs once, just before this one takes its lock
            removed.append(None)
            removed[0] = remove_abandoned_stages(out)
        return real_try_lock(lock_file)

    monkeypatch.setattr(file_lock, "try_lock", others_cleanup_first)
    with staged_report(out) as stage:
        row = stage.add("1.png", picture(), {})
        assert remove_abandoned_stages(out) == []  # and a cleanup while it is filled leaves it too
        assert (stage.folder / row.files["output"]).is_file() and (stage.folder / STAGE_LOCK).is_file()
    assert removed == [[]]
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES])
def test_a_lock_that_cannot_be_made_is_a_clear_error_before_any_work(tmp_path, monkeypatch, code):
    """Every OSError taking the lock meant 'no locks here': a full disk went on unguarded (to fail later)."""
    monkeypatch.setattr(file_lock, "try_lock", lambda lock_file: (_ for _ in ()).throw(OSError(code, "nope")))
    with pytest.raises(Pix2PixError, match="cannot write the report"):
        with staged_report(tmp_path / "report"):
            pytest.fail("the block ran")
    assert list(tmp_path.iterdir()) == []


def test_where_locks_do_not_work_the_stage_goes_on_unguarded(tmp_path, monkeypatch):
    monkeypatch.setattr(file_lock, "try_lock", lambda lock_file: (_ for _ in ()).throw(OSError(errno.ENOLCK, "x")))
    with staged_report(tmp_path) as stage:
        assert stage.lock_fd is None
        stage.add("1.png", picture(), {})
        assert stage.folder.name.endswith(".partial")


def test_only_folders_really_removed_are_counted(tmp_path, monkeypatch):
    """A folder rmtree(ignore_errors=True) could not remove was counted as removed."""
    stuck, gone = tmp_path / ".images.stuck.partial", tmp_path / ".images.gone.partial"
    for folder in (stuck, gone):
        folder.mkdir()
    real_rmtree = report_stage.shutil.rmtree
    monkeypatch.setattr(report_stage.shutil, "rmtree",
                        lambda path, ignore_errors=False: None if path == stuck else real_rmtree(path, ignore_errors))
    assert remove_abandoned_stages(tmp_path) == [gone]
    assert stuck.is_dir()


def test_a_half_made_stage_a_kill_left_is_removed_once_an_hour_old(tmp_path):
    """A kill between making a staging folder and renaming it (.images.XXXX.new) leaves it: removed once it
    cannot be one being made."""
    old, young = tmp_path / ".images.old.new", tmp_path / ".images.young.new"
    for folder in (old, young):
        folder.mkdir()
        (folder / STAGE_LOCK).write_text("")
    hour_ago = time.time() - report_stage.YOUNG_STAGE_S - 60
    os.utime(old, (hour_ago, hour_ago))
    assert remove_abandoned_stages(tmp_path) == [old]
    assert young.is_dir()


def test_a_stage_that_cannot_take_its_name_is_removed_with_its_lock(tmp_path, monkeypatch):
    """The rename to its .partial name failing (a full disk's directory block) leaves no folder and no held lock."""
    held, closed, try_lock, close = [], [], file_lock.try_lock, os.close
    monkeypatch.setattr(file_lock, "try_lock", lambda lock_file: held.append(try_lock(lock_file)) or held[-1])
    monkeypatch.setattr(report_stage.os, "rename", lambda *args: (_ for _ in ()).throw(OSError(errno.ENOSPC, "x")))
    monkeypatch.setattr(report_stage.os, "close", lambda fd: closed.append(fd) or close(fd))
    with pytest.raises(Pix2PixError, match="cannot write the report"):
        with staged_report(tmp_path / "report"):
            pytest.fail("the block ran")
    assert list(tmp_path.iterdir()) == [] and len(held) == 1 and held[0] in closed
