"""Tab "Facades": paint a label map with the 12 CMP classes and watch the generator turn it into a building.

The canvas (`gr.ImageEditor`) is the source of truth for the label map. Every stroke (`.input`) cleans the
canvas to the class colours (`palette.clean_label_map`, as the training data are cleaned) and re-runs the
generator; the cleaned ("snapped") map is shown beside it, where two clicks draw a filled rectangle (the editor
has no shape tool, and facades are mostly rectangles).
"""

from __future__ import annotations

import contextlib
import html
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import gradio as gr
import numpy as np
from PIL import Image, ImageDraw

from pix2pix_core.errors import Pix2PixError
from pix2pix_core.images import open_image
from pix2pix_core.limits import SEED_MAX, seed_value as checked_seed
from pix2pix_core.palette import (clean_label_ids, clean_label_map, facade_classes, ids_to_image, label_map_for_network,
                                  label_map_rgb, looks_like_photo, plain_facade)

from .choices import Picker, Seed
from .state import EXAMPLES, AppState
from .ui import NAMES_MIN_WIDTH, as_text, image_endpoint, user_errors, warn_on_error
from .ui import on_upload as in_lane
from .uploads import CanvasEditor, UploadInput

CANVAS = 256  # the facades models work at 256 px; a bigger canvas would only be resized down
TASK = "facades"
FIRST_EXAMPLE = "facade_64.png"  # the canvas opens with this one: a map the bundled model renders cleanly
NO_MODEL_HINT = ("**No facades model here yet**, so no photo: start the app with `--checkpoints` naming a folder of "
                 "models (the bundled ones are in the repository's `checkpoints/`), or train one in the Train tab "
                 "(task *Facades*). The label map still snaps to the class colours as you paint.")


def example_label_maps() -> list[Path]:
    """The bundled label maps, FIRST_EXAMPLE first."""
    return sorted((EXAMPLES / "facades").glob("*.png"), key=lambda path: (path.name != FIRST_EXAMPLE, path.name))


def to_canvas(label_map: Image.Image) -> Image.Image:
    """Any label map -> a CANVAS x CANVAS map with exact class colours, cleaned as the network's inputs are."""
    return label_map_for_network(label_map, CANVAS)


def editor_value(label_map: Image.Image | str) -> dict:
    """The ImageEditor value for a label map (a picture, or its file): the background, nothing painted on top."""
    image = label_map if isinstance(label_map, str) else np.asarray(label_map.convert("RGB"))
    return {"background": image, "layers": [], "composite": image}


def canvas_label_map(value: Optional[dict]) -> Optional[Image.Image]:
    """The painted label map, cleaned to the class colours; None when the canvas is empty."""
    if not value:
        return None
    pixels = value.get("composite")
    if pixels is None:  # right after the background is set, the editor may not have composited yet
        pixels = value.get("background")
    if pixels is None:
        return None
    picture = Image.fromarray(np.asarray(pixels, dtype=np.uint8)[..., :3])
    # an API caller may send a larger canvas: clicks and the network work on CANVAS x CANVAS
    return clean_label_map(picture) if picture.size == (CANVAS, CANVAS) else to_canvas(picture)


def current_map(value: Optional[dict]) -> Image.Image:
    """The canvas label map, or a plain facade when the canvas is empty (after the toolbar's clear)."""
    label_map = canvas_label_map(value)
    return plain_facade((CANVAS, CANVAS)) if label_map is None else label_map


def next_seed(seed) -> int:
    """New variation's seed: the next one, and after the last (2**32 - 1) the first again."""
    return (checked_seed(seed) + 1) % (SEED_MAX + 1)


def to_canvas_checked(label_map: Image.Image) -> Image.Image:
    """to_canvas for an uploaded label map, with a warning when it looks like a photo."""
    if looks_like_photo(label_map):
        gr.Warning("This looks like a photo, not a label map: its colours are not the 12 class colours. "
                   "For a photo, use 'Start from a photo'.")
    return to_canvas(label_map)


