"""The page: a title, three tabs, and the wiring between them (model pickers refresh on tab change)."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Optional

import gradio as gr
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from gradio.route_utils import FnIndexInferError
from gradio.utils import get_upload_folder
from starlette.middleware import Middleware

from pix2pix_core.distributed import pick_device

from . import colorize_tab, facades_tab, train_tab
from .event_requests import CheckedBlocks
from .gradio_cache import remove_empty_folders, tidy_deletion
from .messages import MAX_QUOTED, quoted, shorten
from .state import AppState
from .route_checks import RouteChecks
from .upload_guard import UploadGuard
from .ui import CSS

log = logging.getLogger("pix2pix_studio")

MAX_UPLOAD = "50mb"  # per uploaded file (photos, label maps, dataset zips); images are also limited in pixels
# Gradio keeps every upload and every result in its cache: check every 10 minutes, delete after an hour
DELETE_CACHE = (600, 3600)
# Gradio keeps a copy of every component's config per session (240 kB for this page), by default for 10,000
# sessions: 2.4 GB that any client could fill with new session hashes. The least recently used go first, and an
# open page's timer uses its session every second.
MAX_SESSIONS = 1000
# Events waiting in Gradio's queue (the events with a concurrency limit: one Start at a time, the dataset line, the
# page's own): unlimited by default, and 3,000 joins of /train_start with 60 kB inputs held 1 GB
MAX_QUEUED = 200


def queue_options() -> dict:
    """Arguments for `Blocks.queue`."""
    # api_open=False: Gradio's direct routes (/gradio_api/run/NAME, /api/NAME) ran events without the queue,
    # past each event's concurrency limit (one Start at a time, the dataset line's lane); clients use the queue
    return dict(default_concurrency_limit=1, api_open=False, max_size=MAX_QUEUED)


def launch_options(state: AppState) -> dict:
    """Arguments for `Blocks.launch` that belong to the app rather than to the command line."""
    # The default theme's fonts are served by the app itself; themes naming Google fonts would load them
    # from the internet, and the page must load nothing from outside the machine.
    return dict(css=CSS, max_file_size=MAX_UPLOAD, ssr_mode=False, footer_links=["api"],
                state_session_capacity=MAX_SESSIONS,
                app_kwargs={"exception_handlers": {RequestValidationError: short_validation_error,
                                                   FnIndexInferError: unknown_endpoint},
                            # the guard outside: every body the route checks read is already capped
                            "middleware": [Middleware(UploadGuard, cache_dir=get_upload_folder()),
                                           Middleware(RouteChecks)]})


async def short_validation_error(request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's reply to a request body of the wrong shape quotes the body's values whole (a megabyte
    string sent as `data` came back whole): say where and what, without the input."""
    errors = [{"loc": [str(part)[:MAX_QUOTED] for part in error.get("loc", ())][:8],
               "msg": shorten(error.get("msg", ""), 200)} for error in exc.errors()[:5]]
    return JSONResponse({"detail": errors}, status_code=422)


async def unknown_endpoint(request, exc: FnIndexInferError) -> JSONResponse:
    """A call to an API name the app does not have (`/gradio_api/call/<name>`, `/run/<name>`) was Gradio's
    FnIndexInferError as an "Exception in ASGI application" traceback in the log and a bare 500: a 404 that
    names it (shortened) instead, and nothing in the log."""
    name = quoted(request.path_params.get("api_name", ""))
    return JSONResponse({"detail": f"no API endpoint named {name}; the app's page lists them (Use via API)"},
                        status_code=404)


def build_app(checkpoints_dir: Path, data_root: Path, runs_dir: Path, device: str = "auto",
              runs_max_bytes: int = 5_000_000_000, train_memory_bytes: Optional[int] = None) -> gr.Blocks:
    """Create the app state and the Blocks; models load in the background so the page is served at once.
    A `device` torch does not know or this machine lacks is refused here (Pix2PixError, pick_device's words):
    the app started, and then every request failed with that one line."""
    pick_device(device)
    state = AppState(Path(checkpoints_dir), Path(data_root), Path(runs_dir), device=device,
                     runs_max_bytes=runs_max_bytes, train_memory_bytes=train_memory_bytes)
    tidy_deletion()  # Gradio's delete_cache left each file's folder, and an upload's path in memory, for good
    _remove_old_empty_folders()  # before any request: one could be writing its file into such a folder
    with CheckedBlocks(title="Pix2Pix Studio", delete_cache=DELETE_CACHE) as blocks:  # malformed inputs: one line
        gr.Markdown("# Pix2Pix Studio\nImage-to-image translation with conditional GANs "
                    "(Isola et al., CVPR 2017): draw a facade, colorize a photo, or train your own model.")
        with gr.Tabs():
            with gr.Tab("Facades", id="facades") as facades_item:
                facades = facades_tab.build(state)
            with gr.Tab("Colorize", id="colorize") as colorize_item:
                colorize = colorize_tab.build(state)
            with gr.Tab("Train", id="train") as train_item:
                train = train_tab.build(state)

        def picker(task: str, current: str | None, always_visible: bool = True):
            """Rescan the model folders; keep the user's choice when it still exists."""
            state.models.refresh()
            names = state.models.names(task)
            value = current if current in names else state.models.default(task)
            return gr.Dropdown(choices=names, value=value, visible=always_visible or len(names) > 1)

        private = dict(api_visibility="private", show_progress="hidden")
        facades_item.select(lambda m: picker("facades", m), facades["model"], facades["model"], **private)
        colorize_item.select(lambda m: picker("colorize", m, False), colorize["model"], colorize["model"], **private)
        train_item.select(*train["start_from_refresh"], **private)  # models trained since the page loaded
        train_item.select(train["translate"]["refresh"], train["translate"]["model"], train["translate"]["model"],
                          **private)  # unpaired models trained since the page loaded
        train_item.select(*train["redraw"], **private)  # a hidden tab may have missed the timer's updates
        render, inputs, outputs = facades["first_render"]
        blocks.load(render, inputs, outputs, **private)
        blocks.load(*train["redraw"], **private)
        blocks.load(*train["restore"], **private)  # the form of the run going, once per page load

    threading.Thread(target=_warm_up, args=(state,), daemon=True, name="warm-up").start()
    blocks.app_state = state  # for tests and the benchmark's in-process use
    return blocks


def _warm_up(state: AppState) -> None:
    """Load the default models once, so the first stroke does not pay for it."""
    for task in ("facades", "colorize"):
        try:
            state.models.translator(None, task)
        except Exception as exc:  # a missing or broken model is reported when it is used
            log.warning("could not preload the %s model: %s", task, exc)


def _remove_old_empty_folders() -> None:
    """The empty folders older app versions left in Gradio's cache (one or two per request), before the app serves
    a request: in the background, it could remove the old folder of a file a request was caching again (Gradio
    makes the folder if missing, then writes), and that write failed. One level to read: 10,000 folders take 0.06 s
    to read, and 0.5-0.7 s to remove once (left by an older app: a start that meets a million waits about a minute,
    once)."""
    start = time.monotonic()
    removed = remove_empty_folders(Path(get_upload_folder()), older_than=DELETE_CACHE[1])
    if removed:
        log.info("removed %d empty folders from Gradio's cache in %.1f s", removed, time.monotonic() - start)
