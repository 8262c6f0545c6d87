"""`pix2pix data NAME`: get a public dataset from its source, into the layout `pix2pix train` expects.

Downloads with a progress bar into `<out>/.downloads/<name>.<tar.gz|zip>.part`, resumes a partial file with
an HTTP Range request, checks the size and the checksums we know, then unpacks safely (tar: tarfile's "data"
filter, no absolute paths, no `..`, no links or devices; zip: `archive.extract_dataset_zip`, the app's
extractor, with the same refusals; both with size and file-count limits) into:

- facades: `<out>/facades/{train,val,test}/*.jpg`, 512x256 A|B pairs (A = photo, B = label map), as in
  the official pix2pix archive (400 / 100 / 106 pairs).
- food:    `<out>/food/{train,val}/*.jpg`, colour photos of Food-101 (a fixed pseudo-random split spread
  over all 101 classes; `--limit N` keeps N training photos and N/25 for validation).
- the other pix2pix sets of the official repository (datasets/download_pix2pix_dataset.sh of
  junyanz/pytorch-CycleGAN-and-pix2pix: maps, edges2shoes, edges2handbags, night2day): `<out>/NAME/{train,val,
  test}/` A|B pairs, for `train --task aligned` in the direction each one's `about` says.
- the CycleGAN sets (datasets/download_cyclegan_dataset.sh): `<out>/NAME/{trainA,trainB,testA,testB}/`, for
  `train --task unpaired`; `maps` and `facades` of that script are `cyclegan-maps` and `cyclegan-facades` here,
  since the names mean the pix2pix archives. Cityscapes is not offered (its licence: see NOT_OFFERED).

Without a network the command fails at once with one line saying where to get the archive by hand;
`--from FILE` unpacks an archive downloaded elsewhere (the same checks apply). `--list` shows them all.
"""

from __future__ import annotations

import hashlib
import heapq
import http.client
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


ALIGNED_SPLITS = ("train", "val", "test")  # the pix2pix archives' folders of A|B pairs
UNPAIRED_SPLITS = ("trainA", "trainB", "testA", "testB")  # the CycleGAN zips' folders (anything else is left out)


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
    task: str = "aligned"  # the `train --task` its layout is for: facades, colorize, aligned or unpaired
    about: str = ""  # what the images are, and for A|B pairs which half is which and the usual direction
    direction: Optional[str] = None  # aligned: the `--direction` of its usual use (the official docs' one)
    bounds: Optional[tuple[int, int]] = None  # the sanity range of its size where approx_bytes is only a guess
    required: tuple[str, ...] = ()  # folders that must hold images (default: train/, or trainA/ and trainB/)

    @property
    def suffix(self) -> str:
        """The archive's kind: the CycleGAN sets are zips, the others gzipped tars."""
        return ".zip" if self.task == "unpaired" else ".tar.gz"

    @property
    def splits(self) -> tuple[str, ...]:
        return {"unpaired": UNPAIRED_SPLITS, "colorize": ("train", "val")}.get(self.task, ALIGNED_SPLITS)

    @property
    def needed(self) -> tuple[str, ...]:
        return self.required or (("trainA", "trainB") if self.task == "unpaired" else ("train",))

    @property
    def size_range(self) -> tuple[float, float]:
        return self.bounds or (self.approx_bytes / 2, self.approx_bytes * 2)

    @property
    def trains(self) -> bool:
        """Whether it holds training images (ae_photos holds test photos only)."""
        return any(folder.startswith("train") for folder in self.needed)

    @property
    def train_with(self) -> str:
        """The `pix2pix train` options its layout needs (what `--list` shows)."""
        if self.task == "aligned":
            return f"--task aligned --direction {self.direction}"
        if not self.trains:
            return "test photos: translate"
        return f"--task {self.task}"