def fill_rectangle(label_map: Image.Image, corner_a: tuple[int, int], corner_b: tuple[int, int],
                   class_index: int) -> Image.Image:
    """Fill the rectangle spanned by two corners (inclusive) with one class."""
    ids = clean_label_ids(label_map)
    (x0, x1), (y0, y1) = sorted((corner_a[0], corner_b[0])), sorted((corner_a[1], corner_b[1]))
    ids[y0:y1 + 1, x0:x1 + 1] = class_index
    return ids_to_image(ids)


def legend_html() -> str:
    items = "".join(f'<span><span class="swatch" style="background:{c.hex}"></span>{html.escape(c.name)}</span>'
                    for c in facade_classes())
    return f'<div class="legend">{items}</div>'


def load_cached(cache: dict, path: Path, load: Callable):
    """`load(path)`, kept in `cache` (one entry) while the file stays the same: a model file replaced while
    the app runs is loaded again (keyed by its path alone, the old one was used until a restart)."""
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size, stat.st_ino)
    if key not in cache:
        loaded = load(path)
        cache.clear()
        cache[key] = loaded
    return cache[key]


@dataclass
class FacadesPage:
    """The tab's components that its events read or write."""
    editor: CanvasEditor
    random_button: gr.Button
    clear_button: gr.Button
    upload_button: UploadInput
    segment_button: UploadInput
    photo: gr.Image
    model: Picker
    seed: Seed
    generate_button: gr.Button
    variation_button: gr.Button
    labels: gr.Image
    no_model_hint: gr.Markdown
    rect_class: Picker
    rect_hint: gr.Markdown
    corner: gr.State


# ------------------------------------------------------------------------------ what the events do
# Module functions of `state` and plain values: build() wires them to the page through thin named handlers.

def photo_for(state: AppState, label_map: Image.Image, model: str, seed) -> Image.Image:
    return state.models.translator(model, TASK).translate(label_map, seed=checked_seed(seed))


def as_file(state: AppState, picture: Image.Image, name: str) -> str:
    """A result for the page as a file, not a PIL image: Gradio writes a PIL output to a cache file named by
    its content, rewriting that file in place, so a result identical to one the browser was still fetching
    (same map and seed: Generate, a seed or model change, a stroke that snaps to the same map) was cut short
    under it (h11 "Too little data for declared Content-Length"). A file is copied into the cache atomically
    and once; it also downloads as photo.png or labels.png instead of image.png."""
    return state.outputs.save_by_content(picture, name)


def no_model(state: AppState, model: Optional[str]) -> bool:
    """No facades model to draw with (none in the checkpoints folder, none trained yet): the page then shows
    NO_MODEL_HINT and no photo. Every page load and stroke raised "no facades model found" (three toasts on
    load), and Random, Clear and Upload failed whole: the canvas did not change."""
    return not model and state.models.default(TASK) is None


def rendered(state: AppState, label_map: Image.Image, model: str, seed) -> tuple[Optional[str], str]:
    """The outputs photo and labels: the generated photo's file (None without a model) and the snapped map's."""
    photo = None if no_model(state, model) else as_file(state, photo_for(state, label_map, model, seed), "photo")
    return photo, as_file(state, label_map, "labels")


def shown(state: AppState, label_map: Image.Image, model: str, seed) -> tuple:
    """Put a label map on the canvas and render it (one file for the canvas and the snapped map): the outputs
    editor, photo, labels and corner (no rectangle begun)."""
    photo, labels = rendered(state, label_map, model, seed)
    return editor_value(labels), photo, labels, None


def stroke(state: AppState, value: Optional[dict], model: str, seed) -> tuple:
    """A stroke's outputs photo and labels; what fails is a warning, the outputs left as they were."""
    label_map = canvas_label_map(value)
    if label_map is None:
        return gr.skip(), gr.skip()
    try:
        return rendered(state, label_map, model, seed)
    except Pix2PixError as exc:
        gr.Warning(as_text(str(exc)))
        with contextlib.suppress(Pix2PixError):  # the disk nearly full: nothing new to show
            return gr.skip(), as_file(state, label_map, "labels")
        return gr.skip(), gr.skip()


def variation(state: AppState, value: Optional[dict], model: str, seed) -> tuple:
    """New variation: the next seed, and the canvas rendered with it."""
    new_seed = next_seed(seed)
    return new_seed, *rendered(state, current_map(value), model, new_seed)


