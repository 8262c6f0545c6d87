"""A report's new pictures, kept out of sight until its page is written: the switch from an earlier report to the
new one is the page's one atomic replace.

`test` into a folder holding an earlier report saved each new picture into images/ as it went, under the names the
earlier page shows (0000_x_output.png), so a run cut short (a Ctrl-C, a crash) left that page showing the new run's
pictures as its own. Now they wait in a staging folder inside the report folder (.images.XXXX.partial/, on the same
file system, so moving it is a rename) and the whole folder becomes images/report-XXXX/ only once the work is done,
just before the new page that shows it replaces index.html (evaluate.write_page): moving the pictures one by one
into images/ under the earlier page's names left, after a kill between those renames and the page, the old page
beside new pictures. Every report has a folder name of its own, so the page in place shows its own pictures
whatever was killed when; the earlier report's pictures are removed only after the switch. A run that stops before
the switch removes its pictures; what a kill left (a staging folder, a picture folder no page shows, the temp file
of a page or metrics.json) is removed by the next report into the folder. Each picture is on disk once staged: the
report keeps none in memory (evaluate keeps what its realism metrics read, when they run: a colorizer's outputs and
truths, facades' smaller copies at the segmenter's size).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterator, Optional

from PIL import Image

from .atomic_files import PARTIAL_SUFFIX, missing_folders, remove_empty
from .errors import Pix2PixError
from .file_lock import Outcome, attempt_lock, unlock
from .images import save_image_atomically
from .report_pictures import PICTURE_FOLDER, shown_folder, shown_pictures

STAGE_PATTERN = ".images.*.partial"  # the staging folders' names (tempfile.mkdtemp's random part in between)
STAGE_LOCK = ".stage.lock"  # held by the run filling a staging folder: the next report removes only unheld ones
NEW_SUFFIX = ".new"  # a staging folder's name until its lock is held (.images.XXXX.new), then STAGE_PATTERN's
YOUNG_STAGE_S = 3600  # a .new folder older than this was left by a kill (a run renames it within microseconds)
SHOWN_PREFIX = "report-"  # a staging folder .images.XXXX.partial is shown as images/report-XXXX (PICTURE_FOLDER)
# the temp files of the page and metrics.json (atomic_files.replaced_atomically), which a kill mid-write leaves
PAGE_PARTIALS = tuple(f".{name}.*{PARTIAL_SUFFIX}" for name in ("index.html", "metrics.json"))


def cannot_write(out: Path, exc: OSError) -> Pix2PixError:
    """The one line for a report folder that cannot take the report (a full disk, no permission)."""
    return Pix2PixError(f"cannot write the report in {out}: {exc.strerror or exc}; free some space or give another "
                        "--out")


@dataclasses.dataclass
class StagedRow:
    """One example of the report: its name, its pictures' file names in its folder (column title -> file) and its
    own scores."""

    name: str
    files: dict[str, str]
    scores: dict[str, float]


def picture_file(index: int, name: str, column: str) -> str:
    """A safe, unique file name for an example's picture in one column (report_pictures.PICTURE matches it)."""
    stem = f"{index:04d}_" + re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(name).stem)[:60]
    return f"{stem}_{re.sub(r'[^a-z0-9]+', '_', column.lower())}.png"