PIX2PIX_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/{}.tar.gz"  # download_pix2pix_dataset.sh
# download_cyclegan_dataset.sh names https://people.eecs.berkeley.edu/~taesung_park/CycleGAN/datasets/$FILE.zip;
# that address has failed since 2023 (restricted, then 404: taesungp/contrastive-unpaired-translation#171 relays
# T. Park's pointer to this one; aitorzip/PyTorch-CycleGAN#47), and this is where the server of the pix2pix sets
# serves the same zips. `--url` takes the old address should it come back.
CYCLEGAN_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/{}.zip"
PIX2PIX_PAPER = ("P. Isola, J.-Y. Zhu, T. Zhou, A. A. Efros, \"Image-to-Image Translation with Conditional Adversarial "
                 "Networks\", CVPR 2017")
CYCLEGAN_PAPER = ("J.-Y. Zhu, T. Park, P. Isola, A. A. Efros, \"Unpaired Image-to-Image Translation using "
                  "Cycle-Consistent Adversarial Networks\", ICCV 2017")
HED = "edges by HED (S. Xie, Z. Tu, \"Holistically-Nested Edge Detection\", ICCV 2015) and post-processing"
UNCLEAR = "no licence is given for the set: licence unclear, for research use only"
IMAGENET = ("ImageNet photos belong to their owners; ImageNet's terms allow non-commercial research and educational "
            "use only")
ART = ("paintings from WikiArt and landscape photos from Flickr (tags landscape, landscapephotography); the "
       f"reproductions and the photos belong to their owners and {UNCLEAR}")


def _pix2pix(name: str, about: str, licence: str, credit: str, approx_bytes: int, direction: str) -> Source:
    return Source(name=name, url=PIX2PIX_URL.format(name), approx_bytes=approx_bytes, size=None, sha256=None,
                  md5=None, licence=licence, credit=credit, about=about, direction=direction)


def _cyclegan(name: str, about: str, licence: str, credit: str, approx_bytes: int, file: Optional[str] = None,
              **extra) -> Source:
    return Source(name=name, url=CYCLEGAN_URL.format(file or name), approx_bytes=approx_bytes, size=None, sha256=None,
                  md5=None, licence=licence, credit=f"{CYCLEGAN_PAPER}{credit}", task="unpaired", about=about, **extra)


