"""Unpacking a dataset zip that a user uploaded, without trusting anything inside it.

A zip is a list of names and sizes chosen by whoever made it. Before writing a byte this refuses
names that climb out of the destination (`../`, absolute paths, drive letters, backslash tricks),
symbolic links, encrypted members, and archives whose declared file count or total size is over the
limits; while writing it counts the bytes really produced, so a member that lies about its size cannot
fill the disk. Members that are not images are skipped and counted. On any refusal nothing extracted
is left behind.

The same extractor unpacks the CycleGAN dataset zips of `pix2pix data` (a few GB): the limits are
parameters, and `place` keeps only the members a layout wants (trainA/, trainB/, ...) at the paths it wants.
"""

from __future__ import annotations

import lzma
import os
import re
import shutil
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Optional, Union

from .errors import Pix2PixError
from .images import is_image_file

MAX_TOTAL_BYTES = 2_000_000_000  # 2 GB uncompressed: far above the facades set (~30 MB) or a 10k-photo folder
MAX_FILES = 20_000  # members, directories not counted
CHUNK_BYTES = 1 << 20
JUNK_PARTS = ("__MACOSX", ".DS_Store", "Thumbs.db")  # what zip tools on macOS/Windows add
DRIVE = re.compile(r"^[A-Za-z]:")
MAX_NAME_BYTES = 255  # one file or folder name: the limit of ext4, NTFS and APFS
MAX_PATH_CHARS = 1024  # a whole member path


class UnpackWriteError(Pix2PixError):
    """A member could not be written (a full disk, a name the file system refuses): no fault found in the zip."""


@dataclass
class ExtractResult:
    folder: Path  # the dataset root: dest_dir, or its one top-level folder when the zip wraps everything in one
    images: int  # image files written
    skipped: int  # members left out: not images, or macOS/Windows junk


Placer = Callable[[PurePosixPath], Optional[PurePosixPath]]
Progress = Callable[[int, int], None]


def extract_dataset_zip(zip_path: Union[str, os.PathLike], dest_dir: Union[str, os.PathLike],
                        max_total_bytes: int = MAX_TOTAL_BYTES, max_files: int = MAX_FILES,
                        place: Optional[Placer] = None, progress: Optional[Progress] = None) -> ExtractResult:
    """Safely extract the images of `zip_path` into `dest_dir` (missing or empty); Pix2PixError if refused.

    `place(path)` says where a member's safe relative path goes under `dest_dir`, or None to skip it (counted
    as skipped); the default keeps the zip's own paths. Every member is checked before anything is written,
    kept or not: one hostile name refuses the whole zip. `progress(done, total)` is called as each member starts."""
    zip_path, dest = Path(zip_path), Path(dest_dir)
    if not zip_path.is_file():
        raise Pix2PixError(f"zip file not found: {zip_path}")
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise Pix2PixError(f"cannot extract into {dest}: it exists and is not an empty folder")
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise Pix2PixError(f"{zip_path.name}: not a readable zip file ({exc})") from None
    created = not dest.exists()
    try:
        with archive:
            members = _checked_members(archive, zip_path.name, max_total_bytes, max_files)
            dest.mkdir(parents=True, exist_ok=True)
            result = _extract(archive, members, zip_path.name, dest.resolve(), max_total_bytes, place, progress)
    except BaseException:
        _remove_contents(dest, remove_folder=created)
        raise
    if result.images == 0:
        _remove_contents(dest, remove_folder=created)
        raise Pix2PixError(f"{zip_path.name}: holds no image files ({result.skipped} other file(s) skipped)")
    return result


def _checked_members(archive: zipfile.ZipFile, name: str, max_total_bytes: int,
                     max_files: int) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    """Every file member with its safe relative path; raise on the first unsafe one or a limit."""
    files = [info for info in archive.infolist() if not info.is_dir()]
    if len(files) > max_files:
        raise Pix2PixError(f"{name}: holds {len(files):,} files, above the limit of {max_files:,}")
    declared = sum(info.file_size for info in files)
    if declared > max_total_bytes:
        raise Pix2PixError(f"{name}: unpacks to {declared:,} bytes, above the limit of {max_total_bytes:,} "
                           "(zip bomb or too large a dataset)")
    members = []
    for info in files:
        shown = _shown(info.filename)
        relative = safe_member_path(info.filename)
        if relative is None:
            raise Pix2PixError(f"{name}: unsafe path {shown} (outside the destination); refusing the zip")
        if len(info.filename) > MAX_PATH_CHARS or any(len(p.encode()) > MAX_NAME_BYTES for p in relative.parts):
            raise Pix2PixError(f"{name}: the member name {shown} is too long (at most {MAX_NAME_BYTES} bytes per "
                               f"name, {MAX_PATH_CHARS} characters per path); refusing the zip")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise Pix2PixError(f"{name}: {shown} is a symbolic link; refusing the zip")
        if info.flag_bits & 0x1:
            raise Pix2PixError(f"{name}: {shown} is encrypted; upload a zip without a password")
        members.append((info, relative))
    _refuse_file_folder_clash(members, name)
    return members


