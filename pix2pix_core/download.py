"""`pix2pix data facades|food`: get the two showcase datasets from their public sources.

Downloads with a progress bar into `<out>/.downloads/<name>.part`, resumes a partial file with an HTTP
Range request, checks the size and the checksums we know, then unpacks (tarfile's "data" filter: no
absolute paths, no `..`, no links or devices) into the layout `pix2pix train` expects:

- facades: `<out>/facades/{train,val,test}/*.jpg`, 512x256 A|B pairs (A = photo, B = label map), as in
  the official pix2pix archive (400 / 100 / 106 pairs).
- food:    `<out>/food/{train,val}/*.jpg`, colour photos of Food-101 (a fixed pseudo-random split spread
  over all 101 classes; `--limit N` keeps N training photos and N/25 for validation).

Without a network the command fails at once with one line saying where to get the archive by hand;
`--from FILE` unpacks an archive downloaded elsewhere (the same checks apply).
"""

from __future__ import annotations

import hashlib
import heapq
import http.client
import os
import shutil
import sys
import tarfile
import urllib.error
import urllib.request
import uuid
import zlib
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Callable, Optional, TextIO

from .errors import Pix2PixError

CHUNK = 1 << 20
TIMEOUT_S = 10.0  # connect / read timeout: an unreachable host fails within this, not after minutes


@dataclass(frozen=True)
class Source:
    """One public dataset archive and what we know about it."""

    name: str
    url: str
    approx_bytes: int  # shown before the download, and a sanity bound when `size` is unknown
    size: Optional[int]  # exact byte count, when known from a trusted download
    sha256: Optional[str]  # when known from a trusted download
    md5: Optional[str]  # some publishers (and torchvision) list only an MD5
    licence: str
    credit: str


# Known values. A checksum we could not take from a trusted download of our own is left None, never
# guessed: fill `size` and `sha256` from a trusted copy (`sha256sum facades.tar.gz`) to make the check
# strict. Until then the download is checked against the server's Content-Length, a loose size bound, and
# the checksums that are known (Food-101's MD5 is the one torchvision.datasets.Food101 verifies; its size,
# 4,996,278,331 bytes, is the Content-Length two independent public download logs show).
# The SHA-256 of every download is printed so it can be compared and recorded here.
SOURCES: dict[str, Source] = {
    "facades": Source(
        name="facades",
        url="http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/facades.tar.gz",
        approx_bytes=29_000_000, size=None, sha256=None, md5=None,
        licence="CMP Facade Database: for research use; cite the paper below when you use the data.",
        credit="R. Tylecek and R. Sara, \"Spatial Pattern Templates for Recognition of Objects with Regular "
               "Structure\", GCPR 2013 (CMP Facade Database); pix2pix A|B layout by P. Isola et al., CVPR 2017."),
    "food": Source(
        name="food",
        url="http://data.vision.ee.ethz.ch/cvl/food-101.tar.gz",
        approx_bytes=5_000_000_000, size=4_996_278_331, sha256=None, md5="85eeb15f3717b99a5da872d97d918f87",
        licence="Food-101: the images come from foodspotting.com and belong to their owners; research and "
                "fair use only.",
        credit="L. Bossard, M. Guillaumin, L. Van Gool, \"Food-101 - Mining Discriminative Components with "
               "Random Forests\", ECCV 2014."),
}
FOOD_TOTAL = 101_000  # images in Food-101
FOOD_VAL_SHARE = 25  # --limit N keeps N train photos and N // 25 val photos (the 5,000 / 200 of the studio)