# Known values. A checksum we could not take from a trusted download of our own is left None, never
# guessed: fill `size` and `sha256` from a trusted copy (`sha256sum facades.tar.gz`) to make the check
# strict. Until then the download is checked against the server's Content-Length, a loose size bound, and
# the checksums that are known (Food-101's MD5 is the one torchvision.datasets.Food101 verifies; its size,
# 4,996,278,331 bytes, is the Content-Length two independent public download logs show).
# The SHA-256 of every download is printed so it can be compared and recorded here.
# Sizes of the other sets, approximate (none is stated by the official scripts or docs): the pix2pix archives'
# from the server's directory listing as quoted publicly (29M, 239M, 2.0G, 8.0G, 1.9G); the CycleGAN zips' are
# the byte counts tensorflow/datasets recorded for its copies (url_checksums/cycle_gan.txt, from the old address),
# so within the half-to-double bound; ae_photos is in neither, so it has a stated loose bound instead.
SOURCES: dict[str, Source] = {
    "facades": Source(
        name="facades",
        url="http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/facades.tar.gz",
        approx_bytes=29_000_000, size=None, sha256=None, md5=None,
        licence="CMP Facade Database: for research use; cite the paper below when you use the data.",
        credit="R. Tylecek and R. Sara, \"Spatial Pattern Templates for Recognition of Objects with Regular "
               "Structure\", GCPR 2013 (CMP Facade Database); pix2pix A|B layout by P. Isola et al., CVPR 2017.",
        task="facades", about="A photo | B label map, 400 / 100 / 106 pairs; label -> photo is BtoA, the facades "
                              "task's default"),
    "food": Source(
        name="food",
        url="http://data.vision.ee.ethz.ch/cvl/food-101.tar.gz",
        approx_bytes=5_000_000_000, size=4_996_278_331, sha256=None, md5="85eeb15f3717b99a5da872d97d918f87",
        licence="Food-101: the images come from foodspotting.com and belong to their owners; research and "
                "fair use only.",
        credit="L. Bossard, M. Guillaumin, L. Van Gool, \"Food-101 - Mining Discriminative Components with "
               "Random Forests\", ECCV 2014.",
        task="colorize", about="colour photos of 101 dishes for colorization; --limit N keeps N (and N/25 for val)"),
    # pix2pix: datasets/download_pix2pix_dataset.sh (its list: cityscapes, night2day, edges2handbags, edges2shoes,
    # facades, maps); which half is which and the directions: docs/datasets.md and the pretrained models' names
    "maps": _pix2pix(
        "maps", "A aerial photo | B map, 1096 training pairs and a val split; AtoB photo -> map, BtoA map -> photo",
        f"Map tiles and aerial photos scraped from Google Maps: the imagery belongs to Google and its providers; "
        f"{UNCLEAR}.", f"{PIX2PIX_PAPER} (1096 training images scraped from Google Maps).", 239_000_000, "AtoB"),
    "edges2shoes": _pix2pix(
        "edges2shoes", "A edges | B photo, about 50k training pairs and a val split; AtoB edges -> photo",
        f"UT Zappos50K shoe photos (from Zappos.com) and their edges; {UNCLEAR}.",
        f"A. Yu, K. Grauman, \"Fine-Grained Visual Comparisons with Local Learning\", CVPR 2014 (UT Zappos50K); "
        f"{HED}; A|B layout: {PIX2PIX_PAPER}.", 2_000_000_000, "AtoB"),
    "edges2handbags": _pix2pix(
        "edges2handbags", "A edges | B photo, about 137k training pairs and a val split; AtoB edges -> photo",
        f"Amazon handbag photos collected for the iGAN project, and their edges; {UNCLEAR}.",
        f"J.-Y. Zhu, P. Krähenbühl, E. Shechtman, A. A. Efros, \"Generative Visual Manipulation on the Natural "
        f"Image Manifold\", ECCV 2016 (iGAN); {HED}; A|B layout: {PIX2PIX_PAPER}.", 8_000_000_000, "AtoB"),
    "night2day": _pix2pix(
        "night2day", "A night | B day, about 20k pairs in train/ val/ test/; AtoB night -> day, BtoA day -> night",
        f"Outdoor webcam images of the Transient Attributes database; {UNCLEAR}.",
        f"P.-Y. Laffont, Z. Ren, X. Tao, C. Qian, J. Hays, \"Transient Attributes for High-Level Understanding and "
        f"Editing of Outdoor Scenes\", SIGGRAPH 2014; A|B layout: {PIX2PIX_PAPER}.", 1_900_000_000, "AtoB"),
    # CycleGAN: datasets/download_cyclegan_dataset.sh (apple2orange, summer2winter_yosemite, horse2zebra,
    # monet2photo, cezanne2photo, ukiyoe2photo, vangogh2photo, maps, cityscapes, facades, iphone2dslr_flower,
    # ae_photos); what each holds: docs/datasets.md and the CycleGAN (Torch) README
    "horse2zebra": _cyclegan(
        "horse2zebra", "A horses (939) / B zebras (1177), training counts as the docs give them",
        f"Photos from ImageNet (keywords wild horse, zebra); {IMAGENET}.", "; images from ImageNet.", 116_867_962),
    "apple2orange": _cyclegan(
        "apple2orange", "A apples (996) / B oranges (1020), training counts as the docs give them",
        f"Photos from ImageNet (keywords apple, navel orange); {IMAGENET}.", "; images from ImageNet.", 78_456_409),
    "summer2winter_yosemite": _cyclegan(
        "summer2winter_yosemite", "A summer (1273) / B winter (854) photos of Yosemite",
        f"Photos from Flickr (Flickr API): they belong to their owners; {UNCLEAR}.", "; photos from Flickr.",
        132_640_856),
    "monet2photo": _cyclegan(
        "monet2photo", "A Monet paintings (1074) / B landscape photos (6853)", f"{ART[0].upper()}{ART[1:]}.",
        "; paintings from WikiArt, photos from Flickr.", 305_231_073),
    "cezanne2photo": _cyclegan(
        "cezanne2photo", "A Cezanne paintings (584) / B landscape photos (6853)", f"{ART[0].upper()}{ART[1:]}.",
        "; paintings from WikiArt, photos from Flickr.", 279_885_071),
    "ukiyoe2photo": _cyclegan(
        "ukiyoe2photo", "A ukiyo-e prints (1433) / B landscape photos (6853)", f"{ART[0].upper()}{ART[1:]}.",
        "; prints from WikiArt, photos from Flickr.", 292_946_532),
    "vangogh2photo": _cyclegan(
        "vangogh2photo", "A Van Gogh paintings (401) / B landscape photos (6853)", f"{ART[0].upper()}{ART[1:]}.",
        "; paintings from WikiArt, photos from Flickr.", 306_590_349),
    "iphone2dslr_flower": _cyclegan(
        "iphone2dslr_flower", "A iPhone (1813) / B DSLR (3316) photos of flowers",
        f"Photos from Flickr: they belong to their owners; {UNCLEAR}.", "; photos from Flickr.", 339_964_458),
    "cyclegan-maps": _cyclegan(
        "cyclegan-maps", "aerial photos and map tiles of the pix2pix maps set (1096 training images), unpaired",
        f"Map tiles and aerial photos scraped from Google Maps: the imagery belongs to Google and its providers; "
        f"{UNCLEAR}.", f"; the maps of {PIX2PIX_PAPER}.", 1_476_754_427, file="maps"),
    "cyclegan-facades": _cyclegan(
        "cyclegan-facades", "facade photos and label maps of the CMP set (400 training images), unpaired",
        "CMP Facade Database: for research use; cite the papers of its credit when you use the data.",
        "; R. Tylecek and R. Sara, \"Spatial Pattern Templates for Recognition of Objects with Regular Structure\", "
        "GCPR 2013 (CMP Facade Database).", 35_135_868, file="facades"),
    "ae_photos": _cyclegan(
        "ae_photos", "test photos only (testA/), to try a style model with `translate`; not a training set",
        f"Photos taken by Alexei Efros (his Flickr), shipped to try the CycleGAN style models; {UNCLEAR}.",
        " (its test photos).", 10_000_000, bounds=(1_000_000, 100_000_000), required=("testA",)),
}
CITYSCAPES = ("{name} is not offered: the official pix2pix and CycleGAN repositories no longer host it \"due to "
              "license issue\" (Cityscapes has its own terms and a registration); register at "
              "https://www.cityscapes-dataset.com, download "
              "gtFine_trainvaltest.zip and leftImg8bit_trainvaltest.zip, and make the pairs with "
              "datasets/prepare_cityscapes_dataset.py of junyanz/pytorch-CycleGAN-and-pix2pix")
