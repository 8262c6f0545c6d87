"""Small helpers shared by the tabs: turning user mistakes into Gradio messages, and page styling."""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Callable

import gradio as gr
from PIL import Image

from pix2pix_core.errors import ImageError, Pix2PixError
from pix2pix_core.images import open_image

from .image_work import APP_MAX_PIXELS, header_size, within_app_limits
from .messages import MessageCleaner, for_reader
from .train_settings import TASK_LABELS
from .uploads import FileInput

log = logging.getLogger("pix2pix_studio")

NAMES_MIN_WIDTH = 240  # px: a dropdown of long names (tasks, models) wraps below its row-mate before its text
#                        runs under the arrow (a 420 px phone screen cut "facades_label2photo" and the task names)

# Gradio 6.31's SourceSansPro-SemiBold.woff2 (its weight 600: buttons, headings, bold text) is a 5 KB file without the
# Latin letters: every bold word fell back to another font (DejaVu Sans Bold here), larger than the text around it.
# The same folder's Bold file is complete; served by the app itself, as the theme's fonts are.
CSS = """
@font-face { font-family: 'Source Sans Pro'; font-style: normal; font-weight: 600;
             src: url('static/fonts/SourceSansPro/SourceSansPro-Bold.woff2') format('woff2'); }
@font-face { font-family: 'Source Sans Pro'; font-style: normal; font-weight: 700;
             src: url('static/fonts/SourceSansPro/SourceSansPro-Bold.woff2') format('woff2'); }
.legend { display: flex; flex-wrap: wrap; gap: 4px 12px; font-size: 0.9em; }
.legend span.swatch { display: inline-block; width: 14px; height: 14px; border: 1px solid #8884;
                      vertical-align: middle; margin-right: 4px; border-radius: 3px; }
.help { color: var(--body-text-color-subdued); font-size: 0.92em; }
.progress-outer { background: var(--block-background-fill); border: 1px solid var(--border-color-primary);
                  border-radius: 6px; height: 14px; overflow: hidden; }
.progress-inner { background: var(--color-accent); height: 100%; transition: width 0.4s; }
/* step, speed and ETA under the bar in the text colour: the subdued one (#bbbbc2 on white, 1.9:1) was hard to read */
.progress-text { font-size: 0.92em; margin-top: 2px; }
/* the training sample fills its box: Gradio shows a picture at most at its own size, and a Quick demo's 384 x 128
   strip was a small picture in a box of white; below the box's label, which Gradio lays over the picture's top */
#train-sample img { object-fit: contain; padding-top: 30px; box-sizing: border-box; }
"""


CLEAN = MessageCleaner({}, TASK_LABELS)  # any absolute path cut to its last part, tasks as the form names them


def as_text(message: str | BaseException) -> str:
    """A gr.Error / gr.Warning message (or the error to say): shortened, server paths cut, tasks named as the page
    does, and escaped for the page (its toast renders HTML; an API client gets the text as it is: see
    messages.for_reader)."""
    return for_reader(CLEAN(message))


def warn_on_error(results: Callable[[], object]) -> Callable[[Callable], Callable]:
    """A decorator for a page's handler: its Pix2PixError (an unusable upload, the lane busy) is a warning, and its
    outputs are `results()`, made anew for each call (a gr.skip() is an object: one for all calls would be shared).
    As an error, Gradio marked every output failed (red "Error" badges: the Facades canvas no longer painted)."""
    def decorate(handler: Callable) -> Callable:
        @functools.wraps(handler)
        def wrapper(*args):
            try:
                return handler(*args)
            except Pix2PixError as exc:
                gr.Warning(as_text(exc))
                return results()
        return wrapper
    return decorate


def user_errors(fn: Callable) -> Callable:
    """Show a Pix2PixError as a one-line gr.Error (a red toast, or a clear API error), never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Pix2PixError as exc:
            raise gr.Error(as_text(exc), print_exception=False) from None
        except gr.Error:
            raise
        except Exception as exc:  # a bug: full traceback in the server log, one line for the user
            log.exception("unexpected error in %s", fn.__name__)
            # the exception's text stays in the log: it may hold server paths or a megabyte of user input
            raise gr.Error(f"Internal error ({type(exc).__name__}); details are in the server log.",
                           print_exception=False) from None

    return wrapper


def open_upload(path: str, convert: Callable[[Image.Image], Image.Image] | None = None) -> Image.Image:
    """open_image for an uploaded file, with the app's lower pixel limit and the server's temp folder cut
    from the message (`convert`: how the decoded image becomes RGB, as in open_image; a label map's is
    `palette.label_map_rgb`)."""
    try:
        return open_image(path, max_pixels=APP_MAX_PIXELS, convert=convert)
    except ImageError as exc:
        raise ImageError(str(exc).replace(str(path), Path(path).name)) from None


def on_upload(state, path: str, endpoint: str, work: Callable[[Image.Image], Image.Image],
              waiting: Callable[[int], None] | None = None,
              convert: Callable[[Image.Image], Image.Image] | None = None) -> Image.Image:
    """Run `work` on an uploaded image in the lane its size calls for (see image_work).

    `waiting(pixels)`, when given, is called before the lane is entered (e.g. to show "waiting").
    """
    width, height = header_size(path)
    pixels = width * height
    if not within_app_limits(width, height):
        open_upload(path)  # raises the clear error (unreadable, above the app's pixel or side limit) before any lane
    if waiting is not None:
        waiting(pixels)
    with state.lanes.lane(endpoint, pixels):
        return work(open_upload(path, convert))


def image_endpoint(fn: Callable, name: str, input_label: str, output_label: str) -> None:
    """A hidden (file, model, seed) -> image endpoint `/name` for gradio_client: PNG, or JPEG above 4 MP.

    No Gradio concurrency limit: the handler waits in its lane (image_work.WorkLanes), so large images
    queue apart from small ones. The seed is passed as sent and checked by seed_value.
    """
    with gr.Row(visible=False):
        file_in = FileInput(label=input_label, type="filepath")
        model = gr.Textbox(label="model", value="")
        seed = gr.Number(label="seed", value=0)
        image_out = gr.Image(label=output_label, type="filepath", format="png")
        button = gr.Button()
    button.click(fn, [file_in, model, seed], image_out, api_name=name, concurrency_limit=None)