def _refuse_file_folder_clash(members: list[tuple[zipfile.ZipInfo, PurePosixPath]], name: str) -> None:
    """`a.jpg` and `a.jpg/b.jpg` in one zip cannot both be written: refuse before writing either."""
    files = {relative for _, relative in members}
    for _, relative in members:
        for parent in relative.parents:
            if parent in files:
                raise Pix2PixError(f"{name}: {_shown(str(parent))} is both a file and a folder; refusing the zip")


def _shown(filename: str, limit: int = 80) -> str:
    """A member name for a message: quoted, and cut short (a zip can hold a name of 64 KB)."""
    return repr(filename) if len(filename) <= limit else repr(filename[:limit]) + "..."


def safe_member_path(filename: str) -> PurePosixPath | None:
    """The member's path relative to the destination, or None if it could land anywhere else.

    Backslashes count as separators (zips made on Windows, and tools that honour them), so
    `..\\evil.png` is caught as well as `../evil.png`.
    """
    text = filename.replace("\\", "/")
    if not text or text.startswith("/") or DRIVE.match(text) or "\x00" in text:
        return None
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        return None
    return PurePosixPath(*parts)


def _is_junk(relative: PurePosixPath) -> bool:
    return any(part in JUNK_PARTS or part.startswith("._") for part in relative.parts)


def _extract(archive: zipfile.ZipFile, members: list[tuple[zipfile.ZipInfo, PurePosixPath]], name: str,
             dest: Path, max_total_bytes: int, place: Optional[Placer] = None,
             progress: Optional[Progress] = None) -> ExtractResult:
    written_total, images, skipped = 0, 0, 0
    tops: set[str] = set()
    seen: set[PurePosixPath] = set()
    for done, (info, relative) in enumerate(members, 1):
        if progress is not None:
            progress(done, len(members))
        if _is_junk(relative) or not is_image_file(relative.name):
            skipped += 1
            continue
        if place is not None:
            placed = place(relative)
            relative = _placed(placed, info.filename, name) if placed is not None else None
        if relative is None or relative in seen:
            skipped += 1
            continue
        seen.add(relative)
        target = dest.joinpath(*relative.parts)
        if not target.resolve().is_relative_to(dest):  # belt and braces: a folder member that is a link
            raise Pix2PixError(f"{name}: unsafe path {_shown(info.filename)}; refusing the zip")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as source, open(target, "wb") as sink:
                for chunk in _chunks(source):
                    written_total += len(chunk)
                    if written_total > max_total_bytes:
                        raise Pix2PixError(f"{name}: unpacks to more than {max_total_bytes:,} bytes "
                                           "(its sizes are false: a zip bomb); refusing it")
                    sink.write(chunk)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
            raise Pix2PixError(f"{name}: corrupt member {_shown(info.filename)} ({exc})") from None
        except NotImplementedError as exc:
            raise Pix2PixError(f"{name}: {_shown(info.filename)} uses an unsupported compression ({exc})") from None
        except RuntimeError as exc:  # zipfile's "File is encrypted, password required"
            raise Pix2PixError(f"{name}: cannot read {_shown(info.filename)} ({exc})") from None
        except OSError as exc:  # a name the file system refuses, a full disk
            raise UnpackWriteError(f"{name}: cannot write {_shown(info.filename)} "
                                   f"({exc.strerror or 'write error'})") from None
        images += 1
        tops.add(relative.parts[0] if len(relative.parts) > 1 else "")
    # "facades.zip" usually holds one folder "facades/" with train/ and val/: use that as the dataset root
    folder = dest / tops.pop() if len(tops) == 1 and "" not in tops else dest
    return ExtractResult(folder=folder, images=images, skipped=skipped)


def _placed(placed: PurePosixPath, filename: str, name: str) -> PurePosixPath:
    """A path a `place` function gave, held to the same rule as a member's own: relative, no `..`."""
    safe = safe_member_path(placed.as_posix())
    if safe is None:
        raise Pix2PixError(f"{name}: {_shown(filename)} would be placed outside the destination; refusing the zip")
    return safe


def _chunks(source):
    """The member's bytes, CHUNK_BYTES at a time; a damaged compressed stream is zipfile.BadZipFile (zlib and
    lzma raise their own errors, bz2 an OSError that would read as a write error)."""
    while True:
        try:
            chunk = source.read(CHUNK_BYTES)
        except (zlib.error, lzma.LZMAError, OSError) as exc:
            raise zipfile.BadZipFile(f"damaged data: {exc}") from None
        if not chunk:
            return
        yield chunk


def _remove_contents(dest: Path, remove_folder: bool) -> None:
    """Undo a refused extraction: the folder back to empty (or gone, if this call created it)."""
    if not dest.is_dir():
        return
    if remove_folder:
        shutil.rmtree(dest, ignore_errors=True)
        return
    for child in dest.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