def describe_size(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB"


def print_terms(source: Source, out: Optional[TextIO] = None) -> None:
    out = out or sys.stdout
    print(f"{source.name}: {source.licence}", file=out)
    print(f"  credit: {source.credit}", file=out)


# ------------------------------------------------------------------------------------------ download
def _unreachable(source: Source, url: str, reason: object, out: Path) -> Pix2PixError:
    host = urllib.request.urlparse(url).netloc or url
    return Pix2PixError(f"cannot reach {host} ({reason}); download it by hand from {url} and unpack it to "
                        f"{out / source.name} with `pix2pix data {source.name} --from FILE --out {out}`")


def download(source: Source, part: Path, url: Optional[str] = None, progress: bool = True,
             timeout: float = TIMEOUT_S) -> Path:
    """Download `url` (default: the source's) into `part` (resuming what is there), verify it and return
    the verified file (`part` without its `.part` suffix). A file that fails a check is removed."""
    url = url or source.url
    have = part.stat().st_size if part.exists() else 0
    if source.size is not None and have > source.size:
        part.unlink()
        have = 0
    request = urllib.request.Request(url, headers={"User-Agent": "pix2pix-studio"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    out = part.parent.parent
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the partial file already holds everything
            return _finish(source, part, expected=None)
        raise _unreachable(source, url, f"HTTP {exc.code}", out) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise _unreachable(source, url, getattr(reason, "strerror", None) or reason, out) from None
    with response:
        if have and response.status != 206:  # the server ignored the Range: start again
            have = 0
        length = response.headers.get("Content-Length")
        expected = have + int(length) if length is not None else None
        mode = "ab" if have else "wb"
        part.parent.mkdir(parents=True, exist_ok=True)
        try:
            from tqdm import tqdm

            bar = tqdm(total=expected, initial=have, unit="B", unit_scale=True, unit_divisor=1024,
                       desc=source.name, disable=not progress)
            with open(part, mode) as f, bar:
                while True:
                    chunk = response.read(CHUNK)
                    if not chunk:
                        break
                    f.write(chunk)
                    bar.update(len(chunk))
        except (OSError, http.client.HTTPException) as exc:  # a cut connection: keep the .part for the next try
            raise _stopped(url, part, exc) from None
    if expected is not None and part.stat().st_size < expected:
        raise _stopped(url, part, "the connection closed early")
    return _finish(source, part, expected, progress)


def _stopped(url: str, part: Path, reason: object) -> Pix2PixError:
    return Pix2PixError(f"download of {url} stopped ({reason}); run the same command again to resume from "
                        f"{describe_size(part.stat().st_size if part.exists() else 0)}")


def _finish(source: Source, part: Path, expected: Optional[int], progress: bool = False) -> Path:
    done = part.with_suffix("")
    part.replace(done)
    verify(source, done, expected, progress=progress)
    return done


PROGRESS_MIN_BYTES = 100_000_000  # archives above this show a bar while checked and unpacked (food: 5 GB)


def file_digests(path: Path, progress: bool = False) -> tuple[str, str]:
    """SHA-256 and MD5 of a file in one read (with a bar for a large one: the food archive takes a minute)."""
    from tqdm import tqdm

    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    size = path.stat().st_size
    with open(path, "rb") as f, tqdm(total=size, unit="B", unit_scale=True, unit_divisor=1024, desc="checking",
                                     disable=not progress or size < PROGRESS_MIN_BYTES, leave=False) as bar:
        while chunk := f.read(CHUNK):
            sha.update(chunk)
            md5.update(chunk)
            bar.update(len(chunk))
    return sha.hexdigest(), md5.hexdigest()


def verify(source: Source, path: Path, expected: Optional[int] = None, out: Optional[TextIO] = None,
           remove: bool = True, progress: bool = False) -> str:
    """Check the archive's size and known checksums; on a mismatch remove it (a download, not a file the
    user gave) and raise. Returns its SHA-256."""
    out = out or sys.stdout
    size = path.stat().st_size
    problems = []
    if expected is not None and size != expected:
        problems.append(f"{size} bytes, the server announced {expected}")
    if source.size is not None and size != source.size:
        problems.append(f"{size} bytes, expected {source.size}")
    if source.size is None and not source.approx_bytes / 2 <= size <= source.approx_bytes * 2:
        problems.append(f"{describe_size(size)}, expected about {describe_size(source.approx_bytes)}")
    sha = md5 = ""
    if not problems:
        sha, md5 = file_digests(path, progress)
        if source.sha256 is not None and sha != source.sha256.lower():
            problems.append(f"SHA-256 {sha}, expected {source.sha256}")
        if source.md5 is not None and md5 != source.md5.lower():
            problems.append(f"MD5 {md5}, expected {source.md5}")
    if problems:
        if remove:
            path.unlink(missing_ok=True)
        raise Pix2PixError(f"{path.name} failed its check ({'; '.join(problems)}); "
                           + ("it was removed, " if remove else "") + "nothing was unpacked")
    known = [k for k, v in (("size", source.size), ("SHA-256", source.sha256), ("MD5", source.md5)) if v]
    print(f"{path.name}: {describe_size(size)}, SHA-256 {sha}"
          + (f" ({', '.join(known)} verified)" if known else " (no published checksum to compare with)"), file=out)
    return sha


# ------------------------------------------------------------------------------------------ unpack
def _members(archive: tarfile.TarFile):
    """Regular files only, with their normalised posix paths (links, devices and odd paths skipped; the
    "data" filter at extraction refuses anything that would still escape)."""
    for member in archive:
        if not member.isfile():
            continue
        path = PurePosixPath(member.name)
        if path.is_absolute() or ".." in path.parts:
            continue
        yield member, path


def unpack_facades(archive_path: Path, dest: Path) -> dict[str, int]:
    """facades/{train,val,test}/*.jpg of the pix2pix archive -> dest/{train,val,test}/."""
    counts: dict[str, int] = {}
    with tarfile.open(archive_path, "r:*") as archive:
        for member, path in _members(archive):
            if len(path.parts) < 2 or path.parts[-2] not in ("train", "val", "test") \
                    or path.suffix.lower() not in (".jpg", ".jpeg", ".png"):
                continue
            split = path.parts[-2]
            member.name = f"{split}/{path.name}"
            archive.extract(member, dest, filter="data")
            counts[split] = counts.get(split, 0) + 1
    if not counts.get("train"):
        raise Pix2PixError(f"{archive_path.name} holds no train/*.jpg: not the pix2pix facades archive")
    return counts


def _rank(name: str) -> int:
    return int.from_bytes(hashlib.sha1(name.encode()).digest()[:8], "big")


def unpack_food(archive_path: Path, dest: Path, limit: Optional[int] = None, progress: bool = False) -> dict[str, int]:
    """food-101/images/<class>/<id>.jpg -> dest/{train,val}/f101-<class>-<id>.jpg, colour photos only.

    A fixed pseudo-random order (a hash of the name) spreads the split and any --limit over all classes;
    one pass over the (5 GB) archive."""
    from PIL import Image

    n_val = max(1, limit // FOOD_VAL_SHARE) if limit else None
    wanted = limit + n_val if limit else None
    staging = dest / ".unpacking"
    heap: list[tuple[int, str]] = []  # (-rank, name): the `wanted` lowest ranks seen so far
    from tqdm import tqdm

    large = archive_path.stat().st_size >= PROGRESS_MIN_BYTES
    with tarfile.open(archive_path, "r:*") as archive, tqdm(unit=" files", desc="unpacking", leave=False,
                                                           disable=not progress or not large) as bar:
        for member, path in _members(archive):
            bar.update()
            if "images" not in path.parts or len(path.parts) < 3 or path.suffix.lower() != ".jpg":
                continue
            flat = f"f101-{path.parts[-2]}-{path.stem}.jpg"
            rank = _rank(flat)
            if wanted and len(heap) >= wanted and rank >= -heap[0][0]:
                continue
            member.name = flat
            archive.extract(member, staging, filter="data")
            file = staging / flat
            try:
                with Image.open(file) as image:
                    colour = image.mode in ("RGB", "YCbCr", "CMYK")
            except Exception:  # a damaged photo is skipped, not fatal
                colour = False
            if not colour:
                file.unlink()
                continue
            heapq.heappush(heap, (-rank, flat))
            if wanted and len(heap) > wanted:
                (staging / heapq.heappop(heap)[1]).unlink()
    kept = sorted((-negative, staging / flat) for negative, flat in heap)
    if not kept:
        raise Pix2PixError(f"{archive_path.name} holds no food-101/images/<class>/*.jpg: not the Food-101 archive")
    if wanted:
        val = kept[:n_val]
        train = kept[n_val:]
    else:
        n_val = max(1, len(kept) // FOOD_VAL_SHARE)
        val, train = kept[:n_val], kept[n_val:]
    for split, files in (("train", train), ("val", val)):
        (dest / split).mkdir(parents=True, exist_ok=True)
        for _, file in files:
            file.replace(dest / split / file.name)
    shutil.rmtree(staging, ignore_errors=True)
    return {"train": len(train), "val": len(val)}


# ------------------------------------------------------------------------------------------ the command
def get_dataset(name: str, out: Path, from_file: Optional[Path] = None, limit: Optional[int] = None,
                url: Optional[str] = None, keep_archive: bool = False, progress: bool = True,
                sources: Optional[dict[str, Source]] = None, timeout: float = TIMEOUT_S,
                log: Optional[TextIO] = None) -> Path:
    """Download (or take `from_file`), verify and unpack dataset `name` into `out/name`; returns that folder."""
    sources = sources or SOURCES
    log = log or sys.stdout
    if name not in sources:
        raise Pix2PixError(f"unknown dataset {name!r}; choose one of {', '.join(sources)}")
    if limit is not None and limit < 1:
        raise Pix2PixError("--limit must be at least 1")
    source = sources[name]
    out = Path(out)
    final = out / name
    if (final / "train").is_dir() and any((final / "train").iterdir()):
        print(f"{final} is already there ({_count(final)}); remove it to get it again", file=log)
        return final
    if final.exists() and (not final.is_dir() or any(final.iterdir())):
        raise Pix2PixError(f"{final} exists but holds no train/ images; move it away (nothing of it is replaced)")
    print_terms(source, log)
    if from_file is not None:
        archive = Path(from_file)
        if not archive.is_file():
            raise Pix2PixError(f"--from: file not found: {archive}")
        verify(source, archive, out=log, remove=False, progress=progress)
    else:
        print(f"downloading {source.url if url is None else url} (about {describe_size(source.approx_bytes)})"
              + ("; this is large and takes a while, Ctrl-C stops it and the same command resumes" if
                 source.approx_bytes >= 1e9 else ""), file=log, flush=True)
        archive = download(source, out / ".downloads" / f"{name}.tar.gz.part", url=url, progress=progress,
                           timeout=timeout)
    # unpack next to the final folder, then move it into place: an interrupted unpack leaves no half dataset
    work = out / f".{name}-{uuid.uuid4().hex[:8]}"
    try:
        try:
            counts = unpack_facades(archive, work) if name == "facades" else unpack_food(archive, work, limit, progress)
        except (tarfile.TarError, EOFError, zlib.error) as exc:
            if from_file is None:
                archive.unlink(missing_ok=True)  # useless: the next run downloads it again
            reason = " ".join(str(exc).split())  # tarfile's error lists one line per method tried
            then = "get it again" if from_file is not None else "it was deleted; run the command again"
            raise Pix2PixError(f"{archive.name}: not a readable {name} archive (truncated or corrupt: {reason}); "
                               f"{then}") from None
        except OSError as exc:
            raise Pix2PixError(f"could not unpack {archive.name} into {out}: {exc.strerror or exc}") from None
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.is_dir():
            final.rmdir()  # empty (checked above); anything else there stops the move
        work.replace(final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if from_file is None and not keep_archive:
        archive.unlink(missing_ok=True)
        try:
            archive.parent.rmdir()
        except OSError:
            pass
    print(f"{name}: {', '.join(f'{k} {v}' for k, v in counts.items())} images in {final}", file=log)
    return final


def _count(folder: Path) -> str:
    parts = []
    for split in ("train", "val", "test"):
        if (folder / split).is_dir():
            parts.append(f"{split} {sum(1 for _ in (folder / split).iterdir())}")
    return ", ".join(parts)


def add_command(sub, formatter: Callable) -> None:
    p = sub.add_parser("data", help="download a showcase dataset (facades, food) into data/",
                       description="Download, verify and unpack the facades (29 MB) or Food-101 (5 GB) dataset "
                                   "into the layout `train` expects. Licences and credits are printed.",
                       formatter_class=formatter)
    p.add_argument("name", choices=tuple(SOURCES), help="facades: label map -> photo pairs; food: colour photos")
    p.add_argument("--out", type=Path, default=Path("data"), help="data root; the dataset goes to OUT/NAME")
    p.add_argument("--limit", type=int, default=None,
                   help="food: keep N training photos (and N/25 for validation) spread over all classes")
    p.add_argument("--from", dest="from_file", type=Path, default=None, metavar="FILE",
                   help="unpack this archive (downloaded by hand) instead of downloading")
    p.add_argument("--url", default=None, help="download from this mirror instead of the official address")
    p.add_argument("--keep-archive", action="store_true", help="keep the downloaded archive in OUT/.downloads")
    p.set_defaults(handler=cmd_data)


def cmd_data(args) -> int:
    get_dataset(args.name, args.out, from_file=args.from_file, limit=args.limit, url=args.url,
                keep_archive=args.keep_archive)
    return 0


def with_url(source: Source, url: str, **changes) -> Source:
    """A copy of `source` served from `url` (tests, mirrors)."""
    return replace(source, url=url, **changes)
