"""The staging folder of a report being made: safe from another report's cleanup from the moment it exists."""

from __future__ import annotations

import errno
import io
import os
import re
import time
from pathlib import Path

import pytest
from PIL import Image

from conftest import write_report
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


def test_the_temp_files_of_a_page_a_kill_left_are_removed_by_the_next_report(tmp_path, monkeypatch):
    """A kill while index.html or metrics.json was written left its temp file (.index.html.XXXX.partial) beside
    the report, and no later `test` removed it. The next report removes them when no report runs in the folder
    (every stage lock free), else (one runs, or locks do not work) once an hour old; no other file."""
    left = [tmp_path / ".index.html.k1f9.partial", tmp_path / ".metrics.json.x7_2.partial"]
    others = [tmp_path / ".notes.txt.k1f9.partial", tmp_path / "index.html.partial", tmp_path / ".index.html.a.new"]
    for path in left + others:
        path.write_text("half")
    (tmp_path / ".metrics.json.dir.partial").mkdir()  # a folder of that name is no temp file of a page
    assert sorted(remove_abandoned_stages(tmp_path)) == sorted(left)
    assert all(path.exists() for path in others) and (tmp_path / ".metrics.json.dir.partial").is_dir()

    hour_ago = time.time() - report_stage.YOUNG_STAGE_S - 60
    young, old = tmp_path / ".index.html.young.partial", tmp_path / ".metrics.json.old.partial"
    with staged_report(tmp_path):  # a report is running in the folder: its own temp files may be those
        for path in (young, old):
            path.write_text("half")
        os.utime(old, (hour_ago, hour_ago))
        assert remove_abandoned_stages(tmp_path) == [old]
        assert young.is_file()
    monkeypatch.setattr(file_lock, "try_lock", lambda lock_file: (_ for _ in ()).throw(OSError(errno.ENOLCK, "x")))
    stage = tmp_path / ".images.left.partial"  # where locks do not work, nothing tells whether its report runs
    stage.mkdir()
    assert remove_abandoned_stages(tmp_path) == [stage] and young.is_file()
    stage.mkdir()
    os.utime(young, (hour_ago, hour_ago))
    assert remove_abandoned_stages(tmp_path) == [stage, young]


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


def shade_rows(shade):
    """Two rows of one-colour pictures: the same file names for every report, the shade tells whose they are."""
    return [(f"{i}.png", {"output": Image.new("RGB", (8, 8), (shade,) * 3)}) for i in range(2)]


