"""`pix2pix data`: download from a local HTTP server (Range supported), checks, resume, --from, offline error."""

from __future__ import annotations

import hashlib
import io
import socket
import stat
import tarfile
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pix2pix_core import cli, download
from pix2pix_core.errors import Pix2PixError


def _jpeg(size: tuple[int, int], mode: str = "RGB", seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode).save(buffer, "JPEG")
    return buffer.getvalue()


def _add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def _tar_gz(files: dict[str, bytes], hostile: bool = True) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            _add(archive, name, data)
        if hostile:  # must never land outside the dataset folder
            _add(archive, "../evil.jpg", b"x")
            _add(archive, "/tmp/abs-evil.jpg", b"x")
            link = tarfile.TarInfo("facades/train/link.jpg")
            link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
            archive.addfile(link)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def facades_archive() -> bytes:
    files = {f"facades/{split}/{i}.jpg": _jpeg((64, 32), seed=i)
             for split, n in (("train", 5), ("val", 2), ("test", 3)) for i in range(1, n + 1)}
    files["facades/README.txt"] = b"not an image"
    return _tar_gz(files)


class _Server:
    """Serves one archive at /archive.tar.gz; honours `Range: bytes=N-` with a 206; records Range headers."""

    def __init__(self, data: bytes):
        self.data, self.ranges = data, []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path != "/archive.tar.gz":
                    self.send_error(404)
                    return
                wanted = self.headers.get("Range")
                owner.ranges.append(wanted)
                start = int(wanted.split("=")[1].split("-")[0]) if wanted else 0
                body = owner.data[start:]
                self.send_response(206 if wanted else 200)
                if wanted:
                    self.send_header("Content-Range", f"bytes {start}-{len(owner.data) - 1}/{len(owner.data)}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/archive.tar.gz"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(facades_archive):
    served = _Server(facades_archive)
    yield served
    served.close()


def _source(server: _Server, data: bytes, **changes) -> dict[str, download.Source]:
    return {"facades": download.with_url(download.SOURCES["facades"], server.url, approx_bytes=len(data),
                                         **changes)}


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def test_download_and_unpack_layout(server, facades_archive, tmp_path):
    out = tmp_path / "data"
    sha = hashlib.sha256(facades_archive).hexdigest()
    folder = download.get_dataset("facades", out, progress=False,
                                  sources=_source(server, facades_archive, size=len(facades_archive), sha256=sha))
    assert folder == out / "facades"
    assert {p.relative_to(folder).as_posix() for p in _files(folder)} == {
        *(f"train/{i}.jpg" for i in range(1, 6)), "val/1.jpg", "val/2.jpg", *(f"test/{i}.jpg" for i in range(1, 4))}
    assert _files(out) == _files(folder)  # no archive, .part or staging folder left; nothing hostile landed
    assert not (tmp_path / "evil.jpg").exists() and not Path("/tmp/abs-evil.jpg").exists()
    assert server.ranges == [None]
    with Image.open(folder / "train" / "1.jpg") as image:
        assert image.size == (64, 32)
    # a second call sees the data and downloads nothing
    download.get_dataset("facades", out, progress=False, sources=_source(server, facades_archive))
    assert server.ranges == [None]


def test_wrong_checksum_is_refused_and_nothing_is_left(server, facades_archive, tmp_path):
    out = tmp_path / "data"
    with pytest.raises(Pix2PixError, match="failed its check.*SHA-256.*nothing was unpacked"):
        download.get_dataset("facades", out, progress=False,
                             sources=_source(server, facades_archive, sha256="0" * 64))
    assert _files(tmp_path) == []
    assert not (out / "facades").exists()


def test_wrong_size_is_refused(server, facades_archive, tmp_path):
    with pytest.raises(Pix2PixError, match="failed its check.*bytes, expected"):
        download.get_dataset("facades", tmp_path, progress=False,
                             sources=_source(server, facades_archive, size=len(facades_archive) + 1))
    assert _files(tmp_path) == []


def test_partial_download_resumes_with_a_range_request(server, facades_archive, tmp_path):
    out = tmp_path / "data"
    half = len(facades_archive) // 2
    part = out / ".downloads" / "facades.tar.gz.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(facades_archive[:half])
    sha = hashlib.sha256(facades_archive).hexdigest()
    folder = download.get_dataset("facades", out, progress=False, sources=_source(server, facades_archive, sha256=sha))
    assert server.ranges == [f"bytes={half}-"]
    assert len(list((folder / "train").iterdir())) == 5
    assert not part.exists()


def test_from_file_through_the_cli(facades_archive, tmp_path, monkeypatch, capsys):
    archive = tmp_path / "facades.tar.gz"
    archive.write_bytes(facades_archive)
    monkeypatch.setitem(download.SOURCES, "facades",
                        download.with_url(download.SOURCES["facades"], "http://127.0.0.1:9/x",
                                          approx_bytes=len(facades_archive)))
    assert cli.main(["data", "facades", "--from", str(archive), "--out", str(tmp_path / "data")]) == 0
    assert len(list((tmp_path / "data" / "facades" / "train").iterdir())) == 5
    assert archive.exists()  # the user's file is theirs
    printed = capsys.readouterr().out
    assert "Tylecek" in printed and "research" in printed and "SHA-256" in printed


def test_from_file_that_fails_its_check_is_kept(tmp_path, capsys):
    archive = tmp_path / "facades.tar.gz"
    archive.write_bytes(b"<html>not found</html>")
    assert cli.main(["data", "facades", "--from", str(archive), "--out", str(tmp_path / "data")]) == 2
    assert "failed its check" in capsys.readouterr().err
    assert archive.exists() and not (tmp_path / "data" / "facades").exists()


def test_from_a_folder_says_to_give_the_archive(tmp_path, capsys):
    """--from an unpacked folder said "file not found" though the folder is there."""
    unpacked = tmp_path / "facades"
    (unpacked / "train").mkdir(parents=True)
    assert cli.main(["data", "facades", "--from", str(unpacked), "--out", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"--from: {unpacked} is a folder; give the downloaded archive (facades.tar.gz)" in err


def test_offline_fails_fast_with_one_line(tmp_path, capsys):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    start = time.monotonic()
    code = cli.main(["data", "facades", "--out", str(tmp_path / "data"),
                     "--url", f"http://127.0.0.1:{port}/facades.tar.gz"])
    assert code == 2 and time.monotonic() - start < 10
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: cannot reach 127.0.0.1:{port}")
    assert "download it by hand from http://127.0.0.1" in lines[0]
    assert f"unpack it to {tmp_path / 'data' / 'facades'}" in lines[0] and "--from FILE" in lines[0]
    assert _files(tmp_path) == []


def test_food_split_and_limit(tmp_path, monkeypatch):
    files = {f"food-101/images/{cls}/{i}.jpg": _jpeg((48, 40), seed=i)
             for cls in ("pizza", "ramen", "sushi") for i in range(10)}
    files["food-101/images/pizza/gray.jpg"] = _jpeg((48, 40), mode="L")
    files["food-101/meta/classes.txt"] = b"pizza\nramen\nsushi\n"
    data = _tar_gz(files, hostile=False)
    archive = tmp_path / "food-101.tar.gz"
    archive.write_bytes(data)
    monkeypatch.setitem(download.SOURCES, "food", download.with_url(download.SOURCES["food"], "http://127.0.0.1:9/x",
                                                                    approx_bytes=len(data), size=None, md5=None))
    assert cli.main(["data", "food", "--from", str(archive), "--out", str(tmp_path / "lim"), "--limit", "12"]) == 0
    train = sorted(p.name for p in (tmp_path / "lim" / "food" / "train").iterdir())
    val = sorted(p.name for p in (tmp_path / "lim" / "food" / "val").iterdir())
    assert len(train) == 12 and len(val) == 1 and not set(train) & set(val)
    assert len({name.split("-")[1] for name in train}) == 3  # spread over the classes
    assert sorted(p.name for p in (tmp_path / "lim" / "food").iterdir()) == ["train", "val"]
    # without a limit: every colour photo, the gray one left out
    assert cli.main(["data", "food", "--from", str(archive), "--out", str(tmp_path / "all")]) == 0
    everything = [p.name for p in (tmp_path / "all" / "food").rglob("*.jpg")]
    assert len(everything) == 30 and "f101-pizza-gray.jpg" not in everything


def test_a_large_archive_shows_progress_while_checked_and_unpacked(tmp_path, monkeypatch, capsys):
    """The food archive is 5 GB: its checksum pass and its unpacking took minutes without a word."""
    files = {f"food-101/images/pizza/{i}.jpg": _jpeg((48, 40), seed=i) for i in range(6)}
    data = _tar_gz(files, hostile=False)
    archive = tmp_path / "food-101.tar.gz"
    archive.write_bytes(data)
    monkeypatch.setitem(download.SOURCES, "food", download.with_url(download.SOURCES["food"], "http://127.0.0.1:9/x",
                                                                    approx_bytes=len(data), size=None, md5=None))
    monkeypatch.setattr(download, "PROGRESS_MIN_BYTES", 1)  # this small archive counts as large
    download.get_dataset("food", tmp_path / "data", from_file=archive, progress=True)
    err = capsys.readouterr().err
    assert "checking" in err and "unpacking" in err
    download.get_dataset("food", tmp_path / "quiet", from_file=archive, progress=False)
    assert "checking" not in capsys.readouterr().err


def test_train_tab_names_its_dataset_and_the_command_to_get_facades(tmp_path, monkeypatch):
    from demo import dataset_line
    from demo.state import AppState

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    state = AppState(tmp_path / "checkpoints", tmp_path / "data", tmp_path / "runs")
    text = dataset_line.dataset_summary(state, "facades")
    assert "the 6 bundled example pairs, 6 training images" in text
    assert "<code>pix2pix data facades --out data/</code>" in text
    assert "pix2pix data food --out data/" in dataset_line.dataset_summary(state, "colorize")
    train = tmp_path / "data" / "facades" / "train"
    train.mkdir(parents=True)
    for i in range(3):
        (train / f"{i}.jpg").write_bytes(_jpeg((64, 32), seed=i))
    text = dataset_line.dataset_summary(state, "facades")
    assert text == "<b>Dataset:</b> <code>facades</code> in the data root, 3 training images."
    assert "not found" in dataset_line.dataset_summary(state, "aligned", "missing")
    typed = "![x](https://example.com/t.png)<img src=x>"
    shown = dataset_line.dataset_summary(state, "aligned", typed)
    assert "not found" in shown and "<img" not in shown and "&lt;img src=x&gt;" in shown


def test_with_no_folder_the_dataset_line_names_the_task_as_the_form_does(tmp_path):
    """With no folder typed, the custom and unpaired tasks' dataset line (and Start's refusal) said "for the aligned
    task", "the paired task": names the page never shows. It names the task as the form's picker does (an API client
    reads the command line's names, which /train_start takes)."""
    from demo import dataset_line
    from demo.state import AppState
    from pix2pix_core.errors import Pix2PixError

    state = AppState(tmp_path / "checkpoints", tmp_path / "data", tmp_path / "runs")
    for task, label in (("aligned", "Custom: A|B images"), ("paired", "Custom: A/ and B/ folders"),
                        ("unpaired", "Unpaired (CycleGAN)")):
        with pytest.raises(Pix2PixError) as refused:
            dataset_line.default_data(state, task)
        assert str(refused.value).endswith(f" for the {task} task"), refused.value  # as an API client reads it
        assert state.clean(refused.value).endswith(f" for the task '{label}'"), refused.value  # on the page
        line = dataset_line.dataset_summary(state, task)
        assert f"for the task &#x27;{label}&#x27;" in line and f"the {task} task" not in line, line


def test_train_tab_gives_the_command_and_task_of_a_public_dataset_it_does_not_find(tmp_path, monkeypatch):
    """The Train tab knew facades and food only: a typed maps or horse2zebra that was not there got "not found". It
    now gives the command that fetches a public dataset, its size, and the task it is for; every part escaped."""
    from demo import dataset_line
    from demo.state import AppState

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    state = AppState(tmp_path / "checkpoints", tmp_path / "data", tmp_path / "runs")
    maps = dataset_line.dataset_summary(state, "facades", "maps")
    assert maps.startswith("<b>Dataset:</b> dataset folder not found: &#x27;maps&#x27; (inside the data root) — maps "
                           "is a public dataset: get it with <code>pix2pix data maps --out data/</code> (about 239 MB "
                           "download), then train on it with the task <i>Custom: A|B images</i> (input side AtoB).")
    for typed in ("horse2zebra", "./horse2zebra/", str(tmp_path / "data" / "horse2zebra"),
                  "<img src=x>/../horse2zebra"):
        shown = dataset_line.dataset_summary(state, "aligned", typed)
        assert ("<code>pix2pix data horse2zebra --out data/</code> (about 117 MB download), then train on it with the "
                "task <i>Unpaired (CycleGAN)</i>.") in shown, shown
        assert "<img" not in shown
    assert "(a 5.0 GB download), then train on it with the task <i>Colorize: gray → colour</i>" in \
        dataset_line.dataset_summary(state, "unpaired", "food")
    assert "not to train on" in dataset_line.dataset_summary(state, "unpaired", "ae_photos")
    assert "public dataset" not in dataset_line.dataset_summary(state, "unpaired", "sub/horse2zebra")  # not put there
    assert "public datasets for it: horse2zebra, apple2orange," in dataset_line.dataset_summary(state, "unpaired")
    assert "public datasets for it: maps, edges2shoes, edges2handbags, night2day;" in \
        dataset_line.dataset_summary(state, "aligned")


def test_train_tab_names_the_task_whose_layout_a_folder_has(tmp_path):
    """A folder of trainA/ and trainB/ read as A|B pairs said "0 training images" and A/ and B/ folders the same;
    the paired task on A|B images said "needs sub-folders A/ and B/" and no more. The line names the task that fits."""
    from conftest import write_aligned, write_collection
    from demo import dataset_line
    from demo.state import AppState

    data = tmp_path / "data"
    write_aligned(data / "pairs" / "train", 2)
    write_collection(data / "zebras" / "trainA", 2, (200, 40, 40), seed=1)
    write_collection(data / "zebras" / "trainB", 2, (40, 40, 200), seed=2)
    for side in "AB":
        write_collection(data / "halves" / "train" / side, 2, (40, 200, 40), seed=3)
    state = AppState(tmp_path / "checkpoints", data, tmp_path / "runs")
    expected = {
        ("zebras", "aligned"): "<code>zebras</code> in the data root holds trainA/ and trainB/: the layout of "
                               "<i>Unpaired (CycleGAN)</i>; <i>Custom: A|B images</i> reads images (in train/, or in "
                               "the folder itself).",
        ("halves", "facades"): "<code>halves</code> in the data root holds A/ and B/ folders in train/: the layout of "
                               "<i>Custom: A/ and B/ folders</i>; <i>Facades: labels → photo</i> reads images",
        ("pairs", "paired"): "<code>pairs</code> in the data root holds images in train/: the layout of <i>Facades: "
                             "labels → photo</i>, <i>Colorize: gray → colour</i> or <i>Custom: A|B images</i>; "
                             "<i>Custom: A/ and B/ folders</i> reads A/ and B/ folders in train/.",
        ("pairs", "unpaired"): "<i>Unpaired (CycleGAN)</i> reads trainA/ and trainB/.",
    }
    for (folder, task), said in expected.items():
        assert said in dataset_line.dataset_summary(state, task, folder), (folder, task)
    for folder, task in (("zebras", "unpaired"), ("halves", "paired"), ("pairs", "aligned")):
        assert "layout" not in dataset_line.dataset_summary(state, task, folder)


def test_the_dataset_line_says_why_a_folder_has_no_training_images(tmp_path):
    """An empty folder, one of other files (.txt, .heic) and trainA/ beside an empty trainB/ were each "0 training
    images" or "2 pictures in trainA/ and 0 in trainB/", nothing more, until Start refused them. The line now says
    which files are read and where, and that an unpaired run needs pictures in both collections."""
    from conftest import write_collection
    from demo import dataset_line
    from demo.state import AppState

    data = tmp_path / "data"
    (data / "empty").mkdir(parents=True)
    (data / "notes" / "train").mkdir(parents=True)
    (data / "notes" / "train" / "a.txt").write_text("<b>x</b>")
    write_collection(data / "half" / "trainA", 2, (200, 40, 40), seed=1, size=8)
    (data / "half" / "trainB").mkdir()
    state = AppState(tmp_path / "checkpoints", data, tmp_path / "runs")
    kinds = ".jpg, .jpeg, .png, .bmp, .webp, .tif, .tiff or .gif files"
    assert dataset_line.dataset_summary(state, "colorize", "empty").endswith(f"0 training images. (no {kinds} in it)")
    assert dataset_line.dataset_summary(state, "aligned", "notes").endswith(f"0 training images. (no {kinds} in its "
                                                                            "train/)")
    assert dataset_line.dataset_summary(state, None) == "<b>Dataset:</b> choose a task."  # not "for the None task"
    assert dataset_line.dataset_summary(state, "unpaired", "half").endswith(
        "2 pictures in trainA/ and 0 in trainB/ (unpaired). An unpaired run needs pictures in both: put some in "
        "trainB/.")


def test_the_dataset_line_says_why_a_paired_folder_has_no_pairs(tmp_path):
    """A paired folder whose A/ and B/ hold images but share no file name was told "no .jpg, ... files in its
    train/", which it has; the line now says pairs are matched by name, or which side holds no images."""
    from conftest import write_collection
    from demo import dataset_line
    from demo.state import AppState

    data = tmp_path / "data"
    write_collection(data / "unmatched" / "train" / "A", 2, (200, 60, 40), seed=1, size=8)
    write_collection(data / "unmatched" / "train" / "B", 2, (40, 60, 200), seed=2, size=8)
    for path in (data / "unmatched" / "train" / "B").iterdir():
        path.rename(path.with_name(f"other_{path.name}"))
    write_collection(data / "one_side" / "A", 2, (200, 60, 40), seed=1, size=8)
    (data / "one_side" / "B").mkdir()
    state = AppState(tmp_path / "checkpoints", data, tmp_path / "runs")
    assert dataset_line.dataset_summary(state, "paired", "unmatched").endswith(
        "0 training images. (no file name in A/ is in B/: pairs are matched by name without extension)")
    assert dataset_line.dataset_summary(state, "paired", "one_side").endswith(
        "0 training images. (no image files in B/)")


def test_train_tab_says_when_the_preset_trains_on_part_of_the_data(tmp_path):
    """The dataset line counted the whole folder though Quick demo trains on 100 images (max_images); it says so
    now, for a folder, each unpaired collection and an upload, and follows the preset picked. The 100 are spread
    evenly over the file-name order (they were the first 100, one class of a class-sorted dataset)."""
    from conftest import write_collection
    from demo.app import build_app

    data = tmp_path / "data"
    write_collection(data / "many" / "train", 101, (200, 40, 40), seed=1, size=8)
    write_collection(data / "zebras" / "trainA", 101, (200, 40, 40), seed=2, size=8)
    write_collection(data / "zebras" / "trainB", 3, (40, 40, 200), seed=3, size=8)
    blocks = build_app(tmp_path / "checkpoints", data, tmp_path / "runs", device="cpu")
    # the handler a preset change calls to redraw the dataset line
    line = next(fn.fn for fn in blocks.fns.values() if "Preset" in [getattr(c, "label", None) for c in fn.inputs]
                and "train-dataset" in [getattr(c, "elem_id", None) for c in fn.outputs])
    assert line("colorize", "many", None, "Quick demo") == ("<b>Dataset:</b> <code>many</code> in the data root, 101 "
                                                           "training images; the Quick demo preset trains on 100, "
                                                           "spread evenly over the file-name order.")
    assert line("colorize", "many", None, "Standard (paper)").endswith("101 training images.")
    assert line("unpaired", "zebras", None, "Quick demo").endswith(
        "101 pictures in trainA/ and 3 in trainB/ (unpaired); the Quick demo preset trains on 100 of each, spread "
        "evenly over the file-name order.")
    assert line("colorize", "", "data.zip", "Quick demo").endswith(
        "(its images are counted when Start unpacks it; the Quick demo preset trains on at most 100 of them).")


def test_the_dataset_line_lists_a_folder_only_as_far_as_the_app_trains(tmp_path, monkeypatch):
    """Each keystroke in the folder box listed the typed folder whole, a stat and a path object per file, and sorted
    them, with no limit on how many ran at once: a folder of 100,000 files cost 4-5 s of CPU per keystroke here (an
    unpaired or paired task on it, as much again for the layout hint). The line now counts up to one above the
    app's cap (MAX_IMAGES) from one directory listing, says "more than", and two lines are computed at once."""
    import os

    from conftest import write_collection
    from demo import dataset_line, train_tab
    from demo.app import build_app
    from demo.state import AppState
    from pix2pix_core import images

    data = tmp_path / "data"
    write_collection(data / "many" / "train", 12, (200, 40, 40), seed=1, size=8)
    write_collection(data / "zebras" / "trainA", 12, (200, 40, 40), seed=2, size=8)
    write_collection(data / "zebras" / "trainB", 3, (40, 40, 200), seed=3, size=8)
    os.symlink("loop.png", data / "zebras" / "trainB" / "loop.png")  # a link loop and a dangling link: no image
    os.symlink(tmp_path / "gone.png", data / "zebras" / "trainB" / "gone.png")
    state = AppState(tmp_path / "checkpoints", data, tmp_path / "runs")
    monkeypatch.setattr(dataset_line, "MAX_IMAGES", 5, raising=False)
    looked_at = []
    real = images.is_image_file
    monkeypatch.setattr(images, "is_image_file", lambda path: looked_at.append(path) or real(path))
    line = dataset_line.dataset_summary(state, "colorize", "many", preset="Standard (paper)")
    assert line == ("<b>Dataset:</b> <code>many</code> in the data root, more than 5 training images; Start refuses "
                    "more than 5 with the Standard (paper) preset (the Quick demo preset trains on 100 of them; the "
                    "command line on all).")
    assert len(looked_at) <= 6, len(looked_at)  # one above the cap, not the folder's 12
    assert dataset_line.dataset_summary(state, "unpaired", "zebras", preset="Quick demo") == (
        "<b>Dataset:</b> <code>zebras</code> in the data root, more than 5 pictures in trainA/ and 3 in trainB/ "
        "(unpaired).")
    blocks = build_app(tmp_path / "checkpoints", data, tmp_path / "runs", device="cpu")
    lines = [fn for fn in blocks.fns.values() if "train-dataset" in [getattr(c, "elem_id", None) for c in fn.outputs]
             and not any(event == "load" for _, event in fn.targets)]
    assert len(lines) == 4 and {fn.concurrency_limit for fn in lines} == {train_tab.DATASET_LINES_AT_ONCE}
    assert {fn.concurrency_id for fn in lines} == {"dataset_line"} and train_tab.DATASET_LINES_AT_ONCE <= 2


def test_a_folder_of_other_files_is_never_replaced(facades_archive, tmp_path, monkeypatch):
    archive = tmp_path / "facades.tar.gz"
    archive.write_bytes(facades_archive)
    monkeypatch.setitem(download.SOURCES, "facades",
                        download.with_url(download.SOURCES["facades"], "http://127.0.0.1:9/x",
                                          approx_bytes=len(facades_archive)))
    mine = tmp_path / "data" / "facades" / "mine.txt"
    mine.parent.mkdir(parents=True)
    mine.write_text("keep")
    with pytest.raises(Pix2PixError, match="move it away"):
        download.get_dataset("facades", tmp_path / "data", from_file=archive)
    assert mine.read_text() == "keep"


def test_a_cut_connection_keeps_the_part_for_the_next_run(server, facades_archive, tmp_path, monkeypatch):
    third = len(facades_archive) // 3
    sources = _source(server, facades_archive, sha256=hashlib.sha256(facades_archive).hexdigest())
    original = download.urllib.request.urlopen
    monkeypatch.setattr(download.urllib.request, "urlopen",
                        lambda request, timeout: _truncated(original(request, timeout=timeout), third))
    with pytest.raises(Pix2PixError, match="stopped.*run the same command again to resume"):
        download.get_dataset("facades", tmp_path, progress=False, sources=sources)
    part = tmp_path / ".downloads" / "facades.tar.gz.part"
    assert part.stat().st_size == third and not (tmp_path / "facades").exists()
    monkeypatch.setattr(download.urllib.request, "urlopen", original)
    download.get_dataset("facades", tmp_path, progress=False, sources=sources)
    assert server.ranges[-1] == f"bytes={third}-"
    assert len(list((tmp_path / "facades" / "train").iterdir())) == 5


class _truncated:
    """A response that delivers only its first `n` bytes, as a connection cut mid-way."""

    def __init__(self, response, n: int):
        self.response, self.left = response, n
        self.status, self.headers = response.status, response.headers

    def read(self, size: int) -> bytes:
        chunk = self.response.read(min(size, self.left)) if self.left else b""
        self.left -= len(chunk)
        return chunk

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.response.close()


def test_a_truncated_archive_is_one_line_and_leaves_no_dataset(facades_archive, tmp_path, monkeypatch, capsys):
    archive = tmp_path / "facades.tar.gz"
    archive.write_bytes(facades_archive[: len(facades_archive) // 2])
    monkeypatch.setitem(download.SOURCES, "facades",
                        download.with_url(download.SOURCES["facades"], "http://127.0.0.1:9/x",
                                          approx_bytes=len(facades_archive)))
    assert cli.main(["data", "facades", "--from", str(archive), "--out", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: facades.tar.gz: not a readable facades archive (truncated or corrupt")
    assert archive.exists() and not (tmp_path / "data" / "facades").exists()
    assert [p.name for p in (tmp_path / "data").iterdir()] == []  # no half-unpacked work folder


# ------------------------------------------------------------------------------------------ the official sets
# datasets/download_pix2pix_dataset.sh and datasets/download_cyclegan_dataset.sh of
# junyanz/pytorch-CycleGAN-and-pix2pix: the names each accepts and lists (read for this table), and ours for them
OFFICIAL_PIX2PIX = {"cityscapes": None, "night2day": "night2day", "edges2handbags": "edges2handbags",
                    "edges2shoes": "edges2shoes", "facades": "facades", "maps": "maps"}
OFFICIAL_CYCLEGAN = {"apple2orange": "apple2orange", "summer2winter_yosemite": "summer2winter_yosemite",
                     "horse2zebra": "horse2zebra", "monet2photo": "monet2photo", "cezanne2photo": "cezanne2photo",
                     "ukiyoe2photo": "ukiyoe2photo", "vangogh2photo": "vangogh2photo", "maps": "cyclegan-maps",
                     "cityscapes": None, "facades": "cyclegan-facades", "iphone2dslr_flower": "iphone2dslr_flower",
                     "ae_photos": "ae_photos"}


def test_every_official_set_is_offered_or_said_why_not():
    for official, ours in OFFICIAL_PIX2PIX.items():
        if ours is None:
            assert official in download.NOT_OFFERED and official not in download.SOURCES
            continue
        source = download.SOURCES[ours]
        assert source.url == f"http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/{official}.tar.gz"
        assert source.task in ("aligned", "facades") and source.suffix == ".tar.gz"
        assert source.size is None and source.sha256 is None  # never guessed
    for official, ours in OFFICIAL_CYCLEGAN.items():
        if ours is None:
            assert f"cyclegan-{official}" in download.NOT_OFFERED
            continue
        source = download.SOURCES[ours]
        assert source.url == f"http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/{official}.zip"
        assert source.task == "unpaired" and source.suffix == ".zip"
        assert source.size is None and source.sha256 is None and source.md5 is None
    offered = {*OFFICIAL_PIX2PIX.values(), *OFFICIAL_CYCLEGAN.values(), "food"} - {None}
    assert set(download.SOURCES) == offered
    assert download.SOURCES["facades"].task == "facades"  # `facades` still means the pix2pix A|B archive
    for source in download.SOURCES.values():
        assert source.licence and source.credit and source.about
        assert source.task != "aligned" or source.direction in ("AtoB", "BtoA")


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, data in files.items():
            bundle.writestr(zipfile.ZipInfo(name), data, compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def _unpaired_files(top: str, splits=("trainA", "trainB", "testA", "testB"), n: int = 3) -> dict[str, bytes]:
    files = {f"{top}/{split}/{i}.jpg": _jpeg((32, 32), seed=i) for split in splits for i in range(n)}
    files[f"{top}/README.txt"] = b"credits"
    files[f"__MACOSX/{top}/trainA/._0.jpg"] = b"junk"
    return files


def _offline(monkeypatch, name: str, data: bytes, **changes) -> None:
    """SOURCES[name] at a closed port, its size bound fitted to `data` (a synthetic archive)."""
    fitted = {"approx_bytes": len(data), "bounds": None, **changes}
    monkeypatch.setitem(download.SOURCES, name, download.with_url(download.SOURCES[name], "http://127.0.0.1:9/x",
                                                                  **fitted))


def _tree(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in _files(folder)}


def _left_in(folder: Path) -> list[Path]:
    """What a refused or interrupted unpack left in the data root (it may not have been made at all)."""
    return sorted(folder.iterdir()) if folder.exists() else []


def test_a_pix2pix_set_unpacks_for_the_aligned_task(tmp_path, monkeypatch, capsys):
    files = {f"edges2shoes/{split}/{i}_AB.jpg": _jpeg((64, 32), seed=i)
             for split, n in (("train", 4), ("val", 2)) for i in range(n)}
    data = _tar_gz(files)  # with ../evil.jpg, /tmp/abs-evil.jpg and a link to /etc/passwd
    archive = tmp_path / "edges2shoes.tar.gz"
    archive.write_bytes(data)
    _offline(monkeypatch, "edges2shoes", data)
    assert cli.main(["data", "edges2shoes", "--from", str(archive), "--out", str(tmp_path / "data")]) == 0
    folder = tmp_path / "data" / "edges2shoes"
    assert _tree(folder) == {*(f"train/{i}_AB.jpg" for i in range(4)), "val/0_AB.jpg", "val/1_AB.jpg"}
    assert _files(tmp_path / "data") == _files(folder)
    assert not (tmp_path / "evil.jpg").exists() and not Path("/tmp/abs-evil.jpg").exists()
    printed = capsys.readouterr().out
    assert "Yu, K. Grauman" in printed and "licence unclear" in printed
    assert f"pix2pix train --task aligned --direction AtoB --data {folder}" in printed
    assert "edges2shoes: train 4, val 2 images" in printed


@pytest.mark.parametrize("name, top", [("horse2zebra", "horse2zebra"), ("cyclegan-maps", "maps")])
def test_a_cyclegan_set_unpacks_for_the_unpaired_task(name, top, tmp_path, monkeypatch, capsys):
    from pix2pix_core.dataset_layout import unpaired_folders

    files = _unpaired_files(top)
    files.update({f"{top}/train/0.jpg": _jpeg((64, 32)), f"{top}/val/0.jpg": _jpeg((64, 32))})  # maps.zip has them
    data = _zip(files)
    archive = tmp_path / f"{top}.zip"
    archive.write_bytes(data)
    _offline(monkeypatch, name, data)
    assert cli.main(["data", name, "--from", str(archive), "--out", str(tmp_path / "data")]) == 0
    folder = tmp_path / "data" / name
    assert _tree(folder) == {f"{split}/{i}.jpg" for split in ("trainA", "trainB", "testA", "testB") for i in range(3)}
    assert _files(tmp_path / "data") == _files(folder) and archive.exists()
    assert unpaired_folders(folder, "train") == (folder / "trainA", folder / "trainB")
    printed = capsys.readouterr().out
    assert "Zhu, T. Park" in printed and f"pix2pix train --task unpaired --data {folder}" in printed
    # a second call sees the data and unpacks nothing
    assert cli.main(["data", name, "--from", str(archive), "--out", str(tmp_path / "data")]) == 0
    assert "already there (trainA 3, trainB 3, testA 3, testB 3)" in capsys.readouterr().out


def test_ae_photos_needs_only_its_test_photos(tmp_path, monkeypatch, capsys):
    data = _zip(_unpaired_files("ae_photos", splits=("testA",)))
    archive = tmp_path / "ae_photos.zip"
    archive.write_bytes(data)
    _offline(monkeypatch, "ae_photos", data)
    assert cli.main(["data", "ae_photos", "--from", str(archive), "--out", str(tmp_path / "data")]) == 0
    assert _tree(tmp_path / "data" / "ae_photos") == {"testA/0.jpg", "testA/1.jpg", "testA/2.jpg"}
    assert "pix2pix translate --checkpoint MODEL" in capsys.readouterr().out


def test_ae_photos_size_is_held_to_its_stated_bound(tmp_path, capsys):
    archive = tmp_path / "ae_photos.zip"
    archive.write_bytes(_zip(_unpaired_files("ae_photos", splits=("testA",))))
    assert cli.main(["data", "ae_photos", "--from", str(archive), "--out", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err
    assert "failed its check (" in err and "expected 1 MB to 100 MB" in err
    assert not (tmp_path / "data" / "ae_photos").exists()


def test_a_cyclegan_zip_without_a_collection_is_refused(tmp_path, monkeypatch, capsys):
    data = _zip(_unpaired_files("horse2zebra", splits=("trainA", "testA")))
    archive = tmp_path / "horse2zebra.zip"
    archive.write_bytes(data)
    _offline(monkeypatch, "horse2zebra", data)
    assert cli.main(["data", "horse2zebra", "--from", str(archive), "--out", str(tmp_path / "data")]) == 2
    assert "holds no trainB/ images: not the CycleGAN horse2zebra archive" in capsys.readouterr().err
    assert _left_in(tmp_path / "data") == []


@pytest.mark.parametrize("hostile", ["../evil.jpg", "/tmp/abs-evil.jpg", "horse2zebra/trainA/../../../evil.jpg",
                                     "horse2zebra\\..\\..\\evil.jpg", "link"])
def test_a_hostile_zip_is_refused_whole(hostile, tmp_path, monkeypatch, capsys):
    files = _unpaired_files("horse2zebra")
    if hostile == "link":
        buffer = io.BytesIO(_zip(files))
        with zipfile.ZipFile(buffer, "a") as bundle:
            link = zipfile.ZipInfo("horse2zebra/trainA/passwd.jpg")
            link.external_attr = (stat.S_IFLNK | 0o777) << 16
            bundle.writestr(link, "/etc/passwd")
        data = buffer.getvalue()
    else:
        data = _zip({**files, hostile: _jpeg((32, 32))})
    archive = tmp_path / "horse2zebra.zip"
    archive.write_bytes(data)
    _offline(monkeypatch, "horse2zebra", data)
    assert cli.main(["data", "horse2zebra", "--from", str(archive), "--out", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and ("unsafe path" in err[0] or "symbolic link" in err[0])
    assert _left_in(tmp_path / "data") == [] and archive.exists()
    assert not (tmp_path / "evil.jpg").exists() and not Path("/tmp/abs-evil.jpg").exists()


UNCHECKED = {"food": {"size": None, "md5": None}}  # a synthetic archive has not Food-101's size and checksum


def assert_refused_whole(tmp_path, monkeypatch, capsys, name: str, file: str, data: bytes, message: str) -> None:
    """`pix2pix data NAME --from FILE` (FILE holding `data`) exits 2 saying `message`, and leaves nothing."""
    archive = tmp_path / file
    archive.write_bytes(data)
    _offline(monkeypatch, name, data, **UNCHECKED.get(name, {}))
    assert cli.main(["data", name, "--from", str(archive), "--out", str(tmp_path / "data")]) == 2
    assert message in capsys.readouterr().err
    assert _left_in(tmp_path / "data") == []


def test_bombs_are_refused_by_the_unpacking_limits(tmp_path, monkeypatch, capsys):
    """A member of zeros deflates a thousandfold: over UNPACK_RATIO times the archive, refused, nothing left."""
    monkeypatch.setattr(download, "UNPACK_MIN_BYTES", 1)
    zeros = b"\x00" * 2_000_000
    cases = [("horse2zebra", "horse2zebra.zip", _zip({**_unpaired_files("horse2zebra"),
                                                     "horse2zebra/trainA/bomb.jpg": zeros}), "above the limit"),
             ("maps", "maps.tar.gz", _tar_gz({"maps/train/0.jpg": _jpeg((64, 32)), "maps/train/bomb.jpg": zeros},
                                             hostile=False), "times its own size"),
             ("food", "food-101.tar.gz", _tar_gz({"food-101/images/pizza/0.jpg": _jpeg((48, 40)),  # was unbounded
                                                  "food-101/images/pizza/bomb.jpg": zeros}, hostile=False),
              "times its own size")]
    for name, file, data, message in cases:
        assert_refused_whole(tmp_path, monkeypatch, capsys, name, file, data, message)


def test_too_many_members_are_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(download, "MAX_FILES", 5)
    for name, file, data, message in [
            ("horse2zebra", "horse2zebra.zip", _zip(_unpaired_files("horse2zebra")), "above the limit of 5"),
            ("maps", "maps.tar.gz", _tar_gz({f"maps/train/{i}.jpg": _jpeg((64, 32), seed=i) for i in range(6)},
                                            hostile=False), "holds more than 5 members"),
            ("food", "food-101.tar.gz", _tar_gz({f"food-101/images/pizza/{i}.jpg": _jpeg((48, 40), seed=i)
                                                 for i in range(6)}, hostile=False), "holds more than 5 members")]:
        assert_refused_whole(tmp_path, monkeypatch, capsys, name, file, data, message)


def _interrupt(real, at: int):
    """`real`, but call number `at` raises KeyboardInterrupt (Ctrl-C) instead."""
    calls = []

    def wrapped(*args, **kwargs):
        calls.append(1)
        if len(calls) == at:
            raise KeyboardInterrupt
        return real(*args, **kwargs)
    return wrapped


def test_an_interrupted_unpack_leaves_nothing(tmp_path, monkeypatch):
    """Ctrl-C in the middle of unpacking (the third member): no half dataset and no work folder; the next run
    unpacks it whole."""
    from pix2pix_core import archive as zips

    tar = _tar_gz({f"maps/train/{i}.jpg": _jpeg((64, 32), seed=i) for i in range(5)}, hostile=False)
    zipped = _zip(_unpaired_files("horse2zebra"))
    for name, file, data, target, attribute in [("maps", "maps.tar.gz", tar, tarfile.TarFile, "extract"),
                                                ("horse2zebra", "horse2zebra.zip", zipped, zips, "_chunks")]:
        archive, out = tmp_path / file, tmp_path / name
        archive.write_bytes(data)
        _offline(monkeypatch, name, data)
        with monkeypatch.context() as patch:
            patch.setattr(target, attribute, _interrupt(getattr(target, attribute), at=3))
            with pytest.raises(KeyboardInterrupt):
                download.get_dataset(name, out, from_file=archive, progress=False)
        assert _left_in(out) == []
        download.get_dataset(name, out, from_file=archive, progress=False)
        assert [p.name for p in _left_in(out)] == [name] and len(_files(out)) in (5, 12)


def test_a_cyclegan_download_resumes_and_leaves_only_the_dataset(tmp_path):
    data = _zip(_unpaired_files("apple2orange"))
    served = _Server(data)
    try:
        sources = {"apple2orange": download.with_url(download.SOURCES["apple2orange"], served.url,
                                                     approx_bytes=len(data), sha256=hashlib.sha256(data).hexdigest())}
        part = tmp_path / ".downloads" / "apple2orange.zip.part"
        part.parent.mkdir(parents=True)
        part.write_bytes(data[:100])
        folder = download.get_dataset("apple2orange", tmp_path, progress=False, sources=sources)
        assert served.ranges == ["bytes=100-"]
        assert _files(tmp_path) == _files(folder) and len(_files(folder)) == 12
    finally:
        served.close()


def test_a_corrupt_zip_download_is_deleted(tmp_path, capsys):
    good = _zip(_unpaired_files("apple2orange"))
    data = good[: len(good) // 2]  # the server sends all it announces, but the zip is cut (its directory lost)
    served = _Server(data)
    try:
        sources = {"apple2orange": download.with_url(download.SOURCES["apple2orange"], served.url,
                                                     approx_bytes=len(data))}
        with pytest.raises(Pix2PixError, match="not a readable zip file.*the download was deleted"):
            download.get_dataset("apple2orange", tmp_path, progress=False, sources=sources)
        assert _files(tmp_path) == []
    finally:
        served.close()


@pytest.mark.parametrize("name", ["maps", "horse2zebra", "cyclegan-facades", "ae_photos"])
def test_offline_every_set_fails_fast_with_one_line(name, tmp_path, capsys):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    start = time.monotonic()
    suffix = download.SOURCES[name].suffix
    code = cli.main(["data", name, "--out", str(tmp_path / "data"), "--url", f"http://127.0.0.1:{port}/{name}{suffix}"])
    assert code == 2 and time.monotonic() - start < 10
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    reached, _, rest = lines[0].partition("); ")
    assert reached.startswith(f"error: cannot reach 127.0.0.1:{port} (")  # the reason: the system's words
    assert rest == (f"download it by hand from http://127.0.0.1:{port}/{name}{suffix} and unpack it to "
                    f"{tmp_path / 'data' / name} with `pix2pix data {name} --from FILE --out {tmp_path / 'data'}`")
    assert _files(tmp_path) == []


def test_list_shows_every_set_with_its_size_task_and_layout(capsys):
    assert cli.main(["data", "--list"]) == 0
    text = capsys.readouterr().out
    for source in download.SOURCES.values():
        (line,) = [row for row in text.splitlines() if row.startswith(f"{source.name} ")]
        assert download.describe_size(source.approx_bytes) in line and source.train_with in line
        assert " ".join(f"{split}/" for split in source.splits) in line
        assert f"    {source.about}" in text and source.licence in text
    assert "maps                   239 MB    --task aligned --direction AtoB" in text
    assert "horse2zebra            117 MB    --task unpaired" in text
    assert "not offered: cityscapes, cyclegan-cityscapes" in text


@pytest.mark.parametrize("argv, message", [
    (["data", "cityscapes"], "cityscapes is not offered: the official pix2pix and CycleGAN repositories no longer "
                             "host it"),
    (["data", "cyclegan-cityscapes"], "https://www.cityscapes-dataset.com"),
    (["data"], "name a dataset (`pix2pix data facades`), or see them all with `pix2pix data --list`"),
    (["data", "horse2zebra", "--limit", "10"], "--limit keeps a share of the food photos; horse2zebra is unpacked"),
    (["data", "facades", "--limit", "10"], "--limit keeps a share of the food photos; facades is unpacked"),
    (["data", "zebras"], "unknown dataset 'zebras'; choose one of facades, food, maps,"),
])
def test_names_that_are_not_offered_say_why(argv, message, tmp_path, capsys):
    assert cli.main([*argv, "--out", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "data").exists()


def test_a_full_disk_while_unpacking_a_download_keeps_it(tmp_path, capsys, monkeypatch):
    """A refused zip is deleted (a later run downloads it again), but a member the disk had no room for is no fault
    of the zip: the whole download (up to 1.5 GB) was deleted with it, to be downloaded again once space was made."""
    import errno

    from pix2pix_core import archive as zips

    data = _zip(_unpaired_files("apple2orange"))
    served = _Server(data)

    class FullDisk(io.BytesIO):
        def write(self, chunk):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(zips, "open", lambda path, mode="r", *args, **kwargs: FullDisk(), raising=False)
    try:
        sources = {"apple2orange": download.with_url(download.SOURCES["apple2orange"], served.url,
                                                     approx_bytes=len(data))}
        with pytest.raises(Pix2PixError, match="No space left on device") as caught:
            download.get_dataset("apple2orange", tmp_path, progress=False, sources=sources)
        kept = tmp_path / ".downloads" / "apple2orange.zip"
        assert kept.read_bytes() == data and "deleted" not in str(caught.value)
        assert f"pix2pix data apple2orange --from {kept} --out {tmp_path}" in str(caught.value)
        assert _left_in(tmp_path) == [tmp_path / ".downloads"]  # no half dataset
    finally:
        served.close()
