"""Image requests that no single caller can use to take the app: a pixel cap, lanes, compact outputs.

- The app accepts at most APP_MAX_PIXELS per image (the CLI allows 50 MP): a 12 MP phone photo works,
  a 7000x7000 image that would take half a minute of CPU is refused in milliseconds. Each side is at most
  APP_MAX_SIDE (the library's MAX_SIDE, 16,384 px): a 1,000,000 x 1 PNG (1 MP, 3 KB) took 64 s and
  17.5 GB to colorize, as some work grows with a side rather than with the pixel count.
- Work on images above LARGE_PIXELS runs in its own lane, one at a time with a short waiting line; small
  requests have lanes of their own, so a queue of large photos cannot make a 256 px label map wait.
- Every waiting line is bounded, and a request beyond it is refused at once: the handlers are sync, so a
  waiting request holds one of the threads (40) that all of Gradio's events share. 80 waiting /colorize
  requests held them all: an idle /facade took 22-31 s instead of 0.12 s, /train_status and /train_stop
  up to 18 s.
- Results are written to files here (PNG when small, JPEG when large: 1-2 MB instead of a 22 MB PNG) and
  handed to Gradio as paths, which it copies into its cache atomically; PIL images returned directly are
  written to a file named by their content and rewritten in place each time, so a browser still fetching
  an identical earlier result got it cut short (h11 "Too little data for declared Content-Length").
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import io
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

from PIL import Image

from pix2pix_core.atomic_files import replaced_atomically
from pix2pix_core.errors import Pix2PixError
from pix2pix_core.images import MAX_SIDE

from . import disk

APP_MAX_PIXELS = 12_000_000  # per image sent to the app (pix2pix_core.images.MAX_PIXELS is 50 MP)
APP_MAX_SIDE = MAX_SIDE  # px, the longer side of an image sent to the app (open_image refuses above it too)
LARGE_PIXELS = 4_000_000  # above this an image is "large": its own lane, JPEG output
SMALL_LANE = 2  # small requests running at once, per endpoint
# Small requests waiting for their lane: at most SMALL_WAITING for one endpoint (20 clients sending to one
# endpoint at once, as benchmarks/app_load starts: 2 run, 18 wait) and SMALL_WAITING_ALL for all endpoints
# together; more are refused at once. With the large lane's, waiting and running image requests hold at most
# 3 x 2 + 24 + 1 + 2 = 33 of Gradio's 40 threads, so status, Stop and the page's other events always find one.
SMALL_WAITING = 18
SMALL_WAITING_ALL = 24
LARGE_LANE = 1  # large requests running at once, all endpoints together
LARGE_WAITING = 2  # large requests allowed to wait for the lane; more are refused at once
JPEG_QUALITY = 92
OUTPUT_MAX_AGE = 600.0  # seconds a result file stays here (Gradio has copied it by then)
OUTPUT_PRUNE_EVERY = 30.0  # seconds between looks for old results: a look stats every file (6,000: 50 ms)


def header_size(path: str) -> tuple[int, int]:
    """(width, height) from the file header (no decoding); (0, 0) when unreadable (open_image says why later)."""
    try:
        with Image.open(path) as image:
            return image.size
    except Exception:  # noqa: BLE001 - any unreadable file is reported by open_image with a clear message
        return 0, 0


def within_app_limits(width: int, height: int, max_pixels: int = APP_MAX_PIXELS) -> bool:
    """A readable image of at most `max_pixels` pixels and APP_MAX_SIDE px a side."""
    return 0 < width * height <= max_pixels and max(width, height) <= APP_MAX_SIDE


class WorkLanes:
    """Semaphores for image work: SMALL_LANE per endpoint, LARGE_LANE shared, each with a bounded waiting line
    (endpoints are the app's own names, never a client's)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._small: dict[str, threading.BoundedSemaphore] = {}
        self._small_waiting: dict[str, int] = {}
        self._all_small_waiting = 0
        self._large = threading.BoundedSemaphore(LARGE_LANE)
        self._large_places = threading.BoundedSemaphore(LARGE_LANE + LARGE_WAITING)

    @contextlib.contextmanager
    def lane(self, endpoint: str, pixels: int) -> Iterator[None]:
        if pixels <= LARGE_PIXELS:
            with self._small_lane(endpoint):
                yield
            return
        if not self._large_places.acquire(blocking=False):
            raise Pix2PixError(f"the app is busy with other large images; try again in a minute, or send an "
                               f"image under {LARGE_PIXELS / 1e6:.0f} megapixels")
        try:
            with self._large:
                yield
        finally:
            self._large_places.release()

    @property
    def small_waiting(self) -> int:
        """Small requests waiting for their lane now, all endpoints together."""
        return self._all_small_waiting

    @contextlib.contextmanager
    def _small_lane(self, endpoint: str) -> Iterator[None]:
        with self._lock:
            small = self._small.setdefault(endpoint, threading.BoundedSemaphore(SMALL_LANE))
        if not small.acquire(blocking=False):
            with self._lock:
                waiting = self._small_waiting.get(endpoint, 0)
                if waiting >= SMALL_WAITING or self._all_small_waiting >= SMALL_WAITING_ALL:
                    raise Pix2PixError("the app is busy with other requests; try again in a moment")
                self._small_waiting[endpoint] = waiting + 1
                self._all_small_waiting += 1
            try:
                small.acquire()
            finally:
                with self._lock:
                    self._small_waiting[endpoint] -= 1
                    self._all_small_waiting -= 1
        try:
            yield
        finally:
            small.release()


