"""Helpers of the app's tests (test_app_api, test_app_limits, test_app_browser): a live `python app.py` on a free
port with tiny models, a client for it, and small data makers they share."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from conftest import write_aligned
from pix2pix_core.checkpoint import export_generator

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_app(folder: Path, facades_checkpoint: Path, colorize_checkpoint: Path, timeout: float = 60.0,
                extra_args: tuple[str, ...] = (), graceful_stop: bool = False):
    """Start app.py with tiny models and its own data root / runs folder; yield (url, folders). At the end it is
    killed (all it leaves is under `folder`), or with `graceful_stop` stopped as `kill` does (SIGTERM), for the tests
    of that stop: it takes 3-9 s, Gradio waiting for its clients' connections to close."""
    checkpoints, data_root, runs = folder / "checkpoints", folder / "data", folder / "runs"
    checkpoints.mkdir(parents=True)
    export_generator(facades_checkpoint, checkpoints / "facades_tiny.safetensors")
    export_generator(colorize_checkpoint, checkpoints / "colorize_tiny.safetensors")
    write_aligned(data_root / "facades" / "train", 4, seed=5)
    port = free_port()
    log_path = folder / "app.log"
    # Its Gradio cache and temp files in its own folder: a test app is killed, and Gradio's cache of the results
    # it served (9 MB colorized PNGs) stayed in the shared /tmp/gradio for good (4.7 GB here after a day of runs)
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", GRADIO_TEMP_DIR=str(folder / "gradio"))
    env.setdefault("TMPDIR", str(folder / "tmp"))  # unless a test chose one
    Path(env["TMPDIR"]).mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py"), "--port", str(port), "--checkpoints", str(checkpoints),
             "--data-root", str(data_root), "--runs-dir", str(runs), "--torch-threads", "1", *extra_args],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/"
    try:
        started = time.perf_counter()
        while True:
            if process.poll() is not None:
                pytest.fail(f"app.py exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                if time.perf_counter() - started > timeout:
                    pytest.fail(f"app.py did not serve {url} within {timeout} s:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.25)
        yield url, {"checkpoints": checkpoints, "data": data_root, "runs": runs, "log": log_path,
                    "startup_seconds": time.perf_counter() - started}
    finally:
        if graceful_stop:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        process.kill()
        process.wait()


@contextlib.contextmanager
def served_in_process(blocks):
    """Serve `blocks` (from demo.app.build_app) in this process, with the app's own queue and launch options, on a
    free port of 127.0.0.1; yields the port, and closes the server afterwards. For tests that reach into the
    running app's Gradio objects, which a subprocess (`running_app`) hides."""
    from demo.app import launch_options, queue_options

    blocks.queue(**queue_options())
    port = free_port()
    blocks.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                  **launch_options(blocks.app_state))
    try:
        yield port
    finally:
        blocks.close()


def app_client(url: str) -> Client:
    """A client that keeps the files it downloads under the test's temp folder (by default it keeps them in
    <temp>/gradio for good: 3.4 GB of colorized results had piled up there)."""
    return Client(url, verbose=False, download_files=tempfile.mkdtemp(prefix="downloads-"))


def http_call(url: str, route: str, body: str) -> tuple[str, str]:
    """(last event, its data) of a POST of the JSON text `body` to Gradio's HTTP route gradio_api/call/<route>, read
    as curl would: `{"data": [...]}` for call/<api_name>, the arguments by keyword for call/v2/<api_name>. Written by
    hand: gradio_client cannot send NaN or Infinity (other clients can), nor call by keyword."""
    request = urllib.request.Request(f"{url}gradio_api/call/{route}", data=body.encode(),
                                     headers={"Content-Type": "application/json"})
    event_id = json.loads(urllib.request.urlopen(request, timeout=30).read())["event_id"]
    lines = urllib.request.urlopen(f"{url}gradio_api/call/{route}/{event_id}", timeout=60).read().decode()
    events = [line.split(":", 1)[1].strip() for line in lines.splitlines() if line.startswith("event:")]
    data = [line.split(":", 1)[1].strip() for line in lines.splitlines() if line.startswith("data:")]
    return events[-1], data[-1]


def save(image: Image.Image, path: Path, **options) -> Path:
    image.save(path, **options)
    return path


def wait_for_status(client: Client, done, timeout: float = 90.0) -> dict:
    started = time.perf_counter()
    while True:
        status = client.predict(api_name="/train_status")
        if done(status):
            return status
        assert time.perf_counter() - started < timeout, f"training status did not arrive in time: {status}"
        time.sleep(0.5)


ODD_WIDTHS = "odd_widths"


def odd_width_dataset(data_root: Path) -> None:
    """Images, but none an A|B pair (odd widths): a run on them starts, then fails while loading."""
    bad = data_root / ODD_WIDTHS / "train"
    bad.mkdir(parents=True, exist_ok=True)
    for i in range(3):
        Image.new("RGB", (63, 32), (i, 0, 0)).save(bad / f"{i}.jpg")
