"""A report's new pictures, kept out of its images/ until its page is written: an earlier report stays whole.

`test` into a folder holding an earlier report saved each new picture into images/ as it went, under the names the
earlier page shows (0000_x_output.png), so a run cut short (a Ctrl-C, a crash) left that page showing the new run's
pictures as its own. Now they wait in a staging folder inside the report folder (.images.XXXX.partial/, on the same
file system, so moving them is a rename) and enter images/ only once the work is done, just before the new page
(evaluate.write_page); a run that stops before that removes its staging folder, and one a kill left behind is
removed by the next report into the folder. Each picture is on disk once staged: the report keeps none in memory
(evaluate keeps what its realism metrics read, when they run: a colorizer's outputs and truths, facades' smaller
copies at the segmenter's size).
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

from .atomic_files import missing_folders, remove_empty
from .errors import Pix2PixError
from .file_lock import Outcome, attempt_lock, unlock
from .images import save_image_atomically

STAGE_PATTERN = ".images.*.partial"  # the staging folders' names (tempfile.mkdtemp's random part in between)
STAGE_LOCK = ".stage.lock"  # held by the run filling a staging folder: the next report removes only unheld ones
NEW_SUFFIX = ".new"  # a staging folder's name until its lock is held (.images.XXXX.new), then STAGE_PATTERN's
YOUNG_STAGE_S = 3600  # a .new folder older than this was left by a kill (a run renames it within microseconds)


def cannot_write(out: Path, exc: OSError) -> Pix2PixError:
    """The one line for a report folder that cannot take the report (a full disk, no permission)."""
    return Pix2PixError(f"cannot write the report in {out}: {exc.strerror or exc}; free some space or give another "
                        "--out")


@dataclasses.dataclass
class StagedRow:
    """One example of the report: its name, its pictures' file names in images/ (column title -> file) and its
    own scores."""

    name: str
    files: dict[str, str]
    scores: dict[str, float]


def picture_file(index: int, name: str, column: str) -> str:
    """A safe, unique file name for an example's picture in one column (report_pictures.PICTURE matches it)."""
    stem = f"{index:04d}_" + re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(name).stem)[:60]
    return f"{stem}_{re.sub(r'[^a-z0-9]+', '_', column.lower())}.png"


class ReportStage:
    """The staging folder of one report being made in `out`: `add` saves a row's pictures there, `move_into`
    puts them into images/ (call it just before writing the page). Made by `staged_report`."""

    def __init__(self, out: Path, folder: Path, lock_fd: Optional[int]):
        self.out, self.folder, self.lock_fd = out, folder, lock_fd
        self.rows = 0
        self.files: list[str] = []

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

    def move_into(self, images: Path) -> None:
        """Every staged picture into `images` (replacing any of the same name): renames, no copies."""
        images.mkdir(parents=True, exist_ok=True)
        for file in self.files:
            os.replace(self.folder / file, images / file)


@contextlib.contextmanager
def staged_report(out: Path) -> Iterator[ReportStage]:
    """A new staging folder in `out` (made if missing) for the duration of the block, removed after it whatever
    happens; staging folders that killed runs left in `out` are removed first. When the block raises, the folders
    made for `out` are removed again if they are empty (a `test` that fails leaves no new empty folder).
    A folder that cannot be written (no permission, a full disk) is a Pix2PixError."""
    created = missing_folders(out)
    folder: Optional[Path] = None
    lock_fd: Optional[int] = None
    done = False
    try:
        try:
            out.mkdir(parents=True, exist_ok=True)
            remove_abandoned_stages(out)
            folder, lock_fd = _new_locked_stage(out)
        except OSError as exc:
            raise cannot_write(out, exc) from None
        yield ReportStage(out, folder, lock_fd)
        done = True
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
            if lock_fd is not None:
                unlock(lock_fd, folder / STAGE_LOCK)
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
    old: a run holds that name for a moment only). The removed ones: a folder rmtree could not remove is not."""
    now = time.time()
    found = list(out.glob(STAGE_PATTERN))
    found += [folder for folder in out.glob(f".images.*{NEW_SUFFIX}") if _older(folder, now, YOUNG_STAGE_S)]
    removed = []
    for folder in sorted(found):
        if not folder.is_dir() or folder.is_symlink():
            continue
        try:
            attempt = attempt_lock(folder / STAGE_LOCK)
        except OSError:
            continue  # gone meanwhile (another report removed it), or not ours to touch: left as it is
        if attempt.outcome is Outcome.HELD:
            continue  # another `test` into this folder is filling it now
        fd = attempt.fd  # None where locks do not work: nothing tells a running report's folder, removed as a kill's
        shutil.rmtree(folder, ignore_errors=True)
        if fd is not None:
            unlock(fd, folder / STAGE_LOCK)
        if not os.path.lexists(folder):
            removed.append(folder)
    return removed


def _older(path: Path, now: float, seconds: float) -> bool:
    """Whether `path` was last changed more than `seconds` before `now` (False when it cannot be read)."""
    try:
        return now - path.lstat().st_mtime > seconds
    except OSError:
        return False
