"""Image inputs whose files the app checks before anything decodes them.

Gradio's own preprocessing decodes uploads before a handler runs: a gr.Image opened the file (a corrupt or
178-megapixel one failed inside Gradio, with an empty "Error" and no reason), decoded and re-encoded a
`data:` URL into its cache, and a gr.ImageEditor decoded its background, composite and every layer at
any size (a 25 MP canvas payload: seconds of CPU and 1.8 GB before any check). Page-only events can still
be called by their fn_index, so the bounds must hold in the component, not only in the page.

- `ImageUpload`: gr.Image (type "filepath") that hands the handler the uploaded file's path undecoded;
  the handler's `ui.on_upload` then applies the app's pixel cap, lanes and clear errors.
- `CanvasEditor`: gr.ImageEditor that refuses images above its pixel cap, or too many layers, from the
  file headers before Gradio decodes them; and bounds the images the canvas sends ahead of its event
  (Gradio keeps them in memory until that event uses them).
- `FileInput`, `UploadInput`: gr.File and gr.UploadButton (type "filepath") that hand over the uploaded file's
  path without Gradio's empty temp file: Gradio's own created one in its cache at every event they were an input
  of, refused ones included, and never deleted it (755 /colorize calls in 20 s: 755 files, for good).
"""

from __future__ import annotations

import collections
import io
import re

import gradio as gr
from PIL import Image

from gradio.components.base import server
from gradio.utils import NamedString
from gradio_client import utils as client_utils

from .image_work import APP_MAX_PIXELS, APP_MAX_SIDE, header_size, within_app_limits
from .messages import quoted


def _refuse(message: str) -> None:
    raise gr.Error(message, print_exception=False)


# No __init__ overrides below: Gradio sends the page a component's props by reading the attributes named in
# its __init__ signature, so a subclass with its own signature would lose them (the canvas did not render).


class ImageUpload(gr.Image):
    """gr.Image for an uploaded image file, passed to the handler as its path, undecoded (create it with
    type="filepath", image_mode=None)."""

    is_template = True  # rendered by Gradio's Image component

    def preprocess(self, payload):
        if self.type != "filepath" or self.image_mode is not None:
            raise ValueError("ImageUpload hands over file paths: create it with type='filepath', image_mode=None")
        if payload is None:
            return None
        if payload.url and payload.url.startswith("data:"):
            _refuse("send the image as an uploaded file, not as a data: URL")
        if payload.path is None:
            _refuse("no image file was uploaded")
        return str(payload.path)


def _uploaded_path(component, file) -> NamedString:
    """The path of an uploaded file, as Gradio's File and UploadButton hand it over with type "filepath" (its
    file types checked the same way), without the empty NamedTemporaryFile they also create in Gradio's cache
    for each file of each event and then drop: `delete_cache` never sees it, so every call to /facade or
    /colorize (gr.File inputs) left one more file behind, an inode and a cache-folder entry each."""
    if component.file_types and not client_utils.is_valid_file(file.path, component.file_types):
        _refuse(f"Invalid file type. Please upload a file that is one of these formats: {component.file_types}")
    return NamedString(file.path)


class FileInput(gr.File):
    """gr.File for an uploaded file passed to the handler as its path (type "filepath"), leaving no empty temp file
    in Gradio's cache (`_uploaded_path`)."""

    is_template = True  # rendered by Gradio's File component

    def _process_single_file(self, f):
        return _uploaded_path(self, f) if self.type == "filepath" else super()._process_single_file(f)


class UploadInput(gr.UploadButton):
    """gr.UploadButton whose file is passed to the handler as its path (type "filepath"), leaving no empty temp
    file in Gradio's cache (`_uploaded_path`)."""

    is_template = True  # rendered by Gradio's UploadButton component

    def _process_single_file(self, f):
        return _uploaded_path(self, f) if self.type == "filepath" else super()._process_single_file(f)


def _blob_size(item) -> tuple[int, int]:
    """(width, height) of an editor image (an uploaded file or the bytes of a canvas blob) from its header;
    (0, 0) when absent or unreadable."""
    if item is None:
        return 0, 0
    if isinstance(item, (bytes, bytearray, memoryview)):
        try:
            with Image.open(io.BytesIO(item)) as image:
                return image.size
        except Exception:  # noqa: BLE001 - unreadable: Gradio's own decoding reports it
            return 0, 0
    return header_size(item.path) if getattr(item, "path", None) else (0, 0)


def _images(parts) -> list:
    """An editor payload's (or waiting blobs') images: background, composite and each layer; None where absent."""
    return [parts.background, parts.composite, *(parts.layers or [])]


_CANVAS_ID = re.compile(r"[a-z0-9]{1,64}")
# A layer index as Gradio's int() reads it: '²' and '١' passed str.isdigit(), 5000 digits int()'s limit, and any
# kind's index that int() could not read ('abc' for a background) failed in Gradio: a 500 and a traceback in the log
_INDEX = re.compile(r"[0-9]{1,9}")
QUOTED_FIELD = 20  # characters of a form field quoted in a refusal (the route answers at most 200)
DROPPED = "the app was too busy to keep this drawing's images; draw a stroke again"  # its event, or its later images