NOT_OFFERED = {name: CITYSCAPES.format(name=name) for name in ("cityscapes", "cyclegan-cityscapes")}
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
    low, high = source.size_range
    if source.size is None and not low <= size <= high:
        wanted = (f"about {describe_size(source.approx_bytes)}" if source.bounds is None
                  else f"{describe_size(low)} to {describe_size(high)}")
        problems.append(f"{describe_size(size)}, expected {wanted}")
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
# Unpacking limits, as the app's zip extractor has (a bomb of tiny or highly compressed members fills a disk):
# photos barely compress, so an archive unpacking to more than UNPACK_RATIO times its own size is not one of these
# datasets; the largest, edges2handbags, holds about 140k files
UNPACK_RATIO = 4
UNPACK_MIN_BYTES = 256_000_000  # a floor, so a small archive is never refused for a few bytes of headers
MAX_FILES = 500_000


def unpack_limit(archive_path: Path) -> int:
    """The most bytes `archive_path` may unpack to."""
    return max(UNPACK_MIN_BYTES, UNPACK_RATIO * archive_path.stat().st_size)


def _unpacked(archive_path: Path, so_far: int, size: int, most: int) -> int:
    """The bytes unpacked from `archive_path` once a member of `size` is added; past `most` (unpack_limit) refused
    (tar headers state true sizes, so the count is exact)."""
    so_far += size
    if so_far > most:
        raise Pix2PixError(f"{archive_path.name}: unpacks to more than {most:,} bytes, over {UNPACK_RATIO} times its "
                           "own size (photos barely compress: a bomb?); refusing it")
    return so_far


