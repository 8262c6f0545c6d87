"""A bound on what uploads can write to the server's disk, in front of Gradio's upload route.

Gradio checks `max_file_size` per file, but accepts many files in one upload request and keeps them in
its cache for an hour (`app.DELETE_CACHE`): one client could write gigabytes a minute until the disk is
full. This ASGI middleware answers an upload request before any of its body is read when

- its Content-Length is missing or above `max_request_bytes` (the page sends one file per request: one
  file of the app's 50 MB limit with its multipart framing fits), or, on the route the facade canvas sends
  its images by (`component_server`, held in memory), above MAX_CANVAS_BYTES, or
- the disk holding Gradio's cache would keep less than `min_free_bytes` free after it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

UPLOAD_PATH = "/gradio_api/upload"
CANVAS_PATH = "/gradio_api/component_server"  # the facade canvas sends its images here (kept in memory)
MAX_REQUEST_BYTES = 51 * 1024 * 1024  # 50 MB of file (app.MAX_UPLOAD) + room for the multipart framing
MAX_CANVAS_BYTES = 8 * 1024 * 1024  # a 512 x 512 canvas's background, composite and layer as PNG: < 3 MB
MIN_FREE_BYTES = 2 * 1024 ** 3  # leave this much disk free for results, checkpoints and the system


class UploadGuard:
    """ASGI middleware: refuse upload requests that are too large, or that would leave the disk nearly full."""

    def __init__(self, app, cache_dir: str | Path, max_request_bytes: int = MAX_REQUEST_BYTES,
                 min_free_bytes: int = MIN_FREE_BYTES, free_bytes: Callable[[Path], int] | None = None):
        self.app, self.cache_dir = app, Path(cache_dir)
        self.max_request_bytes, self.min_free_bytes = max_request_bytes, min_free_bytes
        self.free_bytes = free_bytes or _free_bytes

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "") if scope["type"] == "http" and scope["method"] == "POST" else ""
        if path.endswith((UPLOAD_PATH, CANVAS_PATH)):
            limit = self.max_request_bytes if path.endswith(UPLOAD_PATH) else MAX_CANVAS_BYTES
            refusal = self._refusal(dict(scope["headers"]).get(b"content-length", b""), limit)
            if refusal is not None:
                status, message = refusal
                body = json.dumps({"detail": message}).encode()
                await send({"type": "http.response.start", "status": status,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

    def _refusal(self, length: bytes, limit: int) -> tuple[int, str] | None:
        if not length.isdigit():
            return 411, "an upload must say its size (Content-Length)"
        size = int(length)
        if size > limit:
            return 413, f"an upload request may hold at most {limit // 2**20} MB; send files one by one"
        if self.free_bytes(self.cache_dir) - size < self.min_free_bytes:
            return 507, "the server's disk is nearly full; try again later"
        return None


def _free_bytes(folder: Path) -> int:
    """Free bytes on the disk that holds `folder` (or its nearest existing parent)."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return shutil.disk_usage(folder).free