def random_example(examples: list[Path], value: Optional[dict]) -> Image.Image:
    """A bundled label map other than the one on the canvas (any, when there is no other)."""
    current = canvas_label_map(value)
    choices = [p for p in examples if current is None or not np.array_equal(
        np.asarray(to_canvas(open_image(p))), np.asarray(current))] or examples
    if not choices:
        raise Pix2PixError("no bundled examples found in demo/examples/facades")
    return to_canvas(open_image(random.choice(choices)))


def uploaded_label_map(state: AppState, file: str) -> Image.Image:
    """An uploaded label map on the canvas's grid (a warning when it looks like a photo)."""
    return in_lane(state, file, "facade", to_canvas_checked, convert=label_map_rgb)


def segmented_photo(state: AppState, cache: dict, file: str) -> Image.Image:
    """The label map the segmenter reads from an uploaded photo (`cache`: the loaded segmenter, see load_cached)."""
    from pix2pix_core.segment import Segmenter  # optional module, present when the button is shown

    path = state.segmenter_path()
    if path is None:
        raise Pix2PixError("the facade segmenter is not installed")
    segmenter = load_cached(cache, path, Segmenter.load)

    def segment(photo: Image.Image) -> Image.Image:  # at the canvas's size: the full-size map was thrown away
        return to_canvas(segmenter.label_map(photo.resize((CANVAS, CANVAS), Image.BICUBIC)))

    return in_lane(state, file, "facade", segment)


def clicked_point(index) -> tuple[int, int]:
    """The canvas pixel of a click on the snapped map (`SelectData.index`), clamped to the canvas."""
    where = index if isinstance(index, (list, tuple)) else []
    if len(where) < 2 or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in where[:2]):
        raise Pix2PixError("click a point on the snapped label map")
    x, y = (int(v) for v in where[:2])
    return min(max(x, 0), CANVAS - 1), min(max(y, 0), CANVAS - 1)


def with_corner(label_map: Image.Image, point: tuple[int, int]) -> Image.Image:
    """The snapped map as shown while a rectangle is begun: a black and white ring with a dot at its first corner
    (for the eye only: the rectangle is filled on the canvas's map, never on this picture)."""
    marked = label_map.convert("RGB")  # a copy: the map itself stays as it is
    draw = ImageDraw.Draw(marked)
    x, y = point
    for radius, colour, width in ((10, (0, 0, 0), 5), (9, (255, 255, 255), 3)):  # white in black: seen on any class
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), outline=colour, width=width)
    draw.rectangle((x - 2, y - 2, x + 2, y + 2), fill=(255, 255, 255), outline=(0, 0, 0))
    return marked


def rectangle_click(state: AppState, value: Optional[dict], class_name: str, first_corner, model: str, seed,
                    index) -> tuple:
    """A click on the snapped map: the first corner is remembered and marked on the map, the second fills the
    rectangle. The outputs editor, photo, labels, corner and the hint."""
    point = clicked_point(index)
    if first_corner is None:
        return (gr.skip(), gr.skip(), as_file(state, with_corner(current_map(value), point), "labels"), point,
                f"First corner at {point} (the ring on the map); click the opposite corner to fill a "
                f"**{class_name}** rectangle.")
    class_names = [c.name for c in facade_classes()]
    filled = fill_rectangle(current_map(value), tuple(first_corner), point, class_names.index(class_name))
    value, photo, snapped, _ = shown(state, filled, model, seed)
    return value, photo, snapped, None, f"Filled a {class_name} rectangle. Click again for another."


def facade_file(state: AppState, label_map: str, model: str, seed) -> str:
    """/facade: a plain label-map file in, the photo's file (same size) out."""
    if not label_map:
        raise Pix2PixError("no label map given")
    photo = in_lane(state, label_map, "facade", lambda picture: photo_for(state, picture, model, seed),
                    convert=label_map_rgb)
    return state.outputs.save(photo, "photo")