def folder_bytes(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_one_whole_report(files, shades):
    """`files` (relative path -> bytes, a report folder as a reader finds it) hold a page whose pictures are all
    there and all its own report's: the shade of the report its title names."""
    page = files[Path("index.html")].decode()
    title = re.search(r"<title>(.*)</title>", page).group(1)
    shown = re.findall(r'<img src="([^"]+)"', page)
    assert len(shown) == 2
    for src in shown:
        assert Path(src) in files, f"{title}'s page shows {src}, which is missing"
        assert Image.open(io.BytesIO(files[Path(src)])).getpixel((0, 0)) == (shades[title],) * 3, f"mixed: {src}"


def test_a_kill_at_any_point_of_the_switch_leaves_the_old_report_or_the_new_one(tmp_path, monkeypatch):
    """The new pictures were moved one by one into images/ under the old page's names, then the page replaced: a
    kill in between left the old page showing new pictures. A kill at every rename, replace and unlink of the
    switch (what is on disk then is what a kill leaves) finds one whole report; the next report removes what the
    kill left."""
    from pix2pix_core.evaluate import write_page

    shades, outcomes, point = {"old": 10, "new": 200, "next": 90}, set(), 0
    while True:
        point += 1
        out = tmp_path / f"kill_{point}"
        write_report(out, "old", {}, shade_rows(10))
        (out / "images" / "holiday.png").write_bytes(b"a user's own")
        left: dict = {}
        calls = []
        with staged_report(out) as stage:
            rows = [stage.add(name, pictures, {}) for name, pictures in shade_rows(200)]
            for name in ("rename", "replace", "unlink", "rmdir"):
                monkeypatch.setattr(os, name, killed_at(point, calls, getattr(os, name), out, left))
            try:
                write_page(stage, "new", {}, rows)
            except KeyboardInterrupt:
                pass
            finally:
                monkeypatch.undo()
        if not left:  # no kill point left: the switch ran whole
            break
        assert_one_whole_report(left, shades)
        outcomes.add(re.search(r"<title>(.*)</title>", left[Path("index.html")].decode()).group(1))
        for path in list(out.rglob("*"))[::-1]:  # the folder as the kill left it
            path.unlink() if path.is_file() else path.rmdir()
        for path, data in left.items():
            (out / path).parent.mkdir(parents=True, exist_ok=True)
            (out / path).write_bytes(data)
        write_report(out, "next", {}, shade_rows(90))
        after = folder_bytes(out)  # the page's temp file a kill left too: removed
        assert_one_whole_report(after, shades)
        shown = re.findall(r'<img src="([^"]+)"', after[Path("index.html")].decode())
        assert sorted(map(str, after)) == sorted(["index.html", "images/holiday.png", *shown])  # no leftovers
    assert outcomes == {"old", "new"} and point > 3


def test_a_ctrl_c_just_after_the_page_is_replaced_keeps_the_pictures_it_shows(tmp_path, monkeypatch):
    """A Ctrl-C after index.html was replaced but before the stage recorded that its page shows it: the stage's
    clean-up removed the picture folder the new page in place shows (a page of missing pictures). The stage now
    removes its pictures only where the page in place does not show them."""
    import contextlib

    from pix2pix_core import evaluate

    real = evaluate.replaced_atomically

    @contextlib.contextmanager
    def interrupted_after(path):
        with real(path) as handle:
            yield handle
        raise KeyboardInterrupt  # the page is replaced: the switch is done

    out = tmp_path / "report"
    write_report(out, "old", {}, shade_rows(10))
    monkeypatch.setattr(evaluate, "replaced_atomically", interrupted_after)
    with pytest.raises(KeyboardInterrupt):
        write_report(out, "new", {}, shade_rows(200))
    monkeypatch.undo()
    assert_one_whole_report(folder_bytes(out), {"old": 10, "new": 200})
    assert "<title>new</title>" in (out / "index.html").read_text()


def killed_at(point, calls, real, out, left):
    """`real` (an os function) that, at the `point`-th call of those patched so, copies what is on disk in `out`
    into `left` (what a kill there leaves) and raises KeyboardInterrupt; later calls (the clean-up) go through."""
    def call(*args, **kwargs):
        calls.append(1)
        if len(calls) == point:
            left.update(folder_bytes(out))
            raise KeyboardInterrupt
        return real(*args, **kwargs)
    return call


def test_two_reports_into_one_folder_at_once_never_show_missing_pictures(tmp_path, monkeypatch):
    """Last page wins, and no page shows a missing picture: "b" switches, and a third report cleans up, while "a"
    is between its move into images/ and its page, and "a" wins without knowing "b" was there."""
    from pix2pix_core import atomic_files
    from pix2pix_core.evaluate import write_page

    out = tmp_path / "report"
    shades = {"old": 10, "a": 50, "b": 200}
    write_report(out, "old", {}, shade_rows(10))
    real_replaced, cleaned = atomic_files.replaced_atomically, []

    with staged_report(out) as a, staged_report(out) as b:
        rows_a = [a.add(name, pictures, {}) for name, pictures in shade_rows(50)]
        rows_b = [b.add(name, pictures, {}) for name, pictures in shade_rows(200)]

        def others_meanwhile(path, *args, **kwargs):  # "a" is in images/ now, its page not written yet
            monkeypatch.setattr("pix2pix_core.evaluate.replaced_atomically", real_replaced)
            cleaned.append(remove_abandoned_stages(out))
            assert_one_whole_report(folder_bytes(out), shades)  # "old" still shown whole, "a" left alone
            write_page(b, "b", {}, rows_b)
            assert_one_whole_report(folder_bytes(out), shades)
            return real_replaced(path, *args, **kwargs)

        monkeypatch.setattr("pix2pix_core.evaluate.replaced_atomically", others_meanwhile)
        write_page(a, "a", {}, rows_a)
    assert cleaned == [[]]
    assert_one_whole_report(folder_bytes(out), shades)
    assert "<title>a</title>" in (out / "index.html").read_text()
    assert len(list((out / "images").iterdir())) == 2  # b's is left: a's page replaced it without knowing it...
    assert len(remove_abandoned_stages(out)) == 1  # ...and the next report removes it
    assert len(list((out / "images").iterdir())) == 1
    assert_one_whole_report(folder_bytes(out), shades)


def test_an_earlier_versions_report_straight_in_images_is_replaced_keeping_a_users_pictures(tmp_path):
    """Reports of earlier versions had their pictures straight in images/: those its page showed are removed once
    the new page is in place, the user's own beside them stay."""
    images = tmp_path / "images"
    images.mkdir()
    for name in ("0000_a_output.png", "0001_b_output.png", "0002_mine.png", "holiday.png"):
        Image.new("RGB", (8, 8)).save(images / name)
    (tmp_path / "index.html").write_text('<table class="metrics"></table><img src="images/0000_a_output.png">'
                                         '<img src="images/0001_b_output.png">')
    write_report(tmp_path, "new", {}, shade_rows(200))
    assert sorted(p.name for p in images.iterdir() if p.is_file()) == ["0002_mine.png", "holiday.png"]
    assert_one_whole_report(folder_bytes(tmp_path), {"new": 200})
