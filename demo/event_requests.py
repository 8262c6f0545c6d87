"""A malformed event request answered with one line that says what was wrong, before any handler runs.

Gradio checks an event's inputs before the app sees them, and for any event (the API's and the page's own, by
their fn_index) three kinds of malformed request failed the same way: the client got `{"error": null}`, no
reason, and the server log got a full traceback (a pydantic ValidationError, an InvalidPathError, or a
ValueError that quoted every input whole, up to the 64 kB body cap, newlines and all: a client could write log
lines of its own):

- a string or number where an input takes a file (image, file, canvas): "expected an uploaded file";
- a file path that was never uploaded (e.g. `/etc/passwd`): Gradio refuses it; now the client is told why;
- too few inputs in `data` (Gradio took too many silently and dropped the rest; now refused as well).

`CheckedBlocks` is gr.Blocks with its `preprocess_data` (where Gradio checks the count, then moves each input's
files and validates it against its component's data model) wrapped: the count is checked first, and the two
refusals become a `gr.Error` without a traceback (Gradio prints none for one; `print_exception=False`), one line
naming the input and what it got, never the value. Each refusal is one escaped INFO line in the log. Gradio has
no supported hook for these errors (they are raised in its queue worker, not in a route: FastAPI's exception
handlers never see them); a subclass of the app's own Blocks keeps the change to this app, and
`tests/test_app_limits.py` fails if a Gradio upgrade renames or stops calling the method.

Its `process_api` (the one call that runs an event: the inputs' checks, the handler, its messages) also notes
who sent the event, for messages.for_reader: an API client gets a message as text, the page an escaped one.
"""

from __future__ import annotations

import inspect
import logging

import gradio as gr
import pydantic
from gradio.exceptions import InvalidPathError

from .messages import PLAIN_TEXT_READER, shorten
from .ui import as_text

log = logging.getLogger("pix2pix_studio")

EXPECTED = {"FileData": "an uploaded file", "ImageData": "an uploaded file", "ListFiles": "a list of uploaded files",
            "EditorData": "the canvas's images (background, layers, composite)"}
KINDS = {str: "a string", bool: "a boolean", int: "a number", float: "a number", list: "a list", dict: "an object"}
NOT_UPLOADED = "a file that was not uploaded to this app (upload a file first, then send the path its upload returned)"


class CheckedBlocks(gr.Blocks):
    """gr.Blocks whose refusal of an event's malformed inputs is one line to the client and to the log, and
    whose messages are escaped for the page only."""

    async def process_api(self, *args, **kwargs):
        call = inspect.signature(super().process_api).bind(*args, **kwargs).arguments
        reader = PLAIN_TEXT_READER.set(sent_by_api_client(call.get("request"), call.get("simple_format", False)))
        try:
            return await super().process_api(*args, **kwargs)
        finally:
            PLAIN_TEXT_READER.reset(reader)

    async def preprocess_data(self, block_fn, inputs, state, explicit_call: bool = False):
        count_problem = wrong_count(len(block_fn.inputs), len(inputs))
        if count_problem:
            refuse(block_fn, count_problem)
        try:
            return await super().preprocess_data(block_fn, inputs, state, explicit_call)
        except InvalidPathError:
            refuse(block_fn, NOT_UPLOADED)
        except pydantic.ValidationError:
            refuse(block_fn, invalid_input(block_fn, inputs))


def sent_by_api_client(request, simple_format: bool) -> bool:
    """An event from the HTTP call/ routes (Gradio's `simple_format`) or from a client that says it is one
    (gradio_client and Gradio's JS client send `x-gradio-user: api`; the app's own page sends `app`). Anything
    else, a request without the header too, is treated as the page: its messages are escaped."""
    if simple_format:
        return True
    headers = getattr(request, "headers", None) if request is not None and not isinstance(request, list) else None
    return headers is not None and str(headers.get("x-gradio-user", "")).strip().lower() == "api"


def wrong_count(needed: int, got: int) -> str:
    """Gradio refused too few inputs with a message quoting all of them, and dropped extra ones silently."""
    if got < needed:
        return f"too few inputs: got {got}, expected {needed}"
    if got > needed:
        return f"too many inputs: got {got}, expected {needed}"
    return ""


def invalid_input(block_fn, inputs: list) -> str:
    """Which input did not fit its component's data model, and what it was (its type, never its value): each
    input is validated again as it came, only on this error path."""
    for position, (block, value) in enumerate(zip(block_fn.inputs, inputs)):
        model = getattr(block, "data_model", None)
        if model is None or value is None or getattr(block, "stateful", False):
            continue
        try:
            model.model_validate(value, context={"validate_meta": True})
        except pydantic.ValidationError as exc:
            return f"{input_name(position, block)}: expected {expected(model)}, got {kind(value, exc)}"
    return "an input is not what its component takes"


def input_name(position: int, block) -> str:
    """'input 1 (image)': its place in `data` counted from 1, and its label or component type."""
    label = getattr(block, "label", None) or block.get_block_name()
    return f"input {position + 1} ({shorten(label, 40)})"


def expected(model) -> str:
    return EXPECTED.get(model.__name__, f"a {model.__name__} value")


def kind(value, exc: pydantic.ValidationError) -> str:
    """The JSON type of a refused value; for an object, pydantic's first complaint (its field, not the value)."""
    shown = KINDS.get(type(value), f"a {type(value).__name__}")
    if isinstance(value, dict) and exc.errors():
        error = exc.errors()[0]
        field = ".".join(str(part)[:20] for part in error.get("loc", ())[:4])
        complaint = str(error.get("msg", "")).removeprefix("Value error, ")
        shown += f" ({field + ': ' if field else ''}{shorten(complaint, 120)})"
    return shown


def refuse(block_fn, problem: str) -> None:
    """One escaped log line (a client's text can hold newlines) and a one-line gr.Error without a traceback."""
    message = as_text(problem)
    name = block_fn.api_name or block_fn.name or "?"
    log.info("refused a malformed request to %s: %s", ascii(str(name)[:60])[1:-1], ascii(message)[1:-1])
    raise gr.Error(message, print_exception=False)