def build(state: AppState) -> dict:
    """Lay out the tab and wire its events; returns the components other tabs refresh."""
    examples = example_label_maps()
    first = to_canvas(open_image(examples[0])) if examples else plain_facade((CANVAS, CANVAS))
    page = layout(state, first)
    first_render = wire_events(state, page, examples)
    wire_api(state)
    return {"model": page.model, "first_render": first_render}


def layout(state: AppState, first: Image.Image) -> FacadesPage:
    """The tab's components, the canvas showing `first`."""
    classes = facade_classes()
    class_names = [c.name for c in classes]
    from_photo = state.segmenter_path() is not None  # the button is shown only with the segmenter installed
    gr.Markdown("Paint a label map with the class colours (each colour is one part of a building) and the "
                "model draws a photo of that facade. Every stroke updates the photo. Use **New variation** "
                "for another photo of the same map (the network's dropout noise, seeded)."
                + (" **Start from a photo** turns a photo of a building front into a label map to paint on."
                   if from_photo else ""), elem_classes="help", elem_id="facade-help")
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=300):
            editor = CanvasEditor(  # refuses oversized images before Gradio decodes them (fn_index calls too)
                value=editor_value(first), label="Label map (paint here)", type="numpy", image_mode="RGB",
                format="png", canvas_size=(CANVAS, CANVAS), fixed_canvas=True, sources=(), transforms=(),
                layers=False, height=420, elem_id="facade-canvas", buttons=[],
                brush=gr.Brush(colors=[c.hex for c in classes], default_color=classes[2].hex,
                               color_mode="fixed", default_size=8),
                eraser=gr.Eraser(default_size=8))
            gr.HTML(legend_html(), label="Classes")
            with gr.Row():
                random_button = gr.Button("Random example", size="sm")
                clear_button = gr.Button("Clear", size="sm")
                upload_button = UploadInput("Upload label map", file_types=["image"], size="sm")
                segment_button = UploadInput("Start from a photo", file_types=["image"], size="sm",
                                             visible=from_photo)
        with gr.Column(scale=1, min_width=300):
            photo = gr.Image(label="Generated photo", type="filepath", format="png", interactive=False, height=300,
                             elem_id="facade-photo", buttons=["download", "fullscreen"])
            no_model_hint = gr.Markdown(NO_MODEL_HINT, visible=no_model(state, None), elem_classes="help",
                                        elem_id="facade-no-model")
            with gr.Row():
                model = Picker(state.models.names(TASK), value=state.models.default(TASK), label="Model",
                                    elem_id="facade-model", scale=2, min_width=NAMES_MIN_WIDTH)
                seed = Seed(0, label="Seed", precision=0, minimum=0, maximum=SEED_MAX, scale=1, elem_id="facade-seed")
            with gr.Row():
                generate_button = gr.Button("Generate", variant="primary", elem_id="facade-generate")
                variation_button = gr.Button("New variation", elem_id="facade-variation")
        with gr.Column(scale=1, min_width=300):
            labels = gr.Image(value=first, label="Label map (snapped; click two corners for a rectangle)",
                              type="filepath", format="png", interactive=False, height=300, elem_id="facade-labels",
                              buttons=["download"])
            rect_class = Picker(class_names, value="window", label="Rectangle class", elem_id="facade-rect-class")
            rect_hint = gr.Markdown("Rectangle: pick a class, then click two corners on the snapped map.",
                                    elem_classes="help", elem_id="facade-rect-hint")
            corner = gr.State(None)

    return FacadesPage(editor, random_button, clear_button, upload_button, segment_button, photo, model, seed,
                       generate_button, variation_button, labels, no_model_hint, rect_class, rect_hint, corner)