class OutputFiles:
    """Result images as files in a private temp folder, removed after OUTPUT_MAX_AGE and at exit.

    Every Facades stroke writes two (its photo and snapped map), so old ones are looked for every
    `prune_every` seconds, not at every save. Like an upload (upload_guard), no new result is written while
    the disk would keep less than `min_free_bytes`: results are written twice (here, then Gradio's copy, kept
    an hour), and one client repeating /colorize on one uploaded photo wrote ~12 MB/s, ~43 GB an hour."""

    def __init__(self, prune_every: float = OUTPUT_PRUNE_EVERY, min_free_bytes: int = disk.MIN_FREE_BYTES,
                 free_bytes: Callable[[Path], int] = disk.free_bytes):
        self.folder = Path(tempfile.mkdtemp(prefix="pix2pix-studio-outputs-"))
        self.prune_every, self._pruned_at = prune_every, time.monotonic()
        self.min_free_bytes, self.free_bytes = min_free_bytes, free_bytes
        self._latest: dict[str, tuple[Image.Image, str]] = {}  # name -> the picture save_latest wrote last
        # a content folder is written into and pruned (removed once empty) under this lock: never both at once
        self._lock = threading.RLock()
        atexit.register(shutil.rmtree, self.folder, True)

    def save(self, image: Image.Image, name: str) -> str:
        """A new file for each result (an upload's, an API call's), written as it is encoded."""
        self._refuse_if_disk_nearly_full()
        large = image.width * image.height > LARGE_PIXELS
        fd, path = tempfile.mkstemp(dir=self.folder, prefix=f"{name}-", suffix=".jpg" if large else ".png")
        try:
            with os.fdopen(fd, "wb") as handle:
                if large:
                    image.save(handle, format="JPEG", quality=JPEG_QUALITY)
                else:
                    image.save(handle, format="PNG")
        except BaseException:  # no half-written result left behind (JPEG refused sides above 65,535 px)
            Path(path).unlink(missing_ok=True)
            raise
        self._prune_now_and_then()
        return path

    def save_by_content(self, image: Image.Image, name: str) -> str:
        """A small result the page is often sent again unchanged (a stroke that snaps to the same map, the same
        seed again, the training sample at every redraw) as `<content hash>/<name>.png`: the same picture keeps
        one file and one URL (the browser does not fetch or redraw it again), and an existing file is never
        written over while it may be read."""
        encoded = io.BytesIO()
        image.save(encoded, format="PNG")
        data = encoded.getvalue()
        path = self.folder / hashlib.sha256(data).hexdigest()[:32] / f"{name}.png"
        with self._lock:
            with contextlib.suppress(OSError):
                os.utime(path)  # kept OUTPUT_MAX_AGE from its last use
                return str(path)
            self._refuse_if_disk_nearly_full()
            path.parent.mkdir(exist_ok=True)
            with replaced_atomically(path, mode=None) as handle:  # 0600: the app's own files
                handle.write(data)
        self._prune_now_and_then()
        return str(path)

    def save_latest(self, image: Image.Image, name: str) -> str:
        """save_by_content for a picture shown again and again (the training sample, at every redraw of every
        page that watches the run): encoded once per picture, then its file's age restarted at each use."""
        with self._lock:
            last = self._latest.get(name)
            if last is not None and last[0] is image:
                with contextlib.suppress(OSError):  # gone (pruned): written again below
                    os.utime(last[1])
                    return last[1]
            path = self.save_by_content(image, name)
            self._latest[name] = (image, path)
            return path

    def _refuse_if_disk_nearly_full(self) -> None:
        if self.free_bytes(self.folder) < self.min_free_bytes:
            raise Pix2PixError("the server's disk is nearly full; try again later")

    def _prune_now_and_then(self) -> None:
        if time.monotonic() - self._pruned_at >= self.prune_every:
            self.prune()

    def prune(self) -> None:
        """Remove results older than OUTPUT_MAX_AGE (and content folders left empty)."""
        with self._lock:
            self._pruned_at = time.monotonic()
            cutoff = time.time() - OUTPUT_MAX_AGE
            for entry in self.folder.iterdir():
                with contextlib.suppress(OSError):
                    for path in list(entry.iterdir()) if entry.is_dir() else [entry]:
                        with contextlib.suppress(OSError):
                            if path.stat().st_mtime < cutoff:
                                path.unlink()
                    if entry.is_dir():
                        entry.rmdir()  # only when empty
