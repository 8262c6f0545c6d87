"""A bound on what a request can make the server hold, in front of Gradio's routes.

Gradio checks `max_file_size` per file, but accepts many files in one upload request and keeps them in
its cache for an hour (`app.DELETE_CACHE`): one client could write gigabytes a minute until the disk is
full. And it keeps every input of an event per session before any handler sees it (a 300 MB string sent
as a dataset folder's name: 300 MB held per session, for up to 10,000 sessions). This ASGI middleware
answers a POST before its body is read when

- its Content-Length is above the route's cap: an upload (`max_request_bytes`: the page sends one file per
  request, and one file of the app's 50 MB limit with its multipart framing fits), the route the facade
  canvas sends its images by (`component_server`, held in memory: MAX_CANVAS_BYTES), every other route
  (event inputs as JSON: MAX_BODY_BYTES); every body is also counted as it arrives and cut at the cap (a
  chunked one says no size: 413 there),
- it says its size twice (Content-Length and Transfer-Encoding: h11 reads the chunks and ignores the length,
  so a small length let any body past the caps), or an upload or canvas request does not say it, or
- the disk holding Gradio's cache would keep less than `min_free_bytes` free after an upload or canvas image.

Routes are matched with trailing and doubled slashes removed: Gradio serves `/component_server/` too.
A client that leaves during its request (a closed page mid-upload, or a body cut off at its cap) is one line
in the log, not Gradio's ClientDisconnect as an 80-line "Exception in ASGI application" traceback, and leaves
no file behind: Gradio's multipart parser writes each file of a body to a temp file as it arrives, and deletes
them when the body is malformed or too large but not when the client leaves; the guard makes it do so
(`_delete_partial_files_on_disconnect`).

Gradio also tracks an upload's progress by the `upload_id` its client names, until a progress stream for it ends:
ids never asked about stayed for good, and every id ever named as an asyncio.Event (2,000 uploads naming 8 kB
ids: 20 MB held). An id is at most MAX_UPLOAD_ID characters here (the page's are 13), and at most
MAX_TRACKED_UPLOADS are remembered, the oldest forgotten first (`_bound_upload_progress`).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
from collections import OrderedDict
from pathlib import Path
from typing import Callable

from starlette.datastructures import QueryParams
from starlette.requests import ClientDisconnect

from . import disk
from .disk import MIN_FREE_BYTES  # leave this much disk free for results, checkpoints and the system

log = logging.getLogger("pix2pix_studio")

UPLOAD_PATH = "/gradio_api/upload"
PROGRESS_PATH = "/gradio_api/upload_progress"  # an upload's progress, by the upload_id its client names
CANVAS_PATH = "/gradio_api/component_server"  # the facade canvas sends its images here (kept in memory)
MAX_REQUEST_BYTES = 51 * 1024 * 1024  # 50 MB of file (app.MAX_UPLOAD) + room for the multipart framing
MAX_CANVAS_BYTES = 8 * 1024 * 1024  # a 512 x 512 canvas's background, composite and layer as PNG: < 3 MB
MAX_BODY_BYTES = 64 * 1024  # an event's inputs as JSON (files travel by upload, by reference here)
MAX_UPLOAD_ID = 64  # characters of an upload_id (the page sends 13)
MAX_TRACKED_UPLOADS = 256  # upload_ids whose progress Gradio remembers at once
MAX_LOGGED_PATH = 100  # characters of a route named in the log


class UploadGuard:
    """ASGI middleware: refuse requests too large for their route, or uploads that would leave the disk nearly
    full."""

    def __init__(self, app, cache_dir: str | Path, max_request_bytes: int = MAX_REQUEST_BYTES,
                 min_free_bytes: int = MIN_FREE_BYTES, free_bytes: Callable[[Path], int] | None = None):
        self.app, self.cache_dir = app, Path(cache_dir)
        self.max_request_bytes, self.min_free_bytes = max_request_bytes, min_free_bytes
        self.free_bytes = free_bytes or disk.free_bytes
        _delete_partial_files_on_disconnect()
        _bound_upload_progress()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        route = route_of(scope)
        if route.endswith((UPLOAD_PATH, PROGRESS_PATH)) and len(upload_id(scope)) > MAX_UPLOAD_ID:
            return await answer(send, 400, f"an upload_id is at most {MAX_UPLOAD_ID} characters")
        if scope["method"] != "POST":
            return await self.app(scope, receive, send)
        files = route.endswith((UPLOAD_PATH, CANVAS_PATH))
        limit = (self.max_request_bytes if route.endswith(UPLOAD_PATH) else MAX_CANVAS_BYTES) if files \
            else MAX_BODY_BYTES
        headers = dict(scope["headers"])
        length, chunked = headers.get(b"content-length"), b"transfer-encoding" in headers
        if length is not None and chunked:  # h11 reads the chunks and ignores the length (RFC 9112 6.1)
            return await answer(send, 400, "a request says its size by Content-Length or Transfer-Encoding, "
                                            "not both")
        if length is not None or files:
            refusal = self._refusal(length or b"", limit, files)
            if refusal is not None:
                return await answer(send, *refusal)
        await self._counted(scope, receive, send, limit, files)

    async def _counted(self, scope, receive, send, limit: int, files: bool):
        """The app, with its body counted as it arrives (a chunked one says no size; any other is checked
        again): past `limit`, 413 if nothing was answered yet, and the app is told the client has gone. (An
        exception from `receive` would not do: FastAPI turns any error while parsing a body into a 400.)"""
        received, started, refused = 0, False, False

        async def counting_receive():
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                refused = True
                if not started:
                    await answer(send, 413, _too_large(limit, files))
                return {"type": "http.disconnect"}
            return message

        async def guarded_send(message):
            nonlocal started
            if not refused:
                started = True
                await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except ClientDisconnect:  # gone, or cut off at the cap: nobody to answer, and no traceback for the log
            if not refused:
                # escaped: the server decodes %0A in a path, and a newline would start a log line of the client's
                log.info("a client left during its request to %s", ascii(scope.get("path", "")[:MAX_LOGGED_PATH])[1:-1])

    def _refusal(self, length: bytes, limit: int, files: bool) -> tuple[int, str] | None:
        if not length.isdigit():
            return 411, "a request must say its size (Content-Length)"
        size = int(length)
        if size > limit:
            return 413, _too_large(limit, files)
        if files and self.free_bytes(self.cache_dir) - size < self.min_free_bytes:
            return 507, "the server's disk is nearly full; try again later"
        return None


def route_of(scope) -> str:
    """The path as Gradio's router matches it, with doubled and trailing slashes removed."""
    return re.sub("/{2,}", "/", scope.get("path", "")).rstrip("/")


