"""Uploaded dataset zips: good ones unpack to a dataset folder, hostile ones are refused cleanly."""

from __future__ import annotations

import io
import stat
import struct
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from pix2pix_core import archive
from pix2pix_core.archive import ExtractResult, extract_dataset_zip, safe_member_path
from pix2pix_core.errors import Pix2PixError


def png(size=(8, 8), colour=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


def make_zip(path: Path, members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> Path:
    """A zip written member by member with ZipInfo, so names are stored exactly as given."""
    with zipfile.ZipFile(path, "w", compression) as bundle:
        for name, data in members.items():
            bundle.writestr(zipfile.ZipInfo(name), data, compress_type=compression)
    return path


def assert_left_nothing(dest: Path, outside: Path) -> None:
    """A refused zip leaves no destination folder and writes nothing next to it."""
    assert not dest.exists()
    assert sorted(p.name for p in outside.iterdir()) == ["upload.zip"]


@pytest.fixture
def upload(tmp_path) -> Path:
    return tmp_path / "upload.zip"


# ------------------------------------------------------------------------------------ good zips
def test_dataset_with_one_top_folder(upload, tmp_path) -> None:
    """The common case: facades.zip -> facades/train/*.jpg, facades/val/*.jpg (and a README)."""
    make_zip(upload, {"facades/": b"", "facades/train/1.jpg": png(), "facades/train/2.png": png(),
                      "facades/val/3.jpg": png(), "facades/README.txt": b"credits"})
    result = extract_dataset_zip(upload, tmp_path / "data")
    assert result == ExtractResult(folder=tmp_path / "data" / "facades", images=3, skipped=1)
    assert (result.folder / "train" / "2.png").read_bytes() == png()


def test_flat_dataset_and_skipped_members(upload, tmp_path) -> None:
    """Non-images and macOS/Windows junk are skipped and counted; the folder is the destination itself."""
    make_zip(upload, {"a.jpg": png(), "b.JPEG": png(), "notes.txt": b"x", "script.py": b"import os",
                      "inner.zip": b"PK\x03\x04", "__MACOSX/._a.jpg": b"\x00\x05\x16\x07", "._b.jpg": b"junk",
                      "sub/.DS_Store": b"junk", "Thumbs.db": b"junk"})
    result = extract_dataset_zip(upload, tmp_path / "data")
    assert (result.folder, result.images, result.skipped) == (tmp_path / "data", 2, 7)
    assert sorted(p.name for p in result.folder.rglob("*") if p.is_file()) == ["a.jpg", "b.JPEG"]


def test_existing_empty_destination_is_used(upload, tmp_path) -> None:
    make_zip(upload, {"a.png": png()})
    (tmp_path / "data").mkdir()
    assert extract_dataset_zip(upload, tmp_path / "data").images == 1


# ------------------------------------------------------------------------------------ path tricks
@pytest.mark.parametrize("name", [
    "../evil.png", "../../etc/evil.png", "good/../../evil.png", "/tmp/evil.png", "//server/evil.png",
    "C:/Windows/evil.png", "c:evil.png", "..\\evil.png", "good\\..\\..\\evil.png", "\\evil.png",
])
def test_path_traversal_is_refused(name, upload, tmp_path) -> None:
    make_zip(upload, {"ok.png": png(), name: png()})
    with pytest.raises(Pix2PixError, match="unsafe path"):
        extract_dataset_zip(upload, tmp_path / "data")
    assert_left_nothing(tmp_path / "data", tmp_path)


@pytest.mark.parametrize("name, expected", [
    ("a/b.png", "a/b.png"), ("./a/./b.png", "a/b.png"), ("a//b.png", "a/b.png"), ("a\\b.png", "a/b.png"),
    ("..png", "..png"), ("a/..b/c.png", "a/..b/c.png"),
])
def test_safe_names_are_kept(name, expected) -> None:
    assert str(safe_member_path(name)) == expected


def test_symlink_member_is_refused(upload, tmp_path) -> None:
    """A link to /etc/passwd named like an image: extracting it would let the app read any file."""
    link = zipfile.ZipInfo("train/photo.png")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    with zipfile.ZipFile(upload, "w") as bundle:
        bundle.writestr("train/1.png", png())
        bundle.writestr(link, "/etc/passwd")
    with pytest.raises(Pix2PixError, match="symbolic link"):
        extract_dataset_zip(upload, tmp_path / "data")
    assert_left_nothing(tmp_path / "data", tmp_path)


# ------------------------------------------------------------------------------------ bombs and limits
def test_too_many_files(upload, tmp_path) -> None:
    make_zip(upload, {f"{i}.png": b"" for i in range(11)}, compression=zipfile.ZIP_STORED)
    with pytest.raises(Pix2PixError, match="holds 11 files, above the limit of 10"):
        extract_dataset_zip(upload, tmp_path / "data", max_files=10)
    assert_left_nothing(tmp_path / "data", tmp_path)


def test_declared_size_over_the_limit(upload, tmp_path) -> None:
    """A classic bomb: 50 MB of zeros deflates to ~50 KB; refused from the directory, before writing."""
    make_zip(upload, {"a.png": png(), "bomb.png": b"\x00" * 50_000_000})
    assert upload.stat().st_size < 200_000
    with pytest.raises(Pix2PixError, match="above the limit of 10,000,000"):
        extract_dataset_zip(upload, tmp_path / "data", max_total_bytes=10_000_000)
    assert_left_nothing(tmp_path / "data", tmp_path)


def test_actual_bytes_are_capped_while_streaming(upload, tmp_path, monkeypatch) -> None:
    """If a member produces more bytes than declared (a lying header and a trusting decoder), the
    count of bytes really written stops it, and the partial output is removed."""
    make_zip(upload, {"a.png": png(), "b.png": b"\x01" * 1000})
    real_open = zipfile.ZipFile.open

    class Endless(io.RawIOBase):
        def readable(self):
            return True

        def readinto(self, buffer):
            buffer[:] = b"\x00" * len(buffer)
            return len(buffer)

    def lying_open(self, member, *args, **kwargs):
        name = member.filename if isinstance(member, zipfile.ZipInfo) else member
        return io.BufferedReader(Endless()) if name == "b.png" else real_open(self, member, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", lying_open)
    with pytest.raises(Pix2PixError, match="sizes are false"):
        extract_dataset_zip(upload, tmp_path / "data", max_total_bytes=5_000_000)
    assert_left_nothing(tmp_path / "data", tmp_path)


def test_member_whose_size_field_lies_is_corrupt(upload, tmp_path) -> None:
    """Shrink the declared sizes of a 1 MB member to 100 bytes in both headers: refused, not trusted."""
    make_zip(upload, {"a.png": png(), "b.png": b"\x07" * 1_000_000})
    data = bytearray(upload.read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as bundle:
        info = bundle.getinfo("b.png")
    local = info.header_offset
    struct.pack_into("<I", data, local + 22, 100)  # local file header: uncompressed size
    central = data.rindex(b"PK\x01\x02")  # b.png is the last central directory entry
    struct.pack_into("<I", data, central + 24, 100)
    upload.write_bytes(bytes(data))
    with pytest.raises(Pix2PixError, match="corrupt member 'b.png'"):
        extract_dataset_zip(upload, tmp_path / "data")
    assert_left_nothing(tmp_path / "data", tmp_path)


# ------------------------------------------------------------------------------------ other refusals
def test_not_a_zip(upload, tmp_path) -> None:
    upload.write_bytes(png())
    with pytest.raises(Pix2PixError, match="not a readable zip"):
        extract_dataset_zip(upload, tmp_path / "data")


def test_missing_zip(tmp_path) -> None:
    with pytest.raises(Pix2PixError, match="zip file not found"):
        extract_dataset_zip(tmp_path / "nope.zip", tmp_path / "data")


def test_zip_without_images(upload, tmp_path) -> None:
    make_zip(upload, {"readme.md": b"hi", "data.csv": b"1,2"})
    with pytest.raises(Pix2PixError, match=r"holds no image files \(2 other file\(s\) skipped\)"):
        extract_dataset_zip(upload, tmp_path / "data")
    assert_left_nothing(tmp_path / "data", tmp_path)


def test_encrypted_member(upload, tmp_path) -> None:
    make_zip(upload, {"a.png": png()}, compression=zipfile.ZIP_STORED)
    data = bytearray(upload.read_bytes())
    struct.pack_into("<H", data, 6, 0x1)  # local header general purpose flags: encrypted
    struct.pack_into("<H", data, data.rindex(b"PK\x01\x02") + 8, 0x1)  # and in the central directory
    upload.write_bytes(bytes(data))
    with pytest.raises(Pix2PixError, match="encrypted"):
        extract_dataset_zip(upload, tmp_path / "data")


def test_corrupt_data_is_refused_and_cleaned(upload, tmp_path) -> None:
    make_zip(upload, {"a.png": png(), "b.png": png(colour=(1, 2, 3))}, compression=zipfile.ZIP_STORED)
    data = bytearray(upload.read_bytes())
    start = data.index(b"IDAT", data.index(b"b.png")) + 4
    data[start:start + 8] = b"\xff" * 8  # stored bytes no longer match the CRC
    upload.write_bytes(bytes(data))
    with pytest.raises(Pix2PixError, match="corrupt member 'b.png'"):
        extract_dataset_zip(upload, tmp_path / "data")
    assert_left_nothing(tmp_path / "data", tmp_path)


def test_destination_must_be_empty(upload, tmp_path) -> None:
    make_zip(upload, {"a.png": png()})
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "keep.txt").write_text("mine")
    with pytest.raises(Pix2PixError, match="not an empty folder"):
        extract_dataset_zip(upload, tmp_path / "data")
    assert (tmp_path / "data" / "keep.txt").read_text() == "mine"


def test_refusal_empties_a_given_folder_but_keeps_it(upload, tmp_path) -> None:
    """a.png and sub/b.png are written before the corrupt c.png is found: all of it is removed."""
    make_zip(upload, {"a.png": png(), "sub/b.png": png(), "c.png": png(colour=(1, 2, 3))},
             compression=zipfile.ZIP_STORED)
    data = bytearray(upload.read_bytes())
    start = data.index(b"IDAT", data.index(b"c.png")) + 4
    data[start:start + 8] = b"\xff" * 8
    upload.write_bytes(bytes(data))
    (tmp_path / "data").mkdir()
    with pytest.raises(Pix2PixError, match="corrupt member 'c.png'"):
        extract_dataset_zip(upload, tmp_path / "data")
    assert (tmp_path / "data").is_dir() and not any((tmp_path / "data").iterdir())


def test_limits_are_documented_defaults() -> None:
    assert archive.MAX_TOTAL_BYTES == 2_000_000_000 and archive.MAX_FILES == 20_000


@pytest.mark.parametrize("compression", [zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_a_damaged_compressed_member_is_a_corrupt_member(upload, tmp_path, compression) -> None:
    """zlib and lzma raise their own errors on damaged data, bz2 an OSError that read as a write error."""
    make_zip(upload, {"a.png": png(), "b.png": bytes(range(256)) * 64}, compression=compression)
    data = bytearray(upload.read_bytes())
    header = data.index(b"b.png") + len(b"b.png")  # the member's data follows its local header's name
    data[header + 4:header + 24] = b"\x00\xff" * 10
    upload.write_bytes(bytes(data))
    with pytest.raises(Pix2PixError, match="corrupt member 'b.png'"):
        extract_dataset_zip(upload, tmp_path / "data")
    assert_left_nothing(tmp_path / "data", tmp_path)


# ------------------------------------------------------------------------------------ place and progress
def _in_split(path):
    """The CycleGAN layout: <anything>/trainA/x.jpg -> trainA/x.jpg; anything else skipped."""
    return path.relative_to(*path.parts[:-2]) if len(path.parts) >= 2 and path.parts[-2] in ("trainA", "testA") \
        else None


def test_place_keeps_and_moves_members(upload, tmp_path) -> None:
    """`pix2pix data` keeps only a layout's folders, one level up from the zip's own top folder."""
    make_zip(upload, {"h2z/trainA/1.jpg": png(), "h2z/testA/2.jpg": png(), "h2z/train/3.jpg": png(),
                      "h2z/notes.txt": b"x"})
    seen = []
    result = extract_dataset_zip(upload, tmp_path / "data", place=_in_split, progress=lambda d, t: seen.append((d, t)))
    assert (result.folder, result.images, result.skipped) == (tmp_path / "data", 2, 2)
    assert sorted(p.relative_to(result.folder).as_posix() for p in result.folder.rglob("*.jpg")) == [
        "testA/2.jpg", "trainA/1.jpg"]
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_a_hostile_member_refuses_the_zip_even_where_place_would_skip_it(upload, tmp_path) -> None:
    make_zip(upload, {"h2z/trainA/1.jpg": png(), "../escape/elsewhere.jpg": png()})
    with pytest.raises(Pix2PixError, match="unsafe path"):
        extract_dataset_zip(upload, tmp_path / "data", place=_in_split)
    assert_left_nothing(tmp_path / "data", tmp_path)


def test_a_place_outside_the_destination_is_refused(upload, tmp_path) -> None:
    make_zip(upload, {"a.png": png()})
    with pytest.raises(Pix2PixError, match="placed outside the destination"):
        extract_dataset_zip(upload, tmp_path / "data", place=lambda p: Path("..") / p.name)
    assert_left_nothing(tmp_path / "data", tmp_path)