def _unpacking_bar(archive_path: Path, progress: bool):
    """A bar of the files unpacked, for an archive large enough to take a while (and only when `progress`)."""
    from tqdm import tqdm

    large = archive_path.stat().st_size >= PROGRESS_MIN_BYTES
    return tqdm(unit=" files", desc="unpacking", leave=False, disable=not progress or not large)


def _members(archive: tarfile.TarFile, max_files: Optional[int] = None):
    """Regular files only, with their normalised posix paths (links, devices and odd paths skipped; the
    "data" filter at extraction refuses anything that would still escape); more than `max_files` members
    (of any kind) stop it with a Pix2PixError."""
    for count, member in enumerate(archive, 1):
        if max_files is not None and count > max_files:
            raise Pix2PixError(f"{Path(archive.name or 'the archive').name}: holds more than {max_files:,} members; "
                               "refusing it (not a dataset archive, or a bomb)")
        if not member.isfile():
            continue
        path = PurePosixPath(member.name)
        if path.is_absolute() or ".." in path.parts:
            continue
        yield member, path


def unpack_aligned(archive_path: Path, dest: Path, name: str = "facades", progress: bool = False) -> dict[str, int]:
    """NAME/{train,val,test}/*.jpg of a pix2pix archive -> dest/{train,val,test}/ (whatever its top folder).

    The bytes written are counted against unpack_limit and the members against MAX_FILES; edges2handbags (8 GB,
    ~140k files) shows a bar when `progress`."""
    counts: dict[str, int] = {}
    most, written = unpack_limit(archive_path), 0
    with tarfile.open(archive_path, "r:*") as archive, _unpacking_bar(archive_path, progress) as bar:
        for member, path in _members(archive, MAX_FILES):
            bar.update()
            if len(path.parts) < 2 or path.parts[-2] not in ALIGNED_SPLITS \
                    or path.suffix.lower() not in (".jpg", ".jpeg", ".png"):
                continue
            written = _unpacked(archive_path, written, member.size, most)
            split = path.parts[-2]
            member.name = f"{split}/{path.name}"
            archive.extract(member, dest, filter="data")
            counts[split] = counts.get(split, 0) + 1
    if not counts.get("train"):
        raise Pix2PixError(f"{archive_path.name} holds no train/*.jpg: not the pix2pix {name} archive")
    return counts


def _in_unpaired_split(path: PurePosixPath) -> Optional[PurePosixPath]:
    """NAME/trainA/x.jpg -> trainA/x.jpg (any top folder); members outside the four folders are left out
    (cyclegan-maps.zip also holds the pix2pix train/ and val/ pairs)."""
    if len(path.parts) >= 2 and path.parts[-2] in UNPAIRED_SPLITS:
        return PurePosixPath(path.parts[-2], path.name)
    return None