def wire_events(state: AppState, page: FacadesPage, examples: list[Path]) -> tuple:
    """Connect the page's events to the module functions; returns the first render (handler, inputs, outputs)
    that the app runs when the page loads."""
    # ------------------------------------------------------------------------------ handlers
    # Named closures over `state`, with the events' inputs as parameters: their names are the events' (private)
    # api_names and what the tests look up, and on_rect_click's gr.SelectData is found by its annotation
    # (a functools.partial has neither a name nor type hints Gradio reads).
    def on_stroke(value, model_name, seed_value):
        """Live update: a bad state mid-drawing warns instead of raising a modal error on every stroke."""
        return stroke(state, value, model_name, seed_value)

    @user_errors
    def on_generate(value, model_name, seed_value):
        return rendered(state, current_map(value), model_name, seed_value)

    @user_errors
    def on_variation(value, model_name, seed_value):
        return variation(state, value, model_name, seed_value)

    @user_errors
    def on_random(value, model_name, seed_value):
        return shown(state, random_example(examples, value), model_name, seed_value)

    @user_errors
    def on_clear(model_name, seed_value):
        return shown(state, plain_facade((CANVAS, CANVAS)), model_name, seed_value)

    keep_canvas_on_error = warn_on_error(lambda: (gr.skip(),) * 4)  # an unusable upload leaves the canvas as it was

    @user_errors
    @keep_canvas_on_error
    def on_upload(file, model_name, seed_value):
        return shown(state, uploaded_label_map(state, file), model_name, seed_value)

    segmenter_cache: dict = {}

    @user_errors
    @keep_canvas_on_error
    def on_segment(file, model_name, seed_value):
        return shown(state, segmented_photo(state, segmenter_cache, file), model_name, seed_value)

    @user_errors
    def on_rect_click(value, class_name, first_corner, model_name, seed_value, evt: gr.SelectData):
        return rectangle_click(state, value, class_name, first_corner, model_name, seed_value, evt.index)

    # ------------------------------------------------------------------------------ events
    editor, photo, labels, corner = page.editor, page.photo, page.labels, page.corner
    model, seed = page.model, page.seed
    render_inputs = [editor, model, seed]
    private = dict(api_visibility="private")
    editor.input(on_stroke, render_inputs, [photo, labels], trigger_mode="always_last", show_progress="hidden",
                 concurrency_limit=1, concurrency_id="facade", **private)
    # Events that put a new map on the canvas show their progress on the photos only: with the canvas in its
    # loading state as its new value arrived (the canvas then fires its own input event), it could stay under
    # a "processing" overlay for good after a stroke, blocking the mouse (seen with Random, Upload, rectangles)
    onto_canvas = dict(show_progress_on=[photo, labels], **private)
    editor.clear(on_clear, [model, seed], [editor, photo, labels, corner], **onto_canvas)
    # these redraw the snapped map without a begun rectangle's corner mark (the hint still names the corner): a
    # follow-up event that drew it again raced the second click, and could put a stale map back after the fill
    page.generate_button.click(on_generate, render_inputs, [photo, labels], concurrency_id="facade", **private)
    page.variation_button.click(on_variation, render_inputs, [seed, photo, labels], concurrency_id="facade", **private)
    model.change(on_generate, render_inputs, [photo, labels], concurrency_id="facade", **private)
    # the picker gets a model (or loses its last one) when the tab's select rescans the folders: the hint follows
    model.change(lambda: gr.update(visible=no_model(state, None)), None, page.no_model_hint, **private)
    seed.input(on_generate, render_inputs, [photo, labels], trigger_mode="always_last", concurrency_id="facade",
               **private)  # a seed typed or stepped re-renders, as a stroke or a model does (not New variation's)
    page.random_button.click(on_random, render_inputs, [editor, photo, labels, corner], **onto_canvas)
    page.clear_button.click(on_clear, [model, seed], [editor, photo, labels, corner], **onto_canvas)
    page.upload_button.upload(on_upload, [page.upload_button, model, seed], [editor, photo, labels, corner],
                              **onto_canvas)
    page.segment_button.upload(on_segment, [page.segment_button, model, seed], [editor, photo, labels, corner],
                               **onto_canvas)
    labels.select(on_rect_click, [editor, page.rect_class, corner, model, seed],
                  [editor, photo, labels, corner, page.rect_hint], **onto_canvas)
    return on_generate, render_inputs, [photo, labels]


def wire_api(state: AppState) -> None:
    """/facade: a plain label-map file in, a photo of the same size out (no canvas dict)."""
    @user_errors
    def facade_api(label_map: str, model: str, seed: float) -> str:
        """Translate a facade label map (up to 12 MP; cleaned to the 12 class colours) into a photo file."""
        return facade_file(state, label_map, model, seed)

    image_endpoint(facade_api, "facade", "label_map", "photo")
