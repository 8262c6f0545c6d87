"""`pix2pix data`: download from a local HTTP server (Range supported), checks, resume, --from, offline error."""

from __future__ import annotations

import hashlib
import io
import socket
import tarfile
import threading
import time
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
    from demo import train_tab
    from demo.state import AppState

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    state = AppState(tmp_path / "checkpoints", tmp_path / "data", tmp_path / "runs")
    text = train_tab.dataset_summary(state, "facades")
    assert "the 6 bundled example pairs, 6 training images" in text
    assert "<code>pix2pix data facades --out data/</code>" in text
    assert "pix2pix data food --out data/" in train_tab.dataset_summary(state, "colorize")
    train = tmp_path / "data" / "facades" / "train"
    train.mkdir(parents=True)
    for i in range(3):
        (train / f"{i}.jpg").write_bytes(_jpeg((64, 32), seed=i))
    text = train_tab.dataset_summary(state, "facades")
    assert text == "<b>Dataset:</b> <code>facades</code> in the data root, 3 training images."
    assert "not found" in train_tab.dataset_summary(state, "aligned", "missing")
    typed = "![x](https://example.com/t.png)<img src=x>"
    shown = train_tab.dataset_summary(state, "aligned", typed)
    assert "not found" in shown and "<img" not in shown and "&lt;img src=x&gt;" in shown


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