class CanvasEditor(gr.ImageEditor):
    """gr.ImageEditor with a fixed canvas that refuses an image above 4 times the canvas's area (a
    high-density screen may send twice its size each way) or APP_MAX_SIDE px a side, or more than MAX_LAYERS
    layers, before Gradio decodes any of them.

    The canvas first sends its images to `accept_blobs`, which Gradio keeps in memory by canvas id until
    the event that uses them (the whole app shares one store): a client that never sends that event, or
    names a layer index of 10**9 (Gradio grew its layer list to any index: 8 GB), or sends megabyte ids
    (kept as keys) and requests that store nothing (kept as empty entries), could fill the server's memory.
    Here an index past MAX_LAYERS, an id that is not 1-64 lowercase letters and digits (the page sends ~11)
    and an unknown part are refused, and the waiting images keep at most MAX_WAITING_BYTES in at most
    MAX_WAITING_CANVASES entries, the oldest canvas's dropped first (its event then finds no image and says so).
    """

    is_template = True  # rendered by Gradio's ImageEditor component
    MAX_LAYERS = 1
    MAX_WAITING_BYTES = 64 * 2 ** 20  # eight canvases' requests at the upload guard's 8 MB each
    MAX_WAITING_CANVASES = 64  # canvas ids waiting (each of at most 64 characters)
    MAX_DROPPED_REMEMBERED = 256  # ids whose images were dropped, so their event says so

    @property
    def dropped(self) -> "collections.OrderedDict[str, None]":
        """Ids whose waiting images were dropped (oldest forgotten first): without them Gradio hands the event
        an empty canvas, and the facade tab drew a plain facade instead of the drawing, saying nothing."""
        if "_dropped" not in self.__dict__:
            self._dropped = collections.OrderedDict()
        return self._dropped

    @property
    def max_pixels(self) -> int:
        width, height = self.canvas_size or (0, 0)
        return min(4 * width * height, APP_MAX_PIXELS) if self.fixed_canvas and width and height else APP_MAX_PIXELS

    def preprocess(self, payload):
        if payload is None:
            return None
        parts = payload  # or the blobs the canvas sent first (kept in memory until used: dropped if refused)
        if payload.id is not None:
            parts = self.blob_storage.get(payload.id)
            if payload.id in self.dropped:  # all its images, or the first of them (the rest were refused)
                self.dropped.pop(payload.id, None)
                self.blob_storage.pop(payload.id, None)
                _refuse(DROPPED)
        if parts is not None and not self._within_bounds(parts):
            if payload.id is not None:
                self.blob_storage.pop(payload.id, None)
            layers = len(parts.layers or [])
            _refuse(f"the canvas sent {layers} layers; it has at most {self.MAX_LAYERS}" if layers > self.MAX_LAYERS
                    else f"a canvas image is above {self.max_pixels / 1e6:.2g} megapixels or {APP_MAX_SIDE:,} px a "
                         "side; draw on the canvas, or upload a label map with the Upload button")
        return super().preprocess(payload)

    @server
    def accept_blobs(self, data):
        blob = getattr(data, "data", None)  # a form's fields; a JSON request (any value) or no file: refused
        if not isinstance(blob, dict) or not getattr(data, "files", None):
            _refuse("the canvas sends each image as a file in a multipart form")
        canvas_id, kind, index = str(blob.get("id") or ""), blob.get("type"), blob.get("index")
        if not _CANVAS_ID.fullmatch(canvas_id):  # the page's ids are ~11 base-36 characters; any size was kept
            _refuse("a canvas id is 1 to 64 lowercase letters and digits")
        if kind not in ("background", "composite", "layer"):
            _refuse(f"a canvas sends its background, composite or layer, not {quoted(kind, QUOTED_FIELD)}")
        if kind == "layer" and not (_INDEX.fullmatch(str(index)) and int(str(index)) < self.MAX_LAYERS):
            _refuse(f"the canvas has at most {self.MAX_LAYERS} layer(s); layer {quoted(index, QUOTED_FIELD)} was sent")
        if index not in (None, "", "null") and not _INDEX.fullmatch(str(index)):  # Gradio reads any kind's index
            _refuse(f"a canvas image's index is a whole number or null, not {quoted(index, QUOTED_FIELD)}")
        if canvas_id in self.dropped:  # the rest of a canvas whose first images were dropped: its event says so
            _refuse(DROPPED)
        super().accept_blobs(data)
        self._drop_oldest_waiting(keep=canvas_id)

    def _drop_oldest_waiting(self, keep: str) -> None:
        """Oldest canvases first, until the waiting images fit MAX_WAITING_BYTES and MAX_WAITING_CANVASES."""
        def size(parts) -> int:
            return sum(len(item) for item in _images(parts) if isinstance(item, (bytes, bytearray, memoryview)))

        total = sum(size(parts) for parts in list(self.blob_storage.values()))
        for canvas_id in list(self.blob_storage):  # insertion order: oldest first
            if total <= self.MAX_WAITING_BYTES and len(self.blob_storage) <= self.MAX_WAITING_CANVASES:
                break
            if canvas_id != keep:
                removed = self.blob_storage.pop(canvas_id, None)
                total -= size(removed) if removed is not None else 0
                self.dropped[canvas_id] = None
                while len(self.dropped) > self.MAX_DROPPED_REMEMBERED:
                    self.dropped.popitem(last=False)

    def _within_bounds(self, parts) -> bool:
        sizes = [_blob_size(item) for item in _images(parts)]  # (0, 0): absent or unreadable, left to Gradio
        return len(parts.layers or []) <= self.MAX_LAYERS and all(
            size == (0, 0) or within_app_limits(*size, self.max_pixels) for size in sizes)