class ReportStage:
    """The staging folder of one report being made in `out`: `add` saves a row's pictures there, `showing` moves
    it into images/ for the block that writes the page. Made by `staged_report`."""

    def __init__(self, out: Path, folder: Path, lock_fd: Optional[int]):
        self.out, self.folder, self.lock_fd = out, folder, lock_fd
        self.name = SHOWN_PREFIX + folder.name.split(".")[2]  # its folder's name in images/ once shown
        self.rows = 0
        self.files: list[str] = []
        self.shown = False

    def add(self, name: str, pictures: dict[str, Image.Image], scores: dict[str, float]) -> StagedRow:
        """Save one example's pictures (column title -> picture) into the staging folder; its row for the page."""
        files = {column: picture_file(self.rows, name, column) for column in pictures}
        self.rows += 1
        for column, picture in pictures.items():
            try:
                save_image_atomically(picture, self.folder / files[column])
            except OSError as exc:  # a full disk an hour into a run: one line, not a traceback
                raise cannot_write(self.out, exc) from None
            self.files.append(files[column])
        return StagedRow(name, files, scores)

    def link(self, file: str) -> str:
        """Where the page finds one of its pictures, relative to the report folder."""
        return f"images/{self.name}/{file}"

    @contextlib.contextmanager
    def showing(self) -> Iterator[None]:
        """The staging folder moved to images/NAME (one rename) for the block, which replaces index.html with the
        page showing it: that replace is the switch. The earlier page's pictures are removed after it; a block
        that raises leaves the earlier page showing its own, and this folder is removed with the stage. The lock
        moves with the folder and is held until the stage ends: another report's clean-up leaves it alone."""
        previous, previous_folder = shown_pictures(self.out) or [], shown_folder(self.out)
        images = self.out / "images"
        images.mkdir(exist_ok=True)
        os.utime(self.folder)  # where locks do not work, its age tells a clean-up it may be about to be shown
        os.rename(self.folder, images / self.name)
        self.folder = images / self.name
        yield
        self.shown = True
        if PICTURE_FOLDER.fullmatch(previous_folder.name):
            shutil.rmtree(previous_folder, ignore_errors=True)
        else:  # an earlier version's report, straight in images/: its own pictures only, not a user's beside them
            for file in previous:
                (previous_folder / file).unlink(missing_ok=True)

    def close(self) -> None:
        """Remove the pictures unless a page shows them, and let go of the lock. The page in place is read too: a
        Ctrl-C after `showing`'s block replaced it, before `shown` was set, removed the pictures it shows."""
        if not self.shown and shown_folder(self.out) != self.folder:
            shutil.rmtree(self.folder, ignore_errors=True)
        if self.lock_fd is not None:
            unlock(self.lock_fd, self.folder / STAGE_LOCK)


@contextlib.contextmanager
def staged_report(out: Path) -> Iterator[ReportStage]:
    """A new staging folder in `out` (made if missing) for the duration of the block, removed after it whatever
    happens; staging folders that killed runs left in `out` are removed first. When the block raises, the folders
    made for `out` are removed again if they are empty (a `test` that fails leaves no new empty folder).
    A folder that cannot be written (no permission, a full disk) is a Pix2PixError."""
    created = missing_folders(out)
    stage: Optional[ReportStage] = None
    done = False
    try:
        try:
            out.mkdir(parents=True, exist_ok=True)
            remove_abandoned_stages(out)
            stage = ReportStage(out, *_new_locked_stage(out))
        except OSError as exc:
            raise cannot_write(out, exc) from None
        yield stage
        done = True
    finally:
        if stage is not None:
            stage.close()
        if not done:
            remove_empty(created)


def _new_locked_stage(out: Path) -> tuple[Path, Optional[int]]:
    """A new staging folder in `out` and its held lock (None where locks do not work: no fcntl on Windows, some
    network file systems; that folder is then unguarded). It is made and locked under a name no remover looks at
    (.images.XXXX.new) and only then renamed to its STAGE_PATTERN name: another `test` into `out` removed a
    staging folder made a moment before its lock was taken, and the run failed later saying to free some space."""
    young = Path(tempfile.mkdtemp(prefix=".images.", suffix=NEW_SUFFIX, dir=out))
    lock_fd: Optional[int] = None
    try:
        lock_fd = _lock(young)
        folder = young.with_name(young.name[:-len(NEW_SUFFIX)] + ".partial")
        os.rename(young, folder)
    except BaseException:
        shutil.rmtree(young, ignore_errors=True)
        if lock_fd is not None:
            os.close(lock_fd)
        raise
    return folder, lock_fd