def upload_id(scope) -> str:
    """The upload_id a request names in its query ("" when none)."""
    return QueryParams(scope.get("query_string", b"").decode("latin-1")).get("upload_id", "")


class _Forgetful(OrderedDict):
    """A mapping that forgets its oldest entries beyond `limit`; `factory` makes a missing one, as defaultdict's."""

    def __init__(self, entries, limit: int, factory: Callable | None = None):
        super().__init__()
        self.limit, self.factory = limit, factory
        for key, value in dict(entries).items():
            self[key] = value

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        while len(self) > self.limit:
            self.popitem(last=False)

    def __missing__(self, key):
        if self.factory is None:
            raise KeyError(key)
        self[key] = value = self.factory()
        return value


def _bound_upload_progress() -> None:
    """Keep at most MAX_TRACKED_UPLOADS upload_ids in Gradio's upload progress tracker, the oldest forgotten first
    (a progress stream for a forgotten one ends, as for an unknown one). Idempotent."""
    import asyncio

    from gradio.routes import file_upload_statuses as tracker

    if not isinstance(tracker._statuses, _Forgetful):
        tracker._statuses = _Forgetful(tracker._statuses, MAX_TRACKED_UPLOADS)
    if not isinstance(tracker._signals, _Forgetful):
        tracker._signals = _Forgetful(tracker._signals, MAX_TRACKED_UPLOADS, asyncio.Event)


def _delete_partial_files_on_disconnect() -> None:
    """Make Gradio's multipart parser delete the temp files of a body whose client left before its end, as it does
    for a malformed or oversized one. It kept them: an upload cut off after 40 MB left 40 MB in Gradio's cache
    (5 in 4 s: 200 MB), a canvas image cut off after 7 MB left 7 MB in the system temp folder, and neither was
    ever deleted (Gradio's `delete_cache` removes only files it handed out), so any client could fill the disk
    down to the upload margin, after which every upload of every user was refused. Idempotent."""
    from gradio.route_utils import GradioMultiPartParser

    parse = GradioMultiPartParser.parse
    if getattr(parse, "deletes_on_disconnect", False):
        return

    @functools.wraps(parse)
    async def parse_deleting_on_disconnect(parser):
        try:
            return await parse(parser)
        except ClientDisconnect:
            for file in getattr(parser, "_files_to_close_on_error", ()):
                with contextlib.suppress(OSError):
                    file.close()
                    os.unlink(file.name)
            raise

    parse_deleting_on_disconnect.deletes_on_disconnect = True
    GradioMultiPartParser.parse = parse_deleting_on_disconnect


def _too_large(limit: int, files: bool = False) -> str:
    if files:
        return f"an upload request may hold at most {limit // 2**20} MB; send files one by one"
    return f"a request's inputs may hold at most {limit // 1024} kB (files are sent by upload)"


async def answer(send, status: int, message: str, close: bool = True) -> None:
    """A short JSON answer, {"detail": message}; `close`: the connection ends with it (the guard answers before
    the request's body is read, so the connection cannot carry another request)."""
    body = json.dumps({"detail": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status,
                "headers": headers + ([(b"connection", b"close")] if close else [])})
    await send({"type": "http.response.body", "body": body})