def unpack_unpaired(archive_path: Path, dest: Path, source: Source, progress: bool = False) -> dict[str, int]:
    """NAME/{trainA,trainB,testA,testB}/* of a CycleGAN zip -> dest/{trainA,...}/, through the app's safe zip
    extractor (no `..`, absolute paths, links or encrypted members; unpack_limit and MAX_FILES as its limits)."""
    from .archive import extract_dataset_zip  # with PIL and numpy: not for `--help` (add_command)

    with _unpacking_bar(archive_path, progress) as bar:
        def advance(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        extract_dataset_zip(archive_path, dest, max_total_bytes=unpack_limit(archive_path), max_files=MAX_FILES,
                            place=_in_unpaired_split, progress=advance)
    counts = {split: sum(1 for _ in (dest / split).iterdir()) for split in UNPAIRED_SPLITS if (dest / split).is_dir()}
    missing = [split for split in source.needed if not counts.get(split)]
    if missing:
        raise Pix2PixError(f"{archive_path.name} holds no {missing[0]}/ images: not the CycleGAN {source.name} archive")
    return counts


def _rank(name: str) -> int:
    return int.from_bytes(hashlib.sha1(name.encode()).digest()[:8], "big")


def unpack_food(archive_path: Path, dest: Path, limit: Optional[int] = None, progress: bool = False) -> dict[str, int]:
    """food-101/images/<class>/<id>.jpg -> dest/{train,val}/f101-<class>-<id>.jpg, colour photos only.

    A fixed pseudo-random order (a hash of the name) spreads the split and any --limit over all classes;
    one pass over the (5 GB) archive. The bytes extracted and the members are bounded as in unpack_aligned (a
    mirror given with --url, or a file given with --from, could be a bomb)."""
    from PIL import Image

    n_val = max(1, limit // FOOD_VAL_SHARE) if limit else None
    wanted = limit + n_val if limit else None
    staging = dest / ".unpacking"
    heap: list[tuple[int, str]] = []  # (-rank, name): the `wanted` lowest ranks seen so far
    most, extracted = unpack_limit(archive_path), 0
    with tarfile.open(archive_path, "r:*") as archive, _unpacking_bar(archive_path, progress) as bar:
        for member, path in _members(archive, MAX_FILES):
            bar.update()
            if "images" not in path.parts or len(path.parts) < 3 or path.suffix.lower() != ".jpg":
                continue
            flat = f"f101-{path.parts[-2]}-{path.stem}.jpg"
            rank = _rank(flat)
            if wanted and len(heap) >= wanted and rank >= -heap[0][0]:
                continue
            extracted = _unpacked(archive_path, extracted, member.size, most)
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
    from .archive import UnpackWriteError  # with PIL and numpy: not for `--help` (add_command)

    sources = sources or SOURCES
    log = log or sys.stdout
    if name not in sources:
        if name in NOT_OFFERED:
            raise Pix2PixError(NOT_OFFERED[name])
        raise Pix2PixError(f"unknown dataset {name!r}; choose one of {', '.join(sources)} (`pix2pix data --list`)")
    if limit is not None and limit < 1:
        raise Pix2PixError("--limit must be at least 1")
    source = sources[name]
    if limit is not None and source.task != "colorize":  # facades too: its --limit was ignored without a word
        raise Pix2PixError(f"--limit keeps a share of the food photos; {name} is unpacked whole (train on part of "
                           "it with `train --max-images N`)")
    out = Path(out)
    final = out / name
    missing = [split for split in source.needed if not ((final / split).is_dir() and any((final / split).iterdir()))]
    if not missing:
        print(f"{final} is already there ({_count(final, source)}); remove it to get it again", file=log)
        return final
    if final.exists() and (not final.is_dir() or any(final.iterdir())):
        raise Pix2PixError(f"{final} exists but holds no {missing[0]}/ images; move it away (nothing of it is "
                           "replaced)")
    print_terms(source, log)
    if from_file is not None:
        archive = Path(from_file)
        if archive.is_dir():  # an unpacked copy, say: the archive itself is what gets verified
            raise Pix2PixError(f"--from: {archive} is a folder; give the downloaded archive "
                               f"({source.url.rsplit('/', 1)[-1]})")
        if not archive.is_file():
            raise Pix2PixError(f"--from: file not found: {archive}")
        verify(source, archive, out=log, remove=False, progress=progress)
    else:
        print(f"downloading {source.url if url is None else url} (about {describe_size(source.approx_bytes)})"
              + ("; this is large and takes a while, Ctrl-C stops it and the same command resumes" if
                 source.approx_bytes >= 1e9 else ""), file=log, flush=True)
        archive = download(source, out / ".downloads" / f"{name}{source.suffix}.part", url=url, progress=progress,
                           timeout=timeout)
    # unpack next to the final folder, then move it into place: an interrupted unpack leaves no half dataset
    work = out / f".{name}-{uuid.uuid4().hex[:8]}"
    try:
        try:
            counts = _unpack(source, archive, work, limit, progress)
        except UnpackWriteError as exc:  # the disk, not the archive: kept (a refusal below deletes it)
            if from_file is None:
                raise Pix2PixError(f"{exc}; the download is kept: make room, then unpack it with "
                                   f"`pix2pix data {name} --from {archive} --out {out}`") from None
            raise
        except Pix2PixError as exc:  # refused (a hostile or corrupt zip, a bomb, not the right archive)
            if from_file is None and source.task in ("aligned", "unpaired"):
                archive.unlink(missing_ok=True)  # useless, and a later run downloads it again
                raise Pix2PixError(f"{exc}; the download was deleted") from None
            raise
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
    if source.task == "unpaired" and "trainA" not in source.needed:  # ae_photos: photos to try a model on
        print(f"  try a CycleGAN on them: pix2pix translate --checkpoint MODEL {final / 'testA'} --out OUT", file=log)
    elif source.task in ("aligned", "unpaired"):
        print(f"  train on it: pix2pix train {source.train_with} --data {final} --out runs/{name}", file=log)
    return final


def _unpack(source: Source, archive: Path, dest: Path, limit: Optional[int], progress: bool) -> dict[str, int]:
    if source.task == "colorize":
        return unpack_food(archive, dest, limit, progress)
    if source.task == "unpaired":
        return unpack_unpaired(archive, dest, source, progress)
    return unpack_aligned(archive, dest, source.name, progress)


def _count(folder: Path, source: Optional[Source] = None) -> str:
    parts = []
    for split in source.splits if source is not None else ALIGNED_SPLITS:
        if (folder / split).is_dir():
            parts.append(f"{split} {sum(1 for _ in (folder / split).iterdir())}")
    return ", ".join(parts)


def list_datasets(out: Optional[TextIO] = None, sources: Optional[dict[str, Source]] = None) -> None:
    """Every dataset: its download size, the `train` options its layout is for, the folders it unpacks to, and
    under it what the images are (for A|B pairs: which half is which, the usual direction) and the licence."""
    out = out or sys.stdout
    sources = sources or SOURCES
    print(f"{'NAME':<23}{'DOWNLOAD':<10}{'TRAIN WITH':<34}FOLDERS KEPT (in --out/NAME, those it has)", file=out)
    for source in sources.values():
        size = describe_size(source.approx_bytes)
        print(f"{source.name:<23}{size:<10}{source.train_with:<34}{' '.join(f'{s}/' for s in source.splits)}",
              file=out)
        print(f"    {source.about}", file=out)
        print(f"    licence: {source.licence}", file=out)
    print(f"not offered: {', '.join(NOT_OFFERED)} (`pix2pix data cityscapes` says why and how to get it)", file=out)


def add_command(sub, formatter: Callable) -> None:
    p = sub.add_parser("data", help="download a dataset (facades, food, the pix2pix and CycleGAN sets) into data/",
                       description="Download, verify and unpack a public dataset into the layout `train` expects: "
                                   "facades (29 MB) and Food-101 (5 GB), the pix2pix A|B sets (train/ val/ test/, "
                                   "--task aligned) and the CycleGAN sets (trainA/ trainB/ testA/ testB/, --task "
                                   "unpaired) of the official repository. Licences and credits are printed; "
                                   "--list shows every dataset with its size, task and layout.",
                       formatter_class=formatter)
    p.add_argument("name", nargs="?", default=None, metavar="NAME",
                   help=f"the dataset, one of: {', '.join(SOURCES)}")
    p.add_argument("--list", dest="list_only", action="store_true",
                   help="list every dataset: its size, the train options its layout is for, its folders and licence")
    p.add_argument("--out", type=Path, default=Path("data"), help="data root; the dataset goes to OUT/NAME")
    p.add_argument("--limit", type=int, default=None,
                   help="food: keep N training photos (and N/25 for validation) spread over all classes")
    p.add_argument("--from", dest="from_file", type=Path, default=None, metavar="FILE",
                   help="unpack this archive (downloaded by hand) instead of downloading")
    p.add_argument("--url", default=None, help="download from this mirror instead of the official address")
    p.add_argument("--keep-archive", action="store_true", help="keep the downloaded archive in OUT/.downloads")
    p.set_defaults(handler=cmd_data)


def cmd_data(args) -> int:
    if args.list_only:
        list_datasets()
        return 0
    if args.name is None:
        raise Pix2PixError("name a dataset (`pix2pix data facades`), or see them all with `pix2pix data --list`")
    get_dataset(args.name, args.out, from_file=args.from_file, limit=args.limit, url=args.url,
                keep_archive=args.keep_archive)
    return 0


def with_url(source: Source, url: str, **changes) -> Source:
    """A copy of `source` served from `url` (tests, mirrors)."""
    return replace(source, url=url, **changes)