def _lock(folder: Path) -> Optional[int]:
    """The staging folder's lock, held while its run fills it; None where locks do not work (NO_LOCKS; no remover
    holds a folder this young). Any other error (a full disk, no permission) is raised: it is no reason to go on
    unguarded."""
    return attempt_lock(folder / STAGE_LOCK).fd


def remove_abandoned_stages(out: Path) -> list[Path]:
    """Remove the staging folders in `out` whose lock no running report holds (a kill left them) and, where
    locks do not work, every one; also those a kill left while one was being made (.images.XXXX.new, an hour
    old: a run holds that name for a moment only), the picture folders in images/ that no page shows (a kill
    between a report's move into images/ and its page, or between its page and removing the earlier report's),
    and the temp files of index.html and metrics.json a kill mid-write left (`_remove_page_partials`).
    The removed ones: a folder rmtree could not remove is not."""
    now = time.time()
    partials = [path for pattern in PAGE_PARTIALS for path in out.glob(pattern)]  # before the locks are looked at
    found = list(out.glob(STAGE_PATTERN))
    found += [folder for folder in out.glob(f".images.*{NEW_SUFFIX}") if _older(folder, now, YOUNG_STAGE_S)]
    found += [folder for folder in out.glob(f"images/{SHOWN_PREFIX}*") if PICTURE_FOLDER.fullmatch(folder.name)]
    removed, none_running = [], True
    for folder in sorted(found):
        if not folder.is_dir() or folder.is_symlink():
            continue
        try:
            attempt = attempt_lock(folder / STAGE_LOCK)
        except OSError:  # gone meanwhile (another report removed it, or its own report showed it), or not ours to
            none_running = False  # touch: left as it is, and maybe a report is running
            continue
        if attempt.outcome is Outcome.HELD:
            none_running = False
            continue  # another `test` into this folder is filling it, or about to show it
        fd = attempt.fd  # None where locks do not work: nothing tells a running report's staging folder from a kill's
        none_running = none_running and fd is not None
        if folder.parent == out or not _still_shown(out, folder, fd is not None, now):
            shutil.rmtree(folder, ignore_errors=True)
        if fd is not None:
            unlock(fd, folder / STAGE_LOCK)
        if not os.path.lexists(folder):
            removed.append(folder)
    return removed + _remove_page_partials(partials, none_running, now)


def _remove_page_partials(partials: list[Path], none_running: bool, now: float) -> list[Path]:
    """Remove the page's and metrics.json's temp files (`partials`, found before the stage locks were looked at)
    when no report was running in the folder then (a report writes them only while it holds its stage's lock, and
    every stage lock was free), else once YOUNG_STAGE_S old (a report writes one within milliseconds): where locks
    do not work, or beside a running report. The removed ones."""
    removed = []
    for path in partials:
        if path.is_file() and not path.is_symlink() and (none_running or _older(path, now, YOUNG_STAGE_S)):
            with contextlib.suppress(OSError):  # not ours to remove: left, as a folder rmtree cannot remove
                path.unlink()
                removed.append(path)
    return removed


def _still_shown(out: Path, folder: Path, locked: bool, now: float) -> bool:
    """Whether a picture folder in images/ whose lock was free is wanted: the one the page shows (read only now: a
    report lets go of its lock once its page is written), or, where locks do not work, one less than
    YOUNG_STAGE_S old (a running report's about to be shown, as far as anyone can tell)."""
    return folder == shown_folder(out) or (not locked and not _older(folder, now, YOUNG_STAGE_S))


def _older(path: Path, now: float, seconds: float) -> bool:
    """Whether `path` was last changed more than `seconds` before `now` (False when it cannot be read)."""
    try:
        return now - path.lstat().st_mtime > seconds
    except OSError:
        return False
